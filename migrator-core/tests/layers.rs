//! The code map of docs/ARCHITECTURE.md holds: every `crate::` import of a module of
//! migrator-core points down the map's list of modules, and no phase imports another phase.
//! Pure text: no server needed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The top-level modules of migrator-core in the order the code map lists them (the first line
/// that names each wins: `orchestrator/mod.rs` and `orchestrator/mapping.rs` are one module).
fn code_map_order() -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join("docs/ARCHITECTURE.md")).unwrap();
    let mut in_core = false;
    let mut order: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("migrator-core/src/") {
            in_core = true;
            continue;
        }
        if !in_core {
            continue;
        }
        if !line.starts_with("  ") || line.starts_with("   ") {
            if !line.starts_with("   ") {
                break;
            }
            continue;
        }
        let entry = line.split_whitespace().next().unwrap_or("");
        let module = entry
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "tests" {
            break;
        }
        if !order.contains(&module) {
            order.push(module);
        }
    }
    order
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Code lines only: `//` comments (doc comments included) are left out, so a doc link is not
/// an import.
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names after `prefix` in `code`: `crate::pg::q` and `use crate::{pg, ddl}` alike.
fn used_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let list = &list[..list.find('}').unwrap_or(list.len())];
            for item in list.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                used.insert(name);
            }
        }
    }
    used
}

#[test]
fn every_import_points_down_the_code_map() {
    let order = code_map_order();
    assert!(
        order.len() > 10 && order[0] == "orchestrator" && order.contains(&"config".to_owned()),
        "the code map could not be read: {order:?}"
    );
    let src = workspace().join("migrator-core/src");
    let rank = |module: &str| order.iter().position(|m| m == module);
    let mut wrong = Vec::new();
    for path in rust_files(&src) {
        let relative = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let module = relative
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" {
            continue;
        }
        let Some(own) = rank(&module) else {
            wrong.push(format!(
                "{relative}: module {module} is not in the code map"
            ));
            continue;
        };
        for used in used_after(&code(&path), "crate::") {
            if used == module {
                continue;
            }
            match rank(&used) {
                Some(r) if r > own => {}
                _ => wrong.push(format!(
                    "{relative} imports crate::{used}, which is not below it"
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_phase_imports_another_phase() {
    let phases_dir = workspace().join("migrator-core/src/phases");
    let phase_of = |path: &Path| -> Option<String> {
        let relative = path
            .strip_prefix(&phases_dir)
            .ok()?
            .to_string_lossy()
            .into_owned();
        let first = relative
            .split('/')
            .next()?
            .trim_end_matches(".rs")
            .to_owned();
        (first != "mod").then_some(first)
    };
    let phases: BTreeSet<String> = rust_files(&phases_dir)
        .iter()
        .filter_map(|p| phase_of(p))
        .collect();
    assert!(
        phases.contains("copy") && phases.contains("preflight"),
        "{phases:?}"
    );
    let mut wrong = Vec::new();
    for path in rust_files(&phases_dir) {
        let Some(phase) = phase_of(&path) else {
            continue;
        };
        let code = code(&path);
        let mut used = used_after(&code, "crate::phases::");
        // `super::` names a phase only from a phase's top file (phases/x.rs or phases/x/mod.rs);
        // below that it is the phase's own folder.
        let top = path.parent() == Some(phases_dir.as_path())
            || path.file_name().is_some_and(|f| f == "mod.rs");
        if top {
            used.extend(used_after(&code, "super::"));
        }
        for other in used.intersection(&phases) {
            if *other != phase {
                wrong.push(format!(
                    "phase {phase} ({}) imports phase {other}",
                    path.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
