//! Numbers, money and dates as people in the NHS read them: thousands separators, whole pounds,
//! "31 January 2026", "1 month" and "3 months". The measure engine writes alert sentences and
//! the dashboard writes pages; both use these so a figure reads the same wherever it appears.

use crate::YearMonth;

/// `1234567.8` with 0 decimals is `"1,234,568"`; a negative number gets a true minus sign.
pub fn number(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = s.split_once('.').map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
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

/// Whole pounds with separators: `£42,830`, `−£2,500`.
pub fn pounds(v: f64) -> String {
    let whole = number(v.abs(), 0);
    if v < 0.0 && whole != "0" { format!("−£{whole}") } else { format!("£{whole}") }
}

/// Decimal places that give a value about three significant figures: `374.1` → 0, `10.23` → 1,
/// `0.8712` → 3 (at most 4). One choice per column or sentence keeps the figures comparable.
pub fn decimals_for(typical: f64) -> usize {
    let a = typical.abs();
    if !a.is_finite() || a == 0.0 {
        return 1;
    }
    (2 - a.log10().floor() as i32).clamp(0, 4) as usize
}

/// `n` and the right form of the noun: `plural(1, "month", "months")` is `"1 month"`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", number(n as f64, 0), if n == 1 { one } else { many })
}

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "January 2024".
pub fn long_month(m: YearMonth) -> String {
    format!("{} {}", MONTH_NAMES[usize::from(m.month().clamp(1, 12) - 1)], m.year())
}

/// "July to December 2024", or "November 2024 to April 2025" across a year end.
pub fn month_span(from: YearMonth, to: YearMonth) -> String {
    if from == to {
        return long_month(to);
    }
    if from.year() == to.year() {
        format!("{} to {}", MONTH_NAMES[usize::from(from.month().clamp(1, 12) - 1)], long_month(to))
    } else {
        format!("{} to {}", long_month(from), long_month(to))
    }
}

/// A date as "31 January 2026".
pub fn long_date(d: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    format!("{} {} {}", d.day(), MONTH_NAMES[d.month0() as usize], d.year())
}

/// An ISO date (`2026-01-31`) as "31 January 2026"; anything else is returned as it is.
pub fn iso_date(text: &str) -> String {
    match chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        Ok(d) => long_date(d),
        Err(_) => text.to_string(),
    }
}

/// An RFC 3339 timestamp (`2026-11-30T19:48:33Z`) as "30 November 2026, 19:48 UTC"; anything
/// else is returned as it is.
pub fn timestamp(text: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(text.trim()) {
        Ok(t) => {
            let utc = t.with_timezone(&chrono::Utc);
            format!("{}, {} UTC", long_date(utc.date_naive()), utc.format("%H:%M"))
        }
        Err(_) => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_money_and_dates_read_well() {
        assert_eq!(number(1_234_567.8, 0), "1,234,568");
        assert_eq!(number(-1234.5, 1), "−1,234.5");
        assert_eq!(number(-0.0001, 2), "0.00");
        assert_eq!(number(f64::NAN, 0), "–");
        assert_eq!(pounds(42_830.4), "£42,830");
        assert_eq!(pounds(-2500.0), "−£2,500");
        assert_eq!(pounds(-0.2), "£0");
        assert_eq!([decimals_for(374.1), decimals_for(10.2), decimals_for(0.87), decimals_for(0.0)], [0, 1, 3, 1]);
        assert_eq!(plural(1, "month", "months"), "1 month");
        assert_eq!(plural(1200, "risk", "risks"), "1,200 risks");
        let ym = |s: &str| s.parse::<YearMonth>().unwrap();
        assert_eq!(long_month(ym("2024-01")), "January 2024");
        assert_eq!(month_span(ym("2024-07"), ym("2024-12")), "July to December 2024");
        assert_eq!(month_span(ym("2024-11"), ym("2025-04")), "November 2024 to April 2025");
        assert_eq!(iso_date("2026-01-31"), "31 January 2026");
        assert_eq!(iso_date("soon"), "soon");
        assert_eq!(timestamp("2026-11-30T19:48:33Z"), "30 November 2026, 19:48 UTC");
    }
}
