//! NHSBSA's Secondary Care Medicines Data (SCMD): what every NHS acute trust's pharmacy issued,
//! per month and dm+d virtual medicinal product (VMP). Three layouts are read, each found by its
//! header names: NHSBSA's long-standing one (with its misspelt `TOTAL_QUANITY_IN_VMP_UNIT`), the
//! June 2026 one whose quantity is in the VMP's unit-dose-form-size unit and which adds a
//! quantity in unit doses, and the reduced research extracts (month, trust, VMP, name, quantity)
//! that analysts pass around.
//!
//! Quantities may be negative: trusts record returns and stock adjustments that way. They are kept
//! as published, so that a month's sum is NHSBSA's, and counted in the report.

use crate::error::RejectLog;
use crate::{ErrorPolicy, IngestError, Rejected, SourceFile, Table};
use ipmo_domain::{OdsCode, YearMonth, parse_decimal};

/// One trust's issues of one VMP in one month.
#[derive(Clone, Debug, PartialEq)]
pub struct ScmdRow {
    /// The month of issue.
    pub month: YearMonth,
    /// The trust's ODS code.
    pub trust_code: String,
    /// The VMP's dm+d (SNOMED CT) id, as text: ids run to 18 digits, more than a float holds.
    pub vmp_id: String,
    /// The VMP's name as published that month.
    pub vmp_name: String,
    /// SNOMED id of the unit the quantity is in, when the layout carries it.
    pub unit_id: Option<String>,
    /// That unit's name (`vial`, `tablet`, `ml`), when the layout carries it.
    pub unit_name: Option<String>,
    /// Quantity issued in that unit; negative for returns.
    pub quantity: f64,
    /// NHSBSA's indicative cost in pounds (list prices, not what the trust paid), when given.
    pub indicative_cost: Option<f64>,
    /// The unit of a single dose (June 2026 layout onwards).
    pub unit_dose_unit: Option<String>,
    /// The quantity in single doses (June 2026 layout onwards).
    pub unit_dose_quantity: Option<f64>,
}

/// Which of the published layouts a file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScmdLayout {
    /// `TOTAL_QUANITY_IN_VMP_UNIT`, `UNIT_OF_MEASURE_*` and `INDICATIVE_COST` (2019 to May 2026).
    Original,
    /// `TOTAL_QUANTITY_IN_VMP_UDFS_UNIT_OF_MEASURE`, `VMP_UDFS_UNIT_OF_MEASURE_*` and the unit-dose
    /// columns (June 2026 onwards).
    UnitDose,
    /// Month, trust, VMP, name and a quantity only: an analyst's extract.
    Reduced,
}

impl ScmdLayout {
    /// How the load report names the layout.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Original => "SCMD (NHSBSA, to May 2026)",
            Self::UnitDose => "SCMD (NHSBSA, unit-dose columns from June 2026)",
            Self::Reduced => "SCMD extract (month, trust, VMP, quantity)",
        }
    }
}

/// What a file held, for the load report and the manifest.
#[derive(Debug)]
pub struct ScmdReport {
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Bytes.
    pub bytes: u64,
    /// The layout found.
    pub layout: ScmdLayout,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows kept with a negative quantity (returns and adjustments).
    pub negative_rows: u64,
    /// Rows skipped.
    pub rejected: Vec<Rejected>,
}

const QUANTITY_ORIGINAL: &str = "TOTAL_QUANITY_IN_VMP_UNIT";
const QUANTITY_UNIT_DOSE: &str = "TOTAL_QUANTITY_IN_VMP_UDFS_UNIT_OF_MEASURE";

/// Reads an SCMD file in any of the three layouts.
pub fn read_scmd(source: SourceFile, errors: ErrorPolicy) -> Result<(Vec<ScmdRow>, ScmdReport), IngestError> {
    let checksum = source.checksum_handle();
    let file = source.name.clone();
    let mut t = Table::open(source)?;
    let layout = if t.find(&[QUANTITY_UNIT_DOSE]).is_some() {
        ScmdLayout::UnitDose
    } else if t.find(&[QUANTITY_ORIGINAL, "TOTAL_QUANTITY_IN_VMP_UNIT"]).is_some() {
        ScmdLayout::Original
    } else {
        ScmdLayout::Reduced
    };
    let month = t.require("YEAR_MONTH", &["YEAR_MONTH", "MONTH"])?;
    let trust = t.require("ODS_CODE", &["ODS_CODE", "TRUST_CODE"])?;
    let vmp = t.require("VMP_SNOMED_CODE", &["VMP_SNOMED_CODE", "VMP_CODE", "VPID"])?;
    let name = t.require("VMP_PRODUCT_NAME", &["VMP_PRODUCT_NAME", "VMP_NAME"])?;
    let (quantity, unit_id, unit_name) = match layout {
        ScmdLayout::UnitDose => (
            t.require(QUANTITY_UNIT_DOSE, &[QUANTITY_UNIT_DOSE])?,
            t.find(&["VMP_UDFS_UNIT_OF_MEASURE_IDENTIFIER"]),
            t.find(&["VMP_UDFS_UNIT_OF_MEASURE_NAME"]),
        ),
        ScmdLayout::Original => (
            t.require(QUANTITY_ORIGINAL, &[QUANTITY_ORIGINAL, "TOTAL_QUANTITY_IN_VMP_UNIT"])?,
            t.find(&["UNIT_OF_MEASURE_IDENTIFIER"]),
            t.find(&["UNIT_OF_MEASURE_NAME"]),
        ),
        ScmdLayout::Reduced => (t.require("TOTAL_QUANTITY", &["TOTAL_QUANTITY", "QUANTITY"])?, None, None),
    };
    let cost = t.find(&["INDICATIVE_COST"]);
    let dose_unit = t.find(&["VMP_UNIT_DOSE_UNIT_OF_MEASURE_NAME"]);
    let dose_quantity = t.find(&["TOTAL_QUANTITY_IN_VMP_UNIT_DOSE_UNIT_OF_MEASURE"]);
    let mut log = RejectLog::new(errors.max_errors);
    let (mut rows, mut read, mut negative) = (Vec::new(), 0u64, 0u64);
    let optional_text = |t: &Table, col: Option<usize>| {
        col.map(|i| t.field(i).trim())
            .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("no value"))
            .map(str::to_string)
    };
    while t.advance()? {
        if t.is_blank() {
            continue;
        }
        read += 1;
        if let Some(mangled) = spreadsheet_number(t.field(vmp)) {
            return Err(IngestError::format(
                &file,
                format!(
                    "line {}: VMP_SNOMED_CODE \"{mangled}\" is a dm+d id that a spreadsheet turned into a \
                     number, losing its last digits, so no row of this file can be trusted to name the right \
                     medicine; load the file as NHSBSA publishes it, or export the column as text",
                    t.line()
                ),
            ));
        }
        let row = (|| {
            let m: YearMonth =
                t.field(month).parse().map_err(|e: ipmo_domain::MonthError| t.error(month, e.to_string()))?;
            let code = OdsCode::parse(t.field(trust)).map_err(|e| t.error(trust, e.to_string()))?;
            let id = vmp_id(t.field(vmp))
                .ok_or_else(|| t.error(vmp, format!("\"{}\" is not a dm+d id (6 to 18 digits)", t.field(vmp))))?;
            let q = parse_decimal(t.field(quantity)).map_err(|e| t.error(quantity, e.to_string()))?;
            let number = |col: Option<usize>| match col.map(|i| (i, t.field(i).trim())) {
                Some((i, s)) if !s.is_empty() => parse_decimal(s).map(Some).map_err(|e| t.error(i, e.to_string())),
                _ => Ok(None),
            };
            Ok::<_, crate::RowError>(ScmdRow {
                month: m,
                trust_code: code.to_string(),
                vmp_id: id.to_string(),
                vmp_name: t.field(name).trim().to_string(),
                unit_id: optional_text(&t, unit_id),
                unit_name: optional_text(&t, unit_name),
                quantity: q,
                indicative_cost: number(cost)?,
                unit_dose_unit: optional_text(&t, dose_unit),
                unit_dose_quantity: number(dose_quantity)?,
            })
        })();
        match row {
            Ok(r) => {
                negative += u64::from(r.quantity < 0.0);
                rows.push(r);
            }
            Err(e) => t.reject(&mut log, e)?,
        }
    }
    let (sha256, bytes) = checksum.get();
    let report =
        ScmdReport { sha256, bytes, layout, rows_read: read, negative_rows: negative, rejected: log.into_rows() };
    Ok((rows, report))
}

/// A dm+d id: 6 to 18 digits.
fn vmp_id(field: &str) -> Option<&str> {
    let s = field.trim();
    ((6..=18).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// The field when it is a number a spreadsheet wrote in place of a long id: `3.83772E+16`, or
/// an 18-digit id rounded to 15 significant digits and padded with zeros (`33500000000000000`
/// for a 17-digit one is indistinguishable from a real id, so only the exponent form is caught).
fn spreadsheet_number(field: &str) -> Option<&str> {
    let s = field.trim();
    let (mantissa, exponent) = s.split_once(['E', 'e'])?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(mantissa),
    };
    (mantissa_ok && digits(exponent)).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(text: &str) -> Result<(Vec<ScmdRow>, ScmdReport), IngestError> {
        read_scmd(SourceFile::from_bytes("scmd.csv", text.as_bytes().to_vec()), ErrorPolicy { max_errors: 5 })
    }

    #[test]
    fn reads_the_original_layout_and_keeps_returns() {
        let text = "YEAR_MONTH,ODS_CODE,VMP_SNOMED_CODE,VMP_PRODUCT_NAME,UNIT_OF_MEASURE_IDENTIFIER,\
                    UNIT_OF_MEASURE_NAME,TOTAL_QUANITY_IN_VMP_UNIT,INDICATIVE_COST\n\
                    202401,RRK,326874007,Methotrexate 2.5mg tablets,428673006,tablet,1200.00,15.60\n\
                    202401,R1K,326874007,Methotrexate 2.5mg tablets,428673006,tablet,-28,\n";
        let (rows, report) = read(text).unwrap();
        assert_eq!(report.layout, ScmdLayout::Original);
        assert_eq!((report.rows_read, report.negative_rows, rows.len()), (2, 1, 2));
        assert_eq!(rows[0].month, "2024-01".parse().unwrap());
        assert_eq!(rows[0].unit_name.as_deref(), Some("tablet"));
        assert_eq!(rows[0].indicative_cost, Some(15.6));
        assert_eq!((rows[1].quantity, rows[1].indicative_cost), (-28.0, None));
    }

    #[test]
    fn reads_the_june_2026_layout_with_unit_doses() {
        let text = "YEAR_MONTH,ODS_CODE,VMP_SNOMED_CODE,VMP_PRODUCT_NAME,VMP_UDFS_UNIT_OF_MEASURE_IDENTIFIER,\
                    VMP_UDFS_UNIT_OF_MEASURE_NAME,TOTAL_QUANTITY_IN_VMP_UDFS_UNIT_OF_MEASURE,INDICATIVE_COST,\
                    VMP_UNIT_DOSE_UNIT_OF_MEASURE_NAME,TOTAL_QUANTITY_IN_VMP_UNIT_DOSE_UNIT_OF_MEASURE\n\
                    2026-06,RRK,36017711000001106,Heparin 5000units/0.2ml injection,258773002,ml,40,120.5,\
                    pre-filled syringe,200\n";
        let (rows, report) = read(text).unwrap();
        assert_eq!(report.layout, ScmdLayout::UnitDose);
        assert_eq!(rows[0].unit_name.as_deref(), Some("ml"));
        assert_eq!((rows[0].quantity, rows[0].unit_dose_quantity), (40.0, Some(200.0)));
        assert_eq!(rows[0].unit_dose_unit.as_deref(), Some("pre-filled syringe"));
    }

    #[test]
    fn refuses_ids_a_spreadsheet_turned_into_numbers() {
        let text = "year_month,ods_code,vmp_snomed_code,vmp_product_name,total_quantity\n\
                    2020-09-01,RAE,38377311000001100,Remdesivir 100mg/20ml vials,-4080.0\n\
                    2020-09-01,RAE,3.83772E+16,Remdesivir 100mg powder vials,10\n";
        let e = read(text).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("3.83772E+16") && e.contains("as text"), "{e}");
    }

    #[test]
    fn bad_rows_are_named_by_line_and_column() {
        let text = "year_month,ods_code,vmp_snomed_code,vmp_product_name,total_quantity\n\
                    2020-13-01,RAE,38377311000001100,Remdesivir,1\n\
                    2020-09-01,RAE,38377311000001100,Remdesivir,lots\n\
                    2020-09-01,RAE,12AB,Remdesivir,1\n";
        let (rows, report) = read(text).unwrap();
        assert!(rows.is_empty());
        let lines: Vec<u64> = report.rejected.iter().map(|r| r.error.line).collect();
        assert_eq!(lines, [2, 3, 4]);
    }

    proptest! {
        #[test]
        fn any_id_of_digits_survives_and_exponent_forms_are_caught(id in "[1-9][0-9]{5,17}", m in 1u32..9, e in 5u32..18) {
            prop_assert_eq!(vmp_id(&id), Some(id.as_str()));
            prop_assert!(spreadsheet_number(&id).is_none());
            let mangled = format!("{m}.{}E+{e}", &id[..3]);
            prop_assert!(spreadsheet_number(&mangled).is_some());
            prop_assert!(vmp_id(&mangled).is_none());
        }
    }
}
