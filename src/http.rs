//! Just enough HTTP/1.1: a bounded, incremental request-head reader, a strict parser for
//! the head, and the plain responses the server sends (the page and its errors).
//!
//! Strict on the way in, as RFC 9110 and RFC 9112 ask of a server: a request either parses
//! into fields that each meet their grammar, or is refused with a 4xx (or 5xx) status and a
//! plain-text reason that names the rule. Lenient only where the RFCs say so: empty list
//! elements, any case in tokens, empty lines before the request line.

use crate::grammar::{is_authority, is_token};
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
    /// 500: the server broke while answering (a bug, caught).
    InternalError,
    /// 501: the request needs something the server does not implement, the one given.
    NotImplemented(&'static str),
    /// 503: the server holds as many connections as it may.
    ServiceUnavailable,
    /// 505: an HTTP major version other than 1.
    VersionNotSupported,
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
            Rejection::InternalError => (500, "Internal Server Error"),
            Rejection::NotImplemented(_) => (501, "Not Implemented"),
            Rejection::ServiceUnavailable => (503, "Service Unavailable"),
            Rejection::VersionNotSupported => (505, "HTTP Version Not Supported"),
        }
    }

    /// A one-line explanation for the response body and the log.
    pub fn message(&self) -> &'static str {
        match self {
            Rejection::BadRequest(why)
            | Rejection::Forbidden(why)
            | Rejection::HeadTooLarge(why)
            | Rejection::NotImplemented(why) => why,
            Rejection::NotFound => {
                "no such page: only / is served (WebSocket upgrades are accepted on any path)"
            }
            Rejection::MethodNotAllowed => "only GET and HEAD are allowed",
            Rejection::RequestTimeout => "the request head did not arrive in time",
            Rejection::UpgradeRequired => "only WebSocket version 13 is supported (RFC 6455 §4.4)",
            Rejection::InternalError => "the server failed while answering; this is a bug",
            Rejection::ServiceUnavailable => "too many connections, try again shortly",
            Rejection::VersionNotSupported => "only HTTP/1.x is supported (RFC 9110 §15.6.6)",
        }
    }

    /// The complete response, with a short plain-text body saying what was wrong.
    pub fn response(&self, body: Body) -> Vec<u8> {
        let (extra, connection) = match self {
            Rejection::MethodNotAllowed => ("Allow: GET, HEAD\r\n", "close"),
            // RFC 9110 §15.5.22: "The server MUST send an Upgrade header field in a 426
            // response to indicate the required protocol(s)", and §7.8: "When Upgrade is
            // sent, the sender MUST also send an upgrade connection option in the Connection
            // header field". RFC 6455 §4.4 adds the versions the server speaks.
            Rejection::UpgradeRequired => (
                "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
                "Upgrade, close",
            ),
            Rejection::ServiceUnavailable => ("Retry-After: 1\r\n", "close"),
            _ => ("", "close"),
        };
        let (code, reason) = self.status();
        let text = format!("{code} {reason}: {}\n", self.message());
        let head = Head {
            status: (code, reason),
            content_type: "text/plain; charset=utf-8",
            connection,
            extra,
        };
        head.response(text.as_bytes(), body)
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

/// The head of a response that closes the connection after it: this server answers one
/// plain HTTP request per connection.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    /// The status code and its reason phrase.
    pub status: (u16, &'a str),
    /// The `Content-Type` of the body.
    pub content_type: &'a str,
    /// The `Connection` options: `close`, and `Upgrade` where an `Upgrade` header is sent.
    pub connection: &'a str,
    /// More header lines, each ending in CRLF.
    pub extra: &'a str,
}

impl Head<'_> {
    /// The whole response for `content`, which is left out for `HEAD`.
    pub fn response(&self, content: &[u8], body: Body) -> Vec<u8> {
        let (code, reason) = self.status;
        let mut bytes = format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Connection: {}\r\n{}\r\n",
            self.content_type,
            content.len(),
            self.connection,
            self.extra,
        )
        .into_bytes();
        if body == Body::Included {
            bytes.extend_from_slice(content);
        }
        bytes
    }
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

/// How the request says its content is framed (RFC 9112 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// No `Content-Length` and no `Transfer-Encoding`: no content.
    None,
    /// `Content-Length`: this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`: chunks follow the head.
    Chunked,
}

/// A parsed request head, borrowing from the bytes it was parsed from. Every field meets
/// its grammar: the parser refuses a head that breaks one.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, a token such as `GET`.
    pub method: &'a str,
    /// The path of the request target, without its query string (for an absolute-form
    /// target such as `http://host/ws?x=1`, its path `/ws`); visible ASCII only.
    pub path: &'a str,
    /// The minor version of HTTP/1.x.
    pub minor_version: u8,
    /// How the content that follows the head is framed.
    pub content: Content,
    headers: Vec<(&'a str, &'a str)>,
}

/// RFC 9110 §5.6.3: optional whitespace, around list elements and field values.
const OWS: [char; 2] = [' ', '\t'];

impl<'a> Request<'a> {
    /// Parses a head collected by [`HeadReader`].
    pub fn parse(head: &'a [u8]) -> Result<Request<'a>, Rejection> {
        // RFC 9110 §5.5 lets a recipient treat obs-text (bytes over 0x7F) as opaque data.
        // pure-ws keeps one text type from the parser to the log and has no header to pass
        // through, so it takes obs-text only as UTF-8 and refuses other bytes.
        let text = std::str::from_utf8(head)
            .map_err(|_| Rejection::BadRequest("request head is not valid UTF-8"))?;
        let mut lines = text
            .split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line));
        let request_line = lines.next().unwrap_or_default();
        // RFC 9112 §3: "request-line = method SP request-target SP HTTP-version". pure-ws
        // takes exactly that: one space each, nothing before or after.
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::BadRequest(
                "malformed request line: it must be method, target and version, one space \
                 apart (RFC 9112 §3)",
            ));
        };
        if !is_token(method) {
            return Err(Rejection::BadRequest(
                "the method must be a token (RFC 9110 §9.1)",
            ));
        }
        let minor_version = http_minor_version(version)?;
        let path = target_path(method, target)?;
        let mut headers = Vec::new();
        for line in lines.take_while(|line| !line.is_empty()) {
            headers.push(header_line(line)?);
        }
        let mut request = Request {
            method,
            path,
            minor_version,
            content: Content::None,
            headers,
        };
        request.check_host()?;
        request.content = request.content_framing()?;
        Ok(request)
    }

    /// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    /// HTTP/1.1 request message that lacks a Host header field and to any request message
    /// that contains more than one Host header field line or a Host header field with an
    /// invalid field value." pure-ws applies the last two to HTTP/1.0 as well.
    fn check_host(&self) -> Result<(), Rejection> {
        match self.single_header("host", "more than one Host header (RFC 9112 §3.2)")? {
            None if self.minor_version >= 1 => Err(Rejection::BadRequest(
                "an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)",
            )),
            Some(host) if !is_authority(host) => Err(Rejection::BadRequest(
                "the Host header must be host[:port]: a name, an IPv4 address or an IPv6 \
                 address in brackets, and digits (RFC 9112 §3.2, RFC 9110 §4.2.1)",
            )),
            _ => Ok(()),
        }
    }

    /// How the content after the head is framed (RFC 9112 §6), or the rejection of framing
    /// that cannot be relied on.
    fn content_framing(&self) -> Result<Content, Rejection> {
        let has_length = self.headers("content-length").next().is_some();
        if self.headers("transfer-encoding").next().is_some() {
            // RFC 9112 §6.1: a server "that receives an HTTP/1.0 message containing a
            // Transfer-Encoding header field MUST treat the message as if the framing is
            // faulty", and it "MAY reject a request that contains both Content-Length and
            // Transfer-Encoding". pure-ws refuses both: either can smuggle a request.
            if self.minor_version == 0 {
                return Err(Rejection::BadRequest(
                    "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)",
                ));
            }
            if has_length {
                return Err(Rejection::BadRequest(
                    "both Transfer-Encoding and Content-Length (RFC 9112 §6.1)",
                ));
            }
            return self.transfer_codings();
        }
        if !has_length {
            return Ok(Content::None);
        }
        // RFC 9112 §6.3: an invalid Content-Length is an unrecoverable error "unless the
        // field value can be successfully parsed as a comma-separated list, all values in
        // the list are valid, and all values in the list are the same".
        let invalid = Rejection::BadRequest(
            "Content-Length must be a decimal number, or a list of the same one (RFC 9112 §6.3)",
        );
        let mut length = None;
        for value in self.list("content-length") {
            let parsed = value
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| value.parse::<u64>().ok())
                .flatten()
                .ok_or(invalid.clone())?;
            if length.is_some_and(|first| first != parsed) {
                return Err(invalid);
            }
            length = Some(parsed);
        }
        length.map(Content::Length).ok_or(invalid)
    }

    /// The framing `Transfer-Encoding` gives: chunked, the one coding pure-ws understands.
    fn transfer_codings(&self) -> Result<Content, Rejection> {
        let codings: Vec<&str> = self
            .list("transfer-encoding")
            .map(|coding| {
                coding
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim_matches(OWS)
            })
            .collect();
        let chunked = codings
            .iter()
            .filter(|coding| coding.eq_ignore_ascii_case("chunked"))
            .count();
        let chunked_last = codings
            .last()
            .is_some_and(|last| last.eq_ignore_ascii_case("chunked"));
        // RFC 9112 §6.3: "If a Transfer-Encoding header field is present in a request and
        // the chunked transfer coding is not the final encoding, the message body length
        // cannot be determined reliably; the server MUST respond with the 400 (Bad
        // Request) status code", and §7: chunked is never applied twice.
        if !chunked_last || chunked > 1 || !codings.iter().all(|coding| is_token(coding)) {
            return Err(Rejection::BadRequest(
                "Transfer-Encoding must end with chunked, once (RFC 9112 §6.3)",
            ));
        }
        // RFC 9112 §6.1: "A server that receives a request message with a transfer coding
        // it does not understand SHOULD respond with 501 (Not Implemented)."
        if codings.len() > 1 {
            return Err(Rejection::NotImplemented(
                "only the chunked transfer coding is understood (RFC 9112 §6.1)",
            ));
        }
        Ok(Content::Chunked)
    }

    /// Where the request goes: a WebSocket upgrade is accepted on any path (so a proxy can
    /// forward `/ws` or `/chat?room=1` unchanged), and the one page lives at `/`. Other
    /// upgrades (h2c, say) are ignored and served as plain HTTP.
    pub fn route(&self) -> Route {
        // RFC 9110 §7.8: "A server MUST ignore an Upgrade header field that is received in
        // an HTTP/1.0 request." So an HTTP/1.0 request is plain HTTP, whatever it asks.
        if self.minor_version >= 1 && self.has_token("upgrade", "websocket") {
            Route::Upgrade
        } else if self.path == "*" {
            // Only OPTIONS gets this far with the asterisk form; it is not served.
            Route::Refuse(Rejection::MethodNotAllowed)
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

    /// The elements of the comma-separated list in header(s) `name`, trimmed, in order.
    ///
    /// RFC 9110 §5.6.1.2: "a recipient MUST accept and ignore a reasonable number of empty
    /// list elements"; RFC 9110 §5.3: several lines of a list header make one list.
    pub fn list<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers(name)
            .flat_map(|value| value.split(','))
            .map(|element| element.trim_matches(OWS))
            .filter(|element| !element.is_empty())
    }

    /// The value of header `name` if it appears at most once; `repeated` is the reason a
    /// second line is refused with.
    pub fn single_header(
        &self,
        name: &str,
        repeated: &'static str,
    ) -> Result<Option<&'a str>, Rejection> {
        let mut values = self.headers(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(Rejection::BadRequest(repeated));
        }
        Ok(first)
    }

    /// Whether the comma-separated list in header(s) `name` contains `token`
    /// (case-insensitively), as `Connection: keep-alive, Upgrade` contains `upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.list(name).any(|item| item.eq_ignore_ascii_case(token))
    }
}

/// The minor version of an `HTTP/1.x` version; `HTTP/2.0` and the like are 505.
fn http_minor_version(version: &str) -> Result<u8, Rejection> {
    // RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT.
    match version.strip_prefix("HTTP/").map(str::as_bytes) {
        Some(&[b'1', b'.', minor]) if minor.is_ascii_digit() => Ok(minor - b'0'),
        // RFC 9110 §15.6.6: 505 "indicates that the server does not support, or refuses
        // to support, the major version of HTTP that was used in the request message".
        Some(&[major, b'.', minor]) if major.is_ascii_digit() && minor.is_ascii_digit() => {
            Err(Rejection::VersionNotSupported)
        }
        _ => Err(Rejection::BadRequest(
            "the version must be HTTP/1.x (RFC 9112 §2.3)",
        )),
    }
}

/// One header line as (name, value), the value without the whitespace around it.
fn header_line(line: &str) -> Result<(&str, &str), Rejection> {
    let Some((name, value)) = line.split_once(':') else {
        return Err(Rejection::BadRequest(
            "a header line without a colon (RFC 9112 §5)",
        ));
    };
    // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon", and a
    // server MUST answer it with 400; §5.2 lets a server refuse obsolete line folding with
    // 400 too. pure-ws refuses both: neither name is a token.
    if !is_token(name) {
        return Err(Rejection::BadRequest(
            "a header name must be a token, with no space before the colon (RFC 9112 §5.1)",
        ));
    }
    let value = value.trim_matches(OWS);
    // RFC 9110 §5.5: "Field values containing CR, LF, or NUL characters are invalid and
    // dangerous", and a field value is VCHAR, obs-text, SP and HTAB only. pure-ws refuses
    // any other control character (a bare CR, NUL, ESC, DEL) rather than replace it.
    if value.chars().any(|c| c.is_ascii_control() && c != '\t') {
        return Err(Rejection::BadRequest(
            "a header value holds a control character (RFC 9110 §5.5)",
        ));
    }
    Ok((name, value))
}

/// The path of a request target, without its query.
///
/// RFC 9112 §3.2: the target is origin-form (`/path?query`), absolute-form
/// (`http://host/path?query`; "A server MUST accept the absolute-form in requests", §3.2.2),
/// or asterisk-form (`*`, "only used for a server-wide OPTIONS request", §3.2.4). A target
/// is a URI, so it is ASCII; pure-ws takes any visible ASCII but `#` (a fragment is never
/// sent), so the characters browsers leave unencoded in queries (`{`, `|`, `^`) still work.
/// An absolute URI with an empty path means `/` (RFC 9110 §4.2.1).
fn target_path<'a>(method: &str, target: &'a str) -> Result<&'a str, Rejection> {
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
        return Err(Rejection::BadRequest(
            "the request target must be visible ASCII with no fragment (RFC 9112 §3.2)",
        ));
    }
    if target == "*" {
        return match method {
            "OPTIONS" => Ok(target),
            _ => Err(Rejection::BadRequest(
                "the asterisk-form target is for OPTIONS only (RFC 9112 §3.2.4)",
            )),
        };
    }
    let without_query = target.split('?').next().unwrap_or(target);
    if without_query.starts_with('/') {
        return Ok(without_query);
    }
    let Some((scheme, rest)) = without_query.split_once("://") else {
        return Err(Rejection::BadRequest(
            "the request target must be a path or an absolute http(s) URI (RFC 9112 §3.2)",
        ));
    };
    // RFC 9112 §3.2.2: absolute-form is an "absolute-URI"; for a request to an origin
    // server it names an http or https resource (RFC 9110 §4.2). pure-ws refuses others.
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(Rejection::BadRequest(
            "an absolute-form target must be an http or https URI (RFC 9110 §4.2)",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    // RFC 9110 §4.2.1: "A sender MUST NOT generate an "http" URI with an empty host
    // identifier. A recipient that processes such a URI reference MUST reject it as
    // invalid." §4.2.4: a recipient "SHOULD parse for userinfo and treat its presence as
    // an error". The host grammar has no `@`, so both are refused here.
    if !is_authority(authority) {
        return Err(Rejection::BadRequest(
            "the authority of an absolute-form target must be host[:port] (RFC 9110 §4.2)",
        ));
    }
    Ok(path)
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
        assert_eq!(request.single_header("host", "twice"), Ok(Some("example")));
        assert_eq!(
            request.single_header("X-A", "twice"),
            Err(Rejection::BadRequest("twice"))
        );
        assert_eq!(request.content, Content::None);
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
        assert_eq!(path("http://h/chat/room?x=1"), Ok("/chat/room".to_string()));
        assert_eq!(path("/plain?x=/y"), Ok("/plain".to_string()));
        for bad in [
            "http://",
            "http:///x",
            "1http://h/",
            "ht tp://h/",
            "h//x",
            "nowhere",
            "ws://h/chat",
            "ftp://x/",
            "http://user@h/",
            "http://a b/",
            "http://h:x/",
        ] {
            assert!(path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_malformed_heads() {
        for head in [
            &b"GET /\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.10\r\nHost: x\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n",
            b"GET nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x:y:z\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: u@h\r\n\r\n",
            b"GET /\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /#top HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: \x1b[31m\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n",
        ] {
            assert!(
                matches!(Request::parse(head), Err(Rejection::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn accepts_what_real_clients_send() {
        for head in [
            &b"GET / HTTP/1.1\r\nHost: localhost:4000\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: [::1]:4000\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: xn--bcher-kva.example:\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [v1.fe]\r\n\r\n",
            b"GET /?a={b}|c^d HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: a\tb (c)\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert!(
                Request::parse(head).is_ok(),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn reads_how_content_is_framed() {
        let content = |lines: &str| {
            let head = format!("POST / HTTP/1.1\r\nHost: x\r\n{lines}\r\n");
            Request::parse(head.as_bytes()).map(|request| request.content)
        };
        assert_eq!(content(""), Ok(Content::None));
        assert_eq!(content("Content-Length: 0\r\n"), Ok(Content::Length(0)));
        assert_eq!(content("Content-Length: 5\r\n"), Ok(Content::Length(5)));
        assert_eq!(content("Content-Length: 5, 5\r\n"), Ok(Content::Length(5)));
        assert_eq!(
            content("Content-Length: 5\r\ncontent-length: 5\r\n"),
            Ok(Content::Length(5))
        );
        assert_eq!(
            content("Transfer-Encoding: Chunked\r\n"),
            Ok(Content::Chunked)
        );
        assert_eq!(
            content("Transfer-Encoding: gzip, chunked\r\n").map_err(|r| r.status().0),
            Err(501)
        );
    }

    #[test]
    fn other_http_major_versions_get_505() {
        for version in ["HTTP/2.0", "HTTP/0.9", "HTTP/3.0"] {
            let head = format!("GET / {version}\r\nHost: x\r\n\r\n");
            assert_eq!(
                Request::parse(head.as_bytes()),
                Err(Rejection::VersionNotSupported),
                "{version}"
            );
        }
    }

    #[test]
    fn upgrade_is_ignored_in_http_1_0() {
        let route = |head: &str| Request::parse(head.as_bytes()).unwrap().route();
        assert_eq!(
            route("GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"),
            Route::Page
        );
        assert_eq!(
            route("GET /ws HTTP/1.0\r\nUpgrade: websocket\r\n\r\n"),
            Route::Refuse(Rejection::NotFound)
        );
    }

    #[test]
    fn lists_ignore_empty_elements() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\nX: , a,,b ,\r\nx: \r\nX: c\r\n\r\n";
        let request = Request::parse(head).unwrap();
        assert_eq!(request.list("x").collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn a_426_names_the_protocol_to_upgrade_to() {
        let response =
            String::from_utf8(Rejection::UpgradeRequired.response(Body::Included)).unwrap();
        assert!(response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(
            response.contains("\r\nUpgrade: websocket\r\n"),
            "{response}"
        );
        assert!(
            response.contains("\r\nConnection: Upgrade, close\r\n"),
            "{response}"
        );
        assert!(
            response.contains("\r\nSec-WebSocket-Version: 13\r\n"),
            "{response}"
        );
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
