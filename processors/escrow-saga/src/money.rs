//! Money rules of the escrow saga: integer minor units only, every split adds
//! up to the held amount exactly, and a ledger that refuses any movement that
//! would break the saga's invariants (docs/escrow-saga.md, "Money").

use sagastream_contract::{Cents, Currency};
use serde::{Deserialize, Serialize};

/// Basis points: 0..=10000 (100.00 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bps(u32);

pub const FULL: Bps = Bps(10_000);

impl Bps {
    pub fn new(bps: u32) -> Result<Bps, MoneyError> {
        if bps > FULL.0 {
            return Err(MoneyError::BpsOutOfRange(bps));
        }
        Ok(Bps(bps))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// `amount × self / 10000`, rounded down, in i128 so no amount can overflow.
    fn of(self, amount: i64) -> i64 {
        (amount as i128 * self.0 as i128 / FULL.0 as i128) as i64
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0} basis points is more than 10000 (100 %)")]
    BpsOutOfRange(u32),
    #[error("split ratios {requester} + {agent} basis points do not add up to 10000")]
    RatiosDoNotAddUp { requester: u32, agent: u32 },
    #[error("currency {got} differs from the saga's {expected}")]
    CurrencyMismatch { expected: String, got: String },
    #[error("{what}: released {released} + refunded {refunded} would exceed held {held}")]
    Overdrawn { what: &'static str, held: i64, released: i64, refunded: i64 },
    #[error("{0} before any money was held")]
    NothingHeld(&'static str),
    #[error("the amount is already held ({0}); a second hold of {1} disagrees")]
    HeldTwice(i64, i64),
}

/// What a release pays: `payout + fee = amount`, fee rounded down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub amount: i64,
    pub runner_payout: i64,
    pub platform_fee: i64,
}

pub fn release(amount: i64, fee: Bps) -> Release {
    let platform_fee = fee.of(amount);
    Release { amount, runner_payout: amount - platform_fee, platform_fee }
}

/// A split dispute resolution: the requester's share rounded down, the
/// remainder (including the odd cent) to the agent, fee taken from the
/// agent's part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub refund: i64,
    pub release: Release,
}

pub fn split(held: i64, requester: Bps, agent: Bps, fee: Bps) -> Result<Split, MoneyError> {
    if requester.0 + agent.0 != FULL.0 {
        return Err(MoneyError::RatiosDoNotAddUp { requester: requester.0, agent: agent.0 });
    }
    let refund = requester.of(held);
    Ok(Split { refund, release: release(held - refund, fee) })
}

/// The saga's money: one currency, what is held, what has been released and
/// refunded (confirmed by the payment service).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Ledger {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub held: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub released: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub refunded: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl Ledger {
    pub fn check_currency(&mut self, currency: &Currency) -> Result<(), MoneyError> {
        match &self.currency {
            Some(c) if c != currency.as_str() => {
                Err(MoneyError::CurrencyMismatch { expected: c.clone(), got: currency.as_str().into() })
            }
            Some(_) => Ok(()),
            None => {
                self.currency = Some(currency.as_str().into());
                Ok(())
            }
        }
    }

    pub fn hold(&mut self, amount: Cents, currency: &Currency) -> Result<(), MoneyError> {
        self.check_currency(currency)?;
        match self.held {
            0 => {
                self.held = amount.get();
                Ok(())
            }
            h if h == amount.get() => Ok(()),
            h => Err(MoneyError::HeldTwice(h, amount.get())),
        }
    }

    fn after(&self, what: &'static str, released: i64, refunded: i64) -> Result<(), MoneyError> {
        if self.held == 0 {
            return Err(MoneyError::NothingHeld(what));
        }
        if released + refunded > self.held {
            return Err(MoneyError::Overdrawn { what, held: self.held, released, refunded });
        }
        Ok(())
    }

    /// Records a confirmed release (payout + fee).
    pub fn released(&mut self, amount: i64) -> Result<(), MoneyError> {
        self.after("release", self.released + amount, self.refunded)?;
        self.released += amount;
        Ok(())
    }

    pub fn refunded(&mut self, amount: i64) -> Result<(), MoneyError> {
        self.after("refund", self.released, self.refunded + amount)?;
        self.refunded += amount;
        Ok(())
    }

    /// Every held cent has gone somewhere: the saga may end.
    pub fn is_settled(&self) -> bool {
        self.held > 0 && self.released + self.refunded == self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bps(n: u32) -> Bps {
        Bps::new(n).unwrap()
    }

    #[test]
    fn release_always_adds_up_and_rounds_the_fee_down() {
        assert_eq!(release(4500, bps(1500)), Release { amount: 4500, runner_payout: 3825, platform_fee: 675 });
        assert_eq!(release(1, bps(1500)).platform_fee, 0, "a cent's fee rounds down to nothing");
        assert_eq!(release(i64::MAX, FULL).platform_fee, i64::MAX, "no overflow on the largest amount");
        for amount in (0..5_000).chain([999_999_999_999, i64::MAX / 3]) {
            for fee in [0, 1, 250, 1500, 3333, 9999, 10_000] {
                let r = release(amount, bps(fee));
                assert_eq!(r.runner_payout + r.platform_fee, amount, "{amount} at {fee} bps");
                assert!(r.runner_payout >= 0 && r.platform_fee >= 0);
                assert!(r.platform_fee as i128 * 10_000 <= amount as i128 * fee as i128, "rounded down");
            }
        }
    }

    #[test]
    fn split_adds_up_to_the_held_amount_with_the_odd_cent_to_the_agent() {
        let s = split(4501, bps(5000), bps(5000), bps(0)).unwrap();
        assert_eq!((s.refund, s.release.amount), (2250, 2251));
        for held in (1..2_000).step_by(7) {
            for requester in [0, 1, 3333, 5000, 6667, 9999, 10_000] {
                let s = split(held, bps(requester), bps(10_000 - requester), bps(1500)).unwrap();
                assert_eq!(s.refund + s.release.runner_payout + s.release.platform_fee, held);
                assert!(s.refund >= 0 && s.release.amount >= 0);
            }
        }
        assert_eq!(
            split(100, bps(5000), bps(4000), bps(0)).unwrap_err(),
            MoneyError::RatiosDoNotAddUp { requester: 5000, agent: 4000 }
        );
        assert_eq!(Bps::new(10_001).unwrap_err(), MoneyError::BpsOutOfRange(10_001));
    }

    #[test]
    fn the_ledger_refuses_what_breaks_the_invariants() {
        let usd = Currency::new("USD").unwrap();
        let eur = Currency::new("EUR").unwrap();
        let mut l = Ledger::default();
        assert_eq!(l.released(1).unwrap_err(), MoneyError::NothingHeld("release"));
        l.hold(Cents::new(4500).unwrap(), &usd).unwrap();
        l.hold(Cents::new(4500).unwrap(), &usd).unwrap();
        assert_eq!(l.hold(Cents::new(4000).unwrap(), &usd).unwrap_err(), MoneyError::HeldTwice(4500, 4000));
        assert!(matches!(l.check_currency(&eur), Err(MoneyError::CurrencyMismatch { .. })));
        l.refunded(2250).unwrap();
        assert!(!l.is_settled());
        assert!(matches!(l.released(2251), Err(MoneyError::Overdrawn { .. })), "never more than held");
        l.released(2250).unwrap();
        assert!(l.is_settled());
        assert_eq!(l, Ledger { currency: Some("USD".into()), held: 4500, released: 2250, refunded: 2250 });
        assert!(l.refunded(1).is_err(), "nothing left after settlement");
    }
}
