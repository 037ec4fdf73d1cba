//! Numbers as people read them: thousands separators, sensible decimals, pounds.

/// `1234567.8` → `"1,234,568"`; small numbers keep `decimals` places.
pub fn number(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = s.split_once('.').map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if v < 0.0 && s.chars().any(|c| c != '0' && c != '.') { "−" } else { "" };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A measure value: decimals by size.
pub fn value(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v.abs() >= 1000.0 => number(v, 0),
        Some(v) if v.abs() >= 10.0 => number(v, 1),
        Some(v) => number(v, 3),
    }
}

/// A numerator or denominator: whole numbers (items, patients) without decimals.
pub fn amount(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() && x.fract() == 0.0 => number(x, 0),
        other => value(other),
    }
}

/// Pounds, whole.
pub fn pounds(v: f64) -> String {
    if v < 0.0 { format!("−£{}", number(-v, 0)) } else { format!("£{}", number(v, 0)) }
}

/// A percentile rank as "72nd".
pub fn ordinal(p: Option<f64>) -> String {
    let Some(p) = p else { return "–".into() };
    let n = p.round() as i64;
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(1_234_567.8, 0), "1,234,568");
        assert_eq!(number(-1234.5, 1), "−1,234.5");
        assert_eq!(number(0.0, 2), "0.00");
        assert_eq!(number(f64::NAN, 0), "–");
        assert_eq!(value(Some(12.345)), "12.3");
        assert_eq!(value(Some(0.87123)), "0.871");
        assert_eq!(pounds(-2500.0), "−£2,500");
        assert_eq!(amount(Some(3685.0)), "3,685");
        assert_eq!(amount(Some(12.26)), "12.3");
        assert_eq!(ordinal(Some(72.4)), "72nd");
        assert_eq!(ordinal(Some(11.0)), "11th");
        assert_eq!(ordinal(Some(101.0)), "101st");
    }
}
