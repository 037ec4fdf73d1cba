//! Reading a request's query: parameters decoded once and bounded, each checked where it is read
//! and named in the 400 when it is wrong (`level`, `month`, `format`, `value`), and the lookups
//! that turn a code in a path or query into an organisation or a measure (404 when there is none).

use crate::WebError;
use axum::response::{IntoResponse, Response};
use ipmo_index::{Level, ValueKind};
use ipmo_measures::Measure;
use ipmo_release::{Org, OrgLevel, Release};
use std::collections::BTreeMap;

/// Query parameters as given, for handlers that check each one and name it when it is wrong.
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, WebError> {
        decode_pairs(query.unwrap_or(""), 4_000).map(Self)
    }

    /// A parameter, trimmed; None when absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// A month parameter (`YYYY-MM`).
    pub(crate) fn month(&self, name: &str) -> Result<Option<ipmo_domain::YearMonth>, WebError> {
        self.get(name)
            .map(|s| {
                s.parse().map_err(|_| WebError::BadParameter(name.into(), format!("\"{s}\" is not a month (YYYY-MM)")))
            })
            .transpose()
    }
}

/// `application/x-www-form-urlencoded` pairs (a query string or a form body) as a map, each value
/// at most `max_value` bytes; a malformed or oversized pair is a 400 naming it.
pub(crate) fn decode_pairs(text: &str, max_value: usize) -> Result<BTreeMap<String, String>, WebError> {
    let mut out = BTreeMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| -> Result<String, WebError> {
            let plus = s.replace('+', " ");
            percent_decode(&plus)
                .ok_or_else(|| WebError::BadParameter(k.to_string(), "is not valid percent-encoded UTF-8".into()))
        };
        let (k, v) = (decode(k)?, decode(v)?);
        if k.len() > 64 || v.len() > max_value {
            return Err(WebError::BadParameter(k.chars().take(64).collect(), "is too long".into()));
        }
        out.insert(k, v);
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `s` percent-encoded for a query value or a path (unreserved characters and `/` kept).
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Extracts [`Params`] from the request, answering 400 when the query string is malformed.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let api = parts.uri.path().starts_with("/api/");
        Params::parse(parts.uri.query()).map_err(|e| if api { e.json() } else { e.into_response() })
    }
}

/// Whether the page is wanted as CSV (`format=csv`) rather than HTML.
pub(crate) fn wants_csv(p: &Params) -> Result<bool, WebError> {
    match p.get("format") {
        None | Some("html") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(WebError::BadParameter("format".into(), format!("\"{other}\" is not html or csv"))),
    }
}

/// An organisation by code, or the 404 that says there is none.
pub(crate) fn org_of<'a>(r: &'a Release, code: &str) -> Result<&'a Org, WebError> {
    r.org(code)
        .ok_or_else(|| WebError::NotFound(format!("There is no organisation with the code \"{code}\" in this data.")))
}

/// A computed measure by id, or the 404 that says there is none.
pub(crate) fn measure_of<'a>(r: &'a Release, id: &str) -> Result<&'a Measure, WebError> {
    r.library
        .computed()
        .find(|m| m.id == id)
        .ok_or_else(|| WebError::NotFound(format!("There is no measure \"{id}\". The home page lists every measure.")))
}

/// The `level` parameter, one of the stored levels, or `default`.
pub(crate) fn level_param<'a>(p: &'a Params, default: &'a str) -> Result<&'a str, WebError> {
    known_level("level", p.get("level").unwrap_or(default))
}

/// `level` when it is one of the stored organisation levels; otherwise a 400 naming `parameter`.
pub(crate) fn known_level<'a>(parameter: &str, level: &'a str) -> Result<&'a str, WebError> {
    if OrgLevel::parse(level).is_some() {
        Ok(level)
    } else {
        Err(WebError::BadParameter(
            parameter.into(),
            format!("\"{level}\" is not one of {}", ipmo_release::LEVELS.join(", ")),
        ))
    }
}

/// The `value` parameter of an analysis: what is summed.
pub(crate) fn parse_value(v: &str) -> Result<ValueKind, WebError> {
    match v {
        "" | "items" => Ok(ValueKind::Items),
        "quantity" => Ok(ValueKind::Quantity),
        "actual_cost" => Ok(ValueKind::ActualCost),
        "nic" => Ok(ValueKind::Nic),
        other => Err(WebError::BadParameter(
            "value".into(),
            format!("\"{other}\" is not items, quantity, actual_cost or nic"),
        )),
    }
}

/// The `level` parameter of an analysis, as the index names levels.
pub(crate) fn parse_level(v: &str) -> Result<Level, WebError> {
    let v = if v.is_empty() { "icb" } else { v };
    OrgLevel::parse(v).map(Level::from).ok_or_else(|| {
        WebError::BadParameter("level".into(), format!("\"{v}\" is not one of {}", ipmo_release::LEVELS.join(", ")))
    })
}

/// An index error about parameter `param` (its message may already name it). A part the data
/// cannot answer names its own parameter: `numerator` is `num`, `denominator` is `den`.
pub(crate) fn index_error(param: &str) -> impl Fn(ipmo_index::IndexError) -> WebError + '_ {
    move |e| match e {
        ipmo_index::IndexError::Unanswerable { parameter, message } => {
            let name = match parameter {
                "numerator" => "num",
                "denominator" => "den",
                "organisations" => "level",
                other => other,
            };
            WebError::BadParameter(name.into(), message)
        }
        other => {
            let text = other.to_string();
            let text = text.strip_prefix(&format!("{param}: ")).unwrap_or(&text).to_string();
            WebError::BadParameter(param.into(), text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_decode_and_name_bad_parts() {
        let p = Params::parse(Some("q=St+Mary%27s&month=2024-01&empty=")).unwrap();
        assert_eq!(p.get("q"), Some("St Mary's"));
        assert_eq!(p.get("empty"), None);
        assert_eq!(p.month("month").unwrap().unwrap().to_string(), "2024-01");
        let bad = Params::parse(Some("month=2024-13")).unwrap().month("month").unwrap_err();
        assert!(bad.to_string().starts_with("month:"), "{bad}");
        assert!(Params::parse(Some("q=%ZZ")).is_err());
        assert!(Params::parse(Some("q=%FF")).is_err(), "not UTF-8");
    }
}
