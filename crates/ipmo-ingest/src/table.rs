//! A CSV file with a header, read by column name.

use crate::error::RejectLog;
use crate::{IngestError, RowError, SourceFile};
use csv::ByteRecord;
use std::io::{BufRead, BufReader, Read};

/// Normalises a header cell so that `BNF Chapter Code`, `BNF_CHAPTER_CODE` and ` bnf chapter code `
/// compare equal: trimmed, BOM removed, upper case, runs of spaces, hyphens and dots as one `_`.
pub fn normalise_header(h: &str) -> String {
    let h = h.trim_start_matches('\u{feff}').trim();
    let mut out = String::with_capacity(h.len());
    let mut gap = false;
    for c in h.chars() {
        if c == ' ' || c == '-' || c == '.' || c == '_' {
            gap = true;
        } else {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_uppercase());
        }
    }
    out
}

/// A file's header row, as written and normalised, for finding columns by name.
#[derive(Clone, Copy)]
pub(crate) struct Header<'a> {
    /// File name for messages.
    pub(crate) file: &'a str,
    /// Header cells as written.
    pub(crate) raw: &'a [String],
    /// Header cells normalised with [`normalise_header`].
    pub(crate) normalised: &'a [String],
}

impl Header<'_> {
    /// Index of the first header matching any alias (aliases are given normalised).
    pub(crate) fn find(&self, aliases: &[&str]) -> Option<usize> {
        aliases.iter().find_map(|a| self.normalised.iter().position(|h| h == a))
    }

    /// Like [`Header::find`], but a missing column is an error naming what was accepted.
    pub(crate) fn require(&self, column: &str, aliases: &[&str]) -> Result<usize, IngestError> {
        self.find(aliases).ok_or_else(|| IngestError::MissingColumn {
            file: self.file.to_string(),
            column: column.to_string(),
            accepted: aliases.join(", "),
            found: crate::error::clip_message(&self.raw.join(",")),
        })
    }
}

/// A delimited file opened for reading by header name.
pub struct Table {
    /// File name for messages.
    pub file: String,
    reader: csv::Reader<Box<dyn Read + Send>>,
    /// Header cells as written.
    pub raw_headers: Vec<String>,
    /// Header cells normalised with [`normalise_header`].
    pub headers: Vec<String>,
    record: ByteRecord,
    line: u64,
    pending_first: bool,
    blank_lines: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
}

impl Table {
    /// Opens a source, sniffing `,` or `;` from the first line and reading the header.
    pub fn open(source: SourceFile) -> Result<Self, IngestError> {
        Self::open_with(source, true)
    }

    /// Opens a source whose first line may or may not be a header; with `has_headers` false the
    /// headers are named `1`, `2`, … so positional formats (ODS `epraccur`) use the same reader.
    pub fn open_with(source: SourceFile, has_headers: bool) -> Result<Self, IngestError> {
        let file = source.name.clone();
        let mut buffered = BufReader::with_capacity(1 << 20, source.reader);
        let first = buffered.fill_buf().map_err(|e| io_error(&file, 1, e))?;
        let bom = first.starts_with(&[0xef, 0xbb, 0xbf]);
        let delimiter = sniff_delimiter(first);
        if bom {
            buffered.consume(3);
        }
        // csv counts lines by `\n` only; turning CRLF and bare CR into LF first keeps the line
        // numbers in error messages right for files from every era.
        let blank_lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let boxed: Box<dyn Read + Send> = Box::new(LineFeeds {
            inner: buffered,
            pending_cr: false,
            offset: 0,
            last_was_lf: true,
            blank_lines: blank_lines.clone(),
        });
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(boxed);
        let mut table = Self {
            file,
            reader: {
                // replaced below
                csv::ReaderBuilder::new().from_reader(Box::new(std::io::empty()))
            },
            raw_headers: Vec::new(),
            headers: Vec::new(),
            record: ByteRecord::new(),
            line: 0,
            pending_first: false,
            blank_lines,
        };
        let mut first_record = ByteRecord::new();
        let got = reader.read_byte_record(&mut first_record).map_err(|e| csv_error(&table.file, 1, e))?;
        if !got {
            return Err(IngestError::format(&table.file, "the file is empty; check that the download finished"));
        }
        table.reader = reader;
        if has_headers {
            table.raw_headers = first_record.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect();
            table.headers = table.raw_headers.iter().map(|h| normalise_header(h)).collect();
            table.record = first_record;
            table.line = 1;
        } else {
            table.raw_headers = (1..=first_record.len()).map(|i| i.to_string()).collect();
            table.headers = table.raw_headers.clone();
            table.record = first_record;
            table.line = 0;
            table.pending_first = true;
        }
        Ok(table)
    }

    /// Declares, after looking at it, that the first line was data and not a header (ODS
    /// `epraccur` has none): it is returned by the next call to [`Table::advance`] and columns are
    /// named by position. Only valid before the first `advance`.
    pub fn first_line_is_data(&mut self) {
        if self.line == 1 && !self.pending_first {
            self.raw_headers = (1..=self.record.len()).map(|i| i.to_string()).collect();
            self.headers = self.raw_headers.clone();
            self.line = 0;
            self.pending_first = true;
        }
    }

    /// Takes the current record as the header (for files that open with a title or preamble
    /// before their header row); line numbers keep counting from the file's start.
    pub fn use_current_as_header(&mut self) {
        self.raw_headers = self.record.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect();
        self.headers = self.raw_headers.iter().map(|h| normalise_header(h)).collect();
    }

    /// Index of the first header matching any alias (aliases are given normalised).
    pub fn find(&self, aliases: &[&str]) -> Option<usize> {
        self.header().find(aliases)
    }

    /// Like [`Table::find`], but a missing column is an error naming what was accepted.
    pub fn require(&self, column: &str, aliases: &[&str]) -> Result<usize, IngestError> {
        self.header().require(column, aliases)
    }

    /// The header, for code that finds columns without holding the table.
    pub(crate) fn header(&self) -> Header<'_> {
        Header { file: &self.file, raw: &self.raw_headers, normalised: &self.headers }
    }

    /// Reads the next record; false at the end of the file.
    pub fn advance(&mut self) -> Result<bool, IngestError> {
        if std::mem::take(&mut self.pending_first) {
            self.line = self.record.position().map_or(1, |p| p.line());
            return Ok(true);
        }
        let got =
            self.reader.read_byte_record(&mut self.record).map_err(|e| csv_error(&self.file, self.line + 1, e))?;
        if got {
            self.line = match self.record.position() {
                // csv gives the position before any blank lines it skipped; add them back.
                Some(p) => {
                    let blanks = self.blank_lines.lock().unwrap_or_else(|e| e.into_inner());
                    let mut k = 0;
                    while blanks.binary_search(&(p.byte() + k)).is_ok() {
                        k += 1;
                    }
                    p.line() + k
                }
                None => self.line + 1,
            };
        }
        Ok(got)
    }

    /// The current record's line number (1-based, header included).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Field `i` of the current record, trimmed; empty when the row is short.
    pub fn field(&self, i: usize) -> &str {
        match self.record.get(i) {
            Some(b) => std::str::from_utf8(b).map(str::trim).unwrap_or("\u{fffd}"),
            None => "",
        }
    }

    /// Field `i` as raw bytes, trimmed of ASCII spaces.
    pub fn bytes(&self, i: usize) -> &[u8] {
        self.record.get(i).map_or(&[][..], |b| b.trim_ascii())
    }

    /// Field `i` with invalid UTF-8 replaced (for names in old Latin-1 files).
    pub fn text(&self, i: usize) -> String {
        self.record.get(i).map_or_else(String::new, |b| String::from_utf8_lossy(b).trim().to_string())
    }

    /// How many fields the current record has.
    pub fn width(&self) -> usize {
        self.record.len()
    }

    /// True when every field of the current record is empty (trailing `,,,,` lines in NHS files).
    pub fn is_blank(&self) -> bool {
        self.record.iter().all(|f| f.trim_ascii().is_empty())
    }

    /// An error about column `i` of the current record, its value cut short if long.
    pub fn error(&self, i: usize, message: impl Into<String>) -> RowError {
        crate::error::row_error(&self.file, self.line, &self.raw_headers, i, self.field(i), message.into())
    }

    /// Passes a bad row to the reject log, with its fields for the rejects file.
    pub fn reject(&self, log: &mut RejectLog, error: RowError) -> Result<(), IngestError> {
        let fields = self.record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        log.reject(error, fields)
    }
}

/// The delimiter of a file whose first bytes are `first`: `;` or a tab where they outnumber
/// commas on the first line that is neither blank nor a `#` comment (the BNF change lists open
/// with comment lines), else `,`.
pub(crate) fn sniff_delimiter(first: &[u8]) -> u8 {
    let sample = first
        .split(|&c| c == b'\n' || c == b'\r')
        .find(|l| !l.trim_ascii().is_empty() && !l.starts_with(b"#") && !l.starts_with(b"\xef\xbb\xbf#"))
        .unwrap_or(&[]);
    let commas = sample.iter().filter(|&&c| c == b',').count();
    let semis = sample.iter().filter(|&&c| c == b';').count();
    let tabs = sample.iter().filter(|&&c| c == b'\t').count();
    if semis > commas && semis >= tabs {
        b';'
    } else if tabs > commas {
        b'\t'
    } else {
        b','
    }
}

/// Rewrites `\r\n` and lone `\r` as `\n`, noting where blank lines are.
struct LineFeeds<R> {
    inner: R,
    pending_cr: bool,
    offset: u64,
    last_was_lf: bool,
    blank_lines: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
}

impl<R: Read> Read for LineFeeds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let mut start = 0;
            if self.pending_cr {
                self.pending_cr = false;
                if buf[0] == b'\n' {
                    start = 1;
                }
            }
            let mut out = 0;
            let mut i = start;
            while let Some(k) = memchr::memchr(b'\r', &buf[i..n]) {
                let cr = i + k;
                buf.copy_within(i..cr, out);
                out += cr - i;
                buf[out] = b'\n';
                out += 1;
                i = cr + 1;
                if i == n {
                    self.pending_cr = true;
                } else if buf[i] == b'\n' {
                    i += 1;
                }
            }
            buf.copy_within(i..n, out);
            out += n - i;
            if out > 0 {
                let mut from = 0;
                let mut blanks = Vec::new();
                while let Some(k) = memchr::memchr(b'\n', &buf[from..out]) {
                    let at = from + k;
                    let after_lf = if at == 0 { self.last_was_lf } else { buf[at - 1] == b'\n' };
                    if after_lf {
                        blanks.push(self.offset + at as u64);
                    }
                    from = at + 1;
                }
                if !blanks.is_empty() {
                    self.blank_lines.lock().unwrap_or_else(|e| e.into_inner()).extend(blanks);
                }
                self.last_was_lf = buf[out - 1] == b'\n';
                self.offset += out as u64;
                return Ok(out);
            }
        }
    }
}

/// What a failed read means: damaged compressed data (named with the last line read before it),
/// or the disk.
pub(crate) fn io_error(file: &str, line: u64, e: std::io::Error) -> IngestError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
            IngestError::Corrupt { file: file.to_string(), line, detail: e.to_string() }
        }
        _ => IngestError::Io { file: file.to_string(), source: e },
    }
}

fn csv_error(file: &str, line: u64, e: csv::Error) -> IngestError {
    let line = e.position().map_or(line, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io_error(file, line, io),
        other => IngestError::Corrupt { file: file.to_string(), line, detail: format!("{other:?}") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(body: &str) -> Vec<u64> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, body).unwrap();
        let mut t = Table::open(crate::open_source(&p).unwrap()).unwrap();
        let mut out = vec![t.line()];
        while t.advance().unwrap() {
            out.push(t.line());
        }
        out
    }

    #[test]
    fn line_numbers_count_every_line_ending_style() {
        assert_eq!(lines_of("h\na\nb\n"), vec![1, 2, 3]);
        assert_eq!(lines_of("h\r\na\r\nb\r\n"), vec![1, 2, 3]);
        assert_eq!(lines_of("h\na\r\nb\r\n"), vec![1, 2, 3]);
        assert_eq!(lines_of("h\ra\rb\r"), vec![1, 2, 3]);
        assert_eq!(lines_of("h\n\na\nb"), vec![1, 3, 4]);
        assert_eq!(lines_of("h\r\n\"x\ry\",1\r\nb"), vec![1, 2, 4]);
    }

    #[test]
    fn headers_normalise() {
        assert_eq!(normalise_header("\u{feff} BNF Chapter Code "), "BNF_CHAPTER_CODE");
        assert_eq!(normalise_header("ACT COST   "), "ACT_COST");
        assert_eq!(normalise_header("Male 0-4"), "MALE_0_4");
    }
}
