//! "Concessions this month" for an organisation (`/concessions/{code}`): what each conceded
//! presentation cost above the Drug Tariff, largest first, with the months before it as a chart;
//! a month newer than the newest prescribing is priced on that month's quantities and says so.
//! `?month=` chooses one of the months held, `?format=csv` downloads the table and
//! `/api/v1/concessions/{code}` answers as JSON.

use crate::charts;
use crate::csv::{csv, csv_number};
use crate::format::{long_month, number, plural, pounds};
use crate::layout::summary;
use crate::pages::{crumbs_for, html_page};
use crate::params::{Params, org_of, wants_csv};
use crate::{Shared, WebError};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ipmo_release::concessions::{ConcessionCost, ConcessionMonth, Concessions};
use ipmo_release::{Org, Release};
use maud::{Markup, PreEscaped, html};
use serde_json::{Value, json};

/// An organisation and one of the concession months held.
struct ConcessionRequest<'a> {
    concessions: &'a Concessions,
    org: &'a Org,
    month: ConcessionMonth,
}

impl<'a> ConcessionRequest<'a> {
    /// 404 before costs are computed or for an unknown organisation; a month not held is a 400
    /// naming the months there are.
    fn read(r: &'a Release, code: &str, p: &Params) -> Result<Self, WebError> {
        let concessions = r.concessions.as_ref().filter(|c| c.newest().is_some()).ok_or_else(|| {
            WebError::NotFound("Price-concession costs have not been computed yet: run `ipmo value compute`.".into())
        })?;
        let org = org_of(r, code)?;
        let held = concessions.months();
        let month = match p.month("month")? {
            None => *held.last().ok_or_else(|| WebError::NotFound("No concession months are held.".into()))?,
            Some(m) => *held.iter().find(|h| h.month == m).ok_or_else(|| {
                let (first, last) = (held.first().map(|h| h.month), held.last().map(|h| h.month));
                let range =
                    first.zip(last).map(|(a, b)| format!("; choose a month from {a} to {b}")).unwrap_or_default();
                WebError::BadParameter("month".into(), format!("{m} has no concession costs{range}"))
            })?,
        };
        Ok(Self { concessions, org, month })
    }

    fn costs(&self) -> &'a [ConcessionCost] {
        self.concessions.costs(&self.org.org_type, &self.org.code, self.month.month)
    }
}

fn name_of<'a>(r: &'a Release, c: &'a ConcessionCost) -> &'a str {
    r.bnf_name(&c.bnf_code).unwrap_or(&c.bnf_code)
}

fn estimate_words(m: &ConcessionMonth) -> String {
    format!(
        "estimated: {} prescribing is not published yet, so {}'s quantities stand in for it",
        long_month(m.month),
        long_month(m.quantity_month)
    )
}

/// `/concessions/{code}`.
pub(crate) async fn page(State(s): State<Shared>, Path(code): Path<String>, p: Params) -> Result<Response, WebError> {
    let r = &s.release;
    let q = ConcessionRequest::read(r, &code, &p)?;
    let costs = q.costs();
    let month = q.month;
    if wants_csv(&p)? {
        return Ok(costs_csv(r, &q, costs));
    }
    let total: f64 = costs.iter().map(|c| c.extra_cost).sum();
    let base = format!("/concessions/{}", q.org.code);
    let mut crumbs = crumbs_for(r, q.org);
    crumbs.push(("Price concessions".into(), base.clone()));
    let main = html! {
        span.caption { (q.org.name) " (" (q.org.code) ")" }
        h1 { "Price concessions, " (long_month(month.month)) }
        p.lede { "When a generic cannot be bought at its Drug Tariff price, a higher price is conceded for the month, and every unit dispensed costs the difference. This is what the concessions of "
            (long_month(month.month)) " cost " (q.org.name) " above the Tariff." }
        (summary(&[
            ("Extra cost", html! { strong { (pounds(total / 100.0)) } " on " (plural(costs.len(), "conceded presentation", "conceded presentations")) " prescribed" }),
            ("Quantities", html! { @if month.estimate { (estimate_words(&month)) } @else { (long_month(month.quantity_month)) " prescribing" } }),
            ("Months", html! {
                @for (i, m) in q.concessions.months().iter().enumerate() {
                    @if i > 0 { " · " }
                    @if m.month == month.month { strong { (crate::charts::short_month(m.month)) } }
                    @else { a href=(format!("{base}?month={}", m.month)) { (crate::charts::short_month(m.month)) } }
                }
            }),
        ]))
        (trend(&q))
        h2 #products { "Conceded presentations" }
        @if costs.is_empty() {
            p { (q.org.name) " prescribed none of " (long_month(month.month)) "'s conceded presentations." }
        } @else {
            p { a href=(format!("{base}?month={}&format=csv", month.month)) download { "Download the table (CSV)" }
                " · " a href=(format!("/api/v1/concessions/{}?month={}", q.org.code, month.month)) { "the same as JSON" } }
            div.table-scroll role="region" aria-label="Concessions table" tabindex="0" {
                table.table {
                    caption.visually-hidden { "Conceded presentations prescribed in " (q.org.name) ", largest extra cost first" }
                    thead { tr {
                        th scope="col" { "Presentation" }
                        th scope="col" .num { "Extra cost" }
                        th scope="col" .num { "Units" }
                        th scope="col" .num { "Tariff per unit" }
                        th scope="col" .num { "Conceded per unit" }
                        th scope="col" { "Conceded pack" }
                    } }
                    tbody {
                        @for c in costs {
                            tr {
                                td { (name_of(r, c)) " " span.code { "(" (c.bnf_code) ")" } }
                                td.num { (pounds(c.extra_cost / 100.0)) }
                                td.num { (number(c.quantity, 0)) }
                                td.num { (number(c.tariff_ppu, 2)) "p" }
                                td.num { (number(c.concession_ppu, 2)) "p" }
                                td { (c.pack_name) }
                            }
                        }
                    }
                }
            }
        }
        h2 #method { "How this is worked out" }
        p.hint { "For each conceded pack: the conceded price and the Drug Tariff price for the month, each per unit and after the discount in force "
            "(before April 2023 both less the 7.2% average deduction; from then none on the concession; from April 2024 the Tariff price less 20% in categories A and M, 5% otherwise). "
            "Where several packs of a presentation are conceded, the largest increase per unit stands for it. The increase times the units prescribed is the extra cost. "
            "Every figure is in the " code { "concession_costs" } " table (" code { "ipmo sql" } ")." }
    };
    Ok(html_page(r, &format!("Price concessions – {}", q.org.name), &crumbs, main).into_response())
}

/// The extra cost in each month held, estimated months dashed.
fn trend(q: &ConcessionRequest<'_>) -> Markup {
    let totals = q.concessions.totals(&q.org.org_type, &q.org.code);
    if totals.len() < 2 {
        return html! {};
    }
    let labels: Vec<String> = totals.iter().map(|(m, _)| charts::short_month(m.month)).collect();
    // The estimated line starts at the last month with its own quantities, so the two join.
    let last_actual = totals.iter().rposition(|(m, _)| !m.estimate);
    let actual = charts::Line {
        name: "Extra cost",
        colour: "#005eb8",
        dashed: false,
        values: totals.iter().map(|(m, t)| (!m.estimate).then_some(t / 100.0)).collect(),
    };
    let estimated = charts::Line {
        name: "Extra cost, estimated",
        colour: "#005eb8",
        dashed: true,
        values: totals
            .iter()
            .enumerate()
            .map(|(i, (m, t))| (m.estimate || Some(i) == last_actual).then_some(t / 100.0))
            .collect(),
    };
    let lines: Vec<charts::Line> =
        if totals.iter().any(|(m, _)| m.estimate) { vec![actual, estimated] } else { vec![actual] };
    let chart = charts::line_chart(
        "concessions-trend",
        &format!("Extra cost of price concessions in {} by month", q.org.name),
        &labels,
        &lines,
        "£",
    );
    html! {
        h2 #trend { "By month" }
        figure.chart-figure { (PreEscaped(chart)) (PreEscaped(charts::line_legend(&lines))) }
    }
}

fn costs_csv(r: &Release, q: &ConcessionRequest<'_>, costs: &[ConcessionCost]) -> Response {
    let m = q.month;
    let rows = costs
        .iter()
        .map(|c| {
            vec![
                q.org.code.clone(),
                m.month.to_string(),
                c.bnf_code.clone(),
                name_of(r, c).to_string(),
                c.pack.clone(),
                c.pack_name.clone(),
                csv_number(Some(c.quantity)),
                csv_number(Some(c.tariff_ppu)),
                csv_number(Some(c.concession_ppu)),
                csv_number(Some(c.extra_cost)),
                m.quantity_month.to_string(),
                m.estimate.to_string(),
            ]
        })
        .collect();
    csv(
        &format!("{}-concessions-{}.csv", q.org.code, m.month),
        &[
            "org_code",
            "month",
            "bnf_code",
            "name",
            "vmpp",
            "pack",
            "quantity",
            "tariff_ppu_pence",
            "concession_ppu_pence",
            "extra_cost_pence",
            "quantity_month",
            "is_estimate",
        ],
        rows,
    )
}

/// `/api/v1/concessions/{code}` as JSON.
pub(crate) fn json_answer(r: &Release, code: &str, p: &Params) -> Result<Value, WebError> {
    let q = ConcessionRequest::read(r, code, p)?;
    let costs = q.costs();
    Ok(json!({
        "org": { "code": q.org.code, "name": q.org.name, "org_type": q.org.org_type },
        "month": q.month.month.to_string(),
        "quantity_month": q.month.quantity_month.to_string(),
        "is_estimate": q.month.estimate,
        "extra_cost_pence": costs.iter().map(|c| c.extra_cost).sum::<f64>(),
        "presentations": costs.iter().map(|c| json!({
            "bnf_code": c.bnf_code, "name": name_of(r, c), "vmpp": c.pack, "pack": c.pack_name,
            "quantity": c.quantity, "tariff_ppu_pence": c.tariff_ppu, "concession_ppu_pence": c.concession_ppu,
            "extra_cost_pence": c.extra_cost,
        })).collect::<Vec<_>>(),
        "by_month": q.concessions.totals(&q.org.org_type, &q.org.code).iter().map(|(m, t)| json!({
            "month": m.month.to_string(), "extra_cost_pence": t, "is_estimate": m.estimate,
        })).collect::<Vec<_>>(),
    }))
}

/// The dashboard's line: the newest concession month's extra cost and a link.
pub(crate) fn dashboard_line(r: &Release, org: &Org) -> Option<Markup> {
    let c = r.concessions.as_ref()?;
    let newest = c.newest()?;
    let total: f64 = c.costs(&org.org_type, &org.code, newest.month).iter().map(|x| x.extra_cost).sum();
    Some(html! {
        (pounds(total / 100.0)) " above the Drug Tariff in " (long_month(newest.month)) @if newest.estimate { " (estimated)" } " · "
        a href=(format!("/concessions/{}", org.code)) { "concessions this month" }
    })
}
