//! What price changes cost each organisation, month and presentation, computed by `ipmo value
//! compute` beside the PPU savings: price concessions (`concession_costs`) and Drug Tariff changes
//! from one month to the next (`price_change_costs`). Both are a price per unit before and after
//! for each presentation in a month, times the units each practice prescribed, summed into every
//! organisation.
//!
//! Each concession (month, pack) is priced against the same pack's Drug Tariff entry for the
//! month (the newest one before it when the month's Tariff is not loaded), traced to its
//! presentation, and the pack with the largest increase per unit stands for the presentation
//! (`ipmo_value::concessions`). Each Tariff month is set against the month before it when both
//! are loaded (`ipmo_value::price_changes`). Quantities are the month's prescribing; a month newer
//! than the newest prescribing takes the newest month's quantities and is marked an estimate.

use crate::load::Txn;
use crate::parquet_io::read_table;
use crate::presentations::Columns;
use crate::prices::months_of;
use crate::tables::Col;
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, StringArray};
use datafusion::arrow::datatypes::Int32Type;
use ipmo_domain::YearMonth;
use ipmo_domain::practice::{GroupSet, PracticeMonth, level_members};
use ipmo_release::price_impacts::PriceImpacts;
use ipmo_value::concessions::{ConcededPack, largest_increases};
use ipmo_value::price_changes::{TariffPack, changes};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;

/// The smallest impact of a Tariff change stored for a single practice, in pence (£1 either
/// way); organisations' sums include every practice.
pub(crate) const MIN_PRACTICE_CHANGE_PENCE: f64 = 100.0;

/// The smallest Tariff change counted, as a share of the old price per unit paid (1%).
pub(crate) const MIN_PRICE_CHANGE: f64 = 0.01;

/// One presentation whose price changed in a month: the pack standing for it and its prices per
/// unit paid before and after.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PricedCode {
    pub(crate) bnf_code: String,
    pub(crate) pack: String,
    /// The pack in words: the concession's ("Omeprazole 10mg gastro-resistant tablets 28"), or
    /// the Tariff's medicine and pack size.
    pub(crate) pack_name: String,
    pub(crate) before: f64,
    pub(crate) after: f64,
}

/// A pack's Drug Tariff entry in one month.
#[derive(Clone, Debug)]
struct TariffEntry {
    price_pence: f64,
    pack_size: f64,
    category: Option<char>,
    /// The medicine and pack size in words ("Lofepramine 70mg tablets 56").
    name: String,
}

/// The concessions of every month, as `ipmo value compute` uses them.
pub(crate) struct Conceded {
    /// Priced against the Tariff: what they cost.
    pub(crate) priced: PricedMonths,
    /// Every presentation with a conceded pack that month, priced or not.
    pub(crate) codes: FxHashSet<(YearMonth, String)>,
}

/// Every month's changed presentations of one kind, and what could not be priced.
#[derive(Clone, Debug, Default)]
pub(crate) struct PricedMonths {
    pub(crate) by_month: BTreeMap<YearMonth, Vec<PricedCode>>,
    /// Concessions whose pack has no Tariff price on or before the month, or no presentation.
    pub(crate) unpriced: usize,
}

impl PricedMonths {
    /// The presentations whose quantities month `month` of prescribing must give: its own
    /// changes, and for the newest month those of every later month.
    pub(crate) fn codes_needed(&self, month: YearMonth, newest: YearMonth) -> FxHashSet<String> {
        self.standing_for(month, newest).flat_map(|(_, codes)| codes.iter().map(|c| c.bnf_code.clone())).collect()
    }

    /// The months a prescribing month's quantities stand for: itself, and for the newest month
    /// every later one (estimates).
    pub(crate) fn months_for(&self, month: YearMonth, newest: YearMonth) -> Vec<(YearMonth, bool)> {
        self.standing_for(month, newest).map(|(m, _)| (*m, *m != month)).collect()
    }

    fn standing_for(
        &self,
        month: YearMonth,
        newest: YearMonth,
    ) -> std::collections::btree_map::Range<'_, YearMonth, Vec<PricedCode>> {
        if month == newest { self.by_month.range(month..) } else { self.by_month.range(month..=month) }
    }
}

impl Warehouse {
    /// The Drug Tariff by pack and the links from packs to presentations, read once for every
    /// price computation of `ipmo value compute`.
    pub(crate) fn price_data(&self) -> Result<PriceData, WarehouseError> {
        Ok(PriceData { packs: self.pack_codes()?, tariff: self.tariff_by_pack()? })
    }

    /// Every pack's Tariff entry by month, and each pack's VMP as the Tariff gives it.
    fn tariff_by_pack(&self) -> Result<TariffByPack, WarehouseError> {
        let manifest = self.manifest()?;
        let read = |t: &str| read_table(self.root(), &manifest, t);
        // Tariff entries by pack: month → (price, pack size, category).
        let mut tariff: FxHashMap<String, BTreeMap<YearMonth, TariffEntry>> = FxHashMap::default();
        let mut vmp_of_pack: FxHashMap<String, String> = FxHashMap::default();
        for b in read("tariff")? {
            let months = months_of(&b)?;
            let c = Columns { batch: &b };
            let (pack, vmp, category, size) =
                (c.text("vmpp")?, c.text("vmp")?, c.text("category")?, c.number("pack_size")?);
            let medicine = c.text("medicine")?;
            let price = c.integer("price_pence")?;
            for (i, month) in months.into_iter().enumerate() {
                let Some(pack) = pack(i) else { continue };
                if let Some(vmp) = vmp(i) {
                    vmp_of_pack.insert(pack.to_string(), vmp.to_string());
                }
                let entry = TariffEntry {
                    price_pence: price(i).unwrap_or(0) as f64,
                    pack_size: size(i).unwrap_or(0.0),
                    category: category(i).and_then(|c| c.chars().next()),
                    name: format!("{} {}", medicine(i).unwrap_or_default(), size(i).unwrap_or(0.0)),
                };
                tariff.entry(pack.to_string()).or_default().insert(month, entry);
            }
        }
        Ok(TariffByPack { tariff, vmp_of_pack })
    }

    /// Every concession priced against the Tariff and traced to its presentation, read once for
    /// both its uses: costing, and the PPU discount (a conceded presentation is not discounted).
    pub(crate) fn conceded(&self, data: &PriceData) -> Result<Conceded, WarehouseError> {
        let manifest = self.manifest()?;
        let read = |t: &str| read_table(self.root(), &manifest, t);
        let tariff = &data.tariff.tariff;
        let mut packs_by_month: BTreeMap<YearMonth, Vec<ConcededPack>> = BTreeMap::new();
        let mut pack_names: FxHashMap<(YearMonth, String), String> = FxHashMap::default();
        let mut unpriced = 0;
        let mut codes: FxHashSet<(YearMonth, String)> = FxHashSet::default();
        for b in read("concessions")? {
            let months = months_of(&b)?;
            let c = Columns { batch: &b };
            let (pack, drug, size) = (c.text("vmpp")?, c.text("drug")?, c.text("pack_size")?);
            let price = c.integer("price_pence")?;
            for (i, month) in months.into_iter().enumerate() {
                let Some(pack) = pack(i).filter(|p| !p.is_empty()) else {
                    unpriced += 1;
                    continue;
                };
                // The month's Tariff, or the newest before it.
                let entry = tariff.get(pack).and_then(|t| t.range(..=month).next_back()).map(|(_, e)| e);
                let code = data.code_of_pack(pack);
                if let Some(code) = code {
                    codes.insert((month, code.to_string()));
                }
                let (Some(&TariffEntry { price_pence: tariff_pence, pack_size, category, .. }), Some(code)) =
                    (entry, code)
                else {
                    unpriced += 1;
                    continue;
                };
                let words = format!("{} {}", drug(i).unwrap_or_default(), size(i).unwrap_or_default());
                pack_names.insert((month, pack.to_string()), words.trim().to_string());
                packs_by_month.entry(month).or_default().push(ConcededPack {
                    bnf_code: code.to_string(),
                    pack: pack.to_string(),
                    pack_size,
                    category,
                    tariff_pence,
                    concession_pence: price(i).unwrap_or(0) as f64,
                });
            }
        }
        let by_month = packs_by_month
            .into_iter()
            .map(|(month, packs)| {
                let best = largest_increases(month, &packs)
                    .into_iter()
                    .filter(|(_, prices)| prices.increase() > 0.0)
                    .map(|(p, prices)| PricedCode {
                        bnf_code: p.bnf_code.clone(),
                        pack: p.pack.clone(),
                        pack_name: pack_names.get(&(month, p.pack.clone())).cloned().unwrap_or_default(),
                        before: prices.tariff,
                        after: prices.concession,
                    })
                    .collect();
                (month, best)
            })
            .collect();
        Ok(Conceded { priced: PricedMonths { by_month, unpriced }, codes })
    }
}

impl PriceData {
    /// The presentations eligible for the ghost-branded generics inference in each Tariff
    /// month: generic codes whose packs all cost the same per unit, less the ignore list.
    pub(crate) fn gbg_eligible(&self) -> FxHashMap<YearMonth, FxHashSet<String>> {
        let tariff = &self.tariff.tariff;
        let ignored: FxHashSet<&str> = ipmo_value::gbg::ignored().into_iter().map(|(code, _)| code).collect();
        let mut by_code: FxHashMap<(YearMonth, String), Vec<(f64, f64)>> = FxHashMap::default();
        for (pack, months) in tariff {
            let Some(code) = self.code_of_pack(pack) else { continue };
            if !ipmo_value::substitution::is_generic_code(code) || ignored.contains(code) {
                continue;
            }
            for (month, entry) in months {
                by_code.entry((*month, code.to_string())).or_default().push((entry.price_pence, entry.pack_size));
            }
        }
        let mut out: FxHashMap<YearMonth, FxHashSet<String>> = FxHashMap::default();
        for ((month, code), packs) in by_code {
            if ipmo_value::gbg::constant_unit_price(&packs) {
                out.entry(month).or_default().insert(code);
            }
        }
        out
    }

    /// Every Tariff month set against the month before it (when both are loaded): the
    /// presentations whose price per unit paid moved by more than [`MIN_PRICE_CHANGE`].
    pub(crate) fn tariff_changes(&self) -> PricedMonths {
        let tariff = &self.tariff.tariff;
        let mut by_month: BTreeMap<YearMonth, Vec<TariffPack>> = BTreeMap::new();
        let mut names: FxHashMap<String, String> = FxHashMap::default();
        for (pack, months) in tariff {
            let Some(code) = self.code_of_pack(pack) else { continue };
            for (month, entry) in months {
                names.entry(pack.clone()).or_insert_with(|| entry.name.clone());
                by_month.entry(*month).or_default().push(TariffPack {
                    bnf_code: code.to_string(),
                    pack: pack.clone(),
                    pack_size: entry.pack_size,
                    category: entry.category,
                    price_pence: entry.price_pence,
                });
            }
        }
        let mut out = PricedMonths::default();
        for (month, current) in &by_month {
            let Some(previous) = by_month.get(&month.minus(1)) else { continue };
            let found = changes((month.minus(1), previous), (*month, current), MIN_PRICE_CHANGE);
            let priced = found
                .into_iter()
                .map(|c| PricedCode {
                    pack_name: names.get(&c.pack).cloned().unwrap_or_default(),
                    bnf_code: c.bnf_code,
                    pack: c.pack,
                    before: c.before,
                    after: c.after,
                })
                .collect();
            out.by_month.insert(*month, priced);
        }
        out
    }
}

/// The Drug Tariff by pack: month → entry, and each pack's VMP.
pub(crate) struct TariffByPack {
    tariff: FxHashMap<String, BTreeMap<YearMonth, TariffEntry>>,
    vmp_of_pack: FxHashMap<String, String>,
}

/// The Tariff and the pack links, as [`Warehouse::price_data`] reads them once.
pub(crate) struct PriceData {
    packs: crate::prices::PackCodes,
    tariff: TariffByPack,
}

impl PriceData {
    /// Each presentation's Tariff category letters by month, as `(month, current code,
    /// category)` for every pack traced to a code `keep` accepts.
    pub(crate) fn categories(&self, keep: impl Fn(&str) -> bool) -> Vec<(YearMonth, &str, Option<char>)> {
        let mut out = Vec::new();
        for (pack, months) in &self.tariff.tariff {
            let Some(code) = self.code_of_pack(pack).filter(|c| keep(c)) else { continue };
            out.extend(months.iter().map(|(month, entry)| (*month, code, entry.category)));
        }
        out
    }

    /// The current BNF code of a pack (a Tariff or concession VMPP), traced through its VMP.
    pub(crate) fn code_of_pack(&self, pack: &str) -> Option<&str> {
        self.packs.code(pack, self.tariff.vmp_of_pack.get(pack).map(String::as_str))
    }
}

/// Writes one month's costs into `table` (`concession_costs` or `price_change_costs`): every
/// practice that prescribed a changed presentation in `quantity_month`, and every organisation
/// they count towards. Returns the rows written.
pub(crate) fn store_month(
    txn: &mut Txn<'_>,
    table: &str,
    (month, quantity_month, estimate): (YearMonth, YearMonth, bool),
    codes: &[PricedCode],
    quantities: &FxHashMap<String, Vec<(usize, f64)>>,
    practices: &[PracticeMonth],
    groups: &[GroupSet],
) -> Result<u64, WarehouseError> {
    let levels = level_members(practices, groups);
    let practice_floor = if table == "price_change_costs" { MIN_PRACTICE_CHANGE_PENCE } else { 0.0 };
    let mut rows = CostColumns::default();
    for code in codes {
        // Per level, per organisation: quantity.
        let mut sums: Vec<Vec<f64>> = levels.iter().map(|l| vec![0.0; l.codes.len()]).collect();
        let Some(by_practice) = quantities.get(&code.bnf_code) else { continue };
        for &(p, q) in by_practice {
            for (li, level) in levels.iter().enumerate() {
                for &org in level.of_practice.get(p).map_or(&[][..], Vec::as_slice) {
                    sums[li][org] += q;
                }
            }
        }
        for (li, level) in levels.iter().enumerate() {
            // Every organisation's sum counts every practice; practice rows themselves are kept
            // from `practice_floor` (a Tariff change touches most practices by pennies).
            let floor = if level.org_type == "practice" { practice_floor } else { 0.0 };
            for (oi, &quantity) in sums[li].iter().enumerate() {
                if quantity != 0.0 && (quantity * (code.after - code.before)).abs() >= floor {
                    rows.push(code, &level.org_type, &level.codes[oi], quantity);
                }
            }
        }
    }
    let n = rows.len();
    let cols = rows.into_columns(month, quantity_month, estimate);
    txn.write_partition(table, &month.to_string(), cols)?;
    Ok(n as u64)
}

#[derive(Default)]
struct CostColumns {
    code: Vec<Option<String>>,
    pack: Vec<Option<String>>,
    pack_name: Vec<Option<String>>,
    org_type: Vec<Option<String>>,
    org_code: Vec<Option<String>>,
    quantity: Vec<f64>,
    before: Vec<f64>,
    after: Vec<f64>,
}

impl CostColumns {
    fn push(&mut self, code: &PricedCode, org_type: &str, org_code: &str, quantity: f64) {
        self.code.push(Some(code.bnf_code.clone()));
        self.pack.push(Some(code.pack.clone()));
        self.pack_name.push(Some(code.pack_name.clone()));
        self.org_type.push(Some(org_type.to_string()));
        self.org_code.push(Some(org_code.to_string()));
        self.quantity.push(quantity);
        self.before.push(code.before);
        self.after.push(code.after);
    }

    fn len(&self) -> usize {
        self.code.len()
    }

    fn into_columns(self, month: YearMonth, quantity_month: YearMonth, estimate: bool) -> Vec<Col> {
        let n = self.code.len();
        let extra: Vec<f64> =
            self.quantity.iter().zip(self.before.iter().zip(&self.after)).map(|(q, (b, a))| q * (a - b)).collect();
        vec![
            Col::Date(vec![Some(month.days_since_epoch()); n]),
            Col::Str(self.code),
            Col::Str(self.pack),
            Col::Str(self.pack_name),
            Col::Str(self.org_type),
            Col::Str(self.org_code),
            Col::F64(self.quantity),
            Col::F64(self.before),
            Col::F64(self.after),
            Col::F64(extra),
            Col::Date(vec![Some(quantity_month.days_since_epoch()); n]),
            Col::Bool(vec![estimate; n]),
        ]
    }
}

impl Warehouse {
    /// The newest [`ipmo_release::price_impacts::MONTHS_KEPT`] months of `table`
    /// (`concession_costs` or `price_change_costs`) for the dashboard; None before `ipmo value
    /// compute` has run.
    pub fn recent_price_costs(
        &self,
        table: &str,
    ) -> Result<Option<ipmo_release::price_impacts::PriceImpacts>, WarehouseError> {
        use ipmo_release::price_impacts::{ImpactCost, ImpactMonth, MONTHS_KEPT, PricedPack};
        let [before_column, after_column, impact_column] = ipmo_release::price_impacts::cost_columns(table);
        let manifest = self.manifest()?;
        let mut months: Vec<YearMonth> =
            manifest.partitions(table).into_iter().filter_map(|p| p.parse().ok()).collect();
        if months.is_empty() {
            return Ok(None);
        }
        months.sort();
        let mut out = PriceImpacts::default();
        // One shared pack per presentation, pack and prices in a month, found by
        // "code\u{1}pack" without allocating.
        let mut packs: rustc_hash::FxHashMap<String, std::sync::Arc<PricedPack>> = Default::default();
        let mut key = String::new();
        for month in &months[months.len().saturating_sub(MONTHS_KEPT)..] {
            let Some(rel) = manifest.tables.get(table).and_then(|t| t.get(&month.to_string())) else {
                continue;
            };
            packs.clear();
            let mut last: Option<std::sync::Arc<PricedPack>> = None;
            let path = self.root().join(rel);
            let columns = [
                "bnf_code",
                "vmpp",
                "pack_name",
                "org_type",
                "org_code",
                "quantity",
                before_column,
                after_column,
                impact_column,
                "quantity_month",
                "is_estimate",
            ];
            let texts = ["bnf_code", "vmpp", "pack_name", "org_type", "org_code"];
            let mut orgs = OrgSlots::default();
            for b in crate::parquet_io::read_parquet_dictionary(&path, &columns, &texts)? {
                let b =
                    b.map_err(|e| WarehouseError::Corrupt { path: path.display().to_string(), detail: e.to_string() })?;
                let c = Columns { batch: &b };
                let text = |name| TextColumn::of(&c, name);
                let (code, pack, pack_name) = (text("bnf_code")?, text("vmpp")?, text("pack_name")?);
                let (org_type, org_code) = (text("org_type")?, text("org_code")?);
                let (quantity, before, after, impact) = (
                    c.number("quantity")?,
                    c.number(before_column)?,
                    c.number(after_column)?,
                    c.number(impact_column)?,
                );
                let estimate = c
                    .column("is_estimate")?
                    .as_boolean_opt()
                    .ok_or_else(|| crate::presentations::corrupt("is_estimate", "a flag"))?;
                let days = c
                    .column("quantity_month")?
                    .as_primitive_opt::<datafusion::arrow::datatypes::Date32Type>()
                    .ok_or_else(|| crate::presentations::corrupt("quantity_month", "a date"))?;
                // Every row of a month was priced from the same quantities.
                if b.num_rows() > 0 {
                    out.add_month(ImpactMonth {
                        month: *month,
                        quantity_month: crate::values::month_of(days.value(0)),
                        estimate: !estimate.is_null(0) && estimate.value(0),
                    });
                }
                orgs.follow(&org_type, &org_code);
                for i in 0..b.num_rows() {
                    let Some(code) = code.get(i) else { continue };
                    let Some(slot) = orgs.slot(&mut out, &org_type, &org_code, i) else { continue };
                    let (pack, pack_name) = (pack.get(i).unwrap_or_default(), pack_name.get(i).unwrap_or_default());
                    let (before, after) = (before(i).unwrap_or(0.0), after(i).unwrap_or(0.0));
                    // Rows come sorted by presentation, so most share the previous row's pack.
                    let same_as_last = last.as_ref().is_some_and(|p: &std::sync::Arc<PricedPack>| {
                        p.bnf_code == code
                            && p.pack == pack
                            && p.pack_name == pack_name
                            && p.before == before
                            && p.after == after
                    });
                    if !same_as_last {
                        key.clear();
                        key.push_str(code);
                        key.push('\u{1}');
                        key.push_str(pack);
                        // A presentation has one pack and one pair of prices in a month; should a
                        // row ever differ, it gets a pack of its own rather than another's prices.
                        let found = match packs.get(key.as_str()) {
                            Some(p) if p.pack_name == pack_name && p.before == before && p.after == after => p.clone(),
                            _ => {
                                let p = std::sync::Arc::new(PricedPack {
                                    bnf_code: code.to_string(),
                                    pack: pack.to_string(),
                                    pack_name: pack_name.to_string(),
                                    before,
                                    after,
                                });
                                packs.insert(key.clone(), p.clone());
                                p
                            }
                        };
                        last = Some(found);
                    }
                    let priced = last.clone().expect("set above");
                    out.add_cost_at(
                        slot,
                        *month,
                        ImpactCost { priced, quantity: quantity(i).unwrap_or(0.0), impact: impact(i).unwrap_or(0.0) },
                    );
                }
            }
        }
        Ok(Some(out))
    }
}

/// A text column of a batch, dictionary-encoded as [`crate::parquet_io::read_parquet_dictionary`]
/// reads it.
struct TextColumn<'a> {
    keys: &'a DictionaryArray<Int32Type>,
    values: &'a StringArray,
}

impl<'a> TextColumn<'a> {
    fn of(c: &Columns<'a>, name: &str) -> Result<Self, WarehouseError> {
        let keys = c
            .column(name)?
            .as_dictionary_opt::<Int32Type>()
            .ok_or_else(|| crate::presentations::corrupt(name, "text"))?;
        let values = keys.values().as_string_opt::<i32>().ok_or_else(|| crate::presentations::corrupt(name, "text"))?;
        Ok(Self { keys, values })
    }

    /// Row `i`'s dictionary entry, None when the row has no value.
    fn entry(&self, i: usize) -> Option<usize> {
        self.keys.is_valid(i).then(|| self.keys.keys().value(i) as usize)
    }

    /// The text of dictionary entry `e`.
    fn text(&self, e: usize) -> Option<&'a str> {
        (e < self.values.len()).then(|| self.values.value(e))
    }

    fn get(&self, i: usize) -> Option<&'a str> {
        self.text(self.entry(i)?)
    }
}

/// Each (level, organisation) pair of a batch mapped to its place in the [`PriceImpacts`] once
/// per dictionary, rather than a hash of the organisation's code for every row: a national month
/// of Tariff changes has four million rows over some eight thousand organisations.
#[derive(Default)]
struct OrgSlots {
    /// The two dictionaries the slots are for (level, organisation).
    dictionaries: Option<(ArrayRef, ArrayRef)>,
    /// Slot of level entry `t` and organisation entry `o` at `t × organisations + o`; `u32::MAX`
    /// when not yet looked up.
    slots: Vec<u32>,
    organisations: usize,
}

impl OrgSlots {
    /// Starts again when a batch brings new dictionaries (most share the previous batch's).
    fn follow(&mut self, org_type: &TextColumn, org_code: &TextColumn) {
        let (t, o) = (org_type.keys.values(), org_code.keys.values());
        let same = self
            .dictionaries
            .as_ref()
            .is_some_and(|(dt, dor)| std::sync::Arc::ptr_eq(dt, t) && std::sync::Arc::ptr_eq(dor, o));
        if !same {
            self.organisations = o.len();
            self.slots = vec![u32::MAX; t.len() * o.len()];
            self.dictionaries = Some((t.clone(), o.clone()));
        }
    }

    /// Row `i`'s organisation slot; None when its level or code is missing. Each row's entries
    /// are read once; the pair is looked up by name only the first time it is met.
    fn slot(&mut self, out: &mut PriceImpacts, org_type: &TextColumn, org_code: &TextColumn, i: usize) -> Option<u32> {
        let (t, o) = (org_type.entry(i)?, org_code.entry(i)?);
        let (level, code) = (org_type.text(t)?, org_code.text(o)?);
        match self.slots.get_mut(t * self.organisations + o) {
            Some(known) => {
                if *known == u32::MAX {
                    *known = out.org_slot(level, code);
                }
                Some(*known)
            }
            // Not of the dictionaries followed: looked up by name.
            None => Some(out.org_slot(level, code)),
        }
    }
}
