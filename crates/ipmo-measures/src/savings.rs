//! Savings over a period, and the one headline figure an organisation's dashboard gives.
//!
//! A cost-based measure stores, per organisation and month, what the organisation would have
//! saved at the median (`saving_50`) and at the 10th percentile (`saving_10`) of its level (see
//! [`crate::compute`]). People read savings over a period, as OpenPrescribing's measure pages and
//! alerts do: the last [`SAVINGS_MONTHS`] months summed.
//!
//! The headline adds measures together, so it must not count any prescription twice. A composite
//! measure (one that declares `components`, such as the low-priority omnibus) counts exactly what
//! its components count, so the headline sums the components and leaves the composite out; and
//! only measures whose summed saving is positive count, since an organisation that already
//! prescribes below the median on one measure cannot spend that against another.

use crate::definition::Measure;
use crate::series::ValuePoint;
use ipmo_domain::YearMonth;

/// Months summed for a saving: the latest month and the five before it.
pub const SAVINGS_MONTHS: u32 = 6;

/// One organisation's saving on one measure over a period.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PeriodSaving {
    /// First month of the period.
    pub from: YearMonth,
    /// Last month of the period.
    pub to: YearMonth,
    /// Months of the period with a stored saving.
    pub months: usize,
    /// Σ saving at the median of the level (pounds; negative: already below it).
    pub at_median: f64,
    /// Σ saving at the 10th percentile of the level (pounds).
    pub at_p10: f64,
}

/// The saving over the `months` months to `latest` of a series in month order; None when no
/// month of the period carries a saving (a measure that is not cost-based, or no data).
pub fn period_saving(points: &[ValuePoint], latest: YearMonth, months: u32) -> Option<PeriodSaving> {
    let from = latest.minus(months.saturating_sub(1));
    let mut out = PeriodSaving { from, to: latest, months: 0, at_median: 0.0, at_p10: 0.0 };
    for p in points.iter().filter(|p| p.month >= from && p.month <= latest) {
        if p.saving_50().is_none() && p.saving_10().is_none() {
            continue;
        }
        out.months += 1;
        out.at_median += p.saving_50().unwrap_or(0.0);
        out.at_p10 += p.saving_10().unwrap_or(0.0);
    }
    (out.months > 0).then_some(out)
}

/// What an organisation could save over a period across the measures that may be added.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Headline {
    /// First month of the period.
    pub from: YearMonth,
    /// Last month of the period.
    pub to: YearMonth,
    /// Σ of the positive savings at the median.
    pub at_median: f64,
    /// Σ of the positive savings at the 10th percentile.
    pub at_p10: f64,
    /// The measures added, with their savings, largest at the median first.
    pub counted: Vec<(String, PeriodSaving)>,
    /// Composite measures left out because their components are counted.
    pub composites: Vec<String>,
}

/// The headline over `series` (each measure with the organisation's series), for the
/// [`SAVINGS_MONTHS`] months to `latest`. Measures that are not cost-based are skipped.
pub fn headline<'a>(series: impl IntoIterator<Item = (&'a Measure, &'a [ValuePoint])>, latest: YearMonth) -> Headline {
    let mut h = Headline {
        from: latest.minus(SAVINGS_MONTHS - 1),
        to: latest,
        at_median: 0.0,
        at_p10: 0.0,
        counted: Vec::new(),
        composites: Vec::new(),
    };
    for (m, points) in series {
        if !m.is_cost_based {
            continue;
        }
        if m.is_composite() {
            h.composites.push(m.id.clone());
            continue;
        }
        if let Some(s) = period_saving(points, latest, SAVINGS_MONTHS) {
            h.at_median += s.at_median.max(0.0);
            h.at_p10 += s.at_p10.max(0.0);
            h.counted.push((m.id.clone(), s));
        }
    }
    h.counted.sort_by(|a, b| b.1.at_median.total_cmp(&a.1.at_median).then(a.0.cmp(&b.0)));
    h.composites.sort();
    h
}

/// The SQL that reproduces a [`Headline`] from the stored values, for `ipmo sql`: each counted
/// measure's savings summed over the period, then the positive sums added.
pub fn headline_sql(h: &Headline, org_type: &str, org_code: &str) -> String {
    let ids: Vec<String> = h.counted.iter().map(|(id, _)| format!("'{}'", id.replace('\'', "''"))).collect();
    let ids = if ids.is_empty() { "''".to_string() } else { ids.join(", ") };
    format!(
        "SELECT SUM(CASE WHEN s50 > 0 THEN s50 ELSE 0 END) AS at_median, \
         SUM(CASE WHEN s10 > 0 THEN s10 ELSE 0 END) AS at_p10 \
         FROM (SELECT measure_id, SUM(saving_50) AS s50, SUM(saving_10) AS s10 FROM measure_values \
         WHERE org_type = '{}' AND org_code = '{}' AND month BETWEEN DATE '{}' AND DATE '{}' \
         AND measure_id IN ({ids}) GROUP BY measure_id)",
        org_type.replace('\'', "''"),
        org_code.replace('\'', "''"),
        h.from.first_day().format("%Y-%m-%d"),
        h.to.first_day().format("%Y-%m-%d"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Library;
    use crate::series::ValueFields;

    fn ym(s: &str) -> YearMonth {
        s.parse().unwrap()
    }

    fn series(savings: &[(f64, f64)], start: &str) -> Vec<ValuePoint> {
        savings
            .iter()
            .enumerate()
            .map(|(i, (s50, s10))| {
                ValuePoint::from(ValueFields {
                    month: ym(start).plus(i as u32),
                    numerator: Some(1.0),
                    denominator: Some(1.0),
                    value: Some(1.0),
                    percentile: Some(50.0),
                    saving_50: Some(*s50),
                    saving_10: Some(*s10),
                })
            })
            .collect()
    }

    #[test]
    fn a_period_sums_its_months_only() {
        let s = series(&[(100.0, 150.0); 8], "2024-01");
        let p = period_saving(&s, ym("2024-08"), 6).unwrap();
        assert_eq!((p.from, p.to, p.months), (ym("2024-03"), ym("2024-08"), 6));
        assert_eq!((p.at_median, p.at_p10), (600.0, 900.0));
        assert!(period_saving(&s, ym("2025-06"), 6).is_none(), "no month of the period has data");
        let mut none = s.clone();
        for x in &mut none {
            x.edit(|f| f.saving_50 = None);
            x.edit(|f| f.saving_10 = None);
        }
        assert!(period_saving(&none, ym("2024-08"), 6).is_none(), "not cost-based");
    }

    #[test]
    fn the_headline_counts_components_not_their_composite_and_positive_sums_only() {
        let lib = Library::built_in().unwrap();
        let omnibus = lib.get("lp_omnibus").unwrap();
        assert!(omnibus.is_composite());
        let get = |id: &str| lib.get(id).unwrap();
        // By hand: trimipramine 6 × £100 = £600 (p10 £900); co-proxamol 6 × £50 = £300 (p10 £450);
        // aliskiren −£120 over 6 months at the median (left out) but +£60 at the 10th; the omnibus
        // (£150 a month) is their total and is not added again. broad_spectrum has no savings.
        let trimipramine = series(&[(100.0, 150.0); 6], "2024-07");
        let coproxamol = series(&[(50.0, 75.0); 6], "2024-07");
        let aliskiren = series(&[(-20.0, 10.0); 6], "2024-07");
        let total = series(&[(130.0, 235.0); 6], "2024-07");
        let broad = series(&[(0.0, 0.0); 6], "2024-07");
        let rows: Vec<(&Measure, &[ValuePoint])> = vec![
            (get("lp_trimipramine"), &trimipramine),
            (get("lp_coproxamol"), &coproxamol),
            (get("lp_aliskiren"), &aliskiren),
            (omnibus, &total),
            (get("broad_spectrum"), &broad),
        ];
        let h = headline(rows, ym("2024-12"));
        assert_eq!((h.from, h.to), (ym("2024-07"), ym("2024-12")));
        assert_eq!(h.at_median, 900.0);
        assert_eq!(h.at_p10, 900.0 + 450.0 + 60.0);
        assert_eq!(h.composites, vec!["lp_omnibus".to_string()]);
        let ids: Vec<&str> = h.counted.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["lp_trimipramine", "lp_coproxamol", "lp_aliskiren"]);
        let sql = headline_sql(&h, "icb", "QAA");
        assert!(sql.contains("measure_id IN ('lp_trimipramine', 'lp_coproxamol', 'lp_aliskiren')"), "{sql}");
        assert!(sql.contains("BETWEEN DATE '2024-07-01' AND DATE '2024-12-01'"), "{sql}");
    }
}
