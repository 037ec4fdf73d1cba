//! The statistics behind every IPMO chart and alert, each in its own module with its source.
//!
//! Nothing here knows about prescribing: functions take plain series of numbers so that they can
//! be checked against worked examples by hand, and so that the measures engine, imported
//! indicators and the web charts all use one implementation.

pub mod cusum;
pub mod funnel;
pub mod percentile;
pub mod spc;

/// Which way a measure should move, so that statistics can say "improvement" or "concern".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Lower values are better (most measures: broad-spectrum antibiotics, high-dose opioids).
    LowerIsBetter,
    /// Higher values are better (e.g. generic prescribing).
    HigherIsBetter,
    /// No value judgement: variation is flagged but called neither good nor bad.
    Neither,
}
