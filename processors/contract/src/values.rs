//! Validated value types shared by payloads. Validation lives in the serde
//! conversions so a bad value is reported with its field path when decoding.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value was rejected; shown to people next to the field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("money in minor units must not be negative (got {0})")]
    NegativeCents(i64),
    #[error("currency must be an ISO 4217 code of three upper-case letters, e.g. \"USD\" (got {0:?})")]
    Currency(String),
    #[error("decimal amount must be a plain non-negative decimal string such as \"24.99\" (got {0:?}); floats are not accepted")]
    Decimal(String),
}

/// An amount of money in integer minor units (cents). Never negative: a
/// refund or fee is its own field, not a negative amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Cents(i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);

    pub fn new(minor_units: i64) -> Result<Self, ValueError> {
        if minor_units < 0 {
            Err(ValueError::NegativeCents(minor_units))
        } else {
            Ok(Cents(minor_units))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Cents {
    type Error = ValueError;
    fn try_from(v: i64) -> Result<Self, ValueError> {
        Cents::new(v)
    }
}

impl From<Cents> for i64 {
    fn from(c: Cents) -> i64 {
        c.0
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// ISO 4217 alphabetic currency code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn new(code: impl Into<String>) -> Result<Self, ValueError> {
        let code = code.into();
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(code))
        } else {
            Err(ValueError::Currency(code))
        }
    }

    /// `XXX`, ISO 4217's "no currency": what a command carries when the
    /// saga has not learnt the currency yet (the amount is zero then).
    pub fn none() -> Currency {
        Currency("XXX".to_owned())
    }

    /// The known code, else [`Currency::none`].
    pub fn or_none(code: Option<&str>) -> Currency {
        code.and_then(|c| Currency::new(c).ok()).unwrap_or_else(Currency::none)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = ValueError;
    fn try_from(v: String) -> Result<Self, ValueError> {
        Currency::new(v)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An exact decimal amount kept as the string the producer sent ("24.99").
/// First Viscount prices are decimal strings; parsing them into a float would
/// lose cents, so we validate the shape and never convert.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DecimalAmount(String);

impl DecimalAmount {
    pub fn new(text: impl Into<String>) -> Result<Self, ValueError> {
        let text = text.into();
        if is_plain_decimal(&text) {
            Ok(DecimalAmount(text))
        } else {
            Err(ValueError::Decimal(text))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `0`, `12`, `24.99`: digits, at most one dot with digits on both sides, no
/// sign, exponent or superfluous leading zero.
fn is_plain_decimal(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(int) && (int == "0" || !int.starts_with('0')) && frac.is_none_or(digits) && s.len() <= 40
}

impl TryFrom<String> for DecimalAmount {
    type Error = ValueError;
    fn try_from(v: String) -> Result<Self, ValueError> {
        DecimalAmount::new(v)
    }
}

impl From<DecimalAmount> for String {
    fn from(d: DecimalAmount) -> String {
        d.0
    }
}

impl fmt::Display for DecimalAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_reject_negative() {
        assert_eq!(Cents::new(0).unwrap().get(), 0);
        assert!(matches!(Cents::new(-1), Err(ValueError::NegativeCents(-1))));
        let err = serde_json::from_str::<Cents>("-5").unwrap_err();
        assert!(err.to_string().contains("must not be negative"), "{err}");
        assert!(serde_json::from_str::<Cents>("12.5").is_err(), "floats are not cents");
    }

    #[test]
    fn currency_shape() {
        assert!(Currency::new("USD").is_ok());
        for bad in ["usd", "US", "USDT", "", "U$D"] {
            assert!(Currency::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn decimal_strings_stay_exact() {
        for good in ["0", "24.99", "47.98", "100", "0.5", "12345678901234567890.01"] {
            let d = DecimalAmount::new(good).unwrap();
            assert_eq!(d.as_str(), good);
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<DecimalAmount>(&json).unwrap(), d);
        }
        for bad in ["", ".5", "5.", "-1.00", "1e3", "01.00", "1.2.3", " 1", "NaN", "1,00"] {
            assert!(DecimalAmount::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            serde_json::from_str::<DecimalAmount>("24.99").is_err(),
            "a JSON number is a float on the wire and must be refused"
        );
    }
}
