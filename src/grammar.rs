//! The small grammars of RFC 9110 and RFC 3986 that the HTTP edge checks: tokens, quoted
//! strings and lists of them, and the authority a `Host` header or an absolute-form target
//! names. Each function answers whether text matches one rule, and cites it.

/// Whether `text` is `host [ ":" port ]` with a non-empty host, as RFC 9110 §7.2 defines
/// `Host` and §4.2.1 the authority of an http URI, with RFC 3986 §3.2.2–3.2.3's grammar:
/// `host = IP-literal / IPv4address / reg-name`, `port = *DIGIT`.
pub fn is_authority(text: &str) -> bool {
    let (host_ok, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((literal, "")) => (is_ip_literal(literal), ""),
            Some((literal, after)) => match after.strip_prefix(':') {
                Some(port) => (is_ip_literal(literal), port),
                None => (false, ""),
            },
            None => (false, ""),
        },
        None => match text.split_once(':') {
            Some((name, port)) => (is_reg_name(name), port),
            None => (is_reg_name(text), ""),
        },
    };
    host_ok && port.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 3986 §3.2.2: `IP-literal = "[" ( IPv6address / IPvFuture ) "]"`, without brackets;
/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn is_ip_literal(literal: &str) -> bool {
    if literal.parse::<std::net::Ipv6Addr>().is_ok() {
        return true;
    }
    let Some((version, address)) = literal
        .strip_prefix(['v', 'V'])
        .and_then(|rest| rest.split_once('.'))
    else {
        return false;
    };
    !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_hexdigit())
        && !address.is_empty()
        && address
            .bytes()
            .all(|b| is_unreserved(b) || is_sub_delim(b) || b == b':')
}

/// RFC 3986 §3.2.2: `reg-name = *( unreserved / pct-encoded / sub-delims )`, here
/// non-empty (an http URI never has an empty host). It covers IPv4 addresses too.
fn is_reg_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if is_unreserved(b) || is_sub_delim(b) => i += 1,
            _ => return false,
        }
    }
    !bytes.is_empty()
}

/// RFC 3986 §2.3: `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)
}

/// RFC 3986 §2.2: `sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="`.
fn is_sub_delim(byte: u8) -> bool {
    b"!$&'()*+,;=".contains(&byte)
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

/// Splits `text` at each `separator` that is not inside a quoted string (RFC 9110 §5.6.4);
/// `None` when a quoted string is not closed.
pub fn split_outside_quotes(text: &str, separator: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    (!quoted).then_some(parts)
}

/// The content of a quoted string whose opening quote is already removed: RFC 9110 §5.6.4,
/// `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE`, and the closing quote must end
/// the value.
pub fn unquote(rest: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return chars.as_str().is_empty().then_some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_tchars_only() {
        for good in ["chat", "v2.bin+json", "a!#$%&'*+-.^_`|~z"] {
            assert!(is_token(good), "{good}");
        }
        for bad in ["", "a b", "a,b", "a\"b", "(x)", "caf\u{e9}", "a/b", "a=b"] {
            assert!(!is_token(bad), "{bad}");
        }
    }
}
