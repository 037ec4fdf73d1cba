//! Errors that name the file, line, column and value.

use std::fmt;

/// Most characters of a value quoted in an error message.
pub(crate) const MAX_QUOTED: usize = 200;

/// `value` cut to [`MAX_QUOTED`] characters, saying how long it was.
pub(crate) fn clip(value: &str) -> String {
    let n = value.chars().count();
    if n <= MAX_QUOTED {
        return value.to_string();
    }
    let head: String = value.chars().take(MAX_QUOTED).collect();
    format!("{head}… ({n} characters in all)")
}

/// A whole message cut to a few lines' worth, whatever it quotes.
pub(crate) fn clip_message(message: &str) -> String {
    const MAX: usize = 4 * MAX_QUOTED;
    if message.chars().count() <= MAX {
        return message.to_string();
    }
    let head: String = message.chars().take(MAX).collect();
    format!("{head}… (message cut)")
}

/// The error for `value` in column `i` (named by its header as written, or `#i` past the
/// header) on `line`: a long value quoted in the message is cut to [`MAX_QUOTED`] characters, so
/// that a 16 MiB field gives a one-line error rather than a 16 MiB one.
pub(crate) fn row_error(file: &str, line: u64, headers: &[String], i: usize, value: &str, message: String) -> RowError {
    let mut message = message;
    if value.chars().count() > MAX_QUOTED && message.contains(value) {
        message = message.replace(value, &clip(value));
    }
    let column = headers.get(i).map_or_else(|| format!("#{}", i + 1), |h| clip(h));
    RowError { file: file.to_string(), line, column, message: clip_message(&message) }
}

/// One bad value in one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// File name (not the full path, so messages stay short).
    pub file: String,
    /// 1-based line number in the file, counting the header.
    pub line: u64,
    /// Column name as written in the file's header.
    pub column: String,
    /// What is wrong, with the offending value quoted.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}, column {}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for RowError {}

/// A row skipped under `--max-errors`, kept so it can be written to the rejects file.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Why it was rejected.
    pub error: RowError,
    /// The row's fields as read.
    pub fields: Vec<String>,
}

/// Everything that can stop a file from loading.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read the file: {source}")]
    Io {
        /// File name.
        file: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Compressed data ended early or is damaged.
    #[error("{file} line {line}: the file is damaged or cut short ({detail}); download it again")]
    Corrupt {
        /// File name.
        file: String,
        /// Last line read before the damage.
        line: u64,
        /// The decoder's description.
        detail: String,
    },
    /// A column the format needs is not in the header (`found` is cut to a few hundred
    /// characters).
    #[error("{file} line 1: required column {column} is missing (accepted names: {accepted}); the header has: {found}")]
    MissingColumn {
        /// File name.
        file: String,
        /// Canonical column name.
        column: String,
        /// Header names accepted for it.
        accepted: String,
        /// The header as found.
        found: String,
    },
    /// The file is not of the kind the command reads.
    #[error("{file}: {message}")]
    Format {
        /// File name.
        file: String,
        /// What was expected and what to do.
        message: String,
    },
    /// A bad value, with `--max-errors` 0.
    #[error("{0}")]
    Row(RowError),
    /// More bad rows than `--max-errors` allows.
    #[error("{file}: more than {max} bad rows (the limit set by --max-errors); the first was: {first}")]
    TooManyErrors {
        /// File name.
        file: String,
        /// The limit.
        max: u64,
        /// The first bad row.
        first: RowError,
    },
}

impl IngestError {
    /// Builds a format error.
    pub fn format(file: &str, message: impl Into<String>) -> Self {
        Self::Format { file: file.to_string(), message: message.into() }
    }
}

/// Collects bad rows and decides when to give up, so every reader applies `--max-errors` alike.
#[derive(Debug, Default)]
pub struct RejectLog {
    max: u64,
    rows: Vec<Rejected>,
}

impl RejectLog {
    /// A log allowing `max` bad rows.
    pub fn new(max: u64) -> Self {
        Self { max, rows: Vec::new() }
    }

    /// Records a bad row; fails once the limit is passed.
    pub fn reject(&mut self, error: RowError, fields: Vec<String>) -> Result<(), IngestError> {
        if self.max == 0 {
            return Err(IngestError::Row(error));
        }
        if self.rows.len() as u64 >= self.max {
            let first = self.rows.first().map_or(error.clone(), |r| r.error.clone());
            return Err(IngestError::TooManyErrors { file: error.file.clone(), max: self.max, first });
        }
        self.rows.push(Rejected { error, fields });
        Ok(())
    }

    /// The rows rejected so far.
    pub fn into_rows(self) -> Vec<Rejected> {
        self.rows
    }

    /// How many rows were rejected.
    pub fn count(&self) -> u64 {
        self.rows.len() as u64
    }
}
