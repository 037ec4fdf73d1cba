//! `/gov/report`: the board report on screen, with its organisation and month chosen, and
//! `/gov/report/file`: the same report to download as PDF (when this build has a PDF writer) or
//! as one self-contained HTML file. Sign-in required: the report carries the programme's records.

use super::access::{Access, gov_page, require};
use crate::report::{ReportRequest, Template, document, workspace_icbs};
use crate::{Shared, WebError};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ipmo_domain::YearMonth;
use ipmo_governance::Role;
use maud::html;

/// Reports built at once; more wait their turn (typesetting a PDF takes a core for a second or
/// so, and nobody should be able to take every core by asking for many).
pub(crate) const MAX_REPORTS: usize = 2;

/// The report's choices read from the query: organisation (default the workspace's ICB, else the
/// first ICB), month and template.
async fn request(s: &Shared, g: &super::Governance, p: &crate::params::Params) -> Result<ReportRequest, WebError> {
    let r = &s.release;
    let org = match p.get("org").map(str::trim).filter(|x| !x.is_empty()) {
        Some(code) => crate::params::org_of(r, code)?.code.clone(),
        None => {
            let icbs = workspace_icbs(r, g.store.as_ref()).await.map_err(|e| WebError::Internal(e.to_string()))?;
            icbs.first()
                .map(|o| o.code.clone())
                .or_else(|| r.orgs().iter().find(|o| o.org_type == "icb").map(|o| o.code.clone()))
                .ok_or_else(|| {
                    WebError::NotFound("There is no ICB in the data to report on; name one with ?org=".into())
                })?
        }
    };
    let template = match p.get("template") {
        None | Some("") => Template::Board,
        Some(t) => Template::parse(t).ok_or_else(|| {
            WebError::BadParameter("template".into(), format!("\"{t}\" is neither board nor summary"))
        })?,
    };
    let now = chrono::Utc::now();
    Ok(ReportRequest {
        org,
        month: p.month("month")?,
        template,
        today: g.settings.today(),
        generated: now.format("%Y-%m-%d %H:%M UTC").to_string(),
    })
}

/// The form that chooses the organisation, month and template.
fn chooser(s: &Shared, req: &ReportRequest, month: Option<YearMonth>) -> maud::Markup {
    let months: Vec<YearMonth> = s.release.months.iter().rev().copied().collect();
    html! {
        form.inline method="get" action="/gov/report" {
            div.field {
                label for="org" { "Organisation code" }
                span.hint #org-hint { "An ICB, sub-ICB location, PCN, practice or custom group" }
                input #org name="org" type="text" value=(req.org) aria-describedby="org-hint" autocomplete="off" spellcheck="false";
            }
            div.field {
                label for="month" { "Month" }
                select #month name="month" {
                    @for m in &months { option value=(m.to_string()) selected[Some(*m) == month] { (crate::format::long_month(*m)) } }
                }
            }
            div.field {
                label for="template" { "Contents" }
                select #template name="template" {
                    option value="board" selected[req.template == Template::Board] { "The whole board report" }
                    option value="summary" selected[req.template == Template::Summary] { "The one-page summary" }
                }
            }
            button.button type="submit" { "Show" }
        }
    }
}

/// The query string of a report's choices.
fn query(req: &ReportRequest, month: &str) -> String {
    format!("org={}&month={month}&template={}", crate::params::urlencode(&req.org), req.template.name())
}

/// The report the query asks for, built in its turn: the request, the document, and the turn,
/// which the caller holds while it renders.
async fn built<'a>(
    s: &'a Shared,
    g: &super::Governance,
    p: &crate::params::Params,
) -> Result<(ReportRequest, ipmo_report::Document, tokio::sync::SemaphorePermit<'a>), Response> {
    let req = request(s, g, p).await.map_err(IntoResponse::into_response)?;
    let turn = s
        .reports
        .acquire()
        .await
        .map_err(|_| WebError::Internal("the report queue is closed".into()).into_response())?;
    let doc = document(s, &req).await.map_err(IntoResponse::into_response)?;
    Ok((req, doc, turn))
}

/// The report on screen.
pub(super) async fn page(State(s): State<Shared>, headers: HeaderMap, p: crate::params::Params) -> Response {
    let Access { gov: g, session } = or_reply!(require(&s, &headers, "/gov/report", Role::Viewer).await);
    let (req, doc, _turn) = or_reply!(built(&s, g, &p).await);
    let month = req.month.or_else(|| s.release.latest_month());
    let month_text = month.map(|m| m.to_string()).unwrap_or_default();
    let main = html! {
        h1 { "Board report" }
        p.lede { "The month's figures and the programme's records as a board paper. Every figure is the dashboard's own, with its month and source; the report records the data release and the governance audit position it was built from." }
        (chooser(&s, &req, month))
        p.report-downloads {
            @if ipmo_report::PDF_AVAILABLE {
                a.button href=(format!("/gov/report/file?{}&format=pdf", query(&req, &month_text))) download { "Download PDF" } " "
            }
            a.button.button-secondary href=(format!("/gov/report/file?{}&format=html", query(&req, &month_text))) download { "Download HTML" }
            @if !ipmo_report::PDF_AVAILABLE {
                span.hint { " This server was built without PDF output (cargo feature pdf); the HTML file prints to A4 from any browser." }
            }
        }
        (ipmo_report::html::body(&doc))
    };
    gov_page(&session, "Board report", &[("Board report".into(), "/gov/report".into())], main)
}

/// The report as a file to download.
pub(super) async fn file(State(s): State<Shared>, headers: HeaderMap, p: crate::params::Params) -> Response {
    let Access { gov: g, .. } = or_reply!(require(&s, &headers, "/gov/report", Role::Viewer).await);
    let pdf = match p.get("format") {
        None | Some("pdf") => true,
        Some("html") => false,
        Some(other) => {
            return WebError::BadParameter("format".into(), format!("\"{other}\" is neither pdf nor html"))
                .into_response();
        }
    };
    if pdf && !ipmo_report::PDF_AVAILABLE {
        return WebError::NotFound(ipmo_report::ReportError::NoPdf.to_string()).into_response();
    }
    let (req, doc, _turn) = or_reply!(built(&s, g, &p).await);
    let month = req.month.or_else(|| s.release.latest_month()).map(|m| m.to_string()).unwrap_or_default();
    let stem = format!("ipmo-report-{}-{month}", req.org.to_ascii_lowercase());
    let (bytes, content_type, ext) = if pdf {
        let now = chrono::Utc::now();
        let stamp = crate::report::pdf_timestamp(now.naive_utc());
        let made = tokio::task::spawn_blocking(move || ipmo_report::to_pdf(&doc, None, stamp)).await;
        match made {
            Ok(Ok(bytes)) => (bytes, "application/pdf", "pdf"),
            Ok(Err(e)) => return WebError::Internal(e.to_string()).into_response(),
            Err(e) => return WebError::Internal(format!("the PDF writer stopped: {e}")).into_response(),
        }
    } else {
        (ipmo_report::html::standalone(&doc).into_bytes(), "text/html; charset=utf-8", "html")
    };
    let mut r = Response::new(axum::body::Body::from(bytes));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{stem}.{ext}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
