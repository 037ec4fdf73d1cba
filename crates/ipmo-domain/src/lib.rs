//! Value types shared by every IPMO crate.
//!
//! NHS files spell the same thing many ways (months as `201709`, `2017_09` or `01SEP2017`; money
//! with two or five decimals; practice codes padded with spaces). Parsing each of them once, into
//! types that cannot hold a malformed value, lets the readers, the warehouse and the measures agree
//! on what a month, a code or a pound is without re-checking it.

mod codes;
pub mod display;
mod money;
mod month;
pub mod practice;

pub use codes::{BnfCode, CodeError, OdsCode, is_unidentified_practice};
pub use money::{MoneyError, parse_decimal, parse_fixed_point, parse_whole_number};
pub use month::{MonthError, YearMonth, parse_extract_date};
