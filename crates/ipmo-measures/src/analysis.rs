//! What the stored values of a measure (or an imported indicator) say: SPC, funnel plots,
//! change alerts and the deprivation lens.
//!
//! Everything here works on plain series read back from the warehouse, so the command line, the
//! web pages and the assurance framework share one set of rules:
//! - **SPC**: a Making Data Count XmR chart over an organisation's monthly values (months with no
//!   value are skipped), with the measure's direction and target; at least [`MIN_SPC_POINTS`]
//!   points, as NHS England's guidance asks before limits mean anything.
//! - **Funnel**: all organisations of a level in one month, binomial for percentages of item
//!   counts and Poisson for item rates; measures whose numerator is not a count get none.
//! - **Alerts**, after OpenPrescribing's monthly alerts: in the top or bottom decile (percentile
//!   ≥ 90 or ≤ 10) in each of the last three months, skipping jagged series (any numerator below
//!   15, or a value of 0, or of 100 for a percentage); CUSUM on the last 18 months' percentiles;
//!   savings at the median summed over the last six months of at least £1,000 (possible) or at
//!   most −£1,000 (achieved); and, beyond OpenPrescribing, an SPC special cause at the latest month.
//! - **Deprivation lens**: practices in their national IMD quintile (the `quintile` column of the
//!   warehouse's `imd` table: 1 = most deprived fifth), the pooled value per quintile
//!   (Σ numerators ÷ Σ denominators, practices with a value only), and the gap between the most
//!   and the least deprived fifth.

use crate::definition::Measure;
use ipmo_domain::YearMonth;
use ipmo_domain::display::{decimals_for, month_span, number, plural, pounds};
use ipmo_stats::Direction;
use ipmo_stats::cusum::{CusumAlert, CusumOptions, latest_alert};
use ipmo_stats::funnel::{Funnel, FunnelModel, funnel};
use ipmo_stats::spc::{PointClass, XmrChart, XmrOptions, xmr};
use rustc_hash::FxHashMap;

/// Fewest points for an SPC chart (Making Data Count: limits need about 15 points to settle).
pub const MIN_SPC_POINTS: usize = 15;
/// Months a series must sit in the top or bottom decile to alert.
pub const DECILE_ALERT_MONTHS: u32 = 3;
/// Smallest numerator for a decile alert (OpenPrescribing's jaggedness filter).
pub const DECILE_ALERT_MIN_NUMERATOR: f64 = 15.0;
/// Months of percentiles the CUSUM looks at.
pub const CUSUM_MONTHS: u32 = 18;
/// Months of median savings summed for a savings alert (the same period as the headline).
pub const SAVINGS_MONTHS: u32 = crate::savings::SAVINGS_MONTHS;

pub use crate::series::{ValueFields, ValuePoint};
/// Summed savings (in pounds) that make an alert.
pub const SAVINGS_ALERT_POUNDS: f64 = 1_000.0;

/// How a series is judged: the facts about a measure that the statistics need, shared by library
/// measures and imported indicators.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Judgement {
    /// Which way is better.
    pub direction: Direction,
    /// Target in the value's unit, for SPC assurance.
    pub target: Option<f64>,
    /// numerator × multiplier / denominator = value.
    pub multiplier: f64,
    /// The funnel model, when the numerator is a count.
    pub funnel: Option<FunnelModel>,
    /// Whether savings alerts apply.
    pub cost_based: bool,
    /// Whether value 100 means "all" (a jagged percentage series).
    pub is_percentage: bool,
    /// Whether the measure takes part in alerts.
    pub alerts: bool,
}

impl Judgement {
    /// The judgement of a library measure.
    pub fn of(m: &Measure) -> Self {
        // A percentage of a count is a proportion (binomial); a count per patient, per STAR-PU,
        // per item or per unit is a rate (Poisson). Money is no count of events, so it gets none.
        let funnel = match (m.counts_events(), m.is_percentage) {
            (true, true) if m.denominator.quantity == m.numerator.quantity => Some(FunnelModel::Binomial),
            (true, false) => Some(FunnelModel::Poisson),
            _ => None,
        };
        Self {
            direction: m.direction,
            target: m.target.as_ref().map(|t| t.value),
            multiplier: m.multiplier(),
            funnel,
            cost_based: m.is_cost_based,
            is_percentage: m.is_percentage,
            alerts: m.include_in_alerts,
        }
    }

    /// The judgement of an imported indicator: a percentage of counts.
    pub fn indicator(direction: Direction) -> Self {
        Self {
            direction,
            target: None,
            multiplier: 100.0,
            funnel: Some(FunnelModel::Binomial),
            cost_based: false,
            is_percentage: true,
            alerts: true,
        }
    }
}

/// An SPC chart with the month of each point.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Spc {
    /// Month of each charted point.
    pub months: Vec<YearMonth>,
    /// The chart.
    pub chart: XmrChart,
}

impl Spc {
    /// The class of the point for `month`, if charted.
    pub fn class_at(&self, month: YearMonth) -> Option<PointClass> {
        self.months.iter().position(|m| *m == month).map(|i| self.chart.points[i].class)
    }
}

/// Process limits as shown to people: measure values cannot fall below zero, nor a percentage
/// rise above 100, so limits beyond those bounds are drawn and written at the bound (Making Data
/// Count truncates limits at a natural floor or ceiling in the same way).
pub fn shown_limits(lower: f64, upper: f64, judgement: &Judgement) -> (f64, f64) {
    let ceiling = if judgement.is_percentage { 100.0 } else { f64::INFINITY };
    (lower.max(0.0), upper.min(ceiling))
}

/// How the limits of an SPC chart are set, beyond the measure's direction and target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpcLimits {
    /// Fix each segment's limits on its first `n` months (a baseline period).
    pub baseline_points: Option<usize>,
    /// Months from which the process is taken to have changed (limits recalculated: rebasing).
    pub rebase_at: Vec<YearMonth>,
}

/// The XmR chart of a series, or None with fewer than [`MIN_SPC_POINTS`] values.
pub fn spc(points: &[ValuePoint], judgement: &Judgement) -> Option<Spc> {
    spc_with(points, judgement, &SpcLimits::default())
}

/// [`spc`] with a baseline period or rebasing.
pub fn spc_with(points: &[ValuePoint], judgement: &Judgement, limits: &SpcLimits) -> Option<Spc> {
    let charted: Vec<(YearMonth, f64)> =
        points.iter().filter_map(|p| p.value().filter(|v| v.is_finite()).map(|v| (p.month, v))).collect();
    if charted.len() < MIN_SPC_POINTS {
        return None;
    }
    let values: Vec<f64> = charted.iter().map(|c| c.1).collect();
    let rebase_at = limits.rebase_at.iter().map(|m| charted.partition_point(|c| c.0 < *m)).collect::<Vec<usize>>();
    let options = XmrOptions {
        direction: Some(judgement.direction),
        target: judgement.target,
        baseline_points: limits.baseline_points,
        rebase_at,
        ..Default::default()
    };
    let chart = xmr(&values, &options)?;
    Some(Spc { months: charted.into_iter().map(|c| c.0).collect(), chart })
}

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Percentile ≥ 90 in each of the last three months.
    TopDecile,
    /// Percentile ≤ 10 in each of the last three months.
    BottomDecile,
    /// CUSUM on the percentile series alarms at the latest month.
    Changed,
    /// The latest month is an SPC special cause.
    SpecialCause,
    /// Median savings over six months of at least £1,000.
    SavingsPossible,
    /// Median savings over six months of at most −£1,000.
    SavingsAchieved,
}

/// Whether an alert is good news.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// Better than others or than before.
    Good,
    /// Worse.
    Bad,
    /// The measure makes no value judgement.
    Neutral,
}

/// One alert for one organisation and measure.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Alert {
    /// What happened.
    pub kind: AlertKind,
    /// Good, bad or neutral, by the measure's direction.
    pub tone: Tone,
    /// The month it is about (the latest month of data).
    pub month: YearMonth,
    /// A sentence for people.
    pub message: String,
    /// Size for ordering (percentile points, pounds or limit distances).
    pub size: f64,
}

/// Whether being high (or low) is good, bad or neither, by the measure's direction: the one
/// judgement that alerts, funnel plots and the board report colour by.
pub fn tone_of(high: bool, direction: Direction) -> Tone {
    match (direction, high) {
        (Direction::Neither, _) => Tone::Neutral,
        (Direction::LowerIsBetter, true) | (Direction::HigherIsBetter, false) => Tone::Bad,
        _ => Tone::Good,
    }
}

/// Alerts for one organisation's series of one measure, as at `latest` (the warehouse's latest
/// month for the measure). `points` must be in month order.
pub fn alerts(points: &[ValuePoint], judgement: &Judgement, latest: YearMonth) -> Vec<Alert> {
    let mut out = Vec::new();
    if !judgement.alerts {
        return out;
    }
    let at = |m: YearMonth| points.iter().find(|p| p.month == m);
    let window: Vec<Option<&ValuePoint>> = (0..DECILE_ALERT_MONTHS).map(|i| at(latest.minus(i))).collect();
    if let Some(last3) = window.iter().copied().collect::<Option<Vec<&ValuePoint>>>() {
        let jagged = last3.iter().any(|p| {
            p.numerator().is_none_or(|n| n < DECILE_ALERT_MIN_NUMERATOR)
                || p.value().is_none_or(|v| v == 0.0 || (judgement.is_percentage && v == 100.0))
        });
        let pct: Option<Vec<f64>> = last3.iter().map(|p| p.percentile()).collect();
        if let (false, Some(pct)) = (jagged, pct) {
            let (high, low) = (pct.iter().all(|p| *p >= 90.0), pct.iter().all(|p| *p <= 10.0));
            if high || low {
                let mean = pct.iter().sum::<f64>() / pct.len() as f64;
                let kind = if high { AlertKind::TopDecile } else { AlertKind::BottomDecile };
                let tone = tone_of(high, judgement.direction);
                let place = if high { "highest" } else { "lowest" };
                out.push(Alert {
                    kind,
                    tone,
                    month: latest,
                    message: format!(
                        "in the {place} 10% of its level for each of the last {DECILE_ALERT_MONTHS} months \
                         (mean percentile {mean:.0})"
                    ),
                    size: if high { mean - 50.0 } else { 50.0 - mean },
                });
            }
        }
    }
    let from = latest.minus(CUSUM_MONTHS - 1);
    if at(latest).is_some() {
        let series: Vec<Option<f64>> =
            points.iter().filter(|p| p.month >= from && p.month <= latest).map(|p| p.percentile()).collect();
        if let Some(CusumAlert { from: before, to, months, increase }) = latest_alert(&series, CusumOptions::default())
        {
            let way = if increase { "risen" } else { "fallen" };
            out.push(Alert {
                kind: AlertKind::Changed,
                tone: tone_of(increase, judgement.direction),
                month: latest,
                message: {
                    // One decimal where whole numbers would print the same on both sides.
                    let d = if format!("{before:.0}") == format!("{to:.0}") { 1 } else { 0 };
                    format!(
                        "percentile has {way} from a mean of {before:.d$} to {to:.d$} over {} (CUSUM)",
                        plural(months, "month", "months")
                    )
                },
                size: (to - before).abs(),
            });
        }
    }
    if let Some(chart) = spc(points, judgement)
        && chart.months.last() == Some(&latest)
    {
        let last = chart.chart.points.last().expect("spc has points");
        if let (Some(side), Some(rule)) = (last.side, last.rule) {
            let high = side == ipmo_stats::spc::Side::High;
            let seg = &chart.chart.segments[last.segment];
            let rule = serde_json::to_value(rule).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let (lower, upper) = shown_limits(seg.lower, seg.upper, judgement);
            let d = decimals_for(seg.mean);
            out.push(Alert {
                kind: AlertKind::SpecialCause,
                tone: tone_of(high, judgement.direction),
                month: latest,
                message: format!(
                    "special-cause variation ({}) at the latest month: {} against a mean of {} (limits {} to {})",
                    rule.replace('_', " "),
                    number(last.value, d),
                    number(seg.mean, d),
                    number(lower, d),
                    number(upper, d)
                ),
                size: if seg.mean_moving_range > 0.0 {
                    (last.value - seg.mean).abs() / seg.mean_moving_range
                } else {
                    0.0
                },
            });
        }
    }
    if judgement.cost_based
        && let Some(saving) = crate::savings::period_saving(points, latest, SAVINGS_MONTHS)
        && saving.at_median.abs() >= SAVINGS_ALERT_POUNDS
    {
        let possible = saving.at_median > 0.0;
        let period = month_span(saving.from, saving.to);
        out.push(Alert {
            kind: if possible { AlertKind::SavingsPossible } else { AlertKind::SavingsAchieved },
            tone: if possible { Tone::Bad } else { Tone::Good },
            month: latest,
            message: if possible {
                format!(
                    "{} could have been saved over {period} by prescribing at the median of its level ({} at the 10th percentile)",
                    pounds(saving.at_median),
                    pounds(saving.at_p10.max(0.0))
                )
            } else {
                format!("{} less spent than at the median of its level over {period}", pounds(-saving.at_median))
            },
            size: saving.at_median.abs(),
        });
    }
    out
}

/// One organisation's (or practice's) numerator and denominator in one month: a point of a funnel
/// plot, or a practice in the deprivation lens.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OrgCounts<C = String> {
    /// Organisation code (owned, or borrowed where a page builds thousands of rows per request).
    pub org_code: C,
    /// Numerator.
    pub numerator: f64,
    /// Denominator.
    pub denominator: f64,
}

/// A funnel plot for one level and month: the plot (in proportions or rates per unit) and the
/// organisation of each point, in the same order.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FunnelPlot<C = String> {
    /// Multiplier from the plot's scale to the measure's unit.
    pub multiplier: f64,
    /// Organisation codes of `funnel.points`.
    pub orgs: Vec<C>,
    /// The plot.
    pub funnel: Funnel,
}

/// Why a funnel plot could not be drawn.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FunnelUnavailable {
    /// The numerator is money, which no count model fits.
    #[error(
        "funnel plots need a numerator that counts something (items, units or doses); this measure's numerator is money, whose spread depends on prices as much as on prescribing, so no binomial or Poisson limits fit it"
    )]
    NotACount,
    /// Fewer than two organisations, or no variation to model.
    #[error(
        "a funnel plot needs at least two organisations with a denominator above zero and a pooled value strictly between the extremes"
    )]
    TooFew,
}

/// The funnel plot of one level in one month, with Spiegelhalter's over-dispersion adjustment.
pub fn funnel_plot<C: Clone>(rows: &[OrgCounts<C>], judgement: &Judgement) -> Result<FunnelPlot<C>, FunnelUnavailable> {
    let model = judgement.funnel.ok_or(FunnelUnavailable::NotACount)?;
    let kept: Vec<&OrgCounts<C>> =
        rows.iter().filter(|r| r.denominator > 0.0 && r.numerator.is_finite() && r.denominator.is_finite()).collect();
    let data: Vec<(f64, f64)> = kept.iter().map(|r| (r.numerator, r.denominator)).collect();
    let funnel = funnel(&data, model, true).ok_or(FunnelUnavailable::TooFew)?;
    Ok(FunnelPlot { multiplier: judgement.multiplier, orgs: kept.iter().map(|r| r.org_code.clone()).collect(), funnel })
}

/// One IMD quintile's pooled value.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct QuintileValue {
    /// 1 = most deprived fifth of practices nationally, 5 = least deprived.
    pub quintile: u8,
    /// Practices of the quintile with a value.
    pub practices: usize,
    /// Σ numerators.
    pub numerator: f64,
    /// Σ denominators.
    pub denominator: f64,
    /// Pooled value in the measure's unit.
    pub value: Option<f64>,
}

/// Values by deprivation quintile and the gap between the ends.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Lens {
    /// Quintiles 1 to 5.
    pub quintiles: Vec<QuintileValue>,
    /// Most deprived minus least deprived (quintile 1 − quintile 5).
    pub gap: Option<f64>,
    /// Practices with a value but no IMD score (left out).
    pub practices_without_imd: usize,
}

/// The deprivation lens over practice values.
pub fn lens(values: &[OrgCounts], quintiles: &FxHashMap<String, u8>, multiplier: f64) -> Lens {
    let rows: Vec<(Option<u8>, f64, f64)> =
        values.iter().map(|v| (quintiles.get(&v.org_code).copied(), v.numerator, v.denominator)).collect();
    lens_of_quintiles(&rows, multiplier)
}

/// The deprivation lens over practices already matched to their quintile: `(quintile,
/// numerator, denominator)`, the quintile None for a practice without an IMD score. Quintiles
/// outside 1–5 count as unscored.
pub fn lens_of_quintiles(rows: &[(Option<u8>, f64, f64)], multiplier: f64) -> Lens {
    let mut q: Vec<QuintileValue> = (1..=5)
        .map(|quintile| QuintileValue { quintile, practices: 0, numerator: 0.0, denominator: 0.0, value: None })
        .collect();
    let mut without = 0;
    for &(quintile, numerator, denominator) in rows {
        match quintile.filter(|k| (1..=5).contains(k)) {
            Some(k) => {
                let row = &mut q[usize::from(k) - 1];
                row.practices += 1;
                row.numerator += numerator;
                row.denominator += denominator;
            }
            None => without += 1,
        }
    }
    for row in &mut q {
        row.value = (row.denominator > 0.0).then(|| row.numerator * multiplier / row.denominator);
    }
    let gap = match (q[0].value, q[4].value) {
        (Some(a), Some(b)) => Some(a - b),
        _ => None,
    };
    Lens { quintiles: q, gap, practices_without_imd: without }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ym(s: &str) -> YearMonth {
        s.parse().unwrap()
    }

    fn series(pcts: &[f64], start: &str) -> Vec<ValuePoint> {
        pcts.iter()
            .enumerate()
            .map(|(i, p)| {
                ValuePoint::from(ValueFields {
                    month: ym(start).plus(i as u32),
                    numerator: Some(100.0),
                    denominator: Some(1000.0),
                    value: Some(10.0 + *p / 100.0),
                    percentile: Some(*p),
                    saving_50: None,
                    saving_10: None,
                })
            })
            .collect()
    }

    fn lower_is_better() -> Judgement {
        Judgement::indicator(Direction::LowerIsBetter)
    }

    #[test]
    fn three_months_in_the_top_decile_is_bad_when_low_is_good() {
        let s = series(&[50.0, 50.0, 91.0, 95.0, 99.0], "2024-01");
        let a = alerts(&s, &lower_is_better(), ym("2024-05"));
        let top: Vec<&Alert> = a.iter().filter(|a| a.kind == AlertKind::TopDecile).collect();
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].tone, Tone::Bad);
        assert!(top[0].message.contains("mean percentile 95"), "{}", top[0].message);
        // Two months is not enough, nor is a missing latest month.
        assert!(alerts(&s[..4], &lower_is_better(), ym("2024-04")).iter().all(|a| a.kind != AlertKind::TopDecile));
        assert!(alerts(&s, &lower_is_better(), ym("2024-06")).is_empty());
    }

    #[test]
    fn jagged_series_do_not_raise_decile_alerts() {
        let mut s = series(&[5.0, 5.0, 5.0], "2024-01");
        s[1].edit(|f| f.numerator = Some(14.0));
        assert!(alerts(&s, &lower_is_better(), ym("2024-03")).is_empty());
        s[1].edit(|f| f.numerator = Some(15.0));
        let a = alerts(&s, &lower_is_better(), ym("2024-03"));
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].kind, a[0].tone), (AlertKind::BottomDecile, Tone::Good));
        s[2].edit(|f| f.value = Some(100.0));
        assert!(alerts(&s, &lower_is_better(), ym("2024-03")).is_empty());
    }

    #[test]
    fn cusum_alert_on_a_percentile_jump() {
        // Twelve months around 40, then six at 80: S⁺ passes 5σ (σ floored at 1) at once.
        let mut p = vec![40.0, 41.0, 39.0, 40.0, 40.0, 41.0, 39.0, 40.0, 40.0, 41.0, 39.0, 40.0];
        p.extend([80.0; 6]);
        let s = series(&p, "2023-01");
        let a = alerts(&s, &lower_is_better(), ym("2024-06"));
        let changed: Vec<&Alert> = a.iter().filter(|a| a.kind == AlertKind::Changed).collect();
        assert_eq!(changed.len(), 1, "{a:?}");
        assert_eq!(changed[0].tone, Tone::Bad);
        assert!(changed[0].message.contains("from a mean of 40 to 80 over 6 month"), "{}", changed[0].message);
    }

    #[test]
    fn spc_needs_fifteen_points_and_flags_the_latest_special_cause() {
        let mut values = vec![10.0, 11.0, 10.0, 9.0, 10.0, 11.0, 10.0, 9.0, 10.0, 11.0, 10.0, 9.0, 10.0, 11.0];
        let mut s: Vec<ValuePoint> = series(&vec![50.0; values.len()], "2023-01");
        for (p, v) in s.iter_mut().zip(&values) {
            p.edit(|f| f.value = Some(*v));
        }
        let j = lower_is_better();
        assert!(spc(&s, &j).is_none(), "14 points are too few");
        // Mean moving range of the 15 points: (13 × 1 + 1 × 10) / 14 ≈ 1.64; upper limit ≈ 10.67 + 4.37.
        values.push(20.0);
        s.push(ValuePoint::from(ValueFields { value: Some(20.0), ..s[0].fields() }));
        s.last_mut().unwrap().month = ym("2024-03");
        let chart = spc(&s, &j).unwrap();
        assert_eq!(chart.months.len(), 15);
        assert_eq!(chart.class_at(ym("2024-03")), Some(PointClass::Concern));
        let a = alerts(&s, &j, ym("2024-03"));
        let sc: Vec<&Alert> = a.iter().filter(|a| a.kind == AlertKind::SpecialCause).collect();
        assert_eq!(sc.len(), 1);
        assert_eq!(sc[0].tone, Tone::Bad);
        assert!(sc[0].message.contains("outside limits"), "{}", sc[0].message);
        // Rebased at the last month, the earlier 14 form their own segment and the last point
        // starts a new one (a one-point segment has no spread, so it is not outside anything).
        let limits = SpcLimits { rebase_at: vec![ym("2024-03")], baseline_points: None };
        let rebased = spc_with(&s, &j, &limits).unwrap();
        assert_eq!(rebased.chart.segments.len(), 2);
        assert_eq!(rebased.chart.segments[0].end, 14);
        // A baseline of the first 5 points: mean (10 + 11 + 10 + 9 + 10) / 5 = 10.
        let base = spc_with(&s, &j, &SpcLimits { baseline_points: Some(5), rebase_at: vec![] }).unwrap();
        assert!((base.chart.segments[0].mean - 10.0).abs() < 1e-12);
    }

    #[test]
    fn savings_alerts_sum_six_months() {
        let mut s = series(&[50.0; 8], "2024-01");
        for p in &mut s {
            p.edit(|f| f.saving_50 = Some(200.0));
        }
        let mut j = lower_is_better();
        j.cost_based = true;
        let a = alerts(&s, &j, ym("2024-08"));
        let sav: Vec<&Alert> = a.iter().filter(|a| a.kind == AlertKind::SavingsPossible).collect();
        assert_eq!(sav.len(), 1);
        assert_eq!(sav[0].size, 1200.0, "six months × £200, not eight");
        for p in &mut s {
            p.edit(|f| f.saving_50 = Some(-100.0));
        }
        assert!(alerts(&s, &j, ym("2024-08")).is_empty(), "−£600 is below the threshold");
    }

    #[test]
    fn lens_pools_each_quintile() {
        let q: FxHashMap<String, u8> =
            [("A", 1), ("F", 1), ("B", 2), ("G", 5)].iter().map(|(c, k)| (c.to_string(), *k)).collect();
        let v = |p: &str, n: f64, d: f64| OrgCounts { org_code: p.into(), numerator: n, denominator: d };
        let l = lens(&[v("A", 10.0, 100.0), v("F", 30.0, 100.0), v("G", 5.0, 100.0), v("Z", 1.0, 1.0)], &q, 100.0);
        assert_eq!(l.quintiles[0].value, Some(20.0));
        assert_eq!(l.quintiles[0].practices, 2);
        assert_eq!(l.quintiles[1].value, None);
        assert_eq!(l.quintiles[4].value, Some(5.0));
        assert_eq!(l.gap, Some(15.0));
        assert_eq!(l.practices_without_imd, 1);
    }

    #[test]
    fn funnel_needs_a_count_numerator() {
        let rows: Vec<OrgCounts> = (0..5)
            .map(|i| OrgCounts { org_code: format!("O{i}"), numerator: 10.0 + f64::from(i), denominator: 100.0 })
            .collect();
        let plot = funnel_plot(&rows, &lower_is_better()).unwrap();
        assert_eq!(plot.orgs.len(), 5);
        assert!((plot.funnel.target - 0.12).abs() < 1e-12);
        let mut j = lower_is_better();
        j.funnel = None;
        assert_eq!(funnel_plot(&rows, &j), Err(FunnelUnavailable::NotACount));
        assert_eq!(funnel_plot(&rows[..1], &lower_is_better()), Err(FunnelUnavailable::TooFew));
    }
}
