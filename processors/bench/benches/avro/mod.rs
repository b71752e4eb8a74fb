//! The escrow saga's inputs on Avro topics: `booking.events` and
//! `payment.events` declared `content_type: avro` in a copy of topics.yaml,
//! the same records transcoded to Avro through the Schema Registry before
//! the clock starts (what the services would write), and their sizes beside
//! the JSON ones.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};
use sagastream_contract::Record;
use sagastream_registry::avro::AvroCodec;
use sagastream_registry::records;

/// The topics the Avro run declares Avro: the saga's inputs, and so its
/// own booking.completed too.
const AVRO_TOPICS: [&str; 2] = ["booking.events", "payment.events"];

/// What the saga needs to run on Avro topics.
pub struct Avro {
    pub registry: String,
    pub topics_file: PathBuf,
    pub codec: AvroCodec,
}

impl Avro {
    /// `SCHEMA_REGISTRY_URL`, or the local Apicurio that
    /// `scripts/registry.sh start` starts (left running, as the tests leave it).
    pub fn setup(root: &Path, logs: &Path) -> anyhow::Result<Avro> {
        let registry = match std::env::var("SCHEMA_REGISTRY_URL") {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                let out = Command::new(root.join("scripts/registry.sh"))
                    .arg("start")
                    .output()
                    .context("running scripts/registry.sh start")?;
                if !out.status.success() {
                    bail!(
                        "no Schema Registry for the Avro run: scripts/registry.sh start failed:\n{}\n\
                         (set SCHEMA_REGISTRY_URL to use another registry, or SAGASTREAM_BENCH_AVRO=0 to skip the Avro run)",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                String::from_utf8(out.stdout)?.trim().to_owned()
            }
        };
        let mut text = std::fs::read_to_string(root.join("topics.yaml"))?;
        for topic in AVRO_TOPICS {
            let entry = format!("\n  {topic}:\n");
            anyhow::ensure!(text.contains(&entry), "topics.yaml declares no {topic}");
            text = text.replace(&entry, &format!("{entry}    content_type: avro\n"));
        }
        let topics_file = logs.join("topics-avro.yaml");
        std::fs::write(&topics_file, text)?;
        let codec = AvroCodec::new(&registry).context("the Schema Registry's URL")?;
        Ok(Avro { registry, topics_file, codec })
    }

    /// The records of the Avro topics rewritten as Avro, under the subjects
    /// of their topics' names on the cluster; the others as they are.
    pub fn transcode(
        &self,
        name: &dyn Fn(&str) -> String,
        inputs: Vec<(&'static str, Record)>,
    ) -> anyhow::Result<Vec<(&'static str, Record)>> {
        inputs
            .into_iter()
            .map(|(topic, r)| {
                if !AVRO_TOPICS.contains(&topic) {
                    return Ok((topic, r));
                }
                let avro = records::transcode(&self.codec, &r, &name(topic))
                    .with_context(|| format!("transcoding a record of {topic} to Avro"))?;
                Ok((topic, avro))
            })
            .collect()
    }

    /// The saga's flags for the Avro run.
    pub fn flags(&self) -> [&str; 4] {
        ["--topics-file", self.topics_file.to_str().expect("UTF-8 path"), "--schema-registry-url", &self.registry]
    }
}

/// Mean bytes per record: (value, value + key + headers).
pub fn sizes<'a>(records: impl Iterator<Item = &'a Record>) -> (f64, f64) {
    let (mut n, mut value, mut total) = (0usize, 0usize, 0usize);
    for r in records {
        let v = r.value.as_ref().map_or(0, Vec::len);
        let k = r.key.as_ref().map_or(0, Vec::len);
        let h: usize = r.headers.iter().map(|h| h.name.len() + h.value.as_ref().map_or(0, Vec::len)).sum();
        n += 1;
        value += v;
        total += v + k + h;
    }
    let n = n.max(1) as f64;
    (value as f64 / n, total as f64 / n)
}
