//! How a record reads in a table or summary: its name, its fields as cells (references, measures
//! and organisations as links, dates in words with Overdue tags), the names of the records it
//! points at, and validation against the loaded release.

use crate::layout;
use ipmo_governance::kinds::{self, Field, FieldType, Kind, Lookups};
use ipmo_governance::store::{GovernanceStore, Record, StoreError};
use ipmo_release::Release;
use maud::{Markup, html};
use std::collections::HashMap;

/// Validation against the loaded release: measures from its library, organisations from its tree.
pub(super) struct ReleaseLookups<'a>(pub &'a Release);

impl Lookups for ReleaseLookups<'_> {
    fn measure_exists(&self, id: &str) -> bool {
        self.0.library.measures.iter().any(|m| m.id == id)
    }
    fn org_exists(&self, code: &str) -> bool {
        self.0.org(code).is_some()
    }
    fn bnf_prefix_exists(&self, prefix: &str) -> bool {
        match &self.0.index {
            Some(index) => !index.prefix_range(prefix).is_empty(),
            None => self.0.bnf_name(prefix).is_some(),
        }
    }
}

/// What a table cell needs besides its record: the names of records by id (for showing
/// references as links) and today's date (for flagging what is overdue).
pub(super) struct Names {
    names: HashMap<i64, (String, &'static Kind)>,
    /// The day overdue dates are judged against.
    pub today: chrono::NaiveDate,
}

impl Names {
    /// Names of every record of the kinds `kind`'s fields point at (and of `kind` itself).
    pub(super) async fn for_kind(
        store: &dyn GovernanceStore,
        kind: &Kind,
        today: chrono::NaiveDate,
    ) -> Result<Self, StoreError> {
        let mut targets: Vec<&str> = kind.refs().map(|(_, t)| t).collect();
        targets.push(kind.id);
        targets.sort_unstable();
        targets.dedup();
        Self::of_kinds(store, &targets, today).await
    }

    pub(super) async fn of_kinds(
        store: &dyn GovernanceStore,
        ids: &[&str],
        today: chrono::NaiveDate,
    ) -> Result<Self, StoreError> {
        let mut names = HashMap::new();
        for id in ids {
            let Some(k) = kinds::kind(id) else { continue };
            for r in store.records(id, true).await? {
                names.insert(r.id, (name_of(k, &r), k));
            }
        }
        Ok(Self { names, today })
    }

    /// No names (for cells without references).
    pub(super) fn empty(today: chrono::NaiveDate) -> Self {
        Self { names: HashMap::new(), today }
    }

    /// A link to the record, or its bare reference when unknown.
    pub(super) fn link(&self, id: i64) -> Markup {
        match self.names.get(&id) {
            Some((name, k)) => html! { a href=(format!("/gov/{}/{id}", k.id)) { (name) } },
            None => html! { (id) },
        }
    }
}

/// What a record is called in lists and links.
pub(super) fn name_of(kind: &Kind, r: &Record) -> String {
    kind.record_name(r.id, &r.data)
}

/// A field's value for a table cell or summary: references and measures become links.
pub(super) fn cell(r: &Release, names: &Names, f: &Field, rec: &Record) -> Markup {
    let v = rec.data.get(f.name);
    match f.ty {
        FieldType::Ref(_) => match v.and_then(serde_json::Value::as_i64) {
            Some(id) => names.link(id),
            None => html! {},
        },
        FieldType::Measure => match v.and_then(serde_json::Value::as_str) {
            Some(id) => {
                html! { a href=(format!("/measure/{id}")) { (r.library.measures.iter().find(|m| m.id == id).map_or(id, |m| m.title.as_str())) } }
            }
            None => html! {},
        },
        FieldType::MeasureList => {
            let ids: Vec<&str> =
                v.and_then(serde_json::Value::as_str).unwrap_or("").split(", ").filter(|s| !s.is_empty()).collect();
            let title = |id: &str| r.library.get(id).map_or(id.to_string(), |m| m.title.clone());
            html! { @for (i, id) in ids.iter().enumerate() { @if i > 0 { "; " } a href=(format!("/measure/{id}")) { (title(id)) } } }
        }
        FieldType::Date => date_cell(rec, f.name, names.today),
        FieldType::Org => match v.and_then(serde_json::Value::as_str) {
            Some(code) => {
                html! { a href=(format!("/org/{code}")) { (r.org(code).map_or(code, |o| o.name.as_str())) } " " span.code { "(" (code) ")" } }
            }
            None => html! {},
        },
        FieldType::BnfCodes => {
            let codes: Vec<&str> =
                v.and_then(serde_json::Value::as_str).unwrap_or("").split(", ").filter(|s| !s.is_empty()).collect();
            html! { @for (i, code) in codes.iter().enumerate() { @if i > 0 { "; " }
            a href=(format!("/bnf?code={code}")) { (r.bnf_name(code).unwrap_or(code)) } " " span.code { "(" (code) ")" } } }
        }
        FieldType::LongText => {
            let text = kinds::display_value(f, v);
            html! { @for (i, line) in text.lines().enumerate() { @if i > 0 { br; } (line) } }
        }
        _ => html! { (kinds::display_value(f, v)) },
    }
}

/// A date field of a record in words ("31 January 2026"), tagged Overdue when it is the date the
/// record is due by and that has passed (`ipmo_governance::due`).
pub(super) fn date_cell(rec: &Record, field: &str, today: chrono::NaiveDate) -> Markup {
    let late = ipmo_governance::due::due_field(&rec.kind) == Some(field)
        && ipmo_governance::due::overdue(rec, today).is_some();
    html! { (crate::format::iso_date(rec.text(field))) @if late { " " (layout::tag("Overdue", "red")) } }
}
