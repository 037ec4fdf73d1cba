//! The report's sections drawn from the programme's records: what needs a decision, the horizon
//! scan, the risk register, the assurance framework, the workforce plan, the plans on a page,
//! and the month's decisions and case studies. Their verdicts (signals, RAG, overdue) are the
//! ones the governance pages show, from `ipmo_programme` and `ipmo_governance`.

use super::data::{figure, para, rag_cell, table};
use super::{Context, Records, section};
use crate::format::{iso_date, number, plural, pounds};
use chrono::NaiveDate;
use ipmo_governance::due::overdue;
use ipmo_governance::kinds::{self, PLANS};
use ipmo_governance::risk::{Band, CONSEQUENCE, LIKELIHOOD, Rating};
use ipmo_governance::store::Record;
use ipmo_programme::workforce::{training_pipeline, workforce_totals};
use ipmo_programme::{aim_standing, standard_rag, watch_signal};
use ipmo_report::{Block, Cell, Section, Tone};

/// Rows of the top risks table.
const TOP_RISKS: usize = 10;
/// Quarters of workforce trend shown.
const QUARTERS: usize = 8;

/// "RSK-12 Title" for a record of `kind`.
fn reference(kind: &str, rec: &Record) -> String {
    match kinds::kind(kind) {
        Some(k) => format!("{} {}", k.reference(rec.id), k.record_name(rec.id, &rec.data)),
        None => rec.id.to_string(),
    }
}

fn band_tone(b: Band) -> Tone {
    match b {
        Band::Low => Tone::Green,
        Band::Moderate => Tone::Yellow,
        Band::High => Tone::Amber,
        Band::Extreme => Tone::Red,
    }
}

fn rating_cell(r: Option<Rating>) -> Cell {
    match r {
        Some(r) => Cell::toned(format!("{} {}", r.score(), r.band().label()), Some(band_tone(r.band()))),
        None => Cell::text("–"),
    }
}

/// A date field's text, or "–".
fn date_of(rec: &Record, field: &str) -> String {
    match rec.text(field) {
        "" => "–".into(),
        d => iso_date(d),
    }
}

/// Whether an audit entry or a date falls in the month of changes before the report's date.
fn in_month(c: &Context, date: &str) -> bool {
    NaiveDate::parse_from_str(date.get(..10).unwrap_or(""), "%Y-%m-%d").is_ok_and(|d| d > c.since() && d <= c.today)
}

/// The summary's "what needs a decision", from the records (None when the report carries none).
pub(super) fn decisions_needed(c: &Context) -> Option<Vec<Cell>> {
    let records = c.records()?;
    let r = c.r;
    let mut out = Vec::new();
    let mut push = |text: String| out.push(Cell::toned(text, Some(Tone::Red)));
    for risk in &records.risks {
        if Rating::of_record(&risk.data, "current").is_some_and(|rt| rt.band() == Band::Extreme) {
            push(format!("Extreme risk: {}", reference("risk", risk)));
        }
        let turned: Vec<String> = records
            .watches
            .iter()
            .filter(|w| w.int("risk") == Some(risk.id))
            .map(|w| (w, watch_signal(r, w)))
            .filter(|(_, s)| s.turned)
            .map(|(_, s)| s.text)
            .collect();
        if !turned.is_empty() {
            push(format!("Watched measure turned for {}: {}", reference("risk", risk), turned.join("; ")));
        }
    }
    for x in &records.standards {
        let rag = standard_rag(r, x);
        if rag.rag == Some("Red") {
            push(format!("Performance standard failing: {} — {}", reference("standard", x), rag.why));
        }
    }
    for x in &records.schemes {
        if let (Some("Red"), why) = c.s.scheme_rag(x) {
            push(format!("Savings scheme off plan: {} — {why}", reference("scheme", x)));
        }
    }
    for (list, kind, what) in [
        (&records.milestones, "milestone", "Milestone overdue"),
        (&records.actions, "risk-action", "Risk action overdue"),
    ] {
        for x in list.iter() {
            if let Some(due) = overdue(x, c.today) {
                push(format!("{what} (due {}): {}", iso_date(&due.to_string()), reference(kind, x)));
            }
        }
    }
    Some(out)
}

/// The horizon scan's items expected in the twelve months from the report's date.
pub(super) fn horizon(c: &Context) -> Vec<Block> {
    let Some(records) = c.records() else { return vec![Block::Note { text: c.no_records() }] };
    let until = c.today.checked_add_months(chrono::Months::new(12)).unwrap_or(c.today);
    let mut items: Vec<(&Record, NaiveDate)> = records
        .horizon
        .iter()
        .filter_map(|x| Some((x, NaiveDate::parse_from_str(x.text("expected"), "%Y-%m-%d").ok()?)))
        .filter(|(_, d)| *d >= c.today && *d <= until)
        .collect();
    items.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.id.cmp(&b.0.id)));
    if items.is_empty() {
        return vec![para(format!(
            "No horizon-scan item is expected between {} and {}.",
            iso_date(&c.today.to_string()),
            iso_date(&until.to_string())
        ))];
    }
    let (mut up, mut down) = (0.0, 0.0);
    let rows = items
        .iter()
        .map(|(rec, date)| {
            let impact = c.s.horizon_impact(rec);
            let (spend, effect) = match impact.as_ref() {
                Ok(i) => {
                    if i.impact >= 0.0 {
                        up += i.impact;
                    } else {
                        down += i.impact;
                    }
                    let tone = if i.impact > 0.0 { Some(Tone::Concern) } else { Some(Tone::Improvement) };
                    (Cell::text(pounds(i.annual_spend)), Cell::toned(pounds(i.impact), tone))
                }
                Err(e) => (Cell::text("Not sized"), Cell::text(e.clone())),
            };
            vec![
                Cell::text(reference("horizon", rec)),
                Cell::text(rec.text("category")),
                Cell::text(iso_date(&date.to_string())),
                Cell::text(format!("{}%", number(rec.number("price_change_pct").unwrap_or(0.0), 0))),
                spend,
                effect,
            ]
        })
        .collect();
    vec![
        para(format!(
            "{} expected from {} to {}: cost pressures of {} a year and savings of {} a year, net {}. Each impact is the organisation's spend on the products at the latest run rate times the expected change.",
            plural(items.len(), "item is", "items are"),
            iso_date(&c.today.to_string()),
            iso_date(&until.to_string()),
            pounds(up),
            pounds(-down),
            pounds(up + down)
        )),
        table(
            "Horizon scan, the next twelve months".into(),
            &["Item", "Category", "Expected", "Change", "Spend a year", "Impact a year"],
            &[false, false, false, true, true, true],
            rows,
            format!("{}; {}", c.records_source(), c.epd_source()),
        ),
    ]
}

/// The programme sections, in the order a board reads them.
pub(super) fn sections(c: &Context) -> Vec<Section> {
    let Some(records) = c.records() else {
        let note = || vec![Block::Note { text: c.no_records() }];
        return vec![
            section("risks", "Integrated risk register", note()),
            section("assurance", "Assurance framework", note()),
            section("workforce", "Workforce", note()),
            section("plans", "Plans on a page", note()),
            section("evidence", "Decisions and case studies", note()),
        ];
    };
    vec![risks(c, records), assurance(c, records), workforce(c, records), plans(c, records), evidence(c, records)]
}

fn risks(c: &Context, records: &Records) -> Section {
    let grid = ipmo_governance::risk::heat_map(records.risks.iter().map(|x| &x.data));
    let heat: Vec<Vec<Cell>> = (1..=5usize)
        .rev()
        .map(|l| {
            std::iter::once(Cell::text(format!("{l} {}", LIKELIHOOD[l - 1])))
                .chain((1..=5usize).map(|co| {
                    let rating = Rating { likelihood: l as u8, consequence: co as u8 };
                    let n = grid[l - 1][co - 1];
                    Cell::toned(if n > 0 { n.to_string() } else { String::new() }, Some(band_tone(rating.band())))
                }))
                .collect()
        })
        .collect();
    let mut columns = vec!["Likelihood ↓ / consequence →".to_string()];
    columns.extend((1..=5).map(|co| format!("{co} {}", CONSEQUENCE[co - 1])));
    let column_refs: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut ranked: Vec<(&Record, u8)> =
        records.risks.iter().map(|x| (x, Rating::of_record(&x.data, "current").map_or(0, Rating::score))).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.id.cmp(&b.0.id)));
    let top: Vec<Vec<Cell>> = ranked
        .iter()
        .take(TOP_RISKS)
        .map(|(risk, _)| {
            let signals: Vec<String> = records
                .watches
                .iter()
                .filter(|w| w.int("risk") == Some(risk.id))
                .map(|w| {
                    let s = watch_signal(c.r, w);
                    format!("{}{}", if s.turned { "Turned: " } else { "" }, s.text)
                })
                .collect();
            let turned = signals.iter().any(|s| s.starts_with("Turned"));
            vec![
                Cell::text(reference("risk", risk)),
                Cell::text(risk.text("owner")),
                rating_cell(Rating::of_record(&risk.data, "current")),
                rating_cell(Rating::of_record(&risk.data, "target")),
                Cell::toned(
                    if signals.is_empty() { "None".to_string() } else { signals.join("; ") },
                    turned.then_some(Tone::Red),
                ),
                Cell::text(date_of(risk, "review_date")),
            ]
        })
        .collect();
    let changes: Vec<Vec<Cell>> = records
        .changes
        .iter()
        .filter(|e| e.entity == "risk" && in_month(c, &e.at))
        .map(|e| {
            let title = e
                .after
                .as_ref()
                .or(e.before.as_ref())
                .and_then(|v| v.get("data")?.get("title")?.as_str().map(str::to_string))
                .unwrap_or_default();
            let score = |v: Option<&serde_json::Value>| {
                v.and_then(|v| v.get("data")?.as_object())
                    .and_then(|d| Rating::of_record(d, "current"))
                    .map(Rating::score)
            };
            let what = match (e.action.as_str(), score(e.before.as_ref()), score(e.after.as_ref())) {
                ("update", Some(b), Some(a)) if b != a => format!("current score {b} → {a}"),
                ("update", ..) => {
                    format!("updated: {}", e.changed_fields())
                }
                (action, ..) => action.to_string(),
            };
            let reference = kinds::kind("risk").map(|k| k.reference(e.entity_id.unwrap_or(0))).unwrap_or_default();
            vec![
                Cell::text(iso_date(e.at.get(..10).unwrap_or(""))),
                Cell::text(format!("{reference} {title}")),
                Cell::text(what),
            ]
        })
        .collect();
    let mut blocks = vec![
        para(format!(
            "{} current: {} extreme, {} high. Score = likelihood × consequence; bands 1–3 low, 4–6 moderate, 8–12 high, 15–25 extreme.",
            plural(records.risks.len(), "risk is", "risks are"),
            ranked.iter().filter(|(_, s)| Band::of(*s) == Band::Extreme && *s > 0).count(),
            ranked.iter().filter(|(_, s)| Band::of(*s) == Band::High && *s > 0).count(),
        )),
        table(
            "Heat map: current risks by likelihood and consequence".into(),
            &column_refs,
            &[false, true, true, true, true, true],
            heat,
            c.records_source(),
        ),
        table(
            format!("The {} highest current risks", TOP_RISKS.min(ranked.len())),
            &["Risk", "Owner", "Current", "Target", "Watched measures", "Next review"],
            &[false; 6],
            top,
            format!("{}; measure signals from {}", c.records_source(), c.epd_source()),
        ),
        Block::Subheading { text: format!("Changes since {}", iso_date(&c.since().to_string())) },
    ];
    if changes.is_empty() {
        blocks.push(para("No risk was added, changed or archived in the month."));
    } else {
        blocks.push(table(
            format!("Risk changes, {} to {}", iso_date(&c.since().to_string()), iso_date(&c.today.to_string())),
            &["Date", "Risk", "Change"],
            &[false; 3],
            changes,
            "IPMO governance audit trail".into(),
        ));
    }
    section("risks", "Integrated risk register", blocks)
}

fn assurance(c: &Context, records: &Records) -> Section {
    let r = c.r;
    let mut by_aim = Vec::new();
    for aim in &records.aims {
        let a = aim_standing(r, aim, &records.standards, &records.schemes, |x| c.s.scheme_rag(x).0, &records.risks);
        let count = |rag: Option<&str>| a.count(rag).to_string();
        by_aim.push(vec![
            Cell::text(aim.text("title")),
            if a.rags.is_empty() { Cell::text("No standards or schemes") } else { rag_cell(a.overall()) },
            Cell::text(count(Some("Red"))),
            Cell::text(count(Some("Amber"))),
            Cell::text(count(Some("Green"))),
            Cell::text(count(None)),
            match a.top_risk {
                Some((x, rt)) => Cell::toned(
                    format!("{} ({} {})", reference("risk", x), rt.score(), rt.band().label()),
                    Some(band_tone(rt.band())),
                ),
                None => Cell::text("None recorded"),
            },
        ]);
    }
    let standards: Vec<Vec<Cell>> = records
        .standards
        .iter()
        .map(|x| {
            let rag = standard_rag(r, x);
            let measure = r.library.get(x.text("measure")).map_or(x.text("measure"), |m| m.title.as_str());
            vec![Cell::text(reference("standard", x)), Cell::text(measure), rag_cell(rag.rag), Cell::text(rag.why)]
        })
        .collect();
    let mut blocks = vec![para(
        "Each aim's performance standards and savings schemes by RAG, computed from the data (an aim is as red as its reddest standard or scheme), and its highest current principal risk.",
    )];
    if by_aim.is_empty() {
        blocks.push(para("No aims are recorded."));
    } else {
        blocks.push(table(
            "Aims by RAG".into(),
            &["Aim", "Overall", "Red", "Amber", "Green", "No data", "Highest principal risk"],
            &[false, false, true, true, true, true, false],
            by_aim,
            format!("{}; {}", c.records_source(), c.epd_source()),
        ));
    }
    if !standards.is_empty() {
        blocks.push(table(
            "Performance standards, RAG computed from the measures".into(),
            &["Standard", "Measure", "RAG", "Why"],
            &[false; 4],
            standards,
            format!("{}; {}", c.records_source(), c.epd_source()),
        ));
    }
    section("assurance", "Assurance framework", blocks)
}

fn workforce(c: &Context, records: &Records) -> Section {
    let totals = workforce_totals(&records.returns, &|_| true);
    let mut blocks = Vec::new();
    if totals.is_empty() {
        blocks.push(para("No workforce returns are recorded."));
    } else {
        let shown: Vec<(&String, &ipmo_programme::workforce::QuarterTotals)> =
            totals.iter().rev().take(QUARTERS).collect::<Vec<_>>().into_iter().rev().collect();
        let labels: Vec<String> = shown.iter().map(|(q, _)| (*q).clone()).collect();
        let line = |name, colour, dashed, values| crate::charts::Line { name, colour, dashed, values };
        let lines = [
            line("Vacancy rate", "#005eb8", false, shown.iter().map(|(_, t)| t.vacancy_rate()).collect()),
            line("Quarterly turnover", "#768692", true, shown.iter().map(|(_, t)| t.turnover()).collect()),
        ];
        let (first, last) = (labels.first().cloned().unwrap_or_default(), labels.last().cloned().unwrap_or_default());
        blocks.push(figure(
            crate::charts::line_chart("workforce-trend", "Vacancy rate and quarterly turnover, per cent", &labels, &lines, "%"),
            format!("Vacancy rate (vacancies ÷ establishment; blue, solid) and quarterly turnover (leavers ÷ staff in post; grey, dashed), {first} to {last}."),
            c.records_source(),
        ));
        let rows = shown
            .iter()
            .map(|(q, t)| {
                vec![
                    Cell::text(*q),
                    Cell::text(number(t.establishment, 1)),
                    Cell::text(number(t.in_post, 1)),
                    Cell::text(number(t.vacancies(), 1)),
                    Cell::text(crate::format::percent(t.vacancy_rate())),
                    Cell::text(crate::format::percent(t.turnover())),
                ]
            })
            .collect();
        blocks.push(table(
            "Pharmacy workforce by quarter (WTE)".into(),
            &["Quarter", "Establishment", "In post", "Vacancies", "Vacancy rate", "Turnover"],
            &[false, true, true, true, true, true],
            rows,
            c.records_source(),
        ));
        if let Some(newest) = totals.keys().next_back()
            && ipmo_governance::due::returns_stale(newest, c.today)
        {
            blocks.push(Block::Note {
                text: format!(
                    "The newest workforce return is for {newest}, more than a quarter before {}.",
                    iso_date(&c.today.to_string())
                ),
            });
        }
    }
    let pipeline = training_pipeline(&records.training);
    let latest: Option<&String> = pipeline.keys().map(|(q, _)| q).max();
    match latest {
        None => blocks.push(para("No training pipeline returns are recorded.")),
        Some(q) => {
            let rows = pipeline
                .iter()
                .filter(|((quarter, _), _)| quarter == q)
                .map(|((_, programme), (places, starters, done))| {
                    vec![
                        Cell::text(programme),
                        Cell::text(places.to_string()),
                        Cell::text(starters.to_string()),
                        Cell::text(done.to_string()),
                    ]
                })
                .collect();
            blocks.push(table(
                format!("Training pipeline, {q}"),
                &["Programme", "Places", "Starters", "Completions"],
                &[false, true, true, true],
                rows,
                c.records_source(),
            ));
        }
    }
    section("workforce", "Workforce", blocks)
}

fn plans(c: &Context, records: &Records) -> Section {
    let mut rows = Vec::new();
    for plan in PLANS {
        for w in records.workstreams.iter().filter(|w| w.text("plan") == *plan) {
            let ms: Vec<&Record> = records.milestones.iter().filter(|m| m.int("workstream") == Some(w.id)).collect();
            let done = ms.iter().filter(|m| m.text("status") == "Complete").count();
            let late = ms.iter().filter(|m| overdue(m, c.today).is_some()).count();
            let next = ms
                .iter()
                .filter(|m| m.text("status") != "Complete")
                .min_by(|a, b| a.text("due").cmp(b.text("due")))
                .map_or("–".to_string(), |m| format!("{} ({})", m.text("title"), date_of(m, "due")));
            rows.push(vec![
                Cell::text(*plan),
                Cell::text(reference("workstream", w)),
                rag_cell(Some(w.text("rag")).filter(|x| !x.is_empty())),
                Cell::text(format!("{done} of {}", ms.len())),
                Cell::toned(late.to_string(), (late > 0).then_some(Tone::Red)),
                Cell::text(next),
            ]);
        }
    }
    let blocks = if rows.is_empty() {
        vec![para("No workstreams are recorded.")]
    } else {
        vec![
            para(
                "Each workstream's RAG as its owner set it, its milestones complete, those overdue (past their due date and not complete) and the next one due.",
            ),
            table(
                format!("Plans on a page at {}", iso_date(&c.today.to_string())),
                &["Plan", "Workstream", "RAG", "Milestones complete", "Overdue", "Next milestone"],
                &[false, false, false, true, true, false],
                rows,
                c.records_source(),
            ),
        ]
    };
    section("plans", "Plans on a page", blocks)
}

fn evidence(c: &Context, records: &Records) -> Section {
    let span = format!("{} to {}", iso_date(&c.since().to_string()), iso_date(&c.today.to_string()));
    let decisions: Vec<Vec<Cell>> = records
        .decisions
        .iter()
        .filter(|d| in_month(c, d.text("date")))
        .map(|d| {
            vec![
                Cell::text(date_of(d, "date")),
                Cell::text(reference("decision", d)),
                Cell::text(d.text("detail")),
                Cell::text(d.text("owner")),
                Cell::text(d.text("status")),
            ]
        })
        .collect();
    let touched: std::collections::BTreeSet<i64> = records
        .changes
        .iter()
        .filter(|e| e.entity == "case-study" && in_month(c, &e.at))
        .filter_map(|e| e.entity_id)
        .collect();
    let studies: Vec<Vec<Cell>> = records
        .case_studies
        .iter()
        .filter(|x| touched.contains(&x.id))
        .map(|x| {
            vec![
                Cell::text(reference("case-study", x)),
                Cell::text(x.text("sector")),
                Cell::text(x.text("summary")),
                Cell::text(x.text("outcome")),
            ]
        })
        .collect();
    let mut blocks = vec![Block::Subheading { text: format!("Decisions, {span}") }];
    if decisions.is_empty() {
        blocks.push(para("No decision is dated in the month."));
    } else {
        blocks.push(table(
            format!("Decisions, {span}"),
            &["Date", "Decision", "What was decided", "Owner", "Status"],
            &[false; 5],
            decisions,
            c.records_source(),
        ));
    }
    blocks.push(Block::Subheading { text: format!("Case studies added or updated, {span}") });
    if studies.is_empty() {
        blocks.push(para("No case study was added or updated in the month."));
    } else {
        blocks.push(table(
            format!("Case studies, {span}"),
            &["Case study", "Sector", "What was done", "What changed"],
            &[false; 4],
            studies,
            c.records_source(),
        ));
    }
    section("evidence", "Decisions and case studies", blocks)
}
