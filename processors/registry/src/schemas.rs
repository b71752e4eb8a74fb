//! The `.avsc` files of `schemas/`, parsed.

use std::path::{Path, PathBuf};

use apache_avro::Schema;

use crate::RegistryError;

/// One event type's payload schema.
#[derive(Debug, Clone)]
pub struct SchemaFile {
    pub path: PathBuf,
    /// Its `sagastream.event_type` (`booking.accepted`).
    pub event_type: String,
    /// The record's full name (`io.sagastream.events.booking.BookingAccepted`).
    pub full_name: String,
    /// The file's text, as registered.
    pub text: String,
    pub schema: Schema,
}

impl SchemaFile {
    pub fn parse(path: &Path, text: String) -> Result<SchemaFile, RegistryError> {
        let fix = |reason: String| RegistryError::FixSchemaFile { path: path.to_owned(), reason };
        let schema = Schema::parse_str(&text).map_err(|e| fix(format!("not an Avro schema: {e}")))?;
        let Schema::Record(record) = &schema else {
            return Err(fix("the top level must be a record (the event's payload)".into()));
        };
        let full_name = record.name.fullname(None);
        let event_type = record
            .attributes
            .get("sagastream.event_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| fix("no \"sagastream.event_type\" string property naming the event type".into()))?
            .to_owned();
        Ok(SchemaFile { path: path.to_owned(), event_type, full_name, text, schema })
    }
}

/// Every `.avsc` of a directory, sorted by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<SchemaFile>, RegistryError> {
    let unreadable = |e: std::io::Error| RegistryError::FixSchemaFile { path: dir.to_owned(), reason: e.to_string() };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "avsc"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .map_err(|e| RegistryError::FixSchemaFile { path: p.clone(), reason: e.to_string() })?;
            SchemaFile::parse(p, text)
        })
        .collect()
}
