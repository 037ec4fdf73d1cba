//! Who may do what: the session behind a request, the role a page needs, the CSRF token of a
//! form, and the refusals (sign in first, 403, 404) as the responses to send. A handler calls
//! [`require`] (or [`submitted`] for a form) first and gets an [`Access`]: the store and the
//! session together, so no handler has to look the workspace up again and assume it is there.

use super::{Governance, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::layout::{self, Crumb};
use crate::{Shared, WebError};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use ipmo_governance::kinds::{self, Kind};
use ipmo_governance::store::{Record, Session, StoreError};
use ipmo_governance::{Role, auth};
use maud::{Markup, html};
use std::collections::BTreeMap;

/// A request that passed its checks: the workspace it may use and who is asking.
pub(super) struct Access<'a> {
    /// The governance store and settings.
    pub gov: &'a Governance,
    /// The signed-in session, holding a role at least the one required.
    pub session: Session,
}

/// A submitted form that passed its checks: the access, its fields (without the form's own
/// `csrf` and `version`) and the version it was opened at, if it carries one.
pub(super) struct Submitted<'a> {
    /// Who sent it.
    pub access: Access<'a>,
    /// The fields, by name.
    pub form: BTreeMap<String, String>,
    /// The record version the form was opened at.
    pub version: Option<i64>,
}

/// A cookie's value from the request.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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
pub(crate) async fn session_of(gov: &Governance, headers: &HeaderMap) -> Option<Session> {
    let token = cookie(headers, SESSION_COOKIE)?;
    gov.store.session(token).await.ok().flatten()
}

/// The workspace, or 404 when this server runs without one.
pub(super) fn workspace(s: &Shared) -> Result<&Governance, Response> {
    s.governance.as_ref().ok_or_else(|| {
        WebError::NotFound("The governance workspace is not switched on for this server.".into()).into_response()
    })
}

/// Why a governance request was refused, as the right response.
fn sign_in_first(path: &str, api: bool) -> Response {
    if api {
        return crate::error::api_error(
            StatusCode::UNAUTHORIZED,
            crate::error::ApiCode::Unauthorised,
            "sign in first (POST /login)",
            None,
        );
    }
    Redirect::to(&format!("/login?next={}", crate::params::urlencode(path))).into_response()
}

/// The 403 page, with what to do about it.
pub(super) fn forbidden(message: &str) -> Response {
    let body = layout::page(
        "You do not have access",
        &[],
        None,
        html! { h1 { "You do not have access" } p.lede { (message) } p { a href="/gov" { "Go to the governance workspace" } } },
    );
    (StatusCode::FORBIDDEN, Html(body.into_string())).into_response()
}

/// The access of a governance page or API route, or the response that sends the visitor to
/// sign in or tells them they lack the role.
pub(super) async fn require<'a>(
    s: &'a Shared,
    headers: &HeaderMap,
    path: &str,
    role: Role,
) -> Result<Access<'a>, Response> {
    let gov = workspace(s)?;
    let api = path.starts_with("/api/");
    let session = session_of(gov, headers).await.ok_or_else(|| sign_in_first(path, api))?;
    if session.user.role < role {
        if api {
            return Err(crate::error::api_error(
                StatusCode::FORBIDDEN,
                crate::error::ApiCode::Forbidden,
                format!("this needs the {} role", role.as_str()),
                None,
            ));
        }
        return Err(forbidden(&format!(
            "This needs the {} role; you are signed in as {} with the {} role. Ask an administrator if you need more.",
            role.as_str(),
            session.user.username,
            session.user.role.as_str()
        )));
    }
    Ok(Access { gov, session })
}

/// A submitted form's fields. Refuses a body that is not a form with 400.
pub(super) fn form_fields(body: &Bytes) -> Result<BTreeMap<String, String>, Response> {
    let text = std::str::from_utf8(body)
        .map_err(|_| WebError::BadParameter("form".into(), "is not UTF-8".into()).into_response())?;
    crate::params::decode_pairs(text, 4 * kinds::MAX_TEXT).map_err(IntoResponse::into_response)
}

/// Refuses a form without the session's CSRF token with 403.
pub(super) fn check_csrf(session: &Session, form: &BTreeMap<String, String>) -> Result<(), Response> {
    match form.get("csrf") {
        Some(t) if auth::same_secret(t, &session.csrf) => Ok(()),
        _ => Err(forbidden(
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        )),
    }
}

/// Takes a submitted form apart once the sender is known to hold `role`: the CSRF token is
/// checked, and the fields are returned apart from the form's own (`csrf`, `version`).
pub(super) async fn submitted<'a>(
    s: &'a Shared,
    headers: &HeaderMap,
    path: &str,
    role: Role,
    body: &Bytes,
) -> Result<Submitted<'a>, Response> {
    let access = require(s, headers, path, role).await?;
    let mut form = form_fields(body)?;
    check_csrf(&access.session, &form)?;
    form.remove("csrf");
    let version = match form.remove("version") {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| WebError::BadParameter("version".into(), "is not a number".into()).into_response())?,
        ),
        None => None,
    };
    Ok(Submitted { access, form, version })
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, and Secure when the settings say so.
pub(super) fn session_cookie(g: &Governance, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if g.settings.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static("ipmo=; Max-Age=0"))
}

/// The login form's own CSRF cookie (set before anyone is signed in).
pub(super) fn login_csrf(headers: &HeaderMap) -> &str {
    cookie(headers, LOGIN_CSRF_COOKIE).unwrap_or("")
}

/// The governance pages' shell: the dashboard's layout with who is signed in and a sign-out
/// button.
pub(super) fn gov_page(session: &Session, title: &str, crumbs: &[Crumb], main: Markup) -> Response {
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

/// The record kind named in a path, or 404.
pub(super) fn kind_or_404(id: &str) -> Result<&'static Kind, Response> {
    kinds::kind(id).ok_or_else(|| {
        WebError::NotFound(format!("There is no kind of governance record called \"{id}\".")).into_response()
    })
}

/// A store failure as a page: 404 for a missing record, 500 (logged) for anything else.
pub(super) fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(m) => WebError::NotFound(m).into_response(),
        other => WebError::Internal(other.to_string()).into_response(),
    }
}

/// A record of `kind` by id, or 404 when there is none of that kind.
pub(super) async fn load(g: &Governance, kind: &Kind, id: i64) -> Result<Record, Response> {
    match g.store.record(id).await {
        Ok(Some(r)) if r.kind == kind.id => Ok(r),
        Ok(_) => Err(WebError::NotFound(format!("There is no {} {}.", kind.title.to_lowercase(), kind.reference(id)))
            .into_response()),
        Err(e) => Err(store_error(e)),
    }
}

/// The current (not archived) records of each kind named, read one kind after another; a store
/// failure is the response to send.
pub(super) async fn current_records<const N: usize>(
    g: &Governance,
    kinds: [&str; N],
) -> Result<[Vec<Record>; N], Response> {
    let mut out: [Vec<Record>; N] = std::array::from_fn(|_| Vec::new());
    for (slot, kind) in out.iter_mut().zip(kinds) {
        *slot = g.store.records(kind, false).await.map_err(store_error)?;
    }
    Ok(out)
}
