//! Readers for the NHS files IPMO is built on.
//!
//! Every reader matches columns by header name through a table of aliases (never by position,
//! because NHSBSA and NHS Digital reorder and rename columns between releases), accepts plain,
//! gzip and zip files with or without a byte-order mark and any line ending, and reports bad input
//! as an error naming the file, line, column and value. Readers do no storage: they hand typed rows
//! to the warehouse crate, which keeps this crate free of Arrow and DataFusion and quick to test.

pub mod bnf;
pub mod bnf_snomed;
pub mod concessions;
pub mod dmd;
pub mod epd;
mod error;
pub mod imd;
pub mod indicator;
pub mod list_sizes;
pub mod orgs;
pub mod scmd;
mod source;
mod table;
pub mod tariff;
pub mod trusts;

pub use error::{IngestError, Rejected, RowError};
pub use source::{SourceFile, open_source};
pub use table::{Table, normalise_header};

/// Called with a running row count while a file is read, so a command line can show progress on
/// files of twenty million rows without the readers knowing how it is shown.
pub type ProgressFn<'a> = &'a mut dyn FnMut(u64);

/// Limits on bad rows, set by `--max-errors`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorPolicy {
    /// How many bad rows may be skipped before the load fails; 0 fails on the first.
    pub max_errors: u64,
}
