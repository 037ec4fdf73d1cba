//! The report's sections drawn from the prescribing data: the summary, medicines value,
//! stewardship and safety, and the variation within the organisation.

use super::{Context, section, unlinked};
use crate::charts::{self, FunnelStyle};
use crate::dashboard;
use crate::format::{long_month, month_span, number, ordinal, plural, pounds, value};
use ipmo_domain::YearMonth;
use ipmo_measures::Measure;
use ipmo_measures::analysis::{self, Judgement, Tone as AlertTone, ValuePoint};
use ipmo_measures::ranking::{self, Standing};
use ipmo_measures::savings;
use ipmo_programme::ledger;
use ipmo_report::{Block, Cell, Figure, Section, Table, Tone};
use ipmo_stats::funnel::FunnelBand;
use ipmo_stats::spc::PointClass;

/// Items in each list of the summary, which is one page.
const SUMMARY_ITEMS: usize = 5;
/// SPC charts in the stewardship and safety section.
const SPC_CHARTS: usize = 6;
/// Measures whose practices are drawn as funnel plots.
const FUNNELS: usize = 3;
/// Rows of the price-per-unit and concession tables.
const TOP_ROWS: usize = 10;
/// The themes of the stewardship and safety section.
const THEMES: [&str; 2] = ["antimicrobial", "safety"];

pub(super) fn table(
    caption: String,
    columns: &[&str],
    numeric: &[bool],
    rows: Vec<Vec<Cell>>,
    source: String,
) -> Block {
    Block::Table(Table {
        caption,
        columns: columns.iter().map(|c| c.to_string()).collect(),
        numeric: numeric.to_vec(),
        rows,
        source,
    })
}

pub(super) fn para(text: impl Into<String>) -> Block {
    Block::Paragraph { text: text.into() }
}

pub(super) fn figure(svg: String, caption: String, source: String) -> Block {
    Block::Figure(Figure { svg: unlinked(&svg), caption, source, width: 1.0 })
}

/// A RAG word as a toned cell.
pub(super) fn rag_cell(rag: Option<&str>) -> Cell {
    let tone = match rag {
        Some("Red") => Some(Tone::Red),
        Some("Amber") => Some(Tone::Amber),
        Some("Green") => Some(Tone::Green),
        _ => Some(Tone::Grey),
    };
    Cell::toned(rag.unwrap_or("No data"), tone)
}

fn standing_tone(s: Standing) -> Option<Tone> {
    match s {
        Standing::WorstTenth | Standing::WorseThanMedian => Some(Tone::Concern),
        Standing::BetterThanMedian | Standing::BestTenth => Some(Tone::Improvement),
        Standing::AtMedian | Standing::NoJudgement => None,
    }
}

/// A measure's title with its unit, unless the title already says it.
fn titled(m: &Measure) -> String {
    let unit = m.unit();
    if m.title.contains(&unit) || (m.is_percentage && m.title.contains('%')) {
        m.title.clone()
    } else {
        format!("{} ({unit})", m.title)
    }
}

/// A series up to and including `month`.
fn to_month(series: &[ValuePoint], month: YearMonth) -> &[ValuePoint] {
    &series[..series.partition_point(|p| p.month <= month)]
}

/// The one-page summary: the headline figures, what got better, what got worse, what needs a
/// decision.
pub(super) fn summary(c: &Context) -> Section {
    let rows = dashboard::rows(c.r, c.org, c.month);
    let headline = savings::headline(rows.iter().map(|row| (row.measure, row.series)), c.month);
    let mut alerts: Vec<(&Measure, &analysis::Alert)> =
        rows.iter().flat_map(|row| row.alerts.iter().map(move |a| (row.measure, a))).collect();
    alerts.sort_by(|a, b| b.1.size.total_cmp(&a.1.size).then(a.0.title.cmp(&b.0.title)));
    let listed = |tone: AlertTone, shown: Tone| -> Vec<Cell> {
        let all: Vec<Cell> = alerts
            .iter()
            .filter(|(_, a)| a.tone == tone)
            .map(|(m, a)| Cell::toned(format!("{}: {}", m.title, a.message), Some(shown)))
            .collect();
        let more = all.len().saturating_sub(SUMMARY_ITEMS);
        let mut shown_items: Vec<Cell> = all.into_iter().take(SUMMARY_ITEMS).collect();
        if more > 0 {
            shown_items.push(Cell::text(format!("and {more} more, on the dashboard's alerts page")));
        }
        shown_items
    };
    let (better, worse) = (listed(AlertTone::Good, Tone::Improvement), listed(AlertTone::Bad, Tone::Concern));
    let count = |tone: AlertTone| alerts.iter().filter(|(_, a)| a.tone == tone).count();
    let mut figures = vec![vec![
        Cell::text(format!(
            "Possible savings on cost measures, {}, at the median",
            month_span(headline.from, headline.to)
        )),
        Cell::text(pounds(headline.at_median)),
        Cell::text("Measures (dashboard headline)"),
    ]];
    if let Some((saving, sets)) = ppu_total(c) {
        figures.push(vec![
            Cell::text(format!("Price-per-unit savings, {}", long_month(c.month))),
            Cell::text(pounds(saving)),
            Cell::text(format!("PPU, {}", plural(sets, "substitution set", "substitution sets"))),
        ]);
    }
    if let Some((cost, _)) = concessions(c) {
        figures.push(vec![
            Cell::text(format!("Cost of price concessions above the Drug Tariff, {}", long_month(c.month))),
            Cell::text(pounds(cost)),
            Cell::text("Concessions"),
        ]);
    }
    if let Some(l) = ledger_to_month(c)
        && !l.rows.is_empty()
    {
        figures.push(vec![
            Cell::text(format!("Savings schemes: realised to {} against plan", long_month(c.month))),
            Cell::text(format!("{} of {}", pounds(l.realised), pounds(l.planned))),
            Cell::text("Savings ledger"),
        ]);
    }
    figures.push(vec![
        Cell::text(format!("Alerts this month: better / worse (of {} measures)", rows.len())),
        Cell::text(format!("{} / {}", count(AlertTone::Good), count(AlertTone::Bad))),
        Cell::text("Measures (dashboard alerts)"),
    ]);
    let mut blocks = vec![
        para(format!(
            "{} in {}: the headline figures, the measures' largest alerts of the month, and what the programme's records say needs a decision.",
            c.org.name,
            long_month(c.month)
        )),
        table(
            format!("Headline figures, {}", long_month(c.month)),
            &["Figure", "Amount", "Where on the dashboard"],
            &[false, true, false],
            figures,
            c.epd_source(),
        ),
        Block::Subheading { text: "What got better".into() },
    ];
    let none = |what: &str| Block::List { items: vec![Cell::text(what)] };
    blocks.push(if better.is_empty() {
        none("No measure improved notably this month.")
    } else {
        Block::List { items: better }
    });
    blocks.push(Block::Subheading { text: "What got worse".into() });
    blocks.push(if worse.is_empty() {
        none("No measure worsened notably this month.")
    } else {
        Block::List { items: worse }
    });
    blocks.push(Block::Subheading { text: "What needs a decision".into() });
    blocks.push(match super::programme::decisions_needed(c) {
        None => Block::Note { text: c.no_records() },
        Some(items) if items.is_empty() => none("Nothing in the programme's records needs a decision this month."),
        Some(mut items) => {
            if items.len() > SUMMARY_ITEMS + 1 {
                let more = items.len() - SUMMARY_ITEMS;
                items.truncate(SUMMARY_ITEMS);
                items.push(Cell::toned(format!("and {more} more, in the sections that follow"), Some(Tone::Red)));
            }
            Block::List { items }
        }
    });
    section("summary", "Summary", blocks)
}

/// The organisation's price-per-unit saving in the report month, pounds, and its sets.
fn ppu_total(c: &Context) -> Option<(f64, usize)> {
    let ppu = c.r.ppu.as_ref()?;
    let t = ppu.totals(&c.org.org_type, &c.org.code).iter().find(|t| t.month == c.month)?;
    Some((t.saving[0] / 100.0, t.sets[0] as usize))
}

/// The organisation's concession costs in the report month: the total in pounds and the
/// presentations, largest first.
fn concessions<'a>(c: &Context<'a>) -> Option<(f64, &'a [ipmo_release::price_impacts::ImpactCost])> {
    let impacts = c.r.concessions.as_ref()?;
    impacts.months().iter().find(|m| m.month == c.month)?;
    let costs = impacts.costs(&c.org.org_type, &c.org.code, c.month);
    Some((costs.iter().map(|x| x.impact).sum::<f64>() / 100.0, costs))
}

/// The savings ledger as it stood at the end of the report month.
struct LedgerToMonth {
    /// Scheme, type, plan to date, realised, RAG.
    rows: Vec<Vec<Cell>>,
    planned: f64,
    realised: f64,
    /// (planned, realised) over every scheme by month.
    by_month: std::collections::BTreeMap<YearMonth, (f64, f64)>,
    /// Schemes that could not be measured, with why.
    unmeasured: Vec<String>,
}

fn ledger_to_month(c: &Context) -> Option<LedgerToMonth> {
    let records = c.records()?;
    let sk = ipmo_governance::kinds::kind("scheme")?;
    let mut out = LedgerToMonth {
        rows: Vec::new(),
        planned: 0.0,
        realised: 0.0,
        by_month: Default::default(),
        unmeasured: Vec::new(),
    };
    for rec in &records.schemes {
        let name = format!("{} {}", sk.reference(rec.id), rec.text("title"));
        match c.s.scheme(rec).as_ref() {
            Ok((scheme, real)) => {
                let months: Vec<&ledger::SchemeMonth> = real.months.iter().filter(|m| m.month <= c.month).collect();
                let (planned, realised) = months.iter().fold((0.0, 0.0), |a, m| (a.0 + m.planned, a.1 + m.realised));
                for m in &months {
                    let e = out.by_month.entry(m.month).or_default();
                    e.0 += m.planned;
                    e.1 += m.realised;
                }
                let owned: Vec<ledger::SchemeMonth> = months.into_iter().cloned().collect();
                let (rag, _) = ledger::rag(realised, planned, &owned, scheme.start);
                out.planned += planned;
                out.realised += realised;
                out.rows.push(vec![
                    Cell::text(name),
                    Cell::text(rec.text("scheme_type")),
                    Cell::text(pounds(planned)),
                    Cell::text(pounds(realised)),
                    Cell::text(if planned > 0.0 {
                        format!("{}%", number(realised / planned * 100.0, 0))
                    } else {
                        "–".into()
                    }),
                    rag_cell(rag),
                ]);
            }
            Err(e) => out.unmeasured.push(format!("{name}: {e}")),
        }
    }
    Some(out)
}

/// Medicines value: the savings ledger, price-per-unit savings, concession costs and the horizon
/// scan's next twelve months.
pub(super) fn medicines_value(c: &Context) -> Option<Section> {
    let mut blocks = Vec::new();
    blocks.push(Block::Subheading { text: "Savings ledger".into() });
    match ledger_to_month(c) {
        None => blocks.push(Block::Note { text: c.no_records() }),
        Some(l) if l.rows.is_empty() && l.unmeasured.is_empty() => {
            blocks.push(para("No savings schemes are recorded."))
        }
        Some(l) => {
            let year = ledger::financial_year(c.month);
            let (ytd_plan, ytd_real) = l
                .by_month
                .iter()
                .filter(|(m, _)| ledger::financial_year(**m) == year)
                .fold((0.0, 0.0), |a, (_, v)| (a.0 + v.0, a.1 + v.1));
            blocks.push(para(format!(
                "{} realised against {} planned to {} ({}); in the financial year {year} to date, {} against {}. Each saving is measured from the prescribing against the scheme's own baseline; a scheme is green from {}% of its plan to date, amber from {}%.",
                pounds(l.realised),
                pounds(l.planned),
                long_month(c.month),
                if l.planned > 0.0 { format!("{}% of plan", number(l.realised / l.planned * 100.0, 0)) } else { "no plan".into() },
                pounds(ytd_real),
                pounds(ytd_plan),
                number(ledger::GREEN_FROM * 100.0, 0),
                number(ledger::AMBER_FROM * 100.0, 0),
            )));
            if !l.by_month.is_empty() {
                let months: Vec<YearMonth> = l.by_month.keys().copied().collect();
                let sums = ledger::running_totals(l.by_month.values().copied());
                let lines = charts::cumulative_lines(&sums);
                let labels: Vec<String> = months.iter().map(|m| charts::short_month(*m)).collect();
                blocks.push(figure(
                    charts::line_chart(
                        "ledger",
                        "Savings realised and planned, cumulative, all schemes",
                        &labels,
                        &lines,
                        "£",
                    ),
                    format!(
                        "Cumulative savings to {}: realised (blue, solid) and planned (grey, dashed).",
                        long_month(c.month)
                    ),
                    format!("{}; {}", c.records_source(), c.epd_source()),
                ));
            }
            let mut rows = l.rows;
            rows.push(vec![
                Cell::text("Total"),
                Cell::text(""),
                Cell::text(pounds(l.planned)),
                Cell::text(pounds(l.realised)),
                Cell::text(if l.planned > 0.0 {
                    format!("{}%", number(l.realised / l.planned * 100.0, 0))
                } else {
                    "–".into()
                }),
                Cell::text(""),
            ]);
            blocks.push(table(
                format!("Savings schemes to {}", long_month(c.month)),
                &["Scheme", "Type", "Plan to date", "Realised", "Of plan", "RAG"],
                &[false, false, true, true, true, false],
                rows,
                format!("{}; {}", c.records_source(), c.epd_source()),
            ));
            if !l.unmeasured.is_empty() {
                blocks.push(Block::Note { text: format!("Not measured: {}", l.unmeasured.join("; ")) });
            }
        }
    }
    blocks.push(Block::Subheading { text: "Price-per-unit savings".into() });
    match (ppu_total(c), c.r.ppu.as_ref()) {
        (Some((saving, sets)), Some(ppu)) => {
            blocks.push(para(format!(
                "{} could be saved in {} if every substitution set were bought at the national 10th-percentile price per unit ({} with an opportunity).",
                pounds(saving),
                long_month(c.month),
                plural(sets, "set", "sets")
            )));
            if ppu.month == Some(c.month) && sets > 0 {
                blocks.push(ppu_table(c, ppu));
            }
        }
        (None, Some(ppu)) => blocks.push(para(format!(
            "Price-per-unit savings are computed for {} only; none for {}.",
            ppu.month.map_or("no month".to_string(), long_month),
            long_month(c.month)
        ))),
        (_, None) => blocks.push(para("Price-per-unit savings have not been computed (`ipmo value compute`).")),
    }
    blocks.push(Block::Subheading { text: "Price concessions".into() });
    match concessions(c) {
        Some((cost, costs)) => {
            blocks.push(para(format!(
                "Price concessions cost {} above the Drug Tariff in {} on {}.",
                pounds(cost),
                long_month(c.month),
                plural(costs.len(), "presentation", "presentations")
            )));
            if !costs.is_empty() {
                let rows = costs
                    .iter()
                    .take(TOP_ROWS)
                    .map(|x| {
                        vec![
                            Cell::text(crate::price_impacts::name_of(c.r, x)),
                            Cell::text(number(x.quantity, 0)),
                            Cell::text(format!("{}p", number(x.before, 2))),
                            Cell::text(format!("{}p", number(x.after, 2))),
                            Cell::text(pounds(x.impact / 100.0)),
                        ]
                    })
                    .collect();
                blocks.push(table(
                    format!("Largest concession costs, {}", long_month(c.month)),
                    &["Presentation", "Quantity", "Tariff per unit", "Conceded per unit", "Extra cost"],
                    &[false, true, true, true, true],
                    rows,
                    format!("{}; NHSBSA Drug Tariff; DHSC price concessions", c.epd_source()),
                ));
            }
        }
        None => blocks.push(para(format!("No concession costs are computed for {}.", long_month(c.month)))),
    }
    blocks.push(Block::Subheading { text: "Horizon scan: the next twelve months".into() });
    blocks.extend(super::programme::horizon(c));
    Some(section("value", "Medicines value", blocks))
}

/// The organisation's largest price-per-unit opportunities in the month PPU is computed for.
fn ppu_table(c: &Context, ppu: &ipmo_release::ppu::Ppu) -> Block {
    let rows = ppu
        .opportunities(&c.org.org_type, &c.org.code, ipmo_value::ppu::Mode::DateCorrect, 0.0)
        .into_iter()
        .take(TOP_ROWS)
        .map(|row| {
            let set = &ppu.sets()[row.set as usize];
            vec![
                Cell::text(&set.name),
                Cell::text(set.formulation_swap.clone().unwrap_or_default()),
                Cell::text(number(row.quantity, 0)),
                Cell::text(pounds(row.saving[0] / 100.0)),
            ]
        })
        .collect();
    table(
        format!("Largest price-per-unit opportunities, {}", long_month(c.month)),
        &["Substitution set", "Formulation swap", "Quantity", "Saving"],
        &[false, false, true, true],
        rows,
        format!("{}; NHSBSA Drug Tariff and dm+d", c.epd_source()),
    )
}

/// The measures of the stewardship and safety section with a value this month, worst first.
fn stewardship_measures<'a>(c: &Context<'a>) -> Vec<(&'a Measure, &'a [ValuePoint], &'a ValuePoint)> {
    let mut out: Vec<(&Measure, &[ValuePoint], &ValuePoint)> =
        c.r.library
            .computed()
            .filter(|m| m.tags.iter().any(|t| THEMES.contains(&t.as_str())))
            .filter_map(|m| {
                let series = to_month(c.r.series(&m.id, c.org)?, c.month);
                let point = series.last().filter(|p| p.month == c.month)?;
                Some((m, series, point))
            })
            .collect();
    let worse = |m: &Measure, p: &ValuePoint| p.percentile().and_then(|pc| ranking::worse_percentile(pc, m.direction));
    out.sort_by(|a, b| {
        worse(b.0, b.2).unwrap_or(-1.0).total_cmp(&worse(a.0, a.2).unwrap_or(-1.0)).then(a.0.title.cmp(&b.0.title))
    });
    out
}

/// Antimicrobial stewardship and safety: each measure against its peers and England, and the
/// SPC charts of those that moved (or rank worst).
pub(super) fn stewardship(c: &Context) -> Section {
    let measures = stewardship_measures(c);
    let level = ipmo_release::level_plural_lower(&c.org.org_type);
    let england = c.r.org(ipmo_measures::compute::ENGLAND);
    let mut charted: Vec<(&Measure, analysis::Spc, Option<PointClass>, f64)> = Vec::new();
    let rows: Vec<Vec<Cell>> = measures
        .iter()
        .map(|(m, series, pt)| {
            let spc = analysis::spc(series, &Judgement::of(m));
            let median = c.r.level_values(&m.id, &c.org.org_type).and_then(|lv| lv.deciles.get(&c.month)).map(|d| d[4]);
            let national = england
                .and_then(|e| c.r.series(&m.id, e))
                .and_then(|s| s.iter().find(|p| p.month == c.month))
                .and_then(|p| p.value());
            let standing = pt.percentile().map(|p| ranking::standing(p, m.direction));
            let variation = spc.as_ref().map(|s| crate::measure_pages::variation_text(s.chart.variation));
            let class = spc.as_ref().and_then(|s| s.class_at(c.month));
            if let Some(sc) = spc.clone() {
                let worse = pt.percentile().and_then(|p| ranking::worse_percentile(p, m.direction)).unwrap_or(0.0);
                charted.push((m, sc, class, worse));
            }
            vec![
                Cell::text(titled(m)),
                Cell::text(value(pt.value())),
                Cell::toned(ordinal(pt.percentile()), standing.and_then(standing_tone)),
                Cell::text(value(median)),
                Cell::text(value(national)),
                match variation {
                    Some((text, colour)) => Cell::toned(
                        text,
                        match colour {
                            "orange" => Some(Tone::Concern),
                            "blue" => Some(Tone::Improvement),
                            _ => None,
                        },
                    ),
                    None => Cell::text("Too few months"),
                },
            ]
        })
        .collect();
    let mut blocks = vec![para(format!(
        "Every antimicrobial stewardship and safety measure with a value for {} in {}, worst first by its percentile among {level} (higher is worse where lower is better). A dash is a value that is suppressed (an imported indicator's count from 1 to 5, as on the dashboard) or not available.",
        c.org.name,
        long_month(c.month)
    ))];
    if rows.is_empty() {
        blocks.push(Block::Note {
            text: format!(
                "No stewardship or safety measure has a value for {} in {}.",
                c.org.name,
                long_month(c.month)
            ),
        });
        return section("stewardship", "Antimicrobial stewardship and safety", blocks);
    }
    blocks.push(table(
        format!("Stewardship and safety measures, {}", long_month(c.month)),
        &["Measure", "Value", "Percentile", "Median of peers", "England", "SPC, latest month"],
        &[false, true, true, true, true, false],
        rows,
        c.epd_source(),
    ));
    // Special cause this month first (concern before improvement), then the worst ranked.
    let rank = |class: Option<PointClass>| match class {
        Some(PointClass::Concern) => 0,
        Some(PointClass::Improvement) | Some(PointClass::Neutral) => 1,
        _ => 2,
    };
    charted.sort_by(|a, b| rank(a.2).cmp(&rank(b.2)).then(b.3.total_cmp(&a.3)).then(a.0.title.cmp(&b.0.title)));
    for (i, (m, sc, _, _)) in charted.iter().take(SPC_CHARTS).enumerate() {
        let unit = m.unit();
        let bounds = (0.0, if m.is_percentage { 100.0 } else { f64::INFINITY });
        let svg = charts::spc_chart(
            &format!("spc-{}", i + 1),
            &format!("{}: SPC chart for {}", m.title, c.org.name),
            sc,
            m.target.as_ref().map(|t| t.value),
            &unit,
            bounds,
        );
        blocks.push(figure(
            svg,
            format!(
                "{} for {}, {}: mean and process limits; orange points are special-cause concern, blue improvement, grey common cause{}.",
                m.title,
                c.org.name,
                month_span(sc.months.first().copied().unwrap_or(c.month), c.month),
                if m.target.is_some() { "; red line: target" } else { "" }
            ),
            c.epd_source(),
        ));
    }
    section("stewardship", "Antimicrobial stewardship and safety", blocks)
}

/// The practices within the organisation on the headline stewardship and safety measures, as
/// funnel plots, with the practices beyond the 99.8% limits named.
pub(super) fn variation(c: &Context) -> Section {
    let title = format!("Variation within {}", c.org.name);
    if c.org.org_type == "practice" {
        return section("variation", &title, vec![para("A practice has no practices within it to compare.")]);
    }
    let practices = c.r.practices_in(&c.org.code);
    let mut blocks = vec![para(format!(
        "The {} of {} on the headline stewardship and safety measures in {}: each practice's value against its denominator, with the pooled value and 95% and 99.8% limits. Practices beyond the 99.8% limits are listed under each plot.",
        plural(practices.len(), "practice", "practices"),
        c.org.name,
        long_month(c.month)
    ))];
    let mut drawn = 0;
    for (m, _, _) in stewardship_measures(c) {
        if drawn == FUNNELS {
            break;
        }
        let Some(lv) = c.r.level_values(&m.id, "practice") else { continue };
        let points: Vec<(&str, &ValuePoint)> = practices
            .iter()
            .filter_map(|p| Some((p.code.as_str(), lv.series_of(&p.code)?.iter().find(|x| x.month == c.month)?)))
            .collect();
        let counts = crate::measure_pages::counts_of(&points);
        let Ok(plot) = analysis::funnel_plot(&counts, &Judgement::of(m)) else { continue };
        drawn += 1;
        let name = |code: &str| c.r.org(code).map_or(code.to_string(), |o| o.name.clone());
        let href = |_: &str| String::new();
        let unit = m.unit();
        let svg = charts::funnel_chart(
            &format!("funnel-{drawn}"),
            &format!("{}: funnel plot of the practices of {}, {}", m.title, c.org.name, long_month(c.month)),
            &plot,
            &FunnelStyle {
                direction: m.direction,
                x_title: &m.denominator.describe(),
                y_title: &unit,
                name: &name,
                href: &href,
            },
        );
        blocks.push(Block::Subheading { text: m.title.clone() });
        blocks.push(figure(
            svg,
            format!(
                "{} practices; pooled value {} {}. Beyond the limits on the worse side: orange; on the better side: blue (grey where the measure makes no judgement); ring beyond 95%, filled beyond 99.8%.",
                plot.funnel.points.len(),
                value(Some(plot.funnel.target * plot.multiplier)),
                unit
            ),
            c.epd_source(),
        ));
        let outside: Vec<Vec<Cell>> = plot
            .orgs
            .iter()
            .zip(&plot.funnel.points)
            .filter(|(_, p)| matches!(p.band, FunnelBand::AboveControl | FunnelBand::BelowControl))
            .map(|(code, p)| {
                let high = p.band == FunnelBand::AboveControl;
                let tone = Some(match analysis::tone_of(high, m.direction) {
                    AlertTone::Bad => Tone::Concern,
                    AlertTone::Good => Tone::Improvement,
                    AlertTone::Neutral => Tone::Grey,
                });
                vec![
                    Cell::text(format!("{} ({code})", name(code))),
                    Cell::text(value(Some(p.value * plot.multiplier))),
                    Cell::text(number(p.denominator, 0)),
                    Cell::toned(if high { "Above" } else { "Below" }, tone),
                ]
            })
            .collect();
        if outside.is_empty() {
            blocks.push(para("No practice lies beyond the 99.8% limits."));
        } else {
            blocks.push(table(
                format!("{}: practices beyond the 99.8% limits, {}", m.title, long_month(c.month)),
                &["Practice", "Value", "Denominator", "Side"],
                &[false, true, true, false],
                outside,
                c.epd_source(),
            ));
        }
    }
    if drawn == 0 {
        blocks.push(Block::Note {
            text: format!(
                "No stewardship or safety measure has practice values to plot for {} in {}.",
                c.org.name,
                long_month(c.month)
            ),
        });
    }
    section("variation", &title, blocks)
}
