//! The HTML pages: home, search, organisation dashboard, measure, and measure for one
//! organisation. Each table on them can be downloaded as CSV with `?format=csv`.

use crate::charts::{self, long_month};
use crate::format::{amount, number, ordinal, pounds, value};
use crate::layout::{self, Crumb, summary, tag};
use crate::{Params, Shared, WebError};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use ipmo_domain::YearMonth;
use ipmo_measures::Measure;
use ipmo_measures::analysis::{self, Alert, Judgement, OrgCounts, Tone, ValuePoint};
use ipmo_release::{Org, Release, level_name, level_plural};
use ipmo_stats::Direction;
use ipmo_stats::funnel::FunnelBand;
use ipmo_stats::spc::{Assurance, PointClass, Variation};
use maud::{Markup, PreEscaped, html};

/// Most rows a ranked table shows on the page (the CSV has them all).
const TABLE_ROWS: usize = 100;
/// Presentations listed as driving a numerator.
const DRIVERS: usize = 15;
/// Months the small charts on a dashboard cover.
const SPARK_MONTHS: usize = 24;

fn footer(r: &Release) -> String {
    match r.latest_month() {
        Some(m) => format!("Data to {} · release {}", long_month(m), r.id),
        None => format!("No measure values computed yet · release {}", r.id),
    }
}

fn html_page(r: &Release, title: &str, crumbs: &[Crumb], main: Markup) -> Html<String> {
    Html(layout::page(title, crumbs, Some(&footer(r)), main).into_string())
}

/// A CSV download: header row, then rows; cells are quoted when they need to be.
pub(crate) fn csv(filename: &str, header_row: &[&str], rows: Vec<Vec<String>>) -> Response {
    let cell = |c: &str| {
        if c.contains([',', '"', '\n']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c.to_string() }
    };
    let mut out = header_row.iter().map(|h| cell(h)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        out,
    )
        .into_response()
}

pub(crate) fn wants_csv(p: &Params) -> Result<bool, WebError> {
    match p.get("format") {
        None | Some("html") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(WebError::BadParameter("format".into(), format!("\"{other}\" is not html or csv"))),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn org_link(o: &Org) -> Markup {
    html! { a href=(format!("/org/{}", o.code)) { (o.name) } " " span.code { "(" (o.code) ")" } }
}

fn crumbs_for(r: &Release, org: &Org) -> Vec<Crumb> {
    let mut c: Vec<Crumb> =
        r.ancestors(&org.code).into_iter().rev().map(|o| (o.name.clone(), format!("/org/{}", o.code))).collect();
    c.push((org.name.clone(), format!("/org/{}", org.code)));
    c
}

fn direction_text(d: Direction) -> &'static str {
    match d {
        Direction::LowerIsBetter => "Lower is better",
        Direction::HigherIsBetter => "Higher is better",
        Direction::Neither => "No value judgement",
    }
}

fn variation_text(v: Variation) -> (&'static str, &'static str) {
    match v {
        Variation::CommonCause => ("Common cause variation", "grey"),
        Variation::ImprovementHigh => ("Special cause improvement (high)", "blue"),
        Variation::ImprovementLow => ("Special cause improvement (low)", "blue"),
        Variation::ConcernHigh => ("Special cause concern (high)", "orange"),
        Variation::ConcernLow => ("Special cause concern (low)", "orange"),
        Variation::NeutralHigh => ("Special cause variation (high)", "purple"),
        Variation::NeutralLow => ("Special cause variation (low)", "purple"),
    }
}

fn assurance_text(a: Assurance) -> (&'static str, &'static str) {
    match a {
        Assurance::ConsistentlyPass => ("Consistently passing the target", "blue"),
        Assurance::ConsistentlyFail => ("Consistently failing the target", "orange"),
        Assurance::HitOrMiss => ("Hit or miss against the target", "grey"),
    }
}

fn class_text(c: PointClass) -> &'static str {
    match c {
        PointClass::Common => "Common cause",
        PointClass::Improvement => "Improvement",
        PointClass::Concern => "Concern",
        PointClass::Neutral => "Special cause",
    }
}

fn tone_tag(t: Tone) -> Markup {
    match t {
        Tone::Good => tag("Better", "blue"),
        Tone::Bad => tag("Worse", "orange"),
        Tone::Neutral => tag("Changed", "purple"),
    }
}

/// The home page: search, what data are loaded, the regions and ICBs, and the measures by area.
pub async fn home(State(s): State<Shared>) -> Html<String> {
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
                ("Prescribing loaded", html! { (r.loaded_at.clone().unwrap_or_else(|| "never".into())) }),
                ("Measures computed", html! { (r.computed_at.clone().unwrap_or_else(|| "never".into())) }),
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

fn tag_title(t: &str) -> String {
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

/// Search results for organisations and measures.
pub async fn search(State(s): State<Shared>, p: Params) -> Result<Html<String>, WebError> {
    let r = &s.release;
    let q = p.get("q").unwrap_or("");
    if q.chars().count() > 100 {
        return Err(WebError::BadParameter("q".into(), "is longer than 100 characters".into()));
    }
    let orgs = r.search_orgs(q, 50);
    let measures = r.search_measures(q);
    Ok(html_page(
        r,
        "Search",
        &[("Search".into(), "/search".into())],
        html! {
            h1 { "Search" }
            (layout::search_form(q))
            @if q.is_empty() {
                p { "Type a practice, PCN, ICB or region name or ODS code, or words from a measure's title." }
            } @else {
                p.lede role="status" { (orgs.len()) " organisations and " (measures.len()) " measures match “" (q) "”." }
                @if !orgs.is_empty() {
                    h2 { "Organisations" }
                    table.table {
                        caption.visually-hidden { "Organisations matching the search" }
                        thead { tr { th scope="col" { "Organisation" } th scope="col" { "Type" } } }
                        tbody {
                            @for o in &orgs {
                                tr { td { (org_link(o)) } td { (level_name(&o.org_type)) } }
                            }
                        }
                    }
                }
                @if !measures.is_empty() {
                    h2 { "Measures" }
                    ul {
                        @for m in &measures {
                            li { a href=(format!("/measure/{}", m.id)) { (m.title) } }
                        }
                    }
                }
            }
        },
    ))
}

/// One organisation's row for one measure on its dashboard.
struct MeasureRow<'a> {
    measure: &'a Measure,
    latest: &'a ValuePoint,
    series: &'a [ValuePoint],
    alerts: Vec<Alert>,
}

/// An organisation's dashboard: its measures (furthest from the median first), headline
/// savings, alerts, children and peers.
pub async fn organisation(State(s): State<Shared>, Path(code): Path<String>, p: Params) -> Result<Response, WebError> {
    let r = &s.release;
    let org = r.org(&code).ok_or_else(|| {
        WebError::NotFound(format!("There is no organisation with the code \"{code}\" in this data."))
    })?;
    let latest = r.latest_month();
    let mut rows: Vec<MeasureRow<'_>> = Vec::new();
    for m in r.library.computed() {
        let Some(series) = r.series(&m.id, org) else { continue };
        let Some(last) = series.last() else { continue };
        let alerts = latest.map(|l| analysis::alerts(series, &Judgement::of(m), l)).unwrap_or_default();
        rows.push(MeasureRow { measure: m, latest: last, series, alerts });
    }
    rows.sort_by(|a, b| {
        let d = |x: &MeasureRow<'_>| x.latest.percentile.map_or(-1.0, |p| (p - 50.0).abs());
        d(b).total_cmp(&d(a)).then(a.measure.id.cmp(&b.measure.id))
    });
    if wants_csv(&p)? {
        let out = rows
            .iter()
            .map(|row| {
                vec![
                    row.measure.id.clone(),
                    row.measure.title.clone(),
                    row.latest.month.to_string(),
                    opt(row.latest.numerator),
                    opt(row.latest.denominator),
                    opt(row.latest.value),
                    opt(row.latest.percentile),
                    opt(row.latest.saving_50),
                ]
            })
            .collect();
        return Ok(csv(
            &format!("{}-measures.csv", org.code),
            &["measure_id", "title", "month", "numerator", "denominator", "value", "percentile", "saving_50"],
            out,
        ));
    }
    let savings: f64 = rows
        .iter()
        .filter(|row| Some(row.latest.month) == latest)
        .filter_map(|row| row.latest.saving_50)
        .filter(|v| *v > 0.0)
        .sum();
    let mut alerts: Vec<(&Measure, &Alert)> =
        rows.iter().flat_map(|row| row.alerts.iter().map(move |a| (row.measure, a))).collect();
    alerts.sort_by(|a, b| (a.1.tone != Tone::Bad).cmp(&(b.1.tone != Tone::Bad)).then(b.1.size.total_cmp(&a.1.size)));
    let children = r.children(&org.code);
    let peers = r.peers(&org.code);
    let title = format!("{} ({})", org.name, org.code);
    Ok(html_page(r, &title, &crumbs_for(r, org), html! {
        span.caption { (level_name(&org.org_type)) }
        h1 { (org.name) " " span.code { (org.code) } }
        (summary(&[
            ("Latest month", html! { @match latest { Some(m) => (long_month(m)), None => "–" } }),
            ("Measures with data", html! { (rows.len()) }),
            ("Possible savings this month", html! { (pounds(savings)) " " span.hint { "if every cost measure were at the national median for its level" } }),
        ]))
        h2 #alerts { "Alerts" }
        @if alerts.is_empty() {
            p { "No alerts: no measure has been in the top or bottom decile for three months, shown special-cause variation this month, changed sharply, or carries savings of £1,000 or more." }
        } @else {
            ul.alerts {
                @for (m, a) in alerts.iter().take(20) {
                    li { (tone_tag(a.tone)) " " a href=(format!("/measure/{}/org/{}", m.id, org.code)) { (m.title) } ": " (a.message) }
                }
            }
            @if alerts.len() > 20 { p { (alerts.len() - 20) " more alerts are not shown." } }
        }
        h2 #measures { "Measures" }
        p { "Sorted by how far " (org.name) " sits from the national median of its level in the latest month. The small charts show the last " (SPARK_MONTHS) " months (blue) against the national median (dashed)." }
        p { a href=(format!("/org/{}?format=csv", org.code)) download { "Download this table (CSV)" } }
        table.table.measures {
            caption.visually-hidden { "Measures for " (org.name) }
            thead { tr {
                th scope="col" { "Measure" }
                th scope="col" .num { "Value" }
                th scope="col" .num { "Percentile" }
                th scope="col" { "Trend" }
            } }
            tbody {
                @for row in &rows {
                    @let median = r.level_values(&row.measure.id, &org.org_type).map(|lv| lv.deciles.iter().rev().take(SPARK_MONTHS).rev().filter(|(_, d)| d[4].is_finite()).map(|(m, d)| (*m, d[4])).collect::<Vec<_>>()).unwrap_or_default();
                    @let own = row.series.iter().rev().take(SPARK_MONTHS).rev().filter_map(|p| p.value.map(|v| (p.month, v))).collect::<Vec<_>>();
                    tr {
                        td { a href=(format!("/measure/{}/org/{}", row.measure.id, org.code)) { (row.measure.title) } }
                        td.num { (value(row.latest.value)) " " span.unit { (row.measure.unit()) } }
                        td.num { (ordinal(row.latest.percentile)) }
                        td { (PreEscaped(charts::sparkline(&format!("{} over the last {} months", row.measure.title, own.len()), &own, &median))) }
                    }
                }
            }
        }
        @if !children.is_empty() {
            h2 #children { (level_plural(&children[0].org_type)) " in " (org.name) }
            ul.columns { @for c in &children { li { (org_link(c)) } } }
        }
        @if !peers.is_empty() {
            h2 #peers { "Peers" }
            p { "Other " (level_plural(&org.org_type).to_lowercase()) " in the same " (r.ancestors(&org.code).first().map(|a| level_name(&a.org_type).to_lowercase()).unwrap_or_default()) "." }
            ul.columns { @for c in &peers { li { (org_link(c)) } } }
        }
    }).into_response())
}

fn measure_of<'a>(r: &'a Release, id: &str) -> Result<&'a Measure, WebError> {
    r.library
        .computed()
        .find(|m| m.id == id)
        .ok_or_else(|| WebError::NotFound(format!("There is no measure \"{id}\". The home page lists every measure.")))
}

fn definition(m: &Measure) -> Markup {
    let side = |s: &ipmo_measures::Side| -> Markup {
        html! {
            (s.quantity.name().replace('_', " "))
            @if !s.codes.is_empty() {
                " of BNF codes " code { (s.codes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")) }
            }
            @if !s.exclude.is_empty() {
                ", leaving out " code { (s.exclude.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")) }
            }
            @if !s.name_contains.is_empty() { ", named with " (s.name_contains.join(" or ")) }
            @if !s.name_excludes.is_empty() { ", not named with " (s.name_excludes.join(" or ")) }
        }
    };
    summary(&[
        ("Numerator", side(&m.numerator)),
        ("Denominator", side(&m.denominator)),
        ("Unit", html! { (m.unit()) }),
        ("Direction", html! { (direction_text(m.direction)) }),
        (
            "Target",
            html! { @match &m.target { Some(t) => { (value(Some(t.value))) " (" (t.source) ")" }, None => "None set" } },
        ),
        ("Source of the definition", html! { (m.source) }),
        ("Version", html! { (m.version) ", reviewed " (m.reviewed) }),
    ])
}

/// Every organisation's numerator and denominator among `points` (for the funnel plot).
fn counts_of<'a>(points: &[(&'a str, &ValuePoint)]) -> Vec<OrgCounts<&'a str>> {
    points
        .iter()
        .filter_map(|(code, pt)| {
            Some(OrgCounts { org_code: *code, numerator: pt.numerator?, denominator: pt.denominator? })
        })
        .collect()
}

pub(crate) fn level_param<'a>(p: &'a Params, default: &'a str) -> Result<&'a str, WebError> {
    known_level("level", p.get("level").unwrap_or(default))
}

/// `level` when it is one of the stored organisation levels; otherwise a 400 naming `parameter`.
pub(crate) fn known_level<'a>(parameter: &str, level: &'a str) -> Result<&'a str, WebError> {
    if ipmo_release::LEVELS.contains(&level) {
        Ok(level)
    } else {
        Err(WebError::BadParameter(
            parameter.into(),
            format!("\"{level}\" is not one of {}", ipmo_release::LEVELS.join(", ")),
        ))
    }
}

/// A measure: its definition, every organisation of a level ranked for a month, and the national
/// deciles over time.
pub async fn measure(State(s): State<Shared>, Path(id): Path<String>, p: Params) -> Result<Response, WebError> {
    let r = &s.release;
    let m = measure_of(r, &id)?;
    let level = level_param(&p, "icb")?;
    let lv = r.level_values(&m.id, level);
    let month = match p.month("month")? {
        Some(month) => month,
        None => lv
            .and_then(|l| l.deciles.keys().next_back().copied())
            .or(r.latest_month())
            .ok_or_else(|| WebError::NotFound(format!("No values of \"{id}\" have been computed yet.")))?,
    };
    // Highest value first, ties by code. The page shows the first TABLE_ROWS, so only those are
    // fully sorted (a partial selection keeps a national practice list cheap); the CSV has all.
    let points: Vec<(&str, &ValuePoint)> = lv.map(|l| l.at(month).collect()).unwrap_or_default();
    let total = points.len();
    let mut ranked = points.clone();
    let order = |a: &(&str, &ValuePoint), b: &(&str, &ValuePoint)| {
        b.1.value.unwrap_or(f64::NEG_INFINITY).total_cmp(&a.1.value.unwrap_or(f64::NEG_INFINITY)).then(a.0.cmp(b.0))
    };
    let csv_wanted = wants_csv(&p)?;
    if !csv_wanted && ranked.len() > TABLE_ROWS {
        ranked.select_nth_unstable_by(TABLE_ROWS, order);
        ranked.truncate(TABLE_ROWS);
    }
    ranked.sort_unstable_by(order);
    let ranked: Vec<(&Org, &ValuePoint)> =
        ranked.into_iter().filter_map(|(code, pt)| r.org(code).map(|o| (o, pt))).collect();
    if csv_wanted {
        let rows = ranked
            .iter()
            .map(|(o, pt)| {
                vec![
                    o.code.clone(),
                    o.name.clone(),
                    month.to_string(),
                    opt(pt.numerator),
                    opt(pt.denominator),
                    opt(pt.value),
                    opt(pt.percentile),
                    opt(pt.saving_50),
                ]
            })
            .collect();
        return Ok(csv(
            &format!("{}-{level}-{month}.csv", m.id),
            &["org_code", "name", "month", "numerator", "denominator", "value", "percentile", "saving_50"],
            rows,
        ));
    }
    let empty = std::collections::BTreeMap::new();
    let deciles = lv.map_or(&empty, |l| &l.deciles);
    let fan = charts::fan_chart(
        "fan",
        &format!("{}: national deciles for {} by month", m.title, level_plural(level).to_lowercase()),
        deciles,
        &[],
        level_plural(level),
    );
    let shown = ranked.len();
    let funnel = analysis::funnel_plot(&counts_of(&points), &Judgement::of(m));
    let outside = funnel.as_ref().map_or(0, |p| {
        p.funnel.points.iter().filter(|x| matches!(x.band, FunnelBand::AboveControl | FunnelBand::BelowControl)).count()
    });
    let lens = r.lens(&m.id, month);
    let csv_link = format!("/measure/{}?level={level}&month={month}&format=csv", m.id);
    Ok(html_page(r, &m.title, &[(m.title.clone(), format!("/measure/{}", m.id))], html! {
        span.caption { "Measure" }
        h1 { (m.title) }
        p.lede { (m.description) }
        @if !m.why_it_matters.is_empty() { h2 { "Why it matters" } p { (m.why_it_matters) } }
        h2 { "Definition" }
        (definition(m))
        nav.tabs aria-label="Organisation level" {
            ul {
                @for l in ipmo_release::LEVELS.iter().filter(|l| **l != "england") {
                    li { a href=(format!("/measure/{}?level={l}&month={month}", m.id)) aria-current=[(*l == level).then_some("page")] { (level_plural(l)) } }
                }
            }
        }
        h2 { "National deciles for " (level_plural(level).to_lowercase()) }
        (PreEscaped(fan))
        p.hint { "Shaded bands run from the 10th to the 90th percentile of " (level_plural(level).to_lowercase()) " each month; the dashed line is the median." }
        details {
            summary { "Deciles as a table" }
            table.table {
                caption.visually-hidden { "National deciles by month" }
                thead { tr { th scope="col" { "Month" } @for d in [10, 20, 30, 40, 50, 60, 70, 80, 90] { th scope="col" .num { (d) "th" } } } }
                tbody { @for (mo, d) in deciles.iter().rev() { tr { td { (long_month(*mo)) } @for v in d { td.num { (value(Some(*v))) } } } } }
            }
        }
        h2 { "Funnel plot, " (long_month(month)) }
        @match &funnel {
            Ok(plot) => {
                (PreEscaped(charts::funnel_chart("funnel", &format!("{}: funnel plot of {}, {}", m.title, level_plural(level).to_lowercase(), long_month(month)), plot, &|code| r.org(code).map_or(code.to_string(), |o| o.name.clone()))))
                p.hint { "Each point is one organisation; dashed curves are 95% limits, solid curves 99.8%, around the pooled value (" (value(Some(plot.funnel.target * plot.multiplier))) " " (m.unit()) "), adjusted for over-dispersion (φ " (format!("{:.2}", plot.funnel.phi)) "). "
                    (outside) " of " (plot.funnel.points.len()) " organisations lie outside the 99.8% limits." }
            }
            Err(why) => p { "No funnel plot: " (why.to_string()) "." }
        }
        h2 { "Deprivation" }
        @match lens {
            Some(l) => {
                p { "Practices grouped by the national IMD quintile of their population (1 = most deprived fifth), " (long_month(month)) ": the value pooled over each quintile's practices." }
                table.table {
                    caption.visually-hidden { "Value by deprivation quintile" }
                    thead { tr { th scope="col" { "IMD quintile" } th scope="col" .num { "Practices" } th scope="col" .num { "Value (" (m.unit()) ")" } } }
                    tbody {
                        @for q in &l.quintiles {
                            tr { td { (q.quintile) @if q.quintile == 1 { " (most deprived)" } @if q.quintile == 5 { " (least deprived)" } }
                                 td.num { (q.practices) } td.num { (value(q.value)) } }
                        }
                    }
                }
                p { "Gap between the most and least deprived fifths: " strong { (value(l.gap)) " " (m.unit()) } "."
                    @if l.practices_without_imd > 0 { " " (l.practices_without_imd) " practices without an IMD score are left out." } }
            }
            None => p { "No deprivation scores are loaded (`ipmo ingest imd`), or no practice values for this month." }
        }
        h2 { (level_plural(level)) ", " (long_month(month)) }
        p { (total) " organisations, highest value first"
            @if shown < total { "; the first " (shown) " are shown" } ". "
            a href=(csv_link) download { "Download all (CSV)" } }
        table.table {
            caption.visually-hidden { (m.title) " by organisation, " (long_month(month)) }
            thead { tr {
                th scope="col" .num { "Rank" }
                th scope="col" { "Organisation" }
                th scope="col" .num { "Numerator" }
                th scope="col" .num { "Denominator" }
                th scope="col" .num { "Value (" (m.unit()) ")" }
                th scope="col" .num { "Percentile" }
            } }
            tbody {
                @for (i, (o, pt)) in ranked.iter().enumerate() {
                    tr {
                        td.num { (i + 1) }
                        td { a href=(format!("/measure/{}/org/{}", m.id, o.code)) { (o.name) } " " span.code { "(" (o.code) ")" } }
                        td.num { (amount(pt.numerator)) }
                        td.num { (amount(pt.denominator)) }
                        td.num { (value(pt.value)) }
                        td.num { (ordinal(pt.percentile)) }
                    }
                }
            }
        }
    }).into_response())
}

/// One measure for one organisation: its line against the national deciles, its SPC chart with
/// the Making Data Count icons, the data, and its children's latest values.
pub async fn measure_for_org(
    State(s): State<Shared>,
    Path((id, code)): Path<(String, String)>,
    p: Params,
) -> Result<Response, WebError> {
    let r = &s.release;
    let m = measure_of(r, &id)?;
    let org = r.org(&code).ok_or_else(|| {
        WebError::NotFound(format!("There is no organisation with the code \"{code}\" in this data."))
    })?;
    let series = r.series(&m.id, org).unwrap_or(&[]);
    let lv = r.level_values(&m.id, &org.org_type);
    let judgement = Judgement::of(m);
    let spc = analysis::spc(series, &judgement);
    if wants_csv(&p)? {
        let rows = series
            .iter()
            .map(|pt| {
                let d = lv.and_then(|l| l.deciles.get(&pt.month));
                vec![
                    pt.month.to_string(),
                    opt(pt.numerator),
                    opt(pt.denominator),
                    opt(pt.value),
                    opt(pt.percentile),
                    d.map(|d| d[0].to_string()).unwrap_or_default(),
                    d.map(|d| d[4].to_string()).unwrap_or_default(),
                    d.map(|d| d[8].to_string()).unwrap_or_default(),
                    spc.as_ref()
                        .and_then(|s| s.class_at(pt.month))
                        .map(|c| class_text(c).to_string())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        return Ok(csv(
            &format!("{}-{}.csv", m.id, org.code),
            &["month", "numerator", "denominator", "value", "percentile", "p10", "p50", "p90", "spc"],
            rows,
        ));
    }
    let line: Vec<(YearMonth, Option<f64>)> = series.iter().map(|p| (p.month, p.value)).collect();
    let empty = std::collections::BTreeMap::new();
    let deciles = lv.map_or(&empty, |l| &l.deciles);
    let fan = charts::fan_chart(
        "fan",
        &format!("{}: {} against national deciles", m.title, org.name),
        deciles,
        &line,
        &org.name,
    );
    let children = r.children(&org.code);
    let child_rows: Vec<(&Org, &ValuePoint)> =
        children.iter().filter_map(|c| r.series(&m.id, c).and_then(|s| s.last()).map(|pt| (*c, pt))).collect();
    let mut crumbs = crumbs_for(r, org);
    crumbs.push((m.title.clone(), format!("/measure/{}/org/{}", m.id, org.code)));
    let drivers = match (&r.index, series.last()) {
        (Some(ix), Some(pt)) => {
            let set = ipmo_index::CodeSet { include: r.numerator_codes(&m.id).to_vec(), exclude: Vec::new() };
            let level = crate::explore::parse_level(&org.org_type).ok();
            match level {
                Some(level) if !set.include.is_empty() => Some(
                    ix.breakdown(&set, &level, &org.code, pt.month, DRIVERS)
                        .map_err(|e| WebError::Internal(e.to_string()))?,
                ),
                _ => Some(Vec::new()),
            }
        }
        _ => None,
    };
    let latest = series.last();
    Ok(html_page(r, &format!("{} – {}", m.title, org.name), &crumbs, html! {
        span.caption { (org.name) " (" (org.code) ")" }
        h1 { (m.title) }
        p.lede { (m.description) " " a href=(format!("/measure/{}?level={}", m.id, org.org_type)) { "All " (level_plural(&org.org_type).to_lowercase()) } }
        @if let Some(pt) = latest {
            (summary(&[
                ("Latest value", html! { (value(pt.value)) " " (m.unit()) " in " (long_month(pt.month)) }),
                ("Percentile", html! { (ordinal(pt.percentile)) " among " (level_plural(&org.org_type).to_lowercase()) }),
                ("Numerator / denominator", html! { (amount(pt.numerator)) " / " (amount(pt.denominator)) }),
                ("Variation", html! { @match &spc { Some(s) => { @let (t, c) = variation_text(s.chart.variation); (tag(t, c)) }, None => "Too few months for an SPC chart" } }),
                ("Assurance", html! { @match spc.as_ref().and_then(|s| s.chart.assurance) { Some(a) => { @let (t, c) = assurance_text(a); (tag(t, c)) }, None => { @if m.target.is_some() { "Not assessed" } @else { "No target set" } } } }),
            ]))
        } @else {
            p { "There are no values of this measure for " (org.name) "." }
        }
        h2 { "Against the national deciles" }
        (PreEscaped(fan))
        p.hint { "Blue line: " (org.name) ". Shaded bands: 10th to 90th percentile of " (level_plural(&org.org_type).to_lowercase()) "; dashed: median." }
        h2 { "Statistical process control" }
        @match &spc {
            Some(sc) => {
                (PreEscaped(charts::spc_chart("spc", &format!("{}: SPC chart for {}", m.title, org.name), sc, m.target.as_ref().map(|t| t.value))))
                p.hint { "Mean and process limits (mean ± 2.66 × mean moving range). Orange: special cause concern; blue: improvement; purple: special cause where neither direction is better; grey: common cause."
                    @if m.target.is_some() { " Red line: target." } }
            }
            None => p { "An SPC chart needs at least 15 months of values." }
        }
        @if let Some(month) = latest.map(|p| p.month) {
            h2 { "What drives the numerator, " (long_month(month)) }
            @match &drivers {
                Some(list) if !list.is_empty() => {
                    p { "The presentations counted in the numerator that " (org.name) " prescribed most that month (up to " (DRIVERS) "), from the prescribing index." }
                    table.table {
                        caption.visually-hidden { "Presentations behind the numerator" }
                        thead { tr { th scope="col" { "Presentation" } th scope="col" .num { "Items" } th scope="col" .num { "Actual cost" } } }
                        tbody {
                            @for (code, items, cost) in list {
                                tr {
                                    td { (r.bnf_name(code).unwrap_or(code)) " " span.code { "(" (code) ")" } }
                                    td.num { (number(*items as f64, 0)) }
                                    td.num { (pounds(*cost)) }
                                }
                            }
                        }
                    }
                }
                Some(_) => p { "No prescribing of the numerator's presentations that month." }
                None => p { "The prescribing index is not open on this server, so the presentations cannot be listed." }
            }
        }
        h2 { "Data" }
        p { a href=(format!("/measure/{}/org/{}?format=csv", m.id, org.code)) download { "Download (CSV)" } }
        table.table {
            caption.visually-hidden { (m.title) " for " (org.name) " by month" }
            thead { tr {
                th scope="col" { "Month" } th scope="col" .num { "Numerator" } th scope="col" .num { "Denominator" }
                th scope="col" .num { "Value" } th scope="col" .num { "Percentile" } th scope="col" .num { "National median" } th scope="col" { "SPC" }
            } }
            tbody {
                @for pt in series.iter().rev() {
                    tr {
                        td { (long_month(pt.month)) }
                        td.num { (amount(pt.numerator)) }
                        td.num { (amount(pt.denominator)) }
                        td.num { (value(pt.value)) }
                        td.num { (ordinal(pt.percentile)) }
                        td.num { (value(deciles.get(&pt.month).map(|d| d[4]))) }
                        td { (spc.as_ref().and_then(|s| s.class_at(pt.month)).map(class_text).unwrap_or("–")) }
                    }
                }
            }
        }
        @if !child_rows.is_empty() {
            h2 { (level_plural(&child_rows[0].0.org_type)) " in " (org.name) }
            table.table {
                caption.visually-hidden { "Latest value for each member" }
                thead { tr { th scope="col" { "Organisation" } th scope="col" .num { "Value" } th scope="col" .num { "Percentile" } } }
                tbody {
                    @for (c, pt) in &child_rows {
                        tr {
                            td { a href=(format!("/measure/{}/org/{}", m.id, c.code)) { (c.name) } " " span.code { "(" (c.code) ")" } }
                            td.num { (value(pt.value)) }
                            td.num { (ordinal(pt.percentile)) }
                        }
                    }
                }
            }
        }
        h2 { "Definition" }
        (definition(m))
    }).into_response())
}
