//! The index on disk: an 8-byte magic, a JSON header (months, practices, organisations,
//! membership, codes, code and node row ranges, inputs) and then the six row columns as
//! little-endian arrays, each preceded by its length. Written under a temporary name and
//! renamed, so a reader never sees half a file. Reading parses the header only; queries read the
//! rows they need from the file.

use crate::rows::{FileRows, RowStore, WIDTHS};
use crate::{IndexError, Member, Node, PrescribingIndex};
use ipmo_domain::YearMonth;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"IPMOIDX\0";
/// Bumped whenever the layout changes; an index of another version is rebuilt.
pub const FORMAT_VERSION: u32 = 3;

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    version: u32,
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

/// Writes `index` to `path` atomically.
pub fn write_index(index: &PrescribingIndex, path: &Path) -> Result<(), IndexError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let owned;
    let cols = match &index.rows {
        RowStore::Memory(c) => c,
        RowStore::File(_) => {
            owned = index.columns()?;
            &owned
        }
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io(&tmp))?);
        let header = Header {
            version: FORMAT_VERSION,
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
        w.write_all(MAGIC).map_err(io(&tmp))?;
        w.write_all(&(json.len() as u64).to_le_bytes()).map_err(io(&tmp))?;
        w.write_all(&json).map_err(io(&tmp))?;
        put(&mut w, &cols.month, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        put(&mut w, &cols.practice, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        put(&mut w, &cols.items, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        put(&mut w, &cols.quantity, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        put(&mut w, &cols.actual_cost_e5, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        put(&mut w, &cols.nic_pence, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn put<T: Copy, const N: usize>(w: &mut impl Write, v: &[T], bytes: impl Fn(T) -> [u8; N]) -> std::io::Result<()> {
    w.write_all(&(v.len() as u64).to_le_bytes())?;
    for chunk in v.chunks(8192) {
        let mut buf = Vec::with_capacity(chunk.len() * N);
        for &x in chunk {
            buf.extend_from_slice(&bytes(x));
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Opens an index written by [`write_index`]; Ok(None) when there is none at `path`. Only the
/// header is read into memory; the rows stay in the file until a query reads them.
pub fn read_index(path: &Path) -> Result<Option<PrescribingIndex>, IndexError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let size = file.metadata().map_err(io(path))?.len();
    let bad = |detail: String| IndexError::Format { path: path.display().to_string(), detail };
    let mut r = BufReader::with_capacity(1 << 20, &file);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(io(path))?;
    if &magic != MAGIC {
        return Err(bad("wrong magic bytes".into()));
    }
    let mut len = [0u8; 8];
    r.read_exact(&mut len).map_err(io(path))?;
    let len = u64::from_le_bytes(len);
    if len > size {
        return Err(bad("header longer than the file".into()));
    }
    let mut json = vec![0u8; len as usize];
    r.read_exact(&mut json).map_err(io(path))?;
    drop(r);
    let h: Header = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
    if h.version != FORMAT_VERSION {
        return Err(bad(format!("format {} (this ipmo reads {FORMAT_VERSION})", h.version)));
    }
    // Each column: its length, then its values.
    let mut at = 16 + len;
    let mut offsets = [0u64; 6];
    let mut rows = None;
    for (column, width) in WIDTHS.iter().enumerate() {
        let mut n = [0u8; 8];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut n, at).map_err(|_| bad("a column is missing".into()))?;
        let n = u64::from_le_bytes(n);
        if *rows.get_or_insert(n) != n {
            return Err(bad("columns of different lengths".into()));
        }
        offsets[column] = at + 8;
        at = n
            .checked_mul(*width as u64)
            .and_then(|b| b.checked_add(at + 8))
            .ok_or_else(|| bad("a column is too long".into()))?;
    }
    if at != size {
        return Err(bad(format!("the file is {size} bytes; its columns need {at}")));
    }
    let rows = rows.unwrap_or(0) as usize;
    let index = PrescribingIndex {
        months: h.months,
        practices: h.practices,
        orgs: h.orgs,
        membership: h.membership,
        codes: h.codes,
        code_rows: h.code_rows,
        nodes: h.nodes,
        inputs: h.inputs,
        rows: RowStore::File(FileRows { file, path: path.to_path_buf(), rows, offsets }),
    };
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
    use ipmo_measures::compute::{Amounts, PracticeMonth};

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
        };
        let m = b.add_month("2024-01".parse().unwrap(), &[p]).unwrap();
        b.add(
            m,
            "A",
            "0501013K0AAAAAA",
            &Amounts { items: 3, quantity: 0.5, actual_cost_e5: 7, nic_pence: 9, adq: 0.0 },
        );
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
