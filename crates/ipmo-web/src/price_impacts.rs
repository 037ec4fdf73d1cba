//! What price changes cost an organisation, one page per kind: "concessions this month"
//! (`/concessions/{code}`: what each conceded presentation cost above the Drug Tariff) and the
//! Tariff's own changes (`/price-changes/{code}`: what this month's prices cost against last
//! month's), largest first, with the months before as a chart; a month newer than the newest
//! prescribing is priced on that month's quantities and says so. `?month=` chooses one of the
//! months held, `?format=csv` downloads the table and `/api/v1/concessions/{code}` and
//! `/api/v1/price-changes/{code}` answer as JSON.

use crate::charts;
use crate::csv::{csv, csv_number};
use crate::format::{long_month, number, plural, pounds};
use crate::layout::summary;
use crate::pages::{crumbs_for, html_page};
use crate::params::{Params, org_of, wants_csv};
use crate::{Shared, WebError};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ipmo_release::price_impacts::{ImpactCost, ImpactMonth, PriceImpacts};
use ipmo_release::{Org, Release};
use maud::{Markup, PreEscaped, html};
use serde_json::{Value, json};

/// Presentations listed on a page, largest impact first (the CSV and JSON have all).
const PAGE_ROWS: usize = 100;

/// Which price changes a page is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Price concessions: the conceded price against the Tariff's.
    Concessions,
    /// The Drug Tariff's changes: this month's price against last month's.
    TariffChanges,
}

impl Kind {
    fn impacts(self, r: &Release) -> Option<&PriceImpacts> {
        match self {
            Kind::Concessions => r.concessions.as_ref(),
            Kind::TariffChanges => r.price_changes.as_ref(),
        }
    }

    /// The page's path under which organisation codes go.
    fn path(self) -> &'static str {
        match self {
            Kind::Concessions => "/concessions",
            Kind::TariffChanges => "/price-changes",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Concessions => "Price concessions",
            Kind::TariffChanges => "Drug Tariff price changes",
        }
    }

    /// What the before and after prices are, for column headings.
    fn prices(self) -> [&'static str; 2] {
        match self {
            Kind::Concessions => ["Tariff per unit", "Conceded per unit"],
            Kind::TariffChanges => ["Last month per unit", "This month per unit"],
        }
    }

    /// The CSV's before, after and impact columns (the stored table's names).
    fn columns(self) -> [&'static str; 3] {
        ipmo_release::price_impacts::cost_columns(self.table())
    }

    fn table(self) -> &'static str {
        match self {
            Kind::Concessions => "concession_costs",
            Kind::TariffChanges => "price_change_costs",
        }
    }
}

/// An organisation and one of the months held of one kind.
struct ImpactRequest<'a> {
    kind: Kind,
    impacts: &'a PriceImpacts,
    org: &'a Org,
    month: ImpactMonth,
}

impl<'a> ImpactRequest<'a> {
    /// 404 before costs are computed or for an unknown organisation; a month not held is a 400
    /// naming the months there are.
    fn read(kind: Kind, r: &'a Release, code: &str, p: &Params) -> Result<Self, WebError> {
        let impacts = kind.impacts(r).filter(|c| c.newest().is_some()).ok_or_else(|| {
            WebError::NotFound(format!(
                "{} have not been costed yet: run `ipmo value compute` (Tariff changes need two consecutive Tariff months loaded).",
                kind.title()
            ))
        })?;
        let org = org_of(r, code)?;
        let held = impacts.months();
        let month = match p.month("month")? {
            None => *held.last().ok_or_else(|| WebError::NotFound("No concession months are held.".into()))?,
            Some(m) => *held.iter().find(|h| h.month == m).ok_or_else(|| {
                let (first, last) = (held.first().map(|h| h.month), held.last().map(|h| h.month));
                let range =
                    first.zip(last).map(|(a, b)| format!("; choose a month from {a} to {b}")).unwrap_or_default();
                WebError::BadParameter("month".into(), format!("{m} has no costs held{range}"))
            })?,
        };
        Ok(Self { kind, impacts, org, month })
    }

    fn costs(&self) -> &'a [ImpactCost] {
        self.impacts.costs(&self.org.org_type, &self.org.code, self.month.month)
    }
}

pub(crate) fn name_of<'a>(r: &'a Release, c: &'a ImpactCost) -> &'a str {
    r.bnf_name(&c.bnf_code).unwrap_or(&c.bnf_code)
}

fn estimate_words(m: &ImpactMonth) -> String {
    format!(
        "estimated: {} prescribing is not published yet, so {}'s quantities stand in for it",
        long_month(m.month),
        long_month(m.quantity_month)
    )
}

/// `/concessions/{code}`.
pub(crate) async fn concessions(
    State(s): State<Shared>,
    Path(code): Path<String>,
    p: Params,
) -> Result<Response, WebError> {
    page(Kind::Concessions, &s.release, &code, &p)
}

/// `/price-changes/{code}`.
pub(crate) async fn tariff_changes(
    State(s): State<Shared>,
    Path(code): Path<String>,
    p: Params,
) -> Result<Response, WebError> {
    page(Kind::TariffChanges, &s.release, &code, &p)
}

/// What the page says above its table, by kind.
fn lede(q: &ImpactRequest<'_>) -> Markup {
    let month = long_month(q.month.month);
    match q.kind {
        Kind::Concessions => html! {
            "When a generic cannot be bought at its Drug Tariff price, a higher price is conceded for the month, and every unit dispensed costs the difference. This is what the concessions of "
            (month) " cost " (q.org.name) " above the Tariff."
        },
        Kind::TariffChanges => html! {
            "The Drug Tariff's prices change from month to month (Category M quarterly, the others as manufacturers change them). This is what the changes in "
            (month) "'s Tariff cost " (q.org.name) " against the month before, at its own volumes: positive is a cost pressure, negative a saving."
        },
    }
}

fn method(kind: Kind) -> Markup {
    let discount = "(before April 2023 both less the 7.2% average deduction; from then none on a conceded price; from April 2024 a Tariff price less 20% in categories A and M, 5% otherwise)";
    html! {
        @match kind {
            Kind::Concessions => { "For each conceded pack: the conceded price and the Drug Tariff price for the month, each per unit and after the discount in force "
                (discount) ". Where several packs of a presentation are conceded, the largest increase per unit stands for it. The increase times the units prescribed is the extra cost. " }
            Kind::TariffChanges => { "For each pack in both months' Tariffs: its price per unit paid last month and this month, each after the discount in force in its month for its category "
                (discount) ". Changes under 1% of the old price are left out; where several packs of a presentation changed, the largest change per unit stands for it. The change times the units prescribed is the impact. " }
        }
        "Every figure is in the " code { (kind.table()) } " table (" code { "ipmo sql" } ")."
    }
}

fn page(kind: Kind, r: &Release, code: &str, p: &Params) -> Result<Response, WebError> {
    let q = ImpactRequest::read(kind, r, code, p)?;
    let costs = q.costs();
    let month = q.month;
    if wants_csv(p)? {
        return Ok(costs_csv(r, &q, costs));
    }
    let total: f64 = costs.iter().map(|c| c.impact).sum();
    let base = format!("{}/{}", kind.path(), q.org.code);
    let mut crumbs = crumbs_for(r, q.org);
    crumbs.push((kind.title().into(), base.clone()));
    let [before, after] = kind.prices();
    let main = html! {
        span.caption { (q.org.name) " (" (q.org.code) ")" }
        h1 { (kind.title()) ", " (long_month(month.month)) }
        p.lede { (lede(&q)) }
        (summary(&[
            (if kind == Kind::Concessions { "Extra cost" } else { "Change in cost" },
                html! { strong { (pounds(total / 100.0)) } " on " (plural(costs.len(), "presentation", "presentations")) " prescribed" }),
            ("Quantities", html! { @if month.estimate { (estimate_words(&month)) } @else { (long_month(month.quantity_month)) " prescribing" } }),
            ("Months", html! {
                @for (i, m) in q.impacts.months().iter().enumerate() {
                    @if i > 0 { " · " }
                    @if m.month == month.month { strong { (crate::charts::short_month(m.month)) } }
                    @else { a href=(format!("{base}?month={}", m.month)) { (crate::charts::short_month(m.month)) } }
                }
            }),
        ]))
        (trend(&q))
        h2 #products { "Presentations" }
        @if costs.is_empty() {
            p { (q.org.name) " prescribed none of " (long_month(month.month)) "'s presentations." }
        } @else {
            p { a href=(format!("{base}?month={}&format=csv", month.month)) download { "Download the table (CSV)" }
                " · " a href=(format!("/api/v1{}/{}?month={}", kind.path(), q.org.code, month.month)) { "the same as JSON" } }
            div.table-scroll role="region" aria-label="Presentations table" tabindex="0" {
                table.table {
                    caption.visually-hidden { (kind.title()) ": presentations prescribed in " (q.org.name) ", largest first" }
                    thead { tr {
                        th scope="col" { "Presentation" }
                        th scope="col" .num { @if kind == Kind::Concessions { "Extra cost" } @else { "Impact" } }
                        th scope="col" .num { "Units" }
                        th scope="col" .num { (before) }
                        th scope="col" .num { (after) }
                        th scope="col" { "Pack" }
                    } }
                    tbody {
                        @for c in costs.iter().take(PAGE_ROWS) {
                            tr {
                                td { (name_of(r, c)) " " span.code { "(" (c.bnf_code) ")" } }
                                td.num { (pounds(c.impact / 100.0)) }
                                td.num { (number(c.quantity, 0)) }
                                td.num { (number(c.before, 2)) "p" }
                                td.num { (number(c.after, 2)) "p" }
                                td { (c.pack_name) }
                            }
                        }
                    }
                }
            }
        }
        @if costs.len() > PAGE_ROWS { p { "The " (PAGE_ROWS) " largest of " (costs.len()) " are listed; the CSV and the JSON have them all." } }
        h2 #method { "How this is worked out" }
        p.hint { (method(kind)) }
    };
    Ok(html_page(r, &format!("{} – {}", kind.title(), q.org.name), &crumbs, main).into_response())
}

/// The cost in each month held, estimated months dashed.
fn trend(q: &ImpactRequest<'_>) -> Markup {
    let totals = q.impacts.totals(&q.org.org_type, &q.org.code);
    if totals.len() < 2 {
        return html! {};
    }
    let labels: Vec<String> = totals.iter().map(|(m, _)| charts::short_month(m.month)).collect();
    // The estimated line starts at the last month with its own quantities, so the two join.
    let last_actual = totals.iter().rposition(|(m, _)| !m.estimate);
    let actual = charts::Line {
        name: "Cost",
        colour: "#005eb8",
        dashed: false,
        values: totals.iter().map(|(m, t)| (!m.estimate).then_some(t / 100.0)).collect(),
    };
    let estimated = charts::Line {
        name: "Cost, estimated",
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

fn costs_csv(r: &Release, q: &ImpactRequest<'_>, costs: &[ImpactCost]) -> Response {
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
                csv_number(Some(c.before)),
                csv_number(Some(c.after)),
                csv_number(Some(c.impact)),
                m.quantity_month.to_string(),
                m.estimate.to_string(),
            ]
        })
        .collect();
    let [before, after, impact] = q.kind.columns();
    let header = [
        "org_code",
        "month",
        "bnf_code",
        "name",
        "vmpp",
        "pack",
        "quantity",
        before,
        after,
        impact,
        "quantity_month",
        "is_estimate",
    ];
    csv(&format!("{}-{}-{}.csv", q.org.code, q.kind.path().trim_start_matches('/'), m.month), &header, rows)
}

/// `/api/v1/concessions/{code}` or `/api/v1/price-changes/{code}` as JSON.
pub(crate) fn json_answer(kind: Kind, r: &Release, code: &str, p: &Params) -> Result<Value, WebError> {
    let q = ImpactRequest::read(kind, r, code, p)?;
    let costs = q.costs();
    let [before, after, impact] = kind.columns();
    Ok(json!({
        "org": { "code": q.org.code, "name": q.org.name, "org_type": q.org.org_type },
        "month": q.month.month.to_string(),
        "quantity_month": q.month.quantity_month.to_string(),
        "is_estimate": q.month.estimate,
        impact: costs.iter().map(|c| c.impact).sum::<f64>(),
        "presentations": costs.iter().map(|c| json!({
            "bnf_code": c.bnf_code, "name": name_of(r, c), "vmpp": c.pack, "pack": c.pack_name,
            "quantity": c.quantity, before: c.before, after: c.after, impact: c.impact,
        })).collect::<Vec<_>>(),
        "by_month": q.impacts.totals(&q.org.org_type, &q.org.code).iter().map(|(m, t)| json!({
            "month": m.month.to_string(), impact: t, "is_estimate": m.estimate,
        })).collect::<Vec<_>>(),
    }))
}

/// The dashboard's line for a kind: the newest month's total and a link.
pub(crate) fn dashboard_line(kind: Kind, r: &Release, org: &Org) -> Option<Markup> {
    let impacts = kind.impacts(r)?;
    let newest = impacts.newest()?;
    let total: f64 = impacts.costs(&org.org_type, &org.code, newest.month).iter().map(|x| x.impact).sum();
    Some(html! {
        (pounds(total / 100.0))
        @if kind == Kind::Concessions { " above the Drug Tariff in " } @else { " from the Tariff's changes in " }
        (long_month(newest.month)) @if newest.estimate { " (estimated)" } " · "
        a href=(format!("{}/{}", kind.path(), org.code)) {
            @if kind == Kind::Concessions { "concessions this month" } @else { "price changes this month" }
        }
    })
}
