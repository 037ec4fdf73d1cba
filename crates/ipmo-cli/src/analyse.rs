//! `ipmo analyse`: ad-hoc BNF analyses from the prescribing index, or from the SQL reference.

use crate::measures::{MembershipArg, read_groups};
use crate::output::{Cell, Format, Output};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use ipmo_domain::YearMonth;
use ipmo_index::{Analysis, AnalysisRow, CodeSet, Denominator, Level, ValueKind};
use ipmo_warehouse::{Membership, Warehouse};
use std::time::Instant;

/// `ipmo analyse` options.
#[derive(Args)]
pub(crate) struct AnalyseArgs {
    /// Numerator BNF code prefixes, comma-separated (e.g. 0501013K0,0501021).
    #[arg(long)]
    numerator: String,
    /// Prefixes left out of the numerator.
    #[arg(long, default_value = "")]
    exclude: String,
    /// `list-size` (value per 1,000 patients) or BNF code prefixes (value as a % of them).
    #[arg(long, default_value = "list-size")]
    denominator: String,
    /// Prefixes left out of a code denominator.
    #[arg(long, default_value = "")]
    denominator_exclude: String,
    /// What is summed.
    #[arg(long, value_enum, default_value = "items")]
    value: ValueArg,
    /// practice, pcn, sicbl, icb, region, national (or england), or `group:<set>`.
    #[arg(long, default_value = "practice")]
    org_type: String,
    /// One organisation's code.
    #[arg(long)]
    org: Option<String>,
    /// First month (default: the first held).
    #[arg(long)]
    from: Option<YearMonth>,
    /// Last month (default: the latest).
    #[arg(long)]
    to: Option<YearMonth>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// `index` (fast, the default) or `sql` (the DataFusion reference, for checking).
    #[arg(long, value_enum, default_value = "index")]
    engine: Engine,
    /// Count practices in the organisations they belonged to each month, or in today's.
    #[arg(long, value_enum, default_value = "as-at")]
    membership: MembershipArg,
    /// Print the SQL that computes this analysis instead of running it.
    #[arg(long)]
    show_sql: bool,
}

/// What is summed, on the command line.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ValueArg {
    /// Prescription items.
    Items,
    /// Quantity as published.
    Quantity,
    /// Actual cost (£).
    Cost,
    /// Net ingredient cost (£).
    Nic,
}

/// Which implementation answers.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Engine {
    /// The prescribing index.
    Index,
    /// DataFusion SQL over the warehouse.
    Sql,
}

/// Turns command-line choices into an analysis (groups are read from the warehouse).
pub(crate) fn analysis(wh: &Warehouse, a: &AnalyseArgs) -> Result<Analysis> {
    let numerator = CodeSet::parse(&a.numerator, &a.exclude, "--numerator")?;
    let denominator = if a.denominator.trim().eq_ignore_ascii_case("list-size") {
        Denominator::ListSize
    } else {
        Denominator::Codes(CodeSet::parse(&a.denominator, &a.denominator_exclude, "--denominator")?)
    };
    let t = crate::measure_analysis::org_type(&a.org_type)?;
    let level = match ipmo_domain::practice::OrgLevel::parse(&t) {
        Some(level) => Level::from(level),
        None => {
            let other = t.as_str();
            let id = other.trim_start_matches("group:");
            let (sets, _) = read_groups(wh)?;
            let set = sets.into_iter().find(|s| s.id == id).ok_or_else(|| {
                anyhow!("no group set \"{id}\"; `ipmo groups list` shows them and `ipmo groups add` makes one")
            })?;
            Level::Groups(set.groups)
        }
    };
    let value = match a.value {
        ValueArg::Items => ValueKind::Items,
        ValueArg::Quantity => ValueKind::Quantity,
        ValueArg::Cost => ValueKind::ActualCost,
        ValueArg::Nic => ValueKind::Nic,
    };
    Ok(Analysis { numerator, denominator, value, level, org: a.org.clone(), from: a.from, to: a.to })
}

/// Runs `ipmo analyse`.
pub(crate) fn run(wh: &Warehouse, a: AnalyseArgs, quiet: bool) -> Result<()> {
    let analysis = analysis(wh, &a)?;
    let membership: Membership = a.membership.into();
    if a.show_sql {
        out!("{}", wh.analyse_sql(&analysis, membership)?);
        return Ok(());
    }
    let rt = tokio::runtime::Runtime::new().context("cannot start the query runtime")?;
    let started = Instant::now();
    let rows: Vec<AnalysisRow> = match a.engine {
        Engine::Sql => rt.block_on(wh.analyse_reference(&analysis, membership))?,
        Engine::Index => {
            let (index, source) = rt.block_on(wh.current_index(membership, &mut |month, rows| {
                if !quiet {
                    eprintln!("index: {month}: {rows} rows ({:.1} s)", started.elapsed().as_secs_f64());
                }
            }))?;
            if index.months.is_empty() {
                bail!("the warehouse at {} has no prescribing; load some with `ipmo ingest epd`", wh.root().display());
            }
            if !quiet {
                eprintln!(
                    "index: {} {} rows, {} practices, {} months, {:.0} MB in memory ({:.2} s)",
                    source.as_str(),
                    index.rows(),
                    index.practices.len(),
                    index.months.len(),
                    index.memory_bytes() as f64 / 1e6,
                    started.elapsed().as_secs_f64()
                );
            }
            let t = Instant::now();
            let rows = index.analyse(&analysis)?;
            if !quiet {
                eprintln!("analyse: {} rows in {:.1} ms", rows.len(), t.elapsed().as_secs_f64() * 1e3);
            }
            rows
        }
    };
    let mut out = Output::new(&["month", "org_code", "numerator", "denominator", "value"]);
    for r in &rows {
        out.rows.push(vec![
            Cell::text(r.month),
            Cell::text(&r.org_code),
            Cell::Num(Some(r.numerator), 2),
            Cell::Num(Some(r.denominator), 2),
            Cell::Num(r.value, 3),
        ]);
    }
    out.write(a.format, &mut std::io::stdout().lock())?;
    if !quiet {
        let unit = match analysis.denominator {
            Denominator::ListSize => "per 1,000 patients",
            Denominator::Codes(_) => "% of the denominator",
        };
        eprintln!("value is {unit}; `--show-sql` prints the SQL that computes the same rows");
    }
    Ok(())
}
