//! One organisation's stored series of a measure, the input of every analysis (SPC, funnels,
//! alerts, savings over a period): kept apart from both so neither has to reach into the other.

use ipmo_domain::YearMonth;

/// One stored month of a measure for one organisation, written out: what a [`ValuePoint`] is
/// built from and opens into.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ValueFields {
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

/// One stored month of a measure for one organisation. A served release holds tens of millions
/// of these (88 measures × 7,900 organisations × 60 months), so each missing number is kept as
/// NaN rather than as an `Option<f64>`: 56 bytes a point instead of 104. A number that is NaN
/// has no meaning on a page either, so reading it back as None loses nothing.
#[derive(Clone, Copy, Debug)]
pub struct ValuePoint {
    /// The month.
    pub month: YearMonth,
    numerator: f64,
    denominator: f64,
    value: f64,
    percentile: f64,
    saving_50: f64,
    saving_10: f64,
}

fn packed(x: Option<f64>) -> f64 {
    x.unwrap_or(f64::NAN)
}

fn unpacked(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

impl From<ValueFields> for ValuePoint {
    fn from(f: ValueFields) -> Self {
        Self {
            month: f.month,
            numerator: packed(f.numerator),
            denominator: packed(f.denominator),
            value: packed(f.value),
            percentile: packed(f.percentile),
            saving_50: packed(f.saving_50),
            saving_10: packed(f.saving_10),
        }
    }
}

impl ValuePoint {
    /// The point written out, to read or change several fields.
    pub fn fields(&self) -> ValueFields {
        ValueFields {
            month: self.month,
            numerator: self.numerator(),
            denominator: self.denominator(),
            value: self.value(),
            percentile: self.percentile(),
            saving_50: self.saving_50(),
            saving_10: self.saving_10(),
        }
    }
    /// Changes fields through their written-out form.
    pub fn edit(&mut self, change: impl FnOnce(&mut ValueFields)) {
        let mut f = self.fields();
        change(&mut f);
        *self = f.into();
    }
    /// Numerator (None when suppressed).
    pub fn numerator(&self) -> Option<f64> {
        unpacked(self.numerator)
    }
    /// Denominator (None when suppressed).
    pub fn denominator(&self) -> Option<f64> {
        unpacked(self.denominator)
    }
    /// Value in the measure's unit.
    pub fn value(&self) -> Option<f64> {
        unpacked(self.value)
    }
    /// Percentile among organisations of the level (0–100).
    pub fn percentile(&self) -> Option<f64> {
        unpacked(self.percentile)
    }
    /// Saving at the median, pounds (cost-based measures).
    pub fn saving_50(&self) -> Option<f64> {
        unpacked(self.saving_50)
    }
    /// Saving at the 10th percentile, pounds (cost-based measures).
    pub fn saving_10(&self) -> Option<f64> {
        unpacked(self.saving_10)
    }
}

impl PartialEq for ValuePoint {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl serde::Serialize for ValuePoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.fields().serialize(s)
    }
}
