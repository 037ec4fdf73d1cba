//! What is overdue or stale on a given day: the rules the governance pages flag and the status
//! summary counts, kept apart from any page so the board report can use them too.
//!
//! - A **risk** is overdue for review once its next-review date has passed.
//! - A **milestone** or **risk action** is overdue once its due date has passed and it is not
//!   finished (a milestone marked Complete, an action marked Done).
//! - **Workforce returns** are stale when the newest is for a quarter before the last complete
//!   quarter: the figures (and any projection from them) are more than a quarter old.

use crate::kinds::parse_quarter;
use crate::store::Record;
use chrono::{Datelike, NaiveDate};

/// The date a record was due by, if it is overdue on `today`.
pub fn overdue(r: &Record, today: NaiveDate) -> Option<NaiveDate> {
    let (field, done) = match r.kind.as_str() {
        "risk" => ("review_date", false),
        "milestone" => ("due", r.text("status") == "Complete"),
        "risk-action" => ("due", r.text("status") == "Done"),
        _ => return None,
    };
    if done || r.archived {
        return None;
    }
    let date = NaiveDate::parse_from_str(r.text(field), "%Y-%m-%d").ok()?;
    (date < today).then_some(date)
}

/// The name of the date field [`overdue`] reads for a kind.
pub fn due_field(kind: &str) -> Option<&'static str> {
    match kind {
        "risk" => Some("review_date"),
        "milestone" | "risk-action" => Some("due"),
        _ => None,
    }
}

/// The last quarter that had ended by `today`, as (year, quarter).
pub fn last_complete_quarter(today: NaiveDate) -> (u16, u8) {
    let q = (today.month0() / 3 + 1) as u8;
    let year = today.year() as u16;
    if q == 1 { (year - 1, 4) } else { (year, q - 1) }
}

/// Whether returns whose newest quarter is `quarter` (e.g. `2025-Q4`) are stale on `today`.
pub fn returns_stale(quarter: &str, today: NaiveDate) -> bool {
    parse_quarter(quarter).is_some_and(|q| q < last_complete_quarter(today))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &str, fields: &[(&str, &str)]) -> Record {
        Record {
            id: 1,
            kind: kind.into(),
            version: 1,
            archived: false,
            data: fields.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string()))).collect(),
            created_at: String::new(),
            created_by: String::new(),
            updated_at: String::new(),
            updated_by: String::new(),
        }
    }

    #[test]
    fn overdue_reviews_milestones_and_actions() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let risk = record("risk", &[("review_date", "2026-01-31")]);
        assert_eq!(overdue(&risk, today), NaiveDate::from_ymd_opt(2026, 1, 31));
        assert_eq!(overdue(&record("risk", &[("review_date", "2026-12-01")]), today), None);
        assert_eq!(overdue(&record("risk", &[("review_date", "2026-11-30")]), today), None, "due today is not late");
        let late = record("milestone", &[("due", "2026-01-31"), ("status", "Not started")]);
        assert!(overdue(&late, today).is_some());
        assert!(overdue(&record("milestone", &[("due", "2026-01-31"), ("status", "Complete")]), today).is_none());
        assert!(overdue(&record("risk-action", &[("due", "2026-01-31"), ("status", "Done")]), today).is_none());
        assert!(overdue(&record("stakeholder", &[("due", "2020-01-01")]), today).is_none());
    }

    #[test]
    fn returns_go_stale_after_a_quarter() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(last_complete_quarter(today), (2026, 3));
        assert_eq!(last_complete_quarter(NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()), (2025, 4));
        assert!(!returns_stale("2026-Q3", today));
        assert!(returns_stale("2026-Q2", today));
        assert!(returns_stale("2025-Q4", today));
        assert!(!returns_stale("not a quarter", today));
    }
}
