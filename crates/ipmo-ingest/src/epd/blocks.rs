//! A file cut into blocks of whole records, so that several threads can parse one file.
//!
//! A block ends at a line end outside any quoted field: the quotes before a candidate line end
//! are counted, and an odd count means the line end sits inside a field. Every block therefore
//! starts at the beginning of a record, which is all a worker needs to parse it on its own.

use crate::IngestError;
use std::io::Read;
use std::sync::mpsc::Receiver;

/// Bytes read per block before it is cut at its last whole record: large enough that handing a
/// block to a worker costs nothing next to parsing it, small enough that a few in flight per
/// worker hold little memory.
pub(super) const BLOCK_BYTES: usize = 4 << 20;

/// The longest run of bytes without a record end outside quotes that is accepted: far beyond any
/// real row, and a bound on the memory one broken quote can take.
const MAX_RECORD_BYTES: usize = 256 << 20;

/// A run of whole records, numbered in file order.
pub(super) struct Block {
    /// Position in the file: 0 for the first block after the header.
    pub(super) index: usize,
    /// The buffer; its first `len` bytes are the records.
    buffer: Vec<u8>,
    len: usize,
}

impl Block {
    /// The records, each with its line end (the last may lack one at the end of the file).
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buffer[..self.len]
    }

    /// The buffer, to be handed back to the reader for another block.
    pub(super) fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }
}

/// Reads a source into [`Block`]s, reusing the buffers of blocks already parsed (a national
/// month is some 1,500 blocks; fresh buffers would be zeroed and faulted in every time).
pub(super) struct BlockReader<R> {
    reader: R,
    file: String,
    carry: Vec<u8>,
    spare: Receiver<Vec<u8>>,
    next_index: usize,
    eof: bool,
}

impl<R: Read> BlockReader<R> {
    /// Blocks from `reader`, after `carry` (bytes already read past the header); buffers sent
    /// back on `spare` are used again.
    pub(super) fn new(reader: R, file: &str, carry: Vec<u8>, spare: Receiver<Vec<u8>>) -> Self {
        Self { reader, file: file.to_string(), carry, spare, next_index: 0, eof: false }
    }

    /// The next block, or `None` at the end of the file.
    pub(super) fn next_block(&mut self) -> Result<Option<Block>, IngestError> {
        let mut buffer = self.spare.try_recv().unwrap_or_default();
        if buffer.len() < self.carry.len() {
            buffer.resize(self.carry.len(), 0);
        }
        buffer[..self.carry.len()].copy_from_slice(&self.carry);
        let mut len = self.carry.len();
        self.carry.clear();
        let mut want = BLOCK_BYTES.max(len);
        loop {
            self.fill(&mut buffer, &mut len, want)?;
            if self.eof {
                if len == 0 {
                    return Ok(None);
                }
                break;
            }
            if let Some(cut) = last_record_end(&buffer[..len]) {
                self.carry.extend_from_slice(&buffer[cut..len]);
                len = cut;
                break;
            }
            if want >= MAX_RECORD_BYTES {
                return Err(IngestError::format(
                    &self.file,
                    format!(
                        "{} MB go by without the end of a row outside quotes: a quote (\") is probably not closed; check the file near block {}",
                        MAX_RECORD_BYTES >> 20,
                        self.next_index + 1
                    ),
                ));
            }
            want *= 2;
        }
        let index = self.next_index;
        self.next_index += 1;
        Ok(Some(Block { index, buffer, len }))
    }

    /// Reads until the buffer holds `want` bytes or the file ends.
    fn fill(&mut self, buffer: &mut Vec<u8>, len: &mut usize, want: usize) -> Result<(), IngestError> {
        if buffer.len() < want {
            buffer.resize(want, 0);
        }
        while *len < want && !self.eof {
            match self.reader.read(&mut buffer[*len..want]) {
                Ok(0) => self.eof = true,
                Ok(n) => *len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The line is the file's, known only once the blocks are back in order.
                Err(e) => return Err(crate::table::io_error(&self.file, 0, e)),
            }
        }
        Ok(())
    }
}

/// The position just after the last line end in `bytes` that is outside quotes, given that
/// `bytes` starts outside quotes. Line ends are `\n` (and so `\r\n`); a file with none is taken
/// to end its lines with a lone `\r`, as some old exports do.
fn last_record_end(bytes: &[u8]) -> Option<usize> {
    let end = if memchr::memchr(b'\n', bytes).is_some() { b'\n' } else { b'\r' };
    let mut quotes = memchr::memchr_iter(b'"', bytes).count();
    let mut upto = bytes.len();
    while let Some(at) = memchr::memrchr(end, &bytes[..upto]) {
        quotes -= memchr::memchr_iter(b'"', &bytes[at..upto]).count();
        if quotes.is_multiple_of(2) {
            return Some(at + 1);
        }
        upto = at;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_after_the_last_line_end_outside_quotes() {
        assert_eq!(last_record_end(b"a,b\nc,d\ne"), Some(8));
        assert_eq!(last_record_end(b"a,b\r\nc,\"x\ny\"\n"), Some(13));
        assert_eq!(last_record_end(b"a,b\nc,\"x\ny"), Some(4));
        assert_eq!(last_record_end(b"a,b\rc,d\re"), Some(8));
        assert_eq!(last_record_end(b"no line end"), None);
        assert_eq!(last_record_end(b"\"open\nquote"), None);
    }

    #[test]
    fn blocks_hold_whole_records_and_join_to_the_file() {
        let mut text = Vec::new();
        for i in 0..200_000 {
            text.extend_from_slice(format!("{i},\"name, with comma\nand line\",{}\r\n", i * 7).as_bytes());
        }
        let (spare, spares) = std::sync::mpsc::channel();
        let mut reader = BlockReader::new(&text[3..], "t.csv", text[..3].to_vec(), spares);
        let mut joined = Vec::new();
        let mut n = 0;
        while let Some(b) = reader.next_block().unwrap() {
            assert_eq!(b.index, n);
            assert!(b.bytes().ends_with(b"\r\n"));
            joined.extend_from_slice(b.bytes());
            spare.send(b.into_buffer()).unwrap();
            n += 1;
        }
        assert!(n > 1, "{n} blocks");
        assert_eq!(joined, text);
    }

    #[test]
    fn an_unclosed_quote_is_an_error_not_unbounded_memory() {
        let mut text = b"a,\"b\n".to_vec();
        text.resize(MAX_RECORD_BYTES + 10, b'x');
        let mut reader = BlockReader::new(text.as_slice(), "t.csv", Vec::new(), std::sync::mpsc::channel().1);
        let e = reader.next_block().err().expect("an error").to_string();
        assert!(e.contains("quote"), "{e}");
    }
}
