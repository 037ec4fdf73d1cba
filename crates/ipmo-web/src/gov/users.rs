//! Accounts, for administrators: who can sign in and with what role, adding an account with a
//! generated password shown once, disabling, enabling and resetting (never one's own account
//! here), and the latest sign-in events.

use super::access::{Access, Submitted, forbidden, gov_page, require, store_error, submitted};
use crate::layout;
use crate::{Shared, WebError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ipmo_governance::kinds::FieldError;
use ipmo_governance::store::{SignInEvent, StoreError};
use ipmo_governance::{Role, auth};
use maud::{Markup, html};

/// Accounts: who can sign in, with what role; add, disable, enable and reset passwords.
pub(super) async fn users(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let access = or_reply!(require(&s, &headers, "/gov/users", Role::Admin).await);
    users_page(&access, None, &[], StatusCode::OK).await
}

/// Sign-in events listed on the accounts page.
const SIGN_IN_EVENTS_SHOWN: i64 = 100;

async fn users_page(
    access: &Access<'_>,
    notice: Option<Markup>,
    errors: &[FieldError],
    status: StatusCode,
) -> Response {
    let (g, session) = (access.gov, &access.session);
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
                        form.inline method="post" action=(format!("/gov/users/{}/{}", crate::params::urlencode(&u.username), if u.disabled { "enable" } else { "disable" })) {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.link-button type="submit" { @if u.disabled { "Enable " } @else { "Disable " } span.visually-hidden { (u.username) } }
                        }
                        " · "
                        form.inline method="post" action=(format!("/gov/users/{}/reset-password", crate::params::urlencode(&u.username))) {
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
            (sign_in_events(&events))
        },
    );
    *r.status_mut() = status;
    r
}

/// The latest sign-in events, newest first, with how lock-outs work.
fn sign_in_events(events: &[SignInEvent]) -> Markup {
    html! {
        h2 #sign-ins { "Recent sign-ins" }
        p { "The latest " (SIGN_IN_EVENTS_SHOWN) " sign-ins, failed sign-ins, lock-outs and sign-outs, newest first. A run of failures from one address, or against one account, is someone guessing passwords: each account locks for 15 minutes after " (auth::MAX_FAILURES) " failures, and each address after " (auth::MAX_CLIENT_FAILURES) "." }
        div.table-scroll role="region" aria-label="Recent sign-ins" tabindex="0" { table.table {
            caption.visually-hidden { "Recent sign-ins" }
            thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "Username given" } th scope="col" { "From" } th scope="col" { "Detail" } } }
            tbody { @for e in events { tr {
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
    }
}

/// Adds an account with a generated password, shown once.
pub(super) async fn add_user(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Submitted { access, form, .. } = or_reply!(submitted(&s, &headers, "/gov/users", Role::Admin, &body).await);
    let (g, session) = (access.gov, &access.session);
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
            users_page(&access, Some(notice), &[], StatusCode::OK).await
        }
        Err(StoreError::Invalid(errors)) => users_page(&access, None, &errors, StatusCode::UNPROCESSABLE_ENTITY).await,
        Err(StoreError::Duplicate(name)) => {
            let errors = [FieldError::new("username", format!("There is already an account called \"{name}\""))];
            users_page(&access, None, &errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => store_error(e),
    }
}

/// Disables, enables or resets the password of an account (never one's own here).
pub(super) async fn change_user(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((username, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Submitted { access, .. } = or_reply!(submitted(&s, &headers, "/gov/users", Role::Admin, &body).await);
    let (g, session) = (access.gov, &access.session);
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
        Ok(notice) => users_page(&access, Some(notice), &[], StatusCode::OK).await,
        Err(e) => store_error(e),
    }
}
