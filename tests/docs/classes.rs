//! Each stateful processor's DLQ classes, as its doc lists them, against the
//! codes of its rejection-class enum: a class added in code without its doc
//! line, or documented and gone, fails here.

use sagastream_runtime::RejectionClass;

use crate::transitions::{read, root};

const LEAD: &str = "DLQ classes (the `__streams.errors.exception` header):";

/// The backticked names after [`LEAD`], up to "plus the runtime's".
fn documented(doc: &str) -> Vec<String> {
    let text = read(&root().join(doc)).split_whitespace().collect::<Vec<_>>().join(" ");
    let after = text.split(LEAD).nth(1).unwrap_or_else(|| panic!("{doc} has no line {LEAD:?}"));
    let list = after.split("plus the runtime's").next().expect("split yields one part");
    list.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

fn codes<C: RejectionClass>() -> Vec<String> {
    C::ALL.iter().map(|c| c.code().to_owned()).collect()
}

#[test]
fn every_processor_documents_exactly_its_dlq_classes() {
    let cases = [
        ("docs/escrow-saga.md", codes::<sagastream_escrow_saga::saga::Class>()),
        ("docs/order-saga.md", codes::<sagastream_order_saga::saga::Class>()),
        ("docs/inventory.md", codes::<sagastream_inventory::Class>()),
        ("docs/tracking.md", codes::<sagastream_tracking::Class>()),
        ("docs/runner.md", codes::<sagastream_runner::Class>()),
    ];
    for (doc, code) in cases {
        assert!(!code.is_empty());
        assert_eq!(documented(doc), code, "{doc}'s DLQ classes (left) vs the code's, in declaration order (right)");
    }
    let ingest: Vec<String> = sagastream_ingest::TranslateError::CLASSES.iter().map(|c| c.to_string()).collect();
    assert_eq!(documented("docs/ingest.md"), ingest, "docs/ingest.md's DLQ classes (left) vs TranslateError's (right)");
}
