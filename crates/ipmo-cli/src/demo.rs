//! `ipmo demo`: a synthetic health system generated, loaded and summarised in one command.
//!
//! Months are generated and loaded one at a time and each EPD file is deleted once it is in the
//! warehouse, so the demo never needs more than one month of CSV on disk. A second run finds the
//! months already loaded and does nothing but print the summary.

use crate::{ErrorArgs, Ingest};
use anyhow::{Context, Result, bail};
use clap::Args;
use ipmo_domain::YearMonth;
use ipmo_domain::display::plural;
use ipmo_warehouse::{OutputFormat, Warehouse};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `ipmo demo`.
#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Directory for the generated files (`input/`) and the demo warehouse (`warehouse/`).
    #[arg(long, default_value = "ipmo-demo")]
    dir: PathBuf,
    /// Number of practices (England has about 6,300; 400 gives seven ICBs in seven regions).
    #[arg(long, default_value_t = 400)]
    practices: usize,
    /// Number of months, ending with the most recent.
    #[arg(long, default_value_t = 24)]
    months: u32,
    /// First month (the default ends the 24 months in September 2026, as recent as published
    /// prescribing runs by the end of 2026).
    #[arg(long, default_value = "2024-10")]
    start: YearMonth,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after loading and computing instead of serving the dashboard.
    #[arg(long)]
    no_serve: bool,
    #[command(flatten)]
    serve: crate::serve::ServeArgs,
}

/// The file recording which settings built a demo directory, so a rerun with other settings
/// starts afresh instead of mixing two systems.
const STAMP: &str = "ipmo-demo.stamp";

/// Runs the demo.
pub(crate) fn run(a: DemoArgs, quiet: bool, measures_dir: &crate::measures::LibrarySource) -> Result<()> {
    let started = Instant::now();
    let say = |s: &str| {
        if !quiet {
            eprintln!("demo: {s}");
        }
    };
    let stamp =
        format!("ipmo demo 3\npractices={}\nmonths={}\nstart={}\nseed={}\n", a.practices, a.months, a.start, a.seed);
    prepare_dir(&a.dir, &stamp, &say)?;
    let input = a.dir.join("input");
    let config = ipmo_synth::SynthConfig {
        out: input.clone(),
        practices: a.practices,
        months: a.months,
        start: a.start,
        seed: a.seed,
    };
    let generator = ipmo_synth::Generator::new(&config)?;
    let wh = Warehouse::open(&a.dir.join("warehouse"))?;
    let manifest = wh.manifest()?;
    let loaded: HashSet<String> = manifest.loads.iter().map(|l| l.sha256.clone()).collect();
    let errors = ErrorArgs { max_errors: 0 };

    // Reference files are small and deterministic: rewrite them and load any not yet loaded.
    let reference = generator.write_reference()?;
    let [p, pcn, sicbl, icb, region] = generator.org_counts();
    say(&format!("system: {p} practices, {pcn} PCNs, {sicbl} sub-ICB locations, {icb} ICBs, {region} regions"));
    // dm+d before the Tariff and concessions, which are matched to its packs.
    let mut steps = Vec::new();
    let mut tariffs = Vec::new();
    for path in reference {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if path.is_dir() {
            if name == "dmd" && manifest.dmd_release.is_none() {
                steps.insert(0, Ingest::Dmd { path, force: false });
            }
            continue;
        }
        if loaded.contains(&sha256_of(&path)?) {
            continue;
        }
        let step = match name.as_str() {
            "bnf_codes.csv" => Ingest::Bnf { files: vec![path], errors },
            "gp-reg-pat-prac-map.csv" => Ingest::Orgs { files: vec![path], as_at: None, errors },
            "practice_imd.csv" => Ingest::Imd { files: vec![path], errors },
            "bnf_snomed_mapping.csv" => Ingest::BnfSnomed { files: vec![path], errors },
            "price_concessions.html" => Ingest::Concessions { files: vec![path], errors },
            "etr.csv" => Ingest::Trusts { files: vec![path], errors },
            n if n.starts_with("drug_tariff_part_viii_a_") => {
                tariffs.push(path);
                continue;
            }
            other => bail!("ipmo synth wrote an unexpected file {other}"),
        };
        steps.push(step);
    }
    if !tariffs.is_empty() {
        let at = steps.iter().position(|s| matches!(s, Ingest::Concessions { .. })).unwrap_or(steps.len());
        steps.insert(at, Ingest::Tariff { files: tariffs, month: None, errors });
    }
    for step in steps {
        crate::ingest(&wh, step, quiet)?;
    }

    let have_epd: HashSet<&str> = manifest.partitions("prescribing_exact").into_iter().collect();
    let have_lists: HashSet<&str> = manifest.partitions("list_sizes").into_iter().collect();
    // A month loaded by an older ipmo lacks the quantity-per-item split: load it again.
    let have_split: HashSet<&str> = manifest.partitions("prescribing_by_quantity").into_iter().collect();
    let mut new_months = 0;
    for t in 0..a.months {
        let month = a.start.plus(t).to_string();
        if have_epd.contains(month.as_str())
            && have_lists.contains(month.as_str())
            && have_split.contains(month.as_str())
        {
            continue;
        }
        let files = generator.write_month(t)?;
        say(&format!(
            "{month}: generated {} EPD rows and {} hospital medicines lines; loading",
            files.epd_rows, files.scmd_lines
        ));
        crate::ingest(&wh, Ingest::Epd { files: vec![files.epd.clone()], month: None, errors }, quiet)?;
        crate::ingest(&wh, Ingest::ListSizes { files: vec![files.list_sizes], month: None, errors }, quiet)?;
        crate::ingest(&wh, Ingest::Scmd { files: vec![files.scmd.clone()], errors }, quiet)?;
        for done in [&files.epd, &files.scmd] {
            std::fs::remove_file(done).with_context(|| format!("cannot remove {}", done.display()))?;
        }
        new_months += 1;
    }
    if new_months == 0 {
        say(&format!("every month is already in {}; nothing to load", wh.root().display()));
    } else {
        say(&format!("loaded {} in {:.0} s", plural(new_months, "month", "months"), started.elapsed().as_secs_f64()));
    }

    say("computing the measure library for every month and organisation level");
    crate::measures::compute(&wh, measures_dir, false, ipmo_warehouse::Membership::AsAt, quiet)?;
    say("computing price-per-unit savings over the substitution sets of the synthetic dm+d release");
    crate::value::compute(&wh, ipmo_warehouse::Membership::AsAt, false, quiet)?;
    say("computing the cross-sector measures: each trust, and each ICB's primary care, hospitals and both");
    crate::measures::compute_cross_sector(&wh, false, quiet)?;

    let governance_db = ipmo_governance::Location::File(wh.root().join(ipmo_governance::DATABASE_FILE));
    let value = crate::demo_programme::ValueEvents {
        events: ipmo_synth::events::events(&config),
        latest: a.start.plus(a.months - 1),
    };
    let programme_icb = crate::demo_programme::seed(&governance_db, &wh, &value, quiet)?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the query runtime")?;
    let mut out = std::io::stdout().lock();
    out!("\nThe demo warehouse is {}. Per ICB, for the latest month:", wh.root().display());
    rt.block_on(wh.query_to(
        "SELECT o.name AS icb, COUNT(DISTINCT p.practice_code) AS practices, SUM(p.items) AS items, \
         ROUND(SUM(p.actual_cost), 2) AS actual_cost_gbp \
         FROM prescribing p JOIN org_membership_latest m ON p.practice_code = m.practice_code \
         JOIN orgs o ON o.code = m.icb_code AND o.org_type = 'icb' \
         WHERE p.month = (SELECT MAX(month) FROM prescribing) AND NOT p.unidentified \
         GROUP BY o.name ORDER BY o.name",
        OutputFormat::Table,
        &mut out,
    ))?;
    out!(
        "\nBroad-spectrum antibiotics (% of oral antibacterial items) per ICB, latest month, with its percentile among ICBs:"
    );
    rt.block_on(wh.query_to(
        "SELECT o.name AS icb, ROUND(v.value, 2) AS percent, ROUND(v.percentile, 0) AS percentile \
         FROM measure_values v JOIN orgs o ON o.code = v.org_code AND o.org_type = 'icb' \
         WHERE v.measure_id = 'broad_spectrum' AND v.org_type = 'icb' \
         AND v.month = (SELECT MAX(month) FROM measure_values) ORDER BY v.value DESC",
        OutputFormat::Table,
        &mut out,
    ))?;
    out!(
        "\nTry: ipmo --warehouse {w} measures show broad_spectrum\n     \
         ipmo --warehouse {w} measure values --measure broad_spectrum --org-type icb --org QAA\n     \
         ipmo --warehouse {w} measures alerts --org-type icb\n     \
         ipmo --warehouse {w} analyse --numerator 0501013K0,0501021 --denominator 0501 --org-type icb\n     \
         ipmo --warehouse {w} sql \"SELECT month, SUM(items) AS items FROM prescribing \
         WHERE bnf_code LIKE '0501%' GROUP BY month ORDER BY month\"",
        w = wh.root().display()
    );
    out!(
        "\nGovernance workspace (a fictional IPMO programme for {programme_icb}): sign in at /login as {} with password {}",
        crate::demo_programme::DEMO_ADMIN.0,
        crate::demo_programme::DEMO_ADMIN.1
    );
    drop(out);
    if a.no_serve {
        return Ok(());
    }
    drop(rt);
    crate::memory::give_back_freed_memory();
    say("starting the dashboard");
    crate::serve::run(&wh, measures_dir, &a.serve, &governance_db, quiet)
}

/// Makes sure `dir` is a demo directory built with these settings, starting it afresh when the
/// settings changed. Refuses to touch a directory that `ipmo demo` did not make.
fn prepare_dir(dir: &Path, stamp: &str, say: &dyn Fn(&str)) -> Result<()> {
    let stamp_path = dir.join(STAMP);
    match std::fs::read_to_string(&stamp_path) {
        Ok(existing) if existing == stamp => {
            say(&format!("reusing {}", dir.display()));
            return Ok(());
        }
        Ok(_) => {
            say(&format!("settings changed; rebuilding {}", dir.display()));
            for sub in ["input", "warehouse"] {
                let p = dir.join(sub);
                if p.exists() {
                    std::fs::remove_dir_all(&p).with_context(|| format!("cannot remove {}", p.display()))?;
                }
            }
        }
        Err(_) => {
            let non_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
            if non_empty {
                bail!("{} exists and was not made by `ipmo demo`; choose another directory with --dir", dir.display());
            }
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&stamp_path, stamp).with_context(|| format!("cannot write {}", stamp_path.display()))
}

/// The checksum the manifest records for a file, to tell whether it is already loaded.
fn sha256_of(path: &Path) -> Result<String> {
    let src = ipmo_ingest::open_source(path)?;
    let handle = src.checksum_handle();
    let mut reader = src.reader;
    std::io::copy(&mut reader, &mut std::io::sink()).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(handle.get().0)
}
