//! Exact arithmetic on First Viscount's decimal strings ("22.99"). Prices
//! stay decimal text on the wire; here they become an integer mantissa and
//! a scale, never a float.

use std::cmp::Ordering;

use sagastream_contract::DecimalAmount;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount {0:?} has more digits than exact arithmetic here supports (38)")]
    TooLarge(String),
    #[error("amount overflows while computing {0}")]
    Overflow(&'static str),
}

/// mantissa × 10^-scale, non-negative.
#[derive(Debug, Clone, Copy)]
pub struct Dec {
    mantissa: u128,
    scale: u32,
}

impl Dec {
    pub fn zero(scale: u32) -> Dec {
        Dec { mantissa: 0, scale }
    }

    /// A validated plain decimal (`DecimalAmount` guarantees the shape).
    pub fn parse(amount: &DecimalAmount) -> Result<Dec, MoneyError> {
        let text = amount.as_str();
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let too_large = || MoneyError::TooLarge(text.to_owned());
        let mut mantissa: u128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa =
                mantissa.checked_mul(10).and_then(|m| m.checked_add(u128::from(b - b'0'))).ok_or_else(too_large)?;
        }
        Ok(Dec { mantissa, scale: u32::try_from(frac.len()).map_err(|_| too_large())? })
    }

    pub fn scale(self) -> u32 {
        self.scale
    }

    pub fn times(self, quantity: u32) -> Result<Dec, MoneyError> {
        let mantissa = self.mantissa.checked_mul(u128::from(quantity)).ok_or(MoneyError::Overflow("a line price"))?;
        Ok(Dec { mantissa, scale: self.scale })
    }

    pub fn plus(self, other: Dec) -> Result<Dec, MoneyError> {
        let (a, b, scale) = align(self, other).ok_or(MoneyError::Overflow("a sum"))?;
        Ok(Dec { mantissa: a.checked_add(b).ok_or(MoneyError::Overflow("a sum"))?, scale })
    }

    /// The decimal text at this value's scale ("0.00" for zero at scale 2).
    pub fn to_amount(self) -> DecimalAmount {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        let text = if scale == 0 {
            digits
        } else {
            let padded = format!("{digits:0>width$}", width = scale + 1);
            let (int, frac) = padded.split_at(padded.len() - scale);
            format!("{int}.{frac}")
        };
        DecimalAmount::new(text).expect("digits with a point are a plain decimal")
    }
}

/// Both mantissas at the larger scale, or `None` on overflow.
fn align(a: Dec, b: Dec) -> Option<(u128, u128, u32)> {
    let scale = a.scale.max(b.scale);
    let up = |d: Dec| d.mantissa.checked_mul(10u128.checked_pow(scale - d.scale)?);
    Some((up(a)?, up(b)?, scale))
}

impl PartialEq for Dec {
    fn eq(&self, other: &Dec) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Dec {}

impl PartialOrd for Dec {
    fn partial_cmp(&self, other: &Dec) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Dec {
    /// By value: "45.98" equals "45.980". A value too large to align is
    /// larger than any that aligns.
    fn cmp(&self, other: &Dec) -> Ordering {
        match align(*self, *other) {
            Some((a, b, _)) => a.cmp(&b),
            None => self.scale.cmp(&other.scale).reverse(),
        }
    }
}

/// Two decimal amounts equal in value.
pub fn same_amount(a: &DecimalAmount, b: &DecimalAmount) -> bool {
    match (Dec::parse(a), Dec::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(&DecimalAmount::new(s).unwrap()).unwrap()
    }

    #[test]
    fn exact_line_arithmetic() {
        assert_eq!(d("22.99").times(2).unwrap(), d("45.98"));
        assert_eq!(d("45.98").plus(d("2")).unwrap(), d("47.98"));
        assert_eq!(d("0.1").plus(d("0.2")).unwrap(), d("0.3"), "no float rounding");
        assert_eq!(d("45.98"), d("45.980"));
        assert!(d("45.98") < d("47.98") && d("100") > d("99.999"));
        assert_eq!(d("47.98").to_amount().as_str(), "47.98");
        assert_eq!(Dec::zero(2).to_amount().as_str(), "0.00");
        assert_eq!(d("0.05").to_amount().as_str(), "0.05");
        assert_eq!(d("7").to_amount().as_str(), "7");
        assert!(same_amount(&DecimalAmount::new("1.50").unwrap(), &DecimalAmount::new("1.5").unwrap()));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let huge = DecimalAmount::new("9".repeat(39)).unwrap();
        assert!(matches!(Dec::parse(&huge), Err(MoneyError::TooLarge(_))));
        let big = d(&format!("3{}", "0".repeat(38)));
        assert!(big.times(2).is_err());
        assert!(big.plus(big).is_err());
        assert!(d("1.5") < big, "comparison still works");
    }
}
