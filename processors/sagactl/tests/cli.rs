//! The CLI as an operator meets it: exit codes and messages. No broker needed.

use std::path::PathBuf;
use std::process::{Command, Output};

fn sagactl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sagactl"))
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn validate_accepts_the_repository_file() {
    let o = sagactl(&["topics", "validate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "topics.yaml: 44 topics, valid");
}

#[test]
fn validate_reports_file_line_field_and_hint() {
    let dir = std::env::temp_dir().join(format!("sagactl-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../topics.yaml"))
        .unwrap()
        .replacen("partitions: 6", "partitions: 4", 1);
    std::fs::write(&bad, text).unwrap();
    let o = sagactl(&["topics", "validate", "--file", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("bad.yaml:23: topics.booking.events.partitions: co-partitioning group \"booking\""), "{err}");
    assert!(err.contains("hint: topics joined by key must have the same number of partitions"), "{err}");

    let missing = dir.join("absent.yaml");
    let o = sagactl(&["topics", "validate", "--file", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("absent.yaml") && stderr(&o).contains("hint:"), "{}", stderr(&o));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn cluster_commands_without_a_cluster_say_how_to_get_one() {
    for args in [&["topics", "plan"][..], &["topics", "apply", "--dry-run"], &["events", "roundtrip"]] {
        let o = sagactl(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains("KAFKA_BOOTSTRAP_SERVERS") && err.contains("scripts/broker.sh start"), "{args:?}: {err}");
    }
}

#[test]
fn bad_replication_override_is_refused() {
    let o = sagactl(&["topics", "plan", "--replication-factor", "0", "--bootstrap-servers", "127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--replication-factor must be at least 1"), "{}", stderr(&o));
}
