//! The Grafana dashboards: each validates against Grafana's dashboard
//! schema (generated from npm `@grafana/schema`), and every PromQL
//! expression of a dashboard or an alert parses (`promtool check rules` on
//! them as recording rules) and uses only metrics a processor exports
//! (docs/runtime.md's metric table, which the runtime's own test keeps
//! equal to its registry).

use std::collections::BTreeSet;
use std::path::Path;

use sagastream_e2e::deploy::{concrete, dashboard_exprs, dashboard_files as dashboards};

use crate::{repo_root, run, text, tools};

/// ajv with the generated schema; its output and whether it passed.
fn validate(file: &Path) -> (bool, String) {
    let node = tools().join("node");
    let schema = std::fs::read_dir(&node)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("dashboard-"))
        .expect("scripts/tools.sh generated the dashboard schema");
    let out = std::process::Command::new("npx")
        .args(["--no-install", "ajv", "validate", "--all-errors", "--spec=draft7", "--strict=false", "-s"])
        .arg(&schema)
        .arg("-d")
        .arg(file)
        .current_dir(&node)
        .output()
        .expect("npx runs");
    (out.status.success(), text(&out))
}

#[test]
fn every_dashboard_validates_against_grafanas_schema() {
    let files = dashboards();
    assert_eq!(files.len(), 2, "the processor and the saga dashboards: {files:?}");
    for f in &files {
        let (ok, out) = validate(f);
        assert!(ok, "{}:\n{out}", f.display());
        let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        let vars: BTreeSet<&str> =
            d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert!(
            ["namespace", "job", "instance"].iter().all(|v| vars.contains(v)),
            "{}: variables {vars:?}",
            f.display()
        );
        for p in d["panels"].as_array().unwrap() {
            assert!(
                p["fieldConfig"]["defaults"]["unit"].is_string(),
                "{}: panel {} has no unit",
                f.display(),
                p["title"]
            );
        }
    }
    // The check can fail: a panel whose position is not an object is refused.
    let mut broken: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    broken["panels"][0]["gridPos"] = serde_json::json!("top left");
    let file = repo_root().join(".local/deploy/broken-dashboard.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, broken.to_string()).unwrap();
    let (ok, out) = validate(&file);
    assert!(!ok && out.contains("gridPos"), "a broken dashboard passed:\n{out}");
}

#[test]
fn every_panel_query_parses() {
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, (_, expr)) in dashboard_exprs().iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::to_string(&concrete(expr)).unwrap()
        ));
    }
    let file = repo_root().join(".local/deploy/dashboard-queries.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, rules).unwrap();
    let out = run(tools().join("prom/usr/bin/promtool"), &["check", "rules", file.to_str().unwrap()]);
    assert!(out.status.success(), "promtool check rules on the dashboards' queries:\n{}", text(&out));
}

/// The sample names of docs/runtime.md's metric table, which a runtime unit
/// test keeps equal to what the registry exports (every processor runs on it).
fn exported() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repo_root().join("docs/runtime.md")).unwrap();
    let mut names = BTreeSet::new();
    for row in doc.lines().filter(|l| l.starts_with("| `sagastream_")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let kinds: Vec<&str> = cells[1].split(" / ").map(str::trim).collect();
        for (i, name) in cells[0].split('`').skip(1).step_by(2).enumerate() {
            match kinds.get(i).or(kinds.last()).copied() {
                Some("histogram") => names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}"))),
                _ => names.extend([name.to_owned()]),
            }
        }
    }
    names
}

fn used_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("sagastream_") {
        let name: String = rest[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[i + name.len()..];
        out.push(name);
    }
    out
}

#[test]
fn every_metric_a_dashboard_or_an_alert_uses_is_exported() {
    let exported = exported();
    assert!(exported.contains("sagastream_consumer_lag_seconds"), "{exported:?}");
    let rules = std::fs::read_to_string(crate::alerts::rules_file()).unwrap();
    let mut used: Vec<(String, String)> = dashboard_exprs();
    used.push(("the alert rules".into(), rules));
    for (place, expr) in used {
        for name in used_in(&expr) {
            assert!(exported.contains(&name), "{place} uses {name}, which no processor exports");
        }
    }
}
