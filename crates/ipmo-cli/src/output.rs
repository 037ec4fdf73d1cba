//! Printing result tables as an aligned text table, CSV or JSON.

use clap::ValueEnum;
use std::io::{self, Write};

/// Output format of a result table.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for reading.
    Table,
    /// CSV with a header, full precision.
    Csv,
    /// A JSON array of objects, numbers as numbers.
    Json,
}

/// One value in a result table.
pub(crate) enum Cell {
    /// Text.
    Text(String),
    /// A number shown with `decimals` places in the text table (CSV and JSON keep full precision).
    Num(Option<f64>, usize),
}

impl Cell {
    /// Text from anything displayable.
    pub(crate) fn text(s: impl std::fmt::Display) -> Self {
        Cell::Text(s.to_string())
    }

    fn table(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(Some(v), d) => format!("{v:.d$}"),
            Cell::Num(None, _) => String::new(),
        }
    }

    fn csv(&self) -> String {
        match self {
            Cell::Text(s) if s.contains([',', '"', '\n', '\r']) => format!("\"{}\"", s.replace('"', "\"\"")),
            Cell::Text(s) => s.clone(),
            Cell::Num(Some(v), _) => v.to_string(),
            Cell::Num(None, _) => String::new(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Cell::Text(s) => serde_json::Value::String(s.clone()),
            Cell::Num(Some(v), _) => serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, Into::into),
            Cell::Num(None, _) => serde_json::Value::Null,
        }
    }
}

/// A result table.
pub(crate) struct Output {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Output {
    /// An empty table with these columns.
    pub(crate) fn new(columns: &[&str]) -> Self {
        Self { columns: columns.iter().map(|c| c.to_string()).collect(), rows: Vec::new() }
    }

    /// Writes the table in `format`.
    pub(crate) fn write(&self, format: Format, out: &mut dyn Write) -> io::Result<()> {
        match format {
            Format::Csv => {
                writeln!(out, "{}", self.columns.join(","))?;
                for r in &self.rows {
                    writeln!(out, "{}", r.iter().map(Cell::csv).collect::<Vec<_>>().join(","))?;
                }
            }
            Format::Json => {
                let rows: Vec<serde_json::Value> = self
                    .rows
                    .iter()
                    .map(|r| {
                        serde_json::Value::Object(self.columns.iter().cloned().zip(r.iter().map(Cell::json)).collect())
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut *out, &rows)?;
                writeln!(out)?;
            }
            Format::Table => {
                let text: Vec<Vec<String>> = self.rows.iter().map(|r| r.iter().map(Cell::table).collect()).collect();
                let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
                for r in &text {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.chars().count());
                    }
                }
                let numeric: Vec<bool> = (0..self.columns.len())
                    .map(|i| self.rows.iter().any(|r| matches!(r.get(i), Some(Cell::Num(..)))))
                    .collect();
                let line = |cells: &[String]| {
                    cells
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            if numeric[i] {
                                format!("{c:>w$}", w = widths[i])
                            } else {
                                format!("{c:<w$}", w = widths[i])
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_string()
                };
                writeln!(out, "{}", line(&self.columns))?;
                for r in &text {
                    writeln!(out, "{}", line(r))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Output {
        let mut o = Output::new(&["org", "value"]);
        o.rows.push(vec![Cell::text("A, B"), Cell::Num(Some(1.23456), 2)]);
        o.rows.push(vec![Cell::text("C"), Cell::Num(None, 2)]);
        o
    }

    fn render(format: Format) -> String {
        let mut buf = Vec::new();
        sample().write(format, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn formats() {
        assert_eq!(render(Format::Csv), "org,value\n\"A, B\",1.23456\nC,\n");
        assert_eq!(render(Format::Table), "org   value\nA, B   1.23\nC\n");
        let json: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
        assert_eq!(json[0]["value"], 1.23456);
        assert!(json[1]["value"].is_null());
    }
}
