//! The chart's PrometheusRule: `promtool check rules` on the groups it
//! renders, and `promtool test rules` with one test per alert
//! (alerts.test.yaml: a series that must fire it, one that must not).

use std::collections::BTreeSet;

use crate::{repo_root, run, text, tools};

/// The rule groups of the rendered PrometheusRule, as a plain rules file
/// (written once: the tests that read it run in parallel).
pub(crate) fn rules_file() -> std::path::PathBuf {
    static FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(write_rules).clone()
}

fn write_rules() -> std::path::PathBuf {
    let rendered = crate::chart::render("helm/sagastream/ci/monitoring-values.yaml", &[]);
    let rule = rendered
        .split("\n---")
        .map(|doc| serde_yaml::from_str::<serde_yaml::Value>(doc).unwrap_or(serde_yaml::Value::Null))
        .find(|doc| doc["kind"] == "PrometheusRule")
        .expect("monitoring-values.yaml renders a PrometheusRule");
    let mut plain = serde_yaml::Mapping::new();
    plain.insert("groups".into(), rule["spec"]["groups"].clone());
    let dir = repo_root().join(".local/deploy");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.yaml");
    std::fs::write(&file, serde_yaml::to_string(&plain).unwrap()).unwrap();
    file
}

pub(crate) fn alert_names(rules: &std::path::Path) -> BTreeSet<String> {
    let v: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(rules).unwrap()).unwrap();
    v["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().iter())
        .filter_map(|r| r["alert"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_alert_rules_check_and_every_alert_fires_on_its_series_and_only_there() {
    let promtool = tools().join("prom/usr/bin/promtool");
    let rules = rules_file();
    let out = run(&promtool, &["check", "rules", rules.to_str().unwrap()]);
    assert!(out.status.success(), "promtool check rules:\n{}", text(&out));
    let tests = repo_root().join("tests/deploy/alerts.test.yaml");
    let copy = rules.with_file_name("alerts.test.yaml");
    std::fs::copy(&tests, &copy).unwrap();
    let out = run(&promtool, &["test", "rules", copy.to_str().unwrap()]);
    assert!(out.status.success(), "promtool test rules:\n{}", text(&out));
    // One test per alert, none left out.
    let spec: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&tests).unwrap()).unwrap();
    let tested: BTreeSet<String> = spec["tests"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_sequence().unwrap().iter())
        .map(|a| a["alertname"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tested, alert_names(&rules), "alerts.test.yaml tests (left) vs the chart's alerts (right)");
}

#[test]
fn every_alert_has_a_runbook_entry() {
    let ops = std::fs::read_to_string(repo_root().join("docs/operations.md")).unwrap();
    for alert in alert_names(&rules_file()) {
        assert!(ops.contains(&format!("### {alert}")), "docs/operations.md has no '### {alert}' runbook entry");
    }
}
