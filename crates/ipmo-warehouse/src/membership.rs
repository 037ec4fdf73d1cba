//! Dated organisation membership from a series of practice-mapping snapshots.
//!
//! NHS Digital publishes the practice → PCN → sub-ICB → ICB → region map as snapshots, and
//! practices move, merge and close between them. Turning the snapshots into intervals lets any
//! query ask where a practice belonged "as at" a month, or "as today".

use chrono::NaiveDate;
use ipmo_ingest::orgs::{MembershipRow, PracticeDetails};
use std::collections::{BTreeMap, BTreeSet};

/// One interval of a practice's membership. `valid_from` is `None` for the first snapshot a
/// practice appears in (its membership before then is unknown, and the earliest known is the best
/// guess); `valid_to` is the first snapshot date at which it no longer holds, `None` if it still does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Practice.
    pub practice_code: String,
    /// PCN, if any.
    pub pcn_code: Option<String>,
    /// Sub-ICB location.
    pub sicbl_code: String,
    /// ICB.
    pub icb_code: String,
    /// Region.
    pub region_code: String,
    /// Start (inclusive).
    pub valid_from: Option<NaiveDate>,
    /// End (exclusive).
    pub valid_to: Option<NaiveDate>,
    /// The practice's most recent interval ("as today").
    pub is_latest: bool,
}

type Key = (Option<String>, String, String, String);

/// Builds intervals from snapshot rows (any order).
pub fn intervals(rows: &[MembershipRow]) -> Vec<Interval> {
    let dates: BTreeSet<NaiveDate> = rows.iter().map(|r| r.extract_date).collect();
    let mut by_practice: BTreeMap<&str, BTreeMap<NaiveDate, Key>> = BTreeMap::new();
    for r in rows {
        by_practice.entry(&r.practice_code).or_default().insert(
            r.extract_date,
            (r.pcn_code.clone(), r.sicbl_code.clone(), r.icb_code.clone(), r.region_code.clone()),
        );
    }
    let mut out = Vec::new();
    for (practice, seen) in by_practice {
        let mut open: Option<(Key, Option<NaiveDate>)> = None;
        let mut first = true;
        let start = out.len();
        for &d in &dates {
            match (seen.get(&d), open.take()) {
                (Some(k), Some((ok, from))) if *k == ok => open = Some((ok, from)),
                (Some(k), prev) => {
                    if let Some((ok, from)) = prev {
                        out.push(interval(practice, ok, from, Some(d)));
                    }
                    open = Some((k.clone(), if first { None } else { Some(d) }));
                    first = false;
                }
                (None, Some((ok, from))) => out.push(interval(practice, ok, from, Some(d))),
                (None, None) => {}
            }
        }
        if let Some((k, from)) = open {
            out.push(interval(practice, k, from, None));
        }
        if out.len() > start {
            let last = out.len() - 1;
            out[last].is_latest = true;
        }
    }
    out
}

fn interval(practice: &str, k: Key, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Interval {
    Interval {
        practice_code: practice.to_string(),
        pcn_code: k.0,
        sicbl_code: k.1,
        icb_code: k.2,
        region_code: k.3,
        valid_from: from,
        valid_to: to,
        is_latest: false,
    }
}

/// An organisation of any level with its name as last published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Org {
    /// ODS code.
    pub code: String,
    /// Name.
    pub name: String,
    /// `practice`, `cost_centre`, `pcn`, `sicbl`, `icb` or `region`.
    pub org_type: &'static str,
    /// Parent in the latest snapshot naming it.
    pub parent_code: Option<String>,
}

/// Every organisation named in the snapshots and the ODS practice list; later snapshots win.
pub fn orgs(rows: &[MembershipRow], details: &[PracticeDetails]) -> Vec<Org> {
    let mut sorted: Vec<&MembershipRow> = rows.iter().collect();
    sorted.sort_by_key(|r| r.extract_date);
    let mut out: BTreeMap<(&'static str, String), Org> = BTreeMap::new();
    let mut put = |code: &str, name: &str, org_type: &'static str, parent: Option<&str>| {
        out.insert(
            (org_type, code.to_string()),
            Org { code: code.to_string(), name: name.to_string(), org_type, parent_code: parent.map(str::to_string) },
        );
    };
    for r in sorted {
        put(&r.practice_code, &r.practice_name, "practice", Some(r.pcn_code.as_deref().unwrap_or(&r.sicbl_code)));
        if let Some(pcn) = &r.pcn_code {
            put(pcn, &r.pcn_name, "pcn", Some(&r.sicbl_code));
        }
        put(&r.sicbl_code, &r.sicbl_name, "sicbl", Some(&r.icb_code));
        put(&r.icb_code, &r.icb_name, "icb", Some(&r.region_code));
        put(&r.region_code, &r.region_name, "region", None);
    }
    for d in details {
        let key_practice = ("practice", d.code.clone());
        if !out.contains_key(&key_practice) {
            let t = if d.is_gp_practice { "practice" } else { "cost_centre" };
            out.insert(
                (t, d.code.clone()),
                Org {
                    code: d.code.clone(),
                    name: d.name.clone(),
                    org_type: t,
                    parent_code: Some(d.commissioner.clone()).filter(|c| !c.is_empty()),
                },
            );
        }
    }
    out.into_values().collect()
}

/// A practice with what the map and the ODS list say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Practice {
    /// Code.
    pub practice_code: String,
    /// Name.
    pub name: String,
    /// Postcode.
    pub postcode: String,
    /// ODS status, if `epraccur` was loaded.
    pub status: Option<String>,
    /// ODS prescribing setting, if loaded.
    pub setting: Option<String>,
    /// Standard GP practice (listed in the patient map, or setting 4 / RO76 in ODS).
    pub is_gp_practice: bool,
    /// ODS open date.
    pub open_date: Option<NaiveDate>,
    /// ODS close date.
    pub close_date: Option<NaiveDate>,
    /// First mapping snapshot listing it.
    pub first_extract_date: Option<NaiveDate>,
    /// Last mapping snapshot listing it.
    pub last_extract_date: Option<NaiveDate>,
}

/// Joins the snapshots and the ODS list into one row per practice.
pub fn practices(rows: &[MembershipRow], details: &[PracticeDetails]) -> Vec<Practice> {
    let mut out: BTreeMap<String, Practice> = BTreeMap::new();
    let mut sorted: Vec<&MembershipRow> = rows.iter().collect();
    sorted.sort_by_key(|r| r.extract_date);
    for r in sorted {
        let p = out.entry(r.practice_code.clone()).or_insert_with(|| Practice {
            practice_code: r.practice_code.clone(),
            name: String::new(),
            postcode: String::new(),
            status: None,
            setting: None,
            is_gp_practice: true,
            open_date: None,
            close_date: None,
            first_extract_date: Some(r.extract_date),
            last_extract_date: None,
        });
        p.name = r.practice_name.clone();
        p.postcode = r.postcode.clone();
        p.last_extract_date = Some(r.extract_date);
    }
    for d in details {
        let p = out.entry(d.code.clone()).or_insert_with(|| Practice {
            practice_code: d.code.clone(),
            name: d.name.clone(),
            postcode: d.postcode.clone(),
            status: None,
            setting: None,
            is_gp_practice: d.is_gp_practice,
            open_date: None,
            close_date: None,
            first_extract_date: None,
            last_extract_date: None,
        });
        p.status = Some(d.status.clone());
        p.setting = Some(d.setting.clone());
        p.is_gp_practice = d.is_gp_practice;
        p.open_date = d.open_date;
        p.close_date = d.close_date;
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(d: &str, practice: &str, sicbl: &str) -> MembershipRow {
        MembershipRow {
            extract_date: d.parse().unwrap(),
            practice_code: practice.into(),
            practice_name: "P".into(),
            postcode: String::new(),
            pcn_code: None,
            pcn_name: String::new(),
            sicbl_code: sicbl.into(),
            sicbl_name: String::new(),
            icb_code: "QHM".into(),
            icb_name: String::new(),
            region_code: "Y63".into(),
            region_name: String::new(),
        }
    }

    #[test]
    fn moves_and_closures_become_intervals() {
        let rows = vec![
            row("2020-09-01", "A81001", "00K"),
            row("2022-01-01", "A81001", "16C"),
            row("2025-10-01", "A81001", "16C"),
            row("2020-09-01", "A81003", "00K"),
        ];
        let iv = intervals(&rows);
        let d = |s: &str| Some(s.parse::<NaiveDate>().unwrap());
        assert_eq!(iv.len(), 3);
        assert_eq!(
            (iv[0].sicbl_code.as_str(), iv[0].valid_from, iv[0].valid_to, iv[0].is_latest),
            ("00K", None, d("2022-01-01"), false)
        );
        assert_eq!(
            (iv[1].sicbl_code.as_str(), iv[1].valid_from, iv[1].valid_to, iv[1].is_latest),
            ("16C", d("2022-01-01"), None, true)
        );
        assert_eq!((iv[2].practice_code.as_str(), iv[2].valid_to, iv[2].is_latest), ("A81003", d("2022-01-01"), true));
    }
}
