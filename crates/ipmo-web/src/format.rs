//! Numbers as people read them on the pages: thousands separators, one precision per column,
//! pounds, ordinals, dates in words. The shared rules live in [`ipmo_domain::display`], so an
//! alert sentence written by the measure engine and a table cell written here agree.

pub(crate) use ipmo_domain::display::{iso_date, long_month, month_span, number, plural, pounds, timestamp};

/// A percentage to one decimal place ("12.5%"), or a dash when there is none.
pub(crate) fn percent(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.1}%"))
}

/// A measure value with decimals by its own size (for a value standing alone in a sentence).
pub(crate) fn value(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) => number(v, ipmo_domain::display::decimals_for(v).min(3)),
    }
}

/// A value with the decimals its column uses (see [`decimals_of`]).
pub(crate) fn fixed(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "–".into(), |v| number(v, decimals))
}

/// One precision for a column of values: enough decimals for its typical (median non-zero)
/// magnitude to show about three significant figures, so 9.86 and 10.60 sit in one column as
/// 9.9 and 10.6, never as 9.858 beside 10.6.
pub(crate) fn decimals_of(values: impl IntoIterator<Item = f64>) -> usize {
    let mut v: Vec<f64> = values.into_iter().map(f64::abs).filter(|v| v.is_finite() && *v > 0.0).collect();
    if v.is_empty() {
        return 1;
    }
    v.sort_by(f64::total_cmp);
    ipmo_domain::display::decimals_for(v[v.len() / 2]).min(3)
}

/// A numerator or denominator: whole numbers (items, patients) without decimals.
pub(crate) fn amount(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() && x.fract() == 0.0 => number(x, 0),
        other => value(other),
    }
}

/// A numerator or denominator in pounds when the side is money.
pub(crate) fn amount_of(v: Option<f64>, money: bool) -> String {
    match (v, money) {
        (Some(x), true) => pounds(x),
        (other, _) => amount(other),
    }
}

/// A percentile rank as "72nd".
pub(crate) fn ordinal(p: Option<f64>) -> String {
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
        assert_eq!(value(Some(12.345)), "12.3");
        assert_eq!(value(Some(0.87123)), "0.871");
        assert_eq!(value(Some(1234.6)), "1,235");
        assert_eq!(pounds(-2500.0), "−£2,500");
        assert_eq!(amount(Some(3685.0)), "3,685");
        assert_eq!(amount(Some(12.26)), "12.3");
        assert_eq!(amount_of(Some(159_254.2), true), "£159,254");
        assert_eq!(ordinal(Some(72.4)), "72nd");
        assert_eq!(ordinal(Some(11.0)), "11th");
        assert_eq!(ordinal(Some(101.0)), "101st");
        assert_eq!(decimals_of([9.858, 10.6, 11.2]), 1);
        assert_eq!(decimals_of([0.0, 0.0]), 1);
        assert_eq!(fixed(Some(9.858), 1), "9.9");
    }
}
