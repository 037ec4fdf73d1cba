//! `ipmo serve`: loads the warehouse's data release and serves the dashboard and API.

use crate::measures::{LibrarySource, load_library};
use anyhow::{Context, Result};
use clap::Args;
use ipmo_warehouse::Warehouse;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `ipmo serve`.
#[derive(Args, Clone)]
pub(crate) struct ServeArgs {
    /// Address to listen on. Keep 127.0.0.1 unless a reverse proxy with TLS sits in front.
    #[arg(long, env = "IPMO_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Do not build or open the prescribing index (saves time on first start; ad-hoc analysis
    /// is then unavailable).
    #[arg(long)]
    pub no_index: bool,
    /// Require sign-in for the prescribing dashboard too (by default it is public data, readable
    /// without an account; governance records always need one).
    #[arg(long, env = "IPMO_PRIVATE")]
    pub private: bool,
    /// When session cookies carry the Secure flag: auto (unless listening on a loopback address),
    /// always (behind an HTTPS proxy), never (plain HTTP on a trusted network).
    #[arg(long, value_enum, default_value = "auto")]
    pub secure_cookies: CookieSecurity,
    /// A reverse proxy sits in front and appends the client's address to X-Forwarded-For:
    /// sign-in limits then count that address rather than the proxy's. Leave off otherwise, or
    /// any client could choose the address it is counted under.
    #[arg(long, env = "IPMO_BEHIND_PROXY")]
    pub behind_proxy: bool,
    /// How log lines on stderr are written: text for a person, json (one object a line) for a
    /// log collector. Which events are written is set by IPMO_LOG (or RUST_LOG), e.g.
    /// `ipmo=debug` or `warn,ipmo::access=info`.
    #[arg(long, value_enum, env = "IPMO_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// How often, in seconds (1–3600), to look for a newer data release in the warehouse (after
    /// `ipmo ingest` or `ipmo measures compute`). A newer one is loaded beside the one served and
    /// then served from the next request on: no restart, no request dropped.
    #[arg(long, env = "IPMO_RELOAD_CHECK", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub reload_check: u64,
    /// Never load a newer release while running; serve the one loaded at start until stopped.
    #[arg(long)]
    pub no_reload: bool,
}

/// The shape of log lines.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// When cookies are marked Secure.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum CookieSecurity {
    /// Secure unless listening on a loopback address (browsers on the same machine use http://).
    Auto,
    /// Always Secure.
    Always,
    /// Never Secure.
    Never,
}

/// Loads the release and serves it until the process is stopped.
pub(crate) fn run(
    wh: &Warehouse,
    library: &LibrarySource,
    args: &ServeArgs,
    governance_db: &ipmo_governance::Location,
    quiet: bool,
) -> Result<()> {
    let started = Instant::now();
    start_logging(quiet, args.log_format);
    let lib = load_library(library)?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the server runtime")?;
    let (groups, _) = crate::measures::read_groups(wh)?;
    let manifest = read_manifest(wh);
    let release = rt.block_on(wh.load_release(lib, &groups, !args.no_index, &mut |month, rows| {
        if !quiet {
            eprintln!("serve: index {month}: {rows} rows ({:.1} s)", started.elapsed().as_secs_f64());
        }
    }))?;
    if !quiet {
        eprintln!(
            "serve: release {} loaded in {:.1} s: {} organisations, {} months of measure values{}",
            release.id,
            started.elapsed().as_secs_f64(),
            release.orgs().len(),
            release.months.len(),
            if release.index.is_some() { ", prescribing index open" } else { "" }
        );
    }
    let store = rt.block_on(crate::governance::open_store(governance_db))?;
    let settings = ipmo_web::GovSettings {
        public_dashboard: !args.private,
        secure_cookies: match args.secure_cookies {
            CookieSecurity::Auto => !args.bind.ip().is_loopback(),
            CookieSecurity::Always => true,
            CookieSecurity::Never => false,
        },
        today: None,
        behind_proxy: args.behind_proxy,
    };
    let accounts = rt.block_on(ipmo_governance::GovernanceStore::users(&store))?.len();
    if !quiet {
        eprintln!(
            "serve: governance records in {governance_db} ({}{})",
            ipmo_domain::display::plural(accounts, "account", "accounts"),
            if accounts == 0 { "; add one with `ipmo user add NAME --role admin`" } else { "" }
        );
    }
    let state = Arc::new(ipmo_web::AppState::with_governance(release, Arc::new(store), settings));
    let site = ipmo_web::Site::new(state);
    if !args.no_reload {
        let reloader = Reloader {
            wh: wh.clone(),
            library: library.clone(),
            with_index: !args.no_index,
            every: Duration::from_secs(args.reload_check),
            site: site.clone(),
            runtime: rt.handle().clone(),
            quiet,
        };
        std::thread::Builder::new()
            .name("ipmo-reload".into())
            .spawn(move || reloader.run(manifest))
            .context("cannot start the thread that watches for new releases")?;
    }
    out!("IPMO dashboard: http://{}/ (Ctrl-C stops it)", args.bind);
    rt.block_on(ipmo_web::serve(args.bind, site)).with_context(|| {
        format!("cannot serve on {} (is another program using the port? try --bind 127.0.0.1:8081)", args.bind)
    })
}

/// The warehouse's manifest as it stands: a new load or computation rewrites it (atomically),
/// so a change in its bytes is a new release.
fn read_manifest(wh: &Warehouse) -> Vec<u8> {
    std::fs::read(wh.root().join("manifest.json")).unwrap_or_default()
}

/// How long a changed warehouse whose measures are not yet computed waits before it is loaded
/// anyway (someone loaded data and will not compute, or computes with another membership).
const UNCOMPUTED_WAIT: Duration = Duration::from_secs(120);

/// Watches the warehouse and serves each newer release once it is loaded.
struct Reloader {
    wh: Warehouse,
    library: LibrarySource,
    with_index: bool,
    every: Duration,
    site: ipmo_web::Site,
    runtime: tokio::runtime::Handle,
    quiet: bool,
}

impl Reloader {
    /// Polls the manifest; `served` is the manifest of the release being served. A changed
    /// manifest is loaded once it has stood for one interval and every month's measures are
    /// computed for it, so that `ipmo ingest` followed by `ipmo measures compute` loads one
    /// release, not two; a load left without a computation is taken after [`UNCOMPUTED_WAIT`].
    /// A release that fails to load is reported and the one served stays.
    fn run(self, mut served: Vec<u8>) {
        let (mut seen, mut changed_at) = (served.clone(), Instant::now());
        loop {
            std::thread::sleep(self.every);
            let now = read_manifest(&self.wh);
            if now == served || now.is_empty() {
                seen = now;
                continue;
            }
            if now != seen {
                (seen, changed_at) = (now, Instant::now());
                continue;
            }
            // Another load may follow at once (list sizes, then the month's EPD): wait while
            // one runs, and for the measures.
            if ipmo_warehouse::load_running(self.wh.root()) {
                continue;
            }
            if changed_at.elapsed() < UNCOMPUTED_WAIT && !self.measures_current() {
                continue;
            }
            let started = Instant::now();
            match self.load() {
                Ok(release) => {
                    let (id, newest) = (release.id.clone(), release.months.last().copied());
                    self.site.replace_release(release);
                    tracing::info!(target: "ipmo::serve", release = %id, "serving a new release");
                    if !self.quiet {
                        eprintln!(
                            "serve: release {id} (newest month {}) loaded in {:.1} s and served from now on",
                            newest.map_or_else(|| "none".to_string(), |m| m.to_string()),
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
                Err(e) => {
                    tracing::error!(target: "ipmo::error", error = %format!("{e:#}"), "a new release failed to load; still serving the previous one");
                    if !self.quiet {
                        eprintln!("serve: a new release failed to load ({e:#}); still serving the previous one");
                    }
                }
            }
            served = now;
        }
    }

    /// Whether every month of prescribing has its measures computed from what the warehouse
    /// holds now (with the default membership, as `ipmo measures compute` has it).
    fn measures_current(&self) -> bool {
        let check = || -> Result<bool> {
            let lib = load_library(&self.library)?;
            let (_, groups_input) = crate::measures::read_groups(&self.wh)?;
            let extra: Vec<String> = groups_input.into_iter().collect();
            let months = self.wh.measure_months(&lib.hash(), ipmo_warehouse::Membership::AsAt, &extra)?;
            Ok(months.iter().all(|m| m.fresh))
        };
        check().unwrap_or(false)
    }

    fn load(&self) -> Result<ipmo_web::Release> {
        let lib = load_library(&self.library)?;
        let (groups, _) = crate::measures::read_groups(&self.wh)?;
        Ok(self.runtime.block_on(self.wh.load_release(lib, &groups, self.with_index, &mut |_, _| {}))?)
    }
}

/// Structured server events on stderr: every request (`ipmo::access`), every internal error with
/// its cause (`ipmo::error`), sign-ins, failures, lock-outs and refused connections. Filtered by
/// `IPMO_LOG`, else `RUST_LOG` (tracing's env-filter syntax; `info` for ipmo's own events by
/// default, `warn` with --quiet), as text or JSON lines.
pub(crate) fn start_logging(quiet: bool, format: LogFormat) {
    start_logging_with(if quiet { "warn" } else { "warn,ipmo=info" }, format);
}

/// Logging for any command, with `default` as the filter when neither variable is set. Commands
/// other than `serve` use `warn`: their progress is already on stderr, and `IPMO_LOG=ipmo=info`
/// adds the timed phases of ingest (`ipmo::ingest`), computation (`ipmo::compute`) and index
/// builds (`ipmo::index`).
pub(crate) fn start_logging_with(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IPMO_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A second call (the demo serves after its own set-up) keeps the first subscriber.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
