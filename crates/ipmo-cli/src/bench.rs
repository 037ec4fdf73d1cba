//! `ipmo bench analyse`: ad-hoc analysis latency over random BNF prefix sets at every level,
//! with the query set written out so that `scripts/bench-analyse` can time DuckDB on the same.

use crate::output::{Cell, Format, Output};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ipmo_index::{Analysis, CodeSet, Denominator, Level, PrescribingIndex, ValueKind};
use ipmo_warehouse::{Membership, Warehouse};
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::time::Instant;

/// Benchmarks (they print figures and assert nothing).
#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Time ad-hoc analyses on the prescribing index: N random BNF prefix sets at each level.
    Analyse(BenchAnalyseArgs),
}

/// `ipmo bench analyse` options.
#[derive(Args)]
pub(crate) struct BenchAnalyseArgs {
    /// Random prefix sets per level.
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// Seed for the prefix sets.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the prefix sets as JSON (for scripts/bench-analyse).
    #[arg(long)]
    queries_out: Option<PathBuf>,
    /// Also run the first N sets at each level through the SQL reference and require equal rows.
    #[arg(long, default_value_t = 0)]
    check_sql: usize,
}

/// One benchmark query, as written for the DuckDB script.
#[derive(serde::Serialize)]
struct QuerySpec {
    numerator: Vec<String>,
    /// `null` for list size.
    denominator: Option<Vec<String>>,
}

/// Random prefix sets drawn from the codes the index holds: 1–3 numerator prefixes cut at a BNF
/// level (chapter … presentation); half over list size, half over the first prefix's section.
fn query_set(index: &PrescribingIndex, n: usize, seed: u64) -> Vec<QuerySpec> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let cuts = [2usize, 4, 6, 7, 9, 11, 15];
    (0..n)
        .map(|i| {
            let k = rng.random_range(1..=3);
            let numerator: Vec<String> = (0..k)
                .map(|_| {
                    let code = &index.codes[rng.random_range(0..index.codes.len())];
                    let cut = cuts[rng.random_range(0..cuts.len())].min(code.len());
                    code[..cut].to_string()
                })
                .collect();
            let denominator = (i % 2 == 1).then(|| vec![numerator[0][..numerator[0].len().min(4)].to_string()]);
            QuerySpec { numerator, denominator }
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Peak resident memory of this process, MB (Linux).
pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<f64>().ok().map(|kb| kb / 1024.0)
}

/// Runs a benchmark.
pub(crate) fn run(wh: &Warehouse, command: BenchCommand) -> Result<()> {
    let BenchCommand::Analyse(a) = command;
    let rt = tokio::runtime::Runtime::new().context("cannot start the query runtime")?;
    let t = Instant::now();
    let (index, source) = rt.block_on(wh.current_index(Membership::AsAt, &mut |month, rows| {
        eprintln!("index: {month}: {rows} rows ({:.1} s)", t.elapsed().as_secs_f64());
    }))?;
    if index.codes.is_empty() {
        bail!("the warehouse at {} has no prescribing to benchmark", wh.root().display());
    }
    eprintln!(
        "index: {} in {:.2} s: {} rows, {} practices, {} months, {:.0} MB",
        source.as_str(),
        t.elapsed().as_secs_f64(),
        index.rows(),
        index.practices.len(),
        index.months.len(),
        index.memory_bytes() as f64 / 1e6
    );
    let specs = query_set(&index, a.queries, a.seed);
    if let Some(path) = &a.queries_out {
        std::fs::write(path, serde_json::to_vec_pretty(&specs)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut out = Output::new(&["level", "queries", "p50_ms", "p99_ms", "max_ms", "rows_per_query"]);
    for org_level in ipmo_domain::practice::OrgLevel::ALL {
        let (name, level) = (org_level.as_str(), Level::from(org_level));
        let mut times = Vec::with_capacity(specs.len());
        let mut rows = 0usize;
        for (i, s) in specs.iter().enumerate() {
            let analysis = Analysis {
                numerator: CodeSet { include: s.numerator.clone(), exclude: vec![] },
                denominator: match &s.denominator {
                    Some(d) => Denominator::Codes(CodeSet { include: d.clone(), exclude: vec![] }),
                    None => Denominator::ListSize,
                },
                value: ValueKind::Items,
                level: level.clone(),
                org: None,
                from: None,
                to: None,
            };
            let t = Instant::now();
            let result = index.analyse(&analysis)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            rows += result.len();
            if i < a.check_sql {
                let reference = rt.block_on(wh.analyse_reference(&analysis, Membership::AsAt))?;
                if reference != result {
                    bail!("the index and the SQL reference differ for {name} query {i}: {:?}", s.numerator);
                }
            }
        }
        times.sort_by(f64::total_cmp);
        out.rows.push(vec![
            Cell::text(name),
            Cell::Num(Some(times.len() as f64), 0),
            Cell::Num(Some(percentile(&times, 50.0)), 1),
            Cell::Num(Some(percentile(&times, 99.0)), 1),
            Cell::Num(times.last().copied(), 1),
            Cell::Num(Some(rows as f64 / specs.len().max(1) as f64), 0),
        ]);
    }
    out.write(Format::Table, &mut std::io::stdout().lock())?;
    if let Some(mb) = peak_rss_mb() {
        out!("peak memory: {mb:.0} MB");
    }
    Ok(())
}
