//! The medicines value programme's views: the savings ledger (each scheme's saving measured from
//! the prescribing against its plan, by financial year and by the practices' IMD quintile) and
//! the horizon scan (items by financial year with their computed impact a year, and what the data
//! offer for a person to accept). The figures come from `ipmo_programme`, so the board report
//! and the assurance framework reach the same ones.

use super::cells::name_of;
use crate::charts;
use crate::format::{long_month, number, pounds};
use crate::layout;
use crate::params::urlencode;
use crate::{AppState, Shared};
use ipmo_domain::YearMonth;
use ipmo_governance::kinds;
use ipmo_governance::store::Record;
use ipmo_programme::horizon::{self, Impact, Offer};
use ipmo_programme::ledger::{self, AMBER_FROM, GREEN_FROM, LedgerYear, Measurement, Realisation, Scheme, SchemeType};
use maud::{Markup, PreEscaped, html};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Quintile labels, `[unknown, 1, …, 5]` as [`Realisation::by_quintile`] holds them.
const QUINTILES: [&str; 6] = ["IMD not known", "1 (most deprived)", "2", "3", "4", "5 (least deprived)"];

/// A scheme and its measured saving (or why it could not be measured).
struct Measured<'a> {
    rec: &'a Record,
    result: Arc<Measurement>,
}

pub(super) fn rag_tag(rag: Option<&str>) -> Markup {
    match rag {
        Some("Green") => layout::tag("Green", "green"),
        Some("Amber") => layout::tag("Amber", "orange"),
        Some("Red") => layout::tag("Red", "red"),
        _ => layout::tag("No data", "grey"),
    }
}

/// Cumulative planned and realised savings by month (`sums`, running totals), as lines.
fn cumulative_chart(id: &str, title: &str, months: &[YearMonth], sums: &[(f64, f64)]) -> Markup {
    let labels: Vec<String> = months.iter().map(|m| charts::short_month(*m)).collect();
    let lines = charts::cumulative_lines(sums);
    html! {
        (PreEscaped(charts::line_chart(id, title, &labels, &lines, "£")))
        (PreEscaped(charts::line_legend(&lines)))
    }
}

/// The savings ledger above the list of schemes.
pub(super) fn ledger(s: &AppState, schemes: &[Record]) -> Markup {
    let r = &s.release;
    let sk = kinds::kind("scheme").expect("scheme");
    if schemes.is_empty() {
        return html! { p { "No savings schemes yet." } };
    }
    let measured: Vec<Measured> = schemes.iter().map(|rec| Measured { rec, result: s.scheme(rec) }).collect();
    let ok: Vec<(&Record, &Scheme, &Realisation)> =
        measured.iter().filter_map(|m| m.result.as_ref().as_ref().ok().map(|(s, real)| (m.rec, s, real))).collect();
    let (realised, planned): (f64, f64) =
        ok.iter().fold((0.0, 0.0), |a, (_, _, x)| (a.0 + x.realised, a.1 + x.planned));
    // (planned, realised) by month over every scheme.
    let mut by_month: BTreeMap<YearMonth, (f64, f64)> = BTreeMap::new();
    let mut quintiles = [0.0; 6];
    for (_, _, real) in &ok {
        for m in &real.months {
            let e = by_month.entry(m.month).or_default();
            e.0 += m.planned;
            e.1 += m.realised;
        }
        for (q, v) in quintiles.iter_mut().zip(real.by_quintile) {
            *q += v;
        }
    }
    let years = ledger::by_financial_year(ok.iter().map(|(_, s, real)| (*s, *real)));
    let last = by_month.keys().next_back().copied();
    html! {
        h2 { "The ledger" }
        p.headline {
            strong { (pounds(realised)) } " realised against " strong { (pounds(planned)) } " planned to date"
            @if planned > 0.0 { " (" (number(realised / planned * 100.0, 0)) "%)" }
            " across " (crate::format::plural(ok.len(), "scheme", "schemes"))
            @if let Some(m) = last { ", to " (long_month(m)) } "."
        }
        p.hint { "Every saving is measured from the prescribing each month against the scheme's own baseline; none is typed in. A scheme is green from "
            (number(GREEN_FROM * 100.0, 0)) "% of its plan to date, amber from " (number(AMBER_FROM * 100.0, 0)) "%, red below." }
        @if !by_month.is_empty() {
            (cumulative_chart("ledger-chart", "Savings realised and planned, cumulative, all schemes",
                &by_month.keys().copied().collect::<Vec<_>>(), &ledger::running_totals(by_month.values().copied())))
        }
        (layout::scroll("Schemes", html! {
            table.table {
                caption { "Schemes" }
                thead { tr { th scope="col" { "Scheme" } th scope="col" { "Type" } th scope="col" { "Organisation" } th scope="col" { "Start" }
                    th scope="col" .num { "Plan a year" } th scope="col" .num { "Plan to date" } th scope="col" .num { "Realised" } th scope="col" { "RAG" } } }
                tbody { @for m in &measured {
                    tr {
                        td { a href=(format!("/gov/scheme/{}", m.rec.id)) { (sk.reference(m.rec.id)) } " " (name_of(sk, m.rec)) }
                        td { (m.rec.text("scheme_type")) }
                        td { (r.org(m.rec.text("org")).map_or(m.rec.text("org"), |o| o.name.as_str())) }
                        td { (m.rec.text("start")) }
                        td.num { (pounds(m.rec.number("planned_annual").unwrap_or(0.0))) }
                        @match m.result.as_ref() {
                            Ok((_, real)) => { td.num { (pounds(real.planned)) } td.num { (pounds(real.realised)) } td { (rag_tag(real.rag)) } }
                            Err(e) => { td colspan="3" { "Not measured: " (e) } }
                        }
                    }
                } }
                tfoot { tr { th scope="row" colspan="5" { "Total" } td.num { (pounds(planned)) } td.num { (pounds(realised)) } td {} } }
            }
        }))
        (financial_years(&years))
        (quintile_table("Realised savings by practice IMD quintile, all schemes", &quintiles))
    }
}

/// The ledger by financial year.
fn financial_years(years: &BTreeMap<String, LedgerYear>) -> Markup {
    html! {
        (layout::scroll("By financial year", html! {
            table.table {
                caption { "By financial year (April to March)" }
                thead { tr { th scope="col" { "Year" } th scope="col" .num { "Planned, whole year" } th scope="col" .num { "Planned, months in the data" } th scope="col" .num { "Realised" } } }
                tbody { @for (y, t) in years { tr { td { (y) } td.num { (pounds(t.planned_year)) } td.num { (pounds(t.planned_to_date)) } td.num { (pounds(t.realised)) } } } }
            }
        }))
    }
}

/// Savings by the practices' national IMD quintile: the inequalities lens.
fn quintile_table(caption: &str, quintiles: &[f64; 6]) -> Markup {
    let total: f64 = quintiles.iter().sum();
    html! {
        (layout::scroll(caption, html! {
            table.table {
                caption { (caption) }
                thead { tr { th scope="col" { "Quintile" } th scope="col" .num { "Realised" } th scope="col" .num { "Share" } } }
                tbody { @for (i, v) in quintiles.iter().enumerate().skip(1).chain(std::iter::once((0, &quintiles[0]))) {
                    @if i > 0 || *v != 0.0 {
                        tr { td { (QUINTILES[i]) } td.num { (pounds(*v)) } td.num { @if total != 0.0 { (number(v / total * 100.0, 1)) "%" } @else { "—" } } }
                    }
                } }
            }
        }))
        p.hint { "Each practice's saving is counted in its national IMD quintile, so the rows add up to the total." }
    }
}

/// What a scheme's page shows: RAG, method, baseline, the cumulative chart, each month, the
/// quintile split, and the commands that reproduce the monthly sums.
pub(super) fn scheme_panel(state: &AppState, rec: &Record) -> Markup {
    let result = state.scheme(rec);
    let (s, real) = match result.as_ref() {
        Ok((s, real)) => (s, real),
        Err(e) => return html! { h2 { "Saving, measured" } p { "Not measured: " (e) } },
    };
    let to = real.months.last().map_or(s.start, |m| m.month);
    let from_codes = s.from.include.join(",");
    let den = s.to.as_ref().map_or(from_codes.clone(), |t| t.include.join(","));
    let command = |value: &str| {
        format!(
            "ipmo analyse --numerator {from_codes} --denominator {} --value {value} --org-type practice --from {} --to {to}",
            if s.kind == SchemeType::Reduction && value == "nic" { "list-size".to_string() } else { den.clone() },
            s.baseline.0
        )
    };
    let months: Vec<YearMonth> = real.months.iter().map(|m| m.month).collect();
    let cumulative = ledger::running_totals(real.months.iter().map(|m| (m.planned, m.realised)));
    html! {
        h2 { "Saving, measured" }
        p { (rag_tag(real.rag)) " " (real.why) }
        (layout::summary(&[
            ("Method", html! { (s.kind.method()) }),
            ("Baseline", html! { (real.baseline) }),
            ("Plan", html! { (pounds(s.planned_annual)) " a year, " (pounds(s.planned_annual / 12.0)) " a month from " (long_month(s.start)) }),
        ]))
        @if !months.is_empty() { (cumulative_chart("scheme-chart", "Saving realised and planned, cumulative", &months, &cumulative)) }
        (layout::scroll("Each month", html! {
            table.table {
                caption { "Each month" }
                thead { tr { th scope="col" { "Month" } th scope="col" .num { "Practices" } th scope="col" .num { "Planned" } th scope="col" .num { "Realised" } th scope="col" .num { "Planned, cumulative" } th scope="col" .num { "Realised, cumulative" } } }
                tbody { @for (m, (cum_p, cum_r)) in real.months.iter().zip(&cumulative) {
                    tr { td { (long_month(m.month)) } td.num { (m.practices) } td.num { (pounds(m.planned)) } td.num { (pounds(m.realised)) } td.num { (pounds(*cum_p)) } td.num { (pounds(*cum_r)) } }
                } }
            }
        }))
        (quintile_table("Realised by practice IMD quintile", &real.by_quintile))
        h3 { "Reproduce the monthly sums" }
        p.hint { "The practice-month quantities and costs the saving is worked from (add " code { "--show-sql" } " for the SQL, or " code { "--engine sql" } " to run it on the warehouse):" }
        pre.command { code { (command("quantity")) "\n" (command("nic")) } }
    }
}

/// What a horizon item's page shows: the impact and how it was reached.
pub(super) fn horizon_panel(s: &AppState, rec: &Record) -> Markup {
    let pct = rec.number("price_change_pct").unwrap_or(0.0);
    html! {
        h2 { "Impact a year, computed" }
        @match s.horizon_impact(rec).as_ref() {
            Ok(i) => { p.headline { strong { (pounds(i.impact)) } @if i.impact >= 0.0 { " cost pressure a year" } @else { " saving a year" } } p { (i.explain(pct)) } }
            Err(e) => { p { "Not sized: " (e) } }
        }
        p.hint { "The organisation's NIC on the products over the latest " (horizon::RUN_RATE_MONTHS) " months of prescribing (or the " (horizon::RUN_RATE_MONTHS) " months before the expected date, when that has passed, so a change already in the data is not counted twice), scaled to a year, times the expected change. Edit the expected change to resize it." }
    }
}

/// The annual horizon scan above the list of items: items by financial year with totals, then
/// the data's offers for `org`.
pub(super) fn horizon_scan(s: &Shared, items: &[Record], org: Option<&str>, editor: bool) -> Markup {
    let r = &s.release;
    let hk = kinds::kind("horizon").expect("horizon");
    let mut years: BTreeMap<String, Vec<SizedItem>> = BTreeMap::new();
    for rec in items {
        let year = rec.text("expected").get(..7).and_then(|m| m.parse::<YearMonth>().ok()).map(ledger::financial_year);
        years.entry(year.unwrap_or_else(|| "No date".into())).or_default().push((rec, s.horizon_impact(rec)));
    }
    let sums = |list: &[SizedItem]| {
        list.iter()
            .filter_map(|(_, i)| i.as_ref().as_ref().ok())
            .fold((0.0, 0.0), |a, i| if i.impact >= 0.0 { (a.0 + i.impact, a.1) } else { (a.0, a.1 + i.impact) })
    };
    let org = org
        .map(str::to_string)
        .or_else(|| items.first().map(|x| x.text("org").to_string()))
        .or_else(|| r.orgs().iter().find(|o| o.org_type == "icb").map(|o| o.code.clone()));
    html! {
        h2 { "The annual horizon scan" }
        @if items.is_empty() { p { "No items in the register yet." } } @else {
            p.hint { "Each item's impact is the organisation's spend on the products at the latest run rate (before the expected date, when that has passed) times the expected change; positive is a cost pressure, negative a saving. Items fall in the financial year of their expected date." }
            (layout::scroll("Horizon scan by financial year", html! {
                table.table {
                    caption { "By financial year" }
                    thead { tr { th scope="col" { "Year" } th scope="col" .num { "Items" } th scope="col" .num { "Cost pressures a year" } th scope="col" .num { "Savings a year" } th scope="col" .num { "Net" } } }
                    tbody { @for (y, list) in &years {
                        @let (up, down) = sums(list);
                        tr { td { a href=(format!("#{}", year_anchor(y))) { (y) } } td.num { (list.len()) } td.num { (pounds(up)) } td.num { (pounds(down)) } td.num { (pounds(up + down)) } }
                    } }
                }
            }))
            @for (y, list) in &years {
                h3 id=(year_anchor(y)) { (y) }
                (layout::scroll(&format!("Horizon scan {y}"), html! {
                    table.table {
                        caption.visually-hidden { "Horizon scan " (y) }
                        thead { tr { th scope="col" { "Item" } th scope="col" { "Category" } th scope="col" { "Expected" } th scope="col" { "Organisation" } th scope="col" .num { "Change" } th scope="col" .num { "Spend a year" } th scope="col" .num { "Impact a year" } th scope="col" { "Status" } } }
                        tbody { @for (rec, impact) in list {
                            tr {
                                td { a href=(format!("/gov/horizon/{}", rec.id)) { (hk.reference(rec.id)) } " " (name_of(hk, rec)) }
                                td { (rec.text("category")) }
                                td { (crate::format::iso_date(rec.text("expected"))) }
                                td { (rec.text("org")) }
                                td.num { (number(rec.number("price_change_pct").unwrap_or(0.0), 0)) "%" }
                                @match impact.as_ref() {
                                    Ok(i) => { td.num { (pounds(i.annual_spend)) } td.num { (pounds(i.impact)) } }
                                    Err(e) => { td colspan="2" { "Not sized: " (e) } }
                                }
                                td { (rec.text("status")) }
                            }
                        } }
                    }
                }))
            }
        }
        @if let Some(org) = org { (offers(s, items, &org, editor)) }
    }
}

/// A horizon item with its impact, or why it could not be sized.
type SizedItem<'a> = (&'a Record, Arc<Result<Impact, String>>);

/// The id of a financial year's section: `fy-2025-26`.
fn year_anchor(year: &str) -> String {
    format!("fy-{}", year.replace(['/', ' '], "-"))
}

/// The data's suggestions for the register, each with a link that opens the new-item form
/// filled in: saving it is the acceptance.
fn offers(s: &Shared, items: &[Record], org: &str, editor: bool) -> Markup {
    let r = &s.release;
    let hk = kinds::kind("horizon").expect("horizon");
    let Some(name) = r.org(org).map(|o| o.name.clone()) else {
        return html! { h2 { "Signals in the data" } p { "There is no organisation with the code \"" (org) "\" in this data." } };
    };
    let found = s.activity().map(|activity| horizon::offers(r, org, activity));
    let in_register = |o: &Offer| {
        items.iter().find(|x| {
            x.text("codes").split(", ").any(|c| o.code.starts_with(c) && !c.is_empty())
                && x.text("category") == o.category
        })
    };
    let accept = |o: &Offer| {
        let fields = [
            ("title", o.title.clone()),
            ("category", o.category.to_string()),
            ("expected", o.expected.first_day().format("%Y-%m-%d").to_string()),
            ("codes", o.code.clone()),
            ("org", org.to_string()),
            ("price_change_pct", o.price_change_pct.to_string()),
            ("status", "Watching".to_string()),
            ("source", format!("Signal in the data: {}", o.detail)),
        ];
        let query: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
        format!("/gov/horizon/new?{}", query.join("&"))
    };
    html! {
        h2 { "Signals in the data for " (name) }
        p.hint { "New presentations and the fastest-growing ones nationally (growth of at least " (number(horizon::MIN_GROWTH_PCT, 0)) "% on the same months a year before, or the three months before when a year is not held), and this organisation's Drug Tariff price changes and concessions of at least "
            (pounds(horizon::MIN_PRICE_IMPACT)) " in the newest month. A person decides what enters the register." }
        form.inline method="get" action="/gov/horizon" {
            label for="offers-org" { "Organisation" } " "
            input id="offers-org" type="text" name="org" value=(org) size="8";
            " " button type="submit" { "Show signals" }
        }
        @match found {
            Err(e) => { p { "No signals: " (e) } }
            Ok(list) if list.is_empty() => { p { "No signals this month." } }
            Ok(list) => {
                (layout::scroll("Signals", html! {
                    table.table {
                        caption.visually-hidden { "Signals" }
                        thead { tr { th scope="col" { "Signal" } th scope="col" { "What the data show" } th scope="col" .num { "Change" } th scope="col" { "Register" } } }
                        tbody { @for o in &list {
                            tr {
                                td { strong { (o.category) } br; (o.title.split_once(": ").map_or(o.title.as_str(), |x| x.1)) " " span.code { "(" (o.code) ")" } }
                                td { (o.detail) }
                                td.num { (number(o.price_change_pct, 0)) "%" }
                                td { @match in_register(o) {
                                    Some(x) => { "In the register: " a href=(format!("/gov/horizon/{}", x.id)) { (hk.reference(x.id)) } }
                                    None if editor => { a href=(accept(o)) { "Accept into the register" } }
                                    None => { "Not in the register" }
                                } }
                            }
                        } }
                    }
                }))
            }
        }
    }
}
