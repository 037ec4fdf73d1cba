//! Where the governance records live, and the few pieces of SQL that differ between the two
//! engines. Everything else the store says is written once, in SQL both SQLite and PostgreSQL
//! accept (`$1` placeholders, `RETURNING`, `lower()`), and runs through sqlx's `Any` driver.

use std::fmt;
use std::path::{Path, PathBuf};

/// A governance database: a SQLite file (one server, the default beside the warehouse) or a
/// PostgreSQL database (a managed database, or several servers sharing one programme).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    File(PathBuf),
    /// A `postgres://` or `postgresql://` connection URL.
    Postgres(String),
}

impl Location {
    /// Reads what a user wrote after `--governance`, in `IPMO_GOVERNANCE` or in `ipmo.toml`:
    /// a PostgreSQL URL, a `sqlite://` URL, or a file path.
    pub fn parse(text: &str) -> Self {
        let trimmed = text.trim();
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Self::Postgres(trimmed.to_string())
        } else if let Some(path) = trimmed.strip_prefix("sqlite://").or_else(|| trimmed.strip_prefix("sqlite:")) {
            Self::File(PathBuf::from(path))
        } else {
            Self::File(PathBuf::from(text))
        }
    }

    /// The SQLite file, when it is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// The engine that keeps the records here.
    pub(crate) fn engine(&self) -> Engine {
        match self {
            Self::File(_) => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }
}

/// Shows a PostgreSQL URL without its password, so logs and messages can name the database.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; a `password=` query
/// parameter is hidden the same way.
pub fn without_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    if scheme.is_empty() { format!("{authority}{tail}") } else { format!("{scheme}://{authority}{tail}") }
}

/// The engine behind a store, for the statements that must differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

/// Every write transaction takes this PostgreSQL advisory lock first, so writers queue one
/// after another exactly as SQLite's `BEGIN IMMEDIATE` makes them: a reference check and the
/// insert it guards cannot interleave with another server's archive of the target.
const WRITE_LOCK: i64 = 0x0069_706d_6f67_6f76; // "ipmogov" in ASCII

impl Engine {
    /// Starts a write transaction that holds the database's write lock until it ends.
    pub(crate) async fn begin_write(self, pool: &sqlx::AnyPool) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self {
            Self::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
            Self::Postgres => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *tx).await?;
                Ok(tx)
            }
        }
    }

    /// A record's reference field as a whole number: `$1` is what [`Self::field_arg`] gives,
    /// `$2` the record's id.
    pub(crate) fn parent_sql(self) -> &'static str {
        match self {
            Self::Sqlite => "SELECT json_extract(data, $1) FROM records WHERE id = $2",
            Self::Postgres => "SELECT (data::jsonb ->> $1)::bigint FROM records WHERE id = $2",
        }
    }

    /// Every live record of a kind (`$2`) with its reference field (`$1`).
    pub(crate) fn parents_sql(self) -> &'static str {
        match self {
            Self::Sqlite => "SELECT id, json_extract(data, $1) FROM records WHERE kind = $2 AND archived = 0",
            Self::Postgres => "SELECT id, (data::jsonb ->> $1)::bigint FROM records WHERE kind = $2 AND archived = 0",
        }
    }

    /// How the queries above name a field: a JSON path for SQLite, the key for PostgreSQL.
    pub(crate) fn field_arg(self, field: &str) -> String {
        match self {
            Self::Sqlite => format!("$.{field}"),
            Self::Postgres => field.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert!(Location::parse("postgres://ipmo@db/gov").is_postgres());
        assert!(Location::parse("PostgreSQL://ipmo@db/gov").is_postgres());
        assert_eq!(Location::parse("sqlite:///srv/g.sqlite"), Location::File("/srv/g.sqlite".into()));
        assert_eq!(Location::parse("gov.sqlite"), Location::File("gov.sqlite".into()));
        assert_eq!(Location::parse("./postgres/gov.sqlite"), Location::File("./postgres/gov.sqlite".into()));
    }

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(without_password("postgres://ipmo:s3cret@db:5432/gov"), "postgres://ipmo:***@db:5432/gov");
        assert_eq!(
            without_password("postgres://ipmo@db/gov?password=x&sslmode=require"),
            "postgres://ipmo@db/gov?password=***&sslmode=require"
        );
        assert_eq!(without_password("postgres://db/gov"), "postgres://db/gov");
        let shown = Location::parse("postgresql://a:p%40ss@h/g").to_string();
        assert!(!shown.contains("p%40ss"), "{shown}");
    }
}
