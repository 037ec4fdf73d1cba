//! `ipmo measures …` and `ipmo groups …`: the measure library and custom groupings.

use crate::measure_analysis;
use crate::output::{Cell, Format, Output};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Subcommand, ValueEnum};
use ipmo_domain::YearMonth;
use ipmo_measures::Library;
use ipmo_measures::compute::{CodeIndex, GroupSet, MonthAccumulator, PracticeMonth, RowKeys, compute_month};
use ipmo_warehouse::{ComputeRecord, CountedCode, MeasureMonth, Membership, QuantitySplitRows, Warehouse};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Measure library commands.
#[derive(Subcommand)]
pub(crate) enum MeasuresCommand {
    /// Validate every definition and factor table, reporting all problems at once.
    Check,
    /// List the measures: id, status, unit, tags and title.
    List {
        /// Only measures with this tag (e.g. antimicrobial).
        #[arg(long)]
        tag: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// What changed in the library: every version of every measure after its first, newest
    /// first, and how each measure stands against OpenPrescribing.
    Changes {
        /// Only changes on or after this date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show a definition and the presentations it counts in this warehouse, with the SQL that
    /// reproduces its practice numerators.
    Show {
        /// Measure id, e.g. broad_spectrum.
        id: String,
    },
    /// Compute every measure for every month and organisation level (only months whose data or
    /// definitions changed, unless --all).
    Compute {
        /// Recompute every month.
        #[arg(long)]
        all: bool,
        /// Count practices in the organisations they belonged to in each month, or in today's.
        #[arg(long, value_enum, default_value = "as-at")]
        membership: MembershipArg,
    },
    /// Cross-sector measures, hospitals (SCMD) beside primary care in the same units: compute
    /// them, or show an ICB's system (primary care, its trusts, both), a trust's, or England's,
    /// month by month.
    CrossSector {
        /// Compute and store them first, for the months whose data changed (needs dm+d with its
        /// BNF/ATC/DDD supplement, and SCMD, trusts and prescribing for the sectors to compare).
        #[arg(long)]
        compute: bool,
        /// With --compute: every month, changed or not.
        #[arg(long, requires = "compute")]
        all: bool,
        /// An ICB's or a trust's code (default: England).
        #[arg(long)]
        org: Option<String>,
        /// Print the definitions and the SQL that computes them instead of values.
        #[arg(long)]
        sql: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Values of one measure or imported indicator for organisations of a level, month by month,
    /// with national deciles and each organisation's SPC (Making Data Count) classification.
    Values {
        /// Measure or indicator id.
        #[arg(long)]
        measure: String,
        /// practice, pcn, sicbl, icb, region, england (or national), or `group:<set>`.
        #[arg(long, default_value = "icb")]
        org_type: String,
        /// One organisation's code.
        #[arg(long)]
        org: Option<String>,
        /// First month shown (SPC still uses the whole series).
        #[arg(long)]
        from: Option<YearMonth>,
        /// Last month shown.
        #[arg(long)]
        to: Option<YearMonth>,
        /// SPC: fix the limits on the first N months (of each segment) instead of all of them.
        #[arg(long, value_name = "N")]
        baseline: Option<usize>,
        /// SPC: recalculate the limits from these months on (a process change), comma-separated.
        #[arg(long, value_delimiter = ',', value_name = "YYYY-MM")]
        rebase: Vec<YearMonth>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Funnel plot of one level in one month (binomial for percentages, Poisson for item rates,
    /// 95% and 99.8% limits, over-dispersion adjusted).
    Funnel {
        /// Measure or indicator id.
        #[arg(long)]
        measure: String,
        /// Organisation level.
        #[arg(long, default_value = "icb")]
        org_type: String,
        /// Month (default: the latest with values).
        #[arg(long)]
        month: Option<YearMonth>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Alerts: three months in the top or bottom decile, CUSUM change, SPC special cause at the
    /// latest month, six-month savings of £1,000 or more. Bad news first.
    Alerts {
        /// Organisation level.
        #[arg(long, default_value = "icb")]
        org_type: String,
        /// One organisation's code.
        #[arg(long)]
        org: Option<String>,
        /// One measure or indicator.
        #[arg(long)]
        measure: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Deprivation lens: the pooled value by national practice IMD quintile, and the gap between
    /// the most and least deprived fifth (needs `ipmo ingest imd`).
    Lens {
        /// Measure or indicator id.
        #[arg(long)]
        measure: String,
        /// Month (default: the latest with values).
        #[arg(long)]
        month: Option<YearMonth>,
        /// Limit to the practices of one organisation: its level (pcn, sicbl, icb, region)…
        #[arg(long, requires = "org")]
        org_type: Option<String>,
        /// …and its code.
        #[arg(long, requires = "org_type")]
        org: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

/// Membership choice on the command line.
#[derive(Clone, Copy, ValueEnum)]
pub enum MembershipArg {
    /// The organisation each practice belonged to in the month.
    AsAt,
    /// The organisation each practice belongs to today.
    Latest,
}

impl From<MembershipArg> for Membership {
    fn from(m: MembershipArg) -> Self {
        match m {
            MembershipArg::AsAt => Membership::AsAt,
            MembershipArg::Latest => Membership::Latest,
        }
    }
}

/// Custom grouping commands; groups live in `groups.toml` in the warehouse.
#[derive(Subcommand)]
pub(crate) enum GroupsCommand {
    /// List group sets and their groups.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Add (or replace) a group: `ipmo groups add localities north --name "North locality" --members A81001,A81002`.
    Add {
        /// Group set id (created if new), e.g. localities or peers.
        set: String,
        /// Group code within the set.
        code: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Member codes: practices, PCNs, sub-ICB locations, ICBs or regions, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        /// Name of the set when it is created.
        #[arg(long)]
        set_name: Option<String>,
    },
    /// Remove a group (and its set, when it was the last).
    Remove {
        /// Group set id.
        set: String,
        /// Group code.
        code: String,
    },
}

/// Where the measure library comes from.
#[derive(Clone, Debug)]
pub(crate) enum LibrarySource {
    /// A folder of definitions (`--measures`, or a `measures/` folder found from the current
    /// directory).
    Dir(PathBuf),
    /// The library compiled into ipmo.
    BuiltIn,
}

impl std::fmt::Display for LibrarySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(d) => write!(f, "{}", d.display()),
            Self::BuiltIn => f.write_str(ipmo_measures::library::BUILT_IN_LABEL),
        }
    }
}

/// The measure library: `--measures`, else the nearest `measures/` folder in the current
/// directory or one of its parents (so edits in a source checkout take effect at once), else the
/// library built into ipmo.
pub(crate) fn library_source(flag: Option<PathBuf>) -> LibrarySource {
    if let Some(dir) = flag {
        return LibrarySource::Dir(dir);
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let candidate = dir.join("measures");
            if candidate.join("tables").is_dir() || has_toml(&candidate) {
                return LibrarySource::Dir(candidate);
            }
        }
    }
    LibrarySource::BuiltIn
}

fn has_toml(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().any(|e| e.path().extension().is_some_and(|x| x == "toml")))
        .unwrap_or(false)
}

pub(crate) fn load_library(source: &LibrarySource) -> Result<Library> {
    match source {
        LibrarySource::Dir(dir) => {
            if !dir.is_dir() {
                bail!(
                    "no measure library at {}: pass --measures DIR (or set IPMO_MEASURES) to a folder of measure \
                     definitions, or leave both unset to use the library built into ipmo",
                    dir.display()
                );
            }
            Library::load(dir)
                .map_err(|e| anyhow!("{e}\nhint: fix the files named above; `ipmo measures check` re-checks them"))
        }
        LibrarySource::BuiltIn => {
            Library::built_in().map_err(|e| anyhow!("the built-in measure library is invalid: {e}"))
        }
    }
}

/// Below this many presentations a warehouse holds only part of the BNF, so criteria that select
/// nothing there may still select something nationally (the full BNF lists some 80,000).
const PARTIAL_BNF: usize = 20_000;

/// Runs a measures subcommand.
pub(crate) fn run(wh_dir: &Path, dir: &LibrarySource, command: MeasuresCommand, quiet: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        MeasuresCommand::Check => {
            let lib = load_library(dir)?;
            writeln!(
                out,
                "{}: {} measures ({} computed), {} factor tables, all valid",
                dir,
                lib.measures.len(),
                lib.computed().count(),
                lib.tables.len()
            )?;
            // Against a warehouse that knows BNF codes, every criterion must select something.
            if !wh_dir.join("manifest.json").is_file() {
                return Ok(());
            }
            let wh = crate::open(wh_dir)?;
            let mut problems = Vec::new();
            let presentations = wh.presentations()?;
            if !presentations.is_empty() {
                let today: Vec<ipmo_measures::Presentation> = presentations.into_values().collect();
                let dmd_loaded = today.iter().any(|p| !p.products.is_empty());
                let (dead, unknown): (Vec<_>, Vec<_>) =
                    lib.dead_criteria(&today).into_iter().partition(ipmo_measures::DeadCriterion::is_error);
                if dead.is_empty() {
                    writeln!(
                        out,
                        "every code pattern, name keyword{} selects something among the {} presentations {} knows",
                        if dmd_loaded { " and product rule" } else { "" },
                        today.len(),
                        wh_dir.display()
                    )?;
                }
                if !unknown.is_empty() {
                    writeln!(
                        out,
                        "note: {} exclude single presentations {} has never seen (products newer than its BNF list; \
                         they cannot be counted wrongly):",
                        ipmo_domain::display::plural(unknown.len(), "exclusion", "exclusions"),
                        wh_dir.display()
                    )?;
                    for d in &unknown {
                        writeln!(out, "  {} {}: {}", d.measure, d.side, d.criterion)?;
                    }
                }
                let uses_dmd = lib.uses_dmd();
                if !dmd_loaded && !uses_dmd.is_empty() {
                    let ids: Vec<&str> = uses_dmd.iter().map(|m| m.id.as_str()).collect();
                    writeln!(
                        out,
                        "not checked: {} select by dm+d and no release is loaded, so they are not computed ({}); \
                         load one with `ipmo ingest dmd`",
                        ipmo_domain::display::plural(ids.len(), "measure", "measures"),
                        ids.join(", ")
                    )?;
                }
                for d in &dead {
                    writeln!(out, "  {d}")?;
                }
                if !dead.is_empty() && today.len() < PARTIAL_BNF {
                    writeln!(
                        out,
                        "note: {} knows only {} presentations (the demo's catalogue, or prescribing alone); criteria \
                         for products it has never seen are listed too. Load NHSBSA's BNF Code Information and the \
                         yearly change lists (`ipmo ingest bnf`) for a full check",
                        wh_dir.display(),
                        today.len()
                    )?;
                }
                if !dead.is_empty() {
                    problems.push(format!(
                        "{} of the library's criteria select nothing among the {} presentations {} knows (its BNF \
                         codes, prescribing and dm+d products, under today's codes)",
                        dead.len(),
                        today.len(),
                        wh_dir.display()
                    ));
                }
            }
            let rt = tokio::runtime::Runtime::new().context("cannot start the query runtime")?;
            let emptied = rt.block_on(wh.emptied_numerators())?;
            for (id, month, before) in &emptied {
                writeln!(
                    out,
                    "  {id}: the national numerator is 0 in {month}, {} a year before",
                    ipmo_domain::display::number(*before, 2)
                )?;
            }
            if !emptied.is_empty() {
                problems.push(format!(
                    "{} measure-months count nothing where they counted something a year before (`ipmo sql \"{}\"`)",
                    emptied.len(),
                    ipmo_warehouse::Warehouse::EMPTIED_NUMERATORS_SQL
                ));
            }
            if problems.is_empty() {
                return Ok(());
            }
            bail!(
                "{}; a code list left behind by the BNF re-coding counts nothing without saying so: mend or retire it",
                problems.join("; and ")
            )
        }
        MeasuresCommand::List { tag, format } => {
            let lib = load_library(dir)?;
            let mut table = Output::new(&["id", "status", "unit", "tags", "components", "title"]);
            for m in lib.measures.iter().filter(|m| tag.as_ref().is_none_or(|t| m.tags.contains(t))) {
                table.rows.push(vec![
                    Cell::text(&m.id),
                    Cell::text(m.status.as_str()),
                    Cell::text(m.unit()),
                    Cell::text(m.tags.join(",")),
                    Cell::text(m.components.join(",")),
                    Cell::text(&m.title),
                ]);
            }
            if wh_dir.join("manifest.json").is_file() && tag.is_none() {
                for d in Warehouse::open(wh_dir)?.indicator_definitions()? {
                    let row = [&d.id, "imported", "%", "indicator", "", &d.title];
                    table.rows.push(row.iter().map(Cell::text).collect());
                }
            }
            table.write(format, &mut out)?;
            Ok(())
        }
        MeasuresCommand::Changes { since, format } => {
            let lib = load_library(dir)?;
            if let Some(d) = &since
                && chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err()
            {
                bail!("--since \"{d}\" is not a date like 2026-11-23");
            }
            let mut rows: Vec<(&str, &str, u32, &str, &str)> = lib
                .measures
                .iter()
                .flat_map(|m| {
                    m.changes
                        .iter()
                        .map(move |c| (c.date.as_str(), m.id.as_str(), c.version, m.status.as_str(), c.what.as_str()))
                })
                .filter(|(date, ..)| since.as_deref().is_none_or(|s| *date >= s))
                .collect();
            rows.sort_by(|a, b| b.0.cmp(a.0).then(a.1.cmp(b.1)).then(a.2.cmp(&b.2)));
            let mut table = Output::new(&["date", "measure", "version", "status", "what changed"]);
            for (date, id, version, status, what) in rows {
                table.rows.push(vec![
                    Cell::text(date),
                    Cell::text(id),
                    Cell::text(version.to_string()),
                    Cell::text(status),
                    Cell::text(what),
                ]);
            }
            table.write(format, &mut out)?;
            if format == Format::Table {
                let mut by_class = std::collections::BTreeMap::new();
                for m in lib.computed() {
                    *by_class.entry(m.fidelity()).or_insert(0) += 1;
                }
                let counts: Vec<String> = by_class.iter().map(|(f, n)| format!("{n} {}", f.as_str())).collect();
                writeln!(out, "{} computed measures: {}", lib.computed().count(), counts.join(", "))?;
            }
            Ok(())
        }
        MeasuresCommand::Show { id } => {
            drop(out);
            show(wh_dir, dir, &id)
        }
        MeasuresCommand::Compute { all, membership } => {
            compute(&crate::open(wh_dir)?, dir, all, membership.into(), quiet)
        }
        MeasuresCommand::CrossSector { compute, all, org, sql, format } => {
            cross_sector(wh_dir, (compute, all), org.as_deref(), sql, format, quiet, &mut out)
        }
        MeasuresCommand::Values { measure, org_type, org, from, to, baseline, rebase, format } => {
            let (wh, lib) = (crate::open(wh_dir)?, load_library(dir)?);
            let limits = ipmo_measures::analysis::SpcLimits { baseline_points: baseline, rebase_at: rebase };
            measure_analysis::values(&wh, &lib, &measure, &org_type, org.as_deref(), from, to, &limits, format, quiet)
        }
        MeasuresCommand::Funnel { measure, org_type, month, format } => {
            let (wh, lib) = (crate::open(wh_dir)?, load_library(dir)?);
            measure_analysis::funnel(&wh, &lib, &measure, &org_type, month, format, quiet)
        }
        MeasuresCommand::Alerts { org_type, org, measure, format } => {
            let (wh, lib) = (crate::open(wh_dir)?, load_library(dir)?);
            measure_analysis::alerts_cmd(&wh, &lib, &org_type, org.as_deref(), measure.as_deref(), format, quiet)
        }
        MeasuresCommand::Lens { measure, month, org_type, org, format } => {
            let (wh, lib) = (crate::open(wh_dir)?, load_library(dir)?);
            measure_analysis::lens_cmd(&wh, &lib, &measure, month, org_type.as_deref(), org.as_deref(), format, quiet)
        }
    }
}

/// Computes and stores the cross-sector measures, reporting each one's coverage.
pub(crate) fn compute_cross_sector(wh: &Warehouse, all: bool, quiet: bool) -> Result<()> {
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().context("cannot start the query runtime")?;
    let report = rt.block_on(wh.compute_cross_sector(all, |m, months| {
        if !quiet {
            let span = match (months.first(), months.last()) {
                (Some(first), Some(last)) if first != last => format!("{first} to {last}"),
                (Some(first), _) => first.clone(),
                _ => String::new(),
            };
            eprintln!("cross-sector: computing {} ({}) for {span}", m.id, m.name);
        }
    }))?;
    if !quiet && report.months_computed.is_empty() {
        eprintln!("cross-sector: every month is up to date ({} months)", report.months_up_to_date);
        return Ok(());
    }
    if !quiet {
        eprintln!(
            "cross-sector: computed {} ({} up to date)",
            ipmo_domain::display::plural(report.months_computed.len(), "month", "months"),
            report.months_up_to_date
        );
        for m in &report.measures {
            eprintln!(
                "cross-sector: {}: {} rows, {} trusts, {} ICBs, {} months; {} selected lines not converted",
                m.id, m.rows, m.trusts, m.icbs, m.months, m.lines_not_converted
            );
        }
        eprintln!("cross-sector: {} rows stored in {:.1} s", report.rows, started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// `ipmo measures cross-sector`.
fn cross_sector(
    wh_dir: &Path,
    (compute, all): (bool, bool),
    org: Option<&str>,
    sql: bool,
    format: Format,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<()> {
    use ipmo_measures::cross_sector::CROSS_SECTOR_MEASURES;
    use ipmo_release::cross_sector::Sector;
    if sql {
        for m in &CROSS_SECTOR_MEASURES {
            writeln!(out, "{}: {}\n  {}\n  why: {}", m.id, m.name, m.description, m.why)?;
            writeln!(out, "  per organisation and sector, over medicine_use:\n    {};", m.sql())?;
            writeln!(
                out,
                "  stored at every level (trust, icb, national) as:\n    {};\n",
                ipmo_warehouse::cross_sector::levels_sql(m)
            )?;
        }
        return Ok(());
    }
    let wh = crate::open(wh_dir)?;
    if compute {
        compute_cross_sector(&wh, all, quiet)?;
    }
    let code = org.unwrap_or(ipmo_domain::practice::ENGLAND);
    if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("--org \"{code}\" is not an organisation code (letters and digits, e.g. QHL or RRK)");
    }
    let values = wh.load_cross_sector()?;
    let mut table =
        Output::new(&["measure", "month", "sector", "numerator", "denominator", "percent", "not converted"]);
    for (i, m) in CROSS_SECTOR_MEASURES.iter().enumerate() {
        for sector in Sector::ALL {
            for p in values.series(i, code, sector) {
                table.rows.push(vec![
                    Cell::text(m.id),
                    Cell::text(p.month),
                    Cell::text(sector.label()),
                    Cell::Num(Some(p.numerator), 1),
                    Cell::Num(Some(p.denominator), 1),
                    Cell::Num(p.percent(), 1),
                    Cell::text(p.lines_not_converted),
                ]);
            }
        }
    }
    if table.rows.is_empty() {
        let computed = !wh.manifest()?.files("cross_sector_values").is_empty();
        if computed {
            bail!(
                "no cross-sector values for {code}: give an ICB's or a trust's code (`ipmo sql \"SELECT DISTINCT level, org_code FROM cross_sector_values\"`)"
            );
        }
        bail!("cross-sector measures have not been computed; run `ipmo measures cross-sector --compute`");
    }
    table.write(format, out)?;
    Ok(())
}

fn show(wh_dir: &Path, dir: &LibrarySource, id: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let lib = load_library(dir)?;
    let m = lib.get(id).ok_or_else(|| anyhow!("no measure \"{id}\" in {}; `ipmo measures list` shows them", dir))?;
    writeln!(out, "{} (version {}, {:?}): {}", m.id, m.version, m.status, m.title)?;
    writeln!(out, "  {}", m.description)?;
    writeln!(out, "  why it matters: {}", m.why_it_matters)?;
    writeln!(out, "  unit: {}; direction: {:?}; cost-based: {}", m.unit(), m.direction, m.is_cost_based)?;
    writeln!(out, "  tags: {}; opportunities: {:?}", m.tags.join(", "), m.opportunities)?;
    if let Some(t) = &m.target {
        writeln!(out, "  target: {} ({})", t.value, t.source)?;
    }
    writeln!(out, "  source: {}; authored {}, reviewed {}; hash {}", m.source, m.authored, m.reviewed, &m.hash[..12])?;
    if let Some(op) = &m.openprescribing_id {
        writeln!(out, "  OpenPrescribing measure: {op} (https://openprescribing.net/measure/{op}/)")?;
    }
    writeln!(out, "  against OpenPrescribing: {}", m.fidelity().as_str())?;
    if let Some(d) = &m.differences {
        writeln!(out, "  deliberate differences: {d}")?;
    }
    for c in &m.changes {
        writeln!(out, "  version {} ({}): {}", c.version, c.date, c.what)?;
    }
    let wh = Warehouse::open(wh_dir).ok();
    let mut presentations: Vec<ipmo_measures::Presentation> =
        wh.as_ref().and_then(|w| w.presentations().ok()).unwrap_or_default().into_values().collect();
    presentations.sort_by(|a, b| a.code.cmp(&b.code));
    let (latest, items) = match &wh {
        Some(w) => w.latest_month_items(&w.bnf_current_codes()?)?,
        None => (None, Default::default()),
    };
    for (label, side) in [("numerator", &m.numerator), ("denominator", &m.denominator)] {
        writeln!(out, "{label}: {}", side.describe())?;
        if !side.quantity.is_prescribing() {
            continue;
        }
        if m.is_composite() && label == "numerator" {
            writeln!(out, "  the sum of its components' numerators: {}", m.components.join(", "))?;
        } else {
            for line in side.criteria() {
                writeln!(out, "  {line}")?;
            }
        }
        let resolved = lib.resolve_in(side, &presentations, latest);
        if presentations.is_empty() {
            writeln!(out, "  (no presentations in the warehouse at {} to resolve against)", wh_dir.display())?;
        } else {
            writeln!(
                out,
                "  resolves to {} in this warehouse{}:",
                ipmo_domain::display::plural(resolved.len(), "presentation", "presentations"),
                latest.map(|m| format!(" (items in England in {m})")).unwrap_or_default()
            )?;
            for r in &resolved {
                let factor = if r.factor == 1.0 { String::new() } else { format!("  × {}", r.factor) };
                let n = items.get(&r.bnf_code).copied().unwrap_or(0);
                writeln!(
                    out,
                    "    {} {:>10}  {}{factor}",
                    r.bnf_code,
                    ipmo_domain::display::number(n as f64, 0),
                    r.name
                )?;
            }
        }
    }
    writeln!(out, "reproduce practice numerators for a month (after `ipmo measures compute`):")?;
    if m.numerator.uses_quantity_split() {
        // The split holds published codes; the rules name today's.
        let rules: Vec<String> =
            m.numerator.quantity_per_item.iter().map(|r| r.sql("c.bnf_code", "q.quantity_per_item")).collect();
        let value = if m.numerator.quantity == ipmo_measures::Quantity::Quantity {
            "q.quantity_per_item * q.items"
        } else {
            "q.items"
        };
        writeln!(
            out,
            "  ipmo sql \"SELECT q.practice_code, SUM({value}) AS numerator FROM prescribing_by_quantity q \
             LEFT JOIN bnf_map b ON b.old_code = q.bnf_code JOIN measure_codes c ON c.bnf_code = COALESCE(b.current_code, q.bnf_code) \
             AND c.measure_id = '{id}' AND c.side = 'numerator' WHERE q.month = DATE '2025-01-01' AND ({}) \
             GROUP BY q.practice_code ORDER BY 1\"",
            rules.join(" OR "),
            id = m.id
        )?;
    } else {
        writeln!(
            out,
            "  ipmo sql \"SELECT p.practice_code, SUM(p.{col} * c.factor) AS numerator FROM prescribing_current p \
             JOIN measure_codes c ON c.bnf_code = p.bnf_code AND c.measure_id = '{id}' AND c.side = 'numerator' \
             WHERE p.month = DATE '2025-01-01' GROUP BY p.practice_code ORDER BY 1\"",
            col = m.numerator.quantity.sql_column(),
            id = m.id
        )?;
    }
    Ok(())
}

/// The custom group sets and the input tag of the groups file (see [`Warehouse::groups`]).
pub(crate) fn read_groups(wh: &Warehouse) -> Result<(Vec<GroupSet>, Option<String>)> {
    Ok(wh.groups()?)
}

/// Runs a groups subcommand.
pub(crate) fn groups(wh: &Warehouse, command: GroupsCommand) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let (mut sets, _) = read_groups(wh)?;
    match command {
        GroupsCommand::List { format } => {
            if sets.is_empty() && format == Format::Table {
                writeln!(out, "no custom groups; add one with `ipmo groups add SET CODE --name NAME --members A,B`")?;
                return Ok(());
            }
            let mut table = Output::new(&["set", "set_name", "code", "name", "members"]);
            for s in &sets {
                for g in &s.groups {
                    table.rows.push(vec![
                        Cell::text(&s.id),
                        Cell::text(&s.name),
                        Cell::text(&g.code),
                        Cell::text(&g.name),
                        Cell::text(g.members.join(",")),
                    ]);
                }
            }
            table.write(format, &mut out)?;
            return Ok(());
        }
        GroupsCommand::Add { set, code, name, members, set_name } => {
            if !ipmo_warehouse::groups::is_group_set_id(&set) {
                bail!("group set id \"{set}\" must be letters, digits, - and _");
            }
            let members: Vec<String> =
                members.iter().map(|m| m.trim().to_ascii_uppercase()).filter(|m| !m.is_empty()).collect();
            let idx = match sets.iter().position(|s| s.id == set) {
                Some(i) => i,
                None => {
                    sets.push(GroupSet {
                        id: set.clone(),
                        name: set_name.unwrap_or_else(|| set.clone()),
                        groups: vec![],
                    });
                    sets.len() - 1
                }
            };
            let group = ipmo_measures::compute::Group { code: code.clone(), name, members };
            let s = &mut sets[idx];
            match s.groups.iter().position(|g| g.code == code) {
                Some(i) => s.groups[i] = group,
                None => s.groups.push(group),
            }
        }
        GroupsCommand::Remove { set, code } => {
            let s = sets.iter_mut().find(|s| s.id == set).ok_or_else(|| anyhow!("no group set \"{set}\""))?;
            let before = s.groups.len();
            s.groups.retain(|g| g.code != code);
            if s.groups.len() == before {
                bail!("group set \"{set}\" has no group \"{code}\"");
            }
            sets.retain(|s| !s.groups.is_empty());
        }
    }
    let path = wh.save_groups(sets)?;
    writeln!(out, "saved {}; run `ipmo measures compute` to include the change", path.display())?;
    Ok(())
}

/// Adds a month's quantity split to an accumulator, reading only the codes a measure needs.
struct SplitInto<'a, 'l> {
    index: &'a mut CodeIndex<'l>,
    acc: &'a mut MonthAccumulator,
}

impl QuantitySplitRows for SplitInto<'_, '_> {
    fn wants(&mut self, keys: &RowKeys, code: u32) -> bool {
        self.index.reads_split(keys, code)
    }

    fn row(&mut self, keys: &RowKeys, practice: u32, code: u32, quantity_per_item: f64, items: i64) {
        self.acc.add_split_keyed(self.index, keys, practice, code, quantity_per_item, items);
    }
}

/// Computes stale months and stores them.
pub(crate) fn compute(
    wh: &Warehouse,
    dir: &LibrarySource,
    all: bool,
    membership: Membership,
    quiet: bool,
) -> Result<()> {
    let started = Instant::now();
    let lib = load_library(dir)?;
    let (groups, groups_input) = read_groups(wh)?;
    let extra: Vec<String> = groups_input.into_iter().collect();
    let library_hash = lib.hash();
    let months = wh.measure_months(&library_hash, membership, &extra)?;
    if months.is_empty() {
        bail!("the warehouse at {} has no prescribing; load some with `ipmo ingest epd`", wh.root().display());
    }
    let months: Vec<MeasureMonth> = months.into_iter().filter(|m| all || !m.fresh).collect();
    if months.is_empty() {
        if !quiet {
            eprintln!("measures: every month is up to date ({} measures)", lib.computed().count());
        }
        return Ok(());
    }
    let presentations = wh.presentations()?;
    let current = wh.bnf_current_codes()?;
    // Every presentation the warehouse knows, for `measure_codes`; taken before the index owns them.
    let mut all_codes: Vec<ipmo_measures::Presentation> = presentations.values().cloned().collect();
    all_codes.sort_by(|a, b| a.code.cmp(&b.code));
    let index = CodeIndex::new(&lib, presentations);
    if !quiet {
        for (m, why) in index.skipped() {
            eprintln!("measures: {} not computed: it {why}", m.id);
        }
        let dead: Vec<_> =
            lib.dead_criteria(&all_codes).into_iter().filter(ipmo_measures::DeadCriterion::is_error).collect();
        if !dead.is_empty() {
            eprintln!(
                "measures: {} of the library's criteria select nothing among the {} presentations known here; `ipmo measures check` lists them",
                dead.len(),
                all_codes.len()
            );
        }
    }
    let reads_split = index.uses_quantity_split();
    let rt = tokio::runtime::Runtime::new().context("cannot start the query runtime")?;
    let wanted: Vec<ipmo_domain::YearMonth> = months.iter().map(|m| m.month).collect();
    let mut practices = rt.block_on(wh.practices_for_months(&wanted, membership))?;
    // Months are independent: each worker takes every n-th month with its own code cache.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(months.len()).max(1);
    let mut jobs: Vec<Vec<(MeasureMonth, Vec<PracticeMonth>)>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, m) in months.into_iter().enumerate() {
        let p = practices.remove(&m.month).unwrap_or_default();
        jobs[i % workers].push((m, p));
    }
    // Each month is stored as soon as it is computed, so results never pile up in memory; nothing
    // is visible until the writer commits.
    let writer = wh.measure_writer(&lib)?;
    let results: Vec<Result<usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let mut index = index.clone();
                // This worker's numbering of practices and codes, which its index remembers.
                let mut keys = RowKeys::default();
                let (current, groups, library_hash, writer) = (&current, &groups, &library_hash, &writer);
                scope.spawn(move || -> Result<usize> {
                    let mut done = 0;
                    for (MeasureMonth { month, inputs, .. }, practices) in job {
                        let t = Instant::now();
                        if practices.is_empty() {
                            eprintln!(
                                "measures: {month}: no practices in the organisation map; load gp-reg-pat-prac-map with `ipmo ingest orgs` (month skipped)"
                            );
                            continue;
                        }
                        index.set_month(month);
                        let mut acc = MonthAccumulator::new(&index, &practices);
                        let rows = wh.for_each_prescribing_keyed(month, current, &mut keys, |keys, p, code, a| {
                            acc.add_keyed(&mut index, keys, p, code, a)
                        })?;
                        if reads_split {
                            let mut split = SplitInto { index: &mut index, acc: &mut acc };
                            let held = wh.for_each_quantity_split_keyed(month, current, &mut keys, &mut split)?;
                            acc.split_rows = held;
                            if acc.split_rows == 0 && !quiet {
                                eprintln!(
                                    "measures: {month}: no quantity split (loaded before it was kept); measures that read quantity per item get no values this month: reload the month with `ipmo ingest epd` to include them"
                                );
                            }
                        }
                        let results = compute_month(&index, &acc, month, &practices, groups);
                        tracing::info!(
                            target: "ipmo::compute",
                            month = %month,
                            rows,
                            practices = practices.len(),
                            values = results.values.len(),
                            ms = t.elapsed().as_millis() as u64,
                            "month computed"
                        );
                        if !quiet {
                            eprintln!(
                                "measures: {month}: {rows} rows ({} from other prescribers left out), {} practices, {} values in {:.2} s",
                                acc.rows_other_prescribers,
                                practices.len(),
                                results.values.len(),
                                t.elapsed().as_secs_f64()
                            );
                        }
                        let record = ComputeRecord {
                            library_hash: library_hash.clone(),
                            membership: membership.as_str().to_string(),
                            inputs,
                            computed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        };
                        writer.write_month(month, &results, record)?;
                        done += 1;
                    }
                    Ok(done)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a measure worker failed")))).collect()
    });
    let mut n_months = 0;
    for r in results {
        n_months += r?;
    }
    // National items per presentation in the latest month, stored beside each counted code, and
    // what each measure counts in that month (some lists change by month).
    let (latest, latest_items) = wh.latest_month_items(&current)?;
    let mut counted = Vec::new();
    for m in index.measures() {
        for (side_name, side) in [("numerator", &m.numerator), ("denominator", &m.denominator)] {
            for r in lib.resolve_in(side, &all_codes, latest) {
                let code = r.bnf_code;
                counted.push(CountedCode {
                    measure_id: m.id.clone(),
                    side: side_name,
                    bnf_code: code.clone(),
                    name: r.name,
                    factor: r.factor,
                    latest_items: latest_items.get(&code).copied().unwrap_or(0),
                });
            }
        }
    }
    let rows = writer.finish(&lib, &counted)?;
    tracing::info!(
        target: "ipmo::compute",
        values = rows,
        measures = lib.computed().count(),
        months = n_months,
        ms = started.elapsed().as_millis() as u64,
        "values stored"
    );
    if !quiet {
        eprintln!(
            "measures: stored {rows} values for {} measures over {} in {:.1} s",
            lib.computed().count(),
            ipmo_domain::display::plural(n_months, "month", "months"),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
