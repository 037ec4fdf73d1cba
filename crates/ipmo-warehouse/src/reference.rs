//! Loads of the medicines reference data: dm+d releases, whose tables each release replaces
//! whole, and price concessions, matched to dm+d packs as they are stored.

use crate::load::{FileCounts, LoadOutcome};
use crate::manifest::ReleaseRecord;
use crate::tables::Col;
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Date32Type, Float64Type};
use ipmo_domain::YearMonth;
use ipmo_ingest::bnf_snomed::{BnfSnomed, BnfSnomedReport};
use ipmo_ingest::concessions::{Concession, ConcessionReport, pack_quantity};
use ipmo_ingest::dmd::{CORE_FILES, DmdRelease, DmdTable, HISTORY_TABLE, Values};
use ipmo_ingest::{Rejected, RowError};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

impl Warehouse {
    /// Stores a dm+d release: its core files replace every core `dmd_*` table at once, a
    /// supplement replaces `dmd_bnf`. A release older than the one held is refused unless `force`;
    /// ids that changed are kept in `dmd_id_history` across releases, so an old id stays findable.
    pub fn load_dmd(&self, release: &DmdRelease, source: &Path, force: bool) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let date = release.date.map(|d| d.to_string()).unwrap_or_default();
        let has_core = release.has_core();
        let has_supplement = release.table("dmd_bnf").is_some();
        let held = [
            (has_core, &txn.manifest.dmd_release, "release"),
            (has_supplement, &txn.manifest.dmd_supplement, "supplement"),
        ];
        for (present, record, what) in held {
            if let (true, Some(r)) = (present, record)
                && !force
                && !date.is_empty()
                && r.date > date
            {
                return Err(WarehouseError::Ingest(ipmo_ingest::IngestError::format(
                    &source.display().to_string(),
                    format!(
                        "this dm+d {what} is dated {date}, older than the {} one held (load {}); pass --force to load it anyway",
                        r.date, r.load_id
                    ),
                )));
            }
        }
        let mut written = 0;
        let mut partitions = Vec::new();
        for table in &release.tables {
            let rows = if table.name == HISTORY_TABLE {
                let merged = merge_history(table, &txn.read_table(HISTORY_TABLE)?);
                txn.write_whole(HISTORY_TABLE, merged)?
            } else {
                txn.write_whole(table.name, columns(table))?
            };
            written += rows;
            partitions.push(table.name.to_string());
        }
        for f in &release.files {
            txn.record(FileCounts {
                kind: "dmd",
                path: Path::new(&f.name),
                layout: format!("dm+d f_{}", f.kind),
                sha256: f.sha256.clone(),
                bytes: f.bytes,
                rows_read: f.records,
                rows_kept: f.records,
                rejected: &[],
                partitions: vec![date.clone()],
            })?;
        }
        let record = ReleaseRecord { date: date.clone(), version: release.version.clone(), load_id: txn.load_id };
        if has_core {
            txn.manifest.dmd_release = Some(record.clone());
        }
        if has_supplement {
            txn.manifest.dmd_supplement = Some(record);
        }
        debug_assert!(!has_core || CORE_FILES.iter().all(|k| release.files.iter().any(|f| f.kind == *k)));
        txn.commit(written, partitions)
    }
}

fn columns(table: &DmdTable) -> Vec<Col> {
    table
        .columns
        .iter()
        .map(|(_, v)| match v {
            Values::Text(x) => Col::Str(x.clone()),
            Values::Int(x) => Col::I64Opt(x.clone()),
            Values::Decimal(x) => Col::F64Opt(x.clone()),
            Values::Date(x) => Col::Date(x.clone()),
            Values::Flag(x) => Col::Bool(x.clone()),
        })
        .collect()
}

/// The new release's id changes plus every one held before that it does not restate (for an old
/// id both know, the new release's word on where it went wins).
fn merge_history(new: &DmdTable, held: &[datafusion::arrow::array::RecordBatch]) -> Vec<Col> {
    let mut rows: BTreeMap<(String, String), (String, Option<i32>)> = BTreeMap::new();
    let text = |name: &str, i: usize| new.column(name).and_then(|c| c.text(i)).unwrap_or_default().to_string();
    let Some(Values::Date(dates)) = new.column("changed_on") else { unreachable!("history has dates") };
    for (i, date) in dates.iter().enumerate() {
        rows.insert((text("kind", i), text("old_id", i)), (text("new_id", i), *date));
    }
    for b in held {
        let (kinds, olds, news) =
            (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>(), b.column(2).as_string::<i32>());
        let dates = b.column(3).as_primitive::<Date32Type>();
        for i in 0..b.num_rows() {
            let date = (!dates.is_null(i)).then(|| dates.value(i));
            rows.entry((kinds.value(i).to_string(), olds.value(i).to_string()))
                .or_insert_with(|| (news.value(i).to_string(), date));
        }
    }
    vec![
        Col::Str(rows.keys().map(|k| Some(k.0.clone())).collect()),
        Col::Str(rows.keys().map(|k| Some(k.1.clone())).collect()),
        Col::Str(rows.values().map(|v| Some(v.0.clone())).collect()),
        Col::Date(rows.values().map(|v| v.1).collect()),
    ]
}

impl Warehouse {
    /// Stores the BNF ↔ SNOMED mapping, replacing the one held (NHSBSA publishes it whole); rows
    /// from several files are merged, a (BNF code, SNOMED id) pair kept once.
    pub fn load_bnf_snomed(
        &self,
        files: Vec<(Vec<BnfSnomed>, BnfSnomedReport, PathBuf)>,
    ) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let mut rows: BTreeMap<(String, String), &BnfSnomed> = BTreeMap::new();
        for (mapping, report, path) in &files {
            for m in mapping {
                rows.entry((m.bnf_code.clone(), m.snomed_code.clone())).or_insert(m);
            }
            txn.record(FileCounts {
                kind: "bnf-snomed",
                path,
                layout: format!("BNF SNOMED mapping ({})", report.layout),
                sha256: report.sha256.clone(),
                bytes: report.bytes,
                rows_read: report.rows_read,
                rows_kept: mapping.len() as u64,
                rejected: &report.rejected,
                partitions: vec!["all".into()],
            })?;
        }
        let cols = vec![
            Col::Str(rows.keys().map(|k| Some(k.0.clone())).collect()),
            Col::Str(rows.keys().map(|k| Some(k.1.clone())).collect()),
            Col::Str(rows.values().map(|m| m.level.clone()).collect()),
            Col::Str(rows.values().map(|m| m.name.clone()).collect()),
        ];
        let written = txn.write_whole("bnf_snomed", cols)?;
        txn.commit(written, vec!["all".into()])
    }
}

/// The packs a concession line could mean, by name and pack size.
#[derive(Default)]
struct PackIndex {
    /// Normalised name → (pack quantity, VMPP id).
    by_name: FxHashMap<String, Vec<(f64, String)>>,
}

fn normalised_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

impl PackIndex {
    fn add(&mut self, name: &str, quantity: f64, vmpp: &str) {
        let packs = self.by_name.entry(normalised_name(name)).or_default();
        if !packs.iter().any(|(q, v)| *q == quantity && v == vmpp) {
            packs.push((quantity, vmpp.to_string()));
        }
    }

    /// The one VMPP a line names, or why there is not exactly one.
    fn find(&self, drug: &str, pack_size: &str) -> Result<String, String> {
        let Some(quantity) = pack_quantity(pack_size) else {
            return Err(format!("pack size \"{pack_size}\" has no number to match a pack's quantity"));
        };
        let Some(packs) = self.by_name.get(&normalised_name(drug)) else {
            return Err(format!("no dm+d product or Drug Tariff medicine is named \"{drug}\""));
        };
        let mut ids: Vec<&str> = packs.iter().filter(|(q, _)| *q == quantity).map(|(_, v)| v.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        match ids.as_slice() {
            [one] => Ok(one.to_string()),
            [] => {
                let mut sizes: Vec<String> = packs.iter().map(|(q, _)| q.to_string()).collect();
                sizes.sort();
                sizes.dedup();
                Err(format!("\"{drug}\" has no pack of {pack_size} (packs held: {})", sizes.join(", ")))
            }
            many => {
                Err(format!("\"{drug}\" {pack_size} matches {} packs ({}); not guessed", many.len(), many.join(", ")))
            }
        }
    }
}

impl Warehouse {
    /// Stores price concessions, each month replacing that month's. Every line is matched to one
    /// VMPP by name and pack size, against the dm+d packs and the Drug Tariff's medicines held;
    /// a line that matches no pack or several is not stored but listed in the rejects file with
    /// the reason, never guessed.
    pub fn load_concessions(
        &self,
        files: Vec<(Vec<Concession>, ConcessionReport, PathBuf)>,
    ) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let index = pack_index(&txn)?;
        if index.by_name.is_empty() {
            let path = files.first().map(|f| f.2.display().to_string()).unwrap_or_default();
            return Err(WarehouseError::Ingest(ipmo_ingest::IngestError::format(
                &path,
                "concessions are matched to packs through dm+d or the Drug Tariff, and the warehouse holds neither; \
                 load them first (`ipmo ingest dmd RELEASE`, `ipmo ingest tariff FILE…`)",
            )));
        }
        let mut by_month: BTreeMap<YearMonth, Vec<(String, &Concession)>> = BTreeMap::new();
        let mut claimed: BTreeMap<(YearMonth, String), String> = BTreeMap::new();
        for (lines, report, path) in &files {
            let mut unmatched = report.rejected.clone();
            let mut months = BTreeSet::new();
            let mut matched = 0u64;
            for line in lines {
                months.insert(line.month.to_string());
                let found = index.find(&line.drug, &line.pack_size).and_then(|vmpp| {
                    let first = claimed.entry((line.month, vmpp.clone())).or_insert_with(|| line.source_line.clone());
                    if *first == line.source_line {
                        Ok(vmpp)
                    } else {
                        Err(format!("pack {vmpp} already has a concession in {} ({first})", line.month))
                    }
                });
                match found {
                    Ok(vmpp) => {
                        matched += 1;
                        by_month.entry(line.month).or_default().push((vmpp, line));
                    }
                    Err(why) => unmatched.push(Rejected {
                        error: RowError {
                            file: line
                                .source_line
                                .rsplit_once(" line ")
                                .map_or(line.source_line.clone(), |(f, _)| f.to_string()),
                            line: line.source_line.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0),
                            column: "drug".into(),
                            message: why,
                        },
                        fields: vec![
                            line.month.to_string(),
                            line.drug.clone(),
                            line.pack_size.clone(),
                            line.price_pence.to_string(),
                        ],
                    }),
                }
            }
            txn.record(FileCounts {
                kind: "concessions",
                path,
                layout: format!("price concessions ({})", report.layout),
                sha256: report.sha256.clone(),
                bytes: report.bytes,
                rows_read: report.rows_read,
                rows_kept: matched,
                rejected: &unmatched,
                partitions: months.into_iter().collect(),
            })?;
        }
        let mut written = 0;
        let mut partitions = Vec::new();
        for (month, rows) in by_month {
            let text =
                |f: &dyn Fn(&(String, &Concession)) -> String| Col::Str(rows.iter().map(|r| Some(f(r))).collect());
            let cols = vec![
                Col::Date(vec![Some(month.days_since_epoch()); rows.len()]),
                text(&|r| r.0.clone()),
                text(&|r| r.1.drug.clone()),
                text(&|r| r.1.pack_size.clone()),
                Col::I64(rows.iter().map(|r| r.1.price_pence).collect()),
                text(&|r| r.1.source_line.clone()),
            ];
            written += txn.write_partition("concessions", &month.to_string(), cols)?;
            partitions.push(month.to_string());
        }
        txn.commit(written, partitions)
    }
}

/// Every pack held, by name: dm+d VMPPs under their VMP's name, and the Tariff's medicines.
fn pack_index(txn: &crate::load::Txn<'_>) -> Result<PackIndex, WarehouseError> {
    let mut index = PackIndex::default();
    let mut vmp_names: FxHashMap<String, String> = FxHashMap::default();
    for b in txn.read_table("dmd_vmp")? {
        let (ids, names) = (text_column(&b, "vpid"), text_column(&b, "name"));
        vmp_names.extend(ids.into_iter().zip(names));
    }
    for b in txn.read_table("dmd_vmpp")? {
        let (vppids, vpids) = (text_column(&b, "vppid"), text_column(&b, "vpid"));
        let quantity = b.column_by_name("quantity").expect("dmd_vmpp.quantity").as_primitive::<Float64Type>();
        for (i, (vmpp, vpid)) in vppids.iter().zip(&vpids).enumerate() {
            if let (Some(name), false) = (vmp_names.get(vpid), quantity.is_null(i)) {
                index.add(name, quantity.value(i), vmpp);
            }
        }
    }
    for b in txn.read_table("tariff")? {
        let (vmpps, names) = (text_column(&b, "vmpp"), text_column(&b, "medicine"));
        let quantity = b.column_by_name("pack_size").expect("tariff.pack_size").as_primitive::<Float64Type>();
        for (i, (name, vmpp)) in names.iter().zip(&vmpps).enumerate() {
            index.add(name, quantity.value(i), vmpp);
        }
    }
    Ok(index)
}

fn text_column(b: &datafusion::arrow::array::RecordBatch, name: &str) -> Vec<String> {
    let a = b.column_by_name(name).unwrap_or_else(|| panic!("column {name}")).as_string::<i32>();
    (0..a.len()).map(|i| if a.is_null(i) { String::new() } else { a.value(i).to_string() }).collect()
}
