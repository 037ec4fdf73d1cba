//! The horizon scan sized against the organisation's own prescribing. An item names products, an
//! organisation and an expected change in what the products cost; its cost pressure (or saving)
//! a year is the organisation's current spend on them at the latest run rate times that change,
//! computed here rather than typed. The data also offer items for a person to accept: new
//! presentations, fast-growing ones, this month's Drug Tariff price changes and concessions.

use ipmo_domain::YearMonth;
use ipmo_domain::display::{long_month, number, pounds};
use ipmo_domain::practice::OrgLevel;
use ipmo_governance::store::Record;
use ipmo_index::{CodeSet, Denominator, Level, PrescribingIndex, ValueKind};
use ipmo_release::Release;

/// Months of the latest prescribing whose spend, scaled to a year, is the current run rate.
pub const RUN_RATE_MONTHS: u32 = 3;
/// Offers of each kind shown at most.
pub const OFFERS_PER_KIND: usize = 5;
/// Smallest monthly impact of a Tariff change or concession offered, pounds.
pub const MIN_PRICE_IMPACT: f64 = 50.0;
/// Smallest growth in national items, per cent, for a presentation to be offered as growing.
pub const MIN_GROWTH_PCT: f64 = 20.0;

/// An item's cost a year, computed. The run rate is the latest months' unless the item's expected
/// date has already passed in the data: then it is the months just before that date, so that a
/// price change already in the prescribing is not counted again on top of itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Impact {
    /// First month of the run rate.
    pub from: YearMonth,
    /// Last month of the run rate.
    pub to: YearMonth,
    /// NIC over those months, pounds.
    pub spend: f64,
    /// That spend scaled to twelve months, pounds.
    pub annual_spend: f64,
    /// Annual spend times the expected change: positive is a cost pressure, negative a saving.
    pub impact: f64,
}

impl Impact {
    /// How the figure was reached, in one sentence.
    pub fn explain(&self, pct: f64) -> String {
        format!(
            "NIC {} from {} to {}, {} a year at that rate, × {}% = {} a year.",
            pounds(self.spend),
            long_month(self.from),
            long_month(self.to),
            pounds(self.annual_spend),
            number(pct, if pct.fract() == 0.0 { 0 } else { 1 }),
            pounds(self.impact)
        )
    }
}

/// A horizon-scan record's impact a year.
pub fn impact(r: &Release, rec: &Record) -> Result<Impact, String> {
    let index = r.index.as_ref().ok_or("The prescribing index is not loaded, so the impact cannot be sized.")?;
    let org = rec.text("org");
    let level = crate::org_level(r, org)?;
    let codes = CodeSet::parse(rec.text("codes"), "", "codes").map_err(|e| e.to_string())?;
    let expected = rec.text("expected").get(..7).and_then(|m| m.parse().ok());
    impact_of(index, level, org, &codes, rec.number("price_change_pct").unwrap_or(0.0), expected)
}

/// The impact of a `pct` change in cost on `org`'s spend on `codes` at the run rate before
/// `expected` (the latest run rate when it is after the data or not given).
pub fn impact_of(
    index: &PrescribingIndex,
    level: OrgLevel,
    org: &str,
    codes: &CodeSet,
    pct: f64,
    expected: Option<YearMonth>,
) -> Result<Impact, String> {
    let (first, newest) = match (index.months.first(), index.months.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => return Err("No prescribing is loaded.".into()),
    };
    let last = match expected {
        Some(e) if e <= newest => e.minus(1).max(first),
        _ => newest,
    };
    let from = index.months.iter().copied().find(|m| *m >= last.minus(RUN_RATE_MONTHS - 1)).unwrap_or(last);
    let held = index.months.iter().filter(|m| (from..=last).contains(*m)).count().max(1);
    let analysis = ipmo_index::Analysis {
        numerator: codes.clone(),
        denominator: Denominator::Codes(codes.clone()),
        value: ValueKind::Nic,
        level: Level::from(level),
        org: Some(org.to_string()),
        from: Some(from),
        to: Some(last),
    };
    let spend: f64 = index.analyse(&analysis).map_err(|e| e.to_string())?.iter().map(|row| row.numerator).sum();
    let annual_spend = spend * 12.0 / held as f64;
    Ok(Impact { from, to: last, spend, annual_spend, impact: annual_spend * pct / 100.0 })
}

/// A horizon-scan item the data suggest, for a person to accept into the register.
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    /// One of the register's categories.
    pub category: &'static str,
    /// A title for the record.
    pub title: String,
    /// The BNF code concerned.
    pub code: String,
    /// What was seen, with its figures.
    pub detail: String,
    /// The expected change in cost, per cent, as the data show it.
    pub price_change_pct: f64,
    /// When it applies.
    pub expected: YearMonth,
}

/// Every presentation's national items in the latest months and in the months they are compared
/// with, and the month each was first prescribed: national, so worked out once per release (a
/// national index reads several months of rows for it) and shared by every organisation's offers.
#[derive(Clone, Debug, PartialEq)]
pub struct NationalActivity {
    /// First month held.
    pub first: YearMonth,
    /// The latest [`RUN_RATE_MONTHS`] months.
    pub window: (YearMonth, YearMonth),
    /// The same months a year before when held (seasonality), else the months just before.
    pub before: (YearMonth, YearMonth),
    /// One entry per presentation.
    pub presentations: Vec<ipmo_index::Activity>,
}

/// Works out [`NationalActivity`]; None when no prescribing is loaded.
pub fn national_activity(index: &PrescribingIndex) -> Result<Option<NationalActivity>, String> {
    let (Some(&first), Some(&last)) = (index.months.first(), index.months.last()) else { return Ok(None) };
    let window = (last.minus(RUN_RATE_MONTHS - 1), last);
    let year_before = (window.0.minus(12), last.minus(12));
    let before = if year_before.0 >= first { year_before } else { (window.0.minus(3), window.0.minus(1)) };
    let presentations = index.presentation_activity(window, before).map_err(|e| e.to_string())?;
    Ok(Some(NationalActivity { first, window, before, presentations }))
}

/// What the data offer for `org`'s horizon scan: new presentations and the fastest-growing ones
/// nationally (from `activity`), and the organisation's largest Drug Tariff changes and
/// concessions this month.
pub fn offers(r: &Release, org: &str, activity: Option<&NationalActivity>) -> Vec<Offer> {
    let name = |code: &str| r.bnf_name(code).unwrap_or(code).to_string();
    let mut out = Vec::new();
    if let Some(NationalActivity { first, window, before, presentations: activity }) = activity {
        let (first, window, before, last) = (*first, *window, *before, window.1);
        let mut new: Vec<_> = activity.iter().filter(|a| a.first_month > first && a.first_month >= window.0).collect();
        new.sort_by(|a, b| b.items.cmp(&a.items).then(a.code.cmp(&b.code)));
        out.extend(new.into_iter().take(OFFERS_PER_KIND).map(|a| Offer {
            category: "New product",
            title: format!("New in prescribing: {}", name(&a.code)),
            code: a.code.clone(),
            detail: format!(
                "First prescribed in {}; {} items nationally from {} to {}. Sized as a year at the current rate.",
                long_month(a.first_month),
                number(a.items as f64, 0),
                long_month(window.0),
                long_month(last)
            ),
            price_change_pct: 100.0,
            expected: last.next(),
        }));
        let growth = |a: &ipmo_index::Activity| (a.items as f64 / a.items_before as f64 - 1.0) * 100.0;
        let mut growing: Vec<_> =
            activity.iter().filter(|a| a.items_before > 0 && growth(a) >= MIN_GROWTH_PCT).collect();
        growing.sort_by(|a, b| (b.items - b.items_before).cmp(&(a.items - a.items_before)).then(a.code.cmp(&b.code)));
        out.extend(growing.into_iter().take(OFFERS_PER_KIND).map(|a| Offer {
            category: "Growing use",
            title: format!("Growing use: {}", name(&a.code)),
            code: a.code.clone(),
            detail: format!(
                "{} items nationally from {} to {}, against {} from {} to {} ({}%).",
                number(a.items as f64, 0),
                long_month(window.0),
                long_month(last),
                number(a.items_before as f64, 0),
                long_month(before.0),
                long_month(before.1),
                signed(growth(a))
            ),
            price_change_pct: growth(a).round(),
            expected: last.next(),
        }));
    }
    let org_type = r.org(org).map_or("icb", |o| o.org_type.as_str());
    for (category, impacts) in [("Drug Tariff price change", &r.price_changes), ("Price concession", &r.concessions)] {
        let Some(impacts) = impacts else { continue };
        let Some(month) = impacts.newest() else { continue };
        let costs = impacts.costs(org_type, org, month.month);
        let big = costs.iter().filter(|c| c.impact.abs() / 100.0 >= MIN_PRICE_IMPACT && c.before > 0.0);
        out.extend(big.take(OFFERS_PER_KIND).map(|c| {
            let pct = (c.after - c.before) / c.before * 100.0;
            Offer {
                category,
                title: format!("{category}: {}", c.pack_name),
                code: c.bnf_code.clone(),
                detail: format!(
                    "{}: {}p a unit against {}p before ({}%), {} for {} in {}{}.",
                    long_month(month.month),
                    number(c.after, 2),
                    number(c.before, 2),
                    signed(pct),
                    pounds(c.impact / 100.0),
                    org,
                    long_month(month.quantity_month),
                    if month.estimate { " quantities (an estimate)" } else { "" }
                ),
                price_change_pct: (pct * 10.0).round() / 10.0,
                expected: month.month,
            }
        }));
    }
    out
}

/// A percentage with its sign: `+25`, `−80`.
fn signed(pct: f64) -> String {
    let n = number(pct, 0);
    if pct > 0.0 && n != "0" { format!("+{n}") } else { n }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipmo_domain::practice::{Amounts, PracticeMonth};
    use ipmo_index::IndexBuilder;

    fn practice(code: &str, icb: &str) -> PracticeMonth {
        PracticeMonth {
            code: code.into(),
            pcn: None,
            sicbl: "S1".into(),
            icb: icb.into(),
            region: "Y1".into(),
            list_size: Some(1000.0),
            star_pu: None,
            age_bands: None,
        }
    }

    fn nic(pence: i64, items: i64) -> Amounts {
        Amounts { items, quantity: 1.0, actual_cost_e5: pence * 1000, nic_pence: pence, adq: 0.0 }
    }

    /// Five months: an old product used steadily (£10 a month in I1) and growing elsewhere, and a
    /// new one from month 4.
    fn index() -> PrescribingIndex {
        let mut b = IndexBuilder::new();
        let ps = [practice("A", "I1"), practice("B", "I2")];
        for (i, m) in ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05"].into_iter().enumerate() {
            b.add_month(m.parse().unwrap(), &ps).unwrap();
            b.add("A", "0601022B0AAABAB", &nic(1000, 10));
            b.add("B", "0601022B0AAABAB", &nic(500, 10 + 10 * i as i64));
            if i >= 3 {
                b.add("B", "0601023AVAAAAAA", &nic(2000, 4));
            }
        }
        b.finish(vec!["test".into()])
    }

    #[test]
    fn impact_is_the_run_rate_times_the_change() {
        let codes = CodeSet::parse("0601022B0", "", "codes").unwrap();
        let i = impact_of(&index(), OrgLevel::Icb, "I1", &codes, -80.0, None).unwrap();
        // March to May: £30, £120 a year; −80% is a saving of £96 a year.
        assert_eq!((i.from.to_string(), i.to.to_string()), ("2025-03".into(), "2025-05".into()));
        assert!((i.spend - 30.0).abs() < 1e-9 && (i.annual_spend - 120.0).abs() < 1e-9);
        assert!((i.impact + 96.0).abs() < 1e-9);
        assert_eq!(
            i.explain(-80.0),
            "NIC £30 from March 2025 to May 2025, £120 a year at that rate, × −80% = −£96 a year."
        );
        let e = impact_of(&index(), OrgLevel::Icb, "I1", &CodeSet::parse("0407", "", "codes").unwrap(), 5.0, None);
        assert!(e.unwrap_err().contains("0407"));
        // An item expected in April, inside the data, is sized on January to March.
        let i = impact_of(&index(), OrgLevel::Icb, "I1", &codes, -80.0, "2025-04".parse().ok()).unwrap();
        assert_eq!((i.from.to_string(), i.to.to_string()), ("2025-01".into(), "2025-03".into()));
        let later = impact_of(&index(), OrgLevel::Icb, "I1", &codes, -80.0, "2027-01".parse().ok()).unwrap();
        assert_eq!(later.to.to_string(), "2025-05");
    }

    #[test]
    fn new_growing_and_repriced_presentations_are_offered() {
        use ipmo_release::price_impacts::{ImpactCost, ImpactMonth, PriceImpacts, PricedPack};
        let mut b = ipmo_release::ReleaseBuilder::new("t".into(), Default::default());
        b.index(index());
        b.bnf("0601023AVAAAAAA", "Newgliflozin 10mg tablets");
        b.org(ipmo_release::Org { code: "I1".into(), name: "ICB one".into(), org_type: "icb".into(), parent: None });
        let may: YearMonth = "2025-05".parse().unwrap();
        let mut changes = PriceImpacts::default();
        changes.add_month(ImpactMonth { month: may, quantity_month: may, estimate: false });
        let cost = |code: &str, before: f64, after: f64, quantity: f64| ImpactCost {
            priced: std::sync::Arc::new(PricedPack {
                bnf_code: code.into(),
                pack: "1".into(),
                pack_name: format!("{code} 28"),
                before,
                after,
            }),
            quantity,
            impact: quantity * (after - before),
        };
        // £60 and £40 of impact: only the first reaches the £50 threshold.
        changes.add_cost("icb", "I1", may, cost("0601022B0AAABAB", 10.0, 40.0, 200.0));
        changes.add_cost("icb", "I1", may, cost("0212000B0AAAAAA", 10.0, 30.0, 200.0));
        b.price_changes(changes.finish());
        let r = b.finish();
        let activity = national_activity(r.index.as_ref().unwrap()).unwrap();
        let offers = offers(&r, "I1", activity.as_ref());
        let got: Vec<(&str, &str, f64)> =
            offers.iter().map(|o| (o.category, o.code.as_str(), o.price_change_pct)).collect();
        // Window March–May against December–February (no year before is held): the old product
        // had 150 items against 50 (+200%); the new one first appeared in April. The Tariff
        // change of 10p to 40p a unit cost £60 (+300%); the £40 one is below the threshold.
        assert_eq!(
            got,
            [
                ("New product", "0601023AVAAAAAA", 100.0),
                ("Growing use", "0601022B0AAABAB", 200.0),
                ("Drug Tariff price change", "0601022B0AAABAB", 300.0),
            ]
        );
        assert_eq!(offers[0].title, "New in prescribing: Newgliflozin 10mg tablets");
        assert!(
            offers[1].detail.contains("150 items nationally from March 2025 to May 2025, against 50"),
            "{}",
            offers[1].detail
        );
        assert_eq!(offers[2].expected, may);
    }
}
