//! The monthly board report as a document, apart from where its figures come from: the web crate
//! fills a [`Document`] from the data release and the governance records, and this crate turns
//! it into one self-contained HTML file ([`html`]) or, with the `pdf` feature, an A4 PDF typeset
//! by typst ([`pdf`]). Both renderings read the same document, so the PDF and the HTML cannot
//! disagree, and a custom typst template sees exactly what the built-in one does (`report.json`).

pub mod html;
#[cfg(feature = "pdf")]
pub mod pdf;

use serde::Serialize;

/// A board report: a title page with its provenance, then sections in the order a board reads.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    /// What the paper is, e.g. "Medicines optimisation board report".
    pub title: String,
    /// The organisation reported on, as people name it, with its code.
    pub organisation: String,
    /// The month reported on, in words ("September 2025").
    pub period: String,
    /// What the report was built from, so that a reader can rebuild or check it.
    pub provenance: Provenance,
    /// The sections, each a page or more.
    pub sections: Vec<Section>,
}

/// Where a report's figures come from.
#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    /// The data release's id (the same id the dashboard and `ipmo sql` report).
    pub release: String,
    /// The governance audit position the programme sections were read at ("audit entry 412"),
    /// or why there is none.
    pub audit: String,
    /// When the report was built (the only part that changes when it is rebuilt).
    pub generated: String,
    /// The command that rebuilds the report.
    pub command: String,
}

/// One part of the report, listed in its contents.
#[derive(Clone, Debug, Serialize)]
pub struct Section {
    /// The anchor of the section in the HTML.
    pub id: String,
    /// The heading.
    pub title: String,
    /// What the section shows, in order.
    pub blocks: Vec<Block>,
}

/// One element of a section.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// A paragraph of plain text.
    Paragraph {
        /// The text.
        text: String,
    },
    /// A heading within a section.
    Subheading {
        /// The text.
        text: String,
    },
    /// A bulleted list, each item optionally coloured by what it means.
    List {
        /// The items.
        items: Vec<Cell>,
    },
    /// A boxed statement the reader must not miss (e.g. "no records").
    Note {
        /// The text.
        text: String,
    },
    /// A table of figures.
    Table(Table),
    /// One of the dashboard's SVG charts.
    Figure(Figure),
}

/// A table whose rows are never split across pages.
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    /// What the table shows, with its month.
    pub caption: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// Which columns hold numbers (right-aligned).
    pub numeric: Vec<bool>,
    /// The rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
    /// Where the figures come from.
    pub source: String,
}

/// A chart with its caption and source.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// The chart, a complete `<svg>` element as the dashboard draws it. Not in `report.json`:
    /// the PDF template reads it from the file named `file`.
    #[serde(skip)]
    pub svg: String,
    /// What the chart shows, with its month.
    pub caption: String,
    /// Where the figures come from.
    pub source: String,
    /// How much of the text width the chart takes (0.3 to 1).
    pub width: f64,
}

/// A table cell or list item: text and, where it means something, a colour.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Cell {
    /// The text.
    pub text: String,
    /// What the colour says, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tone: Option<Tone>,
}

impl Cell {
    /// Plain text.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), tone: None }
    }

    /// Text coloured by what it means.
    pub fn toned(text: impl Into<String>, tone: Option<Tone>) -> Self {
        Self { text: text.into(), tone }
    }
}

/// The colours a report uses, named by meaning as the dashboard names them.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// Red RAG, an extreme risk, or a measure that turned.
    Red,
    /// Amber RAG or a high risk.
    Amber,
    /// A moderate risk.
    Yellow,
    /// Green RAG or a low risk.
    Green,
    /// Special-cause improvement (Making Data Count blue).
    Improvement,
    /// Special-cause concern (Making Data Count orange).
    Concern,
    /// Nothing to judge.
    Grey,
}

impl Tone {
    /// Its name in the HTML classes (`tone-red`) and in `report.json`, where the templates colour it.
    pub fn css(self) -> &'static str {
        match self {
            Tone::Red => "red",
            Tone::Amber => "amber",
            Tone::Yellow => "yellow",
            Tone::Green => "green",
            Tone::Improvement => "improvement",
            Tone::Concern => "concern",
            Tone::Grey => "grey",
        }
    }
}

impl Document {
    /// Every figure in reading order, with the file name the PDF template reads it from.
    pub fn figures(&self) -> impl Iterator<Item = (String, &Figure)> {
        self.sections
            .iter()
            .flat_map(|s| &s.blocks)
            .filter_map(|b| match b {
                Block::Figure(f) => Some(f),
                _ => None,
            })
            .enumerate()
            .map(|(i, f)| (format!("figure-{}.svg", i + 1), f))
    }

    /// The document as the typst template reads it (`report.json`): every field, with each
    /// figure's `file` in place of its SVG.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        let mut n = 0;
        if let Some(sections) = value.get_mut("sections").and_then(|s| s.as_array_mut()) {
            for block in sections.iter_mut().filter_map(|s| s.get_mut("blocks")?.as_array_mut()).flatten() {
                if block.get("type").and_then(|t| t.as_str()) == Some("figure") {
                    n += 1;
                    block["file"] = serde_json::Value::String(format!("figure-{n}.svg"));
                }
            }
        }
        value
    }
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The typst template (built in or the user's) did not compile; the message says where.
    #[error("the report template did not typeset: {0}")]
    Template(String),
    /// The PDF could not be written from the typeset pages.
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
    /// This build has no PDF writer.
    #[error(
        "this ipmo was built without PDF output; rebuild with `cargo build --release --features pdf`, or write HTML (--out FILE.html) and print it"
    )]
    NoPdf,
}

/// Whether this build can write PDF (the `pdf` feature).
pub const PDF_AVAILABLE: bool = cfg!(feature = "pdf");

/// The report as PDF bytes, typeset with `template` (typst source; None for the built-in board
/// template). `timestamp` (UTC: year, month, day, hour, minute, second) is written into the PDF's
/// metadata; the same document, template and timestamp give the same bytes.
pub fn to_pdf(doc: &Document, template: Option<&str>, timestamp: [i32; 6]) -> Result<Vec<u8>, ReportError> {
    #[cfg(feature = "pdf")]
    {
        pdf::render(doc, template, timestamp)
    }
    #[cfg(not(feature = "pdf"))]
    {
        let _ = (doc, template, timestamp);
        Err(ReportError::NoPdf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Document {
        let chart = r#"<svg class="chart" viewBox="0 0 640 200" xmlns="http://www.w3.org/2000/svg"><text x="10" y="20" class="tick">1 &amp; 2</text></svg>"#;
        Document {
            title: "Medicines optimisation board report".into(),
            organisation: "NHS Test ICB (QAA)".into(),
            period: "September 2025".into(),
            provenance: Provenance {
                release: "r-1".into(),
                audit: "audit entry 7".into(),
                generated: "2026-12-01 10:00 UTC".into(),
                command: "ipmo report --org QAA --month 2025-09".into(),
            },
            sections: vec![Section {
                id: "summary".into(),
                title: "Summary".into(),
                blocks: vec![
                    Block::Paragraph { text: "Costs < £5 & \"rising\"".into() },
                    Block::List { items: vec![Cell::toned("Worse", Some(Tone::Concern))] },
                    Block::Figure(Figure {
                        svg: chart.into(),
                        caption: "A chart".into(),
                        source: "EPD".into(),
                        width: 1.0,
                    }),
                    Block::Table(Table {
                        caption: "T".into(),
                        columns: vec!["A".into(), "B".into()],
                        numeric: vec![false, true],
                        rows: vec![vec![Cell::text("x"), Cell::toned("1", Some(Tone::Red))]],
                        source: "S".into(),
                    }),
                    Block::Figure(Figure {
                        svg: chart.into(),
                        caption: "Another".into(),
                        source: "EPD".into(),
                        width: 0.5,
                    }),
                ],
            }],
        }
    }

    #[test]
    fn figures_are_numbered_alike_in_the_json_and_the_file_list() {
        let doc = sample();
        let names: Vec<String> = doc.figures().map(|(n, _)| n).collect();
        assert_eq!(names, ["figure-1.svg", "figure-2.svg"]);
        let json = doc.to_json();
        let blocks = json["sections"][0]["blocks"].as_array().unwrap();
        assert_eq!(blocks[2]["file"], "figure-1.svg");
        assert_eq!(blocks[4]["file"], "figure-2.svg");
        assert!(blocks[2].get("svg").is_none(), "the SVG travels as a file, not in the JSON");
        assert_eq!(blocks[3]["rows"][0][1]["tone"], "red");
    }
}
