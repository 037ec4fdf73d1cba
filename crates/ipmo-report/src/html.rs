//! The report as HTML: [`body`] is the report itself (the web page puts it inside the site's
//! layout), and [`standalone`] one file with its style and charts inline, which opens anywhere
//! without a server and prints on A4 with the organisation, month and page number on each page.

use crate::{Block, Cell, Document, Figure, Table};
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The report's own style, every rule under `.report` so that it sits inside the site's pages
/// without touching them. The site serves it as `/assets/report.css`.
pub const STYLE: &str = include_str!("report.css");

/// What the dashboard's stylesheet gives its charts, for the file that has no stylesheet.
const CHART_STYLE: &str = ".chart{width:100%;height:auto;display:block;background:#fff}\
.chart text{font-family:Arial,'Liberation Sans','DejaVu Sans',sans-serif}\
.chart .tick{font-size:13px;fill:#4c6272}.chart .axis-title{font-size:13px;font-weight:bold;fill:#212b32}";

fn tone_class(cell: &Cell) -> Option<String> {
    cell.tone.map(|t| format!("tone tone-{}", t.css()))
}

fn table(t: &Table) -> Markup {
    html! {
        div.table-scroll role="region" aria-label=(t.caption) tabindex="0" {
            table.report-table {
                caption { (t.caption) }
                thead { tr { @for (i, c) in t.columns.iter().enumerate() {
                    th scope="col" class=[t.numeric.get(i).copied().unwrap_or(false).then_some("num")] { (c) }
                } } }
                tbody { @for row in &t.rows { tr { @for (i, c) in row.iter().enumerate() {
                    @let numeric = t.numeric.get(i).copied().unwrap_or(false);
                    @let class = match (numeric, tone_class(c)) {
                        (true, Some(tone)) => Some(format!("num {tone}")),
                        (true, None) => Some("num".to_string()),
                        (false, tone) => tone,
                    };
                    @if i == 0 { th scope="row" class=[class] { (c.text) } } @else { td class=[class] { (c.text) } }
                } } } }
            }
        }
        p.report-source { "Source: " (t.source) }
    }
}

fn figure(f: &Figure) -> Markup {
    html! {
        figure class=(if f.width >= 0.9 { "report-figure" } else { "report-figure report-figure-half" }) {
            (PreEscaped(&f.svg))
            figcaption { (f.caption) span.report-source { " Source: " (f.source) } }
        }
    }
}

fn block(b: &Block) -> Markup {
    html! {
        @match b {
            Block::Paragraph { text } => p { (text) },
            Block::Subheading { text } => h3 { (text) },
            Block::List { items } => ul.report-list { @for i in items { li class=[tone_class(i)] { (i.text) } } },
            Block::Note { text } => div.report-note { p { (text) } },
            Block::Table(t) => (table(t)),
            Block::Figure(f) => (figure(f)),
        }
    }
}

/// The report: its title and provenance, its contents, and every section.
pub fn body(doc: &Document) -> Markup {
    let p = &doc.provenance;
    html! {
        article.report {
            header.report-title {
                p.report-organisation { (doc.organisation) }
                h1 { (doc.title) }
                p.report-period { (doc.period) }
                dl.report-provenance {
                    dt { "Data release" } dd { (p.release) }
                    dt { "Programme records" } dd { (p.audit) }
                    dt { "Built" } dd { (p.generated) }
                    dt { "Rebuild with" } dd { code { (p.command) } }
                }
            }
            nav.report-contents aria-label="Contents" {
                h2 { "Contents" }
                ol { @for s in &doc.sections { li { a href=(format!("#{}", s.id)) { (s.title) } } } }
            }
            @for s in &doc.sections {
                section.report-section id=(s.id) aria-labelledby=(format!("{}-h", s.id)) {
                    h2 id=(format!("{}-h", s.id)) { (s.title) }
                    @for b in &s.blocks { (block(b)) }
                }
            }
        }
    }
}

/// A CSS string literal of `text`.
fn css_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            '<' => out.push_str("\\3c "),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The report as one HTML file: style, charts and contents inline, nothing fetched.
pub fn standalone(doc: &Document) -> String {
    let running = css_string(&format!("{} · {}", doc.organisation, doc.period));
    let page = format!(
        "@page{{size:A4;margin:18mm 15mm 18mm 15mm;@top-left{{content:{running};font:8pt Arial,sans-serif;color:#4c6272}}\
         @bottom-right{{content:\"Page \" counter(page) \" of \" counter(pages);font:8pt Arial,sans-serif;color:#4c6272}}}}"
    );
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (doc.title) " – " (doc.organisation) ", " (doc.period) }
                style { (PreEscaped(STYLE)) (PreEscaped(CHART_STYLE)) (PreEscaped(page)) }
            }
            body.report-file { main { (body(doc)) } }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_svg_is_kept() {
        let html = standalone(&crate::tests::sample());
        assert!(html.contains("Costs &lt; £5 &amp; &quot;rising&quot;"));
        assert!(html.contains(r#"<text x="10" y="20" class="tick">1 &amp; 2</text>"#));
        assert!(!html.contains("<script"), "the file runs nothing");
        let namespaces = html.matches(r#"xmlns="http://www.w3.org/2000/svg""#).count();
        assert_eq!(html.matches("http").count(), namespaces, "nothing is fetched from elsewhere");
    }

    #[test]
    fn the_running_header_cannot_break_out_of_its_css_string() {
        assert_eq!(css_string(r#"a "b" \ </style>"#), r#""a \"b\" \\ \3c /style>""#);
    }

    #[test]
    fn numeric_and_toned_cells_carry_their_classes() {
        let html = body(&crate::tests::sample()).into_string();
        assert!(html.contains(r#"<td class="num tone tone-red">1</td>"#), "{html}");
        assert!(html.contains(r#"<li class="tone tone-concern">Worse</li>"#));
        assert!(html.contains(r##"<a href="#summary">Summary</a>"##));
    }
}
