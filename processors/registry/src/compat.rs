//! Offline: is a schema BACKWARD compatible with the latest registered one
//! (can a consumer on the new schema read what was written with the old)?
//! And what changed, field by field, for people.

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

/// `Ok` when `candidate` can read data written with `latest`; else why not.
pub fn backward(latest: &Schema, candidate: &Schema) -> Result<(), String> {
    SchemaCompatibility::can_read(latest, candidate).map(|_| ()).map_err(|e| e.to_string())
}

/// A top-level field's change between two versions of a record schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldChange {
    Added { name: String, avro_type: String, has_default: bool },
    Removed { name: String, avro_type: String },
    Changed { name: String, from: String, to: String },
}

impl std::fmt::Display for FieldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldChange::Added { name, avro_type, has_default: true } => {
                write!(f, "+ {name}: {avro_type} (with a default)")
            }
            FieldChange::Added { name, avro_type, has_default: false } => {
                write!(f, "+ {name}: {avro_type} (no default)")
            }
            FieldChange::Removed { name, avro_type } => write!(f, "- {name}: {avro_type}"),
            FieldChange::Changed { name, from, to } => write!(f, "~ {name}: {from} -> {to}"),
        }
    }
}

/// The fields added, removed or retyped from `old` to `new` (records only).
pub fn diff(old: &Schema, new: &Schema) -> Vec<FieldChange> {
    let (Schema::Record(old), Schema::Record(new)) = (old, new) else { return Vec::new() };
    let ty = |s: &Schema| s.canonical_form();
    let mut out = Vec::new();
    for f in &old.fields {
        match new.fields.iter().find(|n| n.name == f.name) {
            None => out.push(FieldChange::Removed { name: f.name.clone(), avro_type: ty(&f.schema) }),
            Some(n) if ty(&n.schema) != ty(&f.schema) => {
                out.push(FieldChange::Changed { name: f.name.clone(), from: ty(&f.schema), to: ty(&n.schema) })
            }
            Some(_) => {}
        }
    }
    for n in &new.fields {
        if !old.fields.iter().any(|f| f.name == n.name) {
            out.push(FieldChange::Added {
                name: n.name.clone(),
                avro_type: ty(&n.schema),
                has_default: n.default.is_some(),
            });
        }
    }
    out
}

/// The catalog's versioning rule (First Viscount's): add fields freely;
/// removing or changing one needs a new major version of the event. Each
/// change that breaks it, with what to do instead. An added field needs a
/// default too: old records have no value for it.
pub fn catalog_rule(changes: &[FieldChange]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|c| match c {
            FieldChange::Removed { name, .. } => Some(format!(
                "field `{name}` removed: removing a field needs a new major version of the event (docs/schemas.md)"
            )),
            FieldChange::Changed { name, .. } => Some(format!(
                "field `{name}` changed type: changing a field needs a new major version of the event (docs/schemas.md)"
            )),
            FieldChange::Added { name, has_default: false, .. } => Some(format!(
                "field `{name}` added without a default: old records have no value for it; make it [\"null\", T] with \"default\": null"
            )),
            FieldChange::Added { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &str) -> Schema {
        Schema::parse_str(&format!(r#"{{"type":"record","name":"A","namespace":"n","fields":[{fields}]}}"#))
            .expect("schema")
    }

    #[test]
    fn adding_an_optional_field_is_backward_compatible_and_a_required_one_is_not() {
        let v1 = record(r#"{"name":"id","type":"string"}"#);
        let with_default =
            record(r#"{"name":"id","type":"string"},{"name":"n","type":["null","long"],"default":null}"#);
        let without = record(r#"{"name":"id","type":"string"},{"name":"n","type":"long"}"#);
        assert_eq!(backward(&v1, &with_default), Ok(()));
        assert!(backward(&v1, &without).is_err(), "old records lack n and nothing fills it in");
        assert_eq!(
            diff(&v1, &without),
            vec![FieldChange::Added { name: "n".into(), avro_type: r#""long""#.into(), has_default: false }]
        );
    }

    #[test]
    fn removing_a_field_is_backward_compatible_and_retyping_one_is_not() {
        let v1 = record(r#"{"name":"id","type":"string"},{"name":"n","type":"long"}"#);
        let removed = record(r#"{"name":"id","type":"string"}"#);
        let retyped = record(r#"{"name":"id","type":"string"},{"name":"n","type":"string"}"#);
        assert_eq!(backward(&v1, &removed), Ok(()), "a reader ignores what it no longer names");
        assert!(backward(&v1, &retyped).is_err());
        assert_eq!(diff(&v1, &removed), vec![FieldChange::Removed { name: "n".into(), avro_type: r#""long""#.into() }]);
        assert_eq!(
            diff(&v1, &retyped),
            vec![FieldChange::Changed { name: "n".into(), from: r#""long""#.into(), to: r#""string""#.into() }]
        );
        assert_eq!(backward(&v1, &v1), Ok(()));
        assert!(diff(&v1, &v1).is_empty());
    }
}
