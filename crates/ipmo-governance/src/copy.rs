//! Moving the governance tables row for row between two databases, whatever their engines: a
//! PostgreSQL backup written as a SQLite file, a restore from such a file into either store, and
//! `ipmo db migrate` from one store to the other. Ids are copied as they are, so references
//! between records (`AIM-3`) and the audit trail's entity ids stay true.

use crate::location::Engine;
use crate::store::StoreResult;
use sqlx::{AnyConnection, Row};

/// How a column is read and written.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Column {
    Int,
    Text,
}

/// A table that backups and migrations carry. Sessions are not among them: everyone signs in
/// again after a restore or a move.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: &'static str,
    pub(crate) columns: &'static [(&'static str, Column)],
}

use Column::{Int, Text};

/// Accounts.
pub(crate) const USERS: Table = Table {
    name: "users",
    columns: &[
        ("id", Int),
        ("username", Text),
        ("display_name", Text),
        ("role", Text),
        ("password_hash", Text),
        ("disabled", Int),
        ("created_at", Text),
        ("updated_at", Text),
    ],
};

/// Programme records of every kind.
pub(crate) const RECORDS: Table = Table {
    name: "records",
    columns: &[
        ("id", Int),
        ("kind", Text),
        ("version", Int),
        ("archived", Int),
        ("data", Text),
        ("created_at", Text),
        ("created_by", Text),
        ("updated_at", Text),
        ("updated_by", Text),
    ],
};

/// The audit trail.
pub(crate) const AUDIT: Table = Table {
    name: "audit",
    columns: &[
        ("id", Int),
        ("at", Text),
        ("actor", Text),
        ("action", Text),
        ("entity", Text),
        ("entity_id", Int),
        ("before", Text),
        ("after", Text),
    ],
};

/// The sign-in log (a restore leaves it alone: a security log is not rolled back).
pub(crate) const SIGN_INS: Table = Table {
    name: "sign_in_events",
    columns: &[("id", Int), ("at", Text), ("event", Text), ("username", Text), ("client", Text), ("detail", Text)],
};

/// Every table a backup or migration carries, in an order that satisfies foreign keys.
pub(crate) const TABLES: [&Table; 4] = [&USERS, &RECORDS, &AUDIT, &SIGN_INS];

/// How many protection triggers the PostgreSQL schema puts on `records` and `audit`.
pub(crate) const POSTGRES_GUARDS: i64 = 5;

/// Rows per INSERT: 9 columns × 200 rows stays far under both engines' parameter limits.
const BATCH: usize = 200;

enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

/// Copies every row of `table` from one connection to the other, in id order, a batch at a
/// time so memory stays flat however many records there are. Returns the rows copied.
pub(crate) async fn copy_table(from: &mut AnyConnection, to: &mut AnyConnection, table: &Table) -> StoreResult<u64> {
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let select = format!("SELECT {} FROM {} WHERE id > $1 ORDER BY id LIMIT {BATCH}", names.join(", "), table.name);
    let mut after = i64::MIN;
    let mut copied = 0u64;
    loop {
        let rows = sqlx::query(sqlx::AssertSqlSafe(select.clone())).bind(after).fetch_all(&mut *from).await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("id")?;
        let mut values = Vec::with_capacity(rows.len() * names.len());
        for row in &rows {
            for (name, column) in table.columns {
                values.push(match column {
                    Int => Value::Int(row.try_get(*name)?),
                    Text => Value::Text(row.try_get(*name)?),
                });
            }
        }
        let tuples: Vec<String> = (0..rows.len())
            .map(|r| {
                let marks: Vec<String> = (1..=names.len()).map(|c| format!("${}", r * names.len() + c)).collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        let insert = format!("INSERT INTO {} ({}) VALUES {}", table.name, names.join(", "), tuples.join(", "));
        let mut statement = sqlx::query(sqlx::AssertSqlSafe(insert));
        for value in values {
            statement = match value {
                Value::Int(v) => statement.bind(v),
                Value::Text(v) => statement.bind(v),
            };
        }
        statement.execute(&mut *to).await?;
        copied += rows.len() as u64;
    }
    Ok(copied)
}

/// After ids were copied in, PostgreSQL's identity counters carry on above the highest one
/// (SQLite does so by itself).
pub(crate) async fn continue_ids(to: &mut AnyConnection, engine: Engine, tables: &[&Table]) -> StoreResult<()> {
    if engine == Engine::Postgres {
        for table in tables {
            let name = table.name;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{name}', 'id'), COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
            )))
            .execute(&mut *to)
            .await?;
        }
    }
    Ok(())
}

/// Lifts the triggers that forbid deleting records and rewriting the audit trail, inside the
/// restore's transaction, and says how to put them back exactly.
pub(crate) async fn lift_guards(conn: &mut AnyConnection, engine: Engine) -> StoreResult<Vec<String>> {
    match engine {
        Engine::Sqlite => {
            let triggers: Vec<(String, String)> =
                sqlx::query_as("SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger'")
                    .fetch_all(&mut *conn)
                    .await?;
            for (name, _) in &triggers {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER main.\"{}\"", name.replace('"', "\"\""))))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(triggers.into_iter().map(|(_, sql)| sql).collect())
        }
        Engine::Postgres => {
            sqlx::raw_sql("ALTER TABLE records DISABLE TRIGGER USER; ALTER TABLE audit DISABLE TRIGGER USER;")
                .execute(&mut *conn)
                .await?;
            Ok(vec!["ALTER TABLE records ENABLE TRIGGER USER".into(), "ALTER TABLE audit ENABLE TRIGGER USER".into()])
        }
    }
}

/// Puts back what [`lift_guards`] lifted.
pub(crate) async fn put_back_guards(conn: &mut AnyConnection, statements: Vec<String>) -> StoreResult<()> {
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rows in the tables a migration fills (a migration goes only into an empty database); reading
/// them all is also how a PostgreSQL store shows every table reads.
pub(crate) async fn rows_held(conn: &mut AnyConnection) -> StoreResult<i64> {
    let mut held = 0;
    for table in TABLES {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {}", table.name)))
            .fetch_one(&mut *conn)
            .await?;
        held += n;
    }
    Ok(held)
}
