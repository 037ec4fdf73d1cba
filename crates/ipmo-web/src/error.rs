//! Why a request failed, and how each failure reaches the user: a page that says what to do, or
//! API JSON `{"error": {"code", "message", "parameter"}}` with a code from [`ApiCode`], the one
//! list of codes the API gives (the OpenAPI document's enum is checked against it). Errors on our
//! side are logged with their cause before they are answered.

use crate::layout;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Every error code the API answers with, so that clients can branch on a closed list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiCode {
    /// No such organisation, measure, record or route.
    NotFound,
    /// A named query parameter or body part is malformed.
    BadParameter,
    /// A request axum refused before any handler ran, for a reason not listed here.
    BadRequest,
    /// Sign in first.
    Unauthorised,
    /// Signed in, but without the role, or without the CSRF token.
    Forbidden,
    /// A record's fields failed validation; `fields` lists each problem.
    Invalid,
    /// The record changed after the version sent; `current` holds it now.
    Conflict,
    /// The route exists, but not for this method.
    MethodNotAllowed,
    /// The body is over the limit.
    TooLarge,
    /// The body is not of a type the route reads.
    UnsupportedMediaType,
    /// Busy or too slow: try again after `Retry-After`.
    Unavailable,
    /// Something failed on our side (logged on the server).
    Internal,
}

impl ApiCode {
    /// Every code, in the order the OpenAPI document lists them.
    pub const ALL: [ApiCode; 12] = [
        Self::NotFound,
        Self::BadParameter,
        Self::BadRequest,
        Self::Unauthorised,
        Self::Forbidden,
        Self::Invalid,
        Self::Conflict,
        Self::MethodNotAllowed,
        Self::TooLarge,
        Self::UnsupportedMediaType,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The code as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::BadParameter => "bad_parameter",
            Self::BadRequest => "bad_request",
            Self::Unauthorised => "unauthorised",
            Self::Forbidden => "forbidden",
            Self::Invalid => "invalid",
            Self::Conflict => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TooLarge => "too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The code an HTTP status is answered with when nothing more precise is known (axum's own
    /// rejections, rewritten as JSON).
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            s if s.is_server_error() => Self::Internal,
            _ => Self::BadRequest,
        }
    }
}

/// The API's error body: `{"error": {"code", "message", "parameter"}}`. Callers add fields to
/// `["error"]` (a conflict's `current`, a validation's `fields`) before sending it.
pub(crate) fn api_error_body(code: ApiCode, message: impl Into<String>, parameter: Option<&str>) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code.as_str(), "message": message.into(), "parameter": parameter } })
}

/// An API error response with `status` and [`api_error_body`].
pub(crate) fn api_error(
    status: StatusCode,
    code: ApiCode,
    message: impl Into<String>,
    parameter: Option<&str>,
) -> Response {
    (status, axum::Json(api_error_body(code, message, parameter))).into_response()
}

/// Why a request failed, shown as a page or as API JSON.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No such organisation, measure or page.
    #[error("{0}")]
    NotFound(String),
    /// A query parameter is malformed: (parameter, what is wrong).
    #[error("{0}: {1}")]
    BadParameter(String, String),
    /// The request needs a signed-in session.
    #[error("{0}")]
    Unauthorised(String),
    /// Something on our side.
    #[error("{0}")]
    Internal(String),
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadParameter(..) => StatusCode::BAD_REQUEST,
            Self::Unauthorised(_) => StatusCode::UNAUTHORIZED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable code for API clients.
    fn code(&self) -> ApiCode {
        match self {
            Self::NotFound(_) => ApiCode::NotFound,
            Self::BadParameter(..) => ApiCode::BadParameter,
            Self::Unauthorised(_) => ApiCode::Unauthorised,
            Self::Internal(_) => ApiCode::Internal,
        }
    }

    /// Records an error on our side in the server's log (target `ipmo::error`), so a failure a
    /// user sees always leaves a trace for the operator.
    fn log(&self) {
        if let Self::Internal(cause) = self {
            tracing::error!(target: "ipmo::error", cause = %cause, "internal error");
        }
    }

    /// As API JSON: `{"error": {"code", "message", "parameter"?}}`.
    pub fn json(self) -> Response {
        self.log();
        let parameter = match &self {
            Self::BadParameter(p, _) => Some(p.as_str()),
            _ => None,
        };
        api_error(self.status(), self.code(), self.to_string(), parameter)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        self.log();
        let (title, advice) = match &self {
            Self::NotFound(_) => {
                ("Page not found", "Check the code or address, or search for the organisation or measure you want.")
            }
            Self::BadParameter(..) => {
                ("There is a problem with the address", "Correct the part named above and try again.")
            }
            Self::Unauthorised(_) => ("Sign in", "Sign in to continue."),
            Self::Internal(_) => ("Sorry, there is a problem with the service", "Try again later."),
        };
        let body = layout::page(
            title,
            &[],
            None,
            maud::html! {
                h1 { (title) }
                p.lede { (self.to_string()) }
                p { (advice) }
                (layout::search_form(""))
                p { a href="/" { "Go to the home page" } }
            },
        );
        (self.status(), Html(body.into_string())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_every_code_and_no_other() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("../assets/openapi.json")).unwrap();
        let listed: Vec<&str> =
            doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
                .as_array()
                .expect("the Error schema lists its codes")
                .iter()
                .filter_map(|c| c.as_str())
                .collect();
        let ours: Vec<&str> = ApiCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, ours);
    }

    #[test]
    fn statuses_map_to_their_codes() {
        assert_eq!(ApiCode::for_status(StatusCode::NOT_FOUND), ApiCode::NotFound);
        assert_eq!(ApiCode::for_status(StatusCode::BAD_GATEWAY), ApiCode::Internal);
        assert_eq!(ApiCode::for_status(StatusCode::IM_A_TEAPOT), ApiCode::BadRequest);
    }
}
