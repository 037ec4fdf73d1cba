//! Creating and editing records: the form each kind's field declarations give (with the
//! problems beside their fields after a failed save), saving with validation against the
//! release, and the conflict page when someone else saved the record first.

use super::access::{Access, Submitted, gov_page, kind_or_404, load, require, store_error, submitted};
use super::cells::{Names, ReleaseLookups, cell, name_of};
use crate::layout;
use crate::{Shared, WebError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use ipmo_governance::Role;
use ipmo_governance::kinds::{self, Field, FieldError, FieldType, Kind};
use ipmo_governance::store::{Data, Record, StoreError};
use maud::{Markup, html};
use std::collections::{BTreeMap, HashMap};

/// Form for a new record.
pub(super) async fn new_form(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(kind_id): Path<String>,
    p: crate::params::Params,
) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let access = or_reply!(require(&s, &headers, &format!("/gov/{}/new", kind.id), Role::Editor).await);
    // Fields named in the query start filled in (a horizon-scan signal offered for acceptance);
    // nothing is saved until the person submits the form.
    let values: BTreeMap<String, String> =
        kind.fields.iter().filter_map(|f| p.get(f.name).map(|v| (f.name.to_string(), v.to_string()))).collect();
    render_form(&s, &access, kind, None, &values, &[], StatusCode::OK).await
}

/// Form for editing a record, filled with its values.
pub(super) async fn edit_form(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind_id, id)): Path<(String, i64)>,
) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let access = or_reply!(require(&s, &headers, &format!("/gov/{}/{id}/edit", kind.id), Role::Editor).await);
    let rec = or_reply!(load(access.gov, kind, id).await);
    let values = form_values(kind, &rec);
    render_form(&s, &access, kind, Some((id, rec.version)), &values, &[], StatusCode::OK).await
}

fn form_values(kind: &Kind, rec: &Record) -> BTreeMap<String, String> {
    kind.fields.iter().map(|f| (f.name.to_string(), kinds::display_value(f, rec.data.get(f.name)))).collect()
}

async fn render_form(
    s: &Shared,
    access: &Access<'_>,
    kind: &Kind,
    editing: Option<(i64, i64)>,
    values: &BTreeMap<String, String>,
    errors: &[FieldError],
    status: StatusCode,
) -> Response {
    let (g, session) = (access.gov, &access.session);
    let targets: Vec<&str> = kind.refs().map(|(_, t)| t).collect();
    let mut options: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for t in targets {
        let Some(tk) = kinds::kind(t) else { continue };
        match g.store.records(t, false).await {
            Ok(list) => {
                options.insert(
                    t,
                    list.iter()
                        .map(|r| (tk.reference(r.id), format!("{} {}", tk.reference(r.id), name_of(tk, r))))
                        .collect(),
                );
            }
            Err(e) => return store_error(e),
        }
    }
    let (title, action) = match editing {
        Some((id, _)) => (format!("Edit {}", kind.reference(id)), format!("/gov/{}/{id}/edit", kind.id)),
        None => (format!("Add a {}", kind.title.to_lowercase()), format!("/gov/{}/new", kind.id)),
    };
    let error_for = |f: &str| errors.iter().find(|e| e.field == f).map(|e| e.message.as_str());
    let stray: Vec<&FieldError> = errors.iter().filter(|e| kind.field(&e.field).is_none()).collect();
    let measures = &s.release.library.measures;
    // After a failed submit the title starts "Error:" and focus moves to the summary of problems
    // (the NHS and GOV.UK error pattern), so screen reader and keyboard users meet it first.
    let page_title = if errors.is_empty() { title.clone() } else { format!("Error: {title}") };
    let mut r = gov_page(
        session,
        &page_title,
        &[(kind.plural.to_string(), format!("/gov/{}", kind.id))],
        html! {
            h1 { (title) }
            @if !errors.is_empty() {
                div.error-summary role="alert" tabindex="-1" autofocus aria-labelledby="error-summary-title" {
                    h2 #error-summary-title { "There is a problem" }
                    ul { @for e in errors { li { a href=(format!("#f-{}", e.field)) { (e.message) } } } }
                }
            }
            form.panel method="post" action=(action) novalidate {
                input type="hidden" name="csrf" value=(session.csrf);
                @if let Some((_, version)) = editing { input type="hidden" name="version" value=(version); }
                @for f in kind.fields {
                    (field_input(f, values.get(f.name).map(String::as_str).unwrap_or(""), error_for(f.name), &options, measures))
                }
                @for e in &stray { p.error-message { (e.field) ": " (e.message) } }
                button.button type="submit" { "Save" }
                " "
                a href=(match editing { Some((id, _)) => format!("/gov/{}/{id}", kind.id), None => format!("/gov/{}", kind.id) }) { "Cancel" }
            }
        },
    );
    *r.status_mut() = status;
    r
}

/// One field of a record's form: its label, hint and error, and the input its type calls for
/// (choices, scores with their words, references to other records, measures, dates, text).
fn field_input(
    f: &Field,
    value: &str,
    error: Option<&str>,
    options: &HashMap<&str, Vec<(String, String)>>,
    measures: &[ipmo_measures::Measure],
) -> Markup {
    html! {
        @let id = format!("f-{}", f.name);
        @let described = format!("{}{}", if f.hint.is_empty() { String::new() } else { format!("{id}-hint ") }, if error.is_some() { format!("{id}-error") } else { String::new() });
        div class=(if error.is_some() { "field field-error" } else { "field" }) {
            label for=(id) { (f.label) @if !f.required { " (optional)" } }
            @if !f.hint.is_empty() { span.hint id=(format!("{id}-hint")) { (f.hint) } }
            @if let Some(e) = error { span.error-message id=(format!("{id}-error")) { span.visually-hidden { "Error: " } (e) } }
            @match f.ty {
                FieldType::LongText => {
                    textarea id=(id) name=(f.name) rows="4" aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")] { (value) }
                }
                FieldType::Choice(list) => {
                    select id=(id) name=(f.name) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")] {
                        option value="" { @if f.required { "Choose…" } @else { "None" } }
                        @for o in list { option value=(o) selected[o.eq_ignore_ascii_case(value)] { (o) } }
                    }
                }
                FieldType::Score => {
                    select id=(id) name=(f.name) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")] {
                        option value="" { "Choose…" }
                        @for n in 1..=5 { option value=(n) selected[value == n.to_string()] { (score_label(f.name, n)) } }
                    }
                }
                FieldType::Ref(t) => {
                    select id=(id) name=(f.name) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")] {
                        option value="" { @if f.required { "Choose…" } @else { "None" } }
                        @for (reference, label) in options.get(t).map(Vec::as_slice).unwrap_or(&[]) {
                            option value=(reference) selected[reference == value] { (label) }
                        }
                    }
                }
                FieldType::Measure => {
                    select id=(id) name=(f.name) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")] {
                        option value="" { "Choose…" }
                        @for m in measures { option value=(m.id) selected[m.id == value] { (m.title) " (" (m.id) ")" } }
                    }
                }
                FieldType::Date => {
                    input id=(id) type="date" name=(f.name) value=(value) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")];
                }
                _ => {
                    input id=(id) type="text" name=(f.name) value=(value) aria-describedby=[(!described.trim().is_empty()).then_some(described.trim())] aria-invalid=[error.map(|_| "true")];
                }
            }
        }
    }
}

fn score_label(field: &str, n: usize) -> String {
    let names = if field.ends_with("likelihood") {
        Some(ipmo_governance::risk::LIKELIHOOD)
    } else if field.ends_with("consequence") {
        Some(ipmo_governance::risk::CONSEQUENCE)
    } else {
        None
    };
    match names {
        Some(n2) => format!("{n} {}", n2[n - 1]),
        None => n.to_string(),
    }
}

/// Creates a record from the form, or shows the form again with each problem beside its field.
pub(super) async fn create(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(kind_id): Path<String>,
    body: Bytes,
) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let Submitted { access, form, .. } =
        or_reply!(submitted(&s, &headers, &format!("/gov/{}/new", kind.id), Role::Editor, &body).await);
    let data = match kinds::validate(kind, &form, &ReleaseLookups(&s.release)) {
        Ok(d) => d,
        Err(errors) => {
            return render_form(&s, &access, kind, None, &form, &errors, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    match access.gov.store.create(kind.id, data, &access.session.user.username).await {
        Ok(rec) => Redirect::to(&format!("/gov/{}/{}", kind.id, rec.id)).into_response(),
        Err(StoreError::Invalid(errors)) => {
            render_form(&s, &access, kind, None, &form, &errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => store_error(e),
    }
}

/// Saves an edit, if nobody else saved the record since the form was opened; otherwise shows
/// both versions.
pub(super) async fn update(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind_id, id)): Path<(String, i64)>,
    body: Bytes,
) -> Response {
    let kind = or_reply!(kind_or_404(&kind_id));
    let Submitted { access, form, version } =
        or_reply!(submitted(&s, &headers, &format!("/gov/{}/{id}/edit", kind.id), Role::Editor, &body).await);
    or_reply!(load(access.gov, kind, id).await);
    let Some(version) = version else {
        return WebError::BadParameter("version".into(), "is missing; reload the edit page".into()).into_response();
    };
    let data = match kinds::validate(kind, &form, &ReleaseLookups(&s.release)) {
        Ok(d) => d,
        Err(errors) => {
            return render_form(
                &s,
                &access,
                kind,
                Some((id, version)),
                &form,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    match access.gov.store.update(id, version, data.clone(), &access.session.user.username).await {
        Ok(_) => Redirect::to(&format!("/gov/{}/{id}", kind.id)).into_response(),
        Err(StoreError::Invalid(errors)) => {
            render_form(&s, &access, kind, Some((id, version)), &form, &errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(StoreError::Conflict { current }) => conflict(&s, &access, kind, &current, &data, &form).await,
        Err(e) => store_error(e),
    }
}

/// The 409 page: the record as it is now beside the edit that could not be saved, with a form
/// that saves the edit over the current version if the editor still wants it.
async fn conflict(
    s: &Shared,
    access: &Access<'_>,
    kind: &Kind,
    current: &Record,
    mine: &Data,
    form: &BTreeMap<String, String>,
) -> Response {
    let (g, session) = (access.gov, &access.session);
    let names = match Names::for_kind(g.store.as_ref(), kind, g.settings.today()).await {
        Ok(n) => n,
        Err(e) => return store_error(e),
    };
    let path = format!("/gov/{}/{}", kind.id, current.id);
    let mine_rec = Record { data: mine.clone(), ..current.clone() };
    let mut r = gov_page(
        session,
        "Someone else changed this record",
        &[(kind.plural.to_string(), format!("/gov/{}", kind.id))],
        html! {
            h1 { "Someone else changed this record" }
            p.lede { (current.updated_by) " saved " (kind.reference(current.id)) " at " (current.updated_at) " (version " (current.version) ") after you opened it. Your changes have not been saved." }
            div.table-scroll role="region" aria-label="Their version and yours" tabindex="0" { table.table {
                caption { "Their version and yours" }
                thead { tr { th scope="col" { "Field" } th scope="col" { "Now (version " (current.version) ")" } th scope="col" { "Yours" } } }
                tbody {
                    @for f in kind.fields {
                        @let differs = current.data.get(f.name) != mine.get(f.name);
                        tr class=[differs.then_some("changed")] {
                            th scope="row" { (f.label) @if differs { " " (layout::tag("differs", "orange")) } }
                            td { (cell(&s.release, &names, f, current)) }
                            td { (cell(&s.release, &names, f, &mine_rec)) }
                        }
                    }
                }
            } }
            form.inline method="post" action=(format!("{path}/edit")) {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="version" value=(current.version);
                @for (k, v) in form { input type="hidden" name=(k) value=(v); }
                button.button type="submit" { "Save my version over theirs" }
            }
            " "
            a href=(path) { "Keep theirs and discard mine" }
        },
    );
    *r.status_mut() = StatusCode::CONFLICT;
    r
}
