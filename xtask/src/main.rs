//! `cargo xtask COMMAND`: the commands a contributor runs most, each spelled out once. Standard
//! library only, so it builds in seconds and adds nothing to the product.
//!
//! - `demo`: the newcomer's command (release build, synthetic data, the dashboard on 127.0.0.1).
//! - `test`: the whole suite, exactly as CI runs it (`scripts/test`).
//! - `lint`: formatting, clippy with warnings as errors, and the documentation gate.
//! - `doc`: `cargo doc` for the workspace with every rustdoc warning (broken links) an error.
//! - `deny`: licences, bans and sources of every dependency (`cargo deny`, installed when missing).
//! - `bench NAME`: one of the benchmark scripts in `scripts/` (`bench-ingest`, `bench-web`, …),
//!   its output kept as a dated file in `docs/benchmarks/` (`scripts/bench-record`).

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(std::path::Path::to_path_buf);
    let Some(root) = root else {
        eprintln!("xtask: cannot find the workspace root");
        return ExitCode::FAILURE;
    };
    let steps: Vec<Vec<String>> = match args.first().map(String::as_str) {
        Some("demo") => vec![words("cargo run --release -- demo")],
        Some("test") => vec![words("scripts/test")],
        Some("lint") => vec![
            words("cargo fmt --all -- --check"),
            words("cargo clippy --workspace --all-targets --quiet -- -D warnings"),
            words("scripts/doc"),
        ],
        Some("doc") => vec![words("scripts/doc")],
        Some("deny") => vec![words("scripts/deny")],
        Some("bench") => match args.get(1) {
            Some(name) if name.starts_with("bench-") && name != "bench-record" && !name.contains('/') => {
                let mut step = vec!["scripts/bench-record".to_string(), name["bench-".len()..].to_string()];
                step.push(format!("scripts/{name}"));
                step.extend(args[2..].iter().cloned());
                vec![step]
            }
            _ => return usage("bench needs the name of a script in scripts/, e.g. bench-ingest"),
        },
        Some(other) => return usage(&format!("there is no command \"{other}\"")),
        None => return usage("name a command"),
    };
    for step in steps {
        eprintln!("== {}", step.join(" "));
        let status = Command::new(&step[0]).args(&step[1..]).current_dir(&root).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("xtask: `{}` failed ({s})", step.join(" "));
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("xtask: could not run `{}`: {e}", step[0]);
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn words(command: &str) -> Vec<String> {
    command.split(' ').map(str::to_string).collect()
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("xtask: {problem}.\nusage: cargo xtask demo | test | lint | doc | deny | bench NAME [ARGS…]");
    ExitCode::from(2)
}
