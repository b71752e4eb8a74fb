//! Records the open transaction wrote to the instance's own input
//! partitions (the escrow saga's `booking.completed` on `booking.events`,
//! the order saga's re-keyed records on its repartition topic), and when
//! they call for committing before the commit interval is up.
//!
//! A `read_committed` consumer sees nothing of such a partition past the
//! transaction's first record there until the transaction ends: neither the
//! instance's own records, which it may have to read back, nor any record
//! another producer wrote after them. Left to the commit interval, every
//! such input waits up to one whole interval before it is even read, and
//! then again for the commit of its own effects: at the default 100 ms, a
//! p50 of about 1.5 intervals under load. So the loop commits early, once
//! the transaction is [`OwnWrites::EARLY_FLOOR`] of the interval old, when
//! - **held back:** a record that is not ours sits behind ours: the
//!   partition's high watermark (librdkafka's copy from the latest fetch
//!   response, no request) is further past our first record there than the
//!   records we sent to it. Our first record's offset comes from its
//!   delivery report; the count of those sent is exact, so this never fires
//!   for our own records alone, nor for records still to be read ahead of
//!   ours (a full topic being drained commits no more often than before).
//! - **read back:** the loop found nothing to do (an empty poll) while its
//!   own records wait for the commit to be read.
//!
//! Under load neither holds for long: the inputs keep the loop busy and a
//! drained backlog has nothing behind our records, so the interval and the
//! record count still set the pace there.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// First offsets delivered per own-input partition, written by the
/// producer's delivery callback on librdkafka's thread. A record carries a
/// tag: the generation of the transaction that sent it (so a late report of
/// an earlier transaction counts for nothing) and its partition's slot;
/// tag 0 is a record not tracked.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    first: Mutex<HashMap<u32, (u32, i64)>>,
}

impl Deliveries {
    fn tag(generation: u32, slot: u32) -> usize {
        // Slots start at 1, so a tracked tag is never 0.
        ((generation as usize) << 32) | slot as usize
    }

    /// A record of `tag` was written at `offset`.
    pub(super) fn delivered(&self, tag: usize, offset: i64) {
        if tag == 0 || offset < 0 {
            return;
        }
        let (generation, slot) = ((tag >> 32) as u32, tag as u32);
        let mut first = super::lock(&self.first);
        match first.get_mut(&slot) {
            Some((g, o)) if *g == generation => *o = (*o).min(offset),
            _ => {
                first.insert(slot, (generation, offset));
            }
        }
    }

    fn first(&self, generation: u32, slot: u32) -> Option<i64> {
        super::lock(&self.first).get(&slot).filter(|(g, _)| *g == generation).map(|(_, o)| *o)
    }
}

#[derive(Debug, Clone, Copy)]
struct Written {
    slot: u32,
    sent: u64,
}

/// Why a transaction is committed before its interval is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Early {
    HeldBack,
    ReadBack,
}

impl Early {
    pub(super) fn label(self) -> &'static str {
        match self {
            Early::HeldBack => "held_back",
            Early::ReadBack => "read_back",
        }
    }
}

pub(super) struct OwnWrites {
    deliveries: Arc<Deliveries>,
    generation: u32,
    open: HashMap<(&'static str, i32), Written>,
    /// Partitions the transaction whose commit is in flight wrote to: their
    /// last stable offset stays pinned until it ends.
    committing: HashSet<(&'static str, i32)>,
    /// Slot numbers per own-input partition, stable for the instance's life.
    slots: HashMap<(&'static str, i32), u32>,
}

impl OwnWrites {
    /// The share of the commit interval a transaction stays open at least
    /// before an early commit: at the default 100 ms, at most 50 commits a
    /// second, where the interval alone makes 10.
    pub(super) const EARLY_FLOOR: u32 = 5;

    pub(super) fn new(deliveries: Arc<Deliveries>) -> OwnWrites {
        OwnWrites { deliveries, generation: 1, open: HashMap::new(), committing: HashSet::new(), slots: HashMap::new() }
    }

    /// Counts a record sent to an own input partition; returns the tag its
    /// delivery report brings back.
    pub(super) fn wrote(&mut self, topic: &'static str, partition: i32) -> usize {
        let next = self.slots.len() as u32 + 1;
        let slot = *self.slots.entry((topic, partition)).or_insert(next);
        self.open.entry((topic, partition)).or_insert(Written { slot, sent: 0 }).sent += 1;
        Deliveries::tag(self.generation, slot)
    }

    /// Whether the open transaction, or the one being committed, wrote to the partition.
    pub(super) fn contains(&self, topic: &'static str, partition: i32) -> bool {
        self.open.contains_key(&(topic, partition)) || self.committing.contains(&(topic, partition))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The transaction ended (committed or aborted), with any commit in
    /// flight: what they wrote is nobody's concern here any more.
    pub(super) fn clear(&mut self) {
        self.committing.clear();
        self.open.clear();
        self.generation = self.generation.wrapping_add(1).max(1);
    }

    /// The open transaction was handed to a background commit: nothing can
    /// commit it earlier now, but its partitions' ends stay unknown until
    /// [`OwnWrites::settled`].
    pub(super) fn hand_over(&mut self) {
        self.committing.extend(self.open.drain().map(|(tp, _)| tp));
        self.generation = self.generation.wrapping_add(1).max(1);
    }

    /// The commit in flight ended: its records are readable (or aborted).
    pub(super) fn settled(&mut self) {
        self.committing.clear();
    }

    /// Whether a record not ours sits behind ours on some partition, given
    /// each partition's high watermark as librdkafka last fetched it.
    pub(super) fn held_back(&self, mut high_watermark: impl FnMut(&'static str, i32) -> Option<i64>) -> bool {
        self.open.iter().any(|(&(topic, partition), w)| {
            let Some(first) = self.deliveries.first(self.generation, w.slot) else { return false };
            // Offsets from our first record to the end hold our records
            // (those delivered so far) and anybody else's.
            high_watermark(topic, partition).is_some_and(|high| high - first > w.sent as i64)
        })
    }

    /// Why the open transaction, `age` old, should be committed now, if it should.
    pub(super) fn early(
        &self,
        age: Duration,
        interval: Duration,
        idle: bool,
        high_watermark: impl FnMut(&'static str, i32) -> Option<i64>,
    ) -> Option<Early> {
        if self.open.is_empty() || age < interval / Self::EARLY_FLOOR {
            return None;
        }
        if idle {
            return Some(Early::ReadBack);
        }
        self.held_back(high_watermark).then_some(Early::HeldBack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn writes() -> (Arc<Deliveries>, OwnWrites) {
        let d = Arc::new(Deliveries::default());
        (d.clone(), OwnWrites::new(d))
    }

    #[test]
    fn only_a_record_not_ours_behind_ours_is_held_back() {
        let (d, mut w) = writes();
        let tags: Vec<usize> = (0..3).map(|_| w.wrote("booking.events", 2)).collect();
        // Not delivered yet: nothing known of where ours start.
        assert!(!w.held_back(|_, _| Some(1_000)));
        for (i, tag) in tags.iter().enumerate() {
            d.delivered(*tag, 100 + i as i64);
        }
        // Ours are 100..=102: a high watermark of 103 is ours alone.
        assert!(!w.held_back(|_, _| Some(103)));
        assert!(w.held_back(|_, _| Some(104)), "one record beyond ours");
        // Records still to be read ahead of ours do not count.
        assert!(!w.held_back(|_, _| None));
    }

    #[test]
    fn a_late_report_of_an_ended_transaction_counts_for_nothing() {
        let (d, mut w) = writes();
        let old = w.wrote("booking.events", 0);
        w.clear();
        let new = w.wrote("booking.events", 0);
        d.delivered(old, 10);
        assert!(!w.held_back(|_, _| Some(50)), "the old transaction's offset is not this one's");
        d.delivered(new, 40);
        assert!(w.held_back(|_, _| Some(50)));
        assert!(!w.held_back(|_, _| Some(41)));
        w.clear();
        assert!(w.is_empty());
        assert!(!w.held_back(|_, _| Some(50)));
    }

    #[test]
    fn a_partition_handed_to_a_background_commit_stays_unjudged_until_it_settles() {
        let (d, mut w) = writes();
        let tag = w.wrote("booking.events", 1);
        d.delivered(tag, 10);
        w.hand_over();
        assert!(w.is_empty(), "nothing open can be committed early");
        assert!(!w.held_back(|_, _| Some(50)), "the commit in flight is not the open transaction");
        assert!(w.contains("booking.events", 1), "its end is not judged while the commit is in flight");
        assert!(!w.contains("booking.events", 0));
        w.wrote("booking.events", 0);
        w.settled();
        assert!(!w.contains("booking.events", 1), "committed: readable again");
        assert!(w.contains("booking.events", 0), "the open transaction's write stays");
        w.hand_over();
        w.clear();
        assert!(!w.contains("booking.events", 0), "an abort forgets both");
        assert!(!w.held_back(|_, _| Some(50)));
    }

    #[test]
    fn partitions_are_told_apart() {
        let (d, mut w) = writes();
        let a = w.wrote("booking.events", 0);
        let b = w.wrote("booking.events", 1);
        let c = w.wrote("payment.events", 0);
        assert!(a != b && b != c && a != c && a != 0);
        d.delivered(a, 5);
        d.delivered(b, 500);
        d.delivered(c, 7);
        let high = |t: &str, p: i32| Some(if (t, p) == ("booking.events", 1) { 502 } else { 6 });
        assert!(w.held_back(high), "partition 1 has one record behind ours");
        assert!(w.contains("payment.events", 0) && !w.contains("payment.events", 1));
    }

    #[test]
    fn an_early_commit_waits_for_its_floor_and_needs_a_reason() {
        let (d, mut w) = writes();
        let interval = 100 * MS;
        assert_eq!(w.early(50 * MS, interval, true, |_, _| Some(1)), None, "nothing of ours written");
        let tag = w.wrote("repartition", 3);
        d.delivered(tag, 0);
        assert_eq!(w.early(19 * MS, interval, true, |_, _| Some(9)), None, "younger than a fifth of the interval");
        assert_eq!(w.early(20 * MS, interval, true, |_, _| Some(1)), Some(Early::ReadBack));
        assert_eq!(w.early(20 * MS, interval, false, |_, _| Some(1)), None, "busy and nothing held back");
        assert_eq!(w.early(20 * MS, interval, false, |_, _| Some(9)), Some(Early::HeldBack));
    }
}
