//! One organisation's stored series of a measure, the input of every analysis (SPC, funnels,
//! alerts, savings over a period): kept apart from both so neither has to reach into the other.

use ipmo_domain::YearMonth;

/// One stored month of a measure for one organisation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ValuePoint {
    /// The month.
    pub month: YearMonth,
    /// Numerator (None when suppressed).
    pub numerator: Option<f64>,
    /// Denominator (None when suppressed).
    pub denominator: Option<f64>,
    /// Value in the measure's unit.
    pub value: Option<f64>,
    /// Percentile among organisations of the level (0–100).
    pub percentile: Option<f64>,
    /// Saving at the median, pounds (cost-based measures).
    pub saving_50: Option<f64>,
    /// Saving at the 10th percentile, pounds (cost-based measures).
    pub saving_10: Option<f64>,
}
