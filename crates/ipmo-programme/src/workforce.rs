//! Workforce totals from the quarterly returns: establishment, staff in post, headcount and
//! leavers summed per quarter, the vacancy and turnover rates they give, and a straight-line
//! projection two years ahead for the workforce plan.

use ipmo_governance::kinds;
use ipmo_governance::store::Record;
use std::collections::BTreeMap;

/// One quarter's workforce totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuarterTotals {
    /// Funded establishment, WTE.
    pub establishment: f64,
    /// Staff in post, WTE.
    pub in_post: f64,
    /// Headcount.
    pub headcount: i64,
    /// Leavers in the quarter, WTE.
    pub leavers: f64,
}

impl QuarterTotals {
    /// Establishment − in post (never below zero).
    pub fn vacancies(&self) -> f64 {
        (self.establishment - self.in_post).max(0.0)
    }
    /// Vacancies ÷ establishment, %.
    pub fn vacancy_rate(&self) -> Option<f64> {
        (self.establishment > 0.0).then(|| 100.0 * self.vacancies() / self.establishment)
    }
    /// Leavers ÷ staff in post, % (quarterly turnover).
    pub fn turnover(&self) -> Option<f64> {
        (self.in_post > 0.0).then(|| 100.0 * self.leavers / self.in_post)
    }
}

/// Totals per quarter (sorted) over the returns that pass `keep`.
pub fn workforce_totals(returns: &[Record], keep: &dyn Fn(&Record) -> bool) -> BTreeMap<String, QuarterTotals> {
    let mut out: BTreeMap<String, QuarterTotals> = BTreeMap::new();
    for r in returns.iter().filter(|r| keep(r)) {
        let t = out.entry(r.text("quarter").to_string()).or_default();
        t.establishment += r.number("establishment_wte").unwrap_or(0.0);
        t.in_post += r.number("in_post_wte").unwrap_or(0.0);
        t.headcount += r.int("headcount").unwrap_or(0);
        t.leavers += r.number("leavers_wte").unwrap_or(0.0);
    }
    out
}

/// A least-squares straight line through `values` (x = 0, 1, …), continued `ahead` steps.
pub fn projection(values: &[f64], ahead: usize) -> Vec<f64> {
    let n = values.len() as f64;
    if values.len() < 2 {
        return vec![values.first().copied().unwrap_or(0.0); ahead];
    }
    let mx = (n - 1.0) / 2.0;
    let my = values.iter().sum::<f64>() / n;
    let sxy: f64 = values.iter().enumerate().map(|(i, v)| (i as f64 - mx) * (v - my)).sum();
    let sxx: f64 = (0..values.len()).map(|i| (i as f64 - mx).powi(2)).sum();
    let slope = sxy / sxx;
    (0..ahead).map(|k| (my + slope * ((values.len() + k) as f64 - mx)).max(0.0)).collect()
}

/// The quarter after `q` (`2025-Q4` → `2026-Q1`); a malformed quarter comes back as it is.
pub fn next_quarter(q: &str) -> String {
    match kinds::parse_quarter(q) {
        Some((y, 4)) => format!("{}-Q1", y + 1),
        Some((y, n)) => format!("{y}-Q{}", n + 1),
        None => q.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projections_continue_the_least_squares_line() {
        let p = projection(&[10.0, 12.0, 14.0, 16.0], 3);
        assert_eq!(p, vec![18.0, 20.0, 22.0]);
        assert_eq!(projection(&[5.0], 2), vec![5.0, 5.0]);
        assert_eq!(projection(&[4.0, 2.0, 0.0], 2), vec![0.0, 0.0], "never below zero");
        assert_eq!(next_quarter("2025-Q4"), "2026-Q1");
        assert_eq!(next_quarter("2025-Q2"), "2025-Q3");
    }

    #[test]
    fn vacancy_and_turnover_rates() {
        let t = QuarterTotals { establishment: 120.0, in_post: 102.0, headcount: 110, leavers: 5.1 };
        assert!((t.vacancies() - 18.0).abs() < 1e-9);
        assert!((t.vacancy_rate().unwrap() - 15.0).abs() < 1e-9);
        assert!((t.turnover().unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(QuarterTotals::default().vacancy_rate(), None);
        let over = QuarterTotals { establishment: 10.0, in_post: 12.0, ..Default::default() };
        assert_eq!(over.vacancies(), 0.0);
    }
}
