//! A measure's pages: the measure across a level (definition, national deciles, funnel plot,
//! deprivation lens, every organisation ranked worst first, filterable by parent and month), and
//! the measure for one organisation (its line against the deciles, its SPC chart, what drives
//! its numerator, its savings, and its practices).

use crate::charts::{self, Fan, FunnelStyle};
use crate::csv::{csv, csv_number, point_csv, point_header};
use crate::dashboard::standing_tag;
use crate::format::{amount_of, decimals_of, fixed, long_month, month_span, number, ordinal, plural, pounds, value};
use crate::layout::{summary, tag};
use crate::pages::{crumbs_for, html_page};
use crate::params::Params;
use crate::params::{level_param, measure_of, org_of, wants_csv};
use crate::{Shared, WebError};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ipmo_domain::YearMonth;
use ipmo_measures::Measure;
use ipmo_measures::analysis::{self, FunnelPlot, Judgement, OrgCounts, ValuePoint};
use ipmo_measures::{ranking, savings};
use ipmo_release::{Org, Release, level_plural};
use ipmo_stats::Direction;
use ipmo_stats::funnel::{FunnelBand, FunnelModel};
use ipmo_stats::spc::{Assurance, PointClass, Variation};
use maud::{Markup, PreEscaped, html};
use rustc_hash::FxHashSet;
use std::collections::BTreeMap;

/// Most rows a ranked table shows on the page (the CSV has them all).
const TABLE_ROWS: usize = 100;
/// Presentations listed as driving a numerator.
const DRIVERS: usize = 15;

pub(crate) fn direction_text(d: Direction) -> &'static str {
    match d {
        Direction::LowerIsBetter => "Lower is better",
        Direction::HigherIsBetter => "Higher is better",
        Direction::Neither => "No value judgement",
    }
}

pub(crate) fn variation_text(v: Variation) -> (&'static str, &'static str) {
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

/// The definition as a summary list, in words.
pub(crate) fn definition(m: &Measure) -> Markup {
    let side = |s: &ipmo_measures::Side, numerator: bool| -> Markup {
        let criteria = if numerator && m.is_composite() {
            vec![format!("the sum of its components' numerators: {}", m.components.join(", "))]
        } else {
            s.criteria()
        };
        html! {
            (s.describe())
            @if !criteria.is_empty() {
                ul.criteria { @for c in &criteria { li { (c) } } }
            }
        }
    };
    summary(&[
        ("Numerator", side(&m.numerator, true)),
        ("Denominator", side(&m.denominator, false)),
        ("Unit", html! { (m.unit()) }),
        ("Direction", html! { (direction_text(m.direction)) }),
        (
            "Target",
            html! { @match &m.target { Some(t) => { (value(Some(t.value))) " " (m.unit()) " (" (t.source) ")" }, None => "None set" } },
        ),
        (
            "Made of",
            html! { @if m.is_composite() { "The sum of " (plural(m.components.len(), "measure", "measures")) ": " (m.components.join(", ")) } @else { "A single measure" } },
        ),
        ("Source of the definition", html! { (m.source) }),
        (
            "OpenPrescribing",
            html! {
                @match (&m.openprescribing_id, &m.differences) {
                    (Some(op), None) => { "The same as " a href=(format!("https://openprescribing.net/measure/{op}/")) { code { (op) } } " on OpenPrescribing, where your numbers can be compared" }
                    (Some(op), Some(d)) => { "Follows " a href=(format!("https://openprescribing.net/measure/{op}/")) { code { (op) } } " on OpenPrescribing, with deliberate differences: " (d) }
                    (None, _) => "No OpenPrescribing equivalent: a measure of our own"
                }
            },
        ),
        (
            "Version",
            html! {
                (m.version) ", reviewed " (crate::format::iso_date(&m.reviewed))
                @if !m.changes.is_empty() {
                    ul.criteria { @for c in m.changes.iter().rev() { li { "Version " (c.version) " (" (crate::format::iso_date(&c.date)) "): " (c.what) } } }
                }
            },
        ),
    ])
}

/// How many presentations of each side the measure page lists before pointing to the full list.
const PRESENTATIONS_SHOWN: usize = 12;

/// The presentations a measure counts today, most prescribed first, with national items in the
/// latest month: what a pharmacist checks first when a number looks wrong.
pub(crate) fn counted_presentations(r: &Release, m: &Measure) -> Markup {
    let all = r.counted_presentations(&m.id);
    let month = r.months.last().map(|mo| long_month(*mo)).unwrap_or_default();
    html! {
        @for (label, side) in [("Numerator", "numerator"), ("Denominator", "denominator")] {
            @let rows: Vec<&ipmo_release::CountedPresentation> = all.iter().filter(|p| p.side == side).collect();
            @if !rows.is_empty() {
                h3 { (label) ": " (plural(rows.len(), "presentation", "presentations")) }
                div.table-scroll role="region" aria-label=(format!("{label} presentations")) tabindex="0" {
                    table.table {
                        thead { tr { th scope="col" { "Presentation and BNF code" } th.num scope="col" { "Items in England, " (month) } } }
                        tbody {
                            @for p in rows.iter().take(PRESENTATIONS_SHOWN) {
                                tr { td { (p.name) br; span.code { (p.code) } } td.num { (number(p.latest_items as f64, 0)) } }
                            }
                        }
                    }
                }
                @if rows.len() > PRESENTATIONS_SHOWN {
                    p.hint { (rows.len() - PRESENTATIONS_SHOWN) " more; " code { "ipmo measures show " (m.id) } " lists every one." }
                }
            }
        }
    }
}

/// Every organisation's numerator and denominator among `points` (for the funnel plot).
pub(crate) fn counts_of<'a>(points: &[(&'a str, &ValuePoint)]) -> Vec<OrgCounts<&'a str>> {
    points
        .iter()
        .filter_map(|(code, pt)| {
            Some(OrgCounts { org_code: *code, numerator: pt.numerator()?, denominator: pt.denominator()? })
        })
        .collect()
}

/// The difference of two values in words: percentage points for a percentage measure.
fn gap_text(gap: Option<f64>, m: &Measure, decimals: usize) -> String {
    match gap {
        None => "–".into(),
        Some(g) if m.is_percentage => format!("{} percentage points", number(g, decimals)),
        Some(g) => format!("{} {}", number(g, decimals), m.unit()),
    }
}

/// Which funnel method was used, named as Spiegelhalter names it.
fn funnel_method(plot: &FunnelPlot<&str>, m: &Measure) -> String {
    let f = &plot.funnel;
    let model = match f.model {
        FunnelModel::Binomial => "binomial (a proportion of the denominator)",
        FunnelModel::Poisson => "Poisson (a count per unit of the denominator)",
    };
    if f.tau2 > 0.0 {
        format!(
            "Limits are {model}, widened for over-dispersion by an additive random-effects variance (Spiegelhalter 2005: between-organisation spread τ = {} {}, estimated from φ = {:.2} over Winsorised z-scores).",
            crate::format::value(Some(f.tau2.sqrt() * plot.multiplier)),
            if m.is_percentage { "percentage points".to_string() } else { m.unit() },
            f.phi
        )
    } else {
        format!("Limits are {model}; the spread needs no over-dispersion adjustment (φ = {:.2}).", f.phi)
    }
}

/// The organisation an organisation of `level` is shown as part of in a ranking.
fn part_of<'a>(r: &'a Release, o: &Org) -> Vec<&'a Org> {
    r.ancestors(&o.code)
        .into_iter()
        .filter(|a| matches!(a.org_type.as_str(), "pcn" | "icb" | "region"))
        .take(2)
        .collect()
}

/// A measure across one level for one month, as the measure page shows it: what the handler
/// gathered, for the page's sections to draw.
struct LevelView<'a> {
    r: &'a Release,
    m: &'a Measure,
    level: &'a str,
    /// The level's stored values (None when the measure has none at this level).
    lv: Option<&'a ipmo_release::LevelValues>,
    /// Months with deciles, oldest first.
    months: Vec<YearMonth>,
    month: YearMonth,
    /// The organisation the ranking is limited to, if any.
    parent: Option<&'a Org>,
    /// Every organisation of the level with a value this month.
    points: Vec<(&'a str, &'a ValuePoint)>,
    /// Those within `parent`, worst first (the first TABLE_ROWS of them on the page).
    ranked: Vec<(&'a Org, &'a ValuePoint)>,
    /// How many organisations are within `parent`.
    total: usize,
}

impl LevelView<'_> {
    /// The saving over the last six months of an organisation's series.
    fn series_saving(&self, o: &Org) -> Option<savings::PeriodSaving> {
        self.lv
            .and_then(|l| l.series_of(&o.code))
            .and_then(|sr| savings::period_saving(sr, self.month, savings::SAVINGS_MONTHS))
    }

    /// This page's address for another level or month, keeping the parent.
    fn link(&self, level: &str, month: YearMonth) -> String {
        let mut q = format!("/measure/{}?level={level}&month={month}", self.m.id);
        if let Some(par) = self.parent {
            q.push_str(&format!("&parent={}", par.code));
        }
        q
    }
}

/// The `parent` parameter: an organisation above `level` to limit the ranking to.
fn parent_param<'a>(r: &'a Release, p: &Params, level: &str) -> Result<Option<&'a Org>, WebError> {
    let Some(code) = p.get("parent") else { return Ok(None) };
    let o = r.org(code).ok_or_else(|| {
        WebError::BadParameter("parent".into(), format!("there is no organisation with the code \"{code}\""))
    })?;
    if o.org_type == level {
        return Err(WebError::BadParameter(
            "parent".into(),
            format!(
                "{} is itself a {}; choose an organisation above that level",
                o.code,
                ipmo_release::level_name_lower(level)
            ),
        ));
    }
    Ok(Some(o))
}

/// A measure: its definition, every organisation of a level ranked for a month, and the national
/// deciles over time.
pub(crate) async fn measure(State(s): State<Shared>, Path(id): Path<String>, p: Params) -> Result<Response, WebError> {
    let r = &s.release;
    let m = measure_of(r, &id)?;
    let level = level_param(&p, "icb")?;
    let lv = r.level_values(&m.id, level);
    let months: Vec<YearMonth> = lv.map(|l| l.deciles.keys().copied().collect()).unwrap_or_default();
    let month = crate::practices::month_of(r, m, level, &p)?;
    let parent = parent_param(r, &p, level)?;
    let allowed: Option<FxHashSet<&str>> =
        parent.map(|par| r.orgs_within(&par.code, level).into_iter().map(|o| o.code.as_str()).collect());
    let points: Vec<(&str, &ValuePoint)> = lv.map(|l| l.at(month).collect()).unwrap_or_default();
    let in_scope: Vec<(&str, &ValuePoint)> =
        points.iter().copied().filter(|(c, _)| allowed.as_ref().is_none_or(|a| a.contains(c))).collect();
    let total = in_scope.len();
    // The page shows the first TABLE_ROWS; the CSV has all.
    let csv_wanted = wants_csv(&p)?;
    let ranked = ranking::worst_first(in_scope, m.direction, (!csv_wanted).then_some(TABLE_ROWS));
    let ranked: Vec<(&Org, &ValuePoint)> =
        ranked.into_iter().filter_map(|(code, pt)| r.org(code).map(|o| (o, pt))).collect();
    let view = LevelView { r, m, level, lv, months, month, parent, points, ranked, total };
    if csv_wanted {
        return Ok(ranking_csv(&view));
    }
    let main = html! {
        (definition_section(&view))
        (level_form(&view))
        (deciles_section(&view))
        (funnel_section(&view))
        (lens_section(&view))
        (ranking_section(&view))
    };
    Ok(html_page(r, &m.title, &[(m.title.clone(), format!("/measure/{}", m.id))], main).into_response())
}

/// Every organisation of the ranking with its value, percentile and savings.
fn ranking_csv(view: &LevelView) -> Response {
    let LevelView { m, level, month, .. } = *view;
    let rows = view
        .ranked
        .iter()
        .map(|(o, pt)| {
            let s = view.series_saving(o);
            let mut row = vec![o.code.clone(), o.name.clone(), month.to_string()];
            row.extend(point_csv(Some(pt)));
            row.extend([
                csv_number(pt.saving_50()),
                csv_number(pt.saving_10()),
                csv_number(s.as_ref().map(|s| s.at_median)),
                csv_number(s.as_ref().map(|s| s.at_p10)),
            ]);
            row
        })
        .collect();
    csv(
        &format!("{}-{level}-{month}.csv", m.id),
        &point_header(
            &["org_code", "name", "month"],
            &["saving_50", "saving_10", "saving_50_6_months", "saving_10_6_months"],
        ),
        rows,
    )
}

/// The measure's title, description, why it matters, definition and what it counts today.
fn definition_section(view: &LevelView) -> Markup {
    let LevelView { r, m, .. } = *view;
    html! {
        span.caption { "Measure" }
        h1 { (m.title) }
        p.lede { (m.description) }
        @if !m.why_it_matters.is_empty() { h2 { "Why it matters" } p { (m.why_it_matters) } }
        h2 { "Definition" }
        (definition(m))
        h2 { "What it counts today" }
        (counted_presentations(r, m))
    }
}

/// The level tabs and the month and parent form.
fn level_form(view: &LevelView) -> Markup {
    let LevelView { r, m, level, month, parent, .. } = *view;
    let months = &view.months;
    html! {
        nav.tabs aria-label="Organisation level" {
            ul {
                @for l in ipmo_release::LEVELS.iter().filter(|l| **l != "england") {
                    li { a href=(format!("/measure/{}?level={l}&month={month}", m.id)) aria-current=[(*l == level).then_some("page")] { (level_plural(l)) } }
                }
            }
        }
        form.analyse.inline-form method="get" action=(format!("/measure/{}", m.id)) {
            input type="hidden" name="level" value=(level);
            div.field {
                label for="month" { "Month" }
                select #month name="month" {
                    @for mo in months.iter().rev() { option value=(mo.to_string()) selected[*mo == month] { (long_month(*mo)) } }
                }
            }
            div.field {
                label for="parent" { "Within (optional)" }
                span.hint #parent-hint { "The ODS code of an ICB, sub-ICB location, PCN, region or custom group, e.g. " (r.orgs().iter().find(|o| o.org_type == "icb").map_or("QAA", |o| o.code.as_str())) }
                input #parent name="parent" type="text" value=(parent.map_or("", |o| o.code.as_str())) aria-describedby="parent-hint" spellcheck="false" autocomplete="off";
            }
            button.button type="submit" { "Show" }
        }
    }
}

/// The national deciles by month as a fan chart and a table.
fn deciles_section(view: &LevelView) -> Markup {
    let LevelView { m, level, lv, .. } = *view;
    let empty = BTreeMap::new();
    let deciles = lv.map_or(&empty, |l| &l.deciles);
    let unit = m.unit();
    let orgs_at_level = view.points.len();
    let fan = charts::fan_chart(&Fan {
        id: "fan",
        title: &format!("{}: national deciles for {} by month", m.title, ipmo_release::level_plural_lower(level)),
        deciles,
        line: &[],
        line_label: level_plural(level),
        unit: &unit,
        target: m.target.as_ref().map(|t| t.value),
        others: &[],
    });
    let d_dec = decimals_of(deciles.values().flat_map(|d| d.iter().copied()));
    html! {
        h2 { "National deciles for " (ipmo_release::level_plural_lower(level)) }
        (PreEscaped(fan))
        p.hint { "Shaded bands run from the 10th to the 90th percentile of the " (orgs_at_level) " " (ipmo_release::level_plural_lower(level)) " each month; the dashed line is the median"
            @if m.target.is_some() { "; the red line is the target" } ". The y axis starts at zero." }
        details {
            summary { "Deciles as a table" }
            div.table-scroll role="region" aria-label="Deciles table" tabindex="0" {
                table.table {
                    caption.visually-hidden { "National deciles by month, " (unit) }
                    thead { tr { th scope="col" { "Month" } @for d in [10, 20, 30, 40, 50, 60, 70, 80, 90] { th scope="col" .num { (d) "th" } } } }
                    tbody { @for (mo, d) in deciles.iter().rev() { tr { td { (long_month(*mo)) } @for v in d { td.num { (fixed(Some(*v), d_dec)) } } } } }
                }
            }
        }
    }
}

/// The funnel plot of every organisation of the level against its denominator.
fn funnel_section(view: &LevelView) -> Markup {
    let LevelView { r, m, level, month, .. } = *view;
    let unit = m.unit();
    let funnel = analysis::funnel_plot(&counts_of(&view.points), &Judgement::of(m));
    let outside = funnel.as_ref().map_or(0, |p| {
        p.funnel.points.iter().filter(|x| matches!(x.band, FunnelBand::AboveControl | FunnelBand::BelowControl)).count()
    });
    let name = |code: &str| r.org(code).map_or(code.to_string(), |o| o.name.clone());
    let href = |code: &str| format!("/measure/{}/org/{code}", m.id);
    html! {
        h2 { "Funnel plot, " (long_month(month)) }
        @match &funnel {
            Ok(plot) => {
                (PreEscaped(charts::funnel_chart("funnel", &format!("{}: funnel plot of {}, {}", m.title, ipmo_release::level_plural_lower(level), long_month(month)), plot, &FunnelStyle {
                    direction: m.direction,
                    x_title: &m.denominator.describe(),
                    y_title: &unit,
                    name: &name,
                    href: &href,
                })))
                (PreEscaped(charts::funnel_legend(m.direction)))
                p.hint { "Each point is one of the " (plot.funnel.points.len()) " " (ipmo_release::level_plural_lower(level)) " of England against its denominator; the solid line is the pooled value ("
                    (value(Some(plot.funnel.target * plot.multiplier))) " " (unit) "). " (funnel_method(plot, m)) " "
                    (outside) " of " (plot.funnel.points.len()) " lie outside the 99.8% limits"
                    @if plot.funnel.points.len() > 400 { "; those are links (the rest are in the table below)" } "." }
            }
            Err(why) => p { "No funnel plot: " (why.to_string()) "." }
        }
    }
}

/// The value by deprivation quintile, and the gap between the most and least deprived.
fn lens_section(view: &LevelView) -> Markup {
    let LevelView { r, m, month, .. } = *view;
    let unit = m.unit();
    let lens = r.lens(&m.id, month);
    html! {
        h2 { "Deprivation" }
        @match lens {
            Some(l) => {
                @let d_lens = decimals_of(l.quintiles.iter().filter_map(|q| q.value));
                p { "Practices grouped by the national IMD quintile of their population (1 = most deprived fifth), " (long_month(month)) ": the value pooled over each quintile's practices." }
                div.table-scroll role="region" aria-label="Value by deprivation quintile" tabindex="0" { table.table {
                    caption.visually-hidden { "Value by deprivation quintile" }
                    thead { tr { th scope="col" { "IMD quintile" } th scope="col" .num { "Practices" } th scope="col" .num { "Value (" (unit) ")" } } }
                    tbody {
                        @for q in &l.quintiles {
                            tr { td { (q.quintile) @if q.quintile == 1 { " (most deprived)" } @if q.quintile == 5 { " (least deprived)" } }
                                 td.num { (number(q.practices as f64, 0)) } td.num { (fixed(q.value, d_lens)) } }
                        }
                    }
                } }
                p { "Gap between the most and least deprived fifths: " strong { (gap_text(l.gap, m, d_lens)) } "."
                    @if l.practices_without_imd > 0 { " Left out: " (plural(l.practices_without_imd, "practice", "practices")) " without an IMD score." } }
            }
            None => p { "No deprivation scores are loaded (" code { "ipmo ingest imd" } "), or no practice has a value this month." }
        }
    }
}

/// The organisations ranked worst first, with a link to the CSV and to other months.
fn ranking_section(view: &LevelView) -> Markup {
    let LevelView { r, m, level, month, parent, total, .. } = *view;
    let ranked = &view.ranked;
    let unit = m.unit();
    let shown = ranked.len();
    let csv_link = format!("{}&format=csv", view.link(level, month));
    let d_col = decimals_of(ranked.iter().filter_map(|(_, pt)| pt.value()));
    let money = m.numerator.quantity.is_cost();
    let direction_order = match m.direction {
        Direction::LowerIsBetter => "highest (worst) first",
        Direction::HigherIsBetter => "lowest (worst) first",
        Direction::Neither => "highest first",
    };
    let months = &view.months;
    html! {
        h2 #ranking { (level_plural(level)) @if let Some(par) = parent { " in " (par.name) } ", " (long_month(month)) }
        p { (plural(total, &ipmo_release::level_name_lower(level), &ipmo_release::level_plural_lower(level))) ", " (direction_order)
            @if shown < total { "; the first " (shown) " are shown" } ". "
            a href=(csv_link) download { "Download all (CSV)" }
            @if let Some(par) = parent { @if par.org_type != "practice" { " · " a href=(format!("/measure/{}/org/{}#practices", m.id, par.code)) { (par.name) "'s practices with trends and savings" } } } }
        div.table-scroll role="region" aria-label="Ranking table" tabindex="0" {
        table.table {
            caption.visually-hidden { (m.title) " by organisation, " (long_month(month)) }
            thead { tr {
                th scope="col" .num { "Rank" }
                th scope="col" { "Organisation" }
                th scope="col" .num { "Numerator" }
                th scope="col" .num { "Denominator" }
                th scope="col" .num { "Value (" (unit) ")" }
                th scope="col" { "Percentile" }
                @if m.is_cost_based { th scope="col" .num { "Saving over 6 months" } }
            } }
            tbody {
                @for (i, (o, pt)) in ranked.iter().enumerate() {
                    tr {
                        td.num { (i + 1) }
                        td { a href=(format!("/measure/{}/org/{}", m.id, o.code)) { (o.name) } " " span.code { "(" (o.code) ")" }
                            @let parts = part_of(r, o);
                            @if !parts.is_empty() { br; span.hint { (parts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")) } } }
                        td.num { (amount_of(pt.numerator(), money)) }
                        td.num { (amount_of(pt.denominator(), m.denominator.quantity.is_cost())) }
                        td.num { (fixed(pt.value(), d_col)) }
                        td { (ordinal(pt.percentile())) " " (standing_tag(pt.percentile(), m)) }
                        @if m.is_cost_based { td.num { @match view.series_saving(o) { Some(s) => (pounds(s.at_median.max(0.0))), None => "–" } } }
                    }
                }
            }
        }
        }
        p { "Other months: "
            @for mo in months.iter().rev().take(6) { @if *mo != month { a href=(format!("{}#ranking", view.link(level, *mo))) { (long_month(*mo)) } " " } } }
    }
}

/// One measure for one organisation, as its page shows it: what the handler gathered, for the
/// page's sections to draw.
struct OrgView<'a> {
    r: &'a Release,
    m: &'a Measure,
    org: &'a Org,
    /// The organisation's series, oldest first.
    series: &'a [ValuePoint],
    /// The stored values of the organisation's level.
    lv: Option<&'a ipmo_release::LevelValues>,
    /// Its SPC chart, when there are enough months.
    spc: Option<analysis::Spc>,
}

impl<'a> OrgView<'a> {
    /// The national deciles of the organisation's level, by month.
    fn deciles(&self) -> &'a BTreeMap<YearMonth, [f64; 9]> {
        static EMPTY: BTreeMap<YearMonth, [f64; 9]> = BTreeMap::new();
        self.lv.map_or(&EMPTY, |l| &l.deciles)
    }
}

/// One measure for one organisation: its line against the national deciles, its SPC chart with
/// the Making Data Count icons, what drives the numerator, the data, its children and practices.
pub(crate) async fn measure_for_org(
    State(s): State<Shared>,
    Path((id, code)): Path<(String, String)>,
    p: Params,
) -> Result<Response, WebError> {
    let r = &s.release;
    let m = measure_of(r, &id)?;
    let org = org_of(r, &code)?;
    let series = r.series(&m.id, org).unwrap_or(&[]);
    let lv = r.level_values(&m.id, &org.org_type);
    let spc = analysis::spc(series, &Judgement::of(m));
    let view = OrgView { r, m, org, series, lv, spc };
    if wants_csv(&p)? {
        return Ok(org_csv(&view));
    }
    let mut crumbs = crumbs_for(r, org);
    crumbs.push((m.title.clone(), format!("/measure/{}/org/{}", m.id, org.code)));
    let drivers = match (&r.index, series.last()) {
        (Some(ix), Some(pt)) => {
            let set = ipmo_index::CodeSet { include: r.numerator_codes(&m.id).to_vec(), exclude: Vec::new() };
            let level = crate::params::parse_level(&org.org_type).ok();
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
    let practices_month = match org.org_type.as_str() {
        "practice" => None,
        _ => Some(crate::practices::month_of(r, m, "practice", &p)?),
    };
    let main = html! {
        (org_summary(&view))
        (org_fan(&view))
        (org_spc(&view))
        (drivers_section(&view, drivers.as_deref()))
        @if let Some(month) = practices_month { (crate::practices::section(r, m, org, month, false)) }
        (org_data(&view))
        (members_section(&view))
        (org_definition(&view))
    };
    Ok(html_page(r, &format!("{} – {}", m.title, org.name), &crumbs, main).into_response())
}

/// The organisation's series with deciles and SPC classes, one row per month.
fn org_csv(view: &OrgView) -> Response {
    let OrgView { m, org, series, lv, .. } = *view;
    let spc = &view.spc;
    let rows = series
        .iter()
        .map(|pt| {
            let d = lv.and_then(|l| l.deciles.get(&pt.month));
            let mut row = vec![pt.month.to_string()];
            row.extend(point_csv(Some(pt)));
            row.extend([
                csv_number(pt.saving_50()),
                csv_number(pt.saving_10()),
                d.map(|d| d[0].to_string()).unwrap_or_default(),
                d.map(|d| d[4].to_string()).unwrap_or_default(),
                d.map(|d| d[8].to_string()).unwrap_or_default(),
                spc.as_ref().and_then(|s| s.class_at(pt.month)).map(|c| class_text(c).to_string()).unwrap_or_default(),
            ]);
            row
        })
        .collect();
    csv(
        &format!("{}-{}.csv", m.id, org.code),
        &point_header(&["month"], &["saving_50", "saving_10", "p10", "p50", "p90", "spc"]),
        rows,
    )
}

/// The latest value, percentile, saving, variation and assurance.
fn org_summary(view: &OrgView) -> Markup {
    let OrgView { m, org, series, .. } = *view;
    let spc = &view.spc;
    let unit = m.unit();
    let latest = series.last();
    let saving = latest.and_then(|pt| savings::period_saving(series, pt.month, savings::SAVINGS_MONTHS));
    let money = m.numerator.quantity.is_cost();
    html! {
        span.caption { (org.name) " (" (org.code) ")" }
        h1 { (m.title) }
        p.lede { (m.description) " " a href=(format!("/measure/{}?level={}", m.id, org.org_type)) { "All " (ipmo_release::level_plural_lower(&org.org_type)) } }
        @if let Some(pt) = latest {
            (summary(&[
                ("Latest value", html! { (value(pt.value())) " " (unit) " in " (long_month(pt.month)) }),
                ("Percentile", html! { (ordinal(pt.percentile())) " among " (ipmo_release::level_plural_lower(&org.org_type)) " " (standing_tag(pt.percentile(), m)) }),
                ("Numerator / denominator", html! { (amount_of(pt.numerator(), money)) " / " (amount_of(pt.denominator(), m.denominator.quantity.is_cost())) }),
                ("Possible saving", html! { @match &saving {
                    Some(s) => { (pounds(s.at_median.max(0.0))) " at the median of " (ipmo_release::level_plural_lower(&org.org_type)) ", " (pounds(s.at_p10.max(0.0))) " at the 10th percentile, over " (month_span(s.from, s.to)) }
                    None => "Not a cost measure"
                } }),
                ("Variation", html! { @match &spc { Some(s) => { @let (t, c) = variation_text(s.chart.variation); (tag(t, c)) }, None => "Too few months for an SPC chart" } }),
                ("Assurance", html! { @match spc.as_ref().and_then(|s| s.chart.assurance) { Some(a) => { @let (t, c) = assurance_text(a); (tag(t, c)) }, None => { @if m.target.is_some() { "Not assessed" } @else { "No target set" } } } }),
            ]))
        } @else {
            p { "There are no values of this measure for " (org.name) "." }
        }
    }
}

/// The organisation's line against the national deciles.
fn org_fan(view: &OrgView) -> Markup {
    let OrgView { m, org, series, .. } = *view;
    let unit = m.unit();
    let line: Vec<(YearMonth, Option<f64>)> = series.iter().map(|p| (p.month, p.value())).collect();
    let fan = charts::fan_chart(&Fan {
        id: "fan",
        title: &format!("{}: {} against national deciles", m.title, org.name),
        deciles: view.deciles(),
        line: &line,
        line_label: &org.name,
        unit: &unit,
        target: m.target.as_ref().map(|t| t.value),
        others: &[],
    });
    html! {
        h2 { "Against the national deciles" }
        (PreEscaped(fan))
        p.hint { "Blue line: " (org.name) ". Shaded bands: 10th to 90th percentile of " (ipmo_release::level_plural_lower(&org.org_type)) "; dashed: median"
            @if m.target.is_some() { "; red: target" } ". The y axis starts at zero." }
    }
}

/// The SPC chart, or why there is none.
fn org_spc(view: &OrgView) -> Markup {
    let OrgView { m, org, .. } = *view;
    let spc = &view.spc;
    let unit = m.unit();
    let bounds = (0.0, if m.is_percentage { 100.0 } else { f64::INFINITY });
    html! {
        h2 { "Statistical process control" }
        @match &spc {
            Some(sc) => {
                (PreEscaped(charts::spc_chart("spc", &format!("{}: SPC chart for {}", m.title, org.name), sc, m.target.as_ref().map(|t| t.value), &unit, bounds)))
                p.hint { "Mean and process limits (mean ± 2.66 × mean moving range), shown no lower than 0"
                    @if m.is_percentage { " and no higher than 100%" } ". Orange: special cause concern; blue: improvement; purple: special cause where neither direction is better; grey: common cause."
                    @if m.target.is_some() { " Red line: target." }
                    " The y axis is fitted to the values, so it may not start at zero." }
            }
            None => p { "An SPC chart needs at least 15 months of values." }
        }
    }
}

/// The presentations behind the numerator in the latest month (None: no index to ask).
fn drivers_section(view: &OrgView, drivers: Option<&[(String, i64, f64)]>) -> Markup {
    let OrgView { r, org, series, .. } = *view;
    let latest = series.last();
    html! {
        @if let Some(month) = latest.map(|p| p.month) {
            h2 { "What drives the numerator, " (long_month(month)) }
            @match drivers {
                Some(list) if !list.is_empty() => {
                    p { "The presentations counted in the numerator that " (org.name) " prescribed most that month (up to " (DRIVERS) "), from the prescribing index." }
                    div.table-scroll role="region" aria-label="Presentations table" tabindex="0" {
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
                }
                Some(_) => p { "No prescribing of the numerator's presentations that month." }
                None => p { "The prescribing index is not open on this server, so the presentations cannot be listed." }
            }
        }
    }
}

/// Every month's value with the national median and the SPC class, newest first.
fn org_data(view: &OrgView) -> Markup {
    let OrgView { m, org, series, .. } = *view;
    let spc = &view.spc;
    let unit = m.unit();
    let money = m.numerator.quantity.is_cost();
    let deciles = view.deciles();
    let d_col = decimals_of(series.iter().filter_map(|pt| pt.value()).chain(deciles.values().map(|d| d[4])));
    html! {
        h2 { "Data" }
        p { a href=(format!("/measure/{}/org/{}?format=csv", m.id, org.code)) download { "Download (CSV)" } }
        div.table-scroll role="region" aria-label="Data table" tabindex="0" {
        table.table {
            caption.visually-hidden { (m.title) " for " (org.name) " by month" }
            thead { tr {
                th scope="col" { "Month" } th scope="col" .num { "Numerator" } th scope="col" .num { "Denominator" }
                th scope="col" .num { "Value (" (unit) ")" } th scope="col" .num { "Percentile" } th scope="col" .num { "National median" } th scope="col" { "SPC" }
            } }
            tbody {
                @for pt in series.iter().rev() {
                    tr {
                        td { (long_month(pt.month)) }
                        td.num { (amount_of(pt.numerator(), money)) }
                        td.num { (amount_of(pt.denominator(), m.denominator.quantity.is_cost())) }
                        td.num { (fixed(pt.value(), d_col)) }
                        td.num { (ordinal(pt.percentile())) }
                        td.num { (fixed(deciles.get(&pt.month).map(|d| d[4]), d_col)) }
                        td { (spc.as_ref().and_then(|s| s.class_at(pt.month)).map(class_text).unwrap_or("–")) }
                    }
                }
            }
        }
        }
    }
}

/// The latest value of each organisation within this one.
fn members_section(view: &OrgView) -> Markup {
    let OrgView { r, m, org, .. } = *view;
    let unit = m.unit();
    let children = r.children(&org.code);
    let child_rows: Vec<(&Org, &ValuePoint)> =
        children.iter().filter_map(|c| r.series(&m.id, c).and_then(|s| s.last()).map(|pt| (*c, pt))).collect();
    html! {
        @if !child_rows.is_empty() {
            @let d_child = decimals_of(child_rows.iter().filter_map(|(_, pt)| pt.value()));
            h2 { (level_plural(&child_rows[0].0.org_type)) " in " (org.name) }
            div.table-scroll role="region" aria-label="Members table" tabindex="0" {
            table.table {
                caption.visually-hidden { "Latest value for each member" }
                thead { tr { th scope="col" { "Organisation" } th scope="col" .num { "Value (" (unit) ")" } th scope="col" { "Percentile" } } }
                tbody {
                    @for (c, pt) in &child_rows {
                        tr {
                            td { a href=(format!("/measure/{}/org/{}", m.id, c.code)) { (c.name) } " " span.code { "(" (c.code) ")" } }
                            td.num { (fixed(pt.value(), d_child)) }
                            td { (ordinal(pt.percentile())) " " (standing_tag(pt.percentile(), m)) }
                        }
                    }
                }
            }
            }
        }
    }
}

/// The definition, and how percentiles and standing are read.
fn org_definition(view: &OrgView) -> Markup {
    let OrgView { m, org, .. } = *view;
    html! {
        h2 { "Definition" }
        (definition(m))
        p.hint { "Percentiles rank " (ipmo_release::level_plural_lower(&org.org_type)) " in England each month (0th lowest, 100th highest); organisations with the same value share a percentile. "
            "Standing reads it by the measure's direction: " (direction_text(m.direction).to_lowercase()) "." }
    }
}
