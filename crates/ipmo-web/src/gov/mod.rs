//! The governance workspace: sign-in, sessions, CSRF, roles, accounts, and list / view / create /
//! edit / archive pages for every record kind, with CSV export and JSON, and the views that join
//! records to the prescribing data (risk register, assurance framework, plans on a page,
//! organograms, workforce plan). Pages here depend on who is signed in and on data that changes,
//! so none of them is cached or given an ETag.
//!
//! Every handler starts with [`access::require`], which answers with the refusal (sign in first,
//! 403, 404 when the workspace is off) or gives the handler the store and the session together.

// Helpers here return the refusal itself (a redirect to sign in, a 403 or 404 page) as their
// error, which the handler sends as it is; boxing it would add an allocation for nothing.
#![allow(clippy::result_large_err)]

mod access;
mod api;
mod cells;
mod forms;
mod organogram;
mod records;
mod report_page;
mod sign_in;
mod users;
mod value;
mod views;
mod workforce;

pub(crate) use access::session_of;
pub(crate) use report_page::MAX_REPORTS;

use crate::Shared;
use axum::Router;
use axum::routing::{get, post};
use ipmo_governance::store::GovernanceStore;
use std::sync::Arc;

/// Session cookie name.
pub(crate) const SESSION_COOKIE: &str = "ipmo_session";
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
#[derive(Clone)]
pub struct Governance {
    /// Where records live.
    pub store: Arc<dyn GovernanceStore>,
    /// Behaviour.
    pub settings: GovSettings,
}

/// Paths whose responses depend on the user or on changing data: never cached, never tagged.
pub(crate) fn is_dynamic(path: &str) -> bool {
    path == "/login"
        || path == "/logout"
        || path.starts_with("/gov")
        || path.starts_with("/api/v1/records")
        || path == "/api/v1/session"
}

/// Paths anyone may open even when the dashboard is private.
pub(crate) fn is_open(path: &str) -> bool {
    path == "/login" || path.starts_with("/assets/") || path == "/favicon.ico"
}

/// Every governance route: sign-in, the workspace's pages and the records API.
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/login", get(sign_in::login_page).post(sign_in::login))
        .route("/logout", post(sign_in::logout))
        .route("/gov", get(records::overview))
        .route("/gov/audit", get(records::audit_trail))
        .route("/gov/users", get(users::users).post(users::add_user))
        .route("/gov/users/{username}/{action}", post(users::change_user))
        .route("/gov/assurance", get(views::assurance))
        .route("/gov/plans", get(views::plans))
        .route("/gov/organogram", get(organogram::page))
        .route("/gov/workforce", get(workforce::page))
        .route("/gov/report", get(report_page::page))
        .route("/gov/report/file", get(report_page::file))
        .route("/gov/{kind}", get(records::list))
        .route("/gov/{kind}/new", get(forms::new_form).post(forms::create))
        .route("/gov/{kind}/{id}", get(records::view))
        .route("/gov/{kind}/{id}/edit", get(forms::edit_form).post(forms::update))
        .route("/gov/{kind}/{id}/{action}", post(records::archive))
        .route("/api/v1/session", get(api::session))
        .route("/api/v1/records/{kind}", get(api::list).post(api::create))
        .route("/api/v1/records/{kind}/{id}", get(api::record).put(api::update))
}
