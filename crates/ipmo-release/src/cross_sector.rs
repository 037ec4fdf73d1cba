//! Cross-sector measures as the dashboard serves them: each trust's series, each ICB's primary
//! care, hospitals and whole system, England's, and the deciles among trusts per month.

use ipmo_domain::YearMonth;
use ipmo_measures::cross_sector::CROSS_SECTOR_MEASURES;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Which part of the system a figure covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sector {
    /// General practice prescribing (the EPD).
    PrimaryCare,
    /// Hospital issues (SCMD): one trust, or an ICB's trusts together.
    Hospital,
    /// Primary care and the ICB's trusts added together.
    System,
}

impl Sector {
    /// Every sector, in the order pages list them.
    pub const ALL: [Sector; 3] = [Sector::PrimaryCare, Sector::Hospital, Sector::System];

    /// The word `cross_sector_values.sector` stores, and the API's key.
    pub fn as_str(self) -> &'static str {
        match self {
            Sector::PrimaryCare => "primary_care",
            Sector::Hospital => "hospital",
            Sector::System => "system",
        }
    }

    /// The sector a stored word names.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Its name on pages.
    pub fn label(self) -> &'static str {
        match self {
            Sector::PrimaryCare => "Primary care",
            Sector::Hospital => "Hospitals",
            Sector::System => "Whole system",
        }
    }
}

/// What an organisation's figures cover: a trust, an ICB, or England.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// One NHS trust (hospital figures only).
    Trust,
    /// One ICB: its practices, its trusts, and both.
    Icb,
    /// England.
    National,
}

impl Level {
    /// The word `cross_sector_values.level` stores.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "trust" => Level::Trust,
            "icb" => Level::Icb,
            "national" => Level::National,
            _ => return None,
        })
    }
}

/// One month's sums for one organisation, measure and sector.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SectorPoint {
    /// The month.
    pub month: YearMonth,
    /// Numerator (DDDs or tablets).
    pub numerator: f64,
    /// Denominator, in the same units.
    pub denominator: f64,
    /// Lines the measure selected that could not be converted to its units (no DDD, an unknown
    /// unit), left out of both sums.
    pub lines_not_converted: u64,
}

impl SectorPoint {
    /// The share, as a percentage; None with a zero denominator.
    pub fn percent(&self) -> Option<f64> {
        (self.denominator > 0.0).then(|| 100.0 * self.numerator / self.denominator)
    }
}

/// The stored cross-sector values, indexed for pages.
#[derive(Clone, Debug, Default)]
pub struct CrossSectorValues {
    /// Per measure (in [`CROSS_SECTOR_MEASURES`] order): (organisation, sector) → its series,
    /// oldest month first.
    series: Vec<FxHashMap<(String, Sector), Vec<SectorPoint>>>,
    /// Per measure: month → the nine deciles of trusts' percentages.
    trust_deciles: Vec<BTreeMap<YearMonth, [f64; 9]>>,
    /// Per measure: month → trusts' percentages, sorted, for a trust's rank.
    trust_values: Vec<BTreeMap<YearMonth, Vec<f64>>>,
}

impl CrossSectorValues {
    /// An empty set, one slot per defined measure.
    pub fn new() -> Self {
        let n = CROSS_SECTOR_MEASURES.len();
        Self {
            series: vec![FxHashMap::default(); n],
            trust_deciles: vec![BTreeMap::new(); n],
            trust_values: vec![BTreeMap::new(); n],
        }
    }

    /// Adds one stored row; rows for a measure no longer defined are skipped.
    pub fn add(&mut self, measure: &str, level: Level, org: &str, sector: Sector, point: SectorPoint) {
        let Some(m) = CROSS_SECTOR_MEASURES.iter().position(|d| d.id == measure) else { return };
        if level == Level::Trust
            && let Some(p) = point.percent()
        {
            self.trust_values[m].entry(point.month).or_default().push(p);
        }
        self.series[m].entry((org.to_string(), sector)).or_default().push(point);
    }

    /// Sorts each series by month and works out the deciles among trusts.
    pub fn finish(mut self) -> Self {
        for s in &mut self.series {
            for points in s.values_mut() {
                points.sort_by_key(|p| p.month);
            }
        }
        for (m, by_month) in self.trust_values.iter_mut().enumerate() {
            for (month, values) in by_month.iter_mut() {
                values.sort_by(f64::total_cmp);
                if let Ok(d) = <[f64; 9]>::try_from(ipmo_stats::percentile::deciles_sorted(values)) {
                    self.trust_deciles[m].insert(*month, d);
                }
            }
        }
        self
    }

    /// An organisation's series for a measure (by position) and sector; empty when none.
    pub fn series(&self, measure: usize, org: &str, sector: Sector) -> &[SectorPoint] {
        self.series.get(measure).and_then(|s| s.get(&(org.to_string(), sector))).map_or(&[], Vec::as_slice)
    }

    /// The deciles among trusts, by month, for a measure.
    pub fn trust_deciles(&self, measure: usize) -> &BTreeMap<YearMonth, [f64; 9]> {
        static EMPTY: BTreeMap<YearMonth, [f64; 9]> = BTreeMap::new();
        self.trust_deciles.get(measure).unwrap_or(&EMPTY)
    }

    /// A trust's percentile among trusts in a month (`PERCENT_RANK` × 100: ties share the
    /// lowest), and how many trusts were ranked; None without a value.
    pub fn trust_percentile(&self, measure: usize, month: YearMonth, percent: f64) -> Option<(f64, usize)> {
        let values = self.trust_values.get(measure)?.get(&month)?;
        Some((ipmo_stats::percentile::percent_rank_sorted(values, percent), values.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(month: &str, numerator: f64, denominator: f64) -> SectorPoint {
        SectorPoint { month: month.parse().unwrap(), numerator, denominator, lines_not_converted: 0 }
    }

    #[test]
    fn trusts_are_ranked_and_their_deciles_drawn_per_month() {
        let mut v = CrossSectorValues::new();
        for (code, n) in [("RA1", 10.0), ("RA2", 20.0), ("RA3", 30.0), ("RA4", 40.0), ("RA5", 50.0)] {
            v.add("xs_doac", Level::Trust, code, Sector::Hospital, point("2024-02", n, 100.0));
        }
        v.add("xs_doac", Level::Trust, "RA1", Sector::Hospital, point("2024-01", 1.0, 4.0));
        v.add("xs_doac", Level::Icb, "QAA", Sector::System, point("2024-02", 0.0, 0.0));
        v.add("retired_measure", Level::Trust, "RA1", Sector::Hospital, point("2024-02", 1.0, 2.0));
        let v = v.finish();
        let doac = CROSS_SECTOR_MEASURES.iter().position(|m| m.id == "xs_doac").unwrap();
        let months: Vec<String> = v.series(doac, "RA1", Sector::Hospital).iter().map(|p| p.month.to_string()).collect();
        assert_eq!(months, ["2024-01", "2024-02"], "sorted by month");
        let feb: YearMonth = "2024-02".parse().unwrap();
        let d = v.trust_deciles(doac)[&feb];
        assert_eq!((d[0], d[4], d[8]), (14.0, 30.0, 46.0));
        assert_eq!(v.trust_percentile(doac, feb, 40.0), Some((75.0, 5)));
        assert_eq!(v.series(doac, "QAA", Sector::System)[0].percent(), None, "no denominator, no value");
        assert!(v.series(doac, "QAA", Sector::Hospital).is_empty());
    }
}
