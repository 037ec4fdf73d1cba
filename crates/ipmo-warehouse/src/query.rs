//! SQL over the warehouse.

use crate::tables::{STORED_TABLES, table_schema};
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::datasource::ViewTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::{LogicalPlanBuilder, lit};
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::StreamExt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// How `ipmo sql` prints results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned text table.
    Table,
    /// CSV with a header.
    Csv,
    /// JSON array of objects.
    Json,
}

/// Views defined over the stored tables. `prescribing` shows money in pounds (DOUBLE) beside the
/// exact integer columns; `prescribing_current` shows history under today's BNF codes.
/// `dmd_product`, `dmd_vmp_strength` and `prescribing_dmd` put dm+d beside prescribing: a
/// prescribing row's product (from the EPD's `SNOMED_CODE`, or the BNF ↔ SNOMED mapping where
/// that names one product only), followed through changed ids, with its VTM and form-route.
/// `medicine_use` puts hospital issues and primary care prescribing in the same units (the VMP's,
/// ingredient amounts and WHO DDDs where dm+d and the supplement allow, with the reason where
/// they do not); `scmd_ddd` is its hospital half under SCMD's names.
const VIEWS: [(&str, &str); 8] = [
    (
        "prescribing",
        "SELECT month, practice_code, bnf_code, items, quantity, \
         CAST(nic_pence AS DOUBLE) / 100.0 AS nic, CAST(actual_cost_e5 AS DOUBLE) / 100000.0 AS actual_cost, \
         adq_usage, unidentified, nic_pence, actual_cost_e5 FROM prescribing_exact",
    ),
    (
        "prescribing_current",
        "SELECT p.month, p.practice_code, COALESCE(m.current_code, p.bnf_code) AS bnf_code, p.bnf_code AS published_bnf_code, \
         p.items, p.quantity, p.nic, p.actual_cost, p.adq_usage, p.unidentified, p.nic_pence, p.actual_cost_e5 \
         FROM prescribing p LEFT JOIN bnf_map m ON p.bnf_code = m.old_code",
    ),
    (
        "dmd_product",
        "SELECT v.vpid AS id, 'VMP' AS level, v.vpid, v.vtmid, v.name, t.name AS vtm_name, v.form_route, v.route, \
         v.prescribing_status, v.invalid FROM dmd_vmp v LEFT JOIN dmd_vtm t ON t.vtmid = v.vtmid \
         UNION ALL \
         SELECT a.apid AS id, 'AMP' AS level, a.vpid, v.vtmid, a.name, t.name AS vtm_name, v.form_route, v.route, \
         v.prescribing_status, a.invalid FROM dmd_amp a LEFT JOIN dmd_vmp v ON v.vpid = a.vpid \
         LEFT JOIN dmd_vtm t ON t.vtmid = v.vtmid",
    ),
    (
        "dmd_vmp_strength",
        "SELECT vi.vpid, vi.isid, i.name AS ingredient, vi.basis_of_strength, vi.strength_numerator, \
         vi.strength_numerator_unit, vi.strength_denominator, vi.strength_denominator_unit \
         FROM dmd_vmp_ingredient vi LEFT JOIN dmd_ingredient i ON i.isid = vi.isid",
    ),
    (
        "prescribing_dmd",
        "SELECT q.month, q.practice_code, q.bnf_code, q.quantity_per_item, q.items, \
         COALESCE(h.new_id, q.snomed_code, m.snomed_code) AS snomed_code, p.level, p.vpid, p.vtmid, p.name, \
         p.vtm_name, p.form_route, p.route \
         FROM prescribing_by_quantity q \
         LEFT JOIN (SELECT bnf_code, MIN(snomed_code) AS snomed_code FROM bnf_snomed \
                    WHERE level IS NULL OR level IN ('VMP', 'AMP') GROUP BY bnf_code \
                    HAVING COUNT(DISTINCT snomed_code) = 1) m ON m.bnf_code = q.bnf_code \
         LEFT JOIN dmd_id_history h ON h.old_id = COALESCE(q.snomed_code, m.snomed_code) \
         LEFT JOIN dmd_product p ON p.id = COALESCE(h.new_id, q.snomed_code, m.snomed_code)",
    ),
    (
        "medicine_use",
        // One row per hospital issue (SCMD) and per primary care prescribing row with a dm+d
        // product, each as its VMP, the unit its quantity is counted in (the file's for a
        // hospital; for primary care the VMP's pack unit, which is what the EPD counts), the
        // VMP's ATC code, form-route and strength, and WHO DDDs. Per unit issued: the strength
        // per unit dose (tablets, vials whose strength has no denominator), per ml (a quantity
        // counted in the strength's denominator unit), or per unit dose via its size (a vial of 2
        // ml at 3 mg/ml). Unit doses (dm+d's: a tablet, a vial) count a quantity in the unit
        // dose's own unit, or in the unit of its size (14 ml of 2 ml vials are 7). A combination
        // product is counted in its main ingredient (the largest by mass), as WHO states the DDDs
        // of co-amoxiclav and piperacillin with tazobactam, and only where both the strength and
        // the DDD are masses (`mass` gives each mass unit in mg, for strengths and DDDs alike).
        // The amount per unit and the factor from its unit to the DDD's are worked out once, in
        // the inner query, and the reason a line has no DDDs is read from which of them is missing.
        "WITH mass AS (SELECT column1 AS unit, column2 AS mg FROM (VALUES ('nanogram', 0.000001), ('microgram', 0.001), \
                         ('mg', 1.0), ('gram', 1000.0), ('kg', 1000000.0))) \
         SELECT sector, month, org_code, vmp_id, vmp_name, quantity, unit_name, ingredient, \
         quantity * per_unit AS ingredient_amount, num_unit AS amount_unit, per_unit * num_mg AS strength_mg, \
         CASE WHEN unit_name = dose_unit THEN quantity WHEN unit_name = udfs_unit AND udfs > 0 THEN quantity / udfs END \
           AS unit_doses, dose_unit AS unit_dose_unit, \
         atc, form_route, ddd, ddd_unit, quantity * per_unit * factor / ddd AS ddds, \
         CASE WHEN vpid IS NULL THEN 'VMP not in the dm+d release loaded' \
              WHEN n IS NULL THEN 'dm+d gives the VMP no strength' \
              WHEN unit_name IS NULL THEN 'the file gives no unit for the quantity' \
              WHEN per_unit IS NULL \
                THEN concat('a quantity in ', unit_name, ' does not match the strength (', \
                            CAST(num AS VARCHAR), ' ', num_unit, \
                            CASE WHEN den IS NULL THEN '' ELSE concat(' per ', CAST(den AS VARCHAR), ' ', den_unit) END, ')') \
              WHEN ddd IS NULL THEN 'no DDD for the VMP in the dm+d supplement' \
              WHEN factor IS NULL AND n > 1 THEN 'a combination product whose strength and DDD are not both masses' \
              WHEN factor IS NULL THEN concat('strength in ', num_unit, ' but DDD in ', ddd_unit) END AS not_calculated \
         FROM (SELECT s.sector, s.month, s.org_code, s.vmp_id, COALESCE(s.vmp_name, v.name) AS vmp_name, s.quantity, \
                 (CASE WHEN s.sector = 'hospital' THEN s.unit_name ELSE pk.unit END) AS unit_name, v.vpid, v.form_route, \
                 v.unit_dose_unit AS dose_unit, v.unit_dose_form_units AS udfs_unit, v.unit_dose_form_size AS udfs, \
                 i.n, i.ingredient, i.num, \
                 i.num_unit, i.num_mg, i.den, i.den_unit, d.atc, d.ddd, d.ddd_unit, \
                 CASE WHEN i.den IS NULL AND (CASE WHEN s.sector = 'hospital' THEN s.unit_name ELSE pk.unit END) = v.unit_dose_unit THEN i.num \
                      WHEN i.den IS NOT NULL AND (CASE WHEN s.sector = 'hospital' THEN s.unit_name ELSE pk.unit END) = i.den_unit THEN i.num / i.den \
                      WHEN i.den IS NOT NULL AND (CASE WHEN s.sector = 'hospital' THEN s.unit_name ELSE pk.unit END) = v.unit_dose_unit \
                           AND v.unit_dose_form_units = i.den_unit THEN v.unit_dose_form_size * i.num / i.den END \
                   AS per_unit, \
                 CASE WHEN i.n > 1 THEN i.num_mg / d.ddd_mg WHEN i.num_unit = d.ddd_unit THEN 1.0 \
                      ELSE i.num_mg / d.ddd_mg END AS factor \
               FROM (SELECT 'hospital' AS sector, month, trust_code AS org_code, vmp_id, vmp_name, quantity, unit_name \
                     FROM scmd \
                     UNION ALL \
                     SELECT 'primary_care' AS sector, month, practice_code AS org_code, vpid AS vmp_id, \
                       CAST(NULL AS VARCHAR) AS vmp_name, quantity_per_item * CAST(items AS DOUBLE) AS quantity, \
                       CAST(NULL AS VARCHAR) AS unit_name \
                     FROM prescribing_dmd WHERE vpid IS NOT NULL) s \
               LEFT JOIN dmd_vmp v ON v.vpid = s.vmp_id \
               LEFT JOIN (SELECT vpid, MIN(unit) AS unit FROM dmd_vmpp GROUP BY vpid) pk ON pk.vpid = s.vmp_id \
               LEFT JOIN (SELECT vpid, n, ingredient, num, num_unit, num_mg, den, den_unit FROM \
                           (SELECT vi.vpid, ing.name AS ingredient, vi.strength_numerator AS num, \
                              vi.strength_numerator_unit AS num_unit, vi.strength_denominator AS den, \
                              vi.strength_denominator_unit AS den_unit, \
                              nm.mg AS num_mg, COUNT(*) OVER (PARTITION BY vi.vpid) AS n, \
                              ROW_NUMBER() OVER (PARTITION BY vi.vpid ORDER BY vi.strength_numerator * nm.mg DESC NULLS LAST, \
                                vi.isid) AS main \
                            FROM dmd_vmp_ingredient vi LEFT JOIN dmd_ingredient ing ON ing.isid = vi.isid \
                            LEFT JOIN mass nm ON nm.unit = vi.strength_numerator_unit) \
                          WHERE main = 1) i ON i.vpid = s.vmp_id \
               LEFT JOIN (SELECT b.id, b.atc, b.ddd, u.description AS ddd_unit, dm.mg AS ddd_mg \
                          FROM dmd_bnf b LEFT JOIN dmd_lookup u ON u.lookup = 'UNIT_OF_MEASURE' AND u.code = b.ddd_unit_code \
                          LEFT JOIN mass dm ON dm.unit = u.description \
                          WHERE b.level = 'VMP') d ON d.id = s.vmp_id)",
    ),
    (
        "scmd_ddd",
        "SELECT month, org_code AS trust_code, vmp_id, vmp_name, quantity, unit_name, ingredient, ingredient_amount, \
         amount_unit, atc, ddd, ddd_unit, ddds, not_calculated FROM medicine_use WHERE sector = 'hospital'",
    ),
    (
        "org_membership_latest",
        "SELECT practice_code, pcn_code, sicbl_code, icb_code, region_code, valid_from, valid_to FROM org_membership WHERE is_latest",
    ),
];

/// What stands in for a table that was never loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EmptyTables {
    /// An empty in-memory table: the cheapest, for a session on this machine.
    InMemory,
    /// A view over no rows, whose plan a Ballista cluster can be sent (an in-memory table
    /// cannot be serialised). Tables loaded with no rows are given one too: Ballista 55's
    /// adaptive planner never finishes a join one of whose sides reads a Parquet file of no rows
    /// (it plans new stages without end), and turning that planner off makes every join shuffle
    /// its larger side (30 GB of shuffle files for one 60-month query by ICB).
    #[cfg_attr(not(feature = "ballista"), allow(dead_code))]
    AsViews,
}

impl Warehouse {
    /// A DataFusion session with every table and view registered. Tables never loaded are
    /// registered empty, so a query names a missing table only when it is misspelt.
    pub async fn session(&self) -> Result<SessionContext, WarehouseError> {
        let ctx = SessionContext::new_with_config(session_config());
        self.register(&ctx, EmptyTables::InMemory).await?;
        Ok(ctx)
    }

    /// A session like [`Warehouse::session`] in which every table partitioned by month
    /// (prescribing, SCMD, the Tariff, …) holds only the given months' partitions, and the views
    /// over them see only those: a computation of a few months reads a few months' files.
    pub(crate) async fn session_for_months(&self, months: &[String]) -> Result<SessionContext, WarehouseError> {
        let ctx = SessionContext::new_with_config(session_config());
        self.register_with(&ctx, EmptyTables::InMemory, Some(months)).await?;
        Ok(ctx)
    }

    /// Registers the stored tables (as Parquet listings of the manifest's files, by absolute
    /// path) and the views in `ctx`: one catalogue for a local session and a cluster's.
    pub(crate) async fn register(&self, ctx: &SessionContext, empty: EmptyTables) -> Result<(), WarehouseError> {
        self.register_with(ctx, empty, None).await
    }

    async fn register_with(
        &self,
        ctx: &SessionContext,
        empty: EmptyTables,
        months: Option<&[String]>,
    ) -> Result<(), WarehouseError> {
        let manifest = self.manifest()?;
        for table in STORED_TABLES {
            let schema = table_schema(table).expect("stored tables have schemas");
            let mut paths = Vec::new();
            let files: Vec<&str> = match (months, manifest.tables.get(table)) {
                // Partitions named `YYYY-MM` are months; dated snapshots (`YYYY-MM-DD`) are not.
                (Some(months), Some(parts))
                    if parts.keys().all(|p| p.parse::<ipmo_domain::YearMonth>().is_ok_and(|m| m.to_string() == *p)) =>
                {
                    parts.iter().filter(|(p, _)| months.contains(p)).map(|(_, f)| f.as_str()).collect()
                }
                _ => manifest.files(table),
            };
            for rel in files {
                let path = self.root.join(rel);
                paths.push(path.canonicalize().map_err(|e| WarehouseError::Corrupt {
                    path: self.root.join("manifest.json").display().to_string(),
                    detail: format!("it lists {} which cannot be opened ({e}); reload the data", path.display()),
                })?);
            }
            let stand_in: Option<Arc<dyn TableProvider>> = match empty {
                EmptyTables::InMemory if paths.is_empty() => {
                    Some(Arc::new(MemTable::try_new(schema.clone(), vec![vec![]])?))
                }
                EmptyTables::AsViews if !any_rows(&paths)? => Some(empty_view(&schema)?),
                _ => None,
            };
            if let Some(provider) = stand_in {
                ctx.register_table(table, provider)?;
                continue;
            }
            let mut urls = Vec::with_capacity(paths.len());
            for path in &paths {
                urls.push(ListingTableUrl::parse(path.to_string_lossy())?);
            }
            let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
            let config =
                ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(schema);
            ctx.register_table(table, Arc::new(ListingTable::try_new(config)?))?;
        }
        for (name, body) in VIEWS {
            ctx.sql(&format!("CREATE VIEW {name} AS {body}")).await?;
        }
        Ok(())
    }

    /// Runs one read-only SQL statement and collects the result.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, WarehouseError> {
        Ok(self.dataframe(sql).await?.collect().await?)
    }

    /// The first column of the first row of a query as a number (None when empty, null or not
    /// a number): for a total printed beside a listing.
    pub async fn query_f64(&self, sql: &str) -> Result<Option<f64>, WarehouseError> {
        use datafusion::arrow::array::{Array, AsArray};
        use datafusion::arrow::datatypes::{DataType, Float64Type};
        for b in self.query(sql).await? {
            if b.num_rows() == 0 {
                continue;
            }
            let col = datafusion::arrow::compute::cast(b.column(0), &DataType::Float64)
                .map_err(|e| WarehouseError::Query(e.to_string()))?;
            let col = col.as_primitive::<Float64Type>();
            return Ok((!col.is_null(0)).then(|| col.value(0)));
        }
        Ok(None)
    }

    /// Plans one SQL statement. Statements that would change anything (`CREATE`, `INSERT`,
    /// `COPY`, `SET`) are refused: the warehouse changes only through `ipmo ingest`, so that the
    /// manifest stays a true account of what it holds.
    pub async fn dataframe(&self, sql: &str) -> Result<DataFrame, WarehouseError> {
        read_only(&self.session().await?, sql).await
    }

    /// Runs one read-only SQL statement and prints the result as it arrives; returns the row
    /// count. CSV and JSON stream without limit; the text table, which must be held to align
    /// it, shows the first `TABLE_ROW_LIMIT` rows and says how many more there were.
    pub async fn query_to(
        &self,
        sql: &str,
        format: OutputFormat,
        out: &mut dyn Write,
    ) -> Result<usize, WarehouseError> {
        write_result(self.dataframe(sql).await?, format, out).await
    }
}

/// The session settings shared by local and cluster sessions.
pub(crate) fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new().with_information_schema(true);
    // Stored schemas use Utf8; keep them as declared rather than as Utf8View.
    config.options_mut().execution.parquet.schema_force_view_types = false;
    config
}

/// Plans one SQL statement, refusing statements that would change anything (`CREATE`,
/// `INSERT`, `COPY`, `SET`): the warehouse changes only through `ipmo ingest`, so that the
/// manifest stays a true account of what it holds.
pub(crate) async fn read_only(ctx: &SessionContext, sql: &str) -> Result<DataFrame, WarehouseError> {
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    Ok(ctx.sql_with_options(sql, options).await?)
}

/// A table of `schema` with no rows, as a view: plain logical plan nodes, which a cluster's
/// scheduler can be sent.
fn empty_view(schema: &SchemaRef) -> Result<Arc<dyn TableProvider>, WarehouseError> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| Ok(lit(ScalarValue::try_from(f.data_type())?).alias(f.name())))
        .collect::<Result<Vec<_>, DataFusionError>>()?;
    let plan = LogicalPlanBuilder::empty(false).project(columns)?.build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// Whether any of `files` holds a row, by their Parquet footers (one read when the first does).
fn any_rows(files: &[PathBuf]) -> Result<bool, WarehouseError> {
    for path in files {
        let file = std::fs::File::open(path).map_err(|e| WarehouseError::io(path, e))?;
        let reader = SerializedFileReader::new(file).map_err(|e| WarehouseError::parquet(path, e))?;
        if reader.metadata().file_metadata().num_rows() > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Prints a query's result as it arrives and returns the row count.
pub(crate) async fn write_result(
    frame: DataFrame,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<usize, WarehouseError> {
    let mut stream = frame.execute_stream().await?;
    let io = |e: std::io::Error| WarehouseError::Io { path: "<output>".into(), source: e };
    let arrow = |e: datafusion::arrow::error::ArrowError| WarehouseError::Query(e.to_string());
    let mut rows = 0usize;
    match format {
        OutputFormat::Table => {
            let mut held = Vec::new();
            let mut shown = 0usize;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows();
                if shown < TABLE_ROW_LIMIT {
                    let take = batch.num_rows().min(TABLE_ROW_LIMIT - shown);
                    shown += take;
                    held.push(batch.slice(0, take));
                }
            }
            if held.is_empty() {
                held.push(RecordBatch::new_empty(stream.schema()));
            }
            let text = datafusion::arrow::util::pretty::pretty_format_batches(&held).map_err(arrow)?;
            writeln!(out, "{text}").map_err(io)?;
            if rows > shown {
                writeln!(out, "(showing the first {shown} of {rows} rows; use --format csv for all of them)")
                    .map_err(io)?;
            }
        }
        OutputFormat::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(&mut *out);
            let mut any = false;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows();
                w.write(&batch).map_err(arrow)?;
                any = true;
            }
            if !any {
                w.write(&RecordBatch::new_empty(stream.schema())).map_err(arrow)?;
            }
        }
        OutputFormat::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut *out);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows();
                w.write(&batch).map_err(arrow)?;
            }
            w.finish().map_err(arrow)?;
            writeln!(out).map_err(io)?;
        }
    }
    Ok(rows)
}

/// Rows the text table shows before asking for CSV instead.
pub(crate) const TABLE_ROW_LIMIT: usize = 10_000;
