//! A savings scheme's saving, measured each month from the prescribing rather than typed in. A
//! scheme names the organisation it covers, the products concerned, a baseline period and a
//! start; every month since the start, each practice counted towards the organisation that month
//! is compared with its own baseline, and the practices' savings add up to the scheme's. Because
//! the saving is a sum over practices, it splits exactly by the practices' IMD quintile.
//!
//! Nothing here is stored: the saving is worked out from the loaded release each time, so a
//! restated baseline changes history only through the audited edit of the scheme's record.

use ipmo_domain::YearMonth;
use ipmo_domain::display::{long_month, month_span, pounds};
use ipmo_domain::practice::OrgLevel;
use ipmo_governance::store::Record;
use ipmo_index::{Analysis, CodeSet, Denominator, Level, PrescribingIndex, ValueKind};
use ipmo_release::Release;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Share of the plan to date at or above which a scheme is green.
pub const GREEN_FROM: f64 = 0.9;
/// Share of the plan to date at or above which a scheme is amber (below: red).
pub const AMBER_FROM: f64 = 0.7;

/// How a scheme saves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemeType {
    /// Volume moved from one set of products to a cheaper one.
    Switch,
    /// Less spend per patient on the products.
    Reduction,
    /// A lower price paid per unit for the same products.
    Price,
}

impl SchemeType {
    /// The type named on a scheme record.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Switch" => Some(Self::Switch),
            "Reduction" => Some(Self::Reduction),
            "Price per unit" => Some(Self::Price),
            _ => None,
        }
    }

    /// How the saving is measured, in words for the scheme's page.
    pub fn method(self) -> &'static str {
        match self {
            Self::Switch => {
                "Each month, the quantity of the products switched to beyond each practice's baseline share of both sets of products, times the price difference per unit that month (the organisation's NIC per unit of the products switched from, less that of the products switched to)."
            }
            Self::Reduction => {
                "Each month, each practice's baseline spend per registered patient on the products (NIC over the baseline months divided by the patients registered in those months) times its patients that month, less what it spent: the spend avoided, adjusted for list size. Practices without a list size that month are left out."
            }
            Self::Price => {
                "Each month, each practice's baseline price per unit (NIC divided by quantity over the baseline months) times the quantity it prescribed that month, less what it paid."
            }
        }
    }
}

/// A scheme as the computation needs it, read from its record.
#[derive(Clone, Debug, PartialEq)]
pub struct Scheme {
    /// How it saves.
    pub kind: SchemeType,
    /// The organisation covered.
    pub org: String,
    /// Its level.
    pub level: OrgLevel,
    /// What is switched from, reduced or bought better.
    pub from: CodeSet,
    /// What is switched to (switches only).
    pub to: Option<CodeSet>,
    /// First month counted.
    pub start: YearMonth,
    /// Baseline months, inclusive.
    pub baseline: (YearMonth, YearMonth),
    /// Planned saving a year, pounds.
    pub planned_annual: f64,
}

impl Scheme {
    /// Reads a scheme record; the error says which field stops the saving being measured.
    pub fn of_record(r: &Release, rec: &Record) -> Result<Self, String> {
        let kind = SchemeType::parse(rec.text("scheme_type"))
            .ok_or_else(|| format!("\"{}\" is not a scheme type", rec.text("scheme_type")))?;
        let org = rec.text("org").to_string();
        let level = crate::org_level(r, &org)?;
        let codes = |field: &str| -> Result<Option<CodeSet>, String> {
            let text = rec.text(field);
            if text.is_empty() {
                return Ok(None);
            }
            CodeSet::parse(text, "", field).map(Some).map_err(|e| e.to_string())
        };
        let month = |field: &str| -> Result<YearMonth, String> {
            rec.text(field).parse().map_err(|_| format!("{field} \"{}\" is not a month", rec.text(field)))
        };
        Ok(Self {
            kind,
            org,
            level,
            from: codes("from_codes")?.ok_or("The scheme names no products.")?,
            to: codes("to_codes")?,
            start: month("start")?,
            baseline: (month("baseline_from")?, month("baseline_to")?),
            planned_annual: rec.number("planned_annual").unwrap_or(0.0),
        })
    }
}

/// One month of a scheme.
#[derive(Clone, Debug, PartialEq)]
pub struct SchemeMonth {
    /// The prescribing month.
    pub month: YearMonth,
    /// Saving measured, pounds (negative: it cost more than the baseline).
    pub realised: f64,
    /// The plan's share of the year, pounds.
    pub planned: f64,
    /// Practices counted.
    pub practices: usize,
}

/// A scheme's saving since its start.
#[derive(Clone, Debug, PartialEq)]
pub struct Realisation {
    /// Each month from the start to the newest month of prescribing.
    pub months: Vec<SchemeMonth>,
    /// The baseline in words (share, rate or price, and the months).
    pub baseline: String,
    /// Saving to date, pounds.
    pub realised: f64,
    /// Plan to date, pounds.
    pub planned: f64,
    /// Green, Amber, Red by realised over plan to date; None before any month is in the data.
    pub rag: Option<&'static str>,
    /// Why, in one sentence.
    pub why: String,
    /// Saving to date by the practices' national IMD quintile: `[unknown, 1 (most deprived), …, 5]`.
    pub by_quintile: [f64; 6],
}

/// Per practice and month: the from products' quantity and NIC, the to products' (switches), and
/// the list size (reductions).
#[derive(Clone, Copy, Debug, Default)]
struct Cell {
    from_q: f64,
    from_nic: f64,
    to_q: f64,
    to_nic: f64,
    patients: f64,
}

/// A scheme read from its record and its saving, or why it could not be measured.
pub type Measurement = Result<(Scheme, Realisation), String>;

/// Reads a scheme record and measures it.
pub fn measure(r: &Release, rec: &Record) -> Measurement {
    let scheme = Scheme::of_record(r, rec)?;
    let index = r.index.as_ref().ok_or("The prescribing index is not loaded, so savings cannot be measured.")?;
    let real = realise_scheme(index, r.imd_quintiles(), &scheme)?;
    Ok((scheme, real))
}

/// The computation itself, on an index and each practice's IMD quintile.
pub fn realise_scheme(
    index: &PrescribingIndex,
    quintiles: &FxHashMap<String, u8>,
    s: &Scheme,
) -> Result<Realisation, String> {
    let (Some(&first), Some(&last)) = (index.months.first(), index.months.last()) else {
        return Err("No prescribing is loaded.".into());
    };
    let (b0, b1) = s.baseline;
    if b1 < first || b0 > last {
        return Err(format!(
            "The baseline {} to {} holds no month of prescribing; the data run from {} to {}.",
            long_month(b0),
            long_month(b1),
            long_month(first),
            long_month(last)
        ));
    }
    let position: FxHashMap<&str, usize> = index.practices.iter().enumerate().map(|(i, p)| (p.as_str(), i)).collect();
    let cells = cells(index, &position, s, b0.max(first), last)?;
    let level = Level::from(s.level);
    let covered = |m: YearMonth| -> Vec<usize> {
        index.practices_counted(&level, &s.org, m).into_iter().filter_map(|p| position.get(p).copied()).collect()
    };

    // Baseline sums per practice, and over the organisation.
    let mut base: FxHashMap<usize, Cell> = FxHashMap::default();
    let mut whole = Cell::default();
    for &m in index.months.iter().filter(|m| (b0..=b1).contains(*m)) {
        for p in covered(m) {
            let Some(c) = cells.get(&(m, p)) else { continue };
            let b = base.entry(p).or_default();
            for (sum, v) in [(&mut whole, c), (b, c)] {
                sum.from_q += v.from_q;
                sum.from_nic += v.from_nic;
                sum.to_q += v.to_q;
                sum.to_nic += v.to_nic;
                sum.patients += v.patients;
            }
        }
    }
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    let months_text = month_span(b0, b1);
    // What each practice is judged against: its own baseline, or the organisation's when it had none.
    let (org_baseline, baseline_text) = match s.kind {
        SchemeType::Switch => {
            let share = ratio(whole.to_q, whole.from_q + whole.to_q)
                .ok_or("Neither set of products was prescribed in the baseline period.")?;
            (share, format!("{:.1}% of the quantity was of the products switched to, {months_text}", share * 100.0))
        }
        SchemeType::Reduction => {
            let rate =
                ratio(whole.from_nic, whole.patients).ok_or("No practice had a list size in the baseline period.")?;
            (rate, format!("£{:.4} per registered patient a month, {months_text}", rate))
        }
        SchemeType::Price => {
            let ppu = ratio(whole.from_nic, whole.from_q)
                .ok_or("The products were not prescribed in the baseline period.")?;
            (ppu, format!("£{:.4} per unit, {months_text}", ppu))
        }
    };
    let practice_baseline = |p: usize| -> f64 {
        let b = base.get(&p).copied().unwrap_or_default();
        match s.kind {
            SchemeType::Switch => ratio(b.to_q, b.from_q + b.to_q),
            SchemeType::Reduction => ratio(b.from_nic, b.patients),
            SchemeType::Price => ratio(b.from_nic, b.from_q),
        }
        .unwrap_or(org_baseline)
    };
    let base_prices = (ratio(whole.from_nic, whole.from_q), ratio(whole.to_nic, whole.to_q));

    let mut months = Vec::new();
    let mut by_quintile = [0.0; 6];
    for &m in index.months.iter().filter(|m| **m >= s.start) {
        let practices = covered(m);
        let here: Vec<(usize, Cell)> = practices.iter().filter_map(|p| cells.get(&(m, *p)).map(|c| (*p, *c))).collect();
        // Switches price the volume moved at the month's own prices, falling back on the
        // baseline's for a side not prescribed that month.
        let (q_from, n_from, q_to, n_to) = here
            .iter()
            .fold((0.0, 0.0, 0.0, 0.0), |a, (_, c)| (a.0 + c.from_q, a.1 + c.from_nic, a.2 + c.to_q, a.3 + c.to_nic));
        let difference =
            ratio(n_from, q_from).or(base_prices.0).unwrap_or(0.0) - ratio(n_to, q_to).or(base_prices.1).unwrap_or(0.0);
        let mut realised = 0.0;
        for (p, c) in &here {
            let b = practice_baseline(*p);
            let saving = match s.kind {
                SchemeType::Switch => (c.to_q - b * (c.from_q + c.to_q)) * difference,
                SchemeType::Reduction => b * c.patients - c.from_nic,
                SchemeType::Price => b * c.from_q - c.from_nic,
            };
            realised += saving;
            let quintile = quintiles.get(&index.practices[*p]).copied().unwrap_or(0).min(5);
            by_quintile[usize::from(quintile)] += saving;
        }
        months.push(SchemeMonth { month: m, realised, planned: s.planned_annual / 12.0, practices: here.len() });
    }
    let realised: f64 = months.iter().map(|m| m.realised).sum();
    let planned: f64 = months.iter().map(|m| m.planned).sum();
    let (rag, why) = rag(realised, planned, &months, s.start);
    Ok(Realisation { months, baseline: baseline_text, realised, planned, rag, why, by_quintile })
}

/// Green from [`GREEN_FROM`] of the plan to date, amber from [`AMBER_FROM`], red below.
pub fn rag(realised: f64, planned: f64, months: &[SchemeMonth], start: YearMonth) -> (Option<&'static str>, String) {
    let Some(last) = months.last() else {
        return (None, format!("No month from {} on is in the prescribing data yet.", long_month(start)));
    };
    if planned <= 0.0 {
        return (None, "The scheme plans no saving, so it has no RAG.".into());
    }
    let share = realised / planned;
    let rag = if share >= GREEN_FROM {
        "Green"
    } else if share >= AMBER_FROM {
        "Amber"
    } else {
        "Red"
    };
    let why = format!(
        "{} realised against {} planned, {} ({:.0}% of plan; green from {:.0}%, amber from {:.0}%).",
        pounds(realised),
        pounds(planned),
        month_span(start, last.month),
        share * 100.0,
        GREEN_FROM * 100.0,
        AMBER_FROM * 100.0
    );
    (Some(rag), why)
}

/// Every practice-month's sums from the baseline's first month to `to`, nationally (practices
/// are matched to the organisation month by month afterwards).
fn cells(
    index: &PrescribingIndex,
    position: &FxHashMap<&str, usize>,
    s: &Scheme,
    from: YearMonth,
    to: YearMonth,
) -> Result<FxHashMap<(YearMonth, usize), Cell>, String> {
    let run = |numerator: &CodeSet, denominator: Denominator, value: ValueKind| {
        let a = Analysis {
            numerator: numerator.clone(),
            denominator,
            value,
            level: Level::Practice,
            org: None,
            from: Some(from),
            to: Some(to),
        };
        index.analyse(&a).map_err(|e| e.to_string())
    };
    let practice = |code: &str| position.get(code).copied();
    let mut out: FxHashMap<(YearMonth, usize), Cell> = FxHashMap::default();
    let other = s.to.clone().unwrap_or_else(|| s.from.clone());
    for value in [ValueKind::Quantity, ValueKind::Nic] {
        for row in run(&s.from, Denominator::Codes(other.clone()), value)? {
            let Some(p) = practice(&row.org_code) else { continue };
            let c = out.entry((row.month, p)).or_default();
            let has_to = s.to.is_some();
            match value {
                ValueKind::Quantity => {
                    c.from_q = row.numerator;
                    c.to_q = if has_to { row.denominator } else { 0.0 };
                }
                _ => {
                    c.from_nic = row.numerator;
                    c.to_nic = if has_to { row.denominator } else { 0.0 };
                }
            }
        }
    }
    if s.kind == SchemeType::Reduction {
        for row in run(&s.from, Denominator::ListSize, ValueKind::Nic)? {
            if let Some(p) = practice(&row.org_code) {
                out.entry((row.month, p)).or_default().patients = row.denominator;
            }
        }
    }
    Ok(out)
}

/// Running totals of (planned, realised) month by month, for the cumulative charts.
pub fn running_totals(months: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    months
        .scan((0.0, 0.0), |sum, (planned, realised)| {
            *sum = (sum.0 + planned, sum.1 + realised);
            Some(*sum)
        })
        .collect()
}

/// The financial year a month falls in, April to March: `2025/26`.
pub fn financial_year(m: YearMonth) -> String {
    let start = if m.month() >= 4 { m.year() } else { m.year() - 1 };
    format!("{start}/{:02}", (start + 1) % 100)
}

/// One financial year of the ledger.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LedgerYear {
    /// Planned for the months of the year from each scheme's start, pounds (the whole year,
    /// months not yet in the data included).
    pub planned_year: f64,
    /// Planned for the months of the year that are in the data, pounds.
    pub planned_to_date: f64,
    /// Measured, pounds.
    pub realised: f64,
}

/// The ledger's totals by financial year, from each scheme's realisation (schemes whose saving
/// could not be measured add nothing but their plan).
pub fn by_financial_year<'a>(
    schemes: impl IntoIterator<Item = (&'a Scheme, &'a Realisation)>,
) -> BTreeMap<String, LedgerYear> {
    let mut out: BTreeMap<String, LedgerYear> = BTreeMap::new();
    for (s, real) in schemes {
        for m in &real.months {
            let y = out.entry(financial_year(m.month)).or_default();
            y.planned_to_date += m.planned;
            y.realised += m.realised;
        }
        // The plan for every month of each year the scheme has begun, up to the year of the
        // newest month in the data.
        let last = real.months.last().map_or(s.start, |m| m.month);
        let mut m = s.start;
        let end_year = financial_year(last);
        while financial_year(m) <= end_year {
            out.entry(financial_year(m)).or_default().planned_year += s.planned_annual / 12.0;
            m = m.next();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipmo_domain::practice::{Amounts, PracticeMonth};
    use ipmo_index::IndexBuilder;

    const ATORVA: &str = "0212000B0AAAAAA";
    const ROSUVA: &str = "0212000AAAAAAAA";

    fn ym(s: &str) -> YearMonth {
        s.parse().unwrap()
    }

    fn practice(code: &str, list: f64) -> PracticeMonth {
        PracticeMonth {
            code: code.into(),
            pcn: Some("P1".into()),
            sicbl: "S1".into(),
            icb: "I1".into(),
            region: "Y1".into(),
            list_size: Some(list),
            star_pu: None,
            age_bands: None,
        }
    }

    fn amounts(quantity: f64, nic_pence: i64) -> Amounts {
        Amounts { items: 1, quantity, actual_cost_e5: nic_pence * 1000, nic_pence, adq: 0.0 }
    }

    /// Four months, practices A and B in ICB I1 and C elsewhere. Atorvastatin costs 10p a unit
    /// and rosuvastatin 4p. In the two baseline months A prescribes 900 atorvastatin and 100
    /// rosuvastatin (10% switched), B 500 and 500 (50%). From month 3 A moves to 500/500 and B
    /// to 200/800; in month 4 prices change to 12p and 3p.
    fn index() -> PrescribingIndex {
        let mut b = IndexBuilder::new();
        let ps = [practice("A", 1000.0), practice("B", 2000.0), {
            let mut c = practice("C", 500.0);
            c.icb = "I2".into();
            c
        }];
        // Month, (atorvastatin, rosuvastatin) units of A, B and C, and the two prices in pence.
        type MonthPlan = (&'static str, [(f64, f64); 3], (i64, i64));
        let plan: [MonthPlan; 4] = [
            ("2025-01", [(900.0, 100.0), (500.0, 500.0), (50.0, 50.0)], (10, 4)),
            ("2025-02", [(900.0, 100.0), (500.0, 500.0), (50.0, 50.0)], (10, 4)),
            ("2025-03", [(500.0, 500.0), (200.0, 800.0), (0.0, 100.0)], (10, 4)),
            ("2025-04", [(500.0, 500.0), (200.0, 800.0), (0.0, 100.0)], (12, 3)),
        ];
        for (month, rows, (pa, pr)) in plan {
            b.add_month(ym(month), &ps).unwrap();
            for (p, (a, r)) in ["A", "B", "C"].into_iter().zip(rows) {
                if a > 0.0 {
                    b.add(p, ATORVA, &amounts(a, a as i64 * pa));
                }
                b.add(p, ROSUVA, &amounts(r, r as i64 * pr));
            }
        }
        b.finish(vec!["test".into()])
    }

    fn scheme(kind: SchemeType, to: Option<&str>) -> Scheme {
        Scheme {
            kind,
            org: "I1".into(),
            level: OrgLevel::Icb,
            from: CodeSet::parse("0212000B0", "", "from").unwrap(),
            to: to.map(|t| CodeSet::parse(t, "", "to").unwrap()),
            start: ym("2025-03"),
            baseline: (ym("2025-01"), ym("2025-02")),
            planned_annual: 12.0 * 20.0,
        }
    }

    #[test]
    fn a_switch_saves_the_volume_moved_times_the_price_difference() {
        let quintiles: FxHashMap<String, u8> = [("A".to_string(), 1), ("B".to_string(), 5)].into_iter().collect();
        let real = realise_scheme(&index(), &quintiles, &scheme(SchemeType::Switch, Some("0212000AA"))).unwrap();
        // Month 3: A moved 500 − 10% × 1000 = 400 units, B 800 − 50% × 1000 = 300; 700 × (10p − 4p) = £42.
        // Month 4: the same 700 units × (12p − 3p) = £63.
        let got: Vec<(String, f64, usize)> =
            real.months.iter().map(|m| (m.month.to_string(), (m.realised * 1e6).round() / 1e6, m.practices)).collect();
        assert_eq!(got, [("2025-03".to_string(), 42.0, 2), ("2025-04".to_string(), 63.0, 2)]);
        assert!((real.realised - 105.0).abs() < 1e-9);
        assert_eq!(real.planned, 40.0);
        assert_eq!(real.rag, Some("Green"));
        // A (quintile 1) moved 400 units: 400 × 6p + 400 × 9p = £60; B (quintile 5) 300: £45.
        assert!((real.by_quintile[1] - 60.0).abs() < 1e-9 && (real.by_quintile[5] - 45.0).abs() < 1e-9);
        assert_eq!(real.by_quintile[0], 0.0);
        assert!(real.baseline.starts_with("30.0% of the quantity"), "{}", real.baseline);
    }

    #[test]
    fn a_reduction_and_a_price_scheme_are_measured_against_their_baselines() {
        let none = FxHashMap::default();
        // Reduction of atorvastatin: A's baseline is £90 a month for 1,000 patients (9p each), B's
        // £50 for 2,000 (2.5p). Month 3: A spends £50 (saves £40), B £20 (saves £30). Month 4 at
        // 12p: A £60 (saves £30), B £24 (saves £26).
        let real = realise_scheme(&index(), &none, &scheme(SchemeType::Reduction, None)).unwrap();
        let got: Vec<f64> = real.months.iter().map(|m| (m.realised * 1e6).round() / 1e6).collect();
        assert_eq!(got, [70.0, 56.0]);
        assert_eq!(real.rag, Some("Green"));
        // Price per unit: 10p in the baseline, 10p in month 3 (no saving), 12p in month 4: A's
        // 500 and B's 200 units cost 2p more, −£14.
        let real = realise_scheme(&index(), &none, &scheme(SchemeType::Price, None)).unwrap();
        let got: Vec<f64> = real.months.iter().map(|m| (m.realised * 1e6).round() / 1e6).collect();
        assert_eq!(got, [0.0, -14.0]);
        assert_eq!(real.rag, Some("Red"));
        assert!(real.why.starts_with("−£14 realised against £40 planned"), "{}", real.why);
    }

    #[test]
    fn baselines_outside_the_data_and_schemes_not_yet_started_say_so() {
        let none = FxHashMap::default();
        let mut s = scheme(SchemeType::Switch, Some("0212000AA"));
        s.baseline = (ym("2020-01"), ym("2020-12"));
        let e = realise_scheme(&index(), &none, &s).unwrap_err();
        assert!(e.contains("holds no month of prescribing"), "{e}");
        let mut s = scheme(SchemeType::Switch, Some("0212000AA"));
        s.start = ym("2026-01");
        let real = realise_scheme(&index(), &none, &s).unwrap();
        assert!(real.months.is_empty() && real.rag.is_none(), "{real:?}");
    }

    #[test]
    fn financial_years_run_april_to_march() {
        assert_eq!(financial_year(ym("2025-03")), "2024/25");
        assert_eq!(financial_year(ym("2025-04")), "2025/26");
        assert_eq!(financial_year(ym("1999-12")), "1999/00");
        let s = scheme(SchemeType::Switch, Some("0212000AA"));
        let real = realise_scheme(&index(), &FxHashMap::default(), &s).unwrap();
        let years = by_financial_year([(&s, &real)]);
        assert_eq!(years["2024/25"], LedgerYear { planned_year: 20.0, planned_to_date: 20.0, realised: 42.0 });
        assert_eq!(years["2025/26"].planned_year, 12.0 * 20.0);
        assert_eq!(years["2025/26"].planned_to_date, 20.0);
    }
}
