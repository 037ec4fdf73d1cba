//! The practice-month vocabulary every engine shares: a practice in a month with the
//! organisations it sits in and its registered patients, the amounts of one aggregated
//! prescribing row, custom groups of organisations, and the organisation levels. The measure
//! engine and the prescribing index both sum these, so they live here rather than in either.

/// One aggregated prescribing row's amounts, as stored in the warehouse.
#[derive(Clone, Copy, Debug, Default)]
pub struct Amounts {
    /// Items.
    pub items: i64,
    /// Total quantity.
    pub quantity: f64,
    /// Actual cost in hundred-thousandths of a pound.
    pub actual_cost_e5: i64,
    /// Net ingredient cost in pence.
    pub nic_pence: i64,
    /// ADQ usage.
    pub adq: f64,
}

/// A standard GP practice in one month, with where it sits and its list size.
#[derive(Clone, Debug, PartialEq)]
pub struct PracticeMonth {
    /// ODS code.
    pub code: String,
    /// PCN, when it belongs to one.
    pub pcn: Option<String>,
    /// Sub-ICB location.
    pub sicbl: String,
    /// ICB.
    pub icb: String,
    /// NHS England region.
    pub region: String,
    /// Registered patients, when published for the month.
    pub list_size: Option<f64>,
    /// Oral-antibacterial STAR-PU, when computable.
    pub star_pu: Option<f64>,
    /// Registered patients by sex and age band (male bands then female, in the order of the
    /// published quinary file's STAR-PU bands: 0–4, 5–14, …, 75+), when published for the month.
    pub age_bands: Option<[f64; 18]>,
}

/// A user-defined set of groups (localities, a peer set of ICBs…). A practice is in a group when
/// its own code or any of its organisations' codes is a member.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct GroupSet {
    /// Identifier, used as `group:<id>` for the organisation type.
    pub id: String,
    /// Name for display.
    pub name: String,
    /// The groups.
    pub groups: Vec<Group>,
}

/// One custom group.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Group {
    /// Code, unique within its set.
    pub code: String,
    /// Name for display.
    pub name: String,
    /// Practice, PCN, sub-ICB location, ICB or region codes.
    pub members: Vec<String>,
}

/// An organisation level of the NHS in England: where a practice's prescribing is summed to.
/// Custom groups (`group:<set>`) are levels too, but are named by their set, not by this type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrgLevel {
    /// A GP practice.
    Practice,
    /// A primary care network.
    Pcn,
    /// A sub-ICB location (formerly a CCG).
    Sicbl,
    /// An integrated care board.
    Icb,
    /// An NHS England region.
    Region,
    /// England as one.
    England,
}

impl OrgLevel {
    /// Every level, smallest first (the display order).
    pub const ALL: [OrgLevel; 6] = [Self::Practice, Self::Pcn, Self::Sicbl, Self::Icb, Self::Region, Self::England];

    /// The level as stored tables, URLs and the CLI name it: `practice`, `pcn`, `sicbl`, `icb`,
    /// `region`, `england`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Practice => "practice",
            Self::Pcn => "pcn",
            Self::Sicbl => "sicbl",
            Self::Icb => "icb",
            Self::Region => "region",
            Self::England => "england",
        }
    }

    /// The level named by [`OrgLevel::as_str`]; None for anything else (custom groups included).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == text)
    }

    /// The level for people: "GP practice", "Integrated care board", …
    pub const fn name(self) -> &'static str {
        match self {
            Self::Practice => "GP practice",
            Self::Pcn => "Primary care network",
            Self::Sicbl => "Sub-ICB location",
            Self::Icb => "Integrated care board",
            Self::Region => "NHS England region",
            Self::England => "England",
        }
    }

    /// The plural of [`OrgLevel::name`], for lists.
    pub const fn plural(self) -> &'static str {
        match self {
            Self::Practice => "GP practices",
            Self::Pcn => "Primary care networks",
            Self::Sicbl => "Sub-ICB locations",
            Self::Icb => "Integrated care boards",
            Self::Region => "NHS England regions",
            Self::England => "England",
        }
    }
}

impl std::fmt::Display for OrgLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored names of the organisation levels, in display order ([`OrgLevel::ALL`]).
pub const LEVELS: [&str; 6] = [
    OrgLevel::Practice.as_str(),
    OrgLevel::Pcn.as_str(),
    OrgLevel::Sicbl.as_str(),
    OrgLevel::Icb.as_str(),
    OrgLevel::Region.as_str(),
    OrgLevel::England.as_str(),
];

/// Code of the single England organisation.
pub const ENGLAND: &str = "ENG";

/// The organisations of one level (or one custom group set) in a month, and which of them each
/// practice counts towards, so that every engine sums practices into organisations alike.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelMembers {
    /// The level's stored name ([`OrgLevel::as_str`], or `group:<set>`).
    pub org_type: String,
    /// The level's organisations, in order of first appearance (a group set's in its order).
    pub codes: Vec<String>,
    /// For each practice (in the order given), positions in `codes` it counts towards: one at
    /// an NHS level (none for a practice outside any PCN), any number in a custom group set.
    pub of_practice: Vec<Vec<usize>>,
}

/// Every NHS level, smallest first, then each custom group set, for a month's practices. A
/// practice is in a group when its own code or any of its organisations' codes is a member.
pub fn level_members(practices: &[PracticeMonth], groups: &[GroupSet]) -> Vec<LevelMembers> {
    let key_level = |level: OrgLevel, key: &dyn Fn(&PracticeMonth) -> Option<&str>| {
        let mut codes: Vec<String> = Vec::new();
        let mut position: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let of_practice = practices
            .iter()
            .map(|p| match key(p) {
                Some(k) => {
                    let i = *position.entry(k).or_insert_with(|| {
                        codes.push(k.to_string());
                        codes.len() - 1
                    });
                    vec![i]
                }
                None => vec![],
            })
            .collect();
        LevelMembers { org_type: level.as_str().to_string(), codes, of_practice }
    };
    let mut out = vec![
        key_level(OrgLevel::Practice, &|p| Some(p.code.as_str())),
        key_level(OrgLevel::Pcn, &|p| p.pcn.as_deref()),
        key_level(OrgLevel::Sicbl, &|p| Some(p.sicbl.as_str())),
        key_level(OrgLevel::Icb, &|p| Some(p.icb.as_str())),
        key_level(OrgLevel::Region, &|p| Some(p.region.as_str())),
        key_level(OrgLevel::England, &|_| Some(ENGLAND)),
    ];
    for set in groups {
        let of_practice = practices
            .iter()
            .map(|p| {
                let orgs = [Some(p.code.as_str()), p.pcn.as_deref(), Some(&p.sicbl), Some(&p.icb), Some(&p.region)];
                set.groups
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| g.members.iter().any(|m| orgs.contains(&Some(m.as_str()))))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        out.push(LevelMembers {
            org_type: format!("group:{}", set.id),
            codes: set.groups.iter().map(|g| g.code.clone()).collect(),
            of_practice,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_back_from_their_names_and_nothing_else_does() {
        for l in OrgLevel::ALL {
            assert_eq!(OrgLevel::parse(l.as_str()), Some(l));
            assert_eq!(l.to_string(), l.as_str());
        }
        assert_eq!(LEVELS.map(|n| OrgLevel::parse(n).map(OrgLevel::as_str)), LEVELS.map(Some));
        assert_eq!(OrgLevel::parse("group:localities"), None);
        assert_eq!(OrgLevel::parse("ICB"), None, "names are lower case, as stored");
    }
}
