//! Ad-hoc analyses: building the file-backed prescribing index (`ipmo-index`) from the warehouse, keeping it
//! on disk beside the manifest, and the DataFusion SQL implementation of the same analysis that
//! serves as its reference (and as the query a user can run to check any figure).

use crate::measure_store::Membership;
use crate::tables::PRESCRIBING;
use crate::values::sql_literal;
use crate::{Warehouse, WarehouseError};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Date32Type, Float64Type};
use ipmo_domain::YearMonth;
use ipmo_index::{
    Analysis, AnalysisRow, CodeSet, Denominator, IndexBuilder, Level, NodePolicy, PrescribingIndex, ValueKind,
};
use std::path::PathBuf;

impl From<ipmo_index::IndexError> for WarehouseError {
    fn from(e: ipmo_index::IndexError) -> Self {
        WarehouseError::Index(e.to_string())
    }
}

/// How [`Warehouse::current_index`] came by the index it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexSource {
    /// The stored file was current.
    Stored,
    /// The stored file lacked the newest months: they were added to a copy of it.
    Extended,
    /// Built from every month (no file, a damaged one, or a change to a month it holds).
    Built,
}

impl IndexSource {
    /// What happened, as a progress line says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "loaded",
            Self::Extended => "extended with the new months and saved",
            Self::Built => "built and saved",
        }
    }
}

impl Warehouse {
    /// Where the index is kept.
    pub fn index_path(&self) -> PathBuf {
        self.root().join("index").join("prescribing.idx")
    }

    /// What an index built now would be built from: every prescribing and list-size file, the
    /// membership, practices and BNF code changes, the membership choice and the index format. A reload
    /// writes new file names, so any change shows as a different list.
    pub fn index_inputs(&self, membership: Membership) -> Result<Vec<String>, WarehouseError> {
        self.index_inputs_through(membership, None)
    }

    /// [`Warehouse::index_inputs`] as they stood for an index of the months up to `last` only:
    /// the monthly files of later months are left out.
    fn index_inputs_through(
        &self,
        membership: Membership,
        last: Option<YearMonth>,
    ) -> Result<Vec<String>, WarehouseError> {
        let manifest = self.manifest()?;
        let mut inputs =
            vec![format!("format={}", ipmo_index::FORMAT_VERSION), format!("membership={}", membership.as_str())];
        let last = last.map(|m| m.to_string());
        // The BNF code-change lists, not the BNF map: the map grows with every new month's codes,
        // which no earlier month holds, while what remaps a code already indexed is a change list.
        for table in [PRESCRIBING, "list_sizes", "org_membership", "practices", "bnf_code_changes"] {
            let monthly = table == PRESCRIBING || table == "list_sizes";
            if let Some(parts) = manifest.tables.get(table) {
                inputs.extend(
                    parts
                        .iter()
                        .filter(|(month, _)| !monthly || last.as_deref().is_none_or(|l| month.as_str() <= l))
                        .map(|(_, file)| file.clone()),
                );
            }
        }
        Ok(inputs)
    }

    /// Builds the index from the warehouse into its file (one month in memory at a time; the
    /// months wait in scratch files beside it) and opens it; `progress` hears about each month.
    pub async fn build_index(
        &self,
        membership: Membership,
        progress: &mut dyn FnMut(YearMonth, u64),
    ) -> Result<PrescribingIndex, WarehouseError> {
        let path = self.index_path();
        let builder = IndexBuilder::spilling_to(path.parent().unwrap_or(self.root()))?;
        self.fill_index(builder, None, membership, progress).await
    }

    /// Adds the months after those `previous` holds, copying its rows rather than reading and
    /// sorting its months again; the file is the one [`Warehouse::build_index`] would write.
    async fn extend_index(
        &self,
        previous: PrescribingIndex,
        membership: Membership,
        progress: &mut dyn FnMut(YearMonth, u64),
    ) -> Result<PrescribingIndex, WarehouseError> {
        let after = previous.months.last().copied();
        let path = self.index_path();
        let builder = IndexBuilder::extending(previous, Some(path.parent().unwrap_or(self.root())))?;
        self.fill_index(builder, after, membership, progress).await
    }

    /// Adds every prescribing month after `after` (all of them when None) to `builder`, then
    /// writes the index file and opens it.
    async fn fill_index(
        &self,
        mut builder: IndexBuilder,
        after: Option<YearMonth>,
        membership: Membership,
        progress: &mut dyn FnMut(YearMonth, u64),
    ) -> Result<PrescribingIndex, WarehouseError> {
        let inputs = self.index_inputs(membership)?;
        let current = self.bnf_current_codes()?;
        let manifest = self.manifest()?;
        let months: Vec<YearMonth> = manifest
            .partitions(PRESCRIBING)
            .iter()
            .filter_map(|p| p.parse().ok())
            .filter(|m| after.is_none_or(|a| *m > a))
            .collect();
        let mut practices = self.practices_for_months(&months, membership).await?;
        let started = std::time::Instant::now();
        let n_months = months.len();
        for month in months {
            let t = std::time::Instant::now();
            builder.add_month(month, &practices.remove(&month).unwrap_or_default())?;
            let rows = self.for_each_prescribing(month, &current, |p, code, a| {
                builder.add(p, code, a);
            })?;
            tracing::info!(target: "ipmo::index", month = %month, rows, ms = t.elapsed().as_millis() as u64, "month sorted");
            progress(month, rows);
        }
        let t = std::time::Instant::now();
        let index = builder.finish_to_file(inputs, NodePolicy::default(), &self.index_path())?;
        tracing::info!(
            target: "ipmo::index",
            months_added = n_months,
            months_held = index.months.len(),
            extended = after.is_some(),
            merge_ms = t.elapsed().as_millis() as u64,
            ms = started.elapsed().as_millis() as u64,
            "index written"
        );
        Ok(index)
    }

    /// The stored index when it was built from what the warehouse holds now, else a new one
    /// (saved and opened). An index whose months are unchanged but which lacks later months is
    /// extended with them; any other change (a month reloaded, a new practice map or BNF code
    /// change) builds it again.
    pub async fn current_index(
        &self,
        membership: Membership,
        progress: &mut dyn FnMut(YearMonth, u64),
    ) -> Result<(PrescribingIndex, IndexSource), WarehouseError> {
        let want = self.index_inputs(membership)?;
        // A damaged file is simply rebuilt.
        if let Ok(Some(ix)) = ipmo_index::read_index(&self.index_path()) {
            if ix.inputs == want {
                return Ok((ix, IndexSource::Stored));
            }
            if let Some(&last) = ix.months.last()
                && self.index_inputs_through(membership, Some(last))? == ix.inputs
            {
                return Ok((self.extend_index(ix, membership, progress).await?, IndexSource::Extended));
            }
        }
        Ok((self.build_index(membership, progress).await?, IndexSource::Built))
    }

    /// The SQL that computes `analysis` from the warehouse tables; the reference for the index.
    pub fn analyse_sql(&self, a: &Analysis, membership: Membership) -> Result<String, WarehouseError> {
        let column = match a.value {
            ValueKind::Items => "items",
            ValueKind::Quantity => "quantity",
            ValueKind::ActualCost => "actual_cost_e5",
            ValueKind::Nic => "nic_pence",
        };
        let scale = match a.value {
            ValueKind::Items | ValueKind::Quantity => "",
            ValueKind::ActualCost => " / 100000.0",
            ValueKind::Nic => " / 100.0",
        };
        let cond = |set: &CodeSet| {
            let any = |v: &[String]| {
                v.iter()
                    .map(|p| format!("bnf_code LIKE {}", sql_literal(&format!("{p}%"))))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            };
            if set.exclude.is_empty() {
                format!("({})", any(&set.include))
            } else {
                format!("(({}) AND NOT ({}))", any(&set.include), any(&set.exclude))
            }
        };
        let day = |m: YearMonth| format!("DATE '{}'", m.first_day().format("%Y-%m-%d"));
        let mut month_filter = String::new();
        if let Some(f) = a.from {
            month_filter.push_str(&format!(" AND month >= {}", day(f)));
        }
        if let Some(t) = a.to {
            month_filter.push_str(&format!(" AND month <= {}", day(t)));
        }
        let membership_filter = match membership {
            Membership::AsAt => {
                "(m.valid_from IS NULL OR m.valid_from <= mo.month) AND (m.valid_to IS NULL OR m.valid_to > mo.month)"
            }
            Membership::Latest => "m.is_latest",
        };
        let (den_expr, den_rx, extra_where) = match &a.denominator {
            Denominator::Codes(set) => (
                "COALESCE(rx.den, 0)".to_string(),
                format!(", SUM(CASE WHEN {} THEN {column} ELSE 0 END) AS den", cond(set)),
                String::new(),
            ),
            Denominator::ListSize => {
                ("mb.list_size".to_string(), String::new(), " AND mb.list_size IS NOT NULL".into())
            }
        };
        let (org_expr, group_join) = match &a.level {
            Level::Practice => ("mb.practice_code".to_string(), String::new()),
            Level::Pcn => ("mb.pcn_code".to_string(), String::new()),
            Level::Sicbl => ("mb.sicbl_code".to_string(), String::new()),
            Level::Icb => ("mb.icb_code".to_string(), String::new()),
            Level::Region => ("mb.region_code".to_string(), String::new()),
            Level::England => (sql_literal(ipmo_measures::compute::ENGLAND), String::new()),
            Level::Groups(groups) => {
                let pairs: Vec<String> = groups
                    .iter()
                    .flat_map(|g| {
                        g.members.iter().map(move |m| format!("({}, {})", sql_literal(&g.code), sql_literal(m)))
                    })
                    .collect();
                if pairs.is_empty() {
                    return Err(WarehouseError::Index("the group set has no members".into()));
                }
                (
                    "mb.group_code".to_string(),
                    format!(
                        ", grouped AS (SELECT DISTINCT g.group_code, b.* FROM members b JOIN (VALUES {}) AS g(group_code, member) \
                         ON g.member IN (b.practice_code, b.pcn_code, b.sicbl_code, b.icb_code, b.region_code))",
                        pairs.join(", ")
                    ),
                )
            }
        };
        let members_table = if group_join.is_empty() { "members" } else { "grouped" };
        let org_filter = match &a.org {
            Some(code) => format!(" AND UPPER({org_expr}) = {}", sql_literal(&code.to_ascii_uppercase())),
            None => String::new(),
        };
        let multiplier = match a.denominator {
            Denominator::Codes(_) => "100.0",
            Denominator::ListSize => "1000.0",
        };
        Ok(format!(
            "WITH months AS (SELECT DISTINCT month FROM {PRESCRIBING} WHERE TRUE{month_filter}), \
             members AS (SELECT mo.month, m.practice_code, m.pcn_code, m.sicbl_code, m.icb_code, m.region_code, \
               CAST(l.total AS DOUBLE) AS list_size \
               FROM months mo JOIN org_membership m ON {membership_filter} \
               JOIN practices p ON p.practice_code = m.practice_code AND p.is_gp_practice \
               LEFT JOIN list_sizes l ON l.practice_code = m.practice_code AND l.month = mo.month \
               WHERE m.practice_code NOT LIKE '%998'){group_join}, \
             rx AS (SELECT month, practice_code, SUM(CASE WHEN {num} THEN {column} ELSE 0 END) AS num{den_rx} \
               FROM prescribing_current WHERE TRUE{month_filter} GROUP BY month, practice_code), \
             sums AS (SELECT mb.month, {org_expr} AS org_code, \
               CAST(SUM(COALESCE(rx.num, 0)) AS DOUBLE){scale} AS numerator, \
               CAST(SUM({den_expr}) AS DOUBLE){den_scale} AS denominator \
               FROM {members_table} mb LEFT JOIN rx ON rx.month = mb.month AND rx.practice_code = mb.practice_code \
               WHERE {org_expr} IS NOT NULL{extra_where}{org_filter} GROUP BY 1, 2) \
             SELECT month, org_code, numerator, denominator, \
               CASE WHEN denominator > 0 THEN numerator * {multiplier} / denominator END AS value \
             FROM sums ORDER BY org_code, month",
            num = cond(&a.numerator),
            den_scale = if matches!(a.denominator, Denominator::Codes(_)) { scale } else { "" },
        ))
    }

    /// Runs [`Warehouse::analyse_sql`].
    pub async fn analyse_reference(
        &self,
        a: &Analysis,
        membership: Membership,
    ) -> Result<Vec<AnalysisRow>, WarehouseError> {
        let sql = self.analyse_sql(a, membership)?;
        let mut out = Vec::new();
        for b in self.query(&sql).await? {
            let month = b.column(0).as_primitive::<Date32Type>();
            let org = b.column(1).as_string::<i32>();
            let (num, den, value) = (
                b.column(2).as_primitive::<Float64Type>(),
                b.column(3).as_primitive::<Float64Type>(),
                b.column(4).as_primitive::<Float64Type>(),
            );
            for i in 0..b.num_rows() {
                out.push(AnalysisRow {
                    month: crate::values::month_of(month.value(i)),
                    org_code: org.value(i).to_string(),
                    numerator: num.value(i),
                    denominator: den.value(i),
                    value: (!value.is_null(i)).then(|| value.value(i)),
                });
            }
        }
        Ok(out)
    }
}
