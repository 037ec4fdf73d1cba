//! The `ipmo` binary end to end: help, synth → ingest → sql, and how it fails on bad input.

use std::path::Path;
use std::process::{Command, Output};

fn ipmo(warehouse: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ipmo"))
        .arg("--warehouse")
        .arg(warehouse)
        .args(args)
        .env_remove("IPMO_WAREHOUSE")
        .output()
        .expect("the ipmo binary runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ipmo failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "ipmo should have failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The sum of one integer column of a CSV file, read with the csv crate rather than our reader.
fn column_sum(path: &Path, column: &str) -> i64 {
    let mut r = csv::Reader::from_path(path).unwrap();
    let i = r.headers().unwrap().iter().position(|h| h == column).unwrap();
    r.records().map(|rec| rec.unwrap()[i].parse::<i64>().unwrap()).sum()
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        &[][..],
        &["ingest"],
        &["ingest", "epd"],
        &["ingest", "orgs"],
        &["ingest", "list-sizes"],
        &["ingest", "bnf"],
        &["ingest", "imd"],
        &["sql"],
        &["status"],
        &["synth"],
        &["demo"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let text = ok(&ipmo(dir.path(), &args));
        assert!(text.contains("Usage: ipmo"), "{cmd:?}: {text}");
        assert!(text.contains("--quiet"), "{cmd:?} lacks the global options: {text}");
    }
}

#[test]
fn synthetic_files_load_and_every_item_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    let wh = dir.path().join("wh");
    let input_s = input.to_str().unwrap();
    ok(&ipmo(&wh, &["--quiet", "synth", "--out", input_s, "--practices", "30", "--months", "2", "--start", "2024-11"]));
    let f = |n: &str| input.join(n).to_str().unwrap().to_string();
    ok(&ipmo(&wh, &["-q", "ingest", "bnf", &f("bnf_codes.csv")]));
    ok(&ipmo(&wh, &["-q", "ingest", "orgs", &f("gp-reg-pat-prac-map.csv")]));
    ok(&ipmo(&wh, &["-q", "ingest", "imd", &f("practice_imd.csv")]));
    let lists = [f("gp-reg-pat-prac-quin-age_202411.csv"), f("gp-reg-pat-prac-quin-age_202412.csv")];
    ok(&ipmo(&wh, &["-q", "ingest", "list-sizes", &lists[0], &lists[1]]));
    let epd = [f("epd_202411.csv"), f("epd_202412.csv")];
    ok(&ipmo(&wh, &["-q", "ingest", "epd", &epd[0], &epd[1]]));

    let expected = column_sum(Path::new(&epd[0]), "ITEMS") + column_sum(Path::new(&epd[1]), "ITEMS");
    let json = ok(&ipmo(&wh, &["sql", "SELECT SUM(items) AS items FROM prescribing", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["items"].as_i64().unwrap(), expected);

    // Every prescribing practice is in the organisation map but the …998 ones, which are flagged.
    let csv = ok(&ipmo(
        &wh,
        &[
            "sql",
            "SELECT p.unidentified, COUNT(DISTINCT p.practice_code) AS n FROM prescribing p \
             LEFT JOIN org_membership_latest m USING (practice_code) WHERE m.practice_code IS NULL \
             GROUP BY 1",
            "--format",
            "csv",
        ],
    ));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with("true,"), "only unidentified codes lack a mapping: {csv}");

    // Reloading a month replaces it rather than adding to it.
    ok(&ipmo(&wh, &["-q", "ingest", "epd", &epd[1]]));
    let json = ok(&ipmo(&wh, &["sql", "SELECT SUM(items) AS items FROM prescribing", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["items"].as_i64().unwrap(), expected);

    let status = ok(&ipmo(&wh, &["status"]));
    assert!(status.contains("prescribing_exact    2 partitions, 2024-11 … 2024-12"), "{status}");
    assert!(status.contains("epd_202412.csv"), "{status}");
}

#[test]
fn synth_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    for (out, seed) in [("a", "7"), ("b", "7"), ("c", "8")] {
        let out = dir.path().join(out);
        ok(&ipmo(
            &wh,
            &["-q", "synth", "--out", out.to_str().unwrap(), "--practices", "12", "--months", "1", "--seed", seed],
        ));
    }
    let read = |d: &str| std::fs::read(dir.path().join(d).join("epd_202301.csv")).unwrap();
    assert!(read("a") == read("b"), "same seed, same bytes");
    assert!(read("a") != read("c"), "another seed, other data");
}

#[test]
fn bad_rows_stop_the_load_and_name_file_line_column_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let bad = dir.path().join("epd_202411.csv");
    std::fs::write(
        &bad,
        "YEAR_MONTH,PRACTICE_CODE,BNF_CODE,ITEMS,TOTAL_QUANTITY,NIC,ACTUAL_COST\n\
         202411,A81001,0501013B0AAAAAA,2,42,3.10,2.90000\n\
         202411,A81002,0501013B0AAAAAA,1O,21,1.55,1.45000\n",
    )
    .unwrap();
    let err = failed(&ipmo(&wh, &["ingest", "epd", bad.to_str().unwrap()]));
    assert!(err.contains("epd_202411.csv line 3, column ITEMS: \"1O\" is not a whole number"), "{err}");
    assert!(err.contains("--max-errors"), "the message says how to go on: {err}");
    // Nothing was loaded.
    let err = failed(&ipmo(&wh, &["status"]));
    assert!(err.contains("is empty"), "{err}");

    // With --max-errors the good row loads and the bad one goes to a rejects file.
    let out = ipmo(&wh, &["ingest", "epd", "--max-errors", "1", bad.to_str().unwrap()]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 rows read, 1 kept, 1 rejected"), "{stderr}");
    let rejects: Vec<_> = std::fs::read_dir(wh.join("rejects")).unwrap().collect();
    assert_eq!(rejects.len(), 1);
    let json =
        ok(&ipmo(&wh, &["sql", "SELECT SUM(items) AS items, SUM(nic) AS nic FROM prescribing", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v[0]["items"].as_i64(), v[0]["nic"].as_f64()), (Some(2), Some(3.10)));
}

#[test]
fn wrong_month_missing_file_and_bad_sql_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let mislabelled = dir.path().join("epd_202412.csv");
    std::fs::write(
        &mislabelled,
        "YEAR_MONTH,PRACTICE_CODE,BNF_CODE,ITEMS,TOTAL_QUANTITY,NIC,ACTUAL_COST\n\
         202411,A81001,0501013B0AAAAAA,2,42,3.10,2.90000\n",
    )
    .unwrap();
    let err = failed(&ipmo(&wh, &["ingest", "epd", mislabelled.to_str().unwrap()]));
    assert!(err.contains("epd_202412.csv line 2, column YEAR_MONTH"), "{err}");

    let missing = dir.path().join("nowhere.csv");
    let err = failed(&ipmo(&wh, &["ingest", "epd", missing.to_str().unwrap()]));
    assert!(err.contains("nowhere.csv"), "{err}");

    let err = failed(&ipmo(&wh, &["sql", "SELECT * FROM no_such_table"]));
    assert!(err.contains("no_such_table"), "{err}");
    assert!(err.contains("SHOW TABLES"), "the message says where the tables are listed: {err}");
    let err = failed(&ipmo(&wh, &["sql", "SELEC 1"]));
    assert!(err.contains("SELEC"), "{err}");

    // The warehouse changes only through `ipmo ingest`: SQL that writes is refused.
    let target = dir.path().join("copied.csv");
    for sql in [
        "CREATE TABLE t AS SELECT 1 AS x".to_string(),
        format!("COPY (SELECT 1 AS x) TO '{}'", target.display()),
        "SET datafusion.execution.batch_size = 1".to_string(),
    ] {
        let err = failed(&ipmo(&wh, &["sql", &sql]));
        assert!(err.contains("not supported") || err.contains("not allowed"), "{sql}: {err}");
    }
    assert!(!target.exists());
}

/// ARCHITECTURE.md's first invariant: only the warehouse crate depends on DataFusion.
#[test]
fn only_the_warehouse_crate_depends_on_datafusion() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut with = Vec::new();
    for entry in std::fs::read_dir(crates).unwrap() {
        let dir = entry.unwrap().path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        if manifest.lines().any(|l| l.trim_start().starts_with("datafusion")) {
            with.push(dir.file_name().unwrap().to_string_lossy().to_string());
        }
    }
    assert_eq!(with, vec!["ipmo-warehouse".to_string()]);
}
