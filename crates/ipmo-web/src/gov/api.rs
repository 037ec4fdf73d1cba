//! The records API (`/api/v1/records`, `/api/v1/session`): reading a kind's records a page at a
//! time, one record, and creating and replacing records with the session's CSRF token in a
//! header, answering validation problems with 422 and lost updates with 409 and the record as it
//! is now.

use super::access::{Access, Submitted, require};
use super::cells::ReleaseLookups;
use crate::error::{ApiCode, api_error, api_error_body};
use crate::{Shared, WebError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ipmo_governance::kinds::{self, Kind};
use ipmo_governance::store::{Record, StoreError};
use ipmo_governance::{Role, auth};
use std::collections::BTreeMap;

/// `GET /api/v1/records/{kind}`: every current record of a kind.
pub(super) async fn list(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(kind_id): Path<String>,
    p: crate::params::Params,
) -> Response {
    let Some(kind) = kinds::kind(&kind_id) else {
        return WebError::NotFound(format!("There is no kind of governance record called \"{kind_id}\".")).json();
    };
    let Access { gov: g, .. } =
        or_reply!(require(&s, &headers, &format!("/api/v1/records/{kind_id}"), Role::Viewer).await);
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
pub(crate) const API_PAGE: usize = 100;
/// See [`API_PAGE`].
pub(crate) const API_PAGE_MAX: usize = 1_000;

/// `GET /api/v1/records/{kind}/{id}`: one record.
pub(super) async fn record(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind_id, id)): Path<(String, i64)>,
) -> Response {
    let Some(kind) = kinds::kind(&kind_id) else {
        return WebError::NotFound(format!("There is no kind of governance record called \"{kind_id}\".")).json();
    };
    let Access { gov: g, .. } =
        or_reply!(require(&s, &headers, &format!("/api/v1/records/{kind_id}/{id}"), Role::Viewer).await);
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
pub(super) async fn session(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let Access { session, .. } = or_reply!(require(&s, &headers, "/api/v1/session", Role::Viewer).await);
    no_store(
        axum::Json(serde_json::json!({
            "username": session.user.username, "role": session.user.role.as_str(), "csrf": session.csrf,
        }))
        .into_response(),
    )
}

/// A JSON error for a write: 422 with one message per field, 409 with the current record, or
/// the usual error JSON.
fn write_error(kind: &Kind, e: StoreError) -> Response {
    match e {
        StoreError::Invalid(errors) => {
            let mut body = api_error_body(ApiCode::Invalid, "some fields need attention", None);
            body["error"]["fields"] = serde_json::json!(errors);
            (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
        }
        StoreError::Conflict { current } => {
            let message = format!(
                "{} changed after version you sent; its current version is {}",
                kind.reference(current.id),
                current.version
            );
            let mut body = api_error_body(ApiCode::Conflict, message, Some("version"));
            body["error"]["current"] = record_json(kind, &current);
            (StatusCode::CONFLICT, axum::Json(body)).into_response()
        }
        StoreError::NotFound(m) => WebError::NotFound(m).json(),
        other => WebError::Internal(other.to_string()).json(),
    }
}

/// Checks role and the `X-CSRF-Token` header, and reads `{"fields": {…}}` (plus `version` for an
/// update) from the body.
async fn write_input<'a>(
    s: &'a Shared,
    headers: &HeaderMap,
    path: &str,
    body: &Bytes,
) -> Result<Submitted<'a>, Response> {
    let access = require(s, headers, path, Role::Editor).await?;
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !auth::same_secret(token, &access.session.csrf) {
        return Err(api_error(
            StatusCode::FORBIDDEN,
            ApiCode::Forbidden,
            "send the session's CSRF token (GET /api/v1/session) in the X-CSRF-Token header",
            Some("X-CSRF-Token"),
        ));
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
    Ok(Submitted { access, form: input, version: value.get("version").and_then(serde_json::Value::as_i64) })
}

/// `POST /api/v1/records/{kind}`: creates a record from `{"fields": {…}}`; 201 with the record.
pub(super) async fn create(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(kind_id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(kind) = kinds::kind(&kind_id) else {
        return WebError::NotFound(format!("There is no kind of governance record called \"{kind_id}\".")).json();
    };
    let Submitted { access: Access { gov: g, session }, form: input, .. } =
        or_reply!(write_input(&s, &headers, &format!("/api/v1/records/{kind_id}"), &body).await);
    let data = match kinds::validate(kind, &input, &ReleaseLookups(&s.release)) {
        Ok(d) => d,
        Err(errors) => return write_error(kind, StoreError::Invalid(errors)),
    };
    match g.store.create(kind.id, data, &session.user.username).await {
        Ok(r) => no_store((StatusCode::CREATED, axum::Json(record_json(kind, &r))).into_response()),
        Err(e) => write_error(kind, e),
    }
}

/// `PUT /api/v1/records/{kind}/{id}`: replaces a record's fields, if it is still at `version`.
pub(super) async fn update(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind_id, id)): Path<(String, i64)>,
    body: Bytes,
) -> Response {
    let Some(kind) = kinds::kind(&kind_id) else {
        return WebError::NotFound(format!("There is no kind of governance record called \"{kind_id}\".")).json();
    };
    let Submitted { access: Access { gov: g, session }, form: input, version } =
        or_reply!(write_input(&s, &headers, &format!("/api/v1/records/{kind_id}/{id}"), &body).await);
    let Some(version) = version else {
        return WebError::BadParameter("version".into(), "send the version you are changing, from GET".into()).json();
    };
    match g.store.record(id).await {
        Ok(Some(r)) if r.kind == kind.id => {}
        Ok(_) => {
            return WebError::NotFound(format!("There is no {} {}.", kind.title.to_lowercase(), kind.reference(id)))
                .json();
        }
        Err(e) => return write_error(kind, e),
    }
    let data = match kinds::validate(kind, &input, &ReleaseLookups(&s.release)) {
        Ok(d) => d,
        Err(errors) => return write_error(kind, StoreError::Invalid(errors)),
    };
    match g.store.update(id, version, data, &session.user.username).await {
        Ok(r) => no_store(axum::Json(record_json(kind, &r)).into_response()),
        Err(e) => write_error(kind, e),
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
