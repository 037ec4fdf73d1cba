//! `ipmo`: the one binary. It parses the command line and wires the library crates together;
//! everything it does is done by them.

/// `println!` that returns an error instead of panicking when stdout is closed
/// (`ipmo status | head -1`); `main` then exits quietly on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod analyse;
mod bench;
mod cluster;
mod config;
mod demo;
mod demo_programme;
mod governance;
mod ingest;
mod measure_analysis;
mod measures;
mod memory;
mod output;
mod progress;
mod report;
mod serve;
mod value;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use ipmo_domain::YearMonth;
use ipmo_warehouse::{OutputFormat, Warehouse};
use output::Format;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub(crate) use ingest::{ErrorArgs, Ingest, ingest};

/// Integrated Pharmacy and Medicines Optimisation: NHS prescribing data and the programme that acts on it.
#[derive(Parser)]
#[command(name = "ipmo", version, propagate_version = true)]
struct Cli {
    /// Warehouse directory (created if missing).
    #[arg(long, global = true, env = "IPMO_WAREHOUSE", default_value = "ipmo-data")]
    warehouse: PathBuf,
    /// Measure library folder (default: the nearest ./measures folder, else the library built into ipmo).
    #[arg(long, global = true, env = "IPMO_MEASURES")]
    measures: Option<PathBuf>,
    /// Governance database: a SQLite file (default: governance.sqlite in the warehouse
    /// directory) or a PostgreSQL URL, postgres://user:password@host:port/database.
    #[arg(long, global = true, env = "IPMO_GOVERNANCE", hide_env_values = true)]
    governance: Option<String>,
    /// Print only results and errors, no progress.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load NHS files into the warehouse.
    #[command(subcommand)]
    Ingest(Ingest),
    /// Run SQL over the warehouse (tables are listed in the README and by `SHOW TABLES`).
    Sql {
        /// The query, e.g. "SELECT month, SUM(items) FROM prescribing GROUP BY month".
        query: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Run the query on an Apache DataFusion Ballista cluster (`ipmo cluster`) instead of on
        /// this machine; needs a build with the `ballista` feature.
        #[arg(long, value_name = "df://HOST:PORT")]
        cluster: Option<String>,
    },
    /// Ad-hoc analysis: BNF code prefixes over other prefixes (a percentage) or over list size (per
    /// 1,000 patients), for every organisation of a level, month by month.
    Analyse(analyse::AnalyseArgs),
    /// Benchmarks on the data in the warehouse (figures only, nothing asserted).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Check, list, show and compute the measure library; values, funnels, alerts and the deprivation lens.
    #[command(subcommand, alias = "measure")]
    Measures(measures::MeasuresCommand),
    /// Custom groups of practices or organisations (localities, peer sets) that every measure covers.
    #[command(subcommand)]
    Groups(measures::GroupsCommand),
    /// What the warehouse knows of a medicine (dm+d, Drug Tariff, concessions, prescribing).
    #[command(subcommand)]
    Medicine(MedicineCommand),
    /// The medicines value programme: substitution sets of generically equivalent presentations and
    /// price-per-unit savings.
    #[command(subcommand)]
    Value(value::ValueCommand),
    /// The monthly board report for an organisation (or every ICB) as PDF or self-contained HTML:
    /// summary, medicines value, stewardship and safety, variation, risks, assurance, workforce,
    /// plans, decisions.
    Report(report::ReportArgs),
    /// Show what the warehouse holds and every file loaded into it.
    Status {
        /// Output format (csv and json list the loads, one row each).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Write synthetic prescribing, organisation, list-size, BNF and IMD files in the real formats.
    Synth(SynthArgs),
    /// Serve the dashboard and JSON API over what the warehouse holds.
    Serve(serve::ServeArgs),
    /// Generate a synthetic health system, load it, compute the measures and serve the dashboard
    /// (reuses earlier runs).
    Demo(demo::DemoArgs),
    /// Accounts of the governance workspace.
    #[command(subcommand)]
    User(governance::UserCommand),
    /// Run a scheduler or an executor of a Ballista query cluster for `ipmo sql --cluster`
    /// (builds with the `ballista` feature).
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Back up, restore and check the governance database (safe while the server runs).
    #[command(subcommand)]
    Db(governance::DbCommand),
    /// Governance records: bulk import from CSV, and the kinds there are.
    #[command(subcommand)]
    Records(governance::RecordsCommand),
}

#[derive(Subcommand)]
enum MedicineCommand {
    /// Hierarchy, ingredients, form-route, packs with Drug Tariff price history, concessions and
    /// national items and cost by month for one medicine.
    Show {
        /// A VMP, AMP, VMPP or AMPP id (an old id is followed), a BNF code, or part of a name.
        term: String,
        /// Print the SQL behind each section, to reproduce it with `ipmo sql`.
        #[arg(long)]
        show_sql: bool,
    },
}

#[derive(Args)]
struct SynthArgs {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Number of practices (6500 for national scale).
    #[arg(long, default_value_t = 400)]
    practices: usize,
    /// Number of months.
    #[arg(long, default_value_t = 24)]
    months: u32,
    /// First month.
    #[arg(long, default_value = "2023-01")]
    start: YearMonth,
    /// Random seed: the same seed gives the same files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Parses the command line with `ipmo.toml`'s settings as defaults (a flag or an environment
/// variable still wins).
fn parse() -> Result<Cli> {
    use clap::{CommandFactory, FromArgMatches};
    let mut cmd = Cli::command();
    if let Some(path) = config::path()? {
        let c = config::read(&path)?;
        if let Some(w) = c.warehouse {
            cmd = cmd.mut_arg("warehouse", |a| a.default_value(w.display().to_string()));
        }
        if let Some(m) = c.measures {
            cmd = cmd.mut_arg("measures", |a| a.default_value(m.display().to_string()));
        }
        if let Some(g) = c.governance {
            cmd = cmd.mut_arg("governance", |a| a.default_value(g));
        }
        for sub in ["serve", "demo"] {
            if let Some(b) = c.bind.clone() {
                cmd = cmd.mut_subcommand(sub, |s| s.mut_arg("bind", |a| a.default_value(b)));
            }
            if c.private == Some(true) {
                cmd = cmd.mut_subcommand(sub, |s| s.mut_arg("private", |a| a.default_value("true")));
            }
            if let Some(v) = c.secure_cookies.clone() {
                cmd = cmd.mut_subcommand(sub, |s| s.mut_arg("secure_cookies", |a| a.default_value(v)));
            }
        }
    }
    Ok(Cli::from_arg_matches(&cmd.get_matches()).unwrap_or_else(|e| e.exit()))
}

fn main() {
    memory::without_transparent_huge_pages();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(cli) {
        // A closed pipe (`ipmo measures list | head`) is the reader's choice, not an error.
        if e.chain()
            .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
        {
            std::process::exit(0);
        }
        eprintln!("error: {e:#}");
        if let Some(ipmo_ingest::IngestError::Row(_)) = e.downcast_ref::<ipmo_ingest::IngestError>() {
            eprintln!(
                "hint: nothing was loaded. Correct the file, or pass --max-errors N to load the good rows and \
                 write up to N bad ones to a rejects file in the warehouse"
            );
        }
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    if !matches!(cli.command, Command::Serve(_) | Command::Demo(_)) {
        serve::start_logging_with("warn", serve::LogFormat::Text);
    }
    if !matches!(cli.command, Command::Serve(_)) {
        memory::keep_freed_memory();
    }
    match cli.command {
        Command::Ingest(what) => {
            let wh = open(&cli.warehouse)?;
            ingest(&wh, what, quiet)
        }
        Command::Value(c) => {
            let db = governance::location(&cli.warehouse, cli.governance.as_deref());
            value::run(&open(&cli.warehouse)?, c, &db, quiet)
        }
        Command::Medicine(MedicineCommand::Show { term, show_sql }) => {
            medicine_show(&open(&cli.warehouse)?, &term, show_sql)
        }
        Command::Sql { query, format, cluster } => {
            let wh = open(&cli.warehouse)?;
            let format = match format {
                Format::Table => OutputFormat::Table,
                Format::Csv => OutputFormat::Csv,
                Format::Json => OutputFormat::Json,
            };
            let rt = tokio::runtime::Runtime::new().context("cannot start the query runtime")?;
            let mut out = std::io::stdout().lock();
            let rows = rt
                .block_on(async {
                    match &cluster {
                        None => wh.query_to(&query, format, &mut out).await,
                        Some(scheduler) => cluster::query(&wh, scheduler, &query, format, &mut out).await,
                    }
                })
                .map_err(|e| {
                    if let ipmo_warehouse::WarehouseError::Io { source, .. } = &e
                        && source.kind() == std::io::ErrorKind::BrokenPipe
                    {
                        // Keep the io error itself, so that a closed pipe exits quietly.
                        return anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
                    }
                    let text = e.to_string();
                    let hint = if text.contains("not found") {
                        "\nhint: `ipmo sql \"SHOW TABLES\"` lists the tables and `SHOW COLUMNS FROM <table>` their \
                     columns; README.md documents each"
                    } else {
                        ""
                    };
                    anyhow::anyhow!("{text}{hint}")
                })?;
            if !quiet && format == OutputFormat::Table {
                eprintln!("{}", ipmo_domain::display::plural(rows, "row", "rows"));
            }
            Ok(())
        }
        Command::Status { format } => status(&open(&cli.warehouse)?, format),
        Command::Analyse(a) => analyse::run(&open(&cli.warehouse)?, a, quiet),
        Command::Bench(c) => bench::run(&open(&cli.warehouse)?, c),
        Command::Measures(c) => measures::run(&cli.warehouse, &measures::library_source(cli.measures), c, quiet),
        Command::Groups(c) => measures::groups(&open(&cli.warehouse)?, c),
        Command::Synth(a) => {
            let config = ipmo_synth::SynthConfig {
                out: a.out,
                practices: a.practices,
                months: a.months,
                start: a.start,
                seed: a.seed,
            };
            synth(&config, quiet).map(|_| ())
        }
        Command::Serve(a) => {
            let db = governance::location(&cli.warehouse, cli.governance.as_deref());
            serve::run(&open(&cli.warehouse)?, &measures::library_source(cli.measures), &a, &db, quiet)
        }
        Command::Report(a) => {
            let db = governance::location(&cli.warehouse, cli.governance.as_deref());
            report::run(&open(&cli.warehouse)?, &measures::library_source(cli.measures), a, &db, quiet)
        }
        Command::User(c) => governance::user(&governance::location(&cli.warehouse, cli.governance.as_deref()), c),
        Command::Db(c) => {
            governance::db(&governance::location(&cli.warehouse, cli.governance.as_deref()), &cli.warehouse, c)
        }
        Command::Records(c) => {
            governance::records(&governance::location(&cli.warehouse, cli.governance.as_deref()), c, quiet)
        }
        Command::Demo(a) => demo::run(a, quiet, &measures::library_source(cli.measures)),
        Command::Cluster(c) => cluster::run(c, quiet),
    }
}

pub(crate) fn open(dir: &Path) -> Result<Warehouse> {
    Warehouse::open(dir).with_context(|| format!("cannot open the warehouse at {}", dir.display()))
}

pub(crate) fn synth(config: &ipmo_synth::SynthConfig, quiet: bool) -> Result<ipmo_synth::SynthSummary> {
    let started = Instant::now();
    let summary = ipmo_synth::generate(config, &mut |line| {
        if !quiet {
            eprintln!("synth: {line} ({:.1} s)", started.elapsed().as_secs_f64());
        }
    })?;
    if !quiet {
        let [p, pcn, sicbl, icb, region] = summary.orgs;
        eprintln!(
            "synth: wrote {} files to {}: {p} practices, {pcn} PCNs, {sicbl} sub-ICB locations, {icb} ICBs, {region} regions; {} EPD rows, {} items in {:.1} s",
            summary.files.len(),
            config.out.display(),
            summary.epd_rows,
            summary.items,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(summary)
}

fn medicine_show(wh: &Warehouse, term: &str, show_sql: bool) -> Result<()> {
    use ipmo_warehouse::medicine::{MAX_MATCHES, Resolved};
    let rt = tokio::runtime::Runtime::new().context("cannot start the query runtime")?;
    let mut out = std::io::stdout().lock();
    match rt.block_on(wh.resolve_medicine(term))? {
        Resolved::Product { vpid, via } => {
            out!("{term}: dm+d product {vpid}, found by {via}");
            rt.block_on(wh.describe_medicine(&vpid, show_sql, &mut out))?;
        }
        Resolved::Several(found) if found.is_empty() => {
            bail!(
                "no medicine in the warehouse matches \"{term}\" (by dm+d id, BNF code or name); is dm+d loaded? (`ipmo status`)"
            )
        }
        Resolved::Several(found) => {
            out!(
                "\"{term}\" matches {} products; give one of these ids:",
                if found.len() > MAX_MATCHES { format!("more than {MAX_MATCHES}") } else { found.len().to_string() }
            );
            for (id, name) in found.iter().take(MAX_MATCHES) {
                out!("  {id:<20} {name}");
            }
        }
        Resolved::BnfOnly(code) => {
            out!(
                "{code}: no dm+d product is mapped to this BNF code (load the BNF SNOMED mapping or an EPD with SNOMED codes)"
            );
            let sql = format!(
                "SELECT month, SUM(items) AS items, SUM(quantity) AS quantity, ROUND(SUM(nic), 2) AS nic_pounds FROM prescribing \
                 WHERE bnf_code = '{code}' GROUP BY month ORDER BY month"
            );
            out!("\nNational prescribing by month");
            if show_sql {
                out!("-- {sql}");
            }
            rt.block_on(wh.query_to(&sql, OutputFormat::Table, &mut out))?;
        }
    }
    Ok(())
}

fn status(wh: &Warehouse, format: Format) -> Result<()> {
    let m = wh.manifest()?;
    if m.loads.is_empty() {
        bail!("the warehouse at {} is empty; load files with `ipmo ingest …` or try `ipmo demo`", wh.root().display());
    }
    if format != Format::Table {
        let mut table = output::Output::new(&[
            "load_id",
            "loaded_at",
            "kind",
            "file",
            "rows_read",
            "rows_kept",
            "rows_rejected",
            "partitions",
            "sha256",
        ]);
        for r in &m.loads {
            use output::Cell;
            table.rows.push(vec![
                Cell::Num(Some(r.load_id as f64), 0),
                Cell::text(&r.loaded_at),
                Cell::text(&r.kind),
                Cell::text(&r.file),
                Cell::Num(Some(r.rows_read as f64), 0),
                Cell::Num(Some(r.rows_kept as f64), 0),
                Cell::Num(Some(r.rows_rejected as f64), 0),
                Cell::text(r.partitions.join(" ")),
                Cell::text(&r.sha256),
            ]);
        }
        return Ok(table.write(format, &mut std::io::stdout().lock())?);
    }
    out!("warehouse {}", wh.root().display());
    for (table, parts) in &m.tables {
        let keys: Vec<&String> = parts.keys().collect();
        let span = match (keys.first(), keys.last()) {
            (Some(a), Some(b)) if keys.len() > 1 => format!("{} partitions, {a} … {b}", keys.len()),
            (Some(a), _) => (*a).clone(),
            _ => String::new(),
        };
        out!("  {table:<20} {span}");
    }
    out!("medicines reference data:");
    for (what, record) in [("dm+d release", &m.dmd_release), ("dm+d BNF/ATC/DDD supplement", &m.dmd_supplement)] {
        match record {
            Some(r) => out!("  {what:<28} {} ({}), load {}", r.date, r.version, r.load_id),
            None => out!("  {what:<28} none loaded (`ipmo ingest dmd RELEASE`)"),
        }
    }
    for (what, table, how) in [
        ("Drug Tariff months", "tariff", "`ipmo ingest tariff FILE…`"),
        ("price concession months", "concessions", "`ipmo ingest concessions FILE…`"),
    ] {
        let months = m.partitions(table);
        if months.is_empty() {
            out!("  {what:<28} none loaded ({how})");
        } else {
            out!("  {what:<28} {} ({})", months.len(), months.join(", "));
        }
    }
    out!("loads:");
    for r in &m.loads {
        out!(
            "  {:>4} {} {:<10} {:<45} {:>10} read {:>10} kept {:>6} rejected  sha256 {}",
            r.load_id,
            r.loaded_at,
            r.kind,
            r.file,
            r.rows_read,
            r.rows_kept,
            r.rows_rejected,
            &r.sha256[..r.sha256.len().min(12)]
        );
    }
    Ok(())
}
