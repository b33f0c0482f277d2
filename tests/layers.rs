//! The layers only point down: `src/lib.rs` lists the modules from the bottom up, and a
//! module may use only modules listed above it. This test reads the sources, so a `use`
//! that folds the layers fails here, with the module and the line that does it.

use std::fs;
use std::path::PathBuf;

/// (layer, module) pairs, in order, from the markdown table whose rows start with
/// `prefix`: the first cell is the layer, and the second names its modules in backticks
/// (`lib.rs` links the public ones: [`name`]; the README may follow them with a colon and
/// a description).
fn layer_table(text: &str, prefix: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for row in text.lines().filter_map(|line| line.strip_prefix(prefix)) {
        let mut cells = row.split('|').map(str::trim);
        let (Some(layer), Some(modules)) = (cells.next(), cells.next()) else {
            continue;
        };
        let names = modules.split(':').next().unwrap_or_default();
        for name in names.split('`').skip(1).step_by(2) {
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                pairs.push((layer.to_string(), name.to_string()));
            }
        }
    }
    pairs
}

/// The modules in the order of `lib.rs`'s table: rows `//! | layer | [`name`] | job |`.
fn layer_order(lib: &str) -> Vec<String> {
    layer_table(lib, "//! |")
        .into_iter()
        .map(|(_, module)| module)
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A module's source without its unit tests (the `#[cfg(test)]` module ends each file).
fn without_tests(source: &str) -> &str {
    match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    }
}

/// Every crate module a source refers to, with the line: `crate::name` in paths and in
/// `use crate::{a, b::c}` groups.
fn uses(source: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for line in source.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .collect(),
                None => vec![rest],
            };
            for name in names {
                let name: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push((name, line.trim().to_string()));
            }
        }
    }
    found
}

#[test]
fn every_module_uses_only_modules_below_it() {
    let src = root().join("src");
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    let order = layer_order(&lib);
    assert!(order.len() > 10, "no layer table in lib.rs: {order:?}");
    let declared: Vec<String> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("pub mod ").or(line.strip_prefix("mod ")))
        .filter_map(|name| Some(name.strip_suffix(';')?.to_string()))
        .collect();
    let mut sorted_order = order.clone();
    sorted_order.sort();
    let mut sorted_declared = declared.clone();
    sorted_declared.sort();
    assert_eq!(
        sorted_order, sorted_declared,
        "lib.rs's table and its `mod` lines list different modules"
    );
    let mut folds = Vec::new();
    for (rank, module) in order.iter().enumerate() {
        let source = fs::read_to_string(src.join(format!("{module}.rs"))).unwrap();
        assert!(
            source.starts_with("//! "),
            "{module}.rs does not open with a comment saying its one job"
        );
        for (name, line) in uses(without_tests(&source)) {
            match order.iter().position(|m| *m == name) {
                Some(other) if other >= rank => {
                    folds.push(format!("{module} uses {name}, listed above it: {line}"));
                }
                _ => {}
            }
        }
    }
    assert!(folds.is_empty(), "layers folded:\n{}", folds.join("\n"));
}

#[test]
fn the_reader_finds_uses_in_paths_and_groups() {
    let source = "use crate::frame::{self, Opcode};\nuse crate::{close, error::X};\n\
                  let g = crate::handshake::GUID;\n// crate::server in a comment\n";
    let names: Vec<String> = uses(source).into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["frame", "close", "error", "handshake"]);
}

/// Non-blank lines before a file's unit tests: comments and docs count, as they are read.
fn lines_outside_tests(source: &str) -> usize {
    without_tests(source)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count()
}

#[test]
fn no_module_keeps_more_than_650_lines_outside_its_tests() {
    let src = root().join("src");
    let mut too_long = Vec::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let lines = lines_outside_tests(&fs::read_to_string(&path).unwrap());
            if lines > 650 {
                too_long.push(format!("{}: {lines} lines", path.display()));
            }
        }
    }
    assert!(
        too_long.is_empty(),
        "one concern per file:\n{}",
        too_long.join("\n")
    );
}

#[test]
fn the_counter_skips_blank_lines_and_unit_tests() {
    let source = "//! job\n\nfn a() {}\n   \n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n";
    assert_eq!(lines_outside_tests(source), 2);
}

#[test]
fn the_readme_lists_lib_rs_modules_in_the_same_layers() {
    let lib = layer_table(
        &fs::read_to_string(root().join("src/lib.rs")).unwrap(),
        "//! |",
    );
    assert!(lib.len() > 20, "no module table in lib.rs: {lib:?}");
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let built = readme
        .split("## How it is built")
        .nth(1)
        .unwrap_or_default();
    let built = built.split("\n## ").next().unwrap_or_default();
    assert_eq!(
        layer_table(built, "|"),
        lib,
        "README's \"How it is built\" and lib.rs differ"
    );
}
