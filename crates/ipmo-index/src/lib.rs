//! The prescribing index behind `ipmo analyse`, the dashboard's analyse page and BNF browser, and
//! `/api/v1/analyse`: ad-hoc "these BNF codes over those, per organisation per month" answered in
//! milliseconds without planning a query.
//!
//! Layout: every prescribing row of a standard GP practice, under its current BNF code, sorted by
//! (code, month, practice) into parallel columns; `code_rows[i]..code_rows[i + 1]` are the rows of
//! the i-th code in sorted order. A BNF prefix is therefore one contiguous run of codes, found by
//! binary search, and its rows one contiguous run. Node totals (per practice and month, for each
//! BNF chapter, section, paragraph and chemical worth it) follow the presentation rows, so a broad
//! prefix reads one row per practice-month. An analysis sums the runs of its numerator and
//! denominator into practice × month cells, then adds practices up into their organisations for
//! each month. Rows live in the index file and are read run by run; only the catalogue is held. Items, actual cost (1e-5 £) and NIC (pence) are integers, so sums
//! are exact and do not depend on order; quantity is a float, as published.
//!
//! The same definitions as the measures engine apply: only standard GP practices in the
//! organisation map for the month count (so `…998` and other prescribers are left out); per
//! 1,000 patients, practices without a list size that month are left out of numerator and
//! denominator alike. The warehouse holds a DataFusion SQL implementation of the same analysis as
//! the reference, and a test requires the two to agree.

mod build;
mod file;
mod query;
mod rows;

pub use build::{IndexBuilder, NodePolicy};
pub use file::{FORMAT_VERSION, read_index, write_index};
pub use query::{Activity, Analysis, AnalysisRow, CodeSet, Denominator, Level, Totals, ValueKind};
pub use rows::Columns;
use rows::RowStore;

use ipmo_domain::YearMonth;

/// Marks "no organisation" in a membership slot.
pub const NONE: u32 = u32::MAX;

/// Why an index could not be built, read or queried.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not an index this version can read.
    #[error(
        "{path}: not a usable prescribing index ({detail}); it is rebuilt from the warehouse on the next `ipmo analyse`"
    )]
    Format {
        /// The file.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// More months or practices than the compact row format holds.
    #[error("the index holds at most {max} {what}; this warehouse has {got}")]
    TooLarge {
        /// Months or practices.
        what: &'static str,
        /// The limit.
        max: usize,
        /// How many there are.
        got: usize,
    },
    /// A bad analysis request.
    #[error("{0}")]
    Query(String),
    /// A part of an analysis the data cannot answer: a code that matches no presentation, a
    /// period outside the months held, or months with no practice in the organisation map.
    #[error("{parameter}: {message}")]
    Unanswerable {
        /// `numerator`, `denominator`, `from`, `to` or `organisations`.
        parameter: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Where one practice belongs in one month.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Indices into [`PrescribingIndex::orgs`] for PCN, sub-ICB location, ICB and region
    /// ([`NONE`] when it has no PCN).
    pub orgs: [u32; 4],
    /// Registered patients, when known that month.
    pub list_size: Option<f64>,
}

/// A BNF level whose per-practice totals the index keeps, so that a broad prefix reads one row
/// per practice-month instead of every presentation's: chapter, section, paragraph, chemical.
pub const NODE_DEPTHS: [usize; 4] = [2, 4, 6, 9];

/// The totals of one BNF node (all codes starting with one chapter, section, paragraph or
/// chemical prefix) per practice and month, kept as rows after the presentation rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Node {
    /// First code index the node covers.
    pub first: u32,
    /// One past its last code index.
    pub end: u32,
    /// First row of its totals.
    pub row_start: u64,
    /// One past its last row.
    pub row_end: u64,
}

/// The prescribing of every standard GP practice, month by month, by current BNF code.
#[derive(Debug, Default)]
pub struct PrescribingIndex {
    /// Months held, oldest first.
    pub months: Vec<YearMonth>,
    /// Practice codes; a row's practice is an index into this.
    pub practices: Vec<String>,
    /// Organisation codes of the four parent levels: PCN, sub-ICB location, ICB, region.
    pub orgs: [Vec<String>; 4],
    /// `membership[month][practice]`: None when the practice is not a standard practice in the
    /// map that month.
    pub membership: Vec<Vec<Option<Member>>>,
    /// Current BNF codes, sorted.
    pub codes: Vec<String>,
    /// Row range of each code: `code_rows[i]..code_rows[i + 1]`.
    pub code_rows: Vec<u64>,
    /// Stored node totals for each of [`NODE_DEPTHS`], each list sorted by first code. Only nodes
    /// that save rows are kept.
    pub nodes: Vec<Vec<Node>>,
    /// What the index was built from (warehouse files and options), to tell when it is stale.
    pub inputs: Vec<String>,
    rows: RowStore,
}

impl PrescribingIndex {
    /// Rows held (presentation rows and node totals).
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Whether rows are read from the index file rather than held in memory.
    pub fn file_backed(&self) -> bool {
        matches!(self.rows, RowStore::File(_))
    }

    /// Approximate bytes the process holds for the index: the catalogue, plus the rows when they
    /// are in memory (a file-backed index leaves them to the page cache).
    pub fn memory_bytes(&self) -> usize {
        let rows = if self.file_backed() { 0 } else { self.rows() * rows::WIDTHS.iter().sum::<usize>() };
        rows + self.code_rows.len() * 8
            + self.nodes.iter().map(|l| l.len() * std::mem::size_of::<Node>()).sum::<usize>()
            + self.codes.iter().map(|c| c.len() + 24).sum::<usize>()
            + self.membership.iter().map(|m| m.len() * std::mem::size_of::<Option<Member>>()).sum::<usize>()
    }

    /// Every row, in memory (tests and checks; a national index is large).
    pub fn columns(&self) -> Result<Columns, IndexError> {
        self.rows.columns()
    }

    /// The run of sorted codes starting with `prefix`.
    pub fn prefix_range(&self, prefix: &str) -> std::ops::Range<usize> {
        let lo = self.codes.partition_point(|c| c.as_str() < prefix);
        let hi = lo + self.codes[lo..].partition_point(|c| c.starts_with(prefix));
        lo..hi
    }
}
