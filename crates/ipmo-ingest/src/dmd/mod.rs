//! The NHS Dictionary of medicines and devices (dm+d): what every medicine *is*.
//!
//! A weekly NHSBSA release is a set of XML files (`f_vtm`, `f_vmp`, `f_amp`, `f_vmpp`, `f_ampp`,
//! `f_ingredient`, `f_lookup`, `f_gtin`, and the supplementary `f_bnf` with BNF, ATC and DDD),
//! shipped in a zip that may hold further zips. They are read as published, from a folder or the
//! zip, streaming (a full release is about a gigabyte of XML), into flat tables described by
//! [`TABLES`]: one spec per table names the XML record, each column's field and how its text is
//! checked. Codes that point into `f_lookup` are replaced by their descriptions (so SQL can say
//! `form_route = 'tablet.oral'`), and a code the lookup does not know stops the load.
//!
//! Identifiers are SNOMED CT ids and stay text: some exceed 2^53 and would be corrupted as
//! floating point.

mod xml;

use crate::error::clip;
use crate::{IngestError, open_source};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read};
use std::path::Path;
use xml::{Record, read_records};

/// How a field's text is checked and stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A SNOMED CT id or other digit string, kept as text.
    Id,
    /// Free text.
    Text,
    /// A code into the named `f_lookup` table, stored as its description.
    Lookup(&'static str),
    /// A whole number (prices in pence, counts).
    Int,
    /// A decimal (strengths, quantities, DDDs).
    Decimal,
    /// A `YYYY-MM-DD` date.
    Date,
    /// A `1`/`0001` flag; absent means false.
    Flag,
}

/// The column types the warehouse stores, from [`Kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// Text (ids, names, lookup descriptions).
    Text,
    /// 64-bit integer.
    Int,
    /// Double.
    Decimal,
    /// Date.
    Date,
    /// Boolean, never null.
    Flag,
}

impl Kind {
    /// How the warehouse stores a column of this kind.
    pub fn column_type(self) -> ColumnType {
        match self {
            Kind::Id | Kind::Text | Kind::Lookup(_) => ColumnType::Text,
            Kind::Int => ColumnType::Int,
            Kind::Decimal => ColumnType::Decimal,
            Kind::Date => ColumnType::Date,
            Kind::Flag => ColumnType::Flag,
        }
    }
}

/// One column: its name in the warehouse, the XML field it comes from, and its kind.
#[derive(Debug)]
pub struct ColumnSpec {
    /// Column name in the table.
    pub name: &'static str,
    /// XML element holding the value.
    pub field: &'static str,
    /// How the value is checked.
    pub kind: Kind,
}

/// Values of a record kind joined onto another table's rows by key (a VMP's form-routes, a pack's
/// Drug Tariff price); several values for one row are joined with `"; "`.
#[derive(Debug)]
pub struct Attached {
    /// The XML record (`DTINFO`, `ONT`).
    pub record: &'static str,
    /// The field holding the key of the row it belongs to.
    pub key: &'static str,
    /// The columns it adds.
    pub columns: &'static [ColumnSpec],
}

/// One warehouse table filled from one kind of XML record of one release file.
#[derive(Debug)]
pub struct TableSpec {
    /// Table name (`dmd_vmp`).
    pub table: &'static str,
    /// Release file it comes from (`vmp` for `f_vmp2_3010419.xml`).
    pub file: &'static str,
    /// XML record element (`VMP`).
    pub record: &'static str,
    /// The table's columns; the first is the row's key and must be present.
    pub columns: &'static [ColumnSpec],
    /// Values from other records of the same file, joined on the first column.
    pub attached: &'static [Attached],
}

const fn col(name: &'static str, field: &'static str, kind: Kind) -> ColumnSpec {
    ColumnSpec { name, field, kind }
}

use Kind::{Date, Decimal, Flag, Id, Int, Lookup, Text};

const UOM: &str = "UNIT_OF_MEASURE";

/// Every table read from a release, in the order the README lists them.
pub const TABLES: &[TableSpec] = &[
    TableSpec {
        table: "dmd_vtm",
        file: "vtm",
        record: "VTM",
        columns: &[
            col("vtmid", "VTMID", Id),
            col("name", "NM", Text),
            col("abbrev_name", "ABBREVNM", Text),
            col("vtmid_prev", "VTMIDPREV", Id),
            col("vtmid_date", "VTMIDDT", Date),
            col("invalid", "INVALID", Flag),
        ],
        attached: &[],
    },
    TableSpec {
        table: "dmd_vmp",
        file: "vmp",
        record: "VMP",
        columns: &[
            col("vpid", "VPID", Id),
            col("name", "NM", Text),
            col("abbrev_name", "ABBREVNM", Text),
            col("vtmid", "VTMID", Id),
            col("basis_of_name", "BASISCD", Lookup("BASIS_OF_NAME")),
            col("name_date", "NMDT", Date),
            col("name_prev", "NMPREV", Text),
            col("prescribing_status", "PRES_STATCD", Lookup("VIRTUAL_PRODUCT_PRES_STATUS")),
            col("combination", "COMBPRODCD", Lookup("COMBINATION_PROD_IND")),
            col("unit_dose_form_size", "UDFS", Decimal),
            col("unit_dose_form_units", "UDFS_UOMCD", Lookup(UOM)),
            col("unit_dose_unit", "UNIT_DOSE_UOMCD", Lookup(UOM)),
            col("dose_form_indicator", "DF_INDCD", Lookup("DF_INDICATOR")),
            col("non_availability", "NON_AVAILCD", Lookup("VIRTUAL_PRODUCT_NON_AVAIL")),
            col("vpid_prev", "VPIDPREV", Id),
            col("vpid_date", "VPIDDT", Date),
            col("sugar_free", "SUG_F", Flag),
            col("gluten_free", "GLU_F", Flag),
            col("preservative_free", "PRES_F", Flag),
            col("cfc_free", "CFC_F", Flag),
            col("invalid", "INVALID", Flag),
        ],
        attached: &[
            Attached { record: "ONT", key: "VPID", columns: &[col("form_route", "FORMCD", Lookup("ONT_FORM_ROUTE"))] },
            Attached { record: "DFORM", key: "VPID", columns: &[col("form", "FORMCD", Lookup("FORM"))] },
            Attached { record: "DROUTE", key: "VPID", columns: &[col("route", "ROUTECD", Lookup("ROUTE"))] },
            Attached {
                record: "CONTROL_INFO",
                key: "VPID",
                columns: &[col("controlled_drug_category", "CATCD", Lookup("CONTROL_DRUG_CATEGORY"))],
            },
        ],
    },
    TableSpec {
        table: "dmd_vmp_ingredient",
        file: "vmp",
        record: "VPI",
        columns: &[
            col("vpid", "VPID", Id),
            col("isid", "ISID", Id),
            col("basis_of_strength", "BASIS_STRNTCD", Lookup("BASIS_OF_STRNTH")),
            col("basis_substance_id", "BS_SUBID", Id),
            col("strength_numerator", "STRNT_NMRTR_VAL", Decimal),
            col("strength_numerator_unit", "STRNT_NMRTR_UOMCD", Lookup(UOM)),
            col("strength_denominator", "STRNT_DNMTR_VAL", Decimal),
            col("strength_denominator_unit", "STRNT_DNMTR_UOMCD", Lookup(UOM)),
        ],
        attached: &[],
    },
    TableSpec {
        table: "dmd_vmp_form_route",
        file: "vmp",
        record: "ONT",
        columns: &[col("vpid", "VPID", Id), col("form_route", "FORMCD", Lookup("ONT_FORM_ROUTE"))],
        attached: &[],
    },
    TableSpec {
        table: "dmd_ingredient",
        file: "ingredient",
        record: "ING",
        columns: &[
            col("isid", "ISID", Id),
            col("name", "NM", Text),
            col("isid_prev", "ISIDPREV", Id),
            col("isid_date", "ISIDDT", Date),
            col("invalid", "INVALID", Flag),
        ],
        attached: &[],
    },
    TableSpec {
        table: "dmd_amp",
        file: "amp",
        record: "AMP",
        columns: &[
            col("apid", "APID", Id),
            col("vpid", "VPID", Id),
            col("name", "NM", Text),
            col("abbrev_name", "ABBREVNM", Text),
            col("description", "DESC", Text),
            col("name_date", "NMDT", Date),
            col("name_prev", "NM_PREV", Text),
            col("supplier", "SUPPCD", Lookup("SUPPLIER")),
            col("licensing_authority", "LIC_AUTHCD", Lookup("LICENSING_AUTHORITY")),
            col("combination", "COMBPRODCD", Lookup("COMBINATION_PROD_IND")),
            col("flavour", "FLAVOURCD", Lookup("FLAVOUR")),
            col("ema", "EMA", Flag),
            col("parallel_import", "PARALLEL_IMPORT", Flag),
            col("availability_restriction", "AVAIL_RESTRICTCD", Lookup("AVAILABILITY_RESTRICTION")),
            col("invalid", "INVALID", Flag),
        ],
        attached: &[Attached {
            record: "LIC_ROUTE",
            key: "APID",
            columns: &[col("licensed_route", "ROUTECD", Lookup("ROUTE"))],
        }],
    },
    TableSpec {
        table: "dmd_vmpp",
        file: "vmpp",
        record: "VMPP",
        columns: &[
            col("vppid", "VPPID", Id),
            col("vpid", "VPID", Id),
            col("name", "NM", Text),
            col("abbrev_name", "ABBREVNM", Text),
            col("quantity", "QTYVAL", Decimal),
            col("unit", "QTY_UOMCD", Lookup(UOM)),
            col("combination", "COMBPACKCD", Lookup("COMBINATION_PACK_IND")),
            col("invalid", "INVALID", Flag),
        ],
        attached: &[Attached {
            record: "DTINFO",
            key: "VPPID",
            columns: &[
                col("tariff_category", "PAY_CATCD", Lookup("DT_PAYMENT_CATEGORY")),
                col("tariff_price_pence", "PRICE", Int),
                col("tariff_date", "DT", Date),
                col("tariff_prev_price_pence", "PREVPRICE", Int),
            ],
        }],
    },
    TableSpec {
        table: "dmd_ampp",
        file: "ampp",
        record: "AMPP",
        columns: &[
            col("appid", "APPID", Id),
            col("apid", "APID", Id),
            col("vppid", "VPPID", Id),
            col("name", "NM", Text),
            col("abbrev_name", "ABBREVNM", Text),
            col("legal_category", "LEGAL_CATCD", Lookup("LEGAL_CATEGORY")),
            col("sub_pack", "SUBP", Text),
            col("discontinued", "DISCCD", Lookup("DISCONTINUED_IND")),
            col("discontinued_date", "DISCDT", Date),
            col("combination", "COMBPACKCD", Lookup("COMBINATION_PACK_IND")),
            col("invalid", "INVALID", Flag),
        ],
        attached: &[
            Attached {
                record: "PRICE_INFO",
                key: "APPID",
                columns: &[
                    col("price_pence", "PRICE", Int),
                    col("price_date", "PRICEDT", Date),
                    col("price_prev_pence", "PRICE_PREV", Int),
                    col("price_basis", "PRICE_BASISCD", Lookup("PRICE_BASIS")),
                ],
            },
            Attached {
                record: "PRESCRIB_INFO",
                key: "APPID",
                columns: &[
                    col("schedule_1", "SCHED_1", Flag),
                    col("schedule_2", "SCHED_2", Flag),
                    col("acbs", "ACBS", Flag),
                    col("personally_administered", "PADM", Flag),
                    col("fp10_mda", "FP10_MDA", Flag),
                    col("hospital_only", "HOSP", Flag),
                    col("nurse_formulary", "NURSE_F", Flag),
                    col("dental_formulary", "DENT_F", Flag),
                ],
            },
            Attached {
                record: "REIMB_INFO",
                key: "APPID",
                columns: &[
                    col("prescription_charges", "PX_CHRGS", Int),
                    col("dispensing_fees", "DISP_FEES", Int),
                    col("broken_bulk", "BB", Flag),
                    col("special_container", "SPEC_CONTCD", Lookup("SPEC_CONT")),
                ],
            },
        ],
    },
    TableSpec {
        table: "dmd_gtin",
        file: "gtin",
        record: "GTINDATA",
        columns: &[
            col("appid", "AMPPID", Id),
            col("gtin", "GTIN", Id),
            col("start_date", "STARTDT", Date),
            col("end_date", "ENDDT", Date),
        ],
        attached: &[],
    },
    TableSpec {
        table: "dmd_bnf",
        file: "bnf",
        record: "VMP",
        columns: &[
            col("id", "VPID", Id),
            col("bnf", "BNF", Text),
            col("atc", "ATC", Text),
            col("ddd", "DDD", Decimal),
            col("ddd_unit_code", "DDD_UOMCD", Id),
        ],
        attached: &[],
    },
];

/// The lookup table (`dmd_lookup`): every `f_lookup` table as (table, code, description).
pub const LOOKUP_TABLE: &str = "dmd_lookup";
/// Previous identifiers (`dmd_id_history`): VTM, VMP and ingredient ids that changed, each old
/// id with the id that replaced it, so an old id stays findable.
pub const HISTORY_TABLE: &str = "dmd_id_history";

/// The files of a full release, without which the core tables would be inconsistent.
pub const CORE_FILES: [&str; 7] = ["vtm", "vmp", "amp", "vmpp", "ampp", "ingredient", "lookup"];

/// A column's values.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Text (nullable).
    Text(Vec<Option<String>>),
    /// Integers (nullable).
    Int(Vec<Option<i64>>),
    /// Decimals (nullable).
    Decimal(Vec<Option<f64>>),
    /// Dates as days since 1970 (nullable).
    Date(Vec<Option<i32>>),
    /// Flags.
    Flag(Vec<bool>),
}

impl Values {
    fn new(t: ColumnType) -> Self {
        match t {
            ColumnType::Text => Values::Text(Vec::new()),
            ColumnType::Int => Values::Int(Vec::new()),
            ColumnType::Decimal => Values::Decimal(Vec::new()),
            ColumnType::Date => Values::Date(Vec::new()),
            ColumnType::Flag => Values::Flag(Vec::new()),
        }
    }

    fn push(&mut self, v: Value) {
        match (self, v) {
            (Values::Text(c), Value::Text(x)) => c.push(x),
            (Values::Int(c), Value::Int(x)) => c.push(x),
            (Values::Decimal(c), Value::Decimal(x)) => c.push(x),
            (Values::Date(c), Value::Date(x)) => c.push(x),
            (Values::Flag(c), Value::Flag(x)) => c.push(x),
            _ => unreachable!("a value always has its column's type"),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Values::Text(c) => c.len(),
            Values::Int(c) => c.len(),
            Values::Decimal(c) => c.len(),
            Values::Date(c) => c.len(),
            Values::Flag(c) => c.len(),
        }
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text at `row`, for text columns.
    pub fn text(&self, row: usize) -> Option<&str> {
        match self {
            Values::Text(c) => c.get(row).and_then(|v| v.as_deref()),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Decimal(Option<f64>),
    Date(Option<i32>),
    Flag(bool),
}

/// One table as read: named columns in schema order.
#[derive(Debug)]
pub struct DmdTable {
    /// Table name.
    pub name: &'static str,
    /// Columns in order.
    pub columns: Vec<(&'static str, Values)>,
}

impl DmdTable {
    /// Rows held.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, v)| v.len())
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&Values> {
        self.columns.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// The columns of every dm+d table with their types, for the warehouse's schemas.
pub fn table_columns() -> Vec<(&'static str, Vec<(&'static str, ColumnType)>)> {
    let mut out: Vec<(&'static str, Vec<(&'static str, ColumnType)>)> = TABLES
        .iter()
        .map(|t| {
            let mut cols: Vec<_> = t.columns.iter().map(|c| (c.name, c.kind.column_type())).collect();
            cols.extend(t.attached.iter().flat_map(|a| a.columns.iter().map(|c| (c.name, c.kind.column_type()))));
            if t.table == "dmd_bnf" {
                cols.insert(1, ("level", ColumnType::Text));
            }
            (t.table, cols)
        })
        .collect();
    out.push((
        LOOKUP_TABLE,
        vec![("lookup", ColumnType::Text), ("code", ColumnType::Text), ("description", ColumnType::Text)],
    ));
    out.push((
        HISTORY_TABLE,
        vec![
            ("kind", ColumnType::Text),
            ("old_id", ColumnType::Text),
            ("new_id", ColumnType::Text),
            ("changed_on", ColumnType::Date),
        ],
    ));
    out
}

/// One release file as read.
#[derive(Debug, Clone)]
pub struct DmdFile {
    /// Name shown in messages (`release.zip:inner.zip:f_vmp2_3010419.xml`).
    pub name: String,
    /// Which file of the release (`vmp`).
    pub kind: String,
    /// The release date in its name (`010419` → 2019-04-01).
    pub date: Option<chrono::NaiveDate>,
    /// SHA-256 of the XML.
    pub sha256: String,
    /// Bytes of XML.
    pub bytes: u64,
    /// Records read.
    pub records: u64,
}

/// A release as read: its tables, ready to store.
#[derive(Debug)]
pub struct DmdRelease {
    /// Release date, from the file names of the core files (or of `f_bnf` alone).
    pub date: Option<chrono::NaiveDate>,
    /// The release's name as shipped (zip or folder name), e.g. `nhsbsa_dmd_7.0.0_20180702000001`.
    pub version: String,
    /// Files read.
    pub files: Vec<DmdFile>,
    /// Tables read; only those whose file was in the release.
    pub tables: Vec<DmdTable>,
}

impl DmdRelease {
    /// A table by name, if its file was in the release.
    pub fn table(&self, name: &str) -> Option<&DmdTable> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Whether the release has the core files (and so replaces every core table).
    pub fn has_core(&self) -> bool {
        self.files.iter().any(|f| f.kind == "vmp")
    }
}

/// Which release file a name is (`f_vmpp2_3010419.xml` → `vmpp`), with the date in its name.
fn file_kind(name: &str) -> Option<(String, Option<chrono::NaiveDate>)> {
    let base = name.rsplit(['/', '\\', ':']).next()?.to_ascii_lowercase();
    let stem = base.strip_prefix("f_")?.strip_suffix(".xml")?;
    let kind: String = stem.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    if kind.is_empty() {
        return None;
    }
    let digits: String = stem.chars().filter(char::is_ascii_digit).collect();
    let date = digits.get(digits.len().saturating_sub(6)..).and_then(|d| {
        let (dd, mm, yy) = (d.get(0..2)?.parse().ok()?, d.get(2..4)?.parse().ok()?, d.get(4..6)?.parse::<i32>().ok()?);
        chrono::NaiveDate::from_ymd_opt(2000 + yy, mm, dd)
    });
    Some((kind, date))
}

/// Largest zip inside a release held in memory (TRUD's inner zips are tens of megabytes), so a
/// crafted archive cannot exhaust memory.
const MAX_INNER_ZIP: u64 = 1 << 30;

/// Most nested zips followed (TRUD ships a zip of zips; deeper is not a dm+d release).
const MAX_ZIP_DEPTH: usize = 3;

/// Reads a release from a folder (searched two levels deep), a zip (with nested zips) or one XML
/// file. `progress` is told each file as it is read.
pub fn read_dmd(path: &Path, progress: &mut dyn FnMut(&str)) -> Result<DmdRelease, IngestError> {
    let display = path.display().to_string();
    let version = path
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".zip").trim_end_matches(".ZIP").to_string())
        .unwrap_or_default();
    let mut reader = ReleaseReader::default();
    if path.is_dir() {
        let mut files = Vec::new();
        collect_files(path, 0, &mut files).map_err(|source| IngestError::Io { file: display.clone(), source })?;
        files.sort();
        for f in files {
            let name = f.display().to_string();
            if name.to_ascii_lowercase().ends_with(".zip") {
                let bytes = std::fs::read(&f).map_err(|source| IngestError::Io { file: name.clone(), source })?;
                reader.read_zip(&name, bytes, 1, progress)?;
            } else if file_kind(&name).is_some() {
                let mut source = open_source(&f)?;
                reader.read_xml(&name, &mut source.reader, progress)?;
            }
        }
    } else {
        let bytes = std::fs::read(path).map_err(|source| IngestError::Io { file: display.clone(), source })?;
        if bytes.starts_with(b"PK\x03\x04") {
            reader.read_zip(&display, bytes, 1, progress)?;
        } else {
            let name = path.file_name().map_or(display.clone(), |n| n.to_string_lossy().into_owned());
            reader.read_xml(&name, &mut bytes.as_slice(), progress)?;
        }
    }
    reader.finish(&display, version)
}

fn collect_files(dir: &Path, depth: usize, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            if depth < 2 {
                collect_files(&p, depth + 1, out)?;
            }
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Rows of one table while its file is read.
struct Building {
    spec: &'static TableSpec,
    columns: Vec<Values>,
    /// Values of attached records by key: attached index → key → rows of values.
    attached: Vec<FxHashMap<String, Vec<Vec<Value>>>>,
    /// Where each row came from, for messages about its lookups.
    origin: Vec<(String, u64)>,
}

#[derive(Default)]
struct ReleaseReader {
    files: Vec<DmdFile>,
    building: BTreeMap<&'static str, Building>,
    lookup: Vec<(String, String, String)>,
}

impl ReleaseReader {
    fn read_zip(
        &mut self,
        name: &str,
        bytes: Vec<u8>,
        depth: usize,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), IngestError> {
        if depth > MAX_ZIP_DEPTH {
            return Err(IngestError::format(
                name,
                format!("zips nested more than {MAX_ZIP_DEPTH} deep; this is not a dm+d release"),
            ));
        }
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| {
            IngestError::format(name, format!("not a readable zip archive ({e}); download the release again"))
        })?;
        for i in 0..archive.len() {
            let mut entry = archive
                .by_index(i)
                .map_err(|e| IngestError::format(name, format!("cannot read member {i} of the zip ({e})")))?;
            let member = entry.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("member {i}"));
            let lower = member.to_ascii_lowercase();
            let is_zip = lower.ends_with(".zip");
            if entry.is_dir() || member.contains("__MACOSX") || !(is_zip || file_kind(&member).is_some()) {
                continue;
            }
            let full = format!("{name}:{member}");
            if is_zip {
                // A zip inside the zip needs seeking, so it is read into memory (TRUD's inner
                // zips are tens of megabytes); XML members are streamed straight out of it.
                let mut data = Vec::with_capacity(entry.size().min(MAX_INNER_ZIP) as usize);
                (&mut entry).take(MAX_INNER_ZIP + 1).read_to_end(&mut data).map_err(|e| IngestError::Corrupt {
                    file: full.clone(),
                    line: 0,
                    detail: e.to_string(),
                })?;
                drop(entry);
                if data.len() as u64 > MAX_INNER_ZIP {
                    return Err(IngestError::format(
                        &full,
                        format!(
                            "a zip inside the release unpacks to more than {} MB; this is not a dm+d release",
                            MAX_INNER_ZIP >> 20
                        ),
                    ));
                }
                self.read_zip(&full, data, depth + 1, progress)?;
            } else {
                self.read_xml(&full, &mut entry, progress)?;
            }
        }
        Ok(())
    }

    fn read_xml(
        &mut self,
        name: &str,
        source: &mut dyn Read,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), IngestError> {
        let name = name.to_string();
        let Some((kind, date)) = file_kind(&name) else { return Ok(()) };
        if !CORE_FILES.contains(&kind.as_str()) && kind != "gtin" && kind != "bnf" {
            return Ok(());
        }
        if let Some(other) = self.files.iter().find(|f| f.kind == kind) {
            return Err(IngestError::format(
                &name,
                format!("the release holds two f_{kind} files (this and {}); load one release at a time", other.name),
            ));
        }
        progress(&format!("reading {name}"));
        let specs: Vec<&'static TableSpec> = TABLES.iter().filter(|t| t.file == kind).collect();
        for spec in &specs {
            let types = spec.columns.iter().chain(spec.attached.iter().flat_map(|a| a.columns.iter()));
            let mut columns: Vec<Values> = types.map(|c| Values::new(c.kind.column_type())).collect();
            if spec.table == "dmd_bnf" {
                columns.insert(1, Values::new(ColumnType::Text));
            }
            let attached = spec.attached.iter().map(|_| FxHashMap::default()).collect();
            self.building.insert(spec.table, Building { spec, columns, attached, origin: Vec::new() });
        }
        // Hashed as it is read, so a member streamed out of a zip gets its checksum too.
        let (hashed, checksum) =
            crate::source::Hashing::new(source).map_err(|e| IngestError::Io { file: name.clone(), source: e })?;
        let reader = BufReader::with_capacity(1 << 20, hashed);
        let short = name.rsplit(':').next().unwrap_or(&name).to_string();
        let records = read_records(&name, reader, |r| self.take(&name, &kind, &specs, r))?;
        if records == 0 {
            return Err(IngestError::format(&name, "the file holds no records; download the release again"));
        }
        let (sha256, bytes) = checksum.get();
        self.files.push(DmdFile { name: short, kind, date, sha256, bytes, records });
        Ok(())
    }

    /// Files one record under its table (or as an attached value, or a lookup row).
    fn take(&mut self, file: &str, kind: &str, specs: &[&'static TableSpec], r: &Record) -> Result<(), IngestError> {
        if kind == "lookup" {
            if r.tag == "INFO" {
                let code = r.get("CD").ok_or_else(|| record_error(file, r, "CD", "", "a lookup row has no CD"))?;
                self.lookup.push((r.parent.clone(), code.to_string(), r.get("DESC").unwrap_or_default().to_string()));
            }
            return Ok(());
        }
        // dm+d's BNF file has VMP and AMP records; both go to dmd_bnf with their level.
        let tag = if kind == "bnf" && r.tag == "AMP" { "VMP" } else { r.tag.as_str() };
        for spec in specs {
            if spec.record == tag {
                let b = self.building.get_mut(spec.table).expect("registered when the file opened");
                let key_field = if kind == "bnf" && r.tag == "AMP" { "APID" } else { spec.columns[0].field };
                let mut values = Vec::with_capacity(spec.columns.len());
                for (i, c) in spec.columns.iter().enumerate() {
                    let field = if i == 0 { key_field } else { c.field };
                    if i == 0 && r.get(field).is_none() {
                        return Err(record_error(file, r, field, "", "the record has no key"));
                    }
                    let mut value = parse_value(file, r, field, c.kind)?;
                    // The supplement writes `n/a` where a product has no ATC code.
                    if c.name == "atc" && value == Value::Text(Some("n/a".into())) {
                        value = Value::Text(None);
                    }
                    values.push(value);
                }
                let mut cols = b.columns.iter_mut();
                let mut values = values.into_iter();
                cols.next().expect("key column").push(values.next().expect("key value"));
                if kind == "bnf" {
                    cols.next().expect("level column").push(Value::Text(Some(r.tag.clone())));
                }
                for (c, v) in cols.zip(values) {
                    c.push(v);
                }
                b.origin.push((file.to_string(), r.line));
            }
            for (ai, a) in spec.attached.iter().enumerate() {
                if a.record == r.tag {
                    let key = r.get(a.key).ok_or_else(|| record_error(file, r, a.key, "", "the record has no key"))?;
                    let values = a
                        .columns
                        .iter()
                        .map(|c| parse_value(file, r, c.field, c.kind))
                        .collect::<Result<Vec<_>, _>>()?;
                    let b = self.building.get_mut(spec.table).expect("registered when the file opened");
                    b.attached[ai].entry(key.to_string()).or_default().push(values);
                }
            }
        }
        Ok(())
    }

    fn finish(mut self, path: &str, version: String) -> Result<DmdRelease, IngestError> {
        let kinds: BTreeSet<&str> = self.files.iter().map(|f| f.kind.as_str()).collect();
        if kinds.is_empty() {
            return Err(IngestError::format(
                path,
                "no dm+d release files (f_vtm…xml, f_vmp…xml, …, f_bnf…xml) found; give the release folder or its zip",
            ));
        }
        let has_core = CORE_FILES.iter().any(|k| kinds.contains(k));
        let missing: Vec<&str> = CORE_FILES.iter().copied().filter(|k| !kinds.contains(k)).collect();
        if has_core && !missing.is_empty() {
            return Err(IngestError::format(
                path,
                format!(
                    "the release lacks {}; a release is loaded whole so that its tables agree (load the complete release folder or zip)",
                    missing.iter().map(|k| format!("f_{k}")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if (kinds.contains("gtin")) && !has_core {
            return Err(IngestError::format(
                path,
                "f_gtin is loaded with its release, not alone; give the whole release",
            ));
        }
        self.lookup.sort();
        let lookups: FxHashMap<(&str, &str), &str> =
            self.lookup.iter().map(|(t, c, d)| ((t.as_str(), c.as_str()), d.as_str())).collect();
        let mut tables = Vec::new();
        for (name, b) in std::mem::take(&mut self.building) {
            tables.push(build_table(name, b, &lookups)?);
        }
        let date = self
            .files
            .iter()
            .filter(|f| !has_core || CORE_FILES.contains(&f.kind.as_str()))
            .filter_map(|f| f.date)
            .max();
        if has_core {
            let mut lookup = DmdTable { name: LOOKUP_TABLE, columns: Vec::new() };
            let col = |f: fn(&(String, String, String)) -> &String| {
                Values::Text(self.lookup.iter().map(|r| Some(f(r).clone())).collect())
            };
            lookup.columns = vec![("lookup", col(|r| &r.0)), ("code", col(|r| &r.1)), ("description", col(|r| &r.2))];
            tables.push(lookup);
            tables.push(history(&tables));
        }
        tables.sort_by_key(|t| TABLES.iter().position(|s| s.table == t.name).unwrap_or(usize::MAX));
        Ok(DmdRelease { date, version, files: self.files, tables })
    }
}

/// Turns a table's rows into columns, joining attached values and resolving lookup codes.
fn build_table(
    name: &'static str,
    b: Building,
    lookups: &FxHashMap<(&str, &str), &str>,
) -> Result<DmdTable, IngestError> {
    let spec = b.spec;
    let offset = if name == "dmd_bnf" { 1 } else { 0 };
    let own = spec.columns.len() + offset;
    let mut columns = b.columns;
    let rows = columns.first().map_or(0, Values::len);
    let keys: Vec<String> = (0..rows).map(|i| columns[0].text(i).unwrap_or_default().to_string()).collect();
    // Attached columns: fill them row by row from the key's attached values.
    let mut at = own;
    for (ai, a) in spec.attached.iter().enumerate() {
        for (ci, c) in a.columns.iter().enumerate() {
            for key in &keys {
                let found = b.attached[ai].get(key);
                let v = match found {
                    None => empty_value(c.kind),
                    Some(list) if list.len() == 1 => list[0][ci].clone(),
                    Some(list) => join_values(c.kind, list.iter().map(|vals| &vals[ci])),
                };
                columns[at + ci].push(v);
            }
        }
        at += a.columns.len();
    }
    // Lookup codes → descriptions.
    let all_specs: Vec<&ColumnSpec> =
        spec.columns.iter().chain(spec.attached.iter().flat_map(|a| a.columns.iter())).collect();
    for (i, c) in all_specs.iter().enumerate() {
        let Kind::Lookup(table) = c.kind else { continue };
        let idx = if i == 0 { 0 } else { i + offset };
        let Values::Text(values) = &mut columns[idx] else { unreachable!("lookup columns are text") };
        for (row, v) in values.iter_mut().enumerate() {
            let Some(codes) = v.as_deref() else { continue };
            let mut described = Vec::new();
            for code in codes.split("; ") {
                match lookups.get(&(table, code)) {
                    Some(d) => described.push(d.to_string()),
                    None => {
                        let (file, line) = b.origin.get(row).cloned().unwrap_or_default();
                        return Err(IngestError::format(
                            &file,
                            format!(
                                "line {line}, <{}> {} {}: {} code \"{}\" is not in the lookup table {table} of this release; the release is inconsistent, download it again",
                                spec.record,
                                spec.columns[0].field,
                                keys[row],
                                c.field,
                                clip(code)
                            ),
                        ));
                    }
                }
            }
            described.sort_unstable();
            *v = Some(described.join("; "));
        }
    }
    let names = spec.columns.iter().map(|c| c.name);
    let mut names: Vec<&'static str> =
        names.chain(spec.attached.iter().flat_map(|a| a.columns.iter().map(|c| c.name))).collect();
    if name == "dmd_bnf" {
        names.insert(1, "level");
    }
    Ok(DmdTable { name, columns: names.into_iter().zip(columns).collect() })
}

fn empty_value(kind: Kind) -> Value {
    match kind.column_type() {
        ColumnType::Text => Value::Text(None),
        ColumnType::Int => Value::Int(None),
        ColumnType::Decimal => Value::Decimal(None),
        ColumnType::Date => Value::Date(None),
        ColumnType::Flag => Value::Flag(false),
    }
}

/// Several attached values for one row: text joined with `"; "` in code order; for other kinds
/// the first (dm+d gives one price or flag set per pack).
fn join_values<'a>(kind: Kind, values: impl Iterator<Item = &'a Value>) -> Value {
    let values: Vec<&Value> = values.collect();
    if kind.column_type() != ColumnType::Text {
        return values[0].clone();
    }
    let mut texts: Vec<&str> =
        values.iter().filter_map(|v| if let Value::Text(Some(t)) = v { Some(t.as_str()) } else { None }).collect();
    texts.sort_unstable();
    texts.dedup();
    Value::Text((!texts.is_empty()).then(|| texts.join("; ")))
}

fn record_error(file: &str, r: &Record, field: &str, value: &str, what: &str) -> IngestError {
    let key = r.fields.first().map(|(n, v)| format!(" {n} {}", clip(v))).unwrap_or_default();
    let value = if value.is_empty() { String::new() } else { format!("\"{}\" ", clip(value)) };
    IngestError::format(file, format!("line {}, <{}>{key}, field {field}: {value}{what}", r.line, r.tag))
}

fn parse_value(file: &str, r: &Record, field: &str, kind: Kind) -> Result<Value, IngestError> {
    let raw = r.get(field);
    let bad = |what: &str| record_error(file, r, field, raw.unwrap_or_default(), what);
    Ok(match kind {
        Kind::Text => Value::Text(raw.map(str::to_string)),
        Kind::Lookup(_) => Value::Text(raw.map(str::to_string)),
        Kind::Id => match raw {
            None => Value::Text(None),
            Some(v) if v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) => Value::Text(Some(v.to_string())),
            Some(_) => return Err(bad("is not an identifier (digits only)")),
        },
        Kind::Int => Value::Int(match raw {
            None => None,
            Some(v) => Some(v.parse::<i64>().map_err(|_| bad("is not a whole number"))?),
        }),
        Kind::Decimal => Value::Decimal(match raw {
            None => None,
            Some(v) => Some(v.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad("is not a number"))?),
        }),
        Kind::Date => Value::Date(match raw {
            None => None,
            Some(v) => {
                let d =
                    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad("is not a date (YYYY-MM-DD)"))?;
                Some((d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days() as i32)
            }
        }),
        Kind::Flag => Value::Flag(match raw {
            None => false,
            Some(v) => match v.trim_start_matches('0') {
                "1" => true,
                "" => false,
                _ => return Err(bad("is not a flag (1 or 0)")),
            },
        }),
    })
}

/// One id change: kind, old id, new id, date.
type IdChange = (String, String, String, Option<i32>);

/// Old → new ids from the `…PREV` fields of VTMs, VMPs and ingredients.
fn history(tables: &[DmdTable]) -> DmdTable {
    let mut rows: Vec<IdChange> = Vec::new();
    for (table, kind, id, prev, date) in [
        ("dmd_vtm", "VTM", "vtmid", "vtmid_prev", "vtmid_date"),
        ("dmd_vmp", "VMP", "vpid", "vpid_prev", "vpid_date"),
        ("dmd_ingredient", "ingredient", "isid", "isid_prev", "isid_date"),
    ] {
        let Some(t) = tables.iter().find(|t| t.name == table) else { continue };
        let (Some(ids), Some(prevs), Some(Values::Date(dates))) = (t.column(id), t.column(prev), t.column(date)) else {
            continue;
        };
        for (row, changed_on) in dates.iter().enumerate() {
            if let (Some(new), Some(old)) = (ids.text(row), prevs.text(row)) {
                rows.push((kind.to_string(), old.to_string(), new.to_string(), *changed_on));
            }
        }
    }
    rows.sort();
    let text = |f: fn(&IdChange) -> &String| Values::Text(rows.iter().map(|r| Some(f(r).clone())).collect());
    DmdTable {
        name: HISTORY_TABLE,
        columns: vec![
            ("kind", text(|r| &r.0)),
            ("old_id", text(|r| &r.1)),
            ("new_id", text(|r| &r.2)),
            ("changed_on", Values::Date(rows.iter().map(|r| r.3).collect())),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_kind_and_date() {
        let d = |y, m, dd| chrono::NaiveDate::from_ymd_opt(y, m, dd);
        assert_eq!(file_kind("f_vmp2_3010419.xml"), Some(("vmp".into(), d(2019, 4, 1))));
        assert_eq!(file_kind("x.zip:dir/f_gtin2_0010419.xml"), Some(("gtin".into(), d(2019, 4, 1))));
        assert_eq!(file_kind("F_BNF1_0021221.XML"), Some(("bnf".into(), d(2021, 12, 2))));
        assert_eq!(file_kind("vmp_v2_3.xsd"), None);
    }

    fn release(files: &[(&str, &str)]) -> Result<DmdRelease, IngestError> {
        let mut r = ReleaseReader::default();
        for (name, body) in files {
            r.read_xml(name, &mut body.as_bytes(), &mut |_| {})?;
        }
        r.finish("test", "test".into())
    }

    const LOOKUP: &str = "<LOOKUP><BASIS_OF_NAME><INFO><CD>0001</CD><DESC>rINN</DESC></INFO></BASIS_OF_NAME>\
        <VIRTUAL_PRODUCT_PRES_STATUS><INFO><CD>0001</CD><DESC>Valid as a prescribable product</DESC></INFO></VIRTUAL_PRODUCT_PRES_STATUS>\
        <ONT_FORM_ROUTE><INFO><CD>0001</CD><DESC>tablet.oral</DESC></INFO><INFO><CD>0002</CD><DESC>capsule.oral</DESC></INFO></ONT_FORM_ROUTE>\
        <DF_INDICATOR><INFO><CD>1</CD><DESC>Discrete</DESC></INFO></DF_INDICATOR></LOOKUP>";

    fn core(vmp: &str) -> Vec<(&'static str, String)> {
        vec![
            ("f_vtm2_3010419.xml", "<V><VTM><VTMID>1</VTMID><NM>Drug</NM></VTM></V>".into()),
            ("f_vmp2_3010419.xml", vmp.to_string()),
            ("f_amp2_3010419.xml", "<A><AMPS><AMP><APID>5</APID><VPID>22</VPID><NM>Brand</NM></AMP></AMPS></A>".into()),
            (
                "f_vmpp2_3010419.xml",
                "<A><VMPPS><VMPP><VPPID>7</VPPID><VPID>22</VPID><NM>Drug 28</NM></VMPP></VMPPS></A>".into(),
            ),
            (
                "f_ampp2_3010419.xml",
                "<A><AMPPS><AMPP><APPID>8</APPID><APID>5</APID><VPPID>7</VPPID><NM>B</NM></AMPP></AMPPS></A>".into(),
            ),
            ("f_ingredient2_3010419.xml", "<I><ING><ISID>9</ISID><NM>Drug</NM></ING></I>".into()),
            ("f_lookup2_3010419.xml", LOOKUP.into()),
        ]
    }

    const VMP: &str = "<R><VMPS><VMP><VPID>22</VPID><VTMID>1</VTMID><NM>Drug 5mg tablets</NM><BASISCD>0001</BASISCD>\
        <PRES_STATCD>0001</PRES_STATCD><DF_INDCD>1</DF_INDCD><VPIDPREV>21</VPIDPREV><VPIDDT>2019-01-02</VPIDDT><SUG_F>0001</SUG_F></VMP></VMPS>\
        <ONT_DRUG_FORM><ONT><VPID>22</VPID><FORMCD>0002</FORMCD></ONT><ONT><VPID>22</VPID><FORMCD>0001</FORMCD></ONT></ONT_DRUG_FORM></R>";

    #[test]
    fn lookups_are_described_attached_values_joined_and_ids_followed() {
        let files = core(VMP);
        let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
        let r = release(&files).unwrap();
        assert_eq!(r.date, chrono::NaiveDate::from_ymd_opt(2019, 4, 1));
        let vmp = r.table("dmd_vmp").unwrap();
        assert_eq!(vmp.rows(), 1);
        assert_eq!(vmp.column("basis_of_name").unwrap().text(0), Some("rINN"));
        assert_eq!(vmp.column("form_route").unwrap().text(0), Some("capsule.oral; tablet.oral"));
        assert_eq!(vmp.column("sugar_free"), Some(&Values::Flag(vec![true])));
        assert_eq!(r.table("dmd_vmp_form_route").unwrap().rows(), 2);
        let h = r.table(HISTORY_TABLE).unwrap();
        assert_eq!(
            (h.column("old_id").unwrap().text(0), h.column("new_id").unwrap().text(0)),
            (Some("21"), Some("22"))
        );
        assert_eq!(r.table(LOOKUP_TABLE).unwrap().rows(), 5);
    }

    #[test]
    fn bad_values_unknown_codes_and_partial_releases_are_refused_by_name() {
        let with = |vmp: String| {
            let files = core(&vmp);
            let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
            release(&files).unwrap_err().to_string()
        };
        let e = with(VMP.replace("<BASISCD>0001", "<BASISCD>0009"));
        assert!(e.contains("<VMP> VPID 22: BASISCD code \"0009\" is not in the lookup table BASIS_OF_NAME"), "{e}");
        let e = with(VMP.replace("2019-01-02", "2019-13-02"));
        assert!(
            e.starts_with("f_vmp2_3010419.xml: line 1, <VMP> VPID 22, field VPIDDT: \"2019-13-02\" is not a date"),
            "{e}"
        );
        let e = with(VMP.replace("<VPID>22</VPID><VTMID>", "<VPID>3.1E+16</VPID><VTMID>"));
        assert!(e.contains("field VPID: \"3.1E+16\" is not an identifier"), "{e}");
        let e = with(VMP.replace("<SUG_F>0001", "<SUG_F>yes"));
        assert!(e.contains("field SUG_F: \"yes\" is not a flag"), "{e}");
        let files = core(VMP);
        let partial: Vec<(&str, &str)> = files.iter().skip(1).map(|(n, b)| (*n, b.as_str())).collect();
        assert!(release(&partial).unwrap_err().to_string().contains("the release lacks f_vtm"));
        let mut twice: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
        twice.push(("f_vtm2_3080419.xml", "<V/>"));
        assert!(release(&twice).unwrap_err().to_string().contains("two f_vtm files"));
    }
}
