//! A directory of measure definitions and the factor tables they use.

use crate::codes::CodePattern;
use crate::definition::{self, Measure, Quantity, Side, Status};
use crate::error::{LibraryErrors, MeasureError};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Per-code factors for weighted quantities (oral morphine equivalent per unit, kg CO2e per
/// inhaler…), kept as data beside the measures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FactorTable {
    /// (pattern, factor, note) in file order; the first matching pattern wins.
    pub rows: Vec<(CodePattern, f64, String)>,
    /// The raw bytes, hashed into every measure that uses the table.
    bytes: Vec<u8>,
}

impl FactorTable {
    /// The factor for a presentation, if the table covers it.
    pub fn factor(&self, code: &str) -> Option<f64> {
        self.rows.iter().find(|(p, _, _)| p.matches(code)).map(|(_, f, _)| *f)
    }

    /// Parses `bnf_code,factor,note` CSV.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self, MeasureError> {
        let mut rows = Vec::new();
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes.as_slice());
        let table_err = |line: u64, message: String| MeasureError::Table { path: path.to_path_buf(), line, message };
        let headers = reader.headers().map_err(|e| table_err(1, e.to_string()))?.clone();
        if headers.get(0) != Some("bnf_code") || headers.get(1) != Some("factor") {
            return Err(table_err(1, "the header must start bnf_code,factor".into()));
        }
        for (i, record) in reader.records().enumerate() {
            let line = i as u64 + 2;
            let record = record.map_err(|e| table_err(line, e.to_string()))?;
            let code = CodePattern::parse(record.get(0).unwrap_or_default()).map_err(|m| table_err(line, m))?;
            let raw = record.get(1).unwrap_or_default().trim();
            let factor: f64 = raw
                .parse()
                .ok()
                .filter(|f: &f64| f.is_finite() && *f >= 0.0)
                .ok_or_else(|| table_err(line, format!("factor \"{raw}\" is not a non-negative number")))?;
            rows.push((code, factor, record.get(2).unwrap_or_default().to_string()));
        }
        Ok(Self { rows, bytes })
    }
}

/// The measure library.
#[derive(Clone, Debug, Default)]
pub struct Library {
    /// Where it was loaded from.
    pub dir: PathBuf,
    /// Every measure, sorted by id, retired ones included.
    pub measures: Vec<Measure>,
    /// Factor tables by name.
    pub tables: BTreeMap<String, FactorTable>,
}

/// A presentation a measure side counts, with the factor applied to it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ResolvedCode {
    /// Current BNF code.
    pub bnf_code: String,
    /// BNF name.
    pub name: String,
    /// Weight applied to quantity (1 unless weighted).
    pub factor: f64,
}

impl Library {
    /// Loads every `*.toml` in `dir` and every `dir/tables/*.csv`, reporting all problems found.
    pub fn load(dir: &Path) -> Result<Self, LibraryErrors> {
        let mut errors = Vec::new();
        let io = |path: &Path, e: std::io::Error| MeasureError::Io { path: path.to_path_buf(), source: e };
        let mut tables = BTreeMap::new();
        let table_dir = dir.join("tables");
        if table_dir.is_dir() {
            match sorted_files(&table_dir, "csv") {
                Ok(files) => {
                    for path in files {
                        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                        match std::fs::read(&path).map_err(|e| io(&path, e)).and_then(|b| FactorTable::parse(&path, b))
                        {
                            Ok(t) => {
                                tables.insert(name, t);
                            }
                            Err(e) => errors.push(e),
                        }
                    }
                }
                Err(e) => errors.push(io(&table_dir, e)),
            }
        }
        let table_names: Vec<String> = tables.keys().cloned().collect();
        let mut measures = Vec::new();
        match sorted_files(dir, "toml") {
            Ok(files) => {
                if files.is_empty() {
                    errors.push(MeasureError::invalid(dir, "measures", "the folder has no .toml measure definitions"));
                }
                for path in files {
                    let text = match std::fs::read_to_string(&path) {
                        Ok(t) => t,
                        Err(e) => {
                            errors.push(io(&path, e));
                            continue;
                        }
                    };
                    let mut hasher = Sha256::new();
                    hasher.update(text.as_bytes());
                    // Hash the tables a measure uses so a changed factor recomputes it.
                    for (name, table) in &tables {
                        if text.contains(&format!("\"{name}\"")) {
                            hasher.update(name.as_bytes());
                            hasher.update(&table.bytes);
                        }
                    }
                    let hash = hex(&hasher.finalize());
                    match definition::parse(&path, &text, &table_names, hash) {
                        Ok(m) => measures.push(m),
                        Err(e) => errors.push(e),
                    }
                }
            }
            Err(e) => errors.push(io(dir, e)),
        }
        measures.sort_by(|a, b| a.id.cmp(&b.id));
        if errors.is_empty() {
            Ok(Self { dir: dir.to_path_buf(), measures, tables })
        } else {
            Err(LibraryErrors(errors))
        }
    }

    /// A measure by id.
    pub fn get(&self, id: &str) -> Option<&Measure> {
        self.measures.iter().find(|m| m.id == id)
    }

    /// Measures that are computed (draft and live).
    pub fn computed(&self) -> impl Iterator<Item = &Measure> {
        self.measures.iter().filter(|m| m.status != Status::Retired)
    }

    /// One hash over every computed measure's hash: results stored under a different library
    /// hash are stale.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        for m in self.computed() {
            hasher.update(m.id.as_bytes());
            hasher.update(m.hash.as_bytes());
        }
        hex(&hasher.finalize())
    }

    /// The weight a side applies to a presentation it selects: 1, or the factor table's value
    /// (`None` when a weighted side's table does not cover the code, which then is not counted).
    pub fn weight(&self, side: &Side, code: &str) -> Option<f64> {
        match &side.quantity {
            Quantity::WeightedQuantity(t) => self.tables.get(t).and_then(|t| t.factor(code)),
            _ => Some(1.0),
        }
    }

    /// The presentations a side counts among `codes` (current code, name).
    pub fn resolve<'a>(&self, side: &Side, codes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<ResolvedCode> {
        let mut out: Vec<ResolvedCode> = codes
            .into_iter()
            .filter(|(c, n)| side.selects(c, n))
            .filter_map(|(c, n)| {
                self.weight(side, c).map(|factor| ResolvedCode { bnf_code: c.to_string(), name: n.to_string(), factor })
            })
            .collect();
        out.sort_by(|a, b| a.bnf_code.cmp(&b.bnf_code));
        out.dedup_by(|a, b| a.bnf_code == b.bnf_code);
        out
    }
}

fn sorted_files(dir: &Path, ext: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().and_then(|e| e.to_str()) == Some(ext))
        .collect();
    files.sort();
    Ok(files)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
