//! The generic record pages every kind shares: the workspace's home with its status, a kind's
//! list (paged, or whole as CSV; the risk register and stakeholder list carry their heat map and
//! grid), one record with its links, signals and history, archiving, and the audit trail.

use super::access::{Access, Submitted, gov_page, kind_or_404, load, require, store_error, submitted};
use super::cells::{Names, cell, name_of};
use crate::layout;
use crate::{Shared, WebError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ipmo_governance::Role;
use ipmo_governance::kinds::{self, Area, Kind};
use ipmo_governance::store::{GovernanceStore, Record, StoreError};
use maud::{Markup, html};

/// The workspace's views, listed on its home page.
const VIEWS: [(&str, &str); 12] = [
    ("/gov/report", "Board report: the month's figures and the programme as a board paper (PDF or HTML)"),
    ("/gov/risk", "Risk register and heat map"),
    ("/gov/assurance", "Assurance framework"),
    ("/gov/plans?plan=National+priorities", "Plan on a page: national priorities"),
    ("/gov/plans?plan=Workforce", "Plan on a page: workforce over two years"),
    ("/gov/stakeholder", "Stakeholder power and interest grid"),
    ("/gov/organogram?view=system", "Organogram of the wider system"),
    ("/gov/organogram?view=leadership", "Pharmacy and medicines leadership organogram"),
    ("/gov/workforce", "Workforce plan: trends and two-year projection"),
    ("/gov/scheme", "Savings ledger: each scheme's saving measured against its plan"),
    ("/gov/horizon", "Horizon scan by financial year, with signals from the data"),
    ("/gov/audit", "Audit trail"),
];

/// Records per page of a governance list.
pub(crate) const LIST_PAGE: usize = 100;

/// The workspace's home: every area with its kinds and how many records each holds.
pub(super) async fn overview(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let Access { gov: g, session } = or_reply!(require(&s, &headers, "/gov", Role::Viewer).await);
    let counts = or_reply!(g.store.counts(false).await.map_err(store_error));
    let status = or_reply!(super::views::status(&s, g).await.map_err(store_error));
    gov_page(
        &session,
        "Governance workspace",
        &[],
        html! {
            h1 { "Governance workspace" }
            p.lede { "The programme's structures, plans, stakeholders, risks, assurance and workforce, kept as records and tied to the prescribing measures." }
            (status)
            h2 { "Views" }
            ul.views { @for (href, label) in VIEWS { li { a href=(href) { (label) } } } }
            @for area in Area::ALL {
                h2 { (area.title()) }
                div.table-scroll role="region" aria-label=(area.title()) tabindex="0" { table.table.records {
                    caption.visually-hidden { (area.title()) }
                    thead { tr { th scope="col" { "Record" } th scope="col" { "What it holds" } th scope="col" .num { "Records" } } }
                    tbody {
                        @for k in kinds::KINDS.iter().filter(|k| k.area == area) {
                            tr { td { a href=(format!("/gov/{}", k.id)) { (k.plural) } } td { (k.description) } td.num { (counts.get(k.id).copied().unwrap_or(0)) } }
                        }
                    }
                } }
            }
        },
    )
}

/// Every record of a kind as a table (CSV with `?format=csv`; archived ones with
/// `?archived=1`). The risk and stakeholder lists carry their heat map and grid.
pub(super) async fn list(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(kind_id): Path<String>,
    p: crate::params::Params,
) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let path = format!("/gov/{}", kind.id);
    let Access { gov: g, session } = or_reply!(require(&s, &headers, &path, Role::Viewer).await);
    let archived = p.get("archived") == Some("1");
    let csv = p.get("format") == Some("csv");
    let page = match p.get("page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        _ => return WebError::BadParameter("page".into(), "must be a whole number from 1".into()).into_response(),
    };
    // The CSV download, the risk register's heat map and the stakeholder grid need every record,
    // read once; other lists read only the page they show.
    let whole = csv || matches!(kind.id, "risk" | "stakeholder" | "scheme" | "horizon");
    let from = (page - 1).saturating_mul(LIST_PAGE);
    let read = if whole {
        g.store.records(kind.id, archived).await.map(|all| {
            let n = all.len();
            (all, n)
        })
    } else {
        g.store.records_page(kind.id, archived, from, LIST_PAGE).await
    };
    let (records, total) = or_reply!(read.map_err(store_error));
    let pages = total.div_ceil(LIST_PAGE).max(1);
    if page > pages {
        return WebError::NotFound(format!("There are {pages} pages of {}.", kind.plural.to_lowercase()))
            .into_response();
    }
    if csv {
        let (header_row, rows) = ipmo_governance::records_csv::export(kind, &records);
        let mut resp = crate::csv::csv(&format!("{}.csv", kind.id), &header_row, rows);
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return resp;
    }
    let shown: &[Record] =
        if whole { &records[from.min(records.len())..(from + LIST_PAGE).min(records.len())] } else { &records };
    let names = or_reply!(Names::for_kind(g.store.as_ref(), kind, g.settings.today()).await.map_err(store_error));
    let extra = match kind.id {
        "risk" => or_reply!(super::views::risk_register(&s, g, &records).await.map_err(store_error)),
        // (The grid leaves out archived stakeholders itself.)
        "stakeholder" => super::views::stakeholder_grid(&records),
        "scheme" if !archived => super::value::ledger(&s, &records),
        "horizon" if !archived => {
            super::value::horizon_scan(&s, &records, p.get("org"), session.user.role >= Role::Editor)
        }
        _ => html! {},
    };
    let editor = session.user.role >= Role::Editor;
    let listing = Listing { kind, path: &path, archived, page, pages, total, shown, names: &names };
    let main = html! {
        span.caption { (kind.area.title()) }
        h1 { (kind.plural) }
        p.lede { (kind.description) }
        p {
            @if editor { a.button-link href=(format!("{path}/new")) { "Add a " (kind.title.to_lowercase()) } " · " }
            a href=(format!("{path}?format=csv{}", if archived { "&archived=1" } else { "" })) download { "Download as CSV" } " · "
            @if archived { a href=(path) { "Hide archived" } } @else { a href=(format!("{path}?archived=1")) { "Show archived" } }
        }
        (extra)
        (list_table(&s.release, &listing))
    };
    gov_page(&session, kind.plural, &[(kind.plural.to_string(), path.clone())], main)
}

/// One page of a kind's list, as the handler gathered it.
struct Listing<'a> {
    kind: &'a Kind,
    /// The list's path, `/gov/{kind}`.
    path: &'a str,
    /// Whether archived records are shown too.
    archived: bool,
    page: usize,
    pages: usize,
    /// Records in the whole list.
    total: usize,
    /// The records on this page.
    shown: &'a [Record],
    names: &'a Names,
}

/// The page's records as a table, with where they sit in the whole list and links to the other
/// pages.
fn list_table(r: &ipmo_release::Release, listing: &Listing) -> Markup {
    let Listing { kind, path, archived, page, pages, total, shown, names } = *listing;
    let page_link = |n: usize| {
        let mut q = vec![format!("page={n}")];
        if archived {
            q.push("archived=1".into());
        }
        format!("{path}?{}", q.join("&"))
    };
    html! {
    @if shown.is_empty() {
        p { "There are no " (kind.plural.to_lowercase()) " yet." }
    } @else {
        @if pages > 1 {
            p { (crate::format::number(((page - 1) * LIST_PAGE + 1) as f64, 0)) "–" (crate::format::number(((page - 1) * LIST_PAGE + shown.len()) as f64, 0)) " of " (crate::format::number(total as f64, 0)) ", oldest first." }
        }
        div.table-scroll role="region" aria-label=(kind.plural) tabindex="0" { table.table {
            caption.visually-hidden { (kind.plural) }
            thead { tr {
                th scope="col" { "Ref" }
                @for c in kind.columns { th scope="col" { (kind.field(c).map_or(*c, |f| f.label)) } }
                @if archived { th scope="col" { "State" } }
            } }
            tbody {
                @for rec in shown {
                    tr {
                        td { a href=(format!("{path}/{}", rec.id)) { (kind.reference(rec.id)) } }
                        @for c in kind.columns { td { @if let Some(f) = kind.field(c) { (cell(r, names, f, rec)) } } }
                        @if archived { td { @if rec.archived { (layout::tag("Archived", "grey")) } } }
                    }
                }
            }
        } }
        @if pages > 1 {
            nav.pagination aria-label="Pages" { ul {
                @if page > 1 { li { a href=(page_link(page - 1)) rel="prev" { "Previous" } } }
                li { "Page " (page) " of " (pages) }
                @if page < pages { li { a href=(page_link(page + 1)) rel="next" { "Next" } } }
            } }
        }
    }
    }
}

/// One record: its fields, what it links to and from, kind-specific signals, and its history.
pub(super) async fn view(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind_id, id)): Path<(String, i64)>,
) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let path = format!("/gov/{}/{id}", kind.id);
    let Access { gov: g, session } = or_reply!(require(&s, &headers, &path, Role::Viewer).await);
    let rec = or_reply!(load(g, kind, id).await);
    let names = match Names::for_kind(g.store.as_ref(), kind, g.settings.today()).await {
        Ok(n) => n,
        Err(e) => return store_error(e),
    };
    let backlinks = match backlinks(g.store.as_ref(), kind, id).await {
        Ok(b) => b,
        Err(e) => return store_error(e),
    };
    let history = match g.store.audit(Some(kind.id), Some(id), 50).await {
        Ok(h) => h,
        Err(e) => return store_error(e),
    };
    let extra = match super::views::record_panel(&s, g, kind, &rec).await {
        Ok(m) => m,
        Err(e) => return store_error(e),
    };
    let r = &s.release;
    let title = name_of(kind, &rec);
    let editor = session.user.role >= Role::Editor;
    gov_page(
        &session,
        &title,
        &[(kind.plural.to_string(), format!("/gov/{}", kind.id)), (kind.reference(id), path.clone())],
        html! {
            span.caption { (kind.title) " " (kind.reference(id)) }
            h1 { (title) }
            @if rec.archived { p { (layout::tag("Archived", "grey")) " This record is archived: it is kept, and left out of lists and views." } }
            (layout::summary(&kind.fields.iter().map(|f| (f.label, cell(r, &names, f, &rec))).collect::<Vec<_>>()))
            p.hint { "Version " (rec.version) ", last changed " (crate::format::timestamp(&rec.updated_at)) " by " (rec.updated_by) "; created " (crate::format::timestamp(&rec.created_at)) " by " (rec.created_by) "." }
            @if editor {
                div.actions {
                    a.button-link href=(format!("{path}/edit")) { "Edit" }
                    form.inline method="post" action=(format!("{path}/{}", if rec.archived { "restore" } else { "archive" })) {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="version" value=(rec.version);
                        button.secondary type="submit" { @if rec.archived { "Bring back" } @else { "Archive" } }
                    }
                }
            }
            (extra)
            @for (k, list) in &backlinks {
                h2 { (k.plural) }
                ul { @for other in list { li { a href=(format!("/gov/{}/{}", k.id, other.id)) { (k.reference(other.id)) } " " (name_of(k, other)) } } }
            }
            h2 { "History" }
            div.table-scroll role="region" aria-label="Changes to this record" tabindex="0" { table.table {
                caption.visually-hidden { "Changes to this record" }
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Fields changed" } } }
                tbody {
                    @for a in &history {
                        tr { td { (crate::format::timestamp(&a.at)) } td { (a.actor) } td { (a.action) } td { (a.changed_fields()) } }
                    }
                }
            } }
        },
    )
}

/// Records of any kind whose reference fields point at record `id` of `kind`.
async fn backlinks(
    store: &dyn GovernanceStore,
    kind: &Kind,
    id: i64,
) -> Result<Vec<(&'static Kind, Vec<Record>)>, StoreError> {
    let mut out = Vec::new();
    for k in kinds::KINDS {
        let fields: Vec<&str> = k.refs().filter(|(_, t)| *t == kind.id).map(|(f, _)| f.name).collect();
        if fields.is_empty() {
            continue;
        }
        let list: Vec<Record> = store
            .records(k.id, false)
            .await?
            .into_iter()
            .filter(|r| fields.iter().any(|f| r.int(f) == Some(id)) && !(k.id == kind.id && r.id == id))
            .collect();
        if !list.is_empty() {
            out.push((k, list));
        }
    }
    Ok(out)
}

/// Archives or brings back a record.
pub(super) async fn archive(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind_id, id, action)): Path<(String, i64, String)>,
    body: Bytes,
) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let archived = match action.as_str() {
        "archive" => true,
        "restore" => false,
        _ => return WebError::NotFound(format!("There is no page at /gov/{kind_id}/{id}/{action}.")).into_response(),
    };
    let Submitted { access: Access { gov: g, session }, form: _, version } =
        or_reply!(submitted(&s, &headers, &format!("/gov/{}/{id}", kind.id), Role::Editor, &body).await);
    or_reply!(load(g, kind, id).await);
    let Some(version) = version else {
        return WebError::BadParameter("version".into(), "is missing; reload the page".into()).into_response();
    };
    match g.store.set_archived(id, version, archived, &session.user.username).await {
        Ok(_) => Redirect::to(&format!("/gov/{}/{id}", kind.id)).into_response(),
        Err(StoreError::Conflict { current }) => {
            let mut r = gov_page(
                &session,
                "Someone else changed this record",
                &[],
                html! {
                    h1 { "Someone else changed this record" }
                    p { (current.updated_by) " saved it at " (current.updated_at) " after you opened it. "
                        a href=(format!("/gov/{}/{id}", kind.id)) { "Look at it again" } " before archiving it." }
                },
            );
            *r.status_mut() = StatusCode::CONFLICT;
            r
        }
        Err(e) => store_error(e),
    }
}

/// The audit trail, newest first.
pub(super) async fn audit_trail(State(s): State<Shared>, headers: HeaderMap, p: crate::params::Params) -> Response {
    let Access { gov: g, session } = or_reply!(require(&s, &headers, "/gov/audit", Role::Viewer).await);
    let entity = p.get("entity");
    let entries = match g.store.audit(entity, None, 500).await {
        Ok(e) => e,
        Err(e) => return store_error(e),
    };
    gov_page(
        &session,
        "Audit trail",
        &[("Audit trail".into(), "/gov/audit".into())],
        html! {
            h1 { "Audit trail" }
            p.lede { "Every change to accounts and records, newest first (the latest 500). Nothing here can be edited or removed." }
            div.table-scroll role="region" aria-label="Audit trail" tabindex="0" { table.table {
                caption.visually-hidden { "Audit trail" }
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" } th scope="col" { "Record" } th scope="col" { "Fields changed" } } }
                tbody {
                    @for a in &entries {
                        tr {
                            td { (crate::format::timestamp(&a.at)) } td { (a.actor) } td { (a.action) }
                            td { @match (kinds::kind(&a.entity), a.entity_id) {
                                (Some(k), Some(id)) => a href=(format!("/gov/{}/{id}", k.id)) { (k.reference(id)) },
                                (_, Some(id)) => { (a.entity) " " (id) },
                                _ => (a.entity),
                            } }
                            td { (a.changed_fields()) }
                        }
                    }
                }
            } }
        },
    )
}
