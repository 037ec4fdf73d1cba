//! The report as an A4 PDF, typeset by typst from a template. Typst sees a small virtual folder
//! and nothing else: `main.typ` (the template), `report.json` (the document, see
//! [`Document::to_json`]) and `figure-N.svg` (the charts). It cannot read the disk or the network,
//! and the fonts are the two embedded here, so the same document always gives the same pages.

use crate::{Document, ReportError};
use std::collections::HashMap;
use std::sync::LazyLock;
use typst::diag::{FileError, FileResult, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};

/// The built-in board template.
pub const BOARD_TEMPLATE: &str = include_str!("board.typ");

/// DejaVu Sans (see `fonts/LICENSE`): embedded so that a report looks the same on any machine.
static FONT_DATA: [&[u8]; 2] =
    [include_bytes!("../fonts/DejaVuSans.ttf"), include_bytes!("../fonts/DejaVuSans-Bold.ttf")];

/// The fonts and typst's standard library, made once per process and shared by every report.
struct Shared {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

static SHARED: LazyLock<Shared> = LazyLock::new(|| {
    let fonts: Vec<Font> = FONT_DATA.iter().flat_map(|data| Font::iter(Bytes::new(*data))).collect();
    Shared { library: LazyHash::new(Library::default()), book: LazyHash::new(FontBook::from_fonts(&fonts)), fonts }
});

/// One report's virtual folder.
struct ReportWorld {
    main: FileId,
    source: Source,
    files: HashMap<FileId, Bytes>,
}

fn file_id(name: &str) -> FileId {
    let path = VirtualPath::new(name).unwrap_or_else(|_| VirtualPath::new("invalid").expect("a plain name is a path"));
    RootedPath::new(VirtualRoot::Project, path).intern()
}

impl World for ReportWorld {
    fn library(&self) -> &LazyHash<Library> {
        &SHARED.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &SHARED.book
    }

    fn main(&self) -> FileId {
        self.main
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main { Ok(self.source.clone()) } else { Err(FileError::NotSource) }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.main {
            return Ok(Bytes::from_string(self.source.clone()));
        }
        self.files.get(&id).cloned().ok_or_else(|| FileError::NotFound(id.vpath().get_without_slash().into()))
    }

    fn font(&self, index: usize) -> Option<Font> {
        SHARED.fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        // A template that asks for today's date would make the bytes depend on the day.
        None
    }
}

/// A chart ready for typst: the styling the dashboard's stylesheet gives it, written into the
/// SVG (typst has no stylesheet), with the embedded font named.
fn styled_svg(svg: &str) -> String {
    const STYLE: &str = "<style>text{font-family:'DejaVu Sans'}.tick{font-size:13px;fill:#4c6272}.axis-title{font-size:13px;font-weight:bold;fill:#212b32}</style>";
    match svg.find('>') {
        Some(end) => format!("{}{STYLE}{}", &svg[..=end], &svg[end + 1..]),
        None => svg.to_string(),
    }
}

/// What typst said was wrong, with the template line when it points at one.
fn diagnostics(world: &ReportWorld, errors: &[SourceDiagnostic]) -> String {
    errors
        .iter()
        .map(|e| {
            let line = e
                .span
                .id()
                .filter(|id| *id == world.main)
                .and_then(|_| typst::WorldExt::range(world, e.span))
                .and_then(|range| world.source.lines().byte_to_line(range.start))
                .map(|l| format!("template line {}: ", l + 1))
                .unwrap_or_default();
            let hints: String = e.hints.iter().map(|h| format!(" (hint: {})", h.v)).collect();
            format!("{line}{}{hints}", e.message)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The PDF of `doc` typeset with `template` (None: [`BOARD_TEMPLATE`]).
pub(crate) fn render(doc: &Document, template: Option<&str>, timestamp: [i32; 6]) -> Result<Vec<u8>, ReportError> {
    let main = file_id("main.typ");
    let mut files = HashMap::new();
    let json = serde_json::to_vec_pretty(&doc.to_json()).map_err(|e| ReportError::Template(e.to_string()))?;
    files.insert(file_id("report.json"), Bytes::new(json));
    for (name, figure) in doc.figures() {
        files.insert(file_id(&name), Bytes::from_string(styled_svg(&figure.svg)));
    }
    let world = ReportWorld { main, source: Source::new(main, template.unwrap_or(BOARD_TEMPLATE).to_string()), files };
    let pages: typst_layout::PagedDocument =
        typst::compile(&world).output.map_err(|errors| ReportError::Template(diagnostics(&world, &errors)))?;
    let [y, mo, d, h, mi, s] = timestamp;
    let datetime = Datetime::from_ymd_hms(y, mo as u8, d as u8, h as u8, mi as u8, s as u8)
        .ok_or_else(|| ReportError::Pdf(format!("{timestamp:?} is not a date and time")))?;
    let options = typst_pdf::PdfOptions {
        ident: typst::foundations::Smart::Custom(format!("ipmo-report-{}-{}", doc.organisation, doc.period)),
        timestamp: Some(typst_pdf::Timestamp::new_utc(datetime)),
        ..Default::default()
    };
    let pdf = typst_pdf::pdf(&pages, &options).map_err(|errors| ReportError::Pdf(diagnostics(&world, &errors)));
    // Typst memoises across compilations; a batch of reports (every ICB) would otherwise keep
    // each one's layout. Entries unused for a few compilations are dropped.
    typst::comemo::evict(4);
    pdf
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHEN: [i32; 6] = [2026, 12, 1, 10, 0, 0];

    #[test]
    fn the_sample_typesets_to_a_pdf_and_again_to_the_same_bytes() {
        let doc = crate::tests::sample();
        let a = render(&doc, None, WHEN).expect("the board template typesets");
        assert!(a.starts_with(b"%PDF-"), "a PDF");
        assert!(a.len() > 10_000, "with its fonts embedded: {} bytes", a.len());
        assert_eq!(a, render(&doc, None, WHEN).unwrap(), "the same document gives the same bytes");
    }

    #[test]
    fn a_custom_template_reads_the_same_json_and_figures() {
        let own = "#let d = json(\"report.json\")\n= #d.organisation\n#for (i, s) in d.sections.enumerate() [#s.title]\n#image(\"figure-2.svg\")\n";
        let pdf = render(&crate::tests::sample(), Some(own), WHEN).expect("a template of one's own typesets");
        assert!(pdf.starts_with(b"%PDF-"));
        assert_ne!(pdf, render(&crate::tests::sample(), None, WHEN).unwrap());
    }

    #[test]
    fn a_broken_template_is_an_error_naming_its_line() {
        let e = render(&crate::tests::sample(), Some("= Fine\n#let x = (\n"), WHEN).unwrap_err().to_string();
        assert!(e.contains("template line 2"), "{e}");
        let e = render(&crate::tests::sample(), Some("#image(\"/etc/passwd\")"), WHEN).unwrap_err().to_string();
        assert!(
            e.contains("not found") || e.contains("NotFound") || e.contains("file"),
            "the disk is out of reach: {e}"
        );
    }

    #[test]
    fn charts_get_their_style_inside_the_svg() {
        assert_eq!(
            styled_svg(r#"<svg a="1"><text/></svg>"#),
            r#"<svg a="1"><style>text{font-family:'DejaVu Sans'}.tick{font-size:13px;fill:#4c6272}.axis-title{font-size:13px;font-weight:bold;fill:#212b32}</style><text/></svg>"#
        );
    }
}
