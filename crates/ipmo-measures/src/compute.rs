//! Computing every measure for every organisation, one month at a time.
//!
//! Each month is independent: practice numerators and denominators come from that month's
//! prescribing and list sizes, organisations are sums of their practices, and percentiles and
//! deciles rank organisations of one level within the month. So a new month is computed on its
//! own, and a month's results depend only on its inputs and the definitions.
//!
//! The rules follow OpenPrescribing's so that numbers agree:
//! - practice rows exist for every standard GP practice in the organisation map for the month
//!   (prescribing by other cost centres and by unidentified `…998` codes is left out);
//! - organisations sum their practices' numerators and denominators; for measures per 1,000
//!   patients or per STAR-PU, practices without a list size that month are left out of both;
//! - `value = numerator × multiplier / denominator` (multiplier 100 for percentages, 1,000 per
//!   1,000 patients), null when the denominator is zero;
//! - percentile = SQL `PERCENT_RANK` × 100 among organisations of the level with a value;
//!   deciles = `PERCENTILE_CONT` over the same values;
//! - for cost-based measures, saving at decile d = numerator − decile_d × denominator /
//!   multiplier (positive: could save); England's saving is the sum of positive practice savings.

use crate::definition::{Measure, Quantity};
use crate::library::Library;
use crate::selection::{Bounds, Presentation};
use ipmo_domain::YearMonth;
use ipmo_domain::practice::level_members;
pub use ipmo_domain::practice::{Amounts, ENGLAND, Group, GroupSet, LEVELS, PracticeMonth};
use ipmo_stats::percentile::{deciles, percent_ranks};
use rustc_hash::FxHashMap;

#[derive(Clone, Copy, Debug)]
enum Amount {
    Items,
    Quantity,
    ActualCost,
    Nic,
    Adq,
}

impl Amount {
    fn of(q: &Quantity) -> Option<Self> {
        Some(match q {
            Quantity::Items => Amount::Items,
            Quantity::Quantity
            | Quantity::WeightedQuantity(_)
            | Quantity::IngredientAmount { .. }
            | Quantity::Ddd
            | Quantity::Inhalers => Amount::Quantity,
            Quantity::ActualCost => Amount::ActualCost,
            Quantity::Nic => Amount::Nic,
            Quantity::Adq => Amount::Adq,
            Quantity::ListSize | Quantity::StarPuOralAntibacterial | Quantity::Patients { .. } => return None,
        })
    }

    fn pick(self, a: &Amounts) -> f64 {
        match self {
            Amount::Items => a.items as f64,
            Amount::Quantity => a.quantity,
            Amount::ActualCost => a.actual_cost_e5 as f64 / 100_000.0,
            Amount::Nic => a.nic_pence as f64 / 100.0,
            Amount::Adq => a.adq,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Contribution {
    slot: usize,
    numerator: bool,
    amount: Amount,
    factor: f64,
    /// Counts inhalers: added once the month's national quantity per item is known.
    inhalers: bool,
}

/// A side that counts a presentation's rows of the quantity split whose quantity per item meets
/// one of `bounds`.
#[derive(Clone, Debug)]
struct SplitContribution {
    slot: usize,
    numerator: bool,
    /// Sums quantity (quantity per item × items) rather than items.
    quantity: bool,
    bounds: Vec<Bounds>,
}

/// What one presentation feeds: sides over the monthly totals and sides over the quantity split.
#[derive(Clone, Debug, Default)]
struct CodeLists {
    totals: Vec<Contribution>,
    split: Vec<SplitContribution>,
    /// Whether a side counts this presentation's inhalers, and the smallest pack that turns doses
    /// into inhalers.
    inhalers: bool,
    smallest_pack: Option<f64>,
}

/// Above this national quantity per item, a presentation's quantity is taken to be doses rather
/// than inhalers (OpenPrescribing's rule).
const DOSES_NOT_INHALERS: f64 = 9.0;

/// Strings numbered in the order first seen, so a hot loop carries a `u32` instead of hashing
/// text for every row.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    names: Vec<String>,
    ids: FxHashMap<String, u32>,
}

impl Interner {
    /// The number of `name`, given one if it is new.
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    /// The string numbered `id` ("" for a number never given).
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }

    /// Strings numbered so far.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nothing is numbered yet.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The numbering of practices and current BNF codes that a reader of prescribing rows hands out.
/// One numbering serves one [`CodeIndex`] (which remembers codes by number) across months.
#[derive(Clone, Debug, Default)]
pub struct RowKeys {
    /// Practice codes.
    pub practices: Interner,
    /// Current BNF codes.
    pub codes: Interner,
}

/// Not looked up yet.
const UNRESOLVED: u32 = u32::MAX;
/// Looked up: not a standard practice this month.
const NOT_COUNTED: u32 = u32::MAX - 1;

/// Which measure sides each presentation feeds, worked out once per code and cached. Cloned,
/// it serves another thread computing other months (with its own [`RowKeys`]).
#[derive(Clone)]
pub struct CodeIndex<'l> {
    measures: Vec<&'l Measure>,
    library: &'l Library,
    presentations: FxHashMap<String, Presentation>,
    /// Measures left out, with why (they select by dm+d and no release is loaded).
    skipped: Vec<(&'l Measure, &'static str)>,
    cache: FxHashMap<String, u32>,
    lists: Vec<CodeLists>,
    /// Code number (of the [`RowKeys`] in use) → position in `lists`.
    by_id: Vec<u32>,
    /// The month being computed, for selections that change by month.
    month: Option<YearMonth>,
    /// Whether any measure's selection changes by month.
    dated: bool,
}

impl<'l> CodeIndex<'l> {
    /// Sets the month being computed. Where a measure's selection changes by month, what each
    /// presentation feeds is worked out again for the new month.
    pub fn set_month(&mut self, month: YearMonth) {
        if self.dated && self.month != Some(month) {
            self.cache.clear();
            self.lists.clear();
            self.by_id.clear();
        }
        self.month = Some(month);
    }

    /// An index over the library's computed measures; `presentations` gives each current code's
    /// name and dm+d products for name filters and product rules (a code not in it is known by
    /// its code alone). Measures that select by dm+d are left out when no presentation has a
    /// product, rather than computed as zero: see [`CodeIndex::skipped`].
    pub fn new(library: &'l Library, presentations: FxHashMap<String, Presentation>) -> Self {
        let dmd_loaded = presentations.values().any(|p| !p.products.is_empty());
        let (mut measures, mut skipped) = (Vec::new(), Vec::new());
        for m in library.computed() {
            if !dmd_loaded && (m.numerator.uses_dmd() || m.denominator.uses_dmd()) {
                skipped.push((m, "selects by dm+d and no dm+d release is loaded (`ipmo ingest dmd`)"));
            } else {
                measures.push(m);
            }
        }
        Self {
            measures,
            library,
            presentations,
            skipped,
            cache: FxHashMap::default(),
            lists: Vec::new(),
            by_id: Vec::new(),
            month: None,
            dated: library.computed().any(|m| m.numerator.is_dated() || m.denominator.is_dated()),
        }
    }

    /// The measures this index computes, in slot order.
    pub fn measures(&self) -> &[&'l Measure] {
        &self.measures
    }

    /// Measures the library holds that this index cannot compute, with the reason.
    pub fn skipped(&self) -> &[(&'l Measure, &'static str)] {
        &self.skipped
    }

    /// Whether any measure reads the EPD's quantity split.
    pub fn uses_quantity_split(&self) -> bool {
        self.measures.iter().any(|m| m.numerator.uses_quantity_split() || m.denominator.uses_quantity_split())
    }

    fn list_for(&mut self, code: &str) -> usize {
        if let Some(&i) = self.cache.get(code) {
            return i as usize;
        }
        let unknown;
        let presentation = match self.presentations.get(code) {
            Some(p) => p,
            None => {
                unknown = Presentation::named(code, "");
                &unknown
            }
        };
        let mut lists = CodeLists::default();
        for (slot, m) in self.measures.iter().enumerate() {
            for (numerator, side) in [(true, &m.numerator), (false, &m.denominator)] {
                let Some(amount) = Amount::of(&side.quantity) else { continue };
                if !side.selects_in(presentation, self.month) {
                    continue;
                }
                if side.uses_quantity_split() {
                    let bounds: Vec<Bounds> =
                        side.quantity_per_item.iter().filter(|r| r.covers(code)).map(|r| r.bounds.clone()).collect();
                    if !bounds.is_empty() {
                        let quantity = side.quantity == Quantity::Quantity;
                        lists.split.push(SplitContribution { slot, numerator, quantity, bounds });
                    }
                } else if let Some(factor) = self.library.weight(side, presentation) {
                    let inhalers = side.quantity == Quantity::Inhalers;
                    lists.inhalers |= inhalers;
                    lists.totals.push(Contribution { slot, numerator, amount, factor, inhalers });
                }
            }
        }
        if lists.inhalers {
            lists.smallest_pack = crate::selection::smallest_pack(presentation);
        }
        self.lists.push(lists);
        self.cache.insert(code.to_string(), (self.lists.len() - 1) as u32);
        self.lists.len() - 1
    }

    /// Whether any measure side reads the quantity split of the current code numbered `code`:
    /// the split's other rows (nineteen in twenty nationally) need not be decoded at all.
    pub fn reads_split(&mut self, keys: &RowKeys, code: u32) -> bool {
        let list = self.list_for_id(keys, code);
        !self.lists[list].split.is_empty()
    }

    fn list_for_id(&mut self, keys: &RowKeys, code: u32) -> usize {
        let id = code as usize;
        match self.by_id.get(id) {
            Some(&i) if i != UNRESOLVED => i as usize,
            _ => {
                let i = self.list_for(keys.codes.name(code));
                if self.by_id.len() <= id {
                    self.by_id.resize(id + 1, UNRESOLVED);
                }
                self.by_id[id] = i as u32;
                i
            }
        }
    }
}

/// Sums numerators and denominators per practice for one month.
pub struct MonthAccumulator {
    slots: usize,
    practice_index: FxHashMap<String, usize>,
    /// Practice number (of the [`RowKeys`] in use) → practice position, or a marker.
    practice_by_id: Vec<u32>,
    /// The last practice looked up: stored rows come sorted by practice, so most rows reuse it.
    last_practice: Option<(String, Option<usize>)>,
    numerator: Vec<f64>,
    denominator: Vec<f64>,
    /// Rows whose practice is not a standard GP practice this month (left out).
    pub rows_other_prescribers: u64,
    /// Rows counted.
    pub rows_counted: u64,
    /// Rows in the month's quantity split, counting those skipped because no measure reads their
    /// code: whoever reads the split sets it. Measures that read the split get no values for a
    /// month without one (loaded before it was kept), rather than zeros.
    pub split_rows: u64,
    /// For presentations counted as inhalers: each practice's quantity, and England's items and
    /// quantity (every prescriber's), which decide whether the quantity is doses.
    inhaler_quantity: FxHashMap<(usize, usize), f64>,
    inhaler_england: FxHashMap<usize, (f64, f64)>,
}

impl MonthAccumulator {
    /// An accumulator for the given practices and the index's measures.
    pub fn new(index: &CodeIndex<'_>, practices: &[PracticeMonth]) -> Self {
        let slots = index.measures.len();
        let practice_index = practices.iter().enumerate().map(|(i, p)| (p.code.clone(), i)).collect();
        Self {
            slots,
            practice_index,
            practice_by_id: Vec::new(),
            last_practice: None,
            numerator: vec![0.0; slots * practices.len()],
            denominator: vec![0.0; slots * practices.len()],
            rows_other_prescribers: 0,
            rows_counted: 0,
            split_rows: 0,
            inhaler_quantity: FxHashMap::default(),
            inhaler_england: FxHashMap::default(),
        }
    }

    /// Adds one aggregated prescribing row (BNF code already mapped to the current code).
    pub fn add(&mut self, index: &mut CodeIndex<'_>, practice: &str, bnf_code: &str, amounts: &Amounts) {
        let found = match &self.last_practice {
            Some((code, found)) if code == practice => *found,
            _ => {
                let found = self.practice_index.get(practice).copied();
                self.last_practice = Some((practice.to_string(), found));
                found
            }
        };
        let list = index.list_for(bnf_code);
        self.tally_england(index, list, amounts);
        let Some(p) = found else {
            self.rows_other_prescribers += 1;
            return;
        };
        self.count(index, p, list, amounts);
    }

    /// Adds one row given by the numbers of a [`RowKeys`] (the fast path: no string hashing once
    /// a practice and code have been seen).
    pub fn add_keyed(
        &mut self,
        index: &mut CodeIndex<'_>,
        keys: &RowKeys,
        practice: u32,
        code: u32,
        amounts: &Amounts,
    ) {
        let list = index.list_for_id(keys, code);
        self.tally_england(index, list, amounts);
        let Some(slot) = self.practice_slot(keys, practice) else {
            self.rows_other_prescribers += 1;
            return;
        };
        self.count(index, slot, list, amounts);
    }

    /// Adds one row of the EPD's quantity split (items prescribed at one quantity per item) for
    /// the sides that read it.
    pub fn add_split_keyed(
        &mut self,
        index: &mut CodeIndex<'_>,
        keys: &RowKeys,
        practice: u32,
        code: u32,
        quantity_per_item: f64,
        items: i64,
    ) {
        let Some(p) = self.practice_slot(keys, practice) else { return };
        let list = index.list_for_id(keys, code);
        for c in &index.lists[list].split {
            if !c.bounds.iter().any(|b| b.hold(quantity_per_item)) {
                continue;
            }
            let v = if c.quantity { quantity_per_item * items as f64 } else { items as f64 };
            add_to(&mut self.numerator, &mut self.denominator, c.numerator, p * self.slots + c.slot, v);
        }
    }

    /// Numerators and denominators with inhaler counts added: each practice's quantity of a
    /// presentation, divided by its smallest pack when England's quantity per item for it this
    /// month is over 9. A presentation that needs dividing but has no pack size is not counted.
    fn with_inhalers(&self, index: &CodeIndex<'_>) -> (Vec<f64>, Vec<f64>) {
        let (mut num, mut den) = (self.numerator.clone(), self.denominator.clone());
        for (&(p, list), &quantity) in &self.inhaler_quantity {
            let lists = &index.lists[list];
            let (items, total) = self.inhaler_england.get(&list).copied().unwrap_or_default();
            let per_item = if items > 0.0 { total / items } else { 0.0 };
            let divisor = if per_item > DOSES_NOT_INHALERS { lists.smallest_pack } else { Some(1.0) };
            let Some(divisor) = divisor else { continue };
            for c in lists.totals.iter().filter(|c| c.inhalers) {
                add_to(&mut num, &mut den, c.numerator, p * self.slots + c.slot, quantity / divisor * c.factor);
            }
        }
        (num, den)
    }

    /// The practice's position, or `None` when it is not a standard practice this month.
    fn practice_slot(&mut self, keys: &RowKeys, practice: u32) -> Option<usize> {
        let id = practice as usize;
        let slot = match self.practice_by_id.get(id) {
            Some(&s) if s != UNRESOLVED => s,
            _ => {
                let s = self.practice_index.get(keys.practices.name(practice)).map_or(NOT_COUNTED, |&p| p as u32);
                if self.practice_by_id.len() <= id {
                    self.practice_by_id.resize(id + 1, UNRESOLVED);
                }
                self.practice_by_id[id] = s;
                s
            }
        };
        (slot != NOT_COUNTED).then_some(slot as usize)
    }

    /// England's items and quantity of a presentation counted as inhalers, from every prescriber.
    fn tally_england(&mut self, index: &CodeIndex<'_>, list: usize, amounts: &Amounts) {
        if index.lists[list].inhalers {
            let e = self.inhaler_england.entry(list).or_default();
            e.0 += amounts.items as f64;
            e.1 += amounts.quantity;
        }
    }

    fn count(&mut self, index: &CodeIndex<'_>, p: usize, list: usize, amounts: &Amounts) {
        self.rows_counted += 1;
        if index.lists[list].inhalers {
            *self.inhaler_quantity.entry((p, list)).or_default() += amounts.quantity;
        }
        for c in &index.lists[list].totals {
            if c.inhalers {
                continue;
            }
            let v = c.amount.pick(amounts) * c.factor;
            add_to(&mut self.numerator, &mut self.denominator, c.numerator, p * self.slots + c.slot, v);
        }
    }
}

/// Adds `v` to a practice × measure cell of the numerators or the denominators.
fn add_to(numerator: &mut [f64], denominator: &mut [f64], to_numerator: bool, cell: usize, v: f64) {
    if to_numerator {
        numerator[cell] += v;
    } else {
        denominator[cell] += v;
    }
}

/// One organisation's value for one measure and month.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasureValue {
    /// Measure id.
    pub measure: String,
    /// Month.
    pub month: YearMonth,
    /// `practice`, `pcn`, `sicbl`, `icb`, `region`, `england` or `group:<set>`.
    pub org_type: String,
    /// ODS code (or group code; `ENG` for England).
    pub org_code: String,
    /// Numerator.
    pub numerator: f64,
    /// Denominator as summed (patients for list-size measures).
    pub denominator: f64,
    /// numerator × multiplier / denominator.
    pub value: Option<f64>,
    /// Percentile rank among the level's organisations, 0–100.
    pub percentile: Option<f64>,
    /// Cost saving at the median (cost-based measures).
    pub saving_50: Option<f64>,
    /// Cost saving at the 10th percentile (cost-based measures).
    pub saving_10: Option<f64>,
}

/// A level's deciles for one measure and month.
#[derive(Clone, Debug, PartialEq)]
pub struct DecileRow {
    /// Measure id.
    pub measure: String,
    /// Month.
    pub month: YearMonth,
    /// Level.
    pub org_type: String,
    /// 10, 20, …, 90.
    pub percentile: u8,
    /// The value at that percentile.
    pub value: f64,
}

/// Everything computed for one month.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MonthResults {
    /// Values for every organisation.
    pub values: Vec<MeasureValue>,
    /// Deciles per level.
    pub deciles: Vec<DecileRow>,
}

/// Computes every measure in `index` for every organisation level and custom group.
pub fn compute_month(
    index: &CodeIndex<'_>,
    acc: &MonthAccumulator,
    month: YearMonth,
    practices: &[PracticeMonth],
    groups: &[GroupSet],
) -> MonthResults {
    let levels = level_members(practices, groups);
    let adjusted = (!acc.inhaler_quantity.is_empty()).then(|| acc.with_inhalers(index));
    let (numerators, denominators) = match &adjusted {
        Some((n, d)) => (n.as_slice(), d.as_slice()),
        None => (acc.numerator.as_slice(), acc.denominator.as_slice()),
    };
    let mut results = MonthResults::default();
    for (slot, m) in index.measures.iter().enumerate() {
        if acc.split_rows == 0 && (m.numerator.uses_quantity_split() || m.denominator.uses_quantity_split()) {
            continue;
        }
        let multiplier = m.multiplier();
        // Practice numerators and denominators, and whether each practice counts.
        let mut num = Vec::with_capacity(practices.len());
        let mut den = Vec::with_capacity(practices.len());
        let mut counts = Vec::with_capacity(practices.len());
        for (pi, p) in practices.iter().enumerate() {
            let n = numerators[pi * acc.slots + slot];
            let (d, ok) = match &m.denominator.quantity {
                Quantity::ListSize => (p.list_size.unwrap_or(0.0), p.list_size.is_some()),
                Quantity::StarPuOralAntibacterial => (p.star_pu.unwrap_or(0.0), p.star_pu.is_some()),
                Quantity::Patients { bands, .. } => match &p.age_bands {
                    Some(counts) => (bands.iter().map(|&b| counts[b]).sum(), true),
                    None => (0.0, false),
                },
                _ => (denominators[pi * acc.slots + slot], true),
            };
            num.push(n);
            den.push(d);
            counts.push(ok);
        }
        let mut practice_savings: Option<(f64, f64)> = None;
        for level in &levels {
            let mut onum = vec![0.0; level.codes.len()];
            let mut oden = vec![0.0; level.codes.len()];
            let mut present = vec![false; level.codes.len()];
            for (pi, orgs) in level.of_practice.iter().enumerate() {
                for &o in orgs {
                    present[o] = true;
                    if counts[pi] {
                        onum[o] += num[pi];
                        oden[o] += den[pi];
                    }
                }
            }
            let values: Vec<Option<f64>> = (0..level.codes.len())
                .map(|o| (oden[o] != 0.0).then(|| onum[o] * multiplier / oden[o]).filter(|v| v.is_finite()))
                .collect();
            let is_england = level.org_type == "england";
            let ranks = if is_england { vec![None; values.len()] } else { percent_ranks(&values) };
            let level_deciles = if is_england { Vec::new() } else { deciles(&values) };
            for (i, d) in level_deciles.iter().enumerate() {
                results.deciles.push(DecileRow {
                    measure: m.id.clone(),
                    month,
                    org_type: level.org_type.clone(),
                    percentile: ipmo_stats::percentile::DECILES[i],
                    value: *d,
                });
            }
            let saving_at = |o: usize, decile: usize| -> Option<f64> {
                let d = level_deciles.get(decile)?;
                values[o]?;
                Some(onum[o] - d * oden[o] / multiplier)
            };
            let mut positive = (0.0, 0.0);
            for o in 0..level.codes.len() {
                if !present[o] {
                    continue;
                }
                let (s50, s10) = if !m.is_cost_based {
                    (None, None)
                } else if is_england {
                    practice_savings.map_or((None, None), |(a, b)| (Some(a), Some(b)))
                } else {
                    (saving_at(o, 4), saving_at(o, 0))
                };
                if level.org_type == "practice" {
                    positive.0 += s50.unwrap_or(0.0).max(0.0);
                    positive.1 += s10.unwrap_or(0.0).max(0.0);
                }
                results.values.push(MeasureValue {
                    measure: m.id.clone(),
                    month,
                    org_type: level.org_type.clone(),
                    org_code: level.codes[o].clone(),
                    numerator: onum[o],
                    denominator: oden[o],
                    value: values[o],
                    percentile: ranks[o],
                    saving_50: s50,
                    saving_10: s10,
                });
            }
            if level.org_type == "practice" && m.is_cost_based {
                practice_savings = Some(positive);
            }
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::parse;
    use std::path::Path;

    fn library(defs: &[(&str, &str)]) -> Library {
        let measures = defs
            .iter()
            .map(|(id, text)| parse(Path::new(&format!("{id}.toml")), text, &[], "h".into()).unwrap())
            .collect();
        Library { measures, ..Default::default() }
    }

    const HEAD: &str = r#"title = "t"
description = "d"
why_it_matters = "w"
tags = ["safety"]
direction = "lower_is_better"
source = "s"
version = 1
authored = "2026-01-01"
reviewed = "2026-01-01"
status = "live"
"#;

    fn practice(code: &str, pcn: &str, icb: &str, list: Option<f64>) -> PracticeMonth {
        PracticeMonth {
            code: code.into(),
            pcn: Some(pcn.into()),
            sicbl: format!("{icb}S"),
            icb: icb.into(),
            region: "Y60".into(),
            list_size: list,
            star_pu: None,
            age_bands: None,
        }
    }

    fn items(n: i64) -> Amounts {
        Amounts { items: n, ..Default::default() }
    }

    #[test]
    fn percentages_percentiles_and_levels_by_hand() {
        let mtx = format!(
            "id = \"mtx\"\n{HEAD}is_percentage = true\n[numerator]\nvalue = \"items\"\ncodes = [\"1001030U0%AC\"]\n[denominator]\nvalue = \"items\"\ncodes = [\"1001030U0\"]\n"
        );
        let lib = library(&[("mtx", &mtx)]);
        let mut index = CodeIndex::new(&lib, FxHashMap::default());
        let practices = vec![
            practice("A1", "P1", "QAA", Some(1000.0)),
            practice("A2", "P1", "QAA", Some(1000.0)),
            practice("A3", "P2", "QBB", Some(1000.0)),
        ];
        let mut acc = MonthAccumulator::new(&index, &practices);
        // A1: 1 of 4 items are 10 mg (25%); A2: 3 of 4 (75%); A3: 0 of 2 (0%).
        acc.add(&mut index, "A1", "1001030U0AAACAC", &items(1));
        acc.add(&mut index, "A1", "1001030U0AAABAB", &items(3));
        acc.add(&mut index, "A2", "1001030U0AAACAC", &items(3));
        acc.add(&mut index, "A2", "1001030U0AAABAB", &items(1));
        acc.add(&mut index, "A3", "1001030U0AAABAB", &items(2));
        acc.add(&mut index, "Y99998", "1001030U0AAACAC", &items(50)); // not a standard practice
        acc.add(&mut index, "A3", "0501013B0AAABAB", &items(9)); // not in the measure
        assert_eq!((acc.rows_counted, acc.rows_other_prescribers), (6, 1));
        let month = YearMonth::new(2025, 1).unwrap();
        let r = compute_month(&index, &acc, month, &practices, &[]);
        let get = |t: &str, c: &str| r.values.iter().find(|v| v.org_type == t && v.org_code == c).unwrap().clone();
        assert_eq!(get("practice", "A1").value, Some(25.0));
        assert_eq!(get("practice", "A2").percentile, Some(100.0));
        assert_eq!(get("practice", "A1").percentile, Some(50.0));
        assert_eq!(get("practice", "A3").percentile, Some(0.0));
        // P1 = (1 + 3) / (4 + 4) = 50%; P2 = 0%.
        assert_eq!(get("pcn", "P1").value, Some(50.0));
        assert_eq!(get("pcn", "P1").percentile, Some(100.0));
        assert_eq!(get("england", ENGLAND).value, Some(40.0)); // 4 of 10
        assert_eq!(get("england", ENGLAND).percentile, None);
        // Practice deciles over 0, 25, 75: 10th = 0 + 0.2 × 25 = 5; 50th = 25.
        let dec = |t: &str, p: u8| r.deciles.iter().find(|d| d.org_type == t && d.percentile == p).unwrap().value;
        assert!((dec("practice", 10) - 5.0).abs() < 1e-12);
        assert_eq!(dec("practice", 50), 25.0);
        assert!(r.deciles.iter().all(|d| d.org_type != "england"));
    }

    #[test]
    fn cost_per_thousand_patients_and_savings_by_hand() {
        let lp = format!(
            "id = \"lp\"\n{HEAD}is_percentage = false\nis_cost_based = true\n[numerator]\nvalue = \"actual_cost\"\ncodes = [\"0602010M0\"]\n[denominator]\nvalue = \"list_size\"\n"
        );
        let lib = library(&[("lp", &lp)]);
        let mut index = CodeIndex::new(&lib, FxHashMap::default());
        let practices = vec![
            practice("A1", "P1", "QAA", Some(2000.0)),
            practice("A2", "P1", "QAA", Some(1000.0)),
            practice("A3", "P2", "QAA", Some(1000.0)),
            practice("A4", "P2", "QAA", None),
        ];
        let mut acc = MonthAccumulator::new(&index, &practices);
        let cost = |pounds: i64| Amounts { items: 1, actual_cost_e5: pounds * 100_000, ..Default::default() };
        acc.add(&mut index, "A1", "0602010M0AAAAAA", &cost(200)); // £100 per 1,000
        acc.add(&mut index, "A2", "0602010M0AAAAAA", &cost(10)); // £10 per 1,000
        acc.add(&mut index, "A3", "0602010M0AAAAAA", &cost(50)); // £50 per 1,000
        acc.add(&mut index, "A4", "0602010M0AAAAAA", &cost(999)); // no list size: left out
        let r = compute_month(&index, &acc, YearMonth::new(2025, 1).unwrap(), &practices, &[]);
        let get = |t: &str, c: &str| r.values.iter().find(|v| v.org_type == t && v.org_code == c).unwrap().clone();
        let a1 = get("practice", "A1");
        assert_eq!(a1.value, Some(100.0));
        // Practice values 10, 50, 100: median 50, 10th = 10 + 0.2 × 40 = 18.
        // A1 saving at median = 200 − 50 × 2000 / 1000 = 100; at 10th = 200 − 18 × 2 = 164.
        assert!((a1.saving_50.unwrap() - 100.0).abs() < 1e-9);
        assert!((a1.saving_10.unwrap() - 164.0).abs() < 1e-9);
        assert_eq!(get("practice", "A4").value, None);
        // ICB: (200 + 10 + 50) / 4,000 patients = £65 per 1,000; A4 excluded from both sides.
        let icb = get("icb", "QAA");
        assert_eq!((icb.numerator, icb.denominator, icb.value), (260.0, 4000.0, Some(65.0)));
        // England: sum of positive practice savings at the median: A1 100 + A3 0 (A2 is −40).
        assert!((get("england", ENGLAND).saving_50.unwrap() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn custom_groups_sum_their_members() {
        let lib = library(&[(
            "all",
            &format!(
                "id = \"all\"\n{HEAD}is_percentage = false\n[numerator]\nvalue = \"items\"\ncodes = [\"05\"]\n[denominator]\nvalue = \"list_size\"\n"
            ),
        )]);
        let mut index = CodeIndex::new(&lib, FxHashMap::default());
        let practices = vec![
            practice("A1", "P1", "QAA", Some(1000.0)),
            practice("A2", "P2", "QBB", Some(1000.0)),
            practice("A3", "P3", "QCC", Some(500.0)),
        ];
        let mut acc = MonthAccumulator::new(&index, &practices);
        for (p, n) in [("A1", 10), ("A2", 20), ("A3", 40)] {
            acc.add(&mut index, p, "0501013B0AAABAB", &items(n));
        }
        let groups = vec![GroupSet {
            id: "peers".into(),
            name: "Peers".into(),
            groups: vec![
                Group { code: "north".into(), name: "North".into(), members: vec!["QAA".into(), "QBB".into()] },
                Group { code: "one".into(), name: "One".into(), members: vec!["A3".into()] },
            ],
        }];
        let r = compute_month(&index, &acc, YearMonth::new(2025, 1).unwrap(), &practices, &groups);
        let north = r.values.iter().find(|v| v.org_type == "group:peers" && v.org_code == "north").unwrap();
        assert_eq!(north.value, Some(15.0)); // 30 items per 2,000 patients
        assert_eq!(north.percentile, Some(0.0));
    }

    #[test]
    fn quantity_per_item_shares_by_hand() {
        let amox = format!(
            "id = \"amox\"\n{HEAD}is_percentage = true\n[numerator]\nvalue = \"items\"\ncodes = [\"0501013B0%AB\"]\n[[numerator.quantity_per_item]]\nabove = 15\n[denominator]\nvalue = \"items\"\ncodes = [\"0501013B0%AB\"]\n"
        );
        let lib = library(&[("amox", &amox)]);
        let mut index = CodeIndex::new(&lib, FxHashMap::default());
        let practices = vec![practice("A1", "P1", "QAA", Some(1000.0)), practice("A2", "P1", "QAA", Some(1000.0))];
        let mut acc = MonthAccumulator::new(&index, &practices);
        let mut keys = RowKeys::default();
        let (a1, a2, other) = (keys.practices.id("A1"), keys.practices.id("A2"), keys.practices.id("Y99998"));
        let (cap, brand, susp) =
            (keys.codes.id("0501013B0AAABAB"), keys.codes.id("0501013B0BBABAB"), keys.codes.id("0501013B0AAAAAA"));
        // The monthly totals give the denominator: A1 10 items, A2 4.
        acc.add_keyed(&mut index, &keys, a1, cap, &items(8));
        acc.add_keyed(&mut index, &keys, a1, brand, &items(2));
        acc.add_keyed(&mut index, &keys, a2, cap, &items(4));
        acc.add_keyed(&mut index, &keys, a1, susp, &items(7)); // another strength: in neither side
        // The split gives the numerator: only rows over 15 capsules count.
        acc.add_split_keyed(&mut index, &keys, a1, cap, 15.0, 6);
        acc.add_split_keyed(&mut index, &keys, a1, cap, 21.0, 2);
        acc.add_split_keyed(&mut index, &keys, a1, brand, 30.0, 1);
        acc.add_split_keyed(&mut index, &keys, a1, brand, 15.0, 1);
        acc.add_split_keyed(&mut index, &keys, a2, cap, 15.0, 4);
        acc.add_split_keyed(&mut index, &keys, other, cap, 100.0, 9); // not a standard practice
        acc.add_split_keyed(&mut index, &keys, a1, susp, 100.0, 7);
        acc.split_rows = 7;
        // Only the codes a rule covers need their split read.
        assert!(index.reads_split(&keys, cap) && index.reads_split(&keys, brand));
        assert!(!index.reads_split(&keys, susp));
        let r = compute_month(&index, &acc, YearMonth::new(2025, 1).unwrap(), &practices, &[]);
        let get = |t: &str, c: &str| r.values.iter().find(|v| v.org_type == t && v.org_code == c).unwrap().clone();
        // A1: (2 + 1) of 10 items over 15 capsules = 30%; A2: 0 of 4.
        assert_eq!((get("practice", "A1").numerator, get("practice", "A1").denominator), (3.0, 10.0));
        assert_eq!(get("practice", "A1").value, Some(30.0));
        assert_eq!(get("practice", "A2").value, Some(0.0));
        assert_eq!(get("pcn", "P1").value, Some(3.0 * 100.0 / 14.0));
        // A month without the split gives no values for the measure rather than zeros.
        let mut acc = MonthAccumulator::new(&index, &practices);
        acc.add_keyed(&mut index, &keys, a1, cap, &items(8));
        let r = compute_month(&index, &acc, YearMonth::new(2025, 2).unwrap(), &practices, &[]);
        assert!(r.values.is_empty());
    }

    #[test]
    fn ingredient_amounts_and_dmd_rules_by_hand() {
        use crate::selection::{Ingredient, Product};
        let mg = format!(
            "id = \"mg\"\n{HEAD}is_percentage = false\n[numerator]\nvalue = \"ingredient_amount\"\namount_unit = \"mg\"\ncodes = [\"0408010AE\"]\n[[numerator.products]]\ningredient = [\"pregabalin\"]\n[denominator]\nvalue = \"list_size\"\n"
        );
        let lib = library(&[("mg", &mg)]);
        let product = |strength: f64, unit: &str| Product {
            id: "1".into(),
            vmp_id: "1".into(),
            name: "Pregabalin capsules".into(),
            vmp_name: "Pregabalin capsules".into(),
            vtm: Some("Pregabalin".into()),
            form_routes: vec!["capsule.oral".into()],
            ingredients: vec![Ingredient {
                name: "Pregabalin".into(),
                strength: Some((strength, unit.into())),
                per: None,
            }],
            ..Default::default()
        };
        let mut presentations = FxHashMap::default();
        for (code, p) in [("0408010AEAAAAAA", product(75.0, "mg")), ("0408010AEAAABAB", product(0.3, "gram"))] {
            presentations
                .insert(code.to_string(), Presentation { code: code.into(), name: String::new(), products: vec![p] });
        }
        let mut index = CodeIndex::new(&lib, presentations);
        assert!(index.skipped().is_empty());
        let practices = vec![practice("A1", "P1", "QAA", Some(2000.0))];
        let mut acc = MonthAccumulator::new(&index, &practices);
        let qty = |q: f64| Amounts { items: 1, quantity: q, ..Default::default() };
        acc.add(&mut index, "A1", "0408010AEAAAAAA", &qty(56.0)); // 56 × 75 mg = 4,200 mg
        acc.add(&mut index, "A1", "0408010AEAAABAB", &qty(28.0)); // 28 × 300 mg = 8,400 mg
        acc.add(&mut index, "A1", "0408010AEAAACAC", &qty(99.0)); // no dm+d product: not counted
        let r = compute_month(&index, &acc, YearMonth::new(2025, 1).unwrap(), &practices, &[]);
        let a1 = r.values.iter().find(|v| v.org_type == "practice").unwrap();
        assert_eq!(a1.numerator, 12_600.0);
        assert_eq!(a1.value, Some(6_300.0)); // mg per 1,000 patients
        // Without any dm+d product the measure is left out, with the reason, not computed as zero.
        let index = CodeIndex::new(&lib, FxHashMap::default());
        assert!(index.measures().is_empty());
        assert!(index.skipped()[0].1.contains("no dm+d release is loaded"));
    }

    #[test]
    fn inhalers_are_counted_as_openprescribing_adjusts_doses() {
        use crate::selection::Product;
        let saba = format!(
            "id = \"saba\"\n{HEAD}is_percentage = true\n[numerator]\nvalue = \"inhalers\"\ncodes = [\"0301011R0\"]\n[denominator]\nvalue = \"inhalers\"\ncodes = [\"0301011R0\", \"0302\"]\n"
        );
        let lib = library(&[("saba", &saba)]);
        let with_pack = |code: &str, pack: f64| Presentation {
            code: code.into(),
            name: String::new(),
            products: vec![Product { min_pack: Some(pack), form_routes: vec!["x".into()], ..Default::default() }],
        };
        let mut presentations = FxHashMap::default();
        for p in [with_pack("0301011R0AAAAAA", 200.0), with_pack("0302000N0AAAAAA", 120.0)] {
            presentations.insert(p.code.clone(), p);
        }
        let mut index = CodeIndex::new(&lib, presentations);
        let practices = vec![practice("A1", "P1", "QAA", Some(1000.0)), practice("A2", "P1", "QAA", Some(1000.0))];
        let mut acc = MonthAccumulator::new(&index, &practices);
        let rx = |items: i64, quantity: f64| Amounts { items, quantity, ..Default::default() };
        // Salbutamol is published in inhalers (1.5 per item nationally): counted as they are.
        acc.add(&mut index, "A1", "0301011R0AAAAAA", &rx(4, 6.0));
        acc.add(&mut index, "A2", "0301011R0AAAAAA", &rx(2, 3.0));
        // The ICS is published in doses (120 per item nationally, another prescriber included):
        // divided by the 120-dose pack.
        acc.add(&mut index, "A1", "0302000N0AAAAAA", &rx(2, 240.0));
        acc.add(&mut index, "A2", "0302000N0AAAAAA", &rx(1, 120.0));
        acc.add(&mut index, "Y99998", "0302000N0AAAAAA", &rx(1, 120.0));
        let r = compute_month(&index, &acc, YearMonth::new(2025, 1).unwrap(), &practices, &[]);
        let get = |c: &str| r.values.iter().find(|v| v.org_type == "practice" && v.org_code == c).unwrap().clone();
        // A1: 6 SABA inhalers of 6 + 2 = 75%; A2: 3 of 3 + 1 = 75%.
        assert_eq!((get("A1").numerator, get("A1").denominator), (6.0, 8.0));
        assert_eq!((get("A2").numerator, get("A2").denominator), (3.0, 4.0));
        // Without a pack size a presentation published in doses cannot be counted, and is not.
        let mut presentations = FxHashMap::default();
        presentations.insert("0301011R0AAAAAA".to_string(), with_pack("0301011R0AAAAAA", 200.0));
        let mut no_pack = with_pack("0302000N0AAAAAA", 0.0);
        no_pack.products[0].min_pack = None;
        presentations.insert(no_pack.code.clone(), no_pack);
        let mut index = CodeIndex::new(&lib, presentations);
        let mut acc = MonthAccumulator::new(&index, &practices);
        acc.add(&mut index, "A1", "0301011R0AAAAAA", &rx(4, 6.0));
        acc.add(&mut index, "A1", "0302000N0AAAAAA", &rx(2, 240.0));
        let r = compute_month(&index, &acc, YearMonth::new(2025, 1).unwrap(), &practices, &[]);
        let a1 = r.values.iter().find(|v| v.org_type == "practice" && v.org_code == "A1").unwrap();
        assert_eq!((a1.numerator, a1.denominator), (6.0, 6.0));
    }

    #[test]
    fn dated_exclusions_follow_the_month() {
        let strips = format!(
            "id = \"strips\"\n{HEAD}is_percentage = true\n[numerator]\nvalue = \"items\"\ncodes = [\"0601060D0\"]\n[[numerator.exclude_during]]\ncodes = [\"0601060D0FGAAA0\"]\nfrom = \"2025-07\"\n[[numerator.exclude_during]]\ncodes = [\"0601060D0CUABA0\"]\nuntil = \"2025-06\"\n[denominator]\nvalue = \"items\"\ncodes = [\"0601060D0\"]\n"
        );
        let lib = library(&[("strips", &strips)]);
        let mut index = CodeIndex::new(&lib, FxHashMap::default());
        let practices = vec![practice("A1", "P1", "QAA", Some(1000.0))];
        let mut keys = RowKeys::default();
        let a1 = keys.practices.id("A1");
        let (added, removed) = (keys.codes.id("0601060D0FGAAA0"), keys.codes.id("0601060D0CUABA0"));
        let mut share = |month: &str| {
            let month: YearMonth = month.parse().unwrap();
            index.set_month(month);
            let mut acc = MonthAccumulator::new(&index, &practices);
            acc.add_keyed(&mut index, &keys, a1, added, &items(3));
            acc.add_keyed(&mut index, &keys, a1, removed, &items(1));
            let r = compute_month(&index, &acc, month, &practices, &[]);
            r.values.iter().find(|v| v.org_type == "practice").unwrap().numerator
        };
        // June 2025: the strip added in July still counts as off the list; the one removed in
        // July is still on it. July: the other way round.
        assert_eq!(share("2025-06"), 3.0);
        assert_eq!(share("2025-07"), 1.0);
        assert_eq!(share("2025-06"), 3.0);
    }
}
