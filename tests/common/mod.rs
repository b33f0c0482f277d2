//! The shared raw-bytes client for the integration tests: it starts the real `pure-ws`
//! binary on an ephemeral port and speaks HTTP and WebSocket frames to it byte by byte.
//! It builds frames with its own encoder (`wire`) rather than with the library, so an
//! encoder bug in the server cannot hide behind the same bug in the tests. `process` reads
//! the server's memory and threads from `/proc`; `cdp` drives headless Chromium for the
//! browser tests.

#![allow(dead_code)] // each test file uses a different part of this helper

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single read in a test may block before the test fails instead of hanging.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub mod cdp;
pub mod process;
pub mod wire;

use wire::{masked, CLOSE, TEXT};

/// The real server binary, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The first line the server printed on stdout (the address it listens on), with its
    /// line ending.
    pub banner: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `pure-ws --port 0 ARGS...` and waits for the address it prints.
    pub fn start(args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pure-ws"));
        command.args(["--port", "0"]).args(args);
        Server::spawn(command)
    }

    /// Like `start`, but the server may open at most `fds` file descriptors.
    pub fn start_with_fd_limit(fds: u32, args: &[&str]) -> Server {
        let mut command = Command::new("sh");
        command
            .args(["-c", &format!("ulimit -n {fds} && exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_pure-ws"))
            .args(["--port", "0"])
            .args(args);
        Server::spawn(command)
    }

    /// Starts `pure-ws ARGS...` with `PORT` set to `port`, and no `--port` of its own.
    pub fn start_with_port_env(args: &[&str], port: &str) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pure-ws"));
        command.args(args).env("PORT", port);
        Server::spawn(command)
    }

    fn spawn(mut command: Command) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pure-ws");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        stdout.read_line(&mut banner).expect("read the first line");
        let url = banner
            .split_whitespace()
            .find_map(|word| word.strip_prefix("http://"))
            .unwrap_or_else(|| panic!("no http:// address in {banner:?}"));
        let addr = url.trim_end_matches('/').parse().expect("a socket address");
        // Keep draining both pipes so the server never blocks on a full pipe.
        thread::spawn(move || for _ in stdout.lines() {});
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let err = BufReader::new(child.stderr.take().unwrap());
        thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Server {
            child,
            addr,
            banner,
            stderr,
        }
    }

    /// Stops the server at once, as a crash or a lost network would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stderr so far, a line each.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until a stderr line contains `needle`, and returns it.
    pub fn wait_for_log(&self, needle: &str) -> String {
        eventually(READ_TIMEOUT, || {
            let lines = self.stderr();
            lines
                .iter()
                .find(|l| l.contains(needle))
                .cloned()
                .ok_or_else(|| format!("no log line with {needle:?} in {lines:#?}"))
        })
    }

    /// The trace lines of the connection from `client`, without its peer address, once
    /// one of them contains `until`.
    pub fn trace_of(&self, client: &Client, until: &str) -> Vec<String> {
        let peer = format!("{} ", client.stream.local_addr().unwrap());
        eventually(READ_TIMEOUT, || {
            let lines: Vec<String> = self
                .stderr()
                .iter()
                .filter_map(|line| line.strip_prefix(&peer))
                .map(str::to_string)
                .collect();
            match lines.iter().any(|line| line.contains(until)) {
                true => Ok(lines),
                false => Err(format!("no trace line with {until:?} in {lines:#?}")),
            }
        })
    }

    /// A TCP connection to the server that fails the test rather than hang.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream
    }

    /// Sends raw request bytes and returns the whole response, up to the server's close.
    pub fn http(&self, request: &[u8]) -> String {
        let mut stream = self.connect();
        stream.write_all(request).unwrap();
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .expect("read the response");
        String::from_utf8(response).expect("a UTF-8 response")
    }

    /// Sends `request` on a new connection and returns the client with the response head.
    pub fn handshake(&self, request: &str) -> (Client, String) {
        let mut client = Client::new(self.connect());
        client.send(request.as_bytes());
        let head = client.read_head();
        (client, head)
    }

    /// A WebSocket connection whose handshake succeeded.
    pub fn ws(&self) -> Client {
        let (client, head) = self.handshake(&upgrade_request("/"));
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        client
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!("---- pure-ws stderr ----\n{}", self.stderr().join("\n"));
        }
    }
}

/// Polls `check` every 20 ms until it gives `Ok`, and returns that. After `limit` the test
/// fails with the last `Err`, which says what was awaited and what was seen instead.
pub fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(value) => return value,
            Err(why) if Instant::now() >= deadline => panic!("after {limit:?}: {why}"),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A child process killed (and reaped) when dropped, so a failed assertion leaks none.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the binary with `args` to completion (it must exit within 5 s), with `PORT` set to
/// `port_env` or unset.
pub fn run_binary(args: &[&str], port_env: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pure-ws"));
    command
        .args(args)
        .env_remove("PORT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(port) = port_env {
        command.env("PORT", port);
    }
    let mut child = Killed(command.spawn().expect("start pure-ws"));
    let status = eventually(Duration::from_secs(5), || {
        child
            .0
            .try_wait()
            .unwrap()
            .ok_or(format!("pure-ws {args:?} did not exit"))
    });
    // It exited: what it wrote (a usage text at most) waits in the pipes.
    let mut output = Output {
        status,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    let (stdout, stderr) = (child.0.stdout.take(), child.0.stderr.take());
    stdout.unwrap().read_to_end(&mut output.stdout).unwrap();
    stderr.unwrap().read_to_end(&mut output.stderr).unwrap();
    output
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The RFC 6455 §1.3 key, whose accept value is `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A valid upgrade request for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// An upgrade request for `/` with `extra` header lines (each ending in CRLF) added.
pub fn upgrade_with(extra: &str) -> String {
    upgrade_request("/").replacen("\r\n\r\n", &format!("\r\n{extra}\r\n"), 1)
}

/// The status code of an HTTP response (or response head).
pub fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// The value of header `name` (any case) in an HTTP response's head.
pub fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next().unwrap();
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The body of an HTTP response.
pub fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// A close frame payload: the code, then the reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// A frame the server sent.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a close frame, if it has one.
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// The client side of one connection, reading exactly what the server sends.
pub struct Client {
    pub stream: TcpStream,
}

impl Client {
    pub fn new(stream: TcpStream) -> Client {
        Client { stream }
    }

    /// Reads an HTTP response head byte by byte, so nothing after it is consumed.
    pub fn read_head(&mut self) -> String {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            self.stream
                .read_exact(&mut byte)
                .expect("read the response head");
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends one masked frame.
    pub fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.send(&masked(fin, opcode, payload));
    }

    pub fn send_text(&mut self, text: &str) {
        self.send_frame(true, TEXT, text.as_bytes());
    }

    /// Reads one whole frame, checking that the server did not mask it (RFC 6455 §5.1).
    pub fn read_frame(&mut self) -> Frame {
        let mut head = [0; 2];
        self.stream
            .read_exact(&mut head)
            .expect("read a frame header");
        assert_eq!(head[1] & 0x80, 0, "server frames must not be masked");
        assert_eq!(head[0] & 0x70, 0, "server frames must not set RSV bits");
        let len = match head[1] & 0x7F {
            126 => {
                let mut ext = [0; 2];
                self.stream.read_exact(&mut ext).unwrap();
                u64::from(u16::from_be_bytes(ext))
            }
            127 => {
                let mut ext = [0; 8];
                self.stream.read_exact(&mut ext).unwrap();
                u64::from_be_bytes(ext)
            }
            len => u64::from(len),
        };
        let mut payload = vec![0; len as usize];
        self.stream
            .read_exact(&mut payload)
            .expect("read a frame payload");
        Frame {
            fin: head[0] & 0x80 != 0,
            opcode: head[0] & 0x0F,
            payload,
        }
    }

    /// Reads a frame and checks it is a final text frame with `text`.
    pub fn expect_text(&mut self, text: &str) {
        let frame = self.read_frame();
        assert_eq!(
            (frame.fin, frame.opcode),
            (true, TEXT),
            "expected a text frame, got {frame:?}"
        );
        assert_eq!(String::from_utf8(frame.payload).unwrap(), text);
    }

    /// Reads the server's close frame with `code`, answers it as a client must
    /// (RFC 6455 §5.5.1), then checks that the server closes TCP.
    pub fn expect_close(&mut self, code: u16) {
        let frame = self.read_frame();
        assert_eq!(frame.opcode, CLOSE, "expected a close frame, got {frame:?}");
        assert_eq!(
            frame.close_code(),
            Some(code),
            "close payload {:?}",
            frame.payload
        );
        // The server may already have closed its side; a failed write is fine then.
        let _ = self
            .stream
            .write_all(&masked(true, CLOSE, &code.to_be_bytes()));
        self.expect_eof();
    }

    /// Starts the close handshake with `code` and `reason`, checks that the server answers
    /// with the same code, then that it closes TCP.
    pub fn close_cleanly(&mut self, code: u16, reason: &str) {
        self.send_frame(true, CLOSE, &close_payload(code, reason));
        let reply = self.read_frame();
        assert_eq!(reply.close_code(), Some(code), "close reply {reply:?}");
        self.expect_eof();
    }

    /// Checks that the server closes the TCP connection cleanly with nothing more to say.
    pub fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        match self.stream.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "unexpected bytes before EOF: {rest:?}"),
            Err(err) => panic!("the server did not close the connection cleanly: {err}"),
        }
    }
}

/// Reads a close frame and returns its code, without answering it.
pub fn read_close(client: &mut Client) -> Option<u16> {
    let frame = client.read_frame();
    assert_eq!(frame.opcode, CLOSE, "expected a close frame, got {frame:?}");
    frame.close_code()
}

/// Sends a text message and checks the echo.
pub fn echo(client: &mut Client, text: &str) {
    client.send_text(text);
    client.expect_text(&format!("Server got: {text}"));
}

/// A fresh connection completes the handshake and an echo round trip.
pub fn still_echoes(server: &Server) {
    let mut client = server.ws();
    echo(&mut client, "still serving");
}
