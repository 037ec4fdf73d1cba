//! Making Data Count XmR (individuals) charts: limits, the four special-cause rules, point
//! classes, and the variation and assurance icons.
//!
//! Source: NHS England, *Making data count: strengthening your decisions* (2019), as implemented
//! in the NHS-R community's `NHSRplotthedots`. Centre line = mean; moving range = |xᵢ − xᵢ₋₁|;
//! process limits = mean ± 2.66 × mean moving range; the "near a limit" band starts at two thirds
//! of the way to each limit (about 2σ). Rules, in order of precedence: (1) a point outside the
//! limits; (2) a run of 7 points all increasing or all decreasing; (3) two of three consecutive
//! points beyond the near-limit band on the same side, all three on that side of the mean; (4) a
//! run of 7 points on one side of the mean. The first rule that catches a point decides which side
//! (high or low) it signals, so an increasing trend that is still below the mean reads as "high".
//! Moving ranges are not screened for outliers by default, which matches the NHS England Excel
//! tool; set [`XmrOptions::screen_moving_ranges`] to screen ranges above 3.267 × the mean range.

use crate::Direction;

/// Scaling constant from the mean moving range to 3σ limits (3 / d₂, d₂ = 1.128).
pub const LIMIT_FACTOR: f64 = 2.66;
/// Moving ranges above this multiple of their mean are outliers when screening is on.
pub const MOVING_RANGE_SCREEN: f64 = 3.267;
/// Length of a trend or shift run.
pub const RUN_LENGTH: usize = 7;

/// How to build a chart.
#[derive(Clone, Debug, Default)]
pub struct XmrOptions {
    /// Which way is better; `None` is treated as [`Direction::Neither`].
    pub direction: Option<Direction>,
    /// A target for the assurance icon.
    pub target: Option<f64>,
    /// Fix each segment's limits on its first `n` points (at least 2) instead of all of them.
    pub baseline_points: Option<usize>,
    /// Indices where the process changed and limits are recalculated (rebasing).
    pub rebase_at: Vec<usize>,
    /// Leave out moving ranges above 3.267 × their mean before the final mean moving range.
    pub screen_moving_ranges: bool,
}

/// Centre and limits of one segment (between rebases).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Segment {
    /// First point of the segment.
    pub start: usize,
    /// One past the last point.
    pub end: usize,
    /// Centre line.
    pub mean: f64,
    /// Mean moving range used for the limits.
    pub mean_moving_range: f64,
    /// Upper process limit.
    pub upper: f64,
    /// Lower process limit.
    pub lower: f64,
    /// Start of the upper near-limit band.
    pub upper_near: f64,
    /// Start of the lower near-limit band.
    pub lower_near: f64,
}

/// Which rule first caught a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Beyond a process limit.
    OutsideLimits,
    /// Part of seven points all rising or all falling.
    Trend,
    /// Two of three points near a limit.
    TwoOfThree,
    /// Part of seven points on one side of the mean.
    Shift,
}

/// Side of the mean a signal is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Above (or rising).
    High,
    /// Below (or falling).
    Low,
}

/// How a point is coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointClass {
    /// Common-cause variation (grey).
    Common,
    /// Special cause in the better direction (blue).
    Improvement,
    /// Special cause in the worse direction (orange).
    Concern,
    /// Special cause where no direction is better (purple).
    Neutral,
}

impl PointClass {
    /// The Making Data Count colour for this class.
    pub fn colour(self) -> &'static str {
        match self {
            PointClass::Common => "#a6a6a6",
            PointClass::Improvement => "#00b0f0",
            PointClass::Concern => "#e46c0a",
            PointClass::Neutral => "#490092",
        }
    }
}

/// One plotted point.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Point {
    /// The value.
    pub value: f64,
    /// Index into [`XmrChart::segments`].
    pub segment: usize,
    /// The first rule that caught it, if any.
    pub rule: Option<Rule>,
    /// The side that rule signals.
    pub side: Option<Side>,
    /// Colour class.
    pub class: PointClass,
}

/// The variation icon: what the latest point says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variation {
    /// Common-cause variation.
    CommonCause,
    /// Special cause, better, high.
    ImprovementHigh,
    /// Special cause, better, low.
    ImprovementLow,
    /// Special cause, worse, high.
    ConcernHigh,
    /// Special cause, worse, low.
    ConcernLow,
    /// Special cause, no judgement, high.
    NeutralHigh,
    /// Special cause, no judgement, low.
    NeutralLow,
}

/// The assurance icon: can the process be relied on to meet its target?
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Assurance {
    /// The target lies beyond the limits on the good side: it will be met.
    ConsistentlyPass,
    /// The target lies beyond the limits on the bad side: it will not be met without change.
    ConsistentlyFail,
    /// The target lies between the limits: sometimes met, sometimes not.
    HitOrMiss,
}

/// A computed XmR chart.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct XmrChart {
    /// Limits per segment.
    pub segments: Vec<Segment>,
    /// Points in input order.
    pub points: Vec<Point>,
    /// Icon for the latest point.
    pub variation: Variation,
    /// Icon for the target, when there is a target and a direction.
    pub assurance: Option<Assurance>,
}

/// Builds an XmR chart; `None` when there are fewer than two values or any value is not finite.
pub fn xmr(values: &[f64], options: &XmrOptions) -> Option<XmrChart> {
    if values.len() < 2 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let direction = options.direction.unwrap_or(Direction::Neither);
    let mut cuts: Vec<usize> = options.rebase_at.iter().copied().filter(|&i| i > 0 && i < values.len()).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut bounds = vec![0];
    bounds.extend(cuts);
    bounds.push(values.len());
    let mut segments = Vec::new();
    for w in bounds.windows(2) {
        let (start, end) = (w[0], w[1]);
        let base_end = options.baseline_points.map_or(end, |n| (start + n.max(2)).min(end));
        segments.push(segment(values, start, end, base_end, options.screen_moving_ranges));
    }
    let mut points: Vec<Point> = Vec::with_capacity(values.len());
    for (si, s) in segments.iter().enumerate() {
        let flags = rules(&values[s.start..s.end], s);
        for (offset, flag) in flags.into_iter().enumerate() {
            let (rule, side) = match flag {
                Some((r, side)) => (Some(r), Some(side)),
                None => (None, None),
            };
            points.push(Point {
                value: values[s.start + offset],
                segment: si,
                rule,
                side,
                class: class(side, direction),
            });
        }
    }
    let last = points.last().expect("at least two points");
    let variation = match (last.class, last.side) {
        (PointClass::Improvement, Some(Side::High)) => Variation::ImprovementHigh,
        (PointClass::Improvement, _) => Variation::ImprovementLow,
        (PointClass::Concern, Some(Side::High)) => Variation::ConcernHigh,
        (PointClass::Concern, _) => Variation::ConcernLow,
        (PointClass::Neutral, Some(Side::High)) => Variation::NeutralHigh,
        (PointClass::Neutral, _) => Variation::NeutralLow,
        (PointClass::Common, _) => Variation::CommonCause,
    };
    let latest = segments.last().expect("at least one segment");
    let assurance = options.target.and_then(|t| assurance(t, latest, direction));
    Some(XmrChart { segments, points, variation, assurance })
}

fn segment(values: &[f64], start: usize, end: usize, base_end: usize, screen: bool) -> Segment {
    let base = &values[start..base_end];
    let mean = base.iter().sum::<f64>() / base.len() as f64;
    let ranges: Vec<f64> = base.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let mut mr = if ranges.is_empty() { 0.0 } else { ranges.iter().sum::<f64>() / ranges.len() as f64 };
    if screen && !ranges.is_empty() {
        let kept: Vec<f64> = ranges.iter().copied().filter(|r| *r <= MOVING_RANGE_SCREEN * mr).collect();
        if !kept.is_empty() {
            mr = kept.iter().sum::<f64>() / kept.len() as f64;
        }
    }
    let spread = LIMIT_FACTOR * mr;
    Segment {
        start,
        end,
        mean,
        mean_moving_range: mr,
        upper: mean + spread,
        lower: mean - spread,
        upper_near: mean + spread * 2.0 / 3.0,
        lower_near: mean - spread * 2.0 / 3.0,
    }
}

/// Applies the four rules in order; a point keeps the first rule that caught it.
fn rules(v: &[f64], s: &Segment) -> Vec<Option<(Rule, Side)>> {
    let n = v.len();
    let mut flag: Vec<Option<(Rule, Side)>> = vec![None; n];
    let mark = |flag: &mut Vec<Option<(Rule, Side)>>, i: usize, rule: Rule, side: Side| {
        if flag[i].is_none() {
            flag[i] = Some((rule, side));
        }
    };
    // 1. Outside the limits.
    for (i, &x) in v.iter().enumerate() {
        if x > s.upper {
            mark(&mut flag, i, Rule::OutsideLimits, Side::High);
        } else if x < s.lower {
            mark(&mut flag, i, Rule::OutsideLimits, Side::Low);
        }
    }
    // 2. Seven points all rising or all falling (six consecutive differences of one sign).
    for (rising, side) in [(true, Side::High), (false, Side::Low)] {
        let mut run_start = 0;
        for i in 1..=n {
            let continues = i < n && if rising { v[i] > v[i - 1] } else { v[i] < v[i - 1] };
            if !continues {
                if i - run_start >= RUN_LENGTH {
                    for j in run_start..i {
                        mark(&mut flag, j, Rule::Trend, side);
                    }
                }
                run_start = i;
            }
        }
    }
    // 3. Two of three beyond the near-limit band on one side, all three on that side.
    for start in 0..n.saturating_sub(2) {
        let window = start..start + 3;
        for side in [Side::High, Side::Low] {
            let same_side = window.clone().all(|i| match side {
                Side::High => v[i] > s.mean,
                Side::Low => v[i] < s.mean,
            });
            let near = |i: usize| match side {
                Side::High => v[i] > s.upper_near,
                Side::Low => v[i] < s.lower_near,
            };
            if same_side && window.clone().filter(|&i| near(i)).count() >= 2 {
                for i in window.clone().filter(|&i| near(i)) {
                    mark(&mut flag, i, Rule::TwoOfThree, side);
                }
            }
        }
    }
    // 4. Seven points on one side of the mean (a point on the mean breaks the run).
    for side in [Side::High, Side::Low] {
        let on_side = |x: f64| match side {
            Side::High => x > s.mean,
            Side::Low => x < s.mean,
        };
        let mut run_start = 0;
        for i in 0..=n {
            if v.get(i).is_none_or(|&x| !on_side(x)) {
                if i - run_start >= RUN_LENGTH {
                    for j in run_start..i {
                        mark(&mut flag, j, Rule::Shift, side);
                    }
                }
                run_start = i + 1;
            }
        }
    }
    flag
}

fn class(side: Option<Side>, direction: Direction) -> PointClass {
    match (side, direction) {
        (None, _) => PointClass::Common,
        (Some(_), Direction::Neither) => PointClass::Neutral,
        (Some(Side::High), Direction::HigherIsBetter) | (Some(Side::Low), Direction::LowerIsBetter) => {
            PointClass::Improvement
        }
        (Some(_), _) => PointClass::Concern,
    }
}

fn assurance(target: f64, s: &Segment, direction: Direction) -> Option<Assurance> {
    if !target.is_finite() {
        return None;
    }
    Some(match direction {
        Direction::Neither => return None,
        Direction::LowerIsBetter if target > s.upper => Assurance::ConsistentlyPass,
        Direction::LowerIsBetter if target < s.lower => Assurance::ConsistentlyFail,
        Direction::HigherIsBetter if target < s.lower => Assurance::ConsistentlyPass,
        Direction::HigherIsBetter if target > s.upper => Assurance::ConsistentlyFail,
        _ => Assurance::HitOrMiss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn limits_worked_by_hand() {
        // Values 10, 12, 11, 13, 12: mean 58/5 = 11.6; moving ranges 2, 1, 2, 1 → mean 1.5;
        // limits 11.6 ± 2.66 × 1.5 = 11.6 ± 3.99 → 7.61 and 15.59; near band ± 2.66 → 8.94, 14.26.
        let c = xmr(&[10.0, 12.0, 11.0, 13.0, 12.0], &XmrOptions::default()).unwrap();
        let s = &c.segments[0];
        assert!(close(s.mean, 11.6) && close(s.mean_moving_range, 1.5));
        assert!(close(s.upper, 15.59) && close(s.lower, 7.61));
        assert!(close(s.upper_near, 14.26) && close(s.lower_near, 8.94));
        assert!(c.points.iter().all(|p| p.class == PointClass::Common));
        assert_eq!(c.variation, Variation::CommonCause);
    }

    #[test]
    fn a_point_outside_the_limits_is_a_concern_when_low_is_good() {
        // Baseline on the first 6 points (10, 12, 10, 12, 10, 12): mean 11, moving range 2,
        // limits 11 ± 5.32 → 16.32. Then 20 is above the upper limit.
        let values = [10.0, 12.0, 10.0, 12.0, 10.0, 12.0, 20.0];
        let opts =
            XmrOptions { direction: Some(Direction::LowerIsBetter), baseline_points: Some(6), ..Default::default() };
        let c = xmr(&values, &opts).unwrap();
        assert!(close(c.segments[0].upper, 16.32));
        let last = c.points.last().unwrap();
        assert_eq!(
            (last.rule, last.side, last.class),
            (Some(Rule::OutsideLimits), Some(Side::High), PointClass::Concern)
        );
        assert_eq!(c.variation, Variation::ConcernHigh);
        assert!(c.points[..6].iter().all(|p| p.rule.is_none()));
    }

    #[test]
    fn seven_rising_points_are_a_trend() {
        // 1..=7 rising then back near the start: all of the first seven are flagged as a trend
        // (none is outside limits: mean 3.75, mean MR (6 × 1 + 6 + 1) / 7... checked below).
        let values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 1.0];
        let opts = XmrOptions { direction: Some(Direction::HigherIsBetter), ..Default::default() };
        let c = xmr(&values, &opts).unwrap();
        // mean = 29 / 8 = 3.625; ranges 1,1,1,1,1,1,6 → 12/7; limits ± 4.56 → −0.935 … 8.185.
        assert!(close(c.segments[0].mean, 3.625));
        for p in &c.points[..7] {
            assert_eq!((p.rule, p.side, p.class), (Some(Rule::Trend), Some(Side::High), PointClass::Improvement));
        }
        assert_eq!(c.points[7].rule, None);
    }

    #[test]
    fn six_rising_points_are_not_a_trend() {
        let c = xmr(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0, 2.0], &XmrOptions::default()).unwrap();
        assert!(c.points.iter().all(|p| p.rule != Some(Rule::Trend)));
    }

    #[test]
    fn seven_points_below_the_mean_are_a_shift() {
        // Baseline 8, 16, 8, 16, 8, 16, 8, 16: mean 12, moving range 8, limits 12 ± 21.28, near band
        // from ± 14.19. Then seven points alternating 11.5 / 11: below the mean, nowhere near a
        // limit, no trend, so only the shift rule catches them.
        let mut values = vec![8.0, 16.0, 8.0, 16.0, 8.0, 16.0, 8.0, 16.0];
        values.extend([11.5, 11.0, 11.5, 11.0, 11.5, 11.0, 11.5]);
        let opts =
            XmrOptions { direction: Some(Direction::LowerIsBetter), baseline_points: Some(8), ..Default::default() };
        let c = xmr(&values, &opts).unwrap();
        let s = &c.segments[0];
        assert!(close(s.mean, 12.0) && close(s.mean_moving_range, 8.0) && close(s.upper, 33.28));
        assert!(c.points[..8].iter().all(|p| p.rule.is_none()));
        for p in &c.points[8..] {
            assert_eq!((p.rule, p.side, p.class), (Some(Rule::Shift), Some(Side::Low), PointClass::Improvement));
        }
        assert_eq!(c.variation, Variation::ImprovementLow);
        // Six points are not enough.
        let c = xmr(&values[..14], &opts).unwrap();
        assert!(c.points.iter().all(|p| p.rule.is_none()));
    }

    #[test]
    fn two_of_three_near_the_upper_limit() {
        // Baseline 10, 11, 10, 11, 10, 11 (mean 10.5, MR 1, limits ± 2.66, near band from 12.273);
        // then 12.5, 10.6, 12.6: two beyond 12.273, all three above 10.5, none beyond 13.16.
        let values = [10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 12.5, 10.6, 12.6];
        let opts = XmrOptions { baseline_points: Some(6), ..Default::default() };
        let c = xmr(&values, &opts).unwrap();
        assert_eq!(c.points[6].rule, Some(Rule::TwoOfThree));
        assert_eq!(c.points[7].rule, None);
        assert_eq!(c.points[8].rule, Some(Rule::TwoOfThree));
        assert_eq!(c.points[8].class, PointClass::Neutral);
        assert_eq!(c.variation, Variation::NeutralHigh);
    }

    #[test]
    fn assurance_compares_the_target_with_the_latest_limits() {
        let values = [10.0, 12.0, 11.0, 13.0, 12.0]; // limits 7.61 … 15.59
        let lower_better =
            |t| XmrOptions { direction: Some(Direction::LowerIsBetter), target: Some(t), ..Default::default() };
        assert_eq!(xmr(&values, &lower_better(16.0)).unwrap().assurance, Some(Assurance::ConsistentlyPass));
        assert_eq!(xmr(&values, &lower_better(7.0)).unwrap().assurance, Some(Assurance::ConsistentlyFail));
        assert_eq!(xmr(&values, &lower_better(12.0)).unwrap().assurance, Some(Assurance::HitOrMiss));
        let higher = XmrOptions { direction: Some(Direction::HigherIsBetter), target: Some(7.0), ..Default::default() };
        assert_eq!(xmr(&values, &higher).unwrap().assurance, Some(Assurance::ConsistentlyPass));
        let neither = XmrOptions { target: Some(7.0), ..Default::default() };
        assert_eq!(xmr(&values, &neither).unwrap().assurance, None);
    }

    #[test]
    fn rebasing_recalculates_limits_per_segment() {
        let values = [10.0, 11.0, 10.0, 11.0, 30.0, 31.0, 30.0, 31.0];
        let c = xmr(&values, &XmrOptions { rebase_at: vec![4], ..Default::default() }).unwrap();
        assert_eq!(c.segments.len(), 2);
        assert!(close(c.segments[0].mean, 10.5) && close(c.segments[1].mean, 30.5));
        assert!(c.points.iter().all(|p| p.rule.is_none()));
        assert_eq!(c.points[5].segment, 1);
    }

    #[test]
    fn screening_drops_outlying_moving_ranges() {
        // Ranges eight 1s then 20, 20: mean 4.8; 20 > 3.267 × 4.8 = 15.68 → screened mean 1.
        let values = [10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 30.0, 10.0];
        let c = xmr(&values, &XmrOptions { screen_moving_ranges: true, ..Default::default() }).unwrap();
        assert!(close(c.segments[0].mean_moving_range, 1.0));
        assert!(xmr(&[1.0], &XmrOptions::default()).is_none());
        assert!(xmr(&[1.0, f64::NAN], &XmrOptions::default()).is_none());
    }

    proptest! {
        #[test]
        fn charts_are_well_formed(values in proptest::collection::vec(-1e6f64..1e6, 2..80), base in proptest::option::of(2usize..20)) {
            let c = xmr(&values, &XmrOptions { baseline_points: base, ..Default::default() }).unwrap();
            prop_assert_eq!(c.points.len(), values.len());
            for s in &c.segments {
                prop_assert!(s.lower <= s.lower_near && s.lower_near <= s.mean);
                prop_assert!(s.mean <= s.upper_near && s.upper_near <= s.upper);
            }
            for p in &c.points {
                let s = &c.segments[p.segment];
                if p.value > s.upper { prop_assert_eq!(p.rule, Some(Rule::OutsideLimits)); }
                prop_assert_eq!(p.rule.is_some(), p.class != PointClass::Common);
            }
        }
    }
}
