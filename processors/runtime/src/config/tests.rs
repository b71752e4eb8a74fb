use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn spec() -> Spec {
    Spec {
        name: "probe",
        version: "0",
        inputs: vec!["runner.events"],
        outputs: vec!["probe.events"],
        changelog: Some("probe.changelog"),
        dlq: "probe.dlq",
        repartitions: Vec::new(),
    }
}

fn resolve(args: &[&str]) -> Result<Config, ConfigError> {
    let mut all = vec!["x", "--bootstrap-servers", "h:1", "--instance-id", "probe-0"];
    all.extend_from_slice(args);
    Config::resolve(&Cli::parse_from(all).runtime, &spec())
}

#[test]
fn defaults_and_derived_names() {
    let c = resolve(&["--topic-prefix", "t1."]).unwrap();
    assert_eq!(c.group_id, "t1.probe");
    assert_eq!(c.transactional_id, "t1.probe-probe-0");
    assert_eq!(c.physical("probe.dlq"), "t1.probe.dlq");
    assert_eq!(c.commit_interval, Duration::from_millis(100));
    assert_eq!(c.transaction_timeout, Duration::from_secs(10), "Kafka Streams' exactly-once default");
    assert!(matches!(c.input_order, InputOrder::EventTime { .. }), "a stateful processor interleaves by event time");
    let mut stateless = spec();
    stateless.changelog = None;
    let args = Cli::parse_from(["x", "--bootstrap-servers", "h:1", "--instance-id", "i-0"]).runtime;
    assert_eq!(Config::resolve(&args, &stateless).unwrap().input_order, InputOrder::Arrival, "nothing to join");
    let args =
        Cli::parse_from(["x", "--bootstrap-servers", "h:1", "--instance-id", "i-0", "--input-order", "event-time"]);
    assert!(matches!(Config::resolve(&args.runtime, &stateless).unwrap().input_order, InputOrder::EventTime { .. }));
    let c = resolve(&["-X", "security.protocol=SSL", "-X", "consumer.fetch.min.bytes=1"]).unwrap();
    assert_eq!(c.properties(Scope::Producer).collect::<Vec<_>>(), vec![("security.protocol", "SSL")]);
    assert_eq!(c.properties(Scope::Consumer).count(), 2);
}

#[test]
fn errors_say_what_and_how() {
    let e = resolve(&["-X", "isolation.level=read_uncommitted"]).unwrap_err().to_string();
    assert!(e.contains("isolation.level") && e.contains("read_committed"), "{e}");
    let e = resolve(&["-X", "nonsense"]).unwrap_err().to_string();
    assert!(e.contains("key=value"), "{e}");
    let cli = Cli::parse_from(["x", "--bootstrap-servers", "h:1", "--instance-id", "a b"]);
    let e = Config::resolve(&cli.runtime, &spec()).unwrap_err().to_string();
    assert!(e.contains("instance id"), "{e}");
    assert!(Cli::try_parse_from(["x", "--commit-interval", "fast"]).is_err());
    let e = resolve(&["--commit-interval", "5m"]).unwrap_err().to_string();
    assert!(e.contains("60s"), "{e}");
    let e = resolve(&["--transaction-timeout", "500ms"]).unwrap_err().to_string();
    assert!(e.contains("transaction timeout") && e.contains("10s is the default"), "{e}");
    let e = resolve(&["--commit-interval", "30s", "--transaction-timeout", "45s"]).unwrap_err().to_string();
    assert!(e.contains("twice the commit interval"), "{e}");
    assert!(resolve(&["--transaction-timeout", "20m"]).is_err(), "over the broker's 15m cap");
    assert_eq!(resolve(&["--transaction-timeout", "30s"]).unwrap().transaction_timeout, Duration::from_secs(30));
    let e = resolve(&["-X", "producer.transaction.timeout.ms=60000"]).unwrap_err().to_string();
    assert!(e.contains("--transaction-timeout"), "{e}");
}

#[test]
fn an_avro_output_needs_a_registry() {
    let yaml = EMBEDDED_TOPICS.replace("  probe.events:\n", "  probe.events:\n    content_type: avro\n");
    assert_ne!(yaml, EMBEDDED_TOPICS, "probe.events is declared");
    let dir = std::env::temp_dir().join(format!("sagastream-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("topics.yaml");
    std::fs::write(&file, yaml).unwrap();
    let file = file.to_str().unwrap();
    // An empty flag overrides SCHEMA_REGISTRY_URL, which `make test` sets.
    let e = resolve(&["--topics-file", file, "--schema-registry-url", ""]).unwrap_err().to_string();
    assert!(e.contains("probe.events") && e.contains("SCHEMA_REGISTRY_URL"), "{e}");
    let c = resolve(&["--topics-file", file, "--schema-registry-url", "http://r:8080/apis/ccompat/v7"]).unwrap();
    assert_eq!(c.schema_registry_url.as_deref(), Some("http://r:8080/apis/ccompat/v7"));
    let e = resolve(&["--schema-registry-url", "r:8080"]).unwrap_err().to_string();
    assert!(e.contains("http://"), "{e}");
    assert_eq!(resolve(&["--schema-registry-url", ""]).unwrap().schema_registry_url, None, "JSON outputs need none");
}

#[test]
fn topology_is_checked() {
    let topics = Topics::parse(EMBEDDED_TOPICS, "topics.yaml").unwrap();
    check_topology(&spec(), &topics).unwrap();
    let mut bad = spec();
    bad.changelog = Some("probe.dlq");
    assert!(check_topology(&bad, &topics).unwrap_err().to_string().contains("kind: changelog"));
    let mut bad = spec();
    bad.inputs = vec!["runner.events", "booking.events"];
    assert!(check_topology(&bad, &topics).unwrap_err().to_string().contains("co-partitioned"));
    let mut bad = spec();
    bad.outputs = vec!["nope.events"];
    assert!(check_topology(&bad, &topics).unwrap_err().to_string().contains("not declared"));
    // A stateless processor joins nothing by key: equal partition counts do.
    let mut stateless = spec();
    stateless.changelog = None;
    stateless.inputs = vec!["go4u.events", "korrectng.events", "runner.events"];
    check_topology(&stateless, &topics).unwrap();
    stateless.inputs = vec!["go4u.events", "probe.dlq"];
    let e = check_topology(&stateless, &topics).unwrap_err().to_string();
    assert!(e.contains("equal partition counts"), "{e}");
}

#[test]
fn repartitions_and_multi_aggregate_topics_are_checked() {
    let topics = Topics::parse(EMBEDDED_TOPICS, "topics.yaml").unwrap();
    let rekey = crate::Repartition {
        from: "inventory.events",
        to: "order.saga.inventory.repartition",
        key: |_| None,
        quick_key: None,
    };
    // payment.events is co-partitioned with order.events and with booking.events.
    let order = Spec {
        name: "order-saga",
        version: "0",
        inputs: vec!["order.events", "payment.events", "order.saga.inventory.repartition"],
        outputs: vec!["order.events"],
        changelog: Some("order.saga.changelog"),
        dlq: "order.saga.dlq",
        repartitions: vec![rekey],
    };
    check_topology(&order, &topics).unwrap();
    let mut bad = order.clone();
    bad.inputs.pop();
    let e = check_topology(&bad, &topics).unwrap_err().to_string();
    assert!(e.contains("kind: repartition") && e.contains("inputs"), "{e}");
    let mut bad = order.clone();
    bad.repartitions[0].to = "order.events";
    assert!(check_topology(&bad, &topics).unwrap_err().to_string().contains("kind: repartition"));
    let mut bad = order.clone();
    bad.inputs.push("runner.events");
    assert!(check_topology(&bad, &topics).unwrap_err().to_string().contains("co-partitioned"));
}

#[test]
fn a_state_dir_that_cannot_be_written_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    // A directory cannot be made under a file, whoever runs the test.
    let e = check_state_dir(&file.join("state")).unwrap_err().to_string();
    assert!(e.contains("state dir") && e.contains("cannot be written") && e.contains("hint"), "{e}");
    let ok = dir.path().join("state");
    check_state_dir(&ok).unwrap();
    assert_eq!(std::fs::read_dir(&ok).unwrap().count(), 0, "the write check leaves nothing behind");
}
