//! `ipmo ingest`: each kind of source file read beside its path and loaded into the warehouse in
//! one transaction, with a line per file saying what was read, kept and rejected. Kept apart from
//! `main.rs` so the command line's entry point stays a table of commands.

use crate::progress::Progress;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ipmo_domain::YearMonth;
use ipmo_ingest::ErrorPolicy;
use ipmo_warehouse::{LoadOutcome, Warehouse};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand)]
pub(crate) enum Ingest {
    /// English Prescribing Dataset (any header since 2014), Detailed Prescribing Information or PDPI files.
    /// Each month in the files replaces that month in the warehouse.
    Epd {
        /// CSV files, plain, .gz or .zip.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Month for files with no month column whose name holds no YYYYMM (e.g. 2017-09).
        #[arg(long)]
        month: Option<YearMonth>,
        #[command(flatten)]
        errors: ErrorArgs,
    },
    /// NHS Digital practice mapping (gp-reg-pat-prac-map) or ODS epraccur files.
    Orgs {
        /// Files, plain, .gz or .zip.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Date the mapping describes, for files with no EXTRACT_DATE column (e.g. 2025-10-01).
        #[arg(long)]
        as_at: Option<chrono::NaiveDate>,
        #[command(flatten)]
        errors: ErrorArgs,
    },
    /// Registered patients per practice (quinary long or wide, or quarterly STAR-PU bands).
    ListSizes {
        /// Files, plain, .gz or .zip.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Month for files with no date column whose name holds no YYYYMM.
        #[arg(long)]
        month: Option<YearMonth>,
        #[command(flatten)]
        errors: ErrorArgs,
    },
    /// NHSBSA BNF Code Information, or BNF code-change lists (`old<TAB>new`, or old_code,new_code).
    Bnf {
        /// Files, plain, .gz or .zip.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        errors: ErrorArgs,
    },
    /// Indicators computed elsewhere (PINCER, polypharmacy, 6+ SABA): CSV with indicator_id, org_code,
    /// month, numerator, denominator (optional title, low_is_good). Each indicator in the files
    /// replaces what was held for it; see README "Imported indicators".
    Indicator {
        /// Files, plain, .gz or .zip.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Suppress numerators and denominators from 1 up to this count (0 suppresses nothing).
        #[arg(long, default_value_t = ipmo_warehouse::DEFAULT_SUPPRESS_AT, value_name = "N")]
        suppress_at: u32,
        #[command(flatten)]
        errors: ErrorArgs,
    },
    /// Drug Tariff Part VIII A, one month per file (NHSBSA's monthly CSV as published, or the
    /// named-column layout): each file's month replaces that month's prices.
    Tariff {
        /// CSV files, plain, .gz or .zip, the month in each name (e.g. part_viii_a_202607.csv).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The month the prices apply to, when there is one file whose name holds no YYYYMM.
        #[arg(long)]
        month: Option<YearMonth>,
        #[command(flatten)]
        errors: ErrorArgs,
    },
    /// Price concessions: Community Pharmacy England's concessions page or archive page saved as
    /// HTML, or a CSV (month,drug,pack_size,price in pounds; or Date,Name,Pack Size,Price Pence).
    /// Lines are matched to dm+d packs by name and pack size (load dm+d or the Drug Tariff first);
    /// each month in the files replaces that month's concessions.
    Concessions {
        /// HTML or CSV files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        errors: ErrorArgs,
    },
    /// NHSBSA's BNF SNOMED mapping (.xlsx as published, or CSV with BNF Code and SNOMED Code
    /// columns); replaces the mapping held.
    BnfSnomed {
        /// Files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        errors: ErrorArgs,
    },
    /// A dm+d release (NHSBSA/TRUD): its folder, its zip (nested zips are opened) or the BNF/ATC/DDD
    /// supplement (f_bnf) alone. The release replaces every dm+d table at once.
    Dmd {
        /// Release folder, .zip, or an f_bnf XML file.
        path: PathBuf,
        /// Load a release older than the one held.
        #[arg(long)]
        force: bool,
    },
    /// Hospital medicines: NHSBSA's Secondary Care Medicines Data (SCMD), in the layout to May 2026,
    /// the June 2026 layout with unit-dose columns, or an extract of month, trust, VMP, name and
    /// quantity. Each month in the files replaces that month; negative quantities (returns) are kept.
    Scmd {
        /// CSV files, plain, .gz or .zip.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        errors: ErrorArgs,
    },
    /// NHS trusts from ODS (etr.csv as published, or a copy with a header), each with its ICB and
    /// region; replaces the trusts held.
    Trusts {
        /// CSV files, plain, .gz or .zip.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        errors: ErrorArgs,
    },
    /// Practice deprivation: OHID Fingertips indicator 93553, or practice_code,imd_score.
    Imd {
        /// Files, plain, .gz or .zip.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        errors: ErrorArgs,
    },
}

#[derive(Args, Clone, Copy)]
pub(crate) struct ErrorArgs {
    /// Skip up to N bad rows (written to a rejects file beside the manifest) instead of stopping at the first.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) max_errors: u64,
}

impl From<ErrorArgs> for ErrorPolicy {
    fn from(a: ErrorArgs) -> Self {
        ErrorPolicy { max_errors: a.max_errors }
    }
}

pub(crate) fn ingest(wh: &Warehouse, what: Ingest, quiet: bool) -> Result<()> {
    let started = Instant::now();
    // One load at a time, refused before a byte is read (held until this function returns).
    let _writer = wh.lock_for_writing()?;
    let outcome = match what {
        Ingest::Epd { files, month, errors } => {
            let mut data = ipmo_ingest::epd::PrescribingData::new();
            let options = ipmo_ingest::epd::EpdOptions { month, errors: errors.into() };
            let mut reports = Vec::new();
            for path in &files {
                let source = ipmo_ingest::open_source(path)?;
                let mut progress = Progress::new(&source.name, quiet);
                let report =
                    ipmo_ingest::epd::read_prescribing(source, &mut data, &options, &mut |n| progress.rows(n))?;
                progress.done(report.rows_read);
                if report.negative_rows > 0 && !quiet {
                    eprintln!(
                        "warning: {}: {} with a negative items, quantity, cost or ADQ value (kept as published; the EPD should have none, so check the file)",
                        report.file,
                        ipmo_domain::display::plural(report.negative_rows as usize, "row", "rows")
                    );
                }
                reports.push((report, path.clone()));
            }
            let mut say = |s: &str| {
                if !quiet {
                    eprintln!("  {s}");
                }
            };
            wh.load_prescribing(&data, &reports, &mut say)?
        }
        Ingest::Orgs { files, as_at, errors } => {
            let loaded = read_each(&files, |path| {
                Ok(ipmo_ingest::orgs::read_orgs(ipmo_ingest::open_source(path)?, as_at, errors.into())?)
            })?;
            wh.load_orgs(loaded)?
        }
        Ingest::ListSizes { files, month, errors } => {
            let loaded = read_each(&files, |path| {
                Ok(ipmo_ingest::list_sizes::read_list_sizes(ipmo_ingest::open_source(path)?, month, errors.into())?)
            })?;
            wh.load_list_sizes(loaded)?
        }
        Ingest::Bnf { files, errors } => {
            let loaded = read_each(&files, |path| {
                Ok(ipmo_ingest::bnf::read_bnf(ipmo_ingest::open_source(path)?, errors.into())?)
            })?;
            wh.load_bnf(loaded)?
        }
        Ingest::Tariff { files, month, errors } => {
            if month.is_some() && files.len() > 1 {
                bail!("--month names the month of one file; give each file's month in its name instead");
            }
            let loaded = read_each(&files, |path| {
                Ok(ipmo_ingest::tariff::read_tariff(ipmo_ingest::open_source(path)?, month, errors.into())?)
            })?;
            wh.load_tariff(loaded)?
        }
        Ingest::Concessions { files, errors } => {
            let loaded = read_each(&files, |path| {
                let (lines, report) =
                    ipmo_ingest::concessions::read_concessions(ipmo_ingest::open_source(path)?, errors.into())?;
                if !quiet {
                    let mut months: std::collections::BTreeMap<String, (usize, i64)> = Default::default();
                    for l in &lines {
                        let m = months.entry(l.month.to_string()).or_default();
                        m.0 += 1;
                        m.1 += l.price_pence;
                    }
                    for (month, (n, sum)) in months {
                        eprintln!(
                            "  {month}: {}, prices summing to £{}",
                            ipmo_domain::display::plural(n, "concession", "concessions"),
                            ipmo_domain::display::number(sum as f64 / 100.0, 2)
                        );
                    }
                    if report.repeated > 0 {
                        eprintln!(
                            "  {} lines repeated an earlier line of their month (a rolled-over table) and count once",
                            report.repeated
                        );
                    }
                }
                Ok((lines, report))
            })?;
            wh.load_concessions(loaded)?
        }
        Ingest::BnfSnomed { files, errors } => {
            let loaded = read_each(&files, |path| {
                let (rows, report) = ipmo_ingest::bnf_snomed::read_bnf_snomed(
                    ipmo_ingest::bnf_snomed::open_mapping(path)?,
                    errors.into(),
                )?;
                if report.without_bnf > 0 && !quiet {
                    eprintln!(
                        "  {}: {} rows name no BNF code (products outside the BNF) and are not stored",
                        path.display(),
                        report.without_bnf
                    );
                }
                Ok((rows, report))
            })?;
            wh.load_bnf_snomed(loaded)?
        }
        Ingest::Dmd { path, force } => {
            let release = ipmo_ingest::dmd::read_dmd(&path, &mut |line| {
                if !quiet {
                    eprintln!("  {line} ({:.1} s)", started.elapsed().as_secs_f64());
                }
            })?;
            if !quiet {
                let date = release.date.map_or_else(|| "undated".to_string(), |d| d.to_string());
                eprintln!("dm+d {} ({date}):", release.version);
                for t in &release.tables {
                    eprintln!("  {:<22} {:>9} rows", t.name, t.rows());
                }
            }
            wh.load_dmd(&release, &path, force)?
        }
        Ingest::Scmd { files, errors } => {
            let loaded = read_each(&files, |path| {
                let (rows, report) = ipmo_ingest::scmd::read_scmd(ipmo_ingest::open_source(path)?, errors.into())?;
                if !quiet {
                    say_scmd(path, &rows, &report);
                }
                Ok((rows, report))
            })?;
            wh.load_scmd(loaded)?
        }
        Ingest::Trusts { files, errors } => {
            let loaded = read_each(&files, |path| {
                Ok(ipmo_ingest::trusts::read_trusts(ipmo_ingest::open_source(path)?, errors.into())?)
            })?;
            wh.load_trusts(loaded)?
        }
        Ingest::Imd { files, errors } => {
            let loaded = read_each(&files, |path| {
                Ok(ipmo_ingest::imd::read_imd(ipmo_ingest::open_source(path)?, errors.into())?)
            })?;
            wh.load_imd(loaded)?
        }
        Ingest::Indicator { files, suppress_at, errors } => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the query runtime")?;
            let known = rt.block_on(wh.known_organisations())?;
            if known.len() <= 1 {
                bail!(
                    "the warehouse at {} has no organisation map, so indicator rows cannot be checked; load one \
                     with `ipmo ingest orgs` first",
                    wh.root().display()
                );
            }
            let org_type_of = |code: &str| known.get(code).cloned();
            let loaded = read_each(&files, |path| {
                Ok(ipmo_ingest::indicator::read_indicators(
                    ipmo_ingest::open_source(path)?,
                    errors.into(),
                    &org_type_of,
                )?)
            })?;
            wh.load_indicators(loaded, suppress_at)?
        }
    };
    if !quiet {
        print_outcome(wh, &outcome, started);
    }
    Ok(())
}

/// What an SCMD file holds, month by month, so that a load can be checked against NHSBSA's own
/// totals before it is relied on.
fn say_scmd(path: &Path, rows: &[ipmo_ingest::scmd::ScmdRow], report: &ipmo_ingest::scmd::ScmdReport) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut months: BTreeMap<YearMonth, (usize, BTreeSet<&str>, f64)> = BTreeMap::new();
    for r in rows {
        let m = months.entry(r.month).or_default();
        m.0 += 1;
        m.1.insert(&r.trust_code);
        m.2 += r.quantity;
    }
    let vmps: BTreeSet<&str> = rows.iter().map(|r| r.vmp_id.as_str()).collect();
    let trusts: BTreeSet<&str> = rows.iter().map(|r| r.trust_code.as_str()).collect();
    eprintln!(
        "{}: {}, {} months, {} trusts, {} VMPs; {} with a negative quantity (returns, kept)",
        path.display(),
        report.layout.describe(),
        months.len(),
        trusts.len(),
        vmps.len(),
        ipmo_domain::display::plural(report.negative_rows as usize, "row", "rows")
    );
    for (month, (n, trusts, quantity)) in months {
        eprintln!(
            "  {month}: {}, {} trusts, quantity {}",
            ipmo_domain::display::plural(n, "row", "rows"),
            trusts.len(),
            ipmo_domain::display::number(quantity, 2)
        );
    }
}

/// Reads every file of one load with `read`, each result beside its path for the manifest; the
/// first file that fails stops the load before anything is stored.
fn read_each<R, P>(files: &[PathBuf], mut read: impl FnMut(&Path) -> Result<(R, P)>) -> Result<Vec<(R, P, PathBuf)>> {
    files.iter().map(|path| read(path).map(|(rows, report)| (rows, report, path.clone()))).collect()
}

fn print_outcome(wh: &Warehouse, o: &LoadOutcome, started: Instant) {
    for r in &o.records {
        eprintln!(
            "loaded {} ({}): {} rows read, {} kept, {} rejected; {}",
            r.file,
            r.layout,
            r.rows_read,
            r.rows_kept,
            r.rows_rejected,
            if r.partitions.len() > 6 { format!("{} partitions", r.partitions.len()) } else { r.partitions.join(", ") }
        );
        if let Some(rej) = &r.rejects_file {
            eprintln!("  rejected rows written to {}", wh.root().join(rej).display());
        }
    }
    eprintln!(
        "load {} committed to {}: {} rows written in {:.1} s",
        o.load_id,
        wh.root().display(),
        o.rows_written,
        started.elapsed().as_secs_f64()
    );
}
