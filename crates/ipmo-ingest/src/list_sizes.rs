//! Registered patients per practice, and the STAR-PU weighted denominators derived from them.

use crate::error::RejectLog;
use crate::{ErrorPolicy, IngestError, Rejected, SourceFile, Table};
use ipmo_domain::{OdsCode, YearMonth, parse_extract_date, parse_whole_number};
use std::collections::BTreeMap;

/// Most patients one count may hold: the largest practice in England has under 150,000, and the
/// bound keeps every sum over bands and months far from overflowing.
pub const MAX_PATIENTS: i64 = 10_000_000;

/// The nine age bands of the 2013 STAR-PUs.
pub const STAR_PU_BANDS: [&str; 9] = ["0_4", "5_14", "15_24", "25_34", "35_44", "45_54", "55_64", "65_74", "75_plus"];

/// HSCIC 2013 oral antibacterial item-based STAR-PU weights, (male, female) per band: the
/// denominator OpenPrescribing and the NHS Oversight Framework use for antibiotic volume.
pub const ORAL_ANTIBACTERIAL_ITEM_2013: [(f64, f64); 9] = [
    (0.8377155655095184, 0.7652339111849917),
    (0.3138732420636401, 0.3965845878554479),
    (0.33969141052120033, 0.6256560773480663),
    (0.2409056506545999, 0.5803189179127629),
    (0.2668526596045998, 0.5851314623781853),
    (0.31587104773713576, 0.618586515495957),
    (0.44801597638273855, 0.7388612532655764),
    (0.6931228760507959, 0.9727081572044829),
    (0.9860710593612275, 1.2658322296629296),
];

/// One practice's registered patients in one month.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListSize {
    /// Month of the count (the extract date's month, or the quarter's first month).
    pub month: Option<YearMonth>,
    /// Practice code.
    pub practice_code: String,
    /// All registered patients.
    pub total: i64,
    /// Male patients by STAR-PU band.
    pub male: [i64; 9],
    /// Female patients by STAR-PU band.
    pub female: [i64; 9],
}

impl ListSize {
    /// Σ patients × weight over the 18 age/sex cells.
    pub fn star_pu(&self, weights: &[(f64, f64); 9]) -> f64 {
        (0..9).map(|i| self.male[i] as f64 * weights[i].0 + self.female[i] as f64 * weights[i].1).sum()
    }
}

/// Maps an age band label (`0_4`, `10-14`, `95+`, `75+`, `5-14`) to its STAR-PU band, if it is a
/// single band (not `ALL`).
fn band_of(label: &str) -> Option<usize> {
    let l = label.trim().replace('-', "_");
    let lower: u32 = l.split(['_', '+']).next()?.parse().ok()?;
    Some(match lower {
        0..=4 => 0,
        5..=14 => 1,
        15..=24 => 2,
        25..=34 => 3,
        35..=44 => 4,
        45..=54 => 5,
        55..=64 => 6,
        65..=74 => 7,
        _ => 8,
    })
}

/// Rows read and rejected, for the manifest.
#[derive(Debug)]
pub struct ListSizeReport {
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Bytes.
    pub bytes: u64,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows skipped.
    pub rejected: Vec<Rejected>,
}

/// Reads the long quinary format (`SEX`, `AGE_GROUP_5`, `NUMBER_OF_PATIENTS`), the wide quinary
/// format (`Male_0-4`, …) and the old quarterly STAR-PU band format (`Male 0-4`, `Male 5-14`, …).
pub fn read_list_sizes(
    source: SourceFile,
    month: Option<YearMonth>,
    errors: ErrorPolicy,
) -> Result<(Vec<ListSize>, ListSizeReport), IngestError> {
    let checksum = source.checksum_handle();
    let name_month = YearMonth::from_file_name(&source.name);
    let mut t = Table::open(source)?;
    let mut log = RejectLog::new(errors.max_errors);
    let mut read = 0u64;
    let mut out: BTreeMap<(Option<YearMonth>, String), ListSize> = BTreeMap::new();
    let count = |t: &Table, i: usize| {
        let n = parse_whole_number(t.field(i)).map_err(|e| t.error(i, e.to_string()))?;
        if !(0..=MAX_PATIENTS).contains(&n) {
            return Err(
                t.error(i, format!("{n} patients is not a practice list size (0 to {MAX_PATIENTS}); check the value"))
            );
        }
        Ok(n)
    };
    let month_of = |t: &Table, col: Option<usize>| -> Result<Option<YearMonth>, crate::RowError> {
        if month.is_some() {
            return Ok(month);
        }
        match col {
            Some(i) if !t.field(i).is_empty() => parse_extract_date(t.field(i))
                .map(|d| Some(YearMonth::of_date(d)))
                .ok_or_else(|| t.error(i, format!("\"{}\" is not a date", t.field(i)))),
            _ => Ok(name_month),
        }
    };
    if let Some(sex) = t.find(&["SEX"]) {
        let code = t.require("ORG_CODE", &["ORG_CODE", "CODE", "PRACTICE_CODE"])?;
        let age = t.require("AGE_GROUP_5", &["AGE_GROUP_5", "AGE_GROUP"])?;
        let n = t.require("NUMBER_OF_PATIENTS", &["NUMBER_OF_PATIENTS"])?;
        let org_type = t.find(&["ORG_TYPE", "TYPE"]);
        let date = t.find(&["EXTRACT_DATE"]);
        while t.advance()? {
            if t.is_blank() {
                continue;
            }
            read += 1;
            if org_type.is_some_and(|i| t.field(i) != "GP") {
                continue;
            }
            let row = (|| {
                let m = month_of(&t, date)?;
                let c = OdsCode::parse(t.field(code)).map_err(|e| t.error(code, e.to_string()))?;
                let patients = count(&t, n)?;
                Ok::<_, crate::RowError>((m, c.to_string(), patients))
            })();
            let (m, c, patients) = match row {
                Ok(r) => r,
                Err(e) => {
                    t.reject(&mut log, e)?;
                    continue;
                }
            };
            let entry = out.entry((m, c.clone())).or_insert_with(|| ListSize {
                month: m,
                practice_code: c,
                ..Default::default()
            });
            let (s, a) = (t.field(sex).to_ascii_uppercase(), t.field(age));
            match (s.as_str(), a.eq_ignore_ascii_case("ALL")) {
                ("ALL", true) => entry.total = patients,
                ("MALE" | "M", false) | ("FEMALE" | "F", false) => match band_of(a) {
                    Some(b) if s.starts_with('M') => entry.male[b] += patients,
                    Some(b) => entry.female[b] += patients,
                    None => t.reject(&mut log, t.error(age, format!("\"{a}\" is not an age band")))?,
                },
                _ => {}
            }
        }
    } else {
        let code = t.require("PRACTICE_CODE", &["PRACTICE_CODE", "GP_PRACTICE_CODE", "ORG_CODE", "CODE"])?;
        let date = t.find(&["MONTH", "EXTRACT_DATE"]);
        let total = t.find(&["TOTAL_ALL"]);
        let mut bands: Vec<(bool, usize, usize)> = Vec::new();
        for (i, h) in t.headers.iter().enumerate() {
            let (male, rest) = if let Some(r) = h.strip_prefix("MALE_") {
                (true, r)
            } else if let Some(r) = h.strip_prefix("FEMALE_") {
                (false, r)
            } else {
                continue;
            };
            if let Some(b) = band_of(rest) {
                bands.push((male, b, i));
            }
        }
        if bands.len() < 18 {
            return Err(IngestError::format(
                &t.file,
                "not a list-size file: expected SEX/AGE_GROUP_5 columns or Male/Female age-band columns",
            ));
        }
        while t.advance()? {
            if t.is_blank() {
                continue;
            }
            read += 1;
            let row = (|| {
                let m = month_of(&t, date)?;
                let c = OdsCode::parse(t.field(code)).map_err(|e| t.error(code, e.to_string()))?;
                let mut ls = ListSize { month: m, practice_code: c.to_string(), ..Default::default() };
                for &(male, b, i) in &bands {
                    let v = count(&t, i)?;
                    if male { ls.male[b] += v } else { ls.female[b] += v }
                }
                ls.total = match total {
                    Some(i) => count(&t, i)?,
                    None => ls.male.iter().sum::<i64>() + ls.female.iter().sum::<i64>(),
                };
                Ok::<_, crate::RowError>(ls)
            })();
            match row {
                Ok(ls) => {
                    out.insert((ls.month, ls.practice_code.clone()), ls);
                }
                Err(e) => t.reject(&mut log, e)?,
            }
        }
    }
    if out.values().any(|l| l.month.is_none()) {
        return Err(IngestError::format(
            &t.file,
            "the file has no date column and its name holds no YYYYMM; pass --month YYYY-MM",
        ));
    }
    let (sha256, bytes) = checksum.get();
    Ok((out.into_values().collect(), ListSizeReport { sha256, bytes, rows_read: read, rejected: log.into_rows() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands() {
        assert_eq!(band_of("0_4"), Some(0));
        assert_eq!(band_of("10_14"), Some(1));
        assert_eq!(band_of("95+"), Some(8));
        assert_eq!(band_of("75+"), Some(8));
        assert_eq!(band_of("5-14"), Some(1));
        assert_eq!(band_of("ALL"), None);
    }

    #[test]
    fn star_pu_is_weighted_sum() {
        let mut ls = ListSize::default();
        ls.male[0] = 100;
        ls.female[8] = 10;
        let expected = 100.0 * 0.8377155655095184 + 10.0 * 1.2658322296629296;
        assert!((ls.star_pu(&ORAL_ANTIBACTERIAL_ITEM_2013) - expected).abs() < 1e-9);
    }
}
