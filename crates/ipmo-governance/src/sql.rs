//! The governance store in SQL, written once for SQLite and PostgreSQL through sqlx's `Any`
//! driver (the few statements that differ are in `location.rs`). SQLite is one
//! file beside the warehouse for one server; PostgreSQL serves a managed database and several
//! servers at once. Every write takes the database's write lock first and records itself in
//! the audit trail in the same transaction. Every statement binds its values; the only SQL
//! built from text names tables and columns from this crate's own lists, or is the trigger
//! definitions a SQLite restore reads back from SQLite's own catalogue.

use crate::auth::{self, Role};
use crate::copy;
use crate::kinds::{self, FieldError};
use crate::location::{Engine, Location};
use crate::store::{
    AuditEntry, Data, GovernanceStore, NewSession, Record, Session, SignInEvent, StoreError, StoreResult, User,
};
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Row};
use std::path::Path;
use std::time::Duration;

/// How long a sign-in lasts.
pub const SESSION_HOURS: i64 = 12;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn record_of(row: &AnyRow) -> StoreResult<Record> {
    let data: String = row.try_get("data")?;
    let data = match serde_json::from_str::<Value>(&data) {
        Ok(Value::Object(m)) => m,
        _ => return Err(StoreError::NotFound("a record's stored fields are not a JSON object".into())),
    };
    Ok(Record {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        version: row.try_get("version")?,
        archived: row.try_get::<i64, _>("archived")? != 0,
        data,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get("updated_by")?,
    })
}

fn user_of(row: &AnyRow) -> StoreResult<User> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        disabled: row.try_get::<i64, _>("disabled")? != 0,
    })
}

const RECORD_COLUMNS: &str = "id, kind, version, archived, data, created_at, created_by, updated_at, updated_by";

async fn audit(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    entity: &str,
    entity_id: Option<i64>,
    before: Option<&Value>,
    after: Option<&Value>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit (at, actor, action, entity, entity_id, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now())
    .bind(actor)
    .bind(action)
    .bind(entity)
    .bind(entity_id)
    .bind(before.map(Value::to_string))
    .bind(after.map(Value::to_string))
    .execute(conn)
    .await?;
    Ok(())
}

fn record_json(r: &Record) -> Value {
    serde_json::json!({ "version": r.version, "archived": r.archived, "data": r.data })
}

/// Checks that every reference field points at a live record of the right kind.
async fn check_refs(conn: &mut AnyConnection, kind: &kinds::Kind, data: &Data, own_id: Option<i64>) -> StoreResult<()> {
    let mut errors = Vec::new();
    for (field, target) in kind.refs() {
        let Some(id) = data.get(field.name).and_then(Value::as_i64) else { continue };
        let found: Option<(String, i64)> = sqlx::query_as("SELECT kind, archived FROM records WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        let target_kind = kinds::kind(target).map_or(target, |k| k.title);
        let reference = kinds::kind(target).map_or(id.to_string(), |k| k.reference(id));
        match found {
            Some((k, 0)) if k == target && Some(id) != own_id => {}
            Some((k, _)) if k == target && Some(id) == own_id => {
                errors.push(FieldError::new(field.name, format!("{} cannot point at the record itself", field.label)))
            }
            Some((k, 1)) if k == target => errors.push(FieldError::new(
                field.name,
                format!("{reference} is archived; choose a current {}", target_kind.to_lowercase()),
            )),
            _ => errors
                .push(FieldError::new(field.name, format!("There is no {} {reference}", target_kind.to_lowercase()))),
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(StoreError::Invalid(errors)) }
}

/// Refuses a save that would put the record in a loop through a field pointing at its own kind
/// (`reports_to`, `parent`), or make a chain longer than [`kinds::MAX_HIERARCHY_DEPTH`] levels.
async fn check_hierarchy(
    conn: &mut AnyConnection,
    engine: Engine,
    kind: &kinds::Kind,
    data: &Data,
    own_id: Option<i64>,
) -> StoreResult<()> {
    let max = kinds::MAX_HIERARCHY_DEPTH;
    for (field, _) in kind.refs().filter(|(_, target)| *target == kind.id) {
        let path = engine.field_arg(field.name);
        // Levels above: walk up one parent at a time (at most `max` lookups).
        let mut above = 0;
        let mut seen = std::collections::HashSet::new();
        let mut cur = data.get(field.name).and_then(Value::as_i64);
        while let Some(id) = cur {
            if Some(id) == own_id {
                let reference = kind.reference(data.get(field.name).and_then(Value::as_i64).unwrap_or(id));
                return Err(StoreError::Invalid(vec![FieldError::new(
                    field.name,
                    format!(
                        "{}: {reference} is already under this record, so this would make a loop; choose someone or something above it",
                        field.label
                    ),
                )]));
            }
            if !seen.insert(id) {
                break; // an older loop elsewhere: stop counting there
            }
            above += 1;
            if above >= max {
                break;
            }
            cur = sqlx::query_scalar::<_, Option<i64>>(engine.parent_sql())
                .bind(&path)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .flatten();
        }
        // Levels below (an existing record may carry a subtree with it).
        let mut below = 0;
        if let Some(own) = own_id {
            let rows: Vec<(i64, Option<i64>)> =
                sqlx::query_as(engine.parents_sql()).bind(&path).bind(kind.id).fetch_all(&mut *conn).await?;
            let mut children: std::collections::HashMap<i64, Vec<i64>> = std::collections::HashMap::new();
            for (id, parent) in rows {
                if let Some(p) = parent.filter(|p| *p != id) {
                    children.entry(p).or_default().push(id);
                }
            }
            let mut level = vec![own];
            let mut visited = std::collections::HashSet::from([own]);
            while below < max {
                level = level
                    .iter()
                    .flat_map(|id| children.get(id).into_iter().flatten().copied())
                    .filter(|c| visited.insert(*c))
                    .collect();
                if level.is_empty() {
                    break;
                }
                below += 1;
            }
        }
        if above + 1 + below > max {
            return Err(StoreError::Invalid(vec![FieldError::new(
                field.name,
                format!(
                    "{}: this would make a chain more than {max} levels deep ({} above this record and {} below); an organogram that deep cannot be read, so link to someone or something higher up",
                    field.label,
                    if above >= max { format!("{max} or more") } else { above.to_string() },
                    if below >= max { format!("{max} or more") } else { below.to_string() },
                ),
            )]));
        }
    }
    Ok(())
}

fn kind_of(id: &str) -> StoreResult<&'static kinds::Kind> {
    kinds::kind(id).ok_or_else(|| StoreError::NotFound(format!("there is no kind of record called \"{id}\"")))
}

/// The SQLite store's schema history; a backup is always a SQLite file with these versions.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
/// The same schema for PostgreSQL, version for version.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A `sqlite://` URL for a file, whatever characters its path holds (`?` and `#` among them).
/// `mode` is `rwc` (create when missing) or `ro`.
fn sqlite_url(path: &Path, mode: &str) -> StoreResult<String> {
    let path =
        std::path::absolute(path).map_err(|e| StoreError::Backup(format!("cannot resolve {}: {e}", path.display())))?;
    let text = path.to_str().ok_or_else(|| StoreError::Backup(format!("{} is not a UTF-8 path", path.display())))?;
    let mut url = String::from("sqlite://");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"/._-~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(format!("{url}?mode={mode}"))
}

/// Opens a pool on a SQLite file: WAL so pages read while an editor writes, full fsync so a
/// saved record survives a power cut, foreign keys on, and a wait rather than an error when
/// another process holds the write lock.
async fn sqlite_pool(path: &Path, mode: &str, connections: u32) -> StoreResult<AnyPool> {
    let url = sqlite_url(path, mode)?;
    let writable = mode != "ro";
    let pool = AnyPoolOptions::new()
        .max_connections(connections)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                let pragmas = if writable {
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;"
                } else {
                    "PRAGMA busy_timeout = 10000;"
                };
                sqlx::raw_sql(pragmas).execute(conn).await?;
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    Ok(pool)
}

/// Governance records in a SQLite file or a PostgreSQL database, through one body of SQL.
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    location: Location,
}

impl SqlStore {
    /// Opens the governance database (creating a SQLite file when missing; a PostgreSQL
    /// database must exist) and brings its schema up to date.
    pub async fn open(location: &Location) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        match location {
            Location::File(path) => {
                let pool = sqlite_pool(path, "rwc", 4).await?;
                SQLITE_MIGRATIONS.run(&pool).await?;
                Ok(Self { pool, location: location.clone() })
            }
            Location::Postgres(url) => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .map_err(|e| StoreError::Unreachable { location: location.to_string(), reason: e.to_string() })?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Ok(Self { pool, location: location.clone() })
            }
        }
    }

    /// Opens (creating if needed) a SQLite file.
    pub async fn open_file(path: &Path) -> StoreResult<Self> {
        Self::open(&Location::File(path.to_path_buf())).await
    }

    /// Checks that `path` can be restored from: a file other than this database, a sound SQLite
    /// database, with schema versions this store knows. `ipmo db restore` calls it before it
    /// copies the current database aside, so a bad source leaves nothing behind.
    pub async fn check_backup(&self, path: &Path) -> StoreResult<()> {
        if !path.is_file() {
            return Err(StoreError::Backup(format!("{} is not a file", path.display())));
        }
        if let (Ok(a), Some(Ok(b))) = (path.canonicalize(), self.location.file().map(Path::canonicalize))
            && a == b
        {
            return Err(StoreError::Backup(format!(
                "{} is the live database itself; restore from a copy made by `ipmo db backup`",
                path.display()
            )));
        }
        let check = sqlite_pool(path, "ro", 1).await.map_err(|e| {
            StoreError::Backup(format!(
                "{} cannot be opened as a database ({e}); is it a backup made by `ipmo db backup`?",
                path.display()
            ))
        })?;
        let ours: Vec<i64> = SQLITE_MIGRATIONS.iter().map(|m| m.version).collect();
        let theirs: Result<Vec<i64>, _> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&check)
                .await;
        let sound: Result<String, _> = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&check).await;
        check.close().await;
        match (theirs, sound) {
            (Ok(v), Ok(s)) if s == "ok" && !v.is_empty() && v.iter().all(|x| ours.contains(x)) => {}
            (Ok(v), Ok(s)) if s == "ok" => {
                return Err(StoreError::Backup(format!(
                    "{} has schema versions {v:?} but this ipmo knows {ours:?}; restore it with the ipmo version that made it",
                    path.display()
                )));
            }
            _ => return Err(StoreError::Backup(format!("{} is not a sound IPMO governance backup", path.display()))),
        }
        Ok(())
    }

    /// Where the records are.
    pub fn location(&self) -> &Location {
        &self.location
    }

    fn engine(&self) -> Engine {
        self.location.engine()
    }

    /// Closes the pool (for SQLite, checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database is sound: SQLite's `PRAGMA integrity_check` on a file; on
    /// PostgreSQL (which checks its own pages) that every table reads and every protection
    /// trigger is in place.
    pub async fn integrity_ok(&self) -> StoreResult<bool> {
        match self.engine() {
            Engine::Sqlite => {
                let result: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&self.pool).await?;
                Ok(result == "ok")
            }
            Engine::Postgres => {
                copy::rows_held(&mut *self.pool.acquire().await?).await?;
                let guards: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D' AND tgrelid IN ('records'::regclass, 'audit'::regclass)",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(guards == copy::POSTGRES_GUARDS)
            }
        }
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<(User, String)> {
        let row = sqlx::query(
            "SELECT id, username, display_name, role, disabled, password_hash FROM users WHERE lower(username) = lower($1)",
        )
        .bind(username.trim())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("there is no account called \"{}\"", username.trim())))?;
        Ok((user_of(&row)?, row.try_get("password_hash")?))
    }

    async fn write_record(
        &self,
        id: i64,
        expected_version: i64,
        actor: &str,
        change: RecordChange,
    ) -> StoreResult<Record> {
        let mut tx = self.engine().begin_write(&self.pool).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RECORD_COLUMNS} FROM records WHERE id = $1")))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("there is no record {id}")))?;
        let before = record_of(&row)?;
        if before.version != expected_version {
            return Err(StoreError::Conflict { current: Box::new(before) });
        }
        let (data, archived, action) = match change {
            RecordChange::Fields(data) => {
                check_refs(&mut tx, kind_of(&before.kind)?, &data, Some(id)).await?;
                check_hierarchy(&mut tx, self.engine(), kind_of(&before.kind)?, &data, Some(id)).await?;
                (data, before.archived, "update")
            }
            RecordChange::Archive(a) => (before.data.clone(), a, if a { "archive" } else { "restore" }),
        };
        let at = now();
        sqlx::query("UPDATE records SET data = $1, archived = $2, version = version + 1, updated_at = $3, updated_by = $4 WHERE id = $5 AND version = $6")
            .bind(Value::Object(data.clone()).to_string())
            .bind(i64::from(archived))
            .bind(&at)
            .bind(actor)
            .bind(id)
            .bind(expected_version)
            .execute(&mut *tx)
            .await?;
        let after = Record {
            version: before.version + 1,
            archived,
            data,
            updated_at: at,
            updated_by: actor.to_string(),
            ..before.clone()
        };
        audit(&mut tx, actor, action, &before.kind, Some(id), Some(&record_json(&before)), Some(&record_json(&after)))
            .await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn insert_record(
        conn: &mut AnyConnection,
        engine: Engine,
        kind: &kinds::Kind,
        data: Data,
        actor: &str,
    ) -> StoreResult<Record> {
        check_refs(conn, kind, &data, None).await?;
        check_hierarchy(conn, engine, kind, &data, None).await?;
        let at = now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO records (kind, version, archived, data, created_at, created_by, updated_at, updated_by) VALUES ($1, 1, 0, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(kind.id)
        .bind(Value::Object(data.clone()).to_string())
        .bind(&at)
        .bind(actor)
        .bind(&at)
        .bind(actor)
        .fetch_one(&mut *conn)
        .await?;
        let record = Record {
            id,
            kind: kind.id.to_string(),
            version: 1,
            archived: false,
            data,
            created_at: at.clone(),
            created_by: actor.to_string(),
            updated_at: at,
            updated_by: actor.to_string(),
        };
        audit(conn, actor, "create", kind.id, Some(id), None, Some(&record_json(&record))).await?;
        Ok(record)
    }

    async fn change_user(&self, username: &str, actor: &str, change: AccountChange) -> StoreResult<User> {
        let (user, _) = self.user_by_name(username).await?;
        let (action, statement) = match change {
            AccountChange::Disabled(disabled) => (
                if disabled { "user.disable" } else { "user.enable" },
                sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3").bind(i64::from(disabled)),
            ),
            AccountChange::Password(hash) => (
                "user.reset-password",
                sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3").bind(hash),
            ),
        };
        let mut tx = self.engine().begin_write(&self.pool).await?;
        statement.bind(now()).bind(user.id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user.id).execute(&mut *tx).await?;
        let row = sqlx::query("SELECT id, username, display_name, role, disabled FROM users WHERE id = $1")
            .bind(user.id)
            .fetch_one(&mut *tx)
            .await?;
        let after = user_of(&row)?;
        let json =
            |u: &User| serde_json::json!({ "username": u.username, "role": u.role.as_str(), "disabled": u.disabled });
        audit(&mut tx, actor, action, "user", Some(user.id), Some(&json(&user)), Some(&json(&after))).await?;
        tx.commit().await?;
        Ok(after)
    }
}

/// argon2 is slow and memory-hungry on purpose, so it runs on the bounded password pool rather
/// than an async worker or an unbounded blocking thread.
async fn hash_off_thread(password: &str) -> StoreResult<String> {
    let password = password.to_string();
    auth::PasswordWorkers::shared().run(move || auth::hash_password(&password)).await?.map_err(StoreError::Hashing)
}

enum RecordChange {
    Fields(Data),
    Archive(bool),
}

enum AccountChange {
    Disabled(bool),
    Password(String),
}

#[async_trait::async_trait]
impl GovernanceStore for SqlStore {
    async fn add_user(
        &self,
        username: &str,
        display_name: &str,
        role: Role,
        password: &str,
        actor: &str,
    ) -> StoreResult<User> {
        let username = username.trim();
        if username.is_empty()
            || username.len() > 64
            || !username.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
        {
            return Err(StoreError::Invalid(vec![FieldError::new(
                "username",
                "A username is 1–64 letters, digits, dots, hyphens, underscores or @",
            )]));
        }
        if let Some(problem) = auth::password_problem(password) {
            return Err(StoreError::Invalid(vec![FieldError::new("password", problem)]));
        }
        let hash = hash_off_thread(password).await?;
        let mut tx = self.engine().begin_write(&self.pool).await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE lower(username) = lower($1)")
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Duplicate(username.to_string()));
        }
        let at = now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, display_name, role, password_hash, disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, 0, $5, $6) RETURNING id",
        )
        .bind(username)
        .bind(if display_name.trim().is_empty() { username } else { display_name.trim() })
        .bind(role.as_str())
        .bind(hash)
        .bind(&at)
        .bind(&at)
        .fetch_one(&mut *tx)
        .await?;
        let after = serde_json::json!({ "username": username, "role": role.as_str(), "disabled": false });
        audit(&mut tx, actor, "user.add", "user", Some(id), None, Some(&after)).await?;
        tx.commit().await?;
        Ok(User {
            id,
            username: username.to_string(),
            display_name: if display_name.trim().is_empty() {
                username.to_string()
            } else {
                display_name.trim().to_string()
            },
            role,
            disabled: false,
        })
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let rows =
            sqlx::query("SELECT id, username, display_name, role, disabled FROM users ORDER BY lower(username), id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(user_of).collect()
    }

    async fn authenticate(&self, username: &str, password: &str) -> StoreResult<Option<User>> {
        let (user, hash) = match self.user_by_name(username).await {
            Ok(found) => found,
            Err(StoreError::NotFound(_)) => {
                // Spend the same effort as a real check, so timing does not reveal which names exist.
                if let Err(StoreError::Busy(busy)) = hash_off_thread(password).await {
                    return Err(busy.into());
                }
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let password = password.to_string();
        let ok = auth::PasswordWorkers::shared().run(move || auth::verify_password(&password, &hash)).await?;
        Ok((ok && !user.disabled).then_some(user))
    }

    async fn set_disabled(&self, username: &str, disabled: bool, actor: &str) -> StoreResult<User> {
        self.change_user(username, actor, AccountChange::Disabled(disabled)).await
    }

    async fn set_password(&self, username: &str, password: &str, actor: &str) -> StoreResult<User> {
        if let Some(problem) = auth::password_problem(password) {
            return Err(StoreError::Invalid(vec![FieldError::new("password", problem)]));
        }
        let hash = hash_off_thread(password).await?;
        self.change_user(username, actor, AccountChange::Password(hash)).await
    }

    async fn start_session(&self, user: &User) -> StoreResult<NewSession> {
        let token = auth::new_token();
        let csrf = auth::new_token();
        let now = chrono::Utc::now();
        let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(fmt(now)).execute(&self.pool).await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(auth::token_hash(&token))
        .bind(user.id)
        .bind(&csrf)
        .bind(fmt(now))
        .bind(fmt(now + chrono::Duration::hours(SESSION_HOURS)))
        .execute(&self.pool)
        .await?;
        Ok(NewSession { token, csrf })
    }

    async fn session(&self, token: &str) -> StoreResult<Option<Session>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.role, u.disabled, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(auth::token_hash(token))
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => {
                let user = user_of(&row)?;
                Ok((!user.disabled).then(|| Session { user, csrf: row.try_get("csrf_token").unwrap_or_default() }))
            }
            None => Ok(None),
        }
    }

    async fn end_session(&self, token: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(auth::token_hash(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn log_sign_in(&self, e: &SignInEvent) -> StoreResult<()> {
        let short = |s: &str, n: usize| s.chars().take(n).collect::<String>();
        sqlx::query("INSERT INTO sign_in_events (at, event, username, client, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(now())
            .bind(short(&e.event, 40))
            .bind(short(&e.username, 100))
            .bind(short(&e.client, 100))
            .bind(short(&e.detail, 300))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn sign_in_events(&self, limit: i64) -> StoreResult<Vec<SignInEvent>> {
        let rows =
            sqlx::query("SELECT at, event, username, client, detail FROM sign_in_events ORDER BY id DESC LIMIT $1")
                .bind(limit.clamp(1, 10_000))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(SignInEvent {
                    at: r.try_get("at")?,
                    event: r.try_get("event")?,
                    username: r.try_get("username")?,
                    client: r.try_get("client")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn recent_failures(&self, username: &str, client: &str) -> StoreResult<auth::RecentFailures> {
        let window = chrono::Duration::from_std(auth::LOCKOUT).unwrap_or_default();
        let since = (chrono::Utc::now() - window).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let username: String = username.trim().chars().take(100).collect();
        let account: Vec<String> = sqlx::query_scalar(
            "SELECT at FROM sign_in_events WHERE event = 'sign-in.failed' AND lower(username) = lower($1) AND at >= $2 \
             AND id > COALESCE((SELECT MAX(id) FROM sign_in_events WHERE event = 'sign-in' AND lower(username) = lower($1)), 0) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(&username)
        .bind(&since)
        .bind(auth::MAX_FAILURES as i64)
        .fetch_all(&self.pool)
        .await?;
        let client: Vec<String> = sqlx::query_scalar(
            "SELECT at FROM sign_in_events WHERE event = 'sign-in.failed' AND client = $1 AND at >= $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(client)
        .bind(&since)
        .bind(auth::MAX_CLIENT_FAILURES as i64)
        .fetch_all(&self.pool)
        .await?;
        let times = |texts: Vec<String>| {
            texts
                .iter()
                .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .collect()
        };
        Ok(auth::RecentFailures { account: times(account), client: times(client) })
    }

    async fn records(&self, kind: &str, include_archived: bool) -> StoreResult<Vec<Record>> {
        kind_of(kind)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE kind = $1 AND (archived = 0 OR $2) ORDER BY id"
        )))
        .bind(kind)
        .bind(include_archived)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_of).collect()
    }

    async fn records_page(
        &self,
        kind: &str,
        include_archived: bool,
        offset: usize,
        limit: usize,
    ) -> StoreResult<(Vec<Record>, usize)> {
        kind_of(kind)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE kind = $1 AND (archived = 0 OR $2) ORDER BY id LIMIT $3 OFFSET $4"
        )))
        .bind(kind)
        .bind(include_archived)
        .bind(limit.clamp(1, 1_000) as i64)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE kind = $1 AND (archived = 0 OR $2)")
            .bind(kind)
            .bind(include_archived)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows.iter().map(record_of).collect::<StoreResult<_>>()?, usize::try_from(total).unwrap_or(0)))
    }

    async fn counts(&self, include_archived: bool) -> StoreResult<std::collections::BTreeMap<String, usize>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, COUNT(*) FROM records WHERE archived = 0 OR $1 GROUP BY kind")
                .bind(include_archived)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(k, n)| (k, usize::try_from(n).unwrap_or(0))).collect())
    }

    async fn record(&self, id: i64) -> StoreResult<Option<Record>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RECORD_COLUMNS} FROM records WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_of).transpose()
    }

    async fn create(&self, kind: &str, data: Data, actor: &str) -> StoreResult<Record> {
        let kind = kind_of(kind)?;
        let mut tx = self.engine().begin_write(&self.pool).await?;
        let record = Self::insert_record(&mut tx, self.engine(), kind, data, actor).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn update(&self, id: i64, expected_version: i64, data: Data, actor: &str) -> StoreResult<Record> {
        self.write_record(id, expected_version, actor, RecordChange::Fields(data)).await
    }

    async fn set_archived(&self, id: i64, expected_version: i64, archived: bool, actor: &str) -> StoreResult<Record> {
        self.write_record(id, expected_version, actor, RecordChange::Archive(archived)).await
    }

    async fn import(&self, kind: &str, rows: Vec<Data>, actor: &str) -> StoreResult<usize> {
        let kind = kind_of(kind)?;
        let n = rows.len();
        let mut tx = self.engine().begin_write(&self.pool).await?;
        for (i, data) in rows.into_iter().enumerate() {
            Self::insert_record(&mut tx, self.engine(), kind, data, actor).await.map_err(|e| match e {
                StoreError::Invalid(errors) => StoreError::Invalid(
                    errors
                        .into_iter()
                        .map(|e| FieldError::new(&e.field, format!("row {}: {}", i + 1, e.message)))
                        .collect(),
                ),
                other => other,
            })?;
        }
        audit(&mut tx, actor, "import", kind.id, None, None, Some(&serde_json::json!({ "records": n }))).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn audit(&self, entity: Option<&str>, entity_id: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, entity, entity_id, before, after FROM audit WHERE ($1 IS NULL OR entity = $2) AND ($3 IS NULL OR entity_id = $4) ORDER BY id DESC LIMIT $5",
        )
        .bind(entity)
        .bind(entity)
        .bind(entity_id)
        .bind(entity_id)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    entity: r.try_get("entity")?,
                    entity_id: r.try_get("entity_id")?,
                    before: json(r.try_get("before")?),
                    after: json(r.try_get("after")?),
                })
            })
            .collect()
    }

    async fn backup(&self, path: &Path) -> StoreResult<()> {
        if path.exists() {
            return Err(StoreError::Backup(format!(
                "{} already exists; give a new file name for the backup",
                path.display()
            )));
        }
        match self.engine() {
            Engine::Sqlite => {
                let target = path
                    .to_str()
                    .ok_or_else(|| StoreError::Backup(format!("{} is not a UTF-8 path", path.display())))?;
                sqlx::query("VACUUM INTO $1").bind(target).execute(&self.pool).await?;
            }
            Engine::Postgres => {
                // A SQLite file, written aside and renamed into place: one backup format for
                // both stores, which either can restore and `ipmo db migrate` can read.
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let partial = path.with_file_name(format!(".{name}.partial"));
                let remove_partial = || {
                    for leftover in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{leftover}", partial.display()));
                    }
                };
                remove_partial();
                let file = Self::open_file(&partial).await?;
                let copied = self.copy_into(&file, None).await;
                file.close().await;
                if let Err(e) = copied {
                    remove_partial();
                    return Err(e);
                }
                std::fs::rename(&partial, path).map_err(|e| {
                    StoreError::Backup(format!("cannot move the backup into place at {}: {e}", path.display()))
                })?;
            }
        }
        Ok(())
    }

    async fn restore(&self, path: &Path, actor: &str) -> StoreResult<()> {
        self.check_backup(path).await?;
        let source = sqlite_pool(path, "ro", 1).await?;
        let result = async {
            let mut from = source.acquire().await?;
            let mut tx = self.engine().begin_write(&self.pool).await?;
            let guards = copy::lift_guards(&mut tx, self.engine()).await?;
            for table in ["sessions", "audit", "records", "users"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(&mut *tx).await?;
            }
            // Everyone signs in again; the sign-in log is not rolled back.
            let carried = [&copy::USERS, &copy::RECORDS, &copy::AUDIT];
            for table in carried {
                copy::copy_table(&mut from, &mut tx, table).await?;
            }
            copy::continue_ids(&mut tx, self.engine(), &carried).await?;
            copy::put_back_guards(&mut tx, guards).await?;
            let from = path.display().to_string();
            audit(
                &mut tx,
                actor,
                "database.restore",
                "database",
                None,
                None,
                Some(&serde_json::json!({ "from": from })),
            )
            .await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        }
        .await;
        source.close().await;
        result
    }
}

impl SqlStore {
    /// Copies every account, record (with its version), audit entry and sign-in event into
    /// `target`, which must hold none, from one consistent snapshot of this store, in one
    /// transaction on the target: all of it arrives or none. With an actor, the target's
    /// audit trail then records the move. Returns the rows copied per table.
    pub async fn copy_into(&self, target: &SqlStore, actor: Option<&str>) -> StoreResult<Vec<(&'static str, u64)>> {
        if self.location == target.location {
            return Err(StoreError::Backup("the source and the target are the same database".into()));
        }
        let snapshot = match self.engine() {
            Engine::Sqlite => "BEGIN",
            Engine::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        let mut from = self.pool.begin_with(snapshot).await?;
        let mut to = target.engine().begin_write(&target.pool).await?;
        let held = copy::rows_held(&mut to).await?;
        if held > 0 {
            return Err(StoreError::Backup(format!(
                "{} already holds {held} rows of accounts, records, audit entries or sign-ins; move a programme only into an empty database",
                target.location
            )));
        }
        let mut copied = Vec::new();
        for table in copy::TABLES {
            copied.push((table.name, copy::copy_table(&mut from, &mut to, table).await?));
        }
        copy::continue_ids(&mut to, target.engine(), &copy::TABLES).await?;
        if let Some(actor) = actor {
            let moved: serde_json::Map<String, Value> =
                copied.iter().map(|(t, n)| (t.to_string(), (*n).into())).collect();
            let after = serde_json::json!({ "from": self.location.to_string(), "rows": moved });
            audit(&mut to, actor, "database.migrate", "database", None, None, Some(&after)).await?;
        }
        to.commit().await?;
        from.rollback().await?;
        Ok(copied)
    }
}
