//! What the deployment tests and the monitoring end-to-end test share: the
//! tools `scripts/tools.sh` installs, and the dashboards' queries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::repo_root;

/// .local/tools, installed by `scripts/tools.sh` on first use (helm,
/// Prometheus and promtool, the dashboard schema); a failure to install
/// panics with the script's reason.
pub fn tools() -> &'static Path {
    static TOOLS: OnceLock<PathBuf> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let out = Command::new(repo_root().join("scripts/tools.sh")).output().expect("scripts/tools.sh runs");
        assert!(out.status.success(), "scripts/tools.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(String::from_utf8(out.stdout).expect("UTF-8").trim())
    })
}

pub fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("helm/sagastream/dashboards"))
        .expect("helm/sagastream/dashboards")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Every panel target's expression, with where it is (`file: "title"`).
pub fn dashboard_exprs() -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    for file in dashboard_files() {
        let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for p in d["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().expect("targets") {
                let place = format!("{}: {}", file.file_name().unwrap().to_string_lossy(), p["title"]);
                exprs.push((place, t["expr"].as_str().expect("an expr").to_owned()));
            }
        }
    }
    exprs
}

/// An expression as Grafana sends it with every variable on "All".
pub fn concrete(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m").replace("$namespace", ".*").replace("$job", ".*").replace("$instance", ".*")
}
