//! Just enough HTTP/1.1: a bounded, incremental request-head reader, a parser for the head,
//! and the plain responses the server sends (the page and its errors).

use crate::Status;

/// An HTTP error response, carrying its status: every way a request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// 400: the request is malformed, for the reason given.
    BadRequest(&'static str),
    /// 403: the request is refused, for the reason given (an origin not allowed).
    Forbidden(&'static str),
    /// 404: no such page.
    NotFound,
    /// 405: a method other than `GET` or `HEAD`.
    MethodNotAllowed,
    /// 408: the request head did not arrive within the handshake timeout.
    RequestTimeout,
    /// 426: a WebSocket version other than 13.
    UpgradeRequired,
    /// 431: the request head is over a limit, the one given.
    HeadTooLarge(&'static str),
    /// 503: the server holds as many connections as it may.
    ServiceUnavailable,
}

impl Rejection {
    /// The status code and its reason phrase.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            Rejection::BadRequest(_) => (400, "Bad Request"),
            Rejection::Forbidden(_) => (403, "Forbidden"),
            Rejection::NotFound => (404, "Not Found"),
            Rejection::MethodNotAllowed => (405, "Method Not Allowed"),
            Rejection::RequestTimeout => (408, "Request Timeout"),
            Rejection::UpgradeRequired => (426, "Upgrade Required"),
            Rejection::HeadTooLarge(_) => (431, "Request Header Fields Too Large"),
            Rejection::ServiceUnavailable => (503, "Service Unavailable"),
        }
    }

    /// A one-line explanation for the response body and the log.
    pub fn message(&self) -> &'static str {
        match self {
            Rejection::BadRequest(why)
            | Rejection::Forbidden(why)
            | Rejection::HeadTooLarge(why) => why,
            Rejection::NotFound => {
                "no such page: only / is served (WebSocket upgrades are accepted on any path)"
            }
            Rejection::MethodNotAllowed => "only GET and HEAD are allowed",
            Rejection::RequestTimeout => "the request head did not arrive in time",
            Rejection::UpgradeRequired => "only WebSocket version 13 is supported",
            Rejection::ServiceUnavailable => "too many connections, try again shortly",
        }
    }

    /// The complete response, with a short plain-text body saying what was wrong.
    pub fn response(&self, body: Body) -> Vec<u8> {
        let extra = match self {
            Rejection::MethodNotAllowed => "Allow: GET, HEAD\r\n",
            Rejection::UpgradeRequired => "Sec-WebSocket-Version: 13\r\n",
            Rejection::ServiceUnavailable => "Retry-After: 1\r\n",
            _ => "",
        };
        let (code, reason) = self.status();
        let text = format!("{code} {reason}: {}\n", self.message());
        response(
            (code, reason),
            extra,
            "text/plain; charset=utf-8",
            text.as_bytes(),
            body,
        )
    }
}

/// Whether a response carries its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// Headers and body.
    Included,
    /// RFC 9110 §9.3.2: the server "MUST NOT send content in the response" to `HEAD`. The
    /// headers, `Content-Length` included, are those of the `GET` answer.
    Omitted,
}

/// Builds a response that closes the connection after it: this server answers one plain
/// HTTP request per connection. `extra_headers` are complete lines ending in CRLF.
pub fn response(
    status: (u16, &str),
    extra_headers: &str,
    content_type: &str,
    content: &[u8],
    body: Body,
) -> Vec<u8> {
    let (code, reason) = status;
    let mut bytes = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra_headers}\r\n",
        content.len()
    )
    .into_bytes();
    if body == Body::Included {
        bytes.extend_from_slice(content);
    }
    bytes
}

/// Collects a request head from bytes as they arrive, within limits.
///
/// Each byte is looked at once, whatever the chunking: the reader remembers where it
/// stopped, so a head dribbled in one byte at a time costs no more than one sent whole.
#[derive(Debug)]
pub struct HeadReader {
    head: Vec<u8>,
    /// Bytes taken so far, including empty lines dropped before the request line.
    taken: usize,
    max_bytes: usize,
    max_header_lines: usize,
    line_start: usize,
    lines: usize,
}

impl HeadReader {
    /// A reader that refuses heads longer than `max_bytes` or with more than
    /// `max_header_lines` header lines (both with 431).
    pub fn new(max_bytes: usize, max_header_lines: usize) -> HeadReader {
        HeadReader {
            head: Vec::new(),
            taken: 0,
            max_bytes,
            max_header_lines,
            line_start: 0,
            lines: 0,
        }
    }

    /// Takes bytes up to the end of the head: `Complete(n)` when the head ends after the
    /// first `n` bytes of `data` (the rest belongs to whatever follows the head), `Partial`
    /// when all of `data` was taken and more is needed.
    pub fn push(&mut self, data: &[u8]) -> Result<Status<usize>, Rejection> {
        for (i, &byte) in data.iter().enumerate() {
            // Empty lines skipped before the request line count too.
            if self.taken == self.max_bytes {
                return Err(Rejection::HeadTooLarge("request head too large"));
            }
            self.taken += 1;
            self.head.push(byte);
            if byte != b'\n' {
                continue;
            }
            let line = &self.head[self.line_start..self.head.len() - 1];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                if self.lines > 0 {
                    return Ok(Status::Complete(i + 1));
                }
                // RFC 9112 §2.2: a server "SHOULD ignore at least one empty line (CRLF)
                // received prior to the request-line". pure-ws ignores any number, within
                // the head's size limit.
                self.head.clear();
            } else {
                self.lines += 1;
                if self.lines > self.max_header_lines + 1 {
                    return Err(Rejection::HeadTooLarge("too many header lines"));
                }
            }
            self.line_start = self.head.len();
        }
        Ok(Status::Partial)
    }

    /// The complete head (request line, header lines and the empty line).
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Serve the client page.
    Page,
    /// Check the WebSocket handshake and upgrade.
    Upgrade,
    /// Answer with this error.
    Refuse(Rejection),
}

/// A parsed request head, borrowing from the bytes it was parsed from.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, a token such as `GET`.
    pub method: &'a str,
    /// The path of the request target, without its query string (for an absolute-form
    /// target such as `http://host/ws?x=1`, its path `/ws`).
    pub path: &'a str,
    /// The minor version of HTTP/1.x.
    pub minor_version: u8,
    headers: Vec<(&'a str, &'a str)>,
}

impl<'a> Request<'a> {
    /// Parses a head collected by [`HeadReader`].
    pub fn parse(head: &'a [u8]) -> Result<Request<'a>, Rejection> {
        let text = std::str::from_utf8(head)
            .map_err(|_| Rejection::BadRequest("request head is not valid UTF-8"))?;
        let mut lines = text
            .split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line));
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::BadRequest("malformed request line"));
        };
        if !is_token(method) {
            return Err(Rejection::BadRequest("malformed method"));
        }
        let minor_version = match version.strip_prefix("HTTP/1.") {
            Some(minor) if minor.len() == 1 && minor.as_bytes()[0].is_ascii_digit() => {
                minor.as_bytes()[0] - b'0'
            }
            _ => return Err(Rejection::BadRequest("unsupported HTTP version")),
        };
        let mut headers = Vec::new();
        for line in lines.take_while(|line| !line.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                return Err(Rejection::BadRequest("header line without a colon"));
            };
            // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon",
            // and a server MUST answer it with 400; §5.2 lets a server refuse obsolete line
            // folding with 400 too. pure-ws refuses both: neither name is a token.
            if !is_token(name) {
                return Err(Rejection::BadRequest("malformed header name"));
            }
            headers.push((name, value.trim_matches([' ', '\t'])));
        }
        let path = target_path(target)?;
        let request = Request {
            method,
            path,
            minor_version,
            headers,
        };
        // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
        // HTTP/1.1 request message that lacks a Host header field and to any request
        // message that contains more than one Host header field line".
        if request.minor_version >= 1 && request.single_header("host")?.is_none() {
            return Err(Rejection::BadRequest("missing Host header"));
        }
        Ok(request)
    }

    /// Where the request goes: a WebSocket upgrade is accepted on any path (so a proxy can
    /// forward `/ws` or `/chat?room=1` unchanged), and the one page lives at `/`. Other
    /// upgrades (h2c, say) are ignored and served as plain HTTP.
    pub fn route(&self) -> Route {
        if self.has_token("upgrade", "websocket") {
            Route::Upgrade
        } else if self.path != "/" {
            Route::Refuse(Rejection::NotFound)
        } else if self.method == "GET" || self.method == "HEAD" {
            Route::Page
        } else {
            Route::Refuse(Rejection::MethodNotAllowed)
        }
    }

    /// Whether the answer carries a body: not for `HEAD` (RFC 9110 §9.3.2).
    pub fn body(&self) -> Body {
        if self.method == "HEAD" {
            Body::Omitted
        } else {
            Body::Included
        }
    }

    /// The values of every header named `name` (case-insensitively), in order.
    pub fn headers<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The value of header `name` if it appears exactly once.
    pub fn single_header(&self, name: &str) -> Result<Option<&'a str>, Rejection> {
        let mut values = self.headers(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(Rejection::BadRequest(
                "a header that must appear once is repeated",
            ));
        }
        Ok(first)
    }

    /// Whether the comma-separated list in header(s) `name` contains `token`
    /// (case-insensitively), as `Connection: keep-alive, Upgrade` contains `upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers(name)
            .flat_map(|value| value.split(','))
            .any(|item| item.trim_matches([' ', '\t']).eq_ignore_ascii_case(token))
    }
}

/// The path of a request target, without its query.
///
/// RFC 9112 §3.2.2: "A server MUST accept the absolute-form in requests", so
/// `http://host:port/path?q` routes like `/path?q`; its authority is not checked, as this
/// server answers for whatever name it is reached by. An absolute URI with an empty path
/// means `/` (RFC 9110 §4.2.1). The asterisk-form `*` is kept and is found nowhere.
fn target_path(target: &str) -> Result<&str, Rejection> {
    let without_query = target.split('?').next().unwrap_or(target);
    if without_query.starts_with('/') || target == "*" {
        return Ok(without_query);
    }
    let malformed = Rejection::BadRequest("malformed request target");
    // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
    let (scheme, rest) = without_query.split_once("://").ok_or(malformed.clone())?;
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(malformed);
    }
    // The authority runs to the first slash and must not be empty.
    match rest.find('/') {
        Some(0) => Err(malformed),
        Some(slash) => Ok(&rest[slash..]),
        None if rest.is_empty() => Err(malformed),
        None => Ok("/"),
    }
}

/// RFC 9110 §5.6.2: whether `text` is a token, `1*tchar` (method and header names,
/// subprotocol names).
pub fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_token_byte)
}

/// RFC 9110 §5.6.2: the characters allowed in a token.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(reader: &mut HeadReader, data: &[u8]) -> Result<Status<usize>, Rejection> {
        reader.push(data)
    }

    #[test]
    fn head_reader_finds_the_end_of_the_head_in_any_chunking() {
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nEXTRA";
        let head_len = request.len() - 5;
        for chunk in 1..request.len() {
            let mut reader = HeadReader::new(8192, 100);
            let mut offset = 0;
            let result = loop {
                let end = (offset + chunk).min(request.len());
                match reader.push(&request[offset..end]).unwrap() {
                    Status::Complete(n) => break offset + n,
                    Status::Partial => offset = end,
                }
            };
            assert_eq!(result, head_len, "chunk {chunk}");
            assert_eq!(reader.head(), &request[..head_len]);
        }
    }

    #[test]
    fn head_reader_accepts_bare_newlines_and_leading_empty_lines() {
        let mut reader = HeadReader::new(8192, 100);
        let data = b"\r\nGET / HTTP/1.1\nHost: x\n\n";
        assert_eq!(
            read_all(&mut reader, data),
            Ok(Status::Complete(data.len()))
        );
        assert_eq!(reader.head(), b"GET / HTTP/1.1\nHost: x\n\n");
    }

    #[test]
    fn head_reader_enforces_its_limits() {
        let mut reader = HeadReader::new(64, 100);
        assert!(matches!(
            reader.push(&[b'a'; 65]),
            Err(Rejection::HeadTooLarge(_))
        ));
        let mut reader = HeadReader::new(64, 100);
        assert!(matches!(
            reader.push(&b"\r\n".repeat(33)),
            Err(Rejection::HeadTooLarge(_))
        ));
        let mut reader = HeadReader::new(8192, 2);
        assert!(matches!(
            reader.push(b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n"),
            Err(Rejection::HeadTooLarge(_))
        ));
        let mut reader = HeadReader::new(8192, 2);
        let two_headers = b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\n\r\n";
        assert_eq!(
            reader.push(two_headers),
            Ok(Status::Complete(two_headers.len()))
        );
    }

    #[test]
    fn parses_a_request_head() {
        let head = b"GET /?q=1 HTTP/1.1\r\nHost: example\r\nConnection: keep-alive, Upgrade\r\nX-A: 1\r\nx-a:  2 \r\n\r\n";
        let request = Request::parse(head).unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/");
        assert_eq!(request.minor_version, 1);
        assert_eq!(request.single_header("host"), Ok(Some("example")));
        assert!(request.single_header("X-A").is_err());
        assert_eq!(request.headers("x-a").collect::<Vec<_>>(), ["1", "2"]);
        assert!(request.has_token("connection", "upgrade"));
        assert!(!request.has_token("connection", "close"));
    }

    #[test]
    fn routes_by_path_then_upgrade_then_method() {
        let route = |head: &str| Request::parse(head.as_bytes()).unwrap().route();
        assert_eq!(route("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Page);
        assert_eq!(route("HEAD /?a=b HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Page);
        assert_eq!(
            route("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"),
            Route::Upgrade
        );
        assert_eq!(
            route("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n"),
            Route::Page
        );
        assert_eq!(
            route("POST / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Refuse(Rejection::MethodNotAllowed)
        );
        assert_eq!(
            route("GET /x HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Refuse(Rejection::NotFound)
        );
        assert_eq!(
            route("POST /x HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Refuse(Rejection::NotFound)
        );
    }

    #[test]
    fn upgrades_are_routed_on_any_path_and_query() {
        let route = |head: &str| Request::parse(head.as_bytes()).unwrap().route();
        for target in ["/", "/ws", "/chat?x=1", "/a/b/c/", "http://h:1/ws?q"] {
            let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n");
            assert_eq!(route(&head), Route::Upgrade, "{target}");
        }
    }

    #[test]
    fn absolute_form_targets_route_by_their_path() {
        let path = |target: &str| {
            let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
            Request::parse(head.as_bytes()).map(|r| r.path.to_string())
        };
        assert_eq!(path("http://example.com:4000/?q=1"), Ok("/".to_string()));
        assert_eq!(path("http://example.com"), Ok("/".to_string()));
        assert_eq!(path("HTTPS://[::1]:4000?x"), Ok("/".to_string()));
        assert_eq!(path("ws://h/chat/room?x=1"), Ok("/chat/room".to_string()));
        assert_eq!(path("/plain?x=/y"), Ok("/plain".to_string()));
        for bad in [
            "http://",
            "http:///x",
            "1http://h/",
            "ht tp://h/",
            "h//x",
            "nowhere",
        ] {
            assert!(path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_are_tchars_only() {
        for good in ["chat", "v2.bin+json", "a!#$%&'*+-.^_`|~z"] {
            assert!(is_token(good), "{good}");
        }
        for bad in ["", "a b", "a,b", "a\"b", "(x)", "caf\u{e9}", "a/b", "a=b"] {
            assert!(!is_token(bad), "{bad}");
        }
    }

    #[test]
    fn refuses_malformed_heads() {
        for head in [
            &b"GET /\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n",
            b"GET nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ] {
            assert!(
                matches!(Request::parse(head), Err(Rejection::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn rejections_carry_status_headers_and_a_body() {
        let response =
            String::from_utf8(Rejection::MethodNotAllowed.response(Body::Included)).unwrap();
        assert!(response.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(response.contains("\r\nAllow: GET, HEAD\r\n"));
        assert!(
            response.ends_with("\r\n\r\n405 Method Not Allowed: only GET and HEAD are allowed\n")
        );
        let head_only = String::from_utf8(Rejection::NotFound.response(Body::Omitted)).unwrap();
        assert!(head_only.ends_with("\r\n\r\n"));
        let body = format!("404 Not Found: {}\n", Rejection::NotFound.message());
        let length = format!("Content-Length: {}\r\n", body.len());
        assert!(head_only.contains(&length), "{head_only}");
    }
}
