//! The pharmacy discount: the share of a reimbursed price the NHS claws back from contractors,
//! which every cost computation here must take off NIC to get what was paid. Before April 2024 a
//! national average deduction of 7.2% applied to everything (conceded prices included until
//! March 2023, none on them after); from April 2024 the deduction depends on the Drug Tariff
//! category: 20% on categories A and M, 5% on everything else.

use ipmo_domain::YearMonth;

/// The share paid under the national average deduction (7.2%).
pub const AVERAGE_DISCOUNT_FACTOR: f64 = 0.928;
/// The month the category scale began (April 2024).
pub const CATEGORY_SCALE_FROM: (u16, u8) = (2024, 4);
/// The month from which conceded prices carry no deduction (April 2023).
pub const CONCESSIONS_UNDISCOUNTED_FROM: (u16, u8) = (2023, 4);

fn on_or_after(month: YearMonth, (y, m): (u16, u8)) -> bool {
    YearMonth::new(y, m).is_some_and(|start| month >= start)
}

/// The share paid under the April 2024 scale for a pack of `category` (a Part VIIIA letter;
/// None for a brand or anything not in the Tariff).
pub fn category_scale(category: Option<char>) -> f64 {
    match category {
        Some('A' | 'M') => 0.80,
        _ => 0.95,
    }
}

/// The share of a Tariff (or list) price paid in `month`.
pub fn tariff_factor(month: YearMonth, category: Option<char>) -> f64 {
    if on_or_after(month, CATEGORY_SCALE_FROM) { category_scale(category) } else { AVERAGE_DISCOUNT_FACTOR }
}

/// The share of a conceded price paid in `month`.
pub fn concession_factor(month: YearMonth) -> f64 {
    if on_or_after(month, CONCESSIONS_UNDISCOUNTED_FROM) { 1.0 } else { AVERAGE_DISCOUNT_FACTOR }
}
