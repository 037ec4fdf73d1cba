//! `/api/v1`: organisations, measures and measure values as JSON, described by the OpenAPI
//! document at `/api/v1/openapi.json`. Errors are `{"error": {"code", "message", "parameter"}}`.

use crate::params::Params;
use crate::{Shared, WebError};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ipmo_measures::Measure;
use ipmo_measures::analysis::{self, Judgement, ValuePoint};
use ipmo_release::{Org, Release};
use serde_json::{Value, json};

/// Most organisations one list returns.
const MAX_LIMIT: usize = 10_000;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/organisations", get(organisations))
        .route("/organisations/{code}", get(organisation))
        .route("/measures", get(measures))
        .route("/measures/{id}", get(measure))
        .route("/measures/{id}/values", get(values))
        .route("/measures/{id}/ranking", get(ranking))
        .route("/analyse", get(analyse))
        .route("/bnf", get(bnf))
        .route("/ppu/{code}", get(ppu_organisation))
        .route("/ppu/{code}/sets/{set}", get(ppu_set))
        .route("/concessions/{code}", get(concessions))
        .route("/price-changes/{code}", get(price_changes))
        .route("/cross-sector/{code}", get(crate::system::api))
}

/// A [`WebError`] answered as API JSON.
struct ApiError(WebError);

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.json()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

fn fail(e: WebError) -> ApiError {
    ApiError(e)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../assets/openapi.json"))
}

/// A measure value's numbers, as every API answer that carries one gives them.
fn point_json(pt: &ValuePoint) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (key, v) in [
        ("numerator", pt.numerator()),
        ("denominator", pt.denominator()),
        ("value", pt.value()),
        ("percentile", pt.percentile()),
        ("saving_50", pt.saving_50()),
        ("saving_10", pt.saving_10()),
    ] {
        out.insert(key.into(), json!(v));
    }
    out
}

fn org_json(o: &Org) -> Value {
    json!({ "code": o.code, "name": o.name, "org_type": o.org_type, "parent": o.parent })
}

fn find_org<'a>(r: &'a Release, code: &str) -> Result<&'a Org, ApiError> {
    r.org(code).ok_or_else(|| fail(WebError::NotFound(format!("no organisation with the code \"{code}\""))))
}

fn find_measure<'a>(r: &'a Release, id: &str) -> Result<&'a Measure, ApiError> {
    r.library
        .computed()
        .find(|m| m.id == id)
        .ok_or_else(|| fail(WebError::NotFound(format!("no measure \"{id}\"; GET /api/v1/measures lists them"))))
}

async fn organisations(State(s): State<Shared>, p: Params) -> ApiResult {
    let r = &s.release;
    let number = |name: &str, min: usize, max: usize, default: usize| -> Result<usize, ApiError> {
        match p.get(name) {
            None => Ok(default),
            Some(l) => l.parse::<usize>().ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| {
                fail(WebError::BadParameter(name.into(), format!("must be a whole number from {min} to {max}")))
            }),
        }
    };
    let limit = number("limit", 1, MAX_LIMIT, 100)?;
    let offset = number("offset", 0, usize::MAX / 2, 0)?;
    if let Some(t) = p.get("org_type") {
        crate::params::known_level("org_type", t).map_err(fail)?;
    }
    let of_type = |o: &&Org| p.get("org_type").is_none_or(|t| o.org_type == t);
    let all: Vec<&Org> = match p.get("q") {
        Some(q) => r.search_orgs(q, usize::MAX).into_iter().filter(of_type).collect(),
        None => r.orgs().iter().filter(of_type).collect(),
    };
    let total = all.len();
    let list: Vec<Value> = all.into_iter().skip(offset).take(limit).map(org_json).collect();
    let next = (offset + limit < total).then(|| {
        let mut q: Vec<String> = ["q", "org_type"]
            .iter()
            .filter_map(|k| p.get(k).map(|v| format!("{k}={}", crate::params::urlencode(v))))
            .collect();
        q.push(format!("limit={limit}"));
        q.push(format!("offset={}", offset + limit));
        format!("/api/v1/organisations?{}", q.join("&"))
    });
    Ok(Json(json!({ "total": total, "offset": offset, "limit": limit, "next": next, "organisations": list })))
}

async fn organisation(State(s): State<Shared>, Path(code): Path<String>) -> ApiResult {
    let r = &s.release;
    let o = find_org(r, &code)?;
    Ok(Json(json!({
        "organisation": org_json(o),
        "ancestors": r.ancestors(&o.code).into_iter().map(org_json).collect::<Vec<_>>(),
        "children": r.children(&o.code).into_iter().map(org_json).collect::<Vec<_>>(),
    })))
}

fn measure_json(m: &Measure) -> Value {
    json!({
        "id": m.id,
        "title": m.title,
        "description": m.description,
        "unit": m.unit(),
        "direction": ipmo_measures::definition::direction_name(m.direction),
        "tags": m.tags,
        "is_percentage": m.is_percentage,
        "is_cost_based": m.is_cost_based,
        "target": m.target.as_ref().map(|t| json!({ "value": t.value, "source": t.source })),
        "version": m.version,
        "hash": m.hash,
    })
}

async fn measures(State(s): State<Shared>) -> ApiResult {
    Ok(Json(json!({ "measures": s.release.library.computed().map(measure_json).collect::<Vec<_>>() })))
}

async fn measure(State(s): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let m = find_measure(&s.release, &id)?;
    let side = |side: &ipmo_measures::Side| {
        json!({
            "quantity": side.quantity.name(),
            "codes": side.codes.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "exclude": side.exclude.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "name_contains": side.name_contains,
            "name_excludes": side.name_excludes,
        })
    };
    let mut v = measure_json(m);
    v["why_it_matters"] = json!(m.why_it_matters);
    v["numerator"] = side(&m.numerator);
    v["denominator"] = side(&m.denominator);
    v["source"] = json!(m.source);
    Ok(Json(json!({ "measure": v })))
}

async fn values(State(s): State<Shared>, Path(id): Path<String>, p: Params) -> ApiResult {
    let r = &s.release;
    let m = find_measure(r, &id)?;
    let code = p
        .get("org")
        .ok_or_else(|| fail(WebError::BadParameter("org".into(), "is required (an organisation code)".into())))?;
    let o = find_org(r, code)?;
    let from = p.month("from").map_err(fail)?;
    let to = p.month("to").map_err(fail)?;
    let whole = r.series(&m.id, o).unwrap_or(&[]);
    // SPC limits come from the whole series; `from` and `to` only choose the points returned.
    let spc = analysis::spc(whole, &Judgement::of(m));
    let series: Vec<_> =
        whole.iter().filter(|pt| from.is_none_or(|f| pt.month >= f) && to.is_none_or(|t| pt.month <= t)).collect();
    let lv = r.level_values(&m.id, &o.org_type);
    let points: Vec<Value> = series
        .iter()
        .map(|pt| {
            let deciles = lv
                .and_then(|l| l.deciles.get(&pt.month))
                .map(|d| d.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>());
            let mut point = point_json(pt);
            point.insert("month".into(), json!(pt.month.to_string()));
            point.insert("deciles".into(), json!(deciles));
            point.insert("spc_class".into(), json!(spc.as_ref().and_then(|s| s.class_at(pt.month))));
            Value::Object(point)
        })
        .collect();
    Ok(Json(json!({
        "measure": m.id,
        "organisation": org_json(o),
        "points": points,
        "spc": spc.as_ref().map(|s| json!({
            "segments": s.chart.segments,
            "variation": s.chart.variation,
            "assurance": s.chart.assurance,
        })),
    })))
}

async fn ranking(State(s): State<Shared>, Path(id): Path<String>, p: Params) -> ApiResult {
    let r = &s.release;
    let m = find_measure(r, &id)?;
    let level = crate::params::level_param(&p, "icb")?;
    let lv = r.level_values(&m.id, level);
    let month = match p.month("month").map_err(fail)? {
        Some(month) => month,
        None => lv
            .and_then(|l| l.deciles.keys().next_back().copied())
            .ok_or_else(|| fail(WebError::NotFound(format!("no values of \"{id}\" at level {level}"))))?,
    };
    let points: Vec<(&str, &ValuePoint)> = lv.map(|l| l.at(month).collect()).unwrap_or_default();
    let rows: Vec<Value> = ipmo_measures::ranking::worst_first(points, m.direction, None)
        .into_iter()
        .map(|(code, pt)| {
            let mut row = point_json(pt);
            row.insert("org_code".into(), json!(code));
            row.insert("name".into(), json!(r.org(code).map(|o| o.name.as_str())));
            row.insert(
                "standing".into(),
                json!(pt.percentile().map(|pc| ipmo_measures::ranking::standing(pc, m.direction))),
            );
            Value::Object(row)
        })
        .collect();
    let deciles = lv.and_then(|l| l.deciles.get(&month)).map(|d| d.to_vec());
    Ok(Json(json!({ "measure": m.id, "level": level, "month": month.to_string(), "deciles": deciles, "rows": rows })))
}

async fn analyse(State(s): State<Shared>, p: Params) -> ApiResult {
    use crate::explore::no_index;
    use crate::params::index_error;
    let request = crate::analyse_request::AnalyseRequest::read(&s.release, &p)?;
    let Some(mut a) = request.analysis else {
        return Err(fail(WebError::BadParameter("num".into(), "is required (BNF code prefixes or drug names)".into())));
    };
    a.org = p.get("org").map(str::to_string);
    let state = s.clone();
    let rows = tokio::task::spawn_blocking(move || {
        let ix = state.release.index.as_ref().ok_or_else(no_index)?;
        ix.analyse(&a).map_err(|e| match e {
            ipmo_index::IndexError::Query(m) if m.contains("no organisation") => WebError::NotFound(m),
            other => index_error("num")(other),
        })
    })
    .await
    .map_err(|e| fail(WebError::Internal(format!("the analysis failed: {e}"))))??;
    Ok(Json(json!({ "rows": rows.iter().map(|r| json!({
        "month": r.month.to_string(),
        "org_code": r.org_code,
        "numerator": r.numerator,
        "denominator": r.denominator,
        "value": r.value,
    })).collect::<Vec<_>>() })))
}

async fn bnf(State(s): State<Shared>, p: Params) -> ApiResult {
    let r = &s.release;
    let entry = |(c, n): (&str, &str)| json!({ "code": c, "name": n, "level": ipmo_release::bnf_level_name(c.len()) });
    if let Some(q) = p.get("q") {
        if q.chars().count() > 100 {
            return Err(fail(WebError::BadParameter("q".into(), "is longer than 100 characters".into())));
        }
        return Ok(Json(
            json!({ "query": q, "results": r.bnf_search(q, 100).into_iter().map(entry).collect::<Vec<_>>() }),
        ));
    }
    let code = p.get("code").unwrap_or("").to_ascii_uppercase();
    if !code.is_empty() && r.bnf_name(&code).is_none() {
        return Err(fail(WebError::NotFound(format!("no BNF entry with the code \"{code}\""))));
    }
    Ok(Json(json!({
        "code": code,
        "name": r.bnf_name(&code),
        "children": r.bnf_children(&code).into_iter().map(entry).collect::<Vec<_>>(),
    })))
}

/// `/ppu/{code}`: an organisation's price-per-unit opportunities.
async fn ppu_organisation(State(s): State<Shared>, Path(code): Path<String>, p: Params) -> ApiResult {
    Ok(Json(crate::ppu::organisation_json(&s.release, &code, &p).map_err(fail)?))
}

/// `/ppu/{code}/sets/{set}`: one substitution set for an organisation.
async fn ppu_set(State(s): State<Shared>, Path((code, set)): Path<(String, String)>, p: Params) -> ApiResult {
    Ok(Json(crate::ppu::set_json(&s.release, &code, &set, &p).map_err(fail)?))
}

/// `/concessions/{code}`: what price concessions cost an organisation in a month.
async fn concessions(State(s): State<Shared>, Path(code): Path<String>, p: Params) -> ApiResult {
    use crate::price_impacts::{Kind, json_answer};
    Ok(Json(json_answer(Kind::Concessions, &s.release, &code, &p).map_err(fail)?))
}

/// `/price-changes/{code}`: what a month's Drug Tariff changes cost an organisation.
async fn price_changes(State(s): State<Shared>, Path(code): Path<String>, p: Params) -> ApiResult {
    use crate::price_impacts::{Kind, json_answer};
    Ok(Json(json_answer(Kind::TariffChanges, &s.release, &code, &p).map_err(fail)?))
}
