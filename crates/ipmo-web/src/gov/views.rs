//! Governance views that join records to the prescribing data: the risk register's heat map and
//! live measure signals, the workspace's status, the assurance framework with computed RAG, the
//! plans on a page, the stakeholder grid, and the panel a record's page shows for its kind. The
//! verdicts themselves (signals, RAG) come from `ipmo_programme`, so the board report agrees.

use super::Governance;
use super::access::{Access, current_records, gov_page, require, store_error};
use super::cells::{Names, cell, date_cell, name_of};
use super::value::rag_tag;
use crate::layout;
use crate::{AppState, Shared, WebError};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ipmo_governance::Role;
use ipmo_governance::kinds::{self, Kind};
use ipmo_governance::risk::{Band, CONSEQUENCE, LIKELIHOOD, Rating};
use ipmo_governance::store::{Record, StoreError};
use ipmo_programme::{Signal, aim_standing, standard_rag, watch_signal};
use ipmo_release::Release;
use maud::{Markup, html};

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

/// The risk register's extras: the heat map of current scores, and each risk's scores with the
/// live signals of the measures it watches, risks whose watched measure has turned first.
pub(super) async fn risk_register(s: &Shared, g: &Governance, risks: &[Record]) -> Result<Markup, StoreError> {
    let watches = g.store.records("watch", false).await?;
    let r = &s.release;
    let live: Vec<&Record> = risks.iter().filter(|x| !x.archived).collect();
    let grid = ipmo_governance::risk::heat_map(live.iter().map(|x| &x.data));
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
                        td { (date_cell(risk, "review_date", today)) }
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
pub(super) async fn status(s: &Shared, g: &Governance) -> Result<Markup, StoreError> {
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
    let schemes = g.store.records("scheme", false).await?;
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
    let off_plan: Vec<String> =
        schemes.iter().filter(|x| s.scheme_rag(x).0 == Some("Red")).map(|x| name("scheme", x)).collect();
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
        item("savings schemes off plan (red)", "/gov/scheme", off_plan),
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
pub(super) fn stakeholder_grid(stakeholders: &[Record]) -> Markup {
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
pub(super) async fn record_panel(s: &Shared, g: &Governance, kind: &Kind, rec: &Record) -> Result<Markup, StoreError> {
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
        "scheme" => super::value::scheme_panel(s, rec),
        "horizon" => super::value::horizon_panel(s, rec),
        "watch" => {
            let sig = watch_signal(r, rec);
            html! { h2 { "Signal now" } p { @if sig.turned { (layout::tag("Turned", "red")) } @else { (layout::tag("Quiet", "green")) } " " (sig.text) } }
        }
        _ => html! {},
    })
}

/// The assurance framework: for each aim, its principal risks with controls, gaps, sources of
/// assurance by line of defence, and performance standards with RAG computed from the measures.
pub(super) async fn assurance(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let Access { gov: g, session } = or_reply!(require(&s, &headers, "/gov/assurance", Role::Viewer).await);
    let load = async {
        Ok::<_, StoreError>(Framework {
            aims: g.store.records("aim", false).await?,
            risks: g.store.records("risk", false).await?,
            sources: g.store.records("assurance-source", false).await?,
            standards: g.store.records("standard", false).await?,
            schemes: g.store.records("scheme", false).await?,
            names: Names::of_kinds(g.store.as_ref(), &["aim", "risk"], g.settings.today()).await?,
        })
    };
    let f = or_reply!(load.await.map_err(store_error));
    let r = &s.release;
    let unlinked: Vec<&Record> =
        f.standards.iter().filter(|x| x.int("aim").is_none_or(|a| !f.aims.iter().any(|y| y.id == a))).collect();
    gov_page(
        &session,
        "Assurance framework",
        &[("Assurance framework".into(), "/gov/assurance".into())],
        html! {
            h1 { "Assurance framework" }
            p.lede { "For each aim: the principal risks that threaten it, their key controls and gaps, the sources of assurance by line of defence, and the performance standards and savings schemes whose RAG is computed from the data." }
            (framework_summary(&s, &f))
            (framework_by_aim(&s, &f))
            @if !unlinked.is_empty() { h2 { "Standards not tied to an aim" } (standards_table(r, &f.names, unlinked, "not tied to an aim")) }
        },
    )
}

/// The records the assurance framework is drawn from.
struct Framework {
    aims: Vec<Record>,
    risks: Vec<Record>,
    sources: Vec<Record>,
    standards: Vec<Record>,
    schemes: Vec<Record>,
    names: Names,
}

/// Each aim's standards by computed RAG, and its highest current principal risk.
fn framework_summary(s: &AppState, f: &Framework) -> Markup {
    let r = &s.release;
    let (aims, risks, standards) = (&f.aims, &f.risks, &f.standards);
    let rk = kinds::kind("risk").expect("risk");
    html! {
    h2 { "Summary" }
    p { "Each aim's performance standards and savings schemes by computed RAG, and its highest current principal risk. An aim is as red as its reddest standard or scheme." }
    (layout::scroll("Aims by RAG", html! {
        table.table {
            caption.visually-hidden { "Aims by RAG" }
            thead { tr { th scope="col" { "Aim" } th scope="col" { "Overall" } th scope="col" .num { "Red" } th scope="col" .num { "Amber" } th scope="col" .num { "Green" } th scope="col" .num { "No data" } th scope="col" { "Highest principal risk" } } }
            tbody { @for aim in aims {
                @let a = aim_standing(r, aim, standards, &f.schemes, |x| s.scheme_rag(x).0, risks);
                tr {
                    td { a href=(format!("#aim-{}", aim.id)) { (aim.text("title")) } }
                    td { @if a.rags.is_empty() { "No standards or schemes" } @else { (rag_tag(a.overall())) } }
                    td.num { (a.count(Some("Red"))) } td.num { (a.count(Some("Amber"))) } td.num { (a.count(Some("Green"))) } td.num { (a.count(None)) }
                    td { @match a.top_risk { Some((x, rt)) => { a href=(format!("/gov/risk/{}", x.id)) { (rk.reference(x.id)) } " " (rating_tag(Some(rt))) }, None => "None recorded" } }
                }
            } }
        }
    }))
    }
}

/// For each aim: its principal risks with controls, gaps and sources of assurance, and its
/// performance standards.
fn framework_by_aim(s: &AppState, f: &Framework) -> Markup {
    let r = &s.release;
    let (aims, risks, sources, standards) = (&f.aims, &f.risks, &f.sources, &f.standards);
    let rk = kinds::kind("risk").expect("risk");
    html! {
        @for aim in aims {
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
                (standards_table(r, &f.names, standards.iter().filter(|x| x.int("aim") == Some(aim.id)).collect(), aim.text("title")))
                @let schemes: Vec<&Record> = f.schemes.iter().filter(|x| x.int("aim") == Some(aim.id)).collect();
                @if !schemes.is_empty() {
                    h3 { "Savings schemes" }
                    (schemes_table(s, schemes, aim.text("title")))
                }
            }
        }
    }
}

/// Savings schemes with their RAG computed from the prescribing, and why.
fn schemes_table(s: &AppState, list: Vec<&Record>, of: &str) -> Markup {
    let sk = kinds::kind("scheme").expect("scheme");
    let label = format!("Savings schemes: {of}");
    html! {
        div.table-scroll role="region" aria-label=(label) tabindex="0" { table.table {
            caption.visually-hidden { (label) }
            thead { tr { th scope="col" { "Scheme" } th scope="col" { "RAG (computed)" } } }
            tbody { @for x in list {
                @let (rag, why) = s.scheme_rag(x);
                tr { td { a href=(format!("/gov/scheme/{}", x.id)) { (sk.reference(x.id)) } " " (name_of(sk, x)) } td { (rag_tag(rag)) " " (why) } }
            } }
        } }
    }
}

/// Performance standards with their computed RAG and why.
fn standards_table(r: &Release, names: &Names, list: Vec<&Record>, of: &str) -> Markup {
    let sk = kinds::kind("standard").expect("standard");
    let label = format!("Performance standards: {of}");
    html! {
        @if list.is_empty() { p { "No performance standards." } } @else {
            div.table-scroll role="region" aria-label=(label) tabindex="0" { table.table {
                caption.visually-hidden { (label) }
                thead { tr { th scope="col" { "Standard" } th scope="col" { "Measure" } th scope="col" { "Organisation" } th scope="col" { "RAG (computed)" } } }
                tbody { @for x in list {
                    @let rag = standard_rag(r, x);
                    tr { td { a href=(format!("/gov/standard/{}", x.id)) { (sk.reference(x.id)) } " " (name_of(sk, x)) }
                         td { (cell(r, names, sk.field("measure").expect("field"), x)) }
                         td { (cell(r, names, sk.field("org").expect("field"), x)) }
                         td { (rag_tag(rag.rag)) " " (rag.why) } }
                } }
            } }
        }
    }
}

/// A plan on a page: aims, the workstreams of this plan under each, their milestones and
/// measures, on one printable page.
pub(super) async fn plans(State(s): State<Shared>, headers: HeaderMap, p: crate::params::Params) -> Response {
    let Access { gov: g, session } = or_reply!(require(&s, &headers, "/gov/plans", Role::Viewer).await);
    let plan = p.get("plan").unwrap_or(kinds::PLANS[0]);
    let Some(plan) = kinds::PLANS.iter().find(|x| x.eq_ignore_ascii_case(plan)) else {
        return WebError::BadParameter("plan".into(), format!("must be one of {}", kinds::PLANS.join(", ")))
            .into_response();
    };
    let [aims, workstreams, milestones, opportunities, schemes] =
        or_reply!(current_records(g, ["aim", "workstream", "milestone", "opportunity", "scheme"]).await);
    let sk = kinds::kind("scheme").expect("scheme");
    let today = g.settings.today();
    let names = Names::empty(today);
    let wk = kinds::kind("workstream").expect("workstream");
    let ok = kinds::kind("opportunity").expect("opportunity");
    let ours: Vec<&Record> = workstreams.iter().filter(|w| w.text("plan") == *plan).collect();
    let r = &s.release;
    gov_page(
        &session,
        &format!("Plan on a page: {plan}"),
        &[("Plans on a page".into(), "/gov/plans".into())],
        html! {
            h1 { "Plan on a page: " (plan.to_lowercase()) }
            p.hint { "Each workstream's RAG is set by its owner on the workstream record (performance standards, by contrast, compute theirs from the measures); milestones past their due date and not complete are marked Overdue." }
            nav.tabs aria-label="Plans" { ul { @for x in kinds::PLANS { li { a href=(format!("/gov/plans?plan={}", crate::params::urlencode(x))) aria-current=[(x == plan).then_some("page")] { (x) } } } } }
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
                                    li { (date_cell(m, "due", today)) " · " a href=(format!("/gov/milestone/{}", m.id)) { (m.text("title")) } " · " (m.text("status")) }
                                } }
                                @let delivered: Vec<&Record> = schemes.iter().filter(|x| x.int("workstream") == Some(w.id)).collect();
                                @if !delivered.is_empty() {
                                    p.hint { "Savings schemes, RAG computed from the prescribing:" }
                                    ul.plain { @for x in delivered {
                                        li { (rag_tag(s.scheme_rag(x).0)) " " a href=(format!("/gov/scheme/{}", x.id)) { (sk.reference(x.id)) " " (x.text("title")) } }
                                    } }
                                }
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
