//! `ipmo demo`: a synthetic system, generated, loaded and summarised in one command.

use crate::{Ingest, synth};
use anyhow::{Context, Result};
use clap::Args;
use ipmo_domain::YearMonth;
use ipmo_warehouse::{OutputFormat, Warehouse};
use std::path::PathBuf;

/// Options of `ipmo demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Directory for the generated files (`input/`) and the demo warehouse (`warehouse/`).
    #[arg(long, default_value = "ipmo-demo")]
    dir: PathBuf,
    /// Number of practices.
    #[arg(long, default_value_t = 400)]
    practices: usize,
    /// Number of months.
    #[arg(long, default_value_t = 24)]
    months: u32,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(a: DemoArgs, quiet: bool) -> Result<()> {
    let input = a.dir.join("input");
    let start: YearMonth = "2023-01".parse().expect("valid month");
    let config =
        ipmo_synth::SynthConfig { out: input.clone(), practices: a.practices, months: a.months, start, seed: a.seed };
    let stamp = format!("practices={} months={} start={} seed={} format=1", a.practices, a.months, start, a.seed);
    let stamp_path = input.join("synth.done");
    if std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) {
        if !quiet {
            eprintln!("demo: reusing the synthetic files in {}", input.display());
        }
    } else {
        let _ = std::fs::remove_file(&stamp_path);
        synth(&config, quiet)?;
        std::fs::write(&stamp_path, &stamp).with_context(|| format!("cannot write {}", stamp_path.display()))?;
    }
    let wh = Warehouse::open(&a.dir.join("warehouse"))?;
    let loaded: std::collections::HashSet<String> = wh.manifest()?.loads.into_iter().map(|l| l.sha256).collect();
    let fresh = |p: &PathBuf| -> Result<bool> {
        let src = ipmo_ingest::open_source(p)?;
        let handle = src.checksum_handle();
        let mut r = src.reader;
        std::io::copy(&mut r, &mut std::io::sink()).with_context(|| format!("cannot read {}", p.display()))?;
        Ok(!loaded.contains(&handle.get().0))
    };
    let errors = crate::ErrorArgs { max_errors: 0 };
    let mut steps: Vec<Ingest> = Vec::new();
    let file = |n: &str| input.join(n);
    if fresh(&file("bnf_codes.csv"))? {
        steps.push(Ingest::Bnf { files: vec![file("bnf_codes.csv")], errors });
    }
    if fresh(&file("gp-reg-pat-prac-map.csv"))? {
        steps.push(Ingest::Orgs { files: vec![file("gp-reg-pat-prac-map.csv")], as_at: None, errors });
    }
    if fresh(&file("practice_imd.csv"))? {
        steps.push(Ingest::Imd { files: vec![file("practice_imd.csv")], errors });
    }
    let mut lists = Vec::new();
    for t in 0..a.months {
        let m = start.plus(t).compact();
        let ls = file(&format!("gp-reg-pat-prac-quin-age_{m}.csv"));
        if fresh(&ls)? {
            lists.push(ls);
        }
        let epd = file(&format!("epd_{m}.csv"));
        if fresh(&epd)? {
            steps.push(Ingest::Epd { files: vec![epd], month: None, errors });
        }
    }
    if !lists.is_empty() {
        steps.push(Ingest::ListSizes { files: lists, month: None, errors });
    }
    if steps.is_empty() && !quiet {
        eprintln!("demo: the warehouse in {} already holds every file", wh.root().display());
    }
    for step in steps {
        crate::ingest(&wh, step, quiet)?;
    }
    let rt = tokio::runtime::Runtime::new()?;
    let mut out = std::io::stdout().lock();
    println!("\nThe demo warehouse is {}. What it holds, per ICB, for the latest month:", wh.root().display());
    rt.block_on(wh.query_to(
        "SELECT o.name AS icb, COUNT(DISTINCT p.practice_code) AS practices, SUM(p.items) AS items, \
         ROUND(SUM(p.actual_cost), 2) AS actual_cost_gbp \
         FROM prescribing p JOIN org_membership_latest m ON p.practice_code = m.practice_code \
         JOIN orgs o ON o.code = m.icb_code AND o.org_type = 'icb' \
         WHERE p.month = (SELECT MAX(month) FROM prescribing) GROUP BY o.name ORDER BY o.name",
        OutputFormat::Table,
        &mut out,
    ))?;
    println!(
        "Try: ipmo --warehouse {} sql \"SELECT month, SUM(items) AS items FROM prescribing WHERE bnf_code LIKE '0501%' GROUP BY month ORDER BY month\"",
        wh.root().display()
    );
    Ok(())
}
