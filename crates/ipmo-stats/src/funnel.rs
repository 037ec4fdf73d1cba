//! Funnel plots for comparing organisations of one level in one period.
//!
//! Source: Spiegelhalter DJ, *Funnel plots for comparing institutional performance*, Statistics
//! in Medicine 2005;24:1185–1202, and *Handling over-dispersion of performance indicators*, Qual
//! Saf Health Care 2005;14:347–351. Each organisation's value is `numerator / denominator`; the
//! target is the pooled value (Σ numerators / Σ denominators). Limits at 95% and 99.8% around it
//! use the normal approximation to the binomial (proportions: s² = θ(1−θ)/n) or the Poisson (rates
//! per unit of exposure: s² = θ/n). With over-dispersion adjustment, z-scores are Winsorised at
//! the 10th and 90th percentiles, φ = Σz²/I, and when Iφ > I − 1 an additive random-effects
//! variance τ² = (Iφ − (I − 1)) / (Σw − Σw²/Σw), w = 1/s², widens every limit to
//! θ ± z·√(s² + τ²).

use crate::percentile::percentile_cont_in_place;

/// Two-sided 95% normal quantile.
pub const Z95: f64 = 1.959_963_984_540_054;
/// Two-sided 99.8% normal quantile.
pub const Z998: f64 = 3.090_232_306_167_813;

/// The statistical model for the numerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FunnelModel {
    /// A proportion of the denominator (percentage measures).
    Binomial,
    /// A count per unit of exposure (per 1,000 patients, per STAR-PU).
    Poisson,
}

/// Where a point falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FunnelBand {
    /// Within the 95% limits.
    Within,
    /// Between the upper 95% and 99.8% limits.
    AboveWarning,
    /// Above the upper 99.8% limit.
    AboveControl,
    /// Between the lower 95% and 99.8% limits.
    BelowWarning,
    /// Below the lower 99.8% limit.
    BelowControl,
}

/// One organisation on the plot.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FunnelPoint {
    /// Numerator.
    pub numerator: f64,
    /// Denominator (precision axis).
    pub denominator: f64,
    /// numerator / denominator.
    pub value: f64,
    /// Standardised distance from the target, including τ² when adjusted.
    pub z: f64,
    /// Band.
    pub band: FunnelBand,
}

/// A computed funnel plot.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Funnel {
    /// The model.
    pub model: FunnelModel,
    /// Pooled value θ.
    pub target: f64,
    /// Over-dispersion factor φ (1 means none).
    pub phi: f64,
    /// Additive between-organisation variance (0 when not adjusted or not over-dispersed).
    pub tau2: f64,
    /// Points in input order; inputs with a zero denominator are left out.
    pub points: Vec<FunnelPoint>,
}

impl Funnel {
    /// Lower and upper limits for a denominator at normal quantile `z` (e.g. [`Z95`]); a
    /// binomial limit is kept within 0–1 and a Poisson limit above 0.
    pub fn limits(&self, denominator: f64, z: f64) -> (f64, f64) {
        let s2 = variance(self.model, self.target, denominator) + self.tau2;
        let half = z * s2.sqrt();
        let lo = (self.target - half).max(0.0);
        let hi = self.target + half;
        match self.model {
            FunnelModel::Binomial => (lo, hi.min(1.0)),
            FunnelModel::Poisson => (lo, hi),
        }
    }
}

fn variance(model: FunnelModel, target: f64, n: f64) -> f64 {
    match model {
        FunnelModel::Binomial => target * (1.0 - target) / n,
        FunnelModel::Poisson => target / n,
    }
}

/// Builds a funnel plot from `(numerator, denominator)` pairs. Returns `None` when fewer than
/// two organisations have a positive denominator or the pooled value leaves no variance (all
/// zero, or a proportion of exactly 1).
pub fn funnel(data: &[(f64, f64)], model: FunnelModel, adjust_overdispersion: bool) -> Option<Funnel> {
    let kept: Vec<(f64, f64)> =
        data.iter().copied().filter(|(n, d)| *d > 0.0 && n.is_finite() && d.is_finite()).collect();
    if kept.len() < 2 {
        return None;
    }
    let target = kept.iter().map(|p| p.0).sum::<f64>() / kept.iter().map(|p| p.1).sum::<f64>();
    if variance(model, target, 1.0) <= 0.0 || !target.is_finite() {
        return None;
    }
    let raw_z: Vec<f64> = kept.iter().map(|(n, d)| (n / d - target) / variance(model, target, *d).sqrt()).collect();
    let (phi, tau2) = if adjust_overdispersion { overdispersion(&kept, &raw_z, model, target) } else { (1.0, 0.0) };
    let points = kept
        .iter()
        .map(|&(numerator, denominator)| {
            let value = numerator / denominator;
            let z = (value - target) / (variance(model, target, denominator) + tau2).sqrt();
            let band = if z > Z998 {
                FunnelBand::AboveControl
            } else if z > Z95 {
                FunnelBand::AboveWarning
            } else if z < -Z998 {
                FunnelBand::BelowControl
            } else if z < -Z95 {
                FunnelBand::BelowWarning
            } else {
                FunnelBand::Within
            };
            FunnelPoint { numerator, denominator, value, z, band }
        })
        .collect();
    Some(Funnel { model, target, phi, tau2, points })
}

fn overdispersion(kept: &[(f64, f64)], z: &[f64], model: FunnelModel, target: f64) -> (f64, f64) {
    let mut scratch = z.to_vec();
    let lo = percentile_cont_in_place(&mut scratch, 0.1).unwrap_or(f64::NEG_INFINITY);
    let hi = percentile_cont_in_place(&mut scratch, 0.9).unwrap_or(f64::INFINITY);
    let i = z.len() as f64;
    let phi = z.iter().map(|v| v.clamp(lo, hi).powi(2)).sum::<f64>() / i;
    if i * phi <= i - 1.0 {
        return (phi, 0.0);
    }
    let w: Vec<f64> = kept.iter().map(|(_, d)| 1.0 / variance(model, target, *d)).collect();
    let sw: f64 = w.iter().sum();
    let sw2: f64 = w.iter().map(|x| x * x).sum();
    let tau2 = ((i * phi - (i - 1.0)) / (sw - sw2 / sw)).max(0.0);
    (phi, tau2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn binomial_limits_worked_by_hand() {
        // Pooled 30/300 = 0.1. For n = 100: s = √(0.1 × 0.9 / 100) = 0.03; 95% limits
        // 0.1 ± 1.96 × 0.03 = 0.0412 … 0.1588. 20/100 = 0.2 → z = 3.33 → above the 99.8% limit.
        let f = funnel(&[(5.0, 100.0), (5.0, 100.0), (20.0, 100.0)], FunnelModel::Binomial, false).unwrap();
        assert!((f.target - 0.1).abs() < 1e-12);
        let (lo, hi) = f.limits(100.0, Z95);
        assert!((lo - (0.1 - Z95 * 0.03)).abs() < 1e-12 && (hi - (0.1 + Z95 * 0.03)).abs() < 1e-12);
        assert!((f.points[2].z - 0.1 / 0.03).abs() < 1e-9);
        assert_eq!(f.points[2].band, FunnelBand::AboveControl);
        assert_eq!(f.points[0].band, FunnelBand::Within); // z = −1.67
    }

    #[test]
    fn poisson_limits_worked_by_hand() {
        // Rates per 1,000 patients: 100 items / 10 (10,000 patients) and 300 / 10: pooled 20 per
        // 1,000; s = √(20 / 10) = 1.414; 30 is z = 7.07 above.
        let f = funnel(&[(100.0, 10.0), (300.0, 10.0)], FunnelModel::Poisson, false).unwrap();
        assert!((f.target - 20.0).abs() < 1e-12);
        assert!((f.points[1].z - 10.0 / 2f64.sqrt()).abs() < 1e-9);
        assert_eq!(f.points[1].band, FunnelBand::AboveControl);
        assert_eq!(f.points[0].band, FunnelBand::BelowControl);
    }

    #[test]
    fn overdispersion_widens_the_limits() {
        let data: Vec<(f64, f64)> = (0..20).map(|i| (if i % 2 == 0 { 100.0 } else { 300.0 }, 1000.0)).collect();
        let plain = funnel(&data, FunnelModel::Binomial, false).unwrap();
        let adjusted = funnel(&data, FunnelModel::Binomial, true).unwrap();
        assert!(adjusted.phi > 1.0 && adjusted.tau2 > 0.0);
        assert!(adjusted.limits(1000.0, Z95).1 > plain.limits(1000.0, Z95).1);
        // Data with no excess spread keeps τ² at zero.
        let calm = funnel(&[(10.0, 100.0), (10.0, 100.0), (11.0, 100.0)], FunnelModel::Binomial, true).unwrap();
        assert_eq!(calm.tau2, 0.0);
        assert!(funnel(&[(1.0, 0.0), (1.0, 10.0)], FunnelModel::Binomial, false).is_none());
    }

    proptest! {
        #[test]
        fn limits_narrow_as_the_denominator_grows(pairs in proptest::collection::vec((0u32..500, 1u32..1000), 2..40)) {
            let data: Vec<(f64, f64)> = pairs.iter().map(|(n, d)| (f64::from(*n % (*d + 1)), f64::from(*d))).collect();
            if let Some(f) = funnel(&data, FunnelModel::Binomial, true) {
                let (l1, h1) = f.limits(10.0, Z998);
                let (l2, h2) = f.limits(1000.0, Z998);
                prop_assert!(h2 - l2 <= h1 - l1 + 1e-12);
                prop_assert!(l1 <= f.target && f.target <= h1);
                for p in &f.points { prop_assert!(p.z.is_finite()); }
            }
        }
    }
}
