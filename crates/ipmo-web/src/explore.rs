//! The BNF browser (chapter → presentation, with national totals) and the analyse page (any BNF
//! codes over any others or over list size, for any level and period), both answered from the
//! prescribing index. Requests are bounded: at most `MAX_PREFIXES` prefixes a side, the months the
//! index holds, and the server's request timeout.

use crate::charts::{self, long_month};
use crate::format::{amount, number, pounds, value};
use crate::layout::{self, Crumb, summary};
use crate::{Params, Shared, WebError};
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use ipmo_domain::YearMonth;
use ipmo_index::{Analysis, AnalysisRow, CodeSet, Denominator, Level, ValueKind};
use ipmo_release::{Release, bnf_level_name, level_name, level_plural};
use maud::{Markup, PreEscaped, html};
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
pub async fn bnf(State(s): State<Shared>, p: Params) -> Result<Response, WebError> {
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
            @if rows.is_empty() {
                p { @if query.is_empty() { "Nothing is listed under this entry." } @else { "No BNF entry matches “" (query) "”." } }
            } @else {
                table.table {
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
                                td { @if c.len() < 15 { a href=(format!("/bnf?code={c}")) { (n) } } @else { (n) } }
                                td.num { (t.map(|t| number(t.items as f64, 0)).unwrap_or_else(|| "–".into())) }
                                td.num { (t.map(|t| pounds(t.actual_cost)).unwrap_or_else(|| "–".into())) }
                                td { a href=(format!("/analyse?num={c}&den=list-size&level=icb")) { "Analyse" span.visually-hidden { " " (n) } } }
                            }
                        }
                    }
                }
            }
        },
    ))
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
}

pub(crate) fn parse_value(v: &str) -> Result<ValueKind, WebError> {
    match v {
        "" | "items" => Ok(ValueKind::Items),
        "quantity" => Ok(ValueKind::Quantity),
        "actual_cost" => Ok(ValueKind::ActualCost),
        "nic" => Ok(ValueKind::Nic),
        other => Err(WebError::BadParameter(
            "value".into(),
            format!("\"{other}\" is not items, quantity, actual_cost or nic"),
        )),
    }
}

pub(crate) fn parse_level(v: &str) -> Result<Level, WebError> {
    Ok(match v {
        "practice" => Level::Practice,
        "pcn" => Level::Pcn,
        "sicbl" => Level::Sicbl,
        "" | "icb" => Level::Icb,
        "region" => Level::Region,
        "england" => Level::England,
        other => {
            return Err(WebError::BadParameter(
                "level".into(),
                format!("\"{other}\" is not one of practice, pcn, sicbl, icb, region, england"),
            ));
        }
    })
}

/// An index error about parameter `param` (its message may already name it).
pub(crate) fn bad(param: &str) -> impl Fn(ipmo_index::IndexError) -> WebError + '_ {
    move |e| {
        let text = e.to_string();
        let text = text.strip_prefix(&format!("{param}: ")).unwrap_or(&text).to_string();
        WebError::BadParameter(param.into(), text)
    }
}

/// The analyse page: the form, and when codes are given, the analysis as a fan chart of the
/// level's deciles with England's line, and the organisations ranked for the last month.
pub async fn analyse(State(s): State<Shared>, p: Params) -> Result<Response, WebError> {
    let f = Form {
        num: p.get("num").unwrap_or("").to_string(),
        exclude: p.get("exclude").unwrap_or("").to_string(),
        den: p.get("den").unwrap_or("list-size").to_string(),
        value: p.get("value").unwrap_or("items").to_string(),
        level: p.get("level").unwrap_or("icb").to_string(),
        from: p.get("from").unwrap_or("").to_string(),
        to: p.get("to").unwrap_or("").to_string(),
    };
    let csv = crate::pages::wants_csv(&p)?;
    let (from, to) = (p.month("from")?, p.month("to")?);
    let request = if f.num.is_empty() {
        None
    } else {
        let numerator = CodeSet::parse(&f.num, &f.exclude, "num").map_err(bad("num"))?;
        let denominator = match f.den.as_str() {
            "list-size" | "list_size" => Denominator::ListSize,
            codes => Denominator::Codes(CodeSet::parse(codes, "", "den").map_err(bad("den"))?),
        };
        Some(Analysis {
            numerator,
            denominator,
            value: parse_value(&f.value)?,
            level: parse_level(&f.level)?,
            org: None,
            from,
            to,
        })
    };
    let state = s.clone();
    let result = match request {
        None => None,
        Some(a) => Some(
            tokio::task::spawn_blocking(move || -> Result<(Vec<AnalysisRow>, Vec<AnalysisRow>), WebError> {
                let ix = state.release.index.as_ref().ok_or_else(no_index)?;
                let rows = ix.analyse(&a).map_err(bad("num"))?;
                let england = ix.analyse(&Analysis { level: Level::England, ..a }).map_err(bad("num"))?;
                Ok((rows, england))
            })
            .await
            .map_err(|e| WebError::Internal(format!("the analysis failed: {e}")))??,
        ),
    };
    let r = &s.release;
    if csv {
        let Some((rows, _)) = &result else {
            return Err(WebError::BadParameter("num".into(), "give BNF code prefixes to analyse".into()));
        };
        let rows = rows
            .iter()
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
        return Ok(crate::pages::csv(
            "analysis.csv",
            &["month", "org_code", "name", "numerator", "denominator", "value"],
            rows,
        ));
    }
    Ok(page(r, "Analyse prescribing", &[("Analyse".into(), "/analyse".into())], html! {
        h1 { "Analyse prescribing" }
        p.lede { "Any BNF codes, as a percentage of other codes or per 1,000 registered patients, for every organisation of a level, month by month. Find codes in the " a href="/bnf" { "BNF browser" } "." }
        (form(&f, r))
        @if let Some((rows, england)) = &result {
            (results(r, &f, rows, england))
        }
    }).into_response())
}

fn form(f: &Form, r: &Release) -> Markup {
    let months: Vec<YearMonth> = r.index.as_ref().map(|ix| ix.months.clone()).unwrap_or_default();
    let option = |v: &str, label: &str, current: &str| html! { option value=(v) selected[v == current] { (label) } };
    html! {
        form.analyse action="/analyse" method="get" {
            div.field {
                label for="num" { "Numerator: BNF code prefixes" }
                span.hint #num-hint { "Separate with commas, e.g. 0501013K0,0501021" }
                input #num name="num" type="text" value=(f.num) aria-describedby="num-hint" spellcheck="false";
            }
            div.field {
                label for="exclude" { "Leave out (optional)" }
                input #exclude name="exclude" type="text" value=(f.exclude) spellcheck="false";
            }
            div.field {
                label for="den" { "Denominator" }
                span.hint #den-hint { "list-size for per 1,000 patients, or BNF code prefixes for a percentage" }
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

fn results(r: &Release, f: &Form, rows: &[AnalysisRow], england: &[AnalysisRow]) -> Markup {
    let percentage = f.den != "list-size" && f.den != "list_size";
    let unit = if percentage { "%" } else { "per 1,000 patients" };
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
    let last = rows.iter().map(|x| x.month).max();
    let mut latest: Vec<&AnalysisRow> = rows.iter().filter(|x| Some(x.month) == last).collect();
    latest.sort_by(|a, b| b.value.unwrap_or(f64::NEG_INFINITY).total_cmp(&a.value.unwrap_or(f64::NEG_INFINITY)));
    let total = latest.len();
    latest.truncate(TABLE_ROWS);
    let level = f.level.as_str();
    let share = format!(
        "/analyse?num={}&exclude={}&den={}&value={}&level={}&from={}&to={}",
        f.num, f.exclude, f.den, f.value, f.level, f.from, f.to
    );
    html! {
        h2 #results { "Results" }
        (summary(&[
            ("Organisations", html! { (total) " " (ipmo_release::level_plural_lower(if level.is_empty() { "icb" } else { level })) }),
            ("Months", html! { (by_month.len()) }),
            ("Unit", html! { (unit) }),
            ("England, latest month", html! { (value(england.last().and_then(|e| e.value))) " " (unit) }),
        ]))
        (PreEscaped(charts::fan_chart(&charts::Fan {
            id: "analysis",
            title: &format!("{} {unit}: England and the spread of {}", f.num, ipmo_release::level_plural_lower(level)),
            deciles: &deciles,
            line: &line,
            line_label: "England",
            unit,
            target: None,
        })))
        p.hint { "Blue line: England. Shaded bands: 10th to 90th percentile of " (ipmo_release::level_plural_lower(level)) " each month; dashed: their median." }
        p { a href=(format!("{share}&format=csv")) download { "Download every organisation and month (CSV)" } " · " a href=(share) { "Link to this analysis" } }
        @if let Some(m) = last {
            h3 { (level_plural(level)) ", " (long_month(m)) }
            @if total > latest.len() { p { "The " (latest.len()) " highest of " (total) " are shown." } }
            table.table {
                caption.visually-hidden { "Analysis by organisation, latest month" }
                thead { tr {
                    th scope="col" { "Organisation" } th scope="col" .num { "Numerator" } th scope="col" .num { "Denominator" } th scope="col" .num { "Value (" (unit) ")" }
                } }
                tbody {
                    @for row in &latest {
                        tr {
                            td { @match r.org(&row.org_code) {
                                Some(o) => { a href=(format!("/org/{}", o.code)) { (o.name) } " " span.code { "(" (o.code) ")" } },
                                None => (row.org_code),
                            } }
                            td.num { (amount(Some(row.numerator))) }
                            td.num { (amount(Some(row.denominator))) }
                            td.num { (value(row.value)) }
                        }
                    }
                }
            }
        }
        p.hint { "Standard GP practices in the organisation map for each month; per 1,000 patients leaves out practices without a list size that month. "
            (level_name(level)) " membership as at each month. The same analysis is `ipmo analyse --numerator " (f.num) " --denominator " (f.den) " --org-type " (level) "`; `--engine sql --show-sql` prints the SQL that reproduces it." }
    }
}
