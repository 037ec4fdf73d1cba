//! The warehouse's tables: their Arrow schemas and how typed rows become record batches.
//!
//! These schemas are the contract with `ipmo sql` users and with the measures engine; the README
//! documents them and a test checks the two agree.

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::Arc;

/// Name of the stored prescribing table; `prescribing` is a view over it with money in pounds.
pub const PRESCRIBING: &str = "prescribing_exact";

/// Items per practice, presentation, dm+d product and quantity per item: the split of
/// [`PRESCRIBING`] that the EPD publishes and course-length measures need.
pub const PRESCRIBING_BY_QUANTITY: &str = "prescribing_by_quantity";

fn schema(fields: &[(&str, DataType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(fields.iter().map(|(n, t, null)| Field::new(*n, t.clone(), *null)).collect::<Vec<_>>()))
}

/// Schema of each stored table by name.
pub fn table_schema(table: &str) -> Option<SchemaRef> {
    use DataType::{Boolean, Date32, Float64, Int32, Int64, Utf8};
    Some(match table {
        PRESCRIBING => schema(&[
            ("month", Date32, false),
            ("practice_code", Utf8, false),
            ("bnf_code", Utf8, false),
            ("items", Int64, false),
            ("quantity", Float64, false),
            ("nic_pence", Int64, false),
            ("actual_cost_e5", Int64, false),
            ("adq_usage", Float64, false),
            ("unidentified", Boolean, false),
        ]),
        PRESCRIBING_BY_QUANTITY => schema(&[
            ("month", Date32, false),
            ("practice_code", Utf8, false),
            ("bnf_code", Utf8, false),
            ("snomed_code", Utf8, true),
            ("quantity_per_item", Float64, false),
            ("items", Int64, false),
        ]),
        "org_map_snapshots" => schema(&[
            ("extract_date", Date32, false),
            ("practice_code", Utf8, false),
            ("practice_name", Utf8, false),
            ("postcode", Utf8, false),
            ("pcn_code", Utf8, true),
            ("pcn_name", Utf8, false),
            ("sicbl_code", Utf8, false),
            ("sicbl_name", Utf8, false),
            ("icb_code", Utf8, false),
            ("icb_name", Utf8, false),
            ("region_code", Utf8, false),
            ("region_name", Utf8, false),
        ]),
        "org_membership" => schema(&[
            ("practice_code", Utf8, false),
            ("pcn_code", Utf8, true),
            ("sicbl_code", Utf8, false),
            ("icb_code", Utf8, false),
            ("region_code", Utf8, false),
            ("valid_from", Date32, true),
            ("valid_to", Date32, true),
            ("is_latest", Boolean, false),
        ]),
        "orgs" => schema(&[
            ("code", Utf8, false),
            ("name", Utf8, false),
            ("org_type", Utf8, false),
            ("parent_code", Utf8, true),
        ]),
        "epraccur" => schema(&[
            ("code", Utf8, false),
            ("name", Utf8, false),
            ("postcode", Utf8, false),
            ("status", Utf8, false),
            ("setting", Utf8, false),
            ("is_gp_practice", Boolean, false),
            ("commissioner", Utf8, false),
            ("open_date", Date32, true),
            ("close_date", Date32, true),
        ]),
        "practices" => schema(&[
            ("practice_code", Utf8, false),
            ("name", Utf8, false),
            ("postcode", Utf8, false),
            ("status", Utf8, true),
            ("setting", Utf8, true),
            ("is_gp_practice", Boolean, false),
            ("open_date", Date32, true),
            ("close_date", Date32, true),
            ("first_extract_date", Date32, true),
            ("last_extract_date", Date32, true),
        ]),
        "list_sizes" => {
            let mut f: Vec<(String, DataType, bool)> = vec![
                ("month".into(), Date32, false),
                ("practice_code".into(), Utf8, false),
                ("total".into(), Int64, false),
            ];
            for sex in ["male", "female"] {
                for band in ipmo_ingest::list_sizes::STAR_PU_BANDS {
                    f.push((format!("{sex}_{band}"), Int64, false));
                }
            }
            f.push(("star_pu_oral_antibacterial".into(), Float64, false));
            Arc::new(Schema::new(f.into_iter().map(|(n, t, null)| Field::new(n, t, null)).collect::<Vec<_>>()))
        }
        "bnf" => {
            let mut f = Vec::new();
            for level in ipmo_ingest::bnf::LEVELS.iter().rev() {
                f.push(Field::new(format!("{level}_code"), Utf8, false));
                f.push(Field::new(format!("{level}_name"), Utf8, false));
            }
            Arc::new(Schema::new(f))
        }
        "tariff" | "tariff_cat_m" => schema(&[
            ("month", Date32, false),
            ("vmpp", Utf8, false),
            ("vmp", Utf8, true),
            ("medicine", Utf8, false),
            ("category", Utf8, false),
            ("price_pence", Int64, false),
            ("pack_size", Float64, false),
            ("unit", Utf8, false),
        ]),
        "bnf_snomed" => schema(&[
            ("bnf_code", Utf8, false),
            ("snomed_code", Utf8, false),
            ("level", Utf8, true),
            ("name", Utf8, true),
        ]),
        "concessions" => schema(&[
            ("month", Date32, false),
            ("vmpp", Utf8, false),
            ("drug", Utf8, false),
            ("pack_size", Utf8, false),
            ("price_pence", Int64, false),
            ("source_line", Utf8, false),
        ]),
        "scmd" => schema(&[
            ("month", Date32, false),
            ("trust_code", Utf8, false),
            ("vmp_id", Utf8, false),
            ("vmp_name", Utf8, false),
            ("unit_id", Utf8, true),
            ("unit_name", Utf8, true),
            ("quantity", Float64, false),
            ("indicative_cost", Float64, true),
            ("unit_dose_unit", Utf8, true),
            ("unit_dose_quantity", Float64, true),
        ]),
        "cross_sector_values" => schema(&[
            ("measure_id", Utf8, false),
            ("level", Utf8, false),
            ("org_code", Utf8, false),
            ("sector", Utf8, false),
            ("month", Date32, false),
            ("numerator", Float64, false),
            ("denominator", Float64, false),
            ("lines_not_converted", Int64, false),
        ]),
        "trusts" => schema(&[
            ("code", Utf8, false),
            ("name", Utf8, false),
            ("icb_code", Utf8, true),
            ("region_code", Utf8, true),
            ("postcode", Utf8, true),
            ("open_date", Date32, true),
            ("close_date", Date32, true),
        ]),
        "bnf_code_changes" => schema(&[("old_code", Utf8, false), ("new_code", Utf8, true), ("year", Int32, true)]),
        "bnf_map" => schema(&[("old_code", Utf8, false), ("current_code", Utf8, false)]),
        "presentations_seen" => schema(&[("bnf_code", Utf8, false), ("name", Utf8, false)]),
        "imd" => schema(&[
            ("practice_code", Utf8, false),
            ("score", Float64, false),
            ("quintile", Int32, false),
            ("year", Int32, true),
        ]),
        "measure_values" => schema(&[
            ("month", Date32, false),
            ("measure_id", Utf8, false),
            ("org_type", Utf8, false),
            ("org_code", Utf8, false),
            ("numerator", Float64, false),
            ("denominator", Float64, false),
            ("value", Float64, true),
            ("percentile", Float64, true),
            ("saving_50", Float64, true),
            ("saving_10", Float64, true),
            ("measure_version", Int32, false),
            ("measure_hash", Utf8, false),
        ]),
        "measure_deciles" => schema(&[
            ("month", Date32, false),
            ("measure_id", Utf8, false),
            ("org_type", Utf8, false),
            ("percentile", Int32, false),
            ("value", Float64, false),
        ]),
        "measure_definitions" => schema(&[
            ("measure_id", Utf8, false),
            ("version", Int32, false),
            ("hash", Utf8, false),
            ("title", Utf8, false),
            ("unit", Utf8, false),
            ("direction", Utf8, false),
            ("is_percentage", Boolean, false),
            ("is_cost_based", Boolean, false),
            ("multiplier", Float64, false),
            ("numerator_value", Utf8, false),
            ("denominator_value", Utf8, false),
            ("tags", Utf8, false),
            ("status", Utf8, false),
        ]),
        "measure_codes" => schema(&[
            ("measure_id", Utf8, false),
            ("side", Utf8, false),
            ("bnf_code", Utf8, false),
            ("name", Utf8, false),
            ("factor", Float64, false),
            // Nullable so that a store written before the column existed still reads.
            ("latest_month_items", Int64, true),
        ]),
        "indicator_values" => schema(&[
            ("month", Date32, false),
            ("indicator_id", Utf8, false),
            ("org_type", Utf8, false),
            ("org_code", Utf8, false),
            ("numerator", Float64, true),
            ("denominator", Float64, true),
            ("value", Float64, true),
            ("percentile", Float64, true),
            ("suppressed", Boolean, false),
        ]),
        "indicator_deciles" => schema(&[
            ("month", Date32, false),
            ("indicator_id", Utf8, false),
            ("org_type", Utf8, false),
            ("percentile", Int32, false),
            ("value", Float64, false),
        ]),
        "indicator_definitions" => schema(&[
            ("indicator_id", Utf8, false),
            ("title", Utf8, false),
            ("direction", Utf8, false),
            ("suppress_at", Int32, true),
            ("source_file", Utf8, false),
        ]),
        "ppu_sets" => schema(&[
            ("set_id", Utf8, false),
            ("bnf_code", Utf8, false),
            ("set_name", Utf8, false),
            ("formulation_swap", Utf8, true),
            ("dmd_release", Utf8, true),
        ]),
        "ppu_prices" => schema(&[
            ("month", Date32, false),
            ("bnf_code", Utf8, false),
            ("set_id", Utf8, false),
            ("tariff_category", Utf8, true),
            ("conceded", Boolean, false),
            ("discount_factor", Float64, false),
            ("reference_discount_factor", Float64, false),
            ("quantity", Float64, false),
            ("nic_pence", Float64, false),
            ("reference_nic_pence", Float64, false),
        ]),
        "concession_costs" | "price_change_costs" => {
            let [before, after, impact] = ipmo_release::price_impacts::cost_columns(table);
            schema(&[
                ("month", Date32, false),
                ("bnf_code", Utf8, false),
                ("vmpp", Utf8, false),
                ("pack_name", Utf8, false),
                ("org_type", Utf8, false),
                ("org_code", Utf8, false),
                ("quantity", Float64, false),
                (before, Float64, false),
                (after, Float64, false),
                (impact, Float64, false),
                ("quantity_month", Date32, false),
                ("is_estimate", Boolean, false),
            ])
        }
        "gbg_costs" => schema(&[
            ("month", Date32, false),
            ("bnf_code", Utf8, false),
            ("org_type", Utf8, false),
            ("org_code", Utf8, false),
            ("quantity", Float64, false),
            ("nic_pence", Float64, false),
            ("median_ppu_pence", Float64, false),
            ("extra_cost_pence", Float64, false),
        ]),
        "ppu_totals" => schema(&[
            ("month", Date32, false),
            ("org_type", Utf8, false),
            ("org_code", Utf8, false),
            ("sets", Int64, false),
            ("saving_pence", Float64, false),
            ("reference_sets", Int64, false),
            ("reference_saving_pence", Float64, false),
        ]),
        "ppu_targets" => schema(&[
            ("month", Date32, false),
            ("set_id", Utf8, false),
            ("target_ppu", Float64, true),
            ("reference_target_ppu", Float64, true),
            ("practices", Int64, false),
        ]),
        "ppu_savings" => schema(&[
            ("month", Date32, false),
            ("set_id", Utf8, false),
            ("org_type", Utf8, false),
            ("org_code", Utf8, false),
            ("quantity", Float64, false),
            ("nic_pence", Float64, false),
            ("saving_pence", Float64, false),
            ("reference_nic_pence", Float64, false),
            ("reference_saving_pence", Float64, false),
        ]),
        name if name.starts_with("dmd_") => return dmd_schema(name),
        _ => return None,
    })
}

/// Schemas of the dm+d tables come from the reader's table specs, so the two cannot disagree.
fn dmd_schema(table: &str) -> Option<SchemaRef> {
    use ipmo_ingest::dmd::ColumnType;
    let (_, cols) = ipmo_ingest::dmd::table_columns().into_iter().find(|(t, _)| *t == table)?;
    let fields: Vec<Field> = cols
        .into_iter()
        .map(|(name, t)| match t {
            ColumnType::Text => Field::new(name, DataType::Utf8, true),
            ColumnType::Int => Field::new(name, DataType::Int64, true),
            ColumnType::Decimal => Field::new(name, DataType::Float64, true),
            ColumnType::Date => Field::new(name, DataType::Date32, true),
            ColumnType::Flag => Field::new(name, DataType::Boolean, false),
        })
        .collect();
    Some(Arc::new(Schema::new(fields)))
}

/// Every stored table, in the order `ipmo sql` lists them.
pub const STORED_TABLES: [&str; 47] = [
    PRESCRIBING,
    PRESCRIBING_BY_QUANTITY,
    "org_map_snapshots",
    "org_membership",
    "orgs",
    "epraccur",
    "practices",
    "list_sizes",
    "bnf",
    "bnf_code_changes",
    "bnf_map",
    "presentations_seen",
    "imd",
    "measure_values",
    "measure_deciles",
    "measure_definitions",
    "measure_codes",
    "indicator_values",
    "indicator_deciles",
    "indicator_definitions",
    "ppu_sets",
    "ppu_prices",
    "ppu_targets",
    "ppu_savings",
    "ppu_totals",
    "concession_costs",
    "price_change_costs",
    "gbg_costs",
    "tariff",
    "tariff_cat_m",
    "concessions",
    "bnf_snomed",
    "scmd",
    "trusts",
    "cross_sector_values",
    "dmd_vtm",
    "dmd_vmp",
    "dmd_vmp_ingredient",
    "dmd_vmp_form_route",
    "dmd_ingredient",
    "dmd_amp",
    "dmd_vmpp",
    "dmd_ampp",
    "dmd_gtin",
    "dmd_bnf",
    "dmd_lookup",
    "dmd_id_history",
];

/// A column under construction.
pub enum Col {
    /// Text.
    Str(Vec<Option<String>>),
    /// Text without nulls, already in an Arrow array: see [`Col::text`].
    Text(StringArray),
    /// 64-bit integers.
    I64(Vec<i64>),
    /// 64-bit integers, nullable.
    I64Opt(Vec<Option<i64>>),
    /// 32-bit integers, nullable.
    I32(Vec<Option<i32>>),
    /// Floats.
    F64(Vec<f64>),
    /// Floats, nullable.
    F64Opt(Vec<Option<f64>>),
    /// Dates as days since 1970, nullable.
    Date(Vec<Option<i32>>),
    /// Booleans.
    Bool(Vec<bool>),
}

impl Col {
    /// A text column copied straight from borrowed strings. A month of measure values has 700,000
    /// rows of four text columns; owned `String`s would cost an allocation and a copy per value.
    pub fn text<'a>(values: impl IntoIterator<Item = &'a str>) -> Col {
        Col::Text(StringArray::from_iter_values(values))
    }

    fn into_array(self) -> ArrayRef {
        match self {
            Col::Str(v) => Arc::new(StringArray::from(v)),
            Col::Text(a) => Arc::new(a),
            Col::I64(v) => Arc::new(Int64Array::from(v)),
            Col::I64Opt(v) => Arc::new(Int64Array::from(v)),
            Col::I32(v) => Arc::new(Int32Array::from(v)),
            Col::F64(v) => Arc::new(Float64Array::from(v)),
            Col::F64Opt(v) => Arc::new(Float64Array::from(v)),
            Col::Date(v) => Arc::new(Date32Array::from(v)),
            Col::Bool(v) => Arc::new(BooleanArray::from(v)),
        }
    }
}

/// Assembles a batch for `table` from columns given in schema order.
pub fn batch(table: &str, cols: Vec<Col>) -> RecordBatch {
    let schema = table_schema(table).expect("known table");
    RecordBatch::try_new(schema, cols.into_iter().map(Col::into_array).collect())
        .expect("columns match the table schema")
}

/// The first two columns of batches as text pairs (code → name, old → current code…).
pub(crate) fn string_pairs(batches: &[RecordBatch]) -> impl Iterator<Item = (&str, &str)> {
    use datafusion::arrow::array::AsArray;
    batches.iter().flat_map(|b| {
        let (a, c) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
        (0..b.num_rows()).map(move |i| (a.value(i), c.value(i)))
    })
}

/// Days since 1970-01-01.
pub fn days(d: chrono::NaiveDate) -> i32 {
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days() as i32
}
