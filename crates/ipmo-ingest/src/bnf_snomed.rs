//! NHSBSA's BNF ↔ SNOMED CT mapping: which dm+d product (VMP, AMP) or pack (VMPP, AMPP) each BNF
//! presentation code stands for. It joins prescribing from files without a `SNOMED_CODE` column
//! (everything before the "EPD with SNOMED code") to dm+d.
//!
//! Published as a spreadsheet (`.xlsx`, one sheet, every code as text behind a leading
//! apostrophe) and copied around as CSV; both are read, columns found by header name. A
//! spreadsheet that stored a SNOMED id as a number has lost its last digits, and is refused.

use crate::error::{RejectLog, clip};
use crate::{ErrorPolicy, IngestError, Rejected, SourceFile, Table};
use calamine::{Data, Reader, Xlsx};

/// One mapping row.
#[derive(Clone, Debug, PartialEq)]
pub struct BnfSnomed {
    /// BNF presentation code (15 characters; 11 for appliances).
    pub bnf_code: String,
    /// The dm+d id.
    pub snomed_code: String,
    /// `VMP`, `VMPP`, `AMP` or `AMPP`, when the file says.
    pub level: Option<String>,
    /// The dm+d description the file gives.
    pub name: Option<String>,
}

/// What was read.
#[derive(Debug)]
pub struct BnfSnomedReport {
    /// `xlsx` or `CSV`.
    pub layout: &'static str,
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Bytes.
    pub bytes: u64,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows with no BNF code (products the BNF does not cover): read, not stored.
    pub without_bnf: u64,
    /// Rows skipped under `--max-errors`.
    pub rejected: Vec<Rejected>,
}

/// Opens a mapping file: a workbook as its raw bytes (it is itself a zip, which the CSV opener
/// would try to unpack), anything else as any other input file (plain, gzip, zip of one CSV).
pub fn open_mapping(path: &std::path::Path) -> Result<SourceFile, IngestError> {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let is_workbook = name.to_ascii_lowercase().ends_with(".xlsx");
    if is_workbook {
        let bytes = std::fs::read(path).map_err(|source| IngestError::Io { file: name.clone(), source })?;
        return Ok(SourceFile::from_bytes(&name, bytes));
    }
    crate::open_source(path)
}

/// Largest mapping accepted (the full NHSBSA workbook is about 20 MB).
const MAX_BYTES: u64 = 512 << 20;

/// Reads a mapping file (xlsx by its zip signature, else CSV).
pub fn read_bnf_snomed(
    mut source: SourceFile,
    errors: ErrorPolicy,
) -> Result<(Vec<BnfSnomed>, BnfSnomedReport), IngestError> {
    let checksum = source.checksum_handle();
    let file = source.name.clone();
    let bytes = source.read_all(MAX_BYTES, "a BNF SNOMED mapping")?;
    let (csv, layout) =
        if bytes.starts_with(b"PK\x03\x04") { (sheet_as_csv(&file, bytes)?, "xlsx") } else { (bytes, "CSV") };
    let mut t = Table::open(SourceFile::from_bytes(&file, csv))?;
    let bnf = t.require("BNF Code", &["BNF_CODE"])?;
    let snomed = t.require(
        "SNOMED Code",
        &["SNOMED_CODE", "VMPP_/_AMPP_SNOMED_CODE", "VMP_/_VMPP/_AMP_/_AMPP_SNOMED_CODE", "DM+D_SNOMED_CODE"],
    )?;
    let level = t.find(&["VMP_/_VMPP/_AMP_/_AMPP", "VMP_/_VMPP_/_AMP_/_AMPP", "LEVEL"]);
    let name = t.find(&[
        "DM+D:_PRODUCT_AND_PACK_DESCRIPTION",
        "DMD:_PRODUCT_DESCRIPTION_AT_PRESENTATION_AND_PACK_LEVEL",
        "DM+D:_PRODUCT_DESCRIPTION",
        "DMD:_PRODUCT_DESCRIPTION_AT_PRESENTATION_LEVEL",
    ]);
    let mut log = RejectLog::new(errors.max_errors);
    let (mut rows, mut read, mut without_bnf) = (Vec::new(), 0u64, 0u64);
    let strip = |s: &str| s.trim().trim_start_matches('\'').trim().to_string();
    while t.advance()? {
        if t.is_blank() {
            continue;
        }
        read += 1;
        let code = strip(t.field(bnf));
        let id = strip(t.field(snomed));
        if !(6..=20).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_digit()) {
            let e = t.error(
                snomed,
                format!(
                    "\"{}\" is not a SNOMED CT id (6 to 20 digits); if the spreadsheet turned ids into numbers (3.8E+16) its last digits are lost: use NHSBSA's file as published",
                    clip(&id)
                ),
            );
            t.reject(&mut log, e)?;
            continue;
        }
        if code.is_empty() {
            without_bnf += 1;
            continue;
        }
        if !(code.len() == 15 || code.len() == 11 || code.len() == 9)
            || !code.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            let e = t.error(bnf, format!("\"{}\" is not a BNF presentation code", clip(&code)));
            t.reject(&mut log, e)?;
            continue;
        }
        let text = |i: Option<usize>| i.map(|i| t.text(i)).filter(|s| !s.is_empty());
        rows.push(BnfSnomed {
            bnf_code: code.to_ascii_uppercase(),
            snomed_code: id,
            level: text(level).map(|l| l.trim_start_matches('\'').to_ascii_uppercase()),
            name: text(name),
        });
    }
    if read == 0 {
        return Err(IngestError::format(&file, "the file has a header but no rows"));
    }
    let (sha256, bytes) = checksum.get();
    Ok((rows, BnfSnomedReport { layout, sha256, bytes, rows_read: read, without_bnf, rejected: log.into_rows() }))
}

/// The first sheet as CSV, so one reader (with its line numbers and errors) serves both forms.
fn sheet_as_csv(file: &str, bytes: Vec<u8>) -> Result<Vec<u8>, IngestError> {
    let unreadable =
        |e: String| IngestError::format(file, format!("not a readable xlsx workbook ({e}); download it again"));
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e: calamine::XlsxError| unreadable(e.to_string()))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| unreadable("it has no sheet".into()))?
        .map_err(|e| unreadable(e.to_string()))?;
    let mut out = csv::Writer::from_writer(Vec::new());
    for (r, row) in range.rows().enumerate() {
        let mut cells = Vec::with_capacity(row.len());
        for (c, cell) in row.iter().enumerate() {
            cells.push(match cell {
                Data::Float(f) if f.abs() >= 2f64.powi(53) => {
                    return Err(IngestError::format(
                        file,
                        format!(
                            "row {}, column {}: {f} is a number too long to be exact; the spreadsheet has turned a SNOMED id into a number and lost its last digits. Use NHSBSA's file as published",
                            r + 1,
                            c + 1
                        ),
                    ));
                }
                Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
                other => other.to_string(),
            });
        }
        out.write_record(&cells).map_err(|e| unreadable(e.to_string()))?;
    }
    out.into_inner().map_err(|e| unreadable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_mapping_strips_apostrophes_and_counts_rows_without_a_bnf_code() {
        let body = "SNOMED Code,BNF Code\n'22480211000001104,'1003020AFAAABAB\n10837011000001103,\n";
        let (rows, report) =
            read_bnf_snomed(SourceFile::from_bytes("m.csv", body.as_bytes().to_vec()), ErrorPolicy::default()).unwrap();
        assert_eq!(
            rows,
            [BnfSnomed {
                bnf_code: "1003020AFAAABAB".into(),
                snomed_code: "22480211000001104".into(),
                level: None,
                name: None
            }]
        );
        assert_eq!((report.rows_read, report.without_bnf), (2, 1));
        let bad = "SNOMED Code,BNF Code\n2.24802E+16,1003020AFAAABAB\n";
        let e = read_bnf_snomed(SourceFile::from_bytes("m.csv", bad.as_bytes().to_vec()), ErrorPolicy::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("m.csv line 2, column SNOMED Code: \"2.24802E+16\" is not a SNOMED CT id"), "{e}");
    }
}
