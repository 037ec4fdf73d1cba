//! The two organograms: the wider system (organisations by where they sit) and the pharmacy and
//! medicines leadership (people by line management, accountability dashed, and the committee
//! structure), each drawn by `layout_tree` and given again as a nested list.

use super::access::{Access, current_records, gov_page, require};
use crate::{Shared, WebError};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ipmo_governance::Role;
use ipmo_governance::store::Record;
use layout_tree::{Node, list, svg};
use maud::{Markup, html};

/// The two organograms: the wider system (organisations by where they sit) and the pharmacy and
/// medicines leadership (people by line management, accountability dashed, and the committee
/// structure).
pub(super) async fn page(State(s): State<Shared>, headers: HeaderMap, p: crate::params::Params) -> Response {
    let Access { gov: g, session } = or_reply!(require(&s, &headers, "/gov/organogram", Role::Viewer).await);
    let view = p.get("view").unwrap_or("system");
    if view != "system" && view != "leadership" {
        return WebError::BadParameter("view".into(), "must be system or leadership".into()).into_response();
    }
    let [orgs, people, committees] = or_reply!(current_records(g, ["system-org", "person", "committee"]).await);
    let body = if view == "system" { system(&orgs) } else { leadership(&orgs, &people, &committees) };
    gov_page(
        &session,
        "Organograms",
        &[("Organograms".into(), "/gov/organogram".into())],
        html! {
            h1 { "Organograms" }
            (tabs(view))
            (body)
            p.hint { "Laid out from the records: change a person's \"reports to\" or an organisation's \"part of\" and the chart follows. Prints on landscape A3." }
        },
    )
}

/// The tabs between the two views.
fn tabs(view: &str) -> Markup {
    html! {
    nav.tabs aria-label="Organograms" { ul {
        li { a href="/gov/organogram?view=system" aria-current=[(view == "system").then_some("page")] { "The wider system" } }
        li { a href="/gov/organogram?view=leadership" aria-current=[(view == "leadership").then_some("page")] { "Pharmacy and medicines leadership" } }
    } }
    }
}

/// A drawn tree in a box that scrolls sideways when it is wider than the page, with a warning
/// for nodes too deep to draw.
fn chart(drawn: layout_tree::Drawn) -> Markup {
    html! {
        @if drawn.too_deep > 0 {
            div.warning-callout role="status" { p {
                (drawn.too_deep) " more sit more than " (layout_tree::MAX_DEPTH) " levels down and are not drawn; they are listed below. Such a long chain is usually a mistake: edit the records to link them higher up."
            } }
        }
        @if drawn.width > 1068.0 { p.hint { "The chart is wider than the page: scroll sideways inside it, or read the list below. It prints whole on landscape A3." } }
        div.scroll.organogram-box tabindex="0" role="region" aria-label="Organogram (scrolls sideways)" { (maud::PreEscaped(drawn.svg)) }
    }
}

/// The organisations of the system, each under the one it is part of.
fn system(orgs: &[Record]) -> Markup {
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
}

/// The people by line management with accountability dashed, and the committees.
fn leadership(orgs: &[Record], people: &[Record], committees: &[Record]) -> Markup {
    let org_name = |id: Option<i64>| {
        id.and_then(|i| orgs.iter().find(|o| o.id == i)).map(|o| o.text("name").to_string()).unwrap_or_default()
    };
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
    let dashed: Vec<(i64, i64)> = people.iter().filter_map(|x| x.int("accountable_to").map(|a| (x.id, a))).collect();
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
}

mod layout_tree;
