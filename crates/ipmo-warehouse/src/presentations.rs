//! Presentations as the measures engine sees them: each current BNF code with its name and the
//! dm+d products behind it, so a definition can select by what a medicine is.
//!
//! A code's products come from NHSBSA's BNF ↔ SNOMED mapping (`bnf_snomed`), with old dm+d ids
//! followed to today's. (dm+d's own BNF supplement names BNF sections, not presentations, so it
//! gives ATC codes and DDDs here, not links.) A branded code with no
//! product of its own borrows the products of its generic equivalent (the same chemical and
//! strength, `AA` in place of the brand), as OpenPrescribing joins prescribing to dm+d. The tables
//! are read straight from Parquet and joined here: a full release is some 25,000 VMPs and
//! 150,000 AMPs, which hash maps hold in well under a second.

use crate::parquet_io::read_table;
use crate::tables::string_pairs;
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Float64Type;
use ipmo_measures::{Ingredient, Presentation, Product};
use rustc_hash::FxHashMap;

/// Reads one column of a stored table by name, so a reordered schema cannot shift values.
pub(crate) struct Columns<'a> {
    pub(crate) batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    pub(crate) fn text(&self, name: &str) -> Result<impl Fn(usize) -> Option<&'a str> + 'a, WarehouseError> {
        let col = self.column(name)?.as_string_opt::<i32>().ok_or_else(|| corrupt(name, "text"))?;
        Ok(move |i: usize| (!col.is_null(i)).then(|| col.value(i)))
    }

    pub(crate) fn number(&self, name: &str) -> Result<impl Fn(usize) -> Option<f64> + 'a, WarehouseError> {
        let col = self.column(name)?.as_primitive_opt::<Float64Type>().ok_or_else(|| corrupt(name, "a number"))?;
        Ok(move |i: usize| (!col.is_null(i)).then(|| col.value(i)))
    }

    pub(crate) fn integer(&self, name: &str) -> Result<impl Fn(usize) -> Option<i64> + 'a, WarehouseError> {
        let col = self
            .column(name)?
            .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
            .ok_or_else(|| corrupt(name, "a whole number"))?;
        Ok(move |i: usize| (!col.is_null(i)).then(|| col.value(i)))
    }

    pub(crate) fn column(&self, name: &str) -> Result<&'a dyn Array, WarehouseError> {
        let batch: &'a RecordBatch = self.batch;
        batch.column_by_name(name).map(|c| c.as_ref()).ok_or_else(|| corrupt(name, "present"))
    }
}

/// Id → name over a dm+d table with an id column and a `name` column (VTMs, ingredients).
pub(crate) fn names_by_id(
    batches: &[RecordBatch],
    id_column: &str,
) -> Result<FxHashMap<String, String>, WarehouseError> {
    let mut out = FxHashMap::default();
    for b in batches {
        let c = Columns { batch: b };
        let (id, name) = (c.text(id_column)?, c.text("name")?);
        for i in 0..b.num_rows() {
            if let (Some(id), Some(name)) = (id(i), name(i)) {
                out.insert(id.to_string(), name.to_string());
            }
        }
    }
    Ok(out)
}

pub(crate) fn corrupt(column: &str, what: &str) -> WarehouseError {
    WarehouseError::Corrupt {
        path: "dm+d tables".into(),
        detail: format!("column {column} is not {what}; reload the release with `ipmo ingest dmd --force`"),
    }
}

/// The dm+d codes of the mass units, for a supplement loaded without its release's lookup.
fn mass_unit(code: &str) -> Option<String> {
    Some(
        match code {
            "258684004" => "mg",
            "258682000" => "gram",
            "258685003" => "microgram",
            _ => return None,
        }
        .to_string(),
    )
}

/// The generic equivalent of a branded BNF code: chemical, `AA`, and the strength code twice.
fn generic_equivalent(code: &str) -> Option<String> {
    (code.len() == 15 && code.is_ascii() && &code[9..11] != "AA")
        .then(|| format!("{}AA{}{}", &code[..9], &code[13..15], &code[13..15]))
}

impl Warehouse {
    /// Every presentation known today — named in the BNF list or as prescribed, or listed by dm+d
    /// — under its current BNF code, with its dm+d products when a release is loaded.
    pub fn presentations(&self) -> Result<FxHashMap<String, Presentation>, WarehouseError> {
        let names = self.presentation_names()?;
        let current = self.bnf_current_codes()?;
        let today = |c: &str| current.get(c).cloned().unwrap_or_else(|| c.to_string());
        let mut out: FxHashMap<String, Presentation> = FxHashMap::default();
        // A current code's own name wins over a name it inherited from an old code.
        for (code, name) in &names {
            let now = today(code);
            let own = now == *code;
            let p = out.entry(now.clone()).or_insert_with(|| Presentation::named(&now, ""));
            if own || p.name.is_empty() {
                p.name.clone_from(name);
            }
        }
        let products = self.dmd_products()?;
        if products.is_empty() {
            return Ok(out);
        }
        let links = self.bnf_product_links(&current)?;
        for (code, id) in links {
            let Some(product) = products.get(&id) else { continue };
            let p = out.entry(code.clone()).or_insert_with(|| Presentation::named(&code, &product.name));
            p.products.push(product.clone());
        }
        // Brands without products of their own read their generic equivalent's.
        let borrowed: Vec<(String, Vec<Product>)> = out
            .values()
            .filter(|p| p.products.is_empty())
            .filter_map(|p| {
                let generic = out.get(&generic_equivalent(&p.code)?)?;
                (!generic.products.is_empty()).then(|| (p.code.clone(), generic.products.clone()))
            })
            .collect();
        for (code, products) in borrowed {
            if let Some(p) = out.get_mut(&code) {
                p.products = products;
            }
        }
        Ok(out)
    }

    /// NHSBSA's BNF ↔ SNOMED mapping as (current BNF code, today's dm+d id) pairs, sorted and
    /// without repeats: codes moved on by `current` (old code → current), ids that dm+d has
    /// replaced followed through `dmd_id_history`, and a VMP or AMP the mapping names only through
    /// its packs given their code when they agree.
    pub(crate) fn bnf_product_links(
        &self,
        current: &FxHashMap<String, String>,
    ) -> Result<Vec<(String, String)>, WarehouseError> {
        let manifest = self.manifest()?;
        let read = |t: &str| read_table(self.root(), &manifest, t);
        let history: FxHashMap<String, String> =
            string_pairs(&read("dmd_id_history")?).map(|(o, n)| (o.to_string(), n.to_string())).collect();
        let latest = |id: &str| {
            let mut id = id.to_string();
            for _ in 0..8 {
                match history.get(&id) {
                    Some(next) if *next != id => id.clone_from(next),
                    _ => break,
                }
            }
            id
        };
        let today = |c: &str| current.get(c).cloned().unwrap_or_else(|| c.to_string());
        let mut links: Vec<(String, String)> = Vec::new();
        for (bnf, snomed) in string_pairs(&read("bnf_snomed")?) {
            links.push((today(bnf), latest(snomed)));
        }
        // A product the mapping names only through its packs (as its 2018 edition does) takes
        // their code when they all agree, as OpenPrescribing derives it.
        let linked: FxHashMap<&str, Vec<&str>> = links.iter().fold(FxHashMap::default(), |mut m, (code, id)| {
            m.entry(id.as_str()).or_default().push(code.as_str());
            m
        });
        let mut inherited: Vec<(String, String)> = Vec::new();
        for (table, pack_column, product_column) in [("dmd_vmpp", "vppid", "vpid"), ("dmd_ampp", "appid", "apid")] {
            let mut codes: FxHashMap<String, Vec<&str>> = FxHashMap::default();
            for b in read(table)? {
                let c = Columns { batch: &b };
                let (pack, product) = (c.text(pack_column)?, c.text(product_column)?);
                for i in 0..b.num_rows() {
                    if let (Some(pack), Some(product)) = (pack(i), product(i))
                        && !linked.contains_key(product)
                        && let Some(pack_codes) = linked.get(pack)
                    {
                        codes.entry(product.to_string()).or_default().extend(pack_codes);
                    }
                }
            }
            for (product, mut list) in codes {
                list.sort_unstable();
                list.dedup();
                if let [only] = list[..] {
                    inherited.push((only.to_string(), product));
                }
            }
        }
        links.extend(inherited);
        links.sort_unstable();
        links.dedup();
        Ok(links)
    }

    /// Every VMP and AMP of the loaded release by id, an AMP carrying its VMP's facts.
    fn dmd_products(&self) -> Result<FxHashMap<String, Product>, WarehouseError> {
        let manifest = self.manifest()?;
        let read = |t: &str| read_table(self.root(), &manifest, t);
        let vtm = names_by_id(&read("dmd_vtm")?, "vtmid")?;
        let substance = names_by_id(&read("dmd_ingredient")?, "isid")?;
        // Units of measure by code, for DDDs.
        let mut units: FxHashMap<String, String> = FxHashMap::default();
        for b in read("dmd_lookup")? {
            let c = Columns { batch: &b };
            let (table, code, description) = (c.text("lookup")?, c.text("code")?, c.text("description")?);
            for i in 0..b.num_rows() {
                if let (Some("UNIT_OF_MEASURE"), Some(code), Some(d)) = (table(i), code(i), description(i)) {
                    units.insert(code.to_string(), d.to_string());
                }
            }
        }
        let mut atc: FxHashMap<String, String> = FxHashMap::default();
        let mut ddd: FxHashMap<String, (f64, String)> = FxHashMap::default();
        for b in read("dmd_bnf")? {
            let c = Columns { batch: &b };
            let (id, code, value, unit) = (c.text("id")?, c.text("atc")?, c.number("ddd")?, c.text("ddd_unit_code")?);
            for i in 0..b.num_rows() {
                let Some(id) = id(i) else { continue };
                if let Some(code) = code(i).filter(|c| *c != "n/a") {
                    atc.insert(id.to_string(), code.to_string());
                }
                if let (Some(v), Some(u)) =
                    (value(i), unit(i).and_then(|u| units.get(u).cloned().or_else(|| mass_unit(u))))
                {
                    ddd.insert(id.to_string(), (v, u));
                }
            }
        }
        let mut vmps: FxHashMap<String, Product> = FxHashMap::default();
        for b in read("dmd_vmp")? {
            let c = Columns { batch: &b };
            let (id, name, vtmid, form_route) =
                (c.text("vpid")?, c.text("name")?, c.text("vtmid")?, c.text("form_route")?);
            for i in 0..b.num_rows() {
                let Some(id) = id(i) else { continue };
                vmps.insert(
                    id.to_string(),
                    Product {
                        id: id.to_string(),
                        vmp_id: id.to_string(),
                        is_brand: false,
                        name: name(i).unwrap_or_default().to_string(),
                        vmp_name: name(i).unwrap_or_default().to_string(),
                        vtm: vtmid(i).and_then(|v| vtm.get(v).cloned()),
                        // Several form-routes of one VMP are joined with "; " in this column.
                        form_routes: form_route(i)
                            .map(|f| f.split("; ").map(str::to_string).collect())
                            .unwrap_or_default(),
                        ingredients: Vec::new(),
                        atc: atc.get(id).cloned(),
                        ddd: ddd.get(id).cloned(),
                        min_pack: None,
                    },
                );
            }
        }
        for b in read("dmd_vmp_form_route")? {
            let c = Columns { batch: &b };
            let (id, form_route) = (c.text("vpid")?, c.text("form_route")?);
            for i in 0..b.num_rows() {
                if let (Some(v), Some(f)) = (id(i).and_then(|id| vmps.get_mut(id)), form_route(i))
                    && !v.form_routes.iter().any(|x| x == f)
                {
                    v.form_routes.push(f.to_string());
                }
            }
        }
        for b in read("dmd_vmp_ingredient")? {
            let c = Columns { batch: &b };
            let (id, isid, num, num_unit, den, den_unit) = (
                c.text("vpid")?,
                c.text("isid")?,
                c.number("strength_numerator")?,
                c.text("strength_numerator_unit")?,
                c.number("strength_denominator")?,
                c.text("strength_denominator_unit")?,
            );
            for i in 0..b.num_rows() {
                let Some(v) = id(i).and_then(|id| vmps.get_mut(id)) else { continue };
                let name = isid(i).and_then(|s| substance.get(s).cloned()).unwrap_or_default();
                v.ingredients.push(Ingredient {
                    name,
                    strength: num(i).map(|n| (n, num_unit(i).unwrap_or_default().to_string())),
                    per: den(i).map(|d| (d, den_unit(i).unwrap_or_default().to_string())),
                });
            }
        }
        for b in read("dmd_vmpp")? {
            let c = Columns { batch: &b };
            let (vpid, quantity) = (c.text("vpid")?, c.number("quantity")?);
            for i in 0..b.num_rows() {
                if let (Some(v), Some(q)) = (vpid(i).and_then(|v| vmps.get_mut(v)), quantity(i))
                    && q > 0.0
                    && v.min_pack.is_none_or(|m| q < m)
                {
                    v.min_pack = Some(q);
                }
            }
        }
        let mut out = vmps.clone();
        for b in read("dmd_amp")? {
            let c = Columns { batch: &b };
            let (id, vpid, name) = (c.text("apid")?, c.text("vpid")?, c.text("name")?);
            for i in 0..b.num_rows() {
                let (Some(id), Some(vmp)) = (id(i), vpid(i).and_then(|v| vmps.get(v))) else { continue };
                out.insert(
                    id.to_string(),
                    Product {
                        id: id.to_string(),
                        is_brand: true,
                        name: name(i).unwrap_or_default().to_string(),
                        atc: atc.get(id).cloned().or_else(|| vmp.atc.clone()),
                        ddd: ddd.get(id).cloned().or_else(|| vmp.ddd.clone()),
                        ..vmp.clone()
                    },
                );
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::generic_equivalent;

    #[test]
    fn generic_equivalents_as_openprescribing_forms_them() {
        // Fostair 100/6 inhaler → beclometasone/formoterol generic, strength AA.
        assert_eq!(generic_equivalent("0302000C0BQAAAA").as_deref(), Some("0302000C0AAAAAA"));
        assert_eq!(generic_equivalent("0407010H0BBAMAQ").as_deref(), Some("0407010H0AAAQAQ"));
        assert_eq!(generic_equivalent("0302000C0AAAAAA"), None);
        assert_eq!(generic_equivalent("0302000C0"), None);
    }
}
