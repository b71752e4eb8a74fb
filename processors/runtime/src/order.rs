//! The order in which one task's co-partitioned inputs reach the processor.
//!
//! A task is one partition number of the state: partition `p` of every
//! input topic. Live, their records arrive about in the order they were
//! written; from topics that already hold history (a replay, an application
//! reset, a processor deployed onto old topics) the consumer hands out
//! whole fetches of one topic before the other, so a payment can be read
//! before the booking it answers. Under [`InputOrder::EventTime`] the
//! records of a task are buffered per input partition ("lane") and the one
//! with the smallest timestamp goes first, as Kafka Streams' PartitionGroup
//! does. A lane with nothing buffered holds the task back until the runner
//! has seen that it is fetched to its end (Kafka Streams: a lag of 0), or
//! until it has been silent for `max_idle` while the consumer had nothing
//! else to hand out (Kafka Streams' `max.task.idle.ms`). Silence while the
//! consumer is busy proves nothing: with history to read, the lane's records
//! sit in the client's queue behind other partitions' (seen: a replay
//! processed payments before their bookings that way). In all, a lane holds
//! its task back at most [`SILENCE_CAP`] × `max_idle`, so a partition whose
//! leader is gone delays its task boundedly, never forever.
//!
//! The same view decides when a task's timers may fire: only once every
//! input written before the timer's due time has been processed, so a hold
//! timeout cannot overtake, in a replay, the hold that came in time live.
//!
//! Pure: no Kafka, no clock of its own; the runner passes `now`.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// The longest a silent lane holds its task back, in units of `max_idle`,
/// even while the consumer is busy with other partitions.
pub const SILENCE_CAP: u32 = 10;

/// How a task's inputs are interleaved (`--input-order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputOrder {
    /// As the consumer returns them: no buffering, no waiting.
    Arrival,
    /// Smallest timestamp first across the task's partitions.
    EventTime { max_idle: Duration },
}

/// A buffered input and where it came from.
#[derive(Debug)]
pub struct Buffered<R> {
    pub topic: &'static str,
    pub partition: i32,
    pub timestamp_ms: i64,
    pub item: R,
}

#[derive(Debug)]
struct Lane<R> {
    queue: VecDeque<Buffered<R>>,
    /// When a record last arrived (or the lane was created).
    heard: Instant,
    /// The runner found nothing beyond what it delivered; cleared by the next record.
    at_end: bool,
}

#[derive(Debug)]
struct Task<R> {
    /// One per input topic, in the processor's declared order (the tie-break).
    lanes: Vec<Lane<R>>,
    /// The largest timestamp processed: how far the task's time has come.
    stream_time: i64,
}

/// Why [`Lanes::pop`] let a record go before its task's lanes were all known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforced {
    /// Every other lane had a record or was at its end.
    No,
    /// A lane was silent for `max_idle`.
    Idle,
    /// The buffers were full.
    Full,
}

/// Every owned task's lanes.
#[derive(Debug)]
pub struct Lanes<R> {
    topics: Vec<&'static str>,
    max_idle: Duration,
    max_buffered: usize,
    tasks: BTreeMap<i32, Task<R>>,
    buffered: usize,
    /// Since when the consumer has had nothing to hand out.
    starved_since: Option<Instant>,
}

impl<R> Lanes<R> {
    pub fn new(topics: Vec<&'static str>, max_idle: Duration, max_buffered: usize) -> Lanes<R> {
        Lanes { topics, max_idle, max_buffered, tasks: BTreeMap::new(), buffered: 0, starved_since: None }
    }

    pub fn topics(&self) -> &[&'static str] {
        &self.topics
    }

    /// A task taken up: its lanes start empty and not known to be at their end.
    pub fn assign(&mut self, partition: i32, now: Instant) {
        let lanes = self.topics.iter().map(|_| Lane { queue: VecDeque::new(), heard: now, at_end: false }).collect();
        if let Some(old) = self.tasks.insert(partition, Task { lanes, stream_time: i64::MIN }) {
            self.buffered -= old.lanes.iter().map(|l| l.queue.len()).sum::<usize>();
        }
    }

    /// A task given up: its buffered records are dropped unprocessed (the
    /// next owner reads them from the committed offsets).
    pub fn revoke(&mut self, partition: i32) {
        if let Some(old) = self.tasks.remove(&partition) {
            self.buffered -= old.lanes.iter().map(|l| l.queue.len()).sum::<usize>();
        }
    }

    /// The consumer was put back on the committed offsets: what is buffered
    /// will be read again.
    pub fn rewind(&mut self, now: Instant) {
        for task in self.tasks.values_mut() {
            for lane in &mut task.lanes {
                lane.queue.clear();
                lane.heard = now;
                lane.at_end = false;
            }
        }
        self.buffered = 0;
    }

    fn lane_index(&self, topic: &str) -> Option<usize> {
        self.topics.iter().position(|t| *t == topic)
    }

    /// Buffers a record; `Err` gives it back when its task is not owned.
    pub fn push(&mut self, record: Buffered<R>, now: Instant) -> Result<(), Buffered<R>> {
        let Some(i) = self.lane_index(record.topic) else { return Err(record) };
        let Some(task) = self.tasks.get_mut(&record.partition) else { return Err(record) };
        let lane = &mut task.lanes[i];
        lane.heard = now;
        lane.at_end = false;
        lane.queue.push_back(record);
        self.starved_since = None;
        self.buffered += 1;
        Ok(())
    }

    /// The fast path: a record whose task has nothing buffered and whose
    /// other lanes are all known at their end (or idle) is the oldest of
    /// its task by definition, so it may go at once, unbuffered. Returns
    /// whether it may, and if so counts it as arrived and processed.
    pub fn pass(&mut self, topic: &str, partition: i32, timestamp_ms: i64, now: Instant) -> bool {
        let Some(i) = self.lane_index(topic) else { return false };
        let Some(task) = self.tasks.get(&partition) else { return false };
        let clear = task.lanes.iter().enumerate().all(|(j, l)| {
            l.queue.is_empty() && (j == i || matches!(self.empty_lane_ready(l, now), Some(Enforced::No)))
        });
        if !clear {
            return false;
        }
        let task = self.tasks.get_mut(&partition).expect("found above");
        let lane = &mut task.lanes[i];
        lane.heard = now;
        lane.at_end = false;
        task.stream_time = task.stream_time.max(timestamp_ms);
        self.starved_since = None;
        true
    }

    /// Nothing is buffered for this input partition (its position is the processed one).
    pub fn is_drained(&self, topic: &str, partition: i32) -> bool {
        match (self.lane_index(topic), self.tasks.get(&partition)) {
            (Some(i), Some(task)) => task.lanes[i].queue.is_empty(),
            _ => true,
        }
    }

    /// A poll found nothing to hand out.
    pub fn starved(&mut self, now: Instant) {
        self.starved_since.get_or_insert(now);
    }

    /// Empty lanes not yet known to be at their end: the ones worth asking
    /// the client about; with `blocking`, only those holding buffered records back.
    pub fn unknown(&self, blocking: bool) -> Vec<(&'static str, i32)> {
        let mut out = Vec::new();
        for (p, task) in &self.tasks {
            if blocking && task.lanes.iter().all(|l| l.queue.is_empty()) {
                continue;
            }
            for (i, lane) in task.lanes.iter().enumerate() {
                if lane.queue.is_empty() && !lane.at_end {
                    out.push((self.topics[i], *p));
                }
            }
        }
        out
    }

    /// The runner found this input partition fetched to its end.
    pub fn mark_at_end(&mut self, topic: &str, partition: i32) {
        if let (Some(i), Some(task)) = (self.lane_index(topic), self.tasks.get_mut(&partition)) {
            let lane = &mut task.lanes[i];
            if lane.queue.is_empty() {
                lane.at_end = true;
            }
        }
    }

    /// When a silent lane stops holding its task back.
    fn idle_at(&self, lane: &Lane<R>) -> Instant {
        let capped = lane.heard + self.max_idle * SILENCE_CAP;
        match self.starved_since {
            Some(t) => capped.min(lane.heard.max(t) + self.max_idle),
            None => capped,
        }
    }

    fn empty_lane_ready(&self, lane: &Lane<R>, now: Instant) -> Option<Enforced> {
        if lane.at_end {
            Some(Enforced::No)
        } else if now >= self.idle_at(lane) {
            Some(Enforced::Idle)
        } else {
            None
        }
    }

    /// The task's next record by timestamp, if its other lanes allow it.
    fn head(&self, task: &Task<R>, now: Instant, full: bool) -> Option<(usize, i64, Enforced)> {
        let (i, ts) = task
            .lanes
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.queue.front().map(|r| (i, r.timestamp_ms)))
            .min_by_key(|(i, ts)| (*ts, *i))?;
        let mut why = Enforced::No;
        for lane in task.lanes.iter().filter(|l| l.queue.is_empty()) {
            match self.empty_lane_ready(lane, now) {
                Some(Enforced::No) => {}
                Some(e) => why = e,
                None if full => why = Enforced::Full,
                None => return None,
            }
        }
        Some((i, ts, why))
    }

    /// The next record to process: the oldest head among the tasks allowed to go.
    pub fn pop(&mut self, now: Instant) -> Option<(Buffered<R>, Enforced)> {
        let full = self.buffered >= self.max_buffered;
        let (p, i, _, why) = self
            .tasks
            .iter()
            .filter_map(|(p, t)| self.head(t, now, full).map(|(i, ts, why)| (*p, i, ts, why)))
            .min_by_key(|(p, _, ts, _)| (*ts, *p))?;
        let task = self.tasks.get_mut(&p).expect("found above");
        let record = task.lanes[i].queue.pop_front().expect("a head");
        task.stream_time = task.stream_time.max(record.timestamp_ms);
        self.buffered -= 1;
        Some((record, why))
    }

    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// When a waiting task may go anyway (its silent lanes count as idle).
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for task in self.tasks.values() {
            if task.lanes.iter().all(|l| l.queue.is_empty()) {
                continue;
            }
            for lane in task.lanes.iter().filter(|l| l.queue.is_empty() && !l.at_end) {
                let at = self.idle_at(lane);
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    }

    /// Up to when (ms since the epoch) the task's timers may fire: just
    /// before its next buffered record; `now_ms` once every lane is at its
    /// end or idle; otherwise no further than the task's stream time, since
    /// records older than a due timer may still be on their way.
    pub fn horizon(&self, partition: i32, now_ms: i64, now: Instant) -> i64 {
        let Some(task) = self.tasks.get(&partition) else { return now_ms };
        if let Some(next) = task.lanes.iter().filter_map(|l| l.queue.front()).map(|r| r.timestamp_ms).min() {
            return now_ms.min(next.saturating_sub(1));
        }
        if task.lanes.iter().all(|l| self.empty_lane_ready(l, now).is_some()) {
            now_ms
        } else {
            now_ms.min(task.stream_time)
        }
    }
}

#[cfg(test)]
mod tests;
