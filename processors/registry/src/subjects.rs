//! Which subject each schema goes under: one per topic that carries its
//! event type (TopicRecordNameStrategy, as the Java and Python clients name it).

use std::path::PathBuf;

use sagastream_topics::Topics;
use schema_registry_converter::schema_registry_common::SubjectNameStrategy;

use crate::{RegistryError, SchemaFile};

/// A schema and the subject it is registered under.
#[derive(Debug, Clone)]
pub struct Planned<'a> {
    pub topic: String,
    pub subject: String,
    pub schema: &'a SchemaFile,
}

/// `<topic>-<record full name>`.
pub fn subject(topic: &str, full_name: &str) -> String {
    SubjectNameStrategy::TopicRecordNameStrategy(topic.to_owned(), full_name.to_owned())
        .get_subject()
        .expect("a topic-record subject is built from its two names and cannot fail")
}

/// Every (topic, event type) pair of topics.yaml with its schema, in the
/// file's topic order, then the topic's event order.
pub fn plan<'a>(topics: &Topics, schemas: &'a [SchemaFile]) -> Result<Vec<Planned<'a>>, RegistryError> {
    let mut out = Vec::new();
    for topic in &topics.topics {
        for event_type in &topic.events {
            let schema = schemas.iter().find(|s| s.event_type == event_type.as_str()).ok_or_else(|| {
                RegistryError::FixSchemaFile {
                    path: PathBuf::from(format!("schemas/{}.avsc", event_type.as_str())),
                    reason: format!(
                        "no schema names \"sagastream.event_type\": \"{}\", which topic {} carries; add one",
                        event_type.as_str(),
                        topic.name
                    ),
                }
            })?;
            out.push(Planned { topic: topic.name.clone(), subject: subject(&topic.name, &schema.full_name), schema });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_topic_dash_record_full_name() {
        assert_eq!(
            subject("booking.events", "io.sagastream.events.booking.BookingAccepted"),
            "booking.events-io.sagastream.events.booking.BookingAccepted"
        );
    }

    #[test]
    fn every_event_type_of_topics_yaml_has_its_subject() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let topics = Topics::load(&root.join("topics.yaml")).expect("topics.yaml");
        let schemas = crate::load_dir(&root.join("schemas")).expect("schemas/");
        let planned = plan(&topics, &schemas).expect("a schema per event type");
        let pairs: usize = topics.topics.iter().map(|t| t.events.len()).sum();
        assert_eq!(planned.len(), pairs);
        // A type on two topics is two subjects with one schema.
        let mut subjects: Vec<&str> = planned.iter().map(|p| p.subject.as_str()).collect();
        subjects.sort();
        subjects.dedup();
        assert_eq!(subjects.len(), pairs, "subjects are unique");
        assert!(planned.iter().all(|p| p.subject.starts_with(&format!("{}-", p.topic))));
    }
}
