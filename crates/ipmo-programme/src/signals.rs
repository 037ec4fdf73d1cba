//! A watched measure's signal: whether the trigger a risk watches (special cause of concern, a
//! consistent failure against target, the worst national decile, a CUSUM change for the worse)
//! has fired in the latest month, judged with the same analysis functions the dashboard uses.

use ipmo_governance::store::Record;
use ipmo_measures::analysis::{self, AlertKind, Judgement, Tone};
use ipmo_release::Release;
use ipmo_stats::spc::{Assurance, PointClass, Variation};

/// What a watched measure says now.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    /// Whether the trigger has fired.
    pub turned: bool,
    /// One sentence for people, naming the month.
    pub text: String,
}

/// The live signal of a watch record (organisation + measure + trigger).
pub fn watch_signal(r: &Release, watch: &Record) -> Signal {
    let (org_code, measure_id, trigger) = (watch.text("org"), watch.text("measure"), watch.text("trigger"));
    let quiet = |text: String| Signal { turned: false, text };
    let Some(m) = r.library.measures.iter().find(|m| m.id == measure_id) else {
        return quiet(format!("The measure \"{measure_id}\" is not in this release's library."));
    };
    let Some(org) = r.org(org_code) else {
        return quiet(format!("The organisation {org_code} is not in this release."));
    };
    let Some(latest) = r.latest_month() else { return quiet("No measure values are loaded.".into()) };
    let series = r.series(&m.id, org).unwrap_or(&[]);
    if !series.iter().any(|p| p.month == latest && p.value().is_some()) {
        return quiet(format!("No value for {} in {latest}, the latest month.", org.name));
    }
    let judgement = Judgement::of(m);
    let alerts = analysis::alerts(series, &judgement, latest);
    let bad = |kinds: &[AlertKind]| alerts.iter().find(|a| a.tone == Tone::Bad && kinds.contains(&a.kind));
    let fired = match trigger {
        "SPC special cause of concern" => {
            let chart = analysis::spc(series, &judgement);
            let last = chart.as_ref().and_then(|c| c.chart.points.last().map(|p| p.class));
            match (last, chart.as_ref().map(|c| c.chart.variation)) {
                (Some(PointClass::Concern), _) | (_, Some(Variation::ConcernHigh | Variation::ConcernLow)) => {
                    Some(format!("{latest}: special cause of concern in {}'s SPC chart", org.name))
                }
                (None, _) => return quiet(format!("Too few months for an SPC chart of {}.", org.name)),
                _ => None,
            }
        }
        "Assurance: consistently fails target" => {
            if m.target.is_none() {
                return quiet(format!("{} has no target, so there is no assurance to watch.", m.title));
            }
            match analysis::spc(series, &judgement).and_then(|c| c.chart.assurance) {
                Some(Assurance::ConsistentlyFail) => {
                    Some(format!("{latest}: {} consistently fails the target", org.name))
                }
                _ => None,
            }
        }
        "Worst decile nationally" => bad(&[AlertKind::TopDecile, AlertKind::BottomDecile]).map(|a| a.message.clone()),
        "CUSUM change for the worse" => bad(&[AlertKind::Changed]).map(|a| a.message.clone()),
        other => return quiet(format!("Unknown trigger \"{other}\".")),
    };
    match fired {
        Some(text) => Signal { turned: true, text },
        None => quiet(format!("{latest}: not triggered ({})", trigger.to_lowercase())),
    }
}
