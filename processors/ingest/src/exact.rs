//! Numbers from their decimal text, never through a float: a JSON number as
//! its owner wrote it (`0.5`, `1500.25`, `5e-1`) becomes basis points or
//! minor units exactly, or is refused when it cannot be exact.

/// Why a number cannot be taken exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExactError {
    #[error("{0:?} is not a decimal number")]
    NotANumber(String),
    #[error("{0:?} is negative")]
    Negative(String),
    #[error("{text:?} is not a whole number of {unit}")]
    Inexact { text: String, unit: &'static str },
    #[error("{0:?} is out of range")]
    OutOfRange(String),
}

/// A non-negative decimal: `digits / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    digits: u128,
    scale: u32,
}

/// Parses JSON number grammar (`-?int(.frac)?(e[+-]?exp)?`) or a plain
/// decimal string.
fn parse(text: &str) -> Result<Decimal, ExactError> {
    let bad = || ExactError::NotANumber(text.to_owned());
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('-') {
        // `-0` and `-0.0` are zero; anything else below zero is refused.
        let d = parse(rest)?;
        return if d.digits == 0 { Ok(d) } else { Err(ExactError::Negative(text.to_owned())) };
    }
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || (mantissa.contains('.') && frac.is_empty()) {
        return Err(bad());
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let mut digits: u128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        digits = digits
            .checked_mul(10)
            .and_then(|d| d.checked_add(u128::from(b - b'0')))
            .ok_or_else(|| ExactError::OutOfRange(text.to_owned()))?;
    }
    let scale = frac.len() as i64 - i64::from(exponent);
    if scale >= 0 {
        let scale = u32::try_from(scale).map_err(|_| ExactError::OutOfRange(text.to_owned()))?;
        return Ok(Decimal { digits, scale });
    }
    let up = 10u128.checked_pow((-scale) as u32).ok_or_else(|| ExactError::OutOfRange(text.to_owned()))?;
    let digits = digits.checked_mul(up).ok_or_else(|| ExactError::OutOfRange(text.to_owned()))?;
    Ok(Decimal { digits, scale: 0 })
}

/// The value in units of `10^-scale`, when it is a whole number of them.
fn at_scale(text: &str, scale: u32, unit: &'static str) -> Result<u128, ExactError> {
    let d = parse(text)?;
    if d.scale <= scale {
        let up = 10u128.checked_pow(scale - d.scale).ok_or_else(|| ExactError::OutOfRange(text.to_owned()))?;
        return d.digits.checked_mul(up).ok_or_else(|| ExactError::OutOfRange(text.to_owned()));
    }
    let down =
        10u128.checked_pow(d.scale - scale).ok_or_else(|| ExactError::Inexact { text: text.to_owned(), unit })?;
    if d.digits % down != 0 {
        return Err(ExactError::Inexact { text: text.to_owned(), unit });
    }
    Ok(d.digits / down)
}

/// A ratio between 0 and 1 as basis points: `0.5` is 5000, `0.3333` is
/// 3333; `0.33335` has no exact basis-point value and is refused.
pub fn ratio_bps(text: &str) -> Result<u32, ExactError> {
    let bps = at_scale(text, 4, "basis points")?;
    if bps > 10_000 {
        return Err(ExactError::OutOfRange(text.to_owned()));
    }
    Ok(bps as u32)
}

/// An amount in major units (`1500.25`) as minor units of a currency with
/// `exponent` decimals (2 for NGN, EUR, USD): 150025.
pub fn minor_units(text: &str, exponent: u32) -> Result<u64, ExactError> {
    let minor = at_scale(text, exponent, "minor units")?;
    u64::try_from(minor).map_err(|_| ExactError::OutOfRange(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_exact_basis_points() {
        assert_eq!(ratio_bps("0.5"), Ok(5000));
        assert_eq!(ratio_bps("0.50"), Ok(5000));
        assert_eq!(ratio_bps("5e-1"), Ok(5000));
        assert_eq!(ratio_bps("0.3333"), Ok(3333));
        assert_eq!(ratio_bps("0.0001"), Ok(1));
        assert_eq!(ratio_bps("1"), Ok(10_000));
        assert_eq!(ratio_bps("1.0"), Ok(10_000));
        assert_eq!(ratio_bps("0"), Ok(0));
        assert_eq!(ratio_bps("-0"), Ok(0));
        // The float nearest 0.29 is 0.28999999999999998; the text is what counts.
        assert_eq!(ratio_bps("0.29"), Ok(2900));
        assert!(matches!(ratio_bps("0.33335"), Err(ExactError::Inexact { .. })));
        assert!(matches!(ratio_bps("1.0001"), Err(ExactError::OutOfRange(_))));
        assert!(matches!(ratio_bps("-0.5"), Err(ExactError::Negative(_))));
        for bad in ["", ".5", "5.", "0x1", "1e", "half", "0.5.5", "+0.5"] {
            assert!(matches!(ratio_bps(bad), Err(ExactError::NotANumber(_))), "{bad}");
        }
    }

    #[test]
    fn amounts_are_exact_minor_units() {
        assert_eq!(minor_units("1500.25", 2), Ok(150_025));
        assert_eq!(minor_units("1500", 2), Ok(150_000));
        assert_eq!(minor_units("1.5e3", 2), Ok(150_000));
        assert_eq!(minor_units("0.1", 2), Ok(10));
        assert!(matches!(minor_units("0.005", 2), Err(ExactError::Inexact { .. })));
        assert!(matches!(minor_units("1e40", 2), Err(ExactError::OutOfRange(_))));
        assert!(matches!(minor_units("99999999999999999999", 2), Err(ExactError::OutOfRange(_))));
    }
}
