//! Loads: each one writes new files, then commits the manifest (see [`crate::manifest`]).

use crate::manifest::{LoadRecord, Manifest};
use crate::membership;
use crate::parquet_io::{ParquetSink, read_table, write_parquet};
use crate::tables::{Col, PRESCRIBING, PRESCRIBING_BY_QUANTITY, batch, days, string_pairs, table_schema};
use crate::{Warehouse, WarehouseError, WarehouseLock};
use datafusion::arrow::array::{
    Array, AsArray, BooleanBuilder, Date32Array, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::datatypes::{Date32Type, Int32Type, SchemaRef};
use ipmo_domain::YearMonth;
use ipmo_ingest::Rejected;
use ipmo_ingest::bnf::{BnfFile, BnfReport, CodeChange, CodeMapper};
use ipmo_ingest::epd::{FileReport, PrescribingData, QuantityRow, Totals};
use ipmo_ingest::imd::{ImdReport, ImdRow, assign_quintiles};
use ipmo_ingest::list_sizes::{ListSize, ListSizeReport, ORAL_ANTIBACTERIAL_ITEM_2013};
use ipmo_ingest::orgs::{MembershipRow, OrgFile, OrgReport, PracticeDetails};
use ipmo_ingest::tariff::{TariffReport, TariffRow};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a committed load did.
#[derive(Debug)]
pub struct LoadOutcome {
    /// The load's id in the manifest.
    pub load_id: u64,
    /// One record per input file.
    pub records: Vec<LoadRecord>,
    /// Rows written to the main table of the load.
    pub rows_written: u64,
    /// Partitions replaced or added.
    pub partitions: Vec<String>,
}

/// A load in progress: holds the lock and the manifest that will be committed.
pub(crate) struct Txn<'a> {
    wh: &'a Warehouse,
    _lock: std::sync::Arc<WarehouseLock>,
    /// When the load began, for the log line of its commit.
    started: std::time::Instant,
    pub(crate) manifest: Manifest,
    pub(crate) load_id: u64,
    records: Vec<LoadRecord>,
}

/// The counts a reader reports for one file, in the shape the manifest wants.
pub(crate) struct FileCounts<'r> {
    pub(crate) kind: &'static str,
    pub(crate) path: &'r Path,
    pub(crate) layout: String,
    pub(crate) sha256: String,
    pub(crate) bytes: u64,
    pub(crate) rows_read: u64,
    pub(crate) rows_kept: u64,
    pub(crate) rejected: &'r [Rejected],
    pub(crate) partitions: Vec<String>,
}

impl Warehouse {
    pub(crate) fn begin(&self) -> Result<Txn<'_>, WarehouseError> {
        let lock = self.lock_for_writing()?;
        let manifest = Manifest::read(&self.root)?;
        let load_id = manifest.next_load_id.max(1);
        Ok(Txn { wh: self, _lock: lock, started: std::time::Instant::now(), manifest, load_id, records: Vec::new() })
    }

    /// Stores prescribing read by [`ipmo_ingest::epd::read_prescribing`]: each month in `data`
    /// replaces that month's partition, whatever it held before.
    pub fn load_prescribing(
        &self,
        data: &PrescribingData,
        files: &[(FileReport, PathBuf)],
        progress: &mut dyn FnMut(&str),
    ) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let schema = table_schema(PRESCRIBING).expect("schema");
        let mut total = 0u64;
        let months = data.months();
        for &month in &months {
            let part = month.to_string();
            let rel = txn.rel_path(PRESCRIBING, &part);
            let split_rel = (data.quantity_rows_in(month) > 0).then(|| txn.rel_path(PRESCRIBING_BY_QUANTITY, &part));
            // The sums and the split are separate files: each is written on its own thread.
            let root = &self.root;
            let (n, split) = std::thread::scope(|s| {
                let split = split_rel.as_ref().map(|rel| {
                    s.spawn(move || {
                        let schema = table_schema(PRESCRIBING_BY_QUANTITY).expect("schema");
                        write_in_batches(&root.join(rel), schema, QuantityColumns::new(month), |emit| {
                            data.for_each_quantity_sorted(month, emit)
                        })
                    })
                });
                let n = write_in_batches(&root.join(&rel), schema.clone(), PrescribingColumns::new(month), |emit| {
                    data.for_each_sorted(month, |p, b, u, t| emit((p, b, u, t)))
                });
                let split = split.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).transpose();
                (n, split)
            });
            let (n, split) = (n?, split?.unwrap_or(0));
            total += n;
            txn.set(PRESCRIBING, &part, rel);
            // A month loaded from files without the split (PDPI) drops any split it held, so the
            // two tables always describe the same load.
            match split_rel {
                Some(rel) => txn.set(PRESCRIBING_BY_QUANTITY, &part, rel),
                None => txn.unset(PRESCRIBING_BY_QUANTITY, &part),
            }
            progress(&format!("{month}: {n} practice × presentation rows written"));
            tracing::info!(target: "ipmo::ingest", month = %month, rows = n, split_rows = split, "month written");
            if split > 0 {
                progress(&format!("{month}: {split} practice × presentation × quantity-per-item rows written"));
            }
        }
        let held = txn.read_table("presentations_seen")?;
        let mut seen: BTreeMap<String, String> =
            string_pairs(&held).map(|(c, n)| (c.to_string(), n.to_string())).collect();
        for (code, name) in data.presentation_names() {
            if !name.is_empty() || !seen.contains_key(&code) {
                seen.insert(code, name);
            }
        }
        let (codes, names): (Vec<_>, Vec<_>) = seen.into_iter().map(|(c, n)| (Some(c), Some(n))).unzip();
        txn.write_whole_if_changed("presentations_seen", vec![Col::Str(codes), Col::Str(names)])?;
        txn.rebuild_bnf_map()?;
        for (r, path) in files {
            txn.record(FileCounts {
                kind: "epd",
                path,
                layout: r.layout.as_str().to_string(),
                sha256: r.sha256.clone(),
                bytes: r.bytes,
                rows_read: r.rows_read,
                rows_kept: r.rows_kept,
                rejected: &r.rejected,
                partitions: r.months.iter().map(YearMonth::to_string).collect(),
            })?;
        }
        txn.commit(total, months.iter().map(YearMonth::to_string).collect())
    }

    /// Stores organisation files: mapping snapshots (one per extract date, replacing the same
    /// date) and the ODS practice list (replacing the previous one); then rebuilds the dated
    /// membership, the organisation list and the practice list from everything held.
    pub fn load_orgs(&self, files: Vec<(OrgFile, OrgReport, PathBuf)>) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let mut written = 0;
        let mut partitions = Vec::new();
        for (file, report, path) in &files {
            let (layout, partition, rows_kept) = match file {
                OrgFile::Membership { extract_date, rows } => {
                    let part = extract_date.to_string();
                    let rel = txn.rel_path("org_map_snapshots", &part);
                    written += write_parquet(
                        &self.root.join(&rel),
                        table_schema("org_map_snapshots").expect("schema"),
                        [membership_batch(rows)],
                    )?;
                    txn.set("org_map_snapshots", &part, rel);
                    ("practice membership map", part, rows.len() as u64)
                }
                OrgFile::Epraccur(rows) => {
                    written += txn.write_whole("epraccur", epraccur_cols(rows))?;
                    ("ODS epraccur", "all".to_string(), rows.len() as u64)
                }
            };
            partitions.push(partition.clone());
            txn.record(FileCounts {
                kind: "orgs",
                path,
                layout: layout.to_string(),
                sha256: report.sha256.clone(),
                bytes: report.bytes,
                rows_read: report.rows_read,
                rows_kept,
                rejected: &report.rejected,
                partitions: vec![partition],
            })?;
        }
        txn.rebuild_org_tables()?;
        txn.commit(written, partitions)
    }

    /// Stores list sizes, one partition per month (a month's partition is replaced whole), with
    /// the 2013 oral-antibacterial STAR-PU computed per practice.
    pub fn load_list_sizes(
        &self,
        files: Vec<(Vec<ListSize>, ListSizeReport, PathBuf)>,
    ) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let mut by_month: BTreeMap<YearMonth, BTreeMap<String, &ListSize>> = BTreeMap::new();
        for (rows, report, path) in &files {
            let months: BTreeSet<String> = rows.iter().filter_map(|r| r.month.map(|m| m.to_string())).collect();
            for r in rows {
                if let Some(m) = r.month {
                    by_month.entry(m).or_default().insert(r.practice_code.clone(), r);
                }
            }
            txn.record(FileCounts {
                kind: "list-sizes",
                path,
                layout: "list sizes".into(),
                sha256: report.sha256.clone(),
                bytes: report.bytes,
                rows_read: report.rows_read,
                rows_kept: rows.len() as u64,
                rejected: &report.rejected,
                partitions: months.into_iter().collect(),
            })?;
        }
        let mut written = 0;
        let mut partitions = Vec::new();
        for (month, rows) in by_month {
            let rows: Vec<&ListSize> = rows.into_values().collect();
            let mut cols = vec![
                Col::Date(vec![Some(month.days_since_epoch()); rows.len()]),
                Col::Str(rows.iter().map(|r| Some(r.practice_code.clone())).collect()),
                Col::I64(rows.iter().map(|r| r.total).collect()),
            ];
            for b in 0..9 {
                cols.push(Col::I64(rows.iter().map(|r| r.male[b]).collect()));
            }
            for b in 0..9 {
                cols.push(Col::I64(rows.iter().map(|r| r.female[b]).collect()));
            }
            cols.push(Col::F64(rows.iter().map(|r| r.star_pu(&ORAL_ANTIBACTERIAL_ITEM_2013)).collect()));
            let rel = txn.rel_path("list_sizes", &month.to_string());
            written += write_parquet(
                &self.root.join(&rel),
                table_schema("list_sizes").expect("schema"),
                [batch("list_sizes", cols)],
            )?;
            txn.set("list_sizes", &month.to_string(), rel);
            partitions.push(month.to_string());
        }
        txn.commit(written, partitions)
    }

    /// Stores Drug Tariff Part VIII A months read by [`ipmo_ingest::tariff::read_tariff`]: each
    /// file's month replaces that month's `tariff` partition, so prices keep their history and
    /// can be looked up as at a prescribing month. Category M lists go to `tariff_cat_m` the same
    /// way, leaving the month's Part VIII A as it was.
    pub fn load_tariff(
        &self,
        files: Vec<(Vec<TariffRow>, TariffReport, PathBuf)>,
    ) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let mut by_month: BTreeMap<(&str, YearMonth), &Vec<TariffRow>> = BTreeMap::new();
        for (rows, report, path) in &files {
            let (table, what) =
                if report.category_m_list { ("tariff_cat_m", "Category M list") } else { ("tariff", "Drug Tariff") };
            if by_month.insert((table, report.month), rows).is_some() {
                return Err(WarehouseError::Ingest(ipmo_ingest::IngestError::format(
                    &path.display().to_string(),
                    format!(
                        "another file in this load also gives the {what} for {}; load one file per month",
                        report.month
                    ),
                )));
            }
            txn.record(FileCounts {
                kind: "tariff",
                path,
                layout: if report.category_m_list { "Drug Tariff Category M list" } else { "Drug Tariff Part VIII A" }
                    .into(),
                sha256: report.sha256.clone(),
                bytes: report.bytes,
                rows_read: report.rows_read,
                rows_kept: rows.len() as u64,
                rejected: &report.rejected,
                partitions: vec![report.month.to_string()],
            })?;
        }
        let mut written = 0;
        let mut partitions = Vec::new();
        for ((table, month), rows) in by_month {
            let text = |f: fn(&TariffRow) -> &str| Col::Str(rows.iter().map(|r| Some(f(r).to_string())).collect());
            let cols = vec![
                Col::Date(vec![Some(month.days_since_epoch()); rows.len()]),
                text(|r| &r.vmpp),
                Col::Str(rows.iter().map(|r| r.vmp.clone()).collect()),
                text(|r| &r.medicine),
                text(|r| &r.category),
                Col::I64(rows.iter().map(|r| r.price_pence).collect()),
                Col::F64(rows.iter().map(|r| r.pack_size).collect()),
                text(|r| &r.unit),
            ];
            written += txn.write_partition(table, &month.to_string(), cols)?;
            partitions.push(month.to_string());
        }
        txn.commit(written, partitions)
    }

    /// Stores BNF code lists (merged with what is held, newer names winning) and code-change
    /// lists, then rebuilds `bnf_map` (every known code → today's code).
    pub fn load_bnf(&self, files: Vec<(BnfFile, BnfReport, PathBuf)>) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let mut codes: BTreeMap<String, [(String, String); 7]> = BTreeMap::new();
        for b in txn.read_table("bnf")? {
            for i in 0..b.num_rows() {
                let get = |c: usize| b.column(c).as_string::<i32>().value(i).to_string();
                // Stored presentation-first; levels are chapter-first.
                let levels: [(String, String); 7] = std::array::from_fn(|l| (get(2 * (6 - l)), get(2 * (6 - l) + 1)));
                codes.insert(levels[6].0.clone(), levels);
            }
        }
        let mut changes = txn.read_changes()?;
        let (mut code_files, mut change_files) = (0, 0);
        for (file, report, path) in &files {
            let (layout, kept) = match file {
                BnfFile::Codes(rows) => {
                    code_files += 1;
                    for r in rows {
                        codes.insert(r.presentation_code().to_string(), r.levels.clone());
                    }
                    ("BNF code information", rows.len())
                }
                BnfFile::Changes(rows) => {
                    change_files += 1;
                    changes.extend(rows.iter().cloned());
                    ("BNF code changes", rows.len())
                }
            };
            txn.record(FileCounts {
                kind: "bnf",
                path,
                layout: layout.into(),
                sha256: report.sha256.clone(),
                bytes: report.bytes,
                rows_read: report.rows_read,
                rows_kept: kept as u64,
                rejected: &report.rejected,
                partitions: vec!["all".into()],
            })?;
        }
        let mut written = 0;
        if code_files > 0 {
            let mut cols: Vec<Vec<Option<String>>> = (0..14).map(|_| Vec::with_capacity(codes.len())).collect();
            for levels in codes.values() {
                for l in 0..7 {
                    cols[2 * (6 - l)].push(Some(levels[l].0.clone()));
                    cols[2 * (6 - l) + 1].push(Some(levels[l].1.clone()));
                }
            }
            written += txn.write_whole("bnf", cols.into_iter().map(Col::Str).collect())?;
        }
        if change_files > 0 {
            let mut seen = BTreeSet::new();
            changes.retain(|c| seen.insert((c.old_code.clone(), c.new_code.clone(), c.year)));
            written += txn.write_whole(
                "bnf_code_changes",
                vec![
                    Col::Str(changes.iter().map(|c| Some(c.old_code.clone())).collect()),
                    Col::Str(changes.iter().map(|c| c.new_code.clone()).collect()),
                    Col::I32(changes.iter().map(|c| c.year).collect()),
                ],
            )?;
        }
        txn.rebuild_bnf_map()?;
        txn.commit(written, vec!["all".into()])
    }

    /// Stores practice deprivation, replacing what was held; quintiles are recomputed over every
    /// practice in the files.
    pub fn load_imd(&self, files: Vec<(Vec<ImdRow>, ImdReport, PathBuf)>) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let mut merged: BTreeMap<String, ImdRow> = BTreeMap::new();
        for (rows, report, path) in &files {
            for r in rows {
                merged.insert(r.practice_code.clone(), r.clone());
            }
            txn.record(FileCounts {
                kind: "imd",
                path,
                layout: "practice IMD".into(),
                sha256: report.sha256.clone(),
                bytes: report.bytes,
                rows_read: report.rows_read,
                rows_kept: rows.len() as u64,
                rejected: &report.rejected,
                partitions: vec!["all".into()],
            })?;
        }
        let mut rows: Vec<ImdRow> = merged.into_values().collect();
        assign_quintiles(&mut rows);
        let written = txn.write_whole(
            "imd",
            vec![
                Col::Str(rows.iter().map(|r| Some(r.practice_code.clone())).collect()),
                Col::F64(rows.iter().map(|r| r.score).collect()),
                Col::I32(rows.iter().map(|r| Some(r.quintile)).collect()),
                Col::I32(rows.iter().map(|r| r.year).collect()),
            ],
        )?;
        txn.commit(written, vec!["all".into()])
    }
}

impl Txn<'_> {
    pub(crate) fn rel_path(&self, table: &str, partition: &str) -> String {
        format!("tables/{table}/{partition}.L{:06}.parquet", self.load_id)
    }

    pub(crate) fn set(&mut self, table: &str, partition: &str, rel: String) {
        self.manifest.tables.entry(table.to_string()).or_default().insert(partition.to_string(), rel);
    }

    /// The warehouse directory.
    pub(crate) fn root(&self) -> &Path {
        &self.wh.root
    }

    /// Writes one partition of a table under a fresh name and points the manifest at it.
    pub(crate) fn write_partition(
        &mut self,
        table: &str,
        partition: &str,
        cols: Vec<Col>,
    ) -> Result<u64, WarehouseError> {
        self.write_batch(table, partition, batch(table, cols))
    }

    /// Writes one partition's batch to a new file of this load and points the manifest at it.
    fn write_batch(&mut self, table: &str, partition: &str, batch: RecordBatch) -> Result<u64, WarehouseError> {
        let rel = self.rel_path(table, partition);
        let n = write_parquet(&self.wh.root.join(&rel), table_schema(table).expect("a known table"), [batch])?;
        self.set(table, partition, rel);
        Ok(n)
    }

    /// Takes a partition out of the manifest (its file is collected as garbage after the commit).
    pub(crate) fn unset(&mut self, table: &str, partition: &str) {
        if let Some(t) = self.manifest.tables.get_mut(table) {
            t.remove(partition);
        }
    }

    /// Writes an unpartitioned table.
    pub(crate) fn write_whole(&mut self, table: &str, cols: Vec<Col>) -> Result<u64, WarehouseError> {
        self.write_partition(table, "all", cols)
    }

    /// Writes an unpartitioned table unless it would hold exactly what it holds now: a load that
    /// changes nothing in a derived table (the BNF map, the presentations seen) then leaves its
    /// file, and every month's measures computed from that file stay up to date.
    pub(crate) fn write_whole_if_changed(&mut self, table: &str, cols: Vec<Col>) -> Result<u64, WarehouseError> {
        let new = batch(table, cols);
        let held = self.read_table(table)?;
        let same = match held.as_slice() {
            [] => false,
            batches => {
                let schema = batches[0].schema();
                datafusion::arrow::compute::concat_batches(&schema, batches).is_ok_and(|old| old == new)
            }
        };
        if same {
            return Ok(0);
        }
        self.write_batch(table, "all", new)
    }

    /// Every batch of a table as this load will leave it.
    pub(crate) fn read_table(&self, table: &str) -> Result<Vec<RecordBatch>, WarehouseError> {
        read_table(&self.wh.root, &self.manifest, table)
    }

    fn read_changes(&self) -> Result<Vec<CodeChange>, WarehouseError> {
        let mut out = Vec::new();
        for b in self.read_table("bnf_code_changes")? {
            let (old, new, year) = (
                b.column(0).as_string::<i32>(),
                b.column(1).as_string::<i32>(),
                b.column(2).as_primitive::<Int32Type>(),
            );
            for i in 0..b.num_rows() {
                out.push(CodeChange {
                    old_code: old.value(i).to_string(),
                    new_code: (!new.is_null(i)).then(|| new.value(i).to_string()),
                    year: (!year.is_null(i)).then(|| year.value(i)),
                });
            }
        }
        Ok(out)
    }

    /// `bnf_map` lists every code seen in prescribing or the BNF list whose current code differs.
    fn rebuild_bnf_map(&mut self) -> Result<(), WarehouseError> {
        let changes = self.read_changes()?;
        let mapper = CodeMapper::new(&changes);
        let mut codes = BTreeSet::new();
        for b in self.read_table("presentations_seen")? {
            let c = b.column(0).as_string::<i32>();
            codes.extend((0..b.num_rows()).map(|i| c.value(i).to_string()));
        }
        for b in self.read_table("bnf")? {
            let c = b.column(0).as_string::<i32>();
            codes.extend((0..b.num_rows()).map(|i| c.value(i).to_string()));
        }
        let (old, cur): (Vec<_>, Vec<_>) =
            codes.into_iter().filter_map(|c| mapper.current(&c).map(|n| (Some(c), Some(n)))).unzip();
        self.write_whole_if_changed("bnf_map", vec![Col::Str(old), Col::Str(cur)])?;
        Ok(())
    }

    fn rebuild_org_tables(&mut self) -> Result<(), WarehouseError> {
        let mut rows = Vec::new();
        for b in self.read_table("org_map_snapshots")? {
            rows.extend(membership_rows(&b));
        }
        let mut details = Vec::new();
        for b in self.read_table("epraccur")? {
            details.extend(epraccur_rows(&b));
        }
        let iv = membership::intervals(&rows);
        let opt_day = |d: Option<chrono::NaiveDate>| d.map(days);
        self.write_whole(
            "org_membership",
            vec![
                Col::Str(iv.iter().map(|r| Some(r.practice_code.clone())).collect()),
                Col::Str(iv.iter().map(|r| r.pcn_code.clone()).collect()),
                Col::Str(iv.iter().map(|r| Some(r.sicbl_code.clone())).collect()),
                Col::Str(iv.iter().map(|r| Some(r.icb_code.clone())).collect()),
                Col::Str(iv.iter().map(|r| Some(r.region_code.clone())).collect()),
                Col::Date(iv.iter().map(|r| opt_day(r.valid_from)).collect()),
                Col::Date(iv.iter().map(|r| opt_day(r.valid_to)).collect()),
                Col::Bool(iv.iter().map(|r| r.is_latest).collect()),
            ],
        )?;
        let orgs = membership::orgs(&rows, &details);
        self.write_whole(
            "orgs",
            vec![
                Col::Str(orgs.iter().map(|o| Some(o.code.clone())).collect()),
                Col::Str(orgs.iter().map(|o| Some(o.name.clone())).collect()),
                Col::Str(orgs.iter().map(|o| Some(o.org_type.to_string())).collect()),
                Col::Str(orgs.iter().map(|o| o.parent_code.clone()).collect()),
            ],
        )?;
        let ps = membership::practices(&rows, &details);
        self.write_whole(
            "practices",
            vec![
                Col::Str(ps.iter().map(|p| Some(p.practice_code.clone())).collect()),
                Col::Str(ps.iter().map(|p| Some(p.name.clone())).collect()),
                Col::Str(ps.iter().map(|p| Some(p.postcode.clone())).collect()),
                Col::Str(ps.iter().map(|p| p.status.clone()).collect()),
                Col::Str(ps.iter().map(|p| p.setting.clone()).collect()),
                Col::Bool(ps.iter().map(|p| p.is_gp_practice).collect()),
                Col::Date(ps.iter().map(|p| opt_day(p.open_date)).collect()),
                Col::Date(ps.iter().map(|p| opt_day(p.close_date)).collect()),
                Col::Date(ps.iter().map(|p| opt_day(p.first_extract_date)).collect()),
                Col::Date(ps.iter().map(|p| opt_day(p.last_extract_date)).collect()),
            ],
        )?;
        Ok(())
    }

    pub(crate) fn record(&mut self, c: FileCounts<'_>) -> Result<(), WarehouseError> {
        let file =
            c.path.file_name().map_or_else(|| c.path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let rejects_file = if c.rejected.is_empty() {
            None
        } else {
            let rel = format!("rejects/L{:06}-{}.rejects.csv", self.load_id, file);
            write_rejects(&self.wh.root.join(&rel), c.rejected)?;
            Some(rel)
        };
        self.records.push(LoadRecord {
            load_id: self.load_id,
            kind: c.kind.to_string(),
            path: c.path.display().to_string(),
            file,
            layout: c.layout,
            sha256: c.sha256,
            bytes: c.bytes,
            rows_read: c.rows_read,
            rows_kept: c.rows_kept,
            rows_rejected: c.rejected.len() as u64,
            rejects_file,
            partitions: c.partitions,
            loaded_at: String::new(),
        });
        Ok(())
    }

    pub(crate) fn commit(mut self, rows_written: u64, partitions: Vec<String>) -> Result<LoadOutcome, WarehouseError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for r in &mut self.records {
            r.loaded_at = now.clone();
        }
        self.manifest.next_load_id = self.load_id + 1;
        self.manifest.loads.extend(self.records.iter().cloned());
        self.manifest.commit(&self.wh.root)?;
        collect_garbage(&self.wh.root, &self.manifest);
        tracing::info!(
            target: "ipmo::warehouse",
            load_id = self.load_id,
            files = self.records.len(),
            rows = rows_written,
            partitions = partitions.len(),
            ms = self.started.elapsed().as_millis() as u64,
            "load committed"
        );
        Ok(LoadOutcome { load_id: self.load_id, records: self.records, rows_written, partitions })
    }
}

/// Deletes table files the manifest no longer lists: replaced partitions, and files left by a
/// load that failed or was killed. Failure to delete is harmless (the file is simply unused).
fn collect_garbage(root: &Path, manifest: &Manifest) {
    let live: BTreeSet<&str> = manifest.tables.values().flat_map(|t| t.values().map(String::as_str)).collect();
    let Ok(tables) = std::fs::read_dir(root.join("tables")) else { return };
    for dir in tables.flatten() {
        let Ok(files) = std::fs::read_dir(dir.path()) else { continue };
        for f in files.flatten() {
            let rel = format!("tables/{}/{}", dir.file_name().to_string_lossy(), f.file_name().to_string_lossy());
            if !live.contains(rel.as_str()) {
                let _ = std::fs::remove_file(f.path());
            }
        }
    }
}

fn write_rejects(path: &Path, rejected: &[Rejected]) -> Result<(), WarehouseError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| WarehouseError::io(dir, e))?;
    }
    let mut w = csv::WriterBuilder::new().flexible(true).from_path(path).map_err(|e| WarehouseError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let io = |e: csv::Error| WarehouseError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    };
    w.write_record(["line", "column", "problem", "row"]).map_err(io)?;
    for r in rejected {
        let mut rec = vec![r.error.line.to_string(), r.error.column.clone(), r.error.message.clone()];
        rec.extend(r.fields.iter().cloned());
        w.write_record(&rec).map_err(io)?;
    }
    w.flush().map_err(|e| WarehouseError::io(path, e))
}

/// Column builders for a month of a large table, filled and flushed a million rows at a time so
/// that a national month is never held as Arrow arrays all at once.
trait MonthColumns {
    /// One row as the accumulator hands it over.
    type Row<'a>;
    fn push(&mut self, row: Self::Row<'_>);
    fn len(&self) -> usize;
    /// The rows pushed since the last call, as a batch; the builders start again empty.
    fn finish(&mut self, schema: &SchemaRef) -> RecordBatch;
}

/// Writes the rows `visit` emits into a new Parquet file, a million at a time; returns the rows
/// written.
fn write_in_batches<C: MonthColumns>(
    path: &Path,
    schema: SchemaRef,
    mut cols: C,
    visit: impl FnOnce(&mut dyn for<'a> FnMut(C::Row<'a>)),
) -> Result<u64, WarehouseError> {
    let mut sink = ParquetSink::create(path, schema.clone())?;
    let mut failure = None;
    visit(&mut |row| {
        if failure.is_some() {
            return;
        }
        cols.push(row);
        if cols.len() >= 1 << 20
            && let Err(e) = sink.write(&cols.finish(&schema))
        {
            failure = Some(e);
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if cols.len() > 0 {
        sink.write(&cols.finish(&schema))?;
    }
    sink.finish()
}

struct PrescribingColumns {
    month: i32,
    len: usize,
    practice: StringBuilder,
    bnf: StringBuilder,
    items: Int64Builder,
    quantity: Float64Builder,
    nic: Int64Builder,
    cost: Int64Builder,
    adq: Float64Builder,
    unidentified: BooleanBuilder,
}

impl PrescribingColumns {
    fn new(month: YearMonth) -> Self {
        let n = 1 << 20;
        Self {
            month: month.days_since_epoch(),
            len: 0,
            practice: StringBuilder::with_capacity(n, n * 6),
            bnf: StringBuilder::with_capacity(n, n * 15),
            items: Int64Builder::with_capacity(n),
            quantity: Float64Builder::with_capacity(n),
            nic: Int64Builder::with_capacity(n),
            cost: Int64Builder::with_capacity(n),
            adq: Float64Builder::with_capacity(n),
            unidentified: BooleanBuilder::with_capacity(n),
        }
    }
}

impl MonthColumns for PrescribingColumns {
    type Row<'a> = (&'a str, &'a str, bool, &'a Totals);

    fn push(&mut self, (practice, bnf, unidentified, t): Self::Row<'_>) {
        self.practice.append_value(practice);
        self.bnf.append_value(bnf);
        self.items.append_value(t.items);
        self.quantity.append_value(t.quantity);
        self.nic.append_value(t.nic_pence);
        self.cost.append_value(t.actual_cost_e5);
        self.adq.append_value(t.adq_usage);
        self.unidentified.append_value(unidentified);
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn finish(&mut self, schema: &SchemaRef) -> RecordBatch {
        let n = self.len;
        self.len = 0;
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Date32Array::from(vec![self.month; n])),
                Arc::new(self.practice.finish()),
                Arc::new(self.bnf.finish()),
                Arc::new(self.items.finish()),
                Arc::new(self.quantity.finish()),
                Arc::new(self.nic.finish()),
                Arc::new(self.cost.finish()),
                Arc::new(self.adq.finish()),
                Arc::new(self.unidentified.finish()),
            ],
        )
        .expect("prescribing columns match the schema")
    }
}

/// Column builders for `prescribing_by_quantity`, filled a million rows at a time.
struct QuantityColumns {
    month: i32,
    len: usize,
    practice: StringBuilder,
    bnf: StringBuilder,
    snomed: StringBuilder,
    per_item: Float64Builder,
    items: Int64Builder,
}

impl QuantityColumns {
    fn new(month: YearMonth) -> Self {
        let n = 1 << 20;
        Self {
            month: month.days_since_epoch(),
            len: 0,
            practice: StringBuilder::with_capacity(n, n * 6),
            bnf: StringBuilder::with_capacity(n, n * 15),
            snomed: StringBuilder::with_capacity(n, n * 17),
            per_item: Float64Builder::with_capacity(n),
            items: Int64Builder::with_capacity(n),
        }
    }
}

impl MonthColumns for QuantityColumns {
    type Row<'a> = QuantityRow<'a>;

    fn push(&mut self, row: QuantityRow<'_>) {
        self.practice.append_value(row.practice_code);
        self.bnf.append_value(row.bnf_code);
        self.snomed.append_option(row.snomed_code);
        self.per_item.append_value(row.quantity_per_item);
        self.items.append_value(row.items);
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn finish(&mut self, schema: &SchemaRef) -> RecordBatch {
        let n = self.len;
        self.len = 0;
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Date32Array::from(vec![self.month; n])),
                Arc::new(self.practice.finish()),
                Arc::new(self.bnf.finish()),
                Arc::new(self.snomed.finish()),
                Arc::new(self.per_item.finish()),
                Arc::new(self.items.finish()),
            ],
        )
        .expect("quantity columns match the schema")
    }
}

fn membership_batch(rows: &[MembershipRow]) -> RecordBatch {
    let s = |f: fn(&MembershipRow) -> &str| Col::Str(rows.iter().map(|r| Some(f(r).to_string())).collect());
    batch(
        "org_map_snapshots",
        vec![
            Col::Date(rows.iter().map(|r| Some(days(r.extract_date))).collect()),
            s(|r| &r.practice_code),
            s(|r| &r.practice_name),
            s(|r| &r.postcode),
            Col::Str(rows.iter().map(|r| r.pcn_code.clone()).collect()),
            s(|r| &r.pcn_name),
            s(|r| &r.sicbl_code),
            s(|r| &r.sicbl_name),
            s(|r| &r.icb_code),
            s(|r| &r.icb_name),
            s(|r| &r.region_code),
            s(|r| &r.region_name),
        ],
    )
}

fn date_of(days_since_epoch: i32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid") + chrono::Duration::days(i64::from(days_since_epoch))
}

fn membership_rows(b: &RecordBatch) -> Vec<MembershipRow> {
    let d = b.column(0).as_primitive::<Date32Type>();
    let s = |c: usize, i: usize| b.column(c).as_string::<i32>().value(i).to_string();
    let pcn = b.column(4).as_string::<i32>();
    (0..b.num_rows())
        .map(|i| MembershipRow {
            extract_date: date_of(d.value(i)),
            practice_code: s(1, i),
            practice_name: s(2, i),
            postcode: s(3, i),
            pcn_code: (!pcn.is_null(i)).then(|| pcn.value(i).to_string()),
            pcn_name: s(5, i),
            sicbl_code: s(6, i),
            sicbl_name: s(7, i),
            icb_code: s(8, i),
            icb_name: s(9, i),
            region_code: s(10, i),
            region_name: s(11, i),
        })
        .collect()
}

fn epraccur_cols(rows: &[PracticeDetails]) -> Vec<Col> {
    let s = |f: fn(&PracticeDetails) -> &str| Col::Str(rows.iter().map(|r| Some(f(r).to_string())).collect());
    vec![
        s(|r| &r.code),
        s(|r| &r.name),
        s(|r| &r.postcode),
        s(|r| &r.status),
        s(|r| &r.setting),
        Col::Bool(rows.iter().map(|r| r.is_gp_practice).collect()),
        s(|r| &r.commissioner),
        Col::Date(rows.iter().map(|r| r.open_date.map(days)).collect()),
        Col::Date(rows.iter().map(|r| r.close_date.map(days)).collect()),
    ]
}

fn epraccur_rows(b: &RecordBatch) -> Vec<PracticeDetails> {
    let s = |c: usize, i: usize| b.column(c).as_string::<i32>().value(i).to_string();
    let gp = b.column(5).as_boolean();
    let date = |c: usize, i: usize| {
        let a = b.column(c).as_primitive::<Date32Type>();
        (!a.is_null(i)).then(|| date_of(a.value(i)))
    };
    (0..b.num_rows())
        .map(|i| PracticeDetails {
            code: s(0, i),
            name: s(1, i),
            postcode: s(2, i),
            status: s(3, i),
            setting: s(4, i),
            is_gp_practice: gp.value(i),
            commissioner: s(6, i),
            open_date: date(7, i),
            close_date: date(8, i),
        })
        .collect()
}

/// Writes `cols` as a file of `table` at `rel` under `root` (not yet in any manifest).
pub(crate) fn write_table_file(root: &Path, rel: &str, table: &str, cols: Vec<Col>) -> Result<u64, WarehouseError> {
    write_parquet(&root.join(rel), table_schema(table).expect("a known table"), [batch(table, cols)])
}
