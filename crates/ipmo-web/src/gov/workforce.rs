//! The workforce plan page: establishment, staff in post, vacancies and turnover per quarter, by
//! sector for the latest quarter, the trend with a two-year projection, and the training
//! pipeline. The totals and the projection come from `ipmo_programme::workforce`.

use super::access::{Access, current_records, gov_page, require};
use crate::layout;
use crate::{Shared, WebError};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ipmo_governance::Role;
use ipmo_governance::kinds;
use ipmo_governance::store::Record;
use ipmo_programme::workforce::AHEAD;
use ipmo_programme::{Projection, QuarterTotals, by_sector, project, training_pipeline, workforce_totals};
use maud::{Markup, html};
use std::collections::BTreeMap;

/// The workforce plan: establishment, staff in post, vacancies and turnover per quarter, by sector
/// for the latest quarter, the trend with a two-year projection, and the training pipeline.
pub(super) async fn page(State(s): State<Shared>, headers: HeaderMap, p: crate::params::Params) -> Response {
    let Access { gov: g, session } = or_reply!(require(&s, &headers, "/gov/workforce", Role::Viewer).await);
    let sector = p.get("sector");
    if let Some(x) = sector
        && !kinds::SECTORS.contains(&x)
    {
        return WebError::BadParameter("sector".into(), format!("must be one of {}", kinds::SECTORS.join(", ")))
            .into_response();
    }
    let [returns, training] = or_reply!(current_records(g, ["workforce-return", "training"]).await);
    let in_sector = |r: &Record| sector.is_none_or(|x| r.text("sector") == x);
    let totals = workforce_totals(&returns, &in_sector);
    let latest = totals.keys().next_back().cloned();
    let plan = Plan {
        sector,
        used: returns.iter().filter(|r| in_sector(r)).count(),
        stale: latest.as_deref().is_some_and(|q| ipmo_governance::due::returns_stale(q, g.settings.today())),
        by_sector: latest.as_deref().map(|q| by_sector(&returns, kinds::SECTORS, q)).unwrap_or_default(),
        projection: project(&totals),
        totals,
    };
    let title = match sector {
        Some(x) => format!("Workforce: {x}"),
        None => "Workforce".to_string(),
    };
    let main = html! {
        (intro(&title, sector))
        @if plan.totals.is_empty() { p { "No workforce returns yet. " a href="/gov/workforce-return/new" { "Add one" } } } @else {
            (trend(&plan))
            (tables(&plan))
            (projection_table(&plan.projection))
        }
        (pipeline(&training_pipeline(&training)))
    };
    gov_page(&session, &title, &[("Workforce".into(), "/gov/workforce".into())], main)
}

/// What the workforce page shows, worked out from the returns.
struct Plan<'a> {
    /// The sector shown, or all.
    sector: Option<&'a str>,
    /// Totals per quarter, oldest first.
    totals: BTreeMap<String, QuarterTotals>,
    /// Returns counted.
    used: usize,
    /// Whether the newest return is more than a quarter old.
    stale: bool,
    /// Each sector's totals in the newest quarter.
    by_sector: BTreeMap<String, QuarterTotals>,
    /// The two-year projection.
    projection: Projection,
}

fn wte(v: f64) -> String {
    crate::format::number(v, 1)
}

/// The title, what the figures are, and the sector chooser.
fn intro(title: &str, sector: Option<&str>) -> Markup {
    html! {
        h1 { (title) }
        p.lede { "Establishment and staff in post from the quarterly workforce returns, vacancies (establishment − in post), vacancy rate (vacancies ÷ establishment) and quarterly turnover (leavers ÷ staff in post), with the training pipeline. "
            a href="/gov/workforce-return" { "Workforce returns" } " · " a href="/gov/training" { "Training pipeline returns" } }
        form.inline method="get" action="/gov/workforce" {
            div.field {
                label for="sector" { "Sector" }
                select #sector name="sector" {
                    option value="" { "All sectors" }
                    @for x in kinds::SECTORS { option value=(x) selected[sector == Some(*x)] { (x) } }
                }
            }
            button.button type="submit" { "Show" }
        }
    }
}

/// The chart of staff in post and establishment, recorded and projected, with its reading.
fn trend(plan: &Plan) -> Markup {
    let proj = &plan.projection;
    let quarters = &proj.labels[..proj.recorded];
    let (labels, projected, projected_establishment) = (&proj.labels, &proj.in_post_ahead, &proj.establishment_ahead);
    let pad = |v: Vec<f64>, before: usize, after: usize| -> Vec<Option<f64>> {
        std::iter::repeat_n(None, before)
            .chain(v.into_iter().map(Some))
            .chain(std::iter::repeat_n(None, after))
            .collect()
    };
    // The projections start from the last recorded quarter, so the dashed lines join the solid.
    let joined = |from: &[f64], ahead: &[f64]| {
        let mut line = pad(ahead.to_vec(), quarters.len(), 0);
        if let Some(last) = from.last() {
            line[quarters.len() - 1] = Some(*last);
        }
        line
    };
    let line = |name, colour, dashed, values| crate::charts::Line { name, colour, dashed, values };
    let lines = [
        line("Funded establishment", "#768692", false, pad(proj.establishment.clone(), 0, AHEAD)),
        line("Establishment, projected", "#768692", true, joined(&proj.establishment, projected_establishment)),
        line("Staff in post", "#005eb8", false, pad(proj.in_post.clone(), 0, AHEAD)),
        line("Staff in post, projected", "#005eb8", true, joined(&proj.in_post, projected)),
    ];
    let chart = crate::charts::line_chart(
        "workforce",
        "Staff in post and funded establishment (WTE) by quarter, each projected two years ahead",
        labels,
        &lines,
        "WTE",
    );
    let legend = crate::charts::line_legend(&lines);
    let (stale, used) = (plan.stale, plan.used);
    html! {
        @if stale {
            div.warning-callout { p { strong { "Stale: " } "the newest return is for " (quarters.last().cloned().unwrap_or_default()) ", more than a quarter ago; the figures and the projection start from then. "
                a href="/gov/workforce-return/new" { "Add the latest returns" } } }
        }
        (maud::PreEscaped(chart))
        (maud::PreEscaped(legend))
        p.hint { "From " (crate::format::plural(used, "workforce return", "workforce returns")) " for " (quarters.first().cloned().unwrap_or_default()) " to " (quarters.last().cloned().unwrap_or_default())
            ". The dashed lines continue the least-squares trends of staff in post and of the funded establishment for two years: "
            (wte(projected.last().copied().unwrap_or(0.0))) " WTE in post against an establishment of " (wte(projected_establishment.last().copied().unwrap_or(0.0))) " by " (labels.last().cloned().unwrap_or_default()) ". A projection, not a plan." }
    }
}

/// Totals by quarter, and by sector for the newest quarter.
fn tables(plan: &Plan) -> Markup {
    let (totals, by_sector, sector) = (&plan.totals, &plan.by_sector, plan.sector);
    let latest = totals.keys().next_back();
    html! {
        div.table-scroll role="region" aria-label="Totals by quarter" tabindex="0" { table.table {
            caption { "Totals by quarter" }
            thead { tr { th scope="col" { "Quarter" } th scope="col" .num { "Establishment (WTE)" } th scope="col" .num { "In post (WTE)" } th scope="col" .num { "Headcount" } th scope="col" .num { "Vacancies (WTE)" } th scope="col" .num { "Vacancy rate" } th scope="col" .num { "Turnover" } } }
            tbody { @for (q, t) in totals { tr {
                td { (q) } td.num { (wte(t.establishment)) } td.num { (wte(t.in_post)) } td.num { (t.headcount) } td.num { (wte(t.vacancies())) } td.num { (crate::format::percent(t.vacancy_rate())) } td.num { (crate::format::percent(t.turnover())) }
            } } }
        } }
        @if sector.is_none() && !by_sector.is_empty() {
            div.table-scroll role="region" aria-label="By sector" tabindex="0" { table.table {
                caption { "By sector, " (latest.cloned().unwrap_or_default()) }
                thead { tr { th scope="col" { "Sector" } th scope="col" .num { "Establishment (WTE)" } th scope="col" .num { "In post (WTE)" } th scope="col" .num { "Vacancy rate" } th scope="col" .num { "Turnover" } } }
                tbody { @for (x, t) in by_sector { tr {
                    td { a href=(format!("/gov/workforce?sector={}", crate::params::urlencode(x))) { (x) } } td.num { (wte(t.establishment)) } td.num { (wte(t.in_post)) } td.num { (crate::format::percent(t.vacancy_rate())) } td.num { (crate::format::percent(t.turnover())) }
                } } }
            } }
        }
    }
}

/// The projection quarter by quarter.
fn projection_table(proj: &Projection) -> Markup {
    let quarters = &proj.labels[..proj.recorded];
    let (labels, projected, projected_establishment) = (&proj.labels, &proj.in_post_ahead, &proj.establishment_ahead);
    html! {
        details {
            summary { "The projection as a table" }
            (layout::scroll("Projection", html! {
                table.table {
                    caption.visually-hidden { "Projected establishment, staff in post and vacancies" }
                    thead { tr { th scope="col" { "Quarter" } th scope="col" .num { "Establishment (WTE)" } th scope="col" .num { "In post (WTE)" } th scope="col" .num { "Vacancies (WTE)" } } }
                    tbody { @for (i, (e, p)) in projected_establishment.iter().zip(projected).enumerate() {
                        tr { td { (labels.get(quarters.len() + i).cloned().unwrap_or_default()) } td.num { (wte(*e)) } td.num { (wte(*p)) }
                             td.num { (wte((e - p).max(0.0))) @if p > e { " " span.hint { "(in post would pass the establishment)" } } } }
                    } }
                }
            }))
        }
    }
}

/// The training pipeline by quarter and programme.
fn pipeline(pipeline: &BTreeMap<(String, String), (i64, i64, i64)>) -> Markup {
    html! {
        h2 { "Training pipeline" }
        @if pipeline.is_empty() { p { "No training returns yet." } } @else {
            div.table-scroll role="region" aria-label="Training pipeline by quarter and programme" tabindex="0" { table.table {
                caption.visually-hidden { "Training pipeline by quarter and programme" }
                thead { tr { th scope="col" { "Quarter" } th scope="col" { "Programme" } th scope="col" .num { "Places" } th scope="col" .num { "Starters" } th scope="col" .num { "Completions" } } }
                tbody { @for ((q, prog), (places, starters, done)) in pipeline { tr { td { (q) } td { (prog) } td.num { (places) } td.num { (starters) } td.num { (done) } } } }
            } }
        }
    }
}
