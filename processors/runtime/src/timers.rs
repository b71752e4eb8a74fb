//! Pending timers of the owned partitions, kept per partition: each task's
//! timers may fire only up to its own horizon (see [`crate::order`]), and a
//! partition's timers come and go with it.

use std::collections::{BTreeMap, BTreeSet};

/// (due ms since the epoch, key, timer name), earliest first, per partition.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    by_partition: BTreeMap<i32, BTreeSet<(i64, String, String)>>,
    len: usize,
}

impl TimerQueue {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn insert(&mut self, partition: i32, due: i64, key: &str, name: &str) {
        if self.by_partition.entry(partition).or_default().insert((due, key.to_owned(), name.to_owned())) {
            self.len += 1;
        }
    }

    pub(crate) fn remove(&mut self, partition: i32, due: i64, key: &str, name: &str) {
        let Some(set) = self.by_partition.get_mut(&partition) else { return };
        if set.remove(&(due, key.to_owned(), name.to_owned())) {
            self.len -= 1;
        }
    }

    /// A partition's timers all at once, replacing any it had: one sort and
    /// a bulk build instead of an insert each (a restored partition brings
    /// a timer or two for every one of its keys).
    pub(crate) fn install_partition(&mut self, partition: i32, timers: impl Iterator<Item = (i64, String, String)>) {
        self.clear_partition(partition);
        let set: BTreeSet<(i64, String, String)> = timers.collect();
        self.len += set.len();
        if !set.is_empty() {
            self.by_partition.insert(partition, set);
        }
    }

    pub(crate) fn clear_partition(&mut self, partition: i32) {
        if let Some(set) = self.by_partition.remove(&partition) {
            self.len -= set.len();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.by_partition.clear();
        self.len = 0;
    }

    /// The earliest due time of each partition with timers.
    pub(crate) fn heads(&self) -> impl Iterator<Item = (i32, i64)> + '_ {
        self.by_partition.iter().filter_map(|(p, set)| set.first().map(|t| (*p, t.0)))
    }

    pub(crate) fn head_of(&self, partition: i32) -> Option<i64> {
        self.by_partition.get(&partition)?.first().map(|t| t.0)
    }

    /// Takes the partition's earliest timer if it is due by `upto`.
    pub(crate) fn pop_due(&mut self, partition: i32, upto: i64) -> Option<(i64, String, String)> {
        let set = self.by_partition.get_mut(&partition)?;
        if set.first()?.0 > upto {
            return None;
        }
        self.len -= 1;
        set.pop_first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_pop_per_partition_up_to_a_horizon_and_count_once() {
        let mut q = TimerQueue::default();
        q.insert(0, 30, "k1", "hold_timeout");
        q.insert(0, 10, "k2", "hold_timeout");
        q.insert(0, 10, "k2", "hold_timeout");
        q.insert(1, 5, "k3", "purge");
        assert_eq!(q.len(), 3);
        assert_eq!(q.heads().collect::<Vec<_>>(), vec![(0, 10), (1, 5)]);
        assert_eq!(q.pop_due(0, 9), None);
        assert_eq!(q.pop_due(0, 10), Some((10, "k2".into(), "hold_timeout".into())));
        assert_eq!(q.pop_due(0, 29), None);
        q.remove(0, 30, "k1", "hold_timeout");
        q.remove(0, 30, "k1", "hold_timeout");
        assert_eq!(q.len(), 1);
        q.clear_partition(1);
        assert_eq!((q.len(), q.heads().count()), (0, 0));
    }

    #[test]
    fn a_partition_installed_at_once_is_the_same_as_inserted_one_by_one() {
        let timers = [(30, "k1", "hold"), (10, "k2", "hold"), (10, "k2", "hold"), (20, "k1", "purge")];
        let mut one_by_one = TimerQueue::default();
        for (due, key, name) in timers {
            one_by_one.insert(3, due, key, name);
        }
        let mut at_once = TimerQueue::default();
        at_once.insert(3, 99, "old", "gone");
        at_once.insert(4, 7, "other", "stays");
        at_once.install_partition(3, timers.iter().map(|(d, k, n)| (*d, k.to_string(), n.to_string())));
        assert_eq!(at_once.len(), one_by_one.len() + 1, "replaced partition 3's, kept partition 4's");
        assert_eq!(at_once.by_partition[&3], one_by_one.by_partition[&3]);
        at_once.install_partition(3, std::iter::empty());
        assert_eq!((at_once.len(), at_once.heads().collect::<Vec<_>>()), (1, vec![(4, 7)]));
    }
}
