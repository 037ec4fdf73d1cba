//! The medicines value programme's computations, apart from storage and pages: which
//! presentations a prescriber could swap for one another at the same dose ([`substitution`]), so
//! that price-per-unit variation within such a set is money that could be saved. Inputs are plain
//! facts read from dm+d by the warehouse; outputs are plain sets, each with the rule that joined
//! its members and the reasons products were left out.

pub mod substitution;
