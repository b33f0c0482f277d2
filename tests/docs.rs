//! The documents cannot drift from the code: every function and test a document in
//! `docs/` names exists, and every `--trace` excerpt is what the server prints today.

use std::fs;
use std::path::PathBuf;

/// The repository's root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    fs::read_to_string(root().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The code references in `text`: backticked `dir/file.ext` or `dir/file.ext::Name::fn`.
fn references(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| {
            [
                "src/",
                "tests/",
                "examples/",
                "scripts/",
                "benches/",
                "deploy/",
                "static/",
            ]
            .iter()
            .any(|dir| quoted.starts_with(dir))
        })
        .map(str::to_string)
        .collect()
}

/// Why `reference` does not name something that exists, if it does not.
fn missing(reference: &str) -> Option<String> {
    let (path, item) = match reference.split_once("::") {
        Some((path, item)) => (path, Some(item)),
        None => (reference, None),
    };
    let Ok(source) = fs::read_to_string(root().join(path)) else {
        return Some(format!("{reference}: no file {path}"));
    };
    let item = item?;
    let mut names: Vec<&str> = item.split("::").collect();
    let function = names.pop().unwrap_or_default();
    let defines = |word: &str, name: &str| {
        source.contains(&format!("{word} {name}(")) || source.contains(&format!("{word} {name}<"))
    };
    if !defines("fn", function) {
        return Some(format!("{reference}: no fn {function} in {path}"));
    }
    for owner in names {
        let owned = ["struct", "enum", "impl", "trait"].iter().any(|word| {
            source.contains(&format!("{word} {owner}"))
                || source.contains(&format!("{word}<'_> {owner}"))
        });
        if !owned {
            return Some(format!("{reference}: no type {owner} in {path}"));
        }
    }
    None
}

/// The cells of a markdown table row (an escaped `\|` stays inside its cell).
fn cells(row: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut escaped = false;
    for c in row
        .trim()
        .trim_start_matches('|')
        .trim_end_matches('|')
        .chars()
    {
        match c {
            '|' if !escaped => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
        escaped = c == '\\';
    }
    cells
        .into_iter()
        .map(|cell| cell.trim().to_string())
        .collect()
}

#[test]
fn the_rfc_matrix_names_only_functions_and_tests_that_exist() {
    let matrix = read("docs/rfc6455.md");
    let rows: Vec<Vec<String>> = matrix
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| § "))
        .map(cells)
        .collect();
    assert!(rows.len() >= 55, "{} rows", rows.len());
    let mut problems = Vec::new();
    for row in &rows {
        assert_eq!(row.len(), 5, "a row without five cells: {row:?}");
        let (place, test) = (&row[3], &row[4]);
        if references(place).is_empty() {
            problems.push(format!("no function named in {row:?}"));
        }
        if references(test).is_empty() && !test.starts_with("none") {
            problems.push(format!("no test named, and no reason why, in {row:?}"));
        }
        problems.extend(
            references(place)
                .iter()
                .chain(&references(test))
                .filter_map(|r| missing(r)),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_reference_checker_finds_what_is_missing() {
    assert_eq!(missing("src/protocol.rs::Protocol::fail"), None);
    assert_eq!(
        missing("tests/failing.rs::an_unmasked_frame_fails_with_1002"),
        None
    );
    assert!(missing("src/protocol.rs::Protocol::no_such_fn").is_some());
    assert!(missing("src/protocol.rs::NoSuchType::fail").is_some());
    assert!(missing("tests/failing.rs::no_such_test").is_some());
    assert!(missing("src/no_such_file.rs").is_some());
    assert_eq!(cells("| a | b \\| c | `d` |"), ["a", "b \\| c", "`d`"]);
    assert_eq!(
        references("see `src/frame.rs::apply_mask` and `cargo test`"),
        ["src/frame.rs::apply_mask"]
    );
}
