//! Cross-sector measures computed over `medicine_use` and stored as `cross_sector_values`: each
//! trust's sums, each ICB's primary care (its practices in the month, by the membership of
//! that month), its hospitals (the trusts ODS places in it) and the two together, and England's.

use crate::tables::Col;
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int64Type};
use ipmo_domain::YearMonth;
use ipmo_domain::practice::ENGLAND;
use ipmo_measures::cross_sector::{CROSS_SECTOR_MEASURES, CrossSectorMeasure};
use ipmo_release::cross_sector::{CrossSectorValues, Level, Sector, SectorPoint};
use std::collections::BTreeMap;

/// The stored table.
pub const CROSS_SECTOR_VALUES: &str = "cross_sector_values";

/// Months whose selected lines are held in memory together while the measures are computed.
const MONTHS_AT_ONCE: usize = 3;

/// Tables every month's figures read besides that month's prescribing and SCMD: a new file in
/// any of them makes every month stale.
const SHARED_INPUTS: [&str; 12] = [
    "org_membership",
    "trusts",
    "bnf_snomed",
    "dmd_vmp",
    "dmd_vmp_ingredient",
    "dmd_ingredient",
    "dmd_vmpp",
    "dmd_amp",
    "dmd_bnf",
    "dmd_lookup",
    "dmd_id_history",
    "dmd_vtm",
];

/// What a computation stored, per measure, for the command's report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CrossSectorReport {
    /// Months computed.
    pub months_computed: Vec<String>,
    /// Months whose stored figures were already up to date.
    pub months_up_to_date: usize,
    /// Per measure: id, rows stored, trusts with a value, ICBs with a value, months, and lines
    /// selected but not converted to the measure's units.
    pub measures: Vec<MeasureCount>,
    /// Rows stored in all.
    pub rows: u64,
}

/// One measure's line in a [`CrossSectorReport`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeasureCount {
    /// Measure id.
    pub id: &'static str,
    /// Rows stored.
    pub rows: u64,
    /// Distinct trusts.
    pub trusts: usize,
    /// Distinct ICBs.
    pub icbs: usize,
    /// Distinct months.
    pub months: usize,
    /// Selected lines (both sectors, England) left out for want of a conversion.
    pub lines_not_converted: u64,
}

/// What one measure stored, gathered while its rows are read: the trusts, ICBs and months are
/// counted once every group of months is done.
struct Tally {
    count: MeasureCount,
    trusts: std::collections::BTreeSet<String>,
    icbs: std::collections::BTreeSet<String>,
    months: std::collections::BTreeSet<i32>,
}

impl Tally {
    fn new(id: &'static str) -> Self {
        Self {
            count: MeasureCount { id, ..Default::default() },
            trusts: Default::default(),
            icbs: Default::default(),
            months: Default::default(),
        }
    }

    fn add(&mut self, row: &Row) {
        match row.level.as_str() {
            "trust" => {
                self.trusts.insert(row.org.clone());
            }
            "icb" => {
                self.icbs.insert(row.org.clone());
            }
            _ if row.sector != "system" => self.count.lines_not_converted += row.lines_not_converted as u64,
            _ => {}
        }
        self.months.insert(row.month);
        self.count.rows += 1;
    }

    fn finish(self) -> MeasureCount {
        MeasureCount { trusts: self.trusts.len(), icbs: self.icbs.len(), months: self.months.len(), ..self.count }
    }
}

/// The query that stores a measure at every level: the measure's own query (one row per
/// organisation of either sector and month) summed up to ICBs and England. What
/// `ipmo measures cross-sector --sql` prints, and what `ipmo sql` can run.
pub fn levels_sql(m: &CrossSectorMeasure) -> String {
    format!(
        "WITH v AS ({base}), \
         pc AS (SELECT m.icb_code AS org_code, v.month, SUM(v.numerator) AS numerator, SUM(v.denominator) AS denominator, \
                  SUM(v.lines_not_converted) AS lines_not_converted \
                FROM v JOIN org_membership m ON m.practice_code = v.org_code \
                  AND (m.valid_from IS NULL OR m.valid_from <= v.month) AND (m.valid_to IS NULL OR v.month < m.valid_to) \
                WHERE v.sector = 'primary_care' GROUP BY m.icb_code, v.month), \
         hs AS (SELECT t.icb_code AS org_code, v.month, SUM(v.numerator) AS numerator, SUM(v.denominator) AS denominator, \
                  SUM(v.lines_not_converted) AS lines_not_converted \
                FROM v JOIN trusts t ON t.code = v.org_code \
                WHERE v.sector = 'hospital' AND t.icb_code IS NOT NULL GROUP BY t.icb_code, v.month), \
         eng AS (SELECT sector, month, SUM(numerator) AS numerator, SUM(denominator) AS denominator, \
                   SUM(lines_not_converted) AS lines_not_converted FROM v GROUP BY sector, month) \
         SELECT 'trust' AS level, org_code, 'hospital' AS sector, month, numerator, denominator, lines_not_converted \
           FROM v WHERE sector = 'hospital' \
         UNION ALL SELECT 'icb', org_code, 'primary_care', month, numerator, denominator, lines_not_converted FROM pc \
         UNION ALL SELECT 'icb', org_code, 'hospital', month, numerator, denominator, lines_not_converted FROM hs \
         UNION ALL SELECT 'icb', COALESCE(pc.org_code, hs.org_code), 'system', COALESCE(pc.month, hs.month), \
           COALESCE(pc.numerator, 0) + COALESCE(hs.numerator, 0), COALESCE(pc.denominator, 0) + COALESCE(hs.denominator, 0), \
           COALESCE(pc.lines_not_converted, 0) + COALESCE(hs.lines_not_converted, 0) \
           FROM pc FULL OUTER JOIN hs ON pc.org_code = hs.org_code AND pc.month = hs.month \
         UNION ALL SELECT 'national', '{ENGLAND}', sector, month, numerator, denominator, lines_not_converted FROM eng \
         UNION ALL SELECT 'national', '{ENGLAND}', 'system', month, SUM(numerator), SUM(denominator), SUM(lines_not_converted) \
           FROM eng GROUP BY month",
        base = m.sql()
    )
}

/// One stored row, as read back.
struct Row {
    level: String,
    org: String,
    sector: String,
    month: i32,
    numerator: f64,
    denominator: f64,
    lines_not_converted: i64,
}

/// Each month's fingerprint: the definitions, the shared tables' files and the month's own
/// prescribing and SCMD files (a file is rewritten under a new name when its data change).
fn fingerprints(manifest: &crate::Manifest) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    let mut shared = Sha256::new();
    for m in &CROSS_SECTOR_MEASURES {
        shared.update(levels_sql(m).as_bytes());
    }
    for table in SHARED_INPUTS {
        shared.update(table.as_bytes());
        for file in manifest.files(table) {
            shared.update(file.as_bytes());
        }
    }
    let months: std::collections::BTreeSet<&str> = manifest
        .partitions(crate::tables::PRESCRIBING_BY_QUANTITY)
        .into_iter()
        .chain(manifest.partitions("scmd"))
        .collect();
    months
        .into_iter()
        .map(|month| {
            let mut h = shared.clone();
            for table in [crate::tables::PRESCRIBING_BY_QUANTITY, "scmd"] {
                h.update(table.as_bytes());
                if let Some(file) = manifest.tables.get(table).and_then(|t| t.get(month)) {
                    h.update(file.as_bytes());
                }
            }
            (month.to_string(), h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect())
        })
        .collect()
}

impl Warehouse {
    /// Computes every cross-sector measure for the months of either sector whose inputs changed
    /// since they were last computed (every month when `all`), one `cross_sector_values`
    /// partition a month, in one commit; months no longer held are dropped. Needs dm+d (with its
    /// supplement for DDDs); without SCMD it still gives primary care's side. `progress` hears
    /// each measure as it starts on each group of months.
    pub async fn compute_cross_sector(
        &self,
        all: bool,
        mut progress: impl FnMut(&CrossSectorMeasure, &[String]),
    ) -> Result<CrossSectorReport, WarehouseError> {
        let manifest = self.manifest()?;
        let wanted = fingerprints(&manifest);
        let stored = manifest.tables.get(CROSS_SECTOR_VALUES);
        let stale: Vec<String> = wanted
            .iter()
            .filter(|(month, print)| {
                all || manifest.cross_sector_inputs.get(*month) != Some(*print)
                    || !stored.is_some_and(|t| t.contains_key(*month))
            })
            .map(|(month, _)| month.clone())
            .collect();
        let gone: Vec<String> =
            stored.into_iter().flat_map(|t| t.keys()).filter(|p| !wanted.contains_key(*p)).cloned().collect();
        let mut report = CrossSectorReport { months_up_to_date: wanted.len() - stale.len(), ..Default::default() };
        if stale.is_empty() && gone.is_empty() {
            return Ok(report);
        }
        // Each stored row under the month (days since 1970) it belongs to.
        let mut rows: BTreeMap<i32, Vec<(&'static str, Row)>> = BTreeMap::new();
        let mut tally: Vec<Tally> = CROSS_SECTOR_MEASURES.iter().map(|m| Tally::new(m.id)).collect();
        // `medicine_use` joins every prescribing row to dm+d. The lines any measure selects are
        // taken from it once and held in memory under the same name, so each measure's own query
        // (which selects a subset of them) reads the same rows as it would from the view.
        let selected = CROSS_SECTOR_MEASURES.iter().map(|m| format!("({})", m.denominator)).collect::<Vec<_>>();
        let selected = format!("SELECT * FROM medicine_use WHERE {}", selected.join(" OR "));
        // A few months at a time, each in a session that sees only those months: the lines held
        // for one national month are a few hundred megabytes, and sixty months' took 21.6 GB.
        for chunk in stale.chunks(MONTHS_AT_ONCE) {
            let ctx = self.session_for_months(chunk).await?;
            let held = ctx.sql(&selected).await?.cache().await?;
            ctx.deregister_table("medicine_use")?;
            ctx.register_table("medicine_use", held.into_view())?;
            for (m, tally) in CROSS_SECTOR_MEASURES.iter().zip(&mut tally) {
                progress(m, chunk);
                for b in ctx.sql(&levels_sql(m)).await?.collect().await? {
                    let (level, org, sector) = (
                        b.column(0).as_string::<i32>(),
                        b.column(1).as_string::<i32>(),
                        b.column(2).as_string::<i32>(),
                    );
                    let month = b.column(3).as_primitive::<Date32Type>();
                    let (num, den) =
                        (b.column(4).as_primitive::<Float64Type>(), b.column(5).as_primitive::<Float64Type>());
                    let lost = b.column(6).as_primitive::<Int64Type>();
                    for i in 0..b.num_rows() {
                        let row = Row {
                            level: level.value(i).to_string(),
                            org: org.value(i).to_string(),
                            sector: sector.value(i).to_string(),
                            month: month.value(i),
                            numerator: if num.is_null(i) { 0.0 } else { num.value(i) },
                            denominator: if den.is_null(i) { 0.0 } else { den.value(i) },
                            lines_not_converted: if lost.is_null(i) { 0 } else { lost.value(i) },
                        };
                        tally.add(&row);
                        rows.entry(row.month).or_default().push((m.id, row));
                    }
                }
            }
        }
        for tally in tally {
            let count = tally.finish();
            report.rows += count.rows;
            report.measures.push(count);
        }
        let mut txn = self.begin()?;
        let mut written = 0;
        for month in &stale {
            let days = month
                .parse::<YearMonth>()
                .map_err(|e| WarehouseError::Corrupt {
                    path: self.root().join("manifest.json").display().to_string(),
                    detail: format!("partition \"{month}\" is not a month ({e})"),
                })?
                .days_since_epoch();
            let rows = rows.remove(&days).unwrap_or_default();
            let text = |f: fn(&(&'static str, Row)) -> String| Col::Str(rows.iter().map(|r| Some(f(r))).collect());
            let cols = vec![
                text(|r| r.0.to_string()),
                text(|r| r.1.level.clone()),
                text(|r| r.1.org.clone()),
                text(|r| r.1.sector.clone()),
                Col::Date(rows.iter().map(|r| Some(r.1.month)).collect()),
                Col::F64(rows.iter().map(|r| r.1.numerator).collect()),
                Col::F64(rows.iter().map(|r| r.1.denominator).collect()),
                Col::I64(rows.iter().map(|r| r.1.lines_not_converted).collect()),
            ];
            written += txn.write_partition(CROSS_SECTOR_VALUES, month, cols)?;
        }
        for month in &gone {
            txn.unset(CROSS_SECTOR_VALUES, month);
        }
        txn.manifest.cross_sector_inputs = wanted;
        report.months_computed = stale;
        txn.commit(written, report.months_computed.clone())?;
        Ok(report)
    }

    /// The stored cross-sector values for the dashboard; empty when never computed.
    pub fn load_cross_sector(&self) -> Result<CrossSectorValues, WarehouseError> {
        let manifest = self.manifest()?;
        let mut out = CrossSectorValues::new();
        for b in crate::parquet_io::read_table(self.root(), &manifest, CROSS_SECTOR_VALUES)? {
            let s = |i: usize| b.column(i).as_string::<i32>();
            let (id, level, org, sector) = (s(0), s(1), s(2), s(3));
            let month = b.column(4).as_primitive::<Date32Type>();
            let (num, den) = (b.column(5).as_primitive::<Float64Type>(), b.column(6).as_primitive::<Float64Type>());
            let lost = b.column(7).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let (Some(level), Some(sector), Some(date)) = (
                    Level::parse(level.value(i)),
                    Sector::parse(sector.value(i)),
                    Date32Type::to_naive_date_opt(month.value(i)),
                ) else {
                    continue;
                };
                out.add(
                    id.value(i),
                    level,
                    org.value(i),
                    sector,
                    SectorPoint {
                        month: YearMonth::of_date(date),
                        numerator: num.value(i),
                        denominator: den.value(i),
                        lines_not_converted: lost.value(i).max(0) as u64,
                    },
                );
            }
        }
        Ok(out.finish())
    }
}
