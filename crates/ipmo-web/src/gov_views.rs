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
    let kind = kinds::kind("risk").expect("risk kind");
    Ok(html! {
        h2 { "Heat map of current risks" }
        p { "How many current risks sit in each cell of the 5×5 matrix (score = likelihood × consequence; bands 1–3 low, 4–6 moderate, 8–12 high, 15–25 extreme)." }
        table.heatmap {
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
        }
        h2 { "Risks and their watched measures" }
        @if flagged > 0 {
            div.warning-callout { p { strong { (flagged) } " risk(s) have a watched measure that has turned; they are listed first." } }
        }
        table.table {
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
                            li { a href=(format!("/measure/{}/org/{}", w.text("measure"), w.text("org"))) { (w.text("measure")) " · " (w.text("org")) } ": "
                                 @if sig.turned { strong { (sig.text) } } @else { (sig.text) } }
                        } } } }
                        td { (risk.text("review_date")) }
                    }
                }
            }
        }
    })
}

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
                ul.plain { @for x in list { li { a href=(format!("/gov/stakeholder/{}", x.id)) { (name_of(kind, x)) } " (power " (x.int("power").unwrap_or(0)) ", interest " (x.int("interest").unwrap_or(0)) ")" } } }
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
                table.table {
                    caption.visually-hidden { "Risk scores" }
                    thead { tr { th scope="col" { "" } th scope="col" { "Likelihood" } th scope="col" { "Consequence" } th scope="col" { "Score and band" } } }
                    tbody { @for stage in ["inherent", "current", "target"] {
                        @let rt = Rating::of_record(&rec.data, stage);
                        tr { th scope="row" { (stage) } td { (rt.map_or(0, |x| x.likelihood)) } td { (rt.map_or(0, |x| x.consequence)) } td { (rating_tag(rt)) } }
                    } }
                }
                h2 { "Watched measures, live" }
                @if watches.is_empty() { p { "This risk watches no measures. " a href="/gov/watch/new" { "Add a watched measure" } } }
                ul { @for w in &watches {
                    @let sig = watch_signal(r, w);
                    li { @if sig.turned { (layout::tag("Turned", "red")) " " } @else { (layout::tag("Quiet", "green")) " " }
                         a href=(format!("/measure/{}/org/{}", w.text("measure"), w.text("org"))) { (w.text("measure")) " for " (w.text("org")) } " — " (w.text("trigger")) ": " (sig.text) }
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
    let session = match crate::gov::require_viewer(&s, &headers, "/gov/assurance").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let g = s.governance.as_ref().expect("checked by require");
    let load = async {
        Ok::<_, StoreError>((
            g.store.records("aim", false).await?,
            g.store.records("risk", false).await?,
            g.store.records("assurance-source", false).await?,
            g.store.records("standard", false).await?,
            Names::of_kinds(g.store.as_ref(), &["aim", "risk"]).await?,
        ))
    };
    let (aims, risks, sources, standards, names) = match load.await {
        Ok(x) => x,
        Err(e) => return WebError::Internal(e.to_string()).into_response(),
    };
    let r = &s.release;
    let rk = kinds::kind("risk").expect("risk");
    let sk = kinds::kind("standard").expect("standard");
    let unlinked: Vec<&Record> =
        standards.iter().filter(|x| x.int("aim").is_none_or(|a| !aims.iter().any(|y| y.id == a))).collect();
    let standards_table = |list: Vec<&Record>| {
        html! {
            @if list.is_empty() { p { "No performance standards." } } @else {
                table.table {
                    caption.visually-hidden { "Performance standards" }
                    thead { tr { th scope="col" { "Standard" } th scope="col" { "Measure" } th scope="col" { "Organisation" } th scope="col" { "RAG (computed)" } } }
                    tbody { @for x in list {
                        @let rag = standard_rag(r, x);
                        tr { td { a href=(format!("/gov/standard/{}", x.id)) { (sk.reference(x.id)) } " " (name_of(sk, x)) }
                             td { (cell(r, &names, sk.field("measure").expect("field"), x)) }
                             td { (cell(r, &names, sk.field("org").expect("field"), x)) }
                             td { (rag_tag(rag.rag)) " " (rag.why) } }
                    } }
                }
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
            @for aim in &aims {
                section.aim {
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
                    (standards_table(standards.iter().filter(|x| x.int("aim") == Some(aim.id)).collect()))
                }
            }
            @if !unlinked.is_empty() { h2 { "Standards not tied to an aim" } (standards_table(unlinked)) }
        },
    )
}

/// A plan on a page: aims, the workstreams of this plan under each, their milestones and
/// measures, on one printable page.
pub async fn plans(State(s): State<Shared>, headers: HeaderMap, p: crate::Params) -> Response {
    let session = match crate::gov::require_viewer(&s, &headers, "/gov/plans").await {
        Ok(x) => x,
        Err(r) => return r,
    };
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
        Err(e) => return WebError::Internal(e.to_string()).into_response(),
    };
    let names = Names::empty();
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
            nav.tabs aria-label="Plans" { ul { @for x in kinds::PLANS { li { a href=(format!("/gov/plans?plan={}", x.replace(' ', "+"))) aria-current=[(x == plan).then_some("page")] { (x) } } } } }
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
                                    li { (m.text("due")) " · " a href=(format!("/gov/milestone/{}", m.id)) { (m.text("title")) } " · " (m.text("status")) }
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
                table.table {
                    caption.visually-hidden { "Opportunities chosen" }
                    thead { tr { th scope="col" { "No." } th scope="col" { "Opportunity" } th scope="col" { "Lead" } th scope="col" { "Measures" } } }
                    tbody { @for o in &opportunities { tr {
                        td { (o.int("number").unwrap_or(0)) } td { a href=(format!("/gov/opportunity/{}", o.id)) { (o.text("title")) } } td { (o.text("lead")) }
                        td { (cell(r, &names, ok.field("measures").expect("field"), o)) }
                    } } }
                }
            }
        },
    )
}
