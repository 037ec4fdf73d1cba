//! Opening plain, gzip and zip files, with a checksum of the bytes as stored.
//!
//! The checksum (SHA-256, so that `sha256sum` on the download gives the manifest's value) is
//! worked out on a thread of its own, and gzip and zip members are decompressed on another, so
//! that neither stands in the way of the thread that cuts a national month into blocks.

use crate::IngestError;
use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// An input file opened for reading, decompressed if need be.
pub struct SourceFile {
    /// The file name shown in messages (for a zip, `archive.zip:member.csv`).
    pub name: String,
    /// The full path.
    pub path: PathBuf,
    /// Decompressed bytes.
    pub reader: Box<dyn Read + Send>,
    checksum: ChecksumHandle,
}

impl SourceFile {
    /// A source over bytes already in memory (uploads, tests), named `name` in messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Self {
        let checksum = ChecksumHandle(Hasher::Known(hex(Sha256::digest(&bytes).as_slice()), bytes.len() as u64));
        let reader = Box::new(std::io::Cursor::new(bytes));
        SourceFile { name: name.to_string(), path: PathBuf::from(name), reader, checksum }
    }

    /// SHA-256 and size of the bytes read so far from disk; complete once the reader is drained.
    pub fn checksum(&self) -> (String, u64) {
        self.checksum.get()
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
        self.checksum.clone()
    }
}

/// Work for the hashing thread: bytes in file order, or a request for the checksum so far.
enum HashJob {
    Bytes(Vec<u8>),
    Report(std::sync::mpsc::Sender<(String, u64)>),
}

/// Reads a file's checksum once its reader has been drained. The bytes are hashed on a thread
/// of its own, in the order they were read; asking for the checksum waits for the bytes sent
/// before the question.
#[derive(Clone)]
pub struct ChecksumHandle(Hasher);

/// Where a checksum comes from.
#[derive(Clone)]
enum Hasher {
    /// The hashing thread.
    Thread(SyncSender<HashJob>),
    /// Bytes hashed at once, because they were all in memory.
    Known(String, u64),
}

impl ChecksumHandle {
    fn spawn() -> std::io::Result<Self> {
        // A few blocks in flight: enough for the hasher to keep going, bounded in memory.
        let (tx, rx) = sync_channel::<HashJob>(8);
        let run = move || {
            let (mut digest, mut bytes) = (Sha256::new(), 0u64);
            for job in rx {
                match job {
                    HashJob::Bytes(b) => {
                        digest.update(&b);
                        bytes += b.len() as u64;
                    }
                    HashJob::Report(reply) => {
                        let _ = reply.send((hex(digest.clone().finalize().as_slice()), bytes));
                    }
                }
            }
        };
        std::thread::Builder::new().name("ipmo-sha256".into()).spawn(run)?;
        Ok(ChecksumHandle(Hasher::Thread(tx)))
    }

    fn add(&self, bytes: &[u8]) {
        if let Hasher::Thread(tx) = &self.0 {
            // The hasher lives as long as any handle, so a send fails only if it panicked.
            let _ = tx.send(HashJob::Bytes(bytes.to_vec()));
        }
    }

    /// SHA-256 (hex) and byte count of the file as stored.
    pub fn get(&self) -> (String, u64) {
        match &self.0 {
            Hasher::Known(hex, bytes) => (hex.clone(), *bytes),
            Hasher::Thread(hasher) => {
                let (tx, rx) = std::sync::mpsc::channel();
                if hasher.send(HashJob::Report(tx)).is_err() {
                    return (String::new(), 0);
                }
                rx.recv().unwrap_or_default()
            }
        }
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes the bytes read through it, for the manifest's checksum of a file as stored.
pub(crate) struct Hashing<R> {
    inner: R,
    checksum: ChecksumHandle,
}

impl<R: Read> Hashing<R> {
    /// A reader hashing `inner`, and the handle that gives the checksum once it is drained.
    pub(crate) fn new(inner: R) -> std::io::Result<(Self, ChecksumHandle)> {
        let checksum = ChecksumHandle::spawn()?;
        Ok((Hashing { inner, checksum: checksum.clone() }, checksum))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.checksum.add(&buf[..n]);
        }
        Ok(n)
    }
}

/// Bytes produced on another thread (a decompressor), read here in order.
struct Pumped {
    chunks: Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Pumped {
    /// Runs `produce` on a thread of its own, which sends each chunk it makes; the reader sees
    /// the chunks in order, then the end, or the error `produce` returned.
    fn spawn(
        name: &str,
        produce: impl FnOnce(&mut dyn FnMut(Vec<u8>) -> bool) -> std::io::Result<()> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<std::io::Result<Vec<u8>>>(8);
        std::thread::Builder::new().name(name.into()).spawn(move || {
            let result = produce(&mut |chunk| tx.send(Ok(chunk)).is_ok());
            if let Err(e) = result {
                let _ = tx.send(Err(e));
            }
        })?;
        Ok(Pumped { chunks: rx, chunk: Vec::new(), at: 0 })
    }
}

impl Read for Pumped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.chunk.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => (self.chunk, self.at) = (chunk, 0),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads `from` to the end in chunks of 1 MiB, handing each to `send`; stops early when `send`
/// says no one is reading any more.
fn pump_all(mut from: impl Read, send: &mut dyn FnMut(Vec<u8>) -> bool) -> std::io::Result<()> {
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        let n = read_up_to(&mut from, &mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        chunk.truncate(n);
        if !send(chunk) || n < 1 << 20 {
            return Ok(());
        }
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
    let file = File::open(path).map_err(io)?;
    if got >= 2 && magic[..2] == [0x1f, 0x8b] {
        let (hashing, checksum) = Hashing::new(BufReader::with_capacity(1 << 20, file)).map_err(io)?;
        let reader =
            Pumped::spawn("ipmo-gunzip", move |send| pump_all(MultiGzDecoder::new(hashing), send)).map_err(io)?;
        return Ok(SourceFile { name, path: path.to_path_buf(), reader: Box::new(reader), checksum });
    }
    if got == 4 && magic == *b"PK\x03\x04" {
        let member = zip_member(&name, file)?;
        // The archive is hashed as stored, then its member streamed out as it is inflated
        // (the zip crate checks the member's CRC at its end).
        let (mut hashing, checksum) = Hashing::new(File::open(path).map_err(io)?).map_err(io)?;
        let (archive_path, wanted) = (path.to_path_buf(), member.clone());
        let reader = Pumped::spawn("ipmo-unzip", move |send| {
            std::io::copy(&mut hashing, &mut std::io::sink())?;
            let mut archive = zip::ZipArchive::new(File::open(&archive_path)?).map_err(std::io::Error::other)?;
            let entry = archive.by_name(&wanted).map_err(std::io::Error::other)?;
            pump_all(entry, send)
        })
        .map_err(io)?;
        return Ok(SourceFile {
            name: format!("{name}:{member}"),
            path: path.to_path_buf(),
            reader: Box::new(reader),
            checksum,
        });
    }
    let (reader, checksum) = Hashing::new(BufReader::with_capacity(1 << 20, file)).map_err(io)?;
    Ok(SourceFile { name, path: path.to_path_buf(), reader: Box::new(reader), checksum })
}

/// The one CSV member of a zip archive, or an error saying what the archive holds.
fn zip_member(name: &str, file: File) -> Result<String, IngestError> {
    let archive = zip::ZipArchive::new(file)
        .map_err(|e| IngestError::format(name, format!("not a readable zip archive ({e}); download it again")))?;
    let members: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| !n.ends_with('/') && !n.starts_with("__MACOSX"))
        .map(|n| n.to_string())
        .collect();
    let csvs: Vec<&String> = members.iter().filter(|n| n.to_ascii_lowercase().ends_with(".csv")).collect();
    match (csvs.as_slice(), members.as_slice()) {
        ([one], _) => Ok((*one).clone()),
        ([], [one]) => Ok(one.clone()),
        _ => Err(IngestError::format(
            name,
            format!(
                "the zip holds {} files ({}); unzip it and load the CSV files one by one",
                members.len(),
                members.join(", ")
            ),
        )),
    }
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
