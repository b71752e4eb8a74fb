//! The Dockerfile: BuildKit's parser reads it, and it copies exactly the
//! workspace's deployable binaries (every one the chart runs).

use std::collections::BTreeSet;

use crate::{repo_root, run, text};

/// The binaries a deployment runs: each processor, and sagactl for the topics Job.
fn deployable() -> BTreeSet<String> {
    [
        "sagastream-escrow-saga",
        "sagastream-order-saga",
        "sagastream-inventory",
        "sagastream-tracking",
        "sagastream-runner",
        "sagastream-ingest",
        "sagactl",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

#[test]
fn the_dockerfile_parses_and_copies_the_deployable_binaries() {
    let python = sagastream_e2e::python();
    let script = r#"
import json, sys, dockerfile
print(json.dumps([[c.cmd, c.value] for c in dockerfile.parse_file(sys.argv[1])]))
"#;
    let out = run(python, &["-c", script, repo_root().join("Dockerfile").to_str().unwrap()]);
    assert!(out.status.success(), "BuildKit's parser refused the Dockerfile:\n{}", text(&out));
    let commands: Vec<(String, Vec<String>)> = serde_json::from_slice(&out.stdout).unwrap();
    let from: Vec<&Vec<String>> = commands.iter().filter(|(c, _)| c == "FROM").map(|(_, v)| v).collect();
    assert_eq!(from.len(), 2, "a build stage and a runtime stage: {from:?}");
    let user = commands.iter().rev().find(|(c, _)| c == "USER").expect("a USER").1[0].clone();
    assert!(!user.starts_with('0') && user != "root", "the image runs as non-root, not {user}");
    let built: BTreeSet<String> = commands
        .iter()
        .filter(|(c, _)| c == "RUN")
        .flat_map(|(_, v)| v.join(" ").split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|w| w.strip_prefix("target/release/").map(str::to_owned))
        .collect();
    assert_eq!(built, deployable(), "the binaries the Dockerfile copies");
    // Each is a workspace binary: a package of that name with a main.rs.
    for bin in deployable() {
        let found = std::fs::read_dir(repo_root().join("processors")).unwrap().any(|d| {
            let dir = d.unwrap().path();
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
            manifest.contains(&format!("name = \"{bin}\"")) && dir.join("src/main.rs").exists()
        });
        assert!(found, "{bin} is not a binary of the workspace");
    }
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("helm/sagastream/values.schema.json")).unwrap())
            .unwrap();
    let allowed: BTreeSet<String> = schema["properties"]["processors"]["additionalProperties"]["properties"]["binary"]
        ["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().to_owned())
        .chain(["sagactl".to_owned()])
        .collect();
    assert_eq!(allowed, deployable(), "values.schema.json's processor binaries (and sagactl) are the image's");
    let chart = crate::chart::commands();
    let expected: BTreeSet<String> = deployable().into_iter().collect();
    assert_eq!(chart, expected, "the chart's commands (left) are the image's binaries (right)");
}
