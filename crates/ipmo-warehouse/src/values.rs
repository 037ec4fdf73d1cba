//! Reading stored measure and indicator values back as plain series, for the analyses in
//! `ipmo_measures::analysis` (SPC, funnels, alerts, the deprivation lens).
//!
//! Measures and imported indicators are read through one query shape (a `UNION ALL` of
//! `measure_values` and `indicator_values`), so every analysis treats them alike. Each reader has
//! a `*_sql` twin that returns the SQL it runs, so the command line can show the query that
//! reproduces what it prints.

use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int32Type};
use ipmo_domain::YearMonth;
use ipmo_measures::analysis::{OrgCounts, ValueFields, ValuePoint};
use std::collections::BTreeMap;

/// One organisation-month of a measure or indicator.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredValue {
    /// Measure or indicator id.
    pub metric: String,
    /// Organisation type.
    pub org_type: String,
    /// Organisation code.
    pub org_code: String,
    /// The month's figures.
    pub point: ValuePoint,
}

impl StoredValue {
    /// Its numerator and denominator, unless suppressed.
    pub fn counts(&self) -> Option<OrgCounts> {
        Some(OrgCounts {
            org_code: self.org_code.clone(),
            numerator: self.point.numerator()?,
            denominator: self.point.denominator()?,
        })
    }
}

/// Which rows to read.
#[derive(Clone, Debug, Default)]
pub struct ValueFilter<'a> {
    /// Measure or indicator id (all when None).
    pub metric: Option<&'a str>,
    /// Organisation type.
    pub org_type: Option<&'a str>,
    /// Organisation code.
    pub org_code: Option<&'a str>,
    /// One month only.
    pub month: Option<YearMonth>,
}

/// An SQL string literal (quotes doubled), for values that come from the command line.
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn where_clause(f: &ValueFilter<'_>, id_column: &str) -> String {
    let mut parts = Vec::new();
    if let Some(m) = f.metric {
        parts.push(format!("{id_column} = {}", sql_literal(m)));
    }
    if let Some(t) = f.org_type {
        parts.push(format!("org_type = {}", sql_literal(t)));
    }
    if let Some(c) = f.org_code {
        parts.push(format!("org_code = {}", sql_literal(c)));
    }
    if let Some(m) = f.month {
        parts.push(format!("month = DATE '{}'", m.first_day().format("%Y-%m-%d")));
    }
    if parts.is_empty() { String::new() } else { format!(" WHERE {}", parts.join(" AND ")) }
}

/// The month of an Arrow `Date32` (days since 1970).
pub(crate) fn month_of(days: i32) -> YearMonth {
    YearMonth::of_date(chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163).unwrap_or_default())
}

impl Warehouse {
    /// The SQL [`Warehouse::stored_values`] runs.
    pub fn stored_values_sql(&self, filter: &ValueFilter<'_>) -> String {
        format!(
            "SELECT measure_id AS metric, org_type, org_code, month, numerator, denominator, value, percentile, \
             saving_50, saving_10 FROM measure_values{} \
             UNION ALL SELECT indicator_id, org_type, org_code, month, numerator, denominator, value, percentile, \
             CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE) FROM indicator_values{} \
             ORDER BY metric, org_type, org_code, month",
            where_clause(filter, "measure_id"),
            where_clause(filter, "indicator_id")
        )
    }

    /// Stored values, ordered by metric, organisation type, organisation code and month (so each
    /// organisation's series is contiguous and in time order).
    pub async fn stored_values(&self, filter: &ValueFilter<'_>) -> Result<Vec<StoredValue>, WarehouseError> {
        let batches = self.query(&self.stored_values_sql(filter)).await?;
        let mut out = Vec::new();
        for b in &batches {
            let s = |c: usize| b.column(c).as_string::<i32>();
            let f = |c: usize| b.column(c).as_primitive::<Float64Type>();
            let opt = |c: usize, i: usize| (!b.column(c).is_null(i)).then(|| f(c).value(i));
            let month = b.column(3).as_primitive::<Date32Type>();
            for i in 0..b.num_rows() {
                out.push(StoredValue {
                    metric: s(0).value(i).to_string(),
                    org_type: s(1).value(i).to_string(),
                    org_code: s(2).value(i).to_string(),
                    point: ValuePoint::from(ValueFields {
                        month: month_of(month.value(i)),
                        numerator: opt(4, i),
                        denominator: opt(5, i),
                        value: opt(6, i),
                        percentile: opt(7, i),
                        saving_50: opt(8, i),
                        saving_10: opt(9, i),
                    }),
                });
            }
        }
        Ok(out)
    }

    /// The SQL [`Warehouse::stored_deciles`] runs.
    pub fn stored_deciles_sql(&self, metric: &str, org_type: &str) -> String {
        let f = ValueFilter { metric: Some(metric), org_type: Some(org_type), ..Default::default() };
        format!(
            "SELECT month, percentile, value FROM measure_deciles{} UNION ALL \
             SELECT month, percentile, value FROM indicator_deciles{} ORDER BY month, percentile",
            where_clause(&f, "measure_id"),
            where_clause(&f, "indicator_id")
        )
    }

    /// National deciles (10th … 90th) of a metric at one level, by month.
    pub async fn stored_deciles(
        &self,
        metric: &str,
        org_type: &str,
    ) -> Result<BTreeMap<YearMonth, Vec<(u8, f64)>>, WarehouseError> {
        let batches: Vec<RecordBatch> = self.query(&self.stored_deciles_sql(metric, org_type)).await?;
        let mut out: BTreeMap<YearMonth, Vec<(u8, f64)>> = BTreeMap::new();
        for b in &batches {
            let month = b.column(0).as_primitive::<Date32Type>();
            let pct = b.column(1).as_primitive::<Int32Type>();
            let value = b.column(2).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                out.entry(month_of(month.value(i))).or_default().push((pct.value(i) as u8, value.value(i)));
            }
        }
        Ok(out)
    }

    /// The latest month with values for a metric, if any.
    pub async fn latest_value_month(&self, metric: &str) -> Result<Option<YearMonth>, WarehouseError> {
        Ok(self.latest_value_months(Some(metric)).await?.remove(metric))
    }

    /// The latest month with values of each metric (or of one), in one query.
    pub async fn latest_value_months(
        &self,
        metric: Option<&str>,
    ) -> Result<BTreeMap<String, YearMonth>, WarehouseError> {
        let f = ValueFilter { metric, ..Default::default() };
        let sql = format!(
            "SELECT metric, MAX(month) FROM (SELECT measure_id AS metric, month FROM measure_values{} \
             UNION ALL SELECT indicator_id, month FROM indicator_values{}) GROUP BY metric",
            where_clause(&f, "measure_id"),
            where_clause(&f, "indicator_id")
        );
        let mut out = BTreeMap::new();
        for b in self.query(&sql).await? {
            let (id, month) = (b.column(0).as_string::<i32>(), b.column(1).as_primitive::<Date32Type>());
            for i in 0..b.num_rows() {
                out.insert(id.value(i).to_string(), month_of(month.value(i)));
            }
        }
        Ok(out)
    }

    /// The SQL behind [`Warehouse::emptied_numerators`], for users to rerun.
    pub const EMPTIED_NUMERATORS_SQL: &'static str = "SELECT v.measure_id, v.month, p.numerator AS year_before \
         FROM measure_values v JOIN measure_values p ON p.measure_id = v.measure_id AND p.org_type = 'england' \
         AND p.month = v.month - INTERVAL '1' YEAR \
         WHERE v.org_type = 'england' AND v.numerator = 0 AND p.numerator > 0 ORDER BY 1, 2";

    /// Measures whose national numerator is nothing in a month when it was something a year
    /// before: (measure, month, the numerator a year before). A code list the BNF re-coding left
    /// behind shows up so, as does a medicine withdrawn in earnest; either needs a look.
    pub async fn emptied_numerators(&self) -> Result<Vec<(String, YearMonth, f64)>, WarehouseError> {
        let mut out = Vec::new();
        for b in self.query(Self::EMPTIED_NUMERATORS_SQL).await? {
            let id = b.column(0).as_string::<i32>();
            let month = b.column(1).as_primitive::<Date32Type>();
            let before = b.column(2).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                out.push((id.value(i).to_string(), month_of(month.value(i)), before.value(i)));
            }
        }
        Ok(out)
    }

    /// Each practice's national IMD quintile (1 = most deprived), as stored in `imd`.
    pub fn imd_quintiles(&self) -> Result<rustc_hash::FxHashMap<String, u8>, WarehouseError> {
        let batches = crate::parquet_io::read_table(self.root(), &self.manifest()?, "imd")?;
        let mut out = rustc_hash::FxHashMap::default();
        for b in &batches {
            let code = b.column(0).as_string::<i32>();
            let quintile = b.column(2).as_primitive::<Int32Type>();
            for i in 0..b.num_rows() {
                out.insert(code.value(i).to_string(), quintile.value(i).clamp(1, 5) as u8);
            }
        }
        Ok(out)
    }

    /// Organisation codes the warehouse's maps know, with their type (`practice`, `pcn`,
    /// `sicbl`, `icb`, `region`, and `ENG` as `england`), for checking imported indicators.
    pub async fn known_organisations(&self) -> Result<BTreeMap<String, String>, WarehouseError> {
        let sql = "SELECT DISTINCT code, org_type FROM ( \
                   SELECT practice_code AS code, 'practice' AS org_type FROM org_membership \
                   UNION ALL SELECT pcn_code, 'pcn' FROM org_membership WHERE pcn_code IS NOT NULL \
                   UNION ALL SELECT sicbl_code, 'sicbl' FROM org_membership \
                   UNION ALL SELECT icb_code, 'icb' FROM org_membership \
                   UNION ALL SELECT region_code, 'region' FROM org_membership)";
        let mut out = BTreeMap::new();
        out.insert(ipmo_measures::compute::ENGLAND.to_string(), "england".to_string());
        for b in self.query(sql).await? {
            let (code, t) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
            for i in 0..b.num_rows() {
                if !code.is_null(i) {
                    out.entry(code.value(i).to_string()).or_insert_with(|| t.value(i).to_string());
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted_and_dates_round_trip() {
        assert_eq!(sql_literal("O'Brien"), "'O''Brien'");
        let m: YearMonth = "2024-02".parse().unwrap();
        assert_eq!(month_of(m.days_since_epoch()), m);
        let f = ValueFilter { metric: Some("x"), org_code: Some("A'1"), month: Some(m), ..Default::default() };
        assert_eq!(
            where_clause(&f, "measure_id"),
            " WHERE measure_id = 'x' AND org_code = 'A''1' AND month = DATE '2024-02-01'"
        );
    }
}
