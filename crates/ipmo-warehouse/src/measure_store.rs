//! What the measures engine reads from the warehouse and how its results are stored.
//!
//! The engine itself (`ipmo-measures`) knows nothing of Parquet; this module hands it each
//! month's practices and prescribing as plain Rust values, and writes its results back as four
//! tables that `ipmo sql` can query: `measure_values` and `measure_deciles` (partitioned by
//! month), `measure_definitions` and `measure_codes` (the presentations each measure counted,
//! with their factors, so any value can be recomputed by hand in SQL).

use crate::manifest::ComputeRecord;
use crate::parquet_io::read_table;
use crate::tables::{Col, PRESCRIBING, PRESCRIBING_BY_QUANTITY, string_pairs};
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{Float64Type, Int32Type, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, RowSelection, RowSelector};
use ipmo_domain::YearMonth;
use ipmo_measures::compute::{Amounts, MonthResults, PracticeMonth, RowKeys};
use ipmo_measures::definition::direction_name;
use ipmo_measures::{Library, Measure};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// What takes a month's quantity split from [`Warehouse::for_each_quantity_split_keyed`]: which
/// current codes it needs, and their rows.
pub trait QuantitySplitRows {
    /// Whether rows of the current code numbered `code` (in `keys`) are wanted.
    fn wants(&mut self, keys: &RowKeys, code: u32) -> bool;
    /// One wanted row: a practice's items at one quantity per item.
    fn row(&mut self, keys: &RowKeys, practice: u32, code: u32, quantity_per_item: f64, items: i64);
}

/// One month's file of a prescribing table whose first columns are month, practice and BNF code.
struct KeyedPartition {
    table: &'static str,
    path: std::path::PathBuf,
}

/// A dictionary column's last dictionary and what each entry was mapped to (its number, or
/// whether it is wanted), so a batch that shares its dictionary with the previous one (most do)
/// is not mapped again.
struct DictionaryNumbers<T>(Option<(ArrayRef, Vec<T>)>);

impl<T> Default for DictionaryNumbers<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T> DictionaryNumbers<T> {
    fn numbers(&mut self, values: &ArrayRef, mut number: impl FnMut(&str) -> T) -> Result<&[T], String> {
        if !self.0.as_ref().is_some_and(|(v, _)| std::sync::Arc::ptr_eq(v, values)) {
            let text = values.as_string_opt::<i32>().ok_or("a dictionary is not text")?;
            let ids = (0..text.len()).map(|i| number(text.value(i))).collect();
            self.0 = Some((values.clone(), ids));
        }
        Ok(&self.0.as_ref().expect("set above").1)
    }
}

impl KeyedPartition {
    fn parquet(&self, e: impl std::fmt::Display) -> WarehouseError {
        WarehouseError::parquet(&self.path, e)
    }

    fn corrupt(&self, detail: impl Into<String>) -> WarehouseError {
        WarehouseError::Corrupt { path: self.path.display().to_string(), detail: detail.into() }
    }

    /// A reader of the file columns `columns` (ascending), with practice (1) and BNF code (2)
    /// read as dictionaries, as they are stored.
    fn reader(
        &self,
        columns: &[usize],
        selection: Option<RowSelection>,
    ) -> Result<ParquetRecordBatchReader, WarehouseError> {
        let builder = crate::parquet_io::dictionary_builder(&self.path, |i, _| matches!(i, 1 | 2))?;
        let stored = builder.schema().fields().len();
        if stored <= columns.iter().copied().max().unwrap_or(0) {
            return Err(self.corrupt(format!("{stored} columns; a {} partition has more", self.table)));
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), columns.iter().copied());
        let mut builder = builder.with_projection(mask).with_batch_size(65_536);
        if let Some(selection) = selection {
            builder = builder.with_row_selection(selection);
        }
        builder.build().map_err(|e| self.parquet(e))
    }

    /// Reads the code column alone and selects the rows whose current code `wanted` accepts.
    /// Returns the selection and the rows the file holds.
    fn select_codes(
        &self,
        current: &FxHashMap<String, String>,
        keys: &mut RowKeys,
        mut wanted: impl FnMut(&RowKeys, u32) -> bool,
    ) -> Result<(RowSelection, u64), WarehouseError> {
        let mut codes = DictionaryNumbers::default();
        let mut selectors: Vec<RowSelector> = Vec::new();
        let mut push = |select: bool, n: usize| match selectors.last_mut() {
            Some(last) if last.skip != select => last.row_count += n,
            _ => selectors.push(if select { RowSelector::select(n) } else { RowSelector::skip(n) }),
        };
        let mut held = 0u64;
        for b in self.reader(&[2], None)? {
            let b = b.map_err(|e| self.corrupt(e.to_string()))?;
            let bnf = b
                .column(0)
                .as_dictionary_opt::<Int32Type>()
                .ok_or_else(|| self.corrupt("the BNF code column is not text"))?;
            // Whether each dictionary entry is wanted, worked out once per dictionary.
            let wants = codes
                .numbers(bnf.values(), |c| {
                    let id = keys.codes.id(current.get(c).map_or(c, String::as_str));
                    wanted(keys, id)
                })
                .map_err(|e| self.corrupt(e))?;
            let mut run = (false, 0usize);
            for k in bnf.keys().values() {
                let w = *wants.get(*k as usize).ok_or_else(|| self.corrupt("a row points outside its dictionary"))?;
                if w == run.0 {
                    run.1 += 1;
                } else {
                    if run.1 > 0 {
                        push(run.0, run.1);
                    }
                    run = (w, 1);
                }
            }
            if run.1 > 0 {
                push(run.0, run.1);
            }
            held += b.num_rows() as u64;
        }
        Ok((selectors.into(), held))
    }

    /// Reads the practice and code columns and the file columns `amounts` (ascending, after the
    /// code) of the selected rows, handing `f` each batch (practice, code, then `amounts`) with
    /// its rows' practice and current-code numbers. Returns the rows read.
    fn read(
        &self,
        current: &FxHashMap<String, String>,
        keys: &mut RowKeys,
        amounts: &[usize],
        selection: Option<RowSelection>,
        mut f: impl FnMut(&RowKeys, &RecordBatch, &[(u32, u32)]),
    ) -> Result<u64, WarehouseError> {
        let columns: Vec<usize> = [1, 2].into_iter().chain(amounts.iter().copied()).collect();
        let (mut practices, mut codes) = (DictionaryNumbers::default(), DictionaryNumbers::default());
        let mut rows = 0u64;
        let mut ids: Vec<(u32, u32)> = Vec::new();
        for b in self.reader(&columns, selection)? {
            let b = b.map_err(|e| self.corrupt(e.to_string()))?;
            if b.num_columns() != columns.len() {
                return Err(self.corrupt(format!(
                    "{} columns read; {} were asked for",
                    b.num_columns(),
                    columns.len()
                )));
            }
            let (Some(practice), Some(bnf)) =
                (b.column(0).as_dictionary_opt::<Int32Type>(), b.column(1).as_dictionary_opt::<Int32Type>())
            else {
                return Err(self.corrupt("practice and BNF code columns are not text"));
            };
            let practice_ids =
                practices.numbers(practice.values(), |p| keys.practices.id(p)).map_err(|e| self.corrupt(e))?;
            let code_ids = codes
                .numbers(bnf.values(), |c| keys.codes.id(current.get(c).map_or(c, String::as_str)))
                .map_err(|e| self.corrupt(e))?;
            ids.clear();
            for (i, (p, c)) in practice.keys().values().iter().zip(bnf.keys().values()).enumerate() {
                let (Some(&p), Some(&c)) = (practice_ids.get(*p as usize), code_ids.get(*c as usize)) else {
                    return Err(self.corrupt(format!("row {i} of a batch points outside its dictionary")));
                };
                ids.push((p, c));
            }
            f(keys, &b, &ids);
            rows += b.num_rows() as u64;
        }
        Ok(rows)
    }
}

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
    /// Items of it prescribed in England in the latest month with prescribing, so a reader sees
    /// which presentations carry a measure and which are empty shelves.
    pub latest_items: i64,
}

/// A month's measure inputs and whether its stored results are current.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasureMonth {
    /// The month.
    pub month: YearMonth,
    /// Files the results depend on, as recorded in [`crate::ComputeRecord::inputs`].
    pub inputs: Vec<String>,
    /// Whether stored results were computed from exactly these inputs and definitions.
    pub fresh: bool,
}

impl Warehouse {
    /// Standard GP practices for a month with their organisations and list size: practices in
    /// the organisation map (under `membership`), not closed cost centres, not `…998` codes.
    pub async fn practices_for_month(
        &self,
        month: YearMonth,
        membership: Membership,
    ) -> Result<Vec<PracticeMonth>, WarehouseError> {
        Ok(self.practices_for_months(&[month], membership).await?.remove(&month).unwrap_or_default())
    }

    /// [`Warehouse::practices_for_month`] for several months in one query.
    pub async fn practices_for_months(
        &self,
        months: &[YearMonth],
        membership: Membership,
    ) -> Result<BTreeMap<YearMonth, Vec<PracticeMonth>>, WarehouseError> {
        let mut out: BTreeMap<YearMonth, Vec<PracticeMonth>> = months.iter().map(|m| (*m, Vec::new())).collect();
        if months.is_empty() {
            return Ok(out);
        }
        let days: Vec<String> =
            months.iter().map(|m| format!("(DATE '{}')", m.first_day().format("%Y-%m-%d"))).collect();
        let filter = match membership {
            Membership::AsAt => {
                "(m.valid_from IS NULL OR m.valid_from <= mo.month) AND (m.valid_to IS NULL OR m.valid_to > mo.month)"
            }
            Membership::Latest => "m.is_latest",
        };
        // Patients by sex and age band, male then female, as measures with a patients side read them.
        let bands: Vec<String> = ["male", "female"]
            .iter()
            .flat_map(|sex| {
                ipmo_ingest::list_sizes::STAR_PU_BANDS.iter().map(move |b| format!("CAST(l.{sex}_{b} AS DOUBLE)"))
            })
            .collect();
        let bands = bands.join(", ");
        let sql = format!(
            "SELECT mo.month, m.practice_code, m.pcn_code, m.sicbl_code, m.icb_code, m.region_code, \
             CAST(l.total AS DOUBLE) AS total, l.star_pu_oral_antibacterial, {bands} \
             FROM (VALUES {}) AS mo(month) JOIN org_membership m ON {filter} \
             JOIN practices p ON p.practice_code = m.practice_code AND p.is_gp_practice \
             LEFT JOIN list_sizes l ON l.practice_code = m.practice_code AND l.month = mo.month \
             WHERE m.practice_code NOT LIKE '%998' ORDER BY mo.month, m.practice_code",
            days.join(", ")
        );
        for b in self.query(&sql).await? {
            let month = b.column(0).as_primitive::<datafusion::arrow::datatypes::Date32Type>();
            let s = |c: usize| b.column(c).as_string::<i32>();
            let (code, pcn, sicbl, icb, region) = (s(1), s(2), s(3), s(4), s(5));
            let total = b.column(6).as_primitive::<Float64Type>();
            let star = b.column(7).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                let list = out.entry(crate::values::month_of(month.value(i))).or_default();
                // A practice listed twice (overlapping snapshots) counts once.
                if list.last().is_some_and(|p| p.code == code.value(i)) {
                    continue;
                }
                list.push(PracticeMonth {
                    code: code.value(i).to_string(),
                    pcn: (!pcn.is_null(i)).then(|| pcn.value(i).to_string()),
                    sicbl: sicbl.value(i).to_string(),
                    icb: icb.value(i).to_string(),
                    region: region.value(i).to_string(),
                    list_size: (!total.is_null(i)).then(|| total.value(i)),
                    star_pu: (!star.is_null(i)).then(|| star.value(i)),
                    age_bands: (!total.is_null(i)).then(|| {
                        std::array::from_fn(|k| {
                            let c = b.column(8 + k).as_primitive::<Float64Type>();
                            if c.is_null(i) { 0.0 } else { c.value(i) }
                        })
                    }),
                });
            }
        }
        Ok(out)
    }

    /// BNF names of every presentation known (from BNF Code Information, else as prescribed).
    pub fn presentation_names(&self) -> Result<FxHashMap<String, String>, WarehouseError> {
        let manifest = self.manifest()?;
        let seen = read_table(self.root(), &manifest, "presentations_seen")?;
        // The first two columns of `bnf` are the presentation code and name; they win.
        let bnf = read_table(self.root(), &manifest, "bnf")?;
        Ok(string_pairs(&seen).chain(string_pairs(&bnf)).map(|(c, n)| (c.to_string(), n.to_string())).collect())
    }

    /// Items prescribed in England per current BNF code in the latest month with prescribing,
    /// and that month (`None` when nothing is loaded).
    pub fn latest_month_items(
        &self,
        current: &FxHashMap<String, String>,
    ) -> Result<(Option<YearMonth>, std::collections::HashMap<String, i64>), WarehouseError> {
        let manifest = self.manifest()?;
        let latest = manifest.partitions(PRESCRIBING).into_iter().filter_map(|p| p.parse::<YearMonth>().ok()).max();
        let mut items = std::collections::HashMap::new();
        if let Some(month) = latest {
            self.for_each_prescribing(month, current, |_, code, a| {
                *items.entry(code.to_string()).or_default() += a.items;
            })?;
        }
        Ok((latest, items))
    }

    /// Old BNF code → current code.
    pub fn bnf_current_codes(&self) -> Result<FxHashMap<String, String>, WarehouseError> {
        let map = read_table(self.root(), &self.manifest()?, "bnf_map")?;
        Ok(string_pairs(&map).map(|(o, c)| (o.to_string(), c.to_string())).collect())
    }

    /// Calls `f(practice, current BNF code, amounts)` for every stored row of a month. Returns
    /// the rows read.
    pub fn for_each_prescribing(
        &self,
        month: YearMonth,
        current: &FxHashMap<String, String>,
        mut f: impl FnMut(&str, &str, &Amounts),
    ) -> Result<u64, WarehouseError> {
        let mut keys = RowKeys::default();
        self.for_each_prescribing_keyed(month, current, &mut keys, |keys, p, c, a| {
            f(keys.practices.name(p), keys.codes.name(c), a)
        })
    }

    /// Calls `f(keys, practice number, current BNF code number, amounts)` for every stored row
    /// of a month, numbering practices and codes in `keys`. This is the hot path of `measures
    /// compute`: it reads the Parquet partition directly (no query planning), decodes only the
    /// columns it hands on, keeps practice and code columns dictionary-encoded, and maps each
    /// dictionary entry (not each row) to its number, so no row hashes a string. Returns the rows
    /// read.
    pub fn for_each_prescribing_keyed(
        &self,
        month: YearMonth,
        current: &FxHashMap<String, String>,
        keys: &mut RowKeys,
        mut f: impl FnMut(&RowKeys, u32, u32, &Amounts),
    ) -> Result<u64, WarehouseError> {
        let Some(partition) = self.keyed_partition(PRESCRIBING, month)? else { return Ok(0) };
        // File columns: items, quantity, NIC, actual cost, ADQ (month and `unidentified` unread).
        partition.read(current, keys, &[3, 4, 5, 6, 7], None, |keys, b, ids| {
            let items = b.column(2).as_primitive::<Int64Type>();
            let quantity = b.column(3).as_primitive::<Float64Type>();
            let nic = b.column(4).as_primitive::<Int64Type>();
            let cost = b.column(5).as_primitive::<Int64Type>();
            let adq = b.column(6).as_primitive::<Float64Type>();
            for (i, &(p, c)) in ids.iter().enumerate() {
                let amounts = Amounts {
                    items: items.value(i),
                    quantity: quantity.value(i),
                    actual_cost_e5: cost.value(i),
                    nic_pence: nic.value(i),
                    adq: adq.value(i),
                };
                f(keys, p, c, &amounts);
            }
        })
    }

    /// Hands `rows` the month's quantity split (`prescribing_by_quantity`) of the current codes it
    /// [wants](QuantitySplitRows::wants). The code column is read first and only the wanted rows
    /// of the others are decoded: the measures that read the split cover a few presentations, a
    /// twentieth of its rows nationally. Returns the rows the partition holds, read or not: 0 for
    /// a month loaded before the split was kept.
    pub fn for_each_quantity_split_keyed(
        &self,
        month: YearMonth,
        current: &FxHashMap<String, String>,
        keys: &mut RowKeys,
        rows: &mut impl QuantitySplitRows,
    ) -> Result<u64, WarehouseError> {
        let Some(partition) = self.keyed_partition(PRESCRIBING_BY_QUANTITY, month)? else { return Ok(0) };
        let (selection, held) = partition.select_codes(current, keys, |keys, code| rows.wants(keys, code))?;
        if selection.selects_any() {
            // File columns: quantity per item, items (month and SNOMED code unread).
            partition.read(current, keys, &[4, 5], Some(selection), |keys, b, ids| {
                let per_item = b.column(2).as_primitive::<Float64Type>();
                let items = b.column(3).as_primitive::<Int64Type>();
                for (i, &(p, c)) in ids.iter().enumerate() {
                    rows.row(keys, p, c, per_item.value(i), items.value(i));
                }
            })?;
        }
        Ok(held)
    }

    /// The stored file of a month's partition of `table` (month, practice, BNF code, then
    /// amounts), or `None` when the month has none.
    fn keyed_partition(&self, table: &'static str, month: YearMonth) -> Result<Option<KeyedPartition>, WarehouseError> {
        let manifest = self.manifest()?;
        Ok(manifest
            .tables
            .get(table)
            .and_then(|t| t.get(&month.to_string()))
            .map(|rel| KeyedPartition { table, path: self.root().join(rel) }))
    }

    /// Every month with prescribing, oldest first, with the files its measure results depend on
    /// (prescribing and list-size partitions, membership, practices, BNF map and names, plus
    /// `extra_inputs` such as the groups file) and whether the stored results were made from
    /// exactly those with this library and membership choice. A reload writes new file names, so
    /// any change to an input shows as a stale month.
    pub fn measure_months(
        &self,
        library_hash: &str,
        membership: Membership,
        extra_inputs: &[String],
    ) -> Result<Vec<MeasureMonth>, WarehouseError> {
        let manifest = self.manifest()?;
        let file = |table: &str, partition: &str| manifest.tables.get(table).and_then(|t| t.get(partition)).cloned();
        let mut out = Vec::new();
        for partition in manifest.partitions(PRESCRIBING) {
            let Ok(month) = partition.parse::<YearMonth>() else { continue };
            let mut inputs: Vec<String> = [
                (PRESCRIBING, partition),
                (PRESCRIBING_BY_QUANTITY, partition),
                ("list_sizes", partition),
                ("org_membership", "all"),
                ("practices", "all"),
                ("bnf", "all"),
                ("bnf_snomed", "all"),
            ]
            .into_iter()
            .filter_map(|(table, part)| file(table, part))
            .collect();
            // Not the BNF map or the presentations seen, which grow with every month's new
            // codes: a code first prescribed in a new month is in no earlier month, so it changes
            // none of their sums, and recomputing sixty months for it would make every monthly
            // update a full one. What remaps codes an earlier month holds is a change list.
            inputs.extend(manifest.files("bnf_code_changes").into_iter().map(str::to_string));
            // Product rules read the dm+d release, so a new release recomputes.
            let dmd_tables = ipmo_ingest::dmd::TABLES.iter().map(|t| t.table).chain([ipmo_ingest::dmd::HISTORY_TABLE]);
            inputs.extend(dmd_tables.flat_map(|t| manifest.files(t)).map(str::to_string));
            inputs.extend(extra_inputs.iter().cloned());
            let fresh = manifest.computed.get(partition).is_some_and(|r| {
                r.library_hash == library_hash && r.membership == membership.as_str() && r.inputs == inputs
            });
            out.push(MeasureMonth { month, inputs, fresh });
        }
        Ok(out)
    }

    /// Starts storing measure results: takes the warehouse lock until [`MeasureWriter::finish`]
    /// commits (or the writer is dropped, leaving the warehouse as it was).
    pub fn measure_writer<'w>(&'w self, library: &Library) -> Result<MeasureWriter<'w>, WarehouseError> {
        let versions = library.computed().map(|m| (m.id.clone(), (m.version as i32, m.hash.clone()))).collect();
        Ok(MeasureWriter { txn: std::sync::Mutex::new(self.begin()?), versions, rows: Default::default() })
    }
}

/// Measure results being stored month by month, from any number of threads; nothing is visible
/// until [`Self::finish`] commits the manifest.
pub struct MeasureWriter<'w> {
    txn: std::sync::Mutex<crate::load::Txn<'w>>,
    /// Measure id → (version, definition hash).
    versions: BTreeMap<String, (i32, String)>,
    rows: std::sync::atomic::AtomicU64,
}

impl MeasureWriter<'_> {
    /// Writes one month's values and deciles (Parquet encoding runs on the calling thread) and
    /// records them for the commit. Returns the values written.
    pub fn write_month(
        &self,
        month: YearMonth,
        results: &MonthResults,
        record: ComputeRecord,
    ) -> Result<u64, WarehouseError> {
        let (root, values_rel, deciles_rel) = {
            let txn = self.txn.lock().map_err(|_| WarehouseError::Index("a measure writer thread failed".into()))?;
            let key = month.to_string();
            (txn.root().to_path_buf(), txn.rel_path("measure_values", &key), txn.rel_path("measure_deciles", &key))
        };
        let day = Some(month.days_since_epoch());
        let v = &results.values;
        let opt = |f: &dyn Fn(usize) -> Option<f64>| Col::F64Opt((0..v.len()).map(f).collect());
        // Values come measure by measure: look each measure's version up once.
        let mut last: Option<(&str, Option<&(i32, String)>)> = None;
        let versions: Vec<Option<&(i32, String)>> = v
            .iter()
            .map(|r| match last {
                Some((id, found)) if id == r.measure => found,
                _ => {
                    let found = self.versions.get(&r.measure);
                    last = Some((&r.measure, found));
                    found
                }
            })
            .collect();
        let cols = vec![
            Col::Date(vec![day; v.len()]),
            Col::text(v.iter().map(|r| r.measure.as_str())),
            Col::text(v.iter().map(|r| r.org_type.as_str())),
            Col::text(v.iter().map(|r| r.org_code.as_str())),
            Col::F64(v.iter().map(|r| r.numerator).collect()),
            Col::F64(v.iter().map(|r| r.denominator).collect()),
            opt(&|i| v[i].value),
            opt(&|i| v[i].percentile),
            opt(&|i| v[i].saving_50),
            opt(&|i| v[i].saving_10),
            Col::I32(versions.iter().map(|m| m.map(|m| m.0)).collect()),
            Col::text(versions.iter().map(|m| m.map_or("", |m| m.1.as_str()))),
        ];
        let rows = crate::load::write_table_file(&root, &values_rel, "measure_values", cols)?;
        let d = &results.deciles;
        let cols = vec![
            Col::Date(vec![day; d.len()]),
            Col::text(d.iter().map(|r| r.measure.as_str())),
            Col::text(d.iter().map(|r| r.org_type.as_str())),
            Col::I32(d.iter().map(|r| Some(i32::from(r.percentile))).collect()),
            Col::F64(d.iter().map(|r| r.value).collect()),
        ];
        crate::load::write_table_file(&root, &deciles_rel, "measure_deciles", cols)?;
        let mut txn = self.txn.lock().map_err(|_| WarehouseError::Index("a measure writer thread failed".into()))?;
        let key = month.to_string();
        txn.set("measure_values", &key, values_rel);
        txn.set("measure_deciles", &key, deciles_rel);
        txn.manifest.computed.insert(key, record);
        self.rows.fetch_add(rows, std::sync::atomic::Ordering::Relaxed);
        Ok(rows)
    }

    /// Writes the definitions and counted codes and commits everything written. Returns the
    /// values stored.
    pub fn finish(self, library: &Library, codes: &[CountedCode]) -> Result<u64, WarehouseError> {
        let mut txn =
            self.txn.into_inner().map_err(|_| WarehouseError::Index("a measure writer thread failed".into()))?;
        let rows = self.rows.into_inner();
        let ms: Vec<&Measure> = library.computed().collect();
        let s = |f: &dyn Fn(&Measure) -> String| Col::Str(ms.iter().map(|m| Some(f(m))).collect());
        let cols = vec![
            s(&|m| m.id.clone()),
            Col::I32(ms.iter().map(|m| Some(m.version as i32)).collect()),
            s(&|m| m.hash.clone()),
            s(&|m| m.title.clone()),
            s(&|m| m.unit()),
            s(&|m| direction_name(m.direction).to_string()),
            Col::Bool(ms.iter().map(|m| m.is_percentage).collect()),
            Col::Bool(ms.iter().map(|m| m.is_cost_based).collect()),
            Col::F64(ms.iter().map(|m| m.multiplier()).collect()),
            s(&|m| m.numerator.quantity.name().to_string()),
            s(&|m| m.denominator.quantity.name().to_string()),
            s(&|m| m.tags.join(",")),
            s(&|m| m.status.as_str().to_string()),
        ];
        txn.write_whole("measure_definitions", cols)?;
        let cols = vec![
            Col::Str(codes.iter().map(|c| Some(c.measure_id.clone())).collect()),
            Col::Str(codes.iter().map(|c| Some(c.side.to_string())).collect()),
            Col::Str(codes.iter().map(|c| Some(c.bnf_code.clone())).collect()),
            Col::Str(codes.iter().map(|c| Some(c.name.clone())).collect()),
            Col::F64(codes.iter().map(|c| c.factor).collect()),
            Col::I64(codes.iter().map(|c| c.latest_items).collect()),
        ];
        txn.write_whole("measure_codes", cols)?;
        txn.commit(rows, Vec::new())?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    /// A measure's age bands are positions in the bands the warehouse stores: the two lists must
    /// be the same, in the same order.
    #[test]
    fn measure_age_bands_are_the_stored_bands() {
        assert_eq!(ipmo_measures::definition::AGE_BANDS, ipmo_ingest::list_sizes::STAR_PU_BANDS);
    }
}
