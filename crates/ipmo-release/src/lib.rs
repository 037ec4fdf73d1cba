//! A data release: everything the dashboard shows, loaded from the warehouse once and held as
//! plain Rust, so a page is built from memory in microseconds and the web crate never needs a
//! query engine. The warehouse builds a [`Release`] (through [`ReleaseBuilder`]); the web crate
//! reads it. Its [`Release::id`] changes whenever the warehouse does, so it is the basis of HTTP
//! ETags.

pub mod cross_sector;
pub mod hospitals;
pub mod ppu;
pub mod price_impacts;

use ipmo_domain::YearMonth;
use ipmo_index::PrescribingIndex;
use ipmo_measures::analysis::{self, Lens, ValuePoint};
use ipmo_measures::{Library, Measure};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Organisation levels, broadest last, as stored.
pub const LEVELS: [&str; 6] = ipmo_domain::practice::LEVELS;
pub use ipmo_domain::practice::OrgLevel;

/// What people call a level.
pub fn level_name(org_type: &str) -> &str {
    if org_type.starts_with("group:") {
        return "Custom group";
    }
    match OrgLevel::parse(org_type) {
        Some(l) => l.name(),
        None => org_type,
    }
}

/// The plural of [`level_name`], for lists.
pub fn level_plural(org_type: &str) -> &str {
    if org_type.starts_with("group:") {
        return "Custom groups";
    }
    match OrgLevel::parse(org_type) {
        Some(l) => l.plural(),
        None => org_type,
    }
}

/// [`level_plural`] inside a sentence: lower case, but "GP", "ICB", "NHS" and "England" keep
/// their capitals.
pub fn level_plural_lower(org_type: &str) -> String {
    in_sentence(level_plural(org_type))
}

/// [`level_name`] inside a sentence (see [`level_plural_lower`]).
pub fn level_name_lower(org_type: &str) -> String {
    in_sentence(level_name(org_type))
}

fn in_sentence(name: &str) -> String {
    name.to_lowercase()
        .replace("gp ", "GP ")
        .replace("-icb", "-ICB")
        .replace("nhs ", "NHS ")
        .replace("england", "England")
}

/// One organisation as it stands today.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Org {
    /// ODS code (`ENG` for England).
    pub code: String,
    /// Name as published.
    pub name: String,
    /// `practice`, `pcn`, `sicbl`, `icb`, `region` or `england`.
    pub org_type: String,
    /// The organisation it belongs to today (a practice's PCN, or its sub-ICB location when it
    /// has none; a PCN's sub-ICB location; …; a region's is England).
    pub parent: Option<String>,
}

/// What the dashboard says about a practice beyond its place in the tree.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PracticeFacts {
    /// Postcode as published in the organisation files (the only address they carry).
    pub postcode: Option<String>,
    /// Registered patients in the latest month with a list size.
    pub list_size: Option<(YearMonth, f64)>,
    /// IMD score of the practice population (higher is more deprived).
    pub imd_score: Option<f64>,
    /// National decile of that score among practices with one: 1 = the most deprived tenth.
    pub imd_decile: Option<u8>,
}

/// One measure's values at one level: a series per organisation and the national deciles.
#[derive(Clone, Debug, Default)]
pub struct LevelValues {
    /// Organisation codes, sorted.
    pub orgs: Vec<String>,
    /// Series, parallel to `orgs`, each in month order.
    pub series: Vec<Vec<ValuePoint>>,
    /// 10th, 20th, … 90th percentile of the level's values, per month.
    pub deciles: BTreeMap<YearMonth, [f64; 9]>,
}

impl LevelValues {
    /// An organisation's series.
    pub fn series_of(&self, org: &str) -> Option<&[ValuePoint]> {
        self.orgs.binary_search_by(|o| o.as_str().cmp(org)).ok().map(|i| self.series[i].as_slice())
    }

    /// Every organisation's point for `month`, in code order.
    pub fn at(&self, month: YearMonth) -> impl Iterator<Item = (&str, &ValuePoint)> {
        self.orgs.iter().zip(&self.series).filter_map(move |(o, s)| point_at(s, month).map(|p| (o.as_str(), p)))
    }
}

/// The point of `month` in a month-ordered series. Most series have no gaps, so the month's
/// distance from the first is tried before a binary search: a national practice list is read
/// on every measure page.
fn point_at(series: &[ValuePoint], month: YearMonth) -> Option<&ValuePoint> {
    let first = series.first()?.month;
    let guess = usize::try_from(first.months_to(month)).ok()?;
    match series.get(guess) {
        Some(p) if p.month == month => Some(p),
        _ => series.binary_search_by(|p| p.month.cmp(&month)).ok().map(|i| &series[i]),
    }
}

/// Everything the dashboard shows.
pub struct Release {
    /// Changes whenever the warehouse's content does (a hash of its manifest).
    pub id: String,
    /// When prescribing was last loaded (RFC 3339), if ever.
    pub loaded_at: Option<String>,
    /// When measures were last computed (RFC 3339), if ever.
    pub computed_at: Option<String>,
    /// Months with measure values, oldest first.
    pub months: Vec<YearMonth>,
    /// The measure library the values were computed with.
    pub library: Library,
    /// Prescribing index for ad-hoc analyses, when built.
    pub index: Option<PrescribingIndex>,
    /// Price-per-unit savings, when computed (`ipmo value compute`).
    pub ppu: Option<ppu::Ppu>,
    /// Price-concession costs of recent months, when computed (`ipmo value compute`).
    pub concessions: Option<price_impacts::PriceImpacts>,
    /// What recent Drug Tariff changes cost, when computed (`ipmo value compute`).
    pub price_changes: Option<price_impacts::PriceImpacts>,
    /// NHS trusts and the hospital medicines data held for them (`ipmo ingest trusts`, `scmd`).
    pub hospitals: hospitals::Hospitals,
    /// Cross-sector measures for trusts, ICBs and England (`ipmo measures cross-sector`).
    pub cross_sector: cross_sector::CrossSectorValues,
    orgs: Vec<Org>,
    org_pos: FxHashMap<String, usize>,
    children: Vec<Vec<usize>>,
    /// measure id → level → values.
    values: FxHashMap<String, BTreeMap<String, LevelValues>>,
    /// BNF code → name, every level from chapter to presentation.
    bnf: BTreeMap<String, String>,
    /// Practice → national IMD quintile (1 most deprived).
    imd: FxHashMap<String, u8>,
    /// Measure id → the presentations its numerator counts.
    numerator_codes: FxHashMap<String, Vec<String>>,
    /// Measure id → every presentation either side counts, with national items in the latest
    /// month, most prescribed first.
    counted: FxHashMap<String, Vec<CountedPresentation>>,
    /// Custom group → its members (positions in `orgs`).
    members: FxHashMap<usize, Vec<usize>>,
    /// Measure id → month → the deprivation lens over its practices, worked out once at load
    /// (a national practice list per request would be the measure page's largest cost).
    lenses: FxHashMap<String, BTreeMap<YearMonth, Lens>>,
    /// Practice code → postcode, list size, deprivation.
    practice_facts: FxHashMap<String, PracticeFacts>,
}

/// Code lengths of the BNF levels, chapter to presentation.
pub const BNF_CODE_LENGTHS: [usize; 7] = [2, 4, 6, 7, 9, 11, 15];

/// What a BNF level is called, by code length.
pub fn bnf_level_name(code_len: usize) -> &'static str {
    match code_len {
        2 => "Chapter",
        4 => "Section",
        6 => "Paragraph",
        7 => "Subparagraph",
        9 => "Chemical substance",
        11 => "Product",
        _ => "Presentation",
    }
}

impl Release {
    /// The newest month with values.
    pub fn latest_month(&self) -> Option<YearMonth> {
        self.months.last().copied()
    }

    /// Every organisation, by level then code.
    pub fn orgs(&self) -> &[Org] {
        &self.orgs
    }

    /// An organisation by code (case-insensitive).
    pub fn org(&self, code: &str) -> Option<&Org> {
        self.org_pos.get(code).or_else(|| self.org_pos.get(&code.to_ascii_uppercase())).map(|&i| &self.orgs[i])
    }

    /// An organisation's children today (practices of a PCN, PCNs of a sub-ICB location, …), or
    /// a custom group's members.
    pub fn children(&self, code: &str) -> Vec<&Org> {
        let Some(&i) = self.org_pos.get(code) else { return Vec::new() };
        match self.members.get(&i) {
            Some(m) => m.iter().map(|&c| &self.orgs[c]).collect(),
            None => self.children[i].iter().map(|&c| &self.orgs[c]).collect(),
        }
    }

    /// Every GP practice within an organisation (a PCN's, a sub-ICB location's, an ICB's, a
    /// region's or England's practices today; a custom group's member practices, or the practices
    /// of its member organisations), in name order. A practice is its own only practice.
    pub fn practices_in(&self, code: &str) -> Vec<&Org> {
        let Some(&start) = self.org_pos.get(code).or_else(|| self.org_pos.get(&code.to_ascii_uppercase())) else {
            return Vec::new();
        };
        let mut seen = vec![false; self.orgs.len()];
        let mut stack = vec![start];
        let mut out = Vec::new();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            if self.orgs[i].org_type == "practice" {
                out.push(&self.orgs[i]);
                continue;
            }
            match self.members.get(&i) {
                Some(m) => stack.extend(m.iter().copied()),
                None => stack.extend(self.children[i].iter().copied()),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.code.cmp(&b.code)));
        out
    }

    /// The organisations of `level` within `parent`: its practices (see [`Release::practices_in`]),
    /// or the organisations of the level below it, its members (for a custom group), or itself.
    pub fn orgs_within(&self, parent: &str, level: &str) -> Vec<&Org> {
        if level == "practice" {
            return self.practices_in(parent);
        }
        let Some(p) = self.org(parent) else { return Vec::new() };
        let members = self.children(&p.code);
        self.orgs
            .iter()
            .filter(|o| o.org_type == level)
            .filter(|o| {
                o.code == p.code
                    || members.iter().any(|c| c.code == o.code)
                    || self.ancestors(&o.code).iter().any(|a| a.code == p.code)
            })
            .collect()
    }

    /// A practice's postcode, list size and deprivation decile, when loaded.
    pub fn practice_facts(&self, code: &str) -> Option<&PracticeFacts> {
        self.practice_facts.get(code)
    }

    /// The chain of parents, nearest first.
    pub fn ancestors(&self, code: &str) -> Vec<&Org> {
        let mut out = Vec::new();
        let mut at = self.org(code).and_then(|o| o.parent.clone());
        while let Some(p) = at {
            let Some(org) = self.org(&p) else { break };
            if out.len() > 8 || out.iter().any(|o: &&Org| o.code == org.code) {
                break;
            }
            out.push(org);
            at = org.parent.clone();
        }
        out
    }

    /// Organisations of the same level with the same parent (a PCN's neighbours in its sub-ICB
    /// location; for an ICB, the ICBs of its region).
    pub fn peers(&self, code: &str) -> Vec<&Org> {
        let Some(org) = self.org(code) else { return Vec::new() };
        match &org.parent {
            Some(p) => {
                self.children(p).into_iter().filter(|o| o.org_type == org.org_type && o.code != org.code).collect()
            }
            None => Vec::new(),
        }
    }

    /// Organisations whose code or name contains every word of `query`, best first (exact code,
    /// then broader levels), at most `limit`.
    pub fn search_orgs(&self, query: &str, limit: usize) -> Vec<&Org> {
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        if words.is_empty() {
            return Vec::new();
        }
        let rank = |o: &Org| LEVELS.iter().rev().position(|l| *l == o.org_type).unwrap_or(LEVELS.len());
        let mut hits: Vec<&Org> = self
            .orgs
            .iter()
            .filter(|o| {
                let hay = format!("{} {}", o.code.to_lowercase(), o.name.to_lowercase());
                words.iter().all(|w| hay.contains(w.as_str()))
            })
            .collect();
        hits.sort_by_key(|o| (!o.code.eq_ignore_ascii_case(query.trim()), rank(o), o.name.clone()));
        hits.truncate(limit);
        hits
    }

    /// Measures whose id, title or tags contain every word of `query`.
    pub fn search_measures(&self, query: &str) -> Vec<&Measure> {
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        if words.is_empty() {
            return Vec::new();
        }
        self.library
            .computed()
            .filter(|m| {
                let hay = format!("{} {} {}", m.id, m.title.to_lowercase(), m.tags.join(" "));
                words.iter().all(|w| hay.contains(w.as_str()))
            })
            .collect()
    }

    /// One measure's values at one level.
    pub fn level_values(&self, measure: &str, org_type: &str) -> Option<&LevelValues> {
        self.values.get(measure).and_then(|l| l.get(org_type))
    }

    /// One organisation's series of one measure.
    pub fn series(&self, measure: &str, org: &Org) -> Option<&[ValuePoint]> {
        self.level_values(measure, &org.org_type).and_then(|l| l.series_of(&org.code))
    }

    /// Each practice's national IMD quintile (1 = most deprived fifth), for the deprivation lens.
    pub fn imd_quintiles(&self) -> &FxHashMap<String, u8> {
        &self.imd
    }

    /// The deprivation lens of `measure` in `month`: practices grouped by IMD quintile. None
    /// when no IMD scores are loaded or no practice has a value that month.
    pub fn lens(&self, measure: &str, month: YearMonth) -> Option<&Lens> {
        self.lenses.get(measure)?.get(&month)
    }

    /// The presentations a measure's numerator counts (as resolved when it was computed).
    pub fn numerator_codes(&self, measure: &str) -> &[String] {
        self.numerator_codes.get(measure).map_or(&[], Vec::as_slice)
    }

    /// The presentations a measure counts on both sides, most prescribed nationally first.
    pub fn counted_presentations(&self, measure: &str) -> &[CountedPresentation] {
        self.counted.get(measure).map_or(&[], Vec::as_slice)
    }

    /// The BNF name of a code at any level.
    pub fn bnf_name(&self, code: &str) -> Option<&str> {
        self.bnf.get(code).map(String::as_str)
    }

    /// The BNF chapters, or the entries one level below `code` (a chapter's sections, …, a
    /// product's presentations), in code order.
    pub fn bnf_children(&self, code: &str) -> Vec<(&str, &str)> {
        let next = match code {
            "" => 2,
            _ => match BNF_CODE_LENGTHS.iter().find(|&&l| l > code.len()) {
                Some(l) => *l,
                None => return Vec::new(),
            },
        };
        self.bnf
            .range(code.to_string()..)
            .take_while(|(c, _)| c.starts_with(code))
            .filter(|(c, _)| c.len() == next)
            .map(|(c, n)| (c.as_str(), n.as_str()))
            .collect()
    }

    /// BNF entries whose name contains every word of `query` (or whose code starts with it),
    /// broadest first, at most `limit`.
    pub fn bnf_search(&self, query: &str, limit: usize) -> Vec<(&str, &str)> {
        let q = query.trim();
        let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
        if words.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<(&str, &str)> = self
            .bnf
            .iter()
            .filter(|(c, n)| {
                c.starts_with(&q.to_ascii_uppercase()) || {
                    let name = n.to_lowercase();
                    words.iter().all(|w| name.contains(w.as_str()))
                }
            })
            .map(|(c, n)| (c.as_str(), n.as_str()))
            .collect();
        hits.sort_by_key(|(c, _)| (c.len(), *c));
        hits.truncate(limit);
        hits
    }
}

/// Most BNF entries one drug name may stand for in an analysis.
pub const MAX_NAME_MATCHES: usize = 20;

impl Release {
    /// The BNF entries a drug name stands for: an entry named exactly so (the broadest such
    /// level), else the chemical substances whose names contain every word, else the broadest
    /// level with a match. An error says why none or too many were found.
    pub fn bnf_for_name(&self, name: &str) -> Result<Vec<(&str, &str)>, String> {
        let q = name.trim();
        let lower = q.to_lowercase();
        let mut exact: Vec<(&str, &str)> =
            self.bnf.iter().filter(|(_, n)| n.to_lowercase() == lower).map(|(c, n)| (c.as_str(), n.as_str())).collect();
        exact.sort_by_key(|(c, _)| (c.len(), *c));
        if let Some(len) = exact.first().map(|e| e.0.len()) {
            exact.retain(|e| e.0.len() == len);
            return Ok(exact);
        }
        let hits = self.bnf_search(q, usize::MAX);
        let Some(broadest) = hits.first().map(|h| h.0.len()) else {
            return Err(format!(
                "no BNF entry is called \"{q}\" or has it in its name; try another spelling, or a BNF code"
            ));
        };
        let level = if hits.iter().any(|h| h.0.len() == 9) { 9 } else { broadest };
        let chosen: Vec<(&str, &str)> = hits.into_iter().filter(|h| h.0.len() == level).collect();
        if chosen.len() > MAX_NAME_MATCHES {
            return Err(format!(
                "\"{q}\" is in the names of {} BNF {}; add a word (e.g. \"{}\"), or give BNF codes",
                chosen.len(),
                if level == 9 { "chemical substances" } else { "entries" },
                chosen[0].1
            ));
        }
        Ok(chosen)
    }
}

/// Collects a release.
pub struct ReleaseBuilder {
    id: String,
    library: Library,
    orgs: Vec<Org>,
    values: FxHashMap<String, FxHashMap<String, LevelSeries>>,
    deciles: FxHashMap<(String, String), BTreeMap<YearMonth, [f64; 9]>>,
    loaded_at: Option<String>,
    computed_at: Option<String>,
    index: Option<PrescribingIndex>,
    ppu: Option<ppu::Ppu>,
    concessions: Option<price_impacts::PriceImpacts>,
    price_changes: Option<price_impacts::PriceImpacts>,
    hospitals: hospitals::Hospitals,
    cross_sector: cross_sector::CrossSectorValues,
    bnf: BTreeMap<String, String>,
    imd: FxHashMap<String, u8>,
    numerator_codes: FxHashMap<String, Vec<String>>,
    counted: FxHashMap<String, Vec<CountedPresentation>>,
    groups: Vec<(Org, Vec<String>)>,
    practice_facts: FxHashMap<String, PracticeFacts>,
}

/// The value under `outer` then `inner` in a two-level map, inserted empty if missing. The keys
/// are looked up before anything is inserted, so that the tens of millions of rows of a national
/// release (measure values, PPU rows) do not each build two new strings.
pub(crate) fn nested_entry<'a, V: Default>(
    map: &'a mut FxHashMap<String, FxHashMap<String, V>>,
    outer: &str,
    inner: &str,
) -> &'a mut V {
    if !map.contains_key(outer) {
        map.insert(outer.to_string(), FxHashMap::default());
    }
    let map = map.get_mut(outer).expect("inserted above");
    if !map.contains_key(inner) {
        map.insert(inner.to_string(), V::default());
    }
    map.get_mut(inner).expect("inserted above")
}

/// Series of one measure at one level while a release is built: organisation → points.
///
/// A national release pushes tens of millions of points, month file after month file, each
/// file listing the level's organisations in the same order. So the organisation after the one
/// last pushed is tried before the hash map, and most points do not hash their code. (Giving
/// each series room for every month at once saved under a second more of a 60-month load and
/// raised its peak memory by 600 MB: every series was full size while the value programme's
/// tables were still being read.)
#[derive(Default)]
pub struct LevelSeries {
    /// Organisation code → its place in `series`.
    slots: FxHashMap<String, usize>,
    /// Organisations and their points, in the order first seen.
    series: Vec<(String, Vec<ValuePoint>)>,
    /// The slot after the one last pushed to.
    next: usize,
}

impl LevelSeries {
    /// Adds an organisation's point (in any order; they are sorted at the end).
    pub fn push(&mut self, org_code: &str, point: ValuePoint) {
        let slot = match self.series.get(self.next) {
            Some((code, _)) if code == org_code => self.next,
            _ => match self.slots.get(org_code) {
                Some(&slot) => slot,
                None => {
                    self.slots.insert(org_code.to_string(), self.series.len());
                    self.series.push((org_code.to_string(), Vec::new()));
                    self.series.len() - 1
                }
            },
        };
        self.series[slot].1.push(point);
        self.next = slot + 1;
    }
}

/// A presentation a measure counts, as shown on its page.
#[derive(Clone, Debug, PartialEq)]
pub struct CountedPresentation {
    /// `numerator` or `denominator`.
    pub side: String,
    /// Current BNF code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Items prescribed in England in the latest month loaded.
    pub latest_items: i64,
}

impl ReleaseBuilder {
    /// A release of the warehouse state `id`, computed with `library`.
    pub fn new(id: String, library: Library) -> Self {
        Self {
            id,
            library,
            orgs: Vec::new(),
            values: FxHashMap::default(),
            deciles: FxHashMap::default(),
            loaded_at: None,
            computed_at: None,
            index: None,
            ppu: None,
            concessions: None,
            price_changes: None,
            hospitals: Default::default(),
            cross_sector: Default::default(),
            bnf: BTreeMap::new(),
            imd: FxHashMap::default(),
            numerator_codes: FxHashMap::default(),
            counted: FxHashMap::default(),
            groups: Vec::new(),
            practice_facts: FxHashMap::default(),
        }
    }

    /// A practice's postcode.
    pub fn practice_postcode(&mut self, practice: &str, postcode: &str) {
        let postcode = postcode.trim();
        if !postcode.is_empty() {
            self.practice_facts.entry(practice.to_string()).or_default().postcode = Some(postcode.to_string());
        }
    }

    /// A practice's registered patients in `month`; the latest month given is kept.
    pub fn list_size(&mut self, practice: &str, month: YearMonth, patients: f64) {
        let facts = self.practice_facts.entry(practice.to_string()).or_default();
        if facts.list_size.is_none_or(|(m, _)| m <= month) {
            facts.list_size = Some((month, patients));
        }
    }

    /// A practice's IMD score (higher is more deprived); deciles are worked out at the end.
    pub fn imd_score(&mut self, practice: &str, score: f64) {
        if score.is_finite() {
            self.practice_facts.entry(practice.to_string()).or_default().imd_score = Some(score);
        }
    }

    /// Adds a custom group (`org_type` `group:<set>`) with its member codes. A group whose code
    /// is already an organisation's is left out rather than hide that organisation.
    pub fn group(&mut self, set: &str, code: &str, name: &str, members: Vec<String>) {
        let org =
            Org { code: code.to_string(), name: name.to_string(), org_type: format!("group:{set}"), parent: None };
        self.groups.push((org, members));
    }

    /// Records that `measure`'s numerator counts the presentation `code`.
    pub fn numerator_code(&mut self, measure: &str, code: &str) {
        self.numerator_codes.entry(measure.to_string()).or_default().push(code.to_string());
    }

    /// Records a presentation a measure side counts, with its national items in the latest month.
    pub fn counted_presentation(&mut self, measure: &str, p: CountedPresentation) {
        self.counted.entry(measure.to_string()).or_default().push(p);
    }

    /// A practice's national IMD quintile (1–5; others are ignored).
    pub fn imd(&mut self, practice: &str, quintile: u8) {
        if (1..=5).contains(&quintile) {
            self.imd.insert(practice.to_string(), quintile);
        }
    }

    /// Names a BNF code (chapter to presentation); the first name given for a code stays.
    pub fn bnf(&mut self, code: &str, name: &str) {
        if !code.is_empty() && !self.bnf.contains_key(code) {
            self.bnf.insert(code.to_string(), name.to_string());
        }
    }

    /// When data were loaded and measures computed.
    pub fn times(&mut self, loaded_at: Option<String>, computed_at: Option<String>) {
        self.loaded_at = loaded_at;
        self.computed_at = computed_at;
    }

    /// The prescribing index for analyses.
    pub fn index(&mut self, index: PrescribingIndex) {
        self.index = Some(index);
    }

    /// Adds an organisation (a later one with the same code replaces it).
    pub fn org(&mut self, org: Org) {
        self.orgs.push(org);
    }

    /// Adds one stored value.
    pub fn value(&mut self, measure: &str, org_type: &str, org_code: &str, point: ValuePoint) {
        self.level_series(measure, org_type).push(org_code, point);
    }

    /// One measure's series at one level, to add many values to with one lookup.
    pub fn level_series(&mut self, measure: &str, org_type: &str) -> &mut LevelSeries {
        nested_entry(&mut self.values, measure, org_type)
    }

    /// Adds one stored decile (`percentile` 10, 20, … 90).
    pub fn decile(&mut self, measure: &str, org_type: &str, month: YearMonth, percentile: u8, value: f64) {
        if !(10..=90).contains(&percentile) || !percentile.is_multiple_of(10) {
            return;
        }
        let row = self.deciles.entry((measure.to_string(), org_type.to_string())).or_default();
        row.entry(month).or_insert([f64::NAN; 9])[usize::from(percentile / 10 - 1)] = value;
    }

    /// Price-per-unit savings to serve.
    pub fn ppu(&mut self, ppu: ppu::Ppu) {
        self.ppu = Some(ppu.finish());
    }

    /// Price-concession costs to serve.
    pub fn concessions(&mut self, concessions: price_impacts::PriceImpacts) {
        self.concessions = Some(concessions.finish());
    }

    /// Drug Tariff change costs to serve.
    pub fn price_changes(&mut self, changes: price_impacts::PriceImpacts) {
        self.price_changes = Some(changes.finish());
    }

    /// NHS trusts and their SCMD coverage to serve.
    pub fn hospitals(&mut self, hospitals: hospitals::Hospitals) {
        self.hospitals = hospitals;
    }

    /// Cross-sector measure values to serve.
    pub fn cross_sector(&mut self, values: cross_sector::CrossSectorValues) {
        self.cross_sector = values;
    }

    /// Sorts, indexes and links everything.
    pub fn finish(self) -> Release {
        let mut by_code: BTreeMap<String, Org> = BTreeMap::new();
        for o in self.orgs {
            by_code.insert(o.code.clone(), o);
        }
        let mut group_members: Vec<(String, Vec<String>)> = Vec::new();
        for (g, members) in self.groups {
            if !by_code.contains_key(&g.code) {
                group_members.push((g.code.clone(), members));
                by_code.insert(g.code.clone(), g);
            }
        }
        if !by_code.contains_key(ipmo_measures::compute::ENGLAND) {
            by_code.insert(
                ipmo_measures::compute::ENGLAND.to_string(),
                Org {
                    code: ipmo_measures::compute::ENGLAND.to_string(),
                    name: "England".into(),
                    org_type: "england".into(),
                    parent: None,
                },
            );
        }
        let level_rank = |t: &str| LEVELS.iter().rev().position(|l| *l == t).unwrap_or(LEVELS.len());
        let mut orgs: Vec<Org> = by_code.into_values().collect();
        orgs.sort_by(|a, b| level_rank(&a.org_type).cmp(&level_rank(&b.org_type)).then(a.code.cmp(&b.code)));
        let org_pos: FxHashMap<String, usize> = orgs.iter().enumerate().map(|(i, o)| (o.code.clone(), i)).collect();
        let mut children = vec![Vec::new(); orgs.len()];
        for (i, o) in orgs.iter().enumerate() {
            if let Some(p) = o.parent.as_ref().and_then(|p| org_pos.get(p))
                && *p != i
            {
                children[*p].push(i);
            }
        }
        for c in &mut children {
            c.sort_by(|a, b| orgs[*a].name.cmp(&orgs[*b].name));
        }
        let members: FxHashMap<usize, Vec<usize>> = group_members
            .into_iter()
            .filter_map(|(g, m)| {
                let list: Vec<usize> = m.iter().filter_map(|c| org_pos.get(c).copied()).collect();
                org_pos.get(&g).map(|&i| (i, list))
            })
            .collect();
        let mut months = rustc_hash::FxHashSet::default();
        let mut values = FxHashMap::default();
        let mut deciles = self.deciles;
        for (measure, levels) in self.values {
            let mut out = BTreeMap::new();
            for (level, series) in levels {
                let mut lv = LevelValues {
                    deciles: deciles.remove(&(measure.clone(), level.clone())).unwrap_or_default(),
                    ..Default::default()
                };
                let mut series = series.series;
                series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                for (org, mut points) in series {
                    points.sort_by_key(|p| p.month);
                    points.dedup_by_key(|p| p.month);
                    points.shrink_to_fit();
                    months.extend(points.iter().map(|p| p.month));
                    lv.orgs.push(org);
                    lv.series.push(points);
                }
                out.insert(level, lv);
            }
            values.insert(measure, out);
        }
        let lenses = lenses(&values, &self.library, &self.imd);
        let mut practice_facts = self.practice_facts;
        imd_deciles(&mut practice_facts);
        Release {
            id: self.id,
            loaded_at: self.loaded_at,
            computed_at: self.computed_at,
            months: {
                let mut months: Vec<YearMonth> = months.into_iter().collect();
                months.sort_unstable();
                months
            },
            library: self.library,
            index: self.index,
            ppu: self.ppu,
            concessions: self.concessions,
            price_changes: self.price_changes,
            hospitals: self.hospitals,
            cross_sector: self.cross_sector,
            orgs,
            org_pos,
            children,
            values,
            bnf: self.bnf,
            imd: self.imd,
            numerator_codes: self.numerator_codes,
            counted: {
                let mut counted = self.counted;
                for list in counted.values_mut() {
                    list.sort_by(|a, b| b.latest_items.cmp(&a.latest_items).then_with(|| a.code.cmp(&b.code)));
                }
                counted
            },
            members,
            lenses,
            practice_facts,
        }
    }
}

/// Ranks practices by IMD score, most deprived first, into ten groups as equal as can be.
fn imd_deciles(facts: &mut FxHashMap<String, PracticeFacts>) {
    let mut scored: Vec<(&String, f64)> = facts.iter().filter_map(|(c, f)| f.imd_score.map(|s| (c, s))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let n = scored.len();
    let deciles: Vec<(String, u8)> =
        scored.iter().enumerate().map(|(i, (c, _))| ((*c).clone(), (i * 10 / n.max(1)) as u8 + 1)).collect();
    for (code, d) in deciles {
        if let Some(f) = facts.get_mut(&code) {
            f.imd_decile = Some(d);
        }
    }
}

/// Every measure's deprivation lens for every month with practice values.
fn lenses(
    values: &FxHashMap<String, BTreeMap<String, LevelValues>>,
    library: &Library,
    imd: &FxHashMap<String, u8>,
) -> FxHashMap<String, BTreeMap<YearMonth, Lens>> {
    if imd.is_empty() {
        return FxHashMap::default();
    }
    let mut out = FxHashMap::default();
    for m in &library.measures {
        let Some(practices) = values.get(&m.id).and_then(|l| l.get("practice")) else { continue };
        let quintile: Vec<Option<u8>> = practices.orgs.iter().map(|o| imd.get(o).copied()).collect();
        let mut by_month: BTreeMap<YearMonth, Vec<(Option<u8>, f64, f64)>> = BTreeMap::new();
        for (series, q) in practices.series.iter().zip(&quintile) {
            for p in series {
                if let (Some(n), Some(d)) = (p.numerator(), p.denominator()) {
                    by_month.entry(p.month).or_default().push((*q, n, d));
                }
            }
        }
        let lens_by_month = by_month
            .into_iter()
            .map(|(month, rows)| (month, analysis::lens_of_quintiles(&rows, m.multiplier())))
            .collect();
        out.insert(m.id.clone(), lens_by_month);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipmo_measures::analysis::ValueFields;

    fn org(code: &str, t: &str, parent: Option<&str>) -> Org {
        Org { code: code.into(), name: format!("{code} name"), org_type: t.into(), parent: parent.map(Into::into) }
    }

    fn point(m: &str, v: f64) -> ValuePoint {
        ValuePoint::from(ValueFields {
            month: m.parse().unwrap(),
            numerator: Some(v),
            denominator: Some(100.0),
            value: Some(v),
            percentile: Some(50.0),
            saving_50: None,
            saving_10: None,
        })
    }

    fn release() -> Release {
        let lib = Library { dir: "x".into(), measures: Vec::new(), tables: BTreeMap::new() };
        let mut b = ReleaseBuilder::new("r1".into(), lib);
        for o in [
            org("Y1", "region", Some("ENG")),
            org("I1", "icb", Some("Y1")),
            org("I2", "icb", Some("Y1")),
            org("S1", "sicbl", Some("I1")),
            org("P1", "pcn", Some("S1")),
            org("A1", "practice", Some("P1")),
        ] {
            b.org(o);
        }
        b.group("peers", "G1", "My peers", vec!["I1".into(), "I2".into(), "NOPE".into()]);
        b.group("peers", "I1", "Clash", vec![]);
        b.value("m", "icb", "I1", point("2024-02", 2.0));
        b.value("m", "icb", "I1", point("2024-01", 1.0));
        b.value("m", "icb", "I2", point("2024-01", 5.0));
        b.decile("m", "icb", "2024-01".parse().unwrap(), 50, 3.0);
        for (c, n) in [
            ("05", "Infections"),
            ("0501", "Antibacterial drugs"),
            ("050101", "Penicillins"),
            ("0501013K0", "Amoxicillin"),
            ("0501013K0AAABAB", "Amoxicillin 500mg capsules"),
            ("0502", "Antifungal drugs"),
        ] {
            b.bnf(c, n);
        }
        b.finish()
    }

    #[test]
    fn links_orgs_and_sorts_series() {
        let r = release();
        assert_eq!(r.org("eng").map(|o| o.name.as_str()), Some("England"));
        assert_eq!(
            r.ancestors("A1").iter().map(|o| o.code.as_str()).collect::<Vec<_>>(),
            ["P1", "S1", "I1", "Y1", "ENG"]
        );
        assert_eq!(r.children("Y1").len(), 2);
        assert_eq!(r.peers("I1").iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["I2"]);
        let g = r.org("G1").unwrap();
        assert_eq!((g.org_type.as_str(), level_name(&g.org_type)), ("group:peers", "Custom group"));
        assert_eq!(r.children("G1").iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["I1", "I2"]);
        assert_eq!(r.org("I1").unwrap().org_type, "icb", "a group does not hide an organisation");
        let s = r.series("m", r.org("I1").unwrap()).unwrap();
        assert_eq!(s.iter().map(|p| p.value().unwrap()).collect::<Vec<_>>(), [1.0, 2.0]);
        assert_eq!(r.months.len(), 2);
        let lv = r.level_values("m", "icb").unwrap();
        assert_eq!(lv.at("2024-01".parse().unwrap()).count(), 2);
        assert_eq!(lv.deciles.values().next().unwrap()[4], 3.0);
        assert!(lv.deciles.values().next().unwrap()[0].is_nan());
    }

    #[test]
    fn series_gather_points_pushed_in_any_organisation_order() {
        let lib = Library { dir: "x".into(), measures: Vec::new(), tables: BTreeMap::new() };
        let mut b = ReleaseBuilder::new("r".into(), lib);
        // Month files list organisations in order, but one may be missing, new or out of place.
        let pushes = [
            ("2024-01", ["A1", "A2", "A3"].as_slice()),
            ("2024-02", ["A1", "A3"].as_slice()),
            ("2024-03", ["A0", "A1", "A2", "A3"].as_slice()),
            ("2024-04", ["A3", "A2", "A1", "A0"].as_slice()),
        ];
        for (month, orgs) in pushes {
            let series = b.level_series("m", "practice");
            for (i, org) in orgs.iter().enumerate() {
                series.push(org, point(month, i as f64));
            }
        }
        let r = b.finish();
        let lv = r.level_values("m", "practice").unwrap();
        assert_eq!(lv.orgs, ["A0", "A1", "A2", "A3"]);
        let months = |org: &str| {
            lv.series_of(org).unwrap().iter().map(|p| (p.month.to_string(), p.value().unwrap())).collect::<Vec<_>>()
        };
        let pairs = |v: &[(&str, f64)]| v.iter().map(|(m, x)| (m.to_string(), *x)).collect::<Vec<_>>();
        assert_eq!(months("A0"), pairs(&[("2024-03", 0.0), ("2024-04", 3.0)]));
        assert_eq!(months("A2"), pairs(&[("2024-01", 1.0), ("2024-03", 2.0), ("2024-04", 1.0)]));
        assert_eq!(months("A3"), pairs(&[("2024-01", 2.0), ("2024-02", 1.0), ("2024-03", 3.0), ("2024-04", 0.0)]));
    }

    #[test]
    fn practices_within_any_organisation_and_their_facts() {
        let lib = Library { dir: "x".into(), measures: Vec::new(), tables: BTreeMap::new() };
        let mut b = ReleaseBuilder::new("r".into(), lib);
        for o in [
            org("Y1", "region", Some("ENG")),
            org("I1", "icb", Some("Y1")),
            org("S1", "sicbl", Some("I1")),
            org("P1", "pcn", Some("S1")),
            org("P2", "pcn", Some("S1")),
            org("A1", "practice", Some("P1")),
            org("A2", "practice", Some("P2")),
            org("A3", "practice", Some("S1")),
        ] {
            b.org(o);
        }
        b.group("peers", "G1", "Two PCNs", vec!["P1".into(), "P2".into(), "A1".into()]);
        b.practice_postcode("A1", " AB1 2CD ");
        b.list_size("A1", "2024-02".parse().unwrap(), 5000.0);
        b.list_size("A1", "2024-01".parse().unwrap(), 4000.0);
        for (i, code) in ["A1", "A2", "A3"].iter().enumerate() {
            b.imd_score(code, 10.0 * i as f64);
        }
        let r = b.finish();
        let codes = |c: &str| r.practices_in(c).iter().map(|o| o.code.clone()).collect::<Vec<_>>();
        assert_eq!(codes("I1"), ["A1", "A2", "A3"]);
        assert_eq!(codes("ENG"), ["A1", "A2", "A3"]);
        assert_eq!(codes("P2"), ["A2"]);
        assert_eq!(codes("G1"), ["A1", "A2"], "a member practice and its PCN's practices, once");
        assert_eq!(codes("A3"), ["A3"]);
        let within = |p: &str, l: &str| r.orgs_within(p, l).iter().map(|o| o.code.clone()).collect::<Vec<_>>();
        assert_eq!(within("I1", "pcn"), ["P1", "P2"]);
        assert_eq!(within("Y1", "icb"), ["I1"]);
        assert_eq!(within("G1", "pcn"), ["P1", "P2"], "a custom group's member organisations");
        assert_eq!(within("I1", "icb"), ["I1"], "itself at its own level");
        assert_eq!(within("I1", "practice"), ["A1", "A2", "A3"]);
        assert!(within("NOPE", "pcn").is_empty());
        assert!(codes("NOPE").is_empty());
        let a1 = r.practice_facts("A1").unwrap();
        assert_eq!(a1.postcode.as_deref(), Some("AB1 2CD"));
        assert_eq!(a1.list_size, Some(("2024-02".parse().unwrap(), 5000.0)), "the latest month");
        // Scores 0, 10, 20: A3 is the most deprived (decile 1), A1 the least.
        assert_eq!(r.practice_facts("A3").unwrap().imd_decile, Some(1));
        assert_eq!(a1.imd_decile, Some(7));
    }

    #[test]
    fn search_prefers_exact_codes_and_broad_levels() {
        let r = release();
        assert_eq!(r.search_orgs("i1", 10)[0].code, "I1");
        let names: Vec<&str> = r.search_orgs("name", 3).iter().map(|o| o.code.as_str()).collect();
        assert_eq!(names, ["Y1", "I1", "I2"]);
        assert!(r.search_orgs("   ", 10).is_empty());
    }

    #[test]
    fn bnf_browses_and_searches() {
        let r = release();
        assert_eq!(r.bnf_children(""), vec![("05", "Infections")]);
        assert_eq!(r.bnf_children("05"), vec![("0501", "Antibacterial drugs"), ("0502", "Antifungal drugs")]);
        assert_eq!(r.bnf_children("050101"), Vec::<(&str, &str)>::new(), "no subparagraph named");
        assert_eq!(r.bnf_children("0501013K0AAABAB"), Vec::<(&str, &str)>::new());
        assert_eq!(r.bnf_search("amoxicillin", 10).first(), Some(&("0501013K0", "Amoxicillin")));
        assert_eq!(r.bnf_search("0501", 10).len(), 4);
        assert_eq!(r.bnf_name("0502"), Some("Antifungal drugs"));
        assert_eq!(r.bnf_for_name("amoxicillin").unwrap(), vec![("0501013K0", "Amoxicillin")]);
        assert_eq!(r.bnf_for_name("Penicillins").unwrap(), vec![("050101", "Penicillins")]);
        assert_eq!(r.bnf_for_name("500mg").unwrap(), vec![("0501013K0AAABAB", "Amoxicillin 500mg capsules")]);
        assert!(r.bnf_for_name("zzz").unwrap_err().contains("no BNF entry"));
    }
}

#[cfg(test)]
mod lens_and_gaps {
    use super::*;
    use ipmo_measures::analysis::ValueFields;

    fn point(m: &str, n: f64, d: f64) -> ValuePoint {
        ValuePoint::from(ValueFields {
            month: m.parse().unwrap(),
            numerator: Some(n),
            denominator: Some(d),
            value: Some(n / d),
            percentile: None,
            saving_50: None,
            saving_10: None,
        })
    }

    #[test]
    fn points_are_found_across_gaps_and_lenses_match_the_direct_computation() {
        let lib = Library::built_in().expect("built-in library");
        let m = lib.measures.iter().find(|m| m.id == "broad_spectrum").expect("broad_spectrum").clone();
        let mut b = ReleaseBuilder::new("r".into(), lib);
        // A1 has every month; A2 misses February, so March is not at its index guess.
        for (month, n) in [("2024-01", 1.0), ("2024-02", 2.0), ("2024-03", 3.0)] {
            b.value(&m.id, "practice", "A1", point(month, n, 10.0));
        }
        for (month, n) in [("2024-01", 4.0), ("2024-03", 8.0)] {
            b.value(&m.id, "practice", "A2", point(month, n, 20.0));
        }
        b.value(&m.id, "practice", "A3", point("2024-03", 9.0, 30.0));
        b.imd("A1", 1);
        b.imd("A2", 5);
        let r = b.finish();
        let lv = r.level_values(&m.id, "practice").unwrap();
        let march: YearMonth = "2024-03".parse().unwrap();
        let at: Vec<(&str, f64)> = lv.at(march).map(|(o, p)| (o, p.numerator().unwrap())).collect();
        assert_eq!(at, [("A1", 3.0), ("A2", 8.0), ("A3", 9.0)]);
        assert_eq!(lv.at("2024-02".parse().unwrap()).count(), 1);
        assert_eq!(lv.at("2023-12".parse().unwrap()).count(), 0);

        let counts: Vec<analysis::OrgCounts> = lv
            .at(march)
            .map(|(o, p)| analysis::OrgCounts {
                org_code: o.into(),
                numerator: p.numerator().unwrap(),
                denominator: p.denominator().unwrap(),
            })
            .collect();
        let direct = analysis::lens(&counts, r.imd_quintiles(), m.multiplier());
        assert_eq!(r.lens(&m.id, march), Some(&direct));
        assert_eq!(direct.practices_without_imd, 1);
        let gap = direct.gap.unwrap();
        assert!((gap - m.multiplier() * (3.0 / 10.0 - 8.0 / 20.0)).abs() < 1e-9, "{gap}");
        assert!(r.lens(&m.id, "2023-12".parse().unwrap()).is_none());
    }
}
