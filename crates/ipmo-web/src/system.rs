//! The whole system: cross-sector measures on an ICB's dashboard (its practices, its trusts,
//! and both together) and a trust's own page, where the trust stands among England's trusts
//! month by month with its SPC chart.

use crate::charts::{self, Fan};
use crate::format::{amount, month_span, ordinal, percent};
use crate::pages::{crumbs_for, html_page, org_link};
use crate::{Shared, WebError};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ipmo_domain::YearMonth;
use ipmo_domain::practice::ENGLAND;
use ipmo_measures::analysis::Spc;
use ipmo_measures::cross_sector::{CROSS_SECTOR_MEASURES, CrossSectorMeasure};
use ipmo_release::cross_sector::{Sector, SectorPoint};
use ipmo_release::hospitals::Trust;
use ipmo_release::{Org, Release};
use ipmo_stats::Direction;
use ipmo_stats::spc::{XmrOptions, xmr};
use maud::{Markup, PreEscaped, html};

/// Months the whole-system sparklines cover.
const SPARK_MONTHS: usize = 24;
/// Fewest months an SPC chart is drawn from.
const MIN_SPC_MONTHS: usize = 6;

/// The month a row of the system table shows: the newest with hospital figures for the ICB (SCMD
/// is published weeks after the EPD), else the newest of any.
fn shown_month(r: &Release, i: usize, code: &str) -> Option<YearMonth> {
    let hospital = r.cross_sector.series(i, code, Sector::Hospital).last().map(|p| p.month);
    hospital.or_else(|| r.cross_sector.series(i, code, Sector::System).last().map(|p| p.month))
}

fn point_at(r: &Release, i: usize, code: &str, sector: Sector, month: YearMonth) -> Option<SectorPoint> {
    r.cross_sector.series(i, code, sector).iter().find(|p| p.month == month).copied()
}

/// A share with what it is a share of, as a table cell.
fn share_cell(p: Option<SectorPoint>, m: &CrossSectorMeasure) -> Markup {
    match p {
        Some(p) if p.denominator > 0.0 => html! {
            td.num title=(format!("{} of {} {}", amount(Some(p.numerator.round())), amount(Some(p.denominator.round())), m.amount.label())) {
                (percent(p.percent()))
                br; span.hint { "of " (amount(Some(p.denominator.round()))) " " (m.amount.label()) }
            }
        },
        _ => html! { td.num { "–" } },
    }
}

/// The "whole system" section of an ICB's dashboard; nothing when no cross-sector values are
/// held for it.
pub(crate) fn icb_section(r: &Release, org: &Org) -> Markup {
    let rows: Vec<(usize, &CrossSectorMeasure, YearMonth)> = CROSS_SECTOR_MEASURES
        .iter()
        .enumerate()
        .filter_map(|(i, m)| Some((i, m, shown_month(r, i, &org.code)?)))
        .collect();
    if rows.is_empty() {
        return html! {};
    }
    // England's own page has no England column to set itself against.
    let national = org.code == ENGLAND;
    let lost: u64 = rows
        .iter()
        .filter_map(|(i, _, month)| point_at(r, *i, &org.code, Sector::System, *month))
        .map(|p| p.lines_not_converted)
        .sum();
    html! {
        h2 #system { "Whole system: primary care and hospitals" }
        p.hint {
            "Each measure is worked out the same way for " (if national { "England's practices" } else { "the ICB's practices" })
            " (EPD) and for " (if national { "its" } else { "the ICB's" }) " NHS trusts (hospital medicines data, SCMD), "
            "in WHO defined daily doses or tablets, and for the two together. Month: the newest with hospital data. "
            @if !national { "Small charts: the whole system (blue) against England's (dashed). " }
            a href=(format!("/api/v1/cross-sector/{}", org.code)) { "These figures as JSON" } "."
        }
        div.table-scroll role="region" aria-label="Whole-system measures" tabindex="0" { table.table {
            thead { tr {
                th scope="col" { "Measure" }
                th scope="col" { "Month" }
                th.num scope="col" { "Primary care" }
                th.num scope="col" { "Hospitals" }
                th.num scope="col" { "Whole system" }
                @if !national { th.num scope="col" { "England" } }
                th scope="col" { "Trend" }
            } }
            tbody { @for (i, m, month) in &rows {
                @let own = spark(r.cross_sector.series(*i, &org.code, Sector::System));
                @let england = if national { Vec::new() } else { spark(r.cross_sector.series(*i, ENGLAND, Sector::System)) };
                tr {
                    td { strong { (m.name) } br; span.hint { (if m.lower_is_better { "lower is better" } else { "higher is better" }) } }
                    td.nowrap { (month) }
                    (share_cell(point_at(r, *i, &org.code, Sector::PrimaryCare, *month), m))
                    (share_cell(point_at(r, *i, &org.code, Sector::Hospital, *month), m))
                    (share_cell(point_at(r, *i, &org.code, Sector::System, *month), m))
                    @if !national { (share_cell(point_at(r, *i, ENGLAND, Sector::System, *month), m)) }
                    td { (PreEscaped(charts::sparkline(&format!("{}, whole system, over {} months", m.name, own.len()), &own, &england))) }
                }
            } }
        } }
        @if lost > 0 {
            p.hint { (lost) " lines these measures select could not be put in their units (no DDD in the dm+d supplement, or a unit that does not match the strength) and are left out; "
                code { "SELECT * FROM medicine_use WHERE not_calculated IS NOT NULL" } " lists them." }
        }
        details {
            summary { "What each measure counts" }
            dl { @for (_, m, _) in &rows { dt { (m.name) } dd { (m.description) ". " (m.why) } } }
        }
    }
}

fn spark(points: &[SectorPoint]) -> Vec<(YearMonth, f64)> {
    let from = points.len().saturating_sub(SPARK_MONTHS);
    points[from..].iter().filter_map(|p| p.percent().map(|v| (p.month, v))).collect()
}

fn trust_of<'a>(r: &'a Release, code: &str) -> Result<&'a Trust, WebError> {
    r.hospitals
        .trust(code)
        .ok_or_else(|| WebError::NotFound(format!("There is no NHS trust with the code \"{code}\" in this data.")))
}

/// The XmR chart of a trust's shares, direction from the measure.
fn spc_of(points: &[SectorPoint], m: &CrossSectorMeasure) -> Option<Spc> {
    let charted: Vec<(YearMonth, f64)> = points.iter().filter_map(|p| p.percent().map(|v| (p.month, v))).collect();
    if charted.len() < MIN_SPC_MONTHS {
        return None;
    }
    let values: Vec<f64> = charted.iter().map(|c| c.1).collect();
    let direction = if m.lower_is_better { Direction::LowerIsBetter } else { Direction::HigherIsBetter };
    let chart = xmr(&values, &XmrOptions { direction: Some(direction), ..Default::default() })?;
    Some(Spc { months: charted.into_iter().map(|c| c.0).collect(), chart })
}

/// `/trust/{code}`: a trust's cross-sector measures.
pub(crate) async fn trust(State(s): State<Shared>, Path(code): Path<String>) -> Result<Response, WebError> {
    let r = &s.release;
    let t = trust_of(r, &code.to_ascii_uppercase())?;
    let icb = t.icb_code.as_deref().and_then(|c| r.org(c));
    let mut crumbs = icb.map(|o| crumbs_for(r, o)).unwrap_or_default();
    crumbs.push((t.name.clone(), format!("/trust/{}", t.code)));
    let coverage = r.hospitals.coverage(&t.code);
    let sections: Vec<Markup> = CROSS_SECTOR_MEASURES
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let points = r.cross_sector.series(i, &t.code, Sector::Hospital);
            let last = points.iter().rev().find(|p| p.percent().is_some())?;
            Some(measure_section(r, i, m, t, points, last))
        })
        .collect();
    let main = html! {
        h1 { (t.name) " " span.code { "(" (t.code) ")" } }
        p {
            "NHS trust"
            @if let Some(o) = icb { " in " (org_link(o)) }
            @if t.closed { ", closed in ODS" }
            ". Hospital medicines data (SCMD) held: "
            @match (coverage.first, coverage.last) {
                (Some(a), Some(b)) => { (month_span(a, b)) " (" (coverage.months) " months)." }
                _ => "none.",
            }
        }
        @if sections.is_empty() {
            p { "No cross-sector measure has a value for this trust: either its medicines data hold none of the medicines they count, or `ipmo measures cross-sector --compute` has not been run since the data were loaded." }
        } @else {
            p.hint { "Each measure counts hospital issues in WHO defined daily doses or tablets from dm+d, so that it compares with primary care's. The shaded bands are the deciles among England's trusts each month; the SPC chart shows this trust's own variation (Making Data Count)." }
            @for s in &sections { (s) }
        }
    };
    Ok(html_page(r, &format!("{} ({})", t.name, t.code), &crumbs, main).into_response())
}

fn measure_section(
    r: &Release,
    i: usize,
    m: &CrossSectorMeasure,
    t: &Trust,
    points: &[SectorPoint],
    last: &SectorPoint,
) -> Markup {
    let rank = last.percent().and_then(|v| r.cross_sector.trust_percentile(i, last.month, v));
    let line: Vec<(YearMonth, Option<f64>)> = points.iter().map(|p| (p.month, p.percent())).collect();
    let fan = charts::fan_chart(&Fan {
        id: &format!("fan-{}", m.id),
        title: &format!("{}: {} against England's trusts", m.name, t.name),
        deciles: r.cross_sector.trust_deciles(i),
        line: &line,
        line_label: &t.name,
        unit: "%",
        target: None,
        others: &[],
    });
    let spc = spc_of(points, m);
    html! {
        section.measure-block {
            h2 id=(m.id) { (m.name) }
            p { (m.description) "." }
            p {
                strong { (percent(last.percent())) } " in " (last.month) ": "
                (amount(Some(last.numerator.round()))) " of " (amount(Some(last.denominator.round()))) " " (m.amount.label())
                @if let Some((p, n)) = rank { "; " (ordinal(Some(p))) " percentile among " (n) " trusts" }
                " (" (if m.lower_is_better { "lower is better" } else { "higher is better" }) ")."
                @if last.lines_not_converted > 0 { " " (last.lines_not_converted) " lines could not be converted and are left out." }
            }
            h3 { "Against England's trusts" }
            p.hint { "Shaded: the 10th to 90th percentiles among trusts each month; dashed: their median; blue: this trust." }
            div.chart { (PreEscaped(fan)) }
            @if let Some(spc) = &spc {
                h3 { "Its own variation (SPC)" }
                p.hint { "Mean and process limits of this trust's monthly shares; coloured points are special causes." }
                div.chart { (PreEscaped(charts::spc_chart(&format!("spc-{}", m.id), &format!("{}: SPC chart for {}", m.name, t.name), spc, None, "%", (0.0, 100.0)))) }
            }
        }
    }
}

/// `/api/v1/cross-sector/{code}`: an ICB's, a trust's or England's cross-sector series.
pub(crate) async fn api(
    State(s): State<Shared>,
    Path(code): Path<String>,
) -> Result<Json<serde_json::Value>, Response> {
    let r = &s.release;
    let code = code.to_ascii_uppercase();
    let known =
        code == ENGLAND || r.org(&code).is_some_and(|o| o.org_type == "icb") || r.hospitals.trust(&code).is_some();
    if !known {
        return Err(WebError::NotFound(format!(
            "There is no ICB, NHS trust or \"{ENGLAND}\" with the code \"{code}\" in this data."
        ))
        .json());
    }
    let measures: Vec<serde_json::Value> = CROSS_SECTOR_MEASURES
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let sectors: serde_json::Map<String, serde_json::Value> = Sector::ALL
                .into_iter()
                .filter_map(|sector| {
                    let points = r.cross_sector.series(i, &code, sector);
                    if points.is_empty() {
                        return None;
                    }
                    let rows = points
                        .iter()
                        .map(|p| {
                            serde_json::json!({
                                "month": p.month.to_string(), "numerator": p.numerator, "denominator": p.denominator,
                                "percent": p.percent(), "lines_not_converted": p.lines_not_converted,
                            })
                        })
                        .collect();
                    Some((sector.as_str().to_string(), serde_json::Value::Array(rows)))
                })
                .collect();
            serde_json::json!({
                "id": m.id, "name": m.name, "description": m.description, "units": m.amount.label(),
                "lower_is_better": m.lower_is_better, "sectors": sectors,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "code": code, "measures": measures })))
}
