use std::collections::BTreeMap;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use sagastream_e2e::{apply_repo_topics, settings};
use sagastream_kafka::admin;
use sagastream_topics::{plan, Action, Topics};

fn unique_file(prefix: &str) -> String {
    format!(
        "version: 1\ndefaults:\n  replication_factor: 1\n  retention: 2d\ntopics:\n  {prefix}.a:\n    description: A\n    kind: domain\n    partitions: 3\n    key: id\n    owner: e2e\n    copartition_group: g\n  {prefix}.b:\n    description: B\n    kind: domain\n    partitions: 3\n    key: id\n    owner: e2e\n    copartition_group: g\n  {prefix}.c:\n    description: C\n    kind: changelog\n    cleanup_policy: compact\n    partitions: 2\n    key: id\n    owner: e2e\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_creates_missing_topics_once_then_reports_drift_and_never_alters() {
    let prefix = format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let desired = Topics::parse(&unique_file(&prefix), "e2e.yaml").unwrap();
    let admin = admin::admin_client(&settings("e2e-topics")).unwrap();

    // Someone created `.b` by hand with the wrong partition count.
    let b = format!("{prefix}.b");
    let wrong = NewTopic::new(&b, 5, TopicReplication::Fixed(1));
    admin.create_topics([&wrong], &AdminOptions::new()).await.unwrap()[0].as_ref().unwrap();
    admin::wait_until_ready(&admin, &[&b], std::time::Duration::from_secs(30)).await.unwrap();

    let (observed, brokers) = admin::observe(&admin, &desired).await.unwrap();
    let first = plan(&desired, &observed);
    let created: Vec<&str> = first.to_create().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(created, [format!("{prefix}.a"), format!("{prefix}.c")]);
    assert_eq!(first.drifted(), 1, "{first}");
    admin::create(&admin, &first.to_create(), brokers).await.unwrap();

    let (observed, _) = admin::observe(&admin, &desired).await.unwrap();
    for name in ["a", "c"] {
        let o = &observed[&format!("{prefix}.{name}")];
        assert_eq!(o.partitions, desired.get(&o.name).unwrap().partitions, "{name} created as declared");
        // Where the broker reports configs, they must be what we asked for.
        for (k, v) in desired.get(&o.name).unwrap().broker_configs() {
            if let Some(have) = o.configs.get(&k) {
                assert_eq!(have, &v, "{}: {k}", o.name);
            }
        }
    }
    let second = plan(&desired, &observed);
    assert!(second.to_create().is_empty(), "apply is idempotent: {second}");
    let drift: BTreeMap<&str, _> = second
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Drifted { name, drifts, .. } => Some((name.as_str(), drifts)),
            _ => None,
        })
        .collect();
    let b = drift.get(format!("{prefix}.b").as_str()).expect("the hand-made topic drifts");
    assert!(b.iter().any(|d| d.field == "partitions" && d.desired == "3" && d.actual == "5"), "{b:?}");
    assert_eq!(observed[&format!("{prefix}.b")].partitions, 5, "drift is reported, never fixed by altering");
}

#[tokio::test(flavor = "multi_thread")]
async fn repository_topics_yaml_applies_and_is_then_up_to_date() {
    let topics = apply_repo_topics().await;
    let again = apply_repo_topics().await;
    assert_eq!(topics, again);
    let admin = admin::admin_client(&settings("e2e-topics-repo")).unwrap();
    let (observed, _) = admin::observe(&admin, &topics).await.unwrap();
    let p = plan(&topics, &observed);
    assert!(p.to_create().is_empty(), "{p}");
    for t in &topics.topics {
        assert_eq!(observed[&t.name].partitions, t.partitions, "{}", t.name);
    }
}

/// The chart's topics Job: `sagactl topics apply --fail-on-drift` creates
/// what is missing, then fails on a topic that differs from the file;
/// without the flag the same drift is only reported.
#[tokio::test(flavor = "multi_thread")]
async fn sagactl_apply_fails_on_drift_only_when_asked() {
    let prefix = format!("e2e-drift-{}.", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let admin = admin::admin_client(&settings("e2e-topics")).unwrap();
    let hand_made = format!("{prefix}booking.events");
    let wrong = NewTopic::new(&hand_made, 5, TopicReplication::Fixed(1));
    admin.create_topics([&wrong], &AdminOptions::new()).await.unwrap()[0].as_ref().unwrap();
    admin::wait_until_ready(&admin, &[&hand_made], std::time::Duration::from_secs(30)).await.unwrap();
    let sagactl = sagastream_e2e::probe::binary("sagactl", "sagactl");
    let apply =
        |fail_on_drift: bool| {
            let mut c = std::process::Command::new(&sagactl);
            c.current_dir(sagastream_e2e::repo_root())
                .env("KAFKA_BOOTSTRAP_SERVERS", sagastream_e2e::bootstrap())
                .args(["topics", "apply", "--replication-factor", "1", "--prefix", &prefix]);
            if fail_on_drift {
                c.arg("--fail-on-drift");
            }
            c.output().unwrap()
        };
    let strict = apply(true);
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(!strict.status.success(), "drift fails the Job: {stderr}");
    assert!(stderr.contains("1 topic(s) drifted"), "{stderr}");
    let stdout = String::from_utf8_lossy(&strict.stdout);
    assert!(stdout.contains("applied: created"), "what was missing is created first: {stdout}");
    let lenient = apply(false);
    assert!(lenient.status.success(), "{}", String::from_utf8_lossy(&lenient.stderr));
    assert!(String::from_utf8_lossy(&lenient.stdout).contains("1 topic(s) drifted"));
}
