//! The architecture's rules, checked on the workspace, and each check shown to catch a deliberate
//! violation in a scratch tree (a check that cannot fail would prove nothing).

use ipmo_testkit::tidy;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../..")
}

/// Only the warehouse (and the binary above it) may reach Arrow, Parquet or DataFusion.
const ENGINE: [&str; 3] = ["arrow", "parquet", "datafusion"];
const ENGINE_ALLOWED: [&str; 2] = ["ipmo-warehouse", "ipmo-cli"];

#[test]
fn only_the_warehouse_reaches_arrow_parquet_or_datafusion() {
    let found = tidy::forbidden_dependencies(&workspace(), &ENGINE_ALLOWED, &ENGINE).unwrap();
    assert!(found.is_empty(), "{found:#?}");
}

/// Typst, the PDF typesetter, is an optional dependency of the report crate alone, so that the
/// default build (the README's demo) never compiles it.
#[test]
fn only_the_report_crate_names_typst() {
    for (name, dir) in tidy::crates(&workspace()).unwrap() {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let typst: Vec<&str> = manifest.lines().filter(|l| l.trim_start().starts_with("typst")).collect();
        if name == "ipmo-report" {
            assert!(!typst.is_empty() && typst.iter().all(|l| l.contains("optional = true")), "{typst:?}");
        } else {
            assert!(typst.is_empty(), "{name} names typst: {typst:?}");
        }
    }
}

/// Ballista, the cluster engine, is an optional dependency of the warehouse alone (behind its
/// `ballista` feature), so that neither the default build nor any other crate compiles it.
#[test]
fn only_the_warehouse_names_ballista_and_only_as_optional() {
    for (name, dir) in tidy::crates(&workspace()).unwrap() {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let ballista: Vec<&str> = manifest.lines().filter(|l| l.trim_start().starts_with("ballista")).collect();
        if name == "ipmo-warehouse" {
            let deps: Vec<&&str> = ballista.iter().filter(|l| l.contains("version")).collect();
            assert!(deps.len() >= 3 && deps.iter().all(|l| l.contains("optional = true")), "{ballista:?}");
        } else if name == "ipmo-cli" {
            // The binary only passes its feature on.
            assert_eq!(ballista, ["ballista = [\"ipmo-warehouse/ballista\"]"], "{ballista:?}");
        } else {
            assert!(ballista.is_empty(), "{name} names ballista: {ballista:?}");
        }
    }
}

/// The one place allowed `unsafe`: two calls setting the allocator's purge delay.
const UNSAFE_ALLOWED: [&str; 1] = ["crates/ipmo-cli/src/memory.rs"];

#[test]
fn unsafe_code_only_sets_allocator_options() {
    let found = tidy::unsafe_code_outside(&workspace(), &UNSAFE_ALLOWED).unwrap();
    assert!(found.is_empty(), "{found:#?}");
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    assert!(manifest.lines().any(|l| l == "unsafe_code = \"deny\"" || l == "unsafe_code = \"forbid\""));
}

#[test]
fn at_most_one_integration_test_binary_per_crate() {
    let found = tidy::extra_test_binaries(&workspace()).unwrap();
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn every_source_file_says_why_it_exists() {
    let found = tidy::files_without_module_doc(&workspace()).unwrap();
    assert!(found.is_empty(), "add a //! module doc to: {found:#?}");
}

/// The import circles still to be broken: none. One may not be added.
const KNOWN_CIRCLES: [&str; 0] = [];

#[test]
fn no_new_import_circles_between_modules() {
    let found = tidy::module_circles(&workspace()).unwrap();
    assert_eq!(found, KNOWN_CIRCLES, "a new circle, or a known one broken (remove it from KNOWN_CIRCLES)");
}

fn write(root: &Path, path: &str, text: &str) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A scratch workspace breaking each rule once: a web crate reaching DataFusion through another
/// package, a crate with two test binaries, and a file without a module doc.
#[test]
fn each_check_catches_a_deliberate_violation() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "crates/web/Cargo.toml", "[package]\nname = \"ipmo-web\"\n[dependencies]\nhelper = \"1\"\n");
    write(root, "crates/web/src/lib.rs", "//! The web layer.\n");
    write(root, "crates/web/src/page.rs", "use std::fmt;\n");
    write(root, "crates/web/tests/a.rs", "//! a\n");
    write(root, "crates/web/tests/b.rs", "//! b\n");
    write(root, "crates/wh/Cargo.toml", "[package]\nname = \"ipmo-warehouse\"\n[dependencies]\ndatafusion = \"1\"\n");
    write(root, "crates/wh/src/lib.rs", "//! The warehouse.\n");
    write(
        root,
        "Cargo.lock",
        "version = 4\n\n[[package]]\nname = \"helper\"\nversion = \"1.0.0\"\ndependencies = [\"datafusion-common\"]\n\n\
         [[package]]\nname = \"datafusion-common\"\nversion = \"1.0.0\"\ndependencies = [\"arrow 1.0.0\"]\n\n\
         [[package]]\nname = \"arrow\"\nversion = \"1.0.0\"\n\n[[package]]\nname = \"datafusion\"\nversion = \"1.0.0\"\n",
    );
    assert_eq!(
        tidy::forbidden_dependencies(root, &ENGINE_ALLOWED, &ENGINE).unwrap(),
        ["ipmo-web depends on datafusion-common: ipmo-web → helper → datafusion-common"]
    );
    assert_eq!(tidy::extra_test_binaries(root).unwrap(), ["ipmo-web has 2 integration-test binaries (a.rs, b.rs)"]);
    assert_eq!(tidy::files_without_module_doc(root).unwrap(), ["crates/web/src/page.rs"]);
    // Two modules that reach each other, one through a grouped import; test code does not count.
    write(root, "crates/web/src/a.rs", "//! a\nuse crate::{b::Thing, c};\n");
    write(root, "crates/web/src/b.rs", "//! b\npub fn f() { crate::a::g(); }\n");
    write(root, "crates/web/src/c.rs", "//! c\n#[cfg(test)]\nmod t { use crate::a; }\n");
    assert_eq!(tidy::module_circles(root).unwrap(), ["ipmo-web: a ↔ b"]);
    // `unsafe` in code counts; in a comment or a string it does not.
    write(
        root,
        "crates/web/src/d.rs",
        "//! d\n// unsafe is denied\n#[allow(unsafe_code)]\nfn f() { unsafe { g() } }\nfn h() -> &'static str { \"unsafe\" }\n",
    );
    assert_eq!(tidy::unsafe_code_outside(root, &[]).unwrap(), ["crates/web/src/d.rs:3", "crates/web/src/d.rs:4"]);
    assert!(tidy::unsafe_code_outside(root, &["crates/web/src/d.rs"]).unwrap().is_empty());
}

/// cargo's unpacked registry sources (`$CARGO_HOME/registry/src/*`).
fn registry_sources() -> Vec<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME is set");
    std::fs::read_dir(home.join("registry/src")).into_iter().flatten().flatten().map(|e| e.path()).collect()
}

#[test]
fn the_declared_minimum_rust_version_holds() {
    let root = workspace();
    let declared = tidy::declared_rust_version(&root).unwrap();
    // The compiler here must be at least the declared minimum (clippy's `incompatible_msrv`, on by
    // default, then flags any standard library API newer than it).
    let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .expect("rustc runs");
    let text = String::from_utf8_lossy(&rustc.stdout).to_string();
    let installed = text.split_whitespace().nth(1).and_then(tidy::parse_version).expect("rustc prints its version");
    assert!(installed >= declared, "rustc {installed:?} is older than the declared rust-version {declared:?}");
    let (newer, unseen) = tidy::dependencies_needing_newer_rust(&root, &registry_sources()).unwrap();
    assert!(newer.is_empty(), "{newer:#?}");
    println!(
        "rust-version {declared:?}: every unpacked dependency fits ({unseen} locked packages of other platforms not unpacked)"
    );
}

#[test]
fn a_dependency_needing_a_newer_rust_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let registry = dir.path().join("registry");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("Cargo.toml"), "[workspace.package]\nrust-version = \"1.80\"\n").unwrap();
    std::fs::write(
        root.join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"shiny\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n[[package]]\nname = \"old\"\nversion = \"0.1.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    )
    .unwrap();
    for (folder, version) in [("shiny-1.0.0", "1.85"), ("old-0.1.0", "1.70")] {
        std::fs::create_dir_all(registry.join(folder)).unwrap();
        std::fs::write(
            registry.join(folder).join("Cargo.toml"),
            format!("[package]\nname = \"x\"\nversion = \"0.0.0\"\nrust-version = \"{version}\"\n"),
        )
        .unwrap();
    }
    let (newer, unseen) = tidy::dependencies_needing_newer_rust(&root, &[registry]).unwrap();
    assert_eq!(newer, ["shiny-1.0.0 needs Rust 1.85; the workspace declares 1.80"]);
    assert_eq!(unseen, 0);
}

#[test]
fn the_code_map_names_each_crates_dependencies() {
    let found = tidy::code_map_mismatches(&workspace()).unwrap();
    assert!(found.is_empty(), "fix the \"Depends on\" column of ARCHITECTURE.md: {found:#?}");
}

#[test]
fn a_stale_code_map_row_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (name, deps) in [("ipmo-a", ""), ("ipmo-b", "ipmo-a.workspace = true\n")] {
        std::fs::create_dir_all(root.join("crates").join(name)).unwrap();
        std::fs::write(
            root.join("crates").join(name).join("Cargo.toml"),
            format!("[package]\nname = \"{name}\"\n\n[dependencies]\n{deps}"),
        )
        .unwrap();
    }
    std::fs::write(root.join("ARCHITECTURE.md"), "| `crates/ipmo-b` | B. | ipmo-c, serde |\n").unwrap();
    let found = tidy::code_map_mismatches(root).unwrap();
    assert_eq!(
        found,
        [
            "ipmo-a: no row in ARCHITECTURE.md's code map",
            "ipmo-b: depends on ipmo-a, which its code-map row does not name",
            "ipmo-b: its code-map row names ipmo-c, which is not a dependency",
        ]
    );
}
