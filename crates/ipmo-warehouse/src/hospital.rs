//! Hospital medicines: SCMD months and the NHS trusts that issue them, stored beside primary
//! care's prescribing so that one query can set a system's hospitals against its practices.

use crate::load::FileCounts;
use crate::tables::{Col, days};
use crate::{LoadOutcome, Warehouse, WarehouseError};
use ipmo_domain::YearMonth;
use ipmo_ingest::scmd::{ScmdReport, ScmdRow};
use ipmo_ingest::trusts::{Trust, TrustReport};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

impl Warehouse {
    /// Stores SCMD files, one `scmd` partition per month: each month in the files replaces that
    /// month whole, in one transaction, so a corrected month never sits beside its first version.
    /// Two files giving the same month are refused rather than one silently winning.
    pub fn load_scmd(&self, files: Vec<(Vec<ScmdRow>, ScmdReport, PathBuf)>) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let mut by_month: BTreeMap<YearMonth, (&PathBuf, Vec<&ScmdRow>)> = BTreeMap::new();
        for (rows, report, path) in &files {
            let months: BTreeSet<YearMonth> = rows.iter().map(|r| r.month).collect();
            for month in &months {
                if let Some((other, _)) = by_month.get(month)
                    && *other != path
                {
                    return Err(WarehouseError::Ingest(ipmo_ingest::IngestError::format(
                        &path.display().to_string(),
                        format!(
                            "{month} is also in {}; load each month from one file (a month's file replaces the month)",
                            other.display()
                        ),
                    )));
                }
                by_month.entry(*month).or_insert_with(|| (path, Vec::new()));
            }
            for r in rows {
                by_month.get_mut(&r.month).expect("month entered above").1.push(r);
            }
            txn.record(FileCounts {
                kind: "scmd",
                path,
                layout: report.layout.describe().to_string(),
                sha256: report.sha256.clone(),
                bytes: report.bytes,
                rows_read: report.rows_read,
                rows_kept: rows.len() as u64,
                rejected: &report.rejected,
                partitions: months.iter().map(ToString::to_string).collect(),
            })?;
        }
        let (mut written, mut partitions) = (0, Vec::new());
        for (month, (_, mut rows)) in by_month {
            rows.sort_by(|a, b| (&a.trust_code, &a.vmp_id).cmp(&(&b.trust_code, &b.vmp_id)));
            let text = |f: fn(&ScmdRow) -> &str| Col::Str(rows.iter().map(|r| Some(f(r).to_string())).collect());
            let optional = |f: fn(&ScmdRow) -> Option<&String>| Col::Str(rows.iter().map(|r| f(r).cloned()).collect());
            let cols = vec![
                Col::Date(vec![Some(month.days_since_epoch()); rows.len()]),
                text(|r| &r.trust_code),
                text(|r| &r.vmp_id),
                text(|r| &r.vmp_name),
                optional(|r| r.unit_id.as_ref()),
                optional(|r| r.unit_name.as_ref()),
                Col::F64(rows.iter().map(|r| r.quantity).collect()),
                Col::F64Opt(rows.iter().map(|r| r.indicative_cost).collect()),
                optional(|r| r.unit_dose_unit.as_ref()),
                Col::F64Opt(rows.iter().map(|r| r.unit_dose_quantity).collect()),
            ];
            written += txn.write_partition("scmd", &month.to_string(), cols)?;
            partitions.push(month.to_string());
        }
        txn.commit(written, partitions)
    }

    /// Replaces the trusts held with those in `files` (ODS `etr` is a full list each time). A
    /// code given twice keeps its last row.
    pub fn load_trusts(&self, files: Vec<(Vec<Trust>, TrustReport, PathBuf)>) -> Result<LoadOutcome, WarehouseError> {
        let mut txn = self.begin()?;
        let mut trusts: BTreeMap<&str, &Trust> = BTreeMap::new();
        for (rows, report, path) in &files {
            for t in rows {
                trusts.insert(&t.code, t);
            }
            txn.record(FileCounts {
                kind: "trusts",
                path,
                layout: "ODS NHS trusts (etr)".into(),
                sha256: report.sha256.clone(),
                bytes: report.bytes,
                rows_read: report.rows_read,
                rows_kept: rows.len() as u64,
                rejected: &report.rejected,
                partitions: vec!["all".into()],
            })?;
        }
        let rows: Vec<&Trust> = trusts.into_values().collect();
        let text = |f: fn(&Trust) -> Option<&String>| Col::Str(rows.iter().map(|t| f(t).cloned()).collect());
        let cols = vec![
            Col::Str(rows.iter().map(|t| Some(t.code.clone())).collect()),
            Col::Str(rows.iter().map(|t| Some(t.name.clone())).collect()),
            text(|t| t.icb_code.as_ref()),
            text(|t| t.region_code.as_ref()),
            text(|t| t.postcode.as_ref()),
            Col::Date(rows.iter().map(|t| t.open_date.map(days)).collect()),
            Col::Date(rows.iter().map(|t| t.close_date.map(days)).collect()),
        ];
        let written = txn.write_whole("trusts", cols)?;
        txn.commit(written, vec!["all".into()])
    }
}

impl Warehouse {
    /// Trusts and what SCMD holds for each, for the dashboard. Only the trust column of each
    /// SCMD month is read.
    pub fn load_hospitals(&self) -> Result<ipmo_release::hospitals::Hospitals, WarehouseError> {
        use datafusion::arrow::array::{Array, AsArray};
        use ipmo_release::hospitals::{Hospitals, Trust as ServedTrust, VmpMonth};
        let manifest = self.manifest()?;
        let mut out = Hospitals::default();
        for b in crate::parquet_io::read_table(self.root(), &manifest, "trusts")? {
            let (code, name, icb) =
                (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>(), b.column(2).as_string::<i32>());
            let close = b.column(6);
            for i in 0..b.num_rows() {
                out.add_trust(ServedTrust {
                    code: code.value(i).to_string(),
                    name: name.value(i).to_string(),
                    icb_code: (!icb.is_null(i)).then(|| icb.value(i).to_string()),
                    closed: !close.is_null(i),
                });
            }
        }
        let mut months: Vec<(YearMonth, String)> = manifest
            .tables
            .get("scmd")
            .into_iter()
            .flatten()
            .filter_map(|(part, rel)| Some((part.parse().ok()?, rel.clone())))
            .collect();
        months.sort();
        for (month, rel) in &months {
            let mut lines: rustc_hash::FxHashMap<String, u32> = Default::default();
            // (VMP, unit) → (name, quantity, lines), keyed by the batches' own text.
            let mut by_vmp: rustc_hash::FxHashMap<(&str, Option<&str>), (&str, f64, u32)> = Default::default();
            let columns = ["trust_code", "vmp_id", "vmp_name", "unit_name", "quantity"];
            let batches = crate::parquet_io::read_parquet_columns(&self.root().join(rel), &columns)?;
            for b in &batches {
                let code = b.column(0).as_string::<i32>();
                let (vmp, name, unit) =
                    (b.column(1).as_string::<i32>(), b.column(2).as_string::<i32>(), b.column(3).as_string::<i32>());
                let quantity = b.column(4).as_primitive::<datafusion::arrow::datatypes::Float64Type>();
                for i in 0..b.num_rows() {
                    match lines.get_mut(code.value(i)) {
                        Some(n) => *n += 1,
                        None => {
                            lines.insert(code.value(i).to_string(), 1);
                        }
                    }
                    let key = (vmp.value(i), (!unit.is_null(i)).then(|| unit.value(i)));
                    let e = by_vmp.entry(key).or_insert((name.value(i), 0.0, 0));
                    e.1 += quantity.value(i);
                    e.2 += 1;
                }
            }
            out.add_month(*month, &lines);
            let mut by_vmp: Vec<_> = by_vmp.into_iter().collect();
            by_vmp.sort_by(|a, b| a.0.cmp(&b.0));
            for ((vmp, unit), (name, quantity, trusts)) in by_vmp {
                let unit = unit.map(str::to_string);
                out.add_vmp_month(vmp, name, VmpMonth { month: *month, unit, quantity, trusts });
            }
        }
        self.link_presentations(&mut out, &manifest)?;
        Ok(out.finish())
    }

    /// Links each BNF presentation to the VMPs of its dm+d products (the BNF ↔ SNOMED mapping,
    /// a brand's AMP followed to its VMP), so a presentation's page can show hospital use.
    fn link_presentations(
        &self,
        out: &mut ipmo_release::hospitals::Hospitals,
        manifest: &crate::Manifest,
    ) -> Result<(), WarehouseError> {
        use datafusion::arrow::array::{Array, AsArray};
        let mut vmp_of_amp: rustc_hash::FxHashMap<String, String> = Default::default();
        for b in crate::parquet_io::read_table(self.root(), manifest, "dmd_amp")? {
            let (apid, vpid) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
            for i in 0..b.num_rows() {
                vmp_of_amp.insert(apid.value(i).to_string(), vpid.value(i).to_string());
            }
        }
        for b in crate::parquet_io::read_table(self.root(), manifest, "bnf_snomed")? {
            let (bnf, snomed, level) =
                (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>(), b.column(2).as_string::<i32>());
            for i in 0..b.num_rows() {
                if !level.is_null(i) && !matches!(level.value(i), "VMP" | "AMP") {
                    continue; // packs: their products are listed too
                }
                let id = snomed.value(i);
                out.link_presentation(bnf.value(i), vmp_of_amp.get(id).map_or(id, String::as_str));
            }
        }
        Ok(())
    }
}
