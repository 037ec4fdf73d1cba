//! Errors of the measure library: a definition or factor table that cannot be read or is wrong,
//! each naming its file (and field or line) so that `ipmo measures check` can list every problem
//! at once.

use std::path::PathBuf;

/// What can go wrong loading or checking measure definitions.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A definition is not valid TOML or has a field of the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A definition parsed but breaks a rule.
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending field, dotted (`numerator.codes`).
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A factor table is malformed.
    #[error("{path} line {line}: {message}")]
    Table {
        /// The table file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

impl MeasureError {
    pub(crate) fn invalid(path: &std::path::Path, field: &str, message: impl Into<String>) -> Self {
        Self::Invalid { path: path.to_path_buf(), field: field.to_string(), message: message.into() }
    }
}

/// Every problem found in a measure library, so that `ipmo measures check` reports them all at
/// once instead of one per run.
#[derive(Debug, thiserror::Error)]
#[error("{} in the measure library:\n{}", ipmo_domain::display::plural(.0.len(), "problem", "problems"), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
pub struct LibraryErrors(pub Vec<MeasureError>);
