//! What price concessions cost each organisation, month and presentation, computed by
//! `ipmo value compute` beside the PPU savings and stored as `concession_costs`.
//!
//! Each concession (month, pack) is priced against the same pack's Drug Tariff entry for the
//! month (the newest one before it when the month's Tariff is not loaded), traced to its
//! presentation, and the pack with the largest increase per unit stands for the presentation
//! (`ipmo_value::concessions`). Quantities are the month's prescribing; a concession month newer
//! than the newest prescribing takes the newest month's quantities and is marked an estimate.

use crate::load::Txn;
use crate::parquet_io::read_table;
use crate::presentations::Columns;
use crate::prices::months_of;
use crate::tables::Col;
use crate::{Warehouse, WarehouseError};
use ipmo_domain::YearMonth;
use ipmo_domain::practice::{GroupSet, PracticeMonth, level_members};
use ipmo_value::concessions::{ConcededPack, UnitPrices, largest_increases};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;

/// One presentation conceded in one month: the pack standing for it and its prices per unit.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConcededCode {
    pub(crate) bnf_code: String,
    pub(crate) pack: String,
    /// The concession's own words for the pack ("Omeprazole 10mg gastro-resistant tablets 28").
    pub(crate) pack_name: String,
    pub(crate) prices: UnitPrices,
}

/// A pack's Drug Tariff entry in one month.
#[derive(Clone, Copy, Debug)]
struct TariffEntry {
    price_pence: f64,
    pack_size: f64,
    category: Option<char>,
}

/// Every month's conceded presentations, and what could not be priced.
#[derive(Clone, Debug, Default)]
pub(crate) struct Conceded {
    pub(crate) by_month: BTreeMap<YearMonth, Vec<ConcededCode>>,
    /// Concessions whose pack has no Tariff price on or before the month, or no presentation.
    pub(crate) unpriced: usize,
}

impl Conceded {
    /// The presentations whose quantities month `month` of prescribing must give: its own
    /// concessions, and for the newest month those of every later concession month.
    pub(crate) fn codes_needed(&self, month: YearMonth, newest: YearMonth) -> FxHashSet<String> {
        self.standing_for(month, newest).flat_map(|(_, codes)| codes.iter().map(|c| c.bnf_code.clone())).collect()
    }

    /// The concession months a prescribing month's quantities stand for: itself, and for the
    /// newest month every later one (estimates).
    pub(crate) fn months_for(&self, month: YearMonth, newest: YearMonth) -> Vec<(YearMonth, bool)> {
        self.standing_for(month, newest).map(|(m, _)| (*m, *m != month)).collect()
    }

    fn standing_for(
        &self,
        month: YearMonth,
        newest: YearMonth,
    ) -> std::collections::btree_map::Range<'_, YearMonth, Vec<ConcededCode>> {
        if month == newest { self.by_month.range(month..) } else { self.by_month.range(month..=month) }
    }
}

impl Warehouse {
    /// Every concession priced against the Tariff and traced to its presentation.
    pub(crate) fn conceded(&self) -> Result<Conceded, WarehouseError> {
        let manifest = self.manifest()?;
        let read = |t: &str| read_table(self.root(), &manifest, t);
        let packs = self.pack_codes()?;
        // Tariff entries by pack: month → (price, pack size, category).
        let mut tariff: FxHashMap<String, BTreeMap<YearMonth, TariffEntry>> = FxHashMap::default();
        let mut vmp_of_pack: FxHashMap<String, String> = FxHashMap::default();
        for b in read("tariff")? {
            let months = months_of(&b)?;
            let c = Columns { batch: &b };
            let (pack, vmp, category, size) =
                (c.text("vmpp")?, c.text("vmp")?, c.text("category")?, c.number("pack_size")?);
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
                };
                tariff.entry(pack.to_string()).or_default().insert(month, entry);
            }
        }
        let mut packs_by_month: BTreeMap<YearMonth, Vec<ConcededPack>> = BTreeMap::new();
        let mut pack_names: FxHashMap<(YearMonth, String), String> = FxHashMap::default();
        let mut unpriced = 0;
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
                let entry = tariff.get(pack).and_then(|t| t.range(..=month).next_back()).map(|(_, e)| *e);
                let code = packs.code(pack, vmp_of_pack.get(pack).map(String::as_str));
                let (Some(TariffEntry { price_pence: tariff_pence, pack_size, category }), Some(code)) = (entry, code)
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
                    .map(|(p, prices)| ConcededCode {
                        bnf_code: p.bnf_code.clone(),
                        pack: p.pack.clone(),
                        pack_name: pack_names.get(&(month, p.pack.clone())).cloned().unwrap_or_default(),
                        prices,
                    })
                    .collect();
                (month, best)
            })
            .collect();
        Ok(Conceded { by_month, unpriced })
    }
}

/// Writes one concession month's costs: every practice that prescribed a conceded presentation
/// in `quantity_month`, and every organisation they count towards. Returns the rows written.
pub(crate) fn store_month(
    txn: &mut Txn<'_>,
    (month, quantity_month, estimate): (YearMonth, YearMonth, bool),
    codes: &[ConcededCode],
    quantities: &FxHashMap<String, Vec<(usize, f64)>>,
    practices: &[PracticeMonth],
    groups: &[GroupSet],
) -> Result<u64, WarehouseError> {
    let levels = level_members(practices, groups);
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
            for (oi, &quantity) in sums[li].iter().enumerate() {
                if quantity != 0.0 {
                    rows.push(code, &level.org_type, &level.codes[oi], quantity);
                }
            }
        }
    }
    let n = rows.len();
    let cols = rows.into_columns(month, quantity_month, estimate);
    txn.write_partition("concession_costs", &month.to_string(), cols)?;
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
    tariff: Vec<f64>,
    concession: Vec<f64>,
}

impl CostColumns {
    fn push(&mut self, code: &ConcededCode, org_type: &str, org_code: &str, quantity: f64) {
        self.code.push(Some(code.bnf_code.clone()));
        self.pack.push(Some(code.pack.clone()));
        self.pack_name.push(Some(code.pack_name.clone()));
        self.org_type.push(Some(org_type.to_string()));
        self.org_code.push(Some(org_code.to_string()));
        self.quantity.push(quantity);
        self.tariff.push(code.prices.tariff);
        self.concession.push(code.prices.concession);
    }

    fn len(&self) -> usize {
        self.code.len()
    }

    fn into_columns(self, month: YearMonth, quantity_month: YearMonth, estimate: bool) -> Vec<Col> {
        let n = self.code.len();
        let extra: Vec<f64> =
            self.quantity.iter().zip(self.tariff.iter().zip(&self.concession)).map(|(q, (t, c))| q * (c - t)).collect();
        vec![
            Col::Date(vec![Some(month.days_since_epoch()); n]),
            Col::Str(self.code),
            Col::Str(self.pack),
            Col::Str(self.pack_name),
            Col::Str(self.org_type),
            Col::Str(self.org_code),
            Col::F64(self.quantity),
            Col::F64(self.tariff),
            Col::F64(self.concession),
            Col::F64(extra),
            Col::Date(vec![Some(quantity_month.days_since_epoch()); n]),
            Col::Bool(vec![estimate; n]),
        ]
    }
}

impl Warehouse {
    /// The newest [`ipmo_release::concessions::MONTHS_KEPT`] concession months' costs for the
    /// dashboard; None before `ipmo value compute` has run.
    pub fn recent_concession_costs(&self) -> Result<Option<ipmo_release::concessions::Concessions>, WarehouseError> {
        use datafusion::arrow::array::{Array, AsArray};
        use ipmo_release::concessions::{ConcessionCost, ConcessionMonth, Concessions, MONTHS_KEPT};
        let manifest = self.manifest()?;
        let mut months: Vec<YearMonth> =
            manifest.partitions("concession_costs").into_iter().filter_map(|p| p.parse().ok()).collect();
        if months.is_empty() {
            return Ok(None);
        }
        months.sort();
        let mut out = Concessions::default();
        for month in &months[months.len().saturating_sub(MONTHS_KEPT)..] {
            let Some(rel) = manifest.tables.get("concession_costs").and_then(|t| t.get(&month.to_string())) else {
                continue;
            };
            for b in crate::parquet_io::read_parquet(&self.root().join(rel))? {
                let c = Columns { batch: &b };
                let (code, pack, pack_name) = (c.text("bnf_code")?, c.text("vmpp")?, c.text("pack_name")?);
                let (org_type, org_code) = (c.text("org_type")?, c.text("org_code")?);
                let (quantity, tariff, concession, extra) = (
                    c.number("quantity")?,
                    c.number("tariff_ppu_pence")?,
                    c.number("concession_ppu_pence")?,
                    c.number("extra_cost_pence")?,
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
                    out.add_month(ConcessionMonth {
                        month: *month,
                        quantity_month: crate::values::month_of(days.value(0)),
                        estimate: !estimate.is_null(0) && estimate.value(0),
                    });
                }
                for i in 0..b.num_rows() {
                    let (Some(code), Some(t), Some(o)) = (code(i), org_type(i), org_code(i)) else { continue };
                    out.add_cost(
                        t,
                        o,
                        *month,
                        ConcessionCost {
                            bnf_code: code.to_string(),
                            pack: pack(i).unwrap_or_default().to_string(),
                            pack_name: pack_name(i).unwrap_or_default().to_string(),
                            quantity: quantity(i).unwrap_or(0.0),
                            tariff_ppu: tariff(i).unwrap_or(0.0),
                            concession_ppu: concession(i).unwrap_or(0.0),
                            extra_cost: extra(i).unwrap_or(0.0),
                        },
                    );
                }
            }
        }
        Ok(Some(out))
    }
}
