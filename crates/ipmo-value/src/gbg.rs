//! Ghost-branded generics, by OpenPrescribing's inferred method: a generic prescribed with a
//! manufacturer named is paid at that manufacturer's price rather than the Drug Tariff's, which
//! the prescribing data shows as a price per unit above what every other practice paid. For a
//! presentation whose Tariff price per unit is the same for every pack size in the month, the
//! price the NHS pays is inferred as the median practice price per unit (the lower middle value,
//! as SQL `PERCENTILE_DISC(0.5)` takes it); a practice's extra cost is `NIC − quantity × median`,
//! counted when it is at least [`MIN_DELTA_PENCE`] either way, and an organisation's is the sum
//! of its practices' counted values (negatives included). NIC is not discounted here.

/// The smallest practice difference counted, in pence (OpenPrescribing's £2).
pub const MIN_DELTA_PENCE: f64 = 200.0;

/// Presentations the inference gets wrong, with why: a data file, so a reviewer can read it.
pub const IGNORE_LIST: &str = include_str!("../data/gbg_ignore.csv");

/// The ignore list as (BNF code, reason) pairs.
pub fn ignored() -> Vec<(&'static str, &'static str)> {
    IGNORE_LIST.lines().skip(1).filter_map(|l| l.split_once(',')).collect()
}

/// Whether a presentation's Tariff packs (price, units) all cost the same per unit: only then
/// does one price per unit stand for the presentation. No packs is not constant.
pub fn constant_unit_price(packs: &[(f64, f64)]) -> bool {
    let per_unit: Vec<f64> = packs.iter().filter(|(_, size)| *size > 0.0).map(|(price, size)| price / size).collect();
    let Some(first) = per_unit.first() else { return false };
    per_unit.len() == packs.len() && per_unit.iter().all(|p| (p - first).abs() <= 1e-9 * first.abs().max(1.0))
}

/// One practice's prescribing of one presentation in a month (NIC undiscounted).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    /// Position of the practice in the month's practice list.
    pub practice: usize,
    /// Units prescribed.
    pub quantity: f64,
    /// Net ingredient cost in pence.
    pub nic_pence: f64,
}

/// One presentation's month: the inferred price and every counted practice's extra cost.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeMonth {
    /// The median practice price per unit, in pence.
    pub median_ppu: f64,
    /// (practice, extra cost in pence) where `|extra| ≥ MIN_DELTA_PENCE`.
    pub counted: Vec<(usize, f64)>,
}

/// The inference for one presentation in one month; None when no practice prescribed a unit, or
/// when a practice has cost without quantity (an infinite price per unit: the presentation is
/// skipped, as OpenPrescribing does).
pub fn code_month(cells: &[Cell]) -> Option<CodeMonth> {
    if cells.iter().any(|c| c.quantity == 0.0 && c.nic_pence > 0.0) {
        return None;
    }
    let mut ppus: Vec<f64> = cells.iter().filter(|c| c.quantity > 0.0).map(|c| c.nic_pence / c.quantity).collect();
    if ppus.is_empty() {
        return None;
    }
    ppus.sort_by(f64::total_cmp);
    let median_ppu = ppus[(ppus.len() - 1) / 2];
    let counted = cells
        .iter()
        .map(|c| (c.practice, c.nic_pence - c.quantity * median_ppu))
        .filter(|(_, extra)| extra.abs() >= MIN_DELTA_PENCE)
        .collect();
    Some(CodeMonth { median_ppu, counted })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(practice: usize, quantity: f64, nic_pence: f64) -> Cell {
        Cell { practice, quantity, nic_pence }
    }

    #[test]
    fn the_lower_median_is_the_price_and_small_differences_are_not_counted() {
        // PPUs 10, 10, 12, 30: the lower median is the second value, 10p.
        let cells =
            [cell(0, 100.0, 1_000.0), cell(1, 100.0, 1_000.0), cell(2, 100.0, 1_200.0), cell(3, 100.0, 3_000.0)];
        let r = code_month(&cells).unwrap();
        assert_eq!(r.median_ppu, 10.0);
        // Practice 2 paid 200p more (counted, at the threshold); practice 3 paid 2,000p more.
        assert_eq!(r.counted, [(2, 200.0), (3, 2_000.0)]);
        // Below the median by £2 or more counts too, as a negative.
        let cells = [cell(0, 100.0, 700.0), cell(1, 100.0, 1_000.0), cell(2, 100.0, 1_000.0)];
        assert_eq!(code_month(&cells).unwrap().counted, [(0, -300.0)]);
    }

    #[test]
    fn cost_without_quantity_skips_the_presentation() {
        assert_eq!(code_month(&[cell(0, 10.0, 100.0), cell(1, 0.0, 50.0)]), None);
        assert_eq!(code_month(&[]), None);
    }

    #[test]
    fn only_one_price_per_unit_across_packs_makes_a_presentation_eligible() {
        assert!(constant_unit_price(&[(280.0, 28.0), (560.0, 56.0)]));
        assert!(!constant_unit_price(&[(280.0, 28.0), (500.0, 56.0)]));
        assert!(!constant_unit_price(&[]));
        assert!(!constant_unit_price(&[(280.0, 0.0)]));
        let list = ignored();
        assert_eq!(list.len(), 6);
        assert!(list.iter().any(|(code, why)| *code == "1106000L0AAAAAA" && why.contains("latanoprost")));
    }
}
