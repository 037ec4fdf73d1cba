//! What price concessions cost: when a generic cannot be bought at its Drug Tariff price, NHS
//! England grants a higher price for the month, and every unit dispensed costs the difference.
//! The method is OpenPrescribing's (`spending_utils.py`): per unit, the conceded price less the
//! Tariff price, each after the discount in force (the 7.2% average deduction on both before
//! April 2023; from then none on the concession, and from April 2024 the category scale on the
//! Tariff price); when several packs of a presentation are conceded, the largest increase per
//! unit; times the quantity an organisation prescribed. A month newer than the newest prescribing
//! is estimated from the newest month's quantities.

use crate::discount::{concession_factor, tariff_factor};
use ipmo_domain::YearMonth;

/// One conceded pack in one month, with its Tariff entry that month.
#[derive(Clone, Debug, PartialEq)]
pub struct ConcededPack {
    /// The presentation's current BNF code.
    pub bnf_code: String,
    /// The pack (VMPP id).
    pub pack: String,
    /// Units in the pack (the VMPP's quantity).
    pub pack_size: f64,
    /// Drug Tariff Part VIIIA category letter.
    pub category: Option<char>,
    /// Tariff price of the pack in pence.
    pub tariff_pence: f64,
    /// Conceded price of the pack in pence.
    pub concession_pence: f64,
}

/// The per-unit prices of a conceded pack in a month, after the discounts in force.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnitPrices {
    /// Tariff price per unit paid, in pence.
    pub tariff: f64,
    /// Conceded price per unit paid, in pence.
    pub concession: f64,
}

impl UnitPrices {
    /// What each unit costs above the Tariff.
    pub fn increase(&self) -> f64 {
        self.concession - self.tariff
    }
}

/// A pack's per-unit prices in `month`; None for a pack of no units.
pub fn unit_prices(month: YearMonth, pack: &ConcededPack) -> Option<UnitPrices> {
    (pack.pack_size > 0.0).then(|| UnitPrices {
        tariff: pack.tariff_pence * tariff_factor(month, pack.category) / pack.pack_size,
        concession: pack.concession_pence * concession_factor(month) / pack.pack_size,
    })
}

/// For each presentation conceded in `month`, the pack with the largest increase per unit and
/// its prices, sorted by BNF code. A concession below the Tariff price (it happens when the
/// Tariff moves up to meet it) counts as no increase, not as a saving.
pub fn largest_increases(month: YearMonth, packs: &[ConcededPack]) -> Vec<(&ConcededPack, UnitPrices)> {
    let mut best: std::collections::BTreeMap<&str, (&ConcededPack, UnitPrices)> = std::collections::BTreeMap::new();
    for pack in packs {
        let Some(prices) = unit_prices(month, pack) else { continue };
        let prices = UnitPrices { concession: prices.concession.max(prices.tariff), ..prices };
        match best.get(pack.bnf_code.as_str()) {
            Some((_, b)) if b.increase() >= prices.increase() => {}
            _ => {
                best.insert(&pack.bnf_code, (pack, prices));
            }
        }
    }
    best.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(code: &str, id: &str, size: f64, category: char, tariff: f64, concession: f64) -> ConcededPack {
        ConcededPack {
            bnf_code: code.into(),
            pack: id.into(),
            pack_size: size,
            category: Some(category),
            tariff_pence: tariff,
            concession_pence: concession,
        }
    }

    #[test]
    fn the_increase_per_unit_follows_the_discounts_in_force() {
        let p = pack("0407010H0AAAMAM", "1", 100.0, 'M', 200.0, 500.0);
        // March 2023: both prices lose 7.2%: (500 − 200) × 0.928 / 100 = 2.784p a unit.
        let march_2023 = unit_prices(YearMonth::new(2023, 3).unwrap(), &p).unwrap();
        assert!((march_2023.increase() - 2.784).abs() < 1e-12);
        // June 2023: the concession is paid in full, the Tariff less 7.2%: 5 − 1.856 = 3.144p.
        let june_2023 = unit_prices(YearMonth::new(2023, 6).unwrap(), &p).unwrap();
        assert!((june_2023.increase() - 3.144).abs() < 1e-12);
        // From April 2024 category M loses 20%: 5 − 1.6 = 3.4p; category C 5%: 5 − 1.9 = 3.1p.
        let april_2024 = YearMonth::new(2024, 4).unwrap();
        assert!((unit_prices(april_2024, &p).unwrap().increase() - 3.4).abs() < 1e-12);
        let c = ConcededPack { category: Some('C'), ..p };
        assert!((unit_prices(april_2024, &c).unwrap().increase() - 3.1).abs() < 1e-12);
        assert_eq!(unit_prices(april_2024, &ConcededPack { pack_size: 0.0, ..c }), None);
    }

    #[test]
    fn the_largest_increase_per_presentation_is_kept() {
        let month = YearMonth::new(2025, 1).unwrap();
        let packs = [
            pack("A", "28", 28.0, 'M', 100.0, 280.0), // 10 − 2.857… = 7.14p
            pack("A", "56", 56.0, 'M', 150.0, 800.0), // 14.29 − 2.14 = 12.14p
            pack("B", "30", 30.0, 'A', 300.0, 150.0), // below the Tariff: no increase
        ];
        let best = largest_increases(month, &packs);
        assert_eq!(best.iter().map(|(p, _)| p.pack.as_str()).collect::<Vec<_>>(), ["56", "30"]);
        assert!((best[0].1.increase() - (800.0 / 56.0 - 150.0 * 0.8 / 56.0)).abs() < 1e-12);
        assert_eq!(best[1].1.increase(), 0.0);
    }
}
