//! What the governance workspace needs of a database, as a trait, so the web pages and commands
//! do not care which engine keeps the records ([`crate::SqlStore`] keeps them in SQLite or
//! PostgreSQL).

use crate::auth::Role;
use crate::kinds::FieldError;
use serde_json::{Map, Value};
use std::path::Path;

/// A programme record of any kind.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Record {
    /// Unique across kinds.
    pub id: i64,
    /// The kind's id ([`crate::kinds::KINDS`]).
    pub kind: String,
    /// Starts at 1 and goes up by one with every change: an edit names the version it started
    /// from, and a stale version is a conflict rather than a silent overwrite.
    pub version: i64,
    /// Archived records are kept, and hidden from lists unless asked for.
    pub archived: bool,
    /// The kind's fields.
    pub data: Map<String, Value>,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: String,
    /// Who last changed it.
    pub updated_by: String,
}

impl Record {
    /// A field as text ("" when absent).
    pub fn text(&self, field: &str) -> &str {
        self.data.get(field).and_then(Value::as_str).unwrap_or("")
    }

    /// A field as a whole number.
    pub fn int(&self, field: &str) -> Option<i64> {
        self.data.get(field).and_then(Value::as_i64)
    }

    /// A field as a number.
    pub fn number(&self, field: &str) -> Option<f64> {
        self.data.get(field).and_then(Value::as_f64)
    }
}

/// An account.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Sign-in name (unique, case-insensitive).
    pub username: String,
    /// Name shown in the audit trail and pages.
    pub display_name: String,
    /// What the account may do.
    pub role: Role,
    /// Disabled accounts cannot sign in, and their sessions end.
    pub disabled: bool,
}

/// A signed-in session.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// Whose session.
    pub user: User,
    /// The session's CSRF token, which every form it submits must carry.
    pub csrf: String,
}

/// A new session: the token goes into the cookie and is not stored.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Cookie value.
    pub token: String,
    /// CSRF token for the session's forms.
    pub csrf: String,
}

/// One entry of the audit trail.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditEntry {
    /// Row id, in order of writing.
    pub id: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who (a username, or `ipmo` for the command line).
    pub actor: String,
    /// create, update, archive, restore, import, user.add, user.disable, … .
    pub action: String,
    /// A record kind, or `user`, or `database`.
    pub entity: String,
    /// The record's or user's id.
    pub entity_id: Option<i64>,
    /// The state before (JSON), for updates, archives and restores.
    pub before: Option<Value>,
    /// The state after (JSON).
    pub after: Option<Value>,
}

impl AuditEntry {
    /// The names of the record's fields this entry changed, comma-separated (none for a create).
    pub fn changed_fields(&self) -> String {
        let data =
            |v: Option<&Value>| v.and_then(|v| v.get("data")).and_then(|d| d.as_object()).cloned().unwrap_or_default();
        let (b, a) = (data(self.before.as_ref()), data(self.after.as_ref()));
        let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter().filter(|k| b.get(*k) != a.get(*k)).map(String::as_str).collect::<Vec<_>>().join(", ")
    }
}

/// A sign-in, failure, lock-out or sign-out, kept for administrators.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SignInEvent {
    /// When (RFC 3339, UTC); set by the store.
    pub at: String,
    /// `sign-in`, `sign-in.failed`, `lockout.account`, `lockout.client` or `sign-out`.
    pub event: String,
    /// The name given (at most 100 characters are kept; it may not be an account).
    pub username: String,
    /// The client address it came from.
    pub client: String,
    /// Anything else worth knowing, in words.
    pub detail: String,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, read or written.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database server could not be reached or refused the connection.
    #[error(
        "cannot connect to the governance database {location}: {reason}; check that the server is running and the URL (user, password, host, port, database) is right"
    )]
    Unreachable {
        /// The database, without its password.
        location: String,
        /// What the driver said.
        reason: String,
    },
    /// A schema migration failed.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// No such record or user.
    #[error("{0}")]
    NotFound(String),
    /// Someone else changed the record since the editor loaded it.
    #[error("{} was changed by {} at {} (version {}) after you opened it", .current.kind, .current.updated_by, .current.updated_at, .current.version)]
    Conflict {
        /// The record as it is now.
        current: Box<Record>,
    },
    /// Fields failed validation (including references to records that do not exist).
    #[error("{} field(s) need attention: {}", .0.len(), .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// A username is taken.
    #[error("there is already an account called \"{0}\"")]
    Duplicate(String),
    /// A password could not be hashed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// Too many passwords are being checked at once; try again in a moment.
    #[error("{0}")]
    Busy(#[from] crate::auth::Busy),
    /// A backup or restore could not be done.
    #[error("{0}")]
    Backup(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// A record's fields for a create or update, already validated against its kind.
pub type Data = Map<String, Value>;

/// Everything the governance workspace reads and writes. Every write records who made it in the
/// audit trail, in the same transaction as the change.
#[async_trait::async_trait]
pub trait GovernanceStore: Send + Sync {
    /// Adds an account. The password must already have passed [`crate::auth::password_problem`].
    async fn add_user(
        &self,
        username: &str,
        display_name: &str,
        role: Role,
        password: &str,
        actor: &str,
    ) -> StoreResult<User>;
    /// Every account, by username.
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Checks a password; None when the account is unknown, disabled or the password is wrong.
    async fn authenticate(&self, username: &str, password: &str) -> StoreResult<Option<User>>;
    /// Disables or re-enables an account (disabling ends its sessions).
    async fn set_disabled(&self, username: &str, disabled: bool, actor: &str) -> StoreResult<User>;
    /// Sets a new password (and ends the account's sessions).
    async fn set_password(&self, username: &str, password: &str, actor: &str) -> StoreResult<User>;
    /// Starts a session for a user.
    async fn start_session(&self, user: &User) -> StoreResult<NewSession>;
    /// The live session with this cookie token, if any.
    async fn session(&self, token: &str) -> StoreResult<Option<Session>>;
    /// Ends a session.
    async fn end_session(&self, token: &str) -> StoreResult<()>;

    /// Keeps a sign-in event (its `at` is ignored and set to now).
    async fn log_sign_in(&self, event: &SignInEvent) -> StoreResult<()>;
    /// The latest sign-in events, newest first.
    async fn sign_in_events(&self, limit: i64) -> StoreResult<Vec<SignInEvent>>;
    /// The failed sign-ins that count against an account (since it last signed in) and a client
    /// address now, from the sign-in log: the sign-in limit every server sharing this database
    /// enforces alike.
    async fn recent_failures(&self, username: &str, client: &str) -> StoreResult<crate::auth::RecentFailures>;

    /// Records of a kind, oldest first; archived ones only when asked for.
    async fn records(&self, kind: &str, include_archived: bool) -> StoreResult<Vec<Record>>;
    /// One page of a kind's records, oldest first (`limit` at most 1,000), and how many there
    /// are in all: lists and the API read a page, so 60,000 stakeholders do not make one
    /// response of 20 MB.
    async fn records_page(
        &self,
        kind: &str,
        include_archived: bool,
        offset: usize,
        limit: usize,
    ) -> StoreResult<(Vec<Record>, usize)>;
    /// How many records each kind holds (kinds with none are absent), counting archived ones
    /// only when asked for.
    async fn counts(&self, include_archived: bool) -> StoreResult<std::collections::BTreeMap<String, usize>>;
    /// One record.
    async fn record(&self, id: i64) -> StoreResult<Option<Record>>;
    /// Creates a record.
    async fn create(&self, kind: &str, data: Data, actor: &str) -> StoreResult<Record>;
    /// Replaces a record's fields, if it is still at `expected_version`.
    async fn update(&self, id: i64, expected_version: i64, data: Data, actor: &str) -> StoreResult<Record>;
    /// Archives or brings back a record, if it is still at `expected_version`.
    async fn set_archived(&self, id: i64, expected_version: i64, archived: bool, actor: &str) -> StoreResult<Record>;
    /// Creates many records of one kind in one transaction: all of them or none. A field error
    /// names the record as `row N: …` (N counting from 1), which callers turn into a line number.
    async fn import(&self, kind: &str, rows: Vec<Data>, actor: &str) -> StoreResult<usize>;
    /// The audit trail, newest first: everything, or one entity's, or one record's.
    async fn audit(&self, entity: Option<&str>, entity_id: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>>;

    /// Writes a consistent copy of the whole database to `path` (which must not exist) while
    /// the server keeps running.
    async fn backup(&self, path: &Path) -> StoreResult<()>;
    /// Replaces the database's content with a backup's, in one transaction, while the server
    /// keeps running. Sessions end; the restore itself is audited.
    async fn restore(&self, path: &Path, actor: &str) -> StoreResult<()>;
}
