//! The English Prescribing Dataset and its predecessors.
//!
//! One reader takes every layout NHSBSA and NHS Digital have published: the EPD (2020 launch
//! header with `AREA_TEAM_*`, the ICB-era header, and the "EPD with SNOMED code" header with
//! `BNF_PRESENTATION_CODE` and `ADQ_USAGE`), NHSBSA's older "Detailed Prescribing Information" (no
//! month column; quantity per item) and NHS Digital's practice-level prescribing (PDPI: padded
//! fields, `PERIOD`, `ACT COST`, total quantity). Rows are summed to practice × presentation ×
//! month as they are read, which is what almost every measure needs. The EPD splits a presentation
//! into one row per quantity per item (and, in the SNOMED layout, per dm+d product); that split is
//! kept beside the sums as items per practice × presentation × product × quantity per item, because
//! course-length measures ("amoxicillin 500 mg over 15 capsules") need exactly it.

use crate::error::RejectLog;
use crate::{ErrorPolicy, IngestError, ProgressFn, Rejected, SourceFile, Table};
use ipmo_domain::{
    BnfCode, OdsCode, YearMonth, is_unidentified_practice, parse_decimal, parse_fixed_point, parse_whole_number,
};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;

/// Summed values for one practice, presentation and month. Money is in integer units of what was
/// published, so totals equal the file's own sums exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    /// Prescription items.
    pub items: i64,
    /// Total quantity (quantity per item × items, summed).
    pub quantity: f64,
    /// Net ingredient cost in pence.
    pub nic_pence: i64,
    /// Actual cost in hundred-thousandths of a pound.
    pub actual_cost_e5: i64,
    /// Defined daily doses (ADQ usage); 0 where none is defined.
    pub adq_usage: f64,
}

/// A sum that no longer fits: which column, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// `ITEMS` passed i64.
    Items,
    /// `NIC` passed i64 pence.
    Nic,
    /// `ACTUAL_COST` passed i64 hundred-thousandths of a pound.
    ActualCost,
    /// `TOTAL_QUANTITY` summed to infinity.
    Quantity,
    /// `ADQ_USAGE` summed to infinity.
    AdqUsage,
}

impl Totals {
    /// Adds `o`, all or nothing: every integer sum is checked and every float sum must stay
    /// finite, so a file cannot panic the process (debug) or store wrapped totals (release).
    pub fn add(&mut self, o: &Totals) -> Result<(), Overflow> {
        let sum = Totals {
            items: self.items.checked_add(o.items).ok_or(Overflow::Items)?,
            quantity: Some(self.quantity + o.quantity).filter(|q| q.is_finite()).ok_or(Overflow::Quantity)?,
            nic_pence: self.nic_pence.checked_add(o.nic_pence).ok_or(Overflow::Nic)?,
            actual_cost_e5: self.actual_cost_e5.checked_add(o.actual_cost_e5).ok_or(Overflow::ActualCost)?,
            adq_usage: Some(self.adq_usage + o.adq_usage).filter(|q| q.is_finite()).ok_or(Overflow::AdqUsage)?,
        };
        *self = sum;
        Ok(())
    }

    /// Whether any value is below zero (real in hospital returns, never expected in the EPD).
    pub fn has_negative(&self) -> bool {
        self.items < 0 || self.quantity < 0.0 || self.nic_pence < 0 || self.actual_cost_e5 < 0 || self.adq_usage < 0.0
    }
}

/// Which layout a file was recognised as; recorded in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpdLayout {
    /// English Prescribing Dataset (any of its headers).
    Epd,
    /// NHSBSA Detailed Prescribing Information (month from the file name).
    Dpi,
    /// NHS Digital practice-level prescribing (PDPI).
    Pdpi,
}

impl EpdLayout {
    /// Short name for messages and the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Epd => "EPD",
            Self::Dpi => "DPI",
            Self::Pdpi => "PDPI",
        }
    }
}

/// One aggregated row, as handed to the warehouse.
#[derive(Clone, Debug, PartialEq)]
pub struct PrescribingRow {
    /// Practice (prescribing cost centre) code.
    pub practice_code: String,
    /// BNF presentation code as published (not yet mapped to today's code).
    pub bnf_code: String,
    /// Practice code ends `998` or the file flagged the row unidentified.
    pub unidentified: bool,
    /// The summed values.
    pub totals: Totals,
}

/// Prescribing read from one or more files, summed per month, practice and presentation.
#[derive(Default)]
pub struct PrescribingData {
    practices: CodeIndex,
    practice_flagged: Vec<bool>,
    bnf_codes: CodeIndex,
    bnf_names: Vec<String>,
    months: Vec<YearMonth>,
    cells: FxHashMap<u64, Totals>,
    snomed_codes: CodeIndex,
    /// The quantity-per-item split, appended as rows are read and sorted and merged once a file
    /// is read: a vector rather than a map, because nearly every EPD row is its own split row and
    /// a national month's twenty million hash entries cost more than one sort.
    by_quantity: Vec<SplitRow>,
}

/// Codes numbered in the order first seen, found by the bytes as written: the practice, BNF and
/// SNOMED columns of twenty million rows hold a few thousand distinct spellings, so each is
/// checked once.
#[derive(Default)]
struct CodeIndex {
    codes: Vec<String>,
    by_spelling: FxHashMap<Vec<u8>, u32>,
}

impl CodeIndex {
    /// The number of the code spelled `raw`, and whether the code is new. A spelling not seen
    /// before is checked by `canonical`, which gives the code's one spelling, so `l84073` and
    /// `L84073` are one code; `full` is the error once `limit` codes are held.
    fn number<E>(
        &mut self,
        raw: &[u8],
        limit: usize,
        canonical: impl FnOnce() -> Result<String, E>,
        full: impl FnOnce() -> E,
    ) -> Result<(u32, bool), E> {
        if let Some(i) = self.by_spelling.get(raw) {
            return Ok((*i, false));
        }
        let code = canonical()?;
        let (i, new) = match self.by_spelling.get(code.as_bytes()) {
            Some(i) => (*i, false),
            None => {
                if self.codes.len() >= limit {
                    return Err(full());
                }
                let i = self.codes.len() as u32;
                self.by_spelling.insert(code.as_bytes().to_vec(), i);
                self.codes.push(code);
                (i, true)
            }
        };
        self.by_spelling.insert(raw.to_vec(), i);
        Ok((i, new))
    }
}

impl std::ops::Index<usize> for CodeIndex {
    type Output = String;
    fn index(&self, i: usize) -> &String {
        &self.codes[i]
    }
}

/// Cell key, dm+d product ([`NO_SNOMED`] when the file names none), quantity per item as f64 bits.
type QuantityKey = (u64, u32, u64);

/// One split row: its key and its items.
#[derive(Clone, Copy, Debug)]
struct SplitRow {
    key: QuantityKey,
    items: i64,
}

const NO_SNOMED: u32 = u32::MAX;

/// One row of the quantity-per-item split, as handed to the warehouse.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantityRow<'a> {
    /// Practice code.
    pub practice_code: &'a str,
    /// BNF presentation code as published.
    pub bnf_code: &'a str,
    /// The dm+d VMP or AMP id from the EPD's `SNOMED_CODE`, when the file has that column.
    pub snomed_code: Option<&'a str>,
    /// Quantity on each prescription item.
    pub quantity_per_item: f64,
    /// Items with exactly that quantity.
    pub items: i64,
}

const FIELD_BITS: u64 = 24;
const FIELD_MAX: usize = (1 << FIELD_BITS) - 1;

impl PrescribingData {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// The months seen, in order.
    pub fn months(&self) -> Vec<YearMonth> {
        let mut m = self.months.clone();
        m.sort();
        m
    }

    /// Number of aggregated rows over all months.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// True when nothing was read.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Presentation names as first seen in the files (code, name), for codes missing from the BNF
    /// code list.
    pub fn presentation_names(&self) -> Vec<(String, String)> {
        self.bnf_codes.codes.iter().cloned().zip(self.bnf_names.iter().cloned()).collect()
    }

    /// Visits the rows of one month sorted by practice then presentation (sorted files compress
    /// better and let Parquet statistics skip row groups). Visiting, rather than returning a
    /// vector, keeps a national month (nine million rows) from being copied into strings.
    pub fn for_each_sorted(&self, month: YearMonth, mut f: impl FnMut(&str, &str, bool, &Totals)) {
        let Some(mi) = self.months.iter().position(|m| *m == month) else { return };
        let rank = |codes: &[String]| {
            let mut order: Vec<usize> = (0..codes.len()).collect();
            order.sort_unstable_by(|&a, &b| codes[a].cmp(&codes[b]));
            let mut r = vec![0u64; codes.len()];
            for (pos, i) in order.into_iter().enumerate() {
                r[i] = pos as u64;
            }
            r
        };
        let (prank, brank) = (rank(&self.practices.codes), rank(&self.bnf_codes.codes));
        let mut keys: Vec<(u64, u64)> = self
            .cells
            .keys()
            .filter(|k| (**k >> (2 * FIELD_BITS)) as usize == mi)
            .map(|&k| {
                let (p, b) = split(k);
                ((prank[p] << FIELD_BITS) | brank[b], k)
            })
            .collect();
        keys.sort_unstable_by_key(|x| x.0);
        for (_, k) in keys {
            let (p, b) = split(k);
            let code = &self.practices[p];
            let unidentified = self.practice_flagged[p] || is_unidentified_practice(code);
            f(code, &self.bnf_codes[b], unidentified, &self.cells[&k]);
        }
    }

    /// The rows of one month as owned values, sorted (for tests and small loads).
    pub fn rows_for(&self, month: YearMonth) -> Vec<PrescribingRow> {
        let mut out = Vec::new();
        self.for_each_sorted(month, |p, b, u, t| {
            out.push(PrescribingRow {
                practice_code: p.to_string(),
                bnf_code: b.to_string(),
                unidentified: u,
                totals: *t,
            })
        });
        out
    }

    /// Visits the quantity-per-item rows of one month, grouped by practice and presentation (in
    /// the order the files first named them), then product and quantity. Files without a
    /// quantity per item (PDPI) contribute none.
    pub fn for_each_quantity_sorted(&self, month: YearMonth, mut f: impl FnMut(QuantityRow<'_>)) {
        let code_of = |s: u32| (s != NO_SNOMED).then(|| self.snomed_codes.codes[s as usize].as_str());
        for row in self.split_of(month) {
            let (p, b) = split(row.key.0);
            f(QuantityRow {
                practice_code: &self.practices[p],
                bnf_code: &self.bnf_codes[b],
                snomed_code: code_of(row.key.1),
                quantity_per_item: f64::from_bits(row.key.2),
                items: row.items,
            });
        }
    }

    /// Number of quantity-per-item rows in one month.
    pub fn quantity_rows_in(&self, month: YearMonth) -> usize {
        self.split_of(month).len()
    }

    /// The month's split rows: a contiguous run, since rows sort by their key and the key starts
    /// with the month.
    fn split_of(&self, month: YearMonth) -> &[SplitRow] {
        let Some(mi) = self.months.iter().position(|m| *m == month) else { return &[] };
        let month_of = |r: &SplitRow| (r.key.0 >> (2 * FIELD_BITS)) as usize;
        let start = self.by_quantity.partition_point(|r| month_of(r) < mi);
        let end = self.by_quantity.partition_point(|r| month_of(r) <= mi);
        &self.by_quantity[start..end]
    }

    /// Sorts the split and adds up rows with the same key (a file that repeats a practice,
    /// presentation, product and quantity), refusing a sum past the largest whole number.
    fn settle_split(&mut self, file: &str) -> Result<(), IngestError> {
        self.by_quantity.sort_unstable_by_key(|r| r.key);
        let mut overflow = None;
        self.by_quantity.dedup_by(|later, kept| {
            if later.key != kept.key {
                return false;
            }
            match kept.items.checked_add(later.items) {
                Some(sum) => kept.items = sum,
                None => overflow = Some(kept.key),
            }
            true
        });
        if let Some((key, _, q)) = overflow {
            let (p, b) = split(key);
            return Err(IngestError::format(
                file,
                format!(
                    "the items of practice {} and presentation {} at quantity {} per item add up to more than can be held; check the file",
                    self.practices[p],
                    self.bnf_codes[b],
                    f64::from_bits(q)
                ),
            ));
        }
        Ok(())
    }

    /// Number of aggregated rows in one month.
    pub fn rows_in(&self, month: YearMonth) -> usize {
        let Some(mi) = self.months.iter().position(|m| *m == month) else { return 0 };
        self.cells.keys().filter(|k| (**k >> (2 * FIELD_BITS)) as usize == mi).count()
    }

    fn month_index(&mut self, m: YearMonth) -> Option<u64> {
        if let Some(i) = self.months.iter().position(|x| *x == m) {
            return Some(i as u64);
        }
        if self.months.len() >= 255 {
            return None;
        }
        self.months.push(m);
        Some(self.months.len() as u64 - 1)
    }
}

fn split(key: u64) -> (usize, usize) {
    (((key >> FIELD_BITS) & FIELD_MAX as u64) as usize, (key & FIELD_MAX as u64) as usize)
}

/// What was read from one file, for the manifest.
#[derive(Debug)]
pub struct FileReport {
    /// File name.
    pub file: String,
    /// Layout recognised.
    pub layout: EpdLayout,
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Size of the file as stored.
    pub bytes: u64,
    /// Data rows read (blank lines excluded).
    pub rows_read: u64,
    /// Rows accepted.
    pub rows_kept: u64,
    /// Rows skipped under `--max-errors`.
    pub rejected: Vec<Rejected>,
    /// Months the file held.
    pub months: BTreeSet<YearMonth>,
    /// Rows kept that carry a negative items, quantity, cost or ADQ value: loaded as published,
    /// and counted so that the load report can say so.
    pub negative_rows: u64,
}

/// How to read prescribing files.
#[derive(Clone, Copy, Debug, Default)]
pub struct EpdOptions {
    /// Month for files with no month column whose name carries none (`--month`).
    pub month: Option<YearMonth>,
    /// Bad-row limit.
    pub errors: ErrorPolicy,
}

struct Columns {
    month: Option<usize>,
    practice: usize,
    bnf: usize,
    bnf_name: Option<usize>,
    items: usize,
    nic: usize,
    cost: usize,
    quantity: usize,
    /// Quantity per item: `QUANTITY` in the EPD, the quantity itself in DPI; PDPI has none.
    per_item: Option<usize>,
    snomed: Option<usize>,
    adq: Option<usize>,
    unidentified: Option<usize>,
    layout: EpdLayout,
}

fn columns(t: &Table) -> Result<Columns, IngestError> {
    let month = t.find(&["YEAR_MONTH", "PERIOD"]);
    let total = t.find(&["TOTAL_QUANTITY"]);
    let (layout, quantity) = match (total, month) {
        (Some(q), _) => (EpdLayout::Epd, q),
        (None, Some(_)) => (EpdLayout::Pdpi, t.require("QUANTITY", &["QUANTITY"])?),
        (None, None) => (EpdLayout::Dpi, t.require("QUANTITY", &["QUANTITY"])?),
    };
    Ok(Columns {
        month,
        practice: t.require("PRACTICE_CODE", &["PRACTICE_CODE", "PRACTICE"])?,
        bnf: t.require("BNF_PRESENTATION_CODE", &["BNF_PRESENTATION_CODE", "BNF_CODE"])?,
        bnf_name: t.find(&["BNF_PRESENTATION_NAME", "BNF_DESCRIPTION", "BNF_NAME"]),
        items: t.require("ITEMS", &["ITEMS"])?,
        nic: t.require("NIC", &["NIC"])?,
        cost: t.require("ACTUAL_COST", &["ACTUAL_COST", "ACT_COST"])?,
        quantity,
        per_item: match layout {
            EpdLayout::Epd => t.find(&["QUANTITY"]),
            EpdLayout::Dpi => Some(quantity),
            EpdLayout::Pdpi => None,
        },
        snomed: t.find(&["SNOMED_CODE"]),
        adq: t.find(&["ADQ_USAGE", "ADQUSAGE"]),
        unidentified: t.find(&["UNIDENTIFIED"]),
        layout,
    })
}

/// Reads one prescribing file into `data`. On error nothing should be stored: the caller discards
/// `data`, which is why this takes the accumulator rather than writing anywhere.
pub fn read_prescribing(
    source: SourceFile,
    data: &mut PrescribingData,
    options: &EpdOptions,
    progress: ProgressFn<'_>,
) -> Result<FileReport, IngestError> {
    let checksum = source.checksum_handle();
    let name_month = YearMonth::from_file_name(&source.name);
    let mut t = Table::open(source)?;
    let c = columns(&t)?;
    let fixed_month = match (c.month, options.month, name_month) {
        (None, Some(m), _) => Some(m),
        (None, None, Some(m)) => Some(m),
        (None, None, None) => {
            return Err(IngestError::format(
                &t.file,
                "this file has no month column and its name holds no YYYYMM; rename it (e.g. dpi_201709.csv) or pass --month YYYY-MM",
            ));
        }
        (Some(_), _, _) => None,
    };
    let expected_month = options.month.or(name_month);
    let mut log = RejectLog::new(options.errors.max_errors);
    let mut months = BTreeSet::new();
    let (mut rows_read, mut rows_kept, mut negative_rows) = (0u64, 0u64, 0u64);
    let mut last_month: Option<(Vec<u8>, YearMonth, u64)> = None;
    let mut last_practice: Option<(Vec<u8>, u32)> = None;
    while t.advance()? {
        if t.is_blank() {
            continue;
        }
        rows_read += 1;
        if rows_read % 65_536 == 0 {
            progress(rows_read);
        }
        match parse_row(&t, &c, data, fixed_month, expected_month, &mut last_month, &mut last_practice) {
            Ok(Parsed { key, totals, month, split_key }) => {
                let cell = data.cells.entry(key).or_default();
                if let Err(overflow) = cell.add(&totals) {
                    let (practice, bnf) = split(key);
                    let (column, value) = match overflow {
                        Overflow::Items => (c.items, totals.items.to_string()),
                        Overflow::Nic => (c.nic, t.field(c.nic).to_string()),
                        Overflow::ActualCost => (c.cost, t.field(c.cost).to_string()),
                        Overflow::Quantity => (c.quantity, t.field(c.quantity).to_string()),
                        Overflow::AdqUsage => (c.adq.unwrap_or(c.quantity), totals.adq_usage.to_string()),
                    };
                    let e = t.error(
                        column,
                        format!(
                            "\"{value}\" makes the total for practice {} and presentation {} in {month} too large to hold; check the value (no real month comes near this)",
                            data.practices[practice], data.bnf_codes[bnf]
                        ),
                    );
                    t.reject(&mut log, e)?;
                    continue;
                }
                if let Some(k) = split_key {
                    data.by_quantity.push(SplitRow { key: k, items: totals.items });
                }
                if totals.has_negative() {
                    negative_rows += 1;
                }
                months.insert(month);
                rows_kept += 1;
            }
            Err(e) => t.reject(&mut log, e)?,
        }
    }
    progress(rows_read);
    if rows_read == 0 {
        return Err(IngestError::format(&t.file, "the file has a header but no rows"));
    }
    data.settle_split(&t.file)?;
    let (sha256, bytes) = checksum.get();
    Ok(FileReport {
        file: t.file.clone(),
        layout: c.layout,
        sha256,
        bytes,
        rows_read,
        rows_kept,
        rejected: log.into_rows(),
        months,
        negative_rows,
    })
}

/// One row read: its cell, its values, and its place in the quantity-per-item split.
struct Parsed {
    key: u64,
    totals: Totals,
    month: YearMonth,
    split_key: Option<QuantityKey>,
}

fn parse_row(
    t: &Table,
    c: &Columns,
    data: &mut PrescribingData,
    fixed_month: Option<YearMonth>,
    expected_month: Option<YearMonth>,
    last_month: &mut Option<(Vec<u8>, YearMonth, u64)>,
    last_practice: &mut Option<(Vec<u8>, u32)>,
) -> Result<Parsed, crate::RowError> {
    let (month, month_idx) = match (fixed_month, c.month) {
        (Some(m), _) => {
            (m, data.month_index(m).ok_or_else(|| t.error(c.practice, "more than 255 months in one load"))?)
        }
        (None, None) => return Err(t.error(c.practice, "no month for this row; pass --month YYYY-MM")),
        (None, Some(i)) => {
            let raw = t.bytes(i);
            match last_month {
                Some((b, m, idx)) if b.as_slice() == raw => (*m, *idx),
                _ => {
                    let text = t.field(i);
                    let m: YearMonth = text.parse().map_err(|e| t.error(i, format!("{e}")))?;
                    if let Some(exp) = expected_month
                        && m != exp
                    {
                        return Err(t.error(
                            i,
                            format!("\"{text}\" does not match the month in the file name or --month ({exp})"),
                        ));
                    }
                    let idx = data.month_index(m).ok_or_else(|| t.error(i, "more than 255 months in one load"))?;
                    *last_month = Some((raw.to_vec(), m, idx));
                    (m, idx)
                }
            }
        }
    };
    let praw = t.bytes(c.practice);
    let practice = match last_practice {
        Some((b, idx)) if b.as_slice() == praw => *idx,
        _ => {
            // The index is keyed by the bytes as written; `l84073` and `L84073` are one practice.
            let canonical = || {
                let text = t.field(c.practice);
                if text == "-" {
                    Ok("-".to_string())
                } else {
                    OdsCode::parse(text).map(|code| code.to_string()).map_err(|e| t.error(c.practice, e.to_string()))
                }
            };
            let full = || t.error(c.practice, "too many distinct practices in one load");
            let (idx, new) = data.practices.number(praw, FIELD_MAX, canonical, full)?;
            if new {
                data.practice_flagged.push(false);
            }
            *last_practice = Some((praw.to_vec(), idx));
            idx
        }
    };
    let braw = t.bytes(c.bnf);
    let canonical = || {
        BnfCode::parse_presentation(t.field(c.bnf))
            .map(|code| code.to_string())
            .map_err(|e| t.error(c.bnf, e.to_string()))
    };
    let full = || t.error(c.bnf, "too many distinct BNF codes in one load");
    let (bnf, new) = data.bnf_codes.number(braw, FIELD_MAX, canonical, full)?;
    if new {
        data.bnf_names.push(c.bnf_name.map(|i| t.text(i)).unwrap_or_default());
    }
    let items = parse_whole_number(t.field(c.items)).map_err(|e| t.error(c.items, e.to_string()))?;
    let nic_pence = parse_fixed_point(t.field(c.nic), 2).map_err(|e| t.error(c.nic, e.to_string()))?;
    let actual_cost_e5 = parse_fixed_point(t.field(c.cost), 5).map_err(|e| t.error(c.cost, e.to_string()))?;
    let q = parse_decimal(t.field(c.quantity)).map_err(|e| t.error(c.quantity, e.to_string()))?;
    let quantity = if c.layout == EpdLayout::Dpi { q * items as f64 } else { q };
    let adq_usage = match c.adq {
        Some(i) if !t.field(i).is_empty() => parse_decimal(t.field(i)).map_err(|e| t.error(i, e.to_string()))?,
        _ => 0.0,
    };
    if let Some(i) = c.unidentified
        && matches!(t.field(i).to_ascii_uppercase().as_str(), "Y" | "YES" | "TRUE" | "1" | "T")
    {
        data.practice_flagged[practice as usize] = true;
    }
    let key = (month_idx << (2 * FIELD_BITS)) | (u64::from(practice) << FIELD_BITS) | u64::from(bnf);
    let split_key = match c.per_item {
        Some(i) => {
            let per_item =
                if i == c.quantity { q } else { parse_decimal(t.field(i)).map_err(|e| t.error(i, e.to_string()))? };
            let snomed = match c.snomed {
                Some(s) if !t.bytes(s).is_empty() => snomed_index(t, s, data)?,
                _ => NO_SNOMED,
            };
            // `+ 0.0` folds -0 into 0 so that both spellings are one quantity.
            Some((key, snomed, (per_item + 0.0).to_bits()))
        }
        None => None,
    };
    Ok(Parsed { key, totals: Totals { items, quantity, nic_pence, actual_cost_e5, adq_usage }, month, split_key })
}

/// The index of the row's `SNOMED_CODE`, checked to be a SNOMED CT id (6 to 18 digits) once per
/// distinct spelling.
fn snomed_index(t: &Table, column: usize, data: &mut PrescribingData) -> Result<u32, crate::RowError> {
    let canonical = || {
        let raw = t.bytes(column);
        if !(6..=18).contains(&raw.len()) || !raw.iter().all(u8::is_ascii_digit) {
            return Err(t.error(
                column,
                format!(
                    "\"{}\" is not a SNOMED CT id (6 to 18 digits); was the file opened and saved in a spreadsheet?",
                    t.field(column)
                ),
            ));
        }
        Ok(t.field(column).to_string())
    };
    let full = || t.error(column, "too many distinct SNOMED codes in one load");
    Ok(data.snomed_codes.number(t.bytes(column), NO_SNOMED as usize, canonical, full)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read(name: &str, body: &[u8], max_errors: u64) -> (Result<FileReport, IngestError>, PrescribingData) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path).unwrap().write_all(body).unwrap();
        let mut data = PrescribingData::new();
        let src = crate::open_source(&path).unwrap();
        let opts = EpdOptions { month: None, errors: ErrorPolicy { max_errors } };
        let r = read_prescribing(src, &mut data, &opts, &mut |_| {});
        (r, data)
    }

    const SNOMED_HEADER: &str = "YEAR_MONTH,REGIONAL_OFFICE_NAME,REGIONAL_OFFICE_CODE,ICB_NAME,ICB_CODE,PCO_NAME,PCO_CODE,PRACTICE_NAME,PRACTICE_CODE,ADDRESS_1,ADDRESS_2,ADDRESS_3,ADDRESS_4,POSTCODE,BNF_CHEMICAL_SUBSTANCE_CODE,BNF_CHEMICAL_SUBSTANCE_NAME,BNF_PRESENTATION_CODE,BNF_PRESENTATION_NAME,BNF_CHAPTER_PLUS_CODE,QUANTITY,ITEMS,TOTAL_QUANTITY,ADQ_USAGE,NIC,ACTUAL_COST,UNIDENTIFIED,SNOMED_CODE";

    fn snomed_row(practice: &str, items: &str, nic: &str) -> String {
        format!(
            "202411,LONDON,Y56,NHS NORTH EAST LONDON ICB,QMF,\"NHS NORTH EAST LONDON ICB - A3A8R\",A3A8R,SURGERY,{practice},,,,,E1 1AA,0601022B0,Metformin,0601022B0AAABAB,Metformin 500mg tablets,06: Endocrine,28.0,{items},56.0,14.0,{nic},1.23456,N,0325278007\r\n"
        )
    }

    #[test]
    fn sums_quantity_splits_exactly() {
        let body = format!(
            "\u{feff}{SNOMED_HEADER}\r\n{}{}",
            snomed_row("F84016", "2", "0.10"),
            snomed_row("F84016", "1", "0.20")
        );
        let (r, data) = read("epd_202411.csv", body.as_bytes(), 0);
        let r = r.unwrap();
        assert_eq!((r.rows_read, r.rows_kept, r.layout), (2, 2, EpdLayout::Epd));
        let rows = data.rows_for("2024-11".parse().unwrap());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].totals.items, 3);
        assert_eq!(rows[0].totals.nic_pence, 30);
        assert_eq!(rows[0].totals.actual_cost_e5, 246_912);
        assert_eq!(rows[0].totals.quantity, 112.0);
    }

    #[test]
    fn quantity_per_item_and_snomed_code_are_kept_beside_the_sums() {
        let row = |q: &str, items: &str, total: &str, snomed: &str| {
            snomed_row("F84016", items, "0.10")
                .replace(",28.0,", &format!(",{q},"))
                .replace(",56.0,", &format!(",{total},"))
                .replace("0325278007", snomed)
        };
        let body = format!(
            "{SNOMED_HEADER}\n{}{}{}{}",
            row("28.0", "2", "56.0", "325278007"),
            row("28", "1", "28.0", "325278007"),
            row("56.0", "1", "56.0", "325278007"),
            row("28.0", "4", "112.0", "")
        );
        let (r, data) = read("epd_202411.csv", body.as_bytes(), 0);
        r.unwrap();
        let month = "2024-11".parse().unwrap();
        let mut split = Vec::new();
        data.for_each_quantity_sorted(month, |q| {
            split.push((q.snomed_code.map(str::to_string), q.quantity_per_item, q.items))
        });
        assert_eq!(
            split,
            [(Some("325278007".to_string()), 28.0, 3), (Some("325278007".to_string()), 56.0, 1), (None, 28.0, 4)]
        );
        let rows = data.rows_for(month);
        let total: f64 = split.iter().map(|(_, q, n)| q * *n as f64).sum();
        assert_eq!((rows[0].totals.items, rows[0].totals.quantity, total), (8, 252.0, 252.0));
        let bad = format!("{SNOMED_HEADER}\n{}", row("28.0", "2", "56.0", "3.25278E+08"));
        let msg = read("epd_202411.csv", bad.as_bytes(), 0).0.unwrap_err().to_string();
        assert!(
            msg.starts_with("epd_202411.csv line 2, column SNOMED_CODE: \"3.25278E+08\" is not a SNOMED CT id"),
            "{msg}"
        );
    }

    #[test]
    fn names_file_line_column_and_value() {
        let body =
            format!("{SNOMED_HEADER}\n{}{}", snomed_row("F84016", "2", "0.10"), snomed_row("F84016", "1O", "0.20"));
        let (r, _) = read("epd_202411.csv", body.as_bytes(), 0);
        assert_eq!(r.unwrap_err().to_string(), "epd_202411.csv line 3, column ITEMS: \"1O\" is not a whole number");
    }

    #[test]
    fn max_errors_skips_and_counts() {
        let body = format!("{SNOMED_HEADER}\n{}{}", snomed_row("F84016", "2", "x"), snomed_row("F84016", "1", "0.20"));
        let (r, data) = read("epd_202411.csv", body.as_bytes(), 5);
        let r = r.unwrap();
        assert_eq!((r.rows_read, r.rows_kept, r.rejected.len()), (2, 1, 1));
        assert_eq!(r.rejected[0].error.column, "NIC");
        assert_eq!(data.len(), 1);
        let (r, _) = read("epd_202411.csv", body.replace(",1,", ",q,").as_bytes(), 1);
        assert!(matches!(r, Err(IngestError::TooManyErrors { .. })), "{r:?}");
    }

    #[test]
    fn month_must_match_file_name() {
        let body = format!("{SNOMED_HEADER}\n{}", snomed_row("F84016", "2", "0.10"));
        let (r, _) = read("epd_202410.csv", body.as_bytes(), 0);
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("line 2, column YEAR_MONTH: \"202411\" does not match"), "{msg}");
    }

    #[test]
    fn malformed_codes_and_missing_columns() {
        let body = format!("{SNOMED_HEADER}\n{}", snomed_row("F84-16", "2", "0.10"));
        let (r, _) = read("epd_202411.csv", body.as_bytes(), 0);
        assert!(r.unwrap_err().to_string().contains("column PRACTICE_CODE: \"F84-16\" is not an ODS code"));
        let body = SNOMED_HEADER.replace("ITEMS", "ITEMZ") + "\n";
        let (r, _) = read("epd_202411.csv", body.as_bytes(), 0);
        assert!(r.unwrap_err().to_string().starts_with("epd_202411.csv line 1: required column ITEMS is missing"));
    }

    #[test]
    fn pdpi_padded_fields_and_dpi_month_from_name() {
        let pdpi = " SHA,PCT,PRACTICE,BNF CODE,BNF NAME      ,ITEMS  ,NIC        ,ACT COST   ,QUANTITY,PERIOD,\n\
                    Q44,RXA,N81646,0102000N0AAABAB,Hyoscine  ,0000001,00000000.64,00000000.70,0000012,201410,";
        let (r, data) = read("pdpi.csv", pdpi.as_bytes(), 0);
        assert_eq!(r.unwrap().layout, EpdLayout::Pdpi);
        let rows = data.rows_for("2014-10".parse().unwrap());
        assert_eq!(
            (rows[0].totals.nic_pence, rows[0].totals.actual_cost_e5, rows[0].totals.quantity),
            (64, 70_000, 12.0)
        );
        let dpi = "Practice Code,BNF Code,Items,Quantity,ADQ Usage,NIC,Actual Cost\rL84073,0105010B0BIAAAS,2,168,84.00000,75.38,69.93852\r";
        let (r, data) = read("dpi_201709_x.csv", dpi.as_bytes(), 0);
        assert_eq!(r.unwrap().layout, EpdLayout::Dpi);
        assert_eq!(data.rows_for("2017-09".parse().unwrap())[0].totals.quantity, 336.0);
        let mut split = Vec::new();
        data.for_each_quantity_sorted("2017-09".parse().unwrap(), |q| split.push((q.quantity_per_item, q.items)));
        assert_eq!(split, [(168.0, 2)]);
        let (r, _) = read("dpi.csv", dpi.as_bytes(), 0);
        assert!(r.unwrap_err().to_string().contains("pass --month"));
    }

    const MINIMAL: &str = "YEAR_MONTH,PRACTICE_CODE,BNF_CODE,ITEMS,TOTAL_QUANTITY,NIC,ACTUAL_COST";

    #[test]
    fn sums_that_overflow_are_errors_naming_line_column_and_value_not_panics() {
        // The review's seven fuzz cases that panicked with "attempt to add with overflow".
        let cases = [
            ("5000000000000000000", "10", "1.00", "1.00000", "ITEMS"),
            ("1", "10", "50000000000000000.00", "1.00000", "NIC"),
            ("1", "10", "1.00", "50000000000000.00000", "ACTUAL_COST"),
            ("1", "1e308", "1.00", "1.00000", "TOTAL_QUANTITY"),
        ];
        for (items, quantity, nic, cost, column) in cases {
            let row = format!("2017_09,L84073,0105010B0BIAAAS,{items},{quantity},{nic},{cost}\n");
            let body = format!("{MINIMAL}\n{row}{row}");
            let (r, _) = read("ovf_epd_201709.csv", body.as_bytes(), 0);
            let msg = r.unwrap_err().to_string();
            assert!(msg.starts_with(&format!("ovf_epd_201709.csv line 3, column {column}: \"")), "{msg}");
            assert!(msg.contains("L84073") && msg.contains("too large"), "{msg}");
            // Under --max-errors the row is set aside and the first row's totals stand unchanged.
            let (r, data) = read("ovf_epd_201709.csv", body.as_bytes(), 5);
            assert_eq!(r.unwrap().rejected.len(), 1);
            let t = data.rows_for("2017-09".parse().unwrap())[0].totals;
            assert_eq!(t.items.to_string(), items);
        }
        // A value at the limit meets any other row of its cell.
        let body = format!(
            "{MINIMAL}\n2017_09,L84073,0105010B0BIAAAS,9223372036854775807,1,1,1\n2017_09,L84073,0105010B0BIAAAS,1,1,1,1\n"
        );
        assert!(read("ovf_epd_201709.csv", body.as_bytes(), 0).0.unwrap_err().to_string().contains("column ITEMS"));
    }

    #[test]
    fn codes_differing_only_in_case_are_one_row_and_negatives_are_counted() {
        let body = format!(
            "{MINIMAL}\n2017_09,L84073,0105010B0BIAAAS,1,1,1,1\n2017_09,l84073,0105010b0biaaas,2,1,1,1\n2017_09,l84073,0105010B0BIAAAS,-1,1,1,1\n"
        );
        let (r, data) = read("epd_201709.csv", body.as_bytes(), 0);
        let r = r.unwrap();
        let rows = data.rows_for("2017-09".parse().unwrap());
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((rows[0].practice_code.as_str(), rows[0].bnf_code.as_str()), ("L84073", "0105010B0BIAAAS"));
        assert_eq!((rows[0].totals.items, r.negative_rows), (2, 1));
    }

    #[test]
    fn a_huge_value_is_quoted_in_part() {
        let huge = "9".repeat(1 << 20) + "x";
        let body = format!("{MINIMAL}\n2017_09,L84073,0105010B0BIAAAS,{huge},1,1,1\n");
        let msg = read("epd_201709.csv", body.as_bytes(), 0).0.unwrap_err().to_string();
        assert!(msg.len() < 1_000, "{} bytes", msg.len());
        assert!(msg.contains("(1048577 characters in all)"), "{msg}");
    }

    #[test]
    fn unidentified_practices_are_kept_but_marked() {
        let body = format!("{SNOMED_HEADER}\n{}", snomed_row("Q58998", "2", "0.10"));
        let (_, data) = read("epd_202411.csv", body.as_bytes(), 0);
        assert!(data.rows_for("2024-11".parse().unwrap())[0].unidentified);
    }
}
