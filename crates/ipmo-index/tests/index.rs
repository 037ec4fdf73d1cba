//! The index against a brute-force oracle: random practices, memberships, list sizes and
//! prescribing rows, random prefix sets, every level; the index must give exactly the sums a
//! plain loop over the rows gives.

use ipmo_domain::YearMonth;
use ipmo_domain::practice::{Amounts, PracticeMonth};
use ipmo_index::{Analysis, CodeSet, Denominator, IndexBuilder, Level, NodePolicy, PrescribingIndex, ValueKind};
use proptest::prelude::*;
use std::collections::BTreeMap;

const CODES: [&str; 8] = [
    "0501013K0AAAAAA",
    "0501013K0AAABAB",
    "0501021A0AAAAAA",
    "0501050B0AAAAAA",
    "0502000C0AAAAAA",
    "0601011A0AAAAAA",
    "0601023B0BBAAAA",
    "1001030U0AAABAB",
];
const PREFIXES: [&str; 10] = ["05", "0501", "0501013", "0501013K0AAABAB", "0502", "06", "0601011", "10", "1001", "0"];

/// A practice's ICB (index) and list size in one month.
type Member = (usize, Option<u32>);

#[derive(Clone, Debug)]
struct Case {
    /// Per month, per practice: (icb index, list size) or None when not a standard practice then.
    membership: Vec<Vec<Option<Member>>>,
    /// (month, practice, code, items, cost_e5)
    rows: Vec<(usize, usize, usize, i64, i64)>,
    numerator: Vec<usize>,
    exclude: Vec<usize>,
    denominator: Option<Vec<usize>>,
}

fn case() -> impl Strategy<Value = Case> {
    let member = proptest::option::weighted(0.85, (0usize..3, proptest::option::weighted(0.8, 100u32..5000)));
    let membership = proptest::collection::vec(proptest::collection::vec(member, 6), 1..4);
    membership.prop_flat_map(|membership| {
        let months = membership.len();
        let row = (0..months, 0usize..7, 0..CODES.len(), 0i64..40, 0i64..9_000_000);
        (
            Just(membership),
            proptest::collection::vec(row, 0..60),
            proptest::collection::vec(0..PREFIXES.len(), 1..3),
            proptest::collection::vec(0..PREFIXES.len(), 0..2),
            proptest::option::of(proptest::collection::vec(0..PREFIXES.len(), 1..3)),
        )
            .prop_map(|(membership, rows, numerator, exclude, denominator)| Case {
                membership,
                rows,
                numerator,
                exclude,
                denominator,
            })
    })
}

fn practice_code(p: usize) -> String {
    format!("P{p:05}")
}

fn matches(code: &str, include: &[usize], exclude: &[usize]) -> bool {
    include.iter().any(|&i| code.starts_with(PREFIXES[i])) && !exclude.iter().any(|&i| code.starts_with(PREFIXES[i]))
}

type Oracle = BTreeMap<(String, YearMonth), (f64, f64, Option<f64>)>;

/// The plain loop: for each month and organisation, sum the rows of its counted practices.
fn oracle(c: &Case, value: ValueKind, icb_level: bool) -> Oracle {
    let month = |m: usize| "2024-01".parse::<YearMonth>().unwrap().plus(m as u32);
    // (numerator, code denominator) as exact integers, list size as patients.
    let mut sums: BTreeMap<(String, YearMonth), (i64, i64, f64)> = BTreeMap::new();
    for (m, members) in c.membership.iter().enumerate() {
        for (p, member) in members.iter().enumerate() {
            let Some((icb, list)) = member else { continue };
            if c.denominator.is_none() && list.is_none() {
                continue;
            }
            let org = if icb_level { format!("I{icb}") } else { practice_code(p) };
            let e = sums.entry((org, month(m))).or_insert((0, 0, 0.0));
            e.2 += list.map_or(0.0, f64::from);
            for &(rm, rp, code, items, cost) in &c.rows {
                if rm != m || rp != p {
                    continue;
                }
                let v = if value == ValueKind::Items { items } else { cost };
                if matches(CODES[code], &c.numerator, &c.exclude) {
                    e.0 += v;
                }
                if let Some(d) = &c.denominator
                    && matches(CODES[code], d, &[])
                {
                    e.1 += v;
                }
            }
        }
    }
    let scale = if value == ValueKind::Items { 1.0 } else { 100_000.0 };
    sums.into_iter()
        .map(|(k, (num, den, list))| {
            let numerator = num as f64 / scale;
            let (denominator, multiplier) =
                if c.denominator.is_some() { (den as f64 / scale, 100.0) } else { (list, 1000.0) };
            (k, (numerator, denominator, (denominator > 0.0).then(|| numerator * multiplier / denominator)))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn index_sums_equal_a_plain_loop(c in case()) {
        // No node totals, every node of two or more codes, and the latter read back from a file.
        let none = fill(&c, IndexBuilder::new()).finish_with(vec![], NodePolicy { max_share: 0.0 }).unwrap();
        let all = fill(&c, IndexBuilder::new()).finish_with(vec![], NodePolicy { max_share: 1.0 }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.idx");
        ipmo_index::write_index(&all, &path).unwrap();
        let written = ipmo_index::read_index(&path).unwrap().unwrap();
        prop_assert!(written.file_backed());
        // Built through scratch files straight into the index file.
        let spilled = fill(&c, IndexBuilder::spilling_to(dir.path()).unwrap())
            .finish_to_file(vec![], NodePolicy { max_share: 1.0 }, &dir.path().join("s.idx"))
            .unwrap();
        prop_assert_eq!(spilled.columns().unwrap(), all.columns().unwrap());
        prop_assert_eq!(&spilled.nodes, &all.nodes);
        for index in [&none, &all, &written, &spilled] {
            check(&c, index)?;
        }
        // An index of the first months extended with the rest, in memory and through files, is
        // the index of every month.
        let months = c.membership.len();
        for first in 1..months {
            let early = fill_months(&c, IndexBuilder::new(), 0..first).finish_with(vec![], NodePolicy { max_share: 1.0 }).unwrap();
            let extended = fill_months(&c, IndexBuilder::extending(early, None).unwrap(), first..months)
                .finish_with(vec![], NodePolicy { max_share: 1.0 })
                .unwrap();
            let path = dir.path().join(format!("e{first}.idx"));
            let early = fill_months(&c, IndexBuilder::spilling_to(dir.path()).unwrap(), 0..first)
                .finish_to_file(vec!["early".into()], NodePolicy { max_share: 1.0 }, &path)
                .unwrap();
            let on_file = fill_months(&c, IndexBuilder::extending(early, Some(dir.path())).unwrap(), first..months)
                .finish_to_file(vec![], NodePolicy { max_share: 1.0 }, &path)
                .unwrap();
            for index in [&extended, &on_file] {
                prop_assert_eq!(index.columns().unwrap(), all.columns().unwrap());
                prop_assert_eq!(&index.nodes, &all.nodes);
                prop_assert_eq!(&index.codes, &all.codes);
                prop_assert_eq!(&index.code_rows, &all.code_rows);
                prop_assert_eq!(&index.practices, &all.practices);
                prop_assert_eq!(&index.orgs, &all.orgs);
                prop_assert_eq!(&index.membership, &all.membership);
                prop_assert_eq!(&index.months, &all.months);
            }
        }
    }
}

#[test]
fn an_extension_refuses_a_month_it_already_holds() {
    let practices = vec![PracticeMonth {
        code: practice_code(0),
        pcn: None,
        sicbl: "S0".into(),
        icb: "I0".into(),
        region: "R".into(),
        list_size: Some(1000.0),
        star_pu: None,
        age_bands: None,
    }];
    let month: YearMonth = "2024-03".parse().unwrap();
    let mut b = IndexBuilder::new();
    b.add_month(month, &practices).unwrap();
    let held = b.finish(vec![]);
    let mut again = IndexBuilder::extending(held, None).unwrap();
    let err = again.add_month(month, &practices).unwrap_err().to_string();
    assert!(err.contains("2024-03 is not after the months it holds"), "{err}");
    assert!(again.add_month(month.plus(1), &practices).is_ok());
}

fn fill(c: &Case, b: IndexBuilder) -> IndexBuilder {
    fill_months(c, b, 0..c.membership.len())
}

fn fill_months(c: &Case, mut b: IndexBuilder, months: std::ops::Range<usize>) -> IndexBuilder {
    for (m, members) in c.membership.iter().enumerate().filter(|(m, _)| months.contains(m)) {
        let practices: Vec<PracticeMonth> = members
            .iter()
            .enumerate()
            .filter_map(|(p, mem)| {
                mem.map(|(icb, list)| PracticeMonth {
                    code: practice_code(p),
                    pcn: None,
                    sicbl: format!("S{icb}"),
                    icb: format!("I{icb}"),
                    region: "R".into(),
                    list_size: list.map(f64::from),
                    star_pu: None,
                    age_bands: None,
                })
            })
            .collect();
        b.add_month("2024-01".parse::<YearMonth>().unwrap().plus(m as u32), &practices).unwrap();
        for &(rm, rp, code, items, cost) in &c.rows {
            if rm == m {
                let a = Amounts { items, quantity: 0.0, actual_cost_e5: cost, nic_pence: 0, adq: 0.0 };
                b.add(&practice_code(rp), CODES[code], &a);
            }
        }
    }
    b
}

fn check(c: &Case, index: &PrescribingIndex) -> Result<(), TestCaseError> {
    let prefixes = |v: &[usize]| v.iter().map(|&i| PREFIXES[i].to_string()).collect::<Vec<_>>();
    for (value, icb_level) in [(ValueKind::Items, false), (ValueKind::ActualCost, true)] {
        let analysis = Analysis {
            numerator: CodeSet { include: prefixes(&c.numerator), exclude: prefixes(&c.exclude) },
            denominator: match &c.denominator {
                Some(d) => Denominator::Codes(CodeSet { include: prefixes(d), exclude: vec![] }),
                None => Denominator::ListSize,
            },
            value,
            level: if icb_level { Level::Icb } else { Level::Practice },
            org: None,
            from: None,
            to: None,
        };
        // A prefix that no row's code starts with, or months with no mapped practice, is refused
        // by name rather than answered with zeros; check the refusal is right, then move on.
        let rows = match index.analyse(&analysis) {
            Err(ipmo_index::IndexError::Unanswerable { parameter, .. }) => {
                let sides: Vec<&CodeSet> = match parameter {
                    "numerator" => vec![&analysis.numerator],
                    "denominator" => analysis.denominator.codes().into_iter().collect(),
                    "organisations" => {
                        prop_assert!(c.membership.iter().all(|m| m.iter().all(Option::is_none)));
                        return Ok(());
                    }
                    other => return Err(TestCaseError::fail(format!("unexpected refusal of {other}"))),
                };
                let codes: Vec<&str> = c.rows.iter().map(|r| CODES[r.2]).collect();
                let unmatched = sides
                    .iter()
                    .flat_map(|s| s.include.iter())
                    .any(|p| !index.codes.iter().any(|code| code.starts_with(p.as_str())));
                prop_assert!(unmatched, "refused though every prefix matches one of {codes:?}");
                return Ok(());
            }
            other => other.unwrap(),
        };
        let got: Oracle =
            rows.into_iter().map(|r| ((r.org_code, r.month), (r.numerator, r.denominator, r.value))).collect();
        prop_assert_eq!(got, oracle(c, value, icb_level));
    }
    // A set's national items month by month are its totals over each single month.
    let set = CodeSet { include: prefixes(&c.numerator), exclude: prefixes(&c.exclude) };
    let monthly = index.monthly_totals(&set).unwrap();
    prop_assert_eq!(monthly.len(), index.months.len());
    for (month, items, quantity) in monthly {
        prop_assert_eq!(items, index.totals(&set, Some(month), Some(month)).unwrap().items);
        prop_assert_eq!(quantity, 0.0);
    }
    Ok(())
}

#[test]
fn long_runs_of_a_code_are_bounded_by_month_the_same_from_a_file() {
    // 5 months × 2,500 practices of one code is 12,500 rows, longer than the stretch a file
    // search reads in one go, so the search narrows a byte at a time first. A second code is
    // prescribed only in months 1 and 3, so some of its months are empty.
    let practices: Vec<PracticeMonth> = (0..2_500)
        .map(|p| PracticeMonth {
            code: practice_code(p),
            pcn: None,
            sicbl: "S0".into(),
            icb: format!("I{}", p % 3),
            region: "R".into(),
            list_size: Some(1000.0),
            star_pu: None,
            age_bands: None,
        })
        .collect();
    let first: YearMonth = "2024-01".parse().unwrap();
    let mut b = IndexBuilder::new();
    for m in 0..5u32 {
        b.add_month(first.plus(m), &practices).unwrap();
        for p in 0..practices.len() {
            let items = 1 + i64::from(m) + (p % 7) as i64;
            b.add(
                &practice_code(p),
                CODES[0],
                &Amounts { items, quantity: 0.0, actual_cost_e5: 100_000, nic_pence: 0, adq: 0.0 },
            );
            if m % 2 == 1 && p % 5 == 0 {
                b.add(
                    &practice_code(p),
                    CODES[1],
                    &Amounts { items: 2, quantity: 0.0, actual_cost_e5: 0, nic_pence: 0, adq: 0.0 },
                );
            }
        }
    }
    let memory = b.finish(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.idx");
    ipmo_index::write_index(&memory, &path).unwrap();
    let file = ipmo_index::read_index(&path).unwrap().unwrap();
    assert!(file.file_backed());
    let set = ipmo_index::CodeSet::parse("0501013K0", "", "n").unwrap();
    for m in 0..5u32 {
        let month = first.plus(m);
        let by_hand: i64 = (0..2_500).map(|p| 1 + i64::from(m) + (p % 7) as i64).sum();
        let second = if m % 2 == 1 { 2 * 500 } else { 0 };
        let mut want = vec![(CODES[0].to_string(), by_hand, 2_500.0)];
        if second > 0 {
            want.push((CODES[1].to_string(), second, 0.0));
        }
        for index in [&memory, &file] {
            assert_eq!(index.breakdown(&set, &Level::England, "ENG", month, 5).unwrap(), want, "month {m}");
        }
        let icb: i64 = (0..2_500).filter(|p| p % 3 == 1).map(|p| 1 + i64::from(m) + (p % 7) as i64).sum();
        assert_eq!(file.breakdown(&set, &Level::Icb, "I1", month, 1).unwrap()[0].1, icb);
    }
    let (jan, may) = (first, first.plus(4));
    assert_eq!(
        file.presentation_activity((may, may), (jan, jan)).unwrap(),
        memory.presentation_activity((may, may), (jan, jan)).unwrap()
    );
}
