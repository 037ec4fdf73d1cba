//! Price changes as the dashboard serves them, for both kinds the value programme sizes: price
//! concessions (what each conceded presentation cost above the Drug Tariff) and Tariff changes
//! (what this month's new prices cost against last month's). For each recent month, every
//! organisation's impact per presentation. The warehouse fills one from `concession_costs` and
//! one from `price_change_costs`, keeping the newest [`MONTHS_KEPT`] months so that serving memory
//! does not grow with history (the tables and `ipmo sql` keep every month).

use ipmo_domain::YearMonth;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// The price per unit before and after, and the impact, as the stored `table` names them:
/// `concession_costs` (the Tariff's price, the conceded price, the extra cost) or
/// `price_change_costs` (last month's Tariff price, this month's, the impact). The two tables
/// differ only in these names; the warehouse writes them and the pages' CSV uses them.
pub fn cost_columns(table: &str) -> [&'static str; 3] {
    match table {
        "concession_costs" => ["tariff_ppu_pence", "concession_ppu_pence", "extra_cost_pence"],
        _ => ["ppu_before_pence", "ppu_after_pence", "impact_pence"],
    }
}

/// Months held for the pages: a year and the current month.
pub const MONTHS_KEPT: usize = 13;

/// One month of price changes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImpactMonth {
    /// The month the prices are for.
    pub month: YearMonth,
    /// The prescribing month whose quantities priced it.
    pub quantity_month: YearMonth,
    /// Whether those quantities are an earlier month's (the month's prescribing is not out yet).
    pub estimate: bool,
}

/// The presentation and pack a price change is traced to, with its prices per unit in the month.
/// Every organisation's cost of one presentation in a month shares one of these: at national
/// scale a release holds tens of millions of costs but a few thousand packs a month, and keeping
/// three strings and two prices in each cost took gigabytes.
#[derive(Clone, Debug, PartialEq)]
pub struct PricedPack {
    /// Current BNF code.
    pub bnf_code: String,
    /// The pack standing for it (the largest change per unit).
    pub pack: String,
    /// The pack in words (the concession's, or the Tariff's medicine and pack size).
    pub pack_name: String,
    /// Price per unit paid before (the Tariff's, or last month's Tariff's), in pence.
    pub before: f64,
    /// Price per unit paid after (the conceded, or this month's Tariff's), in pence.
    pub after: f64,
}

/// One presentation's price change for one organisation in one month. It reads as its pack
/// (`cost.bnf_code`, `cost.pack`, `cost.pack_name`, `cost.before`, `cost.after`) through `Deref`.
#[derive(Clone, Debug, PartialEq)]
pub struct ImpactCost {
    /// The presentation, pack and prices, shared.
    pub priced: Arc<PricedPack>,
    /// Units prescribed.
    pub quantity: f64,
    /// `quantity × (after − before)` in pence: the extra cost (negative: a saving).
    pub impact: f64,
}

impl std::ops::Deref for ImpactCost {
    type Target = PricedPack;
    fn deref(&self) -> &PricedPack {
        &self.priced
    }
}

/// What the concession and Tariff-change pages read.
#[derive(Clone, Debug, Default)]
pub struct PriceImpacts {
    months: Vec<ImpactMonth>,
    /// Level → organisation code → its position in `lists` (a handful of levels, searched in
    /// turn; a national release adds tens of millions of costs, so each costs one lookup).
    slots: Vec<(String, FxHashMap<String, u32>)>,
    /// Per organisation, each month's costs, largest impact first once finished.
    lists: Vec<Vec<(YearMonth, Vec<ImpactCost>)>>,
}

impl PriceImpacts {
    /// Adds a month (once, before or after its costs).
    pub fn add_month(&mut self, month: ImpactMonth) {
        if !self.months.iter().any(|m| m.month == month.month) {
            self.months.push(month);
        }
    }

    /// Adds one organisation's cost of one presentation in `month`.
    pub fn add_cost(&mut self, org_type: &str, org_code: &str, month: YearMonth, cost: ImpactCost) {
        let slot = self.org_slot(org_type, org_code);
        self.add_cost_at(slot, month, cost);
    }

    /// Where an organisation's costs are kept, for [`PriceImpacts::add_cost_at`]: a loader that
    /// meets the same organisations again and again (a dictionary-encoded column) looks each up
    /// once rather than once a row.
    pub fn org_slot(&mut self, org_type: &str, org_code: &str) -> u32 {
        let level = match self.slots.iter().position(|(l, _)| l == org_type) {
            Some(i) => i,
            None => {
                self.slots.push((org_type.to_string(), FxHashMap::default()));
                self.slots.len() - 1
            }
        };
        let orgs = &mut self.slots[level].1;
        match orgs.get(org_code) {
            Some(&s) => s,
            None => {
                let s = u32::try_from(self.lists.len()).expect("fewer than 4 billion organisations");
                orgs.insert(org_code.to_string(), s);
                self.lists.push(Vec::new());
                s
            }
        }
    }

    /// Adds a cost of one presentation in `month` to the organisation at `slot` (from
    /// [`PriceImpacts::org_slot`] on this value).
    pub fn add_cost_at(&mut self, slot: u32, month: YearMonth, cost: ImpactCost) {
        // Costs arrive a month at a time, so the month sought is nearly always the last.
        let Some(months) = self.lists.get_mut(slot as usize) else { return };
        match months.iter_mut().rev().find(|(m, _)| *m == month) {
            Some((_, costs)) => costs.push(cost),
            None => months.push((month, vec![cost])),
        }
    }

    /// Sorts months oldest first and costs by the size of their impact, once everything is added.
    pub fn finish(mut self) -> Self {
        self.months.sort_by_key(|m| m.month);
        for months in &mut self.lists {
            months.sort_by_key(|(m, _)| *m);
            for (_, costs) in months.iter_mut() {
                costs.shrink_to_fit();
                costs.sort_by(|a, b| {
                    b.impact.abs().total_cmp(&a.impact.abs()).then_with(|| a.bnf_code.cmp(&b.bnf_code))
                });
            }
        }
        self
    }

    /// The months held, oldest first.
    pub fn months(&self) -> &[ImpactMonth] {
        &self.months
    }

    /// The newest month held.
    pub fn newest(&self) -> Option<ImpactMonth> {
        self.months.last().copied()
    }

    /// An organisation's costs in `month`, largest impact (either way) first.
    pub fn costs(&self, org_type: &str, org_code: &str, month: YearMonth) -> &[ImpactCost] {
        self.slots
            .iter()
            .find(|(l, _)| l == org_type)
            .and_then(|(_, orgs)| orgs.get(org_code))
            .and_then(|&slot| self.lists[slot as usize].iter().find(|(m, _)| *m == month))
            .map_or(&[], |(_, costs)| costs.as_slice())
    }

    /// An organisation's total impact in each month held, oldest first.
    pub fn totals(&self, org_type: &str, org_code: &str) -> Vec<(ImpactMonth, f64)> {
        self.months
            .iter()
            .map(|m| (*m, self.costs(org_type, org_code, m.month).iter().map(|c| c.impact).sum()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_come_back_largest_first_and_months_in_order() {
        let m = |s: &str| s.parse::<YearMonth>().unwrap();
        let mut c = PriceImpacts::default();
        c.add_month(ImpactMonth { month: m("2025-02"), quantity_month: m("2025-01"), estimate: true });
        c.add_month(ImpactMonth { month: m("2025-01"), quantity_month: m("2025-01"), estimate: false });
        let cost = |code: &str, extra: f64| ImpactCost {
            priced: Arc::new(PricedPack {
                bnf_code: code.into(),
                pack: "p".into(),
                pack_name: "P 28".into(),
                before: 1.0,
                after: 1.0 + extra,
            }),
            quantity: 1.0,
            impact: extra,
        };
        c.add_cost("icb", "Q1", m("2025-01"), cost("A", 5.0));
        c.add_cost("icb", "Q1", m("2025-01"), cost("B", 9.0));
        c.add_cost("icb", "Q1", m("2025-02"), cost("A", 2.0));
        let c = c.finish();
        assert_eq!(c.newest().map(|n| (n.month, n.estimate)), Some((m("2025-02"), true)));
        assert_eq!(
            c.costs("icb", "Q1", m("2025-01")).iter().map(|x| x.bnf_code.as_str()).collect::<Vec<_>>(),
            ["B", "A"]
        );
        assert_eq!(c.totals("icb", "Q1").iter().map(|(_, t)| *t).collect::<Vec<_>>(), [14.0, 2.0]);
        assert!(c.costs("icb", "Q2", m("2025-01")).is_empty());
    }
}
