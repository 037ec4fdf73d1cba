//! An organisation's GP practices on one measure: "which of my practices drive this, and what
//! would each save?". Every practice of an ICB, sub-ICB location, PCN, region or custom group,
//! worst first by the measure's direction, with its value, percentile among all practices,
//! trend and saving, as a table and as small multiples (one small chart per practice on a shared
//! scale, after OpenPrescribing's measure pages).

use crate::charts;
use crate::csv::{csv, csv_number, point_csv, point_header};
use crate::dashboard::standing_tag;
use crate::format::{long_month, month_span, ordinal, plural, pounds, value};
use crate::pages::{crumbs_for, html_page};
use crate::params::Params;
use crate::params::{measure_of, org_of, wants_csv};
use crate::{Shared, WebError};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ipmo_domain::YearMonth;
use ipmo_measures::Measure;
use ipmo_measures::analysis::ValuePoint;
use ipmo_measures::ranking::{self, Standing};
use ipmo_measures::savings::{self, PeriodSaving};
use ipmo_release::{Org, Release};
use maud::{Markup, PreEscaped, html};
use std::collections::BTreeMap;

/// Months of each practice's trend.
const TREND_MONTHS: usize = 24;
/// Practices listed on an organisation's measure page (the practices page and CSV have all).
pub(crate) const PAGE_ROWS: usize = 300;
/// Small multiples on an organisation's measure page.
const MULTIPLES_ON_PAGE: usize = 12;
/// Small multiples on the practices page.
const MULTIPLES_MAX: usize = 1_000;

/// One practice of the organisation on the measure.
pub(crate) struct PracticeRow<'a> {
    pub practice: &'a Org,
    pub pcn: Option<&'a Org>,
    pub series: &'a [ValuePoint],
    /// The practice's point in the month shown.
    pub point: Option<&'a ValuePoint>,
    /// Its percentile turned so that higher is worse (None: no judgement or no value).
    pub worse: Option<f64>,
    pub saving: Option<PeriodSaving>,
}

/// The practices within `org`, worst first: by the direction-turned percentile of `month`, then
/// by value (highest first), then by name; practices without a value come last.
pub(crate) fn rows<'a>(r: &'a Release, m: &Measure, org: &Org, month: YearMonth) -> Vec<PracticeRow<'a>> {
    let lv = r.level_values(&m.id, "practice");
    let mut out: Vec<PracticeRow<'a>> = r
        .practices_in(&org.code)
        .into_iter()
        .map(|practice| {
            let series = lv.and_then(|l| l.series_of(&practice.code)).unwrap_or(&[]);
            let point = series.iter().rev().find(|p| p.month == month);
            PracticeRow {
                practice,
                pcn: practice.parent.as_deref().and_then(|c| r.org(c)).filter(|o| o.org_type == "pcn"),
                series,
                point,
                worse: point
                    .filter(|p| p.value().is_some())
                    .and_then(|p| p.percentile())
                    .and_then(|pc| ranking::worse_percentile(pc, m.direction)),
                saving: savings::period_saving(series, month, savings::SAVINGS_MONTHS),
            }
        })
        .collect();
    let v = |x: &PracticeRow<'_>| x.point.and_then(|p| p.value());
    out.sort_by(|a, b| {
        let has = |x: &PracticeRow<'_>| v(x).is_some();
        has(b)
            .cmp(&has(a))
            .then(b.worse.unwrap_or(-1.0).total_cmp(&a.worse.unwrap_or(-1.0)))
            .then(v(b).unwrap_or(f64::NEG_INFINITY).total_cmp(&v(a).unwrap_or(f64::NEG_INFINITY)))
            .then(a.practice.name.cmp(&b.practice.name))
    });
    out
}

/// Positive practice savings summed: what the organisation's practices above the national
/// practice median (or 10th percentile) would have saved by prescribing at it.
fn total_savings(rows: &[PracticeRow<'_>]) -> Option<(f64, f64, YearMonth, YearMonth)> {
    let mut out: Option<(f64, f64, YearMonth, YearMonth)> = None;
    for s in rows.iter().filter_map(|r| r.saving.as_ref()) {
        let t = out.get_or_insert((0.0, 0.0, s.from, s.to));
        t.0 += s.at_median.max(0.0);
        t.1 += s.at_p10.max(0.0);
    }
    out
}

/// The last [`TREND_MONTHS`] of a practice's values to `month`.
fn trend(row: &PracticeRow<'_>, month: YearMonth) -> Vec<(YearMonth, f64)> {
    let end = row.series.partition_point(|p| p.month <= month);
    row.series[end.saturating_sub(TREND_MONTHS)..end].iter().filter_map(|p| p.value().map(|v| (p.month, v))).collect()
}

fn national_deciles(r: &Release, m: &Measure, month: YearMonth) -> BTreeMap<YearMonth, [f64; 9]> {
    let from = month.minus(TREND_MONTHS as u32 - 1);
    r.level_values(&m.id, "practice")
        .map(|lv| lv.deciles.range(from..=month).map(|(k, v)| (*k, *v)).collect())
        .unwrap_or_default()
}

fn counts(rows: &[PracticeRow<'_>], m: &Measure) -> (usize, usize) {
    let standing =
        |x: &PracticeRow<'_>| x.point.and_then(|p| p.percentile()).map(|pc| ranking::standing(pc, m.direction));
    let worst = rows.iter().filter(|x| standing(x) == Some(Standing::WorstTenth)).count();
    let worse = rows.iter().filter(|x| standing(x).is_some_and(Standing::is_bad)).count();
    (worst, worse)
}

/// The practices section of an organisation's measure page (or of the practices page, with
/// every small multiple).
pub(crate) fn section(r: &Release, m: &Measure, org: &Org, month: YearMonth, all_multiples: bool) -> Markup {
    let rows = rows(r, m, org, month);
    if rows.is_empty() {
        return html! {};
    }
    let with_value = rows.iter().filter(|x| x.point.and_then(|p| p.value()).is_some()).count();
    let (worst, worse) = counts(&rows, m);
    let deciles = national_deciles(r, m, month);
    let trends: Vec<Vec<(YearMonth, f64)>> = rows.iter().map(|row| trend(row, month)).collect();
    let median: Vec<(YearMonth, f64)> =
        deciles.iter().filter(|(_, d)| d[4].is_finite()).map(|(k, d)| (*k, d[4])).collect();
    let shown = if all_multiples { MULTIPLES_MAX } else { MULTIPLES_ON_PAGE };
    let scale = {
        let vals = deciles
            .values()
            .flat_map(|d| [d[0], d[8]])
            .chain(trends.iter().take(shown).flatten().map(|(_, v)| *v))
            .filter(|v| v.is_finite());
        let (lo, hi) = vals.fold((0.0f64, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let nice = charts::axis(lo, hi);
        (
            nice.lo,
            nice.hi,
            nice.labels.first().cloned().unwrap_or_default(),
            nice.labels.last().cloned().unwrap_or_default(),
        )
    };
    let base = format!("/measure/{}/org/{}/practices", m.id, org.code);
    let direction = match m.direction {
        ipmo_stats::Direction::LowerIsBetter => "highest (worst) first",
        ipmo_stats::Direction::HigherIsBetter => "lowest (worst) first",
        ipmo_stats::Direction::Neither => "highest first (this measure makes no judgement)",
    };
    let d = crate::format::decimals_of(rows.iter().filter_map(|x| x.point.and_then(|p| p.value())));
    html! {
        h2 #practices { "GP practices in " (org.name) ", " (long_month(month)) }
        p { (plural(rows.len(), "practice", "practices")) ", " (direction) ". "
            @if m.direction != ipmo_stats::Direction::Neither {
                (worse) " of " (with_value) " with a value are worse than the national practice median; " (worst) " are in the worst tenth of practices in England."
            } }
        @if m.is_cost_based {
            @if let Some((s50, s10, from, to)) = total_savings(&rows) {
                p { "If each practice spending more than the national practice median had prescribed at it over " (month_span(from, to)) ", "
                    strong { (pounds(s50)) } " would have been saved (" (pounds(s10)) " at the 10th percentile)." }
            }
        }
        p { a href=(format!("{base}?format=csv")) download { "Download every practice (CSV)" }
            @if !all_multiples { " · " a href=(format!("{base}#multiples")) { "Small charts for every practice" } } }
        div.table-scroll role="region" aria-label="Practices table" tabindex="0" {
            table.table.practices {
                caption.visually-hidden { (m.title) ": practices in " (org.name) ", worst first" }
                thead { tr {
                    th scope="col" .num { "Rank" }
                    th scope="col" { "Practice" }
                    th scope="col" .num { "Value (" (m.unit()) ")" }
                    th scope="col" { "Percentile among practices" }
                    @if m.is_cost_based { th scope="col" .num { "Saving over 6 months" } }
                    th scope="col" { "Last " (TREND_MONTHS) " months" }
                } }
                tbody {
                    @for (i, (row, own)) in rows.iter().zip(&trends).enumerate().take(if all_multiples { usize::MAX } else { PAGE_ROWS }) {
                        @let pct = row.point.and_then(|p| p.percentile());
                        tr {
                            td.num { (i + 1) }
                            td { a href=(format!("/measure/{}/org/{}", m.id, row.practice.code)) { (row.practice.name) } " " span.code { "(" (row.practice.code) ")" }
                                 @if let Some(pcn) = row.pcn { br; span.hint { (pcn.name) } } }
                            td.num { (crate::format::fixed(row.point.and_then(|p| p.value()), d)) }
                            td { (ordinal(pct)) " " (standing_tag(pct, m)) }
                            @if m.is_cost_based { td.num { @match &row.saving { Some(s) => (pounds(s.at_median.max(0.0))), None => "–" } } }
                            td { (PreEscaped(charts::sparkline(&format!("{} over {} months", row.practice.name, own.len()), own, &median))) }
                        }
                    }
                }
            }
        }
        @if rows.len() > PAGE_ROWS && !all_multiples {
            p { "The " (PAGE_ROWS) " worst of " (rows.len()) " practices are listed; " a href=(base) { "see them all" } " or download the CSV." }
        }
        h3 #multiples { "Each practice against the national deciles" }
        p.hint { "Blue: the practice; shaded: the 10th to 90th percentile of practices in England; dashed: their median. Every chart has the same scale ("
            (scale.2) " to " (scale.3) " " (m.unit()) "), so they compare at a glance." }
        ul.multiples {
            @for (row, own) in rows.iter().zip(&trends).take(shown) {
                li {
                    a href=(format!("/measure/{}/org/{}", m.id, row.practice.code)) { (row.practice.name) }
                    " " span.hint { (value(row.point.and_then(|p| p.value()))) }
                    (PreEscaped(charts::small_multiple(&format!("{}: {} over {} months against national deciles", row.practice.name, m.title, own.len()), own, &deciles, (scale.0, scale.1))))
                }
            }
        }
        @if rows.len() > shown {
            p { @if all_multiples { "The " (shown) " worst are drawn." } @else { a href=(format!("{base}#multiples")) { "Small charts for all " (rows.len()) " practices" } } }
        }
    }
}

/// `/measure/{id}/org/{code}/practices`: every practice of an organisation on a measure, with
/// every small multiple; `?format=csv` for the table; `?month=YYYY-MM` for another month.
pub(crate) async fn page(
    State(s): State<Shared>,
    Path((id, code)): Path<(String, String)>,
    p: Params,
) -> Result<Response, WebError> {
    let r = &s.release;
    let m = measure_of(r, &id)?;
    let org = org_of(r, &code)?;
    let month = month_of(r, m, "practice", &p)?;
    if wants_csv(&p)? {
        let out = rows(r, m, org, month)
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let mut cells = vec![
                    (i + 1).to_string(),
                    row.practice.code.clone(),
                    row.practice.name.clone(),
                    row.pcn.map(|o| o.code.clone()).unwrap_or_default(),
                    month.to_string(),
                ];
                cells.extend(point_csv(row.point));
                cells.extend([
                    row.point
                        .and_then(|x| x.percentile())
                        .map(|pc| ranking::standing(pc, m.direction).label().to_string())
                        .unwrap_or_default(),
                    csv_number(row.saving.as_ref().map(|s| s.at_median)),
                    csv_number(row.saving.as_ref().map(|s| s.at_p10)),
                ]);
                cells
            })
            .collect();
        return Ok(csv(
            &format!("{}-{}-practices-{month}.csv", m.id, org.code),
            &point_header(
                &["rank", "practice_code", "name", "pcn_code", "month"],
                &["standing", "saving_50_6_months", "saving_10_6_months"],
            ),
            out,
        ));
    }
    let mut crumbs = crumbs_for(r, org);
    crumbs.push((m.title.clone(), format!("/measure/{}/org/{}", m.id, org.code)));
    crumbs.push(("Practices".into(), format!("/measure/{}/org/{}/practices", m.id, org.code)));
    Ok(html_page(r, &format!("{} – practices in {}", m.title, org.name), &crumbs, html! {
        span.caption { (org.name) " (" (org.code) ")" }
        h1 { (m.title) ": practices" }
        p.lede { (m.description) " " a href=(format!("/measure/{}/org/{}", m.id, org.code)) { (org.name) " on this measure" } " · "
            a href=(format!("/measure/{}?level=practice&parent={}", m.id, org.code)) { "Ranking with the funnel plot" } }
        (section(r, m, org, month, true))
        p.hint { "Practices are those in " (org.name) " in today's organisation map; " (ipmo_release::level_plural_lower("practice")) " are ranked against every practice in England." }
    }).into_response())
}

/// The month of a `month` parameter among those `level` has values of, or the latest of them; a
/// month without values is a 400 naming the parameter and the months there are.
pub(crate) fn month_of(r: &Release, m: &Measure, level: &str, p: &Params) -> Result<YearMonth, WebError> {
    let months =
        r.level_values(&m.id, level).map(|lv| lv.deciles.keys().copied().collect::<Vec<_>>()).unwrap_or_default();
    match p.month("month")? {
        Some(month) if months.contains(&month) => Ok(month),
        Some(month) => Err(WebError::BadParameter(
            "month".into(),
            match (months.first(), months.last()) {
                (Some(a), Some(b)) => format!("{month} has no values; choose a month from {a} to {b}"),
                _ => format!("{month} has no values"),
            },
        )),
        None => months
            .last()
            .copied()
            .or(r.latest_month())
            .ok_or_else(|| WebError::NotFound(format!("No values of \"{}\" have been computed yet.", m.id))),
    }
}
