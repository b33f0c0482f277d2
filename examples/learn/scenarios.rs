//! The scenarios of `cargo run --example learn`: a raw WebSocket client, std only, that
//! makes the cases a toy server skips (a fragmented message, ping, two frames in one
//! write, a frame split over many writes, binary data, the close handshake, and two
//! rule violations) and prints every byte it sends and receives, decoded field by field.
//!
//! Output, one item per line: `>` what the client wrote, `<` what it read, `#` a note.
//! Bytes are spaced lowercase hex, as in the server's `--trace`.
//!
//! Shared by `main.rs` (the command line) and `tests/learn.rs`, which runs every scenario
//! against the real server. Frames are encoded and decoded here, without the `pure_ws`
//! library, so the client cannot share a bug with the server it is showing.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::thread;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

pub const DEFAULT_URL: &str = "ws://127.0.0.1:4000/";

/// How long any connect or read may take before the scenario gives up instead of hanging.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The pause between the one-byte writes of `split`, long enough for the server to read
/// each byte on its own.
const SPLIT_PAUSE: Duration = Duration::from_millis(20);

/// The masking key of every frame this client sends: the one of RFC 6455 §5.7's examples.
///
/// A real client MUST NOT do this. RFC 6455 §5.3: "When preparing a masked frame, the
/// client MUST pick a fresh masking key from the set of allowed 32-bit values. The masking
/// key needs to be unpredictable". If a script could predict the key, it could choose the
/// bytes that appear on the wire and fool a proxy on the way (§10.3). This client keeps
/// one known key so that every run prints the same bytes, which can be checked by hand
/// and against the RFC (the "Hello" of `split` is §5.7's `81 85 37 fa 21 3d 7f 9f 4d 51 58`).
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The `Sec-WebSocket-Key` of RFC 6455 §1.3, whose accept value is known. A real client
/// picks a random one per connection (§4.1: "The nonce MUST be selected randomly for each
/// connection"); this one is fixed for the same reason as `KEY`.
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// RFC 6455 §1.3: the GUID appended to the key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The largest frame this client reads (a frame's length field can claim up to 2^63).
const MAX_FRAME: u64 = 1 << 24;

// Opcodes (RFC 6455 §5.2) and the FIN bit of the first header byte.
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;
pub const FIN: u8 = 0x80;

/// One thing to try against a server.
#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    /// What it shows, one line for the usage text.
    pub shows: &'static str,
    steps: fn(&mut Conn<'_>) -> Result<(), String>,
}

pub static SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "fragmented",
        shows: "one text message in three frames (FIN=0, FIN=0, FIN=1): one echo of it all",
        steps: fragmented,
    },
    Scenario {
        name: "ping",
        shows: "a ping with a payload: the pong carries the same bytes back",
        steps: ping,
    },
    Scenario {
        name: "two-in-one",
        shows: "two whole text frames in ONE write: two echoes, in order",
        steps: two_in_one,
    },
    Scenario {
        name: "split",
        shows: "one text frame written one byte per write: one echo, once the frame is whole",
        steps: split,
    },
    Scenario {
        name: "binary",
        shows: "a binary message with bytes that are not UTF-8: a binary echo",
        steps: binary,
    },
    Scenario {
        name: "close",
        shows: "a close frame with code 1000 and a reason: the server's close, then TCP EOF",
        steps: close,
    },
    Scenario {
        name: "unmasked",
        shows: "a frame without a mask: the server fails the connection with close 1002",
        steps: unmasked,
    },
    Scenario {
        name: "bad-utf8",
        shows: "a text frame that is not UTF-8: the server fails the connection with 1007",
        steps: bad_utf8,
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

fn fragmented(c: &mut Conn) -> Result<(), String> {
    c.note("RFC 6455 §5.4: a fragmented message is a frame with FIN=0 and the message's opcode,")?;
    c.note("then continuation frames (opcode 0), the last with FIN=1; one write each here,")?;
    c.note("20 ms apart, so the server reads each on its own")?;
    c.send(&[masked(TEXT, b"Hel")])?;
    thread::sleep(SPLIT_PAUSE);
    c.send(&[masked(CONTINUATION, b"lo")])?;
    thread::sleep(SPLIT_PAUSE);
    c.send(&[masked(FIN | CONTINUATION, b" world")])?;
    c.note("the server must join the three payloads and answer the message once")?;
    c.read_message()
}

fn ping(c: &mut Conn) -> Result<(), String> {
    c.note("RFC 6455 §5.5.2: \"Upon receipt of a Ping frame, an endpoint MUST send a Pong frame")?;
    c.note("in response\"; §5.5.3: the pong's payload is the ping's, unchanged")?;
    c.send(&[masked(FIN | PING, b"Hello")])?;
    c.read_until(|frame| frame.opcode == PONG)?;
    if let Some(pong) = c.frames.last().filter(|f| f.opcode == PONG) {
        let same = if pong.payload == b"Hello" {
            "yes"
        } else {
            "NO"
        };
        c.note(&format!("the pong carries the ping's payload: {same}"))?;
    }
    Ok(())
}

fn two_in_one(c: &mut Conn) -> Result<(), String> {
    c.note("TCP carries bytes, not messages: both frames go out in ONE write, and the server")?;
    c.note("must find where the first ends from its length, then read the second from the rest")?;
    c.send(&[masked(FIN | TEXT, b"first"), masked(FIN | TEXT, b"second")])?;
    c.note("the answers may come in one read too: this client cuts frames out of what it reads")?;
    c.read_message()?;
    c.read_message()
}

fn split(c: &mut Conn) -> Result<(), String> {
    let frame = masked(FIN | TEXT, b"Hello");
    c.note("a read can end anywhere in a frame: this one goes out one byte per write, 20 ms")?;
    c.note("apart, and the server must keep what it has until the frame is whole")?;
    c.show_frames(">", &frame)?;
    let header = parse_header(&frame).ok_or("the frame has no header")?;
    for (i, byte) in frame.iter().enumerate() {
        if i > 0 {
            thread::sleep(SPLIT_PAUSE);
        }
        c.write(&[*byte], &format!(" = {}", byte_role(&header, i)))?;
    }
    c.read_message()
}

fn binary(c: &mut Conn) -> Result<(), String> {
    c.note("RFC 6455 §5.6: binary data \"is arbitrary binary data whose interpretation is solely")?;
    c.note("up to the application layer\": no UTF-8 rule, so 80, fe and ff are fine here")?;
    c.send(&[masked(FIN | BINARY, &[0x00, 0x01, 0x80, 0xfe, 0xff])])?;
    c.read_message()
}

fn close(c: &mut Conn) -> Result<(), String> {
    c.note("RFC 6455 §5.5.1: a close frame's payload is a 2-byte code (1000: normal closure),")?;
    c.note("then a UTF-8 reason; the server must answer with a close, then close TCP")?;
    c.close(1000, "bye")
}

fn unmasked(c: &mut Conn) -> Result<(), String> {
    c.note("RFC 6455 §5.1: \"a client MUST mask all frames that it sends to the server\", and")?;
    c.note("\"The server MUST close the connection upon receiving a frame that is not masked\"")?;
    c.note("(§7.4.1: 1002, protocol error); this is §5.7's unmasked \"Hello\", MASK=0, no key")?;
    c.send(&[vec![FIN | TEXT, 5, b'H', b'e', b'l', b'l', b'o']])?;
    c.read_to_close()
}

fn bad_utf8(c: &mut Conn) -> Result<(), String> {
    c.note("RFC 6455 §8.1: an endpoint that finds a text message is not valid UTF-8 \"MUST _Fail")?;
    c.note("the WebSocket Connection_\" (§7.4.1: 1007); the byte ff never occurs in UTF-8")?;
    c.send(&[masked(FIN | TEXT, b"Hi \xff")])?;
    c.read_to_close()
}

/// What a scenario saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Every frame the server sent, in order.
    pub frames: Vec<Frame>,
    pub ending: Ending,
}

/// How the connection ended. Either way the server then closed TCP: a scenario that
/// returns `Ok` has read the EOF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The client sent the first close frame; the server answered with `reply` (its code).
    ClientClosed { reply: Option<u16> },
    /// The server sent the first close frame, with `code`, and the client answered it.
    ServerClosed { code: Option<u16> },
}

/// A frame from the server (never masked, so there is no key to keep).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame, if its payload carries one.
    pub fn close_code(&self) -> Option<u16> {
        match self.payload[..] {
            [hi, lo, ..] if self.opcode == CLOSE => Some(u16::from_be_bytes([hi, lo])),
            _ => None,
        }
    }
}

/// Connects to `url`, runs `scenario`, closes cleanly unless the server already closed,
/// and writes every step to `out`.
pub fn run(scenario: &Scenario, url: &Url, out: &mut dyn Write) -> Result<Observed, String> {
    let intro = writeln!(out, "# scenario {}: {}", scenario.name, scenario.shows);
    intro.map_err(|e| format!("cannot write the output: {e}"))?;
    let mut conn = Conn::open(url, out)?;
    (scenario.steps)(&mut conn)?;
    if conn.ending.is_none() {
        conn.note("done: the client closes cleanly, with code 1000")?;
        conn.close(1000, "done")?;
    }
    let ending = conn.ending.ok_or("the connection did not end")?;
    let observed = Observed {
        frames: std::mem::take(&mut conn.frames),
        ending,
    };
    conn.note(&observed.summary())?;
    Ok(observed)
}

impl Observed {
    /// One line: the opcodes received and who closed.
    fn summary(&self) -> String {
        let opcodes: Vec<&str> = self.frames.iter().map(|f| opcode_name(f.opcode)).collect();
        let code = |code: Option<u16>| code.map_or("no code".into(), |c| c.to_string());
        let ending = match self.ending {
            Ending::ClientClosed { reply } => {
                format!(
                    "the client closed first, the server answered {}",
                    code(reply)
                )
            }
            Ending::ServerClosed { code: first } => {
                format!(
                    "the server closed first with {}, the client answered",
                    code(first)
                )
            }
        };
        format!("received: {}; {ending}; then TCP EOF", opcodes.join(", "))
    }
}

/// One connection, with what was read but not yet taken as a frame.
struct Conn<'a> {
    stream: TcpStream,
    out: &'a mut dyn Write,
    /// Bytes read and not yet consumed: a read can end anywhere, in a frame or after several.
    inbox: Vec<u8>,
    writes: usize,
    reads: usize,
    frames: Vec<Frame>,
    sent_close: bool,
    ending: Option<Ending>,
}

impl<'a> Conn<'a> {
    /// Connects and completes the opening handshake.
    fn open(url: &Url, out: &'a mut dyn Write) -> Result<Conn<'a>, String> {
        let stream = connect(url)?;
        let fail = |e: io::Error| format!("cannot set up the socket: {e}");
        // Without TCP_NODELAY the kernel may hold a small write back to join it with the
        // next one (Nagle's algorithm), and `split` would not be split.
        stream.set_nodelay(true).map_err(fail)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(fail)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(fail)?;
        let mut conn = Conn {
            stream,
            out,
            inbox: Vec::new(),
            writes: 0,
            reads: 0,
            frames: Vec::new(),
            sent_close: false,
            ending: None,
        };
        conn.note(&format!("connected to {} (TCP_NODELAY on)", url.authority))?;
        conn.handshake(url)?;
        Ok(conn)
    }

    fn say(&mut self, line: &str) -> Result<(), String> {
        writeln!(self.out, "{line}").map_err(|e| format!("cannot write the output: {e}"))
    }

    fn note(&mut self, text: &str) -> Result<(), String> {
        self.say(&format!("# {text}"))
    }

    /// The opening handshake as RFC 6455 §4.1 asks of a client.
    fn handshake(&mut self, url: &Url) -> Result<(), String> {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            url.path, url.authority
        );
        for line in request.lines().filter(|l| !l.is_empty()) {
            self.say(&format!("> {line}"))?;
        }
        self.stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("writing to the server failed: {e}"))?;
        let head = self.read_head()?;
        for line in head.lines().filter(|l| !l.is_empty()) {
            self.say(&format!("< {line}"))?;
        }
        let status = head.lines().next().unwrap_or_default();
        if status.split(' ').nth(1) != Some("101") {
            return Err(format!("the server did not switch to WebSocket: {status}"));
        }
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        // RFC 6455 §4.1: without `Upgrade: websocket` and `Connection: Upgrade` (both
        // case-insensitive) "the client MUST _Fail the WebSocket Connection_".
        if !header("Upgrade").eq_ignore_ascii_case("websocket") {
            return Err("the 101 has no 'Upgrade: websocket'".into());
        }
        let connection = header("Connection");
        if !connection
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        {
            return Err("the 101 has no 'Connection: Upgrade'".into());
        }
        // RFC 6455 §4.1: if `Sec-WebSocket-Accept` "contains a value other than the
        // base64-encoded SHA-1 of the concatenation of the |Sec-WebSocket-Key| (as a string,
        // not base64-decoded) with the string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" [...]
        // the client MUST _Fail the WebSocket Connection_." It proves the server read this
        // key: a plain HTTP server or a cache could not answer it.
        let joined = format!("{WS_KEY}{GUID}");
        let sha1 = Sha1::digest(&joined);
        let expected = BASE64.encode(sha1);
        self.note(&format!("accept: key + GUID = {joined}"))?;
        self.note(&format!("accept: SHA-1 = {}", hex(&sha1)))?;
        self.note(&format!("accept: base64 = {expected}"))?;
        if header("Sec-WebSocket-Accept") != expected {
            return Err(format!("Sec-WebSocket-Accept is not {expected}"));
        }
        self.note("accept checked: base64(SHA-1(key + GUID)) matches")?;
        if !self.inbox.is_empty() {
            let extra = plural(self.inbox.len(), "byte");
            self.note(&format!(
                "{extra} came after the head: kept for the frame reader"
            ))?;
        }
        Ok(())
    }

    /// Reads the response head, up to its blank line. Bytes after it stay in the inbox:
    /// a server may send its first frame in the same packet.
    fn read_head(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.inbox.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.inbox.drain(..end + 4).collect();
                return Ok(String::from_utf8_lossy(&head).into_owned());
            }
            if self.inbox.len() > 8192 {
                return Err("the response head is over 8 KiB".into());
            }
            if self.fill()? == 0 {
                return Err("the server closed the connection during the handshake".into());
            }
        }
    }

    /// One `read` into the inbox; 0 means the server closed TCP (EOF).
    fn fill(&mut self) -> Result<usize, String> {
        let mut buf = [0; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(n) => {
                    self.inbox.extend_from_slice(&buf[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(format!(
                        "no answer from the server within {} s",
                        TIMEOUT.as_secs()
                    ))
                }
                Err(e) => return Err(format!("reading from the server failed: {e}")),
            }
        }
    }

    /// One `write` of `bytes`, shown with `remark` after them.
    fn write(&mut self, bytes: &[u8], remark: &str) -> Result<(), String> {
        self.writes += 1;
        let size = plural(bytes.len(), "byte");
        self.say(&format!(
            "> write {} ({size}): {}{remark}",
            self.writes,
            hex(bytes)
        ))?;
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("writing to the server failed: {e}"))
    }

    /// Sends `frames` in one write, then shows each of them decoded.
    fn send(&mut self, frames: &[Vec<u8>]) -> Result<(), String> {
        let bytes = frames.concat();
        self.write(&bytes, "")?;
        self.show_frames(">", &bytes)
    }

    /// Shows `bytes` frame by frame, decoded by the same `parse_header` that reads the
    /// server's frames: what is shown is what is on the wire.
    fn show_frames(&mut self, arrow: &str, mut bytes: &[u8]) -> Result<(), String> {
        while let Some(header) = parse_header(bytes) {
            let end = bytes.len().min(header.size + header.len as usize);
            let size = plural(end, "byte");
            self.say(&format!("{arrow}   frame ({size}): {}", hex(&bytes[..end])))?;
            for line in describe_frame(&bytes[..end]) {
                self.say(&format!("{arrow}     {line}"))?;
            }
            bytes = &bytes[end..];
        }
        Ok(())
    }

    /// The next whole frame from the server, or `None` at EOF between frames. It reads only
    /// when the inbox holds no whole frame: one read may bring several frames or a piece.
    fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        loop {
            if let Some(header) = parse_header(&self.inbox) {
                check_server_header(&header)?;
                let end = header.size + header.len as usize;
                if self.inbox.len() >= end {
                    let bytes: Vec<u8> = self.inbox.drain(..end).collect();
                    self.show_frames("<", &bytes)?;
                    let frame = Frame {
                        fin: header.fin,
                        opcode: header.opcode,
                        payload: bytes[header.size..].to_vec(),
                    };
                    self.frames.push(frame.clone());
                    return Ok(Some(frame));
                }
            }
            let n = self.fill()?;
            if n == 0 && self.inbox.is_empty() {
                self.say("< EOF: the server closed TCP (read returned 0)")?;
                return Ok(None);
            }
            if n == 0 {
                let part = plural(self.inbox.len(), "byte");
                return Err(format!(
                    "the server closed TCP in the middle of a frame ({part})"
                ));
            }
            self.reads += 1;
            let fresh = &self.inbox[self.inbox.len() - n..];
            let line = format!(
                "< read {} ({}): {}",
                self.reads,
                plural(n, "byte"),
                hex(fresh)
            );
            self.say(&line)?;
        }
    }

    /// Reads frames until `done` accepts one or the server's close frame ends the
    /// connection; answers pings on the way.
    fn read_until(&mut self, done: fn(&Frame) -> bool) -> Result<(), String> {
        while self.ending.is_none() {
            let Some(frame) = self.next_frame()? else {
                return Err(
                    "the server closed TCP without a close frame (RFC 6455 §7.1.5 \
                            reports that as code 1006)"
                        .into(),
                );
            };
            match frame.opcode {
                CLOSE => self.closed_by_server(&frame)?,
                PING => {
                    self.note(
                        "RFC 6455 §5.5.2: a ping MUST be answered with a pong, same payload",
                    )?;
                    self.send(&[masked(FIN | PONG, &frame.payload)])?;
                }
                _ if done(&frame) => return Ok(()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads up to the last frame of a message (FIN=1).
    fn read_message(&mut self) -> Result<(), String> {
        self.read_until(|f| f.fin && matches!(f.opcode, TEXT | BINARY | CONTINUATION))
    }

    /// Reads up to the server's close frame and the EOF after it.
    fn read_to_close(&mut self) -> Result<(), String> {
        self.read_until(|_| false)
    }

    /// Sends a close frame and reads up to the server's close frame and its EOF.
    fn close(&mut self, code: u16, reason: &str) -> Result<(), String> {
        let payload = [&code.to_be_bytes()[..], reason.as_bytes()].concat();
        self.send(&[masked(FIN | CLOSE, &payload)])?;
        self.sent_close = true;
        self.read_to_close()
    }

    /// The server's close frame: the answer to ours, or its own first close, which
    /// needs an answer. Then the server must close TCP.
    fn closed_by_server(&mut self, frame: &Frame) -> Result<(), String> {
        let code = frame.close_code();
        if self.sent_close {
            self.note("both sides have sent a close frame: now the server closes TCP")?;
            self.ending = Some(Ending::ClientClosed { reply: code });
        } else {
            // RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not previously
            // send a Close frame, the endpoint MUST send a Close frame in response. (When
            // sending a Close frame in response, the endpoint typically echos the status
            // code it received.)"
            self.note("the server closed first: RFC 6455 §5.5.1 says answer with a close,")?;
            self.note("typically echoing its code")?;
            let payload = code.map_or(Vec::new(), |code| code.to_be_bytes().to_vec());
            let reply = masked(FIN | CLOSE, &payload);
            // A server that failed the connection may be gone already; the EOF still counts.
            if let Err(e) = self.send(&[reply]) {
                self.note(&format!("the answer was not sent: {e}"))?;
            }
            self.ending = Some(Ending::ServerClosed { code });
        }
        // RFC 6455 §5.5.1: "The server MUST close the underlying TCP connection
        // immediately; the client SHOULD wait for the server to close the connection".
        // And "After sending a Close frame, the endpoint MUST NOT send any further data
        // frames", so nothing may come before the EOF.
        match self.next_frame()? {
            None => Ok(()),
            Some(_) => Err("the server sent a frame after its close frame".into()),
        }
    }
}

/// A TCP connection to the URL's host and port, tried address by address.
fn connect(url: &Url) -> Result<TcpStream, String> {
    let fail = |e: io::Error| format!("cannot connect to {}: {e}", url.authority);
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for addr in (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(fail)?
    {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(fail(last))
}

/// The checks a client makes on each frame header from the server, before its payload.
fn check_server_header(header: &Header) -> Result<(), String> {
    // RFC 6455 §5.1: "A server MUST NOT mask any frames that it sends to the client. A
    // client MUST close a connection if it detects a masked frame."
    if header.key.is_some() {
        return Err("the server masked a frame, which RFC 6455 §5.1 forbids".into());
    }
    // RFC 6455 §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated"; none was.
    if header.rsv != 0 {
        return Err("the server set RSV bits, but no extension was negotiated (§5.2)".into());
    }
    // RFC 6455 §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail
    // the WebSocket Connection_."
    if opcode_name(header.opcode) == "reserved" {
        return Err(format!(
            "the server sent reserved opcode {:x} (§5.2)",
            header.opcode
        ));
    }
    if header.len > MAX_FRAME {
        return Err(format!(
            "a {}-byte frame is more than this client reads",
            header.len
        ));
    }
    Ok(())
}

/// A client frame (RFC 6455 §5.2): `first` (FIN, RSV, opcode), then MASK=1 with the
/// shortest length encoding ("the minimal number of bytes MUST be used to encode the
/// length"), the key, and the payload masked with it.
pub fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&KEY);
    out.extend(unmask(payload, Some(KEY)));
    out
}

/// RFC 6455 §5.3: byte i of the payload is XORed with byte i MOD 4 of the key. The same
/// XOR masks and unmasks; without a key the bytes are as they are.
fn unmask(bytes: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    match key {
        Some(key) => bytes
            .iter()
            .zip(key.iter().cycle())
            .map(|(b, k)| b ^ k)
            .collect(),
        None => bytes.to_vec(),
    }
}

/// How a header carried the payload length (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenEncoding {
    /// 0 to 125, in the second byte.
    Bits7,
    /// 126 in the second byte, then 2 bytes.
    Bits16,
    /// 127 in the second byte, then 8 bytes.
    Bits64,
}

/// A frame header (RFC 6455 §5.2), decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    /// RSV1, RSV2 and RSV3 as a 3-bit number.
    pub rsv: u8,
    pub opcode: u8,
    pub key: Option<[u8; 4]>,
    pub len: u64,
    pub encoding: LenEncoding,
    /// The header's size in bytes: 2, then 2 or 8 for a longer length, then 4 for a key.
    pub size: usize,
}

/// Decodes the header at the start of `bytes`, or `None` if not all of it is there yet:
/// a header takes 2 to 14 bytes, and a read can end inside it.
pub fn parse_header(bytes: &[u8]) -> Option<Header> {
    let (first, second) = (*bytes.first()?, *bytes.get(1)?);
    let (len, encoding, mut size) = match second & 0x7F {
        126 => {
            let len = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
            (u64::from(len), LenEncoding::Bits16, 4)
        }
        127 => {
            let len = u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?);
            (len, LenEncoding::Bits64, 10)
        }
        len => (u64::from(len), LenEncoding::Bits7, 2),
    };
    let mut key = None;
    if second & 0x80 != 0 {
        key = Some(bytes.get(size..size + 4)?.try_into().ok()?);
        size += 4;
    }
    Some(Header {
        fin: first & 0x80 != 0,
        rsv: (first >> 4) & 0x7,
        opcode: first & 0x0F,
        key,
        len,
        encoding,
        size,
    })
}

/// A whole frame (or as much of it as `bytes` holds), a line per part: the first byte,
/// the length bytes, the masking key, the payload.
pub fn describe_frame(bytes: &[u8]) -> Vec<String> {
    let Some(header) = parse_header(bytes) else {
        return vec![format!("{}: not a whole frame header", hex(bytes))];
    };
    let name = opcode_name(header.opcode);
    let (fin, mask) = (u8::from(header.fin), u8::from(header.key.is_some()));
    let length_end = if header.key.is_some() {
        header.size - 4
    } else {
        header.size
    };
    let encoding = match header.encoding {
        LenEncoding::Bits7 => "7-bit",
        LenEncoding::Bits16 => "16-bit, after 126",
        LenEncoding::Bits64 => "64-bit, after 127",
    };
    let mut lines = vec![
        format!(
            "{:02x}: FIN={fin} RSV={:03b} opcode={:x} ({name})",
            bytes[0], header.rsv, header.opcode
        ),
        format!(
            "{}: MASK={mask} len={} ({encoding})",
            hex(&bytes[1..length_end]),
            header.len
        ),
    ];
    if let Some(key) = header.key {
        lines.push(format!("{}: masking key", hex(&key)));
    }
    let wire = &bytes[header.size..];
    let data = unmask(wire, header.key);
    let shown = match (header.opcode, std::str::from_utf8(&data)) {
        (CLOSE, _) => describe_close(&data),
        (TEXT | CONTINUATION, Ok(text)) => format!("\"{}\"", text.escape_debug()),
        (TEXT | CONTINUATION, Err(_)) => format!("b\"{}\" (not UTF-8)", data.escape_ascii()),
        _ => format!("b\"{}\"", data.escape_ascii()),
    };
    lines.push(match (wire.is_empty(), header.key) {
        (true, _) => "(no payload)".to_string(),
        (false, Some(_)) => format!("{}: payload, masked; XOR key = {shown}", hex(wire)),
        (false, None) => format!("{}: payload {shown}", hex(wire)),
    });
    lines
}

/// A close frame's payload (RFC 6455 §5.5.1): a 2-byte code, then a UTF-8 reason.
fn describe_close(payload: &[u8]) -> String {
    let [hi, lo, reason @ ..] = payload else {
        return "no status code".into();
    };
    let code = u16::from_be_bytes([*hi, *lo]);
    // RFC 6455 §7.4.1.
    let meaning = match code {
        1000 => "normal closure",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unacceptable data type",
        1007 => "data inconsistent with the message type",
        1008 => "policy violation",
        1009 => "message too big",
        1011 => "unexpected condition",
        _ => "see RFC 6455 §7.4",
    };
    match String::from_utf8_lossy(reason) {
        reason if reason.is_empty() => format!("code {code} ({meaning}), no reason"),
        reason => format!(
            "code {code} ({meaning}), reason \"{}\"",
            reason.escape_debug()
        ),
    }
}

/// What byte `i` of a frame with `header` is, for `split`'s one-byte writes.
fn byte_role(header: &Header, i: usize) -> String {
    let key_at = if header.key.is_some() {
        header.size - 4
    } else {
        header.size
    };
    match i {
        0 => "FIN, RSV, opcode".into(),
        1 => "MASK, length".into(),
        i if i < key_at => format!("extended length, byte {} of {}", i - 1, key_at - 2),
        i if i < header.size => format!("masking key, byte {} of 4", i - key_at + 1),
        i => format!("payload, byte {} of {}", i - header.size + 1, header.len),
    }
}

fn opcode_name(opcode: u8) -> &'static str {
    match opcode {
        CONTINUATION => "continuation",
        TEXT => "text",
        BINARY => "binary",
        CLOSE => "close",
        PING => "ping",
        PONG => "pong",
        _ => "reserved",
    }
}

/// Spaced lowercase hex; past 64 bytes, how many more there are.
pub fn hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(64).map(|b| format!("{b:02x}")).collect();
    match bytes.len() {
        0..=64 => shown.join(" "),
        len => format!("{} ... ({} more)", shown.join(" "), len - 64),
    }
}

fn plural(n: usize, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// Where to connect: a `ws://HOST[:PORT][/PATH]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// The host name or address, without the brackets of an IPv6 address.
    pub host: String,
    pub port: u16,
    /// `HOST[:PORT]` as written: the `Host` header.
    pub authority: String,
    /// The path and query, from the first `/`.
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, String> {
        let Some(rest) = url.strip_prefix("ws://") else {
            return Err(if url.starts_with("wss://") {
                "wss:// needs TLS, which this std-only client does not speak; use ws://".into()
            } else {
                format!("'{url}' is not a ws://HOST:PORT/PATH URL")
            });
        };
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        // An IPv6 address comes in brackets, so its colons are not the port's.
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((host, "")) => (host, None),
                Some((host, port)) if port.starts_with(':') => (host, Some(&port[1..])),
                _ => return Err(format!("'{url}': bad IPv6 address in brackets")),
            },
            None => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(format!("'{url}' names no host"));
        }
        let port = match port {
            None => 80, // RFC 6455 §3: the default port of ws:// is 80
            Some(port) => port
                .parse()
                .map_err(|_| format!("'{url}': bad port '{port}'"))?,
        };
        Ok(Url {
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            path: if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            },
        })
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run {
        scenario: &'static Scenario,
        url: Url,
    },
    Help,
}

/// Parses `SCENARIO [--url URL]` (or `--url=URL`), or `-h`/`--help`.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let (mut scenario, mut url) = (None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--url" => url = Some(args.next().ok_or("--url needs a value")?),
            _ if arg.starts_with("--url=") => url = Some(arg["--url=".len()..].to_string()),
            _ if arg.starts_with('-') => return Err(format!("unknown option '{arg}'")),
            _ if scenario.is_some() => {
                return Err(format!("one scenario at a time, not '{arg}' too"))
            }
            name => scenario = Some(find(name).ok_or(format!("unknown scenario '{name}'"))?),
        }
    }
    let scenario = scenario.ok_or("no scenario given")?;
    let url = Url::parse(url.as_deref().unwrap_or(DEFAULT_URL))?;
    Ok(Command::Run { scenario, url })
}

/// The usage text, with a line per scenario.
pub fn usage() -> String {
    let mut text = String::from(
        "Usage: cargo run --example learn -- SCENARIO [--url ws://HOST:PORT/PATH]\n\n\
         A raw WebSocket client: it prints every byte it sends (>) and receives (<), with\n\
         each frame header decoded, and notes (#). Run the server beside it with --trace\n\
         to see the same frames from the other end: cargo run -- --trace\n\nScenarios:\n",
    );
    for s in SCENARIOS {
        text += &format!("  {:<12} {}\n", s.name, s.shows);
    }
    text += &format!(
        "\nOptions:\n  --url URL    the server [default: {DEFAULT_URL}]\n  \
         -h, --help   print this help\n"
    );
    text
}
