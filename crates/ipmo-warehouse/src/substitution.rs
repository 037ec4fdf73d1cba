//! The facts `ipmo_value::substitution` builds its sets from, read from the loaded dm+d release
//! and NHSBSA's BNF ↔ SNOMED mapping: each generic (VMP) with its prescribing status,
//! availability, preservative-free flag, route, form-route, unit dose and ingredient strengths
//! (by the basis-of-strength substance where dm+d names one), and each brand (AMP) with its
//! availability, both under their current BNF codes (through the same links as
//! [`Warehouse::presentations`]: old codes moved on, replaced dm+d ids followed).

use crate::parquet_io::read_table;
use crate::presentations::{Columns, corrupt, names_by_id};
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, AsArray};
use ipmo_value::substitution::{Brand, Generic, Strength};
use rustc_hash::FxHashMap;

/// dm+d's prescribing status "valid as a prescribable product" (lookup code 0001).
const PRESCRIBABLE: &str = "Valid as a prescribable product";
/// dm+d's availability restriction "None" (lookup code 0001): the AMP is available.
const UNRESTRICTED: &str = "None";

impl Warehouse {
    /// Every generic and brand of the loaded dm+d release, as the substitution rules read them;
    /// empty when no release is loaded.
    pub fn substitution_inputs(&self) -> Result<(Vec<Generic>, Vec<Brand>), WarehouseError> {
        let manifest = self.manifest()?;
        if manifest.dmd_release.is_none() {
            return Ok((Vec::new(), Vec::new()));
        }
        let read = |t: &str| read_table(self.root(), &manifest, t);
        let current = self.bnf_current_codes()?;
        // Each product's current BNF code (the smallest, should the mapping give two: the links
        // come sorted by code).
        let mut bnf: FxHashMap<String, String> = FxHashMap::default();
        for (code, id) in self.bnf_product_links(&current)? {
            bnf.entry(id).or_insert(code);
        }
        let code_of = |id: &str| bnf.get(id).cloned().unwrap_or_default();
        let substance = names_by_id(&read("dmd_ingredient")?, "isid")?;
        let mut strengths: FxHashMap<String, Vec<Strength>> = FxHashMap::default();
        for b in read("dmd_vmp_ingredient")? {
            let c = Columns { batch: &b };
            let (vpid, isid, basis) = (c.text("vpid")?, c.text("isid")?, c.text("basis_substance_id")?);
            let (num, num_unit) = (c.number("strength_numerator")?, c.text("strength_numerator_unit")?);
            let (den, den_unit) = (c.number("strength_denominator")?, c.text("strength_denominator_unit")?);
            for i in 0..b.num_rows() {
                let Some(vpid) = vpid(i) else { continue };
                let id = basis(i).or(isid(i)).unwrap_or_default();
                strengths.entry(vpid.to_string()).or_default().push(Strength {
                    substance: substance.get(id).cloned().unwrap_or_else(|| id.to_string()),
                    numerator: num(i).map(|v| (v, num_unit(i).unwrap_or_default().to_string())),
                    denominator: den(i).map(|v| (v, den_unit(i).unwrap_or_default().to_string())),
                });
            }
        }
        let mut generics = Vec::new();
        for b in read("dmd_vmp")? {
            let c = Columns { batch: &b };
            let (vpid, name, status) = (c.text("vpid")?, c.text("name")?, c.text("prescribing_status")?);
            let (non_avail, route, form_route) = (c.text("non_availability")?, c.text("route")?, c.text("form_route")?);
            let (udfs, udfs_unit) = (c.number("unit_dose_form_size")?, c.text("unit_dose_form_units")?);
            let pf = c
                .column("preservative_free")?
                .as_boolean_opt()
                .ok_or_else(|| corrupt("preservative_free", "a flag"))?;
            for i in 0..b.num_rows() {
                let Some(id) = vpid(i) else { continue };
                let first = |s: Option<&str>| s.unwrap_or_default().split("; ").next().unwrap_or_default().to_string();
                generics.push(Generic {
                    id: id.to_string(),
                    bnf_code: code_of(id),
                    name: name(i).unwrap_or_default().to_string(),
                    available: !non_avail(i).is_some_and(|n| n.to_lowercase().contains("not available")),
                    prescribable: status(i).is_some_and(|s| s.eq_ignore_ascii_case(PRESCRIBABLE)),
                    preservative_free: !pf.is_null(i) && pf.value(i),
                    route: first(route(i)).to_lowercase(),
                    form_route: first(form_route(i)),
                    unit_dose: udfs(i).map(|v| (v, udfs_unit(i).unwrap_or_default().to_string())),
                    ingredients: strengths.remove(id).unwrap_or_default(),
                });
            }
        }
        let mut brands = Vec::new();
        for b in read("dmd_amp")? {
            let c = Columns { batch: &b };
            let (apid, vpid, name, restriction) =
                (c.text("apid")?, c.text("vpid")?, c.text("name")?, c.text("availability_restriction")?);
            for i in 0..b.num_rows() {
                let Some(id) = apid(i) else { continue };
                brands.push(Brand {
                    id: id.to_string(),
                    generic_id: vpid(i).unwrap_or_default().to_string(),
                    bnf_code: code_of(id),
                    name: name(i).unwrap_or_default().to_string(),
                    available: restriction(i).is_none_or(|r| r.eq_ignore_ascii_case(UNRESTRICTED)),
                });
            }
        }
        generics.sort_by(|a, b| a.id.cmp(&b.id));
        brands.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((generics, brands))
    }
}
