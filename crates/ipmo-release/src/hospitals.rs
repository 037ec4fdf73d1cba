//! NHS trusts as the dashboard shows them: each under the ICB it belongs to, with what hospital
//! medicines data (SCMD) the warehouse holds for it.

use ipmo_domain::YearMonth;
use rustc_hash::FxHashMap;

/// One NHS trust.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Trust {
    /// ODS code.
    pub code: String,
    /// Name as ODS publishes it.
    pub name: String,
    /// Its ICB today, when ODS gives one.
    pub icb_code: Option<String>,
    /// Whether ODS lists it as closed (merged trusts close; their successor carries on).
    pub closed: bool,
}

/// SCMD held for one trust.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ScmdCoverage {
    /// Months with at least one line.
    pub months: u32,
    /// The first and last of them.
    pub first: Option<YearMonth>,
    /// The newest month with a line.
    pub last: Option<YearMonth>,
    /// Lines (trust × VMP) in the newest month held for any trust.
    pub latest_lines: u32,
}

/// England's hospital use of one VMP in one month, in one unit.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VmpMonth {
    /// The month.
    pub month: YearMonth,
    /// The unit the quantity is counted in, as SCMD names it (None when the file gave none).
    pub unit: Option<String>,
    /// Quantity issued, net of returns.
    pub quantity: f64,
    /// Trusts with a line (one line is one trust's issues of the VMP in the month).
    pub trusts: u32,
}

/// Trusts and their SCMD coverage.
#[derive(Clone, Debug, Default)]
pub struct Hospitals {
    trusts: Vec<Trust>,
    coverage: FxHashMap<String, ScmdCoverage>,
    /// VMP id → its national use by month, oldest first.
    vmp_use: FxHashMap<String, Vec<VmpMonth>>,
    /// VMP id → its name as SCMD gives it.
    vmp_names: FxHashMap<String, String>,
    /// BNF presentation code → the VMPs of its dm+d products.
    presentation_vmps: FxHashMap<String, Vec<String>>,
    /// The newest SCMD month held.
    pub latest: Option<YearMonth>,
}

impl Hospitals {
    /// Adds a trust.
    pub fn add_trust(&mut self, trust: Trust) {
        self.trusts.push(trust);
    }

    /// Adds one SCMD month: each trust's lines in it. Months are added oldest first, so the
    /// last one added is the newest held and its counts are the ones the dashboard shows.
    pub fn add_month(&mut self, month: YearMonth, lines: &FxHashMap<String, u32>) {
        for c in self.coverage.values_mut() {
            c.latest_lines = 0;
        }
        for (trust, &n) in lines {
            let c = match self.coverage.get_mut(trust.as_str()) {
                Some(c) => c,
                None => self.coverage.entry(trust.clone()).or_default(),
            };
            c.first = c.first.or(Some(month));
            c.last = Some(month);
            c.months += 1;
            c.latest_lines = n;
        }
        self.latest = Some(month);
    }

    /// Adds England's use of a VMP in a month (months added oldest first).
    pub fn add_vmp_month(&mut self, vmp: &str, name: &str, use_: VmpMonth) {
        if !self.vmp_names.contains_key(vmp) {
            self.vmp_names.insert(vmp.to_string(), name.to_string());
        }
        self.vmp_use.entry(vmp.to_string()).or_default().push(use_);
    }

    /// Records that a BNF presentation is prescribed as a product of this VMP.
    pub fn link_presentation(&mut self, bnf_code: &str, vmp: &str) {
        let vmps = self.presentation_vmps.entry(bnf_code.to_string()).or_default();
        if !vmps.iter().any(|v| v == vmp) {
            vmps.push(vmp.to_string());
        }
    }

    /// The hospital use of a BNF presentation's VMPs: each VMP with its name and months held;
    /// VMPs no trust issued are left out.
    pub fn presentation_use(&self, bnf_code: &str) -> Vec<(&str, &str, &[VmpMonth])> {
        self.presentation_vmps
            .get(bnf_code)
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let months = self.vmp_use.get(v)?;
                Some((v.as_str(), self.vmp_names.get(v).map_or("", String::as_str), months.as_slice()))
            })
            .collect()
    }

    /// Sorts trusts by name, once everything is added.
    pub fn finish(mut self) -> Self {
        self.trusts.sort_by(|a, b| a.name.cmp(&b.name).then(a.code.cmp(&b.code)));
        for vmps in self.presentation_vmps.values_mut() {
            vmps.sort_unstable();
        }
        self
    }

    /// The trusts of an ICB, open ones first, each by name.
    pub fn in_icb(&self, icb: &str) -> Vec<&Trust> {
        let mut out: Vec<&Trust> = self.trusts.iter().filter(|t| t.icb_code.as_deref() == Some(icb)).collect();
        out.sort_by_key(|t| t.closed);
        out
    }

    /// A trust by code.
    pub fn trust(&self, code: &str) -> Option<&Trust> {
        self.trusts.iter().find(|t| t.code == code)
    }

    /// What SCMD holds for a trust.
    pub fn coverage(&self, code: &str) -> ScmdCoverage {
        self.coverage.get(code).copied().unwrap_or_default()
    }

    /// Trust codes with SCMD lines that no trust in the list has (retired or non-acute codes).
    pub fn unlisted_codes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.coverage.keys().map(String::as_str).filter(|c| self.trust(c).is_none()).collect();
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusts_sit_under_their_icb_and_count_their_months() {
        let m = |s: &str| s.parse::<YearMonth>().unwrap();
        let mut h = Hospitals::default();
        let trust = |code: &str, name: &str, icb: &str, closed: bool| Trust {
            code: code.into(),
            name: name.into(),
            icb_code: Some(icb.into()),
            closed,
        };
        h.add_trust(trust("RRK", "University Hospitals Birmingham", "QHL", false));
        h.add_trust(trust("RR1", "Heart of England", "QHL", true));
        h.add_trust(trust("R0A", "Manchester University", "QOP", false));
        let lines = |pairs: &[(&str, u32)]| pairs.iter().map(|(c, n)| (c.to_string(), *n)).collect();
        h.add_month(m("2020-01"), &lines(&[("RRK", 2)]));
        h.add_month(m("2020-03"), &lines(&[("RRK", 1), ("TAD", 4)]));
        let h = h.finish();
        let names: Vec<&str> = h.in_icb("QHL").iter().map(|t| t.code.as_str()).collect();
        assert_eq!(names, ["RRK", "RR1"], "open before closed");
        let c = h.coverage("RRK");
        assert_eq!((c.months, c.first, c.last, c.latest_lines), (2, Some(m("2020-01")), Some(m("2020-03")), 1));
        assert_eq!(h.latest, Some(m("2020-03")));
        assert_eq!(h.unlisted_codes(), ["TAD"]);
    }

    #[test]
    fn a_presentation_finds_the_hospital_use_of_its_vmps() {
        let m = |s: &str| s.parse::<YearMonth>().unwrap();
        let mut h = Hospitals::default();
        let use_ =
            |month: &str, quantity: f64| VmpMonth { month: m(month), unit: Some("tablet".into()), quantity, trusts: 3 };
        h.add_vmp_month("317919004", "Amoxicillin 500mg capsules", use_("2024-01", 900.0));
        h.add_vmp_month("317919004", "renamed later", use_("2024-02", 800.0));
        h.link_presentation("0501013B0AAABAB", "317919004");
        h.link_presentation("0501013B0AAABAB", "317919004");
        h.link_presentation("0501013B0AAABAB", "999");
        let h = h.finish();
        let found = h.presentation_use("0501013B0AAABAB");
        assert_eq!(found.len(), 1, "a VMP no trust issued is left out");
        let (vmp, name, months) = found[0];
        assert_eq!((vmp, name, months.len()), ("317919004", "Amoxicillin 500mg capsules", 2));
        assert!(h.presentation_use("0501013B0AAAAAA").is_empty());
    }
}
