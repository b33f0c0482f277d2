//! The opening handshake (RFC 6455 §4.2): what a valid upgrade request looks like, and the
//! `101 Switching Protocols` answer with its `Sec-WebSocket-Accept`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::http::{Rejection, Request};

/// RFC 6455 §1.3: the GUID appended to the client's key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// Checks an upgrade request (RFC 6455 §4.2.1) and returns the `Sec-WebSocket-Accept` value.
/// `allowed_origins` empty means any origin.
pub fn validate(request: &Request, allowed_origins: &[String]) -> Result<String, Rejection> {
    if request.method != "GET" {
        return Err(Rejection::MethodNotAllowed);
    }
    if request.minor_version < 1 {
        return Err(Rejection::BadRequest("WebSocket needs HTTP/1.1 or later"));
    }
    if !request.has_token("connection", "upgrade") {
        return Err(Rejection::BadRequest(
            "the Connection header must contain the token upgrade",
        ));
    }
    match request.single_header("sec-websocket-version")? {
        None => {
            return Err(Rejection::BadRequest(
                "missing Sec-WebSocket-Version header",
            ))
        }
        Some("13") => {}
        Some(_) => return Err(Rejection::UpgradeRequired),
    }
    let key = request
        .single_header("sec-websocket-key")?
        .ok_or(Rejection::BadRequest("missing Sec-WebSocket-Key header"))?;
    // RFC 6455 §4.1: the key is a random 16-byte value, base64-encoded.
    match BASE64.decode(key) {
        Ok(bytes) if bytes.len() == 16 => {}
        _ => {
            return Err(Rejection::BadRequest(
                "Sec-WebSocket-Key must be base64 of 16 bytes",
            ))
        }
    }
    if !allowed_origins.is_empty() {
        // RFC 6455 §10.2: a server may refuse origins it does not trust, which stops other
        // web sites from opening sockets with a visitor's cookies.
        let origin = request.single_header("origin")?;
        if !origin.is_some_and(|origin| allowed_origins.iter().any(|a| a == origin)) {
            return Err(Rejection::Forbidden("origin not allowed"));
        }
    }
    Ok(accept_key(key))
}

/// The `101 Switching Protocols` response. No subprotocol or extension is ever selected.
pub fn switching_protocols(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
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
        validate(&request, origins)
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
}
