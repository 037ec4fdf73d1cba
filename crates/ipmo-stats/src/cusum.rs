//! CUSUM change detection on a percentile series: "this organisation has moved".
//!
//! Source: Walker AJ et al., *Feasibility of a national prescribing change-detection system*
//! (OpenPrescribing's "most changed" alerts), as summarised in the OpenPrescribing research note:
//! the last 18 months of an organisation's monthly percentile; a reference window of the first 12
//! gives the target mean μ and standard deviation σ; threshold h = sensitivity × σ (sensitivity
//! 5) and slack k = σ/2. Two one-sided sums S⁺ = max(0, S⁺ + x − μ − k) and
//! S⁻ = min(0, S⁻ + x − μ + k) run over the points after the window; a point where either sum is
//! beyond h is in alarm. An alert is raised when the latest point is in alarm, reported as the
//! move from μ to the mean of the alarm run, upwards when it is S⁺ that is beyond h at the latest
//! point (a sum can stay in alarm for a point or two after the series turns, so the direction is
//! read from the sum, and the level from the run, never from the latest value alone). Unlike OpenPrescribing's implementation,
//! the reference is not re-estimated after an alarm: with 18 months and a 12-month window there
//! are only six monitored months, and a fixed reference keeps the alert explainable.

/// Settings; the defaults are OpenPrescribing's.
#[derive(Clone, Copy, Debug)]
pub struct CusumOptions {
    /// Points that set the reference mean and spread.
    pub window: usize,
    /// Threshold in standard deviations.
    pub sensitivity: f64,
    /// Floor on σ, so that a perfectly flat reference does not alarm on any wobble (in the
    /// series' units; one percentile point by default).
    pub min_sd: f64,
}

impl Default for CusumOptions {
    fn default() -> Self {
        Self { window: 12, sensitivity: 5.0, min_sd: 1.0 }
    }
}

/// A detected change at the end of the series.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CusumAlert {
    /// Reference mean.
    pub from: f64,
    /// Mean of the points in alarm.
    pub to: f64,
    /// Number of consecutive points in alarm, ending with the latest.
    pub months: usize,
    /// True when the change is upwards.
    pub increase: bool,
}

/// Runs the CUSUM over `series` (missing values are skipped) and returns the alert, if the latest
/// point is in alarm. Needs more points than the window.
pub fn latest_alert(series: &[Option<f64>], options: CusumOptions) -> Option<CusumAlert> {
    let values: Vec<f64> = series.iter().filter_map(|v| v.filter(|x| x.is_finite())).collect();
    if options.window < 2 || values.len() <= options.window {
        return None;
    }
    let reference = &values[..options.window];
    let mean = reference.iter().sum::<f64>() / reference.len() as f64;
    let sd = (reference.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / reference.len() as f64).sqrt();
    let sd = sd.max(options.min_sd);
    let threshold = options.sensitivity * sd;
    let slack = sd / 2.0;
    let (mut up, mut down) = (0.0f64, 0.0f64);
    let mut run = 0;
    let mut increase = false;
    for &x in &values[options.window..] {
        up = (up + x - mean - slack).max(0.0);
        down = (down + x - mean + slack).min(0.0);
        let (high, low) = (up > threshold, -down > threshold);
        if high || low {
            // Both sums can be in alarm after a swing; the latest point says which way it went.
            let now_up = if high && low { x > mean } else { high };
            run = if run > 0 && now_up != increase { 1 } else { run + 1 };
            increase = now_up;
        } else {
            run = 0;
        }
    }
    let in_run = &values[values.len() - run..];
    (run > 0).then(|| CusumAlert { from: mean, to: in_run.iter().sum::<f64>() / run as f64, months: run, increase })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_sustained_jump_alarms() {
        // Reference: 12 points alternating 40 and 44 → μ = 42, σ = 2; h = 10, k = 1.
        // Then 50, 50, 50: S⁺ = 7, 14, 21 → alarm from the second point on (run of 2).
        let mut s: Vec<Option<f64>> = (0..12).map(|i| Some(if i % 2 == 0 { 40.0 } else { 44.0 })).collect();
        s.extend([Some(50.0), Some(50.0), Some(50.0)]);
        let a = latest_alert(&s, CusumOptions::default()).unwrap();
        assert_eq!(a, CusumAlert { from: 42.0, to: 50.0, months: 2, increase: true });
    }

    #[test]
    fn the_direction_and_level_come_from_the_sum_and_the_run() {
        // Reference μ = 42, σ = 2 (h = 10, k = 1). A jump to 60 puts S⁺ in alarm; the series then
        // falls to 30, where S⁺ (still above h for a point) and then S⁻ take over. The alert must
        // never read "risen … to 30".
        let mut s: Vec<Option<f64>> = (0..12).map(|i| Some(if i % 2 == 0 { 40.0 } else { 44.0 })).collect();
        s.extend([Some(60.0), Some(30.0), Some(30.0), Some(30.0)]);
        let a = latest_alert(&s, CusumOptions::default()).unwrap();
        assert!(!a.increase, "{a:?}");
        assert!(a.to < a.from, "{a:?}");
        let mut s: Vec<Option<f64>> = (0..12).map(|i| Some(if i % 2 == 0 { 40.0 } else { 44.0 })).collect();
        s.extend([Some(60.0), Some(60.0), Some(41.0)]);
        let a = latest_alert(&s, CusumOptions::default()).unwrap();
        assert!(a.increase && a.to > a.from, "{a:?}");
    }

    #[test]
    fn noise_and_a_return_do_not_alarm() {
        let mut s: Vec<Option<f64>> = (0..12).map(|i| Some(if i % 2 == 0 { 40.0 } else { 44.0 })).collect();
        s.extend([Some(43.0), Some(41.0), None, Some(44.0)]);
        assert_eq!(latest_alert(&s, CusumOptions::default()), None);
        // Too short.
        assert_eq!(latest_alert(&s[..12], CusumOptions::default()), None);
    }

    #[test]
    fn a_fall_alarms_downwards() {
        let mut s: Vec<Option<f64>> = vec![Some(80.0); 12];
        s.extend([Some(60.0), Some(55.0)]);
        // σ floors at 1: h = 5, k = 0.5; S⁻ = −19.5 at once.
        let a = latest_alert(&s, CusumOptions::default()).unwrap();
        assert!(!a.increase && a.months == 2 && a.from == 80.0);
    }

    proptest! {
        #[test]
        fn never_panics_and_runs_are_bounded(values in proptest::collection::vec(proptest::option::of(0f64..100.0), 0..40)) {
            if let Some(a) = latest_alert(&values, CusumOptions::default()) {
                let present = values.iter().flatten().count();
                prop_assert!(a.months >= 1 && a.months <= present - 12);
            }
        }
    }
}
