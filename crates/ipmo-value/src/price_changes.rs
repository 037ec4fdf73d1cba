//! Drug Tariff price changes sized against prescribing: when a pack's Tariff price or category
//! changes from one month to the next, every unit dispensed costs the difference per unit paid
//! (each price after the discount in force in its month for its category). Per presentation the
//! pack with the largest change per unit stands for it, as OpenPrescribing's prototype does
//! (`tariff_price_changes`), so that an ICB sees what this month's Tariff does to its bill.

use crate::discount::tariff_factor;
use ipmo_domain::YearMonth;
use std::collections::BTreeMap;

/// A pack's Tariff entry in one month.
#[derive(Clone, Debug, PartialEq)]
pub struct TariffPack {
    /// The presentation's current BNF code.
    pub bnf_code: String,
    /// The pack (VMPP id).
    pub pack: String,
    /// Units in the pack.
    pub pack_size: f64,
    /// Part VIIIA category letter.
    pub category: Option<char>,
    /// Basic price of the pack in pence.
    pub price_pence: f64,
}

/// One presentation's change between two Tariff months.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceChange {
    /// Current BNF code.
    pub bnf_code: String,
    /// The pack standing for it (the largest change per unit).
    pub pack: String,
    /// Price per unit paid the month before, in pence.
    pub before: f64,
    /// Price per unit paid this month, in pence.
    pub after: f64,
    /// The category before and after.
    pub categories: (Option<char>, Option<char>),
}

impl PriceChange {
    /// What each unit costs more (negative: less) than the month before.
    pub fn change(&self) -> f64 {
        self.after - self.before
    }
}

/// The presentations whose packs changed price or category from `previous` (the Tariff of
/// `previous_month`) to `current` (of `month`), each by its pack with the largest change per
/// unit paid, sorted by BNF code. A pack in only one of the months is not a change; a change in
/// price per unit smaller than `min_relative` of the old price (0.01 is 1%) is left out.
pub fn changes(
    (previous_month, previous): (YearMonth, &[TariffPack]),
    (month, current): (YearMonth, &[TariffPack]),
    min_relative: f64,
) -> Vec<PriceChange> {
    let before: BTreeMap<&str, &TariffPack> = previous.iter().map(|p| (p.pack.as_str(), p)).collect();
    let mut best: BTreeMap<&str, PriceChange> = BTreeMap::new();
    for now in current {
        let Some(then) = before.get(now.pack.as_str()) else { continue };
        if then.pack_size <= 0.0 || now.pack_size <= 0.0 {
            continue;
        }
        let paid = |p: &TariffPack, m: YearMonth| p.price_pence * tariff_factor(m, p.category) / p.pack_size;
        let change = PriceChange {
            bnf_code: now.bnf_code.clone(),
            pack: now.pack.clone(),
            before: paid(then, previous_month),
            after: paid(now, month),
            categories: (then.category, now.category),
        };
        if change.change().abs() <= min_relative * change.before.abs() || change.change() == 0.0 {
            continue;
        }
        match best.get(now.bnf_code.as_str()) {
            Some(b) if b.change().abs() >= change.change().abs() => {}
            _ => {
                best.insert(&now.bnf_code, change);
            }
        }
    }
    best.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(code: &str, id: &str, size: f64, category: char, price: f64) -> TariffPack {
        TariffPack {
            bnf_code: code.into(),
            pack: id.into(),
            pack_size: size,
            category: Some(category),
            price_pence: price,
        }
    }

    #[test]
    fn a_change_is_priced_per_unit_paid_in_each_month() {
        let (march, april) = (YearMonth::new(2024, 3).unwrap(), YearMonth::new(2024, 4).unwrap());
        let before =
            [pack("A", "28", 28.0, 'M', 280.0), pack("B", "30", 30.0, 'C', 300.0), pack("C", "7", 7.0, 'A', 70.0)];
        let after =
            [pack("A", "28", 28.0, 'M', 560.0), pack("B", "30", 30.0, 'C', 300.0), pack("D", "5", 5.0, 'M', 50.0)];
        let c = changes((march, &before), (april, &after), 0.01);
        // A doubled: 10p × 0.928 = 9.28p a unit in March, 20p × 0.80 = 16p in April.
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].bnf_code, "A");
        assert!((c[0].change() - (16.0 - 9.28)).abs() < 1e-12);
        // B kept its price, but April's scale takes 5% where March took 7.2%: 9.28p → 9.5p.
        assert!((c[1].change() - (9.5 - 9.28)).abs() < 1e-12);
        // Within one scale, an unchanged price is no change; C and D are in one month only.
        let may = YearMonth::new(2024, 5).unwrap();
        assert!(changes((april, &after), (may, &after), 0.0).is_empty());
    }

    #[test]
    fn the_largest_change_per_unit_stands_for_a_presentation_and_small_ones_are_left_out() {
        let (jan, feb) = (YearMonth::new(2025, 1).unwrap(), YearMonth::new(2025, 2).unwrap());
        let before =
            [pack("A", "28", 28.0, 'M', 280.0), pack("A", "56", 56.0, 'M', 560.0), pack("B", "10", 10.0, 'M', 1000.0)];
        let after =
            [pack("A", "28", 28.0, 'M', 300.0), pack("A", "56", 56.0, 'M', 448.0), pack("B", "10", 10.0, 'M', 1005.0)];
        let c = changes((jan, &before), (feb, &after), 0.01);
        // A: the 28 rose 0.571p a unit, the 56 fell 1.6p: the fall stands for it. B moved 0.5%.
        assert_eq!(c.iter().map(|x| x.pack.as_str()).collect::<Vec<_>>(), ["56"]);
        assert!((c[0].change() - (448.0 - 560.0) * 0.8 / 56.0).abs() < 1e-12);
    }
}
