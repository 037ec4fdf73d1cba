//! The medicines value programme's computations, apart from storage and pages: which
//! presentations a prescriber could swap for one another at the same dose ([`substitution`]);
//! what price-per-unit variation within such a set says could be saved ([`ppu`]); what price
//! concessions cost ([`concessions`]) and what a month's Drug Tariff changes cost
//! ([`price_changes`]), all after the pharmacy discount in force ([`discount`]). Inputs are plain
//! facts the warehouse reads (dm+d, prices, a month's prescribing by practice); outputs are plain
//! structs: sets with the rule that joined their members and why products were left out, targets
//! and savings per practice and organisation, prices per unit before and after.

pub mod concessions;
pub mod discount;
pub mod gbg;
pub mod ppu;
pub mod price_changes;
pub mod substitution;
