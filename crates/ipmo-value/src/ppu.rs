//! Price-per-unit (PPU) savings: within a set of presentations a prescriber could swap at the
//! same dose, a practice paying more per unit than the cheapest tenth of practices could have
//! saved the difference. The method is OpenPrescribing's (`savings.py`): each practice's
//! quantity and net ingredient cost (NIC, less the pharmacy discount the NHS deducts) over the
//! set's codes; the target is the 10th percentile of standard practices' PPU; a practice's saving
//! is `max(0, NIC − quantity × target)`; an organisation's saving is the sum of its practices'
//! savings, never recomputed from its own totals.
//!
//! Two ways of discounting are computed side by side. [`Mode::DateCorrect`] applies the
//! deduction in force in the month (a 7.2% national average before April 2024, the category
//! scale after it; concessions discounted like anything else before April 2023 and not after).
//! [`Mode::Reference`] is OpenPrescribing's: the April 2024 scale for every month and no
//! deduction on a conceded pack, so its totals can be reconciled to openprescribing.net.

use crate::discount;
use ipmo_domain::YearMonth;
use ipmo_domain::practice::LevelMembers;
use ipmo_stats::percentile::percentile_cont_sorted;

/// How the pharmacy discount is applied to NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The deduction in force in each month.
    DateCorrect,
    /// OpenPrescribing's: the April 2024 scale for every month, concessions undiscounted.
    Reference,
}

impl Mode {
    /// Both modes, in the order of [`PerMode`]'s values.
    pub const ALL: [Mode; 2] = [Mode::DateCorrect, Mode::Reference];

    /// Position in [`PerMode`].
    pub const fn index(self) -> usize {
        match self {
            Mode::DateCorrect => 0,
            Mode::Reference => 1,
        }
    }

    /// The name URLs and the CLI use: `date-correct` or `reference`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::DateCorrect => "date-correct",
            Mode::Reference => "reference",
        }
    }

    /// The mode named by [`Mode::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// One amount under each [`Mode`], indexed by [`Mode::index`].
pub type PerMode = [f64; 2];

/// The share of NIC the NHS pays for a code in a month: `category` is the Drug Tariff Part VIIIA
/// category letter of its packs that month (None for a brand or anything not in the Tariff),
/// `conceded` whether any of its packs has a price concession that month.
pub fn discount_factor(mode: Mode, month: YearMonth, category: Option<char>, conceded: bool) -> f64 {
    match mode {
        Mode::Reference if conceded => 1.0,
        Mode::Reference => discount::category_scale(category),
        Mode::DateCorrect if conceded => discount::concession_factor(month),
        Mode::DateCorrect => discount::tariff_factor(month, category),
    }
}

/// The smallest saving an organisation must have on a set for the set to count in its headline
/// total and its list of opportunities, in pence, by level.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// GP practice: OpenPrescribing's £10.
    pub practice: f64,
    /// PCN (about 6 practices): £20.
    pub pcn: f64,
    /// Sub-ICB location: OpenPrescribing's £200.
    pub sicbl: f64,
    /// ICB (about 150 practices): £500.
    pub icb: f64,
    /// NHS England region (about 900 practices): £5,000.
    pub region: f64,
    /// England: OpenPrescribing's £50,000.
    pub england: f64,
    /// A custom group: as a sub-ICB location.
    pub group: f64,
}

impl Default for Thresholds {
    /// OpenPrescribing's three thresholds, and for the levels it does not show, the sub-ICB
    /// threshold scaled by practice count (about £3–8 per practice, as OpenPrescribing's own
    /// are), rounded to a figure a reader remembers.
    fn default() -> Self {
        Self {
            practice: 1_000.0,
            pcn: 2_000.0,
            sicbl: 20_000.0,
            icb: 50_000.0,
            region: 500_000.0,
            england: 5_000_000.0,
            group: 20_000.0,
        }
    }
}

impl Thresholds {
    /// The threshold for a stored level name (`practice`, …, `group:<set>`).
    pub fn for_level(&self, org_type: &str) -> f64 {
        match org_type {
            "practice" => self.practice,
            "pcn" => self.pcn,
            "sicbl" => self.sicbl,
            "icb" => self.icb,
            "region" => self.region,
            "england" => self.england,
            _ => self.group,
        }
    }
}

/// One practice's prescribing of one set in a month.
#[derive(Clone, Debug, PartialEq)]
pub struct PracticeAmounts {
    /// Position of the practice in the month's practice list.
    pub practice: usize,
    /// Units prescribed.
    pub quantity: f64,
    /// NIC in pence after the discount, per mode.
    pub nic: PerMode,
}

/// One practice's result for one set in a month.
#[derive(Clone, Debug, PartialEq)]
pub struct PracticeSaving {
    /// The practice's amounts.
    pub amounts: PracticeAmounts,
    /// `max(0, NIC − quantity × target)` in pence, per mode (0 without a target).
    pub saving: PerMode,
}

/// One set in one month: the target and every prescribing practice's saving.
#[derive(Clone, Debug, PartialEq)]
pub struct SetMonth {
    /// The 10th percentile of standard practices' PPU (`numpy.percentile`'s and SQL
    /// `PERCENTILE_CONT`'s interpolation) in pence per unit, per mode; None when no
    /// standard practice prescribed a unit.
    pub target: [Option<f64>; 2],
    /// Standard practices whose PPU the target was taken over.
    pub standard_practices: usize,
    /// Every practice that prescribed the set, in the order given.
    pub practices: Vec<PracticeSaving>,
}

/// The percentile of standard practices' PPU the target is.
pub const TARGET_PERCENTILE: f64 = 0.10;

/// The target and savings of one set in one month. `standard(p)` says whether practice `p` is a
/// standard GP practice, whose PPU the target is taken over. Like `numpy.nanpercentile`, a
/// practice with no quantity and no cost is left out; one with cost but no quantity has an
/// infinite PPU and sorts last.
pub fn set_month(practices: Vec<PracticeAmounts>, standard: impl Fn(usize) -> bool) -> SetMonth {
    let mut target = [None; 2];
    let mut standard_practices = 0;
    for mode in Mode::ALL {
        let mut ppus: Vec<f64> = practices
            .iter()
            .filter(|p| standard(p.practice))
            .map(|p| p.nic[mode.index()] / p.quantity)
            .filter(|ppu| !ppu.is_nan())
            .collect();
        ppus.sort_by(f64::total_cmp);
        standard_practices = ppus.len();
        // Infinite PPUs sort last; a target that lands on or beside one is no target.
        target[mode.index()] = percentile_cont_sorted(&ppus, TARGET_PERCENTILE).filter(|t| t.is_finite());
    }
    let practices = practices
        .into_iter()
        .map(|amounts| {
            let saving = Mode::ALL.map(|m| {
                let i = m.index();
                target[i].map_or(0.0, |t| (amounts.nic[i] - amounts.quantity * t).max(0.0))
            });
            PracticeSaving { amounts, saving }
        })
        .collect();
    SetMonth { target, standard_practices, practices }
}

/// One organisation's totals for one set in a month.
#[derive(Clone, Debug, PartialEq)]
pub struct OrgSaving {
    /// Position of the level in the `levels` given.
    pub level: usize,
    /// Position of the organisation in its level's codes.
    pub org: usize,
    /// Units prescribed by its practices.
    pub quantity: f64,
    /// Discounted NIC in pence, per mode.
    pub nic: PerMode,
    /// Sum of its practices' savings in pence, per mode.
    pub saving: PerMode,
}

/// Sums a set's practice savings into every organisation of every level (practices included,
/// as a level of their own), leaving out organisations that did not prescribe the set.
pub fn org_savings(set: &SetMonth, levels: &[LevelMembers]) -> Vec<OrgSaving> {
    let mut out = Vec::new();
    for (li, level) in levels.iter().enumerate() {
        let mut sums: Vec<Option<OrgSaving>> = vec![None; level.codes.len()];
        for p in &set.practices {
            for &org in level.of_practice.get(p.amounts.practice).map_or(&[][..], Vec::as_slice) {
                let s = sums[org].get_or_insert(OrgSaving {
                    level: li,
                    org,
                    quantity: 0.0,
                    nic: [0.0; 2],
                    saving: [0.0; 2],
                });
                s.quantity += p.amounts.quantity;
                for m in 0..2 {
                    s.nic[m] += p.amounts.nic[m];
                    s.saving[m] += p.saving[m];
                }
            }
        }
        out.extend(sums.into_iter().flatten());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipmo_domain::practice::{GroupSet, PracticeMonth, level_members};

    fn month(y: u16, m: u8) -> YearMonth {
        YearMonth::new(y, m).unwrap()
    }

    #[test]
    fn the_discount_follows_the_scale_in_force_unless_openprescribings_is_asked_for() {
        let before_2023 = month(2023, 3);
        let in_2023 = month(2023, 6);
        let after = month(2024, 4);
        use Mode::{DateCorrect as D, Reference as R};
        // Before April 2024 every price lost the 7.2% average, conceded ones too until April 2023.
        assert_eq!(discount_factor(D, before_2023, Some('M'), false), 0.928);
        assert_eq!(discount_factor(D, before_2023, None, true), 0.928);
        assert_eq!(discount_factor(D, in_2023, Some('M'), true), 1.0);
        assert_eq!(discount_factor(D, in_2023, Some('A'), false), 0.928);
        // From April 2024, categories A and M lose 20%, everything else 5%.
        assert_eq!(discount_factor(D, after, Some('A'), false), 0.80);
        assert_eq!(discount_factor(D, after, Some('M'), false), 0.80);
        assert_eq!(discount_factor(D, after, Some('C'), false), 0.95);
        assert_eq!(discount_factor(D, after, None, false), 0.95);
        // OpenPrescribing applies the 2024 scale to every month and never discounts a concession.
        assert_eq!(discount_factor(R, before_2023, Some('M'), false), 0.80);
        assert_eq!(discount_factor(R, before_2023, None, false), 0.95);
        assert_eq!(discount_factor(R, before_2023, Some('M'), true), 1.0);
    }

    #[test]
    fn the_target_interpolates_the_tenth_percentile_of_standard_practices() {
        // Eleven standard practices at 10p, 11p, …, 20p per unit: the 10th percentile is 11p.
        let mut practices: Vec<PracticeAmounts> = (0..11)
            .map(|i| PracticeAmounts { practice: i, quantity: 100.0, nic: [(10 + i) as f64 * 100.0; 2] })
            .collect();
        // A non-standard practice at 1p and one with nothing at all do not move it.
        practices.push(PracticeAmounts { practice: 11, quantity: 100.0, nic: [100.0; 2] });
        practices.push(PracticeAmounts { practice: 12, quantity: 0.0, nic: [0.0; 2] });
        let r = set_month(practices, |p| p != 11);
        assert_eq!(r.target, [Some(11.0), Some(11.0)]);
        assert_eq!(r.standard_practices, 11, "the non-standard practice and the empty one (0/0) are left out");
        // Practice 10 pays 20p: 100 × (20 − 11) = 900p. Practice 0 pays below the target: nothing.
        assert_eq!(r.practices[10].saving, [900.0, 900.0]);
        assert_eq!(r.practices[0].saving, [0.0, 0.0]);
        assert_eq!(r.practices[11].saving, [0.0, 0.0], "below the target saves nothing");
    }

    #[test]
    fn twenty_practices_put_the_target_between_the_second_and_third() {
        let practices: Vec<PracticeAmounts> =
            (0..20).map(|i| PracticeAmounts { practice: i, quantity: 10.0, nic: [(i + 1) as f64 * 10.0; 2] }).collect();
        // PPUs 1, 2, …, 20: position 0.1 × 19 = 1.9 → 2 + 0.9 × (3 − 2) = 2.9.
        let r = set_month(practices, |_| true);
        assert!((r.target[0].unwrap() - 2.9).abs() < 1e-12);
        let last = &r.practices[19];
        assert!((last.saving[0] - (200.0 - 10.0 * 2.9)).abs() < 1e-9);
    }

    #[test]
    fn cost_without_quantity_sorts_last_and_no_standard_practice_means_no_target() {
        let mut practices: Vec<PracticeAmounts> =
            (0..3).map(|i| PracticeAmounts { practice: i, quantity: 10.0, nic: [10.0 * (i + 1) as f64; 2] }).collect();
        practices.push(PracticeAmounts { practice: 3, quantity: 0.0, nic: [50.0; 2] });
        let r = set_month(practices.clone(), |_| true);
        // PPUs 1, 2, 3, ∞: position 0.3 → 1 + 0.3 × 1 = 1.3.
        assert!((r.target[0].unwrap() - 1.3).abs() < 1e-12);
        assert_eq!(r.practices[3].saving, [50.0, 50.0], "cost without quantity is all saving");
        let none = set_month(practices, |_| false);
        assert_eq!(none.target, [None, None]);
        assert!(none.practices.iter().all(|p| p.saving == [0.0, 0.0]));
    }

    #[test]
    fn organisations_sum_their_practices_savings_not_their_own_totals() {
        let practice = |code: &str, pcn: &str| PracticeMonth {
            code: code.into(),
            pcn: Some(pcn.into()),
            sicbl: "S1".into(),
            icb: "I1".into(),
            region: "R1".into(),
            list_size: None,
            star_pu: None,
            age_bands: None,
        };
        let list = vec![practice("A", "P1"), practice("B", "P1"), practice("C", "P2")];
        let levels = level_members(&list, &[] as &[GroupSet]);
        // A pays 1p, B 3p, C 2p a unit; target over three = 1 + 0.2 × 1 = 1.2p.
        let amounts = |p: usize, q: f64, nic: f64| PracticeAmounts { practice: p, quantity: q, nic: [nic; 2] };
        let set =
            set_month(vec![amounts(0, 100.0, 100.0), amounts(1, 100.0, 300.0), amounts(2, 50.0, 100.0)], |_| true);
        let orgs = org_savings(&set, &levels);
        let find = |level: &str, code: &str| {
            let li = levels.iter().position(|l| l.org_type == level).unwrap();
            let oi = levels[li].codes.iter().position(|c| c == code).unwrap();
            orgs.iter().find(|o| o.level == li && o.org == oi).unwrap().clone()
        };
        // B: 300 − 100 × 1.2 = 180; C: 100 − 50 × 1.2 = 40; A saves nothing.
        let p1 = find("pcn", "P1");
        assert!((p1.saving[0] - 180.0).abs() < 1e-9);
        assert_eq!(p1.quantity, 200.0);
        // P1's own PPU (2p) applied to its totals would claim 400 − 240 = 160: not what is summed.
        let england = find("england", "ENG");
        assert!((england.saving[0] - 220.0).abs() < 1e-9);
        assert_eq!(england.nic, [500.0, 500.0]);
        assert_eq!(orgs.iter().filter(|o| levels[o.level].org_type == "practice").count(), 3);
    }
}
