//! Where an organisation stands on a measure, read the way its direction says: the question an
//! ICB pharmacist brings to a dashboard is "where are we worse than others, and by how much?".
//!
//! A percentile rank on its own answers neither half: the 90th percentile is bad for
//! antibacterial items and good for high-intensity statins, and `PERCENT_RANK` gives every
//! organisation tied at the lowest value (most often zero) the 0th percentile, so a practice that
//! never prescribes co-proxamol looks like an outlier. So, after OpenPrescribing:
//! - measures are ordered by their mean percentile over the last [`RANK_MONTHS`] months, turned
//!   round for "higher is better" so that high always means worse ([`worse_percentile`]);
//! - every row says what its percentile means ([`Standing`]);
//! - series with nothing to compare ([`NoSignal`]: no value, no prescribing at all, or no
//!   variation between organisations of the level) are set apart instead of heading the list.

use crate::analysis::ValuePoint;
use ipmo_domain::YearMonth;
use ipmo_stats::Direction;

/// Months whose percentiles are averaged for the order of a dashboard (OpenPrescribing uses six).
pub const RANK_MONTHS: u32 = 6;

/// The percentile turned so that higher is worse; None when the measure makes no judgement.
pub fn worse_percentile(percentile: f64, direction: Direction) -> Option<f64> {
    match direction {
        Direction::LowerIsBetter => Some(percentile),
        Direction::HigherIsBetter => Some(100.0 - percentile),
        Direction::Neither => None,
    }
}

/// The mean percentile over the `months` months to `latest`, of the months that have one.
pub fn mean_percentile(points: &[ValuePoint], latest: YearMonth, months: u32) -> Option<f64> {
    let from = latest.minus(months.saturating_sub(1));
    let recent: Vec<f64> =
        points.iter().filter(|p| p.month >= from && p.month <= latest).filter_map(|p| p.percentile()).collect();
    (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64)
}

/// What a percentile says, given the measure's direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Among the worst tenth of its level.
    WorstTenth,
    /// Worse than the median.
    WorseThanMedian,
    /// Exactly at the median (the 50th percentile).
    AtMedian,
    /// At the median or better.
    BetterThanMedian,
    /// Among the best tenth of its level.
    BestTenth,
    /// The measure makes no judgement: high and low are neither good nor bad.
    NoJudgement,
}

impl Standing {
    /// Words for a table cell.
    pub fn label(self) -> &'static str {
        match self {
            Standing::WorstTenth => "Worst 10%",
            Standing::WorseThanMedian => "Worse than median",
            Standing::AtMedian => "At the median",
            Standing::BetterThanMedian => "Better than median",
            Standing::BestTenth => "Best 10%",
            Standing::NoJudgement => "No judgement",
        }
    }

    /// Whether it is bad news.
    pub fn is_bad(self) -> bool {
        matches!(self, Standing::WorstTenth | Standing::WorseThanMedian)
    }
}

/// The standing of a percentile (0–100) for a measure with `direction`.
pub fn standing(percentile: f64, direction: Direction) -> Standing {
    match worse_percentile(percentile, direction) {
        None => Standing::NoJudgement,
        Some(w) if w >= 90.0 => Standing::WorstTenth,
        Some(w) if w > 50.0 => Standing::WorseThanMedian,
        Some(50.0) => Standing::AtMedian,
        Some(w) if w > 10.0 => Standing::BetterThanMedian,
        Some(_) => Standing::BestTenth,
    }
}

/// Why a series has nothing to compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoSignal {
    /// No value in the latest month (a zero denominator, or no data).
    NoValue,
    /// Nothing counted in the numerator in any month of the window, where less is better or
    /// direction is not judged: there is no prescribing to act on.
    NoPrescribing,
    /// Every organisation of the level had the same value in the latest month (the 10th and
    /// 90th percentiles are equal), so a percentile says nothing.
    NoVariation,
}

impl NoSignal {
    /// Words for people.
    pub fn reason(self) -> &'static str {
        match self {
            NoSignal::NoValue => "no value in the latest month",
            NoSignal::NoPrescribing => "nothing prescribed in the last six months",
            NoSignal::NoVariation => "every organisation of this level has the same value",
        }
    }
}

/// Whether the series to `latest` has nothing to compare, given the level's deciles for
/// `latest` (p10 … p90) when known.
pub fn no_signal(
    points: &[ValuePoint],
    deciles: Option<&[f64; 9]>,
    latest: YearMonth,
    direction: Direction,
) -> Option<NoSignal> {
    let last = points.iter().find(|p| p.month == latest);
    if last.and_then(|p| p.value()).is_none() {
        return Some(NoSignal::NoValue);
    }
    let from = latest.minus(RANK_MONTHS - 1);
    let window = points.iter().filter(|p| p.month >= from && p.month <= latest);
    let nothing = window.clone().all(|p| p.numerator().is_none_or(|n| n == 0.0));
    if nothing && direction != Direction::HigherIsBetter {
        return Some(NoSignal::NoPrescribing);
    }
    if let Some(d) = deciles
        && d[0].is_finite()
        && d[8].is_finite()
        && d[0] == d[8]
    {
        return Some(NoSignal::NoVariation);
    }
    None
}

/// Organisations' values in a month, worst first by the measure's direction (highest first
/// when it makes no judgement), organisations without a value last, ties by organisation code so
/// that the page and the API list them in the same order. With `first`, only that many are kept,
/// and only they are fully sorted (a partial selection keeps a national practice list cheap).
pub fn worst_first<'a>(
    rows: Vec<(&'a str, &'a ValuePoint)>,
    direction: Direction,
    first: Option<usize>,
) -> Vec<(&'a str, &'a ValuePoint)> {
    let key = |pt: &ValuePoint| match pt.value() {
        Some(v) if direction == Direction::HigherIsBetter => -v,
        Some(v) => v,
        None => f64::NEG_INFINITY,
    };
    // Each key worked out once, not at every comparison of a national practice list.
    let mut keyed: Vec<(f64, &'a str, &'a ValuePoint)> = rows.into_iter().map(|(c, pt)| (key(pt), c, pt)).collect();
    let order = |a: &(f64, &str, &ValuePoint), b: &(f64, &str, &ValuePoint)| b.0.total_cmp(&a.0).then(a.1.cmp(b.1));
    if let Some(n) = first
        && keyed.len() > n
    {
        keyed.select_nth_unstable_by(n, order);
        keyed.truncate(n);
    }
    keyed.sort_unstable_by(order);
    keyed.into_iter().map(|(_, c, pt)| (c, pt)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::ValueFields;

    fn ym(s: &str) -> YearMonth {
        s.parse().unwrap()
    }

    fn point(month: &str, numerator: f64, percentile: f64) -> ValuePoint {
        ValuePoint::from(ValueFields {
            month: ym(month),
            numerator: Some(numerator),
            denominator: Some(1000.0),
            value: Some(numerator),
            percentile: Some(percentile),
            saving_50: None,
            saving_10: None,
        })
    }

    #[test]
    fn direction_turns_the_percentile() {
        assert_eq!(worse_percentile(92.0, Direction::LowerIsBetter), Some(92.0));
        assert_eq!(worse_percentile(92.0, Direction::HigherIsBetter), Some(8.0));
        assert_eq!(worse_percentile(92.0, Direction::Neither), None);
        assert_eq!(standing(92.0, Direction::LowerIsBetter), Standing::WorstTenth);
        assert_eq!(standing(92.0, Direction::HigherIsBetter), Standing::BestTenth);
        assert_eq!(standing(50.0, Direction::LowerIsBetter), Standing::AtMedian);
        assert_eq!(standing(49.0, Direction::LowerIsBetter), Standing::BetterThanMedian);
        assert_eq!(standing(60.0, Direction::LowerIsBetter), Standing::WorseThanMedian);
        assert_eq!(standing(30.0, Direction::HigherIsBetter), Standing::WorseThanMedian);
        assert_eq!(standing(0.0, Direction::LowerIsBetter), Standing::BestTenth, "tied at zero is best");
        assert_eq!(standing(99.0, Direction::Neither), Standing::NoJudgement);
    }

    #[test]
    fn the_mean_covers_the_last_six_months() {
        let s: Vec<ValuePoint> =
            (0..8).map(|i| point(&ym("2024-01").plus(i).to_string(), 1.0, f64::from(i) * 10.0)).collect();
        // Months 3..=8 (percentiles 20..=70): mean 45.
        assert_eq!(mean_percentile(&s, ym("2024-08"), 6), Some(45.0));
        assert_eq!(mean_percentile(&s, ym("2026-01"), 6), None);
    }

    #[test]
    fn series_with_nothing_to_compare_are_named() {
        let zeros: Vec<ValuePoint> = (0..6).map(|i| point(&ym("2024-01").plus(i).to_string(), 0.0, 0.0)).collect();
        let latest = ym("2024-06");
        let spread = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        assert_eq!(no_signal(&zeros, Some(&spread), latest, Direction::LowerIsBetter), Some(NoSignal::NoPrescribing));
        assert_eq!(
            no_signal(&zeros, Some(&spread), latest, Direction::HigherIsBetter),
            None,
            "none of a good thing is a signal"
        );
        let some: Vec<ValuePoint> = (0..6).map(|i| point(&ym("2024-01").plus(i).to_string(), 3.0, 40.0)).collect();
        assert_eq!(no_signal(&some, Some(&spread), latest, Direction::LowerIsBetter), None);
        assert_eq!(no_signal(&some, Some(&[2.0; 9]), latest, Direction::LowerIsBetter), Some(NoSignal::NoVariation));
        assert_eq!(no_signal(&some, None, ym("2024-07"), Direction::LowerIsBetter), Some(NoSignal::NoValue));
    }

    #[test]
    fn worst_first_reads_the_direction_puts_gaps_last_and_breaks_ties_by_code() {
        let pt = |v: Option<f64>| {
            ValuePoint::from(ValueFields {
                month: "2025-01".parse().unwrap(),
                numerator: None,
                denominator: None,
                value: v,
                percentile: None,
                saving_50: None,
                saving_10: None,
            })
        };
        let (a, b, c, d) = (pt(Some(2.0)), pt(Some(5.0)), pt(Some(2.0)), pt(None));
        let rows = || vec![("C", &c), ("D", &d), ("A", &a), ("B", &b)];
        let codes = |r: Vec<(&str, &ValuePoint)>| r.into_iter().map(|(c, _)| c.to_string()).collect::<Vec<_>>();
        assert_eq!(codes(worst_first(rows(), Direction::LowerIsBetter, None)), ["B", "A", "C", "D"]);
        assert_eq!(codes(worst_first(rows(), Direction::Neither, None)), ["B", "A", "C", "D"]);
        assert_eq!(codes(worst_first(rows(), Direction::HigherIsBetter, None)), ["A", "C", "B", "D"]);
        assert_eq!(codes(worst_first(rows(), Direction::HigherIsBetter, Some(2))), ["A", "C"]);
    }
}
