//! The registry's Confluent-compatible API, through schema_registry_converter
//! (blocking: callers are synchronous), plus the one call it lacks: a
//! subject's compatibility level.

use std::time::Duration;

use schema_registry_converter::blocking::schema_registry::{
    get_all_subjects, is_compatible_schema, perform_sr_call, post_schema, SrSettings,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SrCall, SuppliedSchema};

use crate::RegistryError;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A subject's latest registered version.
#[derive(Debug, Clone)]
pub struct Latest {
    pub id: u32,
    pub version: Option<u32>,
    pub schema: String,
}

pub struct Registry {
    url: String,
    settings: SrSettings,
    http: reqwest::blocking::Client,
}

impl Registry {
    /// A client of the registry at `url` (its Confluent-compatible API's
    /// base, such as `http://127.0.0.1:18081/apis/ccompat/v7`).
    pub fn new(url: &str) -> Result<Registry, RegistryError> {
        let url = url.trim_end_matches('/').to_owned();
        let settings = SrSettings::new_builder(url.clone())
            .set_timeout(TIMEOUT)
            .build()
            .map_err(|e| RegistryError::Unreachable { url: url.clone(), reason: e.to_string() })?;
        let http = reqwest::blocking::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| RegistryError::Unreachable { url: url.clone(), reason: e.to_string() })?;
        Ok(Registry { url, settings, http })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn error(&self, what: String, e: SRCError) -> RegistryError {
        let reason = match &e.cause {
            Some(cause) => format!("{}: {cause}", e.error),
            None => e.error.clone(),
        };
        match e.retriable {
            true => RegistryError::Unreachable { url: self.url.clone(), reason },
            false => RegistryError::Refused { what, reason },
        }
    }

    pub fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        get_all_subjects(&self.settings).map_err(|e| self.error("listing the subjects".into(), e))
    }

    /// The latest version of a subject the registry holds.
    pub fn latest(&self, subject: &str) -> Result<Latest, RegistryError> {
        let raw = perform_sr_call(&self.settings, SrCall::GetLatest(subject))
            .map_err(|e| self.error(format!("the latest version of {subject}"), e))?;
        let schema = raw
            .schema
            .ok_or_else(|| RegistryError::Refused { what: subject.into(), reason: "no schema in the answer".into() })?;
        let id = raw
            .id
            .ok_or_else(|| RegistryError::Refused { what: subject.into(), reason: "no id in the answer".into() })?;
        Ok(Latest { id, version: raw.version, schema })
    }

    /// Registers `schema` under `subject` (the registry checks it against
    /// the subject's compatibility level); its id. Registering a schema the
    /// subject already holds returns its id and adds no version.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
        post_schema(&self.settings, subject.to_owned(), supplied)
            .map(|r| r.id)
            .map_err(|e| self.error(format!("registering {subject}"), e))
    }

    /// Whether the registry deems `schema` compatible with the subject's
    /// latest version, at the subject's level.
    pub fn compatible(&self, subject: &str, schema: &str) -> Result<bool, RegistryError> {
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
        is_compatible_schema(&self.settings, subject.to_owned(), supplied)
            .map_err(|e| self.error(format!("checking {subject}"), e))
    }

    /// Sets a subject's compatibility level to BACKWARD, so the registry
    /// refuses what `check` would refuse.
    pub fn require_backward(&self, subject: &str) -> Result<(), RegistryError> {
        let url = format!("{}/config/{}", self.url, subject.replace('/', "%2F"));
        let response = self
            .http
            .put(&url)
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .body(r#"{"compatibility":"BACKWARD"}"#)
            .send()
            .map_err(|e| RegistryError::Unreachable { url: self.url.clone(), reason: e.to_string() })?;
        match response.status().is_success() {
            true => Ok(()),
            false => Err(RegistryError::Refused {
                what: format!("BACKWARD compatibility for {subject}"),
                reason: format!("{}: {}", response.status(), response.text().unwrap_or_default()),
            }),
        }
    }
}
