//! An organisation's dashboard: where it stands on every measure (worst first, by the measure's
//! direction), what it could save, its alerts grouped and counted, and its place in the system.
//! The rules that order and judge the rows are `ipmo_measures::ranking` and
//! `ipmo_measures::savings`, shared with the command line and the board report.

use crate::charts;
use crate::csv::{csv, csv_number, point_csv, point_header};
use crate::format::{month_span, number, ordinal, plural, pounds, value};
use crate::layout::{summary, tag};
use crate::pages::{crumbs_for, html_page, org_link};
use crate::params::Params;
use crate::params::{org_of, wants_csv};
use crate::{Shared, WebError};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ipmo_domain::YearMonth;
use ipmo_measures::Measure;
use ipmo_measures::analysis::{self, Alert, AlertKind, Judgement, Tone, ValuePoint};
use ipmo_measures::ranking::{self, NoSignal, Standing};
use ipmo_measures::savings::{self, Headline, PeriodSaving};
use ipmo_release::{Org, Release, level_name, level_plural};
use maud::{Markup, PreEscaped, html};

/// Months the small charts on a dashboard cover.
const SPARK_MONTHS: usize = 24;
/// Alerts of each group shown on the dashboard (all are on the alerts page).
const ALERTS_SHOWN: usize = 5;

/// Themes a dashboard can be filtered by: a tag and what people call it.
pub(crate) const THEMES: [(&str, &str); 10] = [
    ("antimicrobial", "Antimicrobial stewardship"),
    ("safety", "Safety"),
    ("value", "Value"),
    ("lowpriority", "Low-priority prescribing"),
    ("greener", "Greener NHS"),
    ("opioids", "Opioids"),
    ("cardiovascular", "Cardiovascular"),
    ("respiratory", "Respiratory"),
    ("diabetes", "Diabetes"),
    ("mentalhealth", "Mental health"),
];

/// One measure's row on a dashboard.
pub(crate) struct Row<'a> {
    pub measure: &'a Measure,
    pub series: &'a [ValuePoint],
    /// The point of the release's latest month, if the organisation has one.
    pub latest: Option<&'a ValuePoint>,
    /// Mean percentile of the last six months, turned so higher is worse (None: no judgement).
    pub worse: Option<f64>,
    pub saving: Option<PeriodSaving>,
    pub no_signal: Option<NoSignal>,
    pub alerts: Vec<Alert>,
}

/// Every measure's row for `org`, as at the release's latest month.
pub(crate) fn rows<'a>(r: &'a Release, org: &Org, latest: YearMonth) -> Vec<Row<'a>> {
    let mut out = Vec::new();
    for m in r.library.computed() {
        let Some(series) = r.series(&m.id, org).filter(|s| !s.is_empty()) else { continue };
        let judgement = Judgement::of(m);
        let deciles = r.level_values(&m.id, &org.org_type).and_then(|lv| lv.deciles.get(&latest));
        out.push(Row {
            measure: m,
            series,
            latest: series.iter().rev().find(|p| p.month == latest),
            worse: ranking::mean_percentile(series, latest, ranking::RANK_MONTHS)
                .and_then(|p| ranking::worse_percentile(p, m.direction)),
            saving: savings::period_saving(series, latest, savings::SAVINGS_MONTHS),
            no_signal: ranking::no_signal(series, deciles, latest, m.direction),
            alerts: analysis::alerts(series, &judgement, latest),
        });
    }
    out
}

/// How the table is ordered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    Worst,
    Savings,
    Title,
}

fn sort_param(p: &Params) -> Result<Sort, WebError> {
    match p.get("sort") {
        None | Some("worst") => Ok(Sort::Worst),
        Some("savings") => Ok(Sort::Savings),
        Some("title") => Ok(Sort::Title),
        Some(other) => {
            Err(WebError::BadParameter("sort".into(), format!("\"{other}\" is not worst, savings or title")))
        }
    }
}

fn theme_param(p: &Params) -> Result<Option<&str>, WebError> {
    match p.get("theme") {
        None => Ok(None),
        Some(t) if THEMES.iter().any(|(k, _)| *k == t) => Ok(Some(t)),
        Some(other) => Err(WebError::BadParameter(
            "theme".into(),
            format!("\"{other}\" is not one of {}", THEMES.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")),
        )),
    }
}

fn order(rows: &mut [Row<'_>], sort: Sort) {
    let title = |a: &Row<'_>, b: &Row<'_>| a.measure.title.cmp(&b.measure.title);
    let saved = |x: &Row<'_>| x.saving.as_ref().map_or(f64::NEG_INFINITY, |s| s.at_median);
    match sort {
        Sort::Title => rows.sort_by(title),
        Sort::Savings => rows.sort_by(|a, b| saved(b).total_cmp(&saved(a)).then(title(a, b))),
        Sort::Worst => rows.sort_by(|a, b| {
            let key = |x: &Row<'_>| x.worse.unwrap_or(-1.0);
            key(b).total_cmp(&key(a)).then(saved(b).total_cmp(&saved(a))).then(title(a, b))
        }),
    }
}

/// The tag saying what a percentile means for this measure.
pub(crate) fn standing_tag(percentile: Option<f64>, m: &Measure) -> Markup {
    let Some(p) = percentile else { return html! {} };
    let s = ranking::standing(p, m.direction);
    let colour = match s {
        Standing::WorstTenth | Standing::WorseThanMedian => "orange",
        Standing::BetterThanMedian | Standing::BestTenth => "blue",
        Standing::NoJudgement | Standing::AtMedian => "grey",
    };
    tag(s.label(), colour)
}

/// Which group an alert is counted in on a dashboard, with its heading and anchor.
fn alert_group(a: &Alert) -> (&'static str, &'static str) {
    match (a.kind, a.tone) {
        (AlertKind::SavingsPossible | AlertKind::SavingsAchieved, _) => ("savings", "Savings"),
        (_, Tone::Bad) => ("worse", "Worse"),
        (_, Tone::Good) => ("better", "Better"),
        (_, Tone::Neutral) => ("changed", "Changed (no judgement)"),
    }
}

const GROUPS: [&str; 4] = ["worse", "savings", "better", "changed"];

fn alert_tag(a: &Alert) -> Markup {
    match (alert_group(a).0, a.tone) {
        ("savings", Tone::Good) => tag("Saved", "blue"),
        ("savings", _) => tag("Savings", "orange"),
        ("worse", _) => tag("Worse", "orange"),
        ("better", _) => tag("Better", "blue"),
        _ => tag("Changed", "purple"),
    }
}

/// One group of alerts: its anchor, its heading and its alerts.
type AlertGroup<'a> = (&'static str, &'static str, Vec<(&'a Measure, &'a Alert)>);

/// Alerts by group, each group's largest first.
fn grouped<'a>(rows: &'a [Row<'a>]) -> Vec<AlertGroup<'a>> {
    let mut out: Vec<AlertGroup<'a>> = Vec::new();
    for g in GROUPS {
        let mut list: Vec<(&Measure, &Alert)> = rows
            .iter()
            .flat_map(|row| row.alerts.iter().map(move |a| (row.measure, a)))
            .filter(|(_, a)| alert_group(a).0 == g)
            .collect();
        list.sort_by(|a, b| b.1.size.total_cmp(&a.1.size).then(a.0.title.cmp(&b.0.title)));
        let heading = list.first().map_or("", |(_, a)| alert_group(a).1);
        out.push((g, heading, list));
    }
    out
}

fn alert_item(m: &Measure, a: &Alert, org: &Org) -> Markup {
    html! { li { (alert_tag(a)) " " a href=(format!("/measure/{}/org/{}", m.id, org.code)) { (m.title) } ": " (a.message) } }
}

/// The savings headline with how it is worked out.
fn headline_block(r: &Release, org: &Org, h: &Headline) -> Markup {
    let period = month_span(h.from, h.to);
    let title = |id: &str| r.library.get(id).map_or(id.to_string(), |m| m.title.clone());
    html! {
        (pounds(h.at_median)) " at the median, " (pounds(h.at_p10)) " at the 10th percentile"
        span.hint { " over " (period) ", if each cost measure on which " (org.name) " spends more than the "
            @if org.org_type == "england" { "median practice were at it (England's figure sums its practices')" } @else { "middle " (ipmo_release::level_name_lower(&org.org_type)) " (or the best tenth) were brought to it" } "." }
        details {
            summary { "How this figure is worked out" }
            p { "Each cost measure's savings are summed over the six months; the measures with a positive total are added (at the median: "
                (plural(h.counted.iter().filter(|(_, s)| s.at_median > 0.0).count(), "measure", "measures")) ")."
                @if !h.composites.is_empty() { " Left out, because the measures they total are counted: " (h.composites.iter().map(|c| title(c)).collect::<Vec<_>>().join(", ")) "." } }
            div.table-scroll role="region" aria-label="Savings by measure" tabindex="0" {
                table.table {
                    caption.visually-hidden { "Savings by measure, " (period) }
                    thead { tr { th scope="col" { "Measure" } th scope="col" .num { "At the median" } th scope="col" .num { "At the 10th percentile" } th scope="col" .num { "Months" } } }
                    tbody { @for (id, s) in &h.counted {
                        tr { td { a href=(format!("/measure/{id}/org/{}", org.code)) { (title(id)) } }
                             td.num { (pounds(s.at_median)) } td.num { (pounds(s.at_p10)) } td.num { (s.months) } }
                    } }
                }
            }
            p { "The same figure from the stored values, with " code { "ipmo sql" } ":" }
            pre.sql { code { (savings::headline_sql(h, &org.org_type, &org.code)) } }
        }
    }
}

/// The facts of a practice: where it is, its population, its deprivation.
fn practice_facts(r: &Release, org: &Org) -> Markup {
    let facts = r.practice_facts(&org.code);
    let ancestors = r.ancestors(&org.code);
    let of = |t: &str| ancestors.iter().find(|a| a.org_type == t);
    let link = |o: Option<&&Org>| html! { @match o { Some(o) => (org_link(o)), None => "–" } };
    summary(&[
        ("Practice code", html! { (org.code) }),
        (
            "Postcode",
            html! { (facts.and_then(|f| f.postcode.clone()).unwrap_or_else(|| "Not in the organisation files loaded".into())) },
        ),
        ("Primary care network", link(of("pcn"))),
        ("Sub-ICB location", link(of("sicbl"))),
        ("Integrated care board", link(of("icb"))),
        (
            "Registered patients",
            html! { @match facts.and_then(|f| f.list_size) {
                Some((m, n)) => { (number(n, 0)) " in " (crate::format::long_month(m)) }
                None => "No list size loaded"
            } },
        ),
        (
            "Deprivation",
            html! { @match facts.and_then(|f| f.imd_decile.zip(f.imd_score)) {
                Some((d, score)) => { "Decile " (d) " of 10 nationally (1 = most deprived tenth of practices); IMD score " (number(score, 1)) }
                None => "No IMD score loaded"
            } },
        ),
    ])
}

/// An organisation's dashboard.
pub(crate) async fn organisation(
    State(s): State<Shared>,
    Path(code): Path<String>,
    p: Params,
) -> Result<Response, WebError> {
    let r = &s.release;
    let org = org_of(r, &code)?;
    let sort = sort_param(&p)?;
    let theme = theme_param(&p)?;
    let Some(latest) = r.latest_month() else {
        return Ok(html_page(
            r,
            &org.name,
            &crumbs_for(r, org),
            html! { h1 { (org.name) } p { "No measure values have been computed yet." } },
        )
        .into_response());
    };
    let mut all = rows(r, org, latest);
    order(&mut all, sort);
    if wants_csv(&p)? {
        return Ok(dashboard_csv(org, latest, &all));
    }
    let view = DashboardView { r, org, latest, all: &all, sort, theme };
    let title = format!("{} ({})", org.name, org.code);
    let main = html! {
        (dashboard_head(&view))
        (alerts_section(&view))
        (measures_section(&view))
        @if org.org_type == "icb" || org.code == ipmo_domain::practice::ENGLAND { (crate::system::icb_section(r, org)) }
        (related_section(&view))
    };
    Ok(html_page(r, &title, &crumbs_for(r, org), main).into_response())
}

/// An organisation's dashboard as the handler gathered it, for the page's sections to draw.
struct DashboardView<'a> {
    r: &'a Release,
    org: &'a Org,
    latest: YearMonth,
    /// Every measure with data, in the chosen order.
    all: &'a [Row<'a>],
    sort: Sort,
    /// The theme the measures table is limited to, if any.
    theme: Option<&'a str>,
}

impl DashboardView<'_> {
    /// The measures of the theme: those with something to compare, and those without.
    fn split(&self) -> (Vec<&Row<'_>>, Vec<&Row<'_>>) {
        let in_theme = |m: &Measure| self.theme.is_none_or(|t| m.tags.iter().any(|x| x == t));
        self.all.iter().filter(|row| in_theme(row.measure)).partition(|row| row.no_signal.is_none())
    }
}

/// Every measure of the dashboard as a CSV row, in the page's order.
fn dashboard_csv(org: &Org, latest: YearMonth, all: &[Row<'_>]) -> Response {
    let out = all
        .iter()
        .map(|row| {
            let mut cells = vec![row.measure.id.clone(), row.measure.title.clone(), latest.to_string()];
            cells.extend(point_csv(row.latest));
            cells.extend([
                row.latest
                    .and_then(|x| x.percentile())
                    .map(|pc| ranking::standing(pc, row.measure.direction).label().to_string())
                    .unwrap_or_default(),
                csv_number(row.saving.as_ref().map(|s| s.at_median)),
                csv_number(row.saving.as_ref().map(|s| s.at_p10)),
                row.no_signal.map(|n| n.reason().to_string()).unwrap_or_default(),
            ]);
            cells
        })
        .collect();
    csv(
        &format!("{}-measures.csv", org.code),
        &point_header(
            &["measure_id", "title", "month"],
            &["standing", "saving_50_6_months", "saving_10_6_months", "no_signal"],
        ),
        out,
    )
}

/// The organisation's name, facts and headline: latest month, measures, possible savings.
fn dashboard_head(view: &DashboardView) -> Markup {
    let DashboardView { r, org, latest, all, .. } = *view;
    let (_, quiet) = view.split();
    let headline = savings::headline(all.iter().map(|row| (row.measure, row.series)), latest);
    let any_cost = all.iter().any(|row| row.measure.is_cost_based);
    html! {
        span.caption { (level_name(&org.org_type)) }
        h1 { (org.name) " " span.code { (org.code) } }
        @if org.org_type == "practice" { (practice_facts(r, org)) }
        (summary(&[
            ("Latest month", html! { (crate::format::long_month(latest)) }),
            ("Measures with data", html! { (all.len()) @if !quiet.is_empty() { " (" (quiet.len()) " with nothing to compare)" } }),
            ("Possible savings", if any_cost { headline_block(r, org, &headline) } else { html! { "No cost measures" } }),
        ].into_iter()
            .chain(crate::ppu::dashboard_line(r, org).map(|line| ("Price-per-unit savings", line)))
            .chain(crate::price_impacts::dashboard_line(crate::price_impacts::Kind::Concessions, r, org).map(|line| ("Price concessions", line)))
            .chain(crate::price_impacts::dashboard_line(crate::price_impacts::Kind::TariffChanges, r, org).map(|line| ("Drug Tariff changes", line)))
            .collect::<Vec<_>>()))
    }
}

/// The month's alerts by group, a few of each.
fn alerts_section(view: &DashboardView) -> Markup {
    let DashboardView { org, latest, all, .. } = *view;
    let groups = grouped(all);
    let total_alerts: usize = groups.iter().map(|g| g.2.len()).sum();
    html! {
        h2 #alerts { "Alerts" }
        @if total_alerts == 0 {
            p { "No alerts: no measure has been in the top or bottom decile for three months, shown special-cause variation this month, changed sharply, or carries savings of £1,000 or more over six months." }
        } @else {
            p { (plural(total_alerts, "alert", "alerts")) " for " (crate::format::long_month(latest)) ": "
                (groups.iter().filter(|g| !g.2.is_empty()).map(|g| format!("{} {}", g.2.len(), g.1.to_lowercase())).collect::<Vec<_>>().join(", ")) ". "
                a href=(format!("/org/{}/alerts", org.code)) { "All alerts" } }
            @for (id, heading, list) in &groups {
                @if !list.is_empty() {
                    h3 #(format!("alerts-{id}")) { (heading) " (" (list.len()) ")" }
                    ul.alerts { @for (m, a) in list.iter().take(ALERTS_SHOWN) { (alert_item(m, a, org)) } }
                    @if list.len() > ALERTS_SHOWN {
                        p { a href=(format!("/org/{}/alerts#{id}", org.code)) { (list.len() - ALERTS_SHOWN) " more " (heading.to_lowercase()) " " @if list.len() - ALERTS_SHOWN == 1 { "alert" } @else { "alerts" } } }
                    }
                }
            }
        }
    }
}

/// The measures table with its theme tabs and orders, and the measures with nothing to compare.
fn measures_section(view: &DashboardView) -> Markup {
    let DashboardView { r, org, latest, all, sort, theme } = *view;
    let (signal, quiet) = view.split();
    let theme_counts: Vec<(&str, &str, usize)> = THEMES
        .iter()
        .map(|(k, label)| (*k, *label, all.iter().filter(|row| row.measure.tags.iter().any(|t| t == k)).count()))
        .filter(|t| t.2 > 0)
        .collect();
    let link = |sort: Sort, theme: Option<&str>| {
        let mut q = Vec::new();
        match sort {
            Sort::Worst => {}
            Sort::Savings => q.push("sort=savings".to_string()),
            Sort::Title => q.push("sort=title".to_string()),
        }
        if let Some(t) = theme {
            q.push(format!("theme={t}"));
        }
        let q = if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) };
        format!("/org/{}{q}#measures", org.code)
    };
    html! {
        h2 #measures { "Measures" }
        nav.tabs aria-label="Themes" { ul {
            li { a href=(link(sort, None)) aria-current=[theme.is_none().then_some("page")] { "All (" (all.len()) ")" } }
            @for (k, label, n) in &theme_counts {
                li { a href=(link(sort, Some(k))) aria-current=[(theme == Some(*k)).then_some("page")] { (label) " (" (n) ")" } }
            }
        } }
        p { @match sort {
                Sort::Worst => { "Worst first: ordered by the mean percentile over the last six months among " (ipmo_release::level_plural_lower(&org.org_type)) ", read by each measure's direction (so high is always worse); measures that make no judgement come after. " }
                Sort::Savings => { "Largest possible saving over six months first. " }
                Sort::Title => { "By title. " }
            }
            "Order: "
            @for (s2, label) in [(Sort::Worst, "worst first"), (Sort::Savings, "largest saving"), (Sort::Title, "title")] {
                @if s2 == sort { strong { (label) } } @else { a href=(link(s2, theme)) { (label) } } " "
            }
        }
        p { a href=(format!("/org/{}?format=csv", org.code)) download { "Download this table (CSV)" } }
        div.table-scroll role="region" aria-label="Measures table" tabindex="0" {
        table.table.measures {
            caption.visually-hidden { "Measures for " (org.name) }
            thead { tr {
                th scope="col" { "Measure" }
                th scope="col" .num { "Value, " (crate::format::long_month(latest)) }
                th scope="col" { "Percentile" }
                th scope="col" .num { "Saving over 6 months" }
                th scope="col" { "Last " (SPARK_MONTHS) " months" }
            } }
            tbody {
                @for row in &signal { (measure_row(r, org, row)) }
            }
        }
        }
        p.hint { "Percentile: the organisation's place among " (ipmo_release::level_plural_lower(&org.org_type)) " this month (0th lowest, 100th highest), with what it means for this measure. Saving: at the median of the level, summed over six months, for cost measures. Small charts: the organisation (blue) against the national median (dashed)." }
        @if !quiet.is_empty() {
            details {
                summary { (plural(quiet.len(), "measure", "measures")) " with nothing to compare" }
                ul { @for row in &quiet {
                    li { a href=(format!("/measure/{}/org/{}", row.measure.id, org.code)) { (row.measure.title) } ": " (row.no_signal.map(NoSignal::reason).unwrap_or_default()) }
                } }
            }
        }
    }
}

/// The organisations within this one, and its peers.
fn related_section(view: &DashboardView) -> Markup {
    let DashboardView { r, org, .. } = *view;
    let children = r.children(&org.code);
    let peers = r.peers(&org.code);
    html! {
        @if !children.is_empty() {
            h2 #children { (level_plural(&children[0].org_type)) " in " (org.name) }
            ul.columns { @for c in &children { li { (org_link(c)) } } }
        }
        @if org.org_type == "icb" {
            (trusts_section(r, org))
        }
        @if !peers.is_empty() {
            h2 #peers { "Peers" }
            p { "Other " (ipmo_release::level_plural_lower(&org.org_type)) " in the same " (r.ancestors(&org.code).first().map(|a| ipmo_release::level_name_lower(&a.org_type)).unwrap_or_default()) "." }
            ul.columns { @for c in &peers { li { (org_link(c)) } } }
        }
    }
}

/// An ICB's NHS trusts (ODS) with the hospital medicines data (SCMD) held for each, so that a
/// reader can see which of the system's hospitals the whole-system figures can include.
fn trusts_section(r: &Release, org: &Org) -> Markup {
    let trusts = r.hospitals.in_icb(&org.code);
    if trusts.is_empty() {
        return html! {};
    }
    let latest = r.hospitals.latest;
    html! {
        h2 #trusts { "NHS trusts in " (org.name) }
        p.hint {
            "Trusts whose ODS record places them in this ICB, with the months of hospital medicines data (SCMD) held for each."
            @if let Some(m) = latest { " Lines: one per medicine (dm+d VMP) issued in " (m) ", the newest SCMD month held." }
        }
        div.table-scroll role="region" aria-label="NHS trusts" tabindex="0" { table.table {
            thead { tr {
                th scope="col" { "Trust" }
                th.num scope="col" { "SCMD months" }
                th.num scope="col" { "Latest" }
                @if let Some(m) = latest { th.num scope="col" { "Lines in " (m) } }
            } }
            tbody { @for t in &trusts {
                @let c = r.hospitals.coverage(&t.code);
                tr {
                    td { a href=(format!("/trust/{}", t.code)) { (t.name) } " " span.code { (t.code) } @if t.closed { " " span.hint { "(closed)" } } }
                    td.num { (c.months) }
                    td.num { @match c.last { Some(m) => (m), None => "none held" } }
                    @if latest.is_some() { td.num { (ipmo_domain::display::number(f64::from(c.latest_lines), 0)) } }
                }
            } }
        } }
    }
}

fn measure_row(r: &Release, org: &Org, row: &Row<'_>) -> Markup {
    let median: Vec<(YearMonth, f64)> = r
        .level_values(&row.measure.id, &org.org_type)
        .map(|lv| {
            lv.deciles
                .iter()
                .rev()
                .take(SPARK_MONTHS)
                .rev()
                .filter(|(_, d)| d[4].is_finite())
                .map(|(m, d)| (*m, d[4]))
                .collect()
        })
        .unwrap_or_default();
    let own: Vec<(YearMonth, f64)> =
        row.series.iter().rev().take(SPARK_MONTHS).rev().filter_map(|p| p.value().map(|v| (p.month, v))).collect();
    let pct = row.latest.and_then(|x| x.percentile());
    html! {
        tr {
            td { a href=(format!("/measure/{}/org/{}", row.measure.id, org.code)) { (row.measure.title) } }
            td.num { (value(row.latest.and_then(|x| x.value()))) " " span.unit { (row.measure.unit()) } }
            td { (ordinal(pct)) " " (standing_tag(pct, row.measure)) }
            td.num { @match &row.saving { Some(s) => (pounds(s.at_median.max(0.0))), None => "–" } }
            td { (PreEscaped(charts::sparkline(&format!("{} over the last {} months", row.measure.title, own.len()), &own, &median))) }
        }
    }
}

/// Every alert of an organisation, grouped.
pub(crate) async fn alerts(State(s): State<Shared>, Path(code): Path<String>) -> Result<Response, WebError> {
    let r = &s.release;
    let org = org_of(r, &code)?;
    let latest =
        r.latest_month().ok_or_else(|| WebError::NotFound("No measure values have been computed yet.".into()))?;
    let all = rows(r, org, latest);
    let groups = grouped(&all);
    let mut crumbs = crumbs_for(r, org);
    crumbs.push(("Alerts".into(), format!("/org/{}/alerts", org.code)));
    Ok(html_page(r, &format!("Alerts – {}", org.name), &crumbs, html! {
        span.caption { (org.name) " (" (org.code) ")" }
        h1 { "Alerts, " (crate::format::long_month(latest)) }
        p.lede { "Measures where " (org.name) " has been in the top or bottom tenth of its level for three months, shown special-cause variation this month, changed sharply (CUSUM), or carries savings of £1,000 or more over six months." }
        @if groups.iter().all(|g| g.2.is_empty()) { p { "No alerts this month." } }
        @for (id, heading, list) in &groups {
            @if !list.is_empty() {
                h2 #(id) { (heading) " (" (list.len()) ")" }
                ul.alerts { @for (m, a) in list { (alert_item(m, a, org)) } }
            }
        }
        p { a href=(format!("/org/{}", org.code)) { "Back to the dashboard of " (org.name) } }
    }).into_response())
}
