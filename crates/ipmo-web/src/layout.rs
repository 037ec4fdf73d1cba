//! The page shell every HTML page shares: skip link, header with search, breadcrumbs, main
//! landmark and footer, in the NHS.UK look (our own stylesheet; nothing from other hosts).

use maud::{DOCTYPE, Markup, html};

/// One breadcrumb: (label, link).
pub(crate) type Crumb = (String, String);

/// The search form on the home, search and error pages (the header has its own, with another
/// id and landmark name, so each page's ids and landmarks stay unique).
pub(crate) fn search_form(value: &str) -> Markup {
    search("search-q", "Search organisations, measures and medicines", value)
}

fn search(id: &str, name: &str, value: &str) -> Markup {
    html! {
        form.search action="/search" method="get" role="search" aria-label=(name) {
            label.visually-hidden for=(id) { (name) }
            input id=(id) type="search" name="q" value=(value) placeholder="Practice, PCN, ICB, measure or medicine" autocomplete="off";
            button type="submit" { "Search" }
        }
    }
}

/// A table that scrolls inside its own region on narrow screens instead of widening the page
/// (WCAG 1.4.10); the region can be focused so keyboard users can scroll it.
pub(crate) fn scroll(label: &str, table: Markup) -> Markup {
    html! { div.table-scroll role="region" aria-label=(label) tabindex="0" { (table) } }
}

/// A whole page. `footer_note` says which data release and month the page shows.
pub(crate) fn page(title: &str, crumbs: &[Crumb], footer_note: Option<&str>, main: Markup) -> Markup {
    page_with(title, crumbs, footer_note, main)
}

fn page_with(title: &str, crumbs: &[Crumb], footer_note: Option<&str>, main: Markup) -> Markup {
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
                        (search("header-q", "Site search", ""))
                    }
                    nav.header-nav aria-label="Main" {
                        ul.width {
                            li { a href="/" { "Dashboard" } }
                            li { a href="/org/ENG" { "England" } }
                            li { a href="/analyse" { "Analyse" } }
                            li { a href="/bnf" { "BNF" } }
                            li { a href="/gov" { "Governance" } }
                            li { a href="/api" { "API" } }
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
pub(crate) fn tag(text: &str, kind: &str) -> Markup {
    html! { strong class=(format!("tag tag-{kind}")) { (text) } }
}

/// A summary list of (key, value) rows.
pub(crate) fn summary(rows: &[(&str, Markup)]) -> Markup {
    html! {
        dl.summary {
            @for (k, v) in rows {
                div.summary-row { dt { (k) } dd { (v) } }
            }
        }
    }
}
