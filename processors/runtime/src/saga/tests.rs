use chrono::{TimeZone, Utc};

use super::*;

/// A toy saga: counts to three, never beyond.
#[derive(Debug, Clone, PartialEq, Default)]
struct Count(u8);

impl SagaState for Count {
    fn check_invariants(&self) -> Result<(), String> {
        match self.0 {
            0..=3 => Ok(()),
            n => Err(format!("{n} is beyond three")),
        }
    }

    fn describe(&self) -> String {
        format!("count={}", self.0)
    }

    fn may_purge(&self) -> bool {
        self.0 == 3
    }
}

crate::rejection_classes! {
    enum Class {
        /// A doc comment on a variant is allowed.
        InvariantViolated = "invariant_violated",
        Other = "other",
    }
}

fn ctx() -> Context<'static> {
    Context { key: "k1", partition: 0, now: Utc.timestamp_millis_opt(1_000).unwrap(), topic: "t" }
}

#[test]
fn the_classes_have_their_codes_in_order() {
    assert_eq!(Class::ALL.iter().map(|c| c.code()).collect::<Vec<_>>(), ["invariant_violated", "other"]);
    let r = Class::Other.reject("why");
    assert_eq!((r.class, r.message.as_str()), ("other", "why"));
}

#[test]
fn a_transition_becomes_the_state_only_when_the_invariants_hold() {
    let ctx = ctx();
    let before = Count(3);
    let mut w = Working::new(Some(&before), &ctx);
    w.s.0 += 1;
    w.set_timer("t", TimeDelta::seconds(1));
    let r = w.finish(Class::InvariantViolated).unwrap_err();
    assert_eq!(r.class, "invariant_violated");
    assert_eq!(r.message, "4 is beyond three (the state would be count=4)");

    let mut w = Working::<Count>::new(None, &ctx);
    assert_eq!(w.before(), None);
    w.s.0 = 1;
    w.set_timer("t", TimeDelta::seconds(1));
    w.cancel_timer("u");
    let step = w.finish(Class::InvariantViolated).unwrap();
    assert_eq!(step.state, StateChange::Set(Box::new(Count(1))));
    let due = Utc.timestamp_millis_opt(2_000).unwrap();
    assert_eq!(step.timers, [TimerCommand::Set { name: "t".into(), due }, TimerCommand::Cancel { name: "u".into() }]);
}

#[test]
fn nothing_changed_and_nothing_to_do_is_keep() {
    let ctx = ctx();
    let before = Count(2);
    let step = Working::new(Some(&before), &ctx).finish(Class::InvariantViolated).unwrap();
    assert_eq!(step.state, StateChange::Keep);
    let mut w = Working::new(Some(&before), &ctx);
    w.arm_purge(TimeDelta::days(7));
    let step = w.finish(Class::InvariantViolated).unwrap();
    assert_eq!(step.state, StateChange::Set(Box::new(Count(2))), "a timer alone is a change");
    assert!(matches!(&step.timers[..], [TimerCommand::Set { name, .. }] if name == PURGE));
}

#[test]
fn a_new_key_left_at_the_default_stores_nothing() {
    let ctx = ctx();
    let step = Working::<Count>::new(None, &ctx).finish(Class::InvariantViolated).unwrap();
    assert_eq!(step.state, StateChange::Keep);
}

#[test]
fn the_purge_forgets_an_ended_saga_only() {
    assert_eq!(on_purge(&Count(3)).state, StateChange::Delete);
    assert_eq!(on_purge(&Count(2)).state, StateChange::Keep);
}
