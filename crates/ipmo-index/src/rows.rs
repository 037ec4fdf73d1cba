//! Where an index's rows live: in memory while it is built (and in tests), or in its file, read
//! run by run with positioned reads so a serving process holds only the catalogue and the
//! operating system's page cache holds the rows (a 60-month national index is tens of GB).

use crate::{IndexError, ValueKind};
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Bytes per value of each column, in file order: month, practice, items, quantity, actual
/// cost, NIC.
pub(crate) const WIDTHS: [usize; 6] = [1, 2, 4, 8, 8, 8];

/// Rows read per positioned read (bounds the buffer a scan holds).
pub(crate) const CHUNK_ROWS: usize = 1 << 16;

/// How many rows' months [`RowStore::first_at_or_after`] reads at once to end a search in a
/// file: a few pages, about what one byte costs to read.
const SEARCH_WINDOW: usize = 1 << 13;

/// Row columns held in memory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Columns {
    /// Month index of each row.
    pub month: Vec<u8>,
    /// Practice index of each row.
    pub practice: Vec<u16>,
    /// Items (signed, as stored: a correction row can be negative).
    pub items: Vec<i32>,
    /// Quantity as published.
    pub quantity: Vec<f64>,
    /// Actual cost in 1e-5 pounds.
    pub actual_cost_e5: Vec<i64>,
    /// NIC in pence.
    pub nic_pence: Vec<i64>,
}

impl Columns {
    /// Rows held.
    pub fn len(&self) -> usize {
        self.month.len()
    }

    /// Whether no rows are held.
    pub fn is_empty(&self) -> bool {
        self.month.is_empty()
    }

    /// Row `i` (which must be held).
    pub(crate) fn row(&self, i: usize) -> Row {
        Row {
            month: self.month[i],
            practice: self.practice[i],
            items: self.items[i],
            quantity: self.quantity[i],
            cost: self.actual_cost_e5[i],
            nic: self.nic_pence[i],
        }
    }

    pub(crate) fn push(&mut self, month: u8, practice: u16, items: i32, quantity: f64, cost: i64, nic: i64) {
        self.month.push(month);
        self.practice.push(practice);
        self.items.push(items);
        self.quantity.push(quantity);
        self.actual_cost_e5.push(cost);
        self.nic_pence.push(nic);
    }
}

/// The rows of an index file: the open file and where each column starts. Rows below
/// `base_rows` are presentation rows; the rest are node totals, kept in a block of their own.
#[derive(Debug)]
pub(crate) struct FileRows {
    pub file: File,
    pub path: PathBuf,
    pub rows: usize,
    pub base_rows: usize,
    /// Byte offset of each presentation-row column.
    pub base_offsets: [u64; 6],
    /// Byte offset of each node-total column.
    pub node_offsets: [u64; 6],
}

/// An index's rows, wherever they are.
#[derive(Debug)]
pub(crate) enum RowStore {
    Memory(Columns),
    File(FileRows),
}

impl Default for RowStore {
    fn default() -> Self {
        Self::Memory(Columns::default())
    }
}

/// One run of rows as read for a scan: month, practice and the value summed (integers for
/// items and money, floats for quantity).
#[derive(Default)]
pub(crate) struct Chunk {
    pub month: Vec<u8>,
    pub practice: Vec<u16>,
    pub ints: Vec<i64>,
    pub floats: Vec<f64>,
    bytes: Vec<u8>,
}

impl RowStore {
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Memory(c) => c.len(),
            Self::File(f) => f.rows,
        }
    }

    /// Reads rows `rows` (at most [`CHUNK_ROWS`] at a time is best) into `chunk`.
    pub(crate) fn read(&self, rows: Range<usize>, kind: ValueKind, chunk: &mut Chunk) -> Result<(), IndexError> {
        chunk.month.clear();
        chunk.practice.clear();
        chunk.ints.clear();
        chunk.floats.clear();
        self.check_range(&rows)?;
        match self {
            Self::Memory(c) => {
                chunk.month.extend_from_slice(&c.month[rows.clone()]);
                chunk.practice.extend_from_slice(&c.practice[rows.clone()]);
                match kind {
                    ValueKind::Items => chunk.ints.extend(c.items[rows].iter().map(|&v| i64::from(v))),
                    ValueKind::Quantity => chunk.floats.extend_from_slice(&c.quantity[rows]),
                    ValueKind::ActualCost => chunk.ints.extend_from_slice(&c.actual_cost_e5[rows]),
                    ValueKind::Nic => chunk.ints.extend_from_slice(&c.nic_pence[rows]),
                }
            }
            Self::File(f) => {
                f.fetch(0, &rows, &mut chunk.bytes)?;
                chunk.month.extend_from_slice(&chunk.bytes);
                f.fetch(1, &rows, &mut chunk.bytes)?;
                chunk.practice.extend(words(&chunk.bytes).map(u16::from_le_bytes));
                let column = match kind {
                    ValueKind::Items => 2,
                    ValueKind::Quantity => 3,
                    ValueKind::ActualCost => 4,
                    ValueKind::Nic => 5,
                };
                f.fetch(column, &rows, &mut chunk.bytes)?;
                let bytes = &chunk.bytes;
                match kind {
                    ValueKind::Items => chunk.ints.extend(words(bytes).map(|w| i64::from(i32::from_le_bytes(w)))),
                    ValueKind::Quantity => chunk.floats.extend(words(bytes).map(f64::from_le_bytes)),
                    _ => chunk.ints.extend(words(bytes).map(i64::from_le_bytes)),
                }
            }
        }
        Ok(())
    }

    /// Reads rows `rows` with every column into `out` (an index being extended copies them).
    pub(crate) fn read_rows(&self, rows: Range<usize>, out: &mut Vec<Row>) -> Result<(), IndexError> {
        out.clear();
        self.check_range(&rows)?;
        match self {
            Self::Memory(c) => out.extend(rows.map(|i| c.row(i))),
            Self::File(f) => {
                out.resize(rows.len(), Row::default());
                let mut bytes = Vec::new();
                f.fetch(0, &rows, &mut bytes)?;
                out.iter_mut().zip(&bytes).for_each(|(r, &b)| r.month = b);
                f.fetch(1, &rows, &mut bytes)?;
                out.iter_mut().zip(words(&bytes)).for_each(|(r, w)| r.practice = u16::from_le_bytes(w));
                f.fetch(2, &rows, &mut bytes)?;
                out.iter_mut().zip(words(&bytes)).for_each(|(r, w)| r.items = i32::from_le_bytes(w));
                f.fetch(3, &rows, &mut bytes)?;
                out.iter_mut().zip(words(&bytes)).for_each(|(r, w)| r.quantity = f64::from_le_bytes(w));
                f.fetch(4, &rows, &mut bytes)?;
                out.iter_mut().zip(words(&bytes)).for_each(|(r, w)| r.cost = i64::from_le_bytes(w));
                f.fetch(5, &rows, &mut bytes)?;
                out.iter_mut().zip(words(&bytes)).for_each(|(r, w)| r.nic = i64::from_le_bytes(w));
            }
        }
        Ok(())
    }

    /// Refuses a row range outside the index (a damaged catalogue), rather than reading past it.
    fn check_range(&self, rows: &Range<usize>) -> Result<(), IndexError> {
        if rows.end > self.len() || rows.start > rows.end {
            return Err(IndexError::Query(format!("row range {rows:?} is outside the index ({} rows)", self.len())));
        }
        Ok(())
    }

    /// The month index of one row.
    pub(crate) fn month_at(&self, row: usize) -> Result<u8, IndexError> {
        match self {
            Self::Memory(c) => {
                c.month.get(row).copied().ok_or_else(|| IndexError::Query(format!("row {row} is outside the index")))
            }
            Self::File(f) => {
                let mut b = Vec::new();
                f.fetch(0, &(row..row + 1), &mut b)?;
                b.first().copied().ok_or_else(|| IndexError::Query(format!("row {row} is outside the index")))
            }
        }
    }

    /// The first row of `rows` whose month is at least `month`, for rows whose months ascend
    /// (a code's do). A file is narrowed a byte at a time only while the stretch is longer than
    /// [`SEARCH_WINDOW`]; the rest is read in one go. A measure page's breakdown looks for two
    /// such bounds in every presentation of a set, so each read saved is a system call saved.
    pub(crate) fn first_at_or_after(&self, rows: Range<usize>, month: u8) -> Result<usize, IndexError> {
        self.check_range(&rows)?;
        match self {
            Self::Memory(c) => Ok(rows.start + c.month[rows].partition_point(|m| *m < month)),
            Self::File(f) => {
                let (mut lo, mut hi) = (rows.start, rows.end);
                while hi - lo > SEARCH_WINDOW {
                    let mid = lo + (hi - lo) / 2;
                    if self.month_at(mid)? < month { lo = mid + 1 } else { hi = mid }
                }
                let mut months = Vec::new();
                f.fetch(0, &(lo..hi), &mut months)?;
                Ok(lo + months.partition_point(|m| *m < month))
            }
        }
    }

    /// Every row in memory (for tests and for comparing a file with what was written).
    pub(crate) fn columns(&self) -> Result<Columns, IndexError> {
        match self {
            Self::Memory(c) => Ok(c.clone()),
            Self::File(f) => {
                let mut out = Columns::default();
                let mut bytes = Vec::new();
                let all = 0..f.rows;
                f.fetch(0, &all, &mut bytes)?;
                out.month = bytes.clone();
                f.fetch(1, &all, &mut bytes)?;
                out.practice = words(&bytes).map(u16::from_le_bytes).collect();
                for kind in [ValueKind::Items, ValueKind::Quantity, ValueKind::ActualCost, ValueKind::Nic] {
                    let mut chunk = Chunk::default();
                    self.read(all.clone(), kind, &mut chunk)?;
                    match kind {
                        ValueKind::Items => out.items = chunk.ints.iter().map(|&v| v as i32).collect(),
                        ValueKind::Quantity => out.quantity = chunk.floats,
                        ValueKind::ActualCost => out.actual_cost_e5 = chunk.ints,
                        ValueKind::Nic => out.nic_pence = chunk.ints,
                    }
                }
                Ok(out)
            }
        }
    }
}

/// The `N`-byte values of a column read from the file, each ready for `from_le_bytes`.
fn words<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    bytes.as_chunks::<N>().0.iter().copied()
}

impl FileRows {
    /// Reads rows `rows` of one column into `buf`, from the presentation block, the node block
    /// or both.
    fn fetch(&self, column: usize, rows: &Range<usize>, buf: &mut Vec<u8>) -> Result<(), IndexError> {
        let width = WIDTHS[column];
        buf.clear();
        buf.resize(rows.len() * width, 0);
        let split = rows.end.min(self.base_rows).max(rows.start);
        let (base, nodes) = buf.split_at_mut((split - rows.start) * width);
        let at_base = self.base_offsets[column] + (rows.start * width) as u64;
        let at_nodes = self.node_offsets[column] + (split.saturating_sub(self.base_rows) * width) as u64;
        let io = |source| IndexError::Io { path: self.path.display().to_string(), source };
        self.file.read_exact_at(base, at_base).map_err(io)?;
        self.file.read_exact_at(nodes, at_nodes).map_err(io)
    }
}
/// One row as the index stores it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Row {
    pub month: u8,
    pub practice: u16,
    pub items: i32,
    pub quantity: f64,
    pub cost: i64,
    pub nic: i64,
}

/// Where merged rows go: presentation rows in code order, and node totals.
pub(crate) trait Sink {
    fn base(&mut self, row: &Row) -> Result<(), IndexError>;
    fn node(&mut self, row: &Row) -> Result<(), IndexError>;
}
