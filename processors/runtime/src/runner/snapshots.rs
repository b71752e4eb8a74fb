//! Local state snapshots at the runner's edge: written for every running
//! partition after the final commit of a clean stop, and, at a restore,
//! checked against the cluster before one stands in for the changelog
//! (the file format and its own checks are `crate::snapshot`'s).
//!
//! A snapshot is used only when all of these hold, else the partition is
//! restored from the changelog's beginning and the reason is logged and
//! counted (`sagastream_state_snapshots_total{result="rejected"}`):
//! the same group took it; it is younger than [`MAX_AGE`]; the group's
//! committed offsets have not gone back since; the changelog still spans its
//! offset; and its anchor record (the last record before that offset) reads
//! back from the changelog with the same key and value.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::restore::Committed;
use super::{is_fatal, Core, LoopError, TIMEOUT};
use crate::changelog::Entry;
use crate::events::{InternalEvent, SnapshotRejected};
use crate::metrics::ResultLabel;
use crate::processor::Processor;
use crate::snapshot::{self, Anchor, SnapshotError};

/// A snapshot older than this is not used: compaction removes a tombstone
/// once it is older than the changelog's `delete.retention.ms` (Kafka's
/// default: 24 h), and a tombstone written after the snapshot and removed
/// before the restore would leave its key alive. Half the default leaves a
/// margin for the cleaner's schedule.
pub(super) const MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// How far back from the changelog's end the anchor record is looked for:
/// past the markers and aborted records of the last few transactions.
const ANCHOR_LOOKBACK: i64 = 4096;

impl<P: Processor> Core<P> {
    /// Snapshots on disk for these partitions that fit the changelog's
    /// offsets and the group's; the rest are rejected (and counted).
    pub(super) fn snapshot_candidates(
        &self,
        topic: &str,
        marks: &BTreeMap<i32, (i64, i64)>,
        committed: &Committed,
    ) -> Vec<(i32, snapshot::Reader)> {
        let Some(dir) = self.state_dir.as_deref() else { return Vec::new() };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut out = Vec::new();
        for (&p, &(low, high)) in marks {
            let reader = match snapshot::Reader::open(dir, topic, p) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    SnapshotRejected { partition: p, reason: &e.to_string() }.emit(&self.metrics);
                    continue;
                }
            };
            let h = &reader.header;
            let gone_back = self.names.inputs.iter().find_map(|(t, _)| {
                let then = h.committed.get(*t).copied();
                let now = committed.get(&(*t, p)).copied().flatten();
                match (then, now) {
                    // An input the group had read nothing of then.
                    (None, _) => None,
                    (Some(a), Some(b)) if b >= a => None,
                    _ => Some(format!("the group's offset of {t} is {now:?}, the snapshot's {then:?}")),
                }
            });
            let age = Duration::from_millis(now_ms.saturating_sub(h.written_at_ms).max(0) as u64);
            let reason = match (&h.anchor, gone_back) {
                _ if h.group != self.engine.group() => Some(format!("taken by group {}", h.group)),
                _ if age > MAX_AGE => Some(format!(
                    "{} min old, older than {} h (tombstones after it may be compacted away)",
                    age.as_secs() / 60,
                    MAX_AGE.as_secs() / 3600
                )),
                (None, _) => Some("has no anchor record".to_owned()),
                (_, Some(why)) => Some(format!("{why}: offsets went back")),
                (Some(a), None) if h.changelog_end > high || a.offset < low || a.offset >= h.changelog_end => {
                    Some(format!(
                        "taken at changelog offset {} (anchor {}), the changelog now spans {low}..{high}",
                        h.changelog_end, a.offset
                    ))
                }
                _ => None,
            };
            match reason {
                Some(reason) => SnapshotRejected { partition: p, reason: &reason }.emit(&self.metrics),
                None => out.push((p, reader)),
            }
        }
        out
    }

    /// Reads each candidate's anchor record back from the changelog; those
    /// whose record is not there, or differs, are rejected. This tells a
    /// changelog deleted and written again apart from the one the snapshot
    /// was taken of.
    pub(super) fn verify_anchors(
        &mut self,
        topic: &str,
        candidates: Vec<(i32, snapshot::Reader)>,
    ) -> Result<Vec<(i32, snapshot::Reader)>, LoopError> {
        if candidates.is_empty() {
            return Ok(candidates);
        }
        let mut tpl = TopicPartitionList::new();
        let mut open: BTreeMap<i32, Anchor> = BTreeMap::new();
        for (p, c) in &candidates {
            let a = c.header.anchor.expect("checked by snapshot_candidates");
            tpl.add_partition_offset(topic, *p, Offset::Offset(a.offset))
                .map_err(|e| LoopError::kafka("restore", e))?;
            open.insert(*p, a);
        }
        self.assign_restorer(&tpl).map_err(|e| LoopError::kafka("assigning the changelog", e))?;
        let mut verdicts: BTreeMap<i32, Result<(), String>> = BTreeMap::new();
        let deadline = Instant::now() + TIMEOUT;
        while !open.is_empty() && Instant::now() < deadline {
            self.health.beat();
            match self.restorer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => {
                    let p = m.partition();
                    if let Some(a) = open.remove(&p) {
                        let seen = Anchor::of(m.offset(), m.key(), m.payload());
                        let verdict = match seen == a {
                            true => Ok(()),
                            false if seen.offset == a.offset => {
                                Err(format!("its anchor record (offset {}) differs in the changelog", a.offset))
                            }
                            false => Err(format!(
                                "its anchor record (offset {}) is not in the changelog: read offset {} instead",
                                a.offset,
                                m.offset()
                            )),
                        };
                        verdicts.insert(p, verdict);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(a) = open.remove(&p) {
                        verdicts.insert(
                            p,
                            Err(format!("the changelog ends before its anchor record (offset {})", a.offset)),
                        );
                    }
                }
                Some(Err(e)) if is_fatal(&e) => return Err(LoopError::kafka("reading snapshot anchors", e)),
                Some(Err(e)) => tracing::warn!(error = %e, "changelog read error; retrying"),
            }
        }
        let _ = self.restorer.unassign();
        let mut out = Vec::new();
        for (p, c) in candidates {
            match verdicts.remove(&p) {
                Some(Ok(())) => out.push((p, c)),
                Some(Err(reason)) => SnapshotRejected { partition: p, reason: &reason }.emit(&self.metrics),
                None => SnapshotRejected { partition: p, reason: "its anchor record could not be read in time" }
                    .emit(&self.metrics),
            }
        }
        Ok(out)
    }

    /// Writes a snapshot of every running partition (after the final
    /// commit of a clean stop: nothing is pending). Failures are logged;
    /// the next start restores those partitions from the changelog.
    pub(super) fn write_snapshots(&mut self) {
        let (Some(dir), Some(topic)) = (self.state_dir.clone(), self.names.changelog.clone()) else { return };
        if self.producer.open().is_some() || self.engine.has_pending() {
            tracing::warn!("not writing state snapshots: a transaction is still open");
            return;
        }
        let started = Instant::now();
        let (mut written, mut bytes) = (0usize, 0u64);
        for p in self.engine.owned() {
            // An input the group has read nothing of has no offset to keep.
            let committed: BTreeMap<String, i64> = self
                .names
                .inputs
                .iter()
                .filter_map(|(t, _)| self.committed.get(&(*t, p)).copied().flatten().map(|o| ((*t).to_owned(), o)))
                .collect();
            let header = match (committed.is_empty(), self.anchor(&topic, p)) {
                (false, Ok(Some((end, anchor)))) => snapshot::Header {
                    group: self.engine.group().to_owned(),
                    topic: topic.clone(),
                    partition: p,
                    changelog_end: end,
                    anchor: Some(anchor),
                    committed,
                    written_at_ms: chrono::Utc::now().timestamp_millis(),
                    entries: 0,
                },
                (_, Err(e)) => {
                    tracing::warn!(partition = p, error = %e, "no state snapshot: the changelog's end could not be read");
                    snapshot::remove(&dir, &topic, p);
                    continue;
                }
                // Nothing committed, or an empty changelog: nothing to keep.
                _ => {
                    snapshot::remove(&dir, &topic, p);
                    continue;
                }
            };
            let state = self.engine.committed_partition(p).expect("owned");
            match snapshot::write(&dir, &header, state) {
                Ok(n) => {
                    written += 1;
                    bytes += n;
                    self.metrics.snapshots.get_or_create(&ResultLabel { result: "written" }).inc();
                }
                Err(e) => {
                    self.metrics.snapshots.get_or_create(&ResultLabel { result: "failed" }).inc();
                    tracing::warn!(partition = p, error = %e, "state snapshot not written");
                }
            }
        }
        if written > 0 {
            tracing::info!(
                partitions = written,
                bytes,
                dir = %dir.display(),
                took_ms = started.elapsed().as_millis() as u64,
                "state snapshots written"
            );
        }
    }

    /// The changelog's end and the last record before it, read back
    /// (`None`: the changelog has no record there to anchor to).
    fn anchor(&mut self, topic: &str, p: i32) -> Result<Option<(i64, Anchor)>, KafkaError> {
        let (low, high) = self.restorer.fetch_watermarks(topic, p, TIMEOUT)?;
        if high <= low {
            return Ok(None);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset((high - ANCHOR_LOOKBACK).max(low)))?;
        self.assign_restorer(&tpl)?;
        let mut last = None;
        let deadline = Instant::now() + TIMEOUT;
        let result = loop {
            if Instant::now() >= deadline {
                break Ok(None);
            }
            match self.restorer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) if m.offset() < high => last = Some(Anchor::of(m.offset(), m.key(), m.payload())),
                Some(Ok(_)) => {}
                Some(Err(KafkaError::PartitionEOF(_))) => break Ok(last.map(|a| (high, a))),
                Some(Err(e)) if is_fatal(&e) => break Err(e),
                Some(Err(_)) => {}
            }
        };
        let _ = self.restorer.unassign();
        result
    }
}

/// Each verified snapshot's state and the changelog offset it stands for,
/// or why it did not read back whole.
type Loaded<S> = Result<(HashMap<String, Entry<S>>, i64), SnapshotError>;

/// Reads the verified snapshots' entries on two threads (the decoding is
/// the cost; the loop has nothing to do with these partitions meanwhile).
pub(super) fn load<S: serde::de::DeserializeOwned + Send>(
    verified: Vec<(i32, snapshot::Reader)>,
) -> Vec<(i32, Loaded<S>)> {
    let queue = std::sync::Mutex::new(verified);
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((p, reader)) = super::lock(&queue).pop() else { break };
                let end = reader.header.changelog_end;
                let result = reader.entries::<S>().map(|state| (state, end));
                super::lock(&done).push((p, result));
            });
        }
    });
    done.into_inner().unwrap_or_else(|p| p.into_inner())
}
