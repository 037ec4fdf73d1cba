//! Readers against real NHS files and against hostile input.

use ipmo_ingest::epd::{EpdLayout, EpdOptions, PrescribingData, read_prescribing};
use ipmo_ingest::{ErrorPolicy, IngestError, open_source};
use proptest::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

fn read_epd(path: &Path) -> (Result<ipmo_ingest::epd::FileReport, IngestError>, PrescribingData) {
    let mut data = PrescribingData::new();
    let r = open_source(path).and_then(|s| read_prescribing(s, &mut data, &EpdOptions::default(), &mut |_| {}));
    (r, data)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

const HEADER: &str =
    "YEAR_MONTH,PRACTICE_CODE,BNF_CODE,QUANTITY,ITEMS,TOTAL_QUANTITY,ADQUSAGE,NIC,ACTUAL_COST,UNIDENTIFIED";

fn small_epd(line_end: &str) -> String {
    [
        HEADER,
        "201709,L84073,0105010B0BIAAAS,168.0,1,168.0,84.0,75.38,69.93852,N",
        "201709,L84073,0105010B0BIAAAS,90.0,2,180.0,45.0,40.38,37.41727,N",
        "201709,B85010,21480000061,1.0,3,3.0,0.0,12.00,11.11111,N",
    ]
    .join(line_end)
        + line_end
}

#[test]
fn line_endings_bom_gzip_and_zip_all_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut variants = Vec::new();
    for (i, end) in ["\n", "\r\n", "\r"].iter().enumerate() {
        variants.push(write(dir.path(), &format!("epd_201709_{i}.csv"), small_epd(end).as_bytes()));
    }
    variants.push(write(dir.path(), "epd_201709_bom.csv", format!("\u{feff}{}", small_epd("\r\n")).as_bytes()));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(small_epd("\n").as_bytes()).unwrap();
    variants.push(write(dir.path(), "epd_201709.csv.gz", &gz.finish().unwrap()));
    let zip_path = dir.path().join("epd_201709.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    z.start_file(
        "epd_201709.csv",
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
    )
    .unwrap();
    z.write_all(small_epd("\n").as_bytes()).unwrap();
    z.finish().unwrap();
    variants.push(zip_path);
    let mut expected = None;
    for v in &variants {
        let (r, data) = read_epd(v);
        let r = r.unwrap_or_else(|e| panic!("{}: {e}", v.display()));
        assert_eq!((r.rows_read, r.rows_kept), (3, 3), "{}", v.display());
        let rows = data.rows_for("2017-09".parse().unwrap());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].totals.items, 3);
        assert_eq!(rows[1].totals.nic_pence, 7538 + 4038);
        if let Some(e) = &expected {
            assert_eq!(e, &rows, "{}", v.display());
        }
        expected = Some(rows);
    }
}

#[test]
fn truncated_gzip_is_reported_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let body = small_epd("\n").repeat(2000).replace(&format!("{HEADER}\n"), "");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("{HEADER}\n{body}").as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    let p = write(dir.path(), "epd_201709.csv.gz", &bytes[..bytes.len() / 2]);
    let (r, _) = read_epd(&p);
    let msg = r.unwrap_err().to_string();
    assert!(msg.starts_with("epd_201709.csv.gz line "), "{msg}");
    assert!(msg.contains("damaged or cut short"), "{msg}");
}

#[test]
fn real_epd_variants_load() {
    let Some(real) = ipmo_testkit::real_data("real_epd_variants_load") else { return };
    let cases = [
        ("openprescribing/e2e-2017-09/epd_201709.csv", EpdLayout::Epd, 10_027, "2017-09"),
        (
            "openprescribing/e2e-2017-09/dpi_201709_Detailed_Prescribing_Information.csv",
            EpdLayout::Dpi,
            10_027,
            "2017-09",
        ),
        ("epd-nel-diabetes-202411/epd_202411_nel_3chemicals_api_extract.csv", EpdLayout::Epd, 1_216, "2024-11"),
        ("openprescribing/format-samples/EPD_201601.csv", EpdLayout::Epd, 11, "2016-01"),
        ("openprescribing/format-samples/hscic_prescribing_sample.csv", EpdLayout::Pdpi, 51, "2014-10"),
    ];
    for (file, layout, rows, month) in cases {
        let (r, data) = read_epd(&real.join(file));
        let r = r.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!((r.layout, r.rows_read, r.rows_kept), (layout, rows, rows), "{file}");
        assert_eq!(data.months(), vec![month.parse().unwrap()], "{file}");
    }
    let (_, data) = read_epd(&real.join("openprescribing/format-samples/EPD_201601.csv"));
    let rows = data.rows_for("2016-01".parse().unwrap());
    assert!(rows.iter().any(|r| r.practice_code == "Q58998" && r.unidentified));
    assert!(rows.iter().filter(|r| r.practice_code != "Q58998").all(|r| !r.unidentified));
}

#[test]
fn real_format_samples_load_or_fail_clearly() {
    let Some(real) = ipmo_testkit::real_data("real_format_samples_load_or_fail_clearly") else { return };
    let samples = real.join("openprescribing/format-samples");
    // Headerless OpenPrescribing conversion: not an NHS layout, must be refused by name.
    let (r, _) = read_epd(&samples.join("T201304PDPI+BNFT_formatted.CSV"));
    let msg = r.unwrap_err().to_string();
    assert!(msg.starts_with("T201304PDPI+BNFT_formatted.CSV line 1: required column"), "{msg}");
    let ls = |n: &str| {
        ipmo_ingest::list_sizes::read_list_sizes(open_source(&samples.join(n)).unwrap(), None, ErrorPolicy::default())
    };
    let (rows, _) = ls("patient_list_size_new.csv").unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.month == Some("2017-04".parse().unwrap())));
    let (rows, _) = ls("Patient_List_Size_nodate.csv").unwrap();
    assert_eq!((rows.len(), rows[0].month.unwrap().to_string(), rows[0].male[0]), (1, "2011-04".to_string(), 364));
    let bnf = |n: &str| ipmo_ingest::bnf::read_bnf(open_source(&samples.join(n)).unwrap(), ErrorPolicy::default());
    match bnf("bnf_codes.csv").unwrap().0 {
        ipmo_ingest::bnf::BnfFile::Codes(rows) => assert_eq!(rows.len(), 30),
        other => panic!("{other:?}"),
    }
    let err = bnf("hscic_chemicals.csv").unwrap_err().to_string();
    assert!(err.contains("not a BNF file"), "{err}");
    let orgs =
        |n: &str| ipmo_ingest::orgs::read_orgs(open_source(&samples.join(n)).unwrap(), None, ErrorPolicy::default());
    match orgs("epraccur_sample.csv").unwrap().0 {
        ipmo_ingest::orgs::OrgFile::Epraccur(rows) => {
            assert_eq!(rows.len(), 3);
            assert_eq!(rows.iter().filter(|r| r.is_gp_practice).count(), 1);
        }
        other => panic!("{other:?}"),
    }
    let err = orgs("eccg.csv").unwrap_err().to_string();
    assert!(err.starts_with("eccg.csv: this is an ODS file without a header but not epraccur"), "{err}");
}

#[test]
fn real_new_style_epraccur_marks_gp_practices() {
    let Some(path) =
        ipmo_testkit::real_file("real_new_style_epraccur", "ukhsa-antibiotics-teaching-202511/epraccur.csv.gz")
    else {
        return;
    };
    let (file, report) =
        ipmo_ingest::orgs::read_orgs(open_source(&path).unwrap(), None, ErrorPolicy::default()).unwrap();
    let ipmo_ingest::orgs::OrgFile::Epraccur(rows) = file else { panic!("not epraccur") };
    assert_eq!(report.rows_read, 15_389);
    assert_eq!(rows.iter().filter(|r| r.is_gp_practice).count(), 8_183);
    assert_eq!(rows.iter().filter(|r| r.is_gp_practice && r.status == "active").count(), 6_599);
}

fn arbitrary_edit() -> impl Strategy<Value = (usize, Vec<u8>)> {
    (0usize..400, proptest::collection::vec(any::<u8>(), 0..6))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// The EPD reader never panics, whatever bytes are spliced into a valid file.
    #[test]
    fn epd_reader_never_panics(edits in proptest::collection::vec(arbitrary_edit(), 1..6), max_errors in 0u64..3) {
        let mut bytes = small_epd("\n").into_bytes();
        for (pos, insert) in edits {
            let at = pos.min(bytes.len());
            let end = (at + insert.len() / 2).min(bytes.len());
            bytes.splice(at..end, insert);
        }
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "epd_201709.csv", &bytes);
        let mut data = PrescribingData::new();
        let opts = EpdOptions { month: None, errors: ErrorPolicy { max_errors } };
        let _ = read_prescribing(open_source(&p).unwrap(), &mut data, &opts, &mut |_| {});
    }

    /// Values up to the limits of i64 and f64 in several rows of one cell (some with the case of
    /// the codes changed): never a panic, and a load either holds the exact sum in one row or is
    /// refused with the line and column. (Seven of the review's 212 mutated files panicked here.)
    #[test]
    fn epd_sums_near_the_limits_are_exact_or_refused(
        rows in proptest::collection::vec(
            (prop_oneof![any::<i64>(), -1000i64..1000, Just(i64::MAX), Just(i64::MAX / 2 + 1)],
             prop_oneof![any::<i64>(), 0i64..100_000, Just(i64::MAX), Just(5_000_000_000_000_000_000)],
             prop_oneof![Just(1e308f64), Just(-1e308), 0.0f64..1e6],
             any::<bool>()),
            1..5)
    ) {
        let mut text = HEADER.to_string() + "\n";
        for (items, pence, quantity, lower) in &rows {
            let sign = if *pence < 0 { "-" } else { "" };
            let abs = i128::from(*pence).abs();
            let nic = format!("{sign}{}.{:02}", abs / 100, abs % 100);
            let (practice, bnf) = if *lower { ("l84073", "0105010b0biaaas") } else { ("L84073", "0105010B0BIAAAS") };
            text.push_str(&format!("201709,{practice},{bnf},1,{items},{quantity:?},0,{nic},1.00000,N\n"));
        }
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "epd_201709.csv", text.as_bytes());
        let (r, data) = read_epd(&p);
        let items: i128 = rows.iter().map(|r| i128::from(r.0)).sum();
        let pence: i128 = rows.iter().map(|r| i128::from(r.1)).sum();
        let fits = |x: i128| i64::try_from(x).is_ok();
        match r {
            Ok(_) => {
                let got = data.rows_for("2017-09".parse().unwrap());
                prop_assert_eq!(got.len(), 1);
                prop_assert_eq!(i128::from(got[0].totals.items), items);
                prop_assert_eq!(i128::from(got[0].totals.nic_pence), pence);
                prop_assert!(got[0].totals.quantity.is_finite());
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("epd_201709.csv line "), "{}", msg);
                // Refused only for a reason: a partial sum overflowed.
                let mut run = (0i128, 0i128, 0f64);
                let mut overflowed = false;
                for r in &rows {
                    run = (run.0 + i128::from(r.0), run.1 + i128::from(r.1), run.2 + r.2);
                    overflowed |= !fits(run.0) || !fits(run.1) || !run.2.is_finite();
                }
                prop_assert!(overflowed, "refused without an overflow: {}", msg);
            }
        }
    }

    /// Nor on entirely random input.
    #[test]
    fn epd_reader_never_panics_on_noise(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "x.csv", &bytes);
        let mut data = PrescribingData::new();
        let _ = open_source(&p).and_then(|s| read_prescribing(s, &mut data, &EpdOptions::default(), &mut |_| {}));
    }
}

/// A list-size count that no practice could have (one that would overflow the band sums) is
/// an error naming the line and column, not a panic or a wrapped total.
#[test]
fn list_sizes_refuse_impossible_counts() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["9223372036854775807", "-5"] {
        let body = format!(
            "ORG_CODE,SEX,AGE_GROUP_5,NUMBER_OF_PATIENTS\nA81001,MALE,0_4,12\nA81001,MALE,0_4,{n}\nA81001,FEMALE,0_4,9223372036854775807\n"
        );
        let p = write(dir.path(), "list_202401.csv", body.as_bytes());
        let month = Some("2024-01".parse().unwrap());
        let err = ipmo_ingest::list_sizes::read_list_sizes(open_source(&p).unwrap(), month, ErrorPolicy::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("list_202401.csv line 3, column NUMBER_OF_PATIENTS:"), "{err}");
        assert!(err.contains("is not a practice list size"), "{err}");
    }
}

/// Nine real months of Part VIII A: rows, categories and price sums as `drug-tariff/SOURCE.md`
/// gives them (DuckDB over the same files), and six packs' prices.
#[test]
fn real_drug_tariff_months_read_exactly() {
    let Some(dir) = ipmo_testkit::real_file("real_drug_tariff_months_read_exactly", "drug-tariff/csv-converted") else {
        return;
    };
    // (month, rows, A, C, H, M, Σ basic price in pence)
    let expected = [
        ("202509", 3_616, 430, 2_572, 0, 614, 22_742_245),
        ("202510", 3_609, 449, 2_552, 0, 608, 22_580_863),
        ("202511", 3_603, 449, 2_546, 0, 608, 22_599_444),
        ("202512", 3_595, 449, 2_538, 0, 608, 22_504_336),
        ("202601", 3_590, 449, 2_527, 0, 614, 22_095_690),
        ("202602", 3_590, 449, 2_527, 0, 614, 22_031_450),
        ("202603", 3_577, 449, 2_503, 11, 614, 22_167_842),
        ("202605", 3_558, 459, 2_469, 11, 619, 21_890_963),
        ("202607", 3_535, 463, 2_437, 11, 624, 20_700_957),
    ];
    let packs = [
        ("1271511000001104", [62, 60, 60, 60, 60, 60, 60, 61, 72]),
        ("1040511000001102", [81, 78, 78, 78, 73, 73, 73, 81, 88]),
        ("1320811000001101", [58, 56, 56, 56, 54, 54, 54, 55, 63]),
        ("1037711000001109", [130, 122, 122, 122, 111, 111, 111, 119, 130]),
        ("1064711000001107", [65, 62, 62, 62, 64, 64, 64, 61, 64]),
        ("994511000001109", [2_414, 2_172, 2_172, 2_172, 2_217, 2_217, 2_217, 2_129, 2_206]),
    ];
    for (i, (month, n, a, c, h, m, sum)) in expected.into_iter().enumerate() {
        let path = dir.join(format!("drug_tariff_viii_a_{month}.csv"));
        let (rows, report) =
            ipmo_ingest::tariff::read_tariff(open_source(&path).unwrap(), None, ErrorPolicy::default()).unwrap();
        let count = |cat: &str| rows.iter().filter(|r| r.category == cat).count();
        assert_eq!(report.month.to_string(), format!("{}-{}", &month[..4], &month[4..]));
        assert_eq!((rows.len(), count("A"), count("C"), count("H"), count("M")), (n, a, c, h, m), "{month}");
        assert_eq!(rows.iter().map(|r| r.price_pence).sum::<i64>(), sum, "{month}");
        for (vmpp, prices) in &packs {
            let row = rows.iter().find(|r| r.vmpp == *vmpp).unwrap_or_else(|| panic!("{vmpp} in {month}"));
            assert_eq!((row.category.as_str(), row.price_pence), ("M", prices[i]), "{vmpp} in {month}");
        }
        assert_eq!(rows.iter().filter(|r| r.pack_size.fract() != 0.0).count(), 23, "{month}: fractional packs");
    }
}
