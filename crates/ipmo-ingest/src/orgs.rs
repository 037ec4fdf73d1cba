//! Organisation files: NHS Digital's practice mapping and ODS `epraccur`.

use crate::error::RejectLog;
use crate::{ErrorPolicy, IngestError, Rejected, SourceFile, Table};
use chrono::NaiveDate;
use ipmo_domain::{OdsCode, YearMonth, parse_extract_date};

/// A practice's place in the NHS hierarchy on one extract date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipRow {
    /// Date the mapping describes (`EXTRACT_DATE`).
    pub extract_date: NaiveDate,
    /// Practice code.
    pub practice_code: String,
    /// Practice name.
    pub practice_name: String,
    /// Practice postcode.
    pub postcode: String,
    /// Primary Care Network; `None` for practices outside any PCN (`U` in the file).
    pub pcn_code: Option<String>,
    /// PCN name.
    pub pcn_name: String,
    /// Sub-ICB location (a CCG before July 2022).
    pub sicbl_code: String,
    /// Sub-ICB location name.
    pub sicbl_name: String,
    /// Integrated Care Board (an STP before July 2022).
    pub icb_code: String,
    /// ICB name.
    pub icb_name: String,
    /// NHS England commissioning region.
    pub region_code: String,
    /// Region name.
    pub region_name: String,
}

/// A row of ODS `epraccur` (GP practices and prescribing cost centres).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PracticeDetails {
    /// Organisation code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Postcode.
    pub postcode: String,
    /// `active`, `closed`, `dormant` or `proposed`.
    pub status: String,
    /// Prescribing setting as published (`4` or `RO76` for a GP practice).
    pub setting: String,
    /// True for a standard GP practice, the only kind measures rank.
    pub is_gp_practice: bool,
    /// Commissioner (parent organisation) code.
    pub commissioner: String,
    /// Opened.
    pub open_date: Option<NaiveDate>,
    /// Closed.
    pub close_date: Option<NaiveDate>,
}

/// What an organisation file held.
#[derive(Debug)]
pub enum OrgFile {
    /// A practice → PCN → sub-ICB → ICB → region mapping for one date.
    Membership {
        /// The extract date of every row.
        extract_date: NaiveDate,
        /// The rows.
        rows: Vec<MembershipRow>,
    },
    /// An ODS practice list.
    Epraccur(Vec<PracticeDetails>),
}

/// Rows read and rejected, for the manifest.
#[derive(Debug)]
pub struct OrgReport {
    /// File name.
    pub file: String,
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Bytes.
    pub bytes: u64,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows skipped under `--max-errors`.
    pub rejected: Vec<Rejected>,
}

/// Reads either kind of organisation file, telling them apart by the header: `epraccur` has none
/// (its first cell is an ODS code), the mapping has `PRACTICE_CODE` or `CODE`.
pub fn read_orgs(
    source: SourceFile,
    as_at: Option<NaiveDate>,
    errors: ErrorPolicy,
) -> Result<(OrgFile, OrgReport), IngestError> {
    let checksum = source.checksum_handle();
    let name_month = YearMonth::from_file_name(&source.name);
    let mut t = Table::open(source)?;
    let file_name = t.file.clone();
    let mut log = RejectLog::new(errors.max_errors);
    // Full extracts have 27 columns; status (column 13) is the last one we cannot do without.
    let headerless = t.raw_headers.len() >= 13
        && OdsCode::parse(&t.raw_headers[0]).is_ok()
        && t.find(&["PRACTICE_CODE", "CODE"]).is_none();
    if headerless && ods_status(&t.raw_headers[12]).is_none() {
        return Err(IngestError::format(
            &file_name,
            "this is an ODS file without a header but not epraccur (column 13 should be a practice status \
             such as A or ACTIVE); `ipmo ingest orgs` reads ODS epraccur and NHS Digital's gp-reg-pat-prac-map",
        ));
    }
    let (file, rows_read) = if headerless {
        read_epraccur(t, &mut log)?
    } else {
        let practice = t.require("PRACTICE_CODE", &["PRACTICE_CODE", "CODE"])?;
        let name = t.find(&["PRACTICE_NAME", "NAME"]);
        let postcode = t.find(&["PRACTICE_POSTCODE", "POSTCODE"]);
        let pcn = t.find(&["PCN_CODE"]);
        let pcn_name = t.find(&["PCN_NAME"]);
        let sicbl = t.require("SUB_ICB_LOCATION_CODE", &["SUB_ICB_LOCATION_CODE", "SICBL_CODE", "CCG_CODE"])?;
        let sicbl_name = t.find(&["SUB_ICB_LOCATION_NAME", "CCG_NAME"]);
        let icb = t.require("ICB_CODE", &["ICB_CODE", "STP_CODE"])?;
        let icb_name = t.find(&["ICB_NAME", "STP_NAME"]);
        let region = t.require("COMM_REGION_CODE", &["COMM_REGION_CODE", "REGION_CODE"])?;
        let region_name = t.find(&["COMM_REGION_NAME", "REGION_NAME", "REGON_NAME"]);
        let date_col = t.find(&["EXTRACT_DATE"]);
        let mut rows = Vec::new();
        let mut extract_date = as_at;
        let mut read = 0u64;
        while t.advance()? {
            if t.is_blank() {
                continue;
            }
            read += 1;
            let date = match (as_at, date_col) {
                (Some(d), _) => Ok(d),
                (None, Some(i)) => parse_extract_date(t.field(i)).ok_or_else(|| {
                    t.error(i, format!("\"{}\" is not a date (expected e.g. 01Oct2025 or 01-Sep-20)", t.field(i)))
                }),
                (None, None) => name_month.map(|m| m.first_day()).ok_or_else(|| {
                    t.error(
                        practice,
                        "the file has no EXTRACT_DATE column and its name holds no YYYYMM; pass --as-at YYYY-MM-DD",
                    )
                }),
            };
            let row = date.and_then(|d| {
                let code =
                    |i: usize| OdsCode::parse(t.field(i)).map(|c| c.to_string()).map_err(|e| t.error(i, e.to_string()));
                let opt = |i: Option<usize>| i.map(|i| t.text(i)).unwrap_or_default();
                let pcn_code = match pcn.map(|i| t.field(i)) {
                    None | Some("") | Some("U") => None,
                    Some(_) => Some(code(pcn.expect("checked"))?),
                };
                Ok(MembershipRow {
                    extract_date: d,
                    practice_code: code(practice)?,
                    practice_name: opt(name),
                    postcode: opt(postcode),
                    pcn_name: if pcn_code.is_some() { opt(pcn_name) } else { String::new() },
                    pcn_code,
                    sicbl_code: code(sicbl)?,
                    sicbl_name: opt(sicbl_name),
                    icb_code: code(icb)?,
                    icb_name: opt(icb_name),
                    region_code: code(region)?,
                    region_name: opt(region_name),
                })
            });
            match row {
                Ok(r) => {
                    if let Some(d) = extract_date
                        && d != r.extract_date
                    {
                        let i = date_col.unwrap_or(practice);
                        let e = t.error(
                            i,
                            format!(
                                "extract date {} differs from {} earlier in the file; load one date per file",
                                r.extract_date, d
                            ),
                        );
                        t.reject(&mut log, e)?;
                        continue;
                    }
                    extract_date = Some(r.extract_date);
                    rows.push(r);
                }
                Err(e) => t.reject(&mut log, e)?,
            }
        }
        let extract_date =
            extract_date.ok_or_else(|| IngestError::format(&t.file, "the file has a header but no rows"))?;
        (OrgFile::Membership { extract_date, rows }, read)
    };
    let (sha256, bytes) = checksum.get();
    let report = OrgReport { file: file_name, sha256, bytes, rows_read, rejected: log.into_rows() };
    Ok((file, report))
}

/// ODS practice status, old single-letter or 2026 word form, as the lower-case word we store.
fn ods_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "A" | "ACTIVE" => "active",
        "C" | "INACTIVE" | "CLOSED" => "closed",
        "D" | "DORMANT" => "dormant",
        "P" | "PROPOSED" => "proposed",
        _ => return None,
    })
}

fn read_epraccur(mut t: Table, log: &mut RejectLog) -> Result<(OrgFile, u64), IngestError> {
    // ODS publishes epraccur without a header; its columns are fixed by the ODS specification.
    t.first_line_is_data();
    let mut rows = Vec::new();
    let mut read = 0;
    while t.advance()? {
        if t.is_blank() {
            continue;
        }
        read += 1;
        let code = match OdsCode::parse(t.field(0)) {
            Ok(c) => c.to_string(),
            Err(e) => {
                t.reject(log, t.error(0, e.to_string()))?;
                continue;
            }
        };
        let Some(status) = ods_status(t.field(12)) else {
            let message = format!("\"{}\" is not an ODS status (A, C, D, P, ACTIVE, INACTIVE, DORMANT)", t.field(12));
            t.reject(log, t.error(12, message))?;
            continue;
        };
        let setting = t.field(25).to_string();
        let date = |i: usize| {
            let s = t.field(i);
            if s.is_empty() { None } else { NaiveDate::parse_from_str(s, "%Y%m%d").ok() }
        };
        rows.push(PracticeDetails {
            name: t.text(1),
            postcode: t.text(9),
            status: status.to_string(),
            is_gp_practice: setting == "4" || setting == "RO76",
            setting,
            commissioner: t.field(14).to_string(),
            open_date: date(10),
            close_date: date(11),
            code,
        });
    }
    Ok((OrgFile::Epraccur(rows), read))
}
