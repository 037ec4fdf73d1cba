//! The web dashboard and JSON API. Everything is rendered on the server from a loaded
//! [`Release`]: HTML pages in the NHS.UK look with SVG charts (each with a data table), CSV
//! downloads, and `/api/v1` JSON. No page asks another host for anything, and no request can run
//! an unbounded query: pages read the release in memory, and analyses are bounded by the index's
//! limits and a timeout.
//!
//! Every response is a function of the release and the URL, so its ETag is the release id plus a
//! hash of the URL: a repeat request with `If-None-Match` gets `304 Not Modified` without any
//! rendering.

/// The value of a `Result` whose error is the response to send: returns that response from the
/// handler. Governance handlers check sign-in, role, CSRF and the record one after another, and
/// each refusal is already the page to show.
macro_rules! or_reply {
    ($e:expr) => {
        match $e {
            Ok(x) => x,
            Err(response) => return response,
        }
    };
}

mod analyse_request;
mod api;
mod apidoc;
mod charts;
mod csv;
mod dashboard;
mod error;
mod explore;
mod format;
mod gov;
mod layout;
mod measure_pages;
mod pages;
mod params;
mod ppu;
mod practices;
mod price_impacts;
pub mod report;
mod system;

pub use error::{ApiCode, WebError};
pub use gov::{GovSettings, Governance};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
pub use ipmo_release::Release;
use std::sync::Arc;
use std::time::Duration;

/// How long any request may take before it is abandoned with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What every handler sees.
pub struct AppState {
    /// The data served.
    pub release: Release,
    /// The governance workspace, when a store is attached.
    pub governance: Option<Governance>,
    cache: PageCache,
    /// Savings schemes measured, by record version: the ledger, assurance, status and plan pages
    /// all read them.
    schemes: Memo<ipmo_programme::ledger::Measurement>,
    /// Horizon-scan items' impacts, by record version.
    horizon: Memo<Result<ipmo_programme::horizon::Impact, String>>,
    /// National presentation activity for the horizon scan's signals, worked out on first use.
    activity: std::sync::OnceLock<Result<Option<ipmo_programme::horizon::NationalActivity>, String>>,
    /// Turns to build a board report: at most [`gov::MAX_REPORTS`] at once.
    reports: tokio::sync::Semaphore,
}

impl AppState {
    /// State serving `release` (the dashboard only).
    pub fn new(release: Release) -> Self {
        Self {
            release,
            governance: None,
            cache: PageCache::default(),
            schemes: Memo::default(),
            horizon: Memo::default(),
            activity: Default::default(),
            reports: tokio::sync::Semaphore::new(gov::MAX_REPORTS),
        }
    }

    /// A savings scheme measured from the release, once per record version.
    pub(crate) fn scheme(&self, rec: &ipmo_governance::store::Record) -> Arc<ipmo_programme::ledger::Measurement> {
        self.schemes.get(rec, || ipmo_programme::ledger::measure(&self.release, rec))
    }

    /// A savings scheme's RAG to date and why (None when it cannot be measured yet): what the
    /// assurance framework, the status, the plans and the board report show.
    pub(crate) fn scheme_rag(&self, rec: &ipmo_governance::store::Record) -> (Option<&'static str>, String) {
        match self.scheme(rec).as_ref() {
            Ok((_, real)) => (real.rag, real.why.clone()),
            Err(e) => (None, e.clone()),
        }
    }

    /// A horizon-scan item's impact a year, once per record version.
    pub(crate) fn horizon_impact(
        &self,
        rec: &ipmo_governance::store::Record,
    ) -> Arc<Result<ipmo_programme::horizon::Impact, String>> {
        self.horizon.get(rec, || ipmo_programme::horizon::impact(&self.release, rec))
    }

    /// The release's national presentation activity, worked out by the first request that needs
    /// it (a national index reads several months of rows) and kept for the release's life.
    pub(crate) fn activity(&self) -> Result<Option<&ipmo_programme::horizon::NationalActivity>, &str> {
        let found = self.activity.get_or_init(|| match &self.release.index {
            Some(index) => ipmo_programme::horizon::national_activity(index),
            None => Err("The prescribing index is not loaded.".into()),
        });
        found.as_ref().map(Option::as_ref).map_err(String::as_str)
    }

    /// State serving `release` and the governance workspace kept in `store`.
    pub fn with_governance(
        release: Release,
        store: Arc<dyn ipmo_governance::GovernanceStore>,
        settings: GovSettings,
    ) -> Self {
        let governance = Governance { store, settings };
        Self { governance: Some(governance), ..Self::new(release) }
    }

    /// State serving `release` with this state's governance workspace (its store, settings and
    /// sign-in limits), and fresh caches: every cached page and measured scheme belongs to the
    /// release it was made from.
    pub fn with_release(&self, release: Release) -> Self {
        Self { governance: self.governance.clone(), ..Self::new(release) }
    }
}

/// The site being served: its state and router, replaced whole when a newer data release has
/// been loaded. A request takes the router current when it arrives, so requests in flight finish
/// on the release they began with and no request waits for, or is dropped by, the swap.
#[derive(Clone)]
pub struct Site(Arc<std::sync::RwLock<(Shared, Router)>>);

impl Site {
    /// A site serving `state`.
    pub fn new(state: Shared) -> Self {
        let router = router(state.clone());
        Site(Arc::new(std::sync::RwLock::new((state, router))))
    }

    /// The state served now.
    pub fn state(&self) -> Shared {
        self.0.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    fn router(&self) -> Router {
        self.0.read().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    /// Serves `release` from the next request on, keeping the governance workspace.
    pub fn replace_release(&self, release: Release) {
        let state = Arc::new(self.state().with_release(release));
        let router = router(state.clone());
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = (state, router);
    }
}

/// Most results a [`Memo`] keeps; past this it starts afresh.
const MAX_MEMO: usize = 10_000;

/// What a governance record's figures come to, worked out from the release once per record
/// version: the figures change only with the record (a new version) or the release (a new
/// state), so pages that show them many times over compute them once.
struct Memo<T>(std::sync::Mutex<std::collections::HashMap<(i64, i64), Arc<T>>>);

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Self(std::sync::Mutex::new(std::collections::HashMap::new()))
    }
}

impl<T> Memo<T> {
    /// The record's result, working it out with `compute` the first time.
    fn get(&self, rec: &ipmo_governance::store::Record, compute: impl FnOnce() -> T) -> Arc<T> {
        let key = (rec.id, rec.version);
        let lock = || self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = lock().get(&key) {
            return found.clone();
        }
        let result = Arc::new(compute());
        let mut memo = lock();
        // Bounded: a record's older versions are never asked for again.
        if memo.len() >= MAX_MEMO {
            memo.clear();
        }
        memo.insert(key, result.clone());
        result
    }
}

/// Most bytes of rendered responses kept; past this the cache starts afresh.
const CACHE_BYTES: usize = 256 << 20;
/// Largest single response kept.
const CACHE_ONE: usize = 4 << 20;

/// Rendered responses by URL. The release never changes while the server runs, so a response is
/// a function of its URL and can be kept: the second visitor to a national measure page gets the
/// bytes the first one caused to be rendered. Bounded by [`CACHE_BYTES`].
#[derive(Default)]
struct PageCache {
    pages: std::sync::Mutex<(Pages, usize)>,
}

/// URL → (content type, body).
type Pages = rustc_hash::FxHashMap<String, (HeaderValue, axum::body::Bytes)>;

impl PageCache {
    fn get(&self, uri: &str) -> Option<(HeaderValue, axum::body::Bytes)> {
        self.pages.lock().ok()?.0.get(uri).cloned()
    }

    fn put(&self, uri: String, content_type: HeaderValue, body: axum::body::Bytes) {
        if body.len() > CACHE_ONE {
            return;
        }
        if let Ok(mut guard) = self.pages.lock() {
            let (pages, bytes) = &mut *guard;
            if *bytes + body.len() > CACHE_BYTES {
                pages.clear();
                *bytes = 0;
            }
            *bytes += body.len();
            pages.insert(uri, (content_type, body));
        }
    }
}

/// Shared state.
pub type Shared = Arc<AppState>;

/// Every query parameter a dashboard page or API route reads. A response is cached under its
/// path and these parameters, sorted; a request with any other parameter is answered but not
/// cached, so unique junk query strings (`?cb=1`, `?cb=2`, …) cannot fill the cache.
const KNOWN_PARAMETERS: &[&str] = &[
    "code",
    "den",
    "exclude",
    "format",
    "from",
    "highlight",
    "level",
    "limit",
    "month",
    "num",
    "offset",
    "org",
    "org_type",
    "page",
    "parent",
    "q",
    "sort",
    "theme",
    "to",
    "value",
    "view",
    "within",
];

/// The cache key of a request: its path and known parameters, decoded and sorted; None when it
/// carries a parameter no page reads (or a query that does not decode).
fn cache_key(uri: &axum::http::Uri) -> Option<String> {
    let params = params::decode_pairs(uri.query().unwrap_or(""), 4_000).ok()?;
    if params.keys().any(|k| !KNOWN_PARAMETERS.contains(&k.as_str())) {
        return None;
    }
    let mut key = uri.path().to_string();
    for (i, (k, v)) in params.iter().filter(|(_, v)| !v.trim().is_empty()).enumerate() {
        key.push(if i == 0 { '?' } else { '&' });
        key.push_str(&format!("{k}={}", params::urlencode(v.trim())));
    }
    Some(key)
}

/// ETag for a URL in this release.
fn etag(release_id: &str, uri: &str) -> String {
    // FNV-1a: stable across builds and platforms (the std hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uri.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{release_id}-{h:016x}\"")
}

/// Answers `If-None-Match` with 304 before any rendering, serves a page already rendered from the
/// cache, tags successful GETs with their ETag, and abandons requests that run past
/// [`REQUEST_TIMEOUT`].
async fn caching(State(state): State<Shared>, headers: HeaderMap, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if let Some(g) = &state.governance
        && !g.settings.public_dashboard
        && !gov::is_open(&path)
        && !gov::is_dynamic(&path)
        && gov::session_of(g, &headers).await.is_none()
    {
        // A private dashboard: everything but the sign-in page and assets needs a session.
        let e = WebError::Unauthorised("Sign in to read the dashboard.".into());
        let wanted = request.uri().path_and_query().map_or(path.as_str(), |p| p.as_str());
        return security_headers(if path.starts_with("/api/") {
            e.json()
        } else {
            axum::response::Redirect::to(&format!("/login?next={}", params::urlencode(wanted))).into_response()
        });
    }
    if gov::is_dynamic(&path) {
        // Pages that depend on who asks and on records that change: never cached or tagged.
        let response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
            Ok(r) => r,
            Err(_) => timed_out(&path),
        };
        let mut response = api_errors_as_json(response, &path).await;
        response.headers_mut().entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
        return security_headers(response);
    }
    // (The ETag check comes first: a client that holds the page needs nothing rendered or read.)
    let uri = request.uri().to_string();
    let key = cache_key(request.uri());
    let tag = etag(&state.release.id, key.as_deref().unwrap_or(&uri));
    let private = state.governance.as_ref().is_some_and(|g| !g.settings.public_dashboard);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if matches {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&tag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        r.headers_mut().insert(header::CACHE_CONTROL, cache_control(private));
        return security_headers(r);
    }
    let cacheable = request.method() == axum::http::Method::GET;
    if cacheable
        && let Some(key) = &key
        && let Some((content_type, body)) = state.cache.get(key)
    {
        let mut r = Response::new(axum::body::Body::from(body));
        r.headers_mut().insert(header::CONTENT_TYPE, content_type);
        return finish(r, &tag, private);
    }
    let mut response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(r) => r,
        Err(_) => return security_headers(timed_out(&path)),
    };
    if cacheable
        && let Some(key) = key
        && response.status() == StatusCode::OK
        && !response.headers().contains_key(header::CONTENT_DISPOSITION)
        && let Some(content_type) = response.headers().get(header::CONTENT_TYPE).cloned()
    {
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, CACHE_ONE * 4).await {
            Ok(b) => b,
            Err(_) => return WebError::Internal("a response could not be read back".into()).into_response(),
        };
        state.cache.put(key, content_type, bytes.clone());
        response = Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    finish(api_errors_as_json(response, &path).await, &tag, private)
}

/// Revalidate before use; in a private dashboard, also keep it out of shared caches.
fn cache_control(private: bool) -> HeaderValue {
    HeaderValue::from_static(if private { "private, no-cache" } else { "no-cache" })
}

/// The API answers every error as `{"error": {…}}`: rejections made before a handler runs
/// (a path segment that is not a number, a body over the limit, a wrong method) come back from
/// axum as plain text, and are rewritten here with their message.
async fn api_errors_as_json(response: Response, path: &str) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let status = response.status();
    if !path.starts_with("/api/") || is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10).await.map(|b| String::from_utf8_lossy(&b).into_owned());
    let message: String = text.unwrap_or_default().trim().chars().take(300).collect();
    let mut r = error::api_error(status, error::ApiCode::for_status(status), message, None);
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            r.headers_mut().insert(name.clone(), value.clone());
        }
    }
    r
}

/// A refusal that tells the client when to come back.
pub(crate) fn retry_later(mut r: Response, status: StatusCode, after: Duration) -> Response {
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The answer to a request that ran past [`REQUEST_TIMEOUT`]: 503 (as JSON on the API), since
/// trying again later may well work (a long write lock on the governance database, a busy server).
fn timed_out(path: &str) -> Response {
    let e = WebError::Internal("the request took too long and was stopped; try again in a moment".into());
    let r = if path.starts_with("/api/") { e.json() } else { e.into_response() };
    retry_later(r, StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(5))
}

/// Headers every response gets: the ETag and revalidation on success, and the security headers.
fn finish(mut response: Response, tag: &str, private: bool) -> Response {
    if response.status() == StatusCode::OK {
        if let Ok(v) = HeaderValue::from_str(tag) {
            response.headers_mut().insert(header::ETAG, v);
        }
        response.headers_mut().insert(header::CACHE_CONTROL, cache_control(private));
    }
    security_headers(response)
}

/// The content security policy: everything from this site only, no plugins, no `<base>`, forms
/// post only here, and no framing by anyone.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The security headers, on every response (304s included): the policy above, no MIME sniffing,
/// no framing (for browsers that predate `frame-ancestors`), and no record ids or filters in the
/// Referer sent to other sites.
fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// The dashboard's stylesheet and, after it, the board report's (all under `.report`).
static STYLESHEET: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{}\n{}", include_str!("../assets/ipmo.css"), ipmo_report::html::STYLE));

async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLESHEET.as_str())
}

async fn favicon() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml")], include_str!("../assets/favicon.svg"))
}

async fn not_found(request: Request) -> Response {
    let path = request.uri().path().to_string();
    let e = WebError::NotFound(format!("There is no page at {path}."));
    if path.starts_with("/api/") { e.json() } else { e.into_response() }
}

/// One line per request at `info` (target `ipmo::access`): method, path (never the query, which may
/// hold what a user typed), status, time taken and the data release served, so an operator can
/// see what the server did and which release it did it from.
async fn access_log(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let response = next.run(request).await;
    tracing::info!(
        target: "ipmo::access",
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        release = %state.release.id,
        "request"
    );
    response
}

/// Every route of the dashboard and the API.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/search", get(pages::search))
        .route("/api", get(apidoc::page))
        .route("/org/{code}", get(dashboard::organisation))
        .route("/org/{code}/alerts", get(dashboard::alerts))
        .route("/measure/{id}", get(measure_pages::measure))
        .route("/measure/{id}/org/{code}", get(measure_pages::measure_for_org))
        .route("/measure/{id}/org/{code}/practices", get(practices::page))
        .route("/trust/{code}", get(system::trust))
        .route("/ppu/{code}", get(ppu::organisation))
        .route("/concessions/{code}", get(price_impacts::concessions))
        .route("/price-changes/{code}", get(price_impacts::tariff_changes))
        .route("/ppu/{code}/set/{set}", get(ppu::set))
        .route("/bnf", get(explore::bnf))
        .route("/analyse", get(explore::analyse))
        .route("/assets/ipmo.css", get(stylesheet))
        .route("/assets/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .merge(gov::routes())
        .nest("/api/v1", api::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), caching))
        .layer(axum::middleware::from_fn_with_state(state.clone(), access_log))
        .with_state(state)
}

/// Most connections served at once; more wait in the listen queue. Each costs a task and a file
/// descriptor, so a client cannot run the process out of either by opening connections.
pub const MAX_CONNECTIONS: usize = 2_000;
/// How long a client may take to send a request's headers, and how long a kept-alive connection
/// may sit idle before its next request: slow or silent connections are closed after this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `state` on `bind` until the process is stopped.
pub async fn serve(bind: std::net::SocketAddr, site: Site) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    serve_on(listener, site).await
}

/// Serves `state` on a bound listener: HTTP/1.1 with [`HEADER_TIMEOUT`] for headers and idle
/// keep-alive, at most [`MAX_CONNECTIONS`] at once, and each request told its peer's address
/// (`ConnectInfo`) so that sign-in limits can count by client.
pub async fn serve_on(listener: tokio::net::TcpListener, site: Site) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // Wait for a free slot before accepting, so that excess clients queue in the kernel.
        let Ok(permit) = slots.clone().acquire_owned().await else { return Ok(()) };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors or a connection reset before accept: not fatal.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let site = site.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                site.router().oneshot(request.map(axum::body::Body::new))
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).keep_alive(true);
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_parameters_are_cached_and_their_order_does_not_matter() {
        let key = |u: &str| cache_key(&u.parse().unwrap());
        assert_eq!(key("/org/ENG?cb=1"), None, "junk parameters are never cached");
        assert_eq!(key("/org/ENG?month=2024-01&cb=2"), None);
        assert_eq!(key("/org/ENG?level=icb&month=2024-01"), key("/org/ENG?month=2024-01&level=icb"));
        assert_eq!(key("/org/ENG?q=St+Mary%27s"), key("/org/ENG?q=St%20Mary's"));
        assert_eq!(key("/org/ENG?level="), Some("/org/ENG".into()));
        assert_eq!(key("/org/ENG?q=%FF"), None);
    }

    #[test]
    fn a_timed_out_request_is_a_503_to_retry_and_json_on_the_api() {
        let api = timed_out("/api/v1/records/risk");
        assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(api.headers().get(header::CONTENT_TYPE).unwrap(), "application/json");
        assert!(api.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(timed_out("/gov/risk").status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn etags_differ_by_url_and_release() {
        assert_ne!(etag("r1", "/a"), etag("r1", "/b"));
        assert_ne!(etag("r1", "/a"), etag("r2", "/a"));
        assert!(etag("r1", "/a").starts_with("\"r1-"));
    }
}
