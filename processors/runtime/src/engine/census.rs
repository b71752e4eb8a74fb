//! Keys per state label (`sagastream_sagas_active{state}`): the processor
//! names a state's label (a saga's phase), and the count follows the
//! committed state, so an aborted transaction never shows.

use std::collections::{BTreeMap, HashMap};

use crate::changelog::Entry;
use crate::metrics::{Metrics, StateLabel};
use crate::processor::Processor;

#[derive(Debug, Default)]
pub(super) struct Census {
    counts: BTreeMap<&'static str, i64>,
}

impl Census {
    fn label<P: Processor>(processor: &P, entry: Option<&Entry<P::State>>) -> Option<&'static str> {
        processor.state_label(entry?.state.as_ref()?)
    }

    /// A committed change of one key: `before` becomes `after`.
    pub(super) fn change<P: Processor>(
        &mut self,
        processor: &P,
        before: Option<&Entry<P::State>>,
        after: Option<&Entry<P::State>>,
    ) {
        let (old, new) = (Census::label(processor, before), Census::label(processor, after));
        if old != new {
            self.add(old, -1);
            self.add(new, 1);
        }
    }

    /// A partition's state comes (`sign` 1) or goes (-1) as a whole.
    pub(super) fn partition<P: Processor>(
        &mut self,
        processor: &P,
        state: &HashMap<String, Entry<P::State>>,
        sign: i64,
    ) {
        for entry in state.values() {
            self.add(Census::label(processor, Some(entry)), sign);
        }
    }

    fn add(&mut self, label: Option<&'static str>, n: i64) {
        if let Some(l) = label {
            *self.counts.entry(l).or_default() += n;
        }
    }

    pub(super) fn publish(&self, metrics: &Metrics) {
        for (state, n) in &self.counts {
            metrics.sagas_active.get_or_create(&StateLabel { state }).set(*n);
        }
    }
}
