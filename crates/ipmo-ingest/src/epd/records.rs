//! The records of one block, split into fields without copying.
//!
//! Nearly every EPD row holds no quote, so its fields are the runs between delimiters, found with
//! `memchr` and read in place. A row with a quote goes through `csv-core`, which gives exactly
//! the `csv` crate's reading of quoted fields (`""` inside quotes, delimiters and line ends in
//! them). Line numbers count every line end (`\n`, `\r\n` or a lone `\r`), including those inside
//! quoted fields, as the rest of the readers do.

/// Walks the records of a block.
pub(super) struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Lines consumed so far within the block.
    lines: u64,
    delimiter: u8,
    core: csv_core::Reader,
    unquoted: Vec<u8>,
    ends: Vec<usize>,
    bounds: Vec<(usize, usize)>,
}

/// One record: its line within the block (1 for the block's first line) and its fields.
pub(super) struct Record<'r> {
    /// Line of the record's first byte, counted from 1 at the start of the block.
    pub(super) line: u64,
    text: &'r [u8],
    bounds: &'r [(usize, usize)],
}

impl<'r> Record<'r> {
    /// Field `i` as bytes, trimmed of ASCII spaces; empty when the row is short.
    pub(super) fn bytes(&self, i: usize) -> &'r [u8] {
        self.bounds.get(i).map_or(&[][..], |&(s, e)| self.text[s..e].trim_ascii())
    }

    /// Field `i` as text, trimmed; `\u{fffd}` when it is not UTF-8.
    pub(super) fn field(&self, i: usize) -> &'r str {
        match self.bounds.get(i) {
            Some(&(s, e)) => std::str::from_utf8(&self.text[s..e]).map(str::trim).unwrap_or("\u{fffd}"),
            None => "",
        }
    }

    /// Field `i` with invalid UTF-8 replaced (names in old Latin-1 files).
    pub(super) fn text(&self, i: usize) -> String {
        self.bounds
            .get(i)
            .map_or_else(String::new, |&(s, e)| String::from_utf8_lossy(&self.text[s..e]).trim().to_string())
    }

    /// Every field, for the rejects file.
    pub(super) fn fields(&self) -> Vec<String> {
        self.bounds.iter().map(|&(s, e)| String::from_utf8_lossy(&self.text[s..e]).into_owned()).collect()
    }

    /// True when every field is empty (the trailing `,,,,` lines of some NHS files).
    pub(super) fn is_blank(&self) -> bool {
        self.bounds.iter().all(|&(s, e)| self.text[s..e].trim_ascii().is_empty())
    }
}

impl<'a> Records<'a> {
    /// The records of `bytes`, whose fields are separated by `delimiter`.
    pub(super) fn new(bytes: &'a [u8], delimiter: u8) -> Self {
        let core = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
        Self {
            bytes,
            pos: 0,
            lines: 0,
            delimiter,
            core,
            unquoted: Vec::new(),
            ends: Vec::new(),
            bounds: Vec::with_capacity(32),
        }
    }

    /// Lines consumed so far (all of them once the walk is over).
    pub(super) fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes consumed so far.
    pub(super) fn position(&self) -> usize {
        self.pos
    }

    /// The next record that is not an empty line, or `None` at the end of the block.
    pub(super) fn next_record(&mut self) -> Option<Record<'_>> {
        let bytes = self.bytes;
        loop {
            let start = self.pos;
            if start >= bytes.len() {
                return None;
            }
            let line = self.lines + 1;
            // The first line end or quote: a quote sends the record the slow way.
            let stop = memchr::memchr3(b'\n', b'\r', b'"', &bytes[start..]).map_or(bytes.len(), |k| start + k);
            self.bounds.clear();
            if bytes.get(stop) != Some(&b'"') {
                let raw = &bytes[start..stop];
                self.pos = stop;
                self.skip_line_end();
                if raw.is_empty() {
                    continue; // an empty line: counted, never a record
                }
                split_at(raw, self.delimiter, &mut self.bounds);
                return Some(Record { line, text: raw, bounds: &self.bounds });
            }
            self.split_quoted(start);
            return Some(Record { line, text: &self.unquoted, bounds: &self.bounds });
        }
    }

    /// Moves past the line end at `pos`, if there is one, and counts it.
    fn skip_line_end(&mut self) {
        match self.bytes.get(self.pos) {
            Some(b'\r') if self.bytes.get(self.pos + 1) == Some(&b'\n') => self.pos += 2,
            Some(b'\r' | b'\n') => self.pos += 1,
            _ => return,
        }
        self.lines += 1;
    }

    /// Reads the record at `start`, which holds a quote, the way the `csv` crate does: quoted
    /// fields may hold delimiters, `""` and line ends. Moves past it and counts its lines.
    fn split_quoted(&mut self, start: usize) {
        use csv_core::ReadRecordResult as R;
        let bytes = self.bytes;
        self.core.reset();
        self.unquoted.clear();
        self.unquoted.resize(1024, 0);
        self.ends.clear();
        self.ends.resize(64, 0);
        let (mut at, mut out, mut nends) = (start, 0, 0);
        loop {
            let (result, nin, nout, n) =
                self.core.read_record(&bytes[at..], &mut self.unquoted[out..], &mut self.ends[nends..]);
            at += nin;
            out += nout;
            nends += n;
            match result {
                // An empty input (the block is used up) tells csv-core the record is over.
                R::InputEmpty => {}
                R::OutputFull => self.unquoted.resize(self.unquoted.len() * 2, 0),
                R::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                R::Record | R::End => break,
            }
        }
        // Lines inside the record's quoted fields, then its own line end (which csv-core may or
        // may not have taken).
        let taken = &bytes[start..at];
        let mut ends_inside = memchr::memchr_iter(b'\n', taken).count();
        ends_inside += memchr::memchr_iter(b'\r', taken).filter(|&k| taken.get(k + 1) != Some(&b'\n')).count();
        let last = taken.last().copied();
        if last == Some(b'\r') && bytes.get(at) == Some(&b'\n') {
            at += 1; // the \n of a \r\n that csv-core stopped in the middle of
        }
        self.pos = at;
        self.lines += ends_inside as u64;
        if !matches!(last, Some(b'\n' | b'\r')) {
            self.skip_line_end();
        }
        self.unquoted.truncate(out);
        let mut from = 0;
        for &end in &self.ends[..nends] {
            self.bounds.push((from, end));
            from = end;
        }
    }
}

/// The bounds of the fields of `raw`, a record without quotes. Delimiters are found eight bytes
/// at a time: each byte equal to the delimiter becomes zero, and a zero byte is told apart
/// without carries between bytes, so every match is exact.
fn split_at(raw: &[u8], delimiter: u8, bounds: &mut Vec<(usize, usize)>) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = 0x0101_0101_0101_0101 * u64::from(delimiter);
    let mut from = 0;
    let words = raw.chunks_exact(8);
    let tail = words.remainder();
    for (k, word) in words.enumerate() {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ pattern;
        let mut zeros = !(((x & LOW7) + LOW7) | x | LOW7);
        while zeros != 0 {
            let at = 8 * k + (zeros.trailing_zeros() / 8) as usize;
            bounds.push((from, at));
            from = at + 1;
            zeros &= zeros - 1;
        }
    }
    let base = raw.len() - tail.len();
    for (k, &b) in tail.iter().enumerate() {
        if b == delimiter {
            bounds.push((from, base + k));
            from = base + k + 1;
        }
    }
    bounds.push((from, raw.len()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(text: &str) -> Vec<(u64, Vec<String>)> {
        let mut r = Records::new(text.as_bytes(), b',');
        let mut out = Vec::new();
        while let Some(rec) = r.next_record() {
            out.push((rec.line, rec.fields()));
        }
        out
    }

    fn row(line: u64, fields: &[&str]) -> (u64, Vec<String>) {
        (line, fields.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn lines_count_every_ending_and_blank_lines_are_skipped() {
        assert_eq!(walk("a,b\nc,d\n"), [row(1, &["a", "b"]), row(2, &["c", "d"])]);
        assert_eq!(walk("a,b\r\n\r\nc,d"), [row(1, &["a", "b"]), row(3, &["c", "d"])]);
        assert_eq!(walk("a\rb\r"), [row(1, &["a"]), row(2, &["b"])]);
        let mut r = Records::new(b"a\n\nb\n", b',');
        while r.next_record().is_some() {}
        assert_eq!(r.lines(), 3);
    }

    #[test]
    fn quoted_fields_read_as_the_csv_crate_reads_them() {
        let text = "1,\"x, \"\"y\"\"\r\nz\",2\r\n3,,\"\"\n";
        assert_eq!(walk(text), [row(1, &["1", "x, \"y\"\r\nz", "2"]), row(3, &["3", "", ""])]);
        let mut csv = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
        let fields: Vec<Vec<String>> = csv.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
        assert_eq!(fields, walk(text).into_iter().map(|(_, f)| f).collect::<Vec<_>>());
    }

    proptest::proptest! {
        /// Splitting eight bytes at a time finds exactly the delimiters a byte-by-byte search
        /// finds, whatever sits beside them.
        #[test]
        fn word_splitting_finds_every_delimiter(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            let mut bounds = Vec::new();
            split_at(&raw, b',', &mut bounds);
            let fields: Vec<&[u8]> = bounds.iter().map(|&(s, e)| &raw[s..e]).collect();
            let expected: Vec<&[u8]> = raw.split(|&b| b == b',').collect();
            proptest::prop_assert_eq!(fields, expected);
        }
    }

    #[test]
    fn fields_are_trimmed_and_short_rows_read_as_empty() {
        let mut r = Records::new(b" a ,b\n", b',');
        let rec = r.next_record().unwrap();
        assert_eq!((rec.field(0), rec.bytes(0), rec.field(5), rec.is_blank()), ("a", &b"a"[..], "", false));
        let mut r = Records::new(b" , ,\n", b',');
        assert!(r.next_record().unwrap().is_blank());
    }
}
