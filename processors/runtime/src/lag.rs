//! Lag in seconds: how long the oldest input not yet processed has waited.
//!
//! The consumer knows its position and the log end, not when the record at
//! its position was written. So each partition keeps the log end it saw
//! over time (as kafka-lag-exporter does), and the record at the position
//! was appended between the last sample whose end was not past it and the
//! first whose end was: its age is read there, interpolated. Pure: the
//! loop feeds it the statistics librdkafka reports every second.

use std::collections::VecDeque;

/// Samples kept per partition, taken only when the end moved: an hour of
/// one-second samples at the most.
const MAX_SAMPLES: usize = 3_600;

#[derive(Debug, Default, Clone)]
pub struct EndHistory {
    /// (when, in ms since the epoch; the log end then), oldest first.
    samples: VecDeque<(i64, i64)>,
}

impl EndHistory {
    /// The log end seen at `now_ms`.
    pub fn record(&mut self, now_ms: i64, end: i64) {
        match self.samples.back() {
            Some(&(_, last)) if last == end => return,
            // A truncated or recreated partition: the history no longer holds.
            Some(&(_, last)) if end < last => self.samples.clear(),
            _ => {}
        }
        self.samples.push_back((now_ms, end));
        if self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// How old, in ms at `now_ms`, the record at `position` (the next to
    /// process) is; 0 when none is waiting. Beyond the history it is at
    /// least as old as the oldest sample.
    pub fn lag_ms(&self, now_ms: i64, position: i64) -> i64 {
        let Some(&(_, end)) = self.samples.back() else { return 0 };
        if position >= end {
            return 0;
        }
        let first_past = self.samples.iter().position(|&(_, e)| e > position).expect("the last end is past");
        let (t2, e2) = self.samples[first_past];
        let appended = match first_past.checked_sub(1).map(|i| self.samples[i]) {
            // Written after the previous sample, by the time of this one:
            // spread evenly over the records between them.
            Some((t1, e1)) => t1 + (t2 - t1) * (position + 1 - e1) / (e2 - e1),
            None => t2,
        };
        (now_ms - appended).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_up_is_zero_and_behind_reads_the_age_of_the_next_record() {
        let mut h = EndHistory::default();
        assert_eq!(h.lag_ms(5_000, 0), 0, "no samples yet");
        h.record(1_000, 100);
        h.record(2_000, 200);
        h.record(3_000, 300);
        assert_eq!(h.lag_ms(10_000, 300), 0, "at the end: nothing waits");
        // Offset 250 was written between 2 s (end 200) and 3 s (end 300).
        assert_eq!(h.lag_ms(10_000, 250), 10_000 - 2_510);
        // Offset 150, between 1 s and 2 s.
        assert_eq!(h.lag_ms(10_000, 150), 10_000 - 1_510);
        // Before the first sample: at least as old as it.
        assert_eq!(h.lag_ms(10_000, 50), 9_000);
    }

    #[test]
    fn an_idle_partition_does_not_age_its_history() {
        let mut h = EndHistory::default();
        h.record(1_000, 10);
        for t in 2..100 {
            h.record(t * 1_000, 10);
        }
        assert_eq!(h.samples.len(), 1, "only moves of the end are kept");
        h.record(100_000, 11);
        assert_eq!(h.lag_ms(100_500, 10), 500, "the new record is half a second old");
    }

    #[test]
    fn a_truncated_partition_starts_a_new_history_and_samples_are_bounded() {
        let mut h = EndHistory::default();
        h.record(1_000, 500);
        h.record(2_000, 20);
        assert_eq!(h.samples.len(), 1);
        for i in 0..(MAX_SAMPLES as i64 + 10) {
            h.record(3_000 + i, 21 + i);
        }
        assert_eq!(h.samples.len(), MAX_SAMPLES);
    }
}
