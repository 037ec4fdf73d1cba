//! `ipmo user …`, `ipmo db …` and `ipmo records import`: accounts, backups, moves and bulk loads
//! of the governance store, which lives beside the warehouse (`governance.sqlite`) unless
//! `--governance` names another file or a PostgreSQL database. These work while `ipmo serve`
//! runs: SQLite in WAL mode lets the server and the command share the file, and PostgreSQL
//! serves any number of processes.

use crate::output::{Cell, Format, Output};
use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use ipmo_governance::kinds::{self, AcceptAll};
use ipmo_governance::records_csv;
use ipmo_governance::store::Data;
use ipmo_governance::{GovernanceStore, Location, Role, SqlStore};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Who the command line acts as in the audit trail.
pub(crate) const CLI_ACTOR: &str = "ipmo (command line)";

/// `ipmo user …`.
#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Add an account. Prints a generated password unless --password-stdin is given.
    Add {
        /// Sign-in name (letters, digits, . _ - @).
        username: String,
        /// viewer (read), editor (edit programme records) or admin (accounts and settings).
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Name shown in pages and the audit trail (default: the username).
        #[arg(long, default_value = "")]
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Disable an account (its sessions end at once).
    Disable {
        /// The account.
        username: String,
    },
    /// Enable a disabled account.
    Enable {
        /// The account.
        username: String,
    },
    /// Set a new password (prints a generated one unless --password-stdin is given).
    ResetPassword {
        /// The account.
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `ipmo db …`.
#[derive(Subcommand)]
pub(crate) enum DbCommand {
    /// Write a consistent copy of the governance database to FILE (safe while the server runs).
    Backup {
        /// A new file.
        file: PathBuf,
    },
    /// Replace the governance database's content with a backup's. The current content is first
    /// backed up beside the database, so a restore can be undone.
    Restore {
        /// A file made by `ipmo db backup`.
        file: PathBuf,
    },
    /// Check the database (SQLite's integrity check; on PostgreSQL, that every table reads and
    /// every protection trigger is in place) and count records by kind.
    Check {
        /// Output format (of the counts).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Move a programme from one store to another that is empty, e.g. from the SQLite file to
    /// PostgreSQL: every account, record with its version, audit entry and sign-in event, in one
    /// transaction. The target's audit trail records the move; sessions are not moved.
    Migrate {
        /// The store to copy from: a SQLite file or a postgres:// URL.
        #[arg(long)]
        from: String,
        /// The store to copy into (created if a SQLite file; a PostgreSQL database must exist).
        #[arg(long)]
        to: String,
    },
}

/// `ipmo records …`.
#[derive(Subcommand)]
pub(crate) enum RecordsCommand {
    /// Load many records of one kind from CSV, in one transaction: every row or none. The header
    /// names the kind's fields (see `ipmo records kinds`); references are written like RSK-3.
    Import {
        /// Kind of record, e.g. risk, stakeholder, workforce-return.
        kind: String,
        /// CSV file with a header row.
        file: PathBuf,
    },
    /// List the kinds of record and their fields.
    Kinds {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

/// The governance database of a warehouse, or the file or PostgreSQL URL given.
pub(crate) fn location(warehouse: &Path, explicit: Option<&str>) -> Location {
    explicit.map_or_else(|| Location::File(warehouse.join(ipmo_governance::DATABASE_FILE)), Location::parse)
}

/// Opens (creating a SQLite file when needed) the governance store.
pub(crate) async fn open_store(location: &Location) -> Result<SqlStore> {
    if let Some(dir) = location.file().and_then(Path::parent).filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    SqlStore::open(location).await.with_context(|| format!("cannot open the governance database {location}"))
}

/// Whether there is a governance database to read: a SQLite file that exists, or any
/// PostgreSQL URL (which is then connected to, and says so if it cannot be).
pub(crate) fn exists(location: &Location) -> bool {
    location.file().is_none_or(Path::exists)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")
}

fn password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        let p = line.trim_end_matches(['\n', '\r']).to_string();
        if let Some(problem) = ipmo_governance::auth::password_problem(&p) {
            bail!("{problem}");
        }
        Ok((p, false))
    } else {
        let p = ipmo_governance::auth::generate_password();
        Ok((p, true))
    }
}

/// Runs `ipmo user …`.
pub(crate) fn user(db: &Location, cmd: UserCommand) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let store = open_store(db).await?;
        match cmd {
            UserCommand::Add { username, role, name, password_stdin } => {
                let role = Role::parse(&role)
                    .ok_or_else(|| anyhow!("--role must be viewer, editor or admin, not \"{role}\""))?;
                let (pw, generated) = password(password_stdin)?;
                let u = store.add_user(&username, &name, role, &pw, CLI_ACTOR).await?;
                out!("added {} ({}) to {db}", u.username, u.role.as_str());
                if generated {
                    out!("password: {pw}\n(shown once; `ipmo user reset-password {}` sets a new one)", u.username);
                }
            }
            UserCommand::List { format } => {
                let users = store.users().await?;
                if users.is_empty() && format == Format::Table {
                    out!("no accounts yet; add one with `ipmo user add NAME --role admin`");
                } else {
                    let mut table = Output::new(&["username", "role", "state", "name"]);
                    for u in users {
                        table.rows.push(vec![
                            Cell::text(&u.username),
                            Cell::text(u.role.as_str()),
                            Cell::text(if u.disabled { "disabled" } else { "active" }),
                            Cell::text(&u.display_name),
                        ]);
                    }
                    table.write(format, &mut std::io::stdout().lock())?;
                }
            }
            UserCommand::Disable { username } => {
                let u = store.set_disabled(&username, true, CLI_ACTOR).await?;
                out!("disabled {}; their sessions have ended", u.username);
            }
            UserCommand::Enable { username } => {
                let u = store.set_disabled(&username, false, CLI_ACTOR).await?;
                out!("enabled {}", u.username);
            }
            UserCommand::ResetPassword { username, password_stdin } => {
                let (pw, generated) = password(password_stdin)?;
                let u = store.set_password(&username, &pw, CLI_ACTOR).await?;
                out!("new password set for {}; their sessions have ended", u.username);
                if generated {
                    out!("password: {pw}\n(shown once)");
                }
            }
        }
        store.close().await;
        Ok(())
    })
}

/// Runs `ipmo db …`. A restore's safety copy goes beside a SQLite file, or into the warehouse
/// directory for a PostgreSQL database.
pub(crate) fn db(db: &Location, warehouse: &Path, cmd: DbCommand) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        if let Some(file) = db.file()
            && !file.is_file()
            && matches!(cmd, DbCommand::Backup { .. } | DbCommand::Restore { .. })
        {
            bail!(
                "there is no governance database at {}; it is created by `ipmo serve`, `ipmo demo` or `ipmo user add`",
                file.display()
            );
        }
        if let DbCommand::Migrate { from, to } = cmd {
            return migrate(&Location::parse(&from), &Location::parse(&to)).await;
        }
        let store = open_store(db).await?;
        match cmd {
            DbCommand::Backup { file } => {
                store.backup(&file).await?;
                out!("backed up {db} to {}", file.display());
            }
            DbCommand::Restore { file } => {
                // The source first: a missing, foreign or damaged file leaves no copy behind.
                store.check_backup(&file).await?;
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
                let beside = match db {
                    Location::File(path) => path.clone(),
                    Location::Postgres(_) => warehouse.join("governance-postgres"),
                };
                let safety = (1..1000)
                    .map(|n| {
                        let suffix = if n == 1 { String::new() } else { format!("-{n}") };
                        beside.with_extension(format!("before-restore-{stamp}{suffix}.sqlite"))
                    })
                    .find(|p| !p.exists())
                    .context("999 restores this second already; wait a second")?;
                store.backup(&safety).await.context("cannot back up the current database before restoring")?;
                store.restore(&file, CLI_ACTOR).await?;
                out!("restored {db} from {}; the previous content is in {}", file.display(), safety.display());
            }
            DbCommand::Check { format } => {
                let ok = store.integrity_ok().await.unwrap_or(false);
                let verdict = format!("{db}: integrity {}", if ok { "ok" } else { "FAILED" });
                if !ok {
                    // Counting records of a damaged database can fail on its own; the advice matters more.
                    let why = if db.is_postgres() {
                        "a table cannot be read or a protection trigger is missing or disabled"
                    } else {
                        "SQLite's integrity check failed"
                    };
                    bail!("{verdict}: {why}; restore the latest backup with `ipmo db restore FILE`");
                }
                // The table is for reading, so the verdict heads it; CSV and JSON stay parseable.
                if format == Format::Table {
                    out!("{verdict}")
                } else {
                    eprintln!("{verdict}")
                }
                let counts = store.counts(true).await?;
                // In the kinds' declared order, as `records kinds` lists them.
                let mut table = Output::new(&["kind", "records"]);
                for k in kinds::KINDS {
                    if let Some(n) = counts.get(k.id) {
                        table.rows.push(vec![Cell::text(k.id), Cell::Num(Some(*n as f64), 0)]);
                    }
                }
                table.write(format, &mut std::io::stdout().lock())?;
            }
            DbCommand::Migrate { .. } => unreachable!("handled above"),
        }
        store.close().await;
        Ok(())
    })
}

/// `ipmo db migrate`: every account, record, version, audit entry and sign-in event from one
/// store into another that holds none, in one transaction on the target.
async fn migrate(from: &Location, to: &Location) -> Result<()> {
    if let Some(file) = from.file()
        && !file.is_file()
    {
        bail!("there is no governance database at {} to migrate from", file.display());
    }
    let source = open_store(from).await?;
    let target = open_store(to).await?;
    let copied =
        source.copy_into(&target, Some(CLI_ACTOR)).await.with_context(|| format!("cannot migrate {from} to {to}"))?;
    source.close().await;
    target.close().await;
    let counts: Vec<String> = copied.iter().map(|(table, n)| format!("{n} {table}")).collect();
    out!("migrated {from} to {to}: {}", counts.join(", "));
    Ok(())
}

/// Runs `ipmo records …`.
pub(crate) fn records(db: &Location, cmd: RecordsCommand, quiet: bool) -> Result<()> {
    match cmd {
        RecordsCommand::Kinds { format } => {
            let mut table = Output::new(&["kind", "plural", "fields"]);
            for k in kinds::KINDS {
                let fields = k
                    .fields
                    .iter()
                    .map(|f| if f.required { format!("{}*", f.name) } else { f.name.to_string() })
                    .collect::<Vec<_>>()
                    .join(", ");
                table.rows.push(vec![Cell::text(k.id), Cell::text(k.plural), Cell::text(fields)]);
            }
            table.write(format, &mut std::io::stdout().lock())?;
            if format == Format::Table {
                out!("(* required)");
            }
            Ok(())
        }
        RecordsCommand::Import { kind, file } => {
            let k = kinds::kind(&kind).ok_or_else(|| {
                anyhow!("there is no kind of record called \"{kind}\"; `ipmo records kinds` lists them")
            })?;
            // Measure ids and organisation codes are checked by the dashboard's forms; an import
            // may come before the measures are computed, so here they are taken as given.
            let (lines, rows): (Vec<u64>, Vec<Data>) = records_csv::read(k, &file, &AcceptAll)?.into_iter().unzip();
            let rt = runtime()?;
            rt.block_on(async {
                let store = open_store(db).await?;
                if !quiet {
                    eprintln!("records: importing {} {} in one transaction…", rows.len(), k.plural.to_lowercase());
                }
                let n = store
                    .import(k.id, rows, CLI_ACTOR)
                    .await
                    .map_err(|e| records_csv::store_refusal(&file, &lines, e))?;
                store.close().await;
                out!("imported {n} {} into {db}", k.plural.to_lowercase());
                Ok(())
            })
        }
    }
}
