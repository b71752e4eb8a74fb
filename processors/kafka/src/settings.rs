use rdkafka::ClientConfig;

use crate::KafkaError;

/// The environment variable that points every binary, script and test at a cluster.
pub const BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP_SERVERS";

/// Which clients a passthrough property applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Consumer,
    Producer,
}

/// One `-X` passthrough property, `key=value`: a key starting with
/// `consumer.` or `producer.` reaches only those clients. `None` for a
/// blank entry (a trailing `;`); the error is the entry that is not
/// `key=value`.
pub fn parse_property(pair: &str) -> Result<Option<(Scope, &str, &str)>, &str> {
    let pair = pair.trim();
    if pair.is_empty() {
        return Ok(None);
    }
    let (k, v) = pair.split_once('=').ok_or(pair)?;
    let (scope, key) = match k.trim() {
        k if k.starts_with("consumer.") => (Scope::Consumer, &k["consumer.".len()..]),
        k if k.starts_with("producer.") => (Scope::Producer, &k["producer.".len()..]),
        k => (Scope::All, k),
    };
    if key.is_empty() {
        return Err(pair);
    }
    Ok(Some((scope, key, v.trim())))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub bootstrap_servers: String,
    pub client_id: String,
    /// librdkafka properties on top of ours (TLS, SASL), by the clients
    /// they reach ([`parse_property`]).
    pub properties: Vec<(Scope, String, String)>,
}

impl ClientSettings {
    pub fn new(bootstrap_servers: impl Into<String>, client_id: impl Into<String>) -> Self {
        ClientSettings {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: client_id.into(),
            properties: Vec::new(),
        }
    }

    /// Adds `key=value` properties ([`parse_property`]); the error names
    /// the one that is not.
    pub fn with_properties<S: AsRef<str>>(mut self, pairs: &[S]) -> Result<Self, KafkaError> {
        for pair in pairs {
            let parsed = parse_property(pair.as_ref()).map_err(|bad| KafkaError::BadProperty(bad.to_owned()))?;
            if let Some((scope, k, v)) = parsed {
                self.properties.push((scope, k.to_owned(), v.to_owned()));
            }
        }
        Ok(self)
    }

    /// Sets the properties that reach a client of `scope` (`All`: only the
    /// unscoped ones, for a client that is neither consumer nor producer).
    fn apply(&self, c: &mut ClientConfig, scope: Scope) {
        for (s, k, v) in &self.properties {
            if *s == Scope::All || *s == scope {
                c.set(k, v);
            }
        }
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
        self.apply(&mut c, Scope::All);
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
        self.apply(&mut c, Scope::Producer);
        c
    }

    /// A consumer that only sees committed transactions and commits nothing by itself.
    ///
    /// `fetch.wait.max.ms` is 20 (librdkafka: 500). Measured at half the
    /// escrow saga's maximum rate, which reads its own outputs' topic: with
    /// 500, records that a commit had made visible waited for a parked fetch
    /// to come back, and p99 end to end was 819 ms; with 20 it was 307 ms
    /// (docs/benchmarks.md). An idle consumer asks each broker 50 times a
    /// second instead of twice.
    pub fn consumer(&self, group_id: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group_id)
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("fetch.wait.max.ms", "20");
        self.apply(&mut c, Scope::Consumer);
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
        assert_eq!(s.consumer("g").get("fetch.wait.max.ms"), Some("20"));
        assert_eq!(ClientSettings::resolve(Some("h:1".into()), "t").unwrap().bootstrap_servers, "h:1");
    }

    /// The build links OpenSSL: a client for SASL over TLS can be created
    /// (without `ssl`, librdkafka refuses these values).
    #[test]
    fn tls_and_sasl_clients_can_be_configured() {
        let s = ClientSettings::new("127.0.0.1:1", "t")
            .with_properties(&[
                "security.protocol=SASL_SSL",
                "sasl.mechanism=SCRAM-SHA-512",
                "sasl.username=u",
                "sasl.password=p",
            ])
            .unwrap();
        let producer: Result<rdkafka::producer::BaseProducer, _> = s.producer().create();
        assert!(producer.is_ok(), "{:?}", producer.err());
    }

    #[test]
    fn properties_reach_every_client_or_only_their_scope() {
        let s = ClientSettings::new("127.0.0.1:1", "t")
            .with_properties(&["security.protocol=SSL", "consumer.fetch.min.bytes=9", "producer.linger.ms=1", ""])
            .unwrap();
        let (base, consumer, producer) = (s.base(), s.consumer("g"), s.producer());
        assert_eq!(base.get("security.protocol"), Some("SSL"));
        assert_eq!((base.get("fetch.min.bytes"), base.get("linger.ms")), (None, None));
        assert_eq!((consumer.get("security.protocol"), consumer.get("fetch.min.bytes")), (Some("SSL"), Some("9")));
        assert_eq!((producer.get("linger.ms"), producer.get("fetch.min.bytes")), (Some("1"), None));
        let e = ClientSettings::new("h:1", "t").with_properties(&["nonsense"]).unwrap_err().to_string();
        assert!(e.contains("nonsense") && e.contains("key=value"), "{e}");
    }
}
