//! docs/schemas.md's evolution rules: each row's change made to a record
//! schema, against what the offline BACKWARD check and the catalog's rule
//! (the two of `sagactl schemas check` that need no registry) decide.

use apache_avro::Schema;
use sagastream_registry::{backward, catalog_rule, diff};

fn record(fields: &str) -> Schema {
    Schema::parse_str(&format!(r#"{{"type":"record","name":"R","namespace":"n","fields":[{fields}]}}"#)).unwrap()
}

/// (old, new) schemas for a row's change; `None` for a row no case covers.
fn cases(change: &str) -> Option<Vec<(Schema, Schema)>> {
    let id = r#"{"name":"id","type":"string"}"#;
    let v1 = record(&format!(r#"{id},{{"name":"n","type":"int"}}"#));
    let with = |extra: &str| record(&format!(r#"{id},{{"name":"n","type":"int"}},{extra}"#));
    Some(match change {
        c if c.starts_with("add an optional field") => {
            vec![(v1.clone(), with(r#"{"name":"x","type":["null","string"],"default":null}"#))]
        }
        c if c.starts_with("add a field with a default") => {
            vec![(v1.clone(), with(r#"{"name":"x","type":"long","default":0}"#))]
        }
        c if c.starts_with("add a field without a default") => {
            vec![(v1.clone(), with(r#"{"name":"x","type":"long"}"#))]
        }
        c if c.starts_with("remove a field") => vec![(v1.clone(), record(id))],
        // A promotion, then a retyping that is none.
        c if c.starts_with("change a field's type") => vec![
            (v1.clone(), record(&format!(r#"{id},{{"name":"n","type":"long"}}"#))),
            (v1.clone(), record(&format!(r#"{id},{{"name":"n","type":"string"}}"#))),
        ],
        c if c.starts_with("rename a field") => {
            vec![(v1.clone(), record(&format!(r#"{id},{{"name":"m","type":"int"}}"#)))]
        }
        _ => return None,
    })
}

#[test]
fn the_evolution_rules_table_is_what_the_checks_decide() {
    let doc = std::fs::read_to_string(sagastream_e2e::repo_root().join("docs/schemas.md")).unwrap();
    let table =
        doc.split("| change | BACKWARD | the catalog's rule | what to do |").nth(1).expect("the evolution rules table");
    let rows: Vec<Vec<String>> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().replace('`', "")).collect())
        .collect();
    assert_eq!(rows.len(), 6, "a case below for every row");
    for row in rows {
        let (change, compat, rule) = (&row[0], &row[1], &row[2]);
        let cases = cases(change).unwrap_or_else(|| panic!("no case for the row {change:?}: add one"));
        let compatible: Vec<bool> = cases.iter().map(|(old, new)| backward(old, new).is_ok()).collect();
        let expected = match compat.split([' ', ':']).next() {
            Some("compatible") => vec![true; cases.len()],
            Some("refused") => vec![false; cases.len()],
            // The promotion passes, the other retyping does not.
            Some("depends") => vec![true, false],
            other => panic!("{change}: unknown BACKWARD cell {other:?}"),
        };
        assert_eq!(compatible, expected, "{change}: BACKWARD column says {compat:?}");
        let allowed: Vec<bool> = cases.iter().map(|(old, new)| catalog_rule(&diff(old, new)).is_empty()).collect();
        let expected = match rule.split([' ', ':']).next() {
            Some("allowed") => true,
            Some("refused") => false,
            other => panic!("{change}: unknown rule cell {other:?}"),
        };
        assert!(
            allowed.iter().all(|a| *a == expected),
            "{change}: the catalog's rule column says {rule:?}, got {allowed:?}"
        );
    }
}

#[test]
fn the_wire_format_failure_table_names_exactly_the_codecs_dlq_classes() {
    use sagastream_registry::avro::AvroError;
    let doc = std::fs::read_to_string(sagastream_e2e::repo_root().join("docs/schemas.md")).unwrap();
    let table = doc.split("| failure | meaning | what happens |").nth(1).expect("the failure table");
    let mut documented: Vec<String> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(2)?.trim().strip_prefix('`')?.strip_suffix('`').map(str::to_owned))
        .collect();
    documented.sort();
    let every = [
        AvroError::RetryLater(String::new()),
        AvroError::UnknownSchemaId { id: 1 },
        AvroError::Undecodable(String::new()),
        AvroError::NotAnEvent(String::new()),
        AvroError::DoesNotFit { event_type: String::new(), reason: String::new() },
    ];
    let mut classes: Vec<String> = every.iter().filter_map(|e| e.class().map(str::to_owned)).collect();
    classes.sort();
    assert_eq!(documented, classes);
    // The one that is no class: retried, which the table says in words.
    assert!(every.iter().any(|e| e.class().is_none()) && table.contains("retried (`RetryLater`)"));
}

/// No catch-all: a new variant fails to compile here until it joins the list above.
#[allow(dead_code)]
fn every_avro_error_is_listed(e: &sagastream_registry::avro::AvroError) {
    use sagastream_registry::avro::AvroError;
    match e {
        AvroError::RetryLater(_)
        | AvroError::UnknownSchemaId { .. }
        | AvroError::Undecodable(_)
        | AvroError::NotAnEvent(_)
        | AvroError::DoesNotFit { .. } => {}
    }
}
