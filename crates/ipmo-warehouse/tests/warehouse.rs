//! The warehouse against real NHS files: totals must equal the raw files' own sums.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::{CsvReadOptions, SessionContext};
use ipmo_ingest::epd::{EpdOptions, PrescribingData, read_prescribing};
use ipmo_ingest::{ErrorPolicy, open_source};
use ipmo_warehouse::{OutputFormat, Warehouse, WarehouseError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn load_epd(wh: &Warehouse, files: &[PathBuf], max_errors: u64) -> Result<ipmo_warehouse::LoadOutcome, WarehouseError> {
    let mut data = PrescribingData::new();
    let opts = EpdOptions { month: None, errors: ErrorPolicy { max_errors } };
    let mut reports = Vec::new();
    for f in files {
        let r = read_prescribing(open_source(f)?, &mut data, &opts, &mut |_| {})?;
        reports.push((r, f.clone()));
    }
    wh.load_prescribing(&data, &reports, &mut |_| {})
}

fn query(wh: &Warehouse, sql: &str) -> Vec<RecordBatch> {
    rt().block_on(wh.query(sql)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn csv_of(wh: &Warehouse, sql: &str) -> String {
    let mut out = Vec::new();
    rt().block_on(wh.query_to(sql, OutputFormat::Csv, &mut out)).unwrap();
    String::from_utf8(out).unwrap()
}

fn int(batches: &[RecordBatch], col: usize) -> Vec<i64> {
    batches.iter().flat_map(|b| b.column(col).as_primitive::<Int64Type>().values().to_vec()).collect()
}

/// Per-practice sums computed straight from the raw CSV by DataFusion's own CSV reader, with
/// money as exact decimals: independent of the ingest code under test.
fn raw_totals(path: &Path, items: &str, nic: &str, cost: &str, practice: &str) -> BTreeMap<String, (i64, i64, i64)> {
    let ctx = SessionContext::new();
    let rt = rt();
    rt.block_on(ctx.register_csv(
        "raw",
        path.to_str().unwrap(),
        CsvReadOptions::new().schema_infer_max_records(100_000),
    ))
    .unwrap();
    let sql = format!(
        "SELECT \"{practice}\", CAST(SUM(\"{items}\") AS BIGINT), \
         CAST(SUM(CAST(CAST(\"{nic}\" AS VARCHAR) AS DECIMAL(20,2))) * 100 AS BIGINT), \
         CAST(SUM(CAST(CAST(\"{cost}\" AS VARCHAR) AS DECIMAL(20,5))) * 100000 AS BIGINT) \
         FROM raw GROUP BY 1 ORDER BY 1"
    );
    let batches = rt.block_on(async { ctx.sql(&sql).await.unwrap().collect().await.unwrap() });
    let mut out = BTreeMap::new();
    for b in &batches {
        let p = b
            .column(0)
            .as_string_view_opt()
            .map(|a| (0..a.len()).map(|i| a.value(i).to_string()).collect::<Vec<_>>())
            .unwrap_or_else(|| {
                let a = b.column(0).as_string::<i32>();
                (0..a.len()).map(|i| a.value(i).to_string()).collect()
            });
        let (i, n, c) = (
            b.column(1).as_primitive::<Int64Type>(),
            b.column(2).as_primitive::<Int64Type>(),
            b.column(3).as_primitive::<Int64Type>(),
        );
        for (r, practice) in p.into_iter().enumerate() {
            out.insert(practice, (i.value(r), n.value(r), c.value(r)));
        }
    }
    out
}

fn warehouse_totals(wh: &Warehouse) -> BTreeMap<String, (i64, i64, i64)> {
    let b = query(
        wh,
        "SELECT practice_code, SUM(items), SUM(nic_pence), SUM(actual_cost_e5) FROM prescribing GROUP BY 1 ORDER BY 1",
    );
    let practices: Vec<String> = b
        .iter()
        .flat_map(|b| {
            let a = b.column(0).as_string::<i32>();
            (0..a.len()).map(|i| a.value(i).to_string()).collect::<Vec<_>>()
        })
        .collect();
    let (i, n, c) = (int(&b, 1), int(&b, 2), int(&b, 3));
    practices.into_iter().enumerate().map(|(k, p)| (p, (i[k], n[k], c[k]))).collect()
}

#[test]
fn epd_and_dpi_give_identical_warehouses_whose_totals_equal_the_raw_files() {
    let Some(real) = ipmo_testkit::real_data("epd_and_dpi") else { return };
    let e2e = real.join("openprescribing/e2e-2017-09");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (wa, wb) = (Warehouse::open(a.path()).unwrap(), Warehouse::open(b.path()).unwrap());
    let epd = e2e.join("epd_201709.csv");
    let out = load_epd(&wa, std::slice::from_ref(&epd), 0).unwrap();
    assert_eq!(out.rows_written, 5_324, "practice × presentation pairs");
    load_epd(&wb, &[e2e.join("dpi_201709_Detailed_Prescribing_Information.csv")], 0).unwrap();
    let all = "SELECT month, practice_code, bnf_code, items, quantity, nic_pence, actual_cost_e5, adq_usage, unidentified \
               FROM prescribing ORDER BY practice_code, bnf_code";
    let (ca, cb) = (csv_of(&wa, all), csv_of(&wb, all));
    assert_eq!(ca.lines().count(), 5_325);
    assert_eq!(ca, cb);
    let expected = raw_totals(&epd, "ITEMS", "NIC", "ACTUAL_COST", "PRACTICE_CODE");
    assert_eq!(warehouse_totals(&wa), expected);
    // The published per-practice figures, as a second check on the independent sums.
    assert_eq!(expected["B85010"].0, 10_312);
    assert_eq!(expected["B85054"].1, 13_469_073);
    let m = wa.manifest().unwrap();
    assert_eq!(m.loads[0].rows_read, 10_027);
    assert_eq!(m.loads[0].partitions, vec!["2017-09".to_string()]);
    assert_eq!(m.loads[0].sha256.len(), 64);
}

#[test]
fn quantity_per_item_split_matches_the_raw_file_row_for_row() {
    let Some(real) = ipmo_testkit::real_data("quantity_per_item") else { return };
    let e2e = real.join("openprescribing/e2e-2017-09");
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    let epd = e2e.join("epd_201709.csv");
    load_epd(&wh, std::slice::from_ref(&epd), 0).unwrap();
    // Independent: DataFusion's CSV reader over the raw file, one row per EPD row.
    let ctx = SessionContext::new();
    let rt = rt();
    rt.block_on(ctx.register_csv(
        "raw",
        epd.to_str().unwrap(),
        CsvReadOptions::new().schema_infer_max_records(100_000),
    ))
    .unwrap();
    let raw_sql = "SELECT CAST(\"PRACTICE_CODE\" AS VARCHAR) AS p, CAST(COUNT(*) AS BIGINT) AS n, \
                   CAST(ROUND(SUM(\"TOTAL_QUANTITY\") * 1000) AS BIGINT) AS q FROM raw GROUP BY 1 ORDER BY 1";
    let raw = rt.block_on(async { ctx.sql(raw_sql).await.unwrap().collect().await.unwrap() });
    let ours = query(
        &wh,
        "SELECT practice_code, CAST(COUNT(*) AS BIGINT), CAST(ROUND(SUM(quantity_per_item * items) * 1000) AS BIGINT) \
         FROM prescribing_by_quantity GROUP BY 1 ORDER BY 1",
    );
    assert_eq!((int(&ours, 1), int(&ours, 2)), (int(&raw, 1), int(&raw, 2)));
    assert_eq!(int(&ours, 1).iter().sum::<i64>(), 10_027, "one split row per raw row");
    assert_eq!(int(&ours, 2), [831_324_000, 1_071_140_000, 590_935_000, 358_610_000], "B85010, B85054, L84018, L84073");
    // And the split sums back to the aggregated table, cell by cell.
    let mismatched = query(
        &wh,
        "SELECT COUNT(*) FROM prescribing p JOIN (SELECT practice_code, bnf_code, SUM(items) AS items, \
         SUM(quantity_per_item * items) AS quantity FROM prescribing_by_quantity GROUP BY 1, 2) s \
         ON s.practice_code = p.practice_code AND s.bnf_code = p.bnf_code \
         WHERE s.items <> p.items OR ABS(s.quantity - p.quantity) > 1e-6",
    );
    assert_eq!(int(&mismatched, 0), [0]);
    let m = wh.manifest().unwrap();
    assert_eq!(m.partitions("prescribing_by_quantity"), ["2017-09"]);
}

#[test]
fn icb_era_extract_with_shuffled_columns_loads_exactly() {
    let Some(path) =
        ipmo_testkit::real_file("icb_era", "epd-nel-diabetes-202411/epd_202411_nel_3chemicals_api_extract.csv")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    load_epd(&wh, std::slice::from_ref(&path), 0).unwrap();
    assert_eq!(warehouse_totals(&wh), raw_totals(&path, "ITEMS", "NIC", "ACTUAL_COST", "PRACTICE_CODE"));
    let b = query(
        &wh,
        "SELECT SUM(items), SUM(nic_pence), SUM(actual_cost_e5), COUNT(DISTINCT practice_code) FROM prescribing",
    );
    assert_eq!((int(&b, 0)[0], int(&b, 1)[0], int(&b, 2)[0], int(&b, 3)[0]), (31_915, 24_662_680, 23_238_637_458, 30));
}

#[test]
fn reloading_a_month_replaces_it_and_a_failed_load_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    let src = tempfile::tempdir().unwrap();
    let header = "YEAR_MONTH,PRACTICE_CODE,BNF_CODE,QUANTITY,ITEMS,TOTAL_QUANTITY,ADQUSAGE,NIC,ACTUAL_COST\n";
    let f1 = src.path().join("epd_202401.csv");
    std::fs::write(&f1, format!("{header}202401,A81001,0501013B0AAAAAA,21,2,42,7,1.50,1.40000\n")).unwrap();
    load_epd(&wh, std::slice::from_ref(&f1), 0).unwrap();
    let f2 = src.path().join("epd_202402.csv");
    std::fs::write(&f2, format!("{header}202402,A81001,0501013B0AAAAAA,21,5,105,7,3.00,2.80000\n")).unwrap();
    load_epd(&wh, std::slice::from_ref(&f2), 0).unwrap();
    std::fs::write(&f1, format!("{header}202401,A81001,0501013B0AAAAAA,21,9,189,7,9.00,8.00000\n")).unwrap();
    load_epd(&wh, std::slice::from_ref(&f1), 0).unwrap();
    let sql = "SELECT CAST(month AS VARCHAR) AS month, items, nic FROM prescribing ORDER BY month";
    let before = csv_of(&wh, sql);
    assert_eq!(before, "month,items,nic\n2024-01-01,9,9.0\n2024-02-01,5,3.0\n");
    let files = std::fs::read_dir(dir.path().join("tables/prescribing_exact")).unwrap().count();
    assert_eq!(files, 2, "the replaced file is removed");

    // A bad row fails the load; the warehouse, manifest included, is exactly as it was.
    let manifest = std::fs::read(dir.path().join("manifest.json")).unwrap();
    std::fs::write(&f1, format!("{header}202401,A81001,0501013B0AAAAAA,21,1O,189,7,9.00,8.00000\n")).unwrap();
    let err = load_epd(&wh, std::slice::from_ref(&f1), 0).unwrap_err().to_string();
    assert!(err.starts_with("epd_202401.csv line 2, column ITEMS: \"1O\" is not a whole number"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("manifest.json")).unwrap(), manifest);
    assert_eq!(csv_of(&wh, sql), before);

    // A load interrupted after writing its files but before committing leaves stray files that
    // readers never see and the next load removes.
    std::fs::write(dir.path().join("tables/prescribing_exact/2024-01.L999999.parquet"), b"partial").unwrap();
    assert_eq!(csv_of(&wh, sql), before);
    load_epd(&wh, std::slice::from_ref(&f2), 0).unwrap();
    assert!(!dir.path().join("tables/prescribing_exact/2024-01.L999999.parquet").exists());

    // With --max-errors the bad row is skipped, counted and written beside the manifest.
    std::fs::write(&f1, format!("{header}202401,A81001,0501013B0AAAAAA,21,1O,189,7,9.00,8.00000\n202401,A81002,0501013B0AAAAAA,21,4,84,7,2.00,1.00000\n")).unwrap();
    let out = load_epd(&wh, std::slice::from_ref(&f1), 5).unwrap();
    let rec = &out.records[0];
    assert_eq!((rec.rows_read, rec.rows_kept, rec.rows_rejected), (2, 1, 1));
    let rejects = std::fs::read_to_string(dir.path().join(rec.rejects_file.as_ref().unwrap())).unwrap();
    assert!(rejects.contains("2,ITEMS,\"\"\"1O\"\" is not a whole number\",202401,A81001"), "{rejects}");
}

#[test]
fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    let _held = ipmo_warehouse::WarehouseLock::acquire(dir.path()).unwrap();
    let err = wh.load_imd(vec![]).unwrap_err();
    assert!(matches!(err, WarehouseError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("being loaded by another ipmo process"));
}

#[test]
fn practice_maps_give_dated_membership() {
    let Some(real) = ipmo_testkit::real_data("practice_maps") else { return };
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    let mut files = Vec::new();
    for m in ["2020-09", "2022-01", "2025-10"] {
        let p = real.join(format!("gp-reg-pat-prac-map/gp-reg-pat-prac-map_{m}.csv"));
        let (f, r) = ipmo_ingest::orgs::read_orgs(open_source(&p).unwrap(), None, ErrorPolicy::default()).unwrap();
        files.push((f, r, p));
    }
    wh.load_orgs(files).unwrap();
    let as_at = |d: &str| {
        format!(
            "FROM org_membership WHERE (valid_from IS NULL OR valid_from <= DATE '{d}') AND (valid_to IS NULL OR valid_to > DATE '{d}')"
        )
    };
    // A practice's first known membership also stands for the months before it was first mapped,
    // so a date counts the practices of the latest map on or before it plus those first mapped
    // later (counted from the files with Python: 23 practices are first mapped after 2020-09 and
    // 16 after 2022-01).
    for (d, n) in [
        ("2020-09-01", 6_708 + 23),
        ("2021-06-01", 6_708 + 23),
        ("2022-01-01", 6_527 + 16),
        ("2025-10-01", 6_202),
        ("2026-11-01", 6_202),
    ] {
        assert_eq!(int(&query(&wh, &format!("SELECT COUNT(*) {}", as_at(d))), 0)[0], n, "as at {d}");
    }
    let oct = as_at("2025-10-01");
    let b = query(
        &wh,
        &format!(
            "SELECT COUNT(DISTINCT icb_code), COUNT(DISTINCT region_code), COUNT(DISTINCT sicbl_code), \
        SUM(CASE WHEN length(sicbl_code) = 5 THEN 1 ELSE 0 END) {oct}"
        ),
    );
    assert_eq!((int(&b, 0)[0], int(&b, 1)[0], int(&b, 2)[0]), (42, 7, 106));
    assert!(int(&b, 3)[0] > 0, "5-character sub-ICB codes are kept");
    let b = query(
        &wh,
        &format!("SELECT COUNT(DISTINCT sicbl_code), COUNT(DISTINCT pcn_code), COUNT(*) {oct} AND icb_code = 'QNC'"),
    );
    assert_eq!((int(&b, 0)[0], int(&b, 1)[0], int(&b, 2)[0]), (6, 25, 141));
    // "As today" is each practice's latest membership, closed practices included.
    let b = query(&wh, "SELECT COUNT(*), COUNT(DISTINCT practice_code) FROM org_membership_latest");
    assert_eq!(int(&b, 0)[0], int(&b, 1)[0]);
    let names = csv_of(&wh, "SELECT name, org_type FROM orgs WHERE code = 'QHM'");
    assert_eq!(names, "name,org_type\nNHS North East and North Cumbria Integrated Care Board,icb\n");
    // Every practice mapped in any of the three files, counted from the files with Python.
    assert_eq!(int(&query(&wh, "SELECT COUNT(*) FROM practices"), 0)[0], 6_708 + 23);
}

#[test]
fn list_sizes_give_star_pu_matching_the_published_weights() {
    let Some(real) = ipmo_testkit::real_data("list_sizes_star_pu") else { return };
    let path = real.join("openprescribing/e2e-2017-09/gp-reg-pat-prac-quin-age_201709.csv");
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    let (rows, report) =
        ipmo_ingest::list_sizes::read_list_sizes(open_source(&path).unwrap(), None, ErrorPolicy::default()).unwrap();
    wh.load_list_sizes(vec![(rows, report, path.clone())]).unwrap();
    // Independent: weights read from the published long file, bands re-grouped by hand here.
    let weights_csv =
        std::fs::read_to_string(real.join("starpu-astropu-2013/prescribing_units_2013_2009_long.csv")).unwrap();
    let mut weights = BTreeMap::new();
    for line in weights_csv.lines().filter(|l| l.starts_with("STAR-PU,2013,item,Oral Antibacterials")) {
        let f: Vec<&str> = line.split(',').collect();
        weights.insert(f[5].to_string(), (f[6].parse::<f64>().unwrap(), f[7].trim().parse::<f64>().unwrap()));
    }
    let band = |age: &str| -> &str {
        let lo: u32 = age.split(['_', '+']).next().unwrap().parse().unwrap();
        match lo {
            0 => "0-4",
            5 | 10 => "5-14",
            15 | 20 => "15-24",
            25 | 30 => "25-34",
            35 | 40 => "35-44",
            45 | 50 => "45-54",
            55 | 60 => "55-64",
            65 | 70 => "65-74",
            _ => "75+",
        }
    };
    let mut expected: BTreeMap<String, f64> = BTreeMap::new();
    for line in std::fs::read_to_string(&path).unwrap().lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f[6] == "ALL" || f[7] == "ALL" {
            continue;
        }
        let (m, w) = weights[band(f[7])];
        *expected.entry(f[3].to_string()).or_default() +=
            f[8].trim().parse::<f64>().unwrap() * if f[6] == "MALE" { m } else { w };
    }
    let b = query(
        &wh,
        "SELECT practice_code, star_pu_oral_antibacterial, total FROM list_sizes WHERE month = DATE '2017-09-01' ORDER BY 1",
    );
    assert_eq!(b[0].num_rows(), 4);
    let codes = b[0].column(0).as_string::<i32>();
    let star = b[0].column(1).as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    for i in 0..4 {
        assert!((star.value(i) - expected[codes.value(i)]).abs() < 1e-6, "{}", codes.value(i));
    }
    assert_eq!(int(&b, 2), vec![6_939, 10_529, 6_632, 4_181]);
}

#[test]
fn bnf_codes_and_changes_show_history_under_todays_codes() {
    let Some(real) = ipmo_testkit::real_data("bnf") else { return };
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    let mut files = Vec::new();
    let info = real.join("prescriptionsdata/bnf-code-information/20200201_1580570906919_BNF_Code_Information.csv.gz");
    let mut paths = vec![info];
    for y in [2017, 2018, 2020, 2021, 2022, 2023, 2024, 2025, 2026] {
        paths.push(real.join(format!("openprescribing/bnf-code-changes/{y}.txt")));
    }
    // NHSBSA's lists hold a few typed codes that cannot be BNF codes at any level (2018 line 137
    // has 16 characters): by default they stop the load, and with --max-errors they are rejected.
    let strict = ipmo_ingest::bnf::read_bnf(open_source(&paths[2]).unwrap(), ErrorPolicy::default()).unwrap_err();
    assert!(
        strict.to_string().starts_with("2018.txt line 137, column new_code: \"0910000000BBXEA1\" is not a BNF code"),
        "{strict}"
    );
    let mut rejected = Vec::new();
    for p in paths {
        let (f, r) = ipmo_ingest::bnf::read_bnf(open_source(&p).unwrap(), ErrorPolicy { max_errors: 5 })
            .unwrap_or_else(|e| panic!("{e}"));
        rejected.extend(r.rejected.iter().map(|x| x.error.line));
        files.push((f, r, p));
    }
    assert_eq!(rejected, vec![137]);
    wh.load_bnf(files).unwrap();
    assert_eq!(int(&query(&wh, "SELECT COUNT(*) FROM bnf"), 0)[0], 81_655);
    assert_eq!(int(&query(&wh, "SELECT COUNT(DISTINCT chapter_code) FROM bnf"), 0)[0], 21);
    load_epd(&wh, &[real.join("openprescribing/e2e-2017-09/epd_201709.csv")], 0).unwrap();
    let b = query(&wh, "SELECT COUNT(*) FROM prescribing_current WHERE bnf_code <> published_bnf_code");
    assert!(int(&b, 0)[0] > 0, "some 2017 codes have changed since");
    let same = query(&wh, "SELECT SUM(items), SUM(nic_pence) FROM prescribing_current");
    let raw = query(&wh, "SELECT SUM(items), SUM(nic_pence) FROM prescribing");
    assert_eq!((int(&same, 0), int(&same, 1)), (int(&raw, 0), int(&raw, 1)), "mapping codes never changes totals");
}

#[test]
fn imd_quintiles_are_national() {
    let Some(path) = ipmo_testkit::real_file("imd", "heec-practice-imd-payments/imd_practice_fingertips_93553.csv")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    let (rows, r) = ipmo_ingest::imd::read_imd(open_source(&path).unwrap(), ErrorPolicy::default()).unwrap();
    wh.load_imd(vec![(rows, r, path)]).unwrap();
    let b =
        query(&wh, "SELECT quintile, COUNT(*), MIN(score), MAX(score) FROM imd GROUP BY quintile ORDER BY quintile");
    let counts = int(&b, 1);
    assert_eq!(counts.len(), 5);
    assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
    let b = query(&wh, "SELECT score FROM imd WHERE practice_code = 'A81001'");
    let s = b[0].column(0).as_primitive::<datafusion::arrow::datatypes::Float64Type>().value(0);
    assert!(s > 30.0, "the 2019 value is kept, not 2010's 25.1: {s}");
}

#[test]
fn documented_tables_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    let listing = csv_of(
        &wh,
        "SELECT table_name, column_name, data_type FROM information_schema.columns \
         WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    );
    insta::assert_snapshot!(listing);
}

fn load_release(wh: &Warehouse, path: &Path, force: bool) -> Result<ipmo_warehouse::LoadOutcome, WarehouseError> {
    let release = ipmo_ingest::dmd::read_dmd(path, &mut |_| {})?;
    wh.load_dmd(&release, path, force)
}

/// The real 2019 dm+d cut and its BNF ↔ SNOMED mapping, loaded.
fn load_2019_cut_with_mapping(wh: &Warehouse, cuts: &Path) {
    load_release(wh, &cuts.join("release-2019-04-01"), false).unwrap();
    load_mapping(wh, cuts.join("bnf-snomed-mapping/mapping.xlsx"));
}

/// Loads one of NHSBSA's BNF ↔ SNOMED mapping workbooks.
fn load_mapping(wh: &Warehouse, mapping: std::path::PathBuf) {
    let (rows, report) = ipmo_ingest::bnf_snomed::read_bnf_snomed(
        ipmo_ingest::bnf_snomed::open_mapping(&mapping).unwrap(),
        ErrorPolicy { max_errors: 0 },
    )
    .unwrap();
    wh.load_bnf_snomed(vec![(rows, report, mapping)]).unwrap();
}

fn strings(wh: &Warehouse, sql: &str) -> Vec<String> {
    csv_of(wh, sql).lines().skip(1).map(str::to_string).collect()
}

/// Real dm+d cuts loaded in turn: each release replaces the last, an older one needs --force,
/// and a VPID that changed is followed, never duplicated, with the old id still findable.
#[test]
fn dmd_releases_replace_each_other_and_old_ids_stay_findable() {
    let Some(real) = ipmo_testkit::real_data("dmd_releases") else { return };
    let cuts = real.join("dmd-openprescribing-tests");
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    load_release(&wh, &cuts.join("release-2018-06-28/1"), false).unwrap();
    assert_eq!(strings(&wh, "SELECT COUNT(*) FROM dmd_vmp"), ["2"]);
    load_release(&wh, &cuts.join("release-2019-04-01"), false).unwrap();
    let m = wh.manifest().unwrap();
    assert_eq!(
        m.dmd_release.as_ref().map(|r| (r.date.as_str(), r.version.as_str())),
        Some(("2019-04-01", "release-2019-04-01"))
    );
    assert_eq!(strings(&wh, "SELECT COUNT(*), COUNT(DISTINCT vpid) FROM dmd_vmp"), ["7,7"]);
    assert_eq!(strings(&wh, "SELECT COUNT(*) FROM dmd_product"), ["22"], "7 VMPs and 15 AMPs");
    assert_eq!(
        strings(
            &wh,
            "SELECT ingredient, strength_numerator, strength_numerator_unit FROM dmd_vmp_strength WHERE vpid = '35894711000001106'"
        ),
        ["Adenosine,3.0,mg"]
    );
    let err = load_release(&wh, &cuts.join("release-2018-06-28/2"), false).unwrap_err().to_string();
    assert!(err.contains("dated 2018-06-28, older than the 2019-04-01 one held") && err.contains("--force"), "{err}");
    assert_eq!(strings(&wh, "SELECT COUNT(*) FROM dmd_vmp"), ["7"], "a refused release changes nothing");
    load_release(&wh, &cuts.join("release-2018-06-28/2"), true).unwrap();
    // The changed VMP is there once, under its new id; its packs and brands follow it.
    assert_eq!(strings(&wh, "SELECT vpid FROM dmd_vmp WHERE name LIKE 'Diclofenac%'"), ["12345"]);
    assert_eq!(strings(&wh, "SELECT COUNT(*) FROM dmd_vmpp WHERE vpid = '12345'"), ["3"]);
    // Both releases' id changes are kept: the 2019 adenosine change survives the 2018 reload.
    assert_eq!(
        strings(
            &wh,
            "SELECT kind, old_id, new_id FROM dmd_id_history WHERE old_id IN ('22480211000001104', '318338001') ORDER BY old_id"
        ),
        ["VMP,22480211000001104,12345", "VMP,318338001,35894711000001106"]
    );
}

/// The real CPE archive matched against nine months of the real Drug Tariff: every stored line
/// names one pack whose Tariff name and size are the line's; the rest are listed, not guessed.
#[test]
fn real_concessions_match_tariff_packs_or_are_listed() {
    let Some(real) = ipmo_testkit::real_data("concessions_matched") else { return };
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    let page = real.join("price-concessions/price_concessions_archive.html");
    let read = || {
        let (lines, report) = ipmo_ingest::concessions::read_concessions(
            ipmo_ingest::open_source(&page).unwrap(),
            ErrorPolicy::default(),
        )
        .unwrap();
        vec![(lines, report, page.clone())]
    };
    let err = wh.load_concessions(read()).unwrap_err().to_string();
    assert!(err.contains("holds neither"), "{err}");
    let tariff = real.join("drug-tariff/csv-converted/drug_tariff_viii_a_202509.csv");
    let (rows, report) =
        ipmo_ingest::tariff::read_tariff(ipmo_ingest::open_source(&tariff).unwrap(), None, ErrorPolicy::default())
            .unwrap();
    wh.load_tariff(vec![(rows, report, tariff)]).unwrap();
    let out = wh.load_concessions(read()).unwrap();
    let record = &out.records[0];
    let stored: i64 = strings(&wh, "SELECT COUNT(*) FROM concessions")[0].parse().unwrap();
    assert_eq!(stored as u64, record.rows_kept);
    assert_eq!(record.rows_kept + record.rows_rejected, 460, "every line is stored or listed");
    assert!(record.rows_kept > 200, "{} of 460 matched", record.rows_kept);
    eprintln!("{} of 460 archive lines matched a Tariff pack; {} listed", record.rows_kept, record.rows_rejected);
    let wrong = strings(
        &wh,
        "SELECT COUNT(*) FROM concessions c WHERE NOT EXISTS (SELECT 1 FROM tariff t WHERE t.vmpp = c.vmpp \
         AND lower(t.medicine) = lower(c.drug) AND t.pack_size = CAST(regexp_replace(c.pack_size, '[^0-9.].*$', '') AS DOUBLE))",
    );
    assert_eq!(wrong, ["0"]);
    assert_eq!(
        strings(
            &wh,
            "SELECT CAST(month AS VARCHAR) AS m, price_pence FROM concessions WHERE drug = 'Amiloride 5mg tablets' AND pack_size = '28' ORDER BY month"
        ),
        ["2019-11-01,1950", "2019-12-01,1920", "2020-01-01,2238", "2023-11-01,1650", "2023-12-01,1570"]
    );
    let rejects = std::fs::read_to_string(dir.path().join(record.rejects_file.as_ref().unwrap())).unwrap();
    assert!(rejects.lines().count() as u64 > record.rows_rejected, "a header and one line per unmatched concession");
}

/// Hand reviews of the selection snapshots below: which measure, when, against what. A snapshot
/// not named here is pinned (a change shows as a diff) but not yet reviewed by hand.
const REVIEWED: &[(&str, &str)] = &[
    (
        "amoxicillin_500_over_15_capsules",
        "2026-12-01: numerator and denominator are the amoxicillin 500 mg capsules (strength AB, generic and brands) of OpenPrescribing's amox_500_15_caps",
    ),
    (
        "uti_antibiotics_3_day",
        "2026-12-01: the six presentations (pivmecillinam 200 mg, trimethoprim 200 mg, nitrofurantoin 50 mg capsules and tablets and 100 mg MR capsules, fosfomycin 3 g) of OpenPrescribing's uti_antibiotics_3_day, brands included",
    ),
    (
        "gluten_free_cost_per_1000",
        "2026-12-01: gluten-free breads, mixes and other foods under 0913 27/46 as OpenPrescribing's glutenfree; no low-protein products",
    ),
    (
        "salbutamol_carbon_per_inhaler",
        "2026-12-01: the 18 presentations of OpenPrescribing's carbon_salbutamol, each with its factor",
    ),
    (
        "soluble_paracetamol",
        "2026-12-01: numerator the effervescent co-codamol 8/500 and 30/500 (AC, AF) and soluble paracetamol 500 mg (AQ), denominator the nine strength codes of OpenPrescribing's solublepara, brands included",
    ),
    (
        "ciclosporin_tacrolimus_generic",
        "2026-12-01: numerator every generic (AA) ciclosporin and tacrolimus product, all forms, denominator every product, as OpenPrescribing's ciclosporin filters by code",
    ),
    (
        "high_cost_erectile_dysfunction",
        "2026-12-01: all of 7.4.5 less the nine generic sildenafil, tadalafil and vardenafil tablet codes of OpenPrescribing's highcost_ed",
    ),
    (
        "lp_omnibus",
        "2026-12-01: the union of the 23 low-priority measures of OpenPrescribing's vw__practice_data_all_low_priority; dm+d-selected components select nothing without a release",
    ),
];

/// Today's presentations from real reference data: NHSBSA's BNF Code Information of 2020
/// carried forward through every yearly change list to 2026, named as today's EPD names them
/// where a current name list (Bolton, NHSBSA API extract 2024, UKHSA 2025) has the code, with the
/// dm+d products of OpenPrescribing's 2019 test release behind the codes its mapping names.
fn todays_presentations(real: &Path) -> Vec<ipmo_measures::Presentation> {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    let mut files = Vec::new();
    let mut paths =
        vec![real.join("prescriptionsdata/bnf-code-information/20200201_1580570906919_BNF_Code_Information.csv.gz")];
    for y in [2020, 2021, 2022, 2023, 2024, 2025, 2026] {
        paths.push(real.join(format!("openprescribing/bnf-code-changes/{y}.txt")));
    }
    for p in paths {
        let (f, r) = ipmo_ingest::bnf::read_bnf(open_source(&p).unwrap(), ErrorPolicy { max_errors: 5 }).unwrap();
        files.push((f, r, p));
    }
    wh.load_bnf(files).unwrap();
    let cuts = real.join("dmd-openprescribing-tests");
    load_2019_cut_with_mapping(&wh, &cuts);
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    let mut names = |path: PathBuf, code: &str, name: &str| {
        let mut r = csv::Reader::from_path(path).unwrap();
        let h = r.headers().unwrap().clone();
        let at = |n: &str| h.iter().position(|x| x.trim_start_matches('\u{feff}') == n).unwrap();
        let (c, n) = (at(code), at(name));
        for rec in r.records() {
            let rec = rec.unwrap();
            current.insert(rec[c].to_string(), rec[n].to_string());
        }
    };
    names(real.join("bolton-epd-coursework/Drugs.csv"), "BNF_CODE", "BNF_DESCRIPTION");
    names(
        real.join("epd-nel-diabetes-202411/epd_202411_nel_3chemicals_api_extract.csv"),
        "BNF_CODE",
        "BNF_DESCRIPTION",
    );
    names(real.join("ukhsa-antibiotics-teaching-202511/bnf_code_lookup.csv"), "bnf_code", "bnf_description");
    let mut out: Vec<ipmo_measures::Presentation> = wh.presentations().unwrap().into_values().collect();
    for p in &mut out {
        if let Some(n) = current.get(&p.code) {
            p.name.clone_from(n);
        }
    }
    out.sort_by(|a, b| a.code.cmp(&b.code));
    out
}

/// Per measure, the real presentations each side selects today, pinned as a snapshot so a changed
/// definition or code list is a visible diff; sides of more than 60 presentations are summarised by
/// BNF chemical (by BNF section beyond 3,000). Every code pattern and name keyword of the shipped library selects something
/// among them.
#[test]
fn shipped_measures_select_these_real_presentations() {
    let Some(real) = ipmo_testkit::real_data("measure_selection_snapshots") else { return };
    let today = todays_presentations(&real);
    assert!(today.len() > 80_000, "{}", today.len());
    assert!(today.iter().filter(|p| !p.products.is_empty()).count() >= 5, "the test release's products are linked");
    let lib = ipmo_measures::Library::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../measures")).unwrap();
    // Product rules are left out of this check: a seven-product test cut of dm+d cannot show
    // that a rule selects nothing in a full release.
    let named: Vec<ipmo_measures::Presentation> =
        today.iter().map(|p| ipmo_measures::Presentation::named(&p.code, &p.name)).collect();
    let dead: Vec<String> =
        lib.dead_criteria(&named).iter().filter(|d| d.is_error()).map(ToString::to_string).collect();
    assert!(dead.is_empty(), "criteria that select nothing today: {dead:#?}");
    for (id, _) in REVIEWED {
        assert!(lib.get(id).is_some(), "a review names {id}, which is not in the library");
    }
    for m in lib.computed() {
        let mut text = format!(
            "{} (version {}, {}{})\nreview: {}\n",
            m.id,
            m.version,
            m.fidelity().as_str(),
            m.openprescribing_id.as_ref().map(|o| format!(": {o}")).unwrap_or_default(),
            REVIEWED.iter().find(|(id, _)| *id == m.id).map_or("not yet reviewed by hand", |(_, r)| r)
        );
        for (label, side) in [("numerator", &m.numerator), ("denominator", &m.denominator)] {
            if !side.quantity.is_prescribing() {
                text.push_str(&format!("{label}: {}\n", side.quantity.name()));
                continue;
            }
            let selected = lib.resolve(side, &today);
            text.push_str(&format!("{label}: {} presentations\n", selected.len()));
            if selected.len() <= 60 {
                for r in &selected {
                    let factor = if r.factor == 1.0 { String::new() } else { format!(" × {}", r.factor) };
                    text.push_str(&format!("  {} {}{factor}\n", r.bnf_code, r.name));
                }
            } else {
                // By chemical, or by BNF section for the very largest sides.
                let width = if selected.len() <= 3_000 { 9 } else { 4 };
                let mut by_group: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
                for r in &selected {
                    let e = by_group.entry(&r.bnf_code[..width.min(r.bnf_code.len())]).or_insert((0, &r.name));
                    e.0 += 1;
                }
                for (group, (n, first)) in by_group {
                    text.push_str(&format!("  {group} × {n:<5} e.g. {first}\n"));
                }
            }
        }
        insta::assert_snapshot!(format!("selects__{}", m.id), text);
    }
}

/// Substitution sets from the real 2019 dm+d cut and its BNF ↔ SNOMED mapping, against the sets
/// worked out by hand from the release's seven VMP families (see the assertions).
#[test]
fn substitution_sets_from_the_real_dmd_cut() {
    let Some(real) = ipmo_testkit::real_data("substitution_sets") else { return };
    let cuts = real.join("dmd-openprescribing-tests");
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    assert_eq!(wh.substitution_inputs().unwrap(), (vec![], vec![]), "no release, no products");
    load_2019_cut_with_mapping(&wh, &cuts);
    let (generics, brands) = wh.substitution_inputs().unwrap();
    assert_eq!((generics.len(), brands.len()), (7, 15));
    let sets = ipmo_value::substitution::build(&generics, &brands, None);
    let got: Vec<(&str, Vec<&str>)> =
        sets.sets.iter().map(|s| (s.id.as_str(), s.codes.iter().map(String::as_str).collect())).collect();
    assert_eq!(
        got,
        [
            // Adenosine 6mg/2ml vials: its brands are all restricted, so it stands alone.
            ("0203020C0AAAAAA", vec!["0203020C0AAAAAA"]),
            // Diclofenac 2.32% gel with its brand (Voltarol 12 hour emulgel P).
            ("1003020U0AAAIAI", vec!["1003020U0AAAIAI", "1003020U0BBADAI"]),
            // Pilocarpine 6% eye drops: preservative-free and preserved are not offered for each other.
            ("1106000X0AAA4A4", vec!["1106000X0AAA4A4"]),
            ("1106000X0AAAIAI", vec!["1106000X0AAAIAI"]),
            // The two coal tar creams differ in substance (coal tar, coal tar solution) but share a code.
            ("1305020C0AAFVFV", vec!["1305020C0AAFVFV"]),
        ]
    );
    assert!(sets.sets.iter().all(|s| s.formulation_swap.is_none()));
    let reasons = |reason: &str| sets.left_out.iter().filter(|l| l.reason == reason).count();
    // Generic Nutrison and three brands have no BNF code in the mapping; ten brands are restricted
    // (not available); one brand's generic (Nutrison) is never valid to prescribe as a VMP.
    assert_eq!(reasons("no BNF code"), 4);
    assert_eq!(reasons("not available"), 10);
    assert_eq!(reasons("its generic is not available or not suitable for prescribing in primary care"), 1);
    assert_eq!(sets.left_out.len(), 15);
}

/// The 2018 cuts and their June 2018 mapping, which names only packs: the diclofenac gel VMP and
/// the Voltarol AMP take their packs' codes (each pack of one product agrees), so the gel and its
/// brand form one set; in the hand-edited cut the VMP's new id (12345) changes nothing.
#[test]
fn substitution_sets_from_the_2018_cuts_whose_mapping_names_packs() {
    let Some(real) = ipmo_testkit::real_data("substitution_sets_2018") else { return };
    let cuts = real.join("dmd-openprescribing-tests");
    for cut in ["release-2018-06-28/1", "release-2018-06-28/2"] {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open(dir.path()).unwrap();
        load_release(&wh, &cuts.join(cut), false).unwrap();
        load_mapping(&wh, cuts.join("bnf-snomed-mapping/june-2018-snomed-mapping.xlsx"));
        let sets = wh.substitution_sets(true).unwrap().expect("a release is loaded");
        let got: Vec<(&str, Vec<&str>)> =
            sets.sets.iter().map(|s| (s.id.as_str(), s.codes.iter().map(String::as_str).collect())).collect();
        assert_eq!(got, [("1003020U0AAAIAI", vec!["1003020U0AAAIAI", "1003020U0BBADAI"])], "{cut}");
        // Two generic-named brands (Colorama, DE Pharmaceuticals) are restricted; three products
        // have no pack in the mapping.
        let reasons: Vec<&str> = sets.left_out.iter().map(|l| l.reason).collect();
        assert_eq!(reasons.iter().filter(|r| **r == "not available").count(), 2, "{cut}: {reasons:?}");
        assert_eq!(reasons.iter().filter(|r| **r == "no BNF code").count(), 3, "{cut}: {reasons:?}");
    }
}

#[test]
fn scmd_loads_with_nhsbsa_totals_returns_kept_and_trusts_under_icbs() {
    let Some(real) = ipmo_testkit::real_data("scmd") else { return };
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path()).unwrap();
    let path = real.join("scmd-samples/data_covid_meds.csv");
    let (rows, report) = ipmo_ingest::scmd::read_scmd(open_source(&path).unwrap(), ErrorPolicy::default()).unwrap();
    assert_eq!(report.layout, ipmo_ingest::scmd::ScmdLayout::Reduced);
    assert_eq!((report.rows_read, report.negative_rows, rows.len()), (14_419, 35, 14_419));
    let outcome = wh.load_scmd(vec![(rows, report, path.clone())]).unwrap();
    assert_eq!((outcome.rows_written, outcome.partitions.len()), (14_419, 23));
    // Figures from the sample's SOURCE.md (computed there with DuckDB from the raw file).
    let csv = csv_of(
        &wh,
        "SELECT COUNT(*) AS n, COUNT(DISTINCT trust_code) AS trusts, COUNT(DISTINCT vmp_id) AS vmps, \
         ROUND(SUM(quantity), 2) AS q, SUM(CASE WHEN quantity < 0 THEN 1 ELSE 0 END) AS returns FROM scmd",
    );
    assert_eq!(csv, "n,trusts,vmps,q,returns\n14419,157,12,2401811.25,35\n");
    let csv = csv_of(
        &wh,
        "SELECT month, COUNT(*) AS n, COUNT(DISTINCT trust_code) AS trusts, ROUND(SUM(quantity), 2) AS q FROM scmd \
         WHERE month IN (DATE '2019-01-01', DATE '2020-10-01', DATE '2020-11-01') GROUP BY month ORDER BY month",
    );
    assert_eq!(
        csv,
        "month,n,trusts,q\n2019-01-01,532,140,93614.52\n2020-10-01,859,148,245986.19\n2020-11-01,849,152,160665.23\n"
    );
    let csv = csv_of(
        &wh,
        "SELECT trust_code, COUNT(*) AS n, ROUND(SUM(quantity), 2) AS q FROM scmd WHERE month = DATE '2020-10-01' \
         AND trust_code IN ('RLN', 'RRK', 'RJ1') GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(csv, "trust_code,n,q\nRJ1,8,1198.48\nRLN,5,9540.68\nRRK,4,1269.0\n");
    // A 17-digit id stays text, exactly as published.
    let csv = csv_of(&wh, "SELECT DISTINCT vmp_id FROM scmd WHERE vmp_name LIKE 'Remdesivir 100mg/20ml%'");
    assert_eq!(csv, "vmp_id\n38377311000001100\n");
    // Loading the same month again replaces it rather than adding to it.
    let (rows, report) = ipmo_ingest::scmd::read_scmd(open_source(&path).unwrap(), ErrorPolicy::default()).unwrap();
    wh.load_scmd(vec![(rows, report, path.clone())]).unwrap();
    assert_eq!(csv_of(&wh, "SELECT COUNT(*) AS n FROM scmd"), "n\n14419\n");

    // The spreadsheet-mangled DDD file is refused, naming the line.
    let mangled = real.join("scmd-samples/meds_covid_meds_additional_ddds.csv");
    let text = std::fs::read_to_string(&mangled).unwrap();
    let as_scmd = format!(
        "year_month,ods_code,vmp_snomed_code,vmp_product_name,total_quantity\n2020-09-01,RAE,{},x,1\n",
        text.lines().nth(1).unwrap().split(',').nth(1).unwrap()
    );
    let e = ipmo_ingest::scmd::read_scmd(
        ipmo_ingest::SourceFile::from_bytes("mangled.csv", as_scmd.into_bytes()),
        ErrorPolicy::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("3.83772E+16") && e.contains("line 2"), "{e}");

    // Trusts: 218 in the ODS copy, each under an ICB (STP) code; 17 SCMD trust codes are not in it.
    let etr = real.join("scmd-samples/etr_tidy.csv");
    let (trusts, report) =
        ipmo_ingest::trusts::read_trusts(open_source(&etr).unwrap(), ErrorPolicy::default()).unwrap();
    assert_eq!((report.rows_read, trusts.len()), (218, 218));
    wh.load_trusts(vec![(trusts, report, etr)]).unwrap();
    let csv = csv_of(&wh, "SELECT icb_code, region_code FROM trusts WHERE code = 'R0A'");
    assert_eq!(csv, "icb_code,region_code\nQOP,Y62\n");
    let csv = csv_of(
        &wh,
        "SELECT COUNT(DISTINCT s.trust_code) AS n FROM scmd s LEFT JOIN trusts t ON t.code = s.trust_code \
         WHERE t.code IS NULL",
    );
    assert_eq!(csv, "n\n17\n");
    let hospitals = wh.load_hospitals().unwrap();
    assert_eq!(hospitals.unlisted_codes().len(), 17);
    let rrk = hospitals.coverage("RRK");
    let expected_months = csv_of(&wh, "SELECT COUNT(DISTINCT month) AS n FROM scmd WHERE trust_code = 'RRK'");
    assert_eq!(format!("n\n{}\n", rrk.months), expected_months);
    assert!(hospitals.in_icb("QOP").iter().any(|t| t.code == "R0A"));
}
