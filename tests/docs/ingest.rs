//! docs/events.md's table of platform and legacy type names against the
//! ingest processor's mapping (every row, in order, with the CloudEvent type
//! it becomes or "not carried") and the contract's legacy aliases.

use sagastream_ingest::mapping::TABLE;
use sagastream_topics::Envelope;

use crate::transitions::{read, root};

const HEADER: &str = "| platform | native type | CloudEvent type |";

fn platform(name: &str) -> Envelope {
    match name {
        "First Viscount" => Envelope::FirstViscount,
        "Go4u" => Envelope::Go4u,
        "KorrectNG" => Envelope::Korrectng,
        other => panic!("docs/events.md: unknown platform {other:?}"),
    }
}

#[test]
fn the_ingest_type_table_is_the_mapping() {
    let text = read(&root().join("docs/events.md"));
    let table = text.split(HEADER).nth(1).expect("docs/events.md has the type table");
    let documented: Vec<(Envelope, String, Option<String>)> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            let target = cells[2].strip_prefix('`').and_then(|c| c.strip_suffix('`')).map(str::to_owned);
            assert!(target.is_some() || cells[2] == "not carried", "docs/events.md: {l}");
            (platform(cells[0]), cells[1].trim_matches('`').to_owned(), target)
        })
        .collect();
    let code: Vec<(Envelope, String, Option<String>)> = TABLE
        .iter()
        .map(|r| {
            let target = r.target.event_type().map(|t| t.as_str().to_owned());
            (r.platform, r.native.to_owned(), target)
        })
        .collect();
    assert_eq!(documented, code, "docs/events.md's type table (left) vs mapping::TABLE (right)");
    // The contract's legacy aliases are First Viscount rows of the same table.
    for (legacy, canonical) in sagastream_contract::LEGACY_TYPE_NAMES {
        let row = (Envelope::FirstViscount, legacy.to_string(), Some(canonical.as_str().to_owned()));
        assert!(documented.contains(&row), "{legacy} -> {} is not a First Viscount row", canonical.as_str());
    }
}
