//! Exact decimal numbers as published.
//!
//! NIC is published to the penny and actual cost to five decimal places. Summing them as floating
//! point drifts from the published totals, so the readers turn them into integers of the smallest
//! published unit (pence, hundred-thousandths of a pound) and the warehouse sums integers.

/// Why a number could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a whole number (e.g. `1O`, `2.5` where items are counted).
    #[error("\"{0}\" is not a whole number")]
    NotWhole(String),
    /// Not a decimal number.
    #[error("\"{0}\" is not a number")]
    NotNumber(String),
    /// More decimal places than the field is published with.
    #[error("\"{0}\" has more than {1} decimal places")]
    TooPrecise(String, u32),
    /// Too large to hold.
    #[error("\"{0}\" is too large")]
    TooLarge(String),
}

/// Parses a whole number such as `0000009`, ` 46 ` or `168.0` (EPD writes counts with `.0`).
pub fn parse_whole_number(s: &str) -> Result<i64, MoneyError> {
    let v = parse_fixed_point(s, 0).map_err(|e| match e {
        MoneyError::TooLarge(_) => e,
        _ => MoneyError::NotWhole(s.to_string()),
    })?;
    Ok(v)
}

/// Parses a decimal number into an integer count of `10^-scale` units, exactly: `"75.38"` at
/// scale 2 is `7538`. Leading zeros and spaces are allowed (PDPI pads fields); extra decimal
/// places are allowed only when they are zeros.
pub fn parse_fixed_point(s: &str, scale: u32) -> Result<i64, MoneyError> {
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int_part, frac_part) = match body.find('.') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, ""),
    };
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.bytes().all(|c| c.is_ascii_digit())
        || !frac_part.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(MoneyError::NotNumber(s.to_string()));
    }
    let mut value: i64 = 0;
    let too_large = || MoneyError::TooLarge(s.to_string());
    for c in int_part.bytes() {
        value = value.checked_mul(10).and_then(|v| v.checked_add(i64::from(c - b'0'))).ok_or_else(too_large)?;
    }
    let frac = frac_part.as_bytes();
    for i in 0..scale as usize {
        let d = frac.get(i).map_or(0, |c| i64::from(c - b'0'));
        value = value.checked_mul(10).and_then(|v| v.checked_add(d)).ok_or_else(too_large)?;
    }
    if frac.len() > scale as usize && frac[scale as usize..].iter().any(|&c| c != b'0') {
        return Err(MoneyError::TooPrecise(s.to_string(), scale));
    }
    Ok(if neg { -value } else { value })
}

/// Parses a decimal number that need not be exact (quantities, ADQ usage).
pub fn parse_decimal(s: &str) -> Result<f64, MoneyError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(MoneyError::NotNumber(s.to_string()));
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(MoneyError::NotNumber(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_money() {
        assert_eq!(parse_fixed_point("75.38", 2), Ok(7538));
        assert_eq!(parse_fixed_point("00000001.60", 2), Ok(160));
        assert_eq!(parse_fixed_point("69.93852", 5), Ok(6_993_852));
        assert_eq!(parse_fixed_point("5.49", 5), Ok(549_000));
        assert_eq!(parse_fixed_point("-1.5", 2), Ok(-150));
        assert_eq!(parse_fixed_point(".5", 2), Ok(50));
        assert_eq!(parse_fixed_point("7.680", 2), Ok(768));
        assert!(matches!(parse_fixed_point("7.681", 2), Err(MoneyError::TooPrecise(..))));
        assert!(matches!(parse_fixed_point("1O", 2), Err(MoneyError::NotNumber(..))));
        assert!(matches!(parse_fixed_point("", 2), Err(MoneyError::NotNumber(..))));
        assert!(matches!(parse_fixed_point(".", 2), Err(MoneyError::NotNumber(..))));
        assert!(matches!(parse_fixed_point("99999999999999999999", 2), Err(MoneyError::TooLarge(..))));
    }

    #[test]
    fn whole_numbers() {
        assert_eq!(parse_whole_number("0000009"), Ok(9));
        assert_eq!(parse_whole_number("168.0"), Ok(168));
        assert_eq!(parse_whole_number("1O").unwrap_err().to_string(), "\"1O\" is not a whole number");
        assert!(parse_whole_number("2.5").is_err());
    }

    proptest! {
        #[test]
        fn round_trips_formatted_pence(pence in -10_000_000_000i64..10_000_000_000i64) {
            let text = format!("{}{}.{:02}", if pence < 0 { "-" } else { "" }, pence.abs() / 100, pence.abs() % 100);
            prop_assert_eq!(parse_fixed_point(&text, 2), Ok(pence));
        }

        #[test]
        fn never_panics(s in ".{0,40}", scale in 0u32..8) {
            let _ = parse_fixed_point(&s, scale);
            let _ = parse_whole_number(&s);
            let _ = parse_decimal(&s);
        }
    }
}
