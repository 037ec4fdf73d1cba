//! Records as CSV, both ways: the download a list page offers (every field as shown, with the
//! record's reference, version and who last changed it), and the import `ipmo records import`
//! reads, validated row by row against the kind's declaration so that every problem names the
//! file's line and the field. Both sides read the same declarations, so a download edited in a
//! spreadsheet imports again.

use crate::kinds::{self, Kind, Lookups};
use crate::store::{Data, Record, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Columns of an export that are the record's bookkeeping, not its fields; an import ignores them.
pub const BOOKKEEPING: [&str; 5] = ["reference", "version", "archived", "updated_at", "updated_by"];

/// Most problems listed before an import stops reading.
pub const MAX_PROBLEMS: usize = 50;

/// Why nothing was imported. Each message names the file, and the line where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be opened or its header read.
    #[error("{}: {message}", file.display())]
    Unreadable {
        /// The file.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// No header row.
    #[error(
        "{}: the file is empty; it needs a header row of field names (`ipmo records kinds` lists them) and a row per record",
        file.display()
    )]
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// A column named twice.
    #[error("{}: line 1: the column \"{column}\" is given twice; keep one", file.display())]
    DuplicateColumn {
        /// The file.
        file: PathBuf,
        /// The column, lower-cased.
        column: String,
    },
    /// A row that is not CSV (a stray quote, a short row).
    #[error("{}: line {line}: not valid CSV ({message})", file.display())]
    Malformed {
        /// The file.
        file: PathBuf,
        /// Line of the row.
        line: u64,
        /// The CSV reader's message.
        message: String,
    },
    /// Rows whose fields failed validation, each as "file: line N: field: message".
    #[error("nothing was imported; fix these and run the import again:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// A header and nothing else.
    #[error("{}: the file has a header but no records; nothing was imported", file.display())]
    NoRecords {
        /// The file.
        file: PathBuf,
    },
    /// The store refused the import as a whole (not a row's fields).
    #[error("{}: nothing was imported: {source}", file.display())]
    Store {
        /// The file.
        file: PathBuf,
        /// The store's reason.
        source: StoreError,
    },
}

/// The header and rows of a kind's CSV download: reference, version, archived, every field as
/// shown on the pages, then when and by whom the record last changed.
pub fn export(kind: &Kind, records: &[Record]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let mut header = vec!["reference", "version", "archived"];
    header.extend(kind.fields.iter().map(|f| f.name));
    header.extend(["updated_at", "updated_by"]);
    let rows = records
        .iter()
        .map(|rec| {
            let mut row = vec![kind.reference(rec.id), rec.version.to_string(), rec.archived.to_string()];
            row.extend(kind.fields.iter().map(|f| kinds::display_value(f, rec.data.get(f.name))));
            row.extend([rec.updated_at.clone(), rec.updated_by.clone()]);
            row
        })
        .collect();
    (header, rows)
}

/// Reads a CSV of records of `kind` and validates every row, naming the line and field of each
/// problem. Header names are matched without regard to case; the bookkeeping columns of an
/// export are ignored; a column given twice, an empty file and a file with no records are
/// errors. Returns each record with the line it starts on.
pub fn read(kind: &Kind, file: &Path, lookups: &dyn Lookups) -> Result<Vec<(u64, Data)>, ImportError> {
    let unreadable = |message: String| ImportError::Unreadable { file: file.to_path_buf(), message };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(file)
        .map_err(|e| unreadable(format!("cannot be read: {e}")))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| unreadable(format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(ImportError::Empty { file: file.to_path_buf() });
    }
    let mut seen = BTreeSet::new();
    if let Some(twice) = headers.iter().find(|h| !h.is_empty() && !seen.insert(h.as_str())) {
        return Err(ImportError::DuplicateColumn { file: file.to_path_buf(), column: twice.clone() });
    }
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ImportError::Malformed {
            file: file.to_path_buf(),
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let input: BTreeMap<String, String> = headers
            .iter()
            .zip(record.iter())
            .filter(|(h, _)| !BOOKKEEPING.contains(&h.as_str()))
            .map(|(h, v)| (h.clone(), v.to_string()))
            .collect();
        match kinds::validate(kind, &input, lookups) {
            Ok(d) => rows.push((line, d)),
            Err(errors) => problems.extend(
                errors.into_iter().map(|e| format!("{}: line {line}: {}: {}", file.display(), e.field, e.message)),
            ),
        }
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
    }
    if !problems.is_empty() {
        return Err(ImportError::Invalid(problems));
    }
    if rows.is_empty() {
        return Err(ImportError::NoRecords { file: file.to_path_buf() });
    }
    Ok(rows)
}

/// The store's import refusal, with its `row N` (the Nth record given) turned into the file's
/// line, so every problem points at the line to fix.
pub fn store_refusal(file: &Path, lines: &[u64], e: StoreError) -> ImportError {
    let StoreError::Invalid(errors) = e else {
        return ImportError::Store { file: file.to_path_buf(), source: e };
    };
    let described = errors
        .iter()
        .map(|fe| {
            let (line, message) = fe
                .message
                .strip_prefix("row ")
                .and_then(|rest| rest.split_once(": "))
                .and_then(|(n, m)| Some((lines.get(n.parse::<usize>().ok()?.checked_sub(1)?)?, m)))
                .map_or((None, fe.message.as_str()), |(l, m)| (Some(*l), m));
            match line {
                Some(l) => format!("{}: line {l}: {}: {message}", file.display(), fe.field),
                None => format!("{}: {}: {message}", file.display(), fe.field),
            }
        })
        .collect();
    ImportError::Invalid(described)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::AcceptAll;

    fn aim() -> &'static Kind {
        kinds::kind("aim").expect("the aim kind is declared")
    }

    #[test]
    fn a_download_imports_again() {
        let kind = aim();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aims.csv");
        std::fs::write(&path, "Title,Owner,Status,Description\nSafer prescribing,Chief pharmacist,In progress,\"Fewer harms, \"\"fewer\"\" admissions\"\n").unwrap();
        let rows = read(kind, &path, &AcceptAll).expect("a valid file reads");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, 2, "the record starts on line 2");
        let record = Record {
            id: 7,
            kind: kind.id.into(),
            version: 1,
            archived: false,
            data: rows[0].1.clone(),
            created_at: String::new(),
            created_by: String::new(),
            updated_at: "2026-12-01 10:00:00".into(),
            updated_by: "ann".into(),
        };
        let (header, out) = export(kind, &[record]);
        let mut text = header.join(",");
        for row in &out {
            text.push('\n');
            text.push_str(&row.iter().map(|c| format!("\"{}\"", c.replace('"', "\"\""))).collect::<Vec<_>>().join(","));
        }
        std::fs::write(&path, text).unwrap();
        let again = read(kind, &path, &AcceptAll).expect("an export reads back");
        assert_eq!(again[0].1, rows[0].1);
    }

    #[test]
    fn problems_name_the_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "title,title\na,b\n").unwrap();
        let e = read(aim(), &path, &AcceptAll).unwrap_err().to_string();
        assert!(e.ends_with("line 1: the column \"title\" is given twice; keep one"), "{e}");
        std::fs::write(&path, "").unwrap();
        assert!(matches!(read(aim(), &path, &AcceptAll), Err(ImportError::Empty { .. })));
        std::fs::write(&path, "title\n").unwrap();
        assert!(matches!(read(aim(), &path, &AcceptAll), Err(ImportError::NoRecords { .. })));
    }
}
