//! The house's floors, checked: each stage of the pipeline (ingest → normalise → store → dedupe)
//! imports only its own floor and those below it, and the shared ground (canonical shapes and
//! small utilities) imports nothing above itself. Read from the source, so an upward `use`
//! fails the suite the day it is written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each floor's modules, bottom first. Anything not listed (sync, resolve, publish, server,
/// config, …) sits above every floor and may import any of them.
const FLOORS: &[&[&str]] = &[
    &[
        "model",
        "postcode",
        "recurrence",
        "redact",
        "process_memory",
    ],
    &["ingest"],
    &["normalise"],
    &["store"],
    &["dedupe"],
];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

/// The top-level module a source file belongs to: `src/store/records.rs` → `store`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().to_string());
    first
        .unwrap_or_default()
        .trim_end_matches(".rs")
        .to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text with `//` comments removed (doc links name modules without importing them). String
/// literals holding `//` (URLs) are kept whole.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut cut = line.len();
        for (i, c) in line.char_indices() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            }
            if !in_str && c == '/' && prev == '/' {
                cut = i - 1;
                break;
            }
            prev = c;
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Every top-level module named by a `crate::` path, including each name of a grouped
/// `use crate::{a, b::c}`.
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut at_name = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => at_name = true,
                    c if at_name && depth == 0 && (c.is_ascii_alphabetic() || c == '_') => {
                        found.insert(ident_at(&group[j..]));
                        at_name = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident_at(rest);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn no_floor_imports_anything_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut upward = Vec::new();
    let mut checked = 0;
    for file in &files {
        let module = module_of(&src, file);
        let Some(floor) = floor_of(&module) else {
            continue;
        };
        checked += 1;
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        for used in crate_modules(&code) {
            // A module not on a floor is above them all.
            let above = floor_of(&used).is_none_or(|f| f > floor);
            if used != module && above {
                let rel = file.strip_prefix(&src).unwrap().display();
                upward.push(format!("src/{rel} ({module}) imports crate::{used}"));
            }
        }
    }
    assert!(
        checked > 40,
        "only {checked} files on a floor: is the layout still src/<module>?"
    );
    assert!(
        upward.is_empty(),
        "imports above their floor:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_plain_grouped_and_nested_imports_but_not_comments() {
    let code = code_only(
        "use crate::store::records;\n\
         use crate::{dedupe::{self, block}, model::Payload};\n\
         let x = crate::publish::ical::fragment(e); // crate::server in a comment\n\
         /// [`crate::sync`] in a doc comment\n\
         let url = \"https://example.org//crate::config\";\n",
    );
    let found: Vec<String> = crate_modules(&code).into_iter().collect();
    // The string literal is code, so its text counts; that is the safe direction.
    assert_eq!(found, ["config", "dedupe", "model", "publish", "store"]);
}
