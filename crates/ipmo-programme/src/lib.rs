//! The programme's records judged against the data. A risk that watches a measure, a performance
//! standard with a target and a quarter's workforce returns each carry a verdict that is not stored
//! but worked out from the loaded release: whether the watched measure has turned, the standard's
//! RAG, the vacancy rate and where it is heading. The rules live here, apart from the web layer, so
//! that the governance pages, the API and the board report reach the same verdict from the same
//! records.

pub mod horizon;
pub mod ledger;
pub mod rag;
pub mod signals;
pub mod workforce;

pub use rag::{AimStanding, StandardRag, aim_standing, standard_rag};

/// The level of the organisation a record names (its `org` field), or why it has none: the
/// organisation is not in this release.
pub(crate) fn org_level(r: &ipmo_release::Release, code: &str) -> Result<ipmo_domain::practice::OrgLevel, String> {
    r.org(code)
        .and_then(|o| ipmo_domain::practice::OrgLevel::parse(&o.org_type))
        .ok_or_else(|| format!("The organisation {code} is not in this release."))
}
pub use signals::{Signal, watch_signal};
pub use workforce::{
    Projection, QuarterTotals, by_sector, next_quarter, project, projection, training_pipeline, workforce_totals,
};
