//! What the measures engine reads from the warehouse and how its results are stored.
//!
//! The engine itself (`ipmo-measures`) knows nothing of Parquet; this module hands it each
//! month's practices and prescribing as plain Rust values, and writes its results back as four
//! tables that `ipmo sql` can query: `measure_values` and `measure_deciles` (partitioned by
//! month), `measure_definitions` and `measure_codes` (the presentations each measure counted,
//! with their factors, so any value can be recomputed by hand in SQL).

use crate::manifest::ComputeRecord;
use crate::parquet_io::read_parquet;
use crate::tables::{Col, PRESCRIBING, batch, table_schema};
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use ipmo_domain::YearMonth;
use ipmo_measures::compute::{Amounts, MonthResults, PracticeMonth};
use ipmo_measures::{Library, Measure};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Which organisation a practice counts towards in a given month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// The organisation it belonged to in that month (history as it was).
    AsAt,
    /// The organisation it belongs to today (history re-cut to today's structure).
    Latest,
}

impl Membership {
    /// The name stored in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Membership::AsAt => "as_at",
            Membership::Latest => "latest",
        }
    }
}

/// A presentation a measure side counted, as stored in `measure_codes`.
#[derive(Clone, Debug, PartialEq)]
pub struct CountedCode {
    /// Measure id.
    pub measure_id: String,
    /// `numerator` or `denominator`.
    pub side: &'static str,
    /// Current BNF code.
    pub bnf_code: String,
    /// Name.
    pub name: String,
    /// Weight on quantity.
    pub factor: f64,
}

impl Warehouse {
    /// Months with prescribing loaded, oldest first.
    pub fn prescribing_months(&self) -> Result<Vec<YearMonth>, WarehouseError> {
        Ok(self.manifest()?.partitions(PRESCRIBING).iter().filter_map(|p| p.parse().ok()).collect())
    }

    /// The files a month's measure results depend on; stored with the results so that a reload
    /// of any of them marks the month for recomputation.
    pub fn measure_inputs(&self, month: YearMonth) -> Result<Vec<String>, WarehouseError> {
        let m = self.manifest()?;
        let mut inputs = Vec::new();
        let key = month.to_string();
        for (table, partition) in [
            (PRESCRIBING, key.as_str()),
            ("list_sizes", key.as_str()),
            ("org_membership", "all"),
            ("practices", "all"),
            ("bnf_map", "all"),
            ("bnf", "all"),
            ("presentations_seen", "all"),
        ] {
            if let Some(f) = m.tables.get(table).and_then(|t| t.get(partition)) {
                inputs.push(f.clone());
            }
        }
        Ok(inputs)
    }

    /// Standard GP practices for a month with their organisations and list size: practices in
    /// the organisation map (under `membership`), not closed cost centres, not `…998` codes.
    pub async fn practices_for_month(
        &self,
        month: YearMonth,
        membership: Membership,
    ) -> Result<Vec<PracticeMonth>, WarehouseError> {
        let day = month.first_day().format("%Y-%m-%d");
        let filter = match membership {
            Membership::AsAt => format!(
                "(m.valid_from IS NULL OR m.valid_from <= DATE '{day}') AND (m.valid_to IS NULL OR m.valid_to > DATE '{day}')"
            ),
            Membership::Latest => "m.is_latest".to_string(),
        };
        let sql = format!(
            "SELECT m.practice_code, m.pcn_code, m.sicbl_code, m.icb_code, m.region_code, \
             CAST(l.total AS DOUBLE) AS total, l.star_pu_oral_antibacterial \
             FROM org_membership m \
             JOIN practices p ON p.practice_code = m.practice_code AND p.is_gp_practice \
             LEFT JOIN list_sizes l ON l.practice_code = m.practice_code AND l.month = DATE '{day}' \
             WHERE {filter} AND m.practice_code NOT LIKE '%998' ORDER BY m.practice_code"
        );
        let mut out: Vec<PracticeMonth> = Vec::new();
        for b in self.query(&sql).await? {
            let s = |c: usize| b.column(c).as_string::<i32>();
            let (code, pcn, sicbl, icb, region) = (s(0), s(1), s(2), s(3), s(4));
            let total = b.column(5).as_primitive::<Float64Type>();
            let star = b.column(6).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                // A practice listed twice (overlapping snapshots) counts once.
                if out.last().is_some_and(|p| p.code == code.value(i)) {
                    continue;
                }
                out.push(PracticeMonth {
                    code: code.value(i).to_string(),
                    pcn: (!pcn.is_null(i)).then(|| pcn.value(i).to_string()),
                    sicbl: sicbl.value(i).to_string(),
                    icb: icb.value(i).to_string(),
                    region: region.value(i).to_string(),
                    list_size: (!total.is_null(i)).then(|| total.value(i)),
                    star_pu: (!star.is_null(i)).then(|| star.value(i)),
                });
            }
        }
        Ok(out)
    }

    /// BNF names of every presentation known (from BNF Code Information, else as prescribed).
    pub fn presentation_names(&self) -> Result<FxHashMap<String, String>, WarehouseError> {
        let mut names = FxHashMap::default();
        for b in self.read_whole("presentations_seen")? {
            let (c, n) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
            for i in 0..b.num_rows() {
                names.insert(c.value(i).to_string(), n.value(i).to_string());
            }
        }
        for b in self.read_whole("bnf")? {
            // The first two columns are the presentation code and name.
            let (c, n) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
            for i in 0..b.num_rows() {
                names.insert(c.value(i).to_string(), n.value(i).to_string());
            }
        }
        Ok(names)
    }

    /// Old BNF code → current code.
    pub fn bnf_current_codes(&self) -> Result<FxHashMap<String, String>, WarehouseError> {
        let mut map = FxHashMap::default();
        for b in self.read_whole("bnf_map")? {
            let (o, c) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
            for i in 0..b.num_rows() {
                map.insert(o.value(i).to_string(), c.value(i).to_string());
            }
        }
        Ok(map)
    }

    /// Calls `f(practice, current BNF code, amounts)` for every stored row of a month, reading
    /// the Parquet partition directly (no query planning on this hot path). Returns the rows read.
    pub fn for_each_prescribing(
        &self,
        month: YearMonth,
        current: &FxHashMap<String, String>,
        mut f: impl FnMut(&str, &str, &Amounts),
    ) -> Result<u64, WarehouseError> {
        let manifest = self.manifest()?;
        let Some(rel) = manifest.tables.get(PRESCRIBING).and_then(|t| t.get(&month.to_string())) else {
            return Ok(0);
        };
        let path = self.root().join(rel);
        let file = std::fs::File::open(&path).map_err(|e| WarehouseError::io(&path, e))?;
        let reader = datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| WarehouseError::parquet(&path, e))?
            .with_batch_size(65_536)
            .build()
            .map_err(|e| WarehouseError::parquet(&path, e))?;
        let mut rows = 0u64;
        for b in reader {
            let b =
                b.map_err(|e| WarehouseError::Corrupt { path: path.display().to_string(), detail: e.to_string() })?;
            let practice = b.column(1).as_string::<i32>();
            let bnf = b.column(2).as_string::<i32>();
            let items = b.column(3).as_primitive::<Int64Type>();
            let quantity = b.column(4).as_primitive::<Float64Type>();
            let nic = b.column(5).as_primitive::<Int64Type>();
            let cost = b.column(6).as_primitive::<Int64Type>();
            let adq = b.column(7).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                let code = bnf.value(i);
                let code = current.get(code).map_or(code, String::as_str);
                let amounts = Amounts {
                    items: items.value(i),
                    quantity: quantity.value(i),
                    actual_cost_e5: cost.value(i),
                    nic_pence: nic.value(i),
                    adq: adq.value(i),
                };
                f(practice.value(i), code, &amounts);
            }
            rows += b.num_rows() as u64;
        }
        Ok(rows)
    }

    /// Months whose stored results are missing or stale for this library and membership choice.
    pub fn months_to_compute(
        &self,
        library_hash: &str,
        membership: Membership,
        extra_inputs: &[String],
    ) -> Result<Vec<YearMonth>, WarehouseError> {
        let manifest = self.manifest()?;
        let mut out = Vec::new();
        for month in self.prescribing_months()? {
            let mut inputs = self.measure_inputs(month)?;
            inputs.extend(extra_inputs.iter().cloned());
            let fresh = manifest.computed.get(&month.to_string()).is_some_and(|r| {
                r.library_hash == library_hash && r.membership == membership.as_str() && r.inputs == inputs
            });
            if !fresh {
                out.push(month);
            }
        }
        Ok(out)
    }

    /// Stores computed months in one commit: each month's values and deciles replace that
    /// month's partitions; the definitions and counted codes replace theirs. Interrupted before
    /// the commit, the warehouse keeps its previous results.
    pub fn store_measure_results(
        &self,
        library: &Library,
        codes: &[CountedCode],
        months: Vec<(YearMonth, MonthResults, ComputeRecord)>,
    ) -> Result<u64, WarehouseError> {
        let mut txn = self.begin()?;
        let versions: BTreeMap<&str, &Measure> = library.computed().map(|m| (m.id.as_str(), m)).collect();
        let mut rows = 0;
        for (month, results, record) in months {
            let key = month.to_string();
            let day = Some(month.days_since_epoch());
            let v = &results.values;
            let s = |f: &dyn Fn(usize) -> String| Col::Str((0..v.len()).map(|i| Some(f(i))).collect());
            let opt = |f: &dyn Fn(usize) -> Option<f64>| Col::F64Opt((0..v.len()).map(f).collect());
            let cols = vec![
                Col::Date(vec![day; v.len()]),
                s(&|i| v[i].measure.clone()),
                s(&|i| v[i].org_type.clone()),
                s(&|i| v[i].org_code.clone()),
                Col::F64(v.iter().map(|r| r.numerator).collect()),
                Col::F64(v.iter().map(|r| r.denominator).collect()),
                opt(&|i| v[i].value),
                opt(&|i| v[i].percentile),
                opt(&|i| v[i].saving_50),
                opt(&|i| v[i].saving_10),
                Col::I32(v.iter().map(|r| versions.get(r.measure.as_str()).map(|m| m.version as i32)).collect()),
                s(&|i| versions.get(v[i].measure.as_str()).map(|m| m.hash.clone()).unwrap_or_default()),
            ];
            rows += txn.write_partition("measure_values", &key, cols)?;
            let d = &results.deciles;
            let cols = vec![
                Col::Date(vec![day; d.len()]),
                Col::Str(d.iter().map(|r| Some(r.measure.clone())).collect()),
                Col::Str(d.iter().map(|r| Some(r.org_type.clone())).collect()),
                Col::I32(d.iter().map(|r| Some(i32::from(r.percentile))).collect()),
                Col::F64(d.iter().map(|r| r.value).collect()),
            ];
            txn.write_partition("measure_deciles", &key, cols)?;
            txn.manifest.computed.insert(key, record);
        }
        let ms: Vec<&Measure> = library.computed().collect();
        let s = |f: &dyn Fn(&Measure) -> String| Col::Str(ms.iter().map(|m| Some(f(m))).collect());
        let direction = |m: &Measure| match m.direction {
            ipmo_stats::Direction::LowerIsBetter => "lower_is_better",
            ipmo_stats::Direction::HigherIsBetter => "higher_is_better",
            ipmo_stats::Direction::Neither => "no_judgement",
        };
        let cols = vec![
            s(&|m| m.id.clone()),
            Col::I32(ms.iter().map(|m| Some(m.version as i32)).collect()),
            s(&|m| m.hash.clone()),
            s(&|m| m.title.clone()),
            s(&|m| m.unit()),
            s(&|m| direction(m).to_string()),
            Col::Bool(ms.iter().map(|m| m.is_percentage).collect()),
            Col::Bool(ms.iter().map(|m| m.is_cost_based).collect()),
            Col::F64(ms.iter().map(|m| m.multiplier()).collect()),
            s(&|m| m.numerator.quantity.name().to_string()),
            s(&|m| m.denominator.quantity.name().to_string()),
            s(&|m| m.tags.join(",")),
            s(&|m| format!("{:?}", m.status).to_ascii_lowercase()),
        ];
        txn.write_whole("measure_definitions", cols)?;
        let cols = vec![
            Col::Str(codes.iter().map(|c| Some(c.measure_id.clone())).collect()),
            Col::Str(codes.iter().map(|c| Some(c.side.to_string())).collect()),
            Col::Str(codes.iter().map(|c| Some(c.bnf_code.clone())).collect()),
            Col::Str(codes.iter().map(|c| Some(c.name.clone())).collect()),
            Col::F64(codes.iter().map(|c| c.factor).collect()),
        ];
        txn.write_whole("measure_codes", cols)?;
        txn.commit(rows, Vec::new())?;
        Ok(rows)
    }

    fn read_whole(&self, table: &str) -> Result<Vec<RecordBatch>, WarehouseError> {
        let manifest = self.manifest()?;
        let mut out = Vec::new();
        for rel in manifest.files(table) {
            out.extend(read_parquet(&self.root().join(rel))?);
        }
        Ok(out)
    }
}

impl crate::load::Txn<'_> {
    pub(crate) fn write_partition(
        &mut self,
        table: &str,
        partition: &str,
        cols: Vec<Col>,
    ) -> Result<u64, WarehouseError> {
        let rel = self.rel_path(table, partition);
        let n = crate::parquet_io::write_parquet(
            &self.wh_root().join(&rel),
            table_schema(table).expect("schema"),
            [batch(table, cols)],
        )?;
        self.set(table, partition, rel);
        Ok(n)
    }
}
