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

fn read_release(path: &Path) -> ipmo_ingest::dmd::DmdRelease {
    ipmo_ingest::dmd::read_dmd(path, &mut |_| {}).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Rows of `table` where `key` = `value`, as (column → text or number) for assertions.
fn dmd_rows(release: &ipmo_ingest::dmd::DmdRelease, table: &str, key: &str, value: &str) -> Vec<Vec<(String, String)>> {
    use ipmo_ingest::dmd::Values;
    let t = release.table(table).unwrap_or_else(|| panic!("{table}"));
    let keys = t.column(key).unwrap();
    (0..t.rows())
        .filter(|&i| keys.text(i) == Some(value))
        .map(|i| {
            t.columns
                .iter()
                .map(|(name, v)| {
                    let cell = match v {
                        Values::Text(c) => c[i].clone().unwrap_or_default(),
                        Values::Int(c) => c[i].map(|x| x.to_string()).unwrap_or_default(),
                        Values::Decimal(c) => c[i].map(|x| x.to_string()).unwrap_or_default(),
                        Values::Date(c) => c[i]
                            .map(|d| {
                                (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Days::new(d as u64))
                                    .to_string()
                            })
                            .unwrap_or_default(),
                        Values::Flag(c) => c[i].to_string(),
                    };
                    (name.to_string(), cell)
                })
                .collect()
        })
        .collect()
}

fn cell<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
    &row.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("column {name}")).1
}

/// The real 2019 dm+d cut: every count and value `dmd-openprescribing-tests/SOURCE.md` gives.
#[test]
fn real_dmd_release_reads_as_published() {
    let Some(dir) = ipmo_testkit::real_file("real_dmd_release_reads_as_published", "dmd-openprescribing-tests") else {
        return;
    };
    let r = read_release(&dir.join("release-2019-04-01"));
    assert_eq!(r.date.unwrap().to_string(), "2019-04-01");
    let rows = |t: &str| r.table(t).unwrap().rows();
    assert_eq!(
        (rows("dmd_vmp"), rows("dmd_vmpp"), rows("dmd_amp"), rows("dmd_ampp"), rows("dmd_vtm"), rows("dmd_ingredient")),
        (7, 14, 15, 26, 2_859, 3_482)
    );
    let vtm = r.table("dmd_vtm").unwrap();
    let invalid = match vtm.column("invalid").unwrap() {
        ipmo_ingest::dmd::Values::Flag(f) => f.iter().filter(|x| **x).count(),
        _ => unreachable!(),
    };
    assert_eq!(invalid, 96);
    let vmpp = r.table("dmd_vmpp").unwrap();
    let tariffed = (0..vmpp.rows()).filter(|&i| vmpp.column("tariff_category").unwrap().text(i).is_some()).count();
    assert_eq!(tariffed, 3);
    let ampp = r.table("dmd_ampp").unwrap();
    let priced = match ampp.column("price_pence").unwrap() {
        ipmo_ingest::dmd::Values::Int(p) => p.iter().filter(|x| x.is_some()).count(),
        _ => unreachable!(),
    };
    assert_eq!(priced, 26);
    let gtin = r.table("dmd_gtin").unwrap();
    let with_gtin: std::collections::BTreeSet<_> =
        (0..gtin.rows()).map(|i| gtin.column("appid").unwrap().text(i)).collect();
    assert_eq!(with_gtin.len(), 11);
    let lookup = r.table("dmd_lookup").unwrap();
    let per_table =
        |name: &str| (0..lookup.rows()).filter(|&i| lookup.column("lookup").unwrap().text(i) == Some(name)).count();
    let tables: std::collections::BTreeSet<_> =
        (0..lookup.rows()).map(|i| lookup.column("lookup").unwrap().text(i)).collect();
    assert_eq!(tables.len(), 26);
    assert_eq!(
        (per_table("UNIT_OF_MEASURE"), per_table("FORM"), per_table("SUPPLIER"), per_table("DT_PAYMENT_CATEGORY")),
        (166, 178, 1_818, 10)
    );

    let adenosine = &dmd_rows(&r, "dmd_vmp", "vpid", "35894711000001106")[0];
    assert_eq!(
        [
            cell(adenosine, "vpid_prev"),
            cell(adenosine, "vpid_date"),
            cell(adenosine, "vtmid"),
            cell(adenosine, "name_prev"),
            cell(adenosine, "unit_dose_form_size"),
            cell(adenosine, "unit_dose_form_units"),
            cell(adenosine, "unit_dose_unit"),
        ],
        ["318338001", "2018-10-17", "108502004", "Adenosine 3mg/ml injection 2ml vials", "2", "ml", "vial"]
    );
    let ing = &dmd_rows(&r, "dmd_vmp_ingredient", "vpid", "35894711000001106")[0];
    assert_eq!(
        [
            cell(ing, "isid"),
            cell(ing, "strength_numerator"),
            cell(ing, "strength_numerator_unit"),
            cell(ing, "strength_denominator"),
            cell(ing, "strength_denominator_unit")
        ],
        ["35431001", "3", "mg", "1", "ml"]
    );
    let packs: Vec<(String, String)> = dmd_rows(&r, "dmd_vmpp", "vpid", "35894711000001106")
        .iter()
        .map(|p| (cell(p, "vppid").to_string(), cell(p, "quantity").to_string()))
        .collect();
    assert!(
        packs.contains(&("34516311000001106".into(), "5".into()))
            && packs.contains(&("4744111000001109".into(), "6".into())),
        "{packs:?}"
    );

    let diclofenac = &dmd_rows(&r, "dmd_vmp", "vpid", "22480211000001104")[0];
    assert_eq!([cell(diclofenac, "name_prev"), cell(diclofenac, "name_date")], ["Diclofenac 2% gel", "2014-04-24"]);
    let ing = &dmd_rows(&r, "dmd_vmp_ingredient", "vpid", "22480211000001104")[0];
    assert_eq!(
        [
            cell(ing, "isid"),
            cell(ing, "strength_numerator"),
            cell(ing, "strength_numerator_unit"),
            cell(ing, "strength_denominator_unit")
        ],
        ["426714006", "23.2", "mg", "gram"]
    );
    let mut gel: Vec<[String; 5]> = dmd_rows(&r, "dmd_vmpp", "vpid", "22480211000001104")
        .iter()
        .map(|p| {
            ["quantity", "tariff_category", "tariff_price_pence", "tariff_prev_price_pence", "tariff_date"]
                .map(|c| cell(p, c).to_string())
        })
        .collect();
    gel.sort_by_key(|p| p[2].parse::<i64>().unwrap());
    let c = "Part VIIIA Category C";
    assert_eq!(
        gel,
        [
            ["30", c, "461", "419", "2017-04-01"].map(String::from),
            ["50", c, "659", "599", "2017-04-01"].map(String::from),
            ["100", c, "1121", "1079", "2017-04-01"].map(String::from),
        ]
    );
    // Voltarol packs carry the Tariff prices as NHS indicative prices; two suppliers' packs have none.
    let amps = r.table("dmd_amp").unwrap();
    let supplier_of = |apid: &str| {
        (0..amps.rows())
            .find(|&i| amps.column("apid").unwrap().text(i) == Some(apid))
            .and_then(|i| amps.column("supplier").unwrap().text(i))
            .unwrap_or_default()
            .to_string()
    };
    let mut gel_packs: Vec<(String, String, String)> = Vec::new();
    for vppid in dmd_rows(&r, "dmd_vmpp", "vpid", "22480211000001104").iter().map(|p| cell(p, "vppid").to_string()) {
        for p in dmd_rows(&r, "dmd_ampp", "vppid", &vppid) {
            gel_packs.push((
                supplier_of(cell(&p, "apid")),
                cell(&p, "price_pence").to_string(),
                cell(&p, "price_basis").to_string(),
            ));
        }
    }
    assert!(
        gel_packs.iter().any(|(s, p, b)| s.contains("Colorama") && p == "0" && b == "No Price Available"),
        "{gel_packs:?}"
    );
    assert!(
        gel_packs.iter().any(|(s, p, b)| s.contains("DE Pharmaceuticals") && p == "0" && b == "No Price Available"),
        "{gel_packs:?}"
    );
    assert!(
        gel_packs
            .iter()
            .filter(|(_, _, b)| b == "NHS Indicative Price")
            .all(|(_, p, _)| ["461", "659", "1121"].contains(&p.as_str()))
    );

    let gtins: Vec<[String; 3]> = dmd_rows(&r, "dmd_gtin", "appid", "1714711000001106")
        .iter()
        .map(|g| ["gtin", "start_date", "end_date"].map(|c| cell(g, c).to_string()))
        .collect();
    assert_eq!(
        gtins,
        [
            ["8712400158572", "2010-02-01", "2013-07-21"].map(String::from),
            ["8712400360258", "2013-07-22", ""].map(String::from)
        ]
    );

    // The same release as TRUD ships it: a zip holding a zip of the XML files.
    let tmp = tempfile::tempdir().unwrap();
    let mut inner = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for entry in std::fs::read_dir(dir.join("release-2019-04-01")).unwrap() {
        let path = entry.unwrap().path();
        inner.start_file(format!("files/{}", path.file_name().unwrap().to_string_lossy()), options).unwrap();
        inner.write_all(&std::fs::read(&path).unwrap()).unwrap();
    }
    let inner = inner.finish().unwrap().into_inner();
    let zipped = tmp.path().join("nhsbsa_dmd_4.0.1_20190401000001.zip");
    let mut outer = zip::ZipWriter::new(std::fs::File::create(&zipped).unwrap());
    outer.start_file("week142019-r2_3-main.zip", options).unwrap();
    outer.write_all(&inner).unwrap();
    outer.start_file("readme.txt", options).unwrap();
    outer.write_all(b"not a release file").unwrap();
    outer.finish().unwrap();
    let from_zip = read_release(&zipped);
    assert_eq!(from_zip.version, "nhsbsa_dmd_4.0.1_20190401000001");
    for t in &r.tables {
        assert_eq!(from_zip.table(t.name).map(|z| z.rows()), Some(t.rows()), "{}", t.name);
    }
    let shas = |rel: &ipmo_ingest::dmd::DmdRelease| {
        let mut v: Vec<(String, String)> = rel.files.iter().map(|f| (f.kind.clone(), f.sha256.clone())).collect();
        v.sort();
        v
    };
    assert_eq!(shas(&from_zip), shas(&r), "the members' checksums are the files'");

    // The 2018 cut and OpenPrescribing's VPID-change variant: the new id carries the old one.
    let before = read_release(&dir.join("release-2018-06-28/1"));
    assert_eq!(
        (
            before.table("dmd_vmp").unwrap().rows(),
            before.table("dmd_vmpp").unwrap().rows(),
            before.table("dmd_ampp").unwrap().rows()
        ),
        (2, 5, 11)
    );
    let tobramycin = &dmd_rows(&before, "dmd_vmp", "vpid", "35084911000001108")[0];
    assert_eq!(cell(tobramycin, "unit_dose_unit"), "spoonful");
    let changed = read_release(&dir.join("release-2018-06-28/2"));
    assert_eq!(cell(&dmd_rows(&changed, "dmd_vmp", "vpid", "12345")[0], "vpid_prev"), "22480211000001104");
    let history = dmd_rows(&changed, "dmd_id_history", "old_id", "22480211000001104");
    assert_eq!((cell(&history[0], "kind"), cell(&history[0], "new_id")), ("VMP", "12345"));
    assert_eq!(dmd_rows(&changed, "dmd_vmpp", "vpid", "12345").len(), 3);
    assert_eq!(dmd_rows(&changed, "dmd_amp", "vpid", "12345").len(), 3);
}

/// The complete BNF/ATC/DDD supplement of December 2021: counts and products from its SOURCE.md.
#[test]
fn real_dmd_bnf_supplement_reads_as_published() {
    let Some(file) = ipmo_testkit::real_file(
        "real_dmd_bnf_supplement_reads_as_published",
        "dmd-bnf-atc-ddd-supplement-2021w49/f_bnf1_0021221.xml",
    ) else {
        return;
    };
    let started = std::time::Instant::now();
    let r = read_release(&file);
    eprintln!("f_bnf1_0021221.xml read in {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(r.date.unwrap().to_string(), "2021-12-02");
    assert!(!r.has_core());
    let t = r.table("dmd_bnf").unwrap();
    let level = t.column("level").unwrap();
    let count = |f: &dyn Fn(usize) -> bool| (0..t.rows()).filter(|&i| f(i)).count();
    assert_eq!(count(&|i| level.text(i) == Some("VMP")), 14_894);
    assert_eq!(count(&|i| level.text(i) == Some("AMP")), 5_971);
    let is_vmp = |i: usize| level.text(i) == Some("VMP");
    assert_eq!(count(&|i| is_vmp(i) && t.column("bnf").unwrap().text(i).is_some()), 5_233);
    assert_eq!(count(&|i| is_vmp(i) && t.column("atc").unwrap().text(i).is_some()), 14_178 - 1_357, "n/a is no ATC");
    assert_eq!(count(&|i| t.column("ddd_unit_code").unwrap().text(i).is_some()), 8_603);
    assert!((0..t.rows()).filter_map(|i| t.column("bnf").unwrap().text(i)).all(|b| b.len() == 8));
    let product = |id: &str| {
        let row = &dmd_rows(&r, "dmd_bnf", "id", id)[0];
        ["bnf", "atc", "ddd", "ddd_unit_code"].map(|c| cell(row, c).to_string())
    };
    assert_eq!(product("35894711000001106"), ["02030200", "C01EB10", "15", "258684004"]);
    assert_eq!(product("4744411000001104")[0], "02030200");
    assert_eq!(product("347208002"), ["", "S01EB01", "400", "258774008"]);
    assert_eq!(product("3549611000001100"), ["", "", "", ""]);
    assert_eq!(product("16102011000001108"), ["10010300", "L04AC07", "20", "258684004"]);
    assert_eq!(product("326874007")[..3], ["13050300", "L04AX03", "2.5"]);
    assert_eq!(product("326875008")[0], "10010300");
    assert!(dmd_rows(&r, "dmd_bnf", "id", "22480211000001104").is_empty());
}

const FUZZ_VMP: &str = "<VIRTUAL_MED_PRODUCTS><!-- x --><VMPS><VMP><VPID>22</VPID><NM>Drug &amp; 5mg tablets</NM>\
    <BASISCD>0001</BASISCD><UDFS>1.5</UDFS><VPIDDT>2019-01-02</VPIDDT><SUG_F>0001</SUG_F></VMP></VMPS>\
    <ONT_DRUG_FORM><ONT><VPID>22</VPID><FORMCD>0001</FORMCD></ONT></ONT_DRUG_FORM></VIRTUAL_MED_PRODUCTS>\n";

const FUZZ_PAGE: &str = "<html><body><div>December 2023</div><table><tr><td>Drug</td><td>Pack size</td>\
    <td>Price concession</td></tr><tr><td>Amiloride 5mg tablets</td><td>28</td><td>&pound;15.70</td></tr>\
    </table><script>var t = '<table>';</script></body></html>";

fn spliced(base: &str, edits: Vec<(usize, Vec<u8>)>) -> Vec<u8> {
    let mut bytes = base.as_bytes().to_vec();
    for (pos, insert) in edits {
        let at = pos.min(bytes.len());
        let end = (at + insert.len() / 2).min(bytes.len());
        bytes.splice(at..end, insert);
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The dm+d XML reader never panics on bytes spliced into a valid file: it reads it or names
    /// what is wrong.
    #[test]
    fn dmd_reader_never_panics(edits in proptest::collection::vec(arbitrary_edit(), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "f_vmp2_3010419.xml", &spliced(FUZZ_VMP, edits));
        if let Err(e) = ipmo_ingest::dmd::read_dmd(&p, &mut |_| {}) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// The concessions reader never panics on bytes spliced into a valid page.
    #[test]
    fn concession_reader_never_panics(edits in proptest::collection::vec(arbitrary_edit(), 1..6), max_errors in 0u64..3) {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "page.html", &spliced(FUZZ_PAGE, edits));
        let _ = ipmo_ingest::concessions::read_concessions(open_source(&p).unwrap(), ErrorPolicy { max_errors });
    }
}

/// The real CPE archive page and OpenPrescribing's hand-kept CSV: counts and sums per month as
/// `price-concessions/SOURCE.md` gives them.
#[test]
fn real_price_concessions_read_exactly() {
    let Some(dir) = ipmo_testkit::real_file("real_price_concessions_read_exactly", "price-concessions") else { return };
    let read = |name: &str| {
        ipmo_ingest::concessions::read_concessions(open_source(&dir.join(name)).unwrap(), ErrorPolicy::default())
            .unwrap()
    };
    let (lines, report) = read("price_concessions_archive.html");
    let mut months: std::collections::BTreeMap<String, (usize, i64)> = Default::default();
    for l in &lines {
        let m = months.entry(l.month.to_string()).or_default();
        m.0 += 1;
        m.1 += l.price_pence;
    }
    let expected: std::collections::BTreeMap<String, (usize, i64)> = [
        ("2019-11", (53, 89_317)),
        ("2019-12", (62, 92_467)),
        ("2020-01", (55, 90_602)),
        ("2023-11", (138, 157_125)),
        ("2023-12", (152, 132_675)),
    ]
    .into_iter()
    .map(|(m, v)| (m.to_string(), v))
    .collect();
    assert_eq!(months, expected);
    assert_eq!((lines.len(), report.rows_read, report.repeated), (460, 460, 0));
    assert_eq!(lines.iter().map(|l| l.price_pence).sum::<i64>(), 562_186);
    let first = &lines[0];
    assert_eq!(
        (first.month.to_string(), first.drug.as_str(), first.pack_size.as_str(), first.price_pence),
        ("2023-12".into(), "Acamprosate 333mg gastro-resistant tablets", "168", 2_276)
    );
    let last = lines.last().unwrap();
    assert_eq!(
        (last.month.to_string(), last.drug.as_str(), last.pack_size.as_str(), last.price_pence),
        ("2019-11".into(), "Venlafaxine 75mg tablets", "56", 496)
    );
    let price = |month: &str, drug: &str, pack: &str| {
        lines
            .iter()
            .find(|l| l.month.to_string() == month && l.drug == drug && l.pack_size == pack)
            .map(|l| l.price_pence)
    };
    assert_eq!(price("2019-12", "Dexamfetamine 5mg/5ml oral solution sugar free", "500ml"), Some(38_163));
    assert_eq!(lines.iter().map(|l| l.price_pence).min(), Some(79));
    let amiloride: Vec<Option<i64>> = ["2019-11", "2019-12", "2020-01", "2023-11", "2023-12"]
        .iter()
        .map(|m| price(m, "Amiloride 5mg tablets", "28"))
        .collect();
    assert_eq!(amiloride, [Some(1_950), Some(1_920), Some(2_238), Some(1_650), Some(1_570)]);
    assert_eq!(
        (price("2023-11", "Zopiclone 7.5mg tablets", "28"), price("2023-12", "Zopiclone 7.5mg tablets", "28")),
        (Some(157), Some(160))
    );

    let (manual, _) = read("manually_added_concessions.csv");
    let months: std::collections::BTreeSet<String> = manual.iter().map(|l| l.month.to_string()).collect();
    assert_eq!((manual.len(), months.len()), (17, 8));
    assert_eq!(manual.iter().map(|l| l.price_pence).sum::<i64>(), 22_712);
    assert_eq!(
        (manual[0].drug.as_str(), manual[0].pack_size.as_str(), manual[0].price_pence),
        ("Trimethoprim 200mg tablets", "6", 179)
    );
}
