//! The documents cannot drift from the code: every function and test a document in
//! `docs/` (and the README) names exists, and every `--trace` excerpt is what the server
//! prints today, replayed against the real binary.
//!
//! An excerpt is a fenced `text` block right after a marker line naming what produces it:
//! `<!-- trace: learn SCENARIO -->` (the learner's raw client, `cargo run --example learn`)
//! or `<!-- trace: request NAME -->` (one of the raw requests below). Its lines must appear,
//! in order and together, among the trace lines of that connection; only ports and
//! masking keys may differ.

mod common;
// The documents replay the scenarios; the command line's part is tests/learn.rs's.
#[allow(dead_code)]
#[path = "../examples/learn/scenarios.rs"]
mod scenarios;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use common::{eventually, upgrade_request, Server};

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
    if path.ends_with('/') {
        return (!root().join(path).is_dir()).then(|| format!("{reference}: no directory"));
    }
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
    assert_eq!(missing("tests/props/"), None);
    assert!(missing("tests/no_such_dir/").is_some());
    assert_eq!(cells("| a | b \\| c | `d` |"), ["a", "b \\| c", "`d`"]);
    assert_eq!(
        references("see `src/frame.rs::apply_mask` and `cargo test`"),
        ["src/frame.rs::apply_mask"]
    );
}

/// The documents whose excerpts and references are checked.
const DOCUMENTS: [&str; 6] = [
    "README.md",
    "docs/from-the-tutorial.md",
    "docs/rfc6455.md",
    "docs/testing.md",
    "docs/deploy.md",
    "docs/performance.md",
];

/// A trace excerpt: what produces it, and its lines.
struct Excerpt {
    document: &'static str,
    source: String,
    lines: Vec<String>,
}

/// Every excerpt in `document`.
fn excerpts(document: &'static str) -> Vec<Excerpt> {
    let text = read(document);
    let mut found = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(source) = line
            .strip_prefix("<!-- trace: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```text"),
            "{document}: {line} needs a text block"
        );
        let block: Vec<String> = lines
            .by_ref()
            .take_while(|line| *line != "```")
            .map(str::to_string)
            .collect();
        found.push(Excerpt {
            document,
            source: source.to_string(),
            lines: block,
        });
    }
    found
}

/// A trace line with what may differ between runs made alike: the peer's port, the port in
/// a `Host` header, and a masking key.
fn normalized(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..at + "127.0.0.1:".len()]);
        rest = rest[at + "127.0.0.1:".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str("PORT");
    }
    out.push_str(rest);
    match out.find("mask=") {
        Some(at) if out.len() >= at + 13 => format!("{}mask=KEY{}", &out[..at], &out[at + 13..]),
        _ => out,
    }
}

/// Runs what `source` names against a fresh server started with `--trace`, and returns
/// the trace lines of its one connection, without the peer address.
fn live_trace(source: &str) -> Vec<String> {
    let server = Server::start(&["--trace"]);
    match source.split_once(' ') {
        Some(("learn", name)) => {
            let scenario = scenarios::find(name).unwrap_or_else(|| panic!("no scenario {name}"));
            let url = scenarios::Url::parse(&format!("ws://{}/", server.addr)).unwrap();
            scenarios::run(scenario, &url, &mut Vec::new())
                .unwrap_or_else(|err| panic!("learn {name}: {err}"));
        }
        Some(("request", name)) => {
            let request = match name {
                "version-8" => upgrade_request("/").replace("Version: 13", "Version: 8"),
                "no-host" => upgrade_request("/").replace("Host: localhost\r\n", ""),
                other => panic!("no request {other}"),
            };
            server.http(request.as_bytes());
        }
        _ => panic!("unknown excerpt source {source:?}"),
    }
    // The connection's last line is its log line, which ends with the bytes sent.
    eventually(Duration::from_secs(10), || {
        let lines = server.stderr();
        match lines
            .iter()
            .any(|line| line.ends_with(" bytes") && line.contains(" msgs, "))
        {
            true => Ok(lines),
            false => Err(format!("no log line yet in {lines:#?}")),
        }
    })
    .iter()
    .filter_map(|line| line.split_once(' ').map(|(_, rest)| rest.to_string()))
    .collect()
}

/// Whether `excerpt` is a run of consecutive lines of `trace`, ports and keys aside.
fn appears_in(excerpt: &[String], trace: &[String]) -> bool {
    let excerpt: Vec<String> = excerpt.iter().map(|l| normalized(l)).collect();
    let trace: Vec<String> = trace.iter().map(|l| normalized(l)).collect();
    !excerpt.is_empty() && trace.windows(excerpt.len()).any(|window| window == excerpt)
}

#[test]
fn every_trace_excerpt_is_what_the_server_prints() {
    let mut checked = 0;
    for document in DOCUMENTS {
        for excerpt in excerpts(document) {
            // Reads that follow pauses between writes can merge on a busy machine: a few
            // runs may be needed to see the separate reads the excerpt shows.
            let mut last = Vec::new();
            let shown = (0..5).any(|_| {
                last = live_trace(&excerpt.source);
                appears_in(&excerpt.lines, &last)
            });
            assert!(
                shown,
                "{}: the excerpt of {} is not what the server prints.\nexcerpt:\n{}\ntrace:\n{}",
                excerpt.document,
                excerpt.source,
                excerpt.lines.join("\n"),
                last.join("\n")
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} excerpts");
}

#[test]
fn the_documents_name_only_functions_and_tests_that_exist() {
    let mut problems = Vec::new();
    for document in DOCUMENTS {
        let found = references(&read(document));
        assert!(!found.is_empty(), "{document} names no code");
        problems.extend(
            found
                .iter()
                .filter_map(|r| missing(r))
                .map(|p| format!("{document}: {p}")),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn excerpts_compare_ports_and_keys_aside() {
    let one = "127.0.0.1:4000 http < Host: 127.0.0.1:4000".to_string();
    let other = "127.0.0.1:51234 http < Host: 127.0.0.1:9".to_string();
    assert_eq!(normalized(&one), normalized(&other));
    let keyed = |key: &str| format!("< text fin mask={key} len=5 (7-bit)");
    assert_eq!(
        normalized(&keyed("37fa213d")),
        normalized(&keyed("01020304"))
    );
    let trace = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    assert!(appears_in(&trace[1..], &trace));
    assert!(!appears_in(&["a".to_string(), "c".to_string()], &trace));
    assert!(!appears_in(&["b changed".to_string()], &trace));
}

/// The relative links of a markdown text: `](target)`, without `#anchors`.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| !target.contains("://") && !target.starts_with('#'))
        .map(|target| target.split('#').next().unwrap_or_default().to_string())
        .filter(|target| !target.is_empty())
        .collect()
}

#[test]
fn every_link_in_the_documents_points_to_a_file() {
    let mut broken = Vec::new();
    let documents = fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .chain([root().join("README.md")]);
    for document in documents {
        let text = fs::read_to_string(&document).unwrap();
        let dir = document.parent().unwrap();
        for link in links(&text) {
            if !dir.join(&link).exists() {
                broken.push(format!("{}: {link}", document.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert_eq!(
        links("[a](docs/x.md#y) [b](https://e.org) [c](#top) ![i](docs/i.png)"),
        ["docs/x.md", "docs/i.png"]
    );
}
