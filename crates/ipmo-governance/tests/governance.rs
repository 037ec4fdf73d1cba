//! One conformance suite, two stores: every test runs against a SQLite file and, when a server
//! is given (`IPMO_TEST_POSTGRES`; `scripts/test` starts one), against a new PostgreSQL
//! database of its own. Accounts and sessions, records with references, optimistic locking,
//! the audit trail, archiving instead of deleting, all-or-nothing imports, reopening, backup and
//! restore while the store is open, moving a programme between stores, and two servers' worth
//! of connections on one database.

use ipmo_governance::kinds::{self, AcceptAll};
use ipmo_governance::store::Data;
use ipmo_governance::{GovernanceStore, Location, Role, SqlStore, StoreError};
use sqlx::migrate::MigrateDatabase;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One database under test.
struct Db {
    /// "SQLite" or "PostgreSQL", printed before each run so a failure says which.
    engine: &'static str,
    location: Location,
    /// For reaching the database around the store, to show its protections hold even there.
    url: String,
    /// Holds the SQLite file, and backups of either.
    dir: tempfile::TempDir,
}

impl Db {
    async fn open(&self) -> SqlStore {
        eprintln!("-- on {}", self.engine);
        SqlStore::open(&self.location).await.expect("open")
    }

    async fn raw(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.url).await.expect("raw connection")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A new, empty PostgreSQL database for one test, when a server is given.
async fn postgres(test: &str) -> Option<Db> {
    let server = ipmo_testkit::postgres_server(test)?;
    let url = ipmo_testkit::postgres_database(&server, test);
    sqlx::Postgres::create_database(&url).await.expect("create a test database");
    Some(Db { engine: "PostgreSQL", location: Location::parse(&url), url, dir: tempfile::tempdir().unwrap() })
}

fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gov.sqlite");
    Db { engine: "SQLite", location: Location::File(file.clone()), url: format!("sqlite://{}", file.display()), dir }
}

/// SQLite always; PostgreSQL as well when a server is given.
async fn databases(test: &str) -> Vec<Db> {
    let mut all = vec![sqlite()];
    all.extend(postgres(test).await);
    all
}

fn data(kind: &str, pairs: &[(&str, &str)]) -> Data {
    let input: BTreeMap<String, String> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    kinds::validate(kinds::kind(kind).unwrap(), &input, &AcceptAll).unwrap()
}

fn aim(title: &str) -> Data {
    data("aim", &[("title", title), ("owner", "Chief pharmacist"), ("status", "In progress")])
}

fn risk(aim_ref: &str, title: &str) -> Data {
    data(
        "risk",
        &[
            ("title", title),
            ("cause", "c"),
            ("event", "e"),
            ("effect", "f"),
            ("sector", "ICB"),
            ("owner", "o"),
            ("aim", aim_ref),
            ("inherent_likelihood", "4"),
            ("inherent_consequence", "4"),
            ("current_likelihood", "3"),
            ("current_consequence", "4"),
            ("target_likelihood", "2"),
            ("target_consequence", "2"),
            ("review_date", "2026-06-30"),
        ],
    )
}

#[tokio::test]
async fn accounts_sessions_and_roles() {
    for db in databases("accounts_sessions_and_roles").await {
        let s = db.open().await;
        let ann = s.add_user("ann", "Ann Example", Role::Editor, "a long password", "test").await.unwrap();
        assert_eq!(ann.role, Role::Editor);
        assert!(matches!(
            s.add_user("ANN", "", Role::Viewer, "a long password", "test").await,
            Err(StoreError::Duplicate(_))
        ));
        assert!(
            matches!(s.add_user("bob", "", Role::Viewer, "short", "test").await, Err(StoreError::Invalid(e)) if e[0].field == "password")
        );
        assert!(
            matches!(s.add_user("b b", "", Role::Viewer, "a long password", "test").await, Err(StoreError::Invalid(e)) if e[0].field == "username")
        );

        assert_eq!(s.authenticate("Ann", "a long password").await.unwrap().map(|u| u.id), Some(ann.id));
        assert_eq!(s.authenticate("ann", "wrong password").await.unwrap(), None);
        assert_eq!(s.authenticate("nobody", "a long password").await.unwrap(), None);

        let session = s.start_session(&ann).await.unwrap();
        let live = s.session(&session.token).await.unwrap().expect("live session");
        assert_eq!((live.user.username.as_str(), live.csrf.as_str()), ("ann", session.csrf.as_str()));
        assert_eq!(s.session("not a token").await.unwrap(), None);

        // Disabling ends sessions and blocks sign-in; a new password ends sessions too.
        s.set_disabled("ann", true, "admin").await.unwrap();
        assert_eq!(s.session(&session.token).await.unwrap(), None);
        assert_eq!(s.authenticate("ann", "a long password").await.unwrap(), None);
        s.set_disabled("ann", false, "admin").await.unwrap();
        let again = s.start_session(&ann).await.unwrap();
        s.set_password("ann", "another long password", "admin").await.unwrap();
        assert_eq!(s.session(&again.token).await.unwrap(), None);
        assert!(s.authenticate("ann", "another long password").await.unwrap().is_some());
        let second = s.start_session(&ann).await.unwrap();
        s.end_session(&second.token).await.unwrap();
        assert_eq!(s.session(&second.token).await.unwrap(), None);

        let trail = s.audit(Some("user"), None, 100).await.unwrap();
        let actions: Vec<&str> = trail.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["user.reset-password", "user.enable", "user.disable", "user.add"]);
        assert!(
            trail.iter().all(|a| !a.after.as_ref().unwrap().to_string().contains("argon2")),
            "no hash in the audit trail"
        );
    }
}

#[tokio::test]
async fn records_are_versioned_audited_and_archived_not_deleted() {
    for db in databases("records_are_versioned_audited_and_archived_not_deleted").await {
        let s = db.open().await;
        let a = s.create("aim", aim("Antimicrobial stewardship"), "ann").await.unwrap();
        let r = s.create("risk", risk(&format!("AIM-{}", a.id), "Broad-spectrum use"), "ann").await.unwrap();
        assert_eq!((r.version, r.data["aim"].as_i64()), (1, Some(a.id)));

        // A stale version is a conflict carrying the current record.
        let mut changed = r.data.clone();
        changed.insert("title".into(), "Broad-spectrum use stays high".into());
        let v2 = s.update(r.id, 1, changed.clone(), "bob").await.unwrap();
        assert_eq!((v2.version, v2.updated_by.as_str()), (2, "bob"));
        match s.update(r.id, 1, r.data.clone(), "ann").await {
            Err(StoreError::Conflict { current }) => {
                assert_eq!((current.version, current.updated_by.as_str()), (2, "bob"))
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(s.record(r.id).await.unwrap().unwrap().text("title"), "Broad-spectrum use stays high");

        // Archive hides it from lists but keeps it.
        let archived = s.set_archived(r.id, 2, true, "ann").await.unwrap();
        assert!(archived.archived);
        assert!(s.records("risk", false).await.unwrap().is_empty());
        assert_eq!(s.records("risk", true).await.unwrap().len(), 1);

        let trail = s.audit(Some("risk"), Some(r.id), 10).await.unwrap();
        let actions: Vec<&str> = trail.iter().map(|x| x.action.as_str()).collect();
        assert_eq!(actions, ["archive", "update", "create"]);
        let update = &trail[1];
        assert_eq!(update.before.as_ref().unwrap()["data"]["title"], "Broad-spectrum use");
        assert_eq!(update.after.as_ref().unwrap()["data"]["title"], "Broad-spectrum use stays high");
        assert_eq!(update.actor, "bob");

        // Neither records nor the audit trail can be deleted or rewritten, even with SQL.
        let pool = db.raw().await;
        let e = sqlx::query("DELETE FROM records").execute(&pool).await.unwrap_err().to_string();
        assert!(e.contains("archived, never deleted"), "{e}");
        let e = sqlx::query("UPDATE audit SET actor = 'x'").execute(&pool).await.unwrap_err().to_string();
        assert!(e.contains("cannot be changed"), "{e}");
        pool.close().await;
    }
}

#[tokio::test]
async fn references_must_point_at_live_records_of_the_right_kind() {
    for db in databases("references_must_point_at_live_records_of_the_right_kind").await {
        let s = db.open().await;
        let a = s.create("aim", aim("Safety"), "ann").await.unwrap();
        let stakeholder = s
            .create(
                "stakeholder",
                data(
                    "stakeholder",
                    &[
                        ("name", "LMC"),
                        ("sector", "ICB"),
                        ("power", "4"),
                        ("interest", "4"),
                        ("method", "Meeting"),
                        ("frequency", "Monthly"),
                        ("owner", "o"),
                    ],
                ),
                "ann",
            )
            .await
            .unwrap();
        for (reference, expected) in
            [("AIM-999".to_string(), "There is no aim AIM-999"), (format!("AIM-{}", stakeholder.id), "There is no aim")]
        {
            match s.create("risk", risk(&reference, "r"), "ann").await {
                Err(StoreError::Invalid(errors)) => {
                    assert_eq!(errors[0].field, "aim");
                    assert!(errors[0].message.starts_with(expected), "{}", errors[0].message);
                }
                other => panic!("expected invalid, got {other:?}"),
            }
        }
        s.set_archived(a.id, 1, true, "ann").await.unwrap();
        match s.create("risk", risk(&format!("AIM-{}", a.id), "r"), "ann").await {
            Err(StoreError::Invalid(errors)) => {
                assert!(errors[0].message.contains("is archived"), "{}", errors[0].message)
            }
            other => panic!("expected invalid, got {other:?}"),
        }
        // A person cannot report to themselves.
        let p = s.create("person", data("person", &[("name", "A"), ("role_title", "Lead")]), "ann").await.unwrap();
        let mut me = p.data.clone();
        me.insert("reports_to".into(), p.id.into());
        assert!(
            matches!(s.update(p.id, 1, me, "ann").await, Err(StoreError::Invalid(e)) if e[0].message.contains("itself"))
        );
    }
}

#[tokio::test]
async fn imports_are_all_or_nothing_and_survive_reopening() {
    for db in databases("imports_are_all_or_nothing_and_survive_reopening").await {
        let s = db.open().await;
        let a = s.create("aim", aim("Workforce"), "ann").await.unwrap();
        let good = format!("AIM-{}", a.id);
        let rows = vec![risk(&good, "one"), risk(&good, "two"), risk("AIM-12345", "three")];
        match s.import("risk", rows, "ann").await {
            Err(StoreError::Invalid(errors)) => {
                assert!(errors[0].message.starts_with("row 3:"), "{}", errors[0].message)
            }
            other => panic!("expected invalid, got {other:?}"),
        }
        assert!(s.records("risk", true).await.unwrap().is_empty(), "nothing from a failed import");
        assert_eq!(s.import("risk", vec![risk(&good, "one"), risk(&good, "two")], "ann").await.unwrap(), 2);
        s.close().await;

        let reopened = db.open().await;
        assert_eq!(reopened.records("risk", false).await.unwrap().len(), 2);
        let counts = reopened.counts(false).await.unwrap();
        assert_eq!(counts.into_iter().collect::<Vec<_>>(), [("aim".to_string(), 1), ("risk".to_string(), 2)]);
        assert!(reopened.integrity_ok().await.unwrap());
        let import = &reopened.audit(Some("risk"), None, 10).await.unwrap()[0];
        assert_eq!((import.action.as_str(), import.after.as_ref().unwrap()["records"].as_i64()), ("import", Some(2)));
        let first = reopened.records("risk", false).await.unwrap()[0].clone();
        reopened.set_archived(first.id, 1, true, "ann").await.unwrap();
        assert_eq!(reopened.counts(false).await.unwrap()["risk"], 1);
        assert_eq!(reopened.counts(true).await.unwrap()["risk"], 2);
    }
}

#[tokio::test]
async fn backup_and_restore_while_open() {
    for db in databases("backup_and_restore_while_open").await {
        let s = db.open().await;
        let ann = s.add_user("ann", "", Role::Admin, "a long password", "test").await.unwrap();
        s.create("aim", aim("Kept"), "ann").await.unwrap();
        let backup = db.path("backup.sqlite");
        s.backup(&backup).await.unwrap();
        assert!(matches!(s.backup(&backup).await, Err(StoreError::Backup(m)) if m.contains("already exists")));

        s.create("aim", aim("Made after the backup"), "ann").await.unwrap();
        let session = s.start_session(&ann).await.unwrap();
        s.restore(&backup, "admin").await.unwrap();
        let titles: Vec<String> =
            s.records("aim", true).await.unwrap().iter().map(|r| r.text("title").to_string()).collect();
        assert_eq!(titles, ["Kept"]);
        assert_eq!(s.session(&session.token).await.unwrap(), None, "sessions end on restore");
        assert_eq!(s.audit(None, None, 1).await.unwrap()[0].action, "database.restore");
        // The protections are back after the restore.
        let pool = db.raw().await;
        assert!(sqlx::query("DELETE FROM records").execute(&pool).await.is_err());
        pool.close().await;

        let junk = db.path("junk.sqlite");
        std::fs::write(&junk, b"not a database at all").unwrap();
        assert!(matches!(s.restore(&junk, "admin").await, Err(StoreError::Backup(_))));
        assert!(matches!(s.restore(&db.path("missing"), "admin").await, Err(StoreError::Backup(_))));
        assert_eq!(s.records("aim", true).await.unwrap().len(), 1, "a failed restore changes nothing");
    }
}

/// A programme with everything a move must carry: accounts (with password hashes), records at
/// several versions, an archived one, references, the audit trail and sign-in events.
async fn programme(s: &SqlStore) {
    s.add_user("ann", "Ann Example", Role::Admin, "a long password", "test").await.unwrap();
    s.add_user("bob", "", Role::Viewer, "another long password", "test").await.unwrap();
    s.set_disabled("bob", true, "ann").await.unwrap();
    let a = s.create("aim", aim("Antimicrobial stewardship"), "ann").await.unwrap();
    let r = s.create("risk", risk(&format!("AIM-{}", a.id), "Broad-spectrum use"), "ann").await.unwrap();
    let mut changed = r.data.clone();
    changed.insert("title".into(), "Broad-spectrum use stays high".into());
    let r = s.update(r.id, 1, changed, "ann").await.unwrap();
    s.set_archived(r.id, 2, true, "ann").await.unwrap();
    s.import("aim", vec![aim("Safety"), aim("Value")], "ann").await.unwrap();
    let event = ipmo_governance::store::SignInEvent {
        at: String::new(),
        event: "sign-in.failed".into(),
        username: "ann".into(),
        client: "127.0.0.1".into(),
        detail: "wrong password".into(),
    };
    s.log_sign_in(&event).await.unwrap();
}

/// Everything a store holds that a move must keep, as comparable values.
async fn contents(
    s: &SqlStore,
) -> (Vec<ipmo_governance::User>, Vec<ipmo_governance::Record>, Vec<ipmo_governance::AuditEntry>, usize) {
    let mut records = Vec::new();
    for kind in ["aim", "risk"] {
        records.extend(s.records(kind, true).await.unwrap());
    }
    records.sort_by_key(|r| r.id);
    let audit = s.audit(None, None, 10_000).await.unwrap();
    (s.users().await.unwrap(), records, audit, s.sign_in_events(10_000).await.unwrap().len())
}

#[tokio::test]
async fn a_programme_moves_between_stores_with_every_record_version_and_audit_entry() {
    let test = "a_programme_moves_between_stores";
    let origin = sqlite();
    let source = origin.open().await;
    programme(&source).await;
    let before = contents(&source).await;

    // SQLite → PostgreSQL (when a server is given) → a new SQLite file: nothing lost or changed.
    let middle = postgres(test).await.unwrap_or_else(sqlite);
    let target = middle.open().await;
    let copied = source.copy_into(&target, Some("ipmo (command line)")).await.unwrap();
    assert_eq!(copied, [("users", 2), ("records", 4), ("audit", before.2.len() as u64), ("sign_in_events", 1)]);
    let moved = contents(&target).await;
    assert_eq!((&moved.0, &moved.1, moved.3), (&before.0, &before.1, before.3));
    let (newest, carried) = moved.2.split_first().unwrap();
    assert_eq!(carried, before.2.as_slice(), "every audit entry, with its id, time and actor");
    assert_eq!(
        (newest.action.as_str(), newest.after.as_ref().unwrap()["rows"]["records"].as_i64()),
        ("database.migrate", Some(4))
    );

    // The moved store works on: passwords, references, versions and new ids above the old.
    assert!(target.authenticate("ann", "a long password").await.unwrap().is_some());
    assert!(target.authenticate("bob", "another long password").await.unwrap().is_none(), "still disabled");
    let aim_id = before.1[0].id;
    let next = target.create("risk", risk(&format!("AIM-{aim_id}"), "New on the target"), "ann").await.unwrap();
    assert!(next.id > before.1.iter().map(|r| r.id).max().unwrap());
    let risk = before.1.iter().find(|r| r.kind == "risk").unwrap();
    assert!(matches!(target.set_archived(risk.id, 2, false, "ann").await, Err(StoreError::Conflict { .. })));

    // Only into an empty database, and never into itself.
    let again = source.copy_into(&target, None).await.unwrap_err().to_string();
    assert!(again.contains("move a programme only into an empty database"), "{again}");
    assert!(source.copy_into(&source, None).await.is_err());

    let last = sqlite();
    let back = last.open().await;
    target.copy_into(&back, None).await.unwrap();
    assert_eq!(contents(&back).await.1.len(), 5);
    assert_eq!(contents(&back).await.2, contents(&target).await.2);
}

#[tokio::test]
async fn two_servers_on_one_database_act_as_one_site() {
    let Some(db) = postgres("two_servers_on_one_database").await else { return };
    // Two stores with their own connection pools, as two `ipmo serve` processes have.
    let (one, two) = (db.open().await, db.open().await);
    let ann = one.add_user("ann", "", Role::Editor, "a long password", "test").await.unwrap();
    let session = one.start_session(&ann).await.unwrap();
    let seen = two.session(&session.token).await.unwrap().expect("a session made on one is valid on two");
    assert_eq!(seen.csrf, session.csrf);

    let a = two.create("aim", aim("Shared"), "ann").await.unwrap();
    assert_eq!(one.record(a.id).await.unwrap().unwrap().text("title"), "Shared", "saved on two, seen on one at once");

    // The same edit from both at once: one save, one conflict, for any interleaving.
    for round in 0..10 {
        let current = one.record(a.id).await.unwrap().unwrap();
        let edit = |who: &str| {
            let mut d = current.data.clone();
            d.insert("title".into(), format!("{who} {round}").into());
            d
        };
        let (x, y) = tokio::join!(
            one.update(a.id, current.version, edit("one"), "ann"),
            two.update(a.id, current.version, edit("two"), "bob")
        );
        let saved = [&x, &y].iter().filter(|r| r.is_ok()).count();
        let conflicts = [&x, &y].iter().filter(|r| matches!(r, Err(StoreError::Conflict { .. }))).count();
        assert_eq!((saved, conflicts), (1, 1), "round {round}: {x:?} {y:?}");
    }
    assert_eq!(two.record(a.id).await.unwrap().unwrap().version, 11);
    assert_eq!(one.audit(Some("aim"), Some(a.id), 100).await.unwrap().len(), 11, "one audit entry per save");
    two.end_session(&session.token).await.unwrap();
    assert_eq!(one.session(&session.token).await.unwrap(), None);
}

#[tokio::test]
async fn sign_in_limits_are_counted_from_the_log_the_servers_share() {
    for db in databases("sign_in_limits").await {
        let s = db.open().await;
        let log = |event: &str, username: &str, client: &str| ipmo_governance::store::SignInEvent {
            at: String::new(),
            event: event.into(),
            username: username.into(),
            client: client.into(),
            detail: String::new(),
        };
        for i in 0..4 {
            s.log_sign_in(&log("sign-in.failed", "Ann", &format!("10.0.0.{i}"))).await.unwrap();
        }
        let now = chrono::Utc::now();
        assert_eq!(s.recent_failures("ann", "10.0.0.9").await.unwrap().refusal(now), None);
        // The fifth, through another connection pool (another server), locks the account.
        let other = db.open().await;
        other.log_sign_in(&log("sign-in.failed", "ANN", "10.0.0.5")).await.unwrap();
        let failures = s.recent_failures("ann", "10.0.0.9").await.unwrap();
        assert_eq!(failures.account.len(), ipmo_governance::auth::MAX_FAILURES);
        assert!(matches!(failures.refusal(now), Some(ipmo_governance::auth::Refusal::Account(_))));
        // A sign-in starts the account's count again; other names and addresses are not held up.
        s.log_sign_in(&log("sign-in", "ann", "10.0.0.1")).await.unwrap();
        assert!(s.recent_failures("ann", "10.0.0.9").await.unwrap().account.is_empty());
        assert_eq!(s.recent_failures("bob", "10.0.0.1").await.unwrap().client.len(), 1);
        // Failures older than the window do not count.
        let pool = db.raw().await;
        sqlx::query("UPDATE sign_in_events SET at = '2020-01-01T00:00:00Z'").execute(&pool).await.unwrap();
        let old = s.recent_failures("ann", "10.0.0.0").await.unwrap();
        assert!(old.account.is_empty() && old.client.is_empty());
        pool.close().await;
    }
}
