//! Signing in and out: the sign-in form with its own CSRF cookie, the account and address
//! limits checked before any password is, the bounded password pool, the session cookie, and
//! every sign-in event logged for the operator and kept for administrators.

use super::access::{self, check_csrf, cookie, forbidden, form_fields, session_cookie, session_of};
use super::{Governance, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::layout;
use crate::{Shared, WebError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use ipmo_governance::auth;
use ipmo_governance::store::StoreError;
use maud::html;

/// The sign-in form.
pub(super) async fn login_page(State(s): State<Shared>, p: crate::params::Params) -> Response {
    let g = or_reply!(access::workspace(&s));
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
/// [`super::GovSettings::behind_proxy`] the last address the proxy appended to `X-Forwarded-For`.
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
pub(super) async fn login(
    State(s): State<Shared>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let g = or_reply!(access::workspace(&s));
    let form = or_reply!(form_fields(&body));
    let expected = access::login_csrf(&headers);
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
    if let Some(refused) = locked_out(g, username, &client, next).await {
        return refused;
    }
    let user = match g.store.authenticate(username, password).await {
        Ok(Some(u)) => u,
        Ok(None) => return failed_sign_in(g, username, &client, next).await,
        Err(StoreError::Busy(busy)) => {
            tracing::warn!(target: "ipmo::auth", event = "sign-in.busy", client, "password pool full");
            let r = login_form(g, next, Some(&format!("Sorry, {busy}.")), username);
            return crate::retry_later(r, StatusCode::SERVICE_UNAVAILABLE, BUSY_RETRY);
        }
        Err(e) => return WebError::Internal(e.to_string()).into_response(),
    };
    let session = match g.store.start_session(&user).await {
        Ok(s) => s,
        Err(e) => return WebError::Internal(e.to_string()).into_response(),
    };
    sign_in_event(g, "sign-in", &user.username, &client, "").await;
    let mut r = Redirect::to(next).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session_cookie(g, SESSION_COOKIE, &session.token, ipmo_governance::sql::SESSION_HOURS * 3600),
    );
    r.headers_mut().append(header::SET_COOKIE, session_cookie(g, LOGIN_CSRF_COOKIE, "", 0));
    r
}

/// The 429 for an account or address over its limit of failed sign-ins, before any password is
/// checked. The counts come from the sign-in log in the database, so servers sharing it agree;
/// when the log cannot be read the attempt is refused (500) rather than let through
/// uncounted.
async fn locked_out(g: &Governance, username: &str, client: &str, next: &str) -> Option<Response> {
    let failures = match g.store.recent_failures(username, client).await {
        Ok(f) => f,
        Err(e) => return Some(WebError::Internal(format!("the sign-in log cannot be read: {e}")).into_response()),
    };
    let (wait, whose) = match failures.refusal(chrono::Utc::now())? {
        auth::Refusal::Account(w) => (w, "this account"),
        auth::Refusal::Client(w) => (w, "your network address"),
    };
    tracing::warn!(target: "ipmo::auth", event = "sign-in.refused", username, client, "locked out");
    let message =
        format!("Too many failed sign-ins from {whose}. Try again in {} minutes.", wait.as_secs().div_ceil(60));
    Some(crate::retry_later(login_form(g, next, Some(&message), username), StatusCode::TOO_MANY_REQUESTS, wait))
}

/// A wrong username or password: counted against the account and the address (logged, with any
/// lock-out it causes), and the form again.
async fn failed_sign_in(g: &Governance, username: &str, client: &str, next: &str) -> Response {
    sign_in_event(g, "sign-in.failed", username, client, "").await;
    // This failure locks the account or address when it is the one that reaches the limit.
    if let Ok(now) = g.store.recent_failures(username, client).await {
        if now.account.len() == auth::MAX_FAILURES && now.refusal(chrono::Utc::now()).is_some() {
            sign_in_event(g, "lockout.account", username, client, "the account is locked for 15 minutes").await;
        }
        if now.client.len() == auth::MAX_CLIENT_FAILURES {
            sign_in_event(g, "lockout.client", username, client, "the address is locked for 15 minutes").await;
        }
    }
    login_form(g, next, Some("The username or password is not right, or the account is disabled."), username)
}

/// Whether `next` is a path on this site, so that signing in cannot send anyone elsewhere
/// (`//host` and `/\\host` are other hosts to a browser).
fn local_path(next: &str) -> bool {
    next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.chars().any(char::is_control)
}

/// Ends the session.
pub(super) async fn logout(
    State(s): State<Shared>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let g = or_reply!(access::workspace(&s));
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
