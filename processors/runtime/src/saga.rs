//! The saga kit: what every saga's transitions share, so a saga's own file
//! reads as its transition table.
//!
//! - [`Working`]: a transition works on a copy of the state and collects its
//!   emits and timers. Only [`Working::finish`], after the invariants hold on
//!   the copy, turns it into a [`Step`]; a rejected input leaves the saga
//!   exactly as it was.
//! - [`RejectionClass`]: a saga's DLQ classes as an enum with stable codes
//!   (declared with [`rejection_classes!`](crate::rejection_classes)), so a
//!   docs test can list them and no call site spells a code by hand.
//! - The purge after the end: a saga that ended arms [`PURGE`]; when it
//!   fires, [`on_purge`] forgets the key (state, timers, remembered ids).

use chrono::{DateTime, TimeDelta, Utc};
use sagastream_contract::Payload;

use crate::processor::{Context, Emit, Outcome, Rejection, StateChange, Step, TimerCommand};

/// The timer that forgets an ended saga.
pub const PURGE: &str = "purge";

/// A saga's state as the kit needs to see it.
pub trait SagaState: Clone + PartialEq + Default {
    /// The invariants that hold after every transition; the error names the
    /// one that broke.
    fn check_invariants(&self) -> Result<(), String>;

    /// The state as a rejection's message shows it (no PII: phases and ids).
    fn describe(&self) -> String;

    /// Nothing more will happen to this key: when [`PURGE`] fires, it is
    /// forgotten.
    fn may_purge(&self) -> bool;
}

/// A processor's own DLQ classes: the `__streams.errors.exception` header
/// and the `reason` label of `sagastream_dlq_records_total`.
pub trait RejectionClass: Copy + std::fmt::Debug + 'static {
    /// Every class, in declaration order.
    const ALL: &'static [Self];

    /// The stable snake_case code.
    fn code(self) -> &'static str;

    fn reject(self, message: impl Into<String>) -> Rejection {
        Rejection::new(self.code(), message)
    }
}

/// Declares a [`RejectionClass`] enum with one stable code per variant.
#[macro_export]
macro_rules! rejection_classes {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $crate::saga::RejectionClass for $name {
            const ALL: &'static [$name] = &[$($name::$variant,)+];

            fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)+
                }
            }
        }
    };
}

/// One transition in progress: the copy of the state and what it emits.
#[derive(Debug)]
pub struct Working<'a, S> {
    before: Option<&'a S>,
    /// The copy the transition changes.
    pub s: S,
    pub ctx: &'a Context<'a>,
    emits: Vec<Emit>,
    timers: Vec<TimerCommand>,
    /// Emits carry the key as correlation id instead of the input's.
    correlate_by_key: bool,
}

impl<'a, S: SagaState> Working<'a, S> {
    pub fn new(before: Option<&'a S>, ctx: &'a Context<'a>) -> Working<'a, S> {
        Working {
            before,
            s: before.cloned().unwrap_or_default(),
            ctx,
            emits: Vec::new(),
            timers: Vec::new(),
            correlate_by_key: false,
        }
    }

    /// Every emit carries the key as its correlation id, so the answers of
    /// other services (and a repartition step) can name the aggregate.
    pub fn correlated_by_key(mut self) -> Working<'a, S> {
        self.correlate_by_key = true;
        self
    }

    /// The state before this input; `None` for a key seen the first time.
    pub fn before(&self) -> Option<&'a S> {
        self.before
    }

    /// Whether the transition did anything so far: a changed state (for a
    /// new key: other than the default), an emit or a timer.
    pub fn changed(&self) -> bool {
        let state = match self.before {
            Some(before) => *before != self.s,
            None => self.s != S::default(),
        };
        state || !self.emits.is_empty() || !self.timers.is_empty()
    }

    /// The event clock (see [`Context::now`]).
    pub fn now(&self) -> DateTime<Utc> {
        self.ctx.now
    }

    /// The aggregate id, owned (payload fields are `String`s).
    pub fn key(&self) -> String {
        self.ctx.key.to_owned()
    }

    /// Emits an event to its catalog topic, correlated with the input (or
    /// the key: [`Working::correlated_by_key`]).
    pub fn emit(&mut self, payload: impl Into<Payload>) {
        let emit = Emit::new(payload);
        self.push(match self.correlate_by_key {
            true => emit.with_correlation_id(self.ctx.key),
            false => emit,
        });
    }

    pub fn push(&mut self, emit: Emit) {
        self.emits.push(emit);
    }

    /// Sets (or moves) a timer `after` from now.
    pub fn set_timer(&mut self, name: &str, after: TimeDelta) {
        self.set_timer_at(name, self.now() + after);
    }

    pub fn set_timer_at(&mut self, name: &str, due: DateTime<Utc>) {
        self.timers.push(TimerCommand::Set { name: name.into(), due });
    }

    pub fn cancel_timer(&mut self, name: &str) {
        self.timers.push(TimerCommand::Cancel { name: name.into() });
    }

    /// Arms (or pushes back) the purge, counted from now.
    pub fn arm_purge(&mut self, after: TimeDelta) {
        self.set_timer(PURGE, after);
    }

    /// The step: the copy becomes the state if the invariants hold on it
    /// (else the input is refused as `violated`, with the state it would
    /// have produced); nothing changed and nothing to do is `Keep`, so a
    /// no-op writes no changelog record.
    pub fn finish(self, violated: impl RejectionClass) -> Outcome<Box<S>> {
        if let Err(reason) = self.s.check_invariants() {
            return Err(violated.reject(format!("{reason} (the state would be {})", self.s.describe())));
        }
        if !self.changed() {
            return Ok(Step::keep());
        }
        Ok(Step { state: StateChange::Set(Box::new(self.s)), emits: self.emits, timers: self.timers })
    }
}

/// Makes a saga's transition type (a struct with the working copy in field
/// `w`) read as the working copy: `Deref` to it, and its mutating methods
/// as inherent ones, so that their arguments may read the transition
/// (`self.emit(Fact { id: self.key() })`; two-phase borrows do not pass
/// through `DerefMut`).
#[macro_export]
macro_rules! saga_transition {
    ($transition:ident, $state:ty) => {
        impl<'a> ::std::ops::Deref for $transition<'a> {
            type Target = $crate::saga::Working<'a, $state>;
            fn deref(&self) -> &Self::Target {
                &self.w
            }
        }

        impl ::std::ops::DerefMut for $transition<'_> {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.w
            }
        }

        #[allow(dead_code)]
        impl $transition<'_> {
            fn emit(&mut self, payload: impl Into<$crate::saga::__macro::Payload>) {
                self.w.emit(payload)
            }

            fn set_timer(&mut self, name: &str, after: $crate::saga::__macro::TimeDelta) {
                self.w.set_timer(name, after)
            }

            fn set_timer_at(&mut self, name: &str, due: $crate::saga::__macro::DateTime<$crate::saga::__macro::Utc>) {
                self.w.set_timer_at(name, due)
            }

            fn cancel_timer(&mut self, name: &str) {
                self.w.cancel_timer(name)
            }

            fn arm_purge(&mut self, after: $crate::saga::__macro::TimeDelta) {
                self.w.arm_purge(after)
            }
        }
    };
}

/// What [`saga_transition!`](crate::saga_transition) names, so that a saga
/// need not depend on these crates itself.
#[doc(hidden)]
pub mod __macro {
    pub use chrono::{DateTime, TimeDelta, Utc};
    pub use sagastream_contract::Payload;
}

/// The [`PURGE`] timer fired: an ended saga is forgotten; one that is not
/// (a late fact reopened it) is kept, and its next end arms the purge again.
pub fn on_purge<S: SagaState>(state: &S) -> Step<Box<S>> {
    match state.may_purge() {
        true => Step::delete(),
        false => Step::keep(),
    }
}

#[cfg(test)]
mod tests;
