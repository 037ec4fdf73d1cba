//! The monthly board report: the month's data and the programme's records gathered into an
//! [`ipmo_report::Document`], from the same functions and charts the dashboard uses, so that
//! every figure in the paper is one a reader can find on a page (or with `ipmo sql`).
//!
//! The data sections (summary, value, stewardship and safety, variation) are the organisation's.
//! The programme sections (risks, assurance, workforce, plans, decisions) are the governance
//! workspace's, and belong in the report of the ICB the workspace names (a system organisation of
//! type "Integrated care board" with its ODS code) or of an organisation within it; any other
//! organisation's report says so plainly instead.

mod data;
mod programme;

use crate::{AppState, WebError};
use chrono::NaiveDate;
use ipmo_domain::YearMonth;
use ipmo_domain::display::long_month;
use ipmo_governance::store::{AuditEntry, Record, StoreError};
use ipmo_release::{Org, Release};
use ipmo_report::{Block, Document, Provenance, Section};

/// What the report covers and how it is built.
#[derive(Clone, Debug)]
pub struct ReportRequest {
    /// The organisation's code.
    pub org: String,
    /// The data month; None is the release's latest.
    pub month: Option<YearMonth>,
    /// Which sections: the whole board paper, or its one-page summary.
    pub template: Template,
    /// The day overdue items and "the last month" of changes are judged at.
    pub today: NaiveDate,
    /// When it was built, as printed on the title page.
    pub generated: String,
}

/// The sections a report has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// Every section, in the order a board reads them.
    Board,
    /// The one-page summary alone.
    Summary,
}

impl Template {
    /// A template by its name on the command line and in URLs.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "board" => Some(Template::Board),
            "summary" => Some(Template::Summary),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Template::Board => "board",
            Template::Summary => "summary",
        }
    }
}

/// The governance records a report reads, current (not archived) ones only.
pub(crate) struct Records {
    pub risks: Vec<Record>,
    pub watches: Vec<Record>,
    pub actions: Vec<Record>,
    pub aims: Vec<Record>,
    pub standards: Vec<Record>,
    pub schemes: Vec<Record>,
    pub horizon: Vec<Record>,
    pub workstreams: Vec<Record>,
    pub milestones: Vec<Record>,
    pub returns: Vec<Record>,
    pub training: Vec<Record>,
    pub decisions: Vec<Record>,
    pub case_studies: Vec<Record>,
    /// Changes to risks and case studies, newest first (for "since last month").
    pub changes: Vec<AuditEntry>,
}

/// Most audit entries read for the month's changes.
const CHANGES_READ: i64 = 2_000;

/// Whether the programme sections belong in this organisation's report.
pub(crate) enum Scope {
    /// They do: the records, and the audit position they were read at.
    Programme(Box<Records>, String),
    /// They do not; the sentence says why.
    Elsewhere(String),
}

impl Records {
    async fn load(store: &dyn ipmo_governance::GovernanceStore) -> Result<Self, StoreError> {
        let mut changes = store.audit(Some("risk"), None, CHANGES_READ).await?;
        changes.extend(store.audit(Some("case-study"), None, CHANGES_READ).await?);
        changes.sort_by_key(|e| std::cmp::Reverse(e.id));
        Ok(Self {
            risks: store.records("risk", false).await?,
            watches: store.records("watch", false).await?,
            actions: store.records("risk-action", false).await?,
            aims: store.records("aim", false).await?,
            standards: store.records("standard", false).await?,
            schemes: store.records("scheme", false).await?,
            horizon: store.records("horizon", false).await?,
            workstreams: store.records("workstream", false).await?,
            milestones: store.records("milestone", false).await?,
            returns: store.records("workforce-return", false).await?,
            training: store.records("training", false).await?,
            decisions: store.records("decision", false).await?,
            case_studies: store.records("case-study", false).await?,
            changes,
        })
    }
}

/// The ICBs the governance workspace says it serves (system organisations of type "Integrated
/// care board" whose ODS code the release knows): the report's default organisation, and the
/// organisations whose reports carry the programme sections.
pub async fn workspace_icbs<'a>(
    r: &'a Release,
    store: &dyn ipmo_governance::GovernanceStore,
) -> Result<Vec<&'a Org>, StoreError> {
    let orgs = store.records("system-org", false).await?;
    let mut out: Vec<&Org> = orgs
        .iter()
        .filter(|o| o.text("org_type") == "Integrated care board")
        .filter_map(|o| r.org(o.text("ods_code").trim()))
        .collect();
    out.dedup_by(|a, b| a.code == b.code);
    Ok(out)
}

/// Whether `org`'s report carries the programme sections, with the records if so.
async fn scope(s: &AppState, org: &Org) -> Result<Scope, StoreError> {
    let r = &s.release;
    let Some(g) = &s.governance else {
        return Ok(Scope::Elsewhere(
            "No governance workspace is attached, so the programme sections have no records.".into(),
        ));
    };
    let icbs = workspace_icbs(r, g.store.as_ref()).await?;
    let within = |icb: &Org| icb.code == org.code || r.ancestors(&org.code).iter().any(|a| a.code == icb.code);
    if !icbs.is_empty() && !icbs.iter().any(|icb| within(icb)) {
        let names: Vec<String> = icbs.iter().map(|o| format!("{} ({})", o.name, o.code)).collect();
        return Ok(Scope::Elsewhere(format!(
            "The programme sections have no records for {}: the governance workspace is {}'s.",
            org.name,
            names.join(" and ")
        )));
    }
    let position = match g.store.audit(None, None, 1).await?.first() {
        Some(e) => format!("audit entry {} ({})", e.id, e.at),
        None => "an empty workspace (no audit entries)".to_string(),
    };
    let records = Records::load(g.store.as_ref()).await?;
    let counted = [
        &records.risks,
        &records.aims,
        &records.standards,
        &records.schemes,
        &records.workstreams,
        &records.returns,
        &records.decisions,
        &records.case_studies,
    ];
    if counted.iter().all(|list| list.is_empty()) {
        return Ok(Scope::Elsewhere(
            "The governance workspace has no records yet (no risks, aims, standards, schemes, workstreams, workforce returns, decisions or case studies), so the programme sections have nothing to report.".into(),
        ));
    }
    let mut position = position;
    if icbs.is_empty() {
        position.push_str("; the workspace names no ICB, so its records are reported for every organisation");
    }
    Ok(Scope::Programme(Box::new(records), position))
}

/// The month a report is for: the one asked for, if the release holds it, else the latest.
fn report_month(r: &Release, asked: Option<YearMonth>) -> Result<YearMonth, WebError> {
    let latest =
        r.latest_month().ok_or_else(|| WebError::NotFound("No measure values have been computed yet.".into()))?;
    match asked {
        None => Ok(latest),
        Some(m) if r.months.contains(&m) => Ok(m),
        Some(m) => Err(WebError::BadParameter(
            "month".into(),
            format!(
                "{m} is not in the data; choose a month from {} to {latest}",
                r.months.first().copied().unwrap_or(latest)
            ),
        )),
    }
}

/// The board report for one organisation and month.
pub async fn document(s: &AppState, req: &ReportRequest) -> Result<Document, WebError> {
    let r = &s.release;
    let org = crate::params::org_of(r, &req.org)?;
    let month = report_month(r, req.month)?;
    let scope = scope(s, org)
        .await
        .map_err(|e| WebError::Internal(format!("the governance records could not be read: {e}")))?;
    let audit = match &scope {
        Scope::Programme(_, position) => position.clone(),
        Scope::Elsewhere(why) => why.clone(),
    };
    let ctx = Context { s, r, org, month, today: req.today, scope: &scope };
    let mut sections = vec![data::summary(&ctx)];
    if req.template == Template::Board {
        sections.extend(data::medicines_value(&ctx));
        sections.push(data::stewardship(&ctx));
        sections.push(data::variation(&ctx));
        sections.extend(programme::sections(&ctx));
    }
    let mut command = format!("ipmo report --org {} --month {month} --as-of {}", org.code, req.today);
    if req.template != Template::Board {
        command.push_str(&format!(" --template {}", req.template.name()));
    }
    Ok(Document {
        title: "Medicines optimisation board report".into(),
        organisation: format!("{} ({})", org.name, org.code),
        period: long_month(month),
        provenance: Provenance { release: r.id.clone(), audit, generated: req.generated.clone(), command },
        sections,
    })
}

/// A date and time as [`ipmo_report::to_pdf`] takes it.
pub fn pdf_timestamp(t: chrono::NaiveDateTime) -> [i32; 6] {
    use chrono::{Datelike, Timelike};
    [t.year(), t.month() as i32, t.day() as i32, t.hour() as i32, t.minute() as i32, t.second() as i32]
}

/// What every section reads.
pub(crate) struct Context<'a> {
    pub s: &'a AppState,
    pub r: &'a Release,
    pub org: &'a Org,
    pub month: YearMonth,
    pub today: NaiveDate,
    pub scope: &'a Scope,
}

impl Context<'_> {
    /// The programme's records, when this report carries them.
    pub(crate) fn records(&self) -> Option<&Records> {
        match self.scope {
            Scope::Programme(records, _) => Some(records),
            Scope::Elsewhere(_) => None,
        }
    }

    /// The sentence a programme section shows when it has no records to show.
    pub(crate) fn no_records(&self) -> String {
        match self.scope {
            Scope::Elsewhere(why) => why.clone(),
            Scope::Programme(..) => "No records.".into(),
        }
    }

    /// The source line of the prescribing data.
    pub(crate) fn epd_source(&self) -> String {
        format!("NHSBSA English Prescribing Dataset, {}; IPMO data release {}", long_month(self.month), self.r.id)
    }

    /// The source line of the programme's records.
    pub(crate) fn records_source(&self) -> String {
        match self.scope {
            Scope::Programme(_, position) => format!("IPMO governance records at {position}"),
            Scope::Elsewhere(_) => "IPMO governance records".into(),
        }
    }

    /// The first day of the month of changes before `today`.
    pub(crate) fn since(&self) -> NaiveDate {
        self.today.checked_sub_months(chrono::Months::new(1)).unwrap_or(self.today)
    }
}

/// A section of `title` with `blocks`.
pub(crate) fn section(id: &str, title: &str, blocks: Vec<Block>) -> Section {
    Section { id: id.into(), title: title.into(), blocks }
}

/// A chart for the report: links removed (the report is read away from the dashboard).
pub(crate) fn unlinked(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(at) = rest.find("<a ") {
        out.push_str(&rest[..at]);
        match rest[at..].find('>') {
            Some(end) => {
                out.push_str("<g>");
                rest = &rest[at + end + 1..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("</a>", "</g>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_charts_become_groups() {
        assert_eq!(
            unlinked(r#"<svg><a href="/x?a=1&amp;b"><circle/></a><a href="/y"></a></svg>"#),
            "<svg><g><circle/></g><g></g></svg>"
        );
        assert_eq!(unlinked("<svg><text>a</text></svg>"), "<svg><text>a</text></svg>");
    }

    #[test]
    fn templates_are_named() {
        for t in [Template::Board, Template::Summary] {
            assert_eq!(Template::parse(t.name()), Some(t));
        }
        assert_eq!(Template::parse("other"), None);
    }
}
