//! Imported indicators: metrics computed elsewhere from patient-level data (PINCER, polypharmacy
//! comparators, 6+ SABA) that IPMO then ranks, charts and alerts on like its own measures.
//!
//! The file is a CSV with a header; columns are matched by name:
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `indicator_id` | yes | letters, digits, `_` and `-` (e.g. `pincer_gi_bleed_nsaid`) |
//! | `org_code` | yes | an organisation in the warehouse's map: practice, PCN, sub-ICB location, ICB, region, or `ENG` |
//! | `month` | yes | `YYYY-MM` (or `YYYYMM`, `YYYY-MM-DD`) |
//! | `numerator` | yes | a count, 0 or more |
//! | `denominator` | yes | a count, at least the numerator |
//! | `title` | no | the indicator's name (the first non-empty one per indicator is kept) |
//! | `low_is_good` | no | `true`, `false` or empty (no judgement); one value per indicator |
//!
//! The value shown is `numerator / denominator × 100`. Small numbers are suppressed by the
//! warehouse when it stores the rows, not here, so the threshold can be chosen per load.

use crate::error::RejectLog;
use crate::{ErrorPolicy, IngestError, Rejected, SourceFile, Table};
use ipmo_domain::{YearMonth, parse_decimal};
use std::collections::HashMap;

/// One organisation-month of an indicator.
#[derive(Clone, Debug, PartialEq)]
pub struct IndicatorRow {
    /// Indicator id.
    pub indicator_id: String,
    /// Organisation type, as the resolver said (`practice`, `pcn`, `sicbl`, `icb`, `region`, `england`).
    pub org_type: String,
    /// Organisation code, upper case.
    pub org_code: String,
    /// Month.
    pub month: YearMonth,
    /// Numerator count.
    pub numerator: f64,
    /// Denominator count.
    pub denominator: f64,
}

/// What the file says about each indicator beyond its rows.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct IndicatorInfo {
    /// Indicator id.
    pub id: String,
    /// Title, or the id when the file gives none.
    pub title: String,
    /// `Some(true)` when low values are good, `Some(false)` when high are, `None` for no judgement.
    pub low_is_good: Option<bool>,
}

/// Rows read and rejected, for the manifest.
#[derive(Debug)]
pub struct IndicatorReport {
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Bytes.
    pub bytes: u64,
    /// Data rows read.
    pub rows_read: u64,
    /// The indicators in the file, in order of first appearance.
    pub indicators: Vec<IndicatorInfo>,
    /// Rows skipped as bad.
    pub rejected: Vec<Rejected>,
}

/// Largest numerator or denominator accepted: far beyond England's population times any
/// number of events, and small enough that `numerator / denominator × 100` and sums stay finite.
pub const MAX_COUNT: f64 = 1e15;

/// Whether `id` can name an indicator (it becomes a partition name and an SQL literal).
pub fn is_indicator_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Reads an indicator file. `org_type_of` maps an (upper-case) organisation code to its type, or
/// `None` when the warehouse does not know it, which rejects the row.
pub fn read_indicators(
    source: SourceFile,
    errors: ErrorPolicy,
    org_type_of: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<IndicatorRow>, IndicatorReport), IngestError> {
    let checksum = source.checksum_handle();
    let mut t = Table::open(source)?;
    let mut log = RejectLog::new(errors.max_errors);
    let id_col = t.require("indicator_id", &["INDICATOR_ID", "INDICATOR", "ID"])?;
    let org_col = t.require("org_code", &["ORG_CODE", "ORGANISATION_CODE", "PRACTICE_CODE", "CODE"])?;
    let month_col = t.require("month", &["MONTH", "YEAR_MONTH", "DATE", "PERIOD"])?;
    let num_col = t.require("numerator", &["NUMERATOR"])?;
    let den_col = t.require("denominator", &["DENOMINATOR"])?;
    let title_col = t.find(&["TITLE", "INDICATOR_TITLE", "NAME"]);
    let low_col = t.find(&["LOW_IS_GOOD"]);
    let mut rows = Vec::new();
    let mut infos: Vec<IndicatorInfo> = Vec::new();
    let mut seen: HashMap<(String, String, YearMonth), u64> = HashMap::new();
    let mut read = 0u64;
    while t.advance()? {
        if t.is_blank() {
            continue;
        }
        read += 1;
        let row = (|| {
            let id = t.field(id_col);
            if !is_indicator_id(id) {
                return Err(
                    t.error(id_col, format!("\"{id}\" is not an indicator id: use 1 to 64 letters, digits, _ and -"))
                );
            }
            let org_code = t.field(org_col).to_ascii_uppercase();
            let org_type = org_type_of(&org_code).ok_or_else(|| {
                t.error(
                    org_col,
                    format!(
                        "organisation \"{org_code}\" is not in the warehouse's organisation map; load the map \
                         that contains it with `ipmo ingest orgs`, or correct the code"
                    ),
                )
            })?;
            let month: YearMonth = t
                .field(month_col)
                .parse()
                .map_err(|e: ipmo_domain::MonthError| t.error(month_col, format!("{e}; write the month as YYYY-MM")))?;
            let count = |i: usize| {
                let v = parse_decimal(t.field(i)).map_err(|e| t.error(i, e.to_string()))?;
                if v < 0.0 {
                    return Err(t.error(i, format!("{v} is negative; counts are 0 or more")));
                }
                if v > MAX_COUNT {
                    return Err(t.error(
                        i,
                        format!("{v} is larger than any real count (at most {MAX_COUNT:e}); check the value"),
                    ));
                }
                Ok(v)
            };
            let numerator = count(num_col)?;
            let denominator = count(den_col)?;
            if numerator > denominator {
                return Err(t.error(
                    num_col,
                    format!(
                        "numerator {numerator} is larger than denominator {denominator}; an indicator is a proportion"
                    ),
                ));
            }
            let low_is_good = match low_col.map(|i| (i, t.field(i).to_ascii_lowercase())) {
                None => None,
                Some((_, v)) if v.is_empty() => None,
                Some((_, v)) if v == "true" || v == "yes" || v == "1" => Some(true),
                Some((_, v)) if v == "false" || v == "no" || v == "0" => Some(false),
                Some((i, v)) => return Err(t.error(i, format!("\"{v}\" is not true, false or empty"))),
            };
            if let Some(first) = seen.get(&(id.to_string(), org_code.clone(), month)) {
                return Err(t.error(
                    org_col,
                    format!("{id} for {org_code} in {month} is already given on line {first}; give each once"),
                ));
            }
            let info = IndicatorInfo {
                id: id.to_string(),
                title: title_col.map(|i| t.text(i)).unwrap_or_default(),
                low_is_good,
            };
            Ok((IndicatorRow { indicator_id: id.to_string(), org_type, org_code, month, numerator, denominator }, info))
        })();
        match row {
            Ok((row, info)) => {
                seen.insert((row.indicator_id.clone(), row.org_code.clone(), row.month), t.line());
                match infos.iter_mut().find(|i| i.id == info.id) {
                    Some(known) => {
                        if known.title.is_empty() {
                            known.title = info.title;
                        }
                        if let Some(i) = low_col
                            && known.low_is_good != info.low_is_good
                        {
                            let e = t.error(
                                i,
                                format!(
                                    "low_is_good for {} differs from its first row; give one value per indicator",
                                    info.id
                                ),
                            );
                            t.reject(&mut log, e)?;
                            continue;
                        }
                    }
                    None => infos.push(info),
                }
                rows.push(row);
            }
            Err(e) => t.reject(&mut log, e)?,
        }
    }
    if read == 0 {
        return Err(IngestError::format(&t.file, "the file has a header but no rows; nothing was loaded"));
    }
    for info in &mut infos {
        if info.title.is_empty() {
            info.title = info.id.clone();
        }
    }
    let (sha256, bytes) = checksum.get();
    Ok((rows, IndicatorReport { sha256, bytes, rows_read: read, indicators: infos, rejected: log.into_rows() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, max_errors: u64) -> Result<(Vec<IndicatorRow>, IndicatorReport), IngestError> {
        let source = SourceFile::from_bytes("ind.csv", text.as_bytes().to_vec());
        let orgs = |c: &str| match c {
            "A81001" | "A81002" => Some("practice".to_string()),
            "QHM" => Some("icb".to_string()),
            _ => None,
        };
        read_indicators(source, ErrorPolicy { max_errors }, &orgs)
    }

    #[test]
    fn reads_rows_and_indicator_facts() {
        let (rows, report) = read(
            "indicator_id,org_code,month,numerator,denominator,title,low_is_good\n\
             pincer_a,a81001,2024-01,3,40,PINCER A,true\n\
             pincer_a,QHM,202401,30,400,,true\n",
            0,
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].org_code, "A81001");
        assert_eq!(rows[0].org_type, "practice");
        assert_eq!(rows[1].org_type, "icb");
        assert_eq!(rows[1].month.to_string(), "2024-01");
        assert_eq!(
            report.indicators,
            vec![IndicatorInfo { id: "pincer_a".into(), title: "PINCER A".into(), low_is_good: Some(true) }]
        );
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let head = "indicator_id,org_code,month,numerator,denominator\n";
        let cases = [
            ("x,ZZZ,2024-01,1,2\n", "ind.csv line 2, column org_code: organisation \"ZZZ\" is not in the warehouse"),
            ("x,A81001,2024-13,1,2\n", "ind.csv line 2, column month:"),
            ("x,A81001,2024-01,5,2\n", "numerator 5 is larger than denominator 2"),
            ("x,A81001,2024-01,-1,2\n", "-1 is negative"),
            ("x y,A81001,2024-01,1,2\n", "is not an indicator id"),
            ("x,A81001,2024-01,1e308,1.7e308\n", "larger than any real count"),
            ("", "ind.csv: the file has a header but no rows"),
            (
                "x,A81001,2024-01,1,2\nx,A81001,2024-01,1,2\n",
                "line 3, column org_code: x for A81001 in 2024-01 is already given on line 2",
            ),
        ];
        for (body, want) in cases {
            let err = read(&format!("{head}{body}"), 0).unwrap_err().to_string();
            assert!(err.contains(want), "{body:?}: {err}");
        }
        // Under --max-errors the good rows load and the bad are kept for the rejects file.
        let (rows, report) = read(&format!("{head}x,ZZZ,2024-01,1,2\nx,A81001,2024-01,1,2\n"), 5).unwrap();
        assert_eq!((rows.len(), report.rejected.len()), (1, 1));
    }
}
