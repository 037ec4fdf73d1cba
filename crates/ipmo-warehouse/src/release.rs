//! Loading a [`Release`] (what the dashboard serves) from the warehouse: organisations, stored
//! measure values and deciles, read straight from their Parquet files, plus the prescribing
//! index. The web crate gets plain Rust and never sees DataFusion.

use crate::measure_store::Membership;
use crate::parquet_io::read_parquet;
use crate::tables::PRESCRIBING;
use crate::values::month_of;
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int32Type, Int64Type};
use ipmo_measures::Library;
use ipmo_measures::analysis::{ValueFields, ValuePoint};
use ipmo_release::{Org, Release, ReleaseBuilder};
use sha2::{Digest, Sha256};

impl Warehouse {
    /// Everything the dashboard shows, computed with `library`, with the custom `groups`. Builds or refreshes the
    /// prescribing index when `with_index` (the analyse page needs it); `progress` hears of each
    /// index month built.
    pub async fn load_release(
        &self,
        library: Library,
        groups: &[ipmo_measures::compute::GroupSet],
        with_index: bool,
        progress: &mut dyn FnMut(ipmo_domain::YearMonth, u64),
    ) -> Result<Release, WarehouseError> {
        let manifest = self.manifest()?;
        let manifest_bytes = std::fs::read(self.root().join("manifest.json")).unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(&manifest_bytes);
        hasher.update(library.hash().as_bytes());
        let id: String = hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
        let mut b = ReleaseBuilder::new(id, library);
        let loaded_at = manifest.loads.iter().filter(|l| l.kind == "epd").map(|l| l.loaded_at.clone()).max();
        let computed_at = manifest.computed.values().map(|c| c.computed_at.clone()).max();
        b.times(loaded_at, computed_at);
        // The value programme's tables are read on threads of their own while the measures are
        // read here: at national scale each is tens of millions of rows.
        let (ppu, concessions, changes, hospitals) = std::thread::scope(|s| {
            let ppu = s.spawn(|| self.load_ppu());
            let concessions = s.spawn(|| self.recent_price_costs("concession_costs"));
            let changes = s.spawn(|| self.recent_price_costs("price_change_costs"));
            let hospitals = s.spawn(|| Ok::<_, WarehouseError>((self.load_hospitals()?, self.load_cross_sector()?)));
            self.read_release_tables(&mut b, &manifest, groups)?;
            Ok::<_, WarehouseError>((joined(ppu)?, joined(concessions)?, joined(changes)?, joined(hospitals)?))
        })?;
        if with_index && !manifest.partitions(PRESCRIBING).is_empty() {
            let (index, _) = self.current_index(Membership::AsAt, progress).await?;
            b.index(index);
        }
        if let Some(ppu) = ppu {
            b.ppu(ppu);
        }
        if let Some(concessions) = concessions {
            b.concessions(concessions);
        }
        if let Some(changes) = changes {
            b.price_changes(changes);
        }
        b.hospitals(hospitals.0);
        b.cross_sector(hospitals.1);
        Ok(b.finish())
    }

    /// Organisations, groups, measure values and deciles, BNF names, practices' facts: every
    /// table the release reads apart from the index and the value programme's.
    fn read_release_tables(
        &self,
        b: &mut ReleaseBuilder,
        manifest: &crate::manifest::Manifest,
        groups: &[ipmo_measures::compute::GroupSet],
    ) -> Result<(), WarehouseError> {
        for rel in manifest.files("orgs") {
            for batch in read_parquet(&self.root().join(rel))? {
                let (code, name, t, parent) = (
                    batch.column(0).as_string::<i32>(),
                    batch.column(1).as_string::<i32>(),
                    batch.column(2).as_string::<i32>(),
                    batch.column(3).as_string::<i32>(),
                );
                for i in 0..batch.num_rows() {
                    let org_type = t.value(i);
                    if !ipmo_release::LEVELS.contains(&org_type) {
                        continue;
                    }
                    let parent = if org_type == "region" {
                        Some(ipmo_measures::compute::ENGLAND.to_string())
                    } else {
                        (!parent.is_null(i)).then(|| parent.value(i).to_string())
                    };
                    b.org(Org {
                        code: code.value(i).to_string(),
                        name: name.value(i).to_string(),
                        org_type: org_type.to_string(),
                        parent,
                    });
                }
            }
        }
        for set in groups {
            for g in &set.groups {
                b.group(&set.id, &g.code, &g.name, g.members.clone());
            }
        }
        for rel in manifest.files("measure_values") {
            for batch in read_parquet(&self.root().join(rel))? {
                let month = batch.column(0).as_primitive::<Date32Type>();
                let (measure, org_type, org) = (
                    batch.column(1).as_string::<i32>(),
                    batch.column(2).as_string::<i32>(),
                    batch.column(3).as_string::<i32>(),
                );
                let f = |c: usize| batch.column(c).as_primitive::<Float64Type>();
                let (num, den, value, pct, s50, s10) = (f(4), f(5), f(6), f(7), f(8), f(9));
                let opt = |a: &datafusion::arrow::array::Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
                let point = |i: usize| {
                    ValuePoint::from(ValueFields {
                        month: month_of(month.value(i)),
                        numerator: Some(num.value(i)),
                        denominator: Some(den.value(i)),
                        value: opt(value, i),
                        percentile: opt(pct, i),
                        saving_50: opt(s50, i),
                        saving_10: opt(s10, i),
                    })
                };
                // Rows come in runs of one measure and level: each run is looked up once.
                let mut i = 0;
                while i < batch.num_rows() {
                    let (m, t) = (measure.value(i), org_type.value(i));
                    let end = (i + 1..batch.num_rows())
                        .find(|&j| measure.value(j) != m || org_type.value(j) != t)
                        .unwrap_or(batch.num_rows());
                    let series = b.level_series(m, t);
                    for k in i..end {
                        series.push(org.value(k), point(k));
                    }
                    i = end;
                }
            }
        }
        for rel in manifest.files("measure_deciles") {
            for batch in read_parquet(&self.root().join(rel))? {
                let month = batch.column(0).as_primitive::<Date32Type>();
                let (measure, org_type) = (batch.column(1).as_string::<i32>(), batch.column(2).as_string::<i32>());
                let pct = batch.column(3).as_primitive::<Int32Type>();
                let value = batch.column(4).as_primitive::<Float64Type>();
                for i in 0..batch.num_rows() {
                    let Ok(p) = u8::try_from(pct.value(i)) else { continue };
                    b.decile(measure.value(i), org_type.value(i), month_of(month.value(i)), p, value.value(i));
                }
            }
        }
        // BNF names at every level (the bnf table holds each presentation with its parents), then
        // names seen in prescribing for codes the BNF files lack.
        for rel in manifest.files("bnf") {
            for batch in read_parquet(&self.root().join(rel))? {
                for pair in 0..batch.num_columns() / 2 {
                    let (code, name) =
                        (batch.column(2 * pair).as_string::<i32>(), batch.column(2 * pair + 1).as_string::<i32>());
                    for i in 0..batch.num_rows() {
                        b.bnf(code.value(i), name.value(i));
                    }
                }
            }
        }
        for rel in manifest.files("presentations_seen") {
            for batch in read_parquet(&self.root().join(rel))? {
                let (code, name) = (batch.column(0).as_string::<i32>(), batch.column(1).as_string::<i32>());
                for i in 0..batch.num_rows() {
                    b.bnf(code.value(i), name.value(i));
                }
            }
        }
        for rel in manifest.files("measure_codes") {
            for batch in read_parquet(&self.root().join(rel))? {
                let (measure, side, code) = (
                    batch.column(0).as_string::<i32>(),
                    batch.column(1).as_string::<i32>(),
                    batch.column(2).as_string::<i32>(),
                );
                let name = batch.column(3).as_string::<i32>();
                // Absent from a store written before the column existed.
                let items =
                    batch.column_by_name("latest_month_items").and_then(|c| c.as_primitive_opt::<Int64Type>().cloned());
                for i in 0..batch.num_rows() {
                    if side.value(i) == "numerator" {
                        b.numerator_code(measure.value(i), code.value(i));
                    }
                    b.counted_presentation(
                        measure.value(i),
                        ipmo_release::CountedPresentation {
                            side: side.value(i).to_string(),
                            code: code.value(i).to_string(),
                            name: name.value(i).to_string(),
                            latest_items: items.as_ref().filter(|c| !c.is_null(i)).map_or(0, |c| c.value(i)),
                        },
                    );
                }
            }
        }
        // Practice postcodes, and list sizes of the latest month loaded.
        for rel in manifest.files("practices") {
            for batch in read_parquet(&self.root().join(rel))? {
                let (code, postcode) = (batch.column(0).as_string::<i32>(), batch.column(2).as_string::<i32>());
                for i in 0..batch.num_rows() {
                    b.practice_postcode(code.value(i), postcode.value(i));
                }
            }
        }
        if let Some(rel) = manifest.files("list_sizes").last() {
            for batch in read_parquet(&self.root().join(rel))? {
                let month = batch.column(0).as_primitive::<Date32Type>();
                let code = batch.column(1).as_string::<i32>();
                let total = batch.column(2).as_primitive::<Int64Type>();
                for i in 0..batch.num_rows() {
                    b.list_size(code.value(i), month_of(month.value(i)), total.value(i) as f64);
                }
            }
        }
        // IMD quintiles and scores; where a practice has several years, the latest wins.
        let mut imd: std::collections::BTreeMap<String, (i32, u8, f64)> = std::collections::BTreeMap::new();
        for rel in manifest.files("imd") {
            for batch in read_parquet(&self.root().join(rel))? {
                let code = batch.column(0).as_string::<i32>();
                let score = batch.column(1).as_primitive::<Float64Type>();
                let quintile = batch.column(2).as_primitive::<Int32Type>();
                let year = batch.column(3).as_primitive::<Int32Type>();
                for i in 0..batch.num_rows() {
                    let y = if year.is_null(i) { i32::MIN } else { year.value(i) };
                    let Ok(q) = u8::try_from(quintile.value(i)) else { continue };
                    let e = imd.entry(code.value(i).to_string()).or_insert((y, q, score.value(i)));
                    if y >= e.0 {
                        *e = (y, q, score.value(i));
                    }
                }
            }
        }
        for (code, (_, q, score)) in imd {
            b.imd(&code, q);
            b.imd_score(&code, score);
        }
        Ok(())
    }
}

/// A scoped thread's result; a panic on it is carried on to this thread.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
