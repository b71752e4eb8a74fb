//! The changelog format: one record per key changed in a transaction.
//!
//! - key: the state key (the input record key), UTF-8;
//! - value: JSON [`Entry`] (processor state, pending timers, recent input
//!   ids), or a tombstone (no value) when the key is forgotten;
//! - headers: `sagastream.changelog.version` (`1`) and
//!   `sagastream.changelog.positions`: for each input topic of the
//!   partition, the next input offset as of the transaction that wrote the
//!   record (`topic:offset,...`).
//!
//! A restore keeps a record only if the consumer group's committed offsets
//! have reached every position it names. A record written by a transaction
//! whose offsets never committed (a zombie whose records a broker let
//! through) is a leftover and is skipped.

use std::collections::{BTreeMap, VecDeque};

use sagastream_contract::{Header, Record};
use serde::{Deserialize, Serialize};

pub const VERSION_HEADER: &str = "sagastream.changelog.version";
pub const POSITIONS_HEADER: &str = "sagastream.changelog.positions";
pub const VERSION: &str = "1";

/// Everything the runtime keeps for one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry<S> {
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub state: Option<S>,
    /// Timer name to due time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Timers::is_empty")]
    pub timers: Timers,
    /// Ids of the most recent inputs applied, oldest first (de-duplication).
    #[serde(default, skip_serializing_if = "SeenIds::is_empty")]
    pub seen: SeenIds,
    /// The highest CloudEvent `sequence` applied, for a processor with the
    /// sequence guard on (`Processor::sequence_guard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

impl<S> Default for Entry<S> {
    fn default() -> Self {
        Entry { state: None, timers: Timers::default(), seen: SeenIds::default(), sequence: None }
    }
}

/// A key's timers: name to due time (ms since the epoch), sorted by name.
/// A key has a handful at most, so a vector beats a map's node (a
/// `BTreeMap` allocates room for eleven). A JSON object in the changelog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timers(Vec<(String, i64)>);

impl Timers {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&i64> {
        self.find(name).ok().map(|i| &self.0[i].1)
    }

    /// Sets (or moves) a timer; returns the previous due time.
    pub fn insert(&mut self, name: String, due: i64) -> Option<i64> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, due)),
            Err(i) => {
                self.0.insert(i, (name, due));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<i64> {
        self.find(name).ok().map(|i| self.0.remove(i).1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &i64)> {
        self.0.iter().map(|(n, d)| (n, d))
    }
}

impl<'a> IntoIterator for &'a Timers {
    type Item = (&'a String, &'a i64);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (String, i64)>, fn(&'a (String, i64)) -> (&'a String, &'a i64)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(n, d)| (n, d))
    }
}

impl Serialize for Timers {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Timers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Timers, D::Error> {
        let map: BTreeMap<String, i64> = BTreeMap::deserialize(deserializer)?;
        Ok(Timers(map.into_iter().collect()))
    }
}

/// Namespace of the digests of input ids that are not UUIDs.
const SEEN_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x9e3c_1f0a_77d4_4c5b_a1e2_5f60_3b8d_c214);

/// The ids of the most recent inputs of a key, oldest first, as 16-byte
/// digests: a canonical (lower-case, hyphenated) UUID id is its own bytes,
/// any other id the UUID v5 of its text. A tenth of the memory of the
/// strings, which matters with millions of keys; collisions need SHA-1 ones.
/// The changelog holds them as UUID strings, and reading an older changelog
/// that holds the raw ids gives the same digests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeenIds(VecDeque<[u8; 16]>);

impl SeenIds {
    pub fn digest(id: &str) -> [u8; 16] {
        if let Ok(u) = uuid::Uuid::try_parse(id) {
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            if u.hyphenated().encode_lower(&mut buf) == id {
                return *u.as_bytes();
            }
        }
        *uuid::Uuid::new_v5(&SEEN_NAMESPACE, id.as_bytes()).as_bytes()
    }

    pub fn contains(&self, id: &str) -> bool {
        let d = SeenIds::digest(id);
        self.0.iter().any(|s| *s == d)
    }

    /// Remembers `id`, forgetting the oldest beyond `window`.
    pub fn push(&mut self, id: &str, window: usize) {
        self.0.push_back(SeenIds::digest(id));
        while self.0.len() > window {
            self.0.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for SeenIds {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        serializer.collect_seq(self.0.iter().map(DigestText))
    }
}

/// A digest written as UUID text without an allocation.
struct DigestText<'a>(&'a [u8; 16]);

impl Serialize for DigestText<'_> {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        serializer.serialize_str(uuid::Uuid::from_bytes(*self.0).hyphenated().encode_lower(&mut buf))
    }
}

impl<'de> Deserialize<'de> for SeenIds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SeenIds, D::Error> {
        let ids: Vec<String> = Vec::deserialize(deserializer)?;
        Ok(SeenIds(ids.iter().map(|id| SeenIds::digest(id)).collect()))
    }
}

impl<S> Entry<S> {
    /// No state and no timers: the key is forgotten (a tombstone).
    pub fn is_vacant(&self) -> bool {
        self.state.is_none() && self.timers.is_empty()
    }
}

impl<S: Clone> Entry<S> {
    /// What a step that makes `change` starts from: a copy of the key's
    /// entry, without the state when the step replaces it (the largest
    /// part, copied for nothing on every input that sets a new state), and
    /// nothing at all for a delete.
    pub fn base_for(old: Option<&Entry<S>>, change: &crate::StateChange<S>) -> Entry<S> {
        match (old, change) {
            (None, _) | (_, crate::StateChange::Delete) => Entry::default(),
            (Some(old), crate::StateChange::Set(_)) => {
                Entry { state: None, timers: old.timers.clone(), seen: old.seen.clone(), sequence: old.sequence }
            }
            (Some(old), crate::StateChange::Keep) => old.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangelogError {
    #[error("changelog record has no key")]
    NoKey,
    #[error("changelog key is not UTF-8")]
    KeyNotUtf8,
    #[error("changelog format version {0:?} is not supported (this runtime writes {VERSION})")]
    Version(String),
    #[error("changelog positions header {0:?} is not `topic:offset,...`")]
    Positions(String),
    #[error("changelog value does not decode: {0}")]
    Value(String),
}

/// Input positions as written in the header.
pub fn format_positions(positions: &BTreeMap<&str, i64>) -> String {
    positions.iter().map(|(t, o)| format!("{t}:{o}")).collect::<Vec<_>>().join(",")
}

pub fn parse_positions(text: &str) -> Result<Vec<(String, i64)>, ChangelogError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|part| {
            let (topic, offset) = part.rsplit_once(':').ok_or_else(|| ChangelogError::Positions(text.into()))?;
            let offset = offset.parse().map_err(|_| ChangelogError::Positions(text.into()))?;
            Ok((topic.to_owned(), offset))
        })
        .collect()
}

/// Headers of a changelog record.
pub fn headers(positions: &BTreeMap<&str, i64>) -> Vec<Header> {
    vec![
        Header { name: VERSION_HEADER.into(), value: Some(VERSION.as_bytes().to_vec()) },
        Header { name: POSITIONS_HEADER.into(), value: Some(format_positions(positions).into_bytes()) },
    ]
}

/// One decoded changelog record.
#[derive(Debug, PartialEq)]
pub struct Change<S> {
    pub key: String,
    /// `None` is a tombstone.
    pub entry: Option<Entry<S>>,
    pub positions: Vec<(String, i64)>,
}

pub fn decode<S: serde::de::DeserializeOwned>(record: &Record) -> Result<Change<S>, ChangelogError> {
    decode_parts(record.key.as_deref(), record.value.as_deref(), |name| record.header(name))
}

/// [`decode`] from a record's parts as the client hands them over, borrowed:
/// a restore reads every record of the changelog, and copying each into a
/// [`Record`] first was a measurable share of its time.
pub fn decode_parts<'a, S: serde::de::DeserializeOwned>(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    header: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<Change<S>, ChangelogError> {
    let key = key.ok_or(ChangelogError::NoKey)?;
    let key = std::str::from_utf8(key).map_err(|_| ChangelogError::KeyNotUtf8)?;
    if header(VERSION_HEADER) != Some(VERSION.as_bytes()) {
        let version = header(VERSION_HEADER).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
        return Err(ChangelogError::Version(version));
    }
    let positions = parse_positions(&String::from_utf8_lossy(header(POSITIONS_HEADER).unwrap_or_default()))?;
    let entry = match value {
        None => None,
        Some(v) => Some(serde_json::from_slice(v).map_err(|e| ChangelogError::Value(e.to_string()))?),
    };
    Ok(Change { key: key.to_owned(), entry, positions })
}

/// Whether the transaction that wrote a record committed its input offsets.
pub fn is_committed(positions: &[(String, i64)], committed: impl Fn(&str) -> Option<i64>) -> bool {
    positions.iter().all(|(topic, pos)| committed(topic).is_some_and(|c| c >= *pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_ids_are_digests_that_read_back_from_old_and_new_changelogs() {
        let uuid = "5a6a57e2-4d1c-4b8e-9f3a-2c71d0e8b61f";
        let mut seen = SeenIds::default();
        for id in [uuid, "evt-1", "EVT-1"] {
            seen.push(id, 2);
        }
        assert!(!seen.contains(uuid), "the window keeps the newest two");
        assert!(seen.contains("evt-1") && seen.contains("EVT-1") && !seen.contains("evt-2"));
        assert_eq!(SeenIds::digest(uuid), *uuid::Uuid::parse_str(uuid).unwrap().as_bytes());
        assert_ne!(SeenIds::digest(&uuid.to_uppercase()), SeenIds::digest(uuid), "only the canonical text is the UUID");
        // Written as UUID strings; an old changelog's raw ids give the same digests.
        let json = serde_json::to_string(&seen).unwrap();
        let back: SeenIds = serde_json::from_str(&json).unwrap();
        assert_eq!(back, seen);
        let old: SeenIds = serde_json::from_str(r#"["evt-1","EVT-1"]"#).unwrap();
        assert_eq!(old, seen);
    }

    #[test]
    fn timers_stay_sorted_and_read_as_a_json_object() {
        let mut t = Timers::default();
        assert_eq!(t.insert("purge".into(), 3), None);
        assert_eq!(t.insert("hold".into(), 1), None);
        assert_eq!(t.insert("purge".into(), 4), Some(3));
        assert_eq!((t.get("hold"), t.get("purge"), t.get("x"), t.len()), (Some(&1), Some(&4), None, 2));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"hold":1,"purge":4}"#);
        assert_eq!(serde_json::from_str::<Timers>(&json).unwrap(), t);
        assert_eq!(t.remove("hold"), Some(1));
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![(&"purge".to_owned(), &4)]);
    }

    #[test]
    fn round_trip_and_tombstone() {
        let mut e: Entry<u32> = Entry { state: Some(7), ..Entry::default() };
        e.timers.insert("idle".into(), 1_700_000_000_000);
        e.seen.push("id-1", 32);
        let value = serde_json::to_vec(&e).unwrap();
        let positions = BTreeMap::from([("runner.events", 42)]);
        let record = |key: Option<&[u8]>, value: Option<&[u8]>, headers: Vec<Header>| Record {
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers,
        };
        let hs = headers(&positions);
        let c: Change<u32> = decode(&record(Some(b"k"), Some(&value), hs.clone())).unwrap();
        assert_eq!(c, Change { key: "k".into(), entry: Some(e), positions: vec![("runner.events".into(), 42)] });
        let t: Change<u32> = decode(&record(Some(b"k"), None, hs.clone())).unwrap();
        assert_eq!(t.entry, None);
        assert_eq!(
            decode::<u32>(&record(Some(b"k"), None, vec![])).unwrap_err(),
            ChangelogError::Version(String::new())
        );
        assert_eq!(decode::<u32>(&record(None, None, hs.clone())).unwrap_err(), ChangelogError::NoKey);
        assert!(matches!(decode::<u32>(&record(Some(b"k"), Some(b"{"), hs)), Err(ChangelogError::Value(_))));
    }

    #[test]
    fn a_step_starts_from_the_old_entry_less_what_it_replaces() {
        let mut old: Entry<u32> = Entry { state: Some(7), sequence: Some(3), ..Entry::default() };
        old.timers.insert("hold".into(), 5);
        old.seen.push("id-1", 8);
        assert_eq!(Entry::base_for(Some(&old), &crate::StateChange::Keep), old);
        let set = Entry::base_for(Some(&old), &crate::StateChange::Set(9));
        assert_eq!(set, Entry { state: None, ..old.clone() }, "timers, seen ids and sequence carry over");
        assert_eq!(Entry::base_for(Some(&old), &crate::StateChange::Delete), Entry::default());
        assert_eq!(Entry::<u32>::base_for(None, &crate::StateChange::Keep), Entry::default());
    }

    #[test]
    fn committed_only_when_offsets_reached() {
        let p = parse_positions("a.events:10,b.events:3").unwrap();
        assert!(is_committed(&p, |t| Some(if t == "a.events" { 10 } else { 5 })));
        assert!(!is_committed(&p, |t| Some(if t == "a.events" { 9 } else { 5 })));
        assert!(!is_committed(&p, |t| if t == "a.events" { Some(10) } else { None }));
        assert!(parse_positions("nonsense").is_err());
        assert_eq!(parse_positions("").unwrap(), vec![]);
        assert!(Entry::<u32>::default().is_vacant());
    }
}
