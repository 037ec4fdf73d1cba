//! The index on disk: an 8-byte magic, a JSON header (months, practices, organisations,
//! membership, codes, inputs) and the row columns as little-endian arrays, each preceded by its
//! length. Written under a temporary name and renamed, so a reader never sees half a file.

use crate::{IndexError, Member, PrescribingIndex};
use ipmo_domain::YearMonth;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"IPMOIDX\0";
/// Bumped whenever the layout changes; an index of another version is rebuilt.
pub const FORMAT_VERSION: u32 = 2;

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    version: u32,
    months: Vec<YearMonth>,
    practices: Vec<String>,
    orgs: [Vec<String>; 4],
    membership: Vec<Vec<Option<Member>>>,
    codes: Vec<String>,
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
            inputs: index.inputs.clone(),
        };
        let json = serde_json::to_vec(&header)
            .map_err(|e| IndexError::Format { path: tmp.display().to_string(), detail: e.to_string() })?;
        w.write_all(MAGIC).map_err(io(&tmp))?;
        w.write_all(&(json.len() as u64).to_le_bytes()).map_err(io(&tmp))?;
        w.write_all(&json).map_err(io(&tmp))?;
        put(&mut w, &index.code_rows, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        put(&mut w, &index.row_month, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        put(&mut w, &index.row_practice, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        put(&mut w, &index.items, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        put(&mut w, &index.quantity, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        put(&mut w, &index.actual_cost_e5, |v| v.to_le_bytes()).map_err(io(&tmp))?;
        put(&mut w, &index.nic_pence, |v| v.to_le_bytes()).map_err(io(&tmp))?;
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

fn take<T, const N: usize>(
    r: &mut impl Read,
    path: &Path,
    max: u64,
    from: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>, IndexError> {
    let mut len = [0u8; 8];
    r.read_exact(&mut len).map_err(io(path))?;
    let len = u64::from_le_bytes(len);
    if len > max {
        return Err(IndexError::Format {
            path: path.display().to_string(),
            detail: format!("a column claims {len} values"),
        });
    }
    let mut out = Vec::with_capacity(len as usize);
    let mut buf = vec![0u8; 8192 * N];
    let mut left = len as usize;
    while left > 0 {
        let n = left.min(8192);
        r.read_exact(&mut buf[..n * N]).map_err(io(path))?;
        out.extend(buf[..n * N].chunks_exact(N).map(|c| from(c.try_into().expect("chunk of N bytes"))));
        left -= n;
    }
    Ok(out)
}

/// Reads an index written by [`write_index`]; Ok(None) when there is none at `path`.
pub fn read_index(path: &Path) -> Result<Option<PrescribingIndex>, IndexError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let size = file.metadata().map_err(io(path))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let bad = |detail: String| IndexError::Format { path: path.display().to_string(), detail };
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
    let h: Header = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
    if h.version != FORMAT_VERSION {
        return Err(bad(format!("format {} (this ipmo reads {FORMAT_VERSION})", h.version)));
    }
    let index = PrescribingIndex {
        code_rows: take(&mut r, path, size / 8, u64::from_le_bytes)?,
        row_month: take(&mut r, path, size, u8::from_le_bytes)?,
        row_practice: take(&mut r, path, size / 2, u16::from_le_bytes)?,
        items: take(&mut r, path, size / 4, i32::from_le_bytes)?,
        quantity: take(&mut r, path, size / 8, f64::from_le_bytes)?,
        actual_cost_e5: take(&mut r, path, size / 8, i64::from_le_bytes)?,
        nic_pence: take(&mut r, path, size / 8, i64::from_le_bytes)?,
        months: h.months,
        practices: h.practices,
        orgs: h.orgs,
        membership: h.membership,
        codes: h.codes,
        inputs: h.inputs,
    };
    check(&index).map_err(bad)?;
    Ok(Some(index))
}

/// Checks the invariants a query relies on, so a damaged file is an error, not a panic.
fn check(ix: &PrescribingIndex) -> Result<(), String> {
    let rows = ix.row_month.len();
    let same = [ix.row_practice.len(), ix.items.len(), ix.quantity.len(), ix.actual_cost_e5.len(), ix.nic_pence.len()];
    if same.iter().any(|&n| n != rows) {
        return Err("columns of different lengths".into());
    }
    if ix.code_rows.len() != ix.codes.len() + 1
        || ix.code_rows.first() != Some(&0)
        || ix.code_rows.last() != Some(&(rows as u64))
        || ix.code_rows.windows(2).any(|w| w[0] > w[1])
    {
        return Err("code row ranges do not cover the rows".into());
    }
    if ix.codes.windows(2).any(|w| w[0] >= w[1]) {
        return Err("codes are not sorted".into());
    }
    if ix.membership.len() != ix.months.len() || ix.membership.iter().any(|m| m.len() != ix.practices.len()) {
        return Err("membership does not match months and practices".into());
    }
    if ix.row_month.iter().any(|&m| usize::from(m) >= ix.months.len())
        || ix.row_practice.iter().any(|&p| usize::from(p) >= ix.practices.len())
    {
        return Err("a row points outside the months or practices".into());
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
        assert_eq!(read_index(&path).unwrap(), None);
        let ix = small();
        write_index(&ix, &path).unwrap();
        assert_eq!(read_index(&path).unwrap().unwrap(), ix);
        let bytes = std::fs::read(&path).unwrap();
        for cut in [4, 20, bytes.len() - 3] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(read_index(&path).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let n = flipped.len();
        flipped[n - 9 * 8 - 20] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        let _ = read_index(&path); // may or may not notice, but must not panic
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
