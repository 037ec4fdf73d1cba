//! What the warehouse knows of one medicine, for `ipmo medicine show`: its dm+d hierarchy,
//! ingredients, form-route, packs with their Drug Tariff price history and concessions, and
//! national prescribing by month. Every section is one SQL query over the stored tables, printed
//! with it on request, so each figure can be reproduced with `ipmo sql`.

use crate::{OutputFormat, Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, AsArray};
use std::io::Write;

/// How a search term was understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// One dm+d product (VMP), reached from the term through `via` (an AMP, a pack, an old id, a
    /// BNF code or a name).
    Product {
        /// The VMP id.
        vpid: String,
        /// How the term led to it.
        via: String,
    },
    /// Several products match; the term must be narrowed.
    Several(Vec<(String, String)>),
    /// Nothing in dm+d; a BNF code with prescribing can still be shown.
    BnfOnly(String),
}

/// Most products listed when a name matches several.
pub const MAX_MATCHES: usize = 25;

pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Warehouse {
    async fn strings(&self, sql: &str) -> Result<Vec<Vec<String>>, WarehouseError> {
        let batches = self.query(sql).await?;
        let mut rows = Vec::new();
        for b in &batches {
            let cols: Vec<_> = b
                .columns()
                .iter()
                .map(|c| datafusion::arrow::compute::cast(c, &datafusion::arrow::datatypes::DataType::Utf8))
                .collect::<Result<_, _>>()
                .map_err(|e| WarehouseError::Query(e.to_string()))?;
            for i in 0..b.num_rows() {
                rows.push(
                    cols.iter()
                        .map(|c| {
                            let s = c.as_string::<i32>();
                            if s.is_null(i) { String::new() } else { s.value(i).to_string() }
                        })
                        .collect(),
                );
            }
        }
        Ok(rows)
    }

    /// Finds the product a term names: a VMP, AMP, VMPP or AMPP id (old ids followed), a BNF code,
    /// or part of a name.
    pub async fn resolve_medicine(&self, term: &str) -> Result<Resolved, WarehouseError> {
        let term = term.trim();
        let q = quote(term);
        if !term.is_empty() && term.bytes().all(|b| b.is_ascii_digit()) {
            let sql = format!(
                "SELECT vpid, 'VMP ' || vpid FROM dmd_vmp WHERE vpid = {q} \
                 UNION ALL SELECT vpid, 'AMP ' || apid || ' (' || name || ')' FROM dmd_amp WHERE apid = {q} \
                 UNION ALL SELECT vpid, 'pack (VMPP) ' || vppid || ' (' || name || ')' FROM dmd_vmpp WHERE vppid = {q} \
                 UNION ALL SELECT a.vpid, 'pack (AMPP) ' || p.appid || ' (' || p.name || ')' FROM dmd_ampp p JOIN dmd_amp a ON a.apid = p.apid WHERE p.appid = {q} \
                 UNION ALL SELECT h.new_id, 'previous ' || h.kind || ' id ' || h.old_id || ' (changed ' || CAST(h.changed_on AS VARCHAR) || ')' \
                   FROM dmd_id_history h JOIN dmd_vmp v ON v.vpid = h.new_id WHERE h.old_id = {q}"
            );
            if let Some(row) = self.strings(&sql).await?.into_iter().next() {
                return Ok(Resolved::Product { vpid: row[0].clone(), via: row[1].clone() });
            }
        }
        let code = term.to_ascii_uppercase();
        let looks_like_bnf = (9..=15).contains(&code.len())
            && code.bytes().all(|b| b.is_ascii_alphanumeric())
            && code.bytes().take(2).all(|b| b.is_ascii_digit())
            && code.bytes().any(|b| b.is_ascii_alphabetic());
        if looks_like_bnf {
            let c = quote(&code);
            let sql = format!(
                "SELECT DISTINCT p.vpid FROM bnf_snomed m JOIN dmd_product p ON p.id = m.snomed_code WHERE m.bnf_code = {c} \
                 UNION SELECT DISTINCT p.vpid FROM prescribing_by_quantity q JOIN dmd_product p ON p.id = q.snomed_code WHERE q.bnf_code = {c}"
            );
            let found = self.strings(&sql).await?;
            return Ok(match found.as_slice() {
                [one] => Resolved::Product { vpid: one[0].clone(), via: format!("BNF code {code}") },
                [] => Resolved::BnfOnly(code),
                many => Resolved::Several(self.names_of(many.iter().map(|r| r[0].as_str())).await?),
            });
        }
        // strpos rather than LIKE: names hold `%` ("Diclofenac 2.32% gel"), which LIKE would read
        // as a wildcard.
        let needle = quote(&term.to_lowercase());
        let sql = format!(
            "SELECT DISTINCT vpid, name FROM dmd_vmp WHERE strpos(lower(name), {needle}) > 0 \
             UNION SELECT DISTINCT v.vpid, v.name FROM dmd_amp a JOIN dmd_vmp v ON v.vpid = a.vpid \
             WHERE strpos(lower(a.name), {needle}) > 0 ORDER BY name LIMIT {}",
            MAX_MATCHES + 1
        );
        let found = self.strings(&sql).await?;
        Ok(match found.as_slice() {
            [one] => Resolved::Product { vpid: one[0].clone(), via: format!("name containing \"{term}\"") },
            many => Resolved::Several(many.iter().map(|r| (r[0].clone(), r[1].clone())).collect()),
        })
    }

    async fn names_of(&self, ids: impl Iterator<Item = &str>) -> Result<Vec<(String, String)>, WarehouseError> {
        let list: Vec<String> = ids.map(quote).collect();
        let sql = format!("SELECT vpid, name FROM dmd_vmp WHERE vpid IN ({}) ORDER BY name", list.join(", "));
        Ok(self.strings(&sql).await?.into_iter().map(|r| (r[0].clone(), r[1].clone())).collect())
    }

    /// The sections shown for one product: (title, SQL). The SQL is what `--show-sql` prints.
    pub fn medicine_sections(vpid: &str) -> Vec<(&'static str, String)> {
        let v = quote(vpid);
        let products = format!("SELECT {v} UNION SELECT apid FROM dmd_amp WHERE vpid = {v}");
        let bnf_codes = format!(
            "SELECT DISTINCT bnf_code FROM bnf_snomed WHERE snomed_code IN ({products}) \
             UNION SELECT DISTINCT bnf_code FROM prescribing_by_quantity WHERE snomed_code IN ({products})"
        );
        let packs = format!("SELECT vppid FROM dmd_vmpp WHERE vpid = {v}");
        vec![
            (
                "Product (VMP) and its VTM",
                format!(
                    "SELECT v.vpid, v.name, t.vtmid, t.name AS vtm, v.prescribing_status, v.basis_of_name, v.invalid \
                     FROM dmd_vmp v LEFT JOIN dmd_vtm t ON t.vtmid = v.vtmid WHERE v.vpid = {v}"
                ),
            ),
            (
                "Form and route",
                format!(
                    "SELECT form, form_route, route, unit_dose_form_size, unit_dose_form_units, unit_dose_unit, \
                     controlled_drug_category FROM dmd_vmp WHERE vpid = {v}"
                ),
            ),
            (
                "Ingredients and strength",
                format!(
                    "SELECT ingredient, isid, strength_numerator, strength_numerator_unit, strength_denominator, \
                     strength_denominator_unit, basis_of_strength FROM dmd_vmp_strength WHERE vpid = {v} ORDER BY ingredient"
                ),
            ),
            (
                "Previous ids",
                format!("SELECT kind, old_id, changed_on FROM dmd_id_history WHERE new_id = {v} ORDER BY changed_on"),
            ),
            (
                "Branded products (AMPs)",
                format!(
                    "SELECT apid, name, supplier, licensing_authority, availability_restriction, parallel_import, invalid \
                     FROM dmd_amp WHERE vpid = {v} ORDER BY name"
                ),
            ),
            (
                "BNF, ATC and DDD",
                format!(
                    "SELECT m.bnf_code, m.snomed_code, m.level, b.bnf AS bnf_section, b.atc, b.ddd, u.description AS ddd_unit \
                     FROM (SELECT bnf_code, snomed_code, level FROM bnf_snomed WHERE snomed_code IN ({products})) m \
                     FULL JOIN (SELECT * FROM dmd_bnf WHERE id = {v}) b ON b.id = m.snomed_code \
                     LEFT JOIN dmd_lookup u ON u.lookup = 'UNIT_OF_MEASURE' AND u.code = b.ddd_unit_code ORDER BY m.bnf_code"
                ),
            ),
            (
                "Packs (VMPP) with dm+d's Drug Tariff entry",
                format!(
                    "SELECT vppid, name, quantity, unit, tariff_category, tariff_price_pence, tariff_date \
                     FROM dmd_vmpp WHERE vpid = {v} ORDER BY quantity"
                ),
            ),
            (
                "Drug Tariff price history (pence per pack)",
                format!(
                    "SELECT month, vmpp, pack_size, unit, category, price_pence FROM tariff WHERE vmpp IN ({packs}) \
                     OR vmp = {v} ORDER BY vmpp, month"
                ),
            ),
            (
                "Price concessions (pence per pack)",
                format!(
                    "SELECT month, vmpp, drug, pack_size, price_pence FROM concessions WHERE vmpp IN ({packs}) ORDER BY month, vmpp"
                ),
            ),
            (
                "Hospital and primary care use by month (England, in the same units)",
                format!(
                    "SELECT month, sector, COUNT(DISTINCT org_code) AS organisations, SUM(quantity) AS quantity, \
                     unit_name AS unit, SUM(unit_doses) AS unit_doses, MIN(unit_dose_unit) AS unit_dose_unit, \
                     ROUND(SUM(ddds), 2) AS ddds, SUM(CASE WHEN ddds IS NULL THEN 1 ELSE 0 END) AS lines_without_ddds, \
                     MIN(not_calculated) AS why FROM medicine_use WHERE vmp_id = {v} GROUP BY month, sector, unit_name \
                     ORDER BY month, sector, unit_name"
                ),
            ),
            (
                "National prescribing by month (its BNF codes)",
                format!(
                    "SELECT month, SUM(items) AS items, SUM(quantity) AS quantity, ROUND(SUM(nic), 2) AS nic_pounds, \
                     ROUND(SUM(actual_cost), 2) AS actual_cost_pounds FROM prescribing WHERE bnf_code IN ({bnf_codes}) \
                     GROUP BY month ORDER BY month"
                ),
            ),
        ]
    }

    /// Prints what is known of the product `vpid`, section by section.
    pub async fn describe_medicine(
        &self,
        vpid: &str,
        show_sql: bool,
        out: &mut dyn Write,
    ) -> Result<(), WarehouseError> {
        let io = |e: std::io::Error| WarehouseError::Io { path: "<output>".into(), source: e };
        for (title, sql) in Self::medicine_sections(vpid) {
            writeln!(out, "\n{title}").map_err(io)?;
            if show_sql {
                writeln!(out, "-- {sql}").map_err(io)?;
            }
            let mut buf = Vec::new();
            let rows = self.query_to(&sql, OutputFormat::Table, &mut buf).await?;
            if rows == 0 {
                writeln!(out, "  (none held)").map_err(io)?;
            } else {
                out.write_all(&buf).map_err(io)?;
            }
        }
        Ok(())
    }
}
