//! The NHS 5×5 risk matrix: score = likelihood × consequence, banded 1–3 low, 4–6 moderate,
//! 8–12 high, 15–25 extreme (NPSA, "A risk matrix for risk managers", 2008).

use serde_json::{Map, Value};

/// A band of the 5×5 matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Band {
    /// 1–3.
    Low,
    /// 4–6.
    Moderate,
    /// 8–12.
    High,
    /// 15–25.
    Extreme,
}

impl Band {
    /// The band of a score from 1 to 25.
    pub fn of(score: u8) -> Band {
        match score {
            0..=3 => Band::Low,
            4..=6 => Band::Moderate,
            7..=12 => Band::High,
            _ => Band::Extreme,
        }
    }

    /// The band's name for people.
    pub fn label(self) -> &'static str {
        match self {
            Band::Low => "Low",
            Band::Moderate => "Moderate",
            Band::High => "High",
            Band::Extreme => "Extreme",
        }
    }
}

/// How many risks sit in each cell of the 5×5 matrix by their current rating:
/// `[likelihood − 1][consequence − 1]`; risks without a current rating are not counted.
pub fn heat_map<'a>(risks: impl IntoIterator<Item = &'a Map<String, Value>>) -> [[usize; 5]; 5] {
    let mut grid = [[0usize; 5]; 5];
    for rt in risks.into_iter().filter_map(|data| Rating::of_record(data, "current")) {
        grid[usize::from(rt.likelihood) - 1][usize::from(rt.consequence) - 1] += 1;
    }
    grid
}

/// Likelihood and consequence, each 1–5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rating {
    /// 1 rare … 5 almost certain.
    pub likelihood: u8,
    /// 1 negligible … 5 catastrophic.
    pub consequence: u8,
}

impl Rating {
    /// Likelihood × consequence.
    pub fn score(self) -> u8 {
        self.likelihood * self.consequence
    }

    /// The score's band.
    pub fn band(self) -> Band {
        Band::of(self.score())
    }

    /// The rating stored in a risk record under `{stage}_likelihood` and `{stage}_consequence`
    /// (stage: inherent, current or target); None when either is missing or out of range.
    pub fn of_record(data: &Map<String, Value>, stage: &str) -> Option<Rating> {
        let get = |k: &str| {
            data.get(&format!("{stage}_{k}")).and_then(Value::as_u64).filter(|v| (1..=5).contains(v)).map(|v| v as u8)
        };
        Some(Rating { likelihood: get("likelihood")?, consequence: get("consequence")? })
    }
}

/// Names of the likelihood scale, 1 to 5.
pub const LIKELIHOOD: [&str; 5] = ["Rare", "Unlikely", "Possible", "Likely", "Almost certain"];
/// Names of the consequence scale, 1 to 5.
pub const CONSEQUENCE: [&str; 5] = ["Negligible", "Minor", "Moderate", "Major", "Catastrophic"];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bands_follow_the_npsa_matrix() {
        let band = |l, c| Rating { likelihood: l, consequence: c }.band();
        assert_eq!(band(1, 3), Band::Low);
        assert_eq!(band(2, 2), Band::Moderate);
        assert_eq!(band(3, 2), Band::Moderate);
        assert_eq!(band(2, 4), Band::High);
        assert_eq!(band(3, 4), Band::High);
        assert_eq!(band(3, 5), Band::Extreme);
        assert_eq!(band(5, 5), Band::Extreme);
    }

    proptest! {
        /// Every product of two 1–5 scores lands in a band whose range holds it (no product is 7,
        /// 13 or 14, which is why the published bands skip them).
        #[test]
        fn every_cell_is_banded(l in 1u8..=5, c in 1u8..=5) {
            let r = Rating { likelihood: l, consequence: c };
            let s = r.score();
            prop_assert!(!matches!(s, 7 | 13 | 14));
            let expected = if s <= 3 { Band::Low } else if s <= 6 { Band::Moderate } else if s <= 12 { Band::High } else { Band::Extreme };
            prop_assert_eq!(r.band(), expected);
        }
    }
}
