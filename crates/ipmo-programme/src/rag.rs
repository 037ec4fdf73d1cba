//! A performance standard's RAG, computed rather than typed: the Making Data Count assurance of
//! its measure for its organisation against the standard's target, tempered by the latest
//! variation, with one sentence saying why.

use ipmo_domain::display::{decimals_for, long_month, number};
use ipmo_governance::risk::Rating;
use ipmo_governance::store::Record;
use ipmo_measures::analysis::{self, Judgement};
use ipmo_release::Release;
use ipmo_stats::spc::{Assurance, Variation};

/// A performance standard's RAG, computed from its measure against its target.
#[derive(Clone, Debug, PartialEq)]
pub struct StandardRag {
    /// Green, Amber, Red, or None when it cannot be computed.
    pub rag: Option<&'static str>,
    /// Why, in one sentence.
    pub why: String,
}

/// Making Data Count assurance against the standard's target, tempered by variation: a
/// consistent pass is green unless the latest variation is of concern (then amber); a
/// consistent fail is red; hit and miss is amber. No value for the latest month says so.
pub fn standard_rag(r: &Release, standard: &Record) -> StandardRag {
    let none = |why: String| StandardRag { rag: None, why };
    let (org_code, measure_id) = (standard.text("org"), standard.text("measure"));
    let Some(m) = r.library.measures.iter().find(|m| m.id == measure_id) else {
        return none(format!("The measure \"{measure_id}\" is not in this release's library."));
    };
    let Some(org) = r.org(org_code) else {
        return none(format!("The organisation {org_code} is not in this release."));
    };
    let Some(latest) = r.latest_month() else { return none("No measure values are loaded.".into()) };
    let Some(target) = standard.number("target") else { return none("The standard has no target.".into()) };
    let series = r.series(&m.id, org).unwrap_or(&[]);
    let Some(last) = series.iter().find(|p| p.month == latest).and_then(|p| p.value()) else {
        return none(format!(
            "No value for {} in {}, the latest month: the standard cannot be assessed.",
            org.name,
            long_month(latest)
        ));
    };
    let judgement = Judgement { target: Some(target), ..Judgement::of(m) };
    let Some(chart) = analysis::spc(series, &judgement) else {
        return none(format!("Too few months of {} for an SPC chart.", org.name));
    };
    let concern = matches!(chart.chart.variation, Variation::ConcernHigh | Variation::ConcernLow);
    let latest_text = format!("{}: {} {}", long_month(latest), value(last), m.unit());
    let (rag, what) = match chart.chart.assurance {
        Some(Assurance::ConsistentlyPass) if !concern => ("Green", "consistently meets the target"),
        Some(Assurance::ConsistentlyPass) => ("Amber", "meets the target, but the latest variation is of concern"),
        Some(Assurance::ConsistentlyFail) => ("Red", "consistently fails the target"),
        Some(Assurance::HitOrMiss) | None => ("Amber", "will hit or miss the target by chance"),
    };
    StandardRag { rag: Some(rag), why: format!("{latest_text}; the process {what} (target {}).", value(target)) }
}

/// A value standing alone in a sentence, with decimals by its own size (as the pages show it).
fn value(v: f64) -> String {
    number(v, decimals_for(v).min(3))
}
/// An aim in the assurance framework: the computed RAG of each of its performance standards and
/// savings schemes, and its highest current principal risk.
#[derive(Clone, Debug, PartialEq)]
pub struct AimStanding<'a> {
    /// One RAG per standard, then per scheme, tied to the aim (None: not computable).
    pub rags: Vec<Option<&'static str>>,
    /// The aim's principal risk with the highest current score, and that rating.
    pub top_risk: Option<(&'a Record, Rating)>,
}

impl AimStanding<'_> {
    /// As red as its reddest standard or scheme; None when none has a RAG.
    pub fn overall(&self) -> Option<&'static str> {
        ["Red", "Amber", "Green"].into_iter().find(|c| self.rags.contains(&Some(*c)))
    }

    /// How many of its standards and schemes have `rag` (None: no data).
    pub fn count(&self, rag: Option<&str>) -> usize {
        self.rags.iter().filter(|x| **x == rag).count()
    }
}

/// `aim`'s standing: its standards' RAGs computed from the release, its schemes' from
/// `scheme_rag` (measured by the caller, which keeps them per record version), and its highest
/// current principal risk among `risks`.
pub fn aim_standing<'a>(
    r: &Release,
    aim: &Record,
    standards: &[Record],
    schemes: &[Record],
    scheme_rag: impl Fn(&Record) -> Option<&'static str>,
    risks: &'a [Record],
) -> AimStanding<'a> {
    let of_aim = |x: &&Record| x.int("aim") == Some(aim.id);
    let rags = standards
        .iter()
        .filter(of_aim)
        .map(|x| standard_rag(r, x).rag)
        .chain(schemes.iter().filter(of_aim).map(scheme_rag))
        .collect();
    let top_risk = risks
        .iter()
        .filter(of_aim)
        .filter_map(|x| Rating::of_record(&x.data, "current").map(|rt| (x, rt)))
        .max_by_key(|(_, rt)| rt.score());
    AimStanding { rags, top_risk }
}
