//! Keyed state in three layers (committed, sealed, pending) and how a
//! transaction's changes move between them: sealed when its commit starts,
//! committed when it went through, dropped when it aborted.

use std::collections::HashMap;

use super::{timers_of, Engine};
use crate::changelog::Entry;
use crate::metrics::PartitionLabel;
use crate::processor::Processor;

/// Committed state of one partition, under the changes of the transaction
/// being committed and those of the open one. Reads see the newest layer.
pub(super) struct PartitionStore<S> {
    pub(super) committed: HashMap<String, Entry<S>>,
    /// The changes of a transaction whose commit is in flight: the open
    /// transaction goes on from them; they become committed once it
    /// commits, and are dropped with everything after them if it fails.
    /// `None` deletes the key.
    pub(super) sealed: HashMap<String, Option<Entry<S>>>,
    /// The open transaction's changes. `None` deletes the key.
    pub(super) pending: HashMap<String, Option<Entry<S>>>,
}

impl<S> PartitionStore<S> {
    pub(super) fn new(committed: HashMap<String, Entry<S>>) -> PartitionStore<S> {
        PartitionStore { committed, sealed: HashMap::new(), pending: HashMap::new() }
    }

    pub(super) fn get(&self, key: &str) -> Option<&Entry<S>> {
        match self.pending.get(key).or_else(|| self.sealed.get(key)) {
            Some(change) => change.as_ref(),
            None => self.committed.get(key),
        }
    }
}

impl<P: Processor> Engine<P> {
    /// The open transaction is being committed (its changelog is written):
    /// its changes are sealed, and the next transaction starts on top of
    /// them. One commit is in flight at a time, so nothing is sealed yet;
    /// should anything be, the newer change wins.
    pub fn seal(&mut self) {
        for store in self.stores.values_mut() {
            if store.sealed.is_empty() {
                std::mem::swap(&mut store.sealed, &mut store.pending);
            } else {
                store.sealed.extend(store.pending.drain());
            }
        }
    }

    /// The commit in flight went through: the sealed changes become the
    /// committed state. The open transaction's stay pending.
    pub fn commit_sealed(&mut self) {
        for (partition, store) in self.stores.iter_mut() {
            for (key, entry) in store.sealed.drain() {
                self.census.change(&*self.processor, store.committed.get(&key), entry.as_ref());
                match entry {
                    Some(e) => store.committed.insert(key, e),
                    None => store.committed.remove(&key),
                };
            }
            self.metrics
                .state_entries
                .get_or_create(&PartitionLabel { partition: *partition })
                .set(store.committed.len() as i64);
        }
        self.attempt = 1;
        self.census.publish(&self.metrics);
        self.metrics.timers_pending.set(self.timers.len() as i64);
    }

    /// The transaction committed: its changes become the committed state.
    pub fn commit(&mut self) {
        self.seal();
        self.commit_sealed();
    }

    /// The transaction aborted (and with it any commit in flight): state
    /// and timers go back to the committed version.
    pub fn abort(&mut self) {
        self.timers.clear();
        for (partition, store) in self.stores.iter_mut() {
            store.pending.clear();
            store.sealed.clear();
            self.timers.install_partition(*partition, timers_of(&store.committed));
        }
        self.attempt += 1;
        self.metrics.timers_pending.set(self.timers.len() as i64);
    }
}
