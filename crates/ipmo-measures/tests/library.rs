//! The shipped measure library: it loads, it is large enough, and what each measure resolves to
//! among real BNF presentations is pinned by a snapshot so a changed code list is a visible diff.

use ipmo_measures::{Library, Presentation, Quantity};
use std::fmt::Write;
use std::path::PathBuf;

/// This crate's directory, read at run time (a test binary may have been built from another
/// checkout that shared the build directory).
fn crate_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
}

fn library_dir() -> PathBuf {
    crate_dir().join("../../measures")
}

/// Real presentation codes and names (a real month of EPD, as kept for the synthesiser).
fn real_presentations() -> Vec<Presentation> {
    let path = crate_dir().join("../ipmo-synth/data/catalogue.csv");
    let mut reader = csv::Reader::from_path(&path).expect("catalogue");
    reader.records().map(|r| r.expect("row")).map(|r| Presentation::named(&r[0], &r[1])).collect()
}

#[test]
fn the_shipped_library_is_valid_and_covers_the_required_areas() {
    let lib = Library::load(&library_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert!(lib.computed().count() >= 45, "only {} measures", lib.computed().count());
    for tag in [
        "antimicrobial",
        "safety",
        "value",
        "lowpriority",
        "greener",
        "opioids",
        "cardiovascular",
        "respiratory",
        "diabetes",
        "mentalhealth",
    ] {
        assert!(lib.measures.iter().any(|m| m.tags.iter().any(|t| t == tag)), "no measure tagged {tag}");
    }
    let opportunities: std::collections::BTreeSet<u8> =
        lib.measures.iter().flat_map(|m| m.opportunities.clone()).collect();
    assert!(opportunities.len() >= 5, "{opportunities:?}");
    assert!(lib.measures.iter().any(|m| m.numerator.quantity == Quantity::WeightedQuantity("ome".into())));
    assert!(lib.measures.iter().any(|m| m.denominator.quantity == Quantity::StarPuOralAntibacterial));
    assert!(lib.measures.iter().filter(|m| m.is_cost_based).count() >= 10);
}

#[test]
fn every_measure_resolves_to_real_presentations() {
    let lib = Library::load(&library_dir()).unwrap_or_else(|e| panic!("{e}"));
    let codes = real_presentations();
    let mut summary = String::new();
    let mut matched = 0;
    for m in lib.computed() {
        let count = |side| lib.resolve(side, &codes).len();
        let num = count(&m.numerator);
        let den = if m.denominator.quantity.is_prescribing() { count(&m.denominator).to_string() } else { "-".into() };
        // The catalogue is one month's subset, so a rare product (dronedarone) may be absent.
        matched += usize::from(num > 0);
        writeln!(
            summary,
            "{:<36} {:<34} ×{:<5} num {:<18} {:>4} | den {:<27} {:>4}",
            m.id,
            m.unit(),
            m.multiplier(),
            m.numerator.quantity.name(),
            num,
            m.denominator.quantity.name(),
            den
        )
        .unwrap();
    }
    assert!(matched >= 40, "only {matched} measures match any real presentation");
    insta::assert_snapshot!("compiled_measures", summary);
}

#[test]
fn a_broken_library_reports_every_problem_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), "id = \"b\"\n").unwrap();
    std::fs::write(dir.path().join("c.toml"), "not toml at all = = =").unwrap();
    std::fs::create_dir(dir.path().join("tables")).unwrap();
    std::fs::write(dir.path().join("tables/ome.csv"), "bnf_code,factor\n0407020Q0,lots\n").unwrap();
    let err = Library::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("3 problems"), "{err}");
    assert!(err.contains("a.toml") && err.contains("c.toml") && err.contains("ome.csv line 2"), "{err}");
}

#[test]
fn the_built_in_library_is_the_shipped_folder() {
    let folder = Library::load(&library_dir()).unwrap_or_else(|e| panic!("{e}"));
    let built_in = Library::built_in().unwrap_or_else(|e| panic!("{e}"));
    let ids = |l: &Library| l.measures.iter().map(|m| (m.id.clone(), m.hash.clone())).collect::<Vec<_>>();
    assert!(!built_in.measures.is_empty());
    assert_eq!(ids(&built_in), ids(&folder), "same definitions, same hashes (so no spurious recompute)");
    assert_eq!(built_in.tables.keys().collect::<Vec<_>>(), folder.tables.keys().collect::<Vec<_>>());
    assert_eq!(built_in.hash(), folder.hash());
}

/// A savings total adds the cost measures that are not composites; none of them may count a
/// presentation another counts, or the total would hold the same money twice (as it did when the
/// low-priority omnibus was added to its own components).
#[test]
fn savings_totals_never_count_a_presentation_twice() {
    let lib = Library::load(&library_dir()).unwrap_or_else(|e| panic!("{e}"));
    let omnibus = lib.get("lp_omnibus").expect("lp_omnibus");
    assert!(omnibus.is_composite() && omnibus.components.len() >= 10, "{:?}", omnibus.components);
    let codes = real_presentations();
    let mut owner: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut counted = 0;
    for m in lib.computed().filter(|m| m.is_cost_based && !m.is_composite()) {
        for r in lib.resolve(&m.numerator, &codes) {
            counted += 1;
            if let Some(other) = owner.insert(r.bnf_code.clone(), m.id.clone()) {
                panic!("{} is counted by both {other} and {}", r.bnf_code, m.id);
            }
        }
    }
    assert!(counted >= 20, "only {counted} presentations checked");
    // The composite counts exactly what its components count.
    let components: std::collections::BTreeSet<String> = omnibus
        .components
        .iter()
        .flat_map(|id| lib.resolve(&lib.get(id).unwrap().numerator, &codes))
        .map(|r| r.bnf_code)
        .collect();
    let own: std::collections::BTreeSet<String> =
        lib.resolve(&omnibus.numerator, &codes).into_iter().map(|r| r.bnf_code).collect();
    assert_eq!(own, components);
}

#[test]
fn a_composite_must_be_the_sum_of_its_components() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |id: &str, edit: &dyn Fn(String) -> String| {
        let text = std::fs::read_to_string(library_dir().join(format!("{id}.toml"))).unwrap();
        std::fs::write(dir.path().join(format!("{id}.toml")), edit(text)).unwrap();
    };
    let omnibus = std::fs::read_to_string(library_dir().join("lp_omnibus.toml")).unwrap();
    for id in Library::load(&library_dir()).unwrap().get("lp_omnibus").unwrap().components.iter() {
        copy(id, &|t| t);
    }
    // A component missing from the folder, and a code of the omnibus's own.
    std::fs::remove_file(dir.path().join("lp_trimipramine.toml")).unwrap();
    std::fs::write(
        dir.path().join("lp_omnibus.toml"),
        omnibus.replace("value = \"actual_cost\"\n", "value = \"actual_cost\"\ncodes = [\"0101\"]\n"),
    )
    .unwrap();
    let err = Library::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("lp_omnibus.toml") && err.contains("components"), "{err}");
    assert!(err.contains("give it no codes, filters or rules of its own"), "{err}");
    std::fs::write(dir.path().join("lp_omnibus.toml"), &omnibus).unwrap();
    let err = Library::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("\"lp_trimipramine\" is not a measure of this library"), "{err}");
    // Whole, the composite selects what its components select, dm+d rules included.
    copy("lp_trimipramine", &|t| t);
    let lib = Library::load(dir.path()).unwrap();
    let omnibus = lib.get("lp_omnibus").unwrap();
    assert_eq!(omnibus.numerator.any_of.len(), 23);
    assert!(omnibus.numerator.uses_dmd(), "fentanyl, herbal, needles and tramadol/paracetamol select by dm+d");
    assert!(omnibus.numerator.selects(&Presentation::named("0403010Y0AAAAAA", "Trimipramine_Tab 10mg")));
    assert!(!omnibus.numerator.selects(&Presentation::named("0403010X0AAAAAA", "another antidepressant")));
}

/// Every OpenPrescribing measure id a definition cites exists among OpenPrescribing's own
/// definitions (six once named ids that do not, such as `lpcoproxamol` for `lpcoprox`).
#[test]
fn cited_openprescribing_ids_exist() {
    let Some(defs) = ipmo_testkit::real_file("cited_openprescribing_ids_exist", "openprescribing-measures/definitions")
    else {
        return;
    };
    let lib = Library::load(&library_dir()).unwrap_or_else(|e| panic!("{e}"));
    let mut cited = 0;
    for m in &lib.measures {
        let Some(id) = &m.openprescribing_id else { continue };
        assert!(
            defs.join(format!("{id}.json")).is_file(),
            "{} cites OpenPrescribing measure {id:?}, which does not exist",
            m.id
        );
        assert!(m.source.contains(id.as_str()), "{}: the source names another OpenPrescribing measure than {id}", m.id);
        assert_eq!(lib.get(id).map(|x| x.id.as_str()), Some(m.id.as_str()), "{id} finds {}", m.id);
        cited += 1;
    }
    assert!(cited >= 40, "only {cited} measures cite OpenPrescribing");
    // Every current OpenPrescribing measure (a definition without the `retired` tag) is here.
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&defs).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let def: serde_json::Value = serde_json::from_str(&text).unwrap();
        let retired = def["tags"].as_array().is_some_and(|t| t.iter().any(|x| x == "retired"));
        let id = path.file_stem().unwrap().to_string_lossy().to_string();
        if !retired && !lib.computed().any(|m| m.openprescribing_id.as_deref() == Some(id.as_str())) {
            missing.push(id);
        }
    }
    assert!(missing.is_empty(), "current OpenPrescribing measures missing from the library: {missing:?}");
}

/// The measures that select by name keyword, read against both name styles for the same codes:
/// the 2020 abbreviated BNF names (NHSBSA BNF Code Information) and today's dm+d names (a 2024
/// EPD extract's `BNF_DESCRIPTION`). A keyword written for one style misses presentations in
/// the other; the snapshot shows how many, so the fix (selection by dm+d form) is measurable.
#[test]
fn name_keyword_measures_under_both_name_styles() {
    let (Some(old), Some(new)) = (
        ipmo_testkit::real_file(
            "name_keyword_measures_under_both_name_styles",
            "prescriptionsdata/bnf-code-information/20200201_1580570906919_BNF_Code_Information.csv.gz",
        ),
        ipmo_testkit::real_file("name_keyword_measures_under_both_name_styles", "bolton-epd-coursework/Drugs.csv"),
    ) else {
        return;
    };
    let mut old_names = std::collections::HashMap::new();
    let mut r = csv::Reader::from_reader(flate2::read::GzDecoder::new(std::fs::File::open(old).unwrap()));
    let headers = r.headers().unwrap().clone();
    let (code_at, name_at) = (
        headers.iter().position(|h| h == "BNF Presentation Code").unwrap(),
        headers.iter().position(|h| h == "BNF Presentation").unwrap(),
    );
    for rec in r.records() {
        let rec = rec.unwrap();
        old_names.insert(rec[code_at].to_string(), rec[name_at].to_string());
    }
    let mut r = csv::Reader::from_path(new).unwrap();
    let both: Vec<(String, String, String)> = r
        .records()
        .map(|rec| rec.unwrap())
        .filter_map(|rec| {
            let code = rec[0].trim_start_matches('\u{feff}').to_string();
            old_names.get(&code).map(|o| (code, o.clone(), rec[2].to_string()))
        })
        .collect();
    assert!(both.len() > 4_000, "{} codes named in both styles", both.len());
    let lib = Library::load(&library_dir()).unwrap_or_else(|e| panic!("{e}"));
    let mut summary = String::new();
    for m in lib.computed().filter(|m| !m.is_composite()) {
        let mut sides: Vec<(String, &ipmo_measures::Side)> =
            vec![("numerator".into(), &m.numerator), ("denominator".into(), &m.denominator)];
        for (label, side) in [("numerator", &m.numerator), ("denominator", &m.denominator)] {
            sides.extend(side.any_of.iter().enumerate().map(|(i, a)| (format!("{label}.any_of[{}]", i + 1), a)));
        }
        for (label, side) in sides {
            if side.name_contains.is_empty() && side.name_excludes.is_empty() {
                continue;
            }
            let by_old = both.iter().filter(|(c, o, _)| side.selects(&Presentation::named(c, o))).count();
            let by_new = both.iter().filter(|(c, _, n)| side.selects(&Presentation::named(c, n))).count();
            let lost = both
                .iter()
                .filter(|(c, o, n)| {
                    side.selects(&Presentation::named(c, o)) && !side.selects(&Presentation::named(c, n))
                })
                .count();
            writeln!(
                summary,
                "{:<34} {label:<18} 2020 names {by_old:>3} | dm+d names {by_new:>3} | lost {lost:>3}",
                m.id
            )
            .unwrap();
        }
    }
    insta::assert_snapshot!(summary);
}
