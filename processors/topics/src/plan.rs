//! What `apply` would do: pure, so it is tested without a broker.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{Topic, Topics};
use crate::retention::format_retention;

/// A topic as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    /// Only the configs the broker returned; some brokers return none.
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub field: String,
    pub desired: String,
    pub actual: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create(Topic),
    UpToDate {
        name: String,
        /// Desired configs the broker did not report, so they could not be compared.
        unverified: Vec<String>,
    },
    /// The topic exists but differs. Apply reports it and changes nothing:
    /// adding partitions moves keys, and config changes deserve a human.
    Drifted {
        name: String,
        drifts: Vec<Drift>,
        unverified: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Topics on the cluster that the file does not mention; never deleted.
    pub unmanaged: Vec<String>,
}

impl Plan {
    pub fn to_create(&self) -> Vec<&Topic> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Create(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    pub fn drifted(&self) -> usize {
        self.actions.iter().filter(|a| matches!(a, Action::Drifted { .. })).count()
    }

    pub fn up_to_date(&self) -> usize {
        self.actions.iter().filter(|a| matches!(a, Action::UpToDate { .. })).count()
    }
}

pub fn plan(desired: &Topics, observed: &BTreeMap<String, ObservedTopic>) -> Plan {
    let mut actions = Vec::new();
    for t in &desired.topics {
        let Some(o) = observed.get(&t.name) else {
            actions.push(Action::Create(t.clone()));
            continue;
        };
        let mut drifts = Vec::new();
        if o.partitions != t.partitions {
            drifts.push(Drift {
                field: "partitions".into(),
                desired: t.partitions.to_string(),
                actual: o.partitions.to_string(),
            });
        }
        if o.replication_factor != t.replication_factor {
            drifts.push(Drift {
                field: "replication_factor".into(),
                desired: t.replication_factor.to_string(),
                actual: o.replication_factor.to_string(),
            });
        }
        let mut unverified = Vec::new();
        for (key, want) in t.broker_configs() {
            match o.configs.get(&key) {
                None => unverified.push(key),
                Some(have) if have != &want => drifts.push(Drift { field: key, desired: want, actual: have.clone() }),
                Some(_) => {}
            }
        }
        actions.push(if drifts.is_empty() {
            Action::UpToDate { name: t.name.clone(), unverified }
        } else {
            Action::Drifted { name: t.name.clone(), drifts, unverified }
        });
    }
    let unmanaged = observed.keys().filter(|n| !n.starts_with("__") && desired.get(n).is_none()).cloned().collect();
    Plan { actions, unmanaged }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.actions {
            match a {
                Action::Create(t) => writeln!(
                    f,
                    "+ create   {:<28} partitions={} replication_factor={} retention={} cleanup.policy={}",
                    t.name,
                    t.partitions,
                    t.replication_factor,
                    format_retention(t.retention_ms),
                    t.cleanup_policy.as_str()
                )?,
                Action::UpToDate { name, unverified } => {
                    write!(f, "= ok       {name:<28}")?;
                    if !unverified.is_empty() {
                        write!(f, " (broker did not report {}; not compared)", unverified.join(", "))?;
                    }
                    writeln!(f)?;
                }
                Action::Drifted { name, drifts, .. } => {
                    writeln!(f, "~ drift    {name:<28} (left as is: apply never alters or deletes)")?;
                    for d in drifts {
                        writeln!(f, "    {}: topics.yaml wants {}, cluster has {}", d.field, d.desired, d.actual)?;
                    }
                }
            }
        }
        for name in &self.unmanaged {
            writeln!(f, "? unmanaged {name:<27} (not in topics.yaml; left alone)")?;
        }
        write!(
            f,
            "{} to create, {} up to date, {} drifted, {} unmanaged",
            self.to_create().len(),
            self.up_to_date(),
            self.drifted(),
            self.unmanaged.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics::parse(
            "version: 1\ndefaults:\n  replication_factor: 1\n  retention: 7d\ntopics:\n  a.events:\n    description: A\n    kind: domain\n    partitions: 3\n    key: id\n    owner: svc\n  b.events:\n    description: B\n    kind: domain\n    partitions: 3\n    key: id\n    owner: svc\n",
            "t.yaml",
        )
        .unwrap()
    }

    fn observed(name: &str, partitions: i32, configs: &[(&str, &str)]) -> (String, ObservedTopic) {
        (
            name.to_owned(),
            ObservedTopic {
                name: name.into(),
                partitions,
                replication_factor: 1,
                configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            },
        )
    }

    #[test]
    fn creates_missing_reports_drift_and_never_deletes() {
        let cluster: BTreeMap<_, _> = [
            observed("a.events", 6, &[("retention.ms", "1000")]),
            observed("legacy.topic", 1, &[]),
            observed("__consumer_offsets", 50, &[]),
        ]
        .into();
        let p = plan(&topics(), &cluster);
        assert_eq!(p.to_create().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["b.events"]);
        let Action::Drifted { drifts, unverified, .. } = &p.actions[0] else { panic!("{p}") };
        assert_eq!(drifts.iter().map(|d| d.field.as_str()).collect::<Vec<_>>(), ["partitions", "retention.ms"]);
        assert_eq!(unverified, &["cleanup.policy"]);
        assert_eq!(p.unmanaged, ["legacy.topic"]);
        let text = p.to_string();
        assert!(text.contains("partitions: topics.yaml wants 3, cluster has 6"), "{text}");
        assert!(text.ends_with("1 to create, 0 up to date, 1 drifted, 1 unmanaged"), "{text}");
    }

    #[test]
    fn matching_cluster_is_a_no_op() {
        let t = topics();
        let cluster: BTreeMap<_, _> = t
            .topics
            .iter()
            .map(|t| {
                let mut o = observed(&t.name, t.partitions, &[]);
                o.1.configs = t.broker_configs();
                o
            })
            .collect();
        let p = plan(&t, &cluster);
        assert!(p.to_create().is_empty());
        assert_eq!(p.up_to_date(), 2);
        assert_eq!(p.drifted(), 0);
    }
}
