//! The probe: a per-aggregate counter on `runner.events`. Every applied input
//! emits `probe.counted` with the new count; an input whose `sequence` is not
//! above the last applied one is rejected (`stale_sequence`, the Go4u
//! ordering rule); with an idle period set, an aggregate that gets no input
//! for that long (event time) gets one `probe.idle`.

pub mod cli;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sagastream_contract::payloads::probe::{ProbeCounted, ProbeIdle};
use sagastream_contract::Event;
use sagastream_runtime::{Context, Outcome, Processor, Rejection, Spec, Step, Timer};
use serde::{Deserialize, Serialize};

pub const IDLE_TIMER: &str = "idle";

#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub idle_after: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeState {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sequence: Option<u64>,
    pub last_seen_at: DateTime<Utc>,
}

impl Processor for Probe {
    type State = ProbeState;

    fn spec(&self) -> Spec {
        Spec {
            name: "probe",
            version: env!("CARGO_PKG_VERSION"),
            inputs: vec!["runner.events"],
            outputs: vec!["probe.events"],
            changelog: Some("probe.changelog"),
            dlq: "probe.dlq",
            repartitions: Vec::new(),
        }
    }

    fn process(&self, state: Option<&ProbeState>, event: &Event, ctx: &Context<'_>) -> Outcome<ProbeState> {
        if let (Some(seq), Some(last)) = (event.sequence, state.and_then(|s| s.last_sequence)) {
            if seq <= last {
                return Err(Rejection::new(
                    "stale_sequence",
                    format!("sequence {seq} of {} is not above the last applied {last}", ctx.key),
                ));
            }
        }
        let count = state.map_or(0, |s| s.count) + 1;
        let next = ProbeState {
            count,
            last_sequence: event.sequence.or(state.and_then(|s| s.last_sequence)),
            last_seen_at: ctx.now,
        };
        let mut step = Step::set(next).emit(ProbeCounted {
            aggregate_id: ctx.key.to_owned(),
            count,
            input_id: event.id.clone(),
            input_type: event.event_type().as_str().to_owned(),
            occurred_at: ctx.now,
        });
        if let Some(idle) = self.idle_after {
            let due = ctx.now + TimeDelta::from_std(idle).unwrap_or(TimeDelta::MAX);
            step = step.set_timer(IDLE_TIMER, due);
        }
        Ok(step)
    }

    fn on_timer(&self, state: Option<&ProbeState>, timer: &Timer, ctx: &Context<'_>) -> Outcome<ProbeState> {
        match (timer.name.as_str(), state) {
            (IDLE_TIMER, Some(s)) => Ok(Step::keep().emit(ProbeIdle {
                aggregate_id: ctx.key.to_owned(),
                count: s.count,
                last_seen_at: s.last_seen_at,
                occurred_at: ctx.now,
            })),
            (name, _) => Err(Rejection::new("unknown_timer", format!("timer {name:?} without probe state"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagastream_contract::payloads::runner::RunnerOnline;
    use sagastream_contract::Payload;
    use sagastream_runtime::{StateChange, TimerCommand};

    fn event(seq: Option<u64>) -> Event {
        let at = "2024-01-15T10:00:00Z".parse().unwrap();
        let e =
            Event::new("/t", RunnerOnline { runner_id: "r1".into(), latitude: 0.0, longitude: 0.0, occurred_at: at })
                .with_time(at);
        match seq {
            Some(s) => e.with_sequence(s),
            None => e,
        }
    }

    fn ctx(now: DateTime<Utc>) -> Context<'static> {
        Context { key: "r1", partition: 0, now, topic: "runner.events" }
    }

    #[test]
    fn counts_and_reports() {
        let p = Probe { idle_after: Some(Duration::from_secs(5)) };
        let e = event(Some(1));
        let now = e.time.unwrap();
        let step = p.process(None, &e, &ctx(now)).unwrap();
        let StateChange::Set(s) = &step.state else { panic!("state set") };
        assert_eq!((s.count, s.last_sequence), (1, Some(1)));
        let Payload::ProbeCounted(c) = &*step.emits[0].payload else { panic!("counted") };
        assert_eq!((c.count, c.input_id.as_str(), c.input_type.as_str()), (1, e.id.as_str(), "runner.online"));
        assert_eq!(step.timers, vec![TimerCommand::Set { name: "idle".into(), due: now + TimeDelta::seconds(5) }]);

        let step2 = p.process(Some(s), &event(None), &ctx(now)).unwrap();
        let StateChange::Set(s2) = &step2.state else { panic!("state set") };
        assert_eq!((s2.count, s2.last_sequence), (2, Some(1)), "no sequence keeps the last one");
    }

    #[test]
    fn stale_sequence_is_rejected() {
        let p = Probe::default();
        let s = ProbeState { count: 3, last_sequence: Some(5), last_seen_at: Utc::now() };
        let r = p.process(Some(&s), &event(Some(5)), &ctx(Utc::now())).unwrap_err();
        assert_eq!(r.class, "stale_sequence");
        assert!(p.process(Some(&s), &event(Some(6)), &ctx(Utc::now())).is_ok());
    }

    #[test]
    fn idle_timer_reports_the_count() {
        let p = Probe::default();
        let s = ProbeState { count: 3, last_sequence: None, last_seen_at: Utc::now() };
        let t = Timer { name: IDLE_TIMER.into(), due: Utc::now() };
        let step = p.on_timer(Some(&s), &t, &ctx(t.due)).unwrap();
        assert!(matches!(step.state, StateChange::Keep));
        assert!(matches!(&*step.emits[0].payload, Payload::ProbeIdle(i) if i.count == 3));
        assert_eq!(p.on_timer(None, &t, &ctx(t.due)).unwrap_err().class, "unknown_timer");
    }
}
