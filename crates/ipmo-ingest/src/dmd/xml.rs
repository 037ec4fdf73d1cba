//! A streaming reader of dm+d's XML: every file is a tree of records whose fields are leaf
//! elements, so the reader hands over one record at a time and never holds the document.

use crate::IngestError;
use crate::error::clip;
use quick_xml::events::Event;
use std::io::BufRead;

/// Deepest nesting accepted: dm+d files nest four levels; anything far deeper is not dm+d and
/// must not grow the stack without bound.
const MAX_DEPTH: usize = 16;

/// Most fields one record may hold.
const MAX_FIELDS: usize = 1_000;

/// Longest field value kept: the longest dm+d names are a few hundred characters.
const MAX_VALUE: usize = 64 * 1024;

/// One record: an element whose children carry text (`<VMP><VPID>…</VPID><NM>…</NM></VMP>`).
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// The record's element name (`VMP`, `INFO`, `GTINDATA`).
    pub tag: String,
    /// The element enclosing it (`VMPS`, a lookup table's name, `AMPP`).
    pub parent: String,
    /// Its leaf fields in document order.
    pub fields: Vec<(String, String)>,
    /// The enclosing element's leaf fields read so far (the `AMPPID` of a `GTINDATA`).
    pub parent_fields: Vec<(String, String)>,
    /// Line on which the record ended.
    pub line: u64,
}

impl Record {
    /// A field's value, looking in the enclosing element too.
    pub(super) fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .chain(self.parent_fields.iter())
            .find(|(n, _)| n == field)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

#[derive(Default)]
struct Frame {
    name: String,
    text: String,
    fields: Vec<(String, String)>,
    has_children: bool,
}

/// Counts the lines the XML parser consumes, so errors can name one (dm+d files are either
/// pretty-printed or one line of hundreds of kilobytes; the byte offset covers the second).
struct Lines<R> {
    inner: R,
    newlines: u64,
}

impl<R: BufRead> std::io::Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.newlines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Lines<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            self.newlines += memchr::memchr_iter(b'\n', &buf[..amt.min(buf.len())]).count() as u64;
        }
        self.inner.consume(amt);
    }
}

/// Reads every record of `source` (named `file` in messages), calling `visit` for each.
pub(crate) fn read_records(
    file: &str,
    source: impl BufRead,
    mut visit: impl FnMut(&Record) -> Result<(), IngestError>,
) -> Result<u64, IngestError> {
    let mut reader = quick_xml::Reader::from_reader(Lines { inner: source, newlines: 0 });
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Frame> = Vec::new();
    let mut buf = Vec::new();
    let mut records = 0u64;
    let mut saw_root = false;
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            let at = format!("line {} (byte {})", reader.get_ref().newlines + 1, reader.error_position());
            IngestError::format(file, format!("{at}: the XML is malformed ({e}); download the release again"))
        })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = e.name().into_inner().to_string();
                if stack.is_empty() {
                    if saw_root {
                        return Err(IngestError::format(
                            file,
                            format!("{}: a second root element <{name}>; this is not one dm+d file", position(&reader)),
                        ));
                    }
                    saw_root = true;
                }
                if let Some(parent) = stack.last_mut() {
                    parent.has_children = true;
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(IngestError::format(
                        file,
                        format!(
                            "{}: elements nested more than {MAX_DEPTH} deep; this is not a dm+d file",
                            position(&reader)
                        ),
                    ));
                }
                let frame = Frame { name, ..Frame::default() };
                if is_empty {
                    close(file, &mut stack, frame, reader.get_ref().newlines + 1, &mut records, &mut visit)?;
                } else {
                    stack.push(frame);
                }
            }
            Event::End(_) => {
                let frame = stack.pop().expect("quick-xml checks end names against open elements");
                close(file, &mut stack, frame, reader.get_ref().newlines + 1, &mut records, &mut visit)?;
            }
            Event::Text(t) => push_text(file, &mut stack, &t.xml10_content(), &reader)?,
            Event::CData(t) => push_text(file, &mut stack, &t.xml10_content(), &reader)?,
            Event::GeneralRef(r) => {
                let text = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match r.xml10_content().as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => {
                            return Err(IngestError::format(
                                file,
                                format!("{}: unknown entity &{};", position(&reader), clip(other)),
                            ));
                        }
                    },
                };
                push_text(file, &mut stack, &text, &reader)?;
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err(IngestError::format(file, "the file holds no XML element; is it a dm+d release file?"));
    }
    if let Some(open) = stack.last() {
        return Err(IngestError::format(
            file,
            format!("the file ends inside <{}>; download the release again", open.name),
        ));
    }
    Ok(records)
}

fn position<R: BufRead>(reader: &quick_xml::Reader<Lines<R>>) -> String {
    format!("line {} (byte {})", reader.get_ref().newlines + 1, reader.buffer_position())
}

fn push_text<R: BufRead>(
    file: &str,
    stack: &mut [Frame],
    text: &str,
    reader: &quick_xml::Reader<Lines<R>>,
) -> Result<(), IngestError> {
    let Some(top) = stack.last_mut() else { return Ok(()) };
    if top.text.len() + text.len() > MAX_VALUE {
        return Err(IngestError::format(
            file,
            format!(
                "line {}: the text of <{}> is longer than {MAX_VALUE} bytes; this is not a dm+d value",
                reader.get_ref().newlines + 1,
                top.name
            ),
        ));
    }
    top.text.push_str(text);
    Ok(())
}

/// Ends an element: a leaf becomes a field of its parent; an element with leaf fields is a record.
fn close(
    file: &str,
    stack: &mut [Frame],
    frame: Frame,
    line: u64,
    records: &mut u64,
    visit: &mut impl FnMut(&Record) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    if !frame.has_children {
        if let Some(parent) = stack.last_mut() {
            // A dm+d record has a few dozen fields; thousands would make every nested record's
            // copy of its parent's fields quadratic.
            if parent.fields.len() >= MAX_FIELDS {
                return Err(IngestError::format(
                    file,
                    format!(
                        "line {line}: <{}> has more than {MAX_FIELDS} fields; this is not a dm+d record",
                        parent.name
                    ),
                ));
            }
            parent.fields.push((frame.name, frame.text.trim().to_string()));
        }
        return Ok(());
    }
    if frame.fields.is_empty() {
        return Ok(());
    }
    let parent = stack.last();
    let record = Record {
        tag: frame.name,
        parent: parent.map(|p| p.name.clone()).unwrap_or_default(),
        fields: frame.fields,
        parent_fields: parent.map(|p| p.fields.clone()).unwrap_or_default(),
        line,
    };
    *records += 1;
    visit(&record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(xml: &str) -> Result<Vec<Record>, IngestError> {
        let mut out = Vec::new();
        read_records("t.xml", xml.as_bytes(), |r| {
            out.push(Record {
                tag: r.tag.clone(),
                parent: r.parent.clone(),
                fields: r.fields.clone(),
                parent_fields: r.parent_fields.clone(),
                line: r.line,
            });
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn records_at_any_depth_with_their_parent_fields() {
        let xml = "<ROOT><!-- c --><A><X>1</X><Y>a &amp; b&#33;</Y></A>\n<AMPPS><AMPP><AMPPID>9</AMPPID>\
                   <GTINDATA><GTIN>5</GTIN><ENDDT/></GTINDATA></AMPP></AMPPS></ROOT>";
        let r = records(xml).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].tag.as_str(), r[0].parent.as_str(), r[0].get("Y")), ("A", "ROOT", Some("a & b!")));
        assert_eq!(
            (r[1].tag.as_str(), r[1].get("GTIN"), r[1].get("AMPPID"), r[1].get("ENDDT")),
            ("GTINDATA", Some("5"), Some("9"), None)
        );
        assert_eq!((r[2].tag.as_str(), r[2].line), ("AMPP", 2));
    }

    #[test]
    fn malformed_xml_names_the_line() {
        let e = records("<ROOT>\n<A><X>1</Y></A></ROOT>").unwrap_err().to_string();
        assert!(e.starts_with("t.xml: line 2"), "{e}");
        assert!(e.contains("malformed"), "{e}");
        let e = records("<ROOT><A><X>1</X>").unwrap_err().to_string();
        assert!(e.contains("ends inside <A>"), "{e}");
        assert!(records("not xml").unwrap_err().to_string().contains("no XML element"));
        let deep = "<a>".repeat(100);
        assert!(records(&deep).unwrap_err().to_string().contains("nested more than"));
        let wide = format!("<R><P>{}<X><y>1</y></X></P></R>", "<f>1</f>".repeat(MAX_FIELDS + 1));
        assert!(records(&wide).unwrap_err().to_string().contains("has more than 1000 fields"));
    }
}
