//! What the processor's topics are called on the cluster (with the prefix)
//! and in `topics.yaml`, and the check at start that they exist as declared.

use std::collections::BTreeMap;

use super::producer::TxnProducer;
use super::{LoopError, TIMEOUT};
use crate::config::Config;

/// Names on the cluster (with the prefix) and in `topics.yaml`.
pub(super) struct Names {
    pub(super) inputs: Vec<(&'static str, String)>,
    /// Repartition sources: read and re-keyed, never given to the processor.
    pub(super) sources: Vec<(&'static str, String)>,
    pub(super) changelog: Option<String>,
    pub(super) physical: BTreeMap<&'static str, String>,
    /// Partition counts from topics.yaml (checked against the cluster at start).
    pub(super) partitions: BTreeMap<&'static str, i32>,
}

impl Names {
    /// The `topics.yaml` name of a consumed topic (an input or a source).
    pub(super) fn logical_input(&self, physical: &str) -> Option<&'static str> {
        self.inputs.iter().chain(&self.sources).find(|(_, p)| p == physical).map(|(l, _)| *l)
    }

    pub(super) fn is_input(&self, logical: &str) -> bool {
        self.inputs.iter().any(|(l, _)| *l == logical)
    }

    pub(super) fn physical(&self, logical: &'static str) -> &str {
        &self.physical[logical]
    }
}

/// Every topic the processor touches exists with the partitions topics.yaml declares.
pub(super) fn check_topics(producer: &TxnProducer, config: &Config, names: &Names) -> Result<(), LoopError> {
    let metadata = producer.client().fetch_metadata(None, TIMEOUT).map_err(|e| {
        LoopError::Setup(format!("reading cluster metadata from {}: {e}", config.settings.bootstrap_servers))
    })?;
    let mut problems = Vec::new();
    for (logical, physical) in &names.physical {
        let declared = config.topic(logical).partitions;
        match metadata.topics().iter().find(|t| t.name() == physical && t.error().is_none()) {
            None => problems.push(format!("{physical} does not exist")),
            Some(t) if t.partitions().len() as i32 != declared => problems
                .push(format!("{physical} has {} partitions, topics.yaml declares {declared}", t.partitions().len())),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let prefix =
        if config.topic_prefix.is_empty() { String::new() } else { format!(" --prefix {}", config.topic_prefix) };
    Err(LoopError::Setup(format!(
        "topics are not as declared: {}\n  hint: run `sagactl topics apply{prefix}` (it creates what is missing and reports drift)",
        problems.join("; ")
    )))
}
