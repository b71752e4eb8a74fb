//! Topic administration: read what the cluster has, create what is missing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use sagastream_topics::{ObservedTopic, Topic, Topics};

use crate::{ClientSettings, KafkaError};

pub type Admin = AdminClient<DefaultClientContext>;

const TIMEOUT: Duration = Duration::from_secs(15);
/// A leader that serves the partition answers a ListOffsets at once; this
/// only bounds the wait on one that does not, so the readiness deadline holds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn admin_client(settings: &ClientSettings) -> Result<Admin, KafkaError> {
    settings.base().create().map_err(KafkaError::client("creating the admin client"))
}

/// Every topic on the cluster with partitions and replication factor, plus,
/// for the topics the file declares, the configs the broker reports (some
/// brokers report none). Also the number of brokers.
pub async fn observe(admin: &Admin, declared: &Topics) -> Result<(BTreeMap<String, ObservedTopic>, usize), KafkaError> {
    let metadata =
        admin.inner().fetch_metadata(None, TIMEOUT).map_err(KafkaError::client("reading cluster metadata"))?;
    let brokers = metadata.brokers().len();
    let mut observed: BTreeMap<String, ObservedTopic> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| {
            let rf = t.partitions().iter().map(|p| p.replicas().len() as i32).max().unwrap_or(0);
            let name = t.name().to_owned();
            (
                name.clone(),
                ObservedTopic {
                    name,
                    partitions: t.partitions().len() as i32,
                    replication_factor: rf,
                    configs: BTreeMap::new(),
                },
            )
        })
        .collect();
    // Only declared topics: a production cluster may hold thousands we do not manage.
    let names: Vec<String> = observed.keys().filter(|n| declared.get(n).is_some()).cloned().collect();
    if !names.is_empty() {
        let specs: Vec<ResourceSpecifier> = names.iter().map(|n| ResourceSpecifier::Topic(n)).collect();
        let opts = AdminOptions::new().request_timeout(Some(TIMEOUT));
        match admin.describe_configs(&specs, &opts).await {
            Ok(results) => {
                for (name, result) in names.iter().zip(results) {
                    match result {
                        Ok(resource) => {
                            let topic = observed.get_mut(name).expect("described topics come from metadata");
                            for entry in resource.entries {
                                if let Some(value) = entry.value {
                                    topic.configs.insert(entry.name, value);
                                }
                            }
                        }
                        Err(code) => tracing::warn!(topic = %name, %code, "broker did not describe topic configs"),
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "broker did not answer DescribeConfigs; configs are not compared"),
        }
    }
    Ok((observed, brokers))
}

/// Creates the topics; one that appeared meanwhile counts as created.
pub async fn create(admin: &Admin, topics: &[&Topic], brokers: usize) -> Result<(), KafkaError> {
    if topics.is_empty() {
        return Ok(());
    }
    if let Some(t) = topics.iter().find(|t| t.replication_factor as usize > brokers) {
        return Err(KafkaError::ReplicationTooHigh { topic: t.name.clone(), wanted: t.replication_factor, brokers });
    }
    let configs: Vec<BTreeMap<String, String>> = topics.iter().map(|t| t.broker_configs()).collect();
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .zip(&configs)
        .map(|(t, configs)| {
            configs.iter().fold(
                NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(t.replication_factor)),
                |nt, (k, v)| nt.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin.create_topics(&new_topics, &opts).await.map_err(KafkaError::client("creating topics"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, code }),
        }
    }
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    wait_until_ready(admin, &names, Duration::from_secs(30)).await
}

/// Waits until every topic has all its partitions with a leader, and each
/// leader answers for its partition. Metadata can name a leader a moment
/// before that broker serves the partition (NOT_LEADER_OR_FOLLOWER on a
/// fresh topic, seen with Apache Kafka under load): a client started right
/// after creation would otherwise meet that error first.
pub async fn wait_until_ready(admin: &Admin, names: &[&str], deadline: Duration) -> Result<(), KafkaError> {
    let start = Instant::now();
    let mut served: std::collections::BTreeSet<(String, i32)> = std::collections::BTreeSet::new();
    loop {
        let metadata =
            admin.inner().fetch_metadata(None, TIMEOUT).map_err(KafkaError::client("reading cluster metadata"))?;
        let mut missing: Vec<String> = Vec::new();
        for n in names {
            let Some(t) = metadata.topics().iter().find(|t| t.name() == *n && t.error().is_none()) else {
                missing.push(n.to_string());
                continue;
            };
            let led = !t.partitions().is_empty() && t.partitions().iter().all(|p| p.leader() >= 0);
            let answers = led
                && t.partitions().iter().all(|p| {
                    let key = (t.name().to_owned(), p.id());
                    served.contains(&key)
                        || (admin.inner().fetch_watermarks(t.name(), p.id(), PROBE_TIMEOUT).is_ok()
                            && served.insert(key))
                });
            if !answers {
                missing.push(n.to_string());
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if start.elapsed() > deadline {
            return Err(KafkaError::NotReady { topics: missing, waited_ms: start.elapsed().as_millis() });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
