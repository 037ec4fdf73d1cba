//! The BNF browser (chapter → presentation, with national totals) and the analyse page (any BNF
//! codes over any others or over list size, for any level and period), both answered from the
//! prescribing index. Requests are bounded: at most `MAX_PREFIXES` prefixes a side, the months the
//! index holds, and the server's request timeout.

use crate::analyse_request::{AnalyseRequest, Term};
use crate::charts::{self, long_month};
use crate::format::{amount_of, decimals_of, number, plural, pounds, value};
use crate::layout::{self, Crumb};
use crate::params::{Params, index_error};
use crate::{Shared, WebError};
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use ipmo_domain::YearMonth;
use ipmo_index::{Analysis, AnalysisRow, CodeSet, Level};
use ipmo_release::{Org, Release, bnf_level_name, level_name, level_plural};
use maud::{Markup, PreEscaped, html};
use rustc_hash::FxHashSet;
use std::collections::BTreeMap;

/// Most organisations the analyse page lists (the CSV has them all).
const TABLE_ROWS: usize = 100;

fn page(r: &Release, title: &str, crumbs: &[Crumb], main: Markup) -> Html<String> {
    let note = match r.index.as_ref().and_then(|ix| ix.months.last()) {
        Some(m) => format!("Prescribing to {} · release {}", long_month(*m), r.id),
        None => format!("No prescribing index · release {}", r.id),
    };
    Html(layout::page(title, crumbs, Some(&note), main).into_string())
}

pub(crate) fn no_index() -> WebError {
    WebError::NotFound(
        "The prescribing index is not open on this server (it was started with --no-index, or holds no prescribing)."
            .into(),
    )
}

/// The BNF browser: the entries under a code with national items and cost for the latest
/// month, or entries whose name matches a search.
pub(crate) async fn bnf(State(s): State<Shared>, p: Params) -> Result<Response, WebError> {
    let code = p.get("code").unwrap_or("").to_ascii_uppercase();
    let query = p.get("q").unwrap_or("");
    if code.len() > 15 || !code.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Err(WebError::BadParameter("code".into(), format!("\"{code}\" is not a BNF code")));
    }
    if query.chars().count() > 100 {
        return Err(WebError::BadParameter("q".into(), "is longer than 100 characters".into()));
    }
    let state = s.clone();
    let (code2, query2) = (code.clone(), query.to_string());
    let page_html = tokio::task::spawn_blocking(move || bnf_page(&state.release, &code2, &query2))
        .await
        .map_err(|e| WebError::Internal(format!("the BNF page failed: {e}")))??;
    Ok(page_html.into_response())
}

fn bnf_page(r: &Release, code: &str, query: &str) -> Result<Html<String>, WebError> {
    if !code.is_empty() && r.bnf_name(code).is_none() {
        return Err(WebError::NotFound(format!("There is no BNF entry with the code \"{code}\".")));
    }
    let mut crumbs: Vec<Crumb> = vec![("BNF".into(), "/bnf".into())];
    for len in ipmo_release::BNF_CODE_LENGTHS.iter().filter(|l| **l <= code.len()) {
        if let Some(prefix) = code.get(..*len)
            && let Some(name) = r.bnf_name(prefix)
        {
            crumbs.push((name.to_string(), format!("/bnf?code={prefix}")));
        }
    }
    let title = if code.is_empty() {
        "British National Formulary".to_string()
    } else {
        r.bnf_name(code).unwrap_or(code).to_string()
    };
    let latest = r.index.as_ref().and_then(|ix| ix.months.last().copied());
    let entries: Vec<(&str, &str)> = if query.is_empty() { r.bnf_children(code) } else { r.bnf_search(query, 100) };
    let mut rows = Vec::with_capacity(entries.len());
    for (c, n) in entries {
        let totals = match (&r.index, latest) {
            (Some(ix), Some(m)) => Some(
                ix.totals(&CodeSet { include: vec![c.to_string()], exclude: vec![] }, Some(m), Some(m))
                    .map_err(|e| WebError::Internal(e.to_string()))?,
            ),
            _ => None,
        };
        rows.push((c, n, totals));
    }
    Ok(page(
        r,
        &title,
        &crumbs,
        html! {
            span.caption { @if code.is_empty() { "Browse prescribing by BNF code" } @else { (bnf_level_name(code.len())) " " (code) } }
            h1 { (title) }
            form.search action="/bnf" method="get" role="search" {
                label.visually-hidden for="bnf-q" { "Search the BNF by name or code" }
                input #bnf-q type="search" name="q" value=(query) placeholder="e.g. amoxicillin, or 0501";
                button type="submit" { "Search the BNF" }
            }
            @if !code.is_empty() {
                p { a href=(format!("/analyse?num={code}&den=list-size&level=icb")) { "Analyse " (title) " per 1,000 patients by ICB" } }
            }
            @if code.len() == 15 && query.is_empty() {
                (presentation_use(r, code)?)
            } @else if rows.is_empty() {
                p { @if query.is_empty() { "Nothing is listed under this entry." } @else { "No BNF entry matches “" (query) "”." } }
            } @else {
                div.table-scroll role="region" aria-label="BNF entries" tabindex="0" { table.table {
                    caption { @if query.is_empty() { "Entries under " (title) } @else { "BNF entries matching “" (query) "”" }
                        @if let Some(m) = latest { ", national totals for " (long_month(m)) } }
                    thead { tr {
                        th scope="col" { "Code" } th scope="col" { "Name" }
                        th scope="col" .num { "Items" } th scope="col" .num { "Actual cost" } th scope="col" { span.visually-hidden { "Analyse" } }
                    } }
                    tbody {
                        @for (c, n, t) in &rows {
                            tr {
                                td { code { (c) } }
                                td { a href=(format!("/bnf?code={c}")) { (n) } }
                                td.num { (t.map(|t| number(t.items as f64, 0)).unwrap_or_else(|| "–".into())) }
                                td.num { (t.map(|t| pounds(t.actual_cost)).unwrap_or_else(|| "–".into())) }
                                td { a href=(format!("/analyse?num={c}&den=list-size&level=icb")) { "Analyse" span.visually-hidden { " " (n) } } }
                            }
                        }
                    }
                } }
            }
        },
    ))
}

/// Months of use a presentation's page lists.
const USE_MONTHS: usize = 24;

/// A presentation's national use by month: primary care's items and quantity (from the index)
/// beside hospitals' issues of its dm+d products (SCMD), newest month first.
fn presentation_use(r: &Release, code: &str) -> Result<Markup, WebError> {
    let primary: Vec<(YearMonth, i64, f64)> = match &r.index {
        Some(ix) => ix
            .monthly_totals(&CodeSet { include: vec![code.to_string()], exclude: vec![] })
            .map_err(|e| WebError::Internal(e.to_string()))?,
        None => Vec::new(),
    };
    let hospital = r.hospitals.presentation_use(code);
    let mut months: Vec<YearMonth> = primary
        .iter()
        .filter(|p| p.1 != 0)
        .map(|p| p.0)
        .chain(hospital.iter().flat_map(|(_, _, ms)| ms.iter().map(|m| m.month)))
        .collect();
    months.sort_unstable_by(|a, b| b.cmp(a));
    months.dedup();
    let held = months.len();
    months.truncate(USE_MONTHS);
    let issued = |month: YearMonth| -> Vec<String> {
        hospital
            .iter()
            .flat_map(|(_, _, ms)| ms.iter().filter(move |m| m.month == month))
            .map(|m| {
                format!(
                    "{} {} ({})",
                    number(m.quantity, if m.quantity.fract() == 0.0 { 0 } else { 1 }),
                    m.unit.as_deref().unwrap_or("units not given"),
                    plural(m.trusts as usize, "trust", "trusts")
                )
            })
            .collect()
    };
    Ok(html! {
        h2 #use { "Use by month: primary care and hospitals" }
        @if hospital.is_empty() {
            p { "No hospital issues of this presentation's dm+d product are held (hospital medicines data, SCMD, are loaded with "
                code { "ipmo ingest scmd" } ", and linked to BNF codes through the BNF ↔ SNOMED mapping)." }
        } @else {
            p { "Hospitals issue it as "
                @for (i, (vmp, name, _)) in hospital.iter().enumerate() {
                    @if i > 0 { ", " } (name) " " span.code { "(" (vmp) ")" }
                }
                ". Hospital quantities are in the unit SCMD counts the product in; primary care's are as the EPD publishes them. "
                code { "ipmo medicine show " (hospital[0].0) } " gives both in WHO defined daily doses." }
        }
        @if months.is_empty() {
            p { "Nothing is held for this presentation." }
        } @else {
            div.table-scroll role="region" aria-label="Use by month" tabindex="0" { table.table {
                caption { "England, newest month first" @if held > USE_MONTHS { " (the last " (USE_MONTHS) " of " (held) " months)" }
                    "; primary care counts the GP practices in the organisation map each month, as the BNF browser does" }
                thead { tr {
                    th scope="col" { "Month" }
                    th.num scope="col" { "Primary care items" }
                    th.num scope="col" { "Primary care quantity" }
                    th scope="col" { "Hospital issues" }
                } }
                tbody { @for m in &months {
                    @let p = primary.iter().find(|p| p.0 == *m);
                    @let h = issued(*m);
                    tr {
                        td.nowrap { (m) }
                        td.num { (p.map_or("–".to_string(), |p| number(p.1 as f64, 0))) }
                        td.num { (p.map_or("–".to_string(), |p| number(p.2, if p.2.fract() == 0.0 { 0 } else { 1 }))) }
                        td.nowrap { @if h.is_empty() { "–" } @else { (h.join("; ")) } }
                    }
                } }
            } }
        }
    })
}

/// What the analyse form asked for, as typed (so the form shows it again).
#[derive(Default)]
struct Form {
    num: String,
    exclude: String,
    den: String,
    value: String,
    level: String,
    from: String,
    to: String,
    within: String,
    highlight: String,
}

/// Most organisations an analysis can highlight.
const MAX_HIGHLIGHT: usize = 10;
/// Colours of highlighted organisations' lines.
const HIGHLIGHT_COLOURS: [&str; MAX_HIGHLIGHT] =
    ["#d5281b", "#007f3b", "#7c2855", "#ed8b00", "#330072", "#00a499", "#425563", "#ae2573", "#78be20", "#41b6e6"];

/// The organisations asked to be highlighted, each one known.
fn highlights<'a>(r: &'a Release, text: &str) -> Result<Vec<&'a Org>, WebError> {
    let codes: Vec<&str> = text.split([',', ' ']).map(str::trim).filter(|c| !c.is_empty()).collect();
    if codes.len() > MAX_HIGHLIGHT {
        return Err(WebError::BadParameter("highlight".into(), format!("at most {MAX_HIGHLIGHT} organisations")));
    }
    codes
        .into_iter()
        .map(|c| {
            r.org(c).ok_or_else(|| {
                WebError::BadParameter("highlight".into(), format!("there is no organisation with the code \"{c}\""))
            })
        })
        .collect()
}

/// The analyse page: the form, and when codes are given, the analysis as a fan chart of the
/// level's deciles with England's line and any highlighted organisations, the organisations
/// ranked for the last month (all, or those within one organisation), and England by month.
pub(crate) async fn analyse(State(s): State<Shared>, p: Params) -> Result<Response, WebError> {
    let f = Form {
        num: p.get("num").unwrap_or("").to_string(),
        exclude: p.get("exclude").unwrap_or("").to_string(),
        den: p.get("den").unwrap_or("list-size").to_string(),
        value: p.get("value").unwrap_or("items").to_string(),
        level: p.get("level").unwrap_or("icb").to_string(),
        from: p.get("from").unwrap_or("").to_string(),
        to: p.get("to").unwrap_or("").to_string(),
        within: p.get("within").unwrap_or("").to_string(),
        highlight: p.get("highlight").unwrap_or("").to_string(),
    };
    let csv = crate::params::wants_csv(&p)?;
    let r = &s.release;
    let AnalyseRequest { analysis: request, meaning } = AnalyseRequest::read(r, &p)?;
    let highlighted = highlights(r, &f.highlight)?;
    let within = match f.within.as_str() {
        "" => None,
        code => Some(r.org(code).ok_or_else(|| {
            WebError::BadParameter("within".into(), format!("there is no organisation with the code \"{code}\""))
        })?),
    };
    let result = match request {
        None => None,
        Some(a) => Some(run_with_england(&s, a).await?),
    };
    let level_code = if f.level.is_empty() { "icb" } else { f.level.as_str() };
    let keep: Option<FxHashSet<&str>> =
        within.map(|w| r.orgs_within(&w.code, level_code).into_iter().map(|o| o.code.as_str()).collect());
    if csv {
        let Some((rows, _)) = &result else {
            return Err(WebError::BadParameter("num".into(), "give BNF codes or drug names to analyse".into()));
        };
        return Ok(analysis_csv(r, rows, keep.as_ref()));
    }
    Ok(page(r, "Analyse prescribing", &[("Analyse".into(), "/analyse".into())], html! {
        h1 { "Analyse prescribing" }
        p.lede { "Any medicines, by BNF code or by name, as a percentage of others or per 1,000 registered patients, for every organisation of a level, month by month. Find codes in the " a href="/bnf" { "BNF browser" } "." }
        (form(&f, r))
        @if let Some((rows, england)) = &result {
            (results(r, &f, &meaning, rows, england, &highlighted, within, keep.as_ref()))
        }
    }).into_response())
}

/// The analysis and England's line, run off the request's thread (an index read can take a
/// while on a national index).
async fn run_with_england(s: &Shared, a: Analysis) -> Result<(Vec<AnalysisRow>, Vec<AnalysisRow>), WebError> {
    let state = s.clone();
    tokio::task::spawn_blocking(move || -> Result<(Vec<AnalysisRow>, Vec<AnalysisRow>), WebError> {
        let ix = state.release.index.as_ref().ok_or_else(no_index)?;
        let rows = ix.analyse(&a).map_err(index_error("num"))?;
        let england = ix.analyse(&Analysis { level: Level::England, ..a }).map_err(index_error("num"))?;
        Ok((rows, england))
    })
    .await
    .map_err(|e| WebError::Internal(format!("the analysis failed: {e}")))?
}

/// Every row of an analysis (within one organisation when `keep` says so) as CSV.
fn analysis_csv(r: &Release, rows: &[AnalysisRow], keep: Option<&FxHashSet<&str>>) -> Response {
    let rows = rows
        .iter()
        .filter(|row| keep.is_none_or(|k| k.contains(row.org_code.as_str())))
        .map(|row| {
            vec![
                row.month.to_string(),
                row.org_code.clone(),
                r.org(&row.org_code).map(|o| o.name.clone()).unwrap_or_default(),
                row.numerator.to_string(),
                row.denominator.to_string(),
                row.value.map(|v| v.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    crate::csv::csv("analysis.csv", &["month", "org_code", "name", "numerator", "denominator", "value"], rows)
}

fn form(f: &Form, r: &Release) -> Markup {
    let months: Vec<YearMonth> = r.index.as_ref().map(|ix| ix.months.clone()).unwrap_or_default();
    let option = |v: &str, label: &str, current: &str| html! { option value=(v) selected[v == current] { (label) } };
    html! {
        form.analyse action="/analyse" method="get" {
            div.field {
                label for="num" { "Numerator: medicines" }
                span.hint #num-hint { "BNF codes or drug names, separated by commas, e.g. amoxicillin, 0501021 (cephalosporins)" }
                input #num name="num" type="text" value=(f.num) aria-describedby="num-hint" spellcheck="false";
            }
            div.field {
                label for="exclude" { "Leave out (optional)" }
                input #exclude name="exclude" type="text" value=(f.exclude) spellcheck="false";
            }
            div.field {
                label for="den" { "Denominator" }
                span.hint #den-hint { "list-size for per 1,000 patients, or BNF codes or drug names for a percentage" }
                input #den name="den" type="text" value=(f.den) aria-describedby="den-hint" spellcheck="false";
            }
            div.field {
                label for="value" { "Count" }
                select #value name="value" {
                    (option("items", "Items", &f.value)) (option("quantity", "Quantity", &f.value))
                    (option("actual_cost", "Actual cost", &f.value)) (option("nic", "Net ingredient cost", &f.value))
                }
            }
            div.field {
                label for="level" { "Organisations" }
                select #level name="level" {
                    @for l in ["practice", "pcn", "sicbl", "icb", "region", "england"] { (option(l, level_plural(l), &f.level)) }
                }
            }
            div.field {
                label for="within" { "Only those within (optional)" }
                span.hint #within-hint { "The ODS code of an ICB, sub-ICB location, PCN or region, e.g. " (r.orgs().iter().find(|o| o.org_type == "icb").map_or("QAA", |o| o.code.as_str())) }
                input #within name="within" type="text" value=(f.within) aria-describedby="within-hint" spellcheck="false" autocomplete="off";
            }
            div.field {
                label for="highlight" { "Highlight (optional)" }
                span.hint #highlight-hint { "Up to " (MAX_HIGHLIGHT) " organisation codes, separated by commas: drawn on the chart and listed first" }
                input #highlight name="highlight" type="text" value=(f.highlight) aria-describedby="highlight-hint" spellcheck="false" autocomplete="off";
            }
            div.field {
                label for="from" { "From month (optional)" }
                span.hint #from-hint { @if let (Some(a), Some(b)) = (months.first(), months.last()) { "YYYY-MM, " (a) " to " (b) } @else { "YYYY-MM" } }
                input #from name="from" type="text" value=(f.from) aria-describedby="from-hint" inputmode="numeric";
            }
            div.field {
                label for="to" { "To month (optional)" }
                input #to name="to" type="text" value=(f.to) inputmode="numeric";
            }
            button.button type="submit" { "Analyse" }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn results(
    r: &Release,
    f: &Form,
    meaning: &[(&str, Vec<Term>)],
    rows: &[AnalysisRow],
    england: &[AnalysisRow],
    highlighted: &[&Org],
    within: Option<&Org>,
    keep: Option<&FxHashSet<&str>>,
) -> Markup {
    let percentage = f.den != "list-size" && f.den != "list_size";
    let unit = if percentage { "%" } else { "per 1,000 patients" };
    let level = if f.level.is_empty() { "icb" } else { f.level.as_str() };
    // Deciles of the level's values per month, for the fan; England as the line.
    let mut by_month: BTreeMap<YearMonth, Vec<Option<f64>>> = BTreeMap::new();
    for row in rows {
        by_month.entry(row.month).or_default().push(row.value);
    }
    let deciles: BTreeMap<YearMonth, [f64; 9]> = by_month
        .iter()
        .filter_map(|(m, v)| <[f64; 9]>::try_from(ipmo_stats::percentile::deciles(v)).ok().map(|d| (*m, d)))
        .collect();
    let line: Vec<(YearMonth, Option<f64>)> = england.iter().map(|e| (e.month, e.value)).collect();
    let others: Vec<charts::OtherLine> = highlighted
        .iter()
        .zip(HIGHLIGHT_COLOURS)
        .map(|(o, colour)| charts::OtherLine {
            name: format!("{} ({})", o.name, o.code),
            values: rows.iter().filter(|x| x.org_code == o.code).map(|x| (x.month, x.value)).collect(),
            colour,
        })
        .collect();
    let last = rows.iter().map(|x| x.month).max();
    let mut latest: Vec<&AnalysisRow> = rows
        .iter()
        .filter(|x| Some(x.month) == last)
        .filter(|x| {
            keep.is_none_or(|k| k.contains(x.org_code.as_str())) || highlighted.iter().any(|h| h.code == x.org_code)
        })
        .collect();
    let is_highlighted = |code: &str| highlighted.iter().any(|h| h.code == code);
    latest.sort_by(|a, b| {
        is_highlighted(&b.org_code)
            .cmp(&is_highlighted(&a.org_code))
            .then(b.value.unwrap_or(f64::NEG_INFINITY).total_cmp(&a.value.unwrap_or(f64::NEG_INFINITY)))
    });
    let total = latest.len();
    latest.truncate(TABLE_ROWS.max(highlighted.len()));
    let d = decimals_of(latest.iter().filter_map(|x| x.value));
    let money = matches!(f.value.as_str(), "actual_cost" | "nic");
    let q = |s: &str| crate::params::urlencode(s);
    let share = format!(
        "/analyse?num={}&exclude={}&den={}&value={}&level={}&from={}&to={}&within={}&highlight={}",
        q(&f.num),
        q(&f.exclude),
        q(&f.den),
        q(&f.value),
        q(&f.level),
        q(&f.from),
        q(&f.to),
        q(&f.within),
        q(&f.highlight)
    );
    let cli = format!(
        "ipmo analyse --numerator {} --denominator {} --value {} --org-type {level}",
        meaning
            .first()
            .map(|(_, t)| t.iter().flat_map(|x| x.entries.iter().map(|e| e.0.clone())).collect::<Vec<_>>().join(","))
            .unwrap_or_default(),
        if percentage {
            meaning
                .iter()
                .find(|m| m.0 == "Denominator")
                .map(|(_, t)| {
                    t.iter().flat_map(|x| x.entries.iter().map(|e| e.0.clone())).collect::<Vec<_>>().join(",")
                })
                .unwrap_or_default()
        } else {
            "list-size".into()
        },
        match f.value.as_str() {
            "actual_cost" => "cost",
            "" => "items",
            v => v,
        }
    );
    let legend: Vec<charts::Line> =
        std::iter::once(charts::Line { name: "England", colour: "#005eb8", dashed: false, values: vec![] })
            .chain(others.iter().map(|o| charts::Line {
                name: &o.name,
                colour: o.colour,
                dashed: false,
                values: vec![],
            }))
            .collect();
    html! {
        h2 #results { "Results" }
        h3 { "What was counted" }
        dl.summary {
            @for (side, terms) in meaning {
                div.summary-row { dt { (side) } dd { ul.plain { @for t in terms { li {
                    @if t.entries.len() == 1 && t.entries[0].0.eq_ignore_ascii_case(&t.typed) {
                        code { (t.entries[0].0) } " " (t.entries[0].1) " (" (bnf_level_name(t.entries[0].0.len()).to_lowercase()) ")"
                    } @else {
                        "“" (t.typed) "”: " @for (i, (c, n)) in t.entries.iter().enumerate() { @if i > 0 { "; " } code { (c) } " " (n) }
                    }
                } } } } }
            }
            div.summary-row { dt { "Organisations" } dd { (total) " " (ipmo_release::level_plural_lower(level)) @if let Some(w) = within { " within " (w.name) } } }
            div.summary-row { dt { "Months" } dd { (by_month.len()) } }
            div.summary-row { dt { "Unit" } dd { (unit) } }
            div.summary-row { dt { "England, latest month" } dd { (value(england.last().and_then(|e| e.value))) " " (unit) } }
        }
        (PreEscaped(charts::fan_chart(&charts::Fan {
            id: "analysis",
            title: &format!("{unit}: England and the spread of {}", ipmo_release::level_plural_lower(level)),
            deciles: &deciles,
            line: &line,
            line_label: "England",
            unit,
            target: None,
            others: &others,
        })))
        (PreEscaped(charts::line_legend(&legend)))
        p.hint { "Shaded bands: 10th to 90th percentile of " (ipmo_release::level_plural_lower(level)) " in England each month; dashed: their median." }
        p { a href=(format!("{share}&format=csv")) download { "Download every organisation and month (CSV)" } " · " a href=(share) { "Link to this analysis" } }
        @if let Some(m) = last {
            h3 { (level_plural(level)) @if let Some(w) = within { " within " (w.name) } ", " (long_month(m)) }
            @if total > latest.len() { p { "The " (latest.len()) " highest of " (total) " are shown; the CSV has them all." } }
            div.table-scroll role="region" aria-label="Analysis table" tabindex="0" {
            table.table {
                caption.visually-hidden { "Analysis by organisation, latest month" }
                thead { tr {
                    th scope="col" { "Organisation" } th scope="col" .num { "Numerator" } th scope="col" .num { "Denominator" } th scope="col" .num { "Value (" (unit) ")" }
                } }
                tbody {
                    @for row in &latest {
                        tr class=[is_highlighted(&row.org_code).then_some("changed")] {
                            td { @match r.org(&row.org_code) {
                                Some(o) => { a href=(format!("/org/{}", o.code)) { (o.name) } " " span.code { "(" (o.code) ")" } @if is_highlighted(&o.code) { " " strong { "(highlighted)" } } },
                                None => (row.org_code),
                            } }
                            td.num { (amount_of(Some(row.numerator), money)) }
                            td.num { (amount_of(Some(row.denominator), money && percentage)) }
                            td.num { (crate::format::fixed(row.value, d)) }
                        }
                    }
                }
            }
            }
        }
        h3 { "England by month" }
        @let de = decimals_of(england.iter().filter_map(|x| x.value));
        div.table-scroll role="region" aria-label="England by month" tabindex="0" {
        table.table {
            caption.visually-hidden { "England's totals by month" }
            thead { tr { th scope="col" { "Month" } th scope="col" .num { "Numerator" } th scope="col" .num { "Denominator" } th scope="col" .num { "Value (" (unit) ")" } } }
            tbody { @for e in england.iter().rev() { tr {
                td { (long_month(e.month)) } td.num { (amount_of(Some(e.numerator), money)) } td.num { (amount_of(Some(e.denominator), money && percentage)) } td.num { (crate::format::fixed(e.value, de)) }
            } } }
        }
        }
        p.hint { "Standard GP practices in the organisation map for each month; per 1,000 patients leaves out practices without a list size that month. "
            (level_name(level)) " membership as at each month. The same analysis on the command line: " code { (cli) } "; add " code { "--engine sql --show-sql" } " for the SQL that reproduces it." }
    }
}
