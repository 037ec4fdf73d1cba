//! Price-concession costs as the dashboard serves them: for each recent concession month, every
//! organisation's extra cost per conceded presentation. The warehouse fills it from
//! `concession_costs`, keeping the newest [`MONTHS_KEPT`] months so that serving memory does not
//! grow with history (the table and `ipmo sql` keep every month).

use ipmo_domain::YearMonth;
use rustc_hash::FxHashMap;

/// Concession months held for the pages: a year and the current month.
pub const MONTHS_KEPT: usize = 13;

/// One concession month.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConcessionMonth {
    /// The month conceded.
    pub month: YearMonth,
    /// The prescribing month whose quantities priced it.
    pub quantity_month: YearMonth,
    /// Whether those quantities are an earlier month's (the month's prescribing is not out yet).
    pub estimate: bool,
}

/// One conceded presentation for one organisation in one month.
#[derive(Clone, Debug, PartialEq)]
pub struct ConcessionCost {
    /// Current BNF code.
    pub bnf_code: String,
    /// The conceded pack standing for it (the largest increase per unit).
    pub pack: String,
    /// The concession's words for that pack.
    pub pack_name: String,
    /// Units prescribed.
    pub quantity: f64,
    /// Tariff price per unit paid, in pence.
    pub tariff_ppu: f64,
    /// Conceded price per unit paid, in pence.
    pub concession_ppu: f64,
    /// What the concession cost above the Tariff, in pence.
    pub extra_cost: f64,
}

/// What the concession pages read.
#[derive(Clone, Debug, Default)]
pub struct Concessions {
    months: Vec<ConcessionMonth>,
    /// Level → organisation code → month → costs, largest first.
    costs: FxHashMap<String, FxHashMap<String, FxHashMap<YearMonth, Vec<ConcessionCost>>>>,
}

impl Concessions {
    /// Adds a month (once, before or after its costs).
    pub fn add_month(&mut self, month: ConcessionMonth) {
        if !self.months.iter().any(|m| m.month == month.month) {
            self.months.push(month);
        }
    }

    /// Adds one organisation's cost of one presentation in `month`.
    pub fn add_cost(&mut self, org_type: &str, org_code: &str, month: YearMonth, cost: ConcessionCost) {
        self.costs
            .entry(org_type.to_string())
            .or_default()
            .entry(org_code.to_string())
            .or_default()
            .entry(month)
            .or_default()
            .push(cost);
    }

    /// Sorts months oldest first and costs largest first, once everything is added.
    pub fn finish(mut self) -> Self {
        self.months.sort_by_key(|m| m.month);
        for orgs in self.costs.values_mut() {
            for months in orgs.values_mut() {
                for costs in months.values_mut() {
                    costs.sort_by(|a, b| {
                        b.extra_cost.total_cmp(&a.extra_cost).then_with(|| a.bnf_code.cmp(&b.bnf_code))
                    });
                }
            }
        }
        self
    }

    /// The concession months held, oldest first.
    pub fn months(&self) -> &[ConcessionMonth] {
        &self.months
    }

    /// The newest concession month held.
    pub fn newest(&self) -> Option<ConcessionMonth> {
        self.months.last().copied()
    }

    /// An organisation's costs in `month`, largest first.
    pub fn costs(&self, org_type: &str, org_code: &str, month: YearMonth) -> &[ConcessionCost] {
        self.costs.get(org_type).and_then(|o| o.get(org_code)).and_then(|m| m.get(&month)).map_or(&[], Vec::as_slice)
    }

    /// An organisation's total extra cost in each month held, oldest first.
    pub fn totals(&self, org_type: &str, org_code: &str) -> Vec<(ConcessionMonth, f64)> {
        self.months
            .iter()
            .map(|m| (*m, self.costs(org_type, org_code, m.month).iter().map(|c| c.extra_cost).sum()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_come_back_largest_first_and_months_in_order() {
        let m = |s: &str| s.parse::<YearMonth>().unwrap();
        let mut c = Concessions::default();
        c.add_month(ConcessionMonth { month: m("2025-02"), quantity_month: m("2025-01"), estimate: true });
        c.add_month(ConcessionMonth { month: m("2025-01"), quantity_month: m("2025-01"), estimate: false });
        let cost = |code: &str, extra: f64| ConcessionCost {
            bnf_code: code.into(),
            pack: "p".into(),
            pack_name: "P 28".into(),
            quantity: 1.0,
            tariff_ppu: 1.0,
            concession_ppu: 1.0 + extra,
            extra_cost: extra,
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
