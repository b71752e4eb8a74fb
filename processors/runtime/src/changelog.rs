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
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timers: BTreeMap<String, i64>,
    /// Ids of the most recent inputs applied, oldest first (de-duplication).
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub seen: VecDeque<String>,
}

impl<S> Default for Entry<S> {
    fn default() -> Self {
        Entry { state: None, timers: BTreeMap::new(), seen: VecDeque::new() }
    }
}

impl<S> Entry<S> {
    /// No state and no timers: the key is forgotten (a tombstone).
    pub fn is_vacant(&self) -> bool {
        self.state.is_none() && self.timers.is_empty()
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
    let key = record.key.as_deref().ok_or(ChangelogError::NoKey)?;
    let key = std::str::from_utf8(key).map_err(|_| ChangelogError::KeyNotUtf8)?;
    let header = |name: &str| record.headers.iter().find(|h| h.name == name).and_then(|h| h.value.as_deref());
    let version = header(VERSION_HEADER).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    if version != VERSION {
        return Err(ChangelogError::Version(version));
    }
    let positions = parse_positions(&String::from_utf8_lossy(header(POSITIONS_HEADER).unwrap_or_default()))?;
    let entry = match record.value.as_deref() {
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
    fn round_trip_and_tombstone() {
        let mut e: Entry<u32> = Entry { state: Some(7), ..Entry::default() };
        e.timers.insert("idle".into(), 1_700_000_000_000);
        e.seen.push_back("id-1".into());
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
