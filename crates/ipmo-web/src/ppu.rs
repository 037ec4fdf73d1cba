//! Price-per-unit savings pages: an organisation's opportunities ranked by saving
//! (`/ppu/{code}`), and one set for that organisation (`/ppu/{code}/set/{set}`) with every
//! practice's price per unit against the target and the presentations behind the gap. Both read
//! the release's [`Ppu`] (the newest computed month); `?mode=reference` shows OpenPrescribing's
//! discounting, `?min=` changes the smallest saving listed, `?format=csv` downloads the table, and
//! `/api/v1/ppu/…` answers the same as JSON.

use crate::charts;
use crate::csv::{csv, csv_number};
use crate::format::{long_month, number, plural, pounds};
use crate::layout::summary;
use crate::pages::{crumbs_for, html_page};
use crate::params::{Params, org_of, wants_csv};
use crate::{Shared, WebError};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ipmo_domain::YearMonth;
use ipmo_release::ppu::{Ppu, PpuRow, PpuSet};
use ipmo_release::{Org, Release, level_name_lower};
use ipmo_value::ppu::{Mode, Thresholds};
use maud::{Markup, PreEscaped, html};
use serde_json::{Value, json};

/// The most organisations drawn on a set's chart; a larger organisation draws its ICBs instead
/// of its practices.
const MAX_CHART_POINTS: usize = 1_000;
/// Opportunities listed on the page (the CSV and API have all).
const PAGE_ROWS: usize = 200;
/// Practices listed on a set's page (the CSV has all).
const SET_PAGE_PRACTICES: usize = 100;
/// The largest threshold a request may ask for, in pounds.
const MAX_MIN_POUNDS: f64 = 1e9;

/// What a PPU request asks for: whose savings, under which discounting, above which saving.
pub(crate) struct PpuRequest<'a> {
    pub ppu: &'a Ppu,
    pub org: &'a Org,
    pub mode: Mode,
    /// The month the detail is for (the newest computed).
    pub month: YearMonth,
    /// Smallest saving listed, in pence.
    pub min_pence: f64,
    /// Whether `min_pence` is the level's default.
    pub default_min: bool,
}

impl<'a> PpuRequest<'a> {
    /// Reads `mode` and `min` (pounds) for the organisation `code`; 404 before `ipmo value
    /// compute` has run or for an unknown organisation, 400 naming a bad parameter.
    pub(crate) fn read(r: &'a Release, code: &str, p: &Params) -> Result<Self, WebError> {
        let (ppu, month) = r.ppu.as_ref().and_then(|p| Some((p, p.month?))).ok_or_else(|| {
            WebError::NotFound("Price-per-unit savings have not been computed yet: run `ipmo value compute`.".into())
        })?;
        let org = org_of(r, code)?;
        let mode = match p.get("mode") {
            None => Mode::DateCorrect,
            Some(m) => Mode::parse(m).ok_or_else(|| {
                WebError::BadParameter("mode".into(), format!("\"{m}\" is neither date-correct nor reference"))
            })?,
        };
        let (min_pence, default_min) = match p.get("min") {
            None => (Thresholds::default().for_level(&org.org_type), true),
            Some(m) => {
                let pounds = m.parse::<f64>().ok().filter(|v| v.is_finite() && (0.0..=MAX_MIN_POUNDS).contains(v));
                let pounds = pounds.ok_or_else(|| {
                    WebError::BadParameter(
                        "min".into(),
                        format!("\"{m}\" is not a number of pounds from 0 to 1,000,000,000"),
                    )
                })?;
                (pounds * 100.0, false)
            }
        };
        Ok(Self { ppu, org, mode, month, min_pence, default_min })
    }

    /// The query string that keeps this request's choices, for links.
    fn query(&self) -> String {
        let mut q = Vec::new();
        if self.mode == Mode::Reference {
            q.push("mode=reference".to_string());
        }
        if !self.default_min {
            q.push(format!("min={}", self.min_pence / 100.0));
        }
        if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) }
    }

    fn opportunities(&self) -> Vec<&'a PpuRow> {
        self.ppu.opportunities(&self.org.org_type, &self.org.code, self.mode, self.min_pence)
    }

    fn set_of(&self, row: &PpuRow) -> &'a PpuSet {
        &self.ppu.sets()[row.set as usize]
    }
}

/// Pence per unit, with enough decimals to tell small prices apart.
fn ppu_text(pence: Option<f64>) -> String {
    match pence {
        Some(v) if v.is_finite() => format!("{}p", number(v, if v < 10.0 { 3 } else { 2 })),
        _ => "–".into(),
    }
}

fn mode_words(mode: Mode) -> &'static str {
    match mode {
        Mode::DateCorrect => "the pharmacy discount in force in the month",
        Mode::Reference => {
            "OpenPrescribing's discounting (the April 2024 scale for every month, concessions undiscounted)"
        }
    }
}

/// `/ppu/{code}`: the organisation's opportunities, largest first.
pub(crate) async fn organisation(
    State(s): State<Shared>,
    Path(code): Path<String>,
    p: Params,
) -> Result<Response, WebError> {
    let r = &s.release;
    let q = PpuRequest::read(r, &code, &p)?;
    let rows = q.opportunities();
    if wants_csv(&p)? {
        return Ok(opportunities_csv(&q, &rows));
    }
    let month = q.month;
    let total: f64 = rows.iter().map(|row| row.saving[q.mode.index()]).sum();
    let mut crumbs = crumbs_for(r, q.org);
    crumbs.push(("Price-per-unit savings".into(), format!("/ppu/{}", q.org.code)));
    let base = format!("/ppu/{}", q.org.code);
    let main = html! {
        span.caption { (q.org.name) " (" (q.org.code) ")" }
        h1 { "Price-per-unit savings" }
        p.lede { "Where presentations a prescriber could swap at the same dose cost different amounts per unit, this is what "
            (q.org.name) " would have saved in " (long_month(month))
            @if q.org.org_type == "practice" { " had it paid" } @else { " had each of its practices paid" }
            " no more per unit than the cheapest tenth of practices in England (the 10th percentile of their price per unit)." }
        (summary(&[
            ("Month", html! { (long_month(month)) }),
            ("Possible saving", html! { strong { (pounds(total / 100.0)) } " on " (plural(rows.len(), "set", "sets")) " saving at least " (pounds(q.min_pence / 100.0)) " each" }),
            ("Discounting", html! { (mode_words(q.mode)) " · "
                @if q.mode == Mode::DateCorrect { a href=(format!("{base}?mode=reference")) { "use OpenPrescribing's" } }
                @else { a href=(base) { "use the discount in force" } } }),
        ]))
        (trend_section(&q))
        h2 #opportunities { "Opportunities in " (long_month(month)) }
        @if rows.is_empty() {
            p { "No set saves " (pounds(q.min_pence / 100.0)) " or more here this month." }
        } @else {
            p { a href=(format!("{base}{}{}format=csv", q.query(), if q.query().is_empty() { "?" } else { "&" })) download { "Download every opportunity (CSV)" }
                " · " a href=(format!("/api/v1/ppu/{}{}", q.org.code, q.query())) { "the same as JSON" } }
            (opportunities_table(&q, &rows))
            @if rows.len() > PAGE_ROWS { p { "The " (PAGE_ROWS) " largest of " (rows.len()) " are listed; the CSV has them all." } }
        }
        h2 #method { "How this is worked out" }
        p.hint { "Sets of generically equivalent presentations come from the dm+d release loaded (OpenPrescribing's 2025 rules; "
            code { "ipmo value sets" } " lists them). A practice's price per unit is its net ingredient cost, less " (mode_words(q.mode))
            ", over the units it prescribed. Its saving is what it paid above the target price for those units; an organisation's saving is the sum of its practices' savings. "
            "A set is listed when the saving reaches the threshold (" (pounds(q.min_pence / 100.0)) " here; "
            code { "?min=" } " changes it). NIC is what the Drug Tariff or list price says, not what was paid after fees, so small quantities can overstate a saving. "
            "Reproduce any figure with " code { "ipmo value ppu --level " (q.org.org_type) " --org " (q.org.code) " --sql" } "." }
    };
    Ok(html_page(r, &format!("Price-per-unit savings – {}", q.org.name), &crumbs, main).into_response())
}

/// The monthly headline as a line chart, when there is more than one month.
fn trend_section(q: &PpuRequest<'_>) -> Markup {
    let totals = q.ppu.totals(&q.org.org_type, &q.org.code);
    if totals.len() < 2 {
        return html! {};
    }
    let m = q.mode.index();
    let labels: Vec<String> = totals.iter().map(|t| charts::short_month(t.month)).collect();
    let line = charts::Line {
        name: "Possible saving",
        colour: "#005eb8",
        dashed: false,
        values: totals.iter().map(|t| Some(t.saving[m] / 100.0)).collect(),
    };
    let chart = charts::line_chart(
        "ppu-trend",
        &format!("Price-per-unit savings in {} by month", q.org.name),
        &labels,
        std::slice::from_ref(&line),
        "£",
    );
    html! {
        h2 #trend { "By month" }
        p.hint { "Sets saving at least the " (level_name_lower(&q.org.org_type)) " default of "
            (pounds(Thresholds::default().for_level(&q.org.org_type) / 100.0)) " each month, under " (mode_words(q.mode)) "." }
        figure.chart-figure { (PreEscaped(chart)) }
    }
}

fn opportunities_table(q: &PpuRequest<'_>, rows: &[&PpuRow]) -> Markup {
    let m = q.mode.index();
    let set_query = q.query();
    html! {
        div.table-scroll role="region" aria-label="Opportunities table" tabindex="0" {
            table.table {
                caption.visually-hidden { "Price-per-unit opportunities in " (q.org.name) ", largest saving first" }
                thead { tr {
                    th scope="col" .num { "Rank" }
                    th scope="col" { "Set" }
                    th scope="col" .num { "Saving" }
                    th scope="col" .num { "Price per unit" }
                    th scope="col" .num { "Target" }
                    th scope="col" .num { "Units" }
                    th scope="col" { "Formulation swap" }
                } }
                tbody {
                    @for (i, row) in rows.iter().take(PAGE_ROWS).enumerate() {
                        @let set = q.set_of(row);
                        tr {
                            td.num { (i + 1) }
                            td { a href=(format!("/ppu/{}/set/{}{set_query}", q.org.code, set.id)) { (set.name) } " " span.code { "(" (set.id) ")" } }
                            td.num { (pounds(row.saving[m] / 100.0)) }
                            td.num { (ppu_text(row.ppu(q.mode))) }
                            td.num { (ppu_text(set.target[m])) }
                            td.num { (number(row.quantity, 0)) }
                            td { (set.formulation_swap.as_deref().unwrap_or("–")) }
                        }
                    }
                }
            }
        }
    }
}

/// The last five cells of both PPU downloads (`AMOUNT_COLUMNS`): a row's amounts and its set's
/// target under `mode`.
fn amount_cells(row: &PpuRow, set: &PpuSet, mode: Mode) -> [String; 5] {
    let m = mode.index();
    [
        csv_number(Some(row.quantity)),
        csv_number(Some(row.nic[m])),
        csv_number(row.ppu(mode)),
        csv_number(set.target[m]),
        csv_number(Some(row.saving[m])),
    ]
}

/// The headers of [`amount_cells`].
const AMOUNT_COLUMNS: [&str; 5] = ["quantity", "nic_pence", "ppu_pence", "target_ppu_pence", "saving_pence"];

fn opportunities_csv(q: &PpuRequest<'_>, rows: &[&PpuRow]) -> Response {
    let month = q.month;
    let out = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let set = q.set_of(row);
            vec![
                (i + 1).to_string(),
                q.org.code.clone(),
                month.to_string(),
                q.mode.as_str().to_string(),
                set.id.clone(),
                set.name.clone(),
                set.formulation_swap.clone().unwrap_or_default(),
            ]
            .into_iter()
            .chain(amount_cells(row, set, q.mode))
            .collect()
        })
        .collect();
    let header: Vec<&str> = ["rank", "org_code", "month", "mode", "set_id", "set_name", "formulation_swap"]
        .into_iter()
        .chain(AMOUNT_COLUMNS)
        .collect();
    csv(&format!("{}-ppu-{month}.csv", q.org.code), &header, out)
}

/// The organisations drawn on a set's chart: the practices within `org`, or its ICBs when it
/// has more practices than [`MAX_CHART_POINTS`].
fn chart_orgs<'a>(r: &'a Release, org: &'a Org) -> Vec<&'a Org> {
    if org.org_type == "practice" {
        return org.parent.as_deref().map(|p| r.practices_in(p)).unwrap_or_else(|| vec![org]);
    }
    let practices = r.practices_in(&org.code);
    if practices.len() <= MAX_CHART_POINTS { practices } else { r.orgs_within(&org.code, "icb") }
}

/// `/ppu/{code}/set/{set}`: one set for one organisation.
pub(crate) async fn set(
    State(s): State<Shared>,
    Path((code, set_id)): Path<(String, String)>,
    p: Params,
) -> Result<Response, WebError> {
    let r = &s.release;
    let q = PpuRequest::read(r, &code, &p)?;
    let (position, set) = q.ppu.set(&set_id).ok_or_else(|| {
        WebError::NotFound(format!("no substitution set \"{set_id}\" this month; /ppu/{} lists them", q.org.code))
    })?;
    let practices = member_rows(r, &q, position);
    if wants_csv(&p)? {
        return Ok(set_csv(&q, set, &practices));
    }
    let m = q.mode.index();
    let own = q.ppu.row(&q.org.org_type, &q.org.code, position);
    let mut crumbs = crumbs_for(r, q.org);
    crumbs.push(("Price-per-unit savings".into(), format!("/ppu/{}{}", q.org.code, q.query())));
    crumbs.push((set.name.clone(), format!("/ppu/{}/set/{}", q.org.code, set.id)));
    let main = html! {
        span.caption { (q.org.name) " (" (q.org.code) ") · " (long_month(q.month)) }
        h1 { (set.name) }
        p.lede {
            @if let Some(swap) = &set.formulation_swap { "A swap between forms: " (swap) ". " }
            @match own {
                Some(row) => { (q.org.name) " paid " strong { (ppu_text(row.ppu(q.mode))) } " per unit for " (number(row.quantity, 0)) " units against a target of "
                    strong { (ppu_text(set.target[m])) } "; " @if q.org.org_type == "practice" { "it" } @else { "its practices" } " could have saved " strong { (pounds(row.saving[m] / 100.0)) } "." }
                None => { (q.org.name) " prescribed nothing of this set in " (long_month(q.month)) ", or saved nothing on it." }
            }
        }
        (strip_section(r, &q, set, position))
        h2 #presentations { "The presentations in the set" }
        p.hint { "England, " (long_month(q.month)) ", most units first. The Drug Tariff category of a presentation's packs sets the discount (– : not in Part VIIIA, as brands are); a conceded pack is paid at the concession price." }
        (presentations_table(set, q.mode))
        (practices_section(&q, set, &practices))
    };
    Ok(html_page(r, &format!("{} – price per unit in {}", set.name, q.org.name), &crumbs, main).into_response())
}

/// Each practice's (or, for a large organisation, each ICB's) price per unit as a dot against
/// the target; a practice is drawn among the practices of its PCN, highlighted.
fn strip_section(r: &Release, q: &PpuRequest<'_>, set: &PpuSet, position: u32) -> Markup {
    let drawn = chart_orgs(r, q.org);
    let chart_parent = (q.org.org_type == "practice").then(|| q.org.parent.as_deref().and_then(|p| r.org(p))).flatten();
    let own_label = format!("{} ({})", q.org.name, q.org.code);
    let points: Vec<(String, f64)> = drawn
        .iter()
        .filter_map(|o| {
            let row = q.ppu.row(&o.org_type, &o.code, position)?;
            Some((format!("{} ({})", o.name, o.code), row.ppu(q.mode)?))
        })
        .filter(|(_, v)| v.is_finite())
        .collect();
    let level_drawn = drawn.first().map_or("practice", |o| o.org_type.as_str());
    let chart = charts::strip_chart(
        "ppu-strip",
        &format!("Price per unit of {} by {}, {}", set.name, level_name_lower(level_drawn), long_month(q.month)),
        &points,
        set.target[q.mode.index()],
        chart_parent.map(|_| own_label.as_str()),
        "Pence per unit",
    );
    html! {
        h2 #chart { "Each " (level_name_lower(level_drawn)) "'s price per unit" }
        p.hint { "Each dot is one " (level_name_lower(level_drawn)) " "
            @if let Some(parent) = chart_parent { "of " (parent.name) " " }
            "that prescribed the set (" (points.len()) ")"
            @if chart_parent.is_some() { ", " (q.org.name) " in orange" }
            "; the red line is the target, the 10th percentile of practices' price per unit in England, under " (mode_words(q.mode)) "." }
        figure.chart-figure { (PreEscaped(chart)) }
    }
}

/// The practices that paid above the target, largest saving first, and the download of all.
fn practices_section(q: &PpuRequest<'_>, set: &PpuSet, practices: &[(&Org, &PpuRow)]) -> Markup {
    let m = q.mode.index();
    let with_saving: Vec<&(&Org, &PpuRow)> = practices.iter().filter(|(_, row)| row.saving[m] > 0.0).collect();
    let join = if q.query().is_empty() { "?" } else { "&" };
    html! {
        h2 #practices { "Practices with a saving" }
        p { (plural(with_saving.len(), "practice", "practices")) " of " (practices.len()) " prescribing it paid above the target. "
            a href=(format!("/ppu/{}/set/{}{}{join}format=csv", q.org.code, set.id, q.query())) download { "Download every practice (CSV)" } }
        @if !with_saving.is_empty() {
            div.table-scroll role="region" aria-label="Practices table" tabindex="0" {
                table.table {
                    caption.visually-hidden { "Practices paying above the target for " (set.name) }
                    thead { tr { th scope="col" { "Practice" } th scope="col" .num { "Units" } th scope="col" .num { "Price per unit" } th scope="col" .num { "Saving" } } }
                    tbody {
                        @for (o, row) in with_saving.iter().take(SET_PAGE_PRACTICES).map(|x| (x.0, x.1)) {
                            tr {
                                td { a href=(format!("/ppu/{}/set/{}{}", o.code, set.id, q.query())) { (o.name) } " " span.code { "(" (o.code) ")" } }
                                td.num { (number(row.quantity, 0)) }
                                td.num { (ppu_text(row.ppu(q.mode))) }
                                td.num { (pounds(row.saving[m] / 100.0)) }
                            }
                        }
                    }
                }
            }
            @if with_saving.len() > SET_PAGE_PRACTICES { p { "The " (SET_PAGE_PRACTICES) " largest savings are listed; the CSV has every practice." } }
        }
    }
}

/// A set's presentations, most units in England first, then by code.
fn by_units(set: &PpuSet) -> Vec<&ipmo_release::ppu::PpuCode> {
    let mut codes: Vec<_> = set.codes.iter().collect();
    codes.sort_by(|a, b| b.quantity.total_cmp(&a.quantity).then_with(|| a.code.cmp(&b.code)));
    codes
}

fn presentations_table(set: &PpuSet, mode: Mode) -> Markup {
    let m = mode.index();
    html! {
        div.table-scroll role="region" aria-label="Presentations table" tabindex="0" {
            table.table {
                caption.visually-hidden { "Presentations of " (set.name) " in England" }
                thead { tr {
                    th scope="col" { "Presentation" }
                    th scope="col" { "Tariff category" }
                    th scope="col" .num { "Share of NIC paid" }
                    th scope="col" .num { "Units in England" }
                    th scope="col" .num { "Price per unit" }
                } }
                tbody {
                    @for c in by_units(set) {
                        tr {
                            td { (if c.name.is_empty() { c.code.as_str() } else { c.name.as_str() }) " " span.code { "(" (c.code) ")" } }
                            td { (c.category.as_deref().unwrap_or("–")) @if c.conceded { " · conceded" } }
                            td.num { (number(c.factor[m] * 100.0, 1)) "%" }
                            td.num { (number(c.quantity, 0)) }
                            td.num { (ppu_text((c.quantity > 0.0).then(|| c.nic[m] / c.quantity))) }
                        }
                    }
                }
            }
        }
    }
}

/// The practices within the organisation that prescribed the set, largest saving first (under
/// the request's mode), then by name.
fn member_rows<'a>(r: &'a Release, q: &PpuRequest<'a>, set: u32) -> Vec<(&'a Org, &'a PpuRow)> {
    let practices = if q.org.org_type == "practice" { vec![q.org] } else { r.practices_in(&q.org.code) };
    let m = q.mode.index();
    let mut out: Vec<(&Org, &PpuRow)> =
        practices.into_iter().filter_map(|o| q.ppu.row("practice", &o.code, set).map(|row| (o, row))).collect();
    out.sort_by(|a, b| b.1.saving[m].total_cmp(&a.1.saving[m]).then_with(|| a.0.name.cmp(&b.0.name)));
    out
}

fn set_csv(q: &PpuRequest<'_>, set: &PpuSet, practices: &[(&Org, &PpuRow)]) -> Response {
    let month = q.month;
    let out = practices
        .iter()
        .map(|(o, row)| {
            vec![o.code.clone(), o.name.clone(), month.to_string(), q.mode.as_str().to_string(), set.id.clone()]
                .into_iter()
                .chain(amount_cells(row, set, q.mode))
                .collect()
        })
        .collect();
    let header: Vec<&str> =
        ["practice_code", "name", "month", "mode", "set_id"].into_iter().chain(AMOUNT_COLUMNS).collect();
    csv(&format!("{}-ppu-{}-{month}.csv", q.org.code, set.id), &header, out)
}

/// `/api/v1/ppu/{code}` as JSON: the request, the total and every opportunity.
pub(crate) fn organisation_json(r: &Release, code: &str, p: &Params) -> Result<Value, WebError> {
    let q = PpuRequest::read(r, code, p)?;
    let m = q.mode.index();
    let rows = q.opportunities();
    let list: Vec<Value> = rows
        .iter()
        .map(|row| {
            let set = q.set_of(row);
            json!({
                "set_id": set.id,
                "name": set.name,
                "formulation_swap": set.formulation_swap,
                "quantity": row.quantity,
                "nic_pence": row.nic[m],
                "ppu_pence": row.ppu(q.mode),
                "target_ppu_pence": set.target[m],
                "saving_pence": row.saving[m],
            })
        })
        .collect();
    Ok(json!({
        "org": { "code": q.org.code, "name": q.org.name, "org_type": q.org.org_type },
        "month": q.month.to_string(),
        "mode": q.mode.as_str(),
        "min_saving_pence": q.min_pence,
        "total_saving_pence": rows.iter().map(|row| row.saving[m]).sum::<f64>(),
        "opportunities": list,
        "by_month": q.ppu.totals(&q.org.org_type, &q.org.code).iter().map(|t| json!({
            "month": t.month.to_string(), "sets": t.sets[m], "saving_pence": t.saving[m],
        })).collect::<Vec<_>>(),
    }))
}

/// `/api/v1/ppu/{code}/sets/{set}` as JSON: the set, its presentations and the organisation's
/// practices.
pub(crate) fn set_json(r: &Release, code: &str, set_id: &str, p: &Params) -> Result<Value, WebError> {
    let q = PpuRequest::read(r, code, p)?;
    let m = q.mode.index();
    let (position, set) =
        q.ppu.set(set_id).ok_or_else(|| WebError::NotFound(format!("no substitution set \"{set_id}\" this month")))?;
    let own = q.ppu.row(&q.org.org_type, &q.org.code, position);
    Ok(json!({
        "org": { "code": q.org.code, "name": q.org.name, "org_type": q.org.org_type },
        "month": q.month.to_string(),
        "mode": q.mode.as_str(),
        "set": { "id": set.id, "name": set.name, "formulation_swap": set.formulation_swap, "target_ppu_pence": set.target[m] },
        "quantity": own.map(|o| o.quantity),
        "ppu_pence": own.and_then(|o| o.ppu(q.mode)),
        "saving_pence": own.map(|o| o.saving[m]),
        "presentations": set.codes.iter().map(|c| json!({
            "bnf_code": c.code, "name": c.name, "tariff_category": c.category, "conceded": c.conceded,
            "discount_factor": c.factor[m], "quantity": c.quantity, "nic_pence": c.nic[m],
        })).collect::<Vec<_>>(),
        "practices": member_rows(r, &q, position).iter().map(|(o, row)| json!({
            "code": o.code, "name": o.name, "quantity": row.quantity, "nic_pence": row.nic[m],
            "ppu_pence": row.ppu(q.mode), "saving_pence": row.saving[m],
        })).collect::<Vec<_>>(),
    }))
}

/// The dashboard's line for an organisation: its headline this month and a link, or nothing
/// before PPU savings are computed.
pub(crate) fn dashboard_line(r: &Release, org: &Org) -> Option<Markup> {
    let ppu = r.ppu.as_ref()?;
    let month = ppu.month?;
    let total = ppu.totals(&org.org_type, &org.code).iter().find(|t| t.month == month);
    let (sets, saving) = total.map_or((0, 0.0), |t| (t.sets[0], t.saving[0]));
    Some(html! {
        (pounds(saving / 100.0)) " could be saved on " (plural(sets as usize, "set", "sets")) " in " (long_month(month)) " · "
        a href=(format!("/ppu/{}", org.code)) { "price-per-unit opportunities" }
    })
}
