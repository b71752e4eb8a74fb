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
