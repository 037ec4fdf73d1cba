//! Imported indicators: small numbers suppressed, percentiles and deciles computed as for
//! measures, stored per indicator so that reloading one indicator replaces only it.
//!
//! Tables: `indicator_values` (partitioned by indicator id; numerator, denominator and value are
//! null where suppressed), `indicator_deciles` (partitioned by indicator id) and
//! `indicator_definitions` (one row per indicator ever loaded).

use crate::load::FileCounts;
use crate::parquet_io::read_table;
use crate::tables::Col;
use crate::{LoadOutcome, Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, AsArray};
use ipmo_domain::YearMonth;
use ipmo_ingest::indicator::{IndicatorReport, IndicatorRow};
use ipmo_stats::percentile::{DECILES, deciles, percent_ranks};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Counts from 1 up to this are suppressed unless the load says otherwise (NHS small-number
/// disclosure control).
pub const DEFAULT_SUPPRESS_AT: u32 = 5;

/// Whether a count would be suppressed at `threshold` (zero is not disclosive and is kept).
pub fn is_small_number(count: f64, threshold: u32) -> bool {
    count > 0.0 && count <= f64::from(threshold)
}

/// An imported indicator as listed in `indicator_definitions`.
#[derive(Clone, Debug, PartialEq)]
pub struct IndicatorDefinition {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `lower_is_better`, `higher_is_better` or `neither`.
    pub direction: String,
    /// Suppression threshold used at load.
    pub suppress_at: u32,
    /// File it came from.
    pub source_file: String,
}

impl Warehouse {
    /// Stores indicator files: every indicator in the files replaces what was held for it.
    /// Rows with a numerator or denominator from 1 to `suppress_at` keep their organisation and
    /// month but lose their numbers, and are left out of percentiles and deciles.
    pub fn load_indicators(
        &self,
        files: Vec<(Vec<IndicatorRow>, IndicatorReport, PathBuf)>,
        suppress_at: u32,
    ) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let mut by_id: BTreeMap<String, Vec<IndicatorRow>> = BTreeMap::new();
        let mut definitions: BTreeMap<String, IndicatorDefinition> =
            self.indicator_definitions()?.into_iter().map(|d| (d.id.clone(), d)).collect();
        for (rows, report, path) in &files {
            let ids: Vec<String> = report.indicators.iter().map(|i| i.id.clone()).collect();
            txn.record(FileCounts {
                kind: "indicator",
                path,
                layout: "indicator (id, organisation, month, numerator, denominator)".into(),
                sha256: report.sha256.clone(),
                bytes: report.bytes,
                rows_read: report.rows_read,
                rows_kept: rows.len() as u64,
                rejected: &report.rejected,
                partitions: ids,
            })?;
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            for info in &report.indicators {
                let direction = match info.low_is_good {
                    Some(true) => "lower_is_better",
                    Some(false) => "higher_is_better",
                    None => "neither",
                };
                definitions.insert(
                    info.id.clone(),
                    IndicatorDefinition {
                        id: info.id.clone(),
                        title: info.title.clone(),
                        direction: direction.to_string(),
                        suppress_at,
                        source_file: file.clone(),
                    },
                );
                // A later file with the same indicator replaces the earlier one's rows.
                by_id.insert(info.id.clone(), Vec::new());
            }
            for r in rows {
                by_id.entry(r.indicator_id.clone()).or_default().push(r.clone());
            }
        }
        let mut written = 0;
        let ids: Vec<String> = by_id.keys().cloned().collect();
        for (id, rows) in by_id {
            let (values, decile_rows) = rank(&rows, suppress_at);
            let day = |m: YearMonth| Some(m.days_since_epoch());
            let cols = vec![
                Col::Date(values.iter().map(|v| day(v.month)).collect()),
                Col::Str(values.iter().map(|_| Some(id.clone())).collect()),
                Col::Str(values.iter().map(|v| Some(v.org_type.clone())).collect()),
                Col::Str(values.iter().map(|v| Some(v.org_code.clone())).collect()),
                Col::F64Opt(values.iter().map(|v| v.numerator).collect()),
                Col::F64Opt(values.iter().map(|v| v.denominator).collect()),
                Col::F64Opt(values.iter().map(|v| v.value).collect()),
                Col::F64Opt(values.iter().map(|v| v.percentile).collect()),
                Col::Bool(values.iter().map(|v| v.suppressed).collect()),
            ];
            written += txn.write_partition("indicator_values", &id, cols)?;
            let cols = vec![
                Col::Date(decile_rows.iter().map(|d| day(d.0)).collect()),
                Col::Str(decile_rows.iter().map(|_| Some(id.clone())).collect()),
                Col::Str(decile_rows.iter().map(|d| Some(d.1.clone())).collect()),
                Col::I32(decile_rows.iter().map(|d| Some(i32::from(d.2))).collect()),
                Col::F64(decile_rows.iter().map(|d| d.3).collect()),
            ];
            txn.write_partition("indicator_deciles", &id, cols)?;
        }
        let defs: Vec<&IndicatorDefinition> = definitions.values().collect();
        let s = |f: &dyn Fn(&IndicatorDefinition) -> String| Col::Str(defs.iter().map(|d| Some(f(d))).collect());
        let cols = vec![
            s(&|d| d.id.clone()),
            s(&|d| d.title.clone()),
            s(&|d| d.direction.clone()),
            Col::I32(defs.iter().map(|d| Some(d.suppress_at as i32)).collect()),
            s(&|d| d.source_file.clone()),
        ];
        txn.write_whole("indicator_definitions", cols)?;
        txn.commit(written, ids)
    }

    /// Every imported indicator.
    pub fn indicator_definitions(&self) -> Result<Vec<IndicatorDefinition>, WarehouseError> {
        let batches = read_table(self.root(), &self.manifest()?, "indicator_definitions")?;
        let mut out = Vec::new();
        for b in &batches {
            let s = |c: usize| b.column(c).as_string::<i32>();
            let n = b.column(3).as_primitive::<datafusion::arrow::datatypes::Int32Type>();
            for i in 0..b.num_rows() {
                out.push(IndicatorDefinition {
                    id: s(0).value(i).to_string(),
                    title: s(1).value(i).to_string(),
                    direction: s(2).value(i).to_string(),
                    suppress_at: if n.is_null(i) { DEFAULT_SUPPRESS_AT } else { n.value(i).max(0) as u32 },
                    source_file: s(4).value(i).to_string(),
                });
            }
        }
        Ok(out)
    }
}

/// One stored indicator value.
struct Ranked {
    month: YearMonth,
    org_type: String,
    org_code: String,
    numerator: Option<f64>,
    denominator: Option<f64>,
    value: Option<f64>,
    percentile: Option<f64>,
    suppressed: bool,
}

/// A decile row: month, organisation type, percentile (10…90), value.
type DecileRow = (YearMonth, String, u8, f64);

/// Suppresses small numbers and ranks each (month, level) as measures are ranked.
fn rank(rows: &[IndicatorRow], suppress_at: u32) -> (Vec<Ranked>, Vec<DecileRow>) {
    let mut groups: BTreeMap<(YearMonth, String), Vec<&IndicatorRow>> = BTreeMap::new();
    for r in rows {
        groups.entry((r.month, r.org_type.clone())).or_default().push(r);
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut decile_rows = Vec::new();
    for ((month, org_type), mut members) in groups {
        members.sort_by(|a, b| a.org_code.cmp(&b.org_code));
        let shown: Vec<Option<(f64, f64)>> = members
            .iter()
            .map(|r| {
                let small = is_small_number(r.numerator, suppress_at) || is_small_number(r.denominator, suppress_at);
                (!small).then_some((r.numerator, r.denominator))
            })
            .collect();
        let values: Vec<Option<f64>> =
            shown.iter().map(|s| s.and_then(|(n, d)| (d > 0.0).then(|| n * 100.0 / d))).collect();
        let ranks = percent_ranks(&values);
        for (i, d) in deciles(&values).into_iter().enumerate() {
            decile_rows.push((month, org_type.clone(), DECILES[i], d));
        }
        for (i, r) in members.iter().enumerate() {
            out.push(Ranked {
                month,
                org_type: org_type.clone(),
                org_code: r.org_code.clone(),
                numerator: shown[i].map(|s| s.0),
                denominator: shown[i].map(|s| s.1),
                value: values[i],
                percentile: ranks[i],
                suppressed: shown[i].is_none(),
            });
        }
    }
    (out, decile_rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(org: &str, n: f64, d: f64) -> IndicatorRow {
        IndicatorRow {
            indicator_id: "x".into(),
            org_type: "practice".into(),
            org_code: org.into(),
            month: "2024-01".parse().unwrap(),
            numerator: n,
            denominator: d,
        }
    }

    #[test]
    fn small_numbers_are_suppressed_and_left_out_of_ranks() {
        let rows = [row("A", 0.0, 50.0), row("B", 5.0, 50.0), row("C", 6.0, 60.0), row("D", 20.0, 100.0)];
        let (values, deciles) = rank(&rows, 5);
        let got: Vec<(&str, Option<f64>, Option<f64>, bool)> =
            values.iter().map(|v| (v.org_code.as_str(), v.value, v.percentile, v.suppressed)).collect();
        // A: 0 of 50 is kept (0%); B: 5 is suppressed; C 10% and D 20% rank among A, C, D.
        assert_eq!(
            got,
            vec![
                ("A", Some(0.0), Some(0.0), false),
                ("B", None, None, true),
                ("C", Some(10.0), Some(50.0), false),
                ("D", Some(20.0), Some(100.0), false),
            ]
        );
        assert_eq!(deciles.len(), 9);
        assert_eq!(deciles[4].3, 10.0, "median of 0, 10, 20");
        let (values, _) = rank(&rows, 0);
        assert!(values.iter().all(|v| !v.suppressed), "threshold 0 suppresses nothing");
    }
}
