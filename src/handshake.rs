//! The opening handshake (RFC 6455 §4.2): what a valid upgrade request looks like, and the
//! `101 Switching Protocols` answer with its `Sec-WebSocket-Accept`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::grammar::{is_token, split_outside_quotes, unquote};
use crate::http::{Content, Rejection, Request};

/// RFC 6455 §1.3: the GUID appended to the client's key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    AcceptSteps::new(key).accept
}

/// The way from a `Sec-WebSocket-Key` to its `Sec-WebSocket-Accept` (RFC 6455 §4.2.2),
/// step by step, as the trace and the frame inspector show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptSteps {
    /// The key the client sent.
    pub key: String,
    /// The key with the GUID appended.
    pub joined: String,
    /// The SHA-1 of the joined string.
    pub sha1: [u8; 20],
    /// The SHA-1 in base64: the accept value.
    pub accept: String,
}

impl AcceptSteps {
    /// Works out the accept value for `key`.
    pub fn new(key: &str) -> AcceptSteps {
        let joined = format!("{key}{GUID}");
        let sha1: [u8; 20] = Sha1::digest(joined.as_bytes()).into();
        AcceptSteps {
            key: key.to_string(),
            accept: BASE64.encode(sha1),
            joined,
            sha1,
        }
    }
}

/// An accepted upgrade: what the `101 Switching Protocols` answer carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The client's `Sec-WebSocket-Key`.
    pub key: String,
    /// The `Sec-WebSocket-Accept` value.
    pub accept: String,
    /// The subprotocol selected from the client's offers, if any.
    pub subprotocol: Option<String>,
}

/// What the server accepts in a handshake besides what RFC 6455 requires.
#[derive(Clone, Copy, Debug, Default)]
pub struct Policy<'a> {
    /// `Origin` values allowed to open a WebSocket; empty allows any.
    pub allowed_origins: &'a [String],
    /// Subprotocols the server may select; empty selects the client's first offer.
    pub subprotocols: &'a [String],
}

/// Checks an upgrade request (RFC 6455 §4.2.1) against `policy`, and selects a subprotocol.
pub fn validate(request: &Request, policy: &Policy) -> Result<Accepted, Rejection> {
    // RFC 6455 §4.1: "The method of the request MUST be GET, and the HTTP version MUST be
    // at least 1.1."
    if request.method != "GET" {
        return Err(Rejection::MethodNotAllowed);
    }
    if request.minor_version < 1 {
        return Err(Rejection::BadRequest(
            "WebSocket needs HTTP/1.1 or later (RFC 6455 §4.1)",
        ));
    }
    // RFC 9110 §9.3.1: content in a GET request "might lead some implementations to reject
    // the request and close the connection because of its potential as a request smuggling
    // attack". After an upgrade the bytes behind the head are frames, so pure-ws refuses
    // an upgrade that announces content rather than read it as frames.
    if !matches!(request.content, Content::None | Content::Length(0)) {
        return Err(Rejection::BadRequest(
            "a WebSocket upgrade request must not have content: what follows its head is \
             frames (RFC 9110 §9.3.1)",
        ));
    }
    if !request.has_token("connection", "upgrade") {
        return Err(Rejection::BadRequest(
            "the Connection header must contain the token upgrade (RFC 6455 §4.2.1)",
        ));
    }
    // RFC 6455 §11.3.5: "The |Sec-WebSocket-Version| header field MUST NOT appear more than
    // once in an HTTP request."
    let version = request.single_header(
        "sec-websocket-version",
        "Sec-WebSocket-Version appears more than once (RFC 6455 §11.3.5)",
    )?;
    match version {
        None => {
            return Err(Rejection::BadRequest(
                "missing Sec-WebSocket-Version header (RFC 6455 §4.2.1)",
            ))
        }
        Some("13") => {}
        Some(_) => return Err(Rejection::UpgradeRequired),
    }
    // RFC 6455 §11.3.1: "The |Sec-WebSocket-Key| header field MUST NOT appear more than
    // once in an HTTP request."
    let key = request
        .single_header(
            "sec-websocket-key",
            "Sec-WebSocket-Key appears more than once (RFC 6455 §11.3.1)",
        )?
        .ok_or(Rejection::BadRequest(
            "missing Sec-WebSocket-Key header (RFC 6455 §4.2.1)",
        ))?;
    // RFC 6455 §4.2.1 asks for "a |Sec-WebSocket-Key| header field with a base64-encoded
    // ... value that, when decoded, is 16 bytes in length". Any other key gets 400.
    match BASE64.decode(key) {
        Ok(bytes) if bytes.len() == 16 => {}
        _ => {
            return Err(Rejection::BadRequest(
                "Sec-WebSocket-Key must be base64 of 16 bytes (RFC 6455 §4.2.1)",
            ))
        }
    }
    check_origin(request, policy.allowed_origins)?;
    check_extension_offers(request)?;
    let offers = offered_subprotocols(request)?;
    Ok(Accepted {
        key: key.to_string(),
        accept: accept_key(key),
        subprotocol: select_subprotocol(&offers, policy.subprotocols).map(str::to_string),
    })
}

/// RFC 6455 §10.2: "If the origin indicated is unacceptable to the server, then it SHOULD
/// respond to the WebSocket handshake with a reply containing HTTP 403 Forbidden status
/// code." With `--allowed-origin`, only the listed origins are acceptable, which stops
/// other sites from using a visitor's cookies here; without it, any origin is.
fn check_origin(request: &Request, allowed_origins: &[String]) -> Result<(), Rejection> {
    if allowed_origins.is_empty() {
        return Ok(());
    }
    let origin =
        request.single_header("origin", "Origin appears more than once (RFC 6454 §7.3)")?;
    if origin.is_some_and(|origin| allowed_origins.iter().any(|a| same_origin(a, origin))) {
        Ok(())
    } else {
        Err(Rejection::Forbidden("origin not allowed (RFC 6455 §10.2)"))
    }
}

/// Whether two serialized origins (`scheme://host[:port]`) are the same origin.
///
/// RFC 6455 §4.2.2 (/origin/): "The origin is serialized to ASCII and converted to
/// lowercase." So the scheme and host compare without regard to case; the port is digits,
/// which have no case, so it still has to match exactly (`:8080` is not `:80`).
pub fn same_origin(allowed: &str, origin: &str) -> bool {
    allowed.eq_ignore_ascii_case(origin)
}

/// The subprotocols a client offers, in its order of preference; empty when it offers none.
///
/// RFC 6455 §4.1: the elements of `Sec-WebSocket-Protocol` "MUST be non-empty strings with
/// characters in the range U+0021 to U+007E not including separator characters [...] and
/// MUST all be unique strings"; §11.3.4 gives the grammar `1#token`. RFC 9110 §5.6.1.2: a
/// recipient "MUST accept and ignore a reasonable number of empty list elements", and
/// §5.3: a list header sent several times is one list. A header with no element at all,
/// or one that breaks these rules, is refused with `400` naming the rule, rather than
/// guessed at: a client that sends it has a bug worth seeing.
pub fn offered_subprotocols<'a>(request: &Request<'a>) -> Result<Vec<&'a str>, Rejection> {
    let mut offers: Vec<&'a str> = Vec::new();
    for name in request.list("sec-websocket-protocol") {
        if !is_token(name) {
            return Err(Rejection::BadRequest(
                "Sec-WebSocket-Protocol must be a comma-separated list of tokens \
                 (RFC 6455 §4.1)",
            ));
        }
        if offers.contains(&name) {
            return Err(Rejection::BadRequest(
                "Sec-WebSocket-Protocol offers the same subprotocol twice (RFC 6455 §4.1)",
            ));
        }
        offers.push(name);
    }
    if offers.is_empty() && request.headers("sec-websocket-protocol").next().is_some() {
        return Err(Rejection::BadRequest(
            "Sec-WebSocket-Protocol names no subprotocol: it must list at least one \
             (RFC 6455 §11.3.4)",
        ));
    }
    Ok(offers)
}

/// Checks the extensions a client offers against RFC 6455 §9.1's grammar:
///
/// ```text
/// extension-list = 1#extension
/// extension = extension-token *( ";" extension-param )
/// extension-param = token [ "=" (token | quoted-string) ]
/// ```
///
/// where a quoted value "MUST conform to the 'token' ABNF" once unescaped, with whitespace
/// allowed around the separators. A malformed offer is a bad handshake (`400`). pure-ws
/// selects no extension, so a well-formed offer is then ignored, as §9.1 allows.
pub fn check_extension_offers(request: &Request) -> Result<(), Rejection> {
    let malformed = Rejection::BadRequest(
        "Sec-WebSocket-Extensions must be a list of extensions with token parameters \
         (RFC 6455 §9.1)",
    );
    let mut offered = 0;
    for value in request.headers("sec-websocket-extensions") {
        for element in split_outside_quotes(value, ',').ok_or(malformed.clone())? {
            if element.trim_matches([' ', '\t']).is_empty() {
                continue;
            }
            if !is_extension(element) {
                return Err(malformed);
            }
            offered += 1;
        }
    }
    if offered == 0 && request.headers("sec-websocket-extensions").next().is_some() {
        return Err(malformed);
    }
    Ok(())
}

/// One element of an extension list: a token, then `; param` or `; param=value` pairs.
fn is_extension(element: &str) -> bool {
    let Some(parts) = split_outside_quotes(element, ';') else {
        return false;
    };
    let mut parts = parts.into_iter().map(|part| part.trim_matches([' ', '\t']));
    let name_ok = parts.next().is_some_and(is_token);
    name_ok
        && parts.all(|param| match param.split_once('=') {
            None => is_token(param),
            Some((name, value)) => {
                let value = value.trim_matches([' ', '\t']);
                let value_ok = match value.strip_prefix('"') {
                    Some(quoted) => unquote(quoted).is_some_and(|v| is_token(&v)),
                    None => is_token(value),
                };
                is_token(name.trim_matches([' ', '\t'])) && value_ok
            }
        })
}

/// The subprotocol to answer with.
///
/// RFC 6455 §4.2.2 (/subprotocol/): "The value chosen MUST be derived from the client's
/// handshake, specifically by selecting one of the values from the |Sec-WebSocket-Protocol|
/// field that the server is willing to use for this connection (if any)." An echo server
/// speaks whatever it is sent, so with `supported` empty it takes the client's first (most
/// preferred) offer; otherwise the first offer that is also in `supported` (names compare
/// exactly: they are case-sensitive), and none when nothing matches.
pub fn select_subprotocol<'a>(offers: &[&'a str], supported: &[String]) -> Option<&'a str> {
    offers
        .iter()
        .copied()
        .find(|offer| supported.is_empty() || supported.iter().any(|s| s == offer))
}

/// The `101 Switching Protocols` response. No extension is ever selected.
///
/// RFC 6455 §4.2.2: with no subprotocol selected, the server "MUST NOT send back a
/// |Sec-WebSocket-Protocol| header field in its response", so the header is left out.
pub fn switching_protocols(accepted: &Accepted) -> Vec<u8> {
    let protocol = match &accepted.subprotocol {
        Some(name) => format!("Sec-WebSocket-Protocol: {name}\r\n"),
        None => String::new(),
    };
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{protocol}\r\n",
        accepted.accept
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn check(head: &str, origins: &[String]) -> Result<String, Rejection> {
        let request = Request::parse(head.as_bytes())?;
        let policy = Policy {
            allowed_origins: origins,
            ..Policy::default()
        };
        validate(&request, &policy).map(|accepted| accepted.accept)
    }

    /// `GOOD` with header `lines` (each ending in CRLF) added at its end.
    fn good_with(lines: &str) -> String {
        GOOD.replace("\r\n\r\n", &format!("\r\n{lines}\r\n"))
    }

    /// The status for `GOOD` with `lines` added, or 101.
    fn status_with(lines: &str) -> u16 {
        check(&good_with(lines), &[]).map_or_else(|rejection| rejection.status().0, |_| 101)
    }

    /// The subprotocol selected for `GOOD` plus `protocol_lines`, or the rejection.
    fn select(protocol_lines: &str, supported: &[&str]) -> Result<Option<String>, Rejection> {
        let head = good_with(protocol_lines);
        let request = Request::parse(head.as_bytes())?;
        let supported: Vec<String> = supported.iter().map(|s| s.to_string()).collect();
        let policy = Policy {
            subprotocols: &supported,
            ..Policy::default()
        };
        validate(&request, &policy).map(|accepted| accepted.subprotocol)
    }

    fn some(name: &str) -> Result<Option<String>, Rejection> {
        Ok(Some(name.to_string()))
    }

    #[test]
    fn computes_the_rfc_worked_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(check(GOOD, &[]).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn accepts_token_lists_in_any_case() {
        let head = GOOD
            .replace("Upgrade: websocket", "upgrade: WebSocket")
            .replace("Connection: Upgrade", "connection: keep-alive, UPGRADE");
        assert!(check(&head, &[]).is_ok());
    }

    #[test]
    fn rejects_each_missing_or_wrong_part() {
        let cases = [
            ("GET /chat HTTP/1.1", "GET /chat HTTP/1.0", 400),
            ("Host: server.example.com\r\n", "", 400),
            ("Connection: Upgrade", "Connection: keep-alive", 400),
            ("Sec-WebSocket-Version: 13\r\n", "", 400),
            ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 426),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ==", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "not base64!", 400),
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 400),
            (
                "Sec-WebSocket-Version: 13\r\n",
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n",
                400,
            ),
            (
                "Sec-WebSocket-Version: 13\r\n",
                "Sec-WebSocket-Version: 13\r\nContent-Length: 5\r\n",
                400,
            ),
            (
                "Sec-WebSocket-Version: 13\r\n",
                "Sec-WebSocket-Version: 13\r\nTransfer-Encoding: chunked\r\n",
                400,
            ),
        ];
        for (from, to, status) in cases {
            let head = GOOD.replace(from, to);
            let rejection = check(&head, &[]).unwrap_err();
            assert_eq!(rejection.status().0, status, "{from} -> {to}");
        }
        let post = GOOD.replace("GET /chat", "POST /chat");
        assert_eq!(check(&post, &[]).unwrap_err().status().0, 405);
    }

    #[test]
    fn enforces_allowed_origins() {
        let allowed = vec!["http://example.com".to_string()];
        assert!(check(GOOD, &allowed).is_ok());
        let other = vec!["https://elsewhere.org".to_string()];
        assert_eq!(check(GOOD, &other).unwrap_err().status().0, 403);
        let no_origin = GOOD.replace("Origin: http://example.com\r\n", "");
        assert_eq!(check(&no_origin, &allowed).unwrap_err().status().0, 403);
    }

    #[test]
    fn origins_compare_without_case_in_scheme_and_host_but_exactly_in_port() {
        let allowed = vec!["https://Example.com:8443".to_string()];
        for (origin, ok) in [
            ("https://example.com:8443", true),
            ("HTTPS://EXAMPLE.COM:8443", true),
            ("https://example.com:443", false),
            ("https://example.com:84430", false),
            ("http://example.com:8443", false),
            ("https://example.org:8443", false),
        ] {
            let head = GOOD.replace("http://example.com", origin);
            assert_eq!(check(&head, &allowed).is_ok(), ok, "{origin}");
        }
    }

    #[test]
    fn selects_the_first_offer_by_default() {
        assert_eq!(select("", &[]), Ok(None));
        assert_eq!(select("Sec-WebSocket-Protocol: chat", &[]), some("chat"));
        assert_eq!(
            select("Sec-WebSocket-Protocol: v2.json, chat,superchat", &[]),
            some("v2.json")
        );
    }

    #[test]
    fn a_supported_list_selects_the_first_offer_in_it() {
        let supported = ["superchat", "chat"];
        assert_eq!(
            select("Sec-WebSocket-Protocol: mqtt, chat, superchat", &supported),
            some("chat")
        );
        assert_eq!(
            select("Sec-WebSocket-Protocol: mqtt, Chat", &supported),
            Ok(None)
        );
        assert_eq!(select("", &supported), Ok(None));
    }

    #[test]
    fn repeated_headers_form_one_list() {
        let lines = "Sec-WebSocket-Protocol: a, b\r\nSec-WebSocket-Protocol: c";
        assert_eq!(select(lines, &["c"]), some("c"));
        assert_eq!(select(lines, &[]), some("a"));
        let repeated = "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: a";
        assert!(matches!(
            select(repeated, &[]),
            Err(Rejection::BadRequest(_))
        ));
    }

    #[test]
    fn empty_list_elements_are_ignored() {
        assert_eq!(select("Sec-WebSocket-Protocol: chat,", &[]), some("chat"));
        assert_eq!(select("Sec-WebSocket-Protocol: ,chat", &[]), some("chat"));
        assert_eq!(
            select("Sec-WebSocket-Protocol: chat,,superchat", &["superchat"]),
            some("superchat")
        );
        assert_eq!(
            select("Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol:", &[]),
            some("a")
        );
    }

    #[test]
    fn a_content_length_of_zero_is_no_content() {
        assert_eq!(status_with("Content-Length: 0\r\n"), 101);
    }

    #[test]
    fn extension_offers_must_follow_the_grammar() {
        for good in [
            "permessage-deflate",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate;client_max_window_bits=10, x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits=\"10\" ; client_no_context_takeover",
            "a, , b",
            "foo; bar = baz",
        ] {
            let line = format!("Sec-WebSocket-Extensions: {good}\r\n");
            assert_eq!(status_with(&line), 101, "{good:?}");
        }
        for bad in [
            "",
            ",",
            ";;=,",
            "; x",
            "permessage-deflate;",
            "a; b=",
            "a; =c",
            "a; b=c d",
            "a; b=\"c d\"",
            "a; b=\"unclosed",
            "a b",
            "caf\u{e9}",
        ] {
            let line = format!("Sec-WebSocket-Extensions: {bad}\r\n");
            assert_eq!(status_with(&line), 400, "{bad:?}");
        }
    }

    #[test]
    fn malformed_subprotocol_lists_are_bad_requests() {
        for value in [
            "",
            ",",
            " , ,",
            "chat superchat",
            "chat;q=1",
            "\"chat\"",
            "chat/1",
            "chat, chat",
            "caf\u{e9}",
        ] {
            let line = format!("Sec-WebSocket-Protocol: {value}");
            let rejection = select(&line, &[]).unwrap_err();
            assert_eq!(rejection.status().0, 400, "{value:?}");
        }
    }

    #[test]
    fn the_101_names_the_selected_subprotocol_and_never_an_extension() {
        let mut accepted = Accepted {
            key: "dGhlIHNhbXBsZSBub25jZQ==".to_string(),
            accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".to_string(),
            subprotocol: Some("chat".to_string()),
        };
        let response = String::from_utf8(switching_protocols(&accepted)).unwrap();
        assert!(response.ends_with("\r\nSec-WebSocket-Protocol: chat\r\n\r\n"));
        accepted.subprotocol = None;
        let response = String::from_utf8(switching_protocols(&accepted)).unwrap();
        assert!(!response
            .to_ascii_lowercase()
            .contains("sec-websocket-protocol"));
        assert!(!response.to_ascii_lowercase().contains("extensions"));
    }
}
