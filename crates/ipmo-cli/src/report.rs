//! `ipmo report`: the monthly board report for one organisation, or for every ICB in parallel,
//! as PDF (builds with the `pdf` feature) or as one self-contained HTML file.

use crate::measures::{LibrarySource, load_library, read_groups};
use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use ipmo_domain::YearMonth;
use ipmo_warehouse::Warehouse;
use ipmo_web::report::{ReportRequest, Template, document, pdf_timestamp};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// Organisation code: an ICB, sub-ICB location, PCN, practice or custom group (default: the
    /// ICB the governance workspace names).
    #[arg(long)]
    org: Option<String>,
    /// The data month, YYYY-MM (default: the newest month with measure values).
    #[arg(long)]
    month: Option<YearMonth>,
    /// The file to write, .pdf or .html (default: ipmo-report-ORG-MONTH.pdf, or .html in a build
    /// without PDF output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// `board` (every section), `summary` (the one-page summary), or a typst template file
    /// (FILE.typ, PDF only) that reads the same report.json and figures as the built-in one.
    #[arg(long, default_value = "board", value_name = "NAME|FILE.typ")]
    template: String,
    /// One report for every ICB, written in parallel into --out-dir.
    #[arg(long, conflicts_with_all = ["org", "out"])]
    all_icbs: bool,
    /// The folder --all-icbs writes into (created if missing).
    #[arg(long, default_value = "reports")]
    out_dir: PathBuf,
    /// What --all-icbs writes (default: pdf when this build has PDF output, else html).
    #[arg(long, value_enum)]
    format: Option<ReportFormat>,
    /// Reports built at once by --all-icbs (default: the machine's cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=32))]
    jobs: Option<u16>,
    /// Judge overdue items and the month's changes at this date, and stamp the report with it
    /// (YYYY-MM-DD): the same data, records and date give the same bytes.
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    Pdf,
    Html,
}

impl ReportFormat {
    fn of_path(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("pdf") => Ok(ReportFormat::Pdf),
            Some("html" | "htm") => Ok(ReportFormat::Html),
            _ => bail!("{}: name the report FILE.pdf or FILE.html; the extension chooses the format", path.display()),
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ReportFormat::Pdf => "pdf",
            ReportFormat::Html => "html",
        }
    }

    fn default() -> Self {
        if ipmo_report::PDF_AVAILABLE { ReportFormat::Pdf } else { ReportFormat::Html }
    }
}

/// The template: which sections, and the typst source for a PDF (None: the built-in one).
fn template(arg: &str) -> Result<(Template, Option<String>)> {
    if let Some(t) = Template::parse(arg) {
        return Ok((t, None));
    }
    let path = Path::new(arg);
    if path.extension().is_some_and(|e| e == "typ") {
        let source = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the template {} (a typst file)", path.display()))?;
        return Ok((Template::Board, Some(source)));
    }
    bail!("--template {arg}: give board, summary, or a typst template file ending .typ")
}

/// What one report needs apart from its organisation.
struct Job<'a> {
    state: &'a ipmo_web::AppState,
    rt: &'a tokio::runtime::Runtime,
    month: Option<YearMonth>,
    template: Template,
    typst: Option<&'a str>,
    today: NaiveDate,
    generated: String,
    stamp: [i32; 6],
}

impl Job<'_> {
    /// Builds `org`'s report and writes it to `path` as `format`; returns its size in bytes.
    fn write(&self, org: &str, path: &Path, format: ReportFormat) -> Result<usize> {
        let req = ReportRequest {
            org: org.to_string(),
            month: self.month,
            template: self.template,
            today: self.today,
            generated: self.generated.clone(),
        };
        let doc = self.rt.block_on(document(self.state, &req)).map_err(|e| anyhow::anyhow!("{org}: {e}"))?;
        let bytes = match format {
            ReportFormat::Pdf => ipmo_report::to_pdf(&doc, self.typst, self.stamp)
                .with_context(|| format!("cannot write {org}'s report as PDF"))?,
            ReportFormat::Html => {
                if self.typst.is_some() {
                    bail!(
                        "a typst template (--template FILE.typ) shapes the PDF only; write FILE.pdf, or drop --template"
                    );
                }
                ipmo_report::html::standalone(&doc).into_bytes()
            }
        };
        // Written beside and renamed, so that a reader never sees half a report.
        let partial = path.with_extension(format!("{}.partial", format.extension()));
        std::fs::write(&partial, &bytes).with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(bytes.len())
    }
}

/// A text progress bar: `[########------------] 12/42`.
fn bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 20;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    format!("[{}{}] {done}/{total}", "#".repeat(filled), "-".repeat(WIDTH - filled))
}

pub(crate) fn run(
    wh: &Warehouse,
    library: &LibrarySource,
    args: ReportArgs,
    governance_db: &ipmo_governance::Location,
    quiet: bool,
) -> Result<()> {
    let started = Instant::now();
    let (template, typst) = template(&args.template)?;
    let single_format = match &args.out {
        Some(path) => Some(ReportFormat::of_path(path)?),
        None => None,
    };
    let format = single_format.or(args.format).unwrap_or_else(ReportFormat::default);
    if format == ReportFormat::Pdf && !ipmo_report::PDF_AVAILABLE {
        bail!("{}", ipmo_report::ReportError::NoPdf);
    }
    let rt = tokio::runtime::Runtime::new().context("cannot start the report runtime")?;
    let lib = load_library(library)?;
    let (groups, _) = read_groups(wh)?;
    let release = rt.block_on(wh.load_release(lib, &groups, true, &mut |month, rows| {
        if !quiet {
            eprintln!("report: index {month}: {rows} rows ({:.1} s)", started.elapsed().as_secs_f64());
        }
    }))?;
    if !quiet {
        eprintln!("report: release {} loaded in {:.1} s", release.id, started.elapsed().as_secs_f64());
    }
    let settings = ipmo_web::GovSettings { today: args.as_of, ..Default::default() };
    let state = if crate::governance::exists(governance_db) {
        let store = rt.block_on(crate::governance::open_store(governance_db))?;
        ipmo_web::AppState::with_governance(release, Arc::new(store), settings)
    } else {
        if !quiet {
            eprintln!(
                "report: no governance database at {governance_db}; the programme sections will say they have no records"
            );
        }
        ipmo_web::AppState::new(release)
    };
    let now = chrono::Utc::now().naive_utc();
    let when = args.as_of.and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or(now);
    let job = Job {
        state: &state,
        rt: &rt,
        month: args.month,
        template,
        typst: typst.as_deref(),
        today: args.as_of.unwrap_or_else(|| chrono::Local::now().date_naive()),
        generated: when.format("%Y-%m-%d %H:%M UTC").to_string(),
        stamp: pdf_timestamp(when),
    };
    let month = args.month.or_else(|| state.release.latest_month()).map(|m| m.to_string()).unwrap_or_default();
    if args.all_icbs {
        let written = all_icbs(&job, &args, format, &month, quiet, started);
        std::mem::forget(state);
        return written;
    }
    let org = match args.org {
        Some(o) => o,
        None => default_org(&job)?,
    };
    let path = args.out.unwrap_or_else(|| {
        PathBuf::from(format!("ipmo-report-{}-{month}.{}", org.to_ascii_lowercase(), format.extension()))
    });
    let one = Instant::now();
    let bytes = job.write(&org, &path, format)?;
    if !quiet {
        eprintln!(
            "report: wrote {} ({} KB) in {:.2} s ({:.1} s with loading)",
            path.display(),
            bytes.div_ceil(1024),
            one.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }
    out!("{}", path.display());
    // The release of a national warehouse is gigabytes of small allocations; freeing them one by
    // one takes longer than writing the report, and the process ends here anyway.
    std::mem::forget(state);
    Ok(())
}

/// The ICB the governance workspace names, or an error listing some ICBs.
fn default_org(job: &Job) -> Result<String> {
    let r = &job.state.release;
    if let Some(g) = &job.state.governance {
        let icbs = job.rt.block_on(ipmo_web::report::workspace_icbs(r, g.store.as_ref()))?;
        if let Some(icb) = icbs.first() {
            return Ok(icb.code.clone());
        }
    }
    let some: Vec<String> =
        r.orgs().iter().filter(|o| o.org_type == "icb").take(5).map(|o| format!("{} ({})", o.code, o.name)).collect();
    bail!(
        "name the organisation with --org CODE: the governance workspace names no ICB (ICBs in the data include {})",
        if some.is_empty() { "none".to_string() } else { some.join(", ") }
    )
}

/// One report per ICB, `--jobs` at a time, with a progress bar.
fn all_icbs(
    job: &Job,
    args: &ReportArgs,
    format: ReportFormat,
    month: &str,
    quiet: bool,
    started: Instant,
) -> Result<()> {
    let icbs: Vec<String> =
        job.state.release.orgs().iter().filter(|o| o.org_type == "icb").map(|o| o.code.clone()).collect();
    if icbs.is_empty() {
        bail!("the data hold no ICBs to report on");
    }
    std::fs::create_dir_all(&args.out_dir).with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let jobs = usize::from(args.jobs.unwrap_or(cores as u16)).clamp(1, icbs.len());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let bytes = AtomicUsize::new(0);
    let began = Instant::now();
    let failures: Vec<anyhow::Error> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    let mut failed = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(code) = icbs.get(i) else { break };
                        let path = args.out_dir.join(format!(
                            "ipmo-report-{}-{month}.{}",
                            code.to_ascii_lowercase(),
                            format.extension()
                        ));
                        match job.write(code, &path, format) {
                            Ok(n) => {
                                bytes.fetch_add(n, Ordering::Relaxed);
                            }
                            Err(e) => failed.push(e),
                        }
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if !quiet {
                            eprintln!("report: {} {code} ({:.1} s)", bar(n, icbs.len()), began.elapsed().as_secs_f64());
                        }
                    }
                    failed
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    });
    let written = icbs.len() - failures.len();
    if !quiet {
        eprintln!(
            "report: {written} reports ({} MB) in {} in {:.1} s with {jobs} at a time ({:.1} s with loading)",
            bytes.load(Ordering::Relaxed).div_ceil(1 << 20),
            args.out_dir.display(),
            began.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(first) = failures.into_iter().next() {
        return Err(first.context(format!("{} of {} reports were not written", icbs.len() - written, icbs.len())));
    }
    out!("{}", args.out_dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_in_proportion() {
        assert_eq!(bar(0, 42), "[--------------------] 0/42");
        assert_eq!(bar(21, 42), "[##########----------] 21/42");
        assert_eq!(bar(42, 42), "[####################] 42/42");
    }

    #[test]
    fn the_extension_chooses_the_format() {
        assert!(ReportFormat::of_path(Path::new("a.PDF")).is_ok_and(|f| f == ReportFormat::Pdf));
        assert!(ReportFormat::of_path(Path::new("a.htm")).is_ok_and(|f| f == ReportFormat::Html));
        let e = ReportFormat::of_path(Path::new("report.docx")).unwrap_err().to_string();
        assert!(e.contains("report.docx") && e.contains("FILE.pdf"), "{e}");
    }

    #[test]
    fn templates_are_names_or_typst_files() {
        assert!(matches!(template("summary"), Ok((Template::Summary, None))));
        assert!(template("fancy").unwrap_err().to_string().contains("board, summary"));
        let e = template("/nonexistent/t.typ").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/t.typ"), "{e}");
    }
}
