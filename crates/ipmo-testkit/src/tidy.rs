//! The architecture's rules as checks over the source tree, in the manner of rust-analyzer's
//! tidy tests: each function reads files only (no build) and returns what breaks a rule, so the
//! test that calls it on the workspace fails naming the file, and the same function can be shown
//! to catch a deliberate violation in a scratch tree.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// A TOML file as a table; an error names the file.
fn read_toml(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.parse().map_err(|e| format!("{}: {e}", path.display()))
}

/// The names in a crate's `[dependencies]` (not its dev- or build-dependencies).
fn normal_dependencies(crate_dir: &Path) -> Result<Vec<String>, String> {
    let table = read_toml(&crate_dir.join("Cargo.toml"))?;
    Ok(table.get("dependencies").and_then(|d| d.as_table()).map(|t| t.keys().cloned().collect()).unwrap_or_default())
}

/// The workspace's library and binary crates: each folder of `crates/` with a `Cargo.toml`.
pub fn crates(root: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let dir = root.join("crates");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let manifest = path.join("Cargo.toml");
        if manifest.is_file() {
            let value = read_toml(&manifest)?;
            let name = value
                .get("package")
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str())
                .ok_or_else(|| format!("{}: no package name", manifest.display()))?;
            out.push((name.to_string(), path));
        }
    }
    out.sort();
    Ok(out)
}

/// Packages whose names start with one of `forbidden` that a workspace crate not in `allowed`
/// reaches through its normal dependencies, directly or through any dependency (read from each
/// crate's `Cargo.toml` and the resolved graph in `Cargo.lock`). Each violation names the path.
pub fn forbidden_dependencies(root: &Path, allowed: &[&str], forbidden: &[&str]) -> Result<Vec<String>, String> {
    let lock_path = root.join("Cargo.lock");
    let lock: toml::Table = read_toml(&lock_path)?;
    // Package name → the names it depends on (versions dropped: one name, one node).
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in lock.get("package").and_then(|p| p.as_array()).into_iter().flatten() {
        let Some(name) = p.get("name").and_then(|n| n.as_str()) else { continue };
        let deps = p.get("dependencies").and_then(|d| d.as_array()).into_iter().flatten();
        let entry = graph.entry(name.to_string()).or_default();
        for d in deps.filter_map(|d| d.as_str()) {
            entry.insert(d.split(' ').next().unwrap_or(d).to_string());
        }
    }
    let mut violations = Vec::new();
    for (name, dir) in crates(root)? {
        if allowed.contains(&name.as_str()) {
            continue;
        }
        let direct = normal_dependencies(&dir)?;
        // Breadth first, remembering how each package was reached, to name the path.
        let mut via: BTreeMap<String, String> = BTreeMap::new();
        let mut queue: VecDeque<String> = VecDeque::new();
        for d in direct {
            if via.insert(d.clone(), name.clone()).is_none() {
                queue.push_back(d);
            }
        }
        while let Some(p) = queue.pop_front() {
            if forbidden.iter().any(|f| p.starts_with(f)) {
                let mut path = vec![p.clone()];
                let mut at = p.clone();
                while let Some(parent) = via.get(&at) {
                    path.push(parent.clone());
                    if *parent == name {
                        break;
                    }
                    at = parent.clone();
                }
                path.reverse();
                violations.push(format!("{name} depends on {p}: {}", path.join(" → ")));
                continue;
            }
            for d in graph.get(&p).into_iter().flatten() {
                if !via.contains_key(d) {
                    via.insert(d.clone(), p.clone());
                    queue.push_back(d.clone());
                }
            }
        }
    }
    violations.sort();
    violations.dedup_by(|a, b| a.split(':').next() == b.split(':').next());
    Ok(violations)
}

/// Crates with more than one integration-test binary (a `.rs` file directly in `tests/`, or a
/// `[[test]]` target): each binary links the whole crate again, which two cores feel.
pub fn extra_test_binaries(root: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (name, dir) in crates(root)? {
        let tests = dir.join("tests");
        let mut files: Vec<String> = std::fs::read_dir(&tests)
            .map(|r| {
                r.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "rs"))
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        let declared = manifest.matches("[[test]]").count();
        if files.len() + declared > 1 {
            files.sort();
            out.push(format!("{name} has {} integration-test binaries ({})", files.len() + declared, files.join(", ")));
        }
    }
    Ok(out)
}

/// Source files (`src/**/*.rs` and `build.rs` of every crate) that do not open with a module
/// doc (`//!`) saying why the module exists.
pub fn files_without_module_doc(root: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (_, dir) in crates(root)? {
        for f in rust_files(&dir, &["src"]) {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            if !text.trim_start().starts_with("//!") {
                let shown = f.strip_prefix(root).unwrap_or(&f).display().to_string();
                out.push(shown);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Lines of code (comments aside) that say `unsafe`, as `path:line`, in any crate's sources,
/// tests and benchmarks except the files in `allowed` (paths from the workspace root). The
/// workspace denies unsafe code; this keeps the exceptions to the ones ARCHITECTURE.md names.
pub fn unsafe_code_outside(root: &Path, allowed: &[&str]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (_, dir) in crates(root)? {
        for f in rust_files(&dir, &["src", "tests", "benches"]) {
            let shown = f.strip_prefix(root).unwrap_or(&f).display().to_string();
            if allowed.contains(&shown.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            for (i, line) in text.lines().enumerate() {
                let says_unsafe = code_of(line)
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|word| word == "unsafe" || word == "unsafe_code");
                if says_unsafe {
                    out.push(format!("{shown}:{}", i + 1));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A line of Rust without its comment and the contents of its string literals (a string that
/// spans lines is not followed: good enough for finding a keyword).
fn code_of(line: &str) -> String {
    let (mut code, mut in_string, mut escaped) = (String::new(), false, false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '/' if chars.peek() == Some(&'/') => break,
            '"' => in_string = true,
            _ => code.push(c),
        }
    }
    code
}

/// The `.rs` files under `folders` of a crate, and its `build.rs`.
fn rust_files(dir: &Path, folders: &[&str]) -> Vec<PathBuf> {
    let mut stack: Vec<PathBuf> = folders.iter().map(|f| dir.join(f)).collect();
    let mut files = vec![dir.join("build.rs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.retain(|f| f.is_file());
    files
}

/// Import circles between the top-level modules of each crate: groups of modules that reach
/// each other through `crate::…` paths outside `#[cfg(test)]` code. A circle means neither module
/// can be understood or moved alone. Each is reported as `crate: a ↔ b ↔ …`.
pub fn module_circles(root: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (name, dir) in crates(root)? {
        let src = dir.join("src");
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut stack = vec![src.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                if p.extension().is_none_or(|x| x != "rs") {
                    continue;
                }
                let rel = p.strip_prefix(&src).unwrap_or(&p);
                let top =
                    rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
                let module = top.trim_end_matches(".rs").to_string();
                if module == "lib" || module == "main" {
                    continue;
                }
                let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                // Test code may reach anywhere; the circle rule is about what the modules need.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                let entry = edges.entry(module.clone()).or_default();
                for (at, _) in code.match_indices("crate::") {
                    let rest = &code[at + 7..];
                    let target: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !target.is_empty() && target != module {
                        entry.insert(target);
                    }
                }
                // `use crate::{a, b::c}` groups.
                for (at, _) in code.match_indices("crate::{") {
                    let group = &code[at + 8..];
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    for item in group.split(',') {
                        let target: String =
                            item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        if !target.is_empty() && target != module {
                            entry.insert(target);
                        }
                    }
                }
            }
        }
        // Strongly connected groups of more than one module.
        for group in strongly_connected(&edges) {
            if group.len() > 1 {
                out.push(format!("{name}: {}", group.join(" ↔ ")));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The workspace's declared minimum Rust version (`[workspace.package] rust-version`), as
/// (major, minor).
pub fn declared_rust_version(root: &Path) -> Result<(u32, u32), String> {
    let path = root.join("Cargo.toml");
    let table: toml::Table = read_toml(&path)?;
    let text = table
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("rust-version"))
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("{}: no [workspace.package] rust-version", path.display()))?;
    parse_version(text).ok_or_else(|| format!("{}: rust-version \"{text}\" is not MAJOR.MINOR", path.display()))
}

/// "1.94" or "1.94.0" as (1, 94).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// Registry packages in `Cargo.lock` whose own `rust-version` is newer than the workspace's
/// declared one, found among the unpacked sources in `registry_src` (cargo's
/// `registry/src/<index>/` folders). A dependency that needs a newer compiler makes the declared
/// minimum a promise the build cannot keep. Returns the violations and how many locked packages
/// were not unpacked there (those of other platforms), so the caller can see what was checked.
pub fn dependencies_needing_newer_rust(root: &Path, registry_src: &[PathBuf]) -> Result<(Vec<String>, usize), String> {
    let (major, minor) = declared_rust_version(root)?;
    let lock_path = root.join("Cargo.lock");
    let lock: toml::Table = read_toml(&lock_path)?;
    let (mut newer, mut unseen) = (Vec::new(), 0);
    for p in lock.get("package").and_then(|p| p.as_array()).into_iter().flatten() {
        let source = p.get("source").and_then(|s| s.as_str()).unwrap_or("");
        if !source.starts_with("registry+") {
            continue;
        }
        let (Some(name), Some(version)) =
            (p.get("name").and_then(|n| n.as_str()), p.get("version").and_then(|v| v.as_str()))
        else {
            continue;
        };
        let folder = format!("{name}-{version}");
        let Some(manifest) = registry_src.iter().map(|d| d.join(&folder).join("Cargo.toml")).find(|m| m.is_file())
        else {
            unseen += 1;
            continue;
        };
        let table: toml::Table = read_toml(&manifest)?;
        let needed = table.get("package").and_then(|p| p.get("rust-version")).and_then(|v| v.as_str());
        if let Some(needed) = needed
            && parse_version(needed).is_some_and(|v| v > (major, minor))
        {
            newer.push(format!("{folder} needs Rust {needed}; the workspace declares {major}.{minor}"));
        }
    }
    newer.sort();
    Ok((newer, unseen))
}

/// Where ARCHITECTURE.md's code map disagrees with the manifests: a crate without a row, or a
/// row whose "Depends on" cell leaves out one of the crate's `ipmo-*` dependencies or names one
/// it does not have. (A cell that says "everything above" is the binary's and is not checked.)
pub fn code_map_mismatches(root: &Path) -> Result<Vec<String>, String> {
    let doc_path = root.join("ARCHITECTURE.md");
    let doc = std::fs::read_to_string(&doc_path).map_err(|e| format!("{}: {e}", doc_path.display()))?;
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    for line in doc.lines().filter(|l| l.starts_with("| `crates/")) {
        let folder: String = line["| `crates/".len()..].chars().take_while(|c| *c != '`').collect();
        let cell = line.trim_end().trim_end_matches('|').rsplit('|').next().unwrap_or("").to_string();
        rows.insert(folder, cell);
    }
    let mut out = Vec::new();
    for (name, dir) in crates(root)? {
        let folder = dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(cell) = rows.get(&folder) else {
            out.push(format!("{name}: no row in ARCHITECTURE.md's code map"));
            continue;
        };
        if cell.contains("everything above") {
            continue;
        }
        let deps: BTreeSet<String> =
            normal_dependencies(&dir)?.into_iter().filter(|k| k.starts_with("ipmo-")).collect();
        let named: BTreeSet<String> = cell
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| w.starts_with("ipmo-"))
            .map(str::to_string)
            .collect();
        for missing in deps.difference(&named) {
            out.push(format!("{name}: depends on {missing}, which its code-map row does not name"));
        }
        for extra in named.difference(&deps) {
            out.push(format!("{name}: its code-map row names {extra}, which is not a dependency"));
        }
    }
    Ok(out)
}

/// Tarjan's strongly connected components of a small graph, each sorted.
fn strongly_connected(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        on_stack: BTreeSet<&'a str>,
        stack: Vec<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !edges.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.to_string());
                if w == v {
                    break;
                }
            }
            group.sort();
            s.out.push(group);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on_stack: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}
