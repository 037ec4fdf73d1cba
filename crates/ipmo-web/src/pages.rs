//! The HTML pages: home, search, organisation dashboard, measure, and measure for one
//! organisation. Each table on them can be downloaded as CSV with `?format=csv`.

use crate::charts::long_month;
use crate::format::{number, plural};
use crate::layout::{self, Crumb, summary};
use crate::params::Params;
use crate::{Shared, WebError};
use axum::extract::State;
use axum::response::Html;
use ipmo_measures::Measure;
use ipmo_release::{Org, Release, bnf_level_name, level_name};
use maud::{Markup, html};

fn footer(r: &Release) -> String {
    match r.latest_month() {
        Some(m) => format!("Data to {} · release {}", long_month(m), r.id),
        None => format!("No measure values computed yet · release {}", r.id),
    }
}

pub(crate) fn html_page(r: &Release, title: &str, crumbs: &[Crumb], main: Markup) -> Html<String> {
    Html(layout::page(title, crumbs, Some(&footer(r)), main).into_string())
}

pub(crate) fn org_link(o: &Org) -> Markup {
    html! { a href=(format!("/org/{}", o.code)) { (o.name) } " " span.code { "(" (o.code) ")" } }
}

pub(crate) fn crumbs_for(r: &Release, org: &Org) -> Vec<Crumb> {
    let mut c: Vec<Crumb> =
        r.ancestors(&org.code).into_iter().rev().map(|o| (o.name.clone(), format!("/org/{}", o.code))).collect();
    c.push((org.name.clone(), format!("/org/{}", org.code)));
    c
}

/// The home page: search, what data are loaded, the regions and ICBs, and the measures by area.
pub(crate) async fn home(State(s): State<Shared>) -> Html<String> {
    let r = &s.release;
    let count = |t: &str| r.orgs().iter().filter(|o| o.org_type == t).count();
    let mut tags: std::collections::BTreeMap<&str, Vec<&Measure>> = std::collections::BTreeMap::new();
    for m in r.library.computed() {
        let t = m.tags.first().map_or("other", String::as_str);
        tags.entry(t).or_default().push(m);
    }
    let regions: Vec<&Org> = r.orgs().iter().filter(|o| o.org_type == "region").collect();
    let groups: Vec<&Org> = r.orgs().iter().filter(|o| o.org_type.starts_with("group:")).collect();
    html_page(
        r,
        "Medicines optimisation dashboard",
        &[],
        html! {
            h1 { "Medicines optimisation across the system" }
            p.lede { "Prescribing measures for every GP practice, primary care network, sub-ICB location, integrated care board and region in England: variation, antimicrobial stewardship, safety, value and savings." }
            (layout::search_form(""))
            h2 { "The data" }
            (summary(&[
                ("Latest month", html! { @match r.latest_month() { Some(m) => (long_month(m)), None => "No measures computed yet" } }),
                ("Prescribing loaded", html! { (r.loaded_at.as_deref().map_or("never".to_string(), crate::format::timestamp)) }),
                ("Measures computed", html! { (r.computed_at.as_deref().map_or("never".to_string(), crate::format::timestamp)) }),
                ("Measures", html! { (r.library.computed().count()) }),
                ("Organisations", html! { (number(count("practice") as f64, 0)) " practices, " (count("pcn")) " PCNs, " (count("sicbl")) " sub-ICB locations, " (count("icb")) " ICBs, " (count("region")) " regions" }),
            ]))
            h2 { "Regions and integrated care boards" }
            p { a href="/org/ENG" { "England" } }
            @for region in &regions {
                h3 { (org_link(region)) }
                ul.columns {
                    @for icb in r.children(&region.code).into_iter().filter(|o| o.org_type == "icb") {
                        li { (org_link(icb)) }
                    }
                }
            }
            @if !groups.is_empty() {
                h2 { "Custom groups" }
                ul.columns { @for g in &groups { li { (org_link(g)) } } }
            }
            h2 { "Measures" }
            @for (t, measures) in &tags {
                h3 { (tag_title(t)) }
                ul {
                    @for m in measures {
                        li { a href=(format!("/measure/{}", m.id)) { (m.title) } }
                    }
                }
            }
        },
    )
}

pub(crate) fn tag_title(t: &str) -> String {
    match t {
        "antimicrobial" => "Antimicrobial stewardship".into(),
        "safety" => "Safety".into(),
        "value" => "Value".into(),
        "lowpriority" => "Low-priority prescribing".into(),
        "greener" => "Greener NHS".into(),
        "opioids" => "Opioids".into(),
        "cardiovascular" => "Cardiovascular".into(),
        "respiratory" => "Respiratory".into(),
        "diabetes" => "Diabetes".into(),
        "mentalhealth" => "Mental health".into(),
        other => {
            let mut c = other.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        }
    }
}

/// Organisations listed on one page of search results.
const SEARCH_PAGE: usize = 25;
/// BNF entries listed with search results (the BNF browser's search has more).
const SEARCH_DRUGS: usize = 10;

/// Where an organisation sits, to tell apart organisations with the same name: a practice's
/// PCN, ICB and postcode; a PCN's or sub-ICB location's ICB; an ICB's region.
fn whereabouts(r: &Release, o: &Org) -> String {
    let up = r.ancestors(&o.code);
    let name = |t: &str| up.iter().find(|a| a.org_type == t).map(|a| a.name.clone());
    let mut parts: Vec<String> = match o.org_type.as_str() {
        "practice" => vec![name("pcn"), name("icb")].into_iter().flatten().collect(),
        "pcn" | "sicbl" => name("icb").into_iter().collect(),
        "icb" => name("region").into_iter().collect(),
        _ => Vec::new(),
    };
    if let Some(pc) = r.practice_facts(&o.code).and_then(|f| f.postcode.clone()) {
        parts.push(pc);
    }
    parts.join(" · ")
}

/// Search results: organisations (counted and paged, each with where it is), medicines in the
/// BNF, and measures.
pub(crate) async fn search(State(s): State<Shared>, p: Params) -> Result<Html<String>, WebError> {
    let r = &s.release;
    let q = p.get("q").unwrap_or("");
    if q.chars().count() > 100 {
        return Err(WebError::BadParameter("q".into(), "is longer than 100 characters".into()));
    }
    let page: usize = match p.get("page") {
        None => 1,
        Some(n) => n
            .parse()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| WebError::BadParameter("page".into(), format!("\"{n}\" is not a page number from 1")))?,
    };
    let orgs = r.search_orgs(q, usize::MAX);
    let pages = orgs.len().div_ceil(SEARCH_PAGE).max(1);
    if page > pages {
        return Err(WebError::BadParameter("page".into(), format!("there are only {pages} pages of results")));
    }
    let measures = r.search_measures(q);
    let drugs = if q.trim().chars().count() >= 3 { r.bnf_search(q, usize::MAX) } else { Vec::new() };
    Ok(html_page(
        r,
        "Search",
        &[("Search".into(), "/search".into())],
        html! {
            h1 { "Search" }
            (layout::search_form(q))
            @if q.is_empty() {
                p { "Type a practice, PCN, ICB or region name or ODS code, a medicine, or words from a measure's title." }
            } @else {
                p.lede role="status" { (plural(orgs.len(), "organisation", "organisations")) ", " (plural(drugs.len(), "BNF entry", "BNF entries")) " and " (plural(measures.len(), "measure", "measures")) " match “" (q) "”." }
                (org_results(r, q, &orgs, page, pages))
                (other_results(q, &drugs, &measures))
            }
        },
    ))
}

/// One page of the organisations found, with where each is, and links to the other pages.
fn org_results(r: &Release, q: &str, orgs: &[&Org], page: usize, pages: usize) -> Markup {
    let shown = &orgs[((page - 1) * SEARCH_PAGE).min(orgs.len())..(page * SEARCH_PAGE).min(orgs.len())];
    let page_link = |n: usize| format!("/search?q={}&page={n}", crate::params::urlencode(q));
    html! {
        @if !orgs.is_empty() {
            h2 #organisations { "Organisations" }
            @if pages > 1 { p { "Showing " ((page - 1) * SEARCH_PAGE + 1) " to " ((page - 1) * SEARCH_PAGE + shown.len()) " of " (orgs.len()) "." } }
            (layout::scroll("Organisations matching the search", html! {
                table.table {
                    caption.visually-hidden { "Organisations matching the search" }
                    thead { tr { th scope="col" { "Organisation" } th scope="col" { "Type" } th scope="col" { "Where" } } }
                    tbody {
                        @for o in shown {
                            tr { td { (org_link(o)) } td { (level_name(&o.org_type)) } td { (whereabouts(r, o)) } }
                        }
                    }
                }
            }))
            @if pages > 1 {
                nav.pagination aria-label="Pages of organisations" { ul {
                    @if page > 1 { li { a href=(page_link(page - 1)) rel="prev" { "Previous" } } }
                    li { "Page " (page) " of " (pages) }
                    @if page < pages { li { a href=(page_link(page + 1)) rel="next" { "Next" } } }
                } }
            }
        }
    }
}

/// The medicines in the BNF and the measures found.
fn other_results(q: &str, drugs: &[(&str, &str)], measures: &[&Measure]) -> Markup {
    html! {
        @if !drugs.is_empty() {
            h2 #medicines { "Medicines in the BNF" }
            ul {
                @for (code, name) in drugs.iter().take(SEARCH_DRUGS) {
                    li { a href=(format!("/bnf?code={code}")) { (name) } " " span.code { "(" (bnf_level_name(code.len()).to_lowercase()) " " (code) ")" }
                         " · " a href=(format!("/analyse?num={code}&den=list-size&level=icb")) { "Analyse" span.visually-hidden { " " (name) } } }
                }
            }
            @if drugs.len() > SEARCH_DRUGS { p { a href=(format!("/bnf?q={}", crate::params::urlencode(q))) { "All " (drugs.len()) " BNF entries matching “" (q) "”" } } }
        }
        @if !measures.is_empty() {
            h2 #measures { "Measures" }
            ul {
                @for m in measures {
                    li { a href=(format!("/measure/{}", m.id)) { (m.title) } }
                }
            }
        }
    }
}
