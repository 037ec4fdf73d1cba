//! The SQLite store: one file beside the warehouse, in WAL mode so pages read while an editor
//! writes, with full fsync so a saved record survives a power cut. Every statement binds its
//! values; the only SQL built from text is the trigger definitions a restore reads back from
//! SQLite's own catalogue.

use crate::auth::{self, Role};
use crate::kinds::{self, FieldError};
use crate::store::{
    AuditEntry, Data, GovernanceStore, NewSession, Record, Session, SignInEvent, StoreError, StoreResult, User,
};
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a sign-in lasts.
pub const SESSION_HOURS: i64 = 12;

/// Governance records in a SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn record_of(row: &SqliteRow) -> StoreResult<Record> {
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

fn user_of(row: &SqliteRow) -> StoreResult<User> {
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
    conn: &mut SqliteConnection,
    actor: &str,
    action: &str,
    entity: &str,
    entity_id: Option<i64>,
    before: Option<&Value>,
    after: Option<&Value>,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit (at, actor, action, entity, entity_id, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)")
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
async fn check_refs(
    conn: &mut SqliteConnection,
    kind: &kinds::Kind,
    data: &Data,
    own_id: Option<i64>,
) -> StoreResult<()> {
    let mut errors = Vec::new();
    for (field, target) in kind.refs() {
        let Some(id) = data.get(field.name).and_then(Value::as_i64) else { continue };
        let found: Option<(String, i64)> = sqlx::query_as("SELECT kind, archived FROM records WHERE id = ?")
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
    conn: &mut SqliteConnection,
    kind: &kinds::Kind,
    data: &Data,
    own_id: Option<i64>,
) -> StoreResult<()> {
    let max = kinds::MAX_HIERARCHY_DEPTH;
    for (field, _) in kind.refs().filter(|(_, target)| *target == kind.id) {
        let path = format!("$.{}", field.name);
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
            cur = sqlx::query_scalar::<_, Option<i64>>("SELECT json_extract(data, ?) FROM records WHERE id = ?")
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
                sqlx::query_as("SELECT id, json_extract(data, ?) FROM records WHERE kind = ? AND archived = 0")
                    .bind(&path)
                    .bind(kind.id)
                    .fetch_all(&mut *conn)
                    .await?;
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

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, path: path.to_path_buf() })
    }

    /// Checks that `path` can be restored from: a file other than this database, a sound SQLite
    /// database, with schema versions this store knows. `ipmo db restore` calls it before it
    /// copies the current database aside, so a bad source leaves nothing behind.
    pub async fn check_backup(&self, path: &Path) -> StoreResult<()> {
        if !path.is_file() {
            return Err(StoreError::Backup(format!("{} is not a file", path.display())));
        }
        if let (Ok(a), Ok(b)) = (path.canonicalize(), self.path.canonicalize())
            && a == b
        {
            return Err(StoreError::Backup(format!(
                "{} is the live database itself; restore from a copy made by `ipmo db backup`",
                path.display()
            )));
        }
        // Check the backup on its own first: a sound SQLite file with this store's schema.
        let backup = SqliteConnectOptions::new().filename(path).read_only(true);
        let check = SqlitePoolOptions::new().max_connections(1).connect_with(backup).await.map_err(|e| {
            StoreError::Backup(format!(
                "{} cannot be opened as a database ({e}); is it a backup made by `ipmo db backup`?",
                path.display()
            ))
        })?;
        let ours: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(&self.pool).await?;
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

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether SQLite finds the file sound (`PRAGMA integrity_check`).
    pub async fn integrity_ok(&self) -> StoreResult<bool> {
        let result: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&self.pool).await?;
        Ok(result == "ok")
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<(User, String)> {
        let row = sqlx::query(
            "SELECT id, username, display_name, role, disabled, password_hash FROM users WHERE username = ?",
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RECORD_COLUMNS} FROM records WHERE id = ?")))
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
                check_hierarchy(&mut tx, kind_of(&before.kind)?, &data, Some(id)).await?;
                (data, before.archived, "update")
            }
            RecordChange::Archive(a) => (before.data.clone(), a, if a { "archive" } else { "restore" }),
        };
        let at = now();
        sqlx::query("UPDATE records SET data = ?, archived = ?, version = version + 1, updated_at = ?, updated_by = ? WHERE id = ? AND version = ?")
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
        conn: &mut SqliteConnection,
        kind: &kinds::Kind,
        data: Data,
        actor: &str,
    ) -> StoreResult<Record> {
        check_refs(conn, kind, &data, None).await?;
        check_hierarchy(conn, kind, &data, None).await?;
        let at = now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO records (kind, version, archived, data, created_at, created_by, updated_at, updated_by) VALUES (?, 1, 0, ?, ?, ?, ?, ?) RETURNING id",
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

    async fn change_user(
        &self,
        username: &str,
        actor: &str,
        action: &str,
        sql: &'static str,
        value: String,
    ) -> StoreResult<User> {
        let (user, _) = self.user_by_name(username).await?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(sql).bind(value).bind(now()).bind(user.id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = ?").bind(user.id).execute(&mut *tx).await?;
        let row = sqlx::query("SELECT id, username, display_name, role, disabled FROM users WHERE id = ?")
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

/// Tables a backup carries, in an order that satisfies their foreign keys.
const TABLES: [&str; 4] = ["users", "records", "audit", "sessions"];

#[async_trait::async_trait]
impl GovernanceStore for SqliteStore {
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Duplicate(username.to_string()));
        }
        let at = now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, display_name, role, password_hash, disabled, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?) RETURNING id",
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
        let rows = sqlx::query("SELECT id, username, display_name, role, disabled FROM users ORDER BY username")
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
        let action = if disabled { "user.disable" } else { "user.enable" };
        self.change_user(
            username,
            actor,
            action,
            "UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?",
            u8::from(disabled).to_string(),
        )
        .await
    }

    async fn set_password(&self, username: &str, password: &str, actor: &str) -> StoreResult<User> {
        if let Some(problem) = auth::password_problem(password) {
            return Err(StoreError::Invalid(vec![FieldError::new("password", problem)]));
        }
        let hash = hash_off_thread(password).await?;
        self.change_user(
            username,
            actor,
            "user.reset-password",
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
            hash,
        )
        .await
    }

    async fn start_session(&self, user: &User) -> StoreResult<NewSession> {
        let token = auth::new_token();
        let csrf = auth::new_token();
        let now = chrono::Utc::now();
        let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        sqlx::query("DELETE FROM sessions WHERE expires_at < ?").bind(fmt(now)).execute(&self.pool).await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
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
            "SELECT u.id, u.username, u.display_name, u.role, u.disabled, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?",
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
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(auth::token_hash(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn log_sign_in(&self, e: &SignInEvent) -> StoreResult<()> {
        let short = |s: &str, n: usize| s.chars().take(n).collect::<String>();
        sqlx::query("INSERT INTO sign_in_events (at, event, username, client, detail) VALUES (?, ?, ?, ?, ?)")
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
            sqlx::query("SELECT at, event, username, client, detail FROM sign_in_events ORDER BY id DESC LIMIT ?")
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

    async fn records(&self, kind: &str, include_archived: bool) -> StoreResult<Vec<Record>> {
        kind_of(kind)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE kind = ? AND (archived = 0 OR ?) ORDER BY id"
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
            "SELECT {RECORD_COLUMNS} FROM records WHERE kind = ? AND (archived = 0 OR ?) ORDER BY id LIMIT ? OFFSET ?"
        )))
        .bind(kind)
        .bind(include_archived)
        .bind(limit.clamp(1, 1_000) as i64)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE kind = ? AND (archived = 0 OR ?)")
            .bind(kind)
            .bind(include_archived)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows.iter().map(record_of).collect::<StoreResult<_>>()?, usize::try_from(total).unwrap_or(0)))
    }

    async fn counts(&self, include_archived: bool) -> StoreResult<std::collections::BTreeMap<String, usize>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, COUNT(*) FROM records WHERE archived = 0 OR ? GROUP BY kind")
                .bind(include_archived)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(k, n)| (k, usize::try_from(n).unwrap_or(0))).collect())
    }

    async fn record(&self, id: i64) -> StoreResult<Option<Record>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RECORD_COLUMNS} FROM records WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_of).transpose()
    }

    async fn create(&self, kind: &str, data: Data, actor: &str) -> StoreResult<Record> {
        let kind = kind_of(kind)?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let record = Self::insert_record(&mut tx, kind, data, actor).await?;
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (i, data) in rows.into_iter().enumerate() {
            Self::insert_record(&mut tx, kind, data, actor).await.map_err(|e| match e {
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
            "SELECT id, at, actor, action, entity, entity_id, before, after FROM audit WHERE (? IS NULL OR entity = ?) AND (? IS NULL OR entity_id = ?) ORDER BY id DESC LIMIT ?",
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
        let target =
            path.to_str().ok_or_else(|| StoreError::Backup(format!("{} is not a UTF-8 path", path.display())))?;
        sqlx::query("VACUUM INTO ?").bind(target).execute(&self.pool).await?;
        Ok(())
    }

    async fn restore(&self, path: &Path, actor: &str) -> StoreResult<()> {
        self.check_backup(path).await?;
        let source =
            path.to_str().ok_or_else(|| StoreError::Backup(format!("{} is not a UTF-8 path", path.display())))?;
        let mut conn = self.pool.acquire().await?;
        sqlx::query("ATTACH DATABASE ? AS backup").bind(source).execute(&mut *conn).await?;
        let result = restore_attached(&mut conn, source, actor).await;
        let _ = sqlx::query("DETACH DATABASE backup").execute(&mut *conn).await;
        result
    }
}

/// Copies the attached `backup` database over the main one in one transaction. The triggers
/// that forbid deleting records and changing the audit trail are lifted for the copy only, and
/// put back exactly as SQLite had them.
async fn restore_attached(conn: &mut SqliteConnection, source: &str, actor: &str) -> StoreResult<()> {
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let result = async {
        let triggers: Vec<(String, String)> =
            sqlx::query_as("SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger'")
                .fetch_all(&mut *conn)
                .await?;
        for (name, _) in &triggers {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER main.\"{}\"", name.replace('"', "\"\""))))
                .execute(&mut *conn)
                .await?;
        }
        for table in TABLES.iter().rev() {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM main.{table}"))).execute(&mut *conn).await?;
        }
        for table in TABLES {
            if table == "sessions" {
                continue; // everyone signs in again
            }
            sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO main.{table} SELECT * FROM backup.{table}")))
                .execute(&mut *conn)
                .await?;
        }
        for (_, sql) in &triggers {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&mut *conn).await?;
        }
        audit(conn, actor, "database.restore", "database", None, None, Some(&serde_json::json!({ "from": source })))
            .await?;
        Ok::<(), StoreError>(())
    }
    .await;
    match result {
        Ok(()) => {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok(())
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}
