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

/// Quarters a workforce projection runs ahead (two years).
pub const AHEAD: usize = 8;

/// Staff in post and funded establishment per recorded quarter, each continued [`AHEAD`]
/// quarters by its least-squares line.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    /// The recorded quarters, then the projected ones.
    pub labels: Vec<String>,
    /// How many of `labels` are recorded.
    pub recorded: usize,
    /// Staff in post, WTE, per recorded quarter.
    pub in_post: Vec<f64>,
    /// Funded establishment, WTE, per recorded quarter.
    pub establishment: Vec<f64>,
    /// Staff in post, WTE, per projected quarter.
    pub in_post_ahead: Vec<f64>,
    /// Funded establishment, WTE, per projected quarter.
    pub establishment_ahead: Vec<f64>,
}

/// The projection of quarterly totals (as [`workforce_totals`] gives them).
pub fn project(totals: &BTreeMap<String, QuarterTotals>) -> Projection {
    let mut labels: Vec<String> = totals.keys().cloned().collect();
    let recorded = labels.len();
    let in_post: Vec<f64> = totals.values().map(|t| t.in_post).collect();
    let establishment: Vec<f64> = totals.values().map(|t| t.establishment).collect();
    let mut q = labels.last().cloned().unwrap_or_default();
    for _ in 0..AHEAD {
        q = next_quarter(&q);
        labels.push(q.clone());
    }
    Projection {
        labels,
        recorded,
        in_post_ahead: projection(&in_post, AHEAD),
        establishment_ahead: projection(&establishment, AHEAD),
        in_post,
        establishment,
    }
}

/// Each sector's totals for one quarter, for the sectors that made a return.
pub fn by_sector(returns: &[Record], sectors: &[&str], quarter: &str) -> BTreeMap<String, QuarterTotals> {
    let mut out = BTreeMap::new();
    for x in sectors {
        let t = workforce_totals(returns, &|r: &Record| r.text("sector") == *x && r.text("quarter") == quarter);
        if let Some(t) = t.into_values().next() {
            out.insert(x.to_string(), t);
        }
    }
    out
}

/// Places, starters and completions of the training returns, by (quarter, programme).
pub fn training_pipeline(training: &[Record]) -> BTreeMap<(String, String), (i64, i64, i64)> {
    let mut pipeline: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
    for t in training {
        let e = pipeline.entry((t.text("quarter").to_string(), t.text("programme").to_string())).or_default();
        e.0 += t.int("places").unwrap_or(0);
        e.1 += t.int("starters").unwrap_or(0);
        e.2 += t.int("completions").unwrap_or(0);
    }
    pipeline
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

    #[test]
    fn a_projection_labels_two_years_of_quarters_after_the_last_return() {
        let mut totals = BTreeMap::new();
        for (q, in_post) in [("2025-Q3", 10.0), ("2025-Q4", 12.0)] {
            totals.insert(q.to_string(), QuarterTotals { establishment: 20.0, in_post, ..Default::default() });
        }
        let p = project(&totals);
        assert_eq!(p.recorded, 2);
        assert_eq!(p.labels.len(), 2 + AHEAD);
        assert_eq!(p.labels[2], "2026-Q1");
        assert_eq!(p.labels.last().map(String::as_str), Some("2027-Q4"));
        assert_eq!(p.in_post_ahead[0], 14.0);
        assert_eq!(p.establishment_ahead, vec![20.0; AHEAD]);
    }
}
