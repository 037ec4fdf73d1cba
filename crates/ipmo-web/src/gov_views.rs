//! Governance views that join records to the prescribing data: the risk register's heat map and
//! live measure signals, the assurance framework with computed RAG, the plans on a page and the
//! stakeholder grid.

use crate::gov::{Governance, Names, cell, name_of};
use crate::layout;
use crate::{Shared, WebError};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ipmo_domain::YearMonth;
use ipmo_governance::kinds::{self, Kind};
use ipmo_governance::risk::{Band, CONSEQUENCE, LIKELIHOOD, Rating};
use ipmo_governance::store::{Record, StoreError};
use ipmo_measures::analysis::{self, AlertKind, Judgement, Tone};
use ipmo_release::Release;
use ipmo_stats::spc::{Assurance, PointClass, Variation};
use maud::{Markup, html};
use std::collections::BTreeMap;

/// What a watched measure says now.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    /// Whether the trigger has fired.
    pub turned: bool,
    /// One sentence for people, naming the month.
    pub text: String,
}

/// The live signal of a watch record (organisation + measure + trigger).
pub fn watch_signal(r: &Release, watch: &Record) -> Signal {
    let (org_code, measure_id, trigger) = (watch.text("org"), watch.text("measure"), watch.text("trigger"));
    let quiet = |text: String| Signal { turned: false, text };
    let Some(m) = r.library.measures.iter().find(|m| m.id == measure_id) else {
        return quiet(format!("The measure \"{measure_id}\" is not in this release's library."));
    };
    let Some(org) = r.org(org_code) else {
        return quiet(format!("The organisation {org_code} is not in this release."));
    };
    let Some(latest) = r.latest_month() else { return quiet("No measure values are loaded.".into()) };
    let series = r.series(&m.id, org).unwrap_or(&[]);
    if !series.iter().any(|p| p.month == latest && p.value.is_some()) {
        return quiet(format!("No value for {} in {latest}, the latest month.", org.name));
    }
    let judgement = Judgement::of(m);
    let alerts = analysis::alerts(series, &judgement, latest);
    let bad = |kinds: &[AlertKind]| alerts.iter().find(|a| a.tone == Tone::Bad && kinds.contains(&a.kind));
    let fired = match trigger {
        "SPC special cause of concern" => {
            let chart = analysis::spc(series, &judgement);
            let last = chart.as_ref().and_then(|c| c.chart.points.last().map(|p| p.class));
            match (last, chart.as_ref().map(|c| c.chart.variation)) {
                (Some(PointClass::Concern), _) | (_, Some(Variation::ConcernHigh | Variation::ConcernLow)) => {
                    Some(format!("{latest}: special cause of concern in {}'s SPC chart", org.name))
                }
                (None, _) => return quiet(format!("Too few months for an SPC chart of {}.", org.name)),
                _ => None,
            }
        }
        "Assurance: consistently fails target" => {
            if m.target.is_none() {
                return quiet(format!("{} has no target, so there is no assurance to watch.", m.title));
            }
            match analysis::spc(series, &judgement).and_then(|c| c.chart.assurance) {
                Some(Assurance::ConsistentlyFail) => {
                    Some(format!("{latest}: {} consistently fails the target", org.name))
                }
                _ => None,
            }
        }
        "Worst decile nationally" => bad(&[AlertKind::TopDecile, AlertKind::BottomDecile]).map(|a| a.message.clone()),
        "CUSUM change for the worse" => bad(&[AlertKind::Changed]).map(|a| a.message.clone()),
        other => return quiet(format!("Unknown trigger \"{other}\".")),
    };
    match fired {
        Some(text) => Signal { turned: true, text },
        None => quiet(format!("{latest}: not triggered ({})", trigger.to_lowercase())),
    }
}

/// A performance standard's RAG, computed from its measure against its target.
#[derive(Clone, Debug, PartialEq)]
pub struct StandardRag {
    /// Green, Amber, Red, or None when it cannot be computed.
    pub rag: Option<&'static str>,
    /// Why, in one sentence.
    pub why: String,
}

/// Making Data Count assurance against the standard's target, tempered by variation: a
/// consistent pass is green unless the latest variation is of concern (then amber); a
/// consistent fail is red; hit and miss is amber. No value for the latest month says so.
pub fn standard_rag(r: &Release, standard: &Record) -> StandardRag {
    let none = |why: String| StandardRag { rag: None, why };
    let (org_code, measure_id) = (standard.text("org"), standard.text("measure"));
    let Some(m) = r.library.measures.iter().find(|m| m.id == measure_id) else {
        return none(format!("The measure \"{measure_id}\" is not in this release's library."));
    };
    let Some(org) = r.org(org_code) else {
        return none(format!("The organisation {org_code} is not in this release."));
    };
    let Some(latest) = r.latest_month() else { return none("No measure values are loaded.".into()) };
    let Some(target) = standard.number("target") else { return none("The standard has no target.".into()) };
    let series = r.series(&m.id, org).unwrap_or(&[]);
    let Some(last) = series.iter().find(|p| p.month == latest).and_then(|p| p.value) else {
        return none(format!(
            "No value for {} in {}, the latest month: the standard cannot be assessed.",
            org.name,
            long_month(latest)
        ));
    };
    let judgement = Judgement { target: Some(target), ..Judgement::of(m) };
    let Some(chart) = analysis::spc(series, &judgement) else {
        return none(format!("Too few months of {} for an SPC chart.", org.name));
    };
    let concern = matches!(chart.chart.variation, Variation::ConcernHigh | Variation::ConcernLow);
    let latest_text = format!("{}: {} {}", long_month(latest), crate::format::value(Some(last)), m.unit());
    let (rag, what) = match chart.chart.assurance {
        Some(Assurance::ConsistentlyPass) if !concern => ("Green", "consistently meets the target"),
        Some(Assurance::ConsistentlyPass) => ("Amber", "meets the target, but the latest variation is of concern"),
        Some(Assurance::ConsistentlyFail) => ("Red", "consistently fails the target"),
        Some(Assurance::HitOrMiss) | None => ("Amber", "will hit or miss the target by chance"),
    };
    StandardRag {
        rag: Some(rag),
        why: format!("{latest_text}; the process {what} (target {}).", crate::format::value(Some(target))),
    }
}

fn long_month(m: YearMonth) -> String {
    crate::charts::long_month(m)
}

/// A watched measure in words: "Broad-spectrum antibiotics … for NHS Ashdown ICB".
fn watch_label(r: &Release, w: &Record) -> String {
    let measure = r.library.get(w.text("measure")).map_or(w.text("measure"), |m| m.title.as_str());
    let org = r.org(w.text("org")).map_or(w.text("org"), |o| o.name.as_str());
    format!("{measure} for {org}")
}

fn band_class(b: Band) -> &'static str {
    match b {
        Band::Low => "band-low",
        Band::Moderate => "band-moderate",
        Band::High => "band-high",
        Band::Extreme => "band-extreme",
    }
}

fn rating_tag(r: Option<Rating>) -> Markup {
    match r {
        Some(r) => {
            html! { span class=(format!("score {}", band_class(r.band()))) { (r.score()) " " (r.band().label()) } }
        }
        None => html! { "—" },
    }
}

fn rag_tag(rag: Option<&str>) -> Markup {
    match rag {
        Some("Green") => layout::tag("Green", "green"),
        Some("Amber") => layout::tag("Amber", "orange"),
        Some("Red") => layout::tag("Red", "red"),
        _ => layout::tag("No data", "grey"),
    }
}

/// The risk register's extras: the heat map of current scores, and each risk's scores with the
/// live signals of the measures it watches, risks whose watched measure has turned first.
pub async fn risk_register(s: &Shared, g: &Governance, risks: &[Record]) -> Result<Markup, StoreError> {
    let watches = g.store.records("watch", false).await?;
    let r = &s.release;
    let live: Vec<&Record> = risks.iter().filter(|x| !x.archived).collect();
    let mut grid = [[0usize; 5]; 5];
    for risk in &live {
        if let Some(rt) = Rating::of_record(&risk.data, "current") {
            grid[usize::from(rt.likelihood) - 1][usize::from(rt.consequence) - 1] += 1;
        }
    }
    let mut rows: Vec<(&Record, Vec<(&Record, Signal)>)> = live
        .iter()
        .map(|risk| {
            let signals =
                watches.iter().filter(|w| w.int("risk") == Some(risk.id)).map(|w| (w, watch_signal(r, w))).collect();
            (*risk, signals)
        })
        .collect();
    let turned = |sig: &[(&Record, Signal)]| sig.iter().any(|(_, x)| x.turned);
    let score = |risk: &Record| Rating::of_record(&risk.data, "current").map_or(0, Rating::score);
    rows.sort_by(|a, b| turned(&b.1).cmp(&turned(&a.1)).then(score(b.0).cmp(&score(a.0))).then(a.0.id.cmp(&b.0.id)));
    let flagged = rows.iter().filter(|(_, s)| turned(s)).count();
    let today = g.settings.today();
    let overdue = live.iter().filter(|x| ipmo_governance::due::overdue(x, today).is_some()).count();
    let kind = kinds::kind("risk").expect("risk kind");
    Ok(html! {
        h2 { "Heat map of current risks" }
        p { "How many current risks sit in each cell of the 5×5 matrix (score = likelihood × consequence; bands 1–3 low, 4–6 moderate, 8–12 high, 15–25 extreme)." }
        div.table-scroll role="region" aria-label="Current risks by likelihood and consequence" tabindex="0" { table.heatmap {
            caption.visually-hidden { "Current risks by likelihood and consequence" }
            thead { tr { th scope="col" { "Likelihood ↓ / consequence →" } @for c in 1..=5 { th scope="col" { (c) " " (CONSEQUENCE[c - 1]) } } } }
            tbody {
                @for l in (1..=5).rev() {
                    tr {
                        th scope="row" { (l) " " (LIKELIHOOD[l - 1]) }
                        @for c in 1..=5 {
                            @let rating = Rating { likelihood: l as u8, consequence: c as u8 };
                            td class=(band_class(rating.band())) title=(format!("Score {} ({})", rating.score(), rating.band().label())) {
                                @let n = grid[l - 1][c - 1];
                                @if n > 0 { strong { (n) } } @else { span.visually-hidden { "0" } }
                            }
                        }
                    }
                }
            }
        } }
        h2 { "Risks and their watched measures" }
        @if flagged > 0 {
            div.warning-callout { p { strong { (crate::format::plural(flagged, "risk has", "risks have")) } " a watched measure that has turned; they are listed first." } }
        }
        @if overdue > 0 {
            div.warning-callout { p { strong { (crate::format::plural(overdue, "risk is", "risks are")) } " past their next review date (" (crate::format::iso_date(&today.format("%Y-%m-%d").to_string())) ")." } }
        }
        div.table-scroll role="region" aria-label="Risks with scores and live signals" tabindex="0" { table.table {
            caption.visually-hidden { "Risks with scores and live signals" }
            thead { tr {
                th scope="col" { "Risk" } th scope="col" { "Inherent" } th scope="col" { "Current" } th scope="col" { "Target" }
                th scope="col" { "Watched measures" } th scope="col" { "Next review" }
            } }
            tbody {
                @for (risk, signals) in &rows {
                    tr {
                        td { a href=(format!("/gov/risk/{}", risk.id)) { (kind.reference(risk.id)) } " " (name_of(kind, risk))
                             @if turned(signals) { " " (layout::tag("Measure turned", "red")) } }
                        td { (rating_tag(Rating::of_record(&risk.data, "inherent"))) }
                        td { (rating_tag(Rating::of_record(&risk.data, "current"))) }
                        td { (rating_tag(Rating::of_record(&risk.data, "target"))) }
                        td { @if signals.is_empty() { "None" } @else { ul.plain { @for (w, sig) in signals {
                            li { a href=(format!("/measure/{}/org/{}", w.text("measure"), w.text("org"))) { (watch_label(r, w)) } ": "
                                 @if sig.turned { strong { (sig.text) } } @else { (sig.text) } }
                        } } } }
                        td { (crate::gov::date_cell(risk, "review_date", today)) }
                    }
                }
            }
        } }
    })
}

/// One line of the workspace's status: what, where to look, and the records needing attention
/// (their number is the count shown).
struct StatusItem {
    what: String,
    href: &'static str,
    detail: Vec<String>,
}

/// The status summary that opens `/gov`: what needs attention today, each with a link.
pub async fn status(s: &Shared, g: &Governance) -> Result<Markup, StoreError> {
    let r = &s.release;
    let today = g.settings.today();
    let (risks, watches, standards, actions, milestones, returns) = (
        g.store.records("risk", false).await?,
        g.store.records("watch", false).await?,
        g.store.records("standard", false).await?,
        g.store.records("risk-action", false).await?,
        g.store.records("milestone", false).await?,
        g.store.records("workforce-return", false).await?,
    );
    let rk = kinds::kind("risk").expect("risk");
    let name = |k: &str, x: &Record| {
        let kind = kinds::kind(k).expect("kind");
        format!("{} {}", kind.reference(x.id), name_of(kind, x))
    };
    let extreme: Vec<String> = risks
        .iter()
        .filter(|x| Rating::of_record(&x.data, "current").is_some_and(|rt| rt.band() == Band::Extreme))
        .map(|x| name("risk", x))
        .collect();
    let turned: Vec<String> = risks
        .iter()
        .filter(|x| watches.iter().any(|w| w.int("risk") == Some(x.id) && watch_signal(r, w).turned))
        .map(|x| format!("{} {}", rk.reference(x.id), x.text("title")))
        .collect();
    let red: Vec<String> =
        standards.iter().filter(|x| standard_rag(r, x).rag == Some("Red")).map(|x| name("standard", x)).collect();
    let late = |list: &[Record], k: &str| -> Vec<String> {
        list.iter().filter(|x| ipmo_governance::due::overdue(x, today).is_some()).map(|x| name(k, x)).collect()
    };
    let newest = returns.iter().map(|x| x.text("quarter")).max().unwrap_or("");
    let stale = !newest.is_empty() && ipmo_governance::due::returns_stale(newest, today);
    let item = |what: &str, href: &'static str, detail: Vec<String>| StatusItem { what: what.into(), href, detail };
    let items = [
        item("extreme risks (current score 15 to 25)", "/gov/risk", extreme),
        item("risks whose watched measure has turned", "/gov/risk", turned),
        item("performance standards computed red", "/gov/assurance", red),
        item("risks past their review date", "/gov/risk", late(&risks, "risk")),
        item("risk actions overdue", "/gov/risk-action", late(&actions, "risk-action")),
        item("milestones overdue", "/gov/plans", late(&milestones, "milestone")),
        item(
            &if newest.is_empty() {
                "workforce returns: none recorded yet".to_string()
            } else {
                format!("workforce returns stale (the newest is for {newest})")
            },
            "/gov/workforce",
            if stale {
                vec![format!("Returns to {newest} only; the last complete quarter is later")]
            } else {
                Vec::new()
            },
        ),
    ];
    let attention = items.iter().filter(|i| !i.detail.is_empty()).count();
    Ok(html! {
        h2 { "Status, " (crate::format::iso_date(&today.format("%Y-%m-%d").to_string())) }
        p { @if attention == 0 { "Nothing needs attention today." } @else { (crate::format::plural(attention, "area needs", "areas need")) " attention." } }
        ul.status {
            @for i in &items {
                li class=(if i.detail.is_empty() { "status-item" } else { "status-item attention" }) {
                    a href=(i.href) { strong.status-count { (i.detail.len()) } " " (i.what) }
                    @if !i.detail.is_empty() {
                        ul.plain.hint { @for d in i.detail.iter().take(5) { li { (d) } } @if i.detail.len() > 5 { li { "and " (i.detail.len() - 5) " more" } } }
                    }
                }
            }
        }
    })
}

/// Names listed in each quadrant of the stakeholder grid; the rest are counted.
const GRID_NAMES: usize = 20;

/// The power and interest grid over current stakeholders.
pub fn stakeholder_grid(stakeholders: &[Record]) -> Markup {
    let kind = kinds::kind("stakeholder").expect("stakeholder kind");
    let live: Vec<&Record> = stakeholders.iter().filter(|x| !x.archived).collect();
    let quadrant = |high_power: bool, high_interest: bool| -> Vec<&Record> {
        live.iter()
            .copied()
            .filter(|x| {
                (x.int("power").unwrap_or(0) >= 3) == high_power
                    && (x.int("interest").unwrap_or(0) >= 3) == high_interest
            })
            .collect()
    };
    let cell = |title: &str, advice: &str, list: Vec<&Record>| {
        html! {
            div.quadrant {
                h3 { (title) } p.hint { (advice) }
                @if list.is_empty() { p { "None" } }
                ul.plain { @for x in list.iter().take(GRID_NAMES) { li { a href=(format!("/gov/stakeholder/{}", x.id)) { (name_of(kind, x)) } " (power " (x.int("power").unwrap_or(0)) ", interest " (x.int("interest").unwrap_or(0)) ")" } } }
                @if list.len() > GRID_NAMES { p.hint { "and " (crate::format::number((list.len() - GRID_NAMES) as f64, 0)) " more, in the table below" } }
            }
        }
    };
    html! {
        h2 { "Power and interest grid" }
        p { "Power and interest of 3 or more count as high." }
        div.grid2 {
            (cell("Keep satisfied", "High power, lower interest", quadrant(true, false)))
            (cell("Manage closely", "High power, high interest", quadrant(true, true)))
            (cell("Monitor", "Lower power, lower interest", quadrant(false, false)))
            (cell("Keep informed", "Lower power, high interest", quadrant(false, true)))
        }
    }
}

/// Kind-specific panels on a record's page.
pub async fn record_panel(s: &Shared, g: &Governance, kind: &Kind, rec: &Record) -> Result<Markup, StoreError> {
    let r = &s.release;
    Ok(match kind.id {
        "risk" => {
            let watches: Vec<Record> =
                g.store.records("watch", false).await?.into_iter().filter(|w| w.int("risk") == Some(rec.id)).collect();
            html! {
                h2 { "Scores" }
                div.table-scroll role="region" aria-label="Risk scores" tabindex="0" { table.table {
                    caption.visually-hidden { "Risk scores" }
                    thead { tr { th scope="col" { "" } th scope="col" { "Likelihood" } th scope="col" { "Consequence" } th scope="col" { "Score and band" } } }
                    tbody { @for stage in ["inherent", "current", "target"] {
                        @let rt = Rating::of_record(&rec.data, stage);
                        tr { th scope="row" { (stage) } td { (rt.map_or(0, |x| x.likelihood)) } td { (rt.map_or(0, |x| x.consequence)) } td { (rating_tag(rt)) } }
                    } }
                } }
                h2 { "Watched measures, live" }
                @if watches.is_empty() { p { "This risk watches no measures. " a href="/gov/watch/new" { "Add a watched measure" } } }
                ul { @for w in &watches {
                    @let sig = watch_signal(r, w);
                    li { @if sig.turned { (layout::tag("Turned", "red")) " " } @else { (layout::tag("Quiet", "green")) " " }
                         a href=(format!("/measure/{}/org/{}", w.text("measure"), w.text("org"))) { (watch_label(r, w)) } " — " (w.text("trigger")) ": " (sig.text) }
                } }
            }
        }
        "standard" => {
            let rag = standard_rag(r, rec);
            html! {
                h2 { "RAG, computed" }
                p { (rag_tag(rag.rag)) " " (rag.why) }
                p.hint { "The RAG comes from the measure's Making Data Count assurance against this target; it cannot be typed in. "
                    a href=(format!("/measure/{}/org/{}", rec.text("measure"), rec.text("org"))) { "See the SPC chart" } "." }
            }
        }
        "watch" => {
            let sig = watch_signal(r, rec);
            html! { h2 { "Signal now" } p { @if sig.turned { (layout::tag("Turned", "red")) } @else { (layout::tag("Quiet", "green")) } " " (sig.text) } }
        }
        _ => html! {},
    })
}

/// The assurance framework: for each aim, its principal risks with controls, gaps, sources of
/// assurance by line of defence, and performance standards with RAG computed from the measures.
pub async fn assurance(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let session = or_reply!(crate::gov::require_viewer(&s, &headers, "/gov/assurance").await);
    let g = s.governance.as_ref().expect("checked by require");
    let load = async {
        Ok::<_, StoreError>((
            g.store.records("aim", false).await?,
            g.store.records("risk", false).await?,
            g.store.records("assurance-source", false).await?,
            g.store.records("standard", false).await?,
            Names::of_kinds(g.store.as_ref(), &["aim", "risk"], g.settings.today()).await?,
        ))
    };
    let (aims, risks, sources, standards, names) = match load.await {
        Ok(x) => x,
        Err(e) => return crate::gov::store_error(e),
    };
    let r = &s.release;
    let rk = kinds::kind("risk").expect("risk");
    let sk = kinds::kind("standard").expect("standard");
    let unlinked: Vec<&Record> =
        standards.iter().filter(|x| x.int("aim").is_none_or(|a| !aims.iter().any(|y| y.id == a))).collect();
    let standards_table = |list: Vec<&Record>, of: &str| {
        let label = format!("Performance standards: {of}");
        html! {
            @if list.is_empty() { p { "No performance standards." } } @else {
                div.table-scroll role="region" aria-label=(label) tabindex="0" { table.table {
                    caption.visually-hidden { (label) }
                    thead { tr { th scope="col" { "Standard" } th scope="col" { "Measure" } th scope="col" { "Organisation" } th scope="col" { "RAG (computed)" } } }
                    tbody { @for x in list {
                        @let rag = standard_rag(r, x);
                        tr { td { a href=(format!("/gov/standard/{}", x.id)) { (sk.reference(x.id)) } " " (name_of(sk, x)) }
                             td { (cell(r, &names, sk.field("measure").expect("field"), x)) }
                             td { (cell(r, &names, sk.field("org").expect("field"), x)) }
                             td { (rag_tag(rag.rag)) " " (rag.why) } }
                    } }
                } }
            }
        }
    };
    crate::gov::page_for(
        &session,
        "Assurance framework",
        &[("Assurance framework".into(), "/gov/assurance".into())],
        html! {
            h1 { "Assurance framework" }
            p.lede { "For each aim: the principal risks that threaten it, their key controls and gaps, the sources of assurance by line of defence, and the performance standards whose RAG is computed from the measures." }
            h2 { "Summary" }
            p { "Each aim's performance standards by computed RAG, and its highest current principal risk. An aim is as red as its reddest standard." }
            (layout::scroll("Aims by RAG", html! {
                table.table {
                    caption.visually-hidden { "Aims by RAG" }
                    thead { tr { th scope="col" { "Aim" } th scope="col" { "Overall" } th scope="col" .num { "Red" } th scope="col" .num { "Amber" } th scope="col" .num { "Green" } th scope="col" .num { "No data" } th scope="col" { "Highest principal risk" } } }
                    tbody { @for aim in &aims {
                        @let rags: Vec<Option<&str>> = standards.iter().filter(|x| x.int("aim") == Some(aim.id)).map(|x| standard_rag(r, x).rag).collect();
                        @let count = |c: Option<&str>| rags.iter().filter(|x| **x == c).count();
                        @let overall = ["Red", "Amber", "Green"].into_iter().find(|c| rags.contains(&Some(*c)));
                        @let top = risks.iter().filter(|x| x.int("aim") == Some(aim.id)).filter_map(|x| Rating::of_record(&x.data, "current").map(|rt| (x, rt))).max_by_key(|(_, rt)| rt.score());
                        tr {
                            td { a href=(format!("#aim-{}", aim.id)) { (aim.text("title")) } }
                            td { @if rags.is_empty() { "No standards" } @else { (rag_tag(overall)) } }
                            td.num { (count(Some("Red"))) } td.num { (count(Some("Amber"))) } td.num { (count(Some("Green"))) } td.num { (count(None)) }
                            td { @match top { Some((x, rt)) => { a href=(format!("/gov/risk/{}", x.id)) { (rk.reference(x.id)) } " " (rating_tag(Some(rt))) }, None => "None recorded" } }
                        }
                    } }
                }
            }))
            @for aim in &aims {
                section.aim id=(format!("aim-{}", aim.id)) {
                    h2 { a href=(format!("/gov/aim/{}", aim.id)) { (aim.text("title")) } }
                    p.hint { "Owner: " (aim.text("owner")) }
                    @let principal: Vec<&Record> = risks.iter().filter(|x| x.int("aim") == Some(aim.id)).collect();
                    h3 { "Principal risks" }
                    @if principal.is_empty() { p { "No principal risks recorded against this aim." } }
                    @for risk in principal {
                        div.panel {
                            h4 { a href=(format!("/gov/risk/{}", risk.id)) { (rk.reference(risk.id)) " " (risk.text("title")) } " " (rating_tag(Rating::of_record(&risk.data, "current"))) }
                            (layout::summary(&[
                                ("Owner", html! { (risk.text("owner")) }),
                                ("Key controls", html! { (risk.text("controls")) }),
                                ("Gaps in control", html! { (risk.text("gaps_in_control")) }),
                                ("Sources of assurance", html! {
                                    @let own: Vec<&Record> = sources.iter().filter(|x| x.int("risk") == Some(risk.id)).collect();
                                    @if own.is_empty() { "None recorded" }
                                    ul.plain { @for x in own { li { strong { (x.text("line")) } ": " (x.text("source")) " — " (x.text("rating")) } } }
                                }),
                                ("Gaps in assurance", html! { (risk.text("gaps_in_assurance")) }),
                            ]))
                        }
                    }
                    h3 { "Performance standards" }
                    (standards_table(standards.iter().filter(|x| x.int("aim") == Some(aim.id)).collect(), aim.text("title")))
                }
            }
            @if !unlinked.is_empty() { h2 { "Standards not tied to an aim" } (standards_table(unlinked, "not tied to an aim")) }
        },
    )
}

/// A plan on a page: aims, the workstreams of this plan under each, their milestones and
/// measures, on one printable page.
pub async fn plans(State(s): State<Shared>, headers: HeaderMap, p: crate::Params) -> Response {
    let session = or_reply!(crate::gov::require_viewer(&s, &headers, "/gov/plans").await);
    let plan = p.get("plan").unwrap_or(kinds::PLANS[0]);
    let Some(plan) = kinds::PLANS.iter().find(|x| x.eq_ignore_ascii_case(plan)) else {
        return WebError::BadParameter("plan".into(), format!("must be one of {}", kinds::PLANS.join(", ")))
            .into_response();
    };
    let g = s.governance.as_ref().expect("checked by require");
    let load = async {
        Ok::<_, StoreError>((
            g.store.records("aim", false).await?,
            g.store.records("workstream", false).await?,
            g.store.records("milestone", false).await?,
            g.store.records("opportunity", false).await?,
        ))
    };
    let (aims, workstreams, milestones, opportunities) = match load.await {
        Ok(x) => x,
        Err(e) => return crate::gov::store_error(e),
    };
    let today = g.settings.today();
    let names = Names::empty(today);
    let wk = kinds::kind("workstream").expect("workstream");
    let ok = kinds::kind("opportunity").expect("opportunity");
    let ours: Vec<&Record> = workstreams.iter().filter(|w| w.text("plan") == *plan).collect();
    let r = &s.release;
    crate::gov::page_for(
        &session,
        &format!("Plan on a page: {plan}"),
        &[("Plans on a page".into(), "/gov/plans".into())],
        html! {
            h1 { "Plan on a page: " (plan.to_lowercase()) }
            p.hint { "Each workstream's RAG is set by its owner on the workstream record (performance standards, by contrast, compute theirs from the measures); milestones past their due date and not complete are marked Overdue." }
            nav.tabs aria-label="Plans" { ul { @for x in kinds::PLANS { li { a href=(format!("/gov/plans?plan={}", crate::gov::urlencode(x))) aria-current=[(x == plan).then_some("page")] { (x) } } } } }
            div.plan {
                @for aim in aims.iter().filter(|a| ours.iter().any(|w| w.int("aim") == Some(a.id))) {
                    section.plan-aim {
                        h2 { (aim.text("title")) }
                        @for w in ours.iter().filter(|w| w.int("aim") == Some(aim.id)) {
                            div.plan-workstream {
                                h3 { a href=(format!("/gov/workstream/{}", w.id)) { (w.text("title")) } " " (rag_tag(Some(w.text("rag")).filter(|x| !x.is_empty()))) }
                                p.hint { "Owner: " (w.text("owner")) @if !w.text("start").is_empty() { " · " (w.text("start")) " to " (w.text("end")) } }
                                @if !w.text("measures").is_empty() { p { "Measures: " (cell(r, &names, wk.field("measures").expect("field"), w)) } }
                                ul.plain { @for m in milestones.iter().filter(|m| m.int("workstream") == Some(w.id)) {
                                    li { (crate::gov::date_cell(m, "due", today)) " · " a href=(format!("/gov/milestone/{}", m.id)) { (m.text("title")) } " · " (m.text("status")) }
                                } }
                            }
                        }
                    }
                }
                @if ours.is_empty() { p { "No workstreams are on this plan yet. " a href="/gov/workstream/new" { "Add one" } } }
            }
            @if *plan == "National priorities" {
                h2 { "National medicines optimisation opportunities chosen" }
                p { (opportunities.len()) " of 16 chosen" @if opportunities.len() < 5 { " — NHS England asks each system to choose at least five" } "." }
                div.table-scroll role="region" aria-label="Opportunities chosen" tabindex="0" { table.table {
                    caption.visually-hidden { "Opportunities chosen" }
                    thead { tr { th scope="col" { "No." } th scope="col" { "Opportunity" } th scope="col" { "Lead" } th scope="col" { "Measures" } } }
                    tbody { @for o in &opportunities { tr {
                        td { (o.int("number").unwrap_or(0)) } td { a href=(format!("/gov/opportunity/{}", o.id)) { (o.text("title")) } } td { (o.text("lead")) }
                        td { (cell(r, &names, ok.field("measures").expect("field"), o)) }
                    } } }
                } }
            }
        },
    )
}

/// The two organograms: the wider system (organisations by where they sit) and the pharmacy and
/// medicines leadership (people by line management, accountability dashed, and the committee
/// structure).
pub async fn organogram(State(s): State<Shared>, headers: HeaderMap, p: crate::Params) -> Response {
    use crate::organogram::{Node, list, svg};
    let session = or_reply!(crate::gov::require_viewer(&s, &headers, "/gov/organogram").await);
    let view = p.get("view").unwrap_or("system");
    if view != "system" && view != "leadership" {
        return WebError::BadParameter("view".into(), "must be system or leadership".into()).into_response();
    }
    let g = s.governance.as_ref().expect("checked by require");
    let load = async {
        Ok::<_, StoreError>((
            g.store.records("system-org", false).await?,
            g.store.records("person", false).await?,
            g.store.records("committee", false).await?,
        ))
    };
    let (orgs, people, committees) = match load.await {
        Ok(x) => x,
        Err(e) => return crate::gov::store_error(e),
    };
    let org_name = |id: Option<i64>| {
        id.and_then(|i| orgs.iter().find(|o| o.id == i)).map(|o| o.text("name").to_string()).unwrap_or_default()
    };
    let tabs = html! {
        nav.tabs aria-label="Organograms" { ul {
            li { a href="/gov/organogram?view=system" aria-current=[(view == "system").then_some("page")] { "The wider system" } }
            li { a href="/gov/organogram?view=leadership" aria-current=[(view == "leadership").then_some("page")] { "Pharmacy and medicines leadership" } }
        } }
    };
    // A chart wider than the page's column scrolls inside its own box, and says so.
    let chart = |drawn: crate::organogram::Drawn| {
        html! {
            @if drawn.too_deep > 0 {
                div.warning-callout role="status" { p {
                    (drawn.too_deep) " more sit more than " (crate::organogram::MAX_DEPTH) " levels down and are not drawn; they are listed below. Such a long chain is usually a mistake: edit the records to link them higher up."
                } }
            }
            @if drawn.width > 1068.0 { p.hint { "The chart is wider than the page: scroll sideways inside it, or read the list below. It prints whole on landscape A3." } }
            div.scroll.organogram-box tabindex="0" role="region" aria-label="Organogram (scrolls sideways)" { (maud::PreEscaped(drawn.svg)) }
        }
    };
    let body = if view == "system" {
        let nodes: Vec<Node> = orgs
            .iter()
            .map(|o| Node {
                id: o.id,
                parent: o.int("parent"),
                title: o.text("name").into(),
                subtitle: o.text("org_type").into(),
                href: format!("/gov/system-org/{}", o.id),
            })
            .collect();
        html! {
            h2 { "Organisations of the system" }
            p { (nodes.len()) " organisations; each sits under the organisation it is part of. Select a box for how pharmacy works with it." }
            (chart(svg("system", "Organogram of the integrated care system", &nodes, &[])))
            details { summary { "The same as a list" } (list(&nodes)) }
        }
    } else {
        let nodes: Vec<Node> = people
            .iter()
            .map(|x| {
                let org = org_name(x.int("organisation"));
                let subtitle = if org.is_empty() {
                    x.text("role_title").to_string()
                } else {
                    format!("{}, {org}", x.text("role_title"))
                };
                Node {
                    id: x.id,
                    parent: x.int("reports_to"),
                    title: x.text("name").into(),
                    subtitle,
                    href: format!("/gov/person/{}", x.id),
                }
            })
            .collect();
        let dashed: Vec<(i64, i64)> =
            people.iter().filter_map(|x| x.int("accountable_to").map(|a| (x.id, a))).collect();
        let groups: Vec<Node> = committees
            .iter()
            .map(|c| {
                let chair = c
                    .int("chair")
                    .and_then(|i| people.iter().find(|x| x.id == i))
                    .map(|x| format!("chair {}", x.text("name")));
                Node {
                    id: c.id,
                    parent: c.int("reports_to"),
                    title: c.text("name").into(),
                    subtitle: chair.unwrap_or_else(|| c.text("group_type").into()),
                    href: format!("/gov/committee/{}", c.id),
                }
            })
            .collect();
        html! {
            h2 { "Leadership and lines of accountability" }
            p { "Solid lines are line management (reports to); dashed red lines are professional or programme accountability where it differs." }
            (chart(svg("leaders", "Pharmacy and medicines leadership", &nodes, &dashed)))
            details { summary { "The same as a list" } (list(&nodes))
                @if !dashed.is_empty() { p { "Accountable to:" } ul { @for (from, to) in &dashed {
                    li { (people.iter().find(|x| x.id == *from).map_or("", |x| x.text("name"))) " → " (people.iter().find(|x| x.id == *to).map_or("", |x| x.text("name"))) }
                } } } }
            h2 { "Committees and groups" }
            (chart(svg("groups", "Committee structure", &groups, &[])))
            details { summary { "The same as a list" } (list(&groups)) }
        }
    };
    crate::gov::page_for(
        &session,
        "Organograms",
        &[("Organograms".into(), "/gov/organogram".into())],
        html! {
            h1 { "Organograms" }
            (tabs)
            (body)
            p.hint { "Laid out from the records: change a person's \"reports to\" or an organisation's \"part of\" and the chart follows. Prints on landscape A3." }
        },
    )
}

/// One quarter's workforce totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuarterTotals {
    /// Funded establishment, WTE.
    pub establishment: f64,
    /// Staff in post, WTE.
    pub in_post: f64,
    /// Headcount.
    pub headcount: i64,
    /// Leavers in the quarter, WTE.
    pub leavers: f64,
}

impl QuarterTotals {
    /// Establishment − in post (never below zero).
    pub fn vacancies(&self) -> f64 {
        (self.establishment - self.in_post).max(0.0)
    }
    /// Vacancies ÷ establishment, %.
    pub fn vacancy_rate(&self) -> Option<f64> {
        (self.establishment > 0.0).then(|| 100.0 * self.vacancies() / self.establishment)
    }
    /// Leavers ÷ staff in post, % (quarterly turnover).
    pub fn turnover(&self) -> Option<f64> {
        (self.in_post > 0.0).then(|| 100.0 * self.leavers / self.in_post)
    }
}

/// Totals per quarter (sorted) over the returns that pass `keep`.
pub fn workforce_totals(returns: &[Record], keep: &dyn Fn(&Record) -> bool) -> BTreeMap<String, QuarterTotals> {
    let mut out: BTreeMap<String, QuarterTotals> = BTreeMap::new();
    for r in returns.iter().filter(|r| keep(r)) {
        let t = out.entry(r.text("quarter").to_string()).or_default();
        t.establishment += r.number("establishment_wte").unwrap_or(0.0);
        t.in_post += r.number("in_post_wte").unwrap_or(0.0);
        t.headcount += r.int("headcount").unwrap_or(0);
        t.leavers += r.number("leavers_wte").unwrap_or(0.0);
    }
    out
}

/// A least-squares straight line through `values` (x = 0, 1, …), continued `ahead` steps.
pub fn projection(values: &[f64], ahead: usize) -> Vec<f64> {
    let n = values.len() as f64;
    if values.len() < 2 {
        return vec![values.first().copied().unwrap_or(0.0); ahead];
    }
    let mx = (n - 1.0) / 2.0;
    let my = values.iter().sum::<f64>() / n;
    let sxy: f64 = values.iter().enumerate().map(|(i, v)| (i as f64 - mx) * (v - my)).sum();
    let sxx: f64 = (0..values.len()).map(|i| (i as f64 - mx).powi(2)).sum();
    let slope = sxy / sxx;
    (0..ahead).map(|k| (my + slope * ((values.len() + k) as f64 - mx)).max(0.0)).collect()
}

fn next_quarter(q: &str) -> String {
    match kinds::parse_quarter(q) {
        Some((y, 4)) => format!("{}-Q1", y + 1),
        Some((y, n)) => format!("{y}-Q{}", n + 1),
        None => q.to_string(),
    }
}

/// The workforce plan: establishment, staff in post, vacancies and turnover per quarter, by sector
/// for the latest quarter, the trend with a two-year projection, and the training pipeline.
pub async fn workforce(State(s): State<Shared>, headers: HeaderMap, p: crate::Params) -> Response {
    let session = or_reply!(crate::gov::require_viewer(&s, &headers, "/gov/workforce").await);
    let sector = p.get("sector");
    if let Some(x) = sector
        && !kinds::SECTORS.contains(&x)
    {
        return WebError::BadParameter("sector".into(), format!("must be one of {}", kinds::SECTORS.join(", ")))
            .into_response();
    }
    let g = s.governance.as_ref().expect("checked by require");
    let load = async {
        Ok::<_, StoreError>((
            g.store.records("workforce-return", false).await?,
            g.store.records("training", false).await?,
        ))
    };
    let (returns, training) = match load.await {
        Ok(x) => x,
        Err(e) => return crate::gov::store_error(e),
    };
    let totals = workforce_totals(&returns, &|r: &Record| sector.is_none_or(|x| r.text("sector") == x));
    let quarters: Vec<String> = totals.keys().cloned().collect();
    let in_post: Vec<f64> = totals.values().map(|t| t.in_post).collect();
    let establishment: Vec<f64> = totals.values().map(|t| t.establishment).collect();
    const AHEAD: usize = 8;
    let mut labels = quarters.clone();
    let mut q = quarters.last().cloned().unwrap_or_default();
    for _ in 0..AHEAD {
        q = next_quarter(&q);
        labels.push(q.clone());
    }
    let projected = projection(&in_post, AHEAD);
    let projected_establishment = projection(&establishment, AHEAD);
    let pad = |v: Vec<f64>, before: usize, after: usize| -> Vec<Option<f64>> {
        std::iter::repeat_n(None, before)
            .chain(v.into_iter().map(Some))
            .chain(std::iter::repeat_n(None, after))
            .collect()
    };
    // The projections start from the last recorded quarter, so the dashed lines join the solid.
    let joined = |from: &[f64], ahead: &[f64]| {
        let mut line = pad(ahead.to_vec(), quarters.len(), 0);
        if let Some(last) = from.last() {
            line[quarters.len() - 1] = Some(*last);
        }
        line
    };
    let lines = [
        crate::charts::Line {
            name: "Funded establishment",
            colour: "#768692",
            dashed: false,
            values: pad(establishment.clone(), 0, AHEAD),
        },
        crate::charts::Line {
            name: "Establishment, projected",
            colour: "#768692",
            dashed: true,
            values: joined(&establishment, &projected_establishment),
        },
        crate::charts::Line {
            name: "Staff in post",
            colour: "#005eb8",
            dashed: false,
            values: pad(in_post.clone(), 0, AHEAD),
        },
        crate::charts::Line {
            name: "Staff in post, projected",
            colour: "#005eb8",
            dashed: true,
            values: joined(&in_post, &projected),
        },
    ];
    let chart = crate::charts::line_chart(
        "workforce",
        "Staff in post and funded establishment (WTE) by quarter, each projected two years ahead",
        &labels,
        &lines,
        "WTE",
    );
    let legend = crate::charts::line_legend(&lines);
    let today = g.settings.today();
    let used = returns.iter().filter(|r| sector.is_none_or(|x| r.text("sector") == x)).count();
    let stale = quarters.last().is_some_and(|q| ipmo_governance::due::returns_stale(q, today));
    let latest = quarters.last().cloned();
    let by_sector: BTreeMap<String, QuarterTotals> = match &latest {
        Some(lq) => {
            let mut m = BTreeMap::new();
            for x in kinds::SECTORS {
                let t = workforce_totals(&returns, &|r: &Record| r.text("sector") == *x && r.text("quarter") == lq);
                if let Some(t) = t.into_values().next() {
                    m.insert(x.to_string(), t);
                }
            }
            m
        }
        None => BTreeMap::new(),
    };
    let pct = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}%"));
    let wte = |v: f64| crate::format::number(v, 1);
    let mut pipeline: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
    for t in &training {
        let e = pipeline.entry((t.text("quarter").to_string(), t.text("programme").to_string())).or_default();
        e.0 += t.int("places").unwrap_or(0);
        e.1 += t.int("starters").unwrap_or(0);
        e.2 += t.int("completions").unwrap_or(0);
    }
    let title = match sector {
        Some(x) => format!("Workforce: {x}"),
        None => "Workforce".to_string(),
    };
    crate::gov::page_for(
        &session,
        &title,
        &[("Workforce".into(), "/gov/workforce".into())],
        html! {
            h1 { (title) }
            p.lede { "Establishment and staff in post from the quarterly workforce returns, vacancies (establishment − in post), vacancy rate (vacancies ÷ establishment) and quarterly turnover (leavers ÷ staff in post), with the training pipeline. "
                a href="/gov/workforce-return" { "Workforce returns" } " · " a href="/gov/training" { "Training pipeline returns" } }
            form.inline method="get" action="/gov/workforce" {
                div.field {
                    label for="sector" { "Sector" }
                    select #sector name="sector" {
                        option value="" { "All sectors" }
                        @for x in kinds::SECTORS { option value=(x) selected[sector == Some(*x)] { (x) } }
                    }
                }
                button.button type="submit" { "Show" }
            }
            @if quarters.is_empty() { p { "No workforce returns yet. " a href="/gov/workforce-return/new" { "Add one" } } } @else {
                @if stale {
                    div.warning-callout { p { strong { "Stale: " } "the newest return is for " (quarters.last().cloned().unwrap_or_default()) ", more than a quarter ago; the figures and the projection start from then. "
                        a href="/gov/workforce-return/new" { "Add the latest returns" } } }
                }
                (maud::PreEscaped(chart))
                (maud::PreEscaped(legend))
                p.hint { "From " (crate::format::plural(used, "workforce return", "workforce returns")) " for " (quarters.first().cloned().unwrap_or_default()) " to " (quarters.last().cloned().unwrap_or_default())
                    ". The dashed lines continue the least-squares trends of staff in post and of the funded establishment for two years: "
                    (wte(projected.last().copied().unwrap_or(0.0))) " WTE in post against an establishment of " (wte(projected_establishment.last().copied().unwrap_or(0.0))) " by " (labels.last().cloned().unwrap_or_default()) ". A projection, not a plan." }

                div.table-scroll role="region" aria-label="Totals by quarter" tabindex="0" { table.table {
                    caption { "Totals by quarter" }
                    thead { tr { th scope="col" { "Quarter" } th scope="col" .num { "Establishment (WTE)" } th scope="col" .num { "In post (WTE)" } th scope="col" .num { "Headcount" } th scope="col" .num { "Vacancies (WTE)" } th scope="col" .num { "Vacancy rate" } th scope="col" .num { "Turnover" } } }
                    tbody { @for (q, t) in &totals { tr {
                        td { (q) } td.num { (wte(t.establishment)) } td.num { (wte(t.in_post)) } td.num { (t.headcount) } td.num { (wte(t.vacancies())) } td.num { (pct(t.vacancy_rate())) } td.num { (pct(t.turnover())) }
                    } } }
                } }
                @if sector.is_none() && !by_sector.is_empty() {
                    div.table-scroll role="region" aria-label="By sector" tabindex="0" { table.table {
                        caption { "By sector, " (latest.clone().unwrap_or_default()) }
                        thead { tr { th scope="col" { "Sector" } th scope="col" .num { "Establishment (WTE)" } th scope="col" .num { "In post (WTE)" } th scope="col" .num { "Vacancy rate" } th scope="col" .num { "Turnover" } } }
                        tbody { @for (x, t) in &by_sector { tr {
                            td { a href=(format!("/gov/workforce?sector={}", crate::gov::urlencode(x))) { (x) } } td.num { (wte(t.establishment)) } td.num { (wte(t.in_post)) } td.num { (pct(t.vacancy_rate())) } td.num { (pct(t.turnover())) }
                        } } }
                    } }
                }
                details {
                    summary { "The projection as a table" }
                    (layout::scroll("Projection", html! {
                        table.table {
                            caption.visually-hidden { "Projected establishment, staff in post and vacancies" }
                            thead { tr { th scope="col" { "Quarter" } th scope="col" .num { "Establishment (WTE)" } th scope="col" .num { "In post (WTE)" } th scope="col" .num { "Vacancies (WTE)" } } }
                            tbody { @for (i, (e, p)) in projected_establishment.iter().zip(&projected).enumerate() {
                                tr { td { (labels.get(quarters.len() + i).cloned().unwrap_or_default()) } td.num { (wte(*e)) } td.num { (wte(*p)) }
                                     td.num { (wte((e - p).max(0.0))) @if p > e { " " span.hint { "(in post would pass the establishment)" } } } }
                            } }
                        }
                    }))
                }
            }
            h2 { "Training pipeline" }
            @if pipeline.is_empty() { p { "No training returns yet." } } @else {
                div.table-scroll role="region" aria-label="Training pipeline by quarter and programme" tabindex="0" { table.table {
                    caption.visually-hidden { "Training pipeline by quarter and programme" }
                    thead { tr { th scope="col" { "Quarter" } th scope="col" { "Programme" } th scope="col" .num { "Places" } th scope="col" .num { "Starters" } th scope="col" .num { "Completions" } } }
                    tbody { @for ((q, prog), (places, starters, done)) in &pipeline { tr { td { (q) } td { (prog) } td.num { (places) } td.num { (starters) } td.num { (done) } } } }
                } }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projections_continue_the_least_squares_line() {
        let p = projection(&[10.0, 12.0, 14.0, 16.0], 3);
        assert_eq!(p, vec![18.0, 20.0, 22.0]);
        assert_eq!(projection(&[5.0], 2), vec![5.0, 5.0]);
        assert_eq!(projection(&[4.0, 2.0, 0.0], 2), vec![0.0, 0.0], "never below zero");
        assert_eq!(next_quarter("2025-Q4"), "2026-Q1");
        assert_eq!(next_quarter("2025-Q2"), "2025-Q3");
    }

    #[test]
    fn vacancy_and_turnover_rates() {
        let t = QuarterTotals { establishment: 120.0, in_post: 102.0, headcount: 110, leavers: 5.1 };
        assert!((t.vacancies() - 18.0).abs() < 1e-9);
        assert!((t.vacancy_rate().unwrap() - 15.0).abs() < 1e-9);
        assert!((t.turnover().unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(QuarterTotals::default().vacancy_rate(), None);
        let over = QuarterTotals { establishment: 10.0, in_post: 12.0, ..Default::default() };
        assert_eq!(over.vacancies(), 0.0);
    }
}
