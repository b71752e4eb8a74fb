use std::collections::BTreeMap;
use std::path::Path;

use sagastream_contract::{ContentMode, EventType};
use serde::Deserialize;

use crate::error::{Problem, TopicsError};
use crate::locate::Lines;
use crate::retention::parse_retention;

/// What a topic is for; some rules depend on it (a changelog must be compacted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicKind {
    /// Facts published by a service (the seeds' topics).
    Domain,
    /// Commands and derived events written by a sagastream processor.
    Output,
    /// Dead letters of one processor.
    Dlq,
    /// State store changelog of one processor.
    Changelog,
    /// Internal re-keyed copy of an input.
    Repartition,
    /// Another team's records in its own envelope (not CloudEvents), read
    /// by sagastream-ingest; `envelope` names the format.
    Raw,
}

impl TopicKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TopicKind::Domain => "domain",
            TopicKind::Output => "output",
            TopicKind::Dlq => "dlq",
            TopicKind::Changelog => "changelog",
            TopicKind::Repartition => "repartition",
            TopicKind::Raw => "raw",
        }
    }
}

/// The foreign envelope a `kind: raw` topic carries (docs/ingest.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Envelope {
    /// First Viscount's services: event_id, event_type, data, ...
    FirstViscount,
    /// Go4u's envelope: event_id, event_name, payload, metadata.
    Go4u,
    /// KorrectNG's `Event<T>`: id, type, camelCase payload, timestamp.
    Korrectng,
}

impl Envelope {
    pub const ALL: &'static [Envelope] = &[Envelope::FirstViscount, Envelope::Go4u, Envelope::Korrectng];

    pub fn as_str(self) -> &'static str {
        match self {
            Envelope::FirstViscount => "first_viscount",
            Envelope::Go4u => "go4u",
            Envelope::Korrectng => "korrectng",
        }
    }
}

/// How the payload of the events our producers write to a topic is
/// serialised (`content_type`). Readers accept either on every topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    /// JSON data (`content-type: application/json`).
    #[default]
    Json,
    /// Avro in the Confluent wire format (`content-type: application/avro`),
    /// its schema in the Schema Registry (docs/schemas.md).
    Avro,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "json",
            ContentType::Avro => "avro",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CleanupPolicy {
    #[serde(rename = "delete")]
    Delete,
    #[serde(rename = "compact")]
    Compact,
    #[serde(rename = "compact,delete")]
    CompactDelete,
}

impl CleanupPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: u32,
    #[serde(default)]
    defaults: RawDefaults,
    topics: BTreeMap<String, RawTopic>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    replication_factor: Option<i32>,
    retention: Option<String>,
    cleanup_policy: Option<CleanupPolicy>,
    content_mode: Option<ContentMode>,
    content_type: Option<ContentType>,
}

/// A YAML scalar or a list of them (`key: order_id` or `key: [booking_id, order_id]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    description: String,
    kind: TopicKind,
    partitions: i32,
    replication_factor: Option<i32>,
    retention: Option<String>,
    cleanup_policy: Option<CleanupPolicy>,
    key: OneOrMany,
    content_mode: Option<ContentMode>,
    content_type: Option<ContentType>,
    owner: String,
    #[serde(default)]
    consumers: Vec<String>,
    copartition_group: Option<OneOrMany>,
    #[serde(default)]
    events: Vec<String>,
    envelope: Option<Envelope>,
    #[serde(default)]
    config: BTreeMap<String, String>,
}

/// A validated topic with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub name: String,
    pub description: String,
    pub kind: TopicKind,
    pub partitions: i32,
    pub replication_factor: i32,
    /// -1 means infinite.
    pub retention_ms: i64,
    pub cleanup_policy: CleanupPolicy,
    /// The payload fields whose value is the record key: one per aggregate
    /// the topic carries (`payment.events` has booking and order payments).
    pub keys: Vec<String>,
    pub content_mode: ContentMode,
    pub content_type: ContentType,
    pub owner: String,
    pub consumers: Vec<String>,
    /// Groups of topics joined by key; a topic keyed by two aggregates can
    /// be in a group for each.
    pub copartition_groups: Vec<String>,
    pub events: Vec<EventType>,
    /// The foreign envelope of a `kind: raw` topic.
    pub envelope: Option<Envelope>,
    /// Extra broker configs, passed through verbatim.
    pub config: BTreeMap<String, String>,
}

impl Topic {
    /// Every broker config this topic should have, by Kafka name.
    pub fn broker_configs(&self) -> BTreeMap<String, String> {
        let mut c = self.config.clone();
        c.insert("cleanup.policy".into(), self.cleanup_policy.as_str().into());
        c.insert("retention.ms".into(), self.retention_ms.to_string());
        c
    }
}

/// A validated topics file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Sorted by name.
    pub topics: Vec<Topic>,
}

/// Config keys that have a first-class field; setting them under `config` would be ambiguous.
const FIRST_CLASS: &[(&str, &str)] = &[("cleanup.policy", "cleanup_policy"), ("retention.ms", "retention")];

impl Topics {
    pub fn load(path: &Path) -> Result<Topics, TopicsError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopicsError::Io { path: path.into(), source })?;
        Topics::parse(&text, &path.display().to_string())
    }

    /// Parses and validates; `file` names the source in messages.
    pub fn parse(text: &str, file: &str) -> Result<Topics, TopicsError> {
        let raw: RawFile =
            serde_yaml::from_str(text).map_err(|e| TopicsError::Invalid(vec![syntax_problem(file, &e)]))?;
        let lines = Lines::new(text);
        let mut problems = Vec::new();
        let mut problem = |path: &[&str], message: String, hint: &str| {
            problems.push(Problem {
                file: file.into(),
                line: lines.line_of(path),
                field: path.join("."),
                message,
                hint: hint.into(),
            });
        };

        if raw.version != 1 {
            problem(&["version"], format!("unsupported version {}", raw.version), "this sagastream reads version: 1");
        }
        let default_retention = raw.defaults.retention.as_deref().map(parse_retention);
        if let Some(Err(e)) = &default_retention {
            problem(
                &["defaults", "retention"],
                e.clone(),
                "write a whole number with a unit: 7d, 12h, 30m, or infinite",
            );
        }

        let mut topics = Vec::new();
        for (name, t) in raw.topics {
            let at = |field: &'static str| ["topics", name.as_str(), field];
            if let Err(e) = check_topic_name(&name) {
                problem(&["topics", &name], e, "topic names are 1-249 of [a-zA-Z0-9._-], not `.` or `..`");
            }
            if t.description.trim().is_empty() {
                problem(&at("description"), "must not be empty".into(), "say what the topic carries, for other teams");
            }
            if !(1..=10_000).contains(&t.partitions) {
                problem(
                    &at("partitions"),
                    format!("must be between 1 and 10000 (got {})", t.partitions),
                    "partitions bound consumer parallelism; 6 suits the local broker",
                );
            }
            let replication_factor = t.replication_factor.or(raw.defaults.replication_factor);
            match replication_factor {
                None => problem(
                    &at("replication_factor"),
                    "is not set here nor under defaults".into(),
                    "add `replication_factor: 3` under defaults",
                ),
                Some(rf) if !(1..=32).contains(&rf) => problem(
                    &at("replication_factor"),
                    format!("must be between 1 and 32 (got {rf})"),
                    "production clusters use 3; the single local broker is handled with --replication-factor 1",
                ),
                Some(_) => {}
            }
            let retention_ms = match (&t.retention, &default_retention) {
                (Some(r), _) => match parse_retention(r) {
                    Ok(ms) => Some(ms),
                    Err(e) => {
                        problem(&at("retention"), e, "write a whole number with a unit: 7d, 12h, 30m, or infinite");
                        None
                    }
                },
                (None, Some(Ok(ms))) => Some(*ms),
                (None, Some(Err(_))) => None,
                (None, None) => {
                    problem(
                        &at("retention"),
                        "is not set here nor under defaults".into(),
                        "add `retention: 7d` under defaults",
                    );
                    None
                }
            };
            let cleanup_policy = t.cleanup_policy.or(raw.defaults.cleanup_policy).unwrap_or(CleanupPolicy::Delete);
            if t.kind == TopicKind::Changelog && cleanup_policy == CleanupPolicy::Delete {
                problem(
                    &at("cleanup_policy"),
                    "a changelog topic must be compacted".into(),
                    "set `cleanup_policy: compact` so the latest state of every key is kept",
                );
            }
            let keys = t.key.into_vec();
            if keys.is_empty() || keys.iter().any(|k| k.trim().is_empty()) {
                problem(
                    &at("key"),
                    "must not be empty".into(),
                    "name the payload field that is the record key, e.g. booking_id (a list if the topic carries several aggregates)",
                );
            }
            if t.owner.trim().is_empty() {
                problem(&at("owner"), "must not be empty".into(), "name the service that writes the topic");
            }
            for key in t.config.keys() {
                if let Some((_, field)) = FIRST_CLASS.iter().find(|(k, _)| k == key) {
                    problem(
                        &["topics", &name, "config", key],
                        "is a first-class field".into(),
                        &format!("use `{field}:` instead"),
                    );
                }
            }
            match (t.kind, t.envelope) {
                (TopicKind::Raw, None) => problem(
                    &at("envelope"),
                    "a raw topic must name its envelope".into(),
                    "one of first_viscount, go4u, korrectng (docs/ingest.md)",
                ),
                (TopicKind::Raw, Some(_)) if !t.events.is_empty() => problem(
                    &at("events"),
                    "a raw topic carries no catalog events".into(),
                    "remove `events:`; docs/ingest.md maps each platform's types to the catalog",
                ),
                (kind, Some(_)) if kind != TopicKind::Raw => problem(
                    &at("envelope"),
                    "only a `kind: raw` topic has an envelope".into(),
                    "sagastream's own topics carry CloudEvents; remove `envelope:`",
                ),
                _ => {}
            }
            let content_mode = t.content_mode.or(raw.defaults.content_mode).unwrap_or_default();
            let content_type = t.content_type.or(raw.defaults.content_type).unwrap_or_default();
            if content_type == ContentType::Avro {
                if matches!(t.kind, TopicKind::Dlq | TopicKind::Changelog | TopicKind::Raw | TopicKind::Repartition) {
                    problem(
                        &at("content_type"),
                        format!("a `kind: {}` topic is not written as Avro", t.kind.as_str()),
                        "Avro is for domain and output topics; DLQ and changelog records, raw topics and \
                         re-keyed copies keep the bytes they have",
                    );
                }
                if content_mode == ContentMode::Structured {
                    problem(
                        &at("content_type"),
                        "avro needs `content_mode: binary`".into(),
                        "CloudEvents structured mode is a JSON object; Avro data goes in binary mode",
                    );
                }
            }
            let mut events = Vec::new();
            // A raw topic's events were refused above; its names are not the catalog's.
            let listed = if t.kind == TopicKind::Raw { &[][..] } else { &t.events[..] };
            for e in listed {
                match EventType::parse(e) {
                    Some(et) if et.as_str() != e => problem(
                        &at("events"),
                        format!("{e:?} is a legacy alias"),
                        &format!("list the canonical name {:?}", et.as_str()),
                    ),
                    // A repartition topic carries another topic's events under a new key.
                    Some(et) if t.kind == TopicKind::Repartition => events.push(et),
                    Some(et) => {
                        if et.topic() != name {
                            problem(
                                &at("events"),
                                format!("{e} is carried by {} in the event catalog, not here", et.topic()),
                                "move it to its topic, or change the catalog in processors/contract",
                            );
                        }
                        if !keys.iter().any(|k| k == et.key_field()) {
                            problem(
                                &at("key"),
                                format!("is {keys:?} but {e} is keyed by {:?}", et.key_field()),
                                "list every key field of the topic's events under `key`",
                            );
                        }
                        events.push(et);
                    }
                    None => problem(
                        &at("events"),
                        format!("{e:?} is not in the event catalog"),
                        "see docs/events.md for the event types",
                    ),
                }
            }
            topics.push(Topic {
                name: name.clone(),
                description: t.description,
                kind: t.kind,
                partitions: t.partitions,
                replication_factor: replication_factor.unwrap_or(1),
                retention_ms: retention_ms.unwrap_or(-1),
                cleanup_policy,
                keys,
                content_mode,
                content_type,
                owner: t.owner,
                consumers: t.consumers,
                copartition_groups: t.copartition_group.map(OneOrMany::into_vec).unwrap_or_default(),
                events,
                envelope: t.envelope,
                config: t.config,
            });
        }

        let mut groups: BTreeMap<&str, Vec<&Topic>> = BTreeMap::new();
        for t in &topics {
            for g in &t.copartition_groups {
                groups.entry(g).or_default().push(t);
            }
        }
        for (group, members) in &groups {
            if members.iter().any(|t| t.partitions != members[0].partitions) {
                let counts =
                    members.iter().map(|t| format!("{}={}", t.name, t.partitions)).collect::<Vec<_>>().join(", ");
                for t in members {
                    problem(
                        &["topics", &t.name, "partitions"],
                        format!("co-partitioning group {group:?} needs equal partition counts ({counts})"),
                        "topics joined by key must have the same number of partitions, or keys land on different instances",
                    );
                }
            }
            let shared = members[0].keys.iter().any(|k| members.iter().all(|t| t.keys.contains(k)));
            if !shared {
                let keys =
                    members.iter().map(|t| format!("{}={}", t.name, t.keys.join("|"))).collect::<Vec<_>>().join(", ");
                problem(
                    &["topics", &members[0].name, "copartition_group"],
                    format!("co-partitioning group {group:?} has no key all its topics share ({keys})"),
                    "co-partitioned topics must be keyed by the same id",
                );
            }
        }

        if problems.is_empty() {
            Ok(Topics { topics })
        } else {
            Err(TopicsError::Invalid(problems))
        }
    }

    pub fn get(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// Catalog event types that no topic in this file carries.
    pub fn uncovered_event_types(&self) -> Vec<EventType> {
        EventType::ALL.iter().copied().filter(|e| !self.topics.iter().any(|t| t.events.contains(e))).collect()
    }

    /// The same topics under prefixed names (`<prefix><name>`), for
    /// environments or tests that share one cluster. Co-partitioning groups
    /// and event lists are unchanged.
    pub fn with_prefix(mut self, prefix: &str) -> Topics {
        for t in &mut self.topics {
            t.name = format!("{prefix}{}", t.name);
        }
        self
    }

    /// The same topics with every replication factor replaced, for clusters
    /// smaller than production (the single local broker).
    pub fn with_replication_factor(mut self, rf: i32) -> Topics {
        for t in &mut self.topics {
            t.replication_factor = rf;
        }
        self
    }
}

fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 249 {
        return Err(format!("topic name {name:?} must be 1 to 249 characters"));
    }
    if name == "." || name == ".." {
        return Err(format!("topic name {name:?} is reserved"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("topic name {name:?} contains {c:?}"));
    }
    Ok(())
}

fn syntax_problem(file: &str, e: &serde_yaml::Error) -> Problem {
    let mut message = e.to_string();
    // The line goes in front, like every other problem.
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    let hint = if message.contains("unknown field") {
        "check the spelling; docs/topics.md lists every field"
    } else if message.contains("missing field") {
        "every topic needs description, kind, partitions, key and owner"
    } else if message.contains("unknown variant") {
        "use one of the values listed in the message"
    } else if message.contains("invalid type") {
        "check the value's type (numbers unquoted, lists in [ ])"
    } else if message.contains("duplicate") {
        "each topic may appear once"
    } else {
        "see docs/topics.md for the format"
    };
    Problem {
        file: file.into(),
        line: e.location().map(|l| l.line()),
        field: String::new(),
        message,
        hint: hint.into(),
    }
}

#[cfg(test)]
mod tests;
