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
        4 => prop::sample::select(vec![
            "/", "/?q=1", "*", "http://x/", "/a/b", "x", "/\u{1b}[2J", "/a\u{0}", "ftp://x/",
            "http://u@x/", "/#f", "/caf\u{e9}",
        ])
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
    let generic = (
        name,
        prop::sample::select(vec![":", ": ", " : ", ":\t", ""]),
        string_regex("[ -~\t]{0,30}|.{0,8}").expect("a valid regex"),
        eol(),
    )
        .prop_map(|(name, colon, value, eol)| format!("{name}{colon}{value}{eol}"));
    // Lines the strict rules are about: Host values, content framing, control characters.
    let pointed = (
        prop::sample::select(vec![
            "Host: localhost:4000",
            "Host: [::1]:4000",
            "Host: [v1.x]",
            "Host: a b",
            "Host:",
            "Host: x:y:z",
            "Host: u@h",
            "Host: %zz",
            "Content-Length: 0",
            "Content-Length: 5, 5",
            "Content-Length: 5x",
            "Transfer-Encoding: chunked",
            "Transfer-Encoding: gzip, chunked",
            "X-Note: a\u{0}b",
            "X-Note: a\rb",
            "X-Note: \u{1b}[2J",
            "X-Note: caf\u{e9}\u{9b}",
        ]),
        eol(),
    )
        .prop_map(|(line, eol)| format!("{line}{eol}"));
    let header = prop_oneof![4 => generic, 1 => pointed];
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
    prop_assert_eq!(&parsed, &parse_request(&head).map(|r| format!("{r:?}")));
    check_parse_outcome(&head)
}

/// A head either parses into a request whose every field meets its grammar, or is refused
/// with a 4xx status (or 501 and 505, which RFC 9112 §6.1 and RFC 9110 §15.6.6 name for an
/// unknown transfer coding and another major version). So a head that holds a control
/// character anywhere but its line ends and the tabs of its header values never parses,
/// and never reaches the upgrade.
pub fn check_parse_outcome(head: &[u8]) -> TestCaseResult {
    let request = match parse_request(head) {
        Ok(request) => request,
        Err(rejection) => {
            let status = rejection.status().0;
            prop_assert!(
                (400..500).contains(&status) || status == 501 || status == 505,
                "refused with {}",
                status
            );
            return Ok(());
        }
    };
    let text = std::str::from_utf8(head).map_err(|_| TestCaseError::fail("not UTF-8"))?;
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request_line = lines.next().unwrap_or_default();
    prop_assert!(
        !request_line.chars().any(char::is_control),
        "control character in the request line {:?}",
        request_line
    );
    prop_assert!(is_token(request.method()), "method {:?}", request.method());
    prop_assert!(
        !request.path().is_empty() && request.path().bytes().all(|b| b.is_ascii_graphic()),
        "path {:?}",
        request.path()
    );
    for line in lines.take_while(|line| !line.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(TestCaseError::fail("no colon"))?;
        prop_assert!(is_token(name), "header name {:?}", name);
        // obs-text (here UTF-8, C1 controls included) is allowed in values; ASCII
        // controls but the tab are not.
        prop_assert!(
            !value.chars().any(|c| c.is_ascii_control() && c != '\t'),
            "control character in the value of {:?}",
            name
        );
    }
    let hosts = request.headers("host");
    prop_assert!(hosts.len() <= 1, "{} Host headers", hosts.len());
    if let Some(host) = hosts.first() {
        prop_assert!(is_host(host), "Host {:?}", host);
    }
    if request.minor_version() >= 1 {
        prop_assert_eq!(hosts.len(), 1, "an HTTP/1.1 request without Host");
    }
    Ok(())
}

/// RFC 9110 §5.6.2, written here from the RFC: `token = 1*tchar`.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 9110 §7.2 with RFC 3986 §3.2.2, written here from the RFCs: `host [ ":" port ]`,
/// the host a bracketed IPv6 address or IPvFuture, or a non-empty reg-name.
fn is_host(value: &str) -> bool {
    let (host_ok, port) = match value.strip_prefix('[') {
        Some(rest) => {
            let Some((literal, after)) = rest.split_once(']') else {
                return false;
            };
            let port = match after.strip_prefix(':') {
                Some(port) => port,
                None if after.is_empty() => "",
                None => return false,
            };
            let future = literal.strip_prefix('v').is_some_and(|rest| {
                rest.split_once('.').is_some_and(|(version, address)| {
                    !version.is_empty()
                        && version.bytes().all(|b| b.is_ascii_hexdigit())
                        && !address.is_empty()
                        && address
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:".contains(&b))
                })
            });
            (
                literal.parse::<std::net::Ipv6Addr>().is_ok() || future,
                port,
            )
        }
        None => {
            let (name, port) = value.split_once(':').unwrap_or((value, ""));
            (is_reg_name(name), port)
        }
    };
    host_ok && port.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 3986 §3.2.2: `reg-name = *( unreserved / pct-encoded / sub-delims )`, non-empty.
fn is_reg_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(b);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            match bytes.get(i + 1..i + 3) {
                Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => i += 3,
                _ => return false,
            }
        } else if plain(&bytes[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    !bytes.is_empty()
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

/// `head` with `control` put into its path or into one header value (chosen by `place`),
/// at a place inside the value, so trimming cannot remove it.
pub fn with_control_character(head: &GoodHead, place: Index, control: u8) -> Vec<u8> {
    let mut head = head.clone();
    let control = char::from(control).to_string();
    let slot = place.index(head.headers.len() + 1);
    match head.headers.get_mut(slot) {
        Some((_, value, _)) => {
            let middle = value.len() / 2;
            *value = format!("x{}{control}{}x", &value[..middle], &value[middle..]);
        }
        None => head.path.push_str(&control),
    }
    head.bytes()
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
    check_parse_outcome(&read)?;
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
