//! Retention as people write it (`7d`, `12h`, `infinite`) and as Kafka wants it (ms).

/// Parses `500ms`, `30s`, `15m`, `12h`, `7d`, `2w`, or `infinite` (-1).
pub fn parse_retention(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t == "infinite" || t == "-1" {
        return Ok(-1);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: i64 = digits.parse().map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let factor: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        "" => return Err(format!("{text:?} has no unit")),
        other => return Err(format!("unknown unit {other:?} in {text:?}")),
    };
    match n.checked_mul(factor) {
        Some(0) | None => Err(format!("{text:?} must be positive and fit in 64-bit milliseconds")),
        Some(ms) => Ok(ms),
    }
}

/// The shortest exact form, for plans and drift reports.
pub fn format_retention(ms: i64) -> String {
    if ms < 0 {
        return "infinite".into();
    }
    // Days, not weeks, because that is how retention is written in topics.yaml.
    for (unit, factor) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms % factor == 0 && ms > 0 {
            return format!("{}{unit}", ms / factor);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse_retention("7d"), Ok(604_800_000));
        assert_eq!(parse_retention("12h"), Ok(43_200_000));
        assert_eq!(parse_retention("250ms"), Ok(250));
        assert_eq!(parse_retention("infinite"), Ok(-1));
        for bad in ["", "7", "d", "7y", "0d", "-3d", "1.5d", "99999999999999999999d"] {
            assert!(parse_retention(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_retention(604_800_000), "7d");
        assert_eq!(format_retention(86_400_000 * 3), "3d");
        assert_eq!(format_retention(1500), "1500ms");
        assert_eq!(format_retention(-1), "infinite");
    }
}
