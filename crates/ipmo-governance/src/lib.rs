//! The IPMO programme's governance workspace as data: the system map, strategy and plans on a
//! page, stakeholders, the integrated risk register, the assurance framework, the workforce
//! plan, case studies and decisions, with local accounts, roles, sessions and an audit trail of
//! every change. The seed documents ask each system to produce these; keeping them as records
//! beside the prescribing measures lets a risk watch a measure and a performance standard take
//! its RAG from the data.
//!
//! [`kinds`] declares every record kind and validates input; [`store::GovernanceStore`] is the
//! database interface and [`SqlStore`] its implementation in SQLite or PostgreSQL (sqlx,
//! migrations applied on open; [`Location`] says which); [`auth`] hashes passwords and makes tokens; [`risk`] scores the 5×5 matrix.

pub mod auth;
mod copy;
pub mod due;
pub mod kinds;
pub mod location;
pub mod records_csv;
pub mod risk;
pub mod sql;
pub mod store;

pub use auth::Role;
pub use kinds::{FieldError, KINDS, Kind};
pub use location::Location;
pub use sql::SqlStore;
pub use store::{AuditEntry, GovernanceStore, Record, Session, StoreError, User};

/// The governance database's file name inside a warehouse folder.
pub const DATABASE_FILE: &str = "governance.sqlite";
