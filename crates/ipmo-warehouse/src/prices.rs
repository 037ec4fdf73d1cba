//! What the price computations share: a Drug Tariff or concession pack (VMPP) traced to the
//! current BNF code of its presentation, and a month column read as months.

use crate::parquet_io::read_table;
use crate::presentations::{Columns, corrupt};
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Date32Type;
use ipmo_domain::YearMonth;
use rustc_hash::FxHashMap;

/// Packs to presentations: a pack's own link in the BNF ↔ SNOMED mapping, else its VMP's (from
/// the Tariff row or `dmd_vmpp`), old ids followed and codes moved on.
pub(crate) struct PackCodes {
    code_of_id: FxHashMap<String, String>,
    vmp_of_pack: FxHashMap<String, String>,
}

impl PackCodes {
    /// The current BNF code of `pack`, whose VMP the caller may know.
    pub(crate) fn code(&self, pack: &str, vmp: Option<&str>) -> Option<&str> {
        let vmp = vmp.or_else(|| self.vmp_of_pack.get(pack).map(String::as_str));
        self.code_of_id.get(pack).or_else(|| vmp.and_then(|v| self.code_of_id.get(v))).map(String::as_str)
    }
}

impl Warehouse {
    /// The links from packs to presentations for the loaded dm+d release and mapping.
    pub(crate) fn pack_codes(&self) -> Result<PackCodes, WarehouseError> {
        let manifest = self.manifest()?;
        let current = self.bnf_current_codes()?;
        let mut code_of_id: FxHashMap<String, String> = FxHashMap::default();
        for (code, id) in self.bnf_product_links(&current)? {
            code_of_id.entry(id).or_insert(code);
        }
        let mut vmp_of_pack: FxHashMap<String, String> = FxHashMap::default();
        for b in read_table(self.root(), &manifest, "dmd_vmpp")? {
            let c = Columns { batch: &b };
            let (pack, vmp) = (c.text("vppid")?, c.text("vpid")?);
            for i in 0..b.num_rows() {
                if let (Some(pack), Some(vmp)) = (pack(i), vmp(i)) {
                    vmp_of_pack.insert(pack.to_string(), vmp.to_string());
                }
            }
        }
        Ok(PackCodes { code_of_id, vmp_of_pack })
    }
}

/// The `month` column of a batch of a monthly table, as months.
pub(crate) fn months_of(b: &RecordBatch) -> Result<Vec<YearMonth>, WarehouseError> {
    let days = Columns { batch: b }
        .column("month")?
        .as_primitive_opt::<Date32Type>()
        .ok_or_else(|| corrupt("month", "a date"))?;
    Ok((0..b.num_rows()).map(|i| crate::values::month_of(days.value(i))).collect())
}
