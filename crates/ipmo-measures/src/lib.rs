//! IPMO's measure library: measures defined as data, resolved to BNF codes, and computed for
//! every organisation level.
//!
//! A measure is a TOML file in `measures/` (see [`definition`]): a numerator and a denominator,
//! each a value (items, quantity, cost, a weighted quantity) summed over BNF code patterns, or a
//! list size. Keeping definitions as data lets a pharmacist read and review exactly what a number
//! counts (`ipmo measures show`), and lets the engine compute all of them in one pass over each
//! month of prescribing ([`compute`]). Nothing here knows about Parquet or DataFusion: the
//! warehouse feeds rows in and stores what comes out.

pub mod analysis;
pub mod codes;
pub mod compute;
pub mod cross_sector;
pub mod definition;
mod error;
pub mod library;
pub mod ranking;
pub mod savings;
pub mod selection;
pub mod series;

pub use codes::CodePattern;
pub use definition::{Change, Fidelity, Measure, Quantity, Side, Status};
pub use error::{LibraryErrors, MeasureError};
pub use library::{DeadCriterion, Library, UNKNOWN_EXCLUDED};
pub use selection::{Ingredient, Presentation, Product, ProductRule, QuantityRule};
