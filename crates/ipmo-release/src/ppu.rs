//! Price-per-unit savings as the dashboard serves them: the substitution sets with their codes
//! and prices, every organisation's savings per set in the latest computed month (practices
//! included, for the set page's chart), and every organisation's headline in every month. The
//! warehouse fills it from the `ppu_*` tables; nothing here is computed, only looked up.

use ipmo_domain::YearMonth;
use ipmo_value::ppu::{Mode, PerMode};
use rustc_hash::FxHashMap;

/// One presentation of a set in the detail month.
#[derive(Clone, Debug, PartialEq)]
pub struct PpuCode {
    /// Current BNF code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Drug Tariff Part VIIIA category letter, when its packs are in the Tariff.
    pub category: Option<String>,
    /// Whether a pack had a price concession.
    pub conceded: bool,
    /// The share of NIC paid after the discount, per mode.
    pub factor: PerMode,
    /// Units prescribed in England.
    pub quantity: f64,
    /// Discounted NIC in England in pence, per mode.
    pub nic: PerMode,
}

/// A substitution set in the detail month.
#[derive(Clone, Debug, PartialEq)]
pub struct PpuSet {
    /// Set id (its smallest generic code).
    pub id: String,
    /// Name of the set.
    pub name: String,
    /// The forms a swap crosses ("Tablet / Capsule"), when more than one.
    pub formulation_swap: Option<String>,
    /// Its presentations.
    pub codes: Vec<PpuCode>,
    /// Target PPU in pence per unit, per mode.
    pub target: [Option<f64>; 2],
}

/// One organisation's amounts for one set in the detail month.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PpuRow {
    /// Position of the set in [`Ppu::sets`].
    pub set: u32,
    /// Units prescribed.
    pub quantity: f64,
    /// Discounted NIC in pence, per mode.
    pub nic: PerMode,
    /// Saving in pence, per mode.
    pub saving: PerMode,
}

impl PpuRow {
    /// Price per unit in pence under `mode` (None without quantity).
    pub fn ppu(&self, mode: Mode) -> Option<f64> {
        (self.quantity > 0.0).then(|| self.nic[mode.index()] / self.quantity)
    }
}

/// One organisation's headline in one month under the default thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PpuTotal {
    /// The month.
    pub month: YearMonth,
    /// Sets counted, per mode.
    pub sets: [u32; 2],
    /// Their savings in pence, per mode.
    pub saving: PerMode,
}

/// What the PPU pages read.
#[derive(Clone, Debug, Default)]
pub struct Ppu {
    /// The month the sets, targets and per-set savings are for (the latest computed).
    pub month: Option<YearMonth>,
    sets: Vec<PpuSet>,
    set_pos: FxHashMap<String, u32>,
    /// Level → organisation code → rows, sorted by set.
    rows: FxHashMap<String, FxHashMap<String, Vec<PpuRow>>>,
    /// Level → organisation code → headlines, oldest month first.
    totals: FxHashMap<String, FxHashMap<String, Vec<PpuTotal>>>,
}

impl Ppu {
    /// An empty store for `month`'s detail.
    pub fn new(month: YearMonth) -> Self {
        Self { month: Some(month), ..Default::default() }
    }

    /// Adds a set; returns its position, which rows refer to.
    pub fn add_set(&mut self, set: PpuSet) -> u32 {
        let i = self.sets.len() as u32;
        self.set_pos.insert(set.id.clone(), i);
        self.sets.push(set);
        i
    }

    /// Adds an organisation's row for a set (added by [`Ppu::add_set`]).
    pub fn add_row(&mut self, org_type: &str, org_code: &str, row: PpuRow) {
        crate::nested_entry(&mut self.rows, org_type, org_code).push(row);
    }

    /// Adds an organisation's headline for a month.
    pub fn add_total(&mut self, org_type: &str, org_code: &str, total: PpuTotal) {
        crate::nested_entry(&mut self.totals, org_type, org_code).push(total);
    }

    /// Sorts rows by set and headlines by month, once everything is added.
    pub fn finish(mut self) -> Self {
        for orgs in self.rows.values_mut() {
            for rows in orgs.values_mut() {
                rows.sort_by_key(|r| r.set);
            }
        }
        for orgs in self.totals.values_mut() {
            for totals in orgs.values_mut() {
                totals.sort_by_key(|t| t.month);
            }
        }
        self
    }

    /// Every set, in the order added.
    pub fn sets(&self) -> &[PpuSet] {
        &self.sets
    }

    /// The set with this id and its position.
    pub fn set(&self, id: &str) -> Option<(u32, &PpuSet)> {
        self.set_pos.get(id).map(|&i| (i, &self.sets[i as usize]))
    }

    /// An organisation's rows in the detail month, by set position.
    pub fn rows(&self, org_type: &str, org_code: &str) -> &[PpuRow] {
        self.rows.get(org_type).and_then(|o| o.get(org_code)).map_or(&[], Vec::as_slice)
    }

    /// An organisation's row for one set.
    pub fn row(&self, org_type: &str, org_code: &str, set: u32) -> Option<&PpuRow> {
        let rows = self.rows(org_type, org_code);
        rows.binary_search_by_key(&set, |r| r.set).ok().map(|i| &rows[i])
    }

    /// An organisation's opportunities under `mode`: rows whose saving reaches `min_pence` (and
    /// is above nothing), largest first, ties by set id.
    pub fn opportunities(&self, org_type: &str, org_code: &str, mode: Mode, min_pence: f64) -> Vec<&PpuRow> {
        let m = mode.index();
        let mut out: Vec<&PpuRow> =
            self.rows(org_type, org_code).iter().filter(|r| r.saving[m] > 0.0 && r.saving[m] >= min_pence).collect();
        out.sort_by(|a, b| {
            b.saving[m]
                .total_cmp(&a.saving[m])
                .then_with(|| self.sets[a.set as usize].id.cmp(&self.sets[b.set as usize].id))
        });
        out
    }

    /// An organisation's headline in every month computed, oldest first.
    pub fn totals(&self, org_type: &str, org_code: &str) -> &[PpuTotal] {
        self.totals.get(org_type).and_then(|o| o.get(org_code)).map_or(&[], Vec::as_slice)
    }

    /// Rows held in memory, for the server's start-up report.
    pub fn row_count(&self) -> usize {
        self.rows.values().flat_map(|o| o.values()).map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(id: &str) -> PpuSet {
        PpuSet { id: id.into(), name: id.into(), formulation_swap: None, codes: Vec::new(), target: [Some(1.0); 2] }
    }

    #[test]
    fn opportunities_rank_by_saving_under_the_mode_and_keep_the_threshold() {
        let mut p = Ppu::new(YearMonth::new(2025, 1).unwrap());
        let (a, b, c) = (p.add_set(set("A")), p.add_set(set("B")), p.add_set(set("C")));
        let row = |set, s: f64, r: f64| PpuRow { set, quantity: 10.0, nic: [20.0; 2], saving: [s, r] };
        p.add_row("icb", "Q1", row(c, 500.0, 900.0));
        p.add_row("icb", "Q1", row(a, 2_000.0, 100.0));
        p.add_row("icb", "Q1", row(b, 500.0, 0.0));
        let p = p.finish();
        let ids = |mode, min| -> Vec<&str> {
            p.opportunities("icb", "Q1", mode, min).iter().map(|r| p.sets()[r.set as usize].id.as_str()).collect()
        };
        assert_eq!(ids(Mode::DateCorrect, 0.0), ["A", "B", "C"], "ties by id");
        assert_eq!(ids(Mode::DateCorrect, 1_000.0), ["A"]);
        assert_eq!(ids(Mode::Reference, 0.0), ["C", "A"], "a zero saving is no opportunity");
        assert_eq!(p.row("icb", "Q1", b).map(|r| r.ppu(Mode::DateCorrect)), Some(Some(2.0)));
        assert!(p.rows("icb", "Q2").is_empty() && p.totals("icb", "Q1").is_empty());
    }
}
