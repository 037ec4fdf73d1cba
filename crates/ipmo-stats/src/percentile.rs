//! Percentile ranks and deciles, computed the way OpenPrescribing documents them so that our
//! numbers agree with theirs.
//!
//! OpenPrescribing ranks each month's organisations with SQL `PERCENT_RANK()` over the non-null
//! values (ties share the lowest rank; the result is `(rank − 1) / (n − 1)`, 0 when `n` is 1) and
//! draws deciles with `PERCENTILE_CONT` (linear interpolation between the two nearest ranks at
//! position `p × (n − 1)`). Null values (a zero denominator) get no rank and are left out of the
//! deciles.

/// The percentiles drawn on decile charts: 10th, 20th, …, 90th.
pub const DECILES: [u8; 9] = [10, 20, 30, 40, 50, 60, 70, 80, 90];

/// `PERCENT_RANK` of each value among the non-null values, scaled to 0–100.
///
/// NaN and infinite values count as null, as a division by zero does in SQL.
pub fn percent_ranks(values: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut sorted: Vec<f64> = values.iter().filter_map(|v| finite(*v)).collect();
    sorted.sort_by(f64::total_cmp);
    values.iter().map(|v| Some(percent_rank_sorted(&sorted, finite(*v)?))).collect()
}

/// [`percent_ranks`] of one value among values already sorted ascending, all finite (the value
/// need not be one of them).
pub fn percent_rank_sorted(sorted: &[f64], v: f64) -> f64 {
    let n = sorted.len();
    if n <= 1 {
        return 0.0;
    }
    // Number of values strictly smaller = the 0-based rank shared by ties.
    let smaller = sorted.partition_point(|x| *x < v);
    100.0 * smaller as f64 / (n - 1) as f64
}

/// `PERCENTILE_CONT(p)` of the non-null values, `p` in 0–1; `None` when there are no values.
pub fn percentile_cont(values: &[Option<f64>], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().filter_map(|v| finite(*v)).collect();
    sorted.sort_by(f64::total_cmp);
    percentile_cont_sorted(&sorted, p)
}

/// [`percentile_cont`] over values already sorted ascending, all finite.
pub fn percentile_cont_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let (lower, upper, fraction) = ranks_at(sorted.len(), p)?;
    Some(sorted[lower] + (sorted[upper] - sorted[lower]) * fraction)
}

/// The two ranks (0-based) either side of `PERCENTILE_CONT(p)`'s position among `n` values, and
/// how far between them it lies; None when there are no values.
fn ranks_at(n: usize, p: f64) -> Option<(usize, usize, f64)> {
    let last = n.checked_sub(1)?;
    let position = p.clamp(0.0, 1.0) * last as f64;
    let lower = position.floor() as usize;
    Some((lower, position.ceil() as usize, position - lower as f64))
}

/// [`percentile_cont_sorted`] of values in any order, all finite, found by selection rather
/// than a full sort (the two ranks either side of the position are all it reads). Reorders
/// `values`; the result is exactly what sorting first would give.
pub fn percentile_cont_in_place(values: &mut [f64], p: f64) -> Option<f64> {
    let (lower, upper, fraction) = ranks_at(values.len(), p)?;
    let (_, at_lower, above) = values.select_nth_unstable_by(lower, f64::total_cmp);
    let at_lower = *at_lower;
    // Everything after `lower` is at least as large, so the next rank is the smallest of them.
    let at_upper = if upper == lower { at_lower } else { above.iter().copied().min_by(f64::total_cmp)? };
    Some(at_lower + (at_upper - at_lower) * fraction)
}

/// The nine deciles (10th…90th) of the non-null values; empty when there are none.
pub fn deciles(values: &[Option<f64>]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().filter_map(|v| finite(*v)).collect();
    sorted.sort_by(f64::total_cmp);
    deciles_sorted(&sorted)
}

/// [`deciles`] of values already sorted ascending, all finite.
pub fn deciles_sorted(sorted: &[f64]) -> Vec<f64> {
    DECILES.iter().filter_map(|d| percentile_cont_sorted(sorted, f64::from(*d) / 100.0)).collect()
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranks_match_sql_percent_rank_with_ties_and_nulls() {
        // Sorted: 1, 2, 2, 4 → ranks 1, 2, 2, 4 → (r − 1)/(n − 1) = 0, 1/3, 1/3, 1.
        let r = percent_ranks(&[Some(2.0), None, Some(4.0), Some(1.0), Some(2.0), Some(f64::NAN)]);
        let third = 100.0 / 3.0;
        assert_eq!(r, vec![Some(third), None, Some(100.0), Some(0.0), Some(third), None]);
        assert_eq!(percent_ranks(&[Some(7.0)]), vec![Some(0.0)]);
    }

    #[test]
    fn percentile_cont_interpolates_between_ranks() {
        // 4 values: p = 0.1 → position 0.3 → 10 + 0.3 × (20 − 10) = 13.
        let v = [Some(40.0), Some(10.0), Some(30.0), Some(20.0)];
        assert!((percentile_cont(&v, 0.1).unwrap() - 13.0).abs() < 1e-12);
        assert_eq!(percentile_cont(&v, 0.5), Some(25.0));
        assert_eq!(percentile_cont(&v, 1.0), Some(40.0));
        assert_eq!(percentile_cont(&[None], 0.5), None);
        let d = deciles(&v);
        assert_eq!(d.len(), 9);
        assert!((d[8] - 37.0).abs() < 1e-12);
    }

    #[test]
    fn seven_regions_rank_in_sixths_and_deciles_interpolate() {
        // Seven organisations (England's regions): ranks step by 1/6; the 10th percentile sits
        // 0.6 of the way from the lowest to the second (position 0.1 × 6), the 90th 0.4 of the
        // way from the sixth to the highest (position 5.4).
        let v: Vec<Option<f64>> = [7.0, 1.0, 6.0, 2.0, 5.0, 3.0, 4.0].into_iter().map(Some).collect();
        let r = percent_ranks(&v);
        let sixth = 100.0 / 6.0;
        let want = [6.0, 0.0, 5.0, 1.0, 4.0, 2.0, 3.0].map(|k: f64| Some(k * sixth));
        for (got, want) in r.iter().zip(want) {
            assert!((got.unwrap() - want.unwrap()).abs() < 1e-9, "{got:?} vs {want:?}");
        }
        let d = deciles(&v);
        assert!((d[0] - 1.6).abs() < 1e-12, "{d:?}");
        assert!((d[4] - 4.0).abs() < 1e-12);
        assert!((d[8] - 6.4).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn ranks_lie_in_range_and_follow_order(values in proptest::collection::vec(proptest::option::of(-1e6f64..1e6), 0..60)) {
            let ranks = percent_ranks(&values);
            prop_assert_eq!(ranks.len(), values.len());
            for (i, a) in values.iter().enumerate() {
                prop_assert_eq!(a.is_some(), ranks[i].is_some());
                if let (Some(x), Some(rx)) = (a, ranks[i]) {
                    prop_assert!((0.0..=100.0).contains(&rx));
                    for (j, b) in values.iter().enumerate() {
                        if let (Some(y), Some(ry)) = (b, ranks[j]) {
                            if x < y { prop_assert!(rx < ry); }
                            if x == y { prop_assert_eq!(rx, ry); }
                        }
                    }
                }
            }
        }

        #[test]
        fn selection_gives_the_sorted_percentile(values in proptest::collection::vec(prop_oneof![-1e6f64..1e6, (-3i32..3).prop_map(f64::from)], 1..200), p in 0.0f64..=1.0) {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let mut shuffled = values.clone();
            prop_assert_eq!(percentile_cont_in_place(&mut shuffled, p), percentile_cont_sorted(&sorted, p));
        }

        #[test]
        fn deciles_are_monotone_and_within_the_data(values in proptest::collection::vec(-1e6f64..1e6, 1..60)) {
            let opt: Vec<Option<f64>> = values.iter().copied().map(Some).collect();
            let d = deciles(&opt);
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            for w in d.windows(2) { prop_assert!(w[0] <= w[1]); }
            for x in d { prop_assert!(x >= min && x <= max); }
        }
    }
}
