//! The SQLite store against a real file: accounts and sessions, records with references,
//! optimistic locking, the audit trail, archiving instead of deleting, all-or-nothing imports,
//! reopening, and backup and restore while the store is open.

use ipmo_governance::kinds::{self, AcceptAll};
use ipmo_governance::store::Data;
use ipmo_governance::{GovernanceStore, Role, SqliteStore, StoreError};
use std::collections::BTreeMap;
use std::path::Path;

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

async fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("gov.sqlite")).await.expect("open")
}

#[tokio::test]
async fn accounts_sessions_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
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

#[tokio::test]
async fn records_are_versioned_audited_and_archived_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    let a = s.create("aim", aim("Antimicrobial stewardship"), "ann").await.unwrap();
    let r = s.create("risk", risk(&format!("AIM-{}", a.id), "Broad-spectrum use"), "ann").await.unwrap();
    assert_eq!((r.version, r.data["aim"].as_i64()), (1, Some(a.id)));

    // A stale version is a conflict carrying the current record.
    let mut changed = r.data.clone();
    changed.insert("title".into(), "Broad-spectrum use stays high".into());
    let v2 = s.update(r.id, 1, changed.clone(), "bob").await.unwrap();
    assert_eq!((v2.version, v2.updated_by.as_str()), (2, "bob"));
    match s.update(r.id, 1, r.data.clone(), "ann").await {
        Err(StoreError::Conflict { current }) => assert_eq!((current.version, current.updated_by.as_str()), (2, "bob")),
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
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("gov.sqlite").display())).await.unwrap();
    let e = sqlx::query("DELETE FROM records").execute(&pool).await.unwrap_err().to_string();
    assert!(e.contains("archived, never deleted"), "{e}");
    let e = sqlx::query("UPDATE audit SET actor = 'x'").execute(&pool).await.unwrap_err().to_string();
    assert!(e.contains("cannot be changed"), "{e}");
    pool.close().await;
}

#[tokio::test]
async fn references_must_point_at_live_records_of_the_right_kind() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
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
        Err(StoreError::Invalid(errors)) => assert!(errors[0].message.contains("is archived"), "{}", errors[0].message),
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

#[tokio::test]
async fn imports_are_all_or_nothing_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    let a = s.create("aim", aim("Workforce"), "ann").await.unwrap();
    let good = format!("AIM-{}", a.id);
    let rows = vec![risk(&good, "one"), risk(&good, "two"), risk("AIM-12345", "three")];
    match s.import("risk", rows, "ann").await {
        Err(StoreError::Invalid(errors)) => assert!(errors[0].message.starts_with("row 3:"), "{}", errors[0].message),
        other => panic!("expected invalid, got {other:?}"),
    }
    assert!(s.records("risk", true).await.unwrap().is_empty(), "nothing from a failed import");
    assert_eq!(s.import("risk", vec![risk(&good, "one"), risk(&good, "two")], "ann").await.unwrap(), 2);
    s.close().await;

    let reopened = open(dir.path()).await;
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

#[tokio::test]
async fn backup_and_restore_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    let ann = s.add_user("ann", "", Role::Admin, "a long password", "test").await.unwrap();
    s.create("aim", aim("Kept"), "ann").await.unwrap();
    let backup = dir.path().join("backup.sqlite");
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
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("gov.sqlite").display())).await.unwrap();
    assert!(sqlx::query("DELETE FROM records").execute(&pool).await.is_err());
    pool.close().await;

    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, b"not a database at all").unwrap();
    assert!(matches!(s.restore(&junk, "admin").await, Err(StoreError::Backup(_))));
    assert!(matches!(s.restore(&dir.path().join("missing"), "admin").await, Err(StoreError::Backup(_))));
    assert_eq!(s.records("aim", true).await.unwrap().len(), 1, "a failed restore changes nothing");
}
