//! HTTP: request heads, mostly well-formed or exactly so, the head reader fed in chunks,
//! and the request parser.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::string::string_regex;
use proptest::test_runner::{TestCaseError, TestCaseResult};

use super::library::{parse_request, Head, Rejection};
use super::mutation::{mutate, mutation};
use super::stream::{chunks, Chunks};

pub fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just("\r\n"), 3 => Just("\n"), 1 => Just("\r")]
}

/// Request heads that are mostly well-formed, with wrong parts mixed in.
pub fn head_bytes() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        4 => prop::sample::select(vec!["GET", "HEAD", "POST", "OPTIONS"]).prop_map(String::from),
        1 => string_regex("[A-Za-z!#(]{0,8}").expect("a valid regex"),
    ];
    let target = prop_oneof![
        4 => prop::sample::select(vec!["/", "/?q=1", "*", "http://x/", "/a/b", "x"])
            .prop_map(String::from),
        1 => string_regex("[ -~]{0,20}").expect("a valid regex"),
    ];
    let version = prop_oneof![
        4 => prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/1.9", "HTTP/2.0", "HTTP/1."])
            .prop_map(String::from),
        1 => string_regex(".{0,9}").expect("a valid regex"),
    ];
    let name = prop_oneof![
        4 => prop::sample::select(vec!["Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "host"])
            .prop_map(String::from),
        1 => string_regex("[ -~]{0,12}").expect("a valid regex"),
    ];
    let header = (
        name,
        prop::sample::select(vec![":", ": ", " : ", ":\t", ""]),
        string_regex("[ -~\t]{0,30}|.{0,8}").expect("a valid regex"),
        eol(),
    )
        .prop_map(|(name, colon, value, eol)| format!("{name}{colon}{value}{eol}"));
    (
        prop::collection::vec(eol(), 0..3),
        method,
        prop::sample::select(vec![" ", " ", " ", "  ", "\t"]),
        target,
        version,
        eol(),
        prop::collection::vec(header, 0..6),
        prop::option::weighted(0.8, eol()),
        prop::collection::vec(any::<u8>(), 0..10),
    )
        .prop_map(
            |(leading, method, sep, target, version, eol, headers, end, trailing)| {
                let mut head = leading.concat();
                head.push_str(&format!("{method}{sep}{target}{sep}{version}{eol}"));
                head.push_str(&headers.concat());
                head.push_str(end.unwrap_or(""));
                let mut bytes = head.into_bytes();
                bytes.extend(trailing);
                bytes
            },
        )
}

pub fn http_data(scale: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..100 * scale),
        1 => prop::collection::vec(
            prop::sample::select(vec![b'\r', b'\n', b'a', b':', b' ', b'G']), 0..50 * scale),
        4 => head_bytes(),
        2 => (head_bytes(), prop::collection::vec((any::<Index>(), mutation()), 1..4)).prop_map(
            |(bytes, mutations)| mutate(bytes, &mutations)
        ),
    ]
}

#[derive(Clone, Debug)]
pub struct HeadCase {
    pub data: Vec<u8>,
    pub max_bytes: usize,
    pub max_lines: usize,
    pub chunks: Chunks,
}

pub fn head_case(scale: usize) -> impl Strategy<Value = HeadCase> {
    (
        http_data(scale),
        prop_oneof![0usize..=400, Just(8192)],
        prop_oneof![0usize..=8, Just(100)],
        chunks(),
    )
        .prop_map(|(data, max_bytes, max_lines, chunks)| HeadCase {
            data,
            max_bytes,
            max_lines,
            chunks,
        })
}

#[derive(Clone, Debug, PartialEq)]
pub enum HeadOutcome {
    /// The head ends after this many bytes of the data.
    Complete(usize),
    Rejected(Rejection),
    /// All the data was taken and more is needed.
    Incomplete,
}

/// Pushes `data` chunk by chunk, as the server does, until the head is complete or refused.
pub fn read_head(
    case: &HeadCase,
    chunks: &Chunks,
) -> Result<(HeadOutcome, Vec<u8>), TestCaseError> {
    let mut reader = Head::new(case.max_bytes, case.max_lines);
    let mut pos = 0;
    let mut sizes = chunks.0.iter().cycle();
    let mut outcome = HeadOutcome::Incomplete;
    while pos < case.data.len() {
        let end = pos
            .saturating_add(*sizes.next().expect("a chunk size"))
            .min(case.data.len());
        let result = reader.push(&case.data[pos..end]);
        prop_assert!(
            reader.head().len() <= case.max_bytes,
            "{} bytes retained with a {}-byte limit",
            reader.head().len(),
            case.max_bytes
        );
        match result {
            Ok(Some(n)) => {
                prop_assert!(
                    (1..=end - pos).contains(&n),
                    "head ends {n} bytes into a {}-byte push",
                    end - pos
                );
                outcome = HeadOutcome::Complete(pos + n);
                break;
            }
            Ok(None) => pos = end,
            Err(rejection) => {
                outcome = HeadOutcome::Rejected(rejection);
                break;
            }
        }
    }
    Ok((outcome, reader.head().to_vec()))
}

pub fn check_head(case: &HeadCase) -> TestCaseResult {
    let (outcome, head) = read_head(case, &Chunks::whole())?;
    for (label, chunks) in [("chunked", &case.chunks), ("bytewise", &Chunks::bytewise())] {
        let (other, other_head) = read_head(case, chunks)?;
        prop_assert_eq!(&other, &outcome, "{} outcome", label);
        prop_assert!(other_head == head, "{label}: a different head was retained");
    }
    if let HeadOutcome::Complete(end) = outcome {
        // The head is the data up to its end, less any empty lines before the request line.
        prop_assert!(
            case.data[..end].ends_with(&head),
            "the head is not the data's"
        );
        prop_assert!(head.ends_with(b"\n"), "the head does not end a line");
        let body = &head[..head.len() - 1];
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        prop_assert!(
            body.is_empty() || body.ends_with(b"\n"),
            "the head does not end with an empty line"
        );
        prop_assert!(
            !head.starts_with(b"\n") && !head.starts_with(b"\r\n"),
            "the head starts with an empty line"
        );
    }
    // Whatever came out, parsing it never panics, and gives the same answer twice.
    let parsed = parse_request(&head).map(|r| format!("{r:?}"));
    prop_assert_eq!(parsed, parse_request(&head).map(|r| format!("{r:?}")));
    Ok(())
}

/// A well-formed head and its parts.
#[derive(Clone, Debug)]
pub struct GoodHead {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub minor: u8,
    pub headers: Vec<(String, String, &'static str)>,
    pub end: &'static str,
}

impl GoodHead {
    pub fn bytes(&self) -> Vec<u8> {
        let query = self
            .query
            .as_deref()
            .map_or(String::new(), |q| format!("?{q}"));
        let mut head = format!(
            "{} {}{query} HTTP/1.{}\r\n",
            self.method, self.path, self.minor
        );
        for (name, value, eol) in &self.headers {
            head.push_str(&format!("{name}:{value}{eol}"));
        }
        head.push_str(self.end);
        head.into_bytes()
    }
}

pub fn good_head() -> impl Strategy<Value = GoodHead> {
    (
        string_regex("[A-Za-z!#$%&'*+.^_`|~-]{1,8}").expect("a valid regex"),
        string_regex("/[A-Za-z0-9/._~%-]{0,20}").expect("a valid regex"),
        prop::option::of(string_regex("[a-z0-9=&/?]{0,10}").expect("a valid regex")),
        0u8..=9,
        prop::collection::vec(
            (
                string_regex("[A-Za-z0-9-]{1,12}").expect("a valid regex"),
                string_regex("[ \t]{0,2}[!-~]([ -~]{0,20}[!-~])?[ \t]{0,2}|[ \t]{0,3}")
                    .expect("a valid regex"),
                prop_oneof![Just("\r\n"), Just("\n")],
            ),
            0..8,
        ),
        prop_oneof![Just("\r\n"), Just("\n")],
    )
        .prop_map(|(method, path, query, minor, mut headers, end)| {
            // HTTP/1.1 requires exactly one Host header.
            headers.retain(|(name, _, _)| !name.eq_ignore_ascii_case("host"));
            headers.insert(0, ("Host".to_string(), " example".to_string(), "\r\n"));
            GoodHead {
                method,
                path,
                query,
                minor,
                headers,
                end,
            }
        })
}

pub fn check_good_head(head: &GoodHead, chunks: &Chunks) -> TestCaseResult {
    let bytes = head.bytes();
    let case = HeadCase {
        data: bytes.clone(),
        max_bytes: 8192,
        max_lines: 100,
        chunks: chunks.clone(),
    };
    let (outcome, read) = read_head(&case, chunks)?;
    prop_assert_eq!(outcome, HeadOutcome::Complete(bytes.len()));
    prop_assert!(read == bytes, "the head read differs from the head sent");
    let request =
        parse_request(&read).map_err(|r| TestCaseError::fail(format!("refused: {r:?}")))?;
    prop_assert_eq!(request.method(), head.method.as_str());
    prop_assert_eq!(request.path(), head.path.as_str());
    prop_assert_eq!(request.minor_version(), head.minor);
    for (name, _, _) in &head.headers {
        let expected: Vec<&str> = head
            .headers
            .iter()
            .filter(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v, _)| v.trim_matches([' ', '\t']))
            .collect();
        let got: Vec<&str> = request.headers(name);
        prop_assert_eq!(got, expected, "header {}", name);
    }
    Ok(())
}
