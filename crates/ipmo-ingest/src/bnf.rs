//! The BNF code hierarchy and its yearly code changes.

use crate::error::RejectLog;
use crate::{ErrorPolicy, IngestError, Rejected, SourceFile, Table};
use ipmo_domain::BnfCode;

/// Level names in the order of the hierarchy, as the `bnf` table's columns use them.
pub const LEVELS: [&str; 7] =
    ["chapter", "section", "paragraph", "subparagraph", "chemical", "product", "presentation"];

/// One presentation with every level above it: (code, name) per level in [`LEVELS`] order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BnfRow {
    /// (code, name) for chapter … presentation.
    pub levels: [(String, String); 7],
}

impl BnfRow {
    /// The presentation code.
    pub fn presentation_code(&self) -> &str {
        &self.levels[6].0
    }
}

/// One old → new code change; `new_code` is `None` where the code was withdrawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChange {
    /// The code as it used to be (any level of the hierarchy).
    pub old_code: String,
    /// What it became.
    pub new_code: Option<String>,
    /// The year of the change list, when the file name tells it.
    pub year: Option<i32>,
}

/// What a BNF file held.
#[derive(Debug)]
pub enum BnfFile {
    /// NHSBSA BNF Code Information.
    Codes(Vec<BnfRow>),
    /// A list of code changes.
    Changes(Vec<CodeChange>),
}

/// Rows read and rejected, for the manifest.
#[derive(Debug)]
pub struct BnfReport {
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Bytes.
    pub bytes: u64,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows skipped.
    pub rejected: Vec<Rejected>,
}

/// Reads NHSBSA "BNF Code Information" (either header spelling) or a code-change list: the
/// tab-separated yearly `old<TAB>new` files (with `#` comments) or an `old_code,new_code` CSV.
pub fn read_bnf(source: SourceFile, errors: ErrorPolicy) -> Result<(BnfFile, BnfReport), IngestError> {
    let checksum = source.checksum_handle();
    let year = year_of(&source.name);
    let mut t = Table::open(source)?;
    let mut log = RejectLog::new(errors.max_errors);
    let mut read = 0;
    let file = if t.find(&["BNF_PRESENTATION_CODE"]).is_some() && t.find(&["BNF_CHAPTER_CODE"]).is_some() {
        let mut cols = Vec::new();
        for level in
            ["CHAPTER", "SECTION", "PARAGRAPH", "SUBPARAGRAPH", "CHEMICAL_SUBSTANCE", "PRODUCT", "PRESENTATION"]
        {
            let code = format!("BNF_{level}_CODE");
            let name = format!("BNF_{level}");
            cols.push((t.require(&code, &[&code])?, t.require(&name, &[&name])?));
        }
        let mut rows = Vec::new();
        while t.advance()? {
            if t.is_blank() {
                continue;
            }
            read += 1;
            let pres = t.field(cols[6].0);
            if let Err(e) = BnfCode::parse_presentation(pres) {
                t.reject(&mut log, t.error(cols[6].0, e.to_string()))?;
                continue;
            }
            let levels = std::array::from_fn(|i| (t.field(cols[i].0).to_string(), t.text(cols[i].1)));
            rows.push(BnfRow { levels });
        }
        BnfFile::Codes(rows)
    } else {
        // A change list. The yearly files have no header: the first line is already a change
        // (or a comment), so it is treated as data unless it names the columns.
        let mut changes = Vec::new();
        let header_is_data = t.find(&["OLD_CODE"]).is_none();
        let (old, new) = if header_is_data {
            (0, 1)
        } else {
            (t.require("OLD_CODE", &["OLD_CODE"])?, t.require("NEW_CODE", &["NEW_CODE"])?)
        };
        let first: Option<(String, String)> = header_is_data.then(|| {
            (t.raw_headers.first().cloned().unwrap_or_default(), t.raw_headers.get(1).cloned().unwrap_or_default())
        });
        let mut pending = first;
        loop {
            let (o, n, line) = match pending.take() {
                Some((o, n)) => (o, n, 1),
                None => {
                    if !t.advance()? {
                        break;
                    }
                    (t.field(old).to_string(), t.field(new).to_string(), t.line())
                }
            };
            if o.is_empty() || o.starts_with('#') {
                continue;
            }
            read += 1;
            if BnfCode::parse_prefix(&o).is_err() {
                let e = crate::RowError {
                    file: t.file.clone(),
                    line,
                    column: "old_code".into(),
                    message: format!("\"{o}\" is not a BNF code"),
                };
                if line == 1 && changes.is_empty() {
                    return Err(IngestError::format(
                        &t.file,
                        "not a BNF file: expected BNF Code Information (BNF_PRESENTATION_CODE, BNF_CHAPTER_CODE, …) or a code-change list (old<TAB>new, or old_code,new_code)",
                    ));
                }
                log.reject(e, vec![o, n])?;
                continue;
            }
            let new_code = match n.as_str() {
                "" | "None" | "REMOVED" => None,
                other => match BnfCode::parse_prefix(other) {
                    Ok(c) => Some(c.to_string()),
                    Err(_) => {
                        let e = crate::RowError {
                            file: t.file.clone(),
                            line,
                            column: "new_code".into(),
                            message: format!("\"{other}\" is not a BNF code"),
                        };
                        log.reject(e, vec![o, n])?;
                        continue;
                    }
                },
            };
            changes.push(CodeChange { old_code: o.to_ascii_uppercase(), new_code, year });
        }
        BnfFile::Changes(changes)
    };
    let (sha256, bytes) = checksum.get();
    Ok((file, BnfReport { sha256, bytes, rows_read: read, rejected: log.into_rows() }))
}

fn year_of(name: &str) -> Option<i32> {
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    (digits.len() == 4).then(|| digits.parse().ok()).flatten()
}

/// Follows code changes to today's code. Changes may be at any level: a chemical moving from
/// `0407041AC` to `0407042T0` moves every presentation under it. Exact matches win over prefixes,
/// longer prefixes over shorter, and chains are followed (with a limit, in case a list loops).
pub struct CodeMapper {
    exact: std::collections::HashMap<String, Option<String>>,
    prefixes: Vec<(String, Option<String>)>,
}

impl CodeMapper {
    /// Builds a mapper; later changes for the same old code override earlier ones.
    pub fn new(changes: &[CodeChange]) -> Self {
        let mut sorted: Vec<&CodeChange> = changes.iter().collect();
        sorted.sort_by_key(|c| c.year.unwrap_or(0));
        let mut exact = std::collections::HashMap::new();
        for c in sorted {
            exact.insert(c.old_code.clone(), c.new_code.clone());
        }
        let mut prefixes: Vec<(String, Option<String>)> =
            exact.iter().filter(|(k, _)| k.len() < 15).map(|(k, v)| (k.clone(), v.clone())).collect();
        prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        Self { exact, prefixes }
    }

    /// Today's code for `code`, or `None` when it is unchanged or was withdrawn.
    pub fn current(&self, code: &str) -> Option<String> {
        let mut cur = code.to_string();
        let mut changed = false;
        for _ in 0..16 {
            let next = if let Some(n) = self.exact.get(&cur) {
                n.clone()
            } else if let Some((p, n)) =
                self.prefixes.iter().find(|(p, _)| cur.starts_with(p.as_str()) && cur.len() > p.len())
            {
                n.as_ref().map(|n| format!("{n}{}", &cur[p.len()..]))
            } else {
                break;
            };
            match next {
                Some(n) if n != cur => {
                    cur = n;
                    changed = true;
                }
                _ => break,
            }
        }
        changed.then_some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(o: &str, n: &str, y: i32) -> CodeChange {
        CodeChange { old_code: o.into(), new_code: Some(n.into()), year: Some(y) }
    }

    #[test]
    fn follows_chains_and_prefixes() {
        let m = CodeMapper::new(&[
            ch("0407041AC", "0407042T0", 2023),
            ch("0101010F0BDAAAU", "0101010F0BDABBE", 2023),
            ch("0101010F0BDABBE", "0101010F0BDACCE", 2024),
        ]);
        assert_eq!(m.current("0407041ACAAAAAA").as_deref(), Some("0407042T0AAAAAA"));
        assert_eq!(m.current("0101010F0BDAAAU").as_deref(), Some("0101010F0BDACCE"));
        assert_eq!(m.current("0501013B0AAAAAA"), None);
        let looping = CodeMapper::new(&[
            ch("0101010A0AAAAAA", "0101010B0AAAAAA", 1),
            ch("0101010B0AAAAAA", "0101010A0AAAAAA", 2),
        ]);
        let _ = looping.current("0101010A0AAAAAA");
    }
}
