//! A transaction opened while the previous one's commit is in flight goes
//! on from the sealed changes, and an outcome of that commit moves only
//! what it should.

use super::*;

fn counted(out: &Out) -> u64 {
    match decode(&out.record).unwrap().event.data {
        Payload::ProbeCounted(c) => c.count,
        other => panic!("not a count: {other:?}"),
    }
}

#[test]
fn the_next_transaction_reads_the_sealed_changes_and_a_commit_promotes_only_them() {
    let mut e = engine();
    e.process(&input(&record("r1", "a", 0.0), 0)).unwrap();
    e.process(&input(&record("r2", "b", 0.0), 1)).unwrap();
    let positions = BTreeMap::new();
    assert_eq!(e.changelog(&positions).len(), 2);
    e.seal();
    assert!(e.changelog(&positions).is_empty(), "the sealed changes were written with their commit");
    assert!(e.has_pending(), "sealed is not committed");
    // The commit is in flight: the next input of r1 counts on from it.
    let outs = e.process(&input(&record("r1", "c", 0.0), 2)).unwrap();
    assert_eq!(counted(&outs[0]), 2, "read through the sealed layer");
    let dup = e.process(&input(&record("r1", "a", 0.0), 0)).unwrap();
    assert!(dup.is_empty(), "a redelivery of a sealed input is a duplicate");
    assert_eq!(e.committed_state(0, "r1"), None);
    e.commit_sealed();
    assert_eq!(e.committed_state(0, "r1"), Some(&1), "the commit took its own change, not the newer one");
    assert_eq!(e.committed_state(0, "r2"), Some(&1));
    let log = e.changelog(&positions);
    assert_eq!(log.len(), 1, "the open transaction's change is still pending");
    let change: Change<u64> = changelog::decode(&log[0].record).unwrap();
    assert_eq!((change.key.as_str(), change.entry.unwrap().state), ("r1", Some(2)));
    e.commit();
    assert_eq!(e.committed_state(0, "r1"), Some(&2));
    assert!(!e.has_pending());
}

#[test]
fn an_abort_drops_the_sealed_changes_with_the_pending_ones() {
    let mut e = engine();
    e.process(&input(&record("r1", "a", 0.0), 0)).unwrap();
    e.commit();
    // Sealed: a step that sets a timer; pending: one more count.
    e.process(&input(&record("r1", "b", 3.0), 1)).unwrap();
    e.seal();
    assert!(e.next_due().is_some());
    e.process(&input(&record("r1", "c", 0.0), 2)).unwrap();
    assert_eq!(e.stores[&0].get("r1").unwrap().state, Some(3));
    e.abort();
    assert!(!e.has_pending());
    assert_eq!(e.stores[&0].get("r1").unwrap().state, Some(1), "back to the committed count");
    assert_eq!(e.next_due(), None, "the sealed timer went with it");
    // Replayed, both inputs apply again: their ids went with the layers.
    let outs = e.process(&input(&record("r1", "b", 3.0), 1)).unwrap();
    assert!(outs.is_empty(), "a timer step emits nothing");
    let outs = e.process(&input(&record("r1", "c", 0.0), 2)).unwrap();
    assert_eq!(counted(&outs[0]), 3);
}

#[test]
fn a_key_deleted_in_the_sealed_layer_is_gone_for_the_next_transaction() {
    let mut e = engine();
    e.process(&input(&record("r1", "a", 0.0), 0)).unwrap();
    e.commit();
    e.process(&input(&record("r1", "d", 4.0), 1)).unwrap();
    e.seal();
    assert!(e.stores[&0].get("r1").is_none(), "deleted as of the sealed layer");
    let outs = e.process(&input(&record("r1", "e", 0.0), 2)).unwrap();
    assert_eq!(counted(&outs[0]), 1, "a new count after the delete");
    e.commit_sealed();
    assert_eq!(e.committed_state(0, "r1"), None, "the delete committed");
    e.commit();
    assert_eq!(e.committed_state(0, "r1"), Some(&1));
}
