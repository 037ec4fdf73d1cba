//! NHS trusts from ODS (`etr`): each trust with the ICB and region it sits in, so that hospital
//! medicines (SCMD) can be put beside the primary care of the same system.

use crate::error::RejectLog;
use crate::{ErrorPolicy, IngestError, Rejected, SourceFile, Table};
use chrono::NaiveDate;
use ipmo_domain::{OdsCode, parse_extract_date};

/// One NHS trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trust {
    /// ODS code (`RRK`).
    pub code: String,
    /// Name as published.
    pub name: String,
    /// The ICB it belongs to (ODS "high level health geography"; an STP before July 2022).
    pub icb_code: Option<String>,
    /// NHS England region (ODS "national grouping").
    pub region_code: Option<String>,
    /// Postcode of its headquarters.
    pub postcode: Option<String>,
    /// Opened.
    pub open_date: Option<NaiveDate>,
    /// Closed (merged trusts close and their successor takes over).
    pub close_date: Option<NaiveDate>,
}

/// What a trust file held, for the manifest.
#[derive(Debug)]
pub struct TrustReport {
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Bytes.
    pub bytes: u64,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows skipped.
    pub rejected: Vec<Rejected>,
}

/// Reads ODS `etr.csv` as published (no header; columns fixed by the ODS specification: code,
/// name, national grouping, high level health geography, five address lines, postcode, open and
/// close dates), or a copy with a header (`ods_code`/`code`, `ods_name`/`name`, `region_code`,
/// `stp_code`/`icb_code`, `postcode`, `open_date`, `close_date`; `NA` read as missing).
pub fn read_trusts(source: SourceFile, errors: ErrorPolicy) -> Result<(Vec<Trust>, TrustReport), IngestError> {
    let checksum = source.checksum_handle();
    let mut t = Table::open(source)?;
    let mut log = RejectLog::new(errors.max_errors);
    let headerless = t.raw_headers.len() >= 12
        && OdsCode::parse(&t.raw_headers[0]).is_ok()
        && t.find(&["ODS_CODE", "CODE", "ORGANISATION_CODE"]).is_none();
    let columns = if headerless {
        t.first_line_is_data();
        Columns { code: 0, name: 1, region: Some(2), icb: Some(3), postcode: Some(9), open: Some(10), close: Some(11) }
    } else {
        Columns {
            code: t.require("ODS_CODE", &["ODS_CODE", "CODE", "ORGANISATION_CODE"])?,
            name: t.require("ODS_NAME", &["ODS_NAME", "NAME"])?,
            region: t.find(&["REGION_CODE", "NATIONAL_GROUPING"]),
            icb: t.find(&["ICB_CODE", "STP_CODE", "HIGH_LEVEL_HEALTH_GEOGRAPHY"]),
            postcode: t.find(&["POSTCODE"]),
            open: t.find(&["OPEN_DATE"]),
            close: t.find(&["CLOSE_DATE"]),
        }
    };
    let (mut trusts, mut read) = (Vec::new(), 0u64);
    while t.advance()? {
        if t.is_blank() {
            continue;
        }
        read += 1;
        match columns.trust(&t) {
            Ok(trust) => trusts.push(trust),
            Err(e) => t.reject(&mut log, e)?,
        }
    }
    let (sha256, bytes) = checksum.get();
    Ok((trusts, TrustReport { sha256, bytes, rows_read: read, rejected: log.into_rows() }))
}

/// Where each field is.
struct Columns {
    code: usize,
    name: usize,
    region: Option<usize>,
    icb: Option<usize>,
    postcode: Option<usize>,
    open: Option<usize>,
    close: Option<usize>,
}

impl Columns {
    fn trust(&self, t: &Table) -> Result<Trust, crate::RowError> {
        let text =
            |i: Option<usize>| i.map(|i| t.field(i).trim()).filter(|s| !s.is_empty() && *s != "NA").map(str::to_string);
        let code = |i: Option<usize>| match i.map(|i| (i, t.field(i).trim())) {
            Some((_, "" | "NA")) | None => Ok(None),
            Some((i, s)) => OdsCode::parse(s).map(|c| Some(c.to_string())).map_err(|e| t.error(i, e.to_string())),
        };
        let date = |i: Option<usize>| match i.map(|i| (i, t.field(i).trim())) {
            Some((_, "" | "NA")) | None => Ok(None),
            Some((i, s)) => parse_extract_date(s)
                .map(Some)
                .ok_or_else(|| t.error(i, format!("\"{s}\" is not a date (expected 20170401 or 2017-04-01)"))),
        };
        let trust_code = OdsCode::parse(t.field(self.code)).map_err(|e| t.error(self.code, e.to_string()))?;
        let name = t.field(self.name).trim();
        if name.is_empty() {
            return Err(t.error(self.name, "the trust has no name"));
        }
        Ok(Trust {
            code: trust_code.to_string(),
            name: name.to_string(),
            icb_code: code(self.icb)?,
            region_code: code(self.region)?,
            postcode: text(self.postcode),
            open_date: date(self.open)?,
            close_date: date(self.close)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<Trust>, TrustReport) {
        read_trusts(SourceFile::from_bytes("etr.csv", text.as_bytes().to_vec()), ErrorPolicy { max_errors: 5 }).unwrap()
    }

    #[test]
    fn reads_ods_etr_without_a_header() {
        let text = "\"RRK\",\"UNIVERSITY HOSPITALS BIRMINGHAM NHS FOUNDATION TRUST\",\"Y60\",\"QHL\",\"QUEEN ELIZABETH HOSPITAL\",\
                    \"MINDELSOHN WAY\",\"EDGBASTON\",\"BIRMINGHAM\",\"\",\"B15 2GW\",\"20000401\",\"\",\"\",\"\",\"\",\"\",\"\",\
                    \"\",\"\",\"\",\"\",\"0\",\"\",\"F\",\"\",\"\",\"\"\n";
        let (trusts, report) = read(text);
        assert_eq!(report.rows_read, 1);
        assert_eq!(trusts[0].code, "RRK");
        assert_eq!((trusts[0].icb_code.as_deref(), trusts[0].region_code.as_deref()), (Some("QHL"), Some("Y60")));
        assert_eq!(trusts[0].open_date, NaiveDate::from_ymd_opt(2000, 4, 1));
        assert_eq!(trusts[0].close_date, None);
    }

    #[test]
    fn reads_a_copy_with_a_header_and_na_for_missing() {
        let text = "ods_code,ods_name,region_code,stp_code,postcode,open_date,close_date\n\
                    R0A,Manchester University NHS Foundation Trust,Y62,QOP,M13 9WL,2017-10-01,NA\n\
                    RXX,,Y62,QOP,NA,NA,NA\n";
        let (trusts, report) = read(text);
        assert_eq!(trusts.len(), 1);
        assert_eq!(trusts[0].icb_code.as_deref(), Some("QOP"));
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].error.line, 3);
    }
}
