use rdkafka::ClientConfig;

use crate::KafkaError;

/// The environment variable that points every binary, script and test at a cluster.
pub const BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP_SERVERS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub bootstrap_servers: String,
    pub client_id: String,
}

impl ClientSettings {
    pub fn new(bootstrap_servers: impl Into<String>, client_id: impl Into<String>) -> Self {
        ClientSettings { bootstrap_servers: bootstrap_servers.into(), client_id: client_id.into() }
    }

    /// The explicit value if given, else `KAFKA_BOOTSTRAP_SERVERS`.
    pub fn resolve(explicit: Option<String>, client_id: &str) -> Result<Self, KafkaError> {
        explicit
            .or_else(|| std::env::var(BOOTSTRAP_ENV).ok())
            .filter(|s| !s.trim().is_empty())
            .map(|b| ClientSettings::new(b, client_id))
            .ok_or(KafkaError::NoBootstrap)
    }

    pub fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers).set("client.id", &self.client_id);
        c
    }

    /// Idempotent producer whose partitioner matches the Java client's, so a
    /// key lands on the same partition whichever client wrote it.
    pub fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("partitioner", "murmur2_random")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
        c
    }

    /// A consumer that only sees committed transactions and commits nothing by itself.
    pub fn consumer(&self, group_id: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group_id)
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000");
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_uses_java_compatible_partitioner() {
        let s = ClientSettings::new("127.0.0.1:1", "t");
        assert_eq!(s.producer().get("partitioner"), Some("murmur2_random"));
        assert_eq!(s.consumer("g").get("isolation.level"), Some("read_committed"));
        assert_eq!(ClientSettings::resolve(Some("h:1".into()), "t").unwrap().bootstrap_servers, "h:1");
    }
}
