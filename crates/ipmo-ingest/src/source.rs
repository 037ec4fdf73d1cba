//! Opening plain, gzip and zip files, with a checksum of the bytes as stored.

use crate::IngestError;
use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// An input file opened for reading, decompressed if need be.
pub struct SourceFile {
    /// The file name shown in messages (for a zip, `archive.zip:member.csv`).
    pub name: String,
    /// The full path.
    pub path: PathBuf,
    /// Decompressed bytes.
    pub reader: Box<dyn Read + Send>,
    digest: Arc<Mutex<(Sha256, u64)>>,
}

impl SourceFile {
    /// A source over bytes already in memory (uploads, tests), named `name` in messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Self {
        let digest = Arc::new(Mutex::new((Sha256::new(), 0)));
        let reader = Box::new(Hashing { inner: std::io::Cursor::new(bytes), digest: digest.clone() });
        SourceFile { name: name.to_string(), path: PathBuf::from(name), reader, digest }
    }

    /// SHA-256 and size of the bytes read so far from disk; complete once the reader is drained.
    pub fn checksum(&self) -> (String, u64) {
        checksum_of(&self.digest)
    }

    /// The whole file, for formats read at once (a workbook, a web page), refusing one larger
    /// than `max` bytes: `what` says what the file should be, for the message.
    pub fn read_all(&mut self, max: u64, what: &str) -> Result<Vec<u8>, IngestError> {
        let mut bytes = Vec::new();
        (&mut self.reader)
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| IngestError::Io { file: self.name.clone(), source: e })?;
        if bytes.len() as u64 > max {
            return Err(IngestError::format(
                &self.name,
                format!("the file is larger than {} MB, far more than {what}; is it the right file?", max >> 20),
            ));
        }
        Ok(bytes)
    }

    /// A handle that can read the checksum after the reader has been moved elsewhere.
    pub fn checksum_handle(&self) -> ChecksumHandle {
        ChecksumHandle(self.digest.clone())
    }
}

/// Reads a file's checksum once its reader has been drained.
#[derive(Clone)]
pub struct ChecksumHandle(Arc<Mutex<(Sha256, u64)>>);

impl ChecksumHandle {
    /// SHA-256 (hex) and byte count of the file as stored.
    pub fn get(&self) -> (String, u64) {
        checksum_of(&self.0)
    }
}

fn checksum_of(d: &Arc<Mutex<(Sha256, u64)>>) -> (String, u64) {
    let guard = d.lock().unwrap_or_else(|e| e.into_inner());
    let hex = guard.0.clone().finalize().iter().map(|b| format!("{b:02x}")).collect();
    (hex, guard.1)
}

/// Hashes the bytes read through it, for the manifest's checksum of a file as stored.
pub(crate) struct Hashing<R> {
    inner: R,
    digest: Arc<Mutex<(Sha256, u64)>>,
}

impl<R: Read> Hashing<R> {
    /// A reader hashing `inner`, and the handle that gives the checksum once it is drained.
    pub(crate) fn new(inner: R) -> (Self, ChecksumHandle) {
        let digest = Arc::new(Mutex::new((Sha256::new(), 0u64)));
        (Hashing { inner, digest: digest.clone() }, ChecksumHandle(digest))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut g = self.digest.lock().unwrap_or_else(|e| e.into_inner());
        g.0.update(&buf[..n]);
        g.1 += n as u64;
        Ok(n)
    }
}

/// Opens a file, recognising gzip and zip by their first bytes rather than by the extension (NHS
/// downloads are often renamed). A zip must hold exactly one CSV member.
pub fn open_source(path: &Path) -> Result<SourceFile, IngestError> {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let io = |source| IngestError::Io { file: name.clone(), source };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut file, &mut magic).map_err(io)?;
    let digest = Arc::new(Mutex::new((Sha256::new(), 0u64)));
    let file = File::open(path).map_err(io)?;
    if got >= 2 && magic[..2] == [0x1f, 0x8b] {
        let hashing = Hashing { inner: BufReader::with_capacity(1 << 20, file), digest: digest.clone() };
        let reader = Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(hashing)));
        return Ok(SourceFile { name, path: path.to_path_buf(), reader, digest });
    }
    if got == 4 && magic == *b"PK\x03\x04" {
        // Hash the archive as stored, then read its single CSV member.
        let mut hashing = Hashing { inner: BufReader::new(file), digest: digest.clone() };
        std::io::copy(&mut hashing, &mut std::io::sink()).map_err(io)?;
        let file = File::open(path).map_err(io)?;
        let mut archive = zip::ZipArchive::new(file)
            .map_err(|e| IngestError::format(&name, format!("not a readable zip archive ({e}); download it again")))?;
        let members: Vec<String> = archive
            .file_names()
            .filter_map(Result::ok)
            .filter(|n| !n.ends_with('/') && !n.starts_with("__MACOSX"))
            .map(|n| n.to_string())
            .collect();
        let csvs: Vec<&String> = members.iter().filter(|n| n.to_ascii_lowercase().ends_with(".csv")).collect();
        let member = match (csvs.as_slice(), members.as_slice()) {
            ([one], _) => (*one).clone(),
            ([], [one]) => one.clone(),
            _ => {
                return Err(IngestError::format(
                    &name,
                    format!(
                        "the zip holds {} files ({}); unzip it and load the CSV files one by one",
                        members.len(),
                        members.join(", ")
                    ),
                ));
            }
        };
        let mut entry = archive
            .by_name(&member)
            .map_err(|e| IngestError::format(&name, format!("cannot read {member} in the zip ({e})")))?;
        // Members are decompressed into memory: zip entries need the archive borrowed, and the
        // NHS zips IPMO reads are single monthly files that fit comfortably.
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 33) as usize);
        entry.read_to_end(&mut bytes).map_err(|e| IngestError::Corrupt {
            file: format!("{name}:{member}"),
            line: 0,
            detail: e.to_string(),
        })?;
        return Ok(SourceFile {
            name: format!("{name}:{member}"),
            path: path.to_path_buf(),
            reader: Box::new(std::io::Cursor::new(bytes)),
            digest,
        });
    }
    let reader = Box::new(Hashing { inner: BufReader::with_capacity(1 << 20, file), digest: digest.clone() });
    Ok(SourceFile { name, path: path.to_path_buf(), reader, digest })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
