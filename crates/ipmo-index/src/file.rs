//! The index on disk, laid out so it can be written in one merge pass and read run by run:
//!
//! ```text
//! magic (8 bytes)
//! presentation rows: six columns (month, practice, items, quantity, cost, NIC), each
//!     `base_rows` little-endian values
//! node totals: the same six columns, each `node_rows` values
//! JSON header (months, practices, organisations, membership, codes, code and node row
//!     ranges, row counts, inputs)
//! header length (8 bytes), magic (8 bytes)
//! ```
//!
//! The row counts of the presentation rows are known before the merge, so each of their columns
//! is written at its place by its own handle; node totals go to scratch files and are appended.
//! Written under a temporary name and renamed, so a reader never sees half a file. Opening an
//! index reads the header only; queries read the rows they need.

use crate::rows::{FileRows, Row, RowStore, Sink, WIDTHS};
use crate::{IndexError, Member, Node, PrescribingIndex};
use ipmo_domain::YearMonth;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"IPMOIDX\0";
/// Bumped whenever the layout changes; an index of another version is rebuilt.
pub const FORMAT_VERSION: u32 = 4;
/// Bytes of one row across the six columns.
const ROW_BYTES: u64 = 31;

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    version: u32,
    base_rows: u64,
    node_rows: u64,
    months: Vec<YearMonth>,
    practices: Vec<String>,
    orgs: [Vec<String>; 4],
    membership: Vec<Vec<Option<Member>>>,
    codes: Vec<String>,
    code_rows: Vec<u64>,
    nodes: Vec<Vec<Node>>,
    inputs: Vec<String>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io { path: path.display().to_string(), source }
}

/// Byte offset of each column of a block of `rows` rows starting at `start`.
fn column_offsets(start: u64, rows: u64) -> [u64; 6] {
    let mut out = [0u64; 6];
    let mut at = start;
    for (k, w) in WIDTHS.iter().enumerate() {
        out[k] = at;
        at += rows * *w as u64;
    }
    out
}

/// Writes an index file while a build merges into it.
pub(crate) struct FileSink {
    path: PathBuf,
    tmp: PathBuf,
    base_rows: u64,
    written: u64,
    /// One handle per presentation-row column, each positioned at its column.
    base: Vec<BufWriter<File>>,
    /// One scratch file per node-total column, and its writer.
    node_paths: Vec<PathBuf>,
    nodes: Vec<BufWriter<File>>,
    node_rows: u64,
}

impl FileSink {
    /// Starts `path` (under a temporary name) for `base_rows` presentation rows.
    pub(crate) fn create(path: &Path, base_rows: u64) -> Result<Self, IndexError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(MAGIC).map_err(io(&tmp))?;
        let offsets = column_offsets(MAGIC.len() as u64, base_rows);
        let mut base = Vec::with_capacity(6);
        for at in offsets {
            let mut h = OpenOptions::new().write(true).open(&tmp).map_err(io(&tmp))?;
            h.seek(SeekFrom::Start(at)).map_err(io(&tmp))?;
            base.push(BufWriter::with_capacity(1 << 20, h));
        }
        let (mut node_paths, mut nodes) = (Vec::with_capacity(6), Vec::with_capacity(6));
        for k in 0..6 {
            let p = path.with_extension(format!("tmp{}.nodes{k}", std::process::id()));
            nodes.push(BufWriter::with_capacity(1 << 20, File::create(&p).map_err(io(&p))?));
            node_paths.push(p);
        }
        Ok(Self { path: path.to_path_buf(), tmp, base_rows, written: 0, base, node_paths, nodes, node_rows: 0 })
    }

    fn put(writers: &mut [BufWriter<File>], r: &Row) -> std::io::Result<()> {
        writers[0].write_all(&r.month.to_le_bytes())?;
        writers[1].write_all(&r.practice.to_le_bytes())?;
        writers[2].write_all(&r.items.to_le_bytes())?;
        writers[3].write_all(&r.quantity.to_le_bytes())?;
        writers[4].write_all(&r.cost.to_le_bytes())?;
        writers[5].write_all(&r.nic.to_le_bytes())
    }

    /// Appends the node totals and the header, and moves the file into place.
    pub(crate) fn finish(mut self, index: &PrescribingIndex) -> Result<(), IndexError> {
        let result = self.complete(index);
        self.clean_up();
        result
    }

    fn complete(&mut self, index: &PrescribingIndex) -> Result<(), IndexError> {
        let tmp = self.tmp.clone();
        if self.written != self.base_rows {
            return Err(IndexError::Format {
                path: tmp.display().to_string(),
                detail: format!("{} presentation rows written, {} expected", self.written, self.base_rows),
            });
        }
        for w in self.base.drain(..) {
            w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        }
        let mut out = OpenOptions::new().append(true).open(&tmp).map_err(io(&tmp))?;
        for (p, w) in self.node_paths.iter().zip(self.nodes.drain(..)) {
            w.into_inner().map_err(|e| io(p)(e.into_error()))?;
            let mut src = File::open(p).map_err(io(p))?;
            std::io::copy(&mut src, &mut out).map_err(io(&tmp))?;
        }
        let header = Header {
            version: FORMAT_VERSION,
            base_rows: self.base_rows,
            node_rows: self.node_rows,
            months: index.months.clone(),
            practices: index.practices.clone(),
            orgs: index.orgs.clone(),
            membership: index.membership.clone(),
            codes: index.codes.clone(),
            code_rows: index.code_rows.clone(),
            nodes: index.nodes.clone(),
            inputs: index.inputs.clone(),
        };
        let json = serde_json::to_vec(&header)
            .map_err(|e| IndexError::Format { path: tmp.display().to_string(), detail: e.to_string() })?;
        out.write_all(&json).map_err(io(&tmp))?;
        out.write_all(&(json.len() as u64).to_le_bytes()).map_err(io(&tmp))?;
        out.write_all(MAGIC).map_err(io(&tmp))?;
        out.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))
    }

    fn clean_up(&mut self) {
        self.base.clear();
        self.nodes.clear();
        for p in &self.node_paths {
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl Sink for FileSink {
    fn base(&mut self, r: &Row) -> Result<(), IndexError> {
        self.written += 1;
        Self::put(&mut self.base, r).map_err(io(&self.tmp))
    }
    fn node(&mut self, r: &Row) -> Result<(), IndexError> {
        self.node_rows += 1;
        Self::put(&mut self.nodes, r).map_err(io(&self.tmp))
    }
}

/// Writes an index held in memory to `path` atomically.
pub fn write_index(index: &PrescribingIndex, path: &Path) -> Result<(), IndexError> {
    let cols = index.columns()?;
    let base_rows = index.code_rows.last().copied().unwrap_or(0);
    let mut sink = FileSink::create(path, base_rows)?;
    let result = (|| {
        for i in 0..cols.len() {
            let row = cols.row(i);
            if (i as u64) < base_rows { sink.base(&row)? } else { sink.node(&row)? }
        }
        Ok(())
    })();
    match result {
        Ok(()) => sink.finish(index),
        Err(e) => {
            sink.clean_up();
            Err(e)
        }
    }
}

/// Opens an index written by [`write_index`] or a file build; Ok(None) when there is none at
/// `path`. Only the header is read into memory; the rows stay in the file until a query reads
/// them.
pub fn read_index(path: &Path) -> Result<Option<PrescribingIndex>, IndexError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let size = file.metadata().map_err(io(path))?.len();
    let bad = |detail: String| IndexError::Format { path: path.display().to_string(), detail };
    if size < 32 {
        return Err(bad("too short".into()));
    }
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, 0).map_err(io(path))?;
    let mut tail = [0u8; 16];
    file.read_exact_at(&mut tail, size - 16).map_err(io(path))?;
    if &head != MAGIC || &tail[8..] != MAGIC {
        return Err(bad("wrong magic bytes (an unfinished or foreign file)".into()));
    }
    let len = u64::from_le_bytes([tail[0], tail[1], tail[2], tail[3], tail[4], tail[5], tail[6], tail[7]]);
    if len > size - 24 {
        return Err(bad("header longer than the file".into()));
    }
    let mut json = vec![0u8; len as usize];
    file.read_exact_at(&mut json, size - 16 - len).map_err(io(path))?;
    let h: Header = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
    if h.version != FORMAT_VERSION {
        return Err(bad(format!("format {} (this ipmo reads {FORMAT_VERSION})", h.version)));
    }
    let rows = h.base_rows.checked_add(h.node_rows).ok_or_else(|| bad("row counts overflow".into()))?;
    let expected = rows.checked_mul(ROW_BYTES).and_then(|b| b.checked_add(8 + len + 16));
    if expected != Some(size) {
        return Err(bad(format!("the file is {size} bytes; its header describes {expected:?}")));
    }
    let base_offsets = column_offsets(8, h.base_rows);
    let node_offsets = column_offsets(8 + h.base_rows * ROW_BYTES, h.node_rows);
    let index = PrescribingIndex {
        months: h.months,
        practices: h.practices,
        orgs: h.orgs,
        membership: h.membership,
        codes: h.codes,
        code_rows: h.code_rows,
        nodes: h.nodes,
        inputs: h.inputs,
        rows: RowStore::File(FileRows {
            file,
            path: path.to_path_buf(),
            rows: rows as usize,
            base_rows: h.base_rows as usize,
            base_offsets,
            node_offsets,
        }),
    };
    if index.code_rows.last() != Some(&h.base_rows) {
        return Err(bad("code row ranges do not cover the presentation rows".into()));
    }
    check(&index).map_err(bad)?;
    Ok(Some(index))
}

/// Checks the invariants a query relies on, so a damaged file is an error, not a panic. (Rows
/// that point outside the months or practices are caught as they are read.)
fn check(ix: &PrescribingIndex) -> Result<(), String> {
    let rows = ix.rows() as u64;
    if ix.code_rows.len() != ix.codes.len() + 1
        || ix.code_rows.first() != Some(&0)
        || ix.code_rows.last().is_none_or(|&last| last > rows)
        || ix.code_rows.windows(2).any(|w| w[0] > w[1])
    {
        return Err("code row ranges do not cover the rows".into());
    }
    if ix.codes.windows(2).any(|w| w[0] >= w[1]) {
        return Err("codes are not sorted".into());
    }
    let nodes_ok = ix.nodes.len() <= crate::NODE_DEPTHS.len()
        && ix.nodes.iter().all(|level| {
            level.windows(2).all(|w| w[0].first < w[1].first)
                && level.iter().all(|n| {
                    n.first < n.end && n.end as usize <= ix.codes.len() && n.row_start <= n.row_end && n.row_end <= rows
                })
        });
    if !nodes_ok {
        return Err("node totals point outside the codes or rows".into());
    }
    if ix.membership.len() != ix.months.len() || ix.membership.iter().any(|m| m.len() != ix.practices.len()) {
        return Err("membership does not match months and practices".into());
    }
    if ix.months.len() > 255 || ix.practices.len() > usize::from(u16::MAX) {
        return Err("more months or practices than the row format holds".into());
    }
    let org_ok =
        ix.membership.iter().flatten().flatten().all(|m| {
            m.orgs.iter().enumerate().all(|(level, &o)| o == crate::NONE || (o as usize) < ix.orgs[level].len())
        });
    if !org_ok {
        return Err("a practice points outside the organisation tables".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IndexBuilder;
    use ipmo_domain::practice::{Amounts, PracticeMonth};

    fn small() -> PrescribingIndex {
        let mut b = IndexBuilder::new();
        let p = PracticeMonth {
            code: "A".into(),
            pcn: None,
            sicbl: "S".into(),
            icb: "I".into(),
            region: "R".into(),
            list_size: Some(10.0),
            star_pu: None,
            age_bands: None,
        };
        b.add_month("2024-01".parse().unwrap(), &[p]).unwrap();
        b.add("A", "0501013K0AAAAAA", &Amounts { items: 3, quantity: 0.5, actual_cost_e5: 7, nic_pence: 9, adq: 0.0 });
        b.finish(vec!["x".into()])
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.idx");
        assert!(read_index(&path).unwrap().is_none());
        let ix = small();
        write_index(&ix, &path).unwrap();
        let back = read_index(&path).unwrap().unwrap();
        assert!(back.file_backed());
        assert_eq!(back.columns().unwrap(), ix.columns().unwrap());
        assert_eq!((&back.codes, &back.code_rows, &back.nodes), (&ix.codes, &ix.code_rows, &ix.nodes));
        assert_eq!((&back.months, &back.practices, &back.membership), (&ix.months, &ix.practices, &ix.membership));
        let bytes = std::fs::read(&path).unwrap();
        for cut in [4, 20, bytes.len() - 3] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(read_index(&path).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let n = flipped.len();
        flipped[n - 9 * 8 - 20] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        // The header may or may not notice; a query over the damaged rows must not panic.
        if let Ok(Some(ix)) = read_index(&path) {
            let a = crate::Analysis {
                numerator: crate::CodeSet::parse("05", "", "n").unwrap(),
                denominator: crate::Denominator::ListSize,
                value: crate::ValueKind::Nic,
                level: crate::Level::Icb,
                org: None,
                from: None,
                to: None,
            };
            let _ = ix.analyse(&a);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("i.idx");
            let mut data = MAGIC.to_vec();
            data.extend(bytes);
            std::fs::write(&path, &data).unwrap();
            let _ = read_index(&path);
        }
    }
}
