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

mod blocks;
mod partial;
mod records;

use crate::error::RejectLog;
use crate::table::{Header, normalise_header, sniff_delimiter};
use crate::{ErrorPolicy, IngestError, ProgressFn, Rejected, SourceFile};
use blocks::{Block, BlockReader};
use ipmo_domain::{YearMonth, is_unidentified_practice};
use partial::{BlockOutcome, Context, Partial};
use records::Records;
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Summed rows sorted by key (month, practice, presentation numbers), so that the months of
    /// several files merge in one pass and a month is one run.
    cells: Vec<(u64, Totals)>,
    snomed_codes: CodeIndex,
    /// The quantity-per-item split, sorted by key: a vector rather than a map, because nearly
    /// every EPD row is its own split row and a national month's twenty million hash entries cost
    /// more than one sort.
    by_quantity: Vec<SplitRow>,
}

/// Codes numbered in the order first seen, found by the bytes as written: the practice, BNF and
/// SNOMED columns of twenty million rows hold a few thousand distinct spellings, so each is
/// checked once.
#[derive(Default)]
struct CodeIndex {
    codes: Vec<String>,
    by_spelling: Spellings,
}

/// Spellings and their numbers. Practice and BNF codes (at most 15 bytes) and SNOMED ids (at
/// most 19 digits) are packed into one integer, so finding one hashes and compares 16 bytes
/// rather than a string.
#[derive(Default)]
struct Spellings {
    packed: FxHashMap<u128, u32>,
    long: FxHashMap<Vec<u8>, u32>,
}

impl Spellings {
    fn get(&self, raw: &[u8]) -> Option<u32> {
        match pack(raw) {
            Some(k) => self.packed.get(&k).copied(),
            None => self.long.get(raw).copied(),
        }
    }

    fn insert(&mut self, raw: &[u8], i: u32) {
        match pack(raw) {
            Some(k) => self.packed.insert(k, i),
            None => self.long.insert(raw.to_vec(), i),
        };
    }
}

/// A short spelling as one integer: up to 15 bytes with their length, or up to 19 digits as a
/// number with their length (so `0325` and `325` stay apart); `None` for anything longer.
fn pack(raw: &[u8]) -> Option<u128> {
    if raw.len() <= 15 {
        let mut b = [0u8; 16];
        b[..raw.len()].copy_from_slice(raw);
        b[15] = raw.len() as u8;
        return Some(u128::from_le_bytes(b));
    }
    if raw.len() <= 19 && raw.iter().all(u8::is_ascii_digit) {
        let value = raw.iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
        return Some((1 << 127) | ((raw.len() as u128) << 64) | u128::from(value));
    }
    None
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
            return Ok((i, false));
        }
        let code = canonical()?;
        let (i, new) = match self.by_spelling.get(code.as_bytes()) {
            Some(i) => (i, false),
            None => {
                if self.codes.len() >= limit {
                    return Err(full());
                }
                let i = self.codes.len() as u32;
                self.by_spelling.insert(code.as_bytes(), i);
                self.codes.push(code);
                (i, true)
            }
        };
        self.by_spelling.insert(raw, i);
        Ok((i, new))
    }

    /// The number of a code already in its one spelling, numbering it if new.
    fn intern(&mut self, code: &str) -> u32 {
        if let Some(i) = self.by_spelling.get(code.as_bytes()) {
            return i;
        }
        let i = self.codes.len() as u32;
        self.by_spelling.insert(code.as_bytes(), i);
        self.codes.push(code.to_string());
        i
    }

    /// Numbers the codes of several workers' indexes that this one lacks, in code order (so a
    /// load's numbering does not depend on which worker met a code first), and returns each
    /// worker's numbers in this index.
    fn merge<'a>(&mut self, locals: impl Iterator<Item = &'a CodeIndex>) -> Vec<Vec<u32>> {
        let locals: Vec<&CodeIndex> = locals.collect();
        let mut new: Vec<&str> = locals
            .iter()
            .flat_map(|l| l.codes.iter())
            .filter(|c| self.by_spelling.get(c.as_bytes()).is_none())
            .map(String::as_str)
            .collect();
        new.sort_unstable();
        new.dedup();
        for code in new {
            self.intern(code);
        }
        locals.iter().map(|l| l.codes.iter().map(|c| self.intern(c)).collect()).collect()
    }

    /// True when the numbers follow code order, as they do after one file's load.
    fn numbered_in_order(&self) -> bool {
        self.codes.windows(2).all(|w| w[0] < w[1])
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
        let cells = self.cells_of(month);
        let mut visit = |&(key, ref totals): &(u64, Totals)| {
            let (p, b) = split(key);
            let code = &self.practices[p];
            let unidentified = self.practice_flagged[p] || is_unidentified_practice(code);
            f(code, &self.bnf_codes[b], unidentified, totals);
        };
        if self.practices.numbered_in_order() && self.bnf_codes.numbered_in_order() {
            cells.iter().for_each(visit);
            return;
        }
        // Files loaded together can number codes out of order: sort by each code's rank.
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
        let mut order: Vec<(u64, u32)> = cells
            .iter()
            .enumerate()
            .map(|(i, &(k, _))| {
                let (p, b) = split(k);
                ((prank[p] << FIELD_BITS) | brank[b], i as u32)
            })
            .collect();
        order.sort_unstable();
        for (_, i) in order {
            visit(&cells[i as usize]);
        }
    }

    /// The month's cells.
    fn cells_of(&self, month: YearMonth) -> &[(u64, Totals)] {
        self.month_run(&self.cells, month, |c| c.0)
    }

    /// The rows of `rows` (sorted by a key that starts with the month, as cells and split rows
    /// are) that belong to `month`: a contiguous run.
    fn month_run<'a, T>(&self, rows: &'a [T], month: YearMonth, key: impl Fn(&T) -> u64) -> &'a [T] {
        let Some(mi) = self.months.iter().position(|m| *m == month) else { return &[] };
        let month_of = |r: &T| (key(r) >> (2 * FIELD_BITS)) as usize;
        let start = rows.partition_point(|r| month_of(r) < mi);
        let end = rows.partition_point(|r| month_of(r) <= mi);
        &rows[start..end]
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
    /// code order for the codes of a file loaded alone), then product and quantity. Files without a
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

    /// The month's split rows.
    fn split_of(&self, month: YearMonth) -> &[SplitRow] {
        self.month_run(&self.by_quantity, month, |r| r.key.0)
    }

    /// Merges what the workers read from one file: their codes are renumbered into this
    /// accumulator's, and their cells and split rows sorted (one thread per worker) and merged
    /// into the sorted runs held, adding up rows with the same key. A sum past what can be held
    /// is refused, naming the practice and presentation.
    fn absorb(&mut self, partials: Vec<Partial>, file: &str) -> Result<(), IngestError> {
        let too_many = || IngestError::format(file, "more than 255 months in one load; load fewer files at a time");
        let month_maps: Vec<Vec<u64>> = partials
            .iter()
            .map(|p| p.months.iter().map(|&m| self.month_index(m).ok_or_else(too_many)).collect())
            .collect::<Result<_, _>>()?;
        let practice_maps = self.practices.merge(partials.iter().map(|p| &p.practices));
        self.practice_flagged.resize(self.practices.codes.len(), false);
        for (p, map) in partials.iter().zip(&practice_maps) {
            for (local, &flagged) in p.practice_flagged.iter().enumerate() {
                self.practice_flagged[map[local] as usize] |= flagged;
            }
        }
        let named_before = self.bnf_names.len();
        let bnf_maps = self.bnf_codes.merge(partials.iter().map(|p| &p.bnf_codes));
        // A new code takes the name of its first row in the file.
        let mut first: Vec<Option<(usize, u64)>> = vec![None; self.bnf_codes.codes.len() - named_before];
        self.bnf_names.resize(self.bnf_codes.codes.len(), String::new());
        for (p, map) in partials.iter().zip(&bnf_maps) {
            for ((name, seen), &global) in p.bnf_names.iter().zip(map) {
                let Some(slot) = (global as usize).checked_sub(named_before) else { continue };
                if first[slot].is_none_or(|f| *seen < f) {
                    first[slot] = Some(*seen);
                    self.bnf_names[global as usize] = name.clone();
                }
            }
        }
        let snomed_maps = self.snomed_codes.merge(partials.iter().map(|p| &p.snomed_codes));
        let sorted: Vec<Result<Sorted, Clash>> = std::thread::scope(|s| {
            let handles: Vec<_> = partials
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    let maps = Renumbering {
                        months: &month_maps[i],
                        practices: &practice_maps[i],
                        bnf: &bnf_maps[i],
                        snomed: &snomed_maps[i],
                    };
                    s.spawn(move || maps.apply(p.cells, p.split))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        for part in sorted {
            let part = part.map_err(|clash| self.clash_error(file, clash))?;
            let cells = merge_sorted(std::mem::take(&mut self.cells), part.cells, |c| c.0, |a, b| a.1.add(&b.1).ok());
            self.cells = cells.map_err(|key| self.clash_error(file, Clash::Cell(key)))?;
            let split = merge_sorted(std::mem::take(&mut self.by_quantity), part.split, |r| r.key, add_items);
            self.by_quantity = split.map_err(|key| self.clash_error(file, Clash::Split(key)))?;
        }
        Ok(())
    }

    fn clash_error(&self, file: &str, clash: Clash) -> IngestError {
        let (key, what) = match clash {
            Clash::Cell(key) => (key, String::new()),
            Clash::Split((key, _, q)) => (key, format!(" at quantity {} per item", f64::from_bits(q))),
        };
        let (p, b) = split(key);
        IngestError::format(
            file,
            format!(
                "the values of practice {} and presentation {}{what} add up to more than can be held; check the file",
                self.practices[p], self.bnf_codes[b]
            ),
        )
    }

    /// Number of aggregated rows in one month.
    pub fn rows_in(&self, month: YearMonth) -> usize {
        self.cells_of(month).len()
    }

    fn month_index(&mut self, m: YearMonth) -> Option<u64> {
        month_number(&mut self.months, m)
    }
}

/// The number of month `m` among `months`, adding it if new; `None` past 255 months, which the
/// key's eight bits hold.
fn month_number(months: &mut Vec<YearMonth>, m: YearMonth) -> Option<u64> {
    if let Some(i) = months.iter().position(|x| *x == m) {
        return Some(i as u64);
    }
    if months.len() >= 255 {
        return None;
    }
    months.push(m);
    Some(months.len() as u64 - 1)
}

fn split(key: u64) -> (usize, usize) {
    (((key >> FIELD_BITS) & FIELD_MAX as u64) as usize, (key & FIELD_MAX as u64) as usize)
}

/// A worker's cells and split rows in the accumulator's numbering, sorted, each key once.
struct Sorted {
    cells: Vec<(u64, Totals)>,
    split: Vec<SplitRow>,
}

/// A key whose values could not be added up.
enum Clash {
    Cell(u64),
    Split(QuantityKey),
}

/// From one worker's numbers to the accumulator's.
struct Renumbering<'a> {
    months: &'a [u64],
    practices: &'a [u32],
    bnf: &'a [u32],
    snomed: &'a [u32],
}

impl Renumbering<'_> {
    fn key(&self, key: u64) -> u64 {
        let month = self.months[(key >> (2 * FIELD_BITS)) as usize];
        let (p, b) = split(key);
        (month << (2 * FIELD_BITS)) | (u64::from(self.practices[p]) << FIELD_BITS) | u64::from(self.bnf[b])
    }

    fn apply(&self, mut cells: Vec<(u64, Totals)>, mut split: Vec<SplitRow>) -> Result<Sorted, Clash> {
        for c in &mut cells {
            c.0 = self.key(c.0);
        }
        cells.sort_unstable_by_key(|c| c.0);
        let cells = sum_runs(cells, |c| c.0, |a, b| a.1.add(&b.1).ok()).map_err(Clash::Cell)?;
        for r in &mut split {
            let snomed = if r.key.1 == NO_SNOMED { NO_SNOMED } else { self.snomed[r.key.1 as usize] };
            r.key = (self.key(r.key.0), snomed, r.key.2);
        }
        split.sort_unstable_by_key(|r| r.key);
        let split = sum_runs(split, |r| r.key, add_items).map_err(Clash::Split)?;
        Ok(Sorted { cells, split })
    }
}

/// Adds `b`'s items to `a`'s; `None` past the largest whole number.
fn add_items(a: &mut SplitRow, b: &SplitRow) -> Option<()> {
    a.items = a.items.checked_add(b.items)?;
    Some(())
}

/// Adds up neighbours with the same key in a sorted vector; the key that would not add up is
/// the error.
fn sum_runs<T, K: PartialEq + Copy>(
    mut rows: Vec<T>,
    key: impl Fn(&T) -> K,
    mut add: impl FnMut(&mut T, &T) -> Option<()>,
) -> Result<Vec<T>, K> {
    let mut clash = None;
    rows.dedup_by(|later, kept| {
        if key(later) != key(kept) {
            return false;
        }
        if add(kept, later).is_none() {
            clash.get_or_insert(key(kept));
        }
        true
    });
    clash.map_or(Ok(rows), Err)
}

/// Merges two vectors sorted by key, adding up rows with the same key.
fn merge_sorted<T, K: Ord + Copy>(
    a: Vec<T>,
    b: Vec<T>,
    key: impl Fn(&T) -> K,
    mut add: impl FnMut(&mut T, &T) -> Option<()>,
) -> Result<Vec<T>, K> {
    if a.is_empty() {
        return Ok(b);
    }
    if b.is_empty() {
        return Ok(a);
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match key(x).cmp(&key(y)) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    let (mut x, y) = (a.next().expect("peeked"), b.next().expect("peeked"));
                    add(&mut x, &y).ok_or_else(|| key(&x))?;
                    Some(x)
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    Ok(out)
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

fn columns(t: Header<'_>) -> Result<Columns, IngestError> {
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
///
/// The file is read in blocks of whole records by the calling thread (which also decompresses
/// and checksums it), parsed by one worker per core, and merged once read; see the module
/// documentation of the `blocks` and `partial` modules.
pub fn read_prescribing(
    source: SourceFile,
    data: &mut PrescribingData,
    options: &EpdOptions,
    progress: ProgressFn<'_>,
) -> Result<FileReport, IngestError> {
    let checksum = source.checksum_handle();
    let name_month = YearMonth::from_file_name(&source.name);
    let file = source.name.clone();
    let mut reader = source.reader;
    let head = read_header(&mut reader, &file)?;
    let c = columns(Header { file: &file, raw: &head.raw, normalised: &head.normalised })?;
    let fixed_month = match (c.month, options.month, name_month) {
        (None, Some(m), _) => Some(m),
        (None, None, Some(m)) => Some(m),
        (None, None, None) => {
            return Err(IngestError::format(
                &file,
                "this file has no month column and its name holds no YYYYMM; rename it (e.g. dpi_201709.csv) or pass --month YYYY-MM",
            ));
        }
        (Some(_), _, _) => None,
    };
    let (errors_seen, rows_seen) = (AtomicU64::new(0), AtomicU64::new(0));
    let ctx = Context {
        file: &file,
        raw_headers: &head.raw,
        columns: &c,
        delimiter: head.delimiter,
        fixed_month,
        expected_month: options.month.or(name_month),
        max_errors: options.errors.max_errors,
        errors_seen: &errors_seen,
        rows_seen: &rows_seen,
    };
    let (read, mut partials) = read_blocks(reader, head.rest, &ctx, progress);
    // Put the blocks back in file order: their lines become the file's, and the bad rows are
    // judged in the order they come in the file.
    let mut blocks: Vec<BlockOutcome> = partials.iter_mut().flat_map(|p| std::mem::take(&mut p.blocks)).collect();
    blocks.sort_unstable_by_key(|b| b.index);
    let mut log = RejectLog::new(options.errors.max_errors);
    let mut months = BTreeSet::new();
    let (mut line, mut rows_read, mut rows_kept, mut negative_rows) = (head.lines, 0u64, 0u64, 0u64);
    for b in blocks {
        for mut r in b.rejected {
            r.error.line += line;
            log.reject(r.error, r.fields)?;
        }
        line += b.lines;
        rows_read += b.rows_read;
        rows_kept += b.rows_kept;
        negative_rows += b.negative_rows;
        months.extend(b.months);
    }
    if let Err(e) = read {
        return Err(match e {
            IngestError::Corrupt { file, detail, .. } => IngestError::Corrupt { file, line, detail },
            other => other,
        });
    }
    progress(rows_read);
    if rows_read == 0 {
        return Err(IngestError::format(&file, "the file has a header but no rows"));
    }
    data.absorb(partials, &file)?;
    let (sha256, bytes) = checksum.get();
    Ok(FileReport {
        file,
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

/// Threads parsing one file: one per core, up to a limit past which the reading thread could
/// not keep them busy anyway.
fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 16)
}

/// Cuts the file into blocks on this thread and parses them on the workers. Returns how the
/// reading ended and what each worker holds. Reading stops early once more rows have failed than
/// `--max-errors` allows; every block handed out is still parsed, so the first bad row in the
/// file is always among those found.
fn read_blocks(
    reader: Box<dyn Read + Send>,
    rest: Vec<u8>,
    ctx: &Context<'_>,
    progress: ProgressFn<'_>,
) -> (Result<(), IngestError>, Vec<Partial>) {
    let workers = worker_count();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Block>(2 * workers);
    let rx = Mutex::new(rx);
    let (spare, spares) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (rx, spare) = (&rx, spare.clone());
                s.spawn(move || {
                    let mut partial = Partial::default();
                    loop {
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match next {
                            Ok(block) => {
                                partial.read_block(block.index, block.bytes(), ctx);
                                // The reader may have finished; then the buffer is simply freed.
                                let _ = spare.send(block.into_buffer());
                            }
                            Err(_) => return partial,
                        }
                    }
                })
            })
            .collect();
        let mut blocks = BlockReader::new(reader, ctx.file, rest, spares);
        let read = loop {
            if ctx.failed() {
                break Ok(());
            }
            match blocks.next_block() {
                Ok(Some(block)) => {
                    if tx.send(block).is_err() {
                        break Ok(());
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
            progress(ctx.rows_seen.load(Ordering::Relaxed));
        };
        drop(tx);
        let partials = handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect();
        (read, partials)
    })
}

/// The header of a file and what was read past it.
struct FileHead {
    raw: Vec<String>,
    normalised: Vec<String>,
    delimiter: u8,
    /// Lines up to and including the header's.
    lines: u64,
    /// Bytes read after the header: the start of the first block.
    rest: Vec<u8>,
}

/// Reads up to the end of the header row (skipping a byte-order mark and blank lines).
fn read_header(reader: &mut Box<dyn Read + Send>, file: &str) -> Result<FileHead, IngestError> {
    const MAX_HEADER: usize = 16 << 20;
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(crate::table::io_error(file, 1, e)),
        };
        bytes.extend_from_slice(&chunk[..n]);
        let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
        let delimiter = sniff_delimiter(body);
        let mut records = Records::new(body, delimiter);
        // The header is whole once a line end follows it (or the file has ended). A `\r` at the
        // end of what was read may be the first half of `\r\n`: its `\n` must not start the
        // first block as an empty line of its own.
        let header = records.next_record().map(|r| r.fields());
        let whole = records.position() < body.len() || body.ends_with(b"\n") || n == 0;
        if let (Some(raw), true) = (&header, whole) {
            let raw: Vec<String> = raw.iter().map(|f| f.trim().to_string()).collect();
            let normalised = raw.iter().map(|h| normalise_header(h)).collect();
            let (lines, rest) = (records.lines(), body[records.position()..].to_vec());
            return Ok(FileHead { raw, normalised, delimiter, lines: lines.max(1), rest });
        }
        if n == 0 {
            return Err(IngestError::format(file, "the file is empty; check that the download finished"));
        }
        if bytes.len() > MAX_HEADER {
            return Err(IngestError::format(file, "the first 16 MB hold no complete header row; is this a CSV file?"));
        }
    }
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

    /// A file of several blocks, parsed on several threads, gives the sums a plain loop gives,
    /// and a bad row in a late block is named by its line in the file.
    #[test]
    fn a_file_of_many_blocks_sums_as_one_and_numbers_lines_across_blocks() {
        let mut body = format!("{MINIMAL}\r\n");
        let mut expected: std::collections::BTreeMap<(String, String), (i64, i64)> = Default::default();
        let rows = 3 * blocks::BLOCK_BYTES / 60;
        for i in 0..rows {
            let (practice, bnf) = (format!("A{:05}", i / 40 % 3_000), format!("0105010B0BIAA{:02}", i % 7));
            let (items, nic) = (1 + i as i64 % 5, (i as i64 * 37) % 10_000);
            // Blank lines and quoted fields are spread through, so blocks cut among them.
            if i % 1_000 == 0 {
                body.push_str("\r\n");
            }
            let quoted = if i % 333 == 0 { format!("\"{practice}\"") } else { practice.clone() };
            body.push_str(&format!("2017_09,{quoted},{bnf},{items},1,{}.{:02},1\r\n", nic / 100, nic % 100));
            let e = expected.entry((practice, bnf)).or_default();
            e.0 += items;
            e.1 += nic;
        }
        assert!(body.len() > 2 * blocks::BLOCK_BYTES, "{} bytes", body.len());
        let (r, data) = read("epd_201709.csv", body.as_bytes(), 0);
        assert_eq!(r.unwrap().rows_read, rows as u64);
        let got: std::collections::BTreeMap<(String, String), (i64, i64)> = data
            .rows_for("2017-09".parse().unwrap())
            .into_iter()
            .map(|r| ((r.practice_code, r.bnf_code), (r.totals.items, r.totals.nic_pence)))
            .collect();
        assert_eq!(got, expected);
        // The same file with one bad value near its end: the error gives that row's line.
        let lines: Vec<&str> = body.split("\r\n").collect();
        let at = lines.len() - 10;
        let mut bad = lines.clone();
        let broken = bad[at].replacen(",1,", ",x,", 1);
        bad[at] = &broken;
        let (r, _) = read("epd_201709.csv", bad.join("\r\n").as_bytes(), 0);
        let msg = r.unwrap_err().to_string();
        assert!(msg.starts_with(&format!("epd_201709.csv line {}, column TOTAL_QUANTITY", at + 1)), "{msg}");
    }

    /// A reader handing out its bytes in the pieces given, as a pipe or decompressor may.
    struct Pieces(Vec<Vec<u8>>);

    impl std::io::Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some(piece) = self.0.first_mut() else { return Ok(0) };
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            piece.drain(..n);
            if piece.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    #[test]
    fn a_crlf_split_after_the_header_leaves_line_numbers_right() {
        let header = format!("{MINIMAL}\r");
        let rest = "\n2017_09,L84073,0105010B0BIAAAS,1,1,1,1\r\n2017_09,L84073,0105010B0BIAAAS,x,1,1,1\r\n";
        let mut reader: Box<dyn std::io::Read + Send> =
            Box::new(Pieces(vec![header.into_bytes(), rest.as_bytes().to_vec()]));
        let head = read_header(&mut reader, "epd_201709.csv").unwrap();
        assert_eq!((head.lines, head.rest.first()), (1, Some(&b'2')));
    }

    #[test]
    fn unidentified_practices_are_kept_but_marked() {
        let body = format!("{SNOMED_HEADER}\n{}", snomed_row("Q58998", "2", "0.10"));
        let (_, data) = read("epd_202411.csv", body.as_bytes(), 0);
        assert!(data.rows_for("2024-11".parse().unwrap())[0].unidentified);
    }
}
