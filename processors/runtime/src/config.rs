//! Configuration from flags and environment (12-factor): every flag has an
//! environment variable, validation reports what is wrong and how to fix it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sagastream_kafka::{parse_property, ClientSettings};
use sagastream_topics::{parse_retention, ContentType, Topic, TopicKind, Topics, TopicsError};

use crate::hooks::TestHooks;
use crate::order::InputOrder;
use crate::processor::Spec;

/// The `topics.yaml` this binary was built with; `--topics-file` overrides it.
pub const EMBEDDED_TOPICS: &str = include_str!("../../../topics.yaml");

/// Flags every processor binary accepts (flatten into its own clap parser).
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// This instance's stable name (the StatefulSet pod name); defaults to $HOSTNAME.
    /// The transactional.id is `<group>-<instance>`, so a restarted instance fences its predecessor.
    #[arg(long, env = "SAGASTREAM_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Consumer group; defaults to the topic prefix plus the processor name.
    #[arg(long, env = "SAGASTREAM_GROUP_ID")]
    pub group_id: Option<String>,
    /// Prefix for every topic name (one cluster shared by environments or tests).
    #[arg(long, env = "SAGASTREAM_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// topics.yaml to use instead of the one built into the binary.
    #[arg(long, env = "SAGASTREAM_TOPICS_FILE")]
    pub topics_file: Option<PathBuf>,
    /// Commit a transaction at least this often (e.g. 100ms, 1s).
    #[arg(long, env = "SAGASTREAM_COMMIT_INTERVAL", default_value = "100ms", value_parser = parse_duration)]
    pub commit_interval: Duration,
    /// ...or after this many inputs, whichever comes first.
    #[arg(long, env = "SAGASTREAM_COMMIT_MAX_RECORDS", default_value_t = 10_000)]
    pub commit_max_records: usize,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "SAGASTREAM_METRICS_ADDR", default_value = "0.0.0.0:9464")]
    pub metrics_addr: SocketAddr,
    /// Input ids remembered per key to drop redelivered duplicates.
    #[arg(long, env = "SAGASTREAM_DEDUP_WINDOW", default_value_t = 32)]
    pub dedup_window: usize,
    /// librdkafka property for every client, or only for the `consumer.` or `producer.`
    /// when so prefixed (TLS, SASL, tuning). Repeatable; the variable takes `;`-separated pairs.
    #[arg(
        short = 'X',
        long = "kafka-property",
        env = "SAGASTREAM_KAFKA_PROPERTIES",
        value_delimiter = ';',
        hide_env_values = true
    )]
    pub kafka_properties: Vec<String>,
    /// transaction.timeout.ms: how long the broker lets a transaction stay open
    /// before it aborts it. It bounds how long a crashed or hung instance's open
    /// transaction holds back the next owner's restore and every read_committed
    /// reader of its outputs (Kafka Streams uses 10s under exactly-once). Must
    /// be longer than the commit interval and at most the broker's
    /// transaction.max.timeout.ms (15m by default).
    #[arg(long, env = "SAGASTREAM_TRANSACTION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub transaction_timeout: Duration,
    /// How the inputs of one partition number (booking.events[3] and
    /// payment.events[3]) are interleaved: `event-time` processes the record
    /// with the smallest timestamp first, so history read from topics that
    /// already hold it is processed as it happened live; `arrival` takes
    /// records as the consumer returns them. Default: `event-time`, or
    /// `arrival` for a stateless processor, which joins nothing.
    #[arg(long, env = "SAGASTREAM_INPUT_ORDER", value_enum)]
    pub input_order: Option<InputOrderArg>,
    /// Under event-time order: how long an input partition with nothing
    /// buffered, not yet known to be read to its end, may hold back the other
    /// inputs of its partition number (Kafka Streams' max.task.idle.ms).
    #[arg(long, env = "SAGASTREAM_MAX_TASK_IDLE", default_value = "500ms", value_parser = parse_duration)]
    pub max_task_idle: Duration,
    /// The Schema Registry's Confluent-compatible API (e.g.
    /// http://registry:8080/apis/ccompat/v7): Avro inputs are read through it,
    /// and it is required when an output topic is `content_type: avro`.
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    pub schema_registry_url: Option<String>,
    /// A directory the instance keeps on its own disk (a StatefulSet's
    /// volume): each owned partition's state is written there at a clean
    /// stop, so the next start reads only the changelog written after it.
    /// Unset: every start restores from the changelog.
    #[arg(long, env = "SAGASTREAM_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Longest wait between retries after a transient error.
    #[arg(long, env = "SAGASTREAM_RETRY_BACKOFF_MAX", default_value = "30s", value_parser = parse_duration)]
    pub retry_backoff_max: Duration,
    /// Test hook: fail the first transaction that has produced this many outputs.
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, env = "SAGASTREAM_TEST_FAIL_AFTER_OUTPUTS")]
    pub test_fail_after_outputs: Option<usize>,
    /// Test hook: after this many outputs in all, flush and hang with the transaction open.
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, env = "SAGASTREAM_TEST_HANG_AFTER_OUTPUTS")]
    pub test_hang_after_outputs: Option<usize>,
    /// Test hook: fail the transaction that writes the Nth re-keyed record, right after writing it.
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, env = "SAGASTREAM_TEST_FAIL_AFTER_REPARTITION")]
    pub test_fail_after_repartition: Option<usize>,
    /// Test hook: the first this many attempts to take up an assignment fail
    /// as transient errors (as a changelog leader not known yet does).
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, env = "SAGASTREAM_TEST_FAIL_ASSIGNMENTS")]
    pub test_fail_assignments: Option<usize>,
    /// Test hook: every Nth commit fails just before EndTxn, with the
    /// offsets sent and the records acknowledged (in the background too).
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, env = "SAGASTREAM_TEST_FAIL_EVERY_COMMIT")]
    pub test_fail_every_commit: Option<usize>,
    /// Test hook: a restore waits this long after each changelog record it reads.
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, env = "SAGASTREAM_TEST_RESTORE_RECORD_DELAY_MS")]
    pub test_restore_record_delay_ms: Option<u64>,
}

/// `--input-order`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputOrderArg {
    EventTime,
    Arrival,
}

/// `100ms`, `5s`, `2m`, `1h`: what every duration flag accepts.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match parse_retention(text)? {
        ms if ms > 0 => Ok(Duration::from_millis(ms as u64)),
        _ => Err(format!("{text:?} is not a positive duration such as 100ms, 5s or 2m")),
    }
}

/// [`parse_duration`] as the event-clock span a processor adds to event times.
pub fn parse_time_delta(text: &str) -> Result<chrono::TimeDelta, String> {
    let d = parse_duration(text)?;
    chrono::TimeDelta::from_std(d).map_err(|_| format!("{text:?} is too long"))
}

/// Which clients a passthrough property applies to.
pub use sagastream_kafka::Scope;

/// Properties the runtime sets itself; overriding them would break exactly-once.
const OWNED_PROPERTIES: &[(&str, &str)] = &[
    ("bootstrap.servers", "use --bootstrap-servers"),
    ("group.id", "use --group-id"),
    ("transactional.id", "it is <group>-<instance>; use --instance-id"),
    ("enable.idempotence", "transactions need it on"),
    ("isolation.level", "the runtime reads read_committed"),
    ("enable.auto.commit", "offsets are committed inside transactions"),
    ("enable.auto.offset.store", "offsets are committed inside transactions"),
    ("partition.assignment.strategy", "co-partitioned inputs need the range assignor"),
    ("enable.partition.eof", "the runtime manages it"),
    ("transaction.timeout.ms", "use --transaction-timeout"),
];

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: ClientSettings,
    pub instance_id: String,
    pub group_id: String,
    pub transactional_id: String,
    pub topic_prefix: String,
    pub topics: Topics,
    pub commit_interval: Duration,
    pub commit_max_records: usize,
    pub transaction_timeout: Duration,
    pub metrics_addr: SocketAddr,
    pub dedup_window: usize,
    pub input_order: InputOrder,
    pub properties: Vec<(Scope, String, String)>,
    pub retry_backoff_max: Duration,
    /// Where Avro schemas are looked up and registered (`None`: no Avro).
    pub schema_registry_url: Option<String>,
    /// Where state snapshots are kept (`None`: none are).
    pub state_dir: Option<PathBuf>,
    /// Injected failures for the end-to-end tests (the `test-hooks` feature).
    pub hooks: TestHooks,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no Kafka cluster configured\n  hint: set KAFKA_BOOTSTRAP_SERVERS or --bootstrap-servers (e.g. 127.0.0.1:9092)"
    )]
    NoBootstrap,
    #[error("no instance id: --instance-id / SAGASTREAM_INSTANCE_ID and $HOSTNAME are unset\n  hint: on Kubernetes run as a StatefulSet so $HOSTNAME is the stable pod name")]
    NoInstance,
    #[error("{what} {value:?} is invalid: {reason}\n  hint: {hint}")]
    Invalid { what: &'static str, value: String, reason: String, hint: String },
    #[error("kafka property {0:?} is not `key=value`\n  hint: write -X security.protocol=SSL (or SAGASTREAM_KAFKA_PROPERTIES=\"a=1;b=2\")")]
    PropertySyntax(String),
    #[error("kafka property {key:?} is set by the runtime: {why}")]
    PropertyOwned { key: String, why: &'static str },
    #[error("reading topics: {0}")]
    Topics(#[from] TopicsError),
    #[error("{processor}: topic {topic:?} {problem}\n  hint: {hint}")]
    Topology { processor: &'static str, topic: String, problem: String, hint: String },
}

impl Config {
    pub fn resolve(args: &RuntimeArgs, spec: &Spec) -> Result<Config, ConfigError> {
        let bootstrap =
            args.bootstrap_servers.clone().filter(|s| !s.trim().is_empty()).ok_or(ConfigError::NoBootstrap)?;
        let instance_id = args
            .instance_id
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|s| !s.trim().is_empty())
            .ok_or(ConfigError::NoInstance)?;
        check_name("instance id", &instance_id)?;
        let prefix = args.topic_prefix.clone();
        if !prefix.is_empty() {
            check_name("topic prefix", &prefix)?;
        }
        let group_id = args.group_id.clone().unwrap_or_else(|| format!("{prefix}{}", spec.name));
        check_name("group id", &group_id)?;
        if args.commit_interval > Duration::from_secs(60) {
            return Err(invalid(
                "commit interval",
                format!("{:?}", args.commit_interval),
                "longer than 60s",
                "transactions stay open that long and hold back read_committed readers; 100ms is the default",
            ));
        }
        // A transaction lives a commit interval plus the commit itself; the
        // timeout needs room above that, and 15m is the broker's default cap.
        let floor = (args.commit_interval * 2).max(Duration::from_secs(1));
        if args.transaction_timeout < floor || args.transaction_timeout > Duration::from_secs(900) {
            return Err(invalid(
                "transaction timeout",
                format!("{:?}", args.transaction_timeout),
                &format!("must be between {floor:?} (twice the commit interval, at least 1s) and 15m"),
                "10s is the default: long enough for a commit, short enough that a dead instance's open \
                 transaction stalls its successor only briefly",
            ));
        }
        if !(1..=1_000_000).contains(&args.commit_max_records) {
            return Err(invalid(
                "commit max records",
                args.commit_max_records.to_string(),
                "must be 1..=1000000",
                "10000 is the default",
            ));
        }
        if !(1..=10_000).contains(&args.dedup_window) {
            return Err(invalid(
                "dedup window",
                args.dedup_window.to_string(),
                "must be 1..=10000",
                "32 ids per key is the default",
            ));
        }
        if args.max_task_idle > Duration::from_secs(60) {
            return Err(invalid(
                "max task idle",
                format!("{:?}", args.max_task_idle),
                "longer than 60s",
                "a partition with no data to read would hold its partition number's other inputs back that \
                 long; 500ms is the default",
            ));
        }
        let stateless = spec.changelog.is_none();
        let input_order = match args.input_order {
            Some(InputOrderArg::EventTime) => InputOrder::EventTime { max_idle: args.max_task_idle },
            Some(InputOrderArg::Arrival) => InputOrder::Arrival,
            None if stateless => InputOrder::Arrival,
            None => InputOrder::EventTime { max_idle: args.max_task_idle },
        };
        let mut properties = Vec::new();
        for p in &args.kafka_properties {
            let parsed = parse_property(p).map_err(|bad| ConfigError::PropertySyntax(bad.into()))?;
            let Some((scope, key, value)) = parsed else { continue };
            if let Some((_, why)) = OWNED_PROPERTIES.iter().find(|(o, _)| *o == key) {
                return Err(ConfigError::PropertyOwned { key: key.into(), why });
            }
            properties.push((scope, key.to_owned(), value.to_owned()));
        }
        let topics = match &args.topics_file {
            Some(path) => Topics::load(path)?,
            None => Topics::parse(EMBEDDED_TOPICS, "topics.yaml (built in)")?,
        };
        check_topology(spec, &topics)?;
        let schema_registry_url = args.schema_registry_url.clone().filter(|u| !u.trim().is_empty());
        if let Some(url) = &schema_registry_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "schema registry url",
                    url.clone(),
                    "is not an http:// or https:// URL",
                    "give the registry's Confluent-compatible API, e.g. http://127.0.0.1:8080/apis/ccompat/v7",
                ));
            }
        }
        let avro_output =
            spec.outputs.iter().find(|t| topics.get(t).is_some_and(|t| t.content_type == ContentType::Avro));
        if let (Some(topic), None) = (avro_output, &schema_registry_url) {
            return Err(ConfigError::Topology {
                processor: spec.name,
                topic: (*topic).into(),
                problem: "is `content_type: avro` in topics.yaml and no schema registry is configured".into(),
                hint: "set SCHEMA_REGISTRY_URL (or --schema-registry-url) to the registry's Confluent-compatible API, \
                       or declare the topic `content_type: json`"
                    .into(),
            });
        }
        let state_dir = args.state_dir.clone().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = &state_dir {
            check_state_dir(dir)?;
        }
        Ok(Config {
            schema_registry_url,
            state_dir,
            settings: ClientSettings::new(bootstrap, format!("{group_id}-{instance_id}")),
            transactional_id: format!("{group_id}-{instance_id}"),
            instance_id,
            group_id,
            topic_prefix: prefix,
            topics,
            commit_interval: args.commit_interval,
            commit_max_records: args.commit_max_records,
            transaction_timeout: args.transaction_timeout,
            metrics_addr: args.metrics_addr,
            dedup_window: args.dedup_window,
            input_order,
            properties,
            retry_backoff_max: args.retry_backoff_max,
            hooks: TestHooks::from_args(args),
        })
    }

    /// The cluster's name for a `topics.yaml` topic.
    pub fn physical(&self, topic: &str) -> String {
        format!("{}{topic}", self.topic_prefix)
    }

    pub fn topic(&self, name: &str) -> &Topic {
        self.topics.get(name).expect("topology checked at startup")
    }

    pub fn properties(&self, scope: Scope) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .filter(move |(s, _, _)| *s == Scope::All || *s == scope)
            .map(|(_, k, v)| (k.as_str(), v.as_str()))
    }
}

fn invalid(what: &'static str, value: String, reason: &str, hint: &str) -> ConfigError {
    ConfigError::Invalid { what, value, reason: reason.into(), hint: hint.into() }
}

/// The state directory can be created and written, so a snapshot that
/// cannot be kept is found at startup and not at the next clean stop.
fn check_state_dir(dir: &std::path::Path) -> Result<(), ConfigError> {
    let shown = dir.display().to_string();
    let probe = dir.join(".sagastream-write-check");
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    result.map_err(|e| {
        invalid(
            "state dir",
            shown,
            &format!("cannot be written: {e}"),
            "give a directory this user may create and write (a StatefulSet's volume), or unset SAGASTREAM_STATE_DIR",
        )
    })
}

fn check_name(what: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.len() > 200 || !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(invalid(what, value.into(), "use at most 200 of [a-zA-Z0-9._-]", "e.g. escrow-saga-0"));
    }
    Ok(())
}

/// The processor's topics exist in `topics.yaml` with the right kinds and
/// partitioning, so a wrong file fails at startup and not mid-stream.
pub fn check_topology(spec: &Spec, topics: &Topics) -> Result<(), ConfigError> {
    let problem = |topic: &str, problem: String, hint: &str| ConfigError::Topology {
        processor: spec.name,
        topic: topic.into(),
        problem,
        hint: hint.into(),
    };
    let get = |name: &str, role: &str| {
        topics.get(name).ok_or_else(|| {
            problem(
                name,
                format!("({role}) is not declared in topics.yaml"),
                "declare it, then run `sagactl topics apply`",
            )
        })
    };
    let first = get(spec.inputs.first().copied().unwrap_or("<none>"), "input")?;
    let mut groups: Vec<&String> = first.copartition_groups.iter().collect();
    for name in spec.inputs.iter().skip(1) {
        let t = get(name, "input")?;
        groups.retain(|g| t.copartition_groups.contains(g));
        // Without state nothing is joined by key; the loop still works by
        // partition number, which equal counts keep on one member.
        if spec.changelog.is_none() && t.partitions != first.partitions {
            return Err(problem(
                name,
                format!("has {} partitions but the input {} has {}", t.partitions, first.name, first.partitions),
                "the inputs of a stateless processor need equal partition counts",
            ));
        }
        if spec.changelog.is_some() && (t.partitions != first.partitions || groups.is_empty()) {
            return Err(problem(
                name,
                format!("is not co-partitioned with {}", first.name),
                "inputs of one processor share a copartition_group (same key, same partition count)",
            ));
        }
    }
    for name in &spec.outputs {
        get(name, "output")?;
    }
    let dlq = get(spec.dlq, "dlq")?;
    if dlq.kind != TopicKind::Dlq {
        return Err(problem(spec.dlq, "is not `kind: dlq`".into(), "give the processor its own DLQ topic"));
    }
    if let Some(name) = spec.changelog {
        let c = get(name, "changelog")?;
        if c.kind != TopicKind::Changelog {
            return Err(problem(name, "is not `kind: changelog`".into(), "a state changelog is compacted and private"));
        }
        if c.partitions != first.partitions {
            return Err(problem(
                name,
                format!("has {} partitions but its input {} has {}", c.partitions, first.name, first.partitions),
                "a changelog is partitioned like its input: partition p holds the state of input partition p",
            ));
        }
    }
    for r in &spec.repartitions {
        get(r.from, "repartition source")?;
        let to = get(r.to, "repartition topic")?;
        if to.kind != TopicKind::Repartition || !spec.inputs.contains(&r.to) {
            return Err(problem(
                r.to,
                format!("re-keys {} but is not a `kind: repartition` input of {}", r.from, spec.name),
                "declare it `kind: repartition`, co-partitioned with the other inputs, and list it among the inputs",
            ));
        }
        if spec.inputs.contains(&r.from) {
            return Err(problem(
                r.from,
                "is both an input and a repartition source".into(),
                "a source is read only to be re-keyed; the processor sees its records on the repartition topic",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
