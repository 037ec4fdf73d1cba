//! Building an index without holding it: each month's rows are sorted by BNF code and set aside
//! as a "run" (in memory, or in a scratch file for a national build), then the runs are merged
//! code by code, month by month, straight into the output, with the node totals summed on the
//! way. Memory is one month's rows plus one practice × month grid per node level, whatever the
//! number of months.

use crate::file::FileSink;
use crate::rows::{CHUNK_ROWS, Columns, Row, RowStore, Sink};
use crate::{IndexError, Member, NODE_DEPTHS, NONE, Node, PrescribingIndex};
use ipmo_domain::YearMonth;
use ipmo_domain::practice::{Amounts, PracticeMonth};
use rustc_hash::FxHashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Which nodes a build keeps.
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

/// Rows kept in memory: presentation rows, then node totals.
#[derive(Default)]
struct MemorySink {
    base: Columns,
    nodes: Columns,
}

impl Sink for MemorySink {
    fn base(&mut self, r: &Row) -> Result<(), IndexError> {
        self.base.push(r.month, r.practice, r.items, r.quantity, r.cost, r.nic);
        Ok(())
    }
    fn node(&mut self, r: &Row) -> Result<(), IndexError> {
        self.nodes.push(r.month, r.practice, r.items, r.quantity, r.cost, r.nic);
        Ok(())
    }
}

/// A row of a month's run: code number (the builder's, in first-seen order) and amounts.
#[derive(Clone, Copy)]
struct RunRow {
    code: u32,
    practice: u16,
    items: i32,
    quantity: f64,
    cost: i64,
    nic: i64,
}

const RUN_ROW_BYTES: usize = 4 + 2 + 4 + 8 + 8 + 8;

impl RunRow {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.code.to_le_bytes());
        out.extend_from_slice(&self.practice.to_le_bytes());
        out.extend_from_slice(&self.items.to_le_bytes());
        out.extend_from_slice(&self.quantity.to_le_bytes());
        out.extend_from_slice(&self.cost.to_le_bytes());
        out.extend_from_slice(&self.nic.to_le_bytes());
    }

    fn decode(b: &[u8; RUN_ROW_BYTES]) -> Self {
        let n = |at: usize| -> [u8; 8] {
            [b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5], b[at + 6], b[at + 7]]
        };
        Self {
            code: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            practice: u16::from_le_bytes([b[4], b[5]]),
            items: i32::from_le_bytes([b[6], b[7], b[8], b[9]]),
            quantity: f64::from_le_bytes(n(10)),
            cost: i64::from_le_bytes(n(18)),
            nic: i64::from_le_bytes(n(26)),
        }
    }
}

/// The sealed months' runs.
enum Runs {
    Memory(Vec<Vec<u8>>),
    /// Scratch files in a directory of their own, removed when the builder goes.
    Files {
        dir: PathBuf,
        files: Vec<PathBuf>,
    },
}

/// Reads one run back in order, one row ahead.
struct RunReader<'a> {
    src: Box<dyn Read + 'a>,
    next: Option<RunRow>,
    left: u64,
}

impl RunReader<'_> {
    fn advance(&mut self, what: &str) -> Result<(), IndexError> {
        if self.left == 0 {
            self.next = None;
            return Ok(());
        }
        let mut b = [0u8; RUN_ROW_BYTES];
        self.src.read_exact(&mut b).map_err(|source| IndexError::Io { path: what.to_string(), source })?;
        self.next = Some(RunRow::decode(&b));
        self.left -= 1;
        Ok(())
    }
}

/// Collects a warehouse's prescribing into an index, one month at a time.
pub struct IndexBuilder {
    months: Vec<YearMonth>,
    practices: Vec<String>,
    practice_index: FxHashMap<String, u16>,
    orgs: [Vec<String>; 4],
    org_index: [FxHashMap<String, u32>; 4],
    membership: Vec<Vec<Option<Member>>>,
    codes: Vec<String>,
    code_index: FxHashMap<String, u32>,
    /// Rows of the month being added.
    current: Vec<RunRow>,
    runs: Runs,
    /// Rows in each sealed run.
    run_rows: Vec<u64>,
    /// The index being extended: its months come first and its rows are copied, not rebuilt.
    previous: Option<PrescribingIndex>,
}

impl Default for IndexBuilder {
    fn default() -> Self {
        Self::with_runs(Runs::Memory(Vec::new()))
    }
}

impl Drop for IndexBuilder {
    fn drop(&mut self) {
        if let Runs::Files { dir, .. } = &self.runs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl IndexBuilder {
    /// A builder that keeps everything in memory (tests, small warehouses).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that sets each finished month aside in a scratch file under `dir` (removed
    /// when the builder is dropped), so a national build holds one month at a time.
    pub fn spilling_to(dir: &Path) -> Result<Self, IndexError> {
        let dir = dir.join(format!("build-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|source| IndexError::Io { path: dir.display().to_string(), source })?;
        Ok(Self::with_runs(Runs::Files { dir, files: Vec::new() }))
    }

    fn with_runs(runs: Runs) -> Self {
        Self {
            months: Vec::new(),
            practices: Vec::new(),
            practice_index: FxHashMap::default(),
            orgs: Default::default(),
            org_index: Default::default(),
            membership: Vec::new(),
            codes: Vec::new(),
            code_index: FxHashMap::default(),
            current: Vec::new(),
            runs,
            run_rows: Vec::new(),
            previous: None,
        }
    }

    /// A builder that starts from `previous` and adds later months to it, so a monthly update
    /// copies the months already indexed instead of reading and sorting each of them again. The
    /// result is the index a build of every month would give, byte for byte. With `scratch`,
    /// new months are set aside in files there, as [`IndexBuilder::spilling_to`] does.
    pub fn extending(previous: PrescribingIndex, scratch: Option<&Path>) -> Result<Self, IndexError> {
        let mut b = match scratch {
            Some(dir) => Self::spilling_to(dir)?,
            None => Self::new(),
        };
        b.months.clone_from(&previous.months);
        b.practices.clone_from(&previous.practices);
        b.practice_index = previous.practices.iter().enumerate().map(|(i, p)| (p.clone(), i as u16)).collect();
        b.orgs.clone_from(&previous.orgs);
        for (level, codes) in previous.orgs.iter().enumerate() {
            b.org_index[level] = codes.iter().enumerate().map(|(i, c)| (c.clone(), i as u32)).collect();
        }
        b.membership.clone_from(&previous.membership);
        b.codes.clone_from(&previous.codes);
        b.code_index = previous.codes.iter().enumerate().map(|(i, c)| (c.clone(), i as u32)).collect();
        b.previous = Some(previous);
        Ok(b)
    }

    /// Months held by the index being extended; the sealed runs are of the months after them.
    fn first_run_month(&self) -> usize {
        self.previous.as_ref().map_or(0, |p| p.months.len())
    }

    /// Whether the month last started has rows not yet set aside.
    fn unsealed(&self) -> bool {
        self.first_run_month() + self.run_rows.len() < self.months.len()
    }

    /// Presentation rows the finished index will hold.
    fn base_rows(&self) -> u64 {
        let previous = self.previous.as_ref().and_then(|p| p.code_rows.last().copied()).unwrap_or(0);
        previous + self.run_rows.iter().sum::<u64>()
    }

    /// Starts a month with its standard practices (finishing the month before); rows added
    /// next belong to it. Returns the month's position.
    pub fn add_month(&mut self, month: YearMonth, practices: &[PracticeMonth]) -> Result<u8, IndexError> {
        if self.months.len() >= usize::from(u8::MAX) {
            return Err(IndexError::TooLarge { what: "months", max: 255, got: self.months.len() + 1 });
        }
        if self.previous.is_some() && self.months.last().is_some_and(|last| month <= *last) {
            return Err(IndexError::Format {
                path: "the index being extended".into(),
                detail: format!("{month} is not after the months it holds; it has to be built again"),
            });
        }
        if self.unsealed() {
            self.seal()?;
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

    /// Adds one prescribing row of the month last started; rows of practices that are not
    /// standard practices that month are skipped. Returns whether it was kept.
    pub fn add(&mut self, practice: &str, bnf_code: &str, a: &Amounts) -> bool {
        let Some(&p) = self.practice_index.get(practice) else { return false };
        let counted = self.membership.last().and_then(|m| m.get(usize::from(p))).is_some_and(Option::is_some);
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
        self.current.push(RunRow {
            code,
            practice: p,
            items: a.items.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            quantity: a.quantity,
            cost: a.actual_cost_e5,
            nic: a.nic_pence,
        });
        true
    }

    /// Code numbers in code order: `order[rank] = code`, `rank[code] = position`.
    fn code_order(&self) -> (Vec<u32>, Vec<u32>) {
        let mut order: Vec<u32> = (0..self.codes.len() as u32).collect();
        order.sort_unstable_by(|a, b| self.codes[*a as usize].cmp(&self.codes[*b as usize]));
        let mut rank = vec![0u32; self.codes.len()];
        for (r, &c) in order.iter().enumerate() {
            rank[c as usize] = r as u32;
        }
        (order, rank)
    }

    /// Sorts the month being added by (code, practice), merges rows of one practice under one
    /// current code (old codes mapped onto it), and sets the run aside.
    fn seal(&mut self) -> Result<(), IndexError> {
        let (_, rank) = self.code_order();
        let mut rows = std::mem::take(&mut self.current);
        rows.sort_unstable_by_key(|r| (rank[r.code as usize], r.practice));
        let mut merged: Vec<RunRow> = Vec::with_capacity(rows.len());
        for r in rows {
            match merged.last_mut() {
                Some(last) if last.code == r.code && last.practice == r.practice => {
                    last.items = last.items.saturating_add(r.items);
                    last.quantity += r.quantity;
                    last.cost += r.cost;
                    last.nic += r.nic;
                }
                _ => merged.push(r),
            }
        }
        let mut bytes = Vec::with_capacity(merged.len() * RUN_ROW_BYTES);
        for r in &merged {
            r.encode(&mut bytes);
        }
        self.run_rows.push(merged.len() as u64);
        match &mut self.runs {
            Runs::Memory(runs) => runs.push(bytes),
            Runs::Files { dir, files } => {
                let path = dir.join(format!("month-{}.run", files.len()));
                let io = |source| IndexError::Io { path: path.display().to_string(), source };
                let mut w = BufWriter::new(File::create(&path).map_err(io)?);
                w.write_all(&bytes).map_err(io)?;
                w.flush().map_err(io)?;
                files.push(path);
            }
        }
        Ok(())
    }

    /// Finishes in memory, keeping node totals by the default policy.
    pub fn finish(self, inputs: Vec<String>) -> PrescribingIndex {
        self.finish_with(inputs, NodePolicy::default()).expect("an in-memory build reads only memory")
    }

    /// Finishes in memory, keeping the node totals `policy` keeps.
    pub fn finish_with(mut self, inputs: Vec<String>, policy: NodePolicy) -> Result<PrescribingIndex, IndexError> {
        let mut sink = MemorySink::default();
        let mut index = self.merge(&mut sink, inputs, policy)?;
        let MemorySink { mut base, nodes } = sink;
        base.month.extend(nodes.month);
        base.practice.extend(nodes.practice);
        base.items.extend(nodes.items);
        base.quantity.extend(nodes.quantity);
        base.actual_cost_e5.extend(nodes.actual_cost_e5);
        base.nic_pence.extend(nodes.nic_pence);
        index.rows = RowStore::Memory(base);
        Ok(index)
    }

    /// Finishes straight into an index file at `path` (atomically) and opens it, so the rows
    /// never sit in memory.
    pub fn finish_to_file(
        mut self,
        inputs: Vec<String>,
        policy: NodePolicy,
        path: &Path,
    ) -> Result<PrescribingIndex, IndexError> {
        if self.unsealed() {
            self.seal()?;
        }
        let mut sink = FileSink::create(path, self.base_rows())?;
        let index = self.merge(&mut sink, inputs, policy)?;
        sink.finish(&index)?;
        crate::read_index(path)?.ok_or_else(|| IndexError::Format {
            path: path.display().to_string(),
            detail: "the index vanished just after it was written".into(),
        })
    }

    /// Merges the runs into `sink` in (code, month, practice) order, summing node totals on
    /// the way; returns the catalogue (rows to be attached by the caller).
    fn merge(
        &mut self,
        sink: &mut dyn Sink,
        inputs: Vec<String>,
        policy: NodePolicy,
    ) -> Result<PrescribingIndex, IndexError> {
        if self.unsealed() {
            self.seal()?;
        }
        for m in &mut self.membership {
            m.resize(self.practices.len(), None);
        }
        let (order, _) = self.code_order();
        let base_rows = self.base_rows();
        let mut readers: Vec<RunReader<'_>> = Vec::with_capacity(self.run_rows.len());
        let names: Vec<String> = match &self.runs {
            Runs::Memory(runs) => (0..runs.len()).map(|m| format!("month {m} of the index build")).collect(),
            Runs::Files { files, .. } => files.iter().map(|f| f.display().to_string()).collect(),
        };
        for (m, &rows) in self.run_rows.iter().enumerate() {
            let src: Box<dyn Read + '_> = match &self.runs {
                Runs::Memory(runs) => Box::new(runs[m].as_slice()),
                Runs::Files { files, .. } => Box::new(BufReader::with_capacity(
                    1 << 20,
                    File::open(&files[m]).map_err(|source| IndexError::Io { path: names[m].clone(), source })?,
                )),
            };
            let mut r = RunReader { src, next: None, left: rows };
            r.advance(&names[m])?;
            readers.push(r);
        }
        let n_practices = self.practices.len();
        let first_run_month = self.first_run_month();
        let cells = self.months.len() * n_practices;
        let mut levels: Vec<NodeLevel> = NODE_DEPTHS.iter().map(|&d| NodeLevel::new(d, cells)).collect();
        let mut code_rows = vec![0u64; order.len() + 1];
        let mut node_rows = 0u64;
        let mut emitted = 0u64;
        let mut copied: Vec<Row> = Vec::new();
        for (rank, &code) in order.iter().enumerate() {
            let name = &self.codes[code as usize];
            for level in &mut levels {
                if !level.holds(name) {
                    level.close(rank, policy, n_practices, sink, &mut node_rows)?;
                    level.open(name, rank);
                }
            }
            // The months of the index being extended: its rows of this code, in month order.
            if let Some(previous) = &self.previous
                && let Some(range) = previous.code_rows.get(code as usize..code as usize + 2)
            {
                let (mut start, end) = (range[0] as usize, range[1] as usize);
                while start < end {
                    let stop = end.min(start + CHUNK_ROWS);
                    previous.rows.read_rows(start..stop, &mut copied)?;
                    for row in &copied {
                        if usize::from(row.month) >= first_run_month || usize::from(row.practice) >= n_practices {
                            return Err(IndexError::Format {
                                path: "the index being extended".into(),
                                detail: "a row points outside its months or practices".into(),
                            });
                        }
                        sink.base(row)?;
                        emitted += 1;
                        let cell = usize::from(row.month) * n_practices + usize::from(row.practice);
                        for level in &mut levels {
                            level.add(cell, row);
                        }
                    }
                    start = stop;
                }
            }
            for (m, reader) in readers.iter_mut().enumerate() {
                while let Some(r) = reader.next.filter(|r| r.code == code) {
                    let row = Row {
                        month: (first_run_month + m) as u8,
                        practice: r.practice,
                        items: r.items,
                        quantity: r.quantity,
                        cost: r.cost,
                        nic: r.nic,
                    };
                    sink.base(&row)?;
                    emitted += 1;
                    let cell = (first_run_month + m) * n_practices + usize::from(r.practice);
                    for level in &mut levels {
                        level.add(cell, &row);
                    }
                    reader.advance(&names[m])?;
                }
            }
            code_rows[rank + 1] = emitted;
        }
        for level in &mut levels {
            level.close(order.len(), policy, n_practices, sink, &mut node_rows)?;
        }
        if emitted != base_rows || readers.iter().any(|r| r.next.is_some()) {
            return Err(IndexError::Format {
                path: "the index build".into(),
                detail: format!("merged {emitted} of {base_rows} rows; a month's run is out of order"),
            });
        }
        let nodes = levels
            .into_iter()
            .map(|l| {
                l.nodes
                    .into_iter()
                    .map(|n| Node { row_start: n.row_start + base_rows, row_end: n.row_end + base_rows, ..n })
                    .collect()
            })
            .collect();
        Ok(PrescribingIndex {
            months: std::mem::take(&mut self.months),
            practices: std::mem::take(&mut self.practices),
            orgs: std::mem::take(&mut self.orgs),
            membership: std::mem::take(&mut self.membership),
            codes: order.iter().map(|&c| self.codes[c as usize].clone()).collect(),
            code_rows,
            nodes,
            inputs,
            rows: RowStore::default(),
        })
    }
}

/// The node of one depth being summed during a merge.
struct NodeLevel {
    depth: usize,
    key: Option<String>,
    first: usize,
    /// Presentation rows the open node stands for.
    rows: u64,
    items: Vec<i64>,
    quantity: Vec<f64>,
    cost: Vec<i64>,
    nic: Vec<i64>,
    seen: Vec<bool>,
    touched: Vec<u32>,
    /// Kept nodes, row ranges relative to the start of the node totals.
    nodes: Vec<Node>,
}

impl NodeLevel {
    fn new(depth: usize, cells: usize) -> Self {
        Self {
            depth,
            key: None,
            first: 0,
            rows: 0,
            items: vec![0; cells],
            quantity: vec![0.0; cells],
            cost: vec![0; cells],
            nic: vec![0; cells],
            seen: vec![false; cells],
            touched: Vec::new(),
            nodes: Vec::new(),
        }
    }

    fn key_of(&self, code: &str) -> String {
        code.get(..self.depth.min(code.len())).unwrap_or(code).to_string()
    }

    fn holds(&self, code: &str) -> bool {
        self.key.as_deref().is_some_and(|k| self.key_of(code) == k)
    }

    fn open(&mut self, code: &str, rank: usize) {
        self.key = Some(self.key_of(code));
        self.first = rank;
        self.rows = 0;
    }

    fn add(&mut self, cell: usize, r: &Row) {
        if !self.seen[cell] {
            self.seen[cell] = true;
            self.touched.push(cell as u32);
        }
        self.items[cell] += i64::from(r.items);
        self.quantity[cell] += r.quantity;
        self.cost[cell] += r.cost;
        self.nic[cell] += r.nic;
        self.rows += 1;
    }

    /// Ends the open node at code `end`: keeps its totals if the policy says they are worth it.
    fn close(
        &mut self,
        end: usize,
        policy: NodePolicy,
        n_practices: usize,
        sink: &mut dyn Sink,
        node_rows: &mut u64,
    ) -> Result<(), IndexError> {
        if self.key.is_none() {
            return Ok(());
        }
        let keep = end - self.first >= 2
            && self.rows > 0
            && policy.max_share > 0.0
            && self.touched.len() as f64 <= policy.max_share * self.rows as f64;
        self.touched.sort_unstable();
        let row_start = *node_rows;
        for &cell in &self.touched {
            let c = cell as usize;
            if keep {
                let row = Row {
                    month: (c / n_practices) as u8,
                    practice: (c % n_practices) as u16,
                    items: self.items[c].clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
                    quantity: self.quantity[c],
                    cost: self.cost[c],
                    nic: self.nic[c],
                };
                sink.node(&row)?;
                *node_rows += 1;
            }
            (self.items[c], self.quantity[c], self.cost[c], self.nic[c], self.seen[c]) = (0, 0.0, 0, 0, false);
        }
        if keep {
            self.nodes.push(Node { first: self.first as u32, end: end as u32, row_start, row_end: *node_rows });
        }
        self.touched.clear();
        self.key = None;
        Ok(())
    }
}
