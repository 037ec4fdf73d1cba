//! Price concessions (NCSO): the higher prices DHSC grants for a month when a generic cannot be
//! bought at its Drug Tariff price. Community Pharmacy England publishes them as web pages — the
//! current month's and an archive of past months — which are read as saved (HTML, each month's
//! table found by its `Drug | Pack size | Price concession` header and dated by the nearest
//! "Month YYYY" before it), and as a plain CSV (`month,drug,pack_size,price` in pounds, or
//! OpenPrescribing's hand-kept `Date,Name,Pack Size,Price Pence,…`).
//!
//! Lines are read as published (name and pack size as text); matching them to a dm+d pack needs
//! the warehouse's dm+d and Tariff, so it happens when they are stored.

use crate::error::{RejectLog, clip};
use crate::{ErrorPolicy, IngestError, Rejected, RowError, SourceFile, Table};
use html5gum::{DefaultEmitter, Token, Tokenizer};
use ipmo_domain::{YearMonth, parse_fixed_point};
use std::collections::BTreeMap;

/// One concession line.
#[derive(Clone, Debug, PartialEq)]
pub struct Concession {
    /// The month it applies to.
    pub month: YearMonth,
    /// The drug as named (a dm+d VMP name).
    pub drug: String,
    /// Pack size as written (`28`, `100ml`, `140 dose`).
    pub pack_size: String,
    /// Concession price per pack, in pence.
    pub price_pence: i64,
    /// Where it was read: `file line N` (for a page, the line of the table row).
    pub source_line: String,
}

/// What was read from one file.
#[derive(Debug)]
pub struct ConcessionReport {
    /// `CPE page` or `CSV`.
    pub layout: &'static str,
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Bytes.
    pub bytes: u64,
    /// Lines read (table rows or CSV rows, headers excluded).
    pub rows_read: u64,
    /// Lines that repeat an earlier line of the same month, drug, pack and price (a page's
    /// "rolled over" table): read but not counted twice.
    pub repeated: u64,
    /// Lines skipped under `--max-errors`.
    pub rejected: Vec<Rejected>,
}

/// Largest page accepted: CPE's archive page is a third of a megabyte.
const MAX_PAGE: u64 = 64 << 20;

/// Reads one concessions file, HTML or CSV (told apart by their first character).
pub fn read_concessions(
    mut source: SourceFile,
    errors: ErrorPolicy,
) -> Result<(Vec<Concession>, ConcessionReport), IngestError> {
    let checksum = source.checksum_handle();
    let file = source.name.clone();
    let bytes = source.read_all(MAX_PAGE, "a concessions page or list")?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let mut log = RejectLog::new(errors.max_errors);
    let is_html = text.trim_start_matches('\u{feff}').trim_start().starts_with('<');
    let (lines, rows_read, layout) = if is_html {
        let (lines, n) = read_page(&file, &text, &mut log)?;
        (lines, n, "CPE page")
    } else {
        let (lines, n) = read_csv(SourceFile::from_bytes(&file, bytes), &mut log)?;
        (lines, n, "CSV")
    };
    // A line repeated within a month (the "rolled over" table) counts once; the same pack at two
    // prices in one month is an error, because either could be right.
    let mut seen: BTreeMap<(YearMonth, String, String), usize> = BTreeMap::new();
    let mut kept: Vec<Concession> = Vec::new();
    let mut repeated = 0;
    for line in lines {
        let key = (line.month, line.drug.to_lowercase(), line.pack_size.to_lowercase());
        match seen.get(&key) {
            Some(&i) if kept[i].price_pence == line.price_pence => repeated += 1,
            Some(&i) => {
                let e = RowError {
                    file: file.clone(),
                    line: line_number(&line.source_line),
                    column: "price".into(),
                    message: format!(
                        "{} {} in {} is listed at two prices ({} p at {}, {} p here); keep one",
                        clip(&line.drug),
                        clip(&line.pack_size),
                        line.month,
                        kept[i].price_pence,
                        kept[i].source_line,
                        line.price_pence
                    ),
                };
                log.reject(e, vec![line.drug.clone(), line.pack_size.clone(), line.price_pence.to_string()])?;
            }
            None => {
                seen.insert(key, kept.len());
                kept.push(line);
            }
        }
    }
    if kept.is_empty() && log.count() == 0 {
        return Err(IngestError::format(&file, "the file holds no concession lines"));
    }
    let (sha256, bytes) = checksum.get();
    Ok((kept, ConcessionReport { layout, sha256, bytes, rows_read, repeated, rejected: log.into_rows() }))
}

fn line_number(source_line: &str) -> u64 {
    source_line.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// "December 2023" → 2023-12, anywhere in `text`; the last one wins.
fn last_month_named(text: &str) -> Option<YearMonth> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    words.windows(2).rev().find_map(|w| {
        let m = MONTHS.iter().position(|name| *name == w[0])?;
        let y: u16 = w[1].parse().ok().filter(|y| (2000..=2100).contains(y))?;
        YearMonth::new(y, m as u8 + 1)
    })
}

/// `£22.76`, `16.65`, `11.9`, `£1,204.00*` → pence.
fn price_pence(text: &str) -> Option<i64> {
    let t: String = text.chars().filter(|c| !matches!(c, '£' | '*' | ',' | ' ' | '\u{a0}')).collect();
    parse_fixed_point(&t, 2).ok().filter(|p| *p > 0 && *p <= 100_000_000)
}

/// A table being read: its rows (line, cell texts) and the page text just before it.
struct OpenTable {
    rows: Vec<(u64, Vec<String>)>,
    text_before: String,
}

/// The page's tables, in order, each with its rows (cell texts) and the text before it.
fn read_page(file: &str, html: &str, log: &mut RejectLog) -> Result<(Vec<Concession>, u64), IngestError> {
    let line_starts: Vec<usize> = std::iter::once(0).chain(html.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let line_at = |offset: usize| line_starts.partition_point(|&s| s <= offset) as u64;
    let mut emitter = DefaultEmitter::<usize>::new_with_span();
    emitter.naively_switch_states(true);
    let mut before = String::new();
    let mut table: Option<OpenTable> = None;
    let mut raw_text_depth = 0usize;
    let mut out = Vec::new();
    let mut rows_read = 0u64;
    let mut tables_found = 0usize;
    let mut table_no = 0usize;
    for token in Tokenizer::new_with_emitter(html, emitter) {
        let Ok(token) = token;
        match token {
            Token::StartTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                match name.as_str() {
                    "script" | "style" if !tag.self_closing => raw_text_depth += 1,
                    "table" => {
                        if table.is_some() {
                            return Err(IngestError::format(
                                file,
                                format!(
                                    "line {}: a table inside a table; the page layout has changed",
                                    line_at(tag.span.start)
                                ),
                            ));
                        }
                        table_no += 1;
                        table = Some(OpenTable { rows: Vec::new(), text_before: std::mem::take(&mut before) });
                    }
                    "tr" => {
                        if let Some(t) = &mut table {
                            t.rows.push((line_at(tag.span.start), Vec::new()));
                        }
                    }
                    "td" | "th" => {
                        if let Some(t) = &mut table {
                            if t.rows.is_empty() {
                                t.rows.push((line_at(tag.span.start), Vec::new()));
                            }
                            t.rows.last_mut().expect("a row").1.push(String::new());
                        }
                    }
                    "br" | "p" | "div" | "li" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        push_text(&mut table, &mut before, " ")
                    }
                    _ => {}
                }
            }
            Token::EndTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                match name.as_str() {
                    "script" | "style" => raw_text_depth = raw_text_depth.saturating_sub(1),
                    "table" => {
                        if let Some(t) = table.take() {
                            let found = concession_rows(file, table_no, &t.rows, &t.text_before, log, &mut out)?;
                            if let Some(n) = found {
                                tables_found += 1;
                                rows_read += n;
                            }
                        }
                    }
                    "p" | "div" | "li" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "td" | "th" => {
                        push_text(&mut table, &mut before, " ")
                    }
                    _ => {}
                }
            }
            Token::String(s) if raw_text_depth == 0 => {
                push_text(&mut table, &mut before, &String::from_utf8_lossy(&s.value))
            }
            _ => {}
        }
    }
    if tables_found == 0 {
        return Err(IngestError::format(
            file,
            format!(
                "no price concession table (a table whose first row is Drug | Pack size | Price concession) among its {table_no} tables; the page layout may have changed, or this is not CPE's concessions page"
            ),
        ));
    }
    Ok((out, rows_read))
}

fn push_text(table: &mut Option<OpenTable>, before: &mut String, text: &str) {
    match table {
        Some(t) => {
            if let Some(cell) = t.rows.last_mut().and_then(|r| r.1.last_mut()) {
                cell.push_str(text);
            }
        }
        None => {
            before.push_str(text);
            // Only the text just before a table can date it.
            if before.len() > 8_192 {
                let cut = before.len() - 4_096;
                let cut = (cut..before.len()).find(|&i| before.is_char_boundary(i)).unwrap_or(before.len());
                before.drain(..cut);
            }
        }
    }
}

fn normalise(cell: &str) -> String {
    cell.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The lines of one table if it is a concession table (`None` otherwise).
fn concession_rows(
    file: &str,
    table_no: usize,
    rows: &[(u64, Vec<String>)],
    text_before: &str,
    log: &mut RejectLog,
    out: &mut Vec<Concession>,
) -> Result<Option<u64>, IngestError> {
    let mut rows = rows.iter().filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()));
    let Some((header_line, header)) = rows.next() else { return Ok(None) };
    let header: Vec<String> = header.iter().map(|c| normalise(c).to_lowercase()).collect();
    if header != ["drug", "pack size", "price concession"] {
        return Ok(None);
    }
    let month = last_month_named(text_before).ok_or_else(|| {
        IngestError::format(
            file,
            format!("line {header_line}: concession table {table_no} has no \"Month YYYY\" heading before it; the page layout may have changed"),
        )
    })?;
    let mut n = 0;
    for (line, cells) in rows {
        n += 1;
        let texts: Vec<String> = cells.iter().map(|c| normalise(c)).collect();
        let error = |column: &str, message: String| RowError {
            file: file.to_string(),
            line: *line,
            column: column.into(),
            message,
        };
        if texts.len() != 3 {
            log.reject(
                error("row", format!("{} cells where a concession row has 3 (drug, pack size, price)", texts.len())),
                texts,
            )?;
            continue;
        }
        let Some(price) = price_pence(&texts[2]) else {
            log.reject(error("Price concession", format!("\"{}\" is not a price in pounds", clip(&texts[2]))), texts)?;
            continue;
        };
        if texts[0].is_empty() || texts[1].is_empty() {
            log.reject(error("Drug", "a concession row needs a drug and a pack size".into()), texts)?;
            continue;
        }
        out.push(Concession {
            month,
            drug: texts[0].clone(),
            pack_size: texts[1].clone(),
            price_pence: price,
            source_line: format!("{file} line {line}"),
        });
    }
    Ok(Some(n))
}

fn read_csv(source: SourceFile, log: &mut RejectLog) -> Result<(Vec<Concession>, u64), IngestError> {
    let mut t = Table::open(source)?;
    let month = t.require("month", &["MONTH", "DATE", "YEAR_MONTH"])?;
    let drug = t.require("drug", &["DRUG", "NAME", "DRUG_NAME", "MEDICINE"])?;
    let pack = t.require("pack_size", &["PACK_SIZE", "PACK"])?;
    let (price, in_pence) = match t.find(&["PRICE_PENCE", "PRICE_IN_PENCE"]) {
        Some(i) => (i, true),
        None => (t.require("price", &["PRICE", "PRICE_CONCESSION", "PRICE_POUNDS"])?, false),
    };
    let mut out = Vec::new();
    let mut n = 0;
    while t.advance()? {
        if t.is_blank() {
            continue;
        }
        n += 1;
        let text = t.field(month);
        let m = match text.parse::<YearMonth>().ok().or_else(|| last_month_named(text)) {
            Some(m) => m,
            None => {
                let e =
                    t.error(month, format!("\"{}\" is not a month (2025-03, 2025-03-01 or March 2025)", clip(text)));
                t.reject(log, e)?;
                continue;
            }
        };
        let raw = t.field(price);
        let pence = if in_pence {
            Some(raw)
                .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|r| r.parse::<i64>().ok())
                .filter(|p| *p > 0 && *p <= 100_000_000)
        } else {
            price_pence(raw)
        };
        let Some(pence) = pence else {
            let unit = if in_pence { "whole pence" } else { "pounds" };
            let e = t.error(price, format!("\"{}\" is not a price in {unit}", clip(raw)));
            t.reject(log, e)?;
            continue;
        };
        if t.field(drug).is_empty() || t.field(pack).is_empty() {
            let e = t.error(drug, "a concession needs a drug and a pack size");
            t.reject(log, e)?;
            continue;
        }
        out.push(Concession {
            month: m,
            drug: normalise(&t.text(drug)),
            pack_size: normalise(t.field(pack)),
            price_pence: pence,
            source_line: format!("{} line {}", t.file, t.line()),
        });
    }
    Ok((out, n))
}

/// The number at the start of a pack size (`100ml` → 100, `140 dose` → 140), for matching to a
/// dm+d pack's quantity.
pub fn pack_quantity(pack_size: &str) -> Option<f64> {
    let number: String = pack_size.trim().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, body: &str, max_errors: u64) -> Result<(Vec<Concession>, ConcessionReport), IngestError> {
        read_concessions(SourceFile::from_bytes(name, body.as_bytes().to_vec()), ErrorPolicy { max_errors })
    }

    const PAGE: &str = "<html><head><style>td { x: '<table>' }</style></head><body><p>Updated on: 4th January 2024</p>\
        <div class=\"toggle\">December 2023</div><div class=\"toggle_container\"><table>\n\
        <tr><td><strong>Drug</strong></td><td>Pack size</td><td>Price concession</td></tr>\n\
        <tr><td>Amiloride 5mg tablets</td><td>28</td><td>&pound;15.70</td></tr>\n\
        <tr><td>Zopiclone 7.5mg tablets</td><td>28</td><td>1.6</td></tr>\n\
        </table></div><h3>2019</h3><p>November 2019</p><table><tr><th>Drug</th><th>Pack Size</th><th>Price Concession</th></tr>\n\
        <tr><td>Dexamfetamine 5mg/5ml oral solution sugar free</td><td>500ml</td><td>£381.63*</td></tr></table>\
        <table><tr><td>Cookie</td><td>Duration</td><td>Description</td></tr></table></body></html>";

    #[test]
    fn page_tables_are_found_dated_and_priced() {
        let (lines, report) = read("page.html", PAGE, 0).unwrap();
        let got: Vec<(String, &str, &str, i64)> =
            lines.iter().map(|l| (l.month.to_string(), l.drug.as_str(), l.pack_size.as_str(), l.price_pence)).collect();
        assert_eq!(
            got,
            [
                ("2023-12".to_string(), "Amiloride 5mg tablets", "28", 1570),
                ("2023-12".to_string(), "Zopiclone 7.5mg tablets", "28", 160),
                ("2019-11".to_string(), "Dexamfetamine 5mg/5ml oral solution sugar free", "500ml", 38_163),
            ]
        );
        assert_eq!(
            (report.layout, report.rows_read, lines[0].source_line.as_str()),
            ("CPE page", 3, "page.html line 3")
        );
        assert_eq!(pack_quantity("500ml"), Some(500.0));
    }

    #[test]
    fn a_rolled_over_repeat_counts_once_and_a_changed_layout_is_refused() {
        let twice = PAGE.replace("</table></div>", "</table></div><p>Rolled over from December 2023</p><table><tr><td>Drug</td><td>Pack size</td><td>Price concession</td></tr><tr><td>Amiloride 5mg tablets</td><td>28</td><td>£15.70</td></tr></table>");
        let (lines, report) = read("page.html", &twice, 0).unwrap();
        assert_eq!((lines.len(), report.repeated), (3, 1));
        let conflict = twice.replace("<td>£15.70</td></tr></table>", "<td>£16.00</td></tr></table>");
        let e = read("page.html", &conflict, 0).unwrap_err().to_string();
        assert!(e.contains("listed at two prices"), "{e}");
        let changed = PAGE.replace("Price concession", "Cost").replace("Price Concession", "Cost");
        let e = read("page.html", &changed, 0).unwrap_err().to_string();
        assert!(e.contains("no price concession table") && e.contains("among its 3 tables"), "{e}");
        let undated = PAGE.replace("December 2023", "Latest").replace("Updated on: 4th January 2024", "");
        let e = read("page.html", &undated, 0).unwrap_err().to_string();
        assert!(e.contains("line 2: concession table 1 has no \"Month YYYY\" heading"), "{e}");
        let bad = PAGE.replace("&pound;15.70", "TBC");
        let e = read("page.html", &bad, 0).unwrap_err().to_string();
        assert_eq!(e, "page.html line 3, column Price concession: \"TBC\" is not a price in pounds");
        assert_eq!(read("page.html", &bad, 1).unwrap().1.rejected.len(), 1);
    }

    #[test]
    fn csv_in_pounds_or_pence() {
        let (lines, _) =
            read("c.csv", "month,drug,pack_size,price\n2025-03,Trimethoprim 200mg tablets,6,£1.79\n", 0).unwrap();
        assert_eq!((lines[0].month.to_string(), lines[0].price_pence), ("2025-03".to_string(), 179));
        let op = "Date,Name,Pack Size,Price Pence,Notes,URL (if applicable)\n2026-06-01,Ezetimibe 10mg tablets,28,900,,https://x";
        let (lines, report) = read("m.csv", op, 0).unwrap();
        assert_eq!(
            (lines[0].month.to_string(), lines[0].price_pence, report.layout),
            ("2026-06".to_string(), 900, "CSV")
        );
        let e = read("m.csv", &op.replace(",900,", ",9.00,"), 0).unwrap_err().to_string();
        assert!(e.contains("column Price Pence: \"9.00\" is not a price in whole pence"), "{e}");
    }
}
