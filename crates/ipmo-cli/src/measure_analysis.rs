//! `ipmo measures values|funnel|alerts|lens`: what the stored values say, for library measures and
//! imported indicators alike. The statistics live in `ipmo_measures::analysis`; this module reads
//! the series, runs them and prints tables with the SQL that reproduces the inputs.

use crate::output::{Cell, Format, Output};
use anyhow::{Context, Result, anyhow, bail};
use ipmo_domain::YearMonth;
use ipmo_domain::display::plural;
use ipmo_measures::Library;
use ipmo_measures::analysis::{
    Alert, Judgement, OrgCounts, SpcLimits, Tone, ValuePoint, alerts, funnel_plot, lens, spc_with,
};
use ipmo_measures::compute::LEVELS;
use ipmo_stats::Direction;
use ipmo_stats::funnel::{Z95, Z998};
use ipmo_warehouse::{Membership, StoredValue, ValueFilter, Warehouse};
use std::collections::BTreeMap;
use std::io::Write;

/// What the analyses need to know about a measure or an imported indicator.
pub(crate) struct Metric {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Unit label.
    pub unit: String,
    /// Direction, target, multiplier, funnel model.
    pub judgement: Judgement,
    /// Where its values are stored and the id column there.
    pub table: (&'static str, &'static str),
}

/// Finds a measure in the library, else an imported indicator in the warehouse.
pub(crate) fn metric(lib: &Library, wh: &Warehouse, id: &str) -> Result<Metric> {
    if let Some(m) = lib.get(id) {
        return Ok(Metric {
            id: m.id.clone(),
            title: m.title.clone(),
            unit: m.unit(),
            judgement: Judgement::of(m),
            table: ("measure_values", "measure_id"),
        });
    }
    if let Some(d) = wh.indicator_definitions()?.into_iter().find(|d| d.id == id) {
        let direction = match d.direction.as_str() {
            "lower_is_better" => Direction::LowerIsBetter,
            "higher_is_better" => Direction::HigherIsBetter,
            _ => Direction::Neither,
        };
        return Ok(Metric {
            id: d.id,
            title: d.title,
            unit: "%".into(),
            judgement: Judgement::indicator(direction),
            table: ("indicator_values", "indicator_id"),
        });
    }
    bail!("no measure or imported indicator \"{id}\"; `ipmo measures list` shows both")
}

/// Accepts the organisation types values are stored under (and `national` for England).
pub(crate) fn org_type(arg: &str) -> Result<String> {
    let t = arg.trim().to_ascii_lowercase();
    let t = if t == "national" { "england".to_string() } else { t };
    if LEVELS.contains(&t.as_str()) || t.strip_prefix("group:").is_some_and(|g| !g.is_empty()) {
        Ok(t)
    } else {
        bail!("--org-type \"{arg}\" is not one of {} or group:<set id>", LEVELS.join(", "))
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the query runtime")
}

/// Splits values ordered by metric, org type and org into one series per organisation.
fn series(values: Vec<StoredValue>) -> Vec<(String, String, String, Vec<ValuePoint>)> {
    let mut out: Vec<(String, String, String, Vec<ValuePoint>)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some(last) if last.0 == v.metric && last.1 == v.org_type && last.2 == v.org_code => last.3.push(v.point),
            _ => out.push((v.metric, v.org_type, v.org_code, vec![v.point])),
        }
    }
    out
}

fn reproduce(sql: &str, quiet: bool) {
    if !quiet {
        eprintln!("reproduce the inputs: ipmo sql \"{sql}\"");
    }
}

/// `ipmo measures values`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn values(
    wh: &Warehouse,
    lib: &Library,
    id: &str,
    org_type_arg: &str,
    org: Option<&str>,
    from: Option<YearMonth>,
    to: Option<YearMonth>,
    limits: &SpcLimits,
    format: Format,
    quiet: bool,
) -> Result<()> {
    let m = metric(lib, wh, id)?;
    let org_type = org_type(org_type_arg)?;
    let org = org.map(str::to_ascii_uppercase);
    let filter = ValueFilter { metric: Some(&m.id), org_type: Some(&org_type), org_code: org.as_deref(), month: None };
    let rt = runtime()?;
    let stored = rt.block_on(wh.stored_values(&filter))?;
    if stored.is_empty() {
        bail!(
            "no values for {} at {org_type}{}; run `ipmo measures compute` (or check the code with `ipmo sql \"SELECT DISTINCT org_code FROM measure_values WHERE org_type = '{org_type}'\"`)",
            m.id,
            org.as_deref().map(|o| format!(" {o}")).unwrap_or_default()
        );
    }
    let deciles = rt.block_on(wh.stored_deciles(&m.id, &org_type))?;
    let mut cols = vec!["month", "org_type", "org_code", "numerator", "denominator", "value", "percentile"];
    let decile_names: Vec<String> = ipmo_stats::percentile::DECILES.iter().map(|d| format!("p{d}")).collect();
    cols.extend(decile_names.iter().map(String::as_str));
    cols.extend(["spc_mean", "spc_lower", "spc_upper", "spc_class", "spc_rule"]);
    let mut out = Output::new(&cols);
    let mut summaries = Vec::new();
    for (_, t, code, points) in series(stored) {
        let chart = spc_with(&points, &m.judgement, limits);
        if let Some(c) = &chart {
            summaries.push(format!(
                "{code}: SPC variation {}{}",
                snake(&c.chart.variation),
                c.chart
                    .assurance
                    .map(|a| format!(", assurance {} (target {})", snake(&a), fmt_opt(m.judgement.target)))
                    .unwrap_or_default()
            ));
        }
        for p in &points {
            if from.is_some_and(|f| p.month < f) || to.is_some_and(|t| p.month > t) {
                continue;
            }
            let mut row = vec![
                Cell::text(p.month),
                Cell::text(&t),
                Cell::text(&code),
                Cell::Num(p.numerator(), 2),
                Cell::Num(p.denominator(), 2),
                Cell::Num(p.value(), 3),
                Cell::Num(p.percentile(), 1),
            ];
            let d = deciles.get(&p.month);
            for pct in ipmo_stats::percentile::DECILES {
                row.push(Cell::Num(d.and_then(|d| d.iter().find(|x| x.0 == pct).map(|x| x.1)), 3));
            }
            let point = chart.as_ref().and_then(|c| {
                c.months
                    .iter()
                    .position(|x| *x == p.month)
                    .map(|i| (&c.chart.points[i], &c.chart.segments[c.chart.points[i].segment]))
            });
            row.push(Cell::Num(point.map(|(_, s)| s.mean), 3));
            row.push(Cell::Num(point.map(|(_, s)| s.lower), 3));
            row.push(Cell::Num(point.map(|(_, s)| s.upper), 3));
            row.push(Cell::text(point.map(|(p, _)| snake(&p.class)).unwrap_or_default()));
            row.push(Cell::text(point.and_then(|(p, _)| p.rule.map(|r| snake(&r))).unwrap_or_default()));
            out.rows.push(row);
        }
    }
    out.write(format, &mut std::io::stdout().lock())?;
    if !quiet {
        eprintln!("{}: {} ({})", m.id, m.title, m.unit);
        if summaries.len() <= 20 {
            for s in &summaries {
                eprintln!("  {s}");
            }
        }
        if summaries.is_empty() {
            eprintln!(
                "  no SPC: a chart needs at least {} months with a value",
                ipmo_measures::analysis::MIN_SPC_POINTS
            );
        }
    }
    reproduce(&wh.stored_values_sql(&filter), quiet);
    Ok(())
}

fn snake<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "none".into())
}

/// The month asked for, else the latest with values for the metric.
fn month_or_latest(
    rt: &tokio::runtime::Runtime,
    wh: &Warehouse,
    m: &Metric,
    month: Option<YearMonth>,
) -> Result<YearMonth> {
    match month {
        Some(month) => Ok(month),
        None => rt
            .block_on(wh.latest_value_month(&m.id))?
            .ok_or_else(|| anyhow!("no values for {}; run `ipmo measures compute`", m.id)),
    }
}

/// `ipmo measures funnel`.
pub(crate) fn funnel(
    wh: &Warehouse,
    lib: &Library,
    id: &str,
    org_type_arg: &str,
    month: Option<YearMonth>,
    format: Format,
    quiet: bool,
) -> Result<()> {
    let m = metric(lib, wh, id)?;
    let org_type = org_type(org_type_arg)?;
    let rt = runtime()?;
    let month = month_or_latest(&rt, wh, &m, month)?;
    let filter = ValueFilter { metric: Some(&m.id), org_type: Some(&org_type), org_code: None, month: Some(month) };
    let stored = rt.block_on(wh.stored_values(&filter))?;
    let rows: Vec<OrgCounts> = stored.iter().filter_map(StoredValue::counts).collect();
    let plot = funnel_plot(&rows, &m.judgement).map_err(|e| anyhow!("{}, {org_type}, {month}: {e}", m.id))?;
    let k = plot.multiplier;
    let mut out = Output::new(&[
        "org_code",
        "numerator",
        "denominator",
        "value",
        "z",
        "band",
        "lower_998",
        "lower_95",
        "upper_95",
        "upper_998",
    ]);
    for (org, p) in plot.orgs.iter().zip(&plot.funnel.points) {
        let (l95, u95) = plot.funnel.limits(p.denominator, Z95);
        let (l998, u998) = plot.funnel.limits(p.denominator, Z998);
        out.rows.push(vec![
            Cell::text(org),
            Cell::Num(Some(p.numerator), 2),
            Cell::Num(Some(p.denominator), 2),
            Cell::Num(Some(p.value * k), 3),
            Cell::Num(Some(p.z), 2),
            Cell::text(snake(&p.band)),
            Cell::Num(Some(l998 * k), 3),
            Cell::Num(Some(l95 * k), 3),
            Cell::Num(Some(u95 * k), 3),
            Cell::Num(Some(u998 * k), 3),
        ]);
    }
    out.write(format, &mut std::io::stdout().lock())?;
    if !quiet {
        let f = &plot.funnel;
        eprintln!(
            "{} ({}), {org_type}, {month}: {} model, pooled value {:.3}, over-dispersion φ = {:.2}, τ² = {:.3e}; {} organisations",
            m.id,
            m.unit,
            snake(&f.model),
            f.target * k,
            f.phi,
            f.tau2,
            f.points.len()
        );
    }
    reproduce(&wh.stored_values_sql(&filter), quiet);
    Ok(())
}

/// `ipmo measures alerts`.
pub(crate) fn alerts_cmd(
    wh: &Warehouse,
    lib: &Library,
    org_type_arg: &str,
    org: Option<&str>,
    measure: Option<&str>,
    format: Format,
    quiet: bool,
) -> Result<()> {
    let org_type = org_type(org_type_arg)?;
    let org = org.map(str::to_ascii_uppercase);
    let chosen = measure.map(|id| metric(lib, wh, id)).transpose()?;
    let filter = ValueFilter {
        metric: chosen.as_ref().map(|m| m.id.as_str()),
        org_type: Some(&org_type),
        org_code: org.as_deref(),
        month: None,
    };
    let rt = runtime()?;
    let stored = rt.block_on(wh.stored_values(&filter))?;
    let mut metrics: BTreeMap<String, Option<Metric>> = BTreeMap::new();
    let latest = rt.block_on(wh.latest_value_months(filter.metric))?;
    let mut found: Vec<(String, String, Alert)> = Vec::new();
    for (id, _, code, points) in series(stored) {
        let info = metrics.entry(id.clone()).or_insert_with(|| metric(lib, wh, &id).ok());
        let Some(info) = info else { continue };
        let Some(&last) = latest.get(&id) else { continue };
        for a in alerts(&points, &info.judgement, last) {
            found.push((id.clone(), code.clone(), a));
        }
    }
    let rank = |t: Tone| match t {
        Tone::Bad => 0,
        Tone::Neutral => 1,
        Tone::Good => 2,
    };
    found.sort_by(|a, b| rank(a.2.tone).cmp(&rank(b.2.tone)).then(b.2.size.total_cmp(&a.2.size)));
    let mut out = Output::new(&["org_type", "org_code", "measure", "month", "kind", "tone", "message"]);
    for (id, code, a) in &found {
        out.rows.push(vec![
            Cell::text(&org_type),
            Cell::text(code),
            Cell::text(id),
            Cell::text(a.month),
            Cell::text(snake(&a.kind)),
            Cell::text(snake(&a.tone)),
            Cell::text(&a.message),
        ]);
    }
    out.write(format, &mut std::io::stdout().lock())?;
    if !quiet {
        eprintln!(
            "{} over {}",
            plural(found.len(), "alert", "alerts"),
            plural(metrics.values().filter(|m| m.is_some()).count(), "measure", "measures")
        );
    }
    reproduce(&wh.stored_values_sql(&filter), quiet);
    Ok(())
}

/// `ipmo measures lens`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lens_cmd(
    wh: &Warehouse,
    lib: &Library,
    id: &str,
    month: Option<YearMonth>,
    within_type: Option<&str>,
    within: Option<&str>,
    format: Format,
    quiet: bool,
) -> Result<()> {
    let m = metric(lib, wh, id)?;
    let rt = runtime()?;
    let month = month_or_latest(&rt, wh, &m, month)?;
    let quintiles = wh.imd_quintiles()?;
    if quintiles.is_empty() {
        bail!("the warehouse has no practice deprivation scores; load them with `ipmo ingest imd FILE`");
    }
    let filter = ValueFilter { metric: Some(&m.id), org_type: Some("practice"), org_code: None, month: Some(month) };
    let mut stored = rt.block_on(wh.stored_values(&filter))?;
    if let (Some(t), Some(code)) = (within_type, within) {
        let t = org_type(t)?;
        let code = code.to_ascii_uppercase();
        let membership = match wh.manifest()?.computed.get(&month.to_string()).map(|r| r.membership.as_str()) {
            Some("latest") => Membership::Latest,
            _ => Membership::AsAt,
        };
        let practices = rt.block_on(wh.practices_for_month(month, membership))?;
        let members: rustc_hash::FxHashSet<&str> = practices
            .iter()
            .filter(|p| match t.as_str() {
                "pcn" => p.pcn.as_deref() == Some(code.as_str()),
                "sicbl" => p.sicbl == code,
                "icb" => p.icb == code,
                "region" => p.region == code,
                "england" => true,
                _ => false,
            })
            .map(|p| p.code.as_str())
            .collect();
        if members.is_empty() {
            bail!("no practices in {t} {code} in {month}; the lens can be limited to a pcn, sicbl, icb or region");
        }
        stored.retain(|v| members.contains(v.org_code.as_str()));
    } else if within_type.is_some() != within.is_some() {
        bail!("give both --org-type and --org to limit the lens to one organisation's practices");
    }
    let values: Vec<OrgCounts> =
        stored.iter().filter(|v| v.point.value().is_some()).filter_map(StoredValue::counts).collect();
    let l = lens(&values, &quintiles, m.judgement.multiplier);
    let mut out = Output::new(&["quintile", "practices", "numerator", "denominator", "value"]);
    for q in &l.quintiles {
        let label = match q.quintile {
            1 => "1 (most deprived)".to_string(),
            5 => "5 (least deprived)".to_string(),
            k => k.to_string(),
        };
        out.rows.push(vec![
            Cell::text(label),
            Cell::Num(Some(q.practices as f64), 0),
            Cell::Num(Some(q.numerator), 2),
            Cell::Num(Some(q.denominator), 2),
            Cell::Num(q.value, 3),
        ]);
    }
    out.write(format, &mut std::io::stdout().lock())?;
    if !quiet {
        eprintln!(
            "{} ({}), {month}: gap most − least deprived = {}; {} with a value but no IMD score left out",
            m.id,
            m.unit,
            l.gap.map(|g| format!("{g:.3}")).unwrap_or_else(|| "n/a".into()),
            ipmo_domain::display::plural(l.practices_without_imd, "practice", "practices")
        );
        let mut stdout = std::io::stderr().lock();
        writeln!(
            stdout,
            "reproduce: ipmo sql \"SELECT i.quintile, COUNT(*) AS practices, SUM(v.numerator) AS numerator, \
             SUM(v.denominator) AS denominator, SUM(v.numerator) * {} / SUM(v.denominator) AS value \
             FROM {} v JOIN imd i ON i.practice_code = v.org_code WHERE v.{} = '{}' \
             AND v.org_type = 'practice' AND v.month = DATE '{}' AND v.value IS NOT NULL GROUP BY 1 ORDER BY 1\"",
            m.judgement.multiplier,
            m.table.0,
            m.table.1,
            m.id,
            month.first_day().format("%Y-%m-%d")
        )?;
    }
    Ok(())
}
