//! Harness for the end-to-end tests: finds the cluster (or starts the local
//! broker through `scripts/broker.sh`) and the Schema Registry (or starts
//! the local one through `scripts/registry.sh`), applies `topics.yaml`, and
//! gives the Python interoperability peer. A test that needs a broker never passes
//! without one: failing to find or start it panics with the reason.

pub mod deploy;
pub mod peers;
pub mod probe;
pub mod seeds;
pub mod sim;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sagastream_kafka::{admin, ClientSettings, BOOTSTRAP_ENV};
use sagastream_topics::Topics;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the repository").to_owned()
}

fn run_script(script: &str, args: &[&str]) -> String {
    run_command(Command::new(repo_root().join(script)).args(args), &format!("{script} {args:?}"))
}

/// Runs a command to its end; its stdout, trimmed, or a panic with its stderr.
fn run_command(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(out.status.success(), "{what} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("script output is UTF-8").trim().to_owned()
}

/// The cluster the tests use, in order: `KAFKA_BOOTSTRAP_SERVERS`; with the
/// `testcontainers` feature and a Docker engine, an `apache/kafka`
/// container; else the local Apache Kafka, started if needed (and left
/// running for the next test run; `scripts/broker.sh stop` stops it).
pub fn bootstrap() -> &'static str {
    static BOOTSTRAP: OnceLock<String> = OnceLock::new();
    BOOTSTRAP.get_or_init(|| match std::env::var(BOOTSTRAP_ENV) {
        Ok(b) if !b.trim().is_empty() => b,
        _ => {
            #[cfg(feature = "testcontainers")]
            if let Some(b) = container::start() {
                return b;
            }
            let b = run_script("scripts/broker.sh", &["start"]);
            eprintln!("using the local Apache Kafka at {b}; `scripts/broker.sh stop` stops it");
            b
        }
    })
}

/// The Schema Registry the tests use (its Confluent-compatible API's URL):
/// `SCHEMA_REGISTRY_URL`, else the local Apicurio Registry, started if
/// needed (`scripts/registry.sh`; `scripts/test.sh` stops what it started).
pub fn schema_registry() -> &'static str {
    static REGISTRY: OnceLock<String> = OnceLock::new();
    REGISTRY.get_or_init(|| match std::env::var("SCHEMA_REGISTRY_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            let url = run_script("scripts/registry.sh", &["start"]);
            eprintln!("using the local Apicurio Registry at {url}; `scripts/registry.sh stop` stops it");
            url
        }
    })
}

/// The Apache Kafka release `scripts/kafka/pom.xml` pins, so a container
/// runs the same broker as the local one.
pub fn kafka_version() -> String {
    let pom = std::fs::read_to_string(repo_root().join("scripts/kafka/pom.xml")).expect("scripts/kafka/pom.xml");
    let start =
        pom.find("<kafka.version>").expect("<kafka.version> in scripts/kafka/pom.xml") + "<kafka.version>".len();
    pom[start..].split('<').next().unwrap_or_default().trim().to_owned()
}

#[cfg(feature = "testcontainers")]
mod container {
    use std::sync::Mutex;

    use testcontainers_modules::kafka::apache::{Kafka, KAFKA_PORT};
    use testcontainers_modules::testcontainers::runners::SyncRunner;
    use testcontainers_modules::testcontainers::{Container, ImageExt};

    /// Held for the whole test process. A static is never dropped, so the
    /// container outlives the run (docs/broker.md says how to remove it).
    static KAFKA: Mutex<Option<Container<Kafka>>> = Mutex::new(None);

    /// An `apache/kafka` container with the settings scripts/broker.sh uses
    /// for one node; None, with the reason, when no Docker engine answers.
    pub fn start() -> Option<String> {
        let settings = [
            ("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false"),
            ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
            ("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "1"),
            ("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1"),
            ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
            ("KAFKA_TRANSACTION_ABORT_TIMED_OUT_TRANSACTION_CLEANUP_INTERVAL_MS", "1000"),
            ("KAFKA_LOG_CLEANER_BACKOFF_MS", "1000"),
        ];
        let mut image = Kafka::default().with_jvm_image().with_tag(super::kafka_version());
        for (k, v) in settings {
            image = image.with_env_var(k, v);
        }
        let started = image.start().and_then(|c| Ok((c.get_host()?, c.get_host_port_ipv4(KAFKA_PORT)?, c)));
        match started {
            Ok((host, port, container)) => {
                *KAFKA.lock().unwrap_or_else(|e| e.into_inner()) = Some(container);
                eprintln!(
                    "using an apache/kafka:{} container at {host}:{port} (testcontainers)",
                    super::kafka_version()
                );
                Some(format!("{host}:{port}"))
            }
            Err(e) => {
                eprintln!("testcontainers: no apache/kafka container ({e}); using the local Apache Kafka instead");
                None
            }
        }
    }
}

pub fn settings(client_id: &str) -> ClientSettings {
    ClientSettings::new(bootstrap(), client_id)
}

/// Applies `topics.yaml` to the cluster (idempotent), with the replication
/// factor capped at the cluster size, and returns it.
pub async fn apply_repo_topics() -> Topics {
    apply_topics("").await
}

/// The same under a topic prefix, so a test gets topics of its own.
pub async fn apply_topics(prefix: &str) -> Topics {
    apply_topics_on(bootstrap(), prefix).await
}

/// [`apply_topics`] on a given cluster.
pub async fn apply_topics_on(bootstrap: &str, prefix: &str) -> Topics {
    let topics = Topics::load(&repo_root().join("topics.yaml")).unwrap_or_else(|e| panic!("{e}")).with_prefix(prefix);
    let admin = admin::admin_client(&ClientSettings::new(bootstrap, "e2e-admin")).unwrap();
    let (observed, brokers) = admin::observe(&admin, &topics).await.unwrap();
    let rf = topics.topics.iter().map(|t| t.replication_factor).max().unwrap_or(1).min(brokers as i32);
    let topics = topics.with_replication_factor(rf);
    let plan = sagastream_topics::plan(&topics, &observed);
    admin::create(&admin, &plan.to_create(), brokers).await.unwrap_or_else(|e| panic!("{e}"));
    topics
}

/// A local Apache Kafka cluster of this test's own (`scripts/broker.sh start
/// --brokers N` on its own ports), for tests that kill brokers, which only a
/// cluster the test owns allows; stopped when dropped.
pub struct Cluster {
    pub bootstrap: String,
    port: u16,
}

impl Cluster {
    pub fn start(brokers: u32, port: u16) -> Cluster {
        let cluster = Cluster { bootstrap: String::new(), port };
        let bootstrap = cluster.script(&["start", "--brokers", &brokers.to_string()]);
        Cluster { bootstrap, ..cluster }
    }

    fn script(&self, args: &[&str]) -> String {
        run_command(self.command().args(args), &format!("scripts/broker.sh {args:?} (port {})", self.port))
    }

    /// `scripts/broker.sh` on this cluster's ports, whatever cluster the environment names.
    fn command(&self) -> Command {
        let mut command = Command::new(repo_root().join("scripts/broker.sh"));
        command
            .env("SAGASTREAM_BROKER_PORT", self.port.to_string())
            .env_remove(BOOTSTRAP_ENV)
            .env_remove("SAGASTREAM_BROKER");
        command
    }

    /// kill -9 of one node (its `node.id`, 1-based).
    pub fn kill(&self, node: i32) {
        self.script(&["kill", &node.to_string()]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.bootstrap.is_empty() {
            let _ = self.command().arg("stop").status();
        }
    }
}

/// Whether the broker has Apache Kafka's transaction semantics: read_committed
/// never shows an aborted transaction's records, and a fenced or timed-out
/// producer's open transaction is aborted. True unless the broker declares
/// itself deviant: `SAGASTREAM_BROKER=tansu`, the old local broker
/// (docs/broker.md, appendix), where the few tests that branch on this
/// assert the weaker guarantee (every duplicate is a byte-identical twin and
/// the state counted each input once) and the rest may fail.
pub fn strict_broker() -> bool {
    std::env::var("SAGASTREAM_BROKER").map_or(true, |b| b != "tansu")
}

/// The venv's Python with confluent-kafka and the CloudEvents SDK.
pub fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| run_script("scripts/pyenv.sh", &[]))
}

/// `scripts/nodeenv.sh`: the directory holding the Node peers' node_modules.
pub fn run_node_env() -> &'static str {
    static NODE: OnceLock<String> = OnceLock::new();
    NODE.get_or_init(|| run_script("scripts/nodeenv.sh", &[]))
}

/// Runs `tests/interop/ce_sdk.py` with the arguments; returns its stdout as JSON.
pub fn python_peer(args: &[&str]) -> serde_json::Value {
    let script = repo_root().join("tests/interop/ce_sdk.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .env(BOOTSTRAP_ENV, bootstrap())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(out.status.success(), "ce_sdk.py {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ce_sdk.py printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The partition the Java producer's default partitioner picks for a key
/// (checked against values printed by kafka-clients in its own unit test).
pub use sagastream_kafka::java_partition;

/// A Schema Registry of a test's own, which the test may stop and start:
/// the local Apicurio on its own port with file storage, so a restart
/// keeps every schema and its id (as a production registry's storage
/// does). Stopped and wiped when dropped. It ignores `SCHEMA_REGISTRY_URL`:
/// a registry someone else runs cannot be stopped.
pub struct OwnRegistry {
    port: u16,
}

impl OwnRegistry {
    pub fn start(port: u16) -> OwnRegistry {
        let registry = OwnRegistry { port };
        registry.script("stop");
        registry.script("wipe");
        registry.script("start");
        registry
    }

    /// Its Confluent-compatible API.
    pub fn url(&self) -> String {
        self.script("url")
    }

    pub fn stop(&self) {
        self.script("stop");
    }

    /// Starts it again, on the storage it had.
    pub fn restart(&self) {
        self.script("start");
    }

    fn script(&self, command: &str) -> String {
        run_command(
            Command::new(repo_root().join("scripts/registry.sh"))
                .arg(command)
                .env_remove("SCHEMA_REGISTRY_URL")
                .env("SAGASTREAM_REGISTRY_PORT", self.port.to_string())
                .env("SAGASTREAM_REGISTRY_STORAGE", "file"),
            &format!("scripts/registry.sh {command} (port {})", self.port),
        )
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            self.script("stop");
            self.script("wipe");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_kafka_version_is_read_from_the_maven_descriptor() {
        let v = kafka_version();
        assert!(v.starts_with("4.") && v.split('.').count() == 3, "{v:?}");
        assert!(std::fs::read_to_string(repo_root().join("scripts/broker.sh")).unwrap().contains("kafka.version"));
    }
}
