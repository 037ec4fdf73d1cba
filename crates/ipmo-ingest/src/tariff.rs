//! Drug Tariff Part VIII A: the reimbursement price of every generic pack (VMPP) in England for a
//! month, with its category (A, C, H, M). Read as NHSBSA publishes it each month (a title line, an
//! empty line, then `Medicine,Pack size,,VMP Snomed Code,VMPP Snomed Code,Drug Tariff
//! Category,Basic Price`, the unit column's header left empty, prices in pence, sometimes trailing
//! empty rows) and in the named-column layout of converted copies (`drug_tariff_category,
//! medicine,pack_size,unit_of_measure,basic_price_in_p,vmp_snomed_code,vmpp_snomed_code`).
//!
//! NHSBSA's quarterly Category M list (`drug_name, pack_size, unit_of_measure, basic_price_in_p,
//! vmpp_snomed_code`) is read by the same reader and stored as its own table.
//!
//! A month's prices are what the medicines value work compares against ("what should this pack
//! have cost in the month it was dispensed"), so each file is one month, named by its file name
//! (`…_202607.csv`) or `--month`.

use crate::error::RejectLog;
use crate::{ErrorPolicy, IngestError, Rejected, SourceFile, Table};
use ipmo_domain::{YearMonth, parse_decimal, parse_whole_number};
use std::collections::HashMap;

/// One pack's price in one month.
#[derive(Clone, Debug, PartialEq)]
pub struct TariffRow {
    /// The pack (VMPP) SNOMED CT id, as text (ids exceed 2^53).
    pub vmpp: String,
    /// The product (VMP) SNOMED CT id, when the file gives it.
    pub vmp: Option<String>,
    /// The medicine's name as the Tariff gives it.
    pub medicine: String,
    /// `A`, `C`, `H` or `M` (the file's `Part VIIIA Category M` is kept as `M`).
    pub category: String,
    /// Basic price per pack, in pence.
    pub price_pence: i64,
    /// Pack size (fractional for some: 4.5 gram).
    pub pack_size: f64,
    /// Unit of the pack size (`tablet`, `ml`, …).
    pub unit: String,
}

/// What was read from a Tariff file.
#[derive(Debug)]
pub struct TariffReport {
    /// The month the prices apply to.
    pub month: YearMonth,
    /// The file is NHSBSA's quarterly Category M price list (no category column; every pack is
    /// in M), stored apart from Part VIII A so that loading it does not replace a month's Tariff.
    pub category_m_list: bool,
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Bytes.
    pub bytes: u64,
    /// Data rows read (empty rows excluded).
    pub rows_read: u64,
    /// Rows skipped under `--max-errors`.
    pub rejected: Vec<Rejected>,
}

/// Reads one month of Part VIII A. `month` overrides the month in the file name.
pub fn read_tariff(
    source: SourceFile,
    month: Option<YearMonth>,
    errors: ErrorPolicy,
) -> Result<(Vec<TariffRow>, TariffReport), IngestError> {
    let checksum = source.checksum_handle();
    let name_month = YearMonth::from_file_name(&source.name);
    let mut t = Table::open(source)?;
    let month = month.or(name_month).ok_or_else(|| {
        IngestError::format(
            &t.file,
            "the Drug Tariff month is not in the file name; rename it (e.g. part_viii_a_202607.csv) or pass --month YYYY-MM",
        )
    })?;
    // NHSBSA's file opens with a title and an empty line: the header is the first row naming
    // the VMPP column, within the first few lines.
    while t.find(&["VMPP_SNOMED_CODE"]).is_none() {
        if t.line() > 10 || !t.advance()? {
            return Err(IngestError::format(
                &t.file,
                "no header row naming \"VMPP Snomed Code\" in the first 10 lines; is this Drug Tariff Part VIII A?",
            ));
        }
        t.use_current_as_header();
    }
    let vmpp = t.require("VMPP Snomed Code", &["VMPP_SNOMED_CODE"])?;
    let medicine = t.require("Medicine", &["MEDICINE", "DRUG_NAME"])?;
    let pack = t.require("Pack size", &["PACK_SIZE"])?;
    let price = t.require("Basic Price", &["BASIC_PRICE", "BASIC_PRICE_IN_P"])?;
    // NHSBSA's quarterly Category M list has no category column: every pack on it is in M.
    let category = t.find(&["DRUG_TARIFF_CATEGORY"]);
    let category_m_list = category.is_none() && t.find(&["DRUG_NAME"]).is_some();
    if category.is_none() && !category_m_list {
        t.require("Drug Tariff Category", &["DRUG_TARIFF_CATEGORY"])?;
    }
    let vmp = t.find(&["VMP_SNOMED_CODE"]);
    // The unit column: named in converted copies, headed by nothing right after "Pack size" in
    // NHSBSA's own file.
    let unit = t
        .find(&["UNIT_OF_MEASURE", "UNIT"])
        .or_else(|| t.headers.get(pack + 1).filter(|h| h.is_empty()).map(|_| pack + 1));
    let mut log = RejectLog::new(errors.max_errors);
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut rows_read = 0;
    while t.advance()? {
        if t.is_blank() {
            continue;
        }
        rows_read += 1;
        let row = (|| {
            // SNOMED CT ids are up to 18 digits; a spreadsheet's `3.8E+16` is refused here.
            let snomed = |i: usize| {
                let id = t.field(i);
                if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(t.error(i, format!("\"{id}\" is not a SNOMED CT id (digits only)")));
                }
                Ok(id)
            };
            let id = snomed(vmpp)?;
            if let Some(first) = seen.get(id) {
                return Err(
                    t.error(vmpp, format!("{id} is already priced on line {first}; a pack has one price a month"))
                );
            }
            let vmp_id = vmp.filter(|i| !t.field(*i).is_empty()).map(snomed).transpose()?;
            let letter = match category {
                None => "M",
                Some(category) => {
                    let cat_text = t.field(category);
                    let letter = cat_text.trim_start_matches("Part VIIIA").trim().trim_start_matches("Category").trim();
                    if !matches!(letter, "A" | "C" | "H" | "M") {
                        return Err(
                            t.error(category, format!("\"{cat_text}\" is not Drug Tariff category A, C, H or M"))
                        );
                    }
                    letter
                }
            };
            let price_pence = parse_whole_number(t.field(price))
                .map_err(|e| t.error(price, format!("{e} (the basic price is in pence)")))?;
            if !(0..=100_000_000).contains(&price_pence) {
                return Err(t.error(price, format!("{price_pence}p is not a pack price (0 to £1,000,000)")));
            }
            let pack_size = parse_decimal(t.field(pack)).map_err(|e| t.error(pack, e.to_string()))?;
            if !(pack_size > 0.0 && pack_size < 1e9) {
                return Err(t.error(pack, format!("{pack_size} is not a pack size")));
            }
            Ok(TariffRow {
                vmpp: id.to_string(),
                vmp: vmp_id.map(str::to_string),
                medicine: t.text(medicine),
                category: letter.to_string(),
                price_pence,
                pack_size,
                unit: unit.map(|i| t.text(i)).unwrap_or_default(),
            })
        })();
        match row {
            Ok(r) => {
                seen.insert(r.vmpp.clone(), t.line());
                rows.push(r);
            }
            Err(e) => t.reject(&mut log, e)?,
        }
    }
    if rows_read == 0 {
        return Err(IngestError::format(&t.file, "the file has a header but no rows; nothing was loaded"));
    }
    let (sha256, bytes) = checksum.get();
    Ok((rows, TariffReport { month, category_m_list, sha256, bytes, rows_read, rejected: log.into_rows() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read(name: &str, body: &str) -> Result<(Vec<TariffRow>, TariffReport), IngestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path).unwrap().write_all(body.as_bytes()).unwrap();
        read_tariff(crate::open_source(&path).unwrap(), None, ErrorPolicy::default())
    }

    #[test]
    fn reads_nhsbsa_layout_with_title_empty_unit_header_and_trailing_rows() {
        let body = "July Drug Tariff Part VIIIA,,,,,,\r\n,,,,,,\r\nMedicine,Pack size,,VMP Snomed Code,VMPP Snomed Code,Drug Tariff Category,Basic Price\r\n\
                    \"Adrenaline (base) 10mg/10ml (1 in 1,000) solution\",10,ampoule,123,456,Part VIIIA Category C,4567\r\n\
                    Atorvastatin 20mg tablets,28,tablet,39733011000001106,1271511000001104,Part VIIIA Category M,72\r\n,,,,,,\r\n,,,,,,\r\n";
        let (rows, report) = read("Part VIIIA Jul 26_202607.csv", body).unwrap();
        assert_eq!((report.month.to_string(), report.rows_read, rows.len()), ("2026-07".into(), 2, 2));
        assert_eq!(rows[1].vmpp, "1271511000001104");
        assert_eq!((rows[1].category.as_str(), rows[1].price_pence, rows[1].unit.as_str()), ("M", 72, "tablet"));
        assert_eq!(rows[0].medicine, "Adrenaline (base) 10mg/10ml (1 in 1,000) solution");
    }

    #[test]
    fn bad_values_name_line_and_column() {
        let head = "drug_tariff_category,medicine,pack_size,unit_of_measure,basic_price_in_p,vmp_snomed_code,vmpp_snomed_code\n";
        let cases = [
            (
                "Part VIIIA Category Z,X,28,tablet,72,1,2\n",
                "line 2, column drug_tariff_category: \"Part VIIIA Category Z\"",
            ),
            ("Part VIIIA Category M,X,28,tablet,7.2p,1,2\n", "line 2, column basic_price_in_p"),
            ("Part VIIIA Category M,X,28,tablet,72,1,3.8E+16\n", "is not a SNOMED CT id"),
            (
                "Part VIIIA Category M,X,28,tablet,72,1,2\nPart VIIIA Category M,X,28,tablet,72,1,2\n",
                "line 3, column vmpp_snomed_code: 2 is already priced on line 2",
            ),
            ("Part VIIIA Category M,X,0,tablet,72,1,2\n", "is not a pack size"),
        ];
        for (rows, want) in cases {
            let e = read("tariff_202607.csv", &format!("{head}{rows}")).unwrap_err().to_string();
            assert!(e.contains(want), "{rows:?}: {e}");
        }
        let e =
            read("tariff.csv", &format!("{head}Part VIIIA Category M,X,28,tablet,72,1,2\n")).unwrap_err().to_string();
        assert!(e.contains("--month"), "{e}");
        let e = read("tariff_202607.csv", "a,b\n1,2\n").unwrap_err().to_string();
        assert!(e.contains("no header row naming"), "{e}");
    }
}
