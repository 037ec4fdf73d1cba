//! The architecture's rules as checks over the source tree, in the manner of rust-analyzer's
//! tidy tests: each function reads files only (no build) and returns what breaks a rule, so the
//! test that calls it on the workspace fails naming the file, and the same function can be shown
//! to catch a deliberate violation in a scratch tree.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// The workspace's library and binary crates: each folder of `crates/` with a `Cargo.toml`.
pub fn crates(root: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let dir = root.join("crates");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let manifest = path.join("Cargo.toml");
        if manifest.is_file() {
            let text = std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
            let value: toml::Table = text.parse().map_err(|e| format!("{}: {e}", manifest.display()))?;
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
    let lock: toml::Table = std::fs::read_to_string(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?
        .parse()
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
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
        let manifest = dir.join("Cargo.toml");
        let table: toml::Table = std::fs::read_to_string(&manifest)
            .map_err(|e| format!("{}: {e}", manifest.display()))?
            .parse()
            .map_err(|e| format!("{}: {e}", manifest.display()))?;
        let direct: Vec<String> = table
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
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
        let mut stack = vec![dir.join("src")];
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
        for f in files.into_iter().filter(|f| f.is_file()) {
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
