//! The in-memory prescribing index behind `ipmo analyse` (and, later, the web dashboard's
//! analyse page): ad-hoc "these BNF codes over those, per organisation per month" answered in
//! milliseconds without planning a query.
//!
//! Layout: every prescribing row of a standard GP practice, under its current BNF code, sorted by
//! (code, month, practice) into parallel columns; `code_rows[i]..code_rows[i + 1]` are the rows of
//! the i-th code in sorted order. A BNF prefix is therefore one contiguous run of codes, found by
//! binary search, and its rows one contiguous run of memory. An analysis sums the runs of its
//! numerator and denominator into practice × month cells, then adds practices up into their
//! organisations for each month. Items, actual cost (1e-5 £) and NIC (pence) are integers, so sums
//! are exact and do not depend on order; quantity is a float, as published.
//!
//! The same definitions as the measures engine apply: only standard GP practices in the
//! organisation map for the month count (so `…998` and other prescribers are left out); per
//! 1,000 patients, practices without a list size that month are left out of numerator and
//! denominator alike. The warehouse holds a DataFusion SQL implementation of the same analysis as
//! the reference, and a test requires the two to agree.

mod file;
mod query;
mod rows;

pub use file::{FORMAT_VERSION, read_index, write_index};
pub use query::{Analysis, AnalysisRow, CodeSet, Denominator, Level, ValueKind};
pub use rows::Columns;
use rows::RowStore;

use ipmo_domain::YearMonth;
use ipmo_measures::compute::{Amounts, PracticeMonth};
use rustc_hash::FxHashMap;

/// Marks "no organisation" in a membership slot.
pub const NONE: u32 = u32::MAX;

/// Why an index could not be built, read or queried.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not an index this version can read.
    #[error(
        "{path}: not a usable prescribing index ({detail}); it is rebuilt from the warehouse on the next `ipmo analyse`"
    )]
    Format {
        /// The file.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// More months or practices than the compact row format holds.
    #[error("the index holds at most {max} {what}; this warehouse has {got}")]
    TooLarge {
        /// Months or practices.
        what: &'static str,
        /// The limit.
        max: usize,
        /// How many there are.
        got: usize,
    },
    /// A bad analysis request.
    #[error("{0}")]
    Query(String),
}

/// Where one practice belongs in one month.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Indices into [`PrescribingIndex::orgs`] for PCN, sub-ICB location, ICB and region
    /// ([`NONE`] when it has no PCN).
    pub orgs: [u32; 4],
    /// Registered patients, when known that month.
    pub list_size: Option<f64>,
}

/// A BNF level whose per-practice totals the index keeps, so that a broad prefix reads one row
/// per practice-month instead of every presentation's: chapter, section, paragraph, chemical.
pub const NODE_DEPTHS: [usize; 4] = [2, 4, 6, 9];

/// The totals of one BNF node (all codes starting with one chapter, section, paragraph or
/// chemical prefix) per practice and month, kept as rows after the presentation rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Node {
    /// First code index the node covers.
    pub first: u32,
    /// One past its last code index.
    pub end: u32,
    /// First row of its totals.
    pub row_start: u64,
    /// One past its last row.
    pub row_end: u64,
}

/// The prescribing of every standard GP practice, month by month, by current BNF code.
#[derive(Debug, Default)]
pub struct PrescribingIndex {
    /// Months held, oldest first.
    pub months: Vec<YearMonth>,
    /// Practice codes; a row's practice is an index into this.
    pub practices: Vec<String>,
    /// Organisation codes of the four parent levels: PCN, sub-ICB location, ICB, region.
    pub orgs: [Vec<String>; 4],
    /// `membership[month][practice]`: None when the practice is not a standard practice in the
    /// map that month.
    pub membership: Vec<Vec<Option<Member>>>,
    /// Current BNF codes, sorted.
    pub codes: Vec<String>,
    /// Row range of each code: `code_rows[i]..code_rows[i + 1]`.
    pub code_rows: Vec<u64>,
    /// Stored node totals for each of [`NODE_DEPTHS`], each list sorted by first code. Only nodes
    /// that save rows are kept.
    pub nodes: Vec<Vec<Node>>,
    /// What the index was built from (warehouse files and options), to tell when it is stale.
    pub inputs: Vec<String>,
    rows: RowStore,
}

impl PrescribingIndex {
    /// Rows held (presentation rows and node totals).
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Whether rows are read from the index file rather than held in memory.
    pub fn file_backed(&self) -> bool {
        matches!(self.rows, RowStore::File(_))
    }

    /// Approximate bytes the process holds for the index: the catalogue, plus the rows when they
    /// are in memory (a file-backed index leaves them to the page cache).
    pub fn memory_bytes(&self) -> usize {
        let rows = if self.file_backed() { 0 } else { self.rows() * rows::WIDTHS.iter().sum::<usize>() };
        rows + self.code_rows.len() * 8
            + self.nodes.iter().map(|l| l.len() * std::mem::size_of::<Node>()).sum::<usize>()
            + self.codes.iter().map(|c| c.len() + 24).sum::<usize>()
            + self.membership.iter().map(|m| m.len() * std::mem::size_of::<Option<Member>>()).sum::<usize>()
    }

    /// Every row, in memory (tests and checks; a national index is large).
    pub fn columns(&self) -> Result<Columns, IndexError> {
        self.rows.columns()
    }

    /// The run of sorted codes starting with `prefix`.
    pub fn prefix_range(&self, prefix: &str) -> std::ops::Range<usize> {
        let lo = self.codes.partition_point(|c| c.as_str() < prefix);
        let hi = lo + self.codes[lo..].partition_point(|c| c.starts_with(prefix));
        lo..hi
    }
}

/// Which nodes [`IndexBuilder::finish_with`] keeps.
#[derive(Clone, Copy, Debug)]
pub struct NodePolicy {
    /// A node is kept when its totals take at most this share of the rows it stands for
    /// (1.0 keeps every node of two or more codes; 0.0 keeps none).
    pub max_share: f64,
}

impl Default for NodePolicy {
    /// Keep a node when it at least halves the rows a scan reads.
    fn default() -> Self {
        Self { max_share: 0.5 }
    }
}

/// Collects a warehouse's prescribing into an index, one month at a time.
#[derive(Default)]
pub struct IndexBuilder {
    months: Vec<YearMonth>,
    practices: Vec<String>,
    practice_index: FxHashMap<String, u16>,
    orgs: [Vec<String>; 4],
    org_index: [FxHashMap<String, u32>; 4],
    membership: Vec<Vec<Option<Member>>>,
    codes: Vec<String>,
    code_index: FxHashMap<String, u32>,
    rows: Vec<BuildRow>,
}

#[derive(Clone, Copy)]
struct BuildRow {
    code: u32,
    month: u8,
    practice: u16,
    items: i32,
    quantity: f64,
    cost: i64,
    nic: i64,
}

impl IndexBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a month with its standard practices; returns the month's index for [`Self::add`].
    pub fn add_month(&mut self, month: YearMonth, practices: &[PracticeMonth]) -> Result<u8, IndexError> {
        if self.months.len() >= usize::from(u8::MAX) {
            return Err(IndexError::TooLarge { what: "months", max: 255, got: self.months.len() + 1 });
        }
        let m = self.months.len() as u8;
        self.months.push(month);
        let mut members: Vec<(u16, Member)> = Vec::with_capacity(practices.len());
        for p in practices {
            let idx = match self.practice_index.get(&p.code) {
                Some(i) => *i,
                None => {
                    if self.practices.len() >= usize::from(u16::MAX) {
                        return Err(IndexError::TooLarge {
                            what: "practices",
                            max: 65_535,
                            got: self.practices.len() + 1,
                        });
                    }
                    let i = self.practices.len() as u16;
                    self.practices.push(p.code.clone());
                    self.practice_index.insert(p.code.clone(), i);
                    i
                }
            };
            let mut orgs = [NONE; 4];
            let parents = [p.pcn.as_deref(), Some(p.sicbl.as_str()), Some(p.icb.as_str()), Some(p.region.as_str())];
            for (level, code) in parents.into_iter().enumerate() {
                if let Some(code) = code {
                    let table = &mut self.orgs[level];
                    orgs[level] = *self.org_index[level].entry(code.to_string()).or_insert_with(|| {
                        table.push(code.to_string());
                        (table.len() - 1) as u32
                    });
                }
            }
            members.push((idx, Member { orgs, list_size: p.list_size }));
        }
        let mut month_members = vec![None; self.practices.len()];
        for (idx, member) in members {
            // A practice listed twice counts once, in its first listing.
            month_members[usize::from(idx)].get_or_insert(member);
        }
        self.membership.push(month_members);
        Ok(m)
    }

    /// Adds one prescribing row of month `month` (from [`Self::add_month`]); rows of practices
    /// that are not standard practices that month are skipped. Returns whether it was kept.
    pub fn add(&mut self, month: u8, practice: &str, bnf_code: &str, a: &Amounts) -> bool {
        let Some(&p) = self.practice_index.get(practice) else { return false };
        let counted =
            self.membership.get(usize::from(month)).and_then(|m| m.get(usize::from(p))).is_some_and(Option::is_some);
        if !counted {
            return false;
        }
        let code = match self.code_index.get(bnf_code) {
            Some(c) => *c,
            None => {
                let c = self.codes.len() as u32;
                self.codes.push(bnf_code.to_string());
                self.code_index.insert(bnf_code.to_string(), c);
                c
            }
        };
        self.rows.push(BuildRow {
            code,
            month,
            practice: p,
            items: a.items.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            quantity: a.quantity,
            cost: a.actual_cost_e5,
            nic: a.nic_pence,
        });
        true
    }

    /// Sorts and packs the rows, keeping node totals by the default policy.
    pub fn finish(self, inputs: Vec<String>) -> PrescribingIndex {
        self.finish_with(inputs, NodePolicy::default())
    }

    /// Sorts and packs the rows; rows for the same practice, month and current code (old codes
    /// mapped onto one current code) are merged. Then adds the node totals `policy` keeps.
    pub fn finish_with(self, inputs: Vec<String>, policy: NodePolicy) -> PrescribingIndex {
        let IndexBuilder { months, practices, orgs, mut membership, codes, mut rows, .. } = self;
        for m in &mut membership {
            m.resize(practices.len(), None);
        }
        let mut order: Vec<u32> = (0..codes.len() as u32).collect();
        order.sort_by(|a, b| codes[*a as usize].cmp(&codes[*b as usize]));
        let mut rank = vec![0u32; codes.len()];
        for (r, &c) in order.iter().enumerate() {
            rank[c as usize] = r as u32;
        }
        for r in &mut rows {
            r.code = rank[r.code as usize];
        }
        rows.sort_unstable_by_key(|r| (r.code, r.month, r.practice));
        let sorted_codes: Vec<String> = order.iter().map(|&c| codes[c as usize].clone()).collect();
        let mut cols = Columns::default();
        let mut code_rows = vec![0u64; sorted_codes.len() + 1];
        let mut last: Option<(u32, u8, u16)> = None;
        for r in rows {
            let key = (r.code, r.month, r.practice);
            if last == Some(key) {
                let i = cols.len() - 1;
                cols.items[i] = cols.items[i].saturating_add(r.items);
                cols.quantity[i] += r.quantity;
                cols.actual_cost_e5[i] += r.cost;
                cols.nic_pence[i] += r.nic;
                continue;
            }
            last = Some(key);
            code_rows[r.code as usize + 1] += 1;
            cols.push(r.month, r.practice, r.items, r.quantity, r.cost, r.nic);
        }
        for i in 1..code_rows.len() {
            code_rows[i] += code_rows[i - 1];
        }
        let nodes = node_totals(&sorted_codes, &code_rows, &mut cols, months.len(), practices.len(), policy);
        PrescribingIndex {
            months,
            practices,
            orgs,
            membership,
            codes: sorted_codes,
            code_rows,
            nodes,
            inputs,
            rows: RowStore::Memory(cols),
        }
    }
}

/// Appends to `cols` the per practice-month totals of every node of [`NODE_DEPTHS`] that
/// `policy` keeps, and lists them.
fn node_totals(
    codes: &[String],
    code_rows: &[u64],
    cols: &mut Columns,
    n_months: usize,
    n_practices: usize,
    policy: NodePolicy,
) -> Vec<Vec<Node>> {
    let cells = n_months * n_practices;
    let (mut items, mut quantity) = (vec![0i64; cells], vec![0f64; cells]);
    let (mut cost, mut nic) = (vec![0i64; cells], vec![0i64; cells]);
    let mut touched: Vec<u32> = Vec::new();
    let mut seen = vec![false; cells];
    let mut levels = Vec::with_capacity(NODE_DEPTHS.len());
    for depth in NODE_DEPTHS {
        let key = |c: &str| -> String { c.get(..depth.min(c.len())).unwrap_or(c).to_string() };
        let mut level = Vec::new();
        let mut first = 0;
        while first < codes.len() {
            let k = key(&codes[first]);
            let end = first + codes[first..].partition_point(|c| c.starts_with(k.as_str()));
            let span = code_rows[first] as usize..code_rows[end] as usize;
            if end - first >= 2 && !span.is_empty() && policy.max_share > 0.0 {
                for r in span.clone() {
                    let cell = usize::from(cols.month[r]) * n_practices + usize::from(cols.practice[r]);
                    if !seen[cell] {
                        seen[cell] = true;
                        touched.push(cell as u32);
                    }
                    items[cell] += i64::from(cols.items[r]);
                    quantity[cell] += cols.quantity[r];
                    cost[cell] += cols.actual_cost_e5[r];
                    nic[cell] += cols.nic_pence[r];
                }
                touched.sort_unstable();
                if touched.len() as f64 <= policy.max_share * span.len() as f64 {
                    let row_start = cols.len() as u64;
                    for &cell in &touched {
                        let c = cell as usize;
                        let it = items[c].clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
                        let (m, p) = ((c / n_practices) as u8, (c % n_practices) as u16);
                        cols.push(m, p, it, quantity[c], cost[c], nic[c]);
                    }
                    level.push(Node { first: first as u32, end: end as u32, row_start, row_end: cols.len() as u64 });
                }
                for &cell in &touched {
                    let c = cell as usize;
                    (items[c], quantity[c], cost[c], nic[c], seen[c]) = (0, 0.0, 0, 0, false);
                }
                touched.clear();
            }
            first = end;
        }
        levels.push(level);
    }
    levels
}
