//! Price-per-unit savings computed over the stored prescribing and stored beside it, so that the
//! dashboard reads them and `ipmo sql` can recompute any of them.
//!
//! Five tables, replaced whole by each computation: `ppu_sets` (the substitution sets of the
//! loaded dm+d release, one row per code), `ppu_prices` (per month and code, the Drug Tariff
//! category, whether a pack was conceded, the discount factor under each mode, and England's
//! quantity and discounted NIC), `ppu_targets` (per month and set, the target PPU under each
//! mode), `ppu_savings` (per month, set and organisation: quantity, discounted NIC and saving
//! under each mode; every practice that prescribed the set, and every other organisation with a
//! saving, England always) and `ppu_totals` (per month and organisation, the headline: sets whose
//! saving reaches the level's default threshold, and their sum). The same pass over each month's
//! rows also feeds `gbg_costs` (ghost-branded generics, below) and the price-change costs of
//! `price_costs.rs`.

use crate::measure_store::Membership;
use crate::parquet_io::read_table;
use crate::presentations::Columns;
use crate::price_costs::{PriceData, store_month};
use crate::tables::Col;
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Date32Type;
use ipmo_domain::YearMonth;
use ipmo_domain::practice::{GroupSet, level_members};
use ipmo_measures::compute::RowKeys;
use ipmo_value::ppu::{self, Mode, PracticeAmounts};
use ipmo_value::substitution::{self, Sets};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;

/// The version of what `ipmo value compute` stores, part of its recorded inputs: bumped when a
/// table is added or a rule changes, so that stored results from before are computed again.
pub const VALUE_COMPUTATION: u32 = 4;

/// What a value computation did, for the command's report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PpuReport {
    /// Substitution sets with a code seen in prescribing.
    pub sets: usize,
    /// Months computed.
    pub months: Vec<YearMonth>,
    /// Concession months costed, each with whether its quantities were estimated from the
    /// newest prescribing month.
    pub concession_months: Vec<(YearMonth, bool)>,
    /// Whether no dm+d release was loaded, so that no sets (and no PPU savings) could be built.
    pub without_dmd: bool,
    /// Tariff months set against the month before, each with whether its quantities were
    /// estimated.
    pub price_change_months: Vec<(YearMonth, bool)>,
    /// Concessions that could not be priced (no Tariff entry on or before the month, or a pack
    /// not traced to a presentation).
    pub unpriced_concessions: usize,
    /// Prescribing rows read.
    pub rows_read: u64,
    /// Rows stored in every table the computation writes.
    pub rows_stored: u64,
}

/// An organisation's headline in a month: sets counted and their savings, per mode.
type Headline = ([u64; 2], ppu::PerMode);

/// What one code's rows feed in a month: a set (with its discount factors), and the costing of
/// a concession or Tariff change.
#[derive(Clone, Copy, Debug)]
struct CodeUse {
    set: Option<(u32, ppu::PerMode)>,
    conceded: bool,
    gbg: bool,
}

/// What a month's rows are looked up against.
struct MonthLookup<'a> {
    month: YearMonth,
    /// Practice code → position in the month's practice list.
    position: &'a FxHashMap<&'a str, usize>,
    prices: &'a FxHashMap<(YearMonth, String), CodePrice>,
    /// Current BNF code → substitution set.
    set_of: &'a FxHashMap<&'a str, u32>,
    /// Codes whose quantities price a concession or a Tariff change.
    needed: &'a rustc_hash::FxHashSet<String>,
    /// Codes eligible for the ghost-branded generics inference this month.
    gbg: &'a rustc_hash::FxHashSet<String>,
}

/// One month's prescribing summed for the value computations. Practice and code numbers are
/// looked up once each (to a practice position, and to a set with its discount factors and
/// whether the code's quantities price a change), not once per row.
#[derive(Default)]
struct MonthSums {
    practice_of: Vec<Option<Option<usize>>>,
    code_of: Vec<Option<CodeUse>>,
    /// (set, practice) → quantity and discounted NIC per mode.
    cells: FxHashMap<(u32, usize), (f64, ppu::PerMode)>,
    /// Current code → England's quantity and discounted NIC per mode.
    by_code: FxHashMap<String, (f64, ppu::PerMode)>,
    /// (code number, practice) → quantity, for concessions and Tariff changes.
    changed_quantity: FxHashMap<(u32, usize), f64>,
    /// (code number, practice) → quantity and undiscounted NIC, for ghost-branded generics.
    gbg: FxHashMap<(u32, usize), (f64, f64)>,
}

impl MonthSums {
    fn add(&mut self, at: &MonthLookup<'_>, keys: &RowKeys, (p, c): (u32, u32), a: &ipmo_domain::practice::Amounts) {
        let (pi, ci) = (p as usize, c as usize);
        if self.practice_of.len() <= pi {
            self.practice_of.resize(pi + 1, None);
        }
        if self.code_of.len() <= ci {
            self.code_of.resize(ci + 1, None);
        }
        let Some(practice) =
            *self.practice_of[pi].get_or_insert_with(|| at.position.get(keys.practices.name(p)).copied())
        else {
            return;
        };
        let code = *self.code_of[ci].get_or_insert_with(|| {
            let code = keys.codes.name(c);
            let price = at.prices.get(&(at.month, code.to_string())).copied().unwrap_or_default();
            CodeUse {
                set: at.set_of.get(code).map(|&s| {
                    (s, Mode::ALL.map(|m| ppu::discount_factor(m, at.month, price.category, price.conceded)))
                }),
                conceded: at.needed.contains(code),
                gbg: at.gbg.contains(code),
            }
        });
        if code.conceded {
            *self.changed_quantity.entry((c, practice)).or_default() += a.quantity;
        }
        if code.gbg {
            let cell = self.gbg.entry((c, practice)).or_default();
            cell.0 += a.quantity;
            cell.1 += a.nic_pence as f64;
        }
        if let Some((set, factor)) = code.set {
            let nic = factor.map(|f| a.nic_pence as f64 * f);
            let code_total = match self.by_code.get_mut(keys.codes.name(c)) {
                Some(t) => t,
                None => self.by_code.entry(keys.codes.name(c).to_string()).or_default(),
            };
            for sum in [self.cells.entry((set, practice)).or_default(), code_total] {
                sum.0 += a.quantity;
                for (total, add) in sum.1.iter_mut().zip(nic) {
                    *total += add;
                }
            }
        }
    }
}

/// Writes a month's ghost-branded generic costs: every counted practice of every eligible
/// presentation, and every organisation with a non-zero sum of its practices' counted values.
fn store_gbg_month(
    txn: &mut crate::load::Txn<'_>,
    month: YearMonth,
    keys: &RowKeys,
    cells: FxHashMap<(u32, usize), (f64, f64)>,
    practices: &[ipmo_domain::practice::PracticeMonth],
    groups: &[GroupSet],
) -> Result<u64, WarehouseError> {
    use ipmo_value::gbg::{Cell, code_month};
    let levels = level_members(practices, groups);
    let mut by_code: std::collections::BTreeMap<&str, Vec<Cell>> = std::collections::BTreeMap::new();
    for ((c, practice), (quantity, nic_pence)) in cells {
        by_code.entry(keys.codes.name(c)).or_default().push(Cell { practice, quantity, nic_pence });
    }
    let mut cols: [Vec<Option<String>>; 3] = Default::default();
    let mut numbers: [Vec<f64>; 4] = Default::default();
    for (code, mut list) in by_code {
        list.sort_by_key(|c| c.practice);
        let Some(result) = code_month(&list) else { continue };
        let amounts: FxHashMap<usize, &Cell> = list.iter().map(|c| (c.practice, c)).collect();
        for (level, members) in levels.iter().enumerate() {
            // Quantity, NIC and extra cost of the counted practices, per organisation.
            let mut sums: Vec<[f64; 3]> = vec![[0.0; 3]; members.codes.len()];
            for &(practice, extra) in &result.counted {
                let cell = amounts[&practice];
                for &org in members.of_practice.get(practice).map_or(&[][..], Vec::as_slice) {
                    let s = &mut sums[org];
                    s[0] += cell.quantity;
                    s[1] += cell.nic_pence;
                    s[2] += extra;
                }
            }
            for (org, s) in sums.iter().enumerate().filter(|(_, s)| s[0] != 0.0 || s[2] != 0.0) {
                cols[0].push(Some(code.to_string()));
                cols[1].push(Some(levels[level].org_type.clone()));
                cols[2].push(Some(members.codes[org].clone()));
                numbers[0].push(s[0]);
                numbers[1].push(s[1]);
                numbers[2].push(result.median_ppu);
                numbers[3].push(s[2]);
            }
        }
    }
    let n = cols[0].len();
    let [code, org_type, org_code] = cols;
    let [quantity, nic, median, extra] = numbers;
    let columns = vec![
        Col::Date(vec![Some(month.days_since_epoch()); n]),
        Col::Str(code),
        Col::Str(org_type),
        Col::Str(org_code),
        Col::F64(quantity),
        Col::F64(nic),
        Col::F64(median),
        Col::F64(extra),
    ];
    txn.write_partition("gbg_costs", &month.to_string(), columns)
}

/// Unsets partitions this computation did not write: months no longer in prescribing, and
/// concession or Tariff months no longer costed.
fn drop_stale_partitions(txn: &mut crate::load::Txn<'_>, manifest: &crate::Manifest, report: &PpuReport) {
    let ppu_months: Vec<String> = report.months.iter().map(ToString::to_string).collect();
    let months_of = |list: &[(YearMonth, bool)]| list.iter().map(|(m, _)| m.to_string()).collect::<Vec<_>>();
    for (table, kept) in [
        ("ppu_savings", ppu_months.clone()),
        ("ppu_targets", ppu_months.clone()),
        ("ppu_prices", ppu_months.clone()),
        ("ppu_totals", ppu_months.clone()),
        ("gbg_costs", ppu_months),
        ("concession_costs", months_of(&report.concession_months)),
        ("price_change_costs", months_of(&report.price_change_months)),
    ] {
        for p in manifest.partitions(table) {
            if !kept.iter().any(|k| k == p) {
                txn.unset(table, p);
            }
        }
    }
}

/// One code's prices in one month.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct CodePrice {
    /// Drug Tariff Part VIIIA category letter of its packs, if it has any in the Tariff.
    category: Option<char>,
    /// Whether any of its packs had a price concession.
    conceded: bool,
}

impl Warehouse {
    /// The substitution sets of the loaded dm+d release, limited to codes seen in prescribing
    /// unless `all`; None when no release is loaded.
    pub fn substitution_sets(&self, all: bool) -> Result<Option<Sets>, WarehouseError> {
        let (generics, brands) = self.substitution_inputs()?;
        if generics.is_empty() && brands.is_empty() {
            return Ok(None);
        }
        let prescribed: Option<BTreeSet<String>> = if all {
            None
        } else {
            let current = self.bnf_current_codes()?;
            Some(self.presentation_names()?.into_keys().map(|c| current.get(&c).cloned().unwrap_or(c)).collect())
        };
        Ok(Some(substitution::build(&generics, &brands, prescribed.as_ref())))
    }

    /// What the value computations depend on: every file of prescribing, membership, practices,
    /// BNF codes, the mapping, dm+d, Tariff and concessions, with the membership choice, the
    /// computation's version and the groups file's tag (see [`Warehouse::groups`]).
    pub fn value_inputs(
        &self,
        membership: Membership,
        groups_input: Option<&str>,
    ) -> Result<Vec<String>, WarehouseError> {
        let manifest = self.manifest()?;
        let tables = [
            crate::tables::PRESCRIBING,
            "org_membership",
            "practices",
            "bnf_map",
            "presentations_seen",
            "bnf_snomed",
            "tariff",
            "concessions",
            ipmo_ingest::dmd::HISTORY_TABLE,
        ]
        .into_iter()
        .chain(ipmo_ingest::dmd::TABLES.iter().map(|t| t.table));
        let mut inputs: Vec<String> = tables.flat_map(|t| manifest.files(t)).map(str::to_string).collect();
        inputs.push(format!("membership:{}", membership.as_str()));
        inputs.push(format!("computation:{VALUE_COMPUTATION}"));
        inputs.extend(groups_input.map(str::to_string));
        Ok(inputs)
    }

    /// Whether the stored value computations were made from exactly today's inputs.
    pub fn value_fresh(&self, membership: Membership, groups_input: Option<&str>) -> Result<bool, WarehouseError> {
        let stored = self.manifest()?.value_inputs;
        Ok(!stored.is_empty() && stored == self.value_inputs(membership, groups_input)?)
    }

    /// Computes PPU savings, ghost-branded generic costs, concession costs and Tariff change
    /// costs for every month with prescribing (and every later concession or Tariff month,
    /// estimated) and replaces the `ppu_*`, `gbg_costs`, `concession_costs` and
    /// `price_change_costs` tables in one commit, recording its inputs. `progress(month, rows)` is called after each month.
    pub async fn compute_value(
        &self,
        membership: Membership,
        (groups, groups_input): (&[GroupSet], Option<&str>),
        mut progress: impl FnMut(YearMonth, u64),
    ) -> Result<PpuReport, WarehouseError> {
        let inputs = self.value_inputs(membership, groups_input)?;
        // Without a dm+d release there are no sets, and so no PPU savings; concessions are still
        // costed through the Tariff's packs.
        let built = self.substitution_sets(false)?;
        let without_dmd = built.is_none();
        let sets = built.unwrap_or_default();
        let manifest = self.manifest()?;
        let current = self.bnf_current_codes()?;
        let set_of: FxHashMap<&str, u32> = sets
            .sets
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.codes.iter().map(move |c| (c.as_str(), i as u32)))
            .collect();
        let price_data = self.price_data()?;
        let crate::price_costs::Conceded { priced: conceded, codes: conceded_codes } = self.conceded(&price_data)?;
        let prices = Self::code_prices(&set_of, &price_data, &conceded_codes);
        let months: Vec<YearMonth> =
            manifest.partitions(crate::tables::PRESCRIBING).into_iter().filter_map(|p| p.parse().ok()).collect();
        let mut practices_by_month = self.practices_for_months(&months, membership).await?;
        let changed = price_data.tariff_changes();
        let gbg_eligible = price_data.gbg_eligible();
        let none = rustc_hash::FxHashSet::default();
        let newest = months.last().copied();
        let mut txn = self.begin()?;
        let mut report = PpuReport {
            sets: sets.sets.len(),
            without_dmd,
            unpriced_concessions: conceded.unpriced,
            ..Default::default()
        };
        let mut keys = RowKeys::default();
        for &month in &months {
            let practices = practices_by_month.remove(&month).unwrap_or_default();
            let position: FxHashMap<&str, usize> =
                practices.iter().enumerate().map(|(i, p)| (p.code.as_str(), i)).collect();
            let mut needed = conceded.codes_needed(month, newest.unwrap_or(month));
            needed.extend(changed.codes_needed(month, newest.unwrap_or(month)));
            let gbg = gbg_eligible.get(&month).unwrap_or(&none);
            let lookup =
                MonthLookup { month, position: &position, prices: &prices, set_of: &set_of, needed: &needed, gbg };
            let mut sums = MonthSums::default();
            let rows = self.for_each_prescribing_keyed(month, &current, &mut keys, |keys, p, c, a| {
                sums.add(&lookup, keys, (p, c), a);
            })?;
            report.rows_read += rows;
            let MonthSums { cells, by_code, changed_quantity, gbg, .. } = sums;
            report.rows_stored += store_gbg_month(&mut txn, month, &keys, gbg, &practices, groups)?;
            let mut by_practice: FxHashMap<String, Vec<(usize, f64)>> = FxHashMap::default();
            for ((c, practice), quantity) in changed_quantity {
                by_practice.entry(keys.codes.name(c).to_string()).or_default().push((practice, quantity));
            }
            for (table, priced, done) in [
                ("concession_costs", &conceded, &mut report.concession_months),
                ("price_change_costs", &changed, &mut report.price_change_months),
            ] {
                for (priced_month, estimate) in priced.months_for(month, newest.unwrap_or(month)) {
                    let codes = priced.by_month.get(&priced_month).map_or(&[][..], Vec::as_slice);
                    let key = (priced_month, month, estimate);
                    report.rows_stored += store_month(&mut txn, table, key, codes, &by_practice, &practices, groups)?;
                    done.push((priced_month, estimate));
                }
            }
            report.rows_stored += self.store_ppu_month(&mut txn, month, &sets, &practices, groups, cells)?;
            txn.write_partition("ppu_prices", &month.to_string(), price_columns(month, &sets, &prices, &by_code))?;
            report.months.push(month);
            progress(month, rows);
        }
        drop_stale_partitions(&mut txn, &manifest, &report);
        txn.write_whole("ppu_sets", set_columns(&sets, manifest.dmd_release.as_ref().map(|r| r.date.as_str())))?;
        txn.manifest.value_inputs = inputs;
        txn.commit(report.rows_stored, report.months.iter().map(ToString::to_string).collect())?;
        Ok(report)
    }

    /// Each set code's Tariff category and concession flag per month, from the Tariff's packs and
    /// the presentations conceded (`conceded`): a pack's VMP (a concession's through `dmd_vmpp`)
    /// is linked to its current BNF code through the BNF ↔ SNOMED mapping.
    fn code_prices(
        set_of: &FxHashMap<&str, u32>,
        data: &PriceData,
        conceded: &rustc_hash::FxHashSet<(YearMonth, String)>,
    ) -> FxHashMap<(YearMonth, String), CodePrice> {
        let mut out: FxHashMap<(YearMonth, String), CodePrice> = FxHashMap::default();
        for (month, code, letter) in data.categories(|c| set_of.contains_key(c)) {
            let price = out.entry((month, code.to_string())).or_default();
            // Packs of one presentation share a category; should two differ, A or M wins, as
            // the larger deduction is the one the NHS takes on the cheaper pack.
            if price.category.is_none() || matches!(letter, Some('A' | 'M')) {
                price.category = letter;
            }
        }
        for (month, code) in conceded.iter().filter(|(_, c)| set_of.contains_key(c.as_str())) {
            out.entry((*month, code.clone())).or_default().conceded = true;
        }
        out
    }

    /// Targets and savings of one month: every set's practices, then every organisation.
    fn store_ppu_month(
        &self,
        txn: &mut crate::load::Txn<'_>,
        month: YearMonth,
        sets: &Sets,
        practices: &[ipmo_domain::practice::PracticeMonth],
        groups: &[GroupSet],
        cells: FxHashMap<(u32, usize), (f64, ppu::PerMode)>,
    ) -> Result<u64, WarehouseError> {
        let levels = level_members(practices, groups);
        let mut by_set: Vec<Vec<PracticeAmounts>> = vec![Vec::new(); sets.sets.len()];
        for ((set, practice), (quantity, nic)) in cells {
            by_set[set as usize].push(PracticeAmounts { practice, quantity, nic });
        }
        let mut savings = SavingsColumns::default();
        let mut targets = TargetColumns::default();
        let thresholds = ppu::Thresholds::default();
        let mut totals: Vec<Vec<Headline>> = levels.iter().map(|l| vec![([0; 2], [0.0; 2]); l.codes.len()]).collect();
        for (si, mut amounts) in by_set.into_iter().enumerate() {
            if amounts.is_empty() {
                continue;
            }
            amounts.sort_by_key(|a| a.practice);
            // Every practice in the organisation map is a standard GP practice.
            let result = ppu::set_month(amounts, |_| true);
            let id = &sets.sets[si].id;
            targets.push(id, &result);
            for org in ppu::org_savings(&result, &levels) {
                let level = &levels[org.level];
                let threshold = thresholds.for_level(&level.org_type);
                let total = &mut totals[org.level][org.org];
                for m in 0..2 {
                    if org.saving[m] > 0.0 && org.saving[m] >= threshold {
                        total.0[m] += 1;
                        total.1[m] += org.saving[m];
                    }
                }
                let keep =
                    level.org_type == "practice" || level.org_type == "england" || org.saving.iter().any(|s| *s > 0.0);
                if keep {
                    savings.push(id, &level.org_type, &level.codes[org.org], &org);
                }
            }
        }
        let key = month.to_string();
        let day = month.days_since_epoch();
        txn.write_partition("ppu_targets", &key, targets.into_columns(day))?;
        txn.write_partition("ppu_totals", &key, total_columns(day, &levels, &totals))?;
        txn.write_partition("ppu_savings", &key, savings.into_columns(day))
    }
}

#[derive(Default)]
struct SavingsColumns {
    set: Vec<Option<String>>,
    org_type: Vec<Option<String>>,
    org_code: Vec<Option<String>>,
    quantity: Vec<f64>,
    nic: [Vec<f64>; 2],
    saving: [Vec<f64>; 2],
}

impl SavingsColumns {
    fn push(&mut self, set: &str, org_type: &str, org_code: &str, org: &ppu::OrgSaving) {
        self.set.push(Some(set.to_string()));
        self.org_type.push(Some(org_type.to_string()));
        self.org_code.push(Some(org_code.to_string()));
        self.quantity.push(org.quantity);
        for m in 0..2 {
            self.nic[m].push(org.nic[m]);
            self.saving[m].push(org.saving[m]);
        }
    }

    fn into_columns(self, day: i32) -> Vec<Col> {
        let [nic, reference_nic] = self.nic;
        let [saving, reference_saving] = self.saving;
        vec![
            Col::Date(vec![Some(day); self.set.len()]),
            Col::Str(self.set),
            Col::Str(self.org_type),
            Col::Str(self.org_code),
            Col::F64(self.quantity),
            Col::F64(nic),
            Col::F64(saving),
            Col::F64(reference_nic),
            Col::F64(reference_saving),
        ]
    }
}

#[derive(Default)]
struct TargetColumns {
    set: Vec<Option<String>>,
    target: [Vec<Option<f64>>; 2],
    practices: Vec<i64>,
}

impl TargetColumns {
    fn push(&mut self, set: &str, result: &ppu::SetMonth) {
        self.set.push(Some(set.to_string()));
        for m in 0..2 {
            self.target[m].push(result.target[m]);
        }
        self.practices.push(result.standard_practices as i64);
    }

    fn into_columns(self, day: i32) -> Vec<Col> {
        let [target, reference_target] = self.target;
        vec![
            Col::Date(vec![Some(day); self.set.len()]),
            Col::Str(self.set),
            Col::F64Opt(target),
            Col::F64Opt(reference_target),
            Col::I64(self.practices),
        ]
    }
}

/// `ppu_totals` for one month: each organisation's headline under the default thresholds.
fn total_columns(day: i32, levels: &[ipmo_domain::practice::LevelMembers], totals: &[Vec<Headline>]) -> Vec<Col> {
    let rows: Vec<(&str, &str, &Headline)> = levels
        .iter()
        .zip(totals)
        .flat_map(|(l, t)| l.codes.iter().zip(t).map(move |(c, t)| (l.org_type.as_str(), c.as_str(), t)))
        .filter(|(_, _, t)| t.0 != [0, 0])
        .collect();
    vec![
        Col::Date(vec![Some(day); rows.len()]),
        Col::Str(rows.iter().map(|r| Some(r.0.to_string())).collect()),
        Col::Str(rows.iter().map(|r| Some(r.1.to_string())).collect()),
        Col::I64(rows.iter().map(|r| r.2.0[0] as i64).collect()),
        Col::F64(rows.iter().map(|r| r.2.1[0]).collect()),
        Col::I64(rows.iter().map(|r| r.2.0[1] as i64).collect()),
        Col::F64(rows.iter().map(|r| r.2.1[1]).collect()),
    ]
}

/// `ppu_prices` for one month: every set code with its category, concession and factors, and
/// England's quantity and discounted NIC of it (the presentations behind a set's price gap).
fn price_columns(
    month: YearMonth,
    sets: &Sets,
    prices: &FxHashMap<(YearMonth, String), CodePrice>,
    by_code: &FxHashMap<String, (f64, ppu::PerMode)>,
) -> Vec<Col> {
    let rows: Vec<(&str, &str, CodePrice)> = sets
        .sets
        .iter()
        .flat_map(|s| s.codes.iter().map(move |c| (s.id.as_str(), c.as_str())))
        .map(|(set, code)| (set, code, prices.get(&(month, code.to_string())).copied().unwrap_or_default()))
        .collect();
    let factor = |mode: Mode| {
        Col::F64(rows.iter().map(|(_, _, p)| ppu::discount_factor(mode, month, p.category, p.conceded)).collect())
    };
    vec![
        Col::Date(vec![Some(month.days_since_epoch()); rows.len()]),
        Col::Str(rows.iter().map(|(_, c, _)| Some(c.to_string())).collect()),
        Col::Str(rows.iter().map(|(s, _, _)| Some(s.to_string())).collect()),
        Col::Str(rows.iter().map(|(_, _, p)| p.category.map(String::from)).collect()),
        Col::Bool(rows.iter().map(|(_, _, p)| p.conceded).collect()),
        factor(Mode::DateCorrect),
        factor(Mode::Reference),
        Col::F64(rows.iter().map(|(_, c, _)| by_code.get(*c).map_or(0.0, |t| t.0)).collect()),
        Col::F64(rows.iter().map(|(_, c, _)| by_code.get(*c).map_or(0.0, |t| t.1[0])).collect()),
        Col::F64(rows.iter().map(|(_, c, _)| by_code.get(*c).map_or(0.0, |t| t.1[1])).collect()),
    ]
}

/// `ppu_sets`: one row per code of each set.
fn set_columns(sets: &Sets, release: Option<&str>) -> Vec<Col> {
    let rows: Vec<(&substitution::SubstitutionSet, &str)> =
        sets.sets.iter().flat_map(|s| s.codes.iter().map(move |c| (s, c.as_str()))).collect();
    vec![
        Col::Str(rows.iter().map(|(s, _)| Some(s.id.clone())).collect()),
        Col::Str(rows.iter().map(|(_, c)| Some(c.to_string())).collect()),
        Col::Str(rows.iter().map(|(s, _)| Some(s.name.clone())).collect()),
        Col::Str(rows.iter().map(|(s, _)| s.formulation_swap.clone()).collect()),
        Col::Str(rows.iter().map(|_| release.map(str::to_string)).collect()),
    ]
}

/// The SQL that lists an organisation's ghost-branded generic costs in a month, largest first:
/// what `ipmo value gbg` runs and prints with `--sql`.
pub fn gbg_sql(org_type: &str, org_code: &str, month: YearMonth) -> String {
    use crate::medicine::quote;
    format!(
        "SELECT g.bnf_code, n.name, g.quantity, g.nic_pence, ROUND(g.median_ppu_pence, 4) AS median_ppu_pence, \
         ROUND(g.extra_cost_pence / 100, 2) AS extra_cost_pounds \
         FROM gbg_costs g LEFT JOIN (SELECT bnf_code, MIN(name) AS name FROM presentations_seen GROUP BY bnf_code) n \
         ON n.bnf_code = g.bnf_code \
         WHERE g.month = DATE '{}' AND g.org_type = {} AND g.org_code = {} ORDER BY g.extra_cost_pence DESC, g.bnf_code",
        month.first_day().format("%Y-%m-%d"),
        quote(org_type),
        quote(org_code),
    )
}

/// Ghost-branded generics the direct way, from the EPD's SNOMED column: the rows of a generic BNF
/// code whose product is an AMP (a generic prescribed or dispensed under a manufacturer's name),
/// in `month`, for the standard practices counted towards the organisation then. Each AMP's extra
/// cost is its quantity × (its list price per unit, the lowest of its packs in dm+d, less the
/// month's Drug Tariff price per unit, the lowest of the VMP's packs). What `ipmo value gbg
/// --method direct` runs and prints with `--sql`. None for a custom group level, which this
/// query does not resolve (the inferred method's stored table covers groups).
pub fn gbg_direct_sql(org_type: &str, org_code: &str, month: YearMonth) -> Option<String> {
    use crate::medicine::quote;
    let org = quote(&org_code.to_ascii_uppercase());
    let filter = match ipmo_domain::practice::OrgLevel::parse(org_type)? {
        ipmo_domain::practice::OrgLevel::Practice => format!("UPPER(m.practice_code) = {org}"),
        ipmo_domain::practice::OrgLevel::Pcn => format!("UPPER(m.pcn_code) = {org}"),
        ipmo_domain::practice::OrgLevel::Sicbl => format!("UPPER(m.sicbl_code) = {org}"),
        ipmo_domain::practice::OrgLevel::Icb => format!("UPPER(m.icb_code) = {org}"),
        ipmo_domain::practice::OrgLevel::Region => format!("UPPER(m.region_code) = {org}"),
        ipmo_domain::practice::OrgLevel::England => "TRUE".to_string(),
    };
    let m = month.first_day().format("%Y-%m-%d");
    Some(format!(
        "WITH rx AS (SELECT q.practice_code, q.bnf_code, COALESCE(h.new_id, q.snomed_code) AS apid,            q.quantity_per_item * q.items AS quantity            FROM prescribing_by_quantity q LEFT JOIN dmd_id_history h ON h.old_id = q.snomed_code            WHERE q.month = DATE '{m}' AND SUBSTR(q.bnf_code, 10, 2) = 'AA'),          members AS (SELECT DISTINCT m.practice_code FROM org_membership m            JOIN practices p ON p.practice_code = m.practice_code AND p.is_gp_practice            WHERE (m.valid_from IS NULL OR m.valid_from <= DATE '{m}') AND (m.valid_to IS NULL OR m.valid_to > DATE '{m}')            AND m.practice_code NOT LIKE '%998' AND {filter}),          amp_price AS (SELECT pp.apid, MIN(CAST(pp.price_pence AS DOUBLE) / v.quantity) AS ppu            FROM dmd_ampp pp JOIN dmd_vmpp v ON v.vppid = pp.vppid            WHERE pp.price_pence IS NOT NULL AND v.quantity > 0 GROUP BY pp.apid),          tariff_price AS (SELECT vmp, MIN(CAST(price_pence AS DOUBLE) / pack_size) AS ppu FROM tariff            WHERE month = DATE '{m}' AND pack_size > 0 GROUP BY vmp)          SELECT rx.bnf_code, a.name AS dispensed_as, SUM(rx.quantity) AS quantity,            ROUND(ap.ppu, 4) AS amp_ppu_pence, ROUND(t.ppu, 4) AS tariff_ppu_pence,            ROUND(SUM(rx.quantity) * (ap.ppu - t.ppu) / 100, 2) AS extra_cost_pounds          FROM rx JOIN members mb ON mb.practice_code = rx.practice_code          JOIN dmd_amp a ON a.apid = rx.apid          JOIN amp_price ap ON ap.apid = a.apid          JOIN tariff_price t ON t.vmp = a.vpid          GROUP BY rx.bnf_code, a.name, ap.ppu, t.ppu          ORDER BY extra_cost_pounds DESC, rx.bnf_code, a.name"
    ))
}

/// The SQL that lists an organisation's PPU opportunities in a month under `mode`, largest
/// saving first, keeping sets whose saving reaches `min_saving_pence`: what `ipmo value ppu`
/// runs and prints with `--sql`, so any figure it shows can be checked.
pub fn opportunities_sql(
    org_type: &str,
    org_code: &str,
    month: YearMonth,
    mode: Mode,
    min_saving_pence: f64,
) -> String {
    use crate::medicine::quote;
    let prefix = match mode {
        Mode::DateCorrect => "",
        Mode::Reference => "reference_",
    };
    format!(
        "SELECT s.set_id, n.set_name, n.formulation_swap, s.quantity, \
         ROUND(s.{prefix}nic_pence / s.quantity, 4) AS ppu_pence, ROUND(t.{prefix}target_ppu, 4) AS target_ppu_pence, \
         ROUND(s.{prefix}saving_pence / 100, 2) AS saving_pounds \
         FROM ppu_savings s \
         JOIN ppu_targets t ON t.month = s.month AND t.set_id = s.set_id \
         JOIN (SELECT DISTINCT set_id, set_name, formulation_swap FROM ppu_sets) n ON n.set_id = s.set_id \
         WHERE s.month = DATE '{}' AND s.org_type = {} AND s.org_code = {} AND s.{prefix}saving_pence >= {min_saving_pence} \
         ORDER BY s.{prefix}saving_pence DESC, s.set_id",
        month.first_day().format("%Y-%m-%d"),
        quote(org_type),
        quote(org_code),
    )
}

impl Warehouse {
    /// The PPU savings the dashboard serves: sets, prices, targets and every organisation's rows
    /// for the newest computed month, and every month's headlines; None before `ipmo value
    /// compute` has run.
    pub fn load_ppu(&self) -> Result<Option<ipmo_release::ppu::Ppu>, WarehouseError> {
        use ipmo_release::ppu::{Ppu, PpuRow, PpuSet, PpuTotal};
        let manifest = self.manifest()?;
        let Some(month) =
            manifest.partitions("ppu_savings").into_iter().filter_map(|p| p.parse::<YearMonth>().ok()).max()
        else {
            return Ok(None);
        };
        let partition = |table: &str| -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>, WarehouseError> {
            match manifest.tables.get(table).and_then(|t| t.get(&month.to_string())) {
                Some(rel) => crate::parquet_io::read_parquet(&self.root().join(rel)),
                None => Ok(Vec::new()),
            }
        };
        let names = self.presentation_names()?;
        let mut ppu = Ppu::new(month);
        // Sets, with their codes' prices and England's amounts this month.
        let mut codes = release_codes(&partition("ppu_prices")?, &names)?;
        let mut set_names: FxHashMap<String, (String, Option<String>)> = FxHashMap::default();
        for b in read_table(self.root(), &manifest, "ppu_sets")? {
            let c = Columns { batch: &b };
            let (id, name, swap) = (c.text("set_id")?, c.text("set_name")?, c.text("formulation_swap")?);
            for i in 0..b.num_rows() {
                if let Some(id) = id(i) {
                    set_names
                        .insert(id.to_string(), (name(i).unwrap_or_default().to_string(), swap(i).map(str::to_string)));
                }
            }
        }
        // Computed without a dm+d release: no sets, nothing to serve.
        if set_names.is_empty() {
            return Ok(None);
        }
        for b in partition("ppu_targets")? {
            let c = Columns { batch: &b };
            let (id, target, reference) =
                (c.text("set_id")?, c.number("target_ppu")?, c.number("reference_target_ppu")?);
            for i in 0..b.num_rows() {
                let Some(id) = id(i) else { continue };
                let (name, formulation_swap) = set_names.get(id).cloned().unwrap_or_default();
                ppu.add_set(PpuSet {
                    id: id.to_string(),
                    name,
                    formulation_swap,
                    codes: codes.remove(id).unwrap_or_default(),
                    target: [target(i), reference(i)],
                });
            }
        }
        for b in partition("ppu_savings")? {
            let c = Columns { batch: &b };
            let (set, org_type, org_code) = (c.text("set_id")?, c.text("org_type")?, c.text("org_code")?);
            let (quantity, nic, saving) = (c.number("quantity")?, c.number("nic_pence")?, c.number("saving_pence")?);
            let (reference_nic, reference_saving) =
                (c.number("reference_nic_pence")?, c.number("reference_saving_pence")?);
            for i in 0..b.num_rows() {
                let (Some(set), Some(t), Some(code)) = (set(i), org_type(i), org_code(i)) else { continue };
                let Some((position, _)) = ppu.set(set) else { continue };
                ppu.add_row(
                    t,
                    code,
                    PpuRow {
                        set: position,
                        quantity: quantity(i).unwrap_or(0.0),
                        nic: [nic(i).unwrap_or(0.0), reference_nic(i).unwrap_or(0.0)],
                        saving: [saving(i).unwrap_or(0.0), reference_saving(i).unwrap_or(0.0)],
                    },
                );
            }
        }
        for b in read_table(self.root(), &manifest, "ppu_totals")? {
            let c = Columns { batch: &b };
            let days = c
                .column("month")?
                .as_primitive_opt::<Date32Type>()
                .ok_or_else(|| crate::presentations::corrupt("month", "a date"))?;
            let (org_type, org_code) = (c.text("org_type")?, c.text("org_code")?);
            let count = |n: &str| {
                c.column(n)?
                    .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
                    .ok_or_else(|| crate::presentations::corrupt(n, "a count"))
            };
            let (sets, reference_sets) = (count("sets")?, count("reference_sets")?);
            let (saving, reference_saving) = (c.number("saving_pence")?, c.number("reference_saving_pence")?);
            for i in 0..b.num_rows() {
                let (Some(t), Some(code)) = (org_type(i), org_code(i)) else { continue };
                ppu.add_total(
                    t,
                    code,
                    PpuTotal {
                        month: crate::values::month_of(days.value(i)),
                        sets: [sets.value(i) as u32, reference_sets.value(i) as u32],
                        saving: [saving(i).unwrap_or(0.0), reference_saving(i).unwrap_or(0.0)],
                    },
                );
            }
        }
        Ok(Some(ppu))
    }
}

/// Each set's presentations as the dashboard shows them, from a month's `ppu_prices`.
fn release_codes(
    batches: &[datafusion::arrow::record_batch::RecordBatch],
    names: &FxHashMap<String, String>,
) -> Result<FxHashMap<String, Vec<ipmo_release::ppu::PpuCode>>, WarehouseError> {
    use ipmo_release::ppu::PpuCode;
    let mut codes: FxHashMap<String, Vec<PpuCode>> = FxHashMap::default();
    for b in batches {
        let c = Columns { batch: b };
        let (code, set, category) = (c.text("bnf_code")?, c.text("set_id")?, c.text("tariff_category")?);
        let conceded = c
            .column("conceded")?
            .as_boolean_opt()
            .ok_or_else(|| crate::presentations::corrupt("conceded", "a flag"))?;
        let (factor, reference_factor) = (c.number("discount_factor")?, c.number("reference_discount_factor")?);
        let (quantity, nic, reference_nic) =
            (c.number("quantity")?, c.number("nic_pence")?, c.number("reference_nic_pence")?);
        for i in 0..b.num_rows() {
            let (Some(code), Some(set)) = (code(i), set(i)) else { continue };
            codes.entry(set.to_string()).or_default().push(PpuCode {
                code: code.to_string(),
                name: names.get(code).cloned().unwrap_or_default(),
                category: category(i).map(str::to_string),
                conceded: conceded.value(i),
                factor: [factor(i).unwrap_or(1.0), reference_factor(i).unwrap_or(1.0)],
                quantity: quantity(i).unwrap_or(0.0),
                nic: [nic(i).unwrap_or(0.0), reference_nic(i).unwrap_or(0.0)],
            });
        }
    }
    Ok(codes)
}
