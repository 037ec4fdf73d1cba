//! Practice deprivation (Index of Multiple Deprivation).

use crate::error::RejectLog;
use crate::{ErrorPolicy, IngestError, Rejected, SourceFile, Table};
use ipmo_domain::{OdsCode, parse_decimal};
use std::collections::BTreeMap;

/// A practice's deprivation score and its national quintile.
#[derive(Clone, Debug, PartialEq)]
pub struct ImdRow {
    /// Practice code.
    pub practice_code: String,
    /// IMD score (population-weighted; higher is more deprived).
    pub score: f64,
    /// Year of the IMD edition, where the file says.
    pub year: Option<i32>,
    /// 1 = most deprived fifth of practices in the file, 5 = least deprived.
    pub quintile: i32,
}

/// Rows read and rejected, for the manifest.
#[derive(Debug)]
pub struct ImdReport {
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Bytes.
    pub bytes: u64,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows with no score (skipped, not errors: Fingertips leaves closed practices blank).
    pub rows_without_score: u64,
    /// Rows skipped as bad.
    pub rejected: Vec<Rejected>,
}

/// Reads OHID Fingertips indicator 93553 (`AreaCode`, `Year`, `Value`; the latest year per practice
/// is kept) or any file with a practice code and an `IMD_SCORE` column. Quintiles are computed over
/// every practice in the file, which should be national.
pub fn read_imd(source: SourceFile, errors: ErrorPolicy) -> Result<(Vec<ImdRow>, ImdReport), IngestError> {
    let checksum = source.checksum_handle();
    let mut t = Table::open(source)?;
    let mut log = RejectLog::new(errors.max_errors);
    let code = t.require("PRACTICE_CODE", &["PRACTICE_CODE", "AREACODE", "AREA_CODE", "CODE"])?;
    let score = t.require("IMD_SCORE", &["IMD_SCORE", "VALUE", "SCORE", "IMD"])?;
    let year = t.find(&["YEAR"]);
    let indicator = t.find(&["INDICATORID"]);
    let mut latest: BTreeMap<String, (Option<i32>, f64)> = BTreeMap::new();
    let (mut read, mut blank) = (0u64, 0u64);
    while t.advance()? {
        if t.is_blank() {
            continue;
        }
        read += 1;
        if indicator.is_some_and(|i| !t.field(i).is_empty() && t.field(i) != "93553") {
            continue;
        }
        if t.field(score).is_empty() || t.field(score).eq_ignore_ascii_case("NA") {
            blank += 1;
            continue;
        }
        let row = (|| {
            let c = OdsCode::parse(t.field(code)).map_err(|e| t.error(code, e.to_string()))?;
            let s = parse_decimal(t.field(score)).map_err(|e| t.error(score, e.to_string()))?;
            let y = match year {
                Some(i) => Some(
                    t.field(i).parse::<i32>().map_err(|_| t.error(i, format!("\"{}\" is not a year", t.field(i))))?,
                ),
                None => None,
            };
            Ok::<_, crate::RowError>((c.to_string(), y, s))
        })();
        match row {
            Ok((c, y, s)) => {
                let e = latest.entry(c).or_insert((y, s));
                if y >= e.0 {
                    *e = (y, s);
                }
            }
            Err(e) => t.reject(&mut log, e)?,
        }
    }
    let mut rows: Vec<ImdRow> = latest
        .into_iter()
        .map(|(practice_code, (year, score))| ImdRow { practice_code, score, year, quintile: 0 })
        .collect();
    assign_quintiles(&mut rows);
    let (sha256, bytes) = checksum.get();
    Ok((rows, ImdReport { sha256, bytes, rows_read: read, rows_without_score: blank, rejected: log.into_rows() }))
}

/// Ranks practices by score, most deprived first, into five groups of (nearly) equal size.
pub fn assign_quintiles(rows: &mut [ImdRow]) {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        rows[b].score.total_cmp(&rows[a].score).then(rows[a].practice_code.cmp(&rows[b].practice_code))
    });
    let n = rows.len().max(1);
    for (rank, &i) in order.iter().enumerate() {
        rows[i].quintile = (rank * 5 / n) as i32 + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintiles_split_evenly_most_deprived_first() {
        let mut rows: Vec<ImdRow> = (0..10)
            .map(|i| ImdRow { practice_code: format!("A{i:05}"), score: f64::from(i), year: None, quintile: 0 })
            .collect();
        assign_quintiles(&mut rows);
        assert_eq!(rows.iter().map(|r| r.quintile).collect::<Vec<_>>(), vec![5, 5, 4, 4, 3, 3, 2, 2, 1, 1]);
    }
}
