//! Embeds the source tree's `measures/` folder (definitions and factor tables) in the crate, so
//! an `ipmo` binary carries its measure library wherever it is copied.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().and_then(|e| e.to_str()) == Some(ext))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn main() {
    // Read at run time, not with env!(): the compiled build script is shared by every checkout
    // that uses the same target directory.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("../../measures");
    println!("cargo::rerun-if-changed={}", root.display());
    let mut code =
        String::from("/// Measure definitions: (file name, text).\npub(super) static MEASURES: &[(&str, &str)] = &[\n");
    for f in files(&root, "toml") {
        let name = f.file_name().and_then(|n| n.to_str()).expect("a UTF-8 file name");
        let _ = writeln!(code, "    ({name:?}, include_str!({:?})),", f.canonicalize().expect("a readable file"));
    }
    code.push_str("];\n/// Factor tables: (file name, bytes).\npub(super) static TABLES: &[(&str, &[u8])] = &[\n");
    for f in files(&root.join("tables"), "csv") {
        let name = f.file_name().and_then(|n| n.to_str()).expect("a UTF-8 file name");
        let _ = writeln!(code, "    ({name:?}, include_bytes!({:?})),", f.canonicalize().expect("a readable file"));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_library.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
