//! How the simulated services put their records on the wire: in the format
//! `topics.yaml` declares for each topic (JSON, or Avro through the Schema
//! Registry, as the real services would), and how every record the
//! simulator reads is decoded, whichever format it arrived in.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sagastream_contract::{Decoded, Record};
use sagastream_registry::avro::AvroCodec;
use sagastream_registry::records::{self, RecordError};
use sagastream_topics::{ContentType, Topics};

/// How long a write waits out a registry that does not answer.
const REGISTRY_PATIENCE: Duration = Duration::from_secs(120);

#[derive(Debug, Default)]
pub struct Wire {
    codec: Option<AvroCodec>,
    /// `topics.yaml` name -> the cluster's name, for the Avro topics.
    avro: HashMap<String, String>,
}

impl Wire {
    /// The formats of `topics` (prefixed on the cluster by `prefix`); a
    /// registry is needed when any topic is Avro.
    pub fn new(topics: &Topics, prefix: &str, registry: Option<&str>) -> anyhow::Result<Wire> {
        let avro: HashMap<String, String> = topics
            .topics
            .iter()
            .filter(|t| t.content_type == ContentType::Avro)
            .map(|t| (t.name.clone(), format!("{prefix}{}", t.name)))
            .collect();
        let codec = match registry.filter(|r| !r.trim().is_empty()) {
            Some(url) => Some(AvroCodec::new(url).with_context(|| format!("the schema registry client for {url}"))?),
            None if avro.is_empty() => None,
            None => anyhow::bail!(
                "topics {:?} are `content_type: avro` and no schema registry is configured; set SCHEMA_REGISTRY_URL \
                 (or --schema-registry-url)",
                avro.keys().collect::<Vec<_>>()
            ),
        };
        Ok(Wire { codec, avro })
    }

    /// A record read from any topic.
    pub fn read(&self, record: &Record) -> Result<Decoded, RecordError> {
        records::read(self.codec.as_ref(), record, false)
    }

    /// A binary-mode JSON record for `topic` (its `topics.yaml` name), in
    /// the topic's format; waits for a registry that does not answer.
    pub fn write<'a>(&self, topic: &str, record: &'a Record) -> anyhow::Result<Cow<'a, Record>> {
        let (Some(codec), Some(physical)) = (&self.codec, self.avro.get(topic)) else {
            return Ok(Cow::Borrowed(record));
        };
        let started = Instant::now();
        loop {
            match records::transcode(codec, record, physical) {
                Ok(avro) => return Ok(Cow::Owned(avro)),
                Err(RecordError::RetryLater(why)) if started.elapsed() < REGISTRY_PATIENCE => {
                    tracing::warn!(reason = %why, "the schema registry does not answer; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => anyhow::bail!("writing a record to {topic} as Avro: {e}"),
            }
        }
    }
}
