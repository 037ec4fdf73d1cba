//! `ipmo value …`: the medicines value programme. `value sets` lists the substitution sets built
//! from the loaded dm+d release (`ipmo_value::substitution`), limited to the presentations seen in
//! prescribing unless `--all`, and with `--left-out` the products that take no part and why;
//! `value compute` stores price-per-unit savings, concession and Tariff-change costs and
//! ghost-branded generic costs for every month; `value ppu` and `value gbg` list an
//! organisation's through SQL they can print.

use crate::measures::MembershipArg;
use crate::output::{Cell, Format, Output};
use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use ipmo_domain::YearMonth;
use ipmo_domain::display::pounds;
use ipmo_value::ppu::{Mode, Thresholds};
use ipmo_warehouse::Warehouse;
use ipmo_warehouse::ppu::{gbg_direct_sql, gbg_sql, opportunities_sql};
use std::time::Instant;

/// `ipmo value` subcommands.
#[derive(Subcommand)]
pub(crate) enum ValueCommand {
    /// Sets of generically equivalent presentations (OpenPrescribing's 2025 rules), built from the
    /// loaded dm+d release and the BNF ↔ SNOMED mapping.
    Sets {
        /// Keep every code dm+d maps, not only those seen in prescribing.
        #[arg(long)]
        all: bool,
        /// List the products that take no part, and why, instead of the sets.
        #[arg(long)]
        left_out: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Compute price-per-unit savings for every month with prescribing (replaces the `ppu_*`
    /// tables in one commit).
    Compute {
        /// Which organisations a practice's savings count towards.
        #[arg(long, value_enum, default_value = "as-at")]
        membership: MembershipArg,
        /// Compute even when nothing they depend on changed.
        #[arg(long)]
        all: bool,
    },
    /// Ghost-branded generics, by OpenPrescribing's inferred method or directly from the EPD's
    /// SNOMED column: an organisation's extra cost per generic presentation in a month, largest
    /// first.
    Gbg {
        #[command(flatten)]
        at: OrgMonth,
        /// `inferred` (OpenPrescribing's: practices paying above the median price of a generic
        /// whose Tariff price is constant per unit, from `ipmo value compute`) or `direct` (rows
        /// whose SNOMED code is a manufacturer's product, priced from dm+d against the Tariff).
        #[arg(long, default_value = "inferred")]
        method: String,
        /// Print the SQL instead of running it.
        #[arg(long)]
        sql: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// The savings ledger: each scheme's saving, month by month, measured from the prescribing
    /// against its baseline (the governance store's schemes, as the ledger page shows them).
    Ledger {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// An organisation's price-per-unit opportunities in a month, largest saving first.
    Ppu {
        #[command(flatten)]
        at: OrgMonth,
        /// `date-correct` (the discount in force in the month) or `reference` (OpenPrescribing's).
        #[arg(long, default_value = "date-correct")]
        mode: String,
        /// Smallest saving listed, in pounds; the level's default when left out (£10 practice,
        /// £20 PCN, £200 sub-ICB location or group, £500 ICB, £5,000 region, £50,000 England).
        #[arg(long)]
        min_saving: Option<f64>,
        /// Print the SQL instead of running it.
        #[arg(long)]
        sql: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

/// The savings ledger: every current scheme in the governance store, each month's saving measured
/// from the prescribing index as the ledger page shows it.
fn ledger(wh: &Warehouse, governance_db: &ipmo_governance::Location, format: Format, quiet: bool) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    let (groups, _) = crate::measures::read_groups(wh)?;
    // No measure library: the ledger reads the prescribing index and the organisations only.
    let release = rt.block_on(wh.load_release(Default::default(), &groups, true, &mut |month, rows| {
        if !quiet {
            eprintln!("value ledger: index {month}: {rows} rows");
        }
    }))?;
    let schemes = rt.block_on(async {
        let store = crate::governance::open_store(governance_db).await?;
        let schemes = ipmo_governance::GovernanceStore::records(&store, "scheme", false).await;
        store.close().await;
        Ok::<_, anyhow::Error>(schemes?)
    })?;
    let kind = ipmo_governance::kinds::kind("scheme").ok_or_else(|| anyhow!("no scheme kind"))?;
    let mut t = Output::new(&["scheme", "title", "month", "practices", "planned", "realised"]);
    let (mut planned, mut realised) = (0.0, 0.0);
    for rec in &schemes {
        match ipmo_programme::ledger::measure(&release, rec) {
            Ok((_, r)) => {
                for m in &r.months {
                    t.rows.push(vec![
                        Cell::text(kind.reference(rec.id)),
                        Cell::text(rec.text("title")),
                        Cell::text(m.month),
                        Cell::Num(Some(m.practices as f64), 0),
                        Cell::Num(Some(m.planned), 2),
                        Cell::Num(Some(m.realised), 2),
                    ]);
                }
                planned += r.planned;
                realised += r.realised;
            }
            Err(e) => eprintln!("{} {}: not measured: {e}", kind.reference(rec.id), rec.text("title")),
        }
    }
    t.write(format, &mut std::io::stdout().lock())?;
    if !quiet {
        eprintln!(
            "{} realised against {} planned to date across {} schemes",
            pounds(realised),
            pounds(planned),
            schemes.len()
        );
    }
    Ok(())
}

/// Whose listing, and for which month: the arguments `value ppu` and `value gbg` share.
#[derive(clap::Args)]
pub(crate) struct OrgMonth {
    /// Organisation level: practice, pcn, sicbl, icb, region, england or group:SET.
    #[arg(long, default_value = "england")]
    level: String,
    /// Organisation code (ENG for England).
    #[arg(long, default_value = "ENG")]
    org: String,
    /// Month (YYYY-MM); the latest computed when left out.
    #[arg(long)]
    month: Option<YearMonth>,
}

/// Runs `ipmo value …`; the ledger reads its schemes from the governance database `governance_db`.
pub(crate) fn run(
    wh: &Warehouse,
    cmd: ValueCommand,
    governance_db: &ipmo_governance::Location,
    quiet: bool,
) -> Result<()> {
    match cmd {
        ValueCommand::Sets { all, left_out, format } => {
            let Some(sets) = wh.substitution_sets(all)? else {
                bail!(
                    "no dm+d release is loaded: load one with `ipmo ingest dmd DIR`, and NHSBSA's BNF SNOMED mapping with `ipmo ingest bnf-snomed FILE`"
                );
            };
            let table = if left_out {
                let mut t = Output::new(&["id", "bnf_code", "reason"]);
                for l in &sets.left_out {
                    t.rows.push(vec![Cell::text(&l.id), Cell::text(&l.bnf_code), Cell::text(l.reason)]);
                }
                t
            } else {
                let mut t = Output::new(&["set", "name", "codes", "formulation_swap"]);
                for s in &sets.sets {
                    t.rows.push(vec![
                        Cell::text(&s.id),
                        Cell::text(&s.name),
                        Cell::text(s.codes.join(" ")),
                        Cell::text(s.formulation_swap.as_deref().unwrap_or("")),
                    ]);
                }
                t
            };
            table.write(format, &mut std::io::stdout().lock())?;
            Ok(())
        }
        ValueCommand::Compute { membership, all } => compute(wh, membership.into(), all, quiet),
        ValueCommand::Gbg { at: OrgMonth { level, org, month }, method, sql, format } => match method.as_str() {
            "inferred" => {
                let month = month.map_or_else(|| latest_ppu_month(wh), Ok)?;
                let query = gbg_sql(&level, &org, month);
                let listing = Listing { query, sql, format, quiet, total_column: "extra_cost_pounds" };
                listing.run(wh, |rows, total| {
                    format!("{level} {org}, {month}: {rows} generic presentations paid above (or below) the inferred price, {total} in all")
                })
            }
            "direct" => {
                let month = match month {
                    Some(m) => m,
                    None => latest_partition(wh, "prescribing_by_quantity")?,
                };
                let query = gbg_direct_sql(&level, &org, month).ok_or_else(|| {
                    anyhow!("--level {level}: the direct method takes practice, pcn, sicbl, icb, region or england")
                })?;
                let listing = Listing { query, sql, format, quiet, total_column: "extra_cost_pounds" };
                listing.run(wh, |rows, total| {
                    format!("{level} {org}, {month}: {rows} generic presentations prescribed as a manufacturer's product, {total} above the Drug Tariff in all")
                })
            }
            other => bail!("--method must be inferred or direct, not \"{other}\""),
        },
        ValueCommand::Ppu { at: OrgMonth { level, org, month }, mode, min_saving, sql, format } => {
            let mode = Mode::parse(&mode)
                .ok_or_else(|| anyhow!("--mode must be date-correct or reference, not \"{mode}\""))?;
            if min_saving.is_some_and(|m| !m.is_finite() || m < 0.0) {
                bail!("--min-saving must be a number of pounds, 0 or more");
            }
            let month = month.map_or_else(|| latest_ppu_month(wh), Ok)?;
            let min_pence = min_saving.map_or_else(|| Thresholds::default().for_level(&level), |p| p * 100.0);
            let query = opportunities_sql(&level, &org, month, mode, min_pence);
            let listing = Listing { query, sql, format, quiet, total_column: "saving_pounds" };
            listing.run(wh, |rows, total| {
                format!(
                    "{level} {org}, {month}, {} mode: {rows} sets with a saving of {} or more, {total} in all",
                    mode.as_str(),
                    pounds(min_pence / 100.0)
                )
            })
        }
        ValueCommand::Ledger { format } => ledger(wh, governance_db, format, quiet),
    }
}

/// A listing `ipmo value` prints from SQL: the query itself with `--sql`, else its rows, and on
/// stderr a line with the row count and the sum of `total_column` (pounds).
struct Listing {
    query: String,
    sql: bool,
    format: Format,
    quiet: bool,
    total_column: &'static str,
}

impl Listing {
    fn run(self, wh: &Warehouse, summary: impl FnOnce(usize, String) -> String) -> Result<()> {
        if self.sql {
            println!("{};", self.query);
            return Ok(());
        }
        let rt = tokio::runtime::Runtime::new().context("cannot start the query runtime")?;
        let rows = rt.block_on(wh.query_to(&self.query, output_format(self.format), &mut std::io::stdout().lock()))?;
        if !self.quiet {
            let sum = format!("SELECT SUM({}) FROM ({})", self.total_column, self.query);
            let total = rt.block_on(wh.query_f64(&sum))?;
            eprintln!("{}", summary(rows, pounds(total.unwrap_or(0.0))));
        }
        Ok(())
    }
}

/// The warehouse's streaming format for an output format.
fn output_format(format: Format) -> ipmo_warehouse::OutputFormat {
    match format {
        Format::Table => ipmo_warehouse::OutputFormat::Table,
        Format::Csv => ipmo_warehouse::OutputFormat::Csv,
        Format::Json => ipmo_warehouse::OutputFormat::Json,
    }
}

/// The newest month with stored PPU savings.
/// The newest month stored in `table`.
fn latest_partition(wh: &Warehouse, table: &str) -> Result<YearMonth> {
    wh.manifest()?
        .partitions(table)
        .into_iter()
        .filter_map(|p| p.parse().ok())
        .max()
        .ok_or_else(|| anyhow!("no prescribing is loaded: load a month with `ipmo ingest epd FILE`"))
}

fn latest_ppu_month(wh: &Warehouse) -> Result<YearMonth> {
    wh.manifest()?
        .partitions("ppu_savings")
        .into_iter()
        .filter_map(|p| p.parse().ok())
        .max()
        .ok_or_else(|| anyhow!("no PPU savings are stored yet: run `ipmo value compute` first"))
}

/// `ipmo value compute`: PPU savings for every month, unless they are up to date and `all` is
/// not asked for.
pub(crate) fn compute(wh: &Warehouse, membership: ipmo_warehouse::Membership, all: bool, quiet: bool) -> Result<()> {
    let started = Instant::now();
    let (groups, groups_input) = wh.groups()?;
    if !all && wh.value_fresh(membership, groups_input.as_deref())? {
        if !quiet {
            eprintln!("value: up to date (nothing it depends on changed; --all computes anyway)");
        }
        return Ok(());
    }
    let rt = tokio::runtime::Runtime::new().context("cannot start the query runtime")?;
    let report = rt.block_on(wh.compute_value(membership, (&groups, groups_input.as_deref()), |month, rows| {
        if !quiet {
            eprintln!("value: {month}: {rows} prescribing rows read");
        }
    }))?;
    if report.months.is_empty() {
        bail!("the warehouse at {} has no prescribing; load some with `ipmo ingest epd`", wh.root().display());
    }
    if report.without_dmd && !quiet {
        eprintln!(
            "value: no dm+d release is loaded, so there are no substitution sets and no price-per-unit savings; load one with `ipmo ingest dmd DIR` and NHSBSA's BNF SNOMED mapping with `ipmo ingest bnf-snomed FILE`"
        );
    }
    if !quiet {
        let estimated = |months: &[(YearMonth, bool)]| months.iter().filter(|(_, e)| *e).count();
        eprintln!(
            "value: {} sets over {} months; concessions costed in {} months ({} estimated from the newest prescribing); Drug Tariff changes in {} months ({} estimated){}; {} rows stored in {:.1} s",
            report.sets,
            report.months.len(),
            report.concession_months.len(),
            estimated(&report.concession_months),
            report.price_change_months.len(),
            estimated(&report.price_change_months),
            if report.unpriced_concessions > 0 {
                format!(", {} concessions without a Tariff price or presentation left out", report.unpriced_concessions)
            } else {
                String::new()
            },
            report.rows_stored,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
