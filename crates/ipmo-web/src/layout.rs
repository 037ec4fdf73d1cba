//! The page shell every HTML page shares: skip link, header with search, breadcrumbs, main
//! landmark and footer, in the NHS.UK look (our own stylesheet; nothing from other hosts).

use maud::{DOCTYPE, Markup, html};

/// One breadcrumb: (label, link).
pub type Crumb = (String, String);

/// The search form used in the header and on the home and error pages.
pub fn search_form(value: &str) -> Markup {
    html! {
        form.search action="/search" method="get" role="search" {
            label.visually-hidden for="search-q" { "Search organisations and measures" }
            input #search-q type="search" name="q" value=(value) placeholder="Practice, PCN, ICB or measure" autocomplete="off";
            button type="submit" { "Search" }
        }
    }
}

/// A whole page. `footer_note` says which data release and month the page shows.
pub fn page(title: &str, crumbs: &[Crumb], footer_note: Option<&str>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – IPMO" }
                link rel="stylesheet" href="/assets/ipmo.css";
                link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
            }
            body {
                a.skip-link href="#main" { "Skip to main content" }
                header.header role="banner" {
                    div.width.header-row {
                        a.logo href="/" {
                            span.logo-mark { "IPMO" }
                            span.logo-text { "Integrated pharmacy and medicines optimisation" }
                        }
                        (search_form(""))
                    }
                    nav.header-nav aria-label="Main" {
                        ul.width {
                            li { a href="/" { "Dashboard" } }
                            li { a href="/org/ENG" { "England" } }
                            li { a href="/analyse" { "Analyse" } }
                            li { a href="/bnf" { "BNF" } }
                            li { a href="/gov" { "Governance" } }
                            li { a href="/api/v1/openapi.json" { "API" } }
                        }
                    }
                }
                @if !crumbs.is_empty() {
                    nav.breadcrumb aria-label="Breadcrumb" {
                        ol.width {
                            li { a href="/" { "Home" } }
                            @for (label, href) in crumbs {
                                li { a href=(href) { (label) } }
                            }
                        }
                    }
                }
                main #main.width role="main" tabindex="-1" {
                    (main)
                }
                footer.footer role="contentinfo" {
                    div.width {
                        p { "IPMO – open data on NHS prescribing in England (NHSBSA English Prescribing Dataset), measures and statistics computed by IPMO." }
                        @if let Some(note) = footer_note {
                            p { (note) }
                        }
                    }
                }
            }
        }
    }
}

/// A coloured tag.
pub fn tag(text: &str, kind: &str) -> Markup {
    html! { strong class=(format!("tag tag-{kind}")) { (text) } }
}

/// A summary list of (key, value) rows.
pub fn summary(rows: &[(&str, Markup)]) -> Markup {
    html! {
        dl.summary {
            @for (k, v) in rows {
                div.summary-row { dt { (k) } dd { (v) } }
            }
        }
    }
}
