//! Ad-hoc analyses over the index: BNF prefixes over BNF prefixes (a percentage) or over list
//! size (per 1,000 patients), per organisation per month.

use crate::rows::{CHUNK_ROWS, Chunk};
use crate::{IndexError, NONE, PrescribingIndex};
use ipmo_domain::YearMonth;
use ipmo_domain::practice::{ENGLAND, Group, OrgLevel};
use std::ops::Range;

/// Scans shorter than this many rows per core stay on one thread (spawning costs more).
const PARALLEL_ROWS: usize = 250_000;

/// Most prefixes one side of an analysis may list (a bound on the work a request can ask for).
pub(crate) const MAX_PREFIXES: usize = 500;

/// What is summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// Prescription items.
    Items,
    /// Quantity as published.
    Quantity,
    /// Actual cost, pounds.
    ActualCost,
    /// Net ingredient cost, pounds.
    Nic,
}

/// BNF code prefixes to count, less prefixes to leave out.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeSet {
    /// Prefixes counted (e.g. `0501013K0`, `0501`).
    pub include: Vec<String>,
    /// Prefixes left out even when an included prefix covers them.
    pub exclude: Vec<String>,
}

impl CodeSet {
    /// Parses comma-separated prefixes (`"0501013K0,0501021"`), upper-casing them; `what` names
    /// the option in errors.
    pub fn parse(include: &str, exclude: &str, what: &str) -> Result<Self, IndexError> {
        let split = |s: &str, option: &str| -> Result<Vec<String>, IndexError> {
            let mut out = Vec::new();
            for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if part.len() > 15 || !part.bytes().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(IndexError::Query(format!(
                        "{option}: \"{part}\" is not a BNF code prefix (letters and digits, at most 15, e.g. 0501013K0)"
                    )));
                }
                out.push(part.to_ascii_uppercase());
            }
            if out.len() > MAX_PREFIXES {
                return Err(IndexError::Query(format!("{option}: at most {MAX_PREFIXES} prefixes, got {}", out.len())));
            }
            Ok(out)
        };
        let set = Self { include: split(include, what)?, exclude: split(exclude, &format!("{what} exclusions"))? };
        if set.include.is_empty() {
            return Err(IndexError::Query(format!("{what}: give at least one BNF code prefix")));
        }
        Ok(set)
    }
}

impl Denominator {
    /// The code set of a code denominator.
    pub fn codes(&self) -> Option<&CodeSet> {
        match self {
            Denominator::Codes(c) => Some(c),
            Denominator::ListSize => None,
        }
    }
}

/// The denominator of an analysis.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Denominator {
    /// Other codes, same value kind: the value is a percentage.
    Codes(CodeSet),
    /// Registered patients: the value is per 1,000 patients.
    ListSize,
}

/// The organisations rows are given for.
#[derive(Clone, Debug, PartialEq)]
pub enum Level {
    /// Each practice.
    Practice,
    /// Primary care networks.
    Pcn,
    /// Sub-ICB locations.
    Sicbl,
    /// Integrated care boards.
    Icb,
    /// NHS England regions.
    Region,
    /// England as one.
    England,
    /// A custom group set (members may be practices or organisations of any level).
    Groups(Vec<Group>),
}

impl From<OrgLevel> for Level {
    fn from(level: OrgLevel) -> Self {
        match level {
            OrgLevel::Practice => Level::Practice,
            OrgLevel::Pcn => Level::Pcn,
            OrgLevel::Sicbl => Level::Sicbl,
            OrgLevel::Icb => Level::Icb,
            OrgLevel::Region => Level::Region,
            OrgLevel::England => Level::England,
        }
    }
}

impl Level {
    /// Which of a practice's four parent organisations ([`crate::Member::orgs`]) this level is,
    /// when it is one of them.
    fn parent_slot(&self) -> Option<usize> {
        match self {
            Level::Pcn => Some(0),
            Level::Sicbl => Some(1),
            Level::Icb => Some(2),
            Level::Region => Some(3),
            _ => None,
        }
    }
}

/// One ad-hoc analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// Numerator codes.
    pub numerator: CodeSet,
    /// Denominator.
    pub denominator: Denominator,
    /// What is summed on both sides (list size aside).
    pub value: ValueKind,
    /// Organisation level.
    pub level: Level,
    /// Only this organisation.
    pub org: Option<String>,
    /// First month (default: the first held).
    pub from: Option<YearMonth>,
    /// Last month (default: the last held).
    pub to: Option<YearMonth>,
}

/// One organisation-month of an analysis.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AnalysisRow {
    /// Month.
    pub month: YearMonth,
    /// Organisation code.
    pub org_code: String,
    /// Numerator (items, quantity, or pounds).
    pub numerator: f64,
    /// Denominator (same unit, or patients).
    pub denominator: f64,
    /// Percentage, or per 1,000 patients; None when the denominator is zero.
    pub value: Option<f64>,
}

/// One presentation's national activity, for horizon-scanning signals.
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    /// Current BNF code.
    pub code: String,
    /// First month in the index with a row for it.
    pub first_month: YearMonth,
    /// Items in the recent window.
    pub items: i64,
    /// Items in the earlier window.
    pub items_before: i64,
}

/// National totals of a code set.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Totals {
    /// Prescription items.
    pub items: i64,
    /// Actual cost, pounds.
    pub actual_cost: f64,
}

/// Sums over practice × month cells: exact integers for items and money, floats for quantity.
struct Cells {
    ints: Vec<i64>,
    floats: Vec<f64>,
}

impl Cells {
    fn new(n: usize, kind: ValueKind) -> Self {
        match kind {
            ValueKind::Quantity => Self { ints: Vec::new(), floats: vec![0.0; n] },
            _ => Self { ints: vec![0; n], floats: Vec::new() },
        }
    }
}

fn to_unit(kind: ValueKind, int: i64, float: f64) -> f64 {
    match kind {
        ValueKind::Items => int as f64,
        ValueKind::Quantity => float,
        ValueKind::ActualCost => int as f64 / 100_000.0,
        ValueKind::Nic => int as f64 / 100.0,
    }
}

impl PrescribingIndex {
    /// Sorted, disjoint runs of code indices covered by a code set.
    pub fn code_ranges(&self, set: &CodeSet) -> Vec<Range<usize>> {
        let mut include: Vec<Range<usize>> =
            set.include.iter().map(|p| self.prefix_range(p)).filter(|r| !r.is_empty()).collect();
        include.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::new();
        for r in include {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        for p in &set.exclude {
            let cut = self.prefix_range(p);
            if cut.is_empty() {
                continue;
            }
            merged = merged
                .into_iter()
                .flat_map(|r| {
                    [r.start..r.end.min(cut.start), r.start.max(cut.end)..r.end].into_iter().filter(|x| !x.is_empty())
                })
                .collect();
        }
        merged
    }

    /// The row runs to read for a code set: a stored node's totals wherever a whole node lies
    /// inside the set, the presentations' rows elsewhere.
    pub fn row_runs(&self, set: &CodeSet) -> Vec<Range<usize>> {
        let mut out: Vec<Range<usize>> = Vec::new();
        let mut push = |r: Range<usize>| match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ if r.is_empty() => {}
            _ => out.push(r),
        };
        for codes in self.code_ranges(set) {
            let mut i = codes.start;
            while i < codes.end {
                let node = self.nodes.iter().find_map(|level| {
                    let j = level.partition_point(|n| (n.first as usize) < i);
                    level
                        .get(j)
                        .filter(|n| n.first as usize == i && (n.end as usize) <= codes.end && n.end as usize > i)
                });
                match node {
                    Some(n) => {
                        push(n.row_start as usize..n.row_end as usize);
                        i = n.end as usize;
                    }
                    None => {
                        push(self.code_rows[i] as usize..self.code_rows[i + 1] as usize);
                        i += 1;
                    }
                }
            }
        }
        out
    }

    /// Sums a code set's rows into practice × month cells, splitting large scans across cores.
    fn sum(&self, set: &CodeSet, kind: ValueKind, months: Range<usize>, cells: &mut Cells) -> Result<(), IndexError> {
        self.sum_split(set, kind, months, cells, PARALLEL_ROWS)
    }

    fn sum_split(
        &self,
        set: &CodeSet,
        kind: ValueKind,
        months: Range<usize>,
        cells: &mut Cells,
        per_core: usize,
    ) -> Result<(), IndexError> {
        let rows = self.row_runs(set);
        let total: usize = rows.iter().map(|r| r.len()).sum();
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(total / per_core.max(1)).max(1);
        if workers == 1 {
            return self.sum_rows(&rows, kind, &months, cells);
        }
        // Cut the row runs into `workers` pieces of about equal length.
        let share = total.div_ceil(workers);
        let mut pieces: Vec<Vec<Range<usize>>> = vec![Vec::new()];
        let mut filled = 0;
        for mut r in rows {
            while !r.is_empty() {
                let take = (share - filled).min(r.len());
                pieces.last_mut().expect("a piece").push(r.start..r.start + take);
                r.start += take;
                filled += take;
                if filled == share {
                    pieces.push(Vec::new());
                    filled = 0;
                }
            }
        }
        let n = cells.ints.len().max(cells.floats.len());
        let parts: Vec<Result<Cells, IndexError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = pieces
                .iter()
                .filter(|p| !p.is_empty())
                .map(|piece| {
                    let months = months.clone();
                    scope.spawn(move || {
                        let mut part = Cells::new(n, kind);
                        self.sum_rows(piece, kind, &months, &mut part).map(|()| part)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a summing thread does not panic")).collect()
        });
        for part in parts {
            let part = part?;
            for (c, v) in cells.ints.iter_mut().zip(part.ints) {
                *c += v;
            }
            for (c, v) in cells.floats.iter_mut().zip(part.floats) {
                *c += v;
            }
        }
        Ok(())
    }

    /// Reads row runs a chunk at a time (at most [`CHUNK_ROWS`] rows held) and hands each chunk
    /// to `f`.
    fn scan(&self, runs: &[Range<usize>], kind: ValueKind, mut f: impl FnMut(&Chunk)) -> Result<(), IndexError> {
        let mut chunk = Chunk::default();
        for range in runs {
            let mut start = range.start;
            while start < range.end {
                let end = range.end.min(start + CHUNK_ROWS);
                self.rows.read(start..end, kind, &mut chunk)?;
                f(&chunk);
                start = end;
            }
        }
        Ok(())
    }

    fn sum_rows(
        &self,
        rows: &[Range<usize>],
        kind: ValueKind,
        months: &Range<usize>,
        cells: &mut Cells,
    ) -> Result<(), IndexError> {
        let n_practices = self.practices.len();
        let n_months = self.months.len();
        let (m0, m1) = (months.start, months.end);
        let mut damaged = false;
        self.scan(rows, kind, |chunk| {
            // The cell of row i, or None when its month is outside the analysis (or the row is
            // damaged: it points outside the months or practices).
            let mut cell = |i: usize| {
                let (m, p) = (usize::from(chunk.month[i]), usize::from(chunk.practice[i]));
                if m >= n_months || p >= n_practices {
                    damaged = true;
                    return None;
                }
                (m >= m0 && m < m1).then(|| (m - m0) * n_practices + p)
            };
            // One tight loop per value kind.
            if kind == ValueKind::Quantity {
                for (i, &v) in chunk.floats.iter().enumerate() {
                    if let Some(c) = cell(i) {
                        cells.floats[c] += v;
                    }
                }
            } else {
                for (i, &v) in chunk.ints.iter().enumerate() {
                    if let Some(c) = cell(i) {
                        cells.ints[c] += v;
                    }
                }
            }
        })?;
        if damaged {
            return Err(IndexError::Format {
                path: "the prescribing index".into(),
                detail: "a row points outside the months or practices".into(),
            });
        }
        Ok(())
    }

    /// National totals (every standard practice) of a code set over `from..=to`: items and actual
    /// cost in pounds. The BNF browser shows these beside each entry.
    pub fn totals(&self, set: &CodeSet, from: Option<YearMonth>, to: Option<YearMonth>) -> Result<Totals, IndexError> {
        let months = self.month_range(from, to)?;
        let runs = self.row_runs(set);
        let mut sums = [0i64; 2];
        for (slot, kind) in [ValueKind::Items, ValueKind::ActualCost].into_iter().enumerate() {
            self.scan(&runs, kind, |chunk| {
                for (&m, &v) in chunk.month.iter().zip(&chunk.ints) {
                    if months.contains(&usize::from(m)) {
                        sums[slot] += v;
                    }
                }
            })?;
        }
        Ok(Totals { items: sums[0], actual_cost: sums[1] as f64 / 100_000.0 })
    }

    /// National totals (every standard practice) of a code set in each month held: (month,
    /// items, quantity as published). A medicine's page sets these beside its hospital use.
    pub fn monthly_totals(&self, set: &CodeSet) -> Result<Vec<(YearMonth, i64, f64)>, IndexError> {
        let runs = self.row_runs(set);
        let (mut items, mut quantity) = (vec![0i64; self.months.len()], vec![0f64; self.months.len()]);
        self.scan(&runs, ValueKind::Items, |chunk| {
            for (&m, &v) in chunk.month.iter().zip(&chunk.ints) {
                if let Some(slot) = items.get_mut(usize::from(m)) {
                    *slot += v;
                }
            }
        })?;
        self.scan(&runs, ValueKind::Quantity, |chunk| {
            for (&m, &v) in chunk.month.iter().zip(&chunk.floats) {
                if let Some(slot) = quantity.get_mut(usize::from(m)) {
                    *slot += v;
                }
            }
        })?;
        Ok(self.months.iter().zip(items).zip(quantity).map(|((m, i), q)| (*m, i, q)).collect())
    }

    /// The presentations of `set` ranked by items in one month, for the practices counted towards
    /// `org` at `level` (all standard practices for England): (code, items, actual cost in
    /// pounds), at most `top`. A code's rows are sorted by month, so each is found by binary
    /// search and only that month's rows are read.
    pub fn breakdown(
        &self,
        set: &CodeSet,
        level: &Level,
        org: &str,
        month: YearMonth,
        top: usize,
    ) -> Result<Vec<(String, i64, f64)>, IndexError> {
        let Ok(mi) = self.months.binary_search(&month) else { return Ok(Vec::new()) };
        let counted = self.counted(level, org, mi);
        let mut out = Vec::new();
        let mut chunk = Chunk::default();
        for codes in self.code_ranges(set) {
            for c in codes {
                let rows = self.code_month_rows(c, mi..mi + 1)?;
                if rows.is_empty() {
                    continue;
                }
                let mut sums = [0i64; 2];
                for (slot, kind) in [ValueKind::Items, ValueKind::ActualCost].into_iter().enumerate() {
                    self.rows.read(rows.clone(), kind, &mut chunk)?;
                    for (&p, &v) in chunk.practice.iter().zip(&chunk.ints) {
                        if counted.get(usize::from(p)).copied().unwrap_or(false) {
                            sums[slot] += v;
                        }
                    }
                }
                if sums != [0, 0] {
                    out.push((self.codes[c].clone(), sums[0], sums[1] as f64 / 100_000.0));
                }
            }
        }
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(top);
        Ok(out)
    }

    /// Whether each practice counts towards `org` at `level` in month `mi` (every practice in the
    /// map for England; custom groups count nothing here).
    fn counted(&self, level: &Level, org: &str, mi: usize) -> Vec<bool> {
        let parent = level.parent_slot();
        self.membership[mi]
            .iter()
            .enumerate()
            .map(|(p, m)| match (m, level, parent) {
                (None, ..) => false,
                (Some(_), Level::Practice, _) => self.practices[p].eq_ignore_ascii_case(org),
                (Some(m), _, Some(l)) => {
                    m.orgs[l] != NONE && self.orgs[l][m.orgs[l] as usize].eq_ignore_ascii_case(org)
                }
                (Some(_), Level::England, _) => true,
                _ => false,
            })
            .collect()
    }

    /// The practices counted towards `org` at `level` in `month`, as the organisation map had
    /// them then: what a savings scheme covering that organisation is measured over.
    pub fn practices_counted(&self, level: &Level, org: &str, month: YearMonth) -> Vec<&str> {
        let Ok(mi) = self.months.binary_search(&month) else { return Vec::new() };
        let counted = self.counted(level, org, mi);
        self.practices.iter().zip(counted).filter(|(_, c)| *c).map(|(p, _)| p.as_str()).collect()
    }

    /// The rows of code index `c` in the month indices `months` (a code's rows are sorted by
    /// month, so two binary searches find them).
    fn code_month_rows(&self, c: usize, months: Range<usize>) -> Result<Range<usize>, IndexError> {
        let run = self.code_rows[c] as usize..self.code_rows[c + 1] as usize;
        let bound = |month: usize| match u8::try_from(month) {
            Ok(m) => self.rows.first_at_or_after(run.clone(), m),
            // Months are stored as bytes, so every row is before a month past the 256th.
            Err(_) => Ok(run.end),
        };
        Ok(bound(months.start)?..bound(months.end)?)
    }

    /// Each presentation's national activity: the first month it was prescribed in, and its
    /// items in `from..=to` and in `before_from..=before_to` (two windows compared for growth).
    /// Only the rows of the two windows are read, besides one row per code for its first month.
    pub fn presentation_activity(
        &self,
        window: (YearMonth, YearMonth),
        before: (YearMonth, YearMonth),
    ) -> Result<Vec<Activity>, IndexError> {
        let now = self.month_range(Some(window.0), Some(window.1))?;
        let then = self.month_range(Some(before.0), Some(before.1))?;
        let mut chunk = Chunk::default();
        let mut out = Vec::with_capacity(self.codes.len());
        for (c, code) in self.codes.iter().enumerate() {
            let start = self.code_rows[c] as usize;
            if start == self.code_rows[c + 1] as usize {
                continue;
            }
            let mut items = [0i64; 2];
            for (slot, months) in [&now, &then].into_iter().enumerate() {
                let rows = self.code_month_rows(c, months.clone())?;
                if !rows.is_empty() {
                    self.rows.read(rows, ValueKind::Items, &mut chunk)?;
                    items[slot] = chunk.ints.iter().sum();
                }
            }
            let first =
                *self.months.get(usize::from(self.rows.month_at(start)?)).ok_or_else(|| IndexError::Format {
                    path: "the prescribing index".into(),
                    detail: "a row points outside the months".into(),
                })?;
            out.push(Activity { code: code.clone(), first_month: first, items: items[0], items_before: items[1] });
        }
        Ok(out)
    }

    /// The months of `from..=to` that the index holds, as a range of month indices.
    fn month_range(&self, from: Option<YearMonth>, to: Option<YearMonth>) -> Result<Range<usize>, IndexError> {
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(IndexError::Query(format!("--from {f} is after --to {t}")));
        }
        let start = from.map_or(0, |f| self.months.partition_point(|m| *m < f));
        let end = to.map_or(self.months.len(), |t| self.months.partition_point(|m| *m <= t));
        Ok(start..end.max(start))
    }

    /// The included prefixes of a code set that no presentation in the index starts with.
    pub fn unmatched(&self, set: &CodeSet) -> Vec<String> {
        set.include.iter().filter(|p| self.prefix_range(p).is_empty()).cloned().collect()
    }

    /// Refuses what an analysis cannot answer, naming the part: a prefix that matches nothing
    /// (a typo reads as a chart of zeros otherwise), a period with no month held, or months in
    /// which no practice is in the organisation map (nothing to group).
    fn check(&self, a: &Analysis, months: &Range<usize>) -> Result<(), IndexError> {
        if months.is_empty() {
            let (first, last) = match (self.months.first(), self.months.last()) {
                (Some(f), Some(l)) => (*f, *l),
                _ => {
                    return Err(IndexError::Unanswerable {
                        parameter: "from",
                        message: "the prescribing index holds no months; load prescribing with `ipmo ingest epd`"
                            .into(),
                    });
                }
            };
            let parameter = if a.from.is_some_and(|f| f > last) { "from" } else { "to" };
            return Err(IndexError::Unanswerable {
                parameter,
                message: format!(
                    "the period {} to {} holds no month of data; the data run from {first} to {last}",
                    a.from.map_or(first.to_string(), |m| m.to_string()),
                    a.to.map_or(last.to_string(), |m| m.to_string())
                ),
            });
        }
        if months.clone().all(|mi| self.membership[mi].iter().all(Option::is_none)) {
            return Err(IndexError::Unanswerable {
                parameter: "organisations",
                message: "no practice is in the organisation map for these months, so nothing can be grouped; load the practice map with `ipmo ingest orgs` (gp-reg-pat-prac-map or epraccur)".into(),
            });
        }
        let sides = [("numerator", Some(&a.numerator)), ("denominator", a.denominator.codes())];
        for (parameter, set) in sides {
            if let Some(p) = set.and_then(|s| self.unmatched(s).into_iter().next()) {
                return Err(IndexError::Unanswerable {
                    parameter,
                    message: format!(
                        "no presentation in the prescribing data has a BNF code starting \"{p}\"; check the code in the BNF browser (or by name)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Runs an analysis: one row per organisation with at least one counted practice, per month,
    /// ordered by organisation code and month.
    pub fn analyse(&self, a: &Analysis) -> Result<Vec<AnalysisRow>, IndexError> {
        let months = self.month_range(a.from, a.to)?;
        self.check(a, &months)?;
        let n_practices = self.practices.len();
        let n_cells = months.len() * n_practices;
        let mut num = Cells::new(n_cells, a.value);
        self.sum(&a.numerator, a.value, months.clone(), &mut num)?;
        let den = match &a.denominator {
            Denominator::Codes(set) => {
                let mut den = Cells::new(n_cells, a.value);
                self.sum(set, a.value, months.clone(), &mut den)?;
                Some(den)
            }
            Denominator::ListSize => None,
        };
        // Organisation codes and, per practice and month, the organisations it counts towards.
        let parent_level = a.level.parent_slot();
        let org_codes: Vec<String> = match (&a.level, parent_level) {
            (_, Some(level)) => self.orgs[level].clone(),
            (Level::Practice, _) => self.practices.clone(),
            (Level::Groups(groups), _) => groups.iter().map(|g| g.code.clone()).collect(),
            _ => vec![ENGLAND.to_string()],
        };
        let wanted: Option<usize> = match &a.org {
            Some(code) => Some(org_codes.iter().position(|c| c.eq_ignore_ascii_case(code)).ok_or_else(|| {
                IndexError::Query(format!("no organisation \"{code}\" at this level in the prescribing index"))
            })?),
            None => None,
        };
        // The groups a practice counts towards (a group lists practices or organisations).
        let in_group = |g: &Group, p: usize, orgs: &[u32; 4]| {
            let parent = |level: usize| (orgs[level] != NONE).then(|| self.orgs[level][orgs[level] as usize].as_str());
            g.members.iter().any(|m| m == &self.practices[p] || (0..4).any(|level| parent(level) == Some(m.as_str())))
        };
        // Organisations the current practice counts towards, reused across practices.
        let mut targets: Vec<usize> = Vec::new();
        let n_orgs = org_codes.len();
        // Each organisation's (numerator, denominator) per month offset, where a practice counted.
        let mut results: Vec<Option<(f64, f64)>> = vec![None; n_orgs * months.len()];
        for (offset, mi) in months.clone().enumerate() {
            let (mut num_i, mut num_f) = (vec![0i64; n_orgs], vec![0f64; n_orgs]);
            let (mut den_i, mut den_f) = (vec![0i64; n_orgs], vec![0f64; n_orgs]);
            let mut counted = vec![false; n_orgs];
            for (p, member) in self.membership[mi].iter().enumerate() {
                let Some(member) = member else { continue };
                if den.is_none() && member.list_size.is_none() {
                    continue;
                }
                targets.clear();
                match (&a.level, parent_level) {
                    (_, Some(level)) => {
                        if member.orgs[level] != NONE {
                            targets.push(member.orgs[level] as usize);
                        }
                    }
                    (Level::Practice, _) => targets.push(p),
                    (Level::Groups(groups), _) => {
                        targets.extend((0..groups.len()).filter(|&g| in_group(&groups[g], p, &member.orgs)));
                    }
                    _ => targets.push(0),
                }
                let cell = offset * n_practices + p;
                for &o in &targets {
                    if wanted.is_some_and(|w| w != o) {
                        continue;
                    }
                    counted[o] = true;
                    if let Some(&v) = num.ints.get(cell) {
                        num_i[o] += v;
                    }
                    if let Some(&v) = num.floats.get(cell) {
                        num_f[o] += v;
                    }
                    match &den {
                        Some(den) => {
                            if let Some(&v) = den.ints.get(cell) {
                                den_i[o] += v;
                            }
                            if let Some(&v) = den.floats.get(cell) {
                                den_f[o] += v;
                            }
                        }
                        None => den_f[o] += member.list_size.unwrap_or(0.0),
                    }
                }
            }
            for o in (0..n_orgs).filter(|&o| counted[o]) {
                let numerator = to_unit(a.value, num_i[o], num_f[o]);
                let denominator = match den {
                    Some(_) => to_unit(a.value, den_i[o], den_f[o]),
                    None => den_f[o],
                };
                results[o * months.len() + offset] = Some((numerator, denominator));
            }
        }
        let multiplier = if den.is_some() { 100.0 } else { 1000.0 };
        // Rows in (organisation code, month) order, written in that order rather than sorted:
        // a practice-level analysis of five years has 390,000 of them.
        let mut order: Vec<usize> = (0..n_orgs).collect();
        order.sort_by(|&x, &y| org_codes[x].cmp(&org_codes[y]));
        let mut out = Vec::with_capacity(results.iter().filter(|r| r.is_some()).count());
        for same_code in order.chunk_by(|&x, &y| org_codes[x] == org_codes[y]) {
            for (offset, mi) in months.clone().enumerate() {
                for &o in same_code {
                    let Some((numerator, denominator)) = results[o * months.len() + offset] else { continue };
                    out.push(AnalysisRow {
                        month: self.months[mi],
                        org_code: org_codes[o].clone(),
                        numerator,
                        denominator,
                        value: (denominator > 0.0).then(|| numerator * multiplier / denominator),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IndexBuilder;
    use ipmo_domain::practice::{Amounts, PracticeMonth};

    fn practice(code: &str, pcn: &str, icb: &str, list: Option<f64>) -> PracticeMonth {
        PracticeMonth {
            code: code.into(),
            pcn: Some(pcn.into()),
            sicbl: format!("S{icb}"),
            icb: icb.into(),
            region: "Y1".into(),
            list_size: list,
            star_pu: None,
            age_bands: None,
        }
    }

    fn items(n: i64) -> Amounts {
        Amounts { items: n, quantity: n as f64 * 2.5, actual_cost_e5: n * 123_456, nic_pence: n * 130, adq: 0.0 }
    }

    /// Two months, three practices (C has no list size in the first month), a few codes.
    fn index() -> PrescribingIndex {
        let mut b = IndexBuilder::new();
        let ps = [
            practice("A", "P1", "I1", Some(1000.0)),
            practice("B", "P1", "I1", Some(3000.0)),
            practice("C", "P2", "I2", None),
        ];
        b.add_month("2024-01".parse().unwrap(), &ps).unwrap();
        for (p, code, n) in [
            ("A", "0501013K0AAAAAA", 4),
            ("A", "0501021A0AAAAAA", 6),
            ("B", "0501013K0AAAAAA", 1),
            ("B", "0501050B0AAAAAA", 9),
            ("C", "0501013K0AAAAAA", 5),
            ("Z", "0501013K0AAAAAA", 50),
        ] {
            b.add(p, code, &items(n));
        }
        let mut ps2 = ps.clone();
        ps2[2].list_size = Some(2000.0);
        b.add_month("2024-02".parse().unwrap(), &ps2).unwrap();
        // Two rows for A under one current code are merged.
        for (p, code, n) in [("A", "0501013K0AAAAAA", 2), ("A", "0501013K0AAAAAA", 1), ("C", "0212000AAAAAAAA", 7)] {
            b.add(p, code, &items(n));
        }
        b.finish(vec!["test".into()])
    }

    fn analysis(num: &str, exclude: &str, den: Option<&str>, level: Level) -> Analysis {
        Analysis {
            numerator: CodeSet::parse(num, exclude, "--numerator").unwrap(),
            denominator: match den {
                Some(d) => Denominator::Codes(CodeSet::parse(d, "", "--denominator").unwrap()),
                None => Denominator::ListSize,
            },
            value: ValueKind::Items,
            level,
            org: None,
            from: None,
            to: None,
        }
    }

    fn triples(rows: &[AnalysisRow]) -> Vec<(String, String, f64, f64, Option<f64>)> {
        rows.iter().map(|r| (r.month.to_string(), r.org_code.clone(), r.numerator, r.denominator, r.value)).collect()
    }

    #[test]
    fn prefixes_exclusions_and_merged_ranges() {
        let ix = index();
        assert_eq!(ix.codes.len(), 4);
        assert_eq!(ix.rows(), 7, "Z is not a practice; A's two February rows merge");
        let set = CodeSet::parse("0501,050101", "0501050", "n").unwrap();
        let ranges = ix.code_ranges(&set);
        let codes: Vec<&str> = ranges.iter().flat_map(|r| ix.codes[r.clone()].iter().map(String::as_str)).collect();
        assert_eq!(codes, vec!["0501013K0AAAAAA", "0501021A0AAAAAA"]);
    }

    #[test]
    fn percentages_by_practice_and_icb() {
        let ix = index();
        let rows = ix.analyse(&analysis("0501013K0", "", Some("0501"), Level::Practice)).unwrap();
        let t = triples(&rows);
        assert_eq!(t[0], ("2024-01".into(), "A".into(), 4.0, 10.0, Some(40.0)));
        assert_eq!(t[1], ("2024-02".into(), "A".into(), 3.0, 3.0, Some(100.0)));
        assert_eq!(t[2], ("2024-01".into(), "B".into(), 1.0, 10.0, Some(10.0)));
        assert_eq!(t[3], ("2024-02".into(), "B".into(), 0.0, 0.0, None));
        let rows = ix.analyse(&analysis("0501013K0", "", Some("0501"), Level::Icb)).unwrap();
        assert_eq!(triples(&rows)[0], ("2024-01".into(), "I1".into(), 5.0, 20.0, Some(25.0)));
        let mut a = analysis("0501013K0", "", Some("0501"), Level::England);
        a.value = ValueKind::ActualCost;
        a.to = Some("2024-01".parse().unwrap());
        let rows = ix.analyse(&a).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].numerator, 1_234_560.0 / 100_000.0);
    }

    #[test]
    fn per_thousand_patients_leaves_out_practices_without_a_list_size() {
        let ix = index();
        let rows = ix.analyse(&analysis("0501", "", None, Level::Icb)).unwrap();
        let t = triples(&rows);
        // January: I2's only practice (C) has no list size, so I2 has no row that month.
        assert_eq!(
            t,
            vec![
                ("2024-01".into(), "I1".into(), 20.0, 4000.0, Some(5.0)),
                ("2024-02".into(), "I1".into(), 3.0, 4000.0, Some(0.75)),
                ("2024-02".into(), "I2".into(), 0.0, 2000.0, Some(0.0)),
            ]
        );
    }

    #[test]
    fn groups_and_one_organisation() {
        let ix = index();
        let groups = vec![Group { code: "G".into(), name: "A and I2".into(), members: vec!["A".into(), "I2".into()] }];
        let mut a = analysis("0501", "", Some("05"), Level::Groups(groups));
        a.from = Some("2024-01".parse().unwrap());
        a.to = Some("2024-01".parse().unwrap());
        let rows = ix.analyse(&a).unwrap();
        assert_eq!(triples(&rows), vec![("2024-01".into(), "G".into(), 15.0, 15.0, Some(100.0))]);
        let mut a = analysis("0501", "", None, Level::Pcn);
        a.org = Some("p2".into());
        assert_eq!(ix.analyse(&a).unwrap().len(), 1);
        a.org = Some("nowhere".into());
        assert!(ix.analyse(&a).unwrap_err().to_string().contains("no organisation \"nowhere\""));
    }

    #[test]
    fn split_scans_sum_to_the_same_cells() {
        let ix = index();
        let set = CodeSet::parse("0", "", "n").unwrap();
        for kind in [ValueKind::Items, ValueKind::ActualCost, ValueKind::Quantity] {
            let n = 2 * ix.practices.len();
            let (mut one, mut split) = (Cells::new(n, kind), Cells::new(n, kind));
            ix.sum_split(&set, kind, 0..2, &mut one, usize::MAX).unwrap();
            ix.sum_split(&set, kind, 0..2, &mut split, 1).unwrap();
            assert_eq!((one.ints, one.floats), (split.ints, split.floats), "{kind:?}");
        }
    }

    #[test]
    fn national_totals_count_standard_practices_in_the_months_asked() {
        let ix = index();
        let t = ix.totals(&CodeSet::parse("0501", "", "n").unwrap(), None, None).unwrap();
        assert_eq!(t.items, 4 + 6 + 1 + 9 + 5 + 3, "Z is not a practice");
        let jan = Some("2024-01".parse().unwrap());
        let t = ix.totals(&CodeSet::parse("05", "0501050", "n").unwrap(), jan, jan).unwrap();
        assert_eq!(t.items, 4 + 6 + 1 + 5);
        assert_eq!(t.actual_cost, 16.0 * 123_456.0 / 100_000.0);
    }

    #[test]
    fn breakdown_ranks_one_organisations_presentations_in_one_month() {
        let ix = index();
        let jan = "2024-01".parse().unwrap();
        let set = CodeSet::parse("0501", "", "n").unwrap();
        let b = ix.breakdown(&set, &Level::Pcn, "P1", jan, 10).unwrap();
        let codes: Vec<(&str, i64)> = b.iter().map(|(c, i, _)| (c.as_str(), *i)).collect();
        assert_eq!(codes, [("0501050B0AAAAAA", 9), ("0501021A0AAAAAA", 6), ("0501013K0AAAAAA", 5)]);
        assert_eq!(b[2].2, 5.0 * 123_456.0 / 100_000.0);
        let feb = "2024-02".parse().unwrap();
        let b = ix.breakdown(&set, &Level::Practice, "a", feb, 10).unwrap();
        assert_eq!(b.iter().map(|x| x.1).collect::<Vec<_>>(), [3], "merged February rows of A");
        assert_eq!(ix.breakdown(&set, &Level::England, "ENG", jan, 1).unwrap().len(), 1, "top 1");
        assert!(ix.breakdown(&set, &Level::Icb, "I1", "2030-01".parse().unwrap(), 5).unwrap().is_empty());
    }

    #[test]
    fn practices_counted_and_presentation_activity() {
        let ix = index();
        let (jan, feb) = ("2024-01".parse().unwrap(), "2024-02".parse().unwrap());
        assert_eq!(ix.practices_counted(&Level::Icb, "I1", jan), ["A", "B"]);
        assert_eq!(ix.practices_counted(&Level::Practice, "c", feb), ["C"]);
        assert!(ix.practices_counted(&Level::Icb, "I1", "2030-01".parse().unwrap()).is_empty());
        let activity = ix.presentation_activity((feb, feb), (jan, jan)).unwrap();
        let got: Vec<(&str, String, i64, i64)> =
            activity.iter().map(|a| (a.code.as_str(), a.first_month.to_string(), a.items, a.items_before)).collect();
        assert_eq!(
            got,
            [
                ("0212000AAAAAAAA", "2024-02".to_string(), 7, 0),
                ("0501013K0AAAAAA", "2024-01".to_string(), 3, 10),
                ("0501021A0AAAAAA", "2024-01".to_string(), 0, 6),
                ("0501050B0AAAAAA", "2024-01".to_string(), 0, 9),
            ]
        );
    }

    #[test]
    fn bad_requests_are_errors() {
        assert!(CodeSet::parse("", "", "--numerator").unwrap_err().to_string().contains("at least one"));
        assert!(CodeSet::parse("05'01", "", "--numerator").unwrap_err().to_string().contains("not a BNF code prefix"));
        let many = vec!["05"; MAX_PREFIXES + 1].join(",");
        assert!(CodeSet::parse(&many, "", "--numerator").is_err());
        let ix = index();
        let mut a = analysis("05", "", None, Level::England);
        a.from = Some("2024-02".parse().unwrap());
        a.to = Some("2024-01".parse().unwrap());
        assert!(ix.analyse(&a).is_err());
    }
}
