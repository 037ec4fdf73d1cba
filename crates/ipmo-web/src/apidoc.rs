//! `/api`: the JSON API described for people, drawn from the same OpenAPI document that
//! `/api/v1/openapi.json` serves to programs, so the two cannot drift apart.

use crate::layout;
use axum::response::Html;
use maud::html;
use serde_json::Value;

const DOCUMENT: &str = include_str!("../assets/openapi.json");

/// The API page.
pub(crate) async fn page() -> Html<String> {
    let doc: Value = serde_json::from_str(DOCUMENT).unwrap_or(Value::Null);
    let base = doc["servers"][0]["url"].as_str().unwrap_or("/api/v1");
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let body = layout::page(
        "API",
        &[("API".into(), "/api".into())],
        None,
        html! {
            h1 { "The IPMO API" }
            p.lede { (text(&doc["info"]["description"])) }
            p { "Every address below starts " code { (base) } " and answers JSON. The machine-readable description (OpenAPI 3.0) is "
                a href="/api/v1/openapi.json" { code { "/api/v1/openapi.json" } } "." }
            h2 { "How it behaves" }
            ul {
                li { "Errors are " code { "{\"error\": {\"code\", \"message\", \"parameter\"}}" } ": 400 with the parameter named when one is malformed, 404 for an unknown organisation or measure." }
                li { "Responses carry a strong ETag tied to the data release: send it back in " code { "If-None-Match" } " and an unchanged answer is 304 with no body." }
                li { "Lists page: " code { "/organisations" } " answers " code { "total" } ", " code { "offset" } ", " code { "limit" } " and " code { "next" } " (the address of the next page, null on the last)." }
                li { "Programme records (" code { "/records/…" } ") need a signed-in session; writes also need the CSRF token from " code { "/session" } " in " code { "X-CSRF-Token" } "." }
            }
            @for (path, item) in &paths {
                @for (method, op) in item.as_object().into_iter().flatten() {
                    section.panel {
                        h2 { code { (method.to_uppercase()) " " (base) (path) } }
                        p { (text(&op["summary"])) }
                        @if let Some(d) = op["description"].as_str() { p { (d) } }
                        @let params = op["parameters"].as_array().cloned().unwrap_or_default();
                        @if !params.is_empty() {
                            (layout::scroll(&format!("Parameters of {path}"), html! {
                                table.table {
                                    caption { "Parameters" }
                                    thead { tr { th scope="col" { "Name" } th scope="col" { "Where" } th scope="col" { "Required" } th scope="col" { "What" } } }
                                    tbody { @for p in &params { tr {
                                        td { code { (text(&p["name"])) } }
                                        td { (text(&p["in"])) }
                                        td { @if p["required"].as_bool() == Some(true) { "Yes" } @else { "No" } }
                                        td { (text(&p["description"])) }
                                    } } }
                                }
                            }))
                        }
                        @if method == "get" && !path.contains('{') && !path.starts_with("/records") && path != "/session" && path != "/analyse" {
                            p { "Try it: " a href=(format!("{base}{path}")) { code { (base) (path) } } }
                        }
                    }
                }
            }
        },
    );
    Html(body.into_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_parses() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        assert!(doc["paths"].as_object().is_some_and(|p| p.len() >= 10));
    }
}
