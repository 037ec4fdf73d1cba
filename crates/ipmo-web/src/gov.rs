//! The governance workspace: sign-in, sessions, CSRF, roles, and list / view / create / edit /
//! archive pages for every record kind, with CSV export and JSON. Pages here depend on who is
//! signed in and on data that changes, so none of them is cached or given an ETag.

// Helpers here return the refusal itself (a redirect to sign in, a 403 or 404 page) as their
// error, which the handler sends as it is; boxing it would add an allocation for nothing.
#![allow(clippy::result_large_err)]

use crate::layout::{self, Crumb};
use crate::{Shared, WebError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use ipmo_governance::kinds::{self, Area, Field, FieldError, FieldType, Kind, Lookups};
use ipmo_governance::store::{Data, GovernanceStore, Record, Session, StoreError};
use ipmo_governance::{Role, auth};
use ipmo_release::Release;
use maud::{Markup, html};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// Session cookie name.
pub const SESSION_COOKIE: &str = "ipmo_session";
const LOGIN_CSRF_COOKIE: &str = "ipmo_login_csrf";

/// How the governance workspace behaves.
#[derive(Clone, Debug)]
pub struct GovSettings {
    /// Whether the prescribing dashboard can be read without signing in.
    pub public_dashboard: bool,
    /// Whether cookies carry `Secure` (right behind HTTPS; off for plain HTTP on a LAN).
    pub secure_cookies: bool,
    /// The date overdue and stale items are judged against; None is the server's own date
    /// (tests fix it).
    pub today: Option<chrono::NaiveDate>,
    /// Whether a reverse proxy sits in front: then the client's address, which sign-in limits
    /// count by, is the last one in `X-Forwarded-For` rather than the proxy's own.
    pub behind_proxy: bool,
}

impl Default for GovSettings {
    fn default() -> Self {
        Self { public_dashboard: true, secure_cookies: true, today: None, behind_proxy: false }
    }
}

impl GovSettings {
    /// Today, for overdue reviews, milestones and actions and stale returns.
    pub fn today(&self) -> chrono::NaiveDate {
        self.today.unwrap_or_else(|| chrono::Local::now().date_naive())
    }
}

/// The governance store and what goes with it.
pub struct Governance {
    /// Where records live.
    pub store: Arc<dyn GovernanceStore>,
    /// Behaviour.
    pub settings: GovSettings,
    /// Failed sign-ins per account.
    pub limiter: auth::LoginLimiter,
}

/// Paths whose responses depend on the user or on changing data: never cached, never tagged.
pub fn is_dynamic(path: &str) -> bool {
    path == "/login"
        || path == "/logout"
        || path.starts_with("/gov")
        || path.starts_with("/api/v1/records")
        || path == "/api/v1/session"
}

/// Paths anyone may open even when the dashboard is private.
pub fn is_open(path: &str) -> bool {
    path == "/login" || path.starts_with("/assets/") || path == "/favicon.ico"
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The signed-in session of a request, if any.
pub async fn session_of(gov: &Governance, headers: &HeaderMap) -> Option<Session> {
    let token = cookie(headers, SESSION_COOKIE)?;
    gov.store.session(token).await.ok().flatten()
}

fn gov(s: &Shared) -> Result<&Governance, Response> {
    s.governance.as_ref().ok_or_else(|| {
        WebError::NotFound("The governance workspace is not switched on for this server.".into()).into_response()
    })
}

/// [`require`] for pages anyone signed in may read.
pub(crate) async fn require_viewer(s: &Shared, headers: &HeaderMap, path: &str) -> Result<Session, Response> {
    require(s, headers, path, Role::Viewer).await
}

/// [`gov_page`] for the views module.
pub(crate) fn page_for(session: &Session, title: &str, crumbs: &[Crumb], main: Markup) -> Response {
    gov_page(session, title, crumbs, main)
}

/// Why a governance request was refused, as the right response.
fn sign_in_first(path: &str, api: bool) -> Response {
    if api {
        let body = serde_json::json!({ "error": { "code": "unauthorised", "message": "sign in first (POST /login)", "parameter": null } });
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    Redirect::to(&format!("/login?next={}", urlencode(path))).into_response()
}

fn forbidden(message: &str) -> Response {
    let body = layout::page(
        "You do not have access",
        &[],
        None,
        html! { h1 { "You do not have access" } p.lede { (message) } p { a href="/gov" { "Go to the governance workspace" } } },
    );
    (StatusCode::FORBIDDEN, Html(body.into_string())).into_response()
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The session of a governance page, or the response that sends the visitor to sign in or
/// tells them they lack the role.
async fn require(s: &Shared, headers: &HeaderMap, path: &str, role: Role) -> Result<Session, Response> {
    let g = gov(s)?;
    let api = path.starts_with("/api/");
    let session = session_of(g, headers).await.ok_or_else(|| sign_in_first(path, api))?;
    if session.user.role < role {
        if api {
            let body = serde_json::json!({ "error": { "code": "forbidden", "message": format!("this needs the {} role", role.as_str()), "parameter": null } });
            return Err((StatusCode::FORBIDDEN, axum::Json(body)).into_response());
        }
        return Err(forbidden(&format!(
            "This needs the {} role; you are signed in as {} with the {} role. Ask an administrator if you need more.",
            role.as_str(),
            session.user.username,
            session.user.role.as_str()
        )));
    }
    Ok(session)
}

/// A submitted form's fields. Refuses a missing or wrong CSRF token with 403.
fn form_fields(body: &Bytes) -> Result<BTreeMap<String, String>, Response> {
    let text = std::str::from_utf8(body)
        .map_err(|_| WebError::BadParameter("form".into(), "is not UTF-8".into()).into_response())?;
    crate::decode_pairs(text, 4 * kinds::MAX_TEXT).map_err(IntoResponse::into_response)
}

fn check_csrf(session: &Session, form: &BTreeMap<String, String>) -> Result<(), Response> {
    match form.get("csrf") {
        Some(t) if auth::same_secret(t, &session.csrf) => Ok(()),
        _ => Err(forbidden(
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        )),
    }
}

fn session_cookie(g: &Governance, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if g.settings.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static("ipmo=; Max-Age=0"))
}

/// The governance pages' shell: the dashboard's layout with who is signed in and a sign-out
/// button.
fn gov_page(session: &Session, title: &str, crumbs: &[Crumb], main: Markup) -> Response {
    let mut all = vec![("Governance".to_string(), "/gov".to_string())];
    all.extend_from_slice(crumbs);
    let body = layout::page(
        title,
        &all,
        None,
        html! {
            div.userbar {
                "Signed in as " strong { (session.user.display_name) } " (" (session.user.role.as_str()) ") "
                form.inline method="post" action="/logout" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button.link-button type="submit" { "Sign out" }
                }
            }
            (main)
        },
    );
    Html(body.into_string()).into_response()
}

// ---------------------------------------------------------------------------------------------
// Sign in and out

/// The sign-in form.
pub async fn login_page(State(s): State<Shared>, p: crate::Params) -> Response {
    let g = or_reply!(gov(&s));
    login_form(g, p.get("next").unwrap_or("/gov"), None, "")
}

fn login_form(g: &Governance, next: &str, error: Option<&str>, username: &str) -> Response {
    let csrf = auth::new_token();
    let body = layout::page(
        "Sign in",
        &[],
        None,
        html! {
            h1 { "Sign in" }
            p.lede { "The governance workspace holds the programme's records. Sign in with the account an administrator gave you." }
            @if let Some(e) = error {
                div.error-summary role="alert" tabindex="-1" { h2 { "There is a problem" } p { (e) } }
            }
            form.panel method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                div.field {
                    label for="username" { "Username" }
                    input #username type="text" name="username" autocomplete="username" value=(username) required;
                }
                div.field {
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                }
                button.button type="submit" { "Sign in" }
            }
        },
    );
    let mut r = (if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK }, Html(body.into_string()))
        .into_response();
    r.headers_mut().append(header::SET_COOKIE, session_cookie(g, LOGIN_CSRF_COOKIE, &csrf, 3600));
    r
}

/// The address sign-in limits count a request under: the connection's peer, or with
/// [`GovSettings::behind_proxy`] the last address the proxy appended to `X-Forwarded-For`.
fn client_of(g: &Governance, extensions: &axum::http::Extensions, headers: &HeaderMap) -> String {
    let forwarded = || {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|a| a.trim().parse::<std::net::IpAddr>().ok())
    };
    let peer = || extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let ip = if g.settings.behind_proxy { forwarded().or_else(peer) } else { peer() };
    ip.map_or_else(|| "unknown".to_string(), auth::client_key)
}

/// Logs a sign-in event for the server's output (`tracing`) and for administrators (the store).
async fn sign_in_event(g: &Governance, event: &str, username: &str, client: &str, detail: &str) {
    let username: String = username.chars().take(100).collect();
    if event == "sign-in" || event == "sign-out" {
        tracing::info!(target: "ipmo::auth", event, username, client, detail, "sign-in event");
    } else {
        tracing::warn!(target: "ipmo::auth", event, username, client, detail, "sign-in event");
    }
    let e = ipmo_governance::store::SignInEvent {
        at: String::new(),
        event: event.into(),
        username,
        client: client.into(),
        detail: detail.into(),
    };
    if let Err(err) = g.store.log_sign_in(&e).await {
        tracing::error!(target: "ipmo::auth", error = %err, "a sign-in event could not be stored");
    }
}

/// Seconds a client is asked to wait when every password thread is busy.
const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Checks the credentials, starts a session and goes to `next` (a local path only). Before any
/// password is checked, the account's and the client's recent failures are counted (429 when
/// either is over its limit); the check itself runs on the bounded password pool (503 when it is
/// full).
pub async fn login(
    State(s): State<Shared>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let g = or_reply!(gov(&s));
    let form = or_reply!(form_fields(&body));
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    let given = form.get("csrf").map(String::as_str).unwrap_or("");
    if expected.is_empty() || !auth::same_secret(expected, given) {
        return forbidden(
            "This sign-in form has expired or did not come from this site. Reload the sign-in page and try again.",
        );
    }
    let next = form.get("next").map(String::as_str).filter(|n| local_path(n)).unwrap_or("/gov");
    let username = form.get("username").map(|u| u.trim()).unwrap_or("");
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let client = client_of(g, &extensions, &headers);
    if let Some(refusal) = g.limiter.check(username, &client, Instant::now()) {
        let (wait, whose) = match refusal {
            auth::Refusal::Account(w) => (w, "this account"),
            auth::Refusal::Client(w) => (w, "your network address"),
        };
        tracing::warn!(target: "ipmo::auth", event = "sign-in.refused", username, client, "locked out");
        let message =
            format!("Too many failed sign-ins from {whose}. Try again in {} minutes.", wait.as_secs().div_ceil(60));
        return crate::retry_later(login_form(g, next, Some(&message), username), StatusCode::TOO_MANY_REQUESTS, wait);
    }
    let user = match g.store.authenticate(username, password).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            let failed = g.limiter.failed(username, &client, Instant::now());
            sign_in_event(g, "sign-in.failed", username, &client, "").await;
            if failed.account_locked {
                sign_in_event(g, "lockout.account", username, &client, "the account is locked for 15 minutes").await;
            }
            if failed.client_locked {
                sign_in_event(g, "lockout.client", username, &client, "the address is locked for 15 minutes").await;
            }
            return login_form(
                g,
                next,
                Some("The username or password is not right, or the account is disabled."),
                username,
            );
        }
        Err(StoreError::Busy(busy)) => {
            tracing::warn!(target: "ipmo::auth", event = "sign-in.busy", client, "password pool full");
            let r = login_form(g, next, Some(&format!("Sorry, {busy}.")), username);
            return crate::retry_later(r, StatusCode::SERVICE_UNAVAILABLE, BUSY_RETRY);
        }
        Err(e) => return WebError::Internal(e.to_string()).into_response(),
    };
    g.limiter.succeeded(username);
    let session = match g.store.start_session(&user).await {
        Ok(s) => s,
        Err(e) => return WebError::Internal(e.to_string()).into_response(),
    };
    sign_in_event(g, "sign-in", &user.username, &client, "").await;
    let mut r = Redirect::to(next).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session_cookie(g, SESSION_COOKIE, &session.token, ipmo_governance::sqlite::SESSION_HOURS * 3600),
    );
    r.headers_mut().append(header::SET_COOKIE, session_cookie(g, LOGIN_CSRF_COOKIE, "", 0));
    r
}

/// Whether `next` is a path on this site, so that signing in cannot send anyone elsewhere
/// (`//host` and `/\\host` are other hosts to a browser).
fn local_path(next: &str) -> bool {
    next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.chars().any(char::is_control)
}

/// Ends the session.
pub async fn logout(
    State(s): State<Shared>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let g = or_reply!(gov(&s));
    let Some(session) = session_of(g, &headers).await else { return Redirect::to("/login").into_response() };
    let form = or_reply!(form_fields(&body));
    or_reply!(check_csrf(&session, &form));
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let _ = g.store.end_session(token).await;
    }
    sign_in_event(g, "sign-out", &session.user.username, &client_of(g, &extensions, &headers), "").await;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(header::SET_COOKIE, session_cookie(g, SESSION_COOKIE, "", 0));
    r
}

// ---------------------------------------------------------------------------------------------
// Lookups and names

/// Validation against the loaded release: measures from its library, organisations from its tree.
pub struct ReleaseLookups<'a>(pub &'a Release);

impl Lookups for ReleaseLookups<'_> {
    fn measure_exists(&self, id: &str) -> bool {
        self.0.library.measures.iter().any(|m| m.id == id)
    }
    fn org_exists(&self, code: &str) -> bool {
        self.0.org(code).is_some()
    }
}

/// What a table cell needs besides its record: the names of records by id (for showing
/// references as links) and today's date (for flagging what is overdue).
pub(crate) struct Names {
    names: HashMap<i64, (String, &'static Kind)>,
    /// The day overdue dates are judged against.
    pub today: chrono::NaiveDate,
}

impl Names {
    /// Names of every record of the kinds `kind`'s fields point at (and of `kind` itself).
    pub(crate) async fn for_kind(
        store: &dyn GovernanceStore,
        kind: &Kind,
        today: chrono::NaiveDate,
    ) -> Result<Self, StoreError> {
        let mut targets: Vec<&str> = kind.refs().map(|(_, t)| t).collect();
        targets.push(kind.id);
        targets.sort_unstable();
        targets.dedup();
        Self::of_kinds(store, &targets, today).await
    }

    pub(crate) async fn of_kinds(
        store: &dyn GovernanceStore,
        ids: &[&str],
        today: chrono::NaiveDate,
    ) -> Result<Self, StoreError> {
        let mut names = HashMap::new();
        for id in ids {
            let Some(k) = kinds::kind(id) else { continue };
            for r in store.records(id, true).await? {
                names.insert(r.id, (name_of(k, &r), k));
            }
        }
        Ok(Self { names, today })
    }

    /// No names (for cells without references).
    pub(crate) fn empty(today: chrono::NaiveDate) -> Self {
        Self { names: HashMap::new(), today }
    }

    /// A link to the record, or its bare reference when unknown.
    pub(crate) fn link(&self, id: i64) -> Markup {
        match self.names.get(&id) {
            Some((name, k)) => html! { a href=(format!("/gov/{}/{id}", k.id)) { (name) } },
            None => html! { (id) },
        }
    }
}

/// What a record is called in lists and links.
pub(crate) fn name_of(kind: &Kind, r: &Record) -> String {
    let f = kind.field(kind.name_field).copied();
    let text = f.map(|f| kinds::display_value(&f, r.data.get(f.name))).unwrap_or_default();
    let short: String = text.chars().take(80).collect();
    if short.is_empty() {
        kind.reference(r.id)
    } else if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// A field's value for a table cell or summary: references and measures become links.
pub(crate) fn cell(r: &Release, names: &Names, f: &Field, rec: &Record) -> Markup {
    let v = rec.data.get(f.name);
    match f.ty {
        FieldType::Ref(_) => match v.and_then(serde_json::Value::as_i64) {
            Some(id) => names.link(id),
            None => html! {},
        },
        FieldType::Measure => match v.and_then(serde_json::Value::as_str) {
            Some(id) => {
                html! { a href=(format!("/measure/{id}")) { (r.library.measures.iter().find(|m| m.id == id).map_or(id, |m| m.title.as_str())) } }
            }
            None => html! {},
        },
        FieldType::MeasureList => {
            let ids: Vec<&str> =
                v.and_then(serde_json::Value::as_str).unwrap_or("").split(", ").filter(|s| !s.is_empty()).collect();
            let title = |id: &str| r.library.get(id).map_or(id.to_string(), |m| m.title.clone());
            html! { @for (i, id) in ids.iter().enumerate() { @if i > 0 { "; " } a href=(format!("/measure/{id}")) { (title(id)) } } }
        }
        FieldType::Date => date_cell(rec, f.name, names.today),
        FieldType::Org => match v.and_then(serde_json::Value::as_str) {
            Some(code) => {
                html! { a href=(format!("/org/{code}")) { (r.org(code).map_or(code, |o| o.name.as_str())) } " " span.code { "(" (code) ")" } }
            }
            None => html! {},
        },
        FieldType::LongText => {
            let text = kinds::display_value(f, v);
            html! { @for (i, line) in text.lines().enumerate() { @if i > 0 { br; } (line) } }
        }
        _ => html! { (kinds::display_value(f, v)) },
    }
}

/// A date field of a record in words ("31 January 2026"), tagged Overdue when it is the date the
/// record is due by and that has passed (`ipmo_governance::due`).
pub(crate) fn date_cell(rec: &Record, field: &str, today: chrono::NaiveDate) -> Markup {
    let late = ipmo_governance::due::due_field(&rec.kind) == Some(field)
        && ipmo_governance::due::overdue(rec, today).is_some();
    html! { (crate::format::iso_date(rec.text(field))) @if late { " " (layout::tag("Overdue", "red")) } }
}

fn kind_or_404(id: &str) -> Result<&'static Kind, Response> {
    kinds::kind(id).ok_or_else(|| {
        WebError::NotFound(format!("There is no kind of governance record called \"{id}\".")).into_response()
    })
}

pub(crate) fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(m) => WebError::NotFound(m).into_response(),
        other => WebError::Internal(other.to_string()).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Overview, lists, views

/// The workspace's home: every area with its kinds and how many records each holds.
pub async fn overview(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let session = or_reply!(require(&s, &headers, "/gov", Role::Viewer).await);
    let g = s.governance.as_ref().expect("checked by require");
    let counts = or_reply!(g.store.counts(false).await.map_err(store_error));
    let status = or_reply!(crate::gov_views::status(&s, g).await.map_err(store_error));
    gov_page(
        &session,
        "Governance workspace",
        &[],
        html! {
            h1 { "Governance workspace" }
            p.lede { "The programme's structures, plans, stakeholders, risks, assurance and workforce, kept as records and tied to the prescribing measures." }
            (status)
            h2 { "Views" }
            ul.views {
                li { a href="/gov/risk" { "Risk register and heat map" } }
                li { a href="/gov/assurance" { "Assurance framework" } }
                li { a href="/gov/plans?plan=National+priorities" { "Plan on a page: national priorities" } }
                li { a href="/gov/plans?plan=Workforce" { "Plan on a page: workforce over two years" } }
                li { a href="/gov/stakeholder" { "Stakeholder power and interest grid" } }
                li { a href="/gov/organogram?view=system" { "Organogram of the wider system" } }
                li { a href="/gov/organogram?view=leadership" { "Pharmacy and medicines leadership organogram" } }
                li { a href="/gov/workforce" { "Workforce plan: trends and two-year projection" } }
                li { a href="/gov/audit" { "Audit trail" } }
            }
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
pub async fn list(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(kind_id): Path<String>,
    p: crate::Params,
) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let path = format!("/gov/{}", kind.id);
    let session = or_reply!(require(&s, &headers, &path, Role::Viewer).await);
    let g = s.governance.as_ref().expect("checked by require");
    let archived = p.get("archived") == Some("1");
    let csv = p.get("format") == Some("csv");
    let page = match p.get("page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        _ => return WebError::BadParameter("page".into(), "must be a whole number from 1".into()).into_response(),
    };
    // The CSV download, the risk register's heat map and the stakeholder grid need every record,
    // read once; other lists read only the page they show.
    let whole = csv || matches!(kind.id, "risk" | "stakeholder");
    let from = (page - 1).saturating_mul(LIST_PAGE);
    let (records, total) = if whole {
        match g.store.records(kind.id, archived).await {
            Ok(all) => {
                let n = all.len();
                (all, n)
            }
            Err(e) => return store_error(e),
        }
    } else {
        match g.store.records_page(kind.id, archived, from, LIST_PAGE).await {
            Ok(x) => x,
            Err(e) => return store_error(e),
        }
    };
    let pages = total.div_ceil(LIST_PAGE).max(1);
    if page > pages {
        return WebError::NotFound(format!("There are {pages} pages of {}.", kind.plural.to_lowercase()))
            .into_response();
    }
    let shown: &[Record] =
        if whole && !csv { &records[from.min(records.len())..(from + LIST_PAGE).min(records.len())] } else { &records };
    let names = match Names::for_kind(g.store.as_ref(), kind, g.settings.today()).await {
        Ok(n) => n,
        Err(e) => return store_error(e),
    };
    let r = &s.release;
    if csv {
        let mut header_row = vec!["reference", "version", "archived"];
        header_row.extend(kind.fields.iter().map(|f| f.name));
        header_row.extend(["updated_at", "updated_by"]);
        let rows = records
            .iter()
            .map(|rec| {
                let mut row = vec![kind.reference(rec.id), rec.version.to_string(), rec.archived.to_string()];
                row.extend(kind.fields.iter().map(|f| kinds::display_value(f, rec.data.get(f.name))));
                row.extend([rec.updated_at.clone(), rec.updated_by.clone()]);
                row
            })
            .collect();
        let mut resp = crate::pages::csv(&format!("{}.csv", kind.id), &header_row, rows);
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return resp;
    }
    let extra = match kind.id {
        "risk" => crate::gov_views::risk_register(&s, g, &records).await,
        // (The grid leaves out archived stakeholders itself.)
        "stakeholder" => Ok(crate::gov_views::stakeholder_grid(&records)),
        _ => Ok(html! {}),
    };
    let page_link = |n: usize| {
        let mut q = vec![format!("page={n}")];
        if archived {
            q.push("archived=1".into());
        }
        format!("{path}?{}", q.join("&"))
    };
    let extra = match extra {
        Ok(m) => m,
        Err(e) => return store_error(e),
    };
    let editor = session.user.role >= Role::Editor;
    gov_page(
        &session,
        kind.plural,
        &[(kind.plural.to_string(), path.clone())],
        html! {
            span.caption { (kind.area.title()) }
            h1 { (kind.plural) }
            p.lede { (kind.description) }
            p {
                @if editor { a.button-link href=(format!("{path}/new")) { "Add a " (kind.title.to_lowercase()) } " · " }
                a href=(format!("{path}?format=csv{}", if archived { "&archived=1" } else { "" })) download { "Download as CSV" } " · "
                @if archived { a href=(path) { "Hide archived" } } @else { a href=(format!("{path}?archived=1")) { "Show archived" } }
            }
            (extra)
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
                                @for c in kind.columns { td { @if let Some(f) = kind.field(c) { (cell(r, &names, f, rec)) } } }
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
        },
    )
}

/// One record: its fields, what it links to and from, kind-specific signals, and its history.
pub async fn view(State(s): State<Shared>, headers: HeaderMap, Path((kind_id, id)): Path<(String, i64)>) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let path = format!("/gov/{}/{id}", kind.id);
    let session = or_reply!(require(&s, &headers, &path, Role::Viewer).await);
    let g = s.governance.as_ref().expect("checked by require");
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
    let extra = match crate::gov_views::record_panel(&s, g, kind, &rec).await {
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
                        tr { td { (crate::format::timestamp(&a.at)) } td { (a.actor) } td { (a.action) } td { (changed_fields(a.before.as_ref(), a.after.as_ref())) } }
                    }
                }
            } }
        },
    )
}

fn changed_fields(before: Option<&serde_json::Value>, after: Option<&serde_json::Value>) -> String {
    let data = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.get("data")).and_then(|d| d.as_object()).cloned().unwrap_or_default()
    };
    let (b, a) = (data(before), data(after));
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| b.get(*k) != a.get(*k)).map(String::as_str).collect::<Vec<_>>().join(", ")
}

async fn load(g: &Governance, kind: &Kind, id: i64) -> Result<Record, Response> {
    match g.store.record(id).await {
        Ok(Some(r)) if r.kind == kind.id => Ok(r),
        Ok(_) => Err(WebError::NotFound(format!("There is no {} {}.", kind.title.to_lowercase(), kind.reference(id)))
            .into_response()),
        Err(e) => Err(store_error(e)),
    }
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

// ---------------------------------------------------------------------------------------------
// Forms

/// Form for a new record.
pub async fn new_form(State(s): State<Shared>, headers: HeaderMap, Path(kind_id): Path<String>) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let session = or_reply!(require(&s, &headers, &format!("/gov/{}/new", kind.id), Role::Editor).await);
    let values = BTreeMap::new();
    render_form(&s, &session, kind, None, &values, &[], StatusCode::OK).await
}

/// Form for editing a record, filled with its values.
pub async fn edit_form(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind_id, id)): Path<(String, i64)>,
) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let session = or_reply!(require(&s, &headers, &format!("/gov/{}/{id}/edit", kind.id), Role::Editor).await);
    let g = s.governance.as_ref().expect("checked by require");
    let rec = or_reply!(load(g, kind, id).await);
    let values = form_values(kind, &rec);
    render_form(&s, &session, kind, Some((id, rec.version)), &values, &[], StatusCode::OK).await
}

fn form_values(kind: &Kind, rec: &Record) -> BTreeMap<String, String> {
    kind.fields.iter().map(|f| (f.name.to_string(), kinds::display_value(f, rec.data.get(f.name)))).collect()
}

async fn render_form(
    s: &Shared,
    session: &Session,
    kind: &Kind,
    editing: Option<(i64, i64)>,
    values: &BTreeMap<String, String>,
    errors: &[FieldError],
    status: StatusCode,
) -> Response {
    let g = s.governance.as_ref().expect("checked by require");
    let targets: Vec<&str> = kind.refs().map(|(_, t)| t).collect();
    let mut options: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for t in targets {
        let Some(tk) = kinds::kind(t) else { continue };
        match g.store.records(t, false).await {
            Ok(list) => {
                options.insert(
                    t,
                    list.iter()
                        .map(|r| (tk.reference(r.id), format!("{} {}", tk.reference(r.id), name_of(tk, r))))
                        .collect(),
                );
            }
            Err(e) => return store_error(e),
        }
    }
    let (title, action) = match editing {
        Some((id, _)) => (format!("Edit {}", kind.reference(id)), format!("/gov/{}/{id}/edit", kind.id)),
        None => (format!("Add a {}", kind.title.to_lowercase()), format!("/gov/{}/new", kind.id)),
    };
    let error_for = |f: &str| errors.iter().find(|e| e.field == f).map(|e| e.message.as_str());
    let stray: Vec<&FieldError> = errors.iter().filter(|e| kind.field(&e.field).is_none()).collect();
    let measures = &s.release.library.measures;
    // After a failed submit the title starts "Error:" and focus moves to the summary of problems
    // (the NHS and GOV.UK error pattern), so screen reader and keyboard users meet it first.
    let page_title = if errors.is_empty() { title.clone() } else { format!("Error: {title}") };
    let mut r = gov_page(
        session,
        &page_title,
        &[(kind.plural.to_string(), format!("/gov/{}", kind.id))],
        html! {
            h1 { (title) }
            @if !errors.is_empty() {
                div.error-summary role="alert" tabindex="-1" autofocus aria-labelledby="error-summary-title" {
                    h2 #error-summary-title { "There is a problem" }
                    ul { @for e in errors { li { a href=(format!("#f-{}", e.field)) { (e.message) } } } }
                }
            }
            form.panel method="post" action=(action) novalidate {
                input type="hidden" name="csrf" value=(session.csrf);
                @if let Some((_, version)) = editing { input type="hidden" name="version" value=(version); }
                @for f in kind.fields {
                    @let id = format!("f-{}", f.name);
                    @let value = values.get(f.name).map(String::as_str).unwrap_or("");
                    @let error = error_for(f.name);
                    @let described = format!("{}{}", if f.hint.is_empty() { String::new() } else { format!("{id}-hint ") }, if error.is_some() { format!("{id}-error") } else { String::new() });
                    div class=(if error.is_some() { "field field-error" } else { "field" }) {
                        label for=(id) { (f.label) @if !f.required { " (optional)" } }
                        @if !f.hint.is_empty() { span.hint id=(format!("{id}-hint")) { (f.hint) } }
                        @if let Some(e) = error { span.error-message id=(format!("{id}-error")) { span.visually-hidden { "Error: " } (e) } }
                        @match f.ty {
                            FieldType::LongText => {
                                textarea id=(id) name=(f.name) rows="4" aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")] { (value) }
                            }
                            FieldType::Choice(list) => {
                                select id=(id) name=(f.name) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")] {
                                    option value="" { @if f.required { "Choose…" } @else { "None" } }
                                    @for o in list { option value=(o) selected[o.eq_ignore_ascii_case(value)] { (o) } }
                                }
                            }
                            FieldType::Score => {
                                select id=(id) name=(f.name) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")] {
                                    option value="" { "Choose…" }
                                    @for n in 1..=5 { option value=(n) selected[value == n.to_string()] { (score_label(f.name, n)) } }
                                }
                            }
                            FieldType::Ref(t) => {
                                select id=(id) name=(f.name) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")] {
                                    option value="" { @if f.required { "Choose…" } @else { "None" } }
                                    @for (reference, label) in options.get(t).map(Vec::as_slice).unwrap_or(&[]) {
                                        option value=(reference) selected[reference == value] { (label) }
                                    }
                                }
                            }
                            FieldType::Measure => {
                                select id=(id) name=(f.name) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")] {
                                    option value="" { "Choose…" }
                                    @for m in measures { option value=(m.id) selected[m.id == value] { (m.title) " (" (m.id) ")" } }
                                }
                            }
                            FieldType::Date => {
                                input id=(id) type="date" name=(f.name) value=(value) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")];
                            }
                            _ => {
                                input id=(id) type="text" name=(f.name) value=(value) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")];
                            }
                        }
                    }
                }
                @for e in &stray { p.error-message { (e.field) ": " (e.message) } }
                button.button type="submit" { "Save" }
                " "
                a href=(match editing { Some((id, _)) => format!("/gov/{}/{id}", kind.id), None => format!("/gov/{}", kind.id) }) { "Cancel" }
            }
        },
    );
    *r.status_mut() = status;
    r
}

fn score_label(field: &str, n: usize) -> String {
    let names = if field.ends_with("likelihood") {
        Some(ipmo_governance::risk::LIKELIHOOD)
    } else if field.ends_with("consequence") {
        Some(ipmo_governance::risk::CONSEQUENCE)
    } else {
        None
    };
    match names {
        Some(n2) => format!("{n} {}", n2[n - 1]),
        None => n.to_string(),
    }
}

/// Takes a submitted form apart once the sender is known to hold `role`: the CSRF token is
/// checked, and the fields are returned apart from the form's own (`csrf`, `version`).
async fn submitted(
    s: &Shared,
    headers: &HeaderMap,
    path: &str,
    role: Role,
    body: &Bytes,
) -> Result<(Session, BTreeMap<String, String>, Option<i64>), Response> {
    let session = require(s, headers, path, role).await?;
    let mut form = form_fields(body)?;
    check_csrf(&session, &form)?;
    form.remove("csrf");
    let version = match form.remove("version") {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| WebError::BadParameter("version".into(), "is not a number".into()).into_response())?,
        ),
        None => None,
    };
    Ok((session, form, version))
}

/// Creates a record from the form, or shows the form again with each problem beside its field.
pub async fn create(State(s): State<Shared>, headers: HeaderMap, Path(kind_id): Path<String>, body: Bytes) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let (session, form, _) =
        or_reply!(submitted(&s, &headers, &format!("/gov/{}/new", kind.id), Role::Editor, &body).await);
    let g = s.governance.as_ref().expect("checked by require");
    let data = match kinds::validate(kind, &form, &ReleaseLookups(&s.release)) {
        Ok(d) => d,
        Err(errors) => {
            return render_form(&s, &session, kind, None, &form, &errors, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    match g.store.create(kind.id, data, &session.user.username).await {
        Ok(rec) => Redirect::to(&format!("/gov/{}/{}", kind.id, rec.id)).into_response(),
        Err(StoreError::Invalid(errors)) => {
            render_form(&s, &session, kind, None, &form, &errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => store_error(e),
    }
}

/// Saves an edit, if nobody else saved the record since the form was opened; otherwise shows
/// both versions.
pub async fn update(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind_id, id)): Path<(String, i64)>,
    body: Bytes,
) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let (session, form, version) =
        or_reply!(submitted(&s, &headers, &format!("/gov/{}/{id}/edit", kind.id), Role::Editor, &body).await);
    let g = s.governance.as_ref().expect("checked by require");
    or_reply!(load(g, kind, id).await);
    let Some(version) = version else {
        return WebError::BadParameter("version".into(), "is missing; reload the edit page".into()).into_response();
    };
    let data = match kinds::validate(kind, &form, &ReleaseLookups(&s.release)) {
        Ok(d) => d,
        Err(errors) => {
            return render_form(
                &s,
                &session,
                kind,
                Some((id, version)),
                &form,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    match g.store.update(id, version, data.clone(), &session.user.username).await {
        Ok(_) => Redirect::to(&format!("/gov/{}/{id}", kind.id)).into_response(),
        Err(StoreError::Invalid(errors)) => {
            render_form(&s, &session, kind, Some((id, version)), &form, &errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(StoreError::Conflict { current }) => conflict(&s, &session, kind, &current, &data, &form).await,
        Err(e) => store_error(e),
    }
}

/// The 409 page: the record as it is now beside the edit that could not be saved, with a form
/// that saves the edit over the current version if the editor still wants it.
async fn conflict(
    s: &Shared,
    session: &Session,
    kind: &Kind,
    current: &Record,
    mine: &Data,
    form: &BTreeMap<String, String>,
) -> Response {
    let g = s.governance.as_ref().expect("checked by require");
    let names = match Names::for_kind(g.store.as_ref(), kind, g.settings.today()).await {
        Ok(n) => n,
        Err(e) => return store_error(e),
    };
    let path = format!("/gov/{}/{}", kind.id, current.id);
    let mine_rec = Record { data: mine.clone(), ..current.clone() };
    let mut r = gov_page(
        session,
        "Someone else changed this record",
        &[(kind.plural.to_string(), format!("/gov/{}", kind.id))],
        html! {
            h1 { "Someone else changed this record" }
            p.lede { (current.updated_by) " saved " (kind.reference(current.id)) " at " (current.updated_at) " (version " (current.version) ") after you opened it. Your changes have not been saved." }
            div.table-scroll role="region" aria-label="Their version and yours" tabindex="0" { table.table {
                caption { "Their version and yours" }
                thead { tr { th scope="col" { "Field" } th scope="col" { "Now (version " (current.version) ")" } th scope="col" { "Yours" } } }
                tbody {
                    @for f in kind.fields {
                        @let differs = current.data.get(f.name) != mine.get(f.name);
                        tr class=[differs.then_some("changed")] {
                            th scope="row" { (f.label) @if differs { " " (layout::tag("differs", "orange")) } }
                            td { (cell(&s.release, &names, f, current)) }
                            td { (cell(&s.release, &names, f, &mine_rec)) }
                        }
                    }
                }
            } }
            form.inline method="post" action=(format!("{path}/edit")) {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="version" value=(current.version);
                @for (k, v) in form { input type="hidden" name=(k) value=(v); }
                button.button type="submit" { "Save my version over theirs" }
            }
            " "
            a href=(path) { "Keep theirs and discard mine" }
        },
    );
    *r.status_mut() = StatusCode::CONFLICT;
    r
}

/// Archives or brings back a record.
pub async fn archive(
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
    let (session, _, version) =
        or_reply!(submitted(&s, &headers, &format!("/gov/{}/{id}", kind.id), Role::Editor, &body).await);
    let g = s.governance.as_ref().expect("checked by require");
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
pub async fn audit_trail(State(s): State<Shared>, headers: HeaderMap, p: crate::Params) -> Response {
    let session = or_reply!(require(&s, &headers, "/gov/audit", Role::Viewer).await);
    let g = s.governance.as_ref().expect("checked by require");
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
                            td { (changed_fields(a.before.as_ref(), a.after.as_ref())) }
                        }
                    }
                }
            } }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// JSON

/// `GET /api/v1/records/{kind}`: every current record of a kind.
pub async fn api_list(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(kind_id): Path<String>,
    p: crate::Params,
) -> Response {
    let Some(kind) = kinds::kind(&kind_id) else {
        return WebError::NotFound(format!("There is no kind of governance record called \"{kind_id}\".")).json();
    };
    or_reply!(require(&s, &headers, &format!("/api/v1/records/{kind_id}"), Role::Viewer).await);
    let g = s.governance.as_ref().expect("checked by require");
    let number = |name: &str, max: usize, default: usize| -> Result<usize, Response> {
        match p.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| *n <= max).ok_or_else(|| {
                WebError::BadParameter(name.into(), format!("\"{v}\" is not a whole number from 0 to {max}")).json()
            }),
        }
    };
    let limit = or_reply!(number("limit", API_PAGE_MAX, API_PAGE)).max(1);
    let offset = or_reply!(number("offset", usize::MAX, 0));
    match g.store.records_page(kind.id, false, offset, limit).await {
        Ok((list, total)) => {
            let next = (offset.saturating_add(list.len()) < total)
                .then(|| format!("/api/v1/records/{}?limit={limit}&offset={}", kind.id, offset + list.len()));
            no_store(
                axum::Json(serde_json::json!({
                    "kind": kind.id,
                    "total": total,
                    "offset": offset,
                    "limit": limit,
                    "next": next,
                    "records": list.iter().map(|r| record_json(kind, r)).collect::<Vec<_>>(),
                }))
                .into_response(),
            )
        }
        Err(e) => WebError::Internal(e.to_string()).json(),
    }
}

/// Records per API page by default, and at most.
pub const API_PAGE: usize = 100;
/// See [`API_PAGE`].
pub const API_PAGE_MAX: usize = 1_000;
/// Records per page of a governance list.
pub const LIST_PAGE: usize = 100;

/// `GET /api/v1/records/{kind}/{id}`: one record.
pub async fn api_record(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind_id, id)): Path<(String, i64)>,
) -> Response {
    let Some(kind) = kinds::kind(&kind_id) else {
        return WebError::NotFound(format!("There is no kind of governance record called \"{kind_id}\".")).json();
    };
    or_reply!(require(&s, &headers, &format!("/api/v1/records/{kind_id}/{id}"), Role::Viewer).await);
    let g = s.governance.as_ref().expect("checked by require");
    match g.store.record(id).await {
        Ok(Some(r)) if r.kind == kind.id => no_store(axum::Json(record_json(kind, &r)).into_response()),
        Ok(_) => {
            WebError::NotFound(format!("There is no {} {}.", kind.title.to_lowercase(), kind.reference(id))).json()
        }
        Err(e) => WebError::Internal(e.to_string()).json(),
    }
}

/// `GET /api/v1/session`: who is signed in, and the CSRF token that writes through the API must
/// send in the `X-CSRF-Token` header.
pub async fn api_session(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let session = or_reply!(require(&s, &headers, "/api/v1/session", Role::Viewer).await);
    no_store(
        axum::Json(serde_json::json!({
            "username": session.user.username, "role": session.user.role.as_str(), "csrf": session.csrf,
        }))
        .into_response(),
    )
}

/// A JSON error for a write: 422 with one message per field, 409 with the current record, or
/// the usual error JSON.
fn api_write_error(kind: &Kind, e: StoreError) -> Response {
    match e {
        StoreError::Invalid(errors) => {
            let body = serde_json::json!({ "error": { "code": "invalid", "message": "some fields need attention", "parameter": null, "fields": errors } });
            (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
        }
        StoreError::Conflict { current } => {
            let body = serde_json::json!({ "error": { "code": "conflict", "message": format!("{} changed after version you sent; its current version is {}", kind.reference(current.id), current.version), "parameter": "version", "current": record_json(kind, &current) } });
            (StatusCode::CONFLICT, axum::Json(body)).into_response()
        }
        StoreError::NotFound(m) => WebError::NotFound(m).json(),
        other => WebError::Internal(other.to_string()).json(),
    }
}

/// Checks role and the `X-CSRF-Token` header, and reads `{"fields": {…}}` (plus `version` for an
/// update) from the body.
async fn api_write_input(
    s: &Shared,
    headers: &HeaderMap,
    path: &str,
    body: &Bytes,
) -> Result<(Session, BTreeMap<String, String>, Option<i64>), Response> {
    let session = require(s, headers, path, Role::Editor).await?;
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !auth::same_secret(token, &session.csrf) {
        let body = serde_json::json!({ "error": { "code": "forbidden", "message": "send the session's CSRF token (GET /api/v1/session) in the X-CSRF-Token header", "parameter": "X-CSRF-Token" } });
        return Err((StatusCode::FORBIDDEN, axum::Json(body)).into_response());
    }
    let bad = |m: &str| WebError::BadParameter("body".into(), m.into()).json();
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(&format!("is not JSON: {e}")))?;
    let fields = value.get("fields").and_then(|f| f.as_object()).ok_or_else(|| bad("needs a \"fields\" object"))?;
    let mut input = BTreeMap::new();
    for (k, v) in fields {
        let text = match v {
            serde_json::Value::String(t) => t.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => String::new(),
            _ => return Err(bad(&format!("field \"{k}\" must be a string or a number"))),
        };
        input.insert(k.clone(), text);
    }
    Ok((session, input, value.get("version").and_then(serde_json::Value::as_i64)))
}

/// `POST /api/v1/records/{kind}`: creates a record from `{"fields": {…}}`; 201 with the record.
pub async fn api_create(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(kind_id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(kind) = kinds::kind(&kind_id) else {
        return WebError::NotFound(format!("There is no kind of governance record called \"{kind_id}\".")).json();
    };
    let (session, input, _) =
        or_reply!(api_write_input(&s, &headers, &format!("/api/v1/records/{kind_id}"), &body).await);
    let g = s.governance.as_ref().expect("checked by require");
    let data = match kinds::validate(kind, &input, &ReleaseLookups(&s.release)) {
        Ok(d) => d,
        Err(errors) => return api_write_error(kind, StoreError::Invalid(errors)),
    };
    match g.store.create(kind.id, data, &session.user.username).await {
        Ok(r) => no_store((StatusCode::CREATED, axum::Json(record_json(kind, &r))).into_response()),
        Err(e) => api_write_error(kind, e),
    }
}

/// `PUT /api/v1/records/{kind}/{id}`: replaces a record's fields, if it is still at `version`.
pub async fn api_update(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind_id, id)): Path<(String, i64)>,
    body: Bytes,
) -> Response {
    let Some(kind) = kinds::kind(&kind_id) else {
        return WebError::NotFound(format!("There is no kind of governance record called \"{kind_id}\".")).json();
    };
    let (session, input, version) =
        or_reply!(api_write_input(&s, &headers, &format!("/api/v1/records/{kind_id}/{id}"), &body).await);
    let Some(version) = version else {
        return WebError::BadParameter("version".into(), "send the version you are changing, from GET".into()).json();
    };
    let g = s.governance.as_ref().expect("checked by require");
    match g.store.record(id).await {
        Ok(Some(r)) if r.kind == kind.id => {}
        Ok(_) => {
            return WebError::NotFound(format!("There is no {} {}.", kind.title.to_lowercase(), kind.reference(id)))
                .json();
        }
        Err(e) => return api_write_error(kind, e),
    }
    let data = match kinds::validate(kind, &input, &ReleaseLookups(&s.release)) {
        Ok(d) => d,
        Err(errors) => return api_write_error(kind, StoreError::Invalid(errors)),
    };
    match g.store.update(id, version, data, &session.user.username).await {
        Ok(r) => no_store(axum::Json(record_json(kind, &r)).into_response()),
        Err(e) => api_write_error(kind, e),
    }
}

fn record_json(kind: &Kind, r: &Record) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "reference": kind.reference(r.id), "kind": r.kind, "version": r.version, "archived": r.archived,
        "fields": r.data, "created_at": r.created_at, "created_by": r.created_by, "updated_at": r.updated_at, "updated_by": r.updated_by,
    })
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

// ---------------------------------------------------------------------------------------------
// Accounts (admin)

/// Accounts: who can sign in, with what role; add, disable, enable and reset passwords.
pub async fn users(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let session = or_reply!(require(&s, &headers, "/gov/users", Role::Admin).await);
    users_page(&s, &session, None, &[], StatusCode::OK).await
}

/// Sign-in events listed on the accounts page.
const SIGN_IN_EVENTS_SHOWN: i64 = 100;

async fn users_page(
    s: &Shared,
    session: &Session,
    notice: Option<Markup>,
    errors: &[FieldError],
    status: StatusCode,
) -> Response {
    let g = s.governance.as_ref().expect("checked by require");
    let list = match g.store.users().await {
        Ok(l) => l,
        Err(e) => return store_error(e),
    };
    let events = match g.store.sign_in_events(SIGN_IN_EVENTS_SHOWN).await {
        Ok(l) => l,
        Err(e) => return store_error(e),
    };
    let error_for = |f: &str| errors.iter().find(|e| e.field == f).map(|e| e.message.clone());
    let mut r = gov_page(
        session,
        "Accounts",
        &[("Accounts".into(), "/gov/users".into())],
        html! {
            h1 { "Accounts" }
            p.lede { "Viewers read the governance records; editors create, edit and archive them; administrators also manage accounts. Changes here are in the audit trail." }
            @if let Some(n) = notice { div.warning-callout role="status" { (n) } }
            @if !errors.is_empty() {
                div.error-summary role="alert" tabindex="-1" { h2 { "There is a problem" } ul { @for e in errors { li { a href=(format!("#u-{}", e.field)) { (e.message) } } } } }
            }
            div.table-scroll role="region" aria-label="Accounts" tabindex="0" { table.table {
                caption.visually-hidden { "Accounts" }
                thead { tr { th scope="col" { "Username" } th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "State" } th scope="col" { "Change" } } }
                tbody { @for u in &list { tr {
                    td { (u.username) } td { (u.display_name) } td { (u.role.as_str()) }
                    td { @if u.disabled { (layout::tag("Disabled", "grey")) } @else { (layout::tag("Active", "green")) } }
                    td { @if u.username != session.user.username {
                        form.inline method="post" action=(format!("/gov/users/{}/{}", urlencode(&u.username), if u.disabled { "enable" } else { "disable" })) {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.link-button type="submit" { @if u.disabled { "Enable " } @else { "Disable " } span.visually-hidden { (u.username) } }
                        }
                        " · "
                        form.inline method="post" action=(format!("/gov/users/{}/reset-password", urlencode(&u.username))) {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.link-button type="submit" { "Reset password" span.visually-hidden { " of " (u.username) } }
                        }
                    } @else { "(you)" } }
                } } }
            } }
            h2 { "Add an account" }
            form.panel method="post" action="/gov/users" {
                input type="hidden" name="csrf" value=(session.csrf);
                @for (name, label, kind) in [("username", "Username", "text"), ("display_name", "Name shown in pages", "text")] {
                    div class=(if error_for(name).is_some() { "field field-error" } else { "field" }) {
                        label for=(format!("u-{name}")) { (label) }
                        @if let Some(e) = error_for(name) { span.error-message { span.visually-hidden { "Error: " } (e) } }
                        input id=(format!("u-{name}")) type=(kind) name=(name) autocomplete="off";
                    }
                }
                div.field {
                    label for="u-role" { "Role" }
                    select #u-role name="role" { @for r in ["viewer", "editor", "admin"] { option value=(r) { (r) } } }
                }
                p.hint { "A password is generated and shown once; give it to the person, who should keep it safe." }
                button.button type="submit" { "Add account" }
            }
            h2 #sign-ins { "Recent sign-ins" }
            p { "The latest " (SIGN_IN_EVENTS_SHOWN) " sign-ins, failed sign-ins, lock-outs and sign-outs, newest first. A run of failures from one address, or against one account, is someone guessing passwords: each account locks for 15 minutes after " (auth::MAX_FAILURES) " failures, and each address after " (auth::MAX_CLIENT_FAILURES) "." }
            div.table-scroll role="region" aria-label="Recent sign-ins" tabindex="0" { table.table {
                caption.visually-hidden { "Recent sign-ins" }
                thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "Username given" } th scope="col" { "From" } th scope="col" { "Detail" } } }
                tbody { @for e in &events { tr {
                    td { (crate::format::timestamp(&e.at)) }
                    td { @match e.event.as_str() {
                        "sign-in" => (layout::tag("Signed in", "green")),
                        "sign-out" => (layout::tag("Signed out", "grey")),
                        "sign-in.failed" => (layout::tag("Failed", "orange")),
                        _ => (layout::tag("Locked out", "red")),
                    } }
                    td { (e.username) } td { (e.client) } td { (e.detail) }
                } } }
            } }
        },
    );
    *r.status_mut() = status;
    r
}

/// Adds an account with a generated password, shown once.
pub async fn add_user(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, form, _) = or_reply!(submitted(&s, &headers, "/gov/users", Role::Admin, &body).await);
    let g = s.governance.as_ref().expect("checked by require");
    let username = form.get("username").map(|x| x.trim()).unwrap_or("");
    let role = form.get("role").and_then(|r| Role::parse(r)).unwrap_or(Role::Viewer);
    let password = auth::generate_password();
    match g
        .store
        .add_user(
            username,
            form.get("display_name").map_or("", String::as_str),
            role,
            &password,
            &session.user.username,
        )
        .await
    {
        Ok(u) => {
            let notice = html! { p { "Added " strong { (u.username) } " (" (u.role.as_str()) "). Their password, shown only this once: " code { (password) } } };
            users_page(&s, &session, Some(notice), &[], StatusCode::OK).await
        }
        Err(StoreError::Invalid(errors)) => {
            users_page(&s, &session, None, &errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(StoreError::Duplicate(name)) => {
            let errors = [FieldError::new("username", format!("There is already an account called \"{name}\""))];
            users_page(&s, &session, None, &errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => store_error(e),
    }
}

/// Disables, enables or resets the password of an account (never one's own here).
pub async fn change_user(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((username, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (session, _, _) = or_reply!(submitted(&s, &headers, "/gov/users", Role::Admin, &body).await);
    let g = s.governance.as_ref().expect("checked by require");
    // The account the store will change, found as the store finds it (trimmed, case-insensitive),
    // compared by id: `admin2%20` is admin2.
    let target = match g.store.users().await {
        Ok(list) => list.into_iter().find(|u| u.username.eq_ignore_ascii_case(username.trim())),
        Err(e) => return store_error(e),
    };
    if target.is_some_and(|u| u.id == session.user.id) {
        return forbidden(
            "You cannot change your own account here; ask another administrator, or use `ipmo user` on the server.",
        );
    }
    let actor = session.user.username.as_str();
    let result = match action.as_str() {
        "disable" => g
            .store
            .set_disabled(&username, true, actor)
            .await
            .map(|u| html! { p { "Disabled " strong { (u.username) } "; their sessions have ended." } }),
        "enable" => g
            .store
            .set_disabled(&username, false, actor)
            .await
            .map(|u| html! { p { "Enabled " strong { (u.username) } "." } }),
        "reset-password" => {
            let password = auth::generate_password();
            g.store.set_password(&username, &password, actor).await.map(|u| html! { p { "New password for " strong { (u.username) } ", shown only this once: " code { (password) } } })
        }
        _ => return WebError::NotFound(format!("There is no page at /gov/users/{username}/{action}.")).into_response(),
    };
    match result {
        Ok(notice) => users_page(&s, &session, Some(notice), &[], StatusCode::OK).await,
        Err(e) => store_error(e),
    }
}
