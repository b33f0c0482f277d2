//! Load generator: pure-ws against a plain TCP echo baseline and tungstenite.
//!
//! ```text
//! cargo bench --bench loadgen                  # the full run, about 1 minute
//! cargo bench --bench loadgen -- --smoke       # CI: seconds; fails only on wrong/lost replies
//! cargo bench --bench loadgen -- --secs 6 --only rtt1,mid --servers pure-ws,tungstenite
//! ```
//!
//! Options go after `--`; unknown ones (cargo adds `--bench`) are ignored.
//!
//! | option            | env              | default (smoke)  | meaning                                   |
//! |-------------------|------------------|------------------|-------------------------------------------|
//! | `--smoke`         | `LOADGEN_SMOKE=1`|                  | short durations and small counts          |
//! | `--secs S`        | `LOADGEN_SECS`   | 3 (0.3)          | length of each timed scenario, per server |
//! | `--rounds N`      | `LOADGEN_ROUNDS` | 3 (1)            | slices of S/N that alternate the servers  |
//! | `--idle N`        | `LOADGEN_IDLE`   | 2000 (200)       | connections held open in `idle`           |
//! | `--big N`         | `LOADGEN_BIG`    | no cap (2)       | cap on 16 MiB messages per round          |
//! | `--burst N`       | `LOADGEN_BURST`  | 32 (4)           | connections at once in `burst`            |
//! | `--burst-mib M`   | `LOADGEN_BURST_MIB` | 6 (1)         | size of each `burst` message, MiB         |
//! | `--only a,b`      |                  | all              | rtt1 rtt32 mid big connect idle burst     |
//! | `--servers a,b`   |                  | all              | tcp pure-ws tungstenite                   |
//!
//! Scenarios: `rtt1` one connection, 16-byte text request/response (msg/s, p50/p99 µs);
//! `rtt32` the same on 32 connections at once (total msg/s); `mid` 64 KiB binary
//! request/response (MB/s of payload echoed, 10^6 bytes, one direction); `big` 16 MiB binary
//! messages, written from a second thread while the echo is read (MB/s); `connect` connect +
//! handshake + close handshake, repeated (conn/s; the TCP baseline: connect, one echo, close);
//! `idle` N open connections: the server's RSS growth per connection and its thread count;
//! `burst` N connections at once each echo one M MiB binary message, 3 rounds, then all close:
//! the server's RSS before, at its peak, and 3 s after the last close (MiB).
//!
//! The timed scenarios also read the server's CPU time (user + system, all threads) from
//! `/proc/PID/stat` before and after, and print it per message (`rtt1`, `rtt32`, `mid` in µs,
//! `big` in ms) or per connection (`connect`, µs).
//!
//! Every server runs as a child process, so each has its own `/proc/PID/status` for the idle
//! figures, and no server shares an allocator or a process with the client. The baseline and
//! tungstenite servers are this same binary re-executed as `--serve tcp-echo|tungstenite`;
//! pure-ws is the release binary cargo built (`--echo exact --quiet`). Every round of every
//! scenario starts a fresh server process.
//!
//! The WebSocket client is written by hand on `std::net` (RFC 6455 client side: random key,
//! `Sec-WebSocket-Accept` check, masked frames, unmasked server frames, fragmentation, ping,
//! close handshake). Every reply is compared with what was sent, byte for byte and kind
//! (text/binary); a wrong, lost or late (20 s socket timeout) reply fails the run with a
//! non-zero exit and a message naming the scenario and server.

use std::error::Error;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use std::{env, thread};

use base64::Engine as _;
use sha1::{Digest, Sha1};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// A reply that takes longer than this counts as lost: the run fails instead of hanging.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    Tcp,
    PureWs,
    Tungstenite,
}

impl Server {
    const ALL: [Server; 3] = [Server::Tcp, Server::PureWs, Server::Tungstenite];

    fn name(self) -> &'static str {
        match self {
            Server::Tcp => "tcp",
            Server::PureWs => "pure-ws",
            Server::Tungstenite => "tungstenite",
        }
    }

    fn is_ws(self) -> bool {
        self != Server::Tcp
    }
}

const SCENARIOS: [&str; 7] = ["rtt1", "rtt32", "mid", "big", "connect", "idle", "burst"];

/// Rounds of one message per connection in `burst`.
const BURST_ROUNDS: usize = 3;

struct Config {
    /// Wall-clock length of each timed scenario, per server.
    secs: f64,
    /// Connections held open in `idle`.
    idle_conns: usize,
    /// Upper bound on the 16 MiB messages sent in `big` (it also stops at `secs`, after at
    /// least two messages).
    big_max: usize,
    /// Timed scenarios are split into this many rounds that alternate between servers.
    rounds: usize,
    /// Connections at once in `burst`.
    burst_conns: usize,
    /// Size of each `burst` message in bytes.
    burst_size: usize,
    /// How long after the last `burst` connection closed the server's RSS is read again.
    burst_settle: Duration,
    smoke: bool,
    scenarios: Vec<String>,
    servers: Vec<Server>,
}

impl Config {
    fn from_args(args: &[String]) -> Config {
        let env_num = |name: &str| env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
        let smoke = args.iter().any(|a| a == "--smoke")
            || env::var("LOADGEN_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut cfg = Config {
            secs: if smoke { 0.3 } else { 3.0 },
            idle_conns: if smoke { 200 } else { 2000 },
            big_max: if smoke { 2 } else { usize::MAX },
            rounds: if smoke { 1 } else { 3 },
            burst_conns: if smoke { 4 } else { 32 },
            burst_size: if smoke { 1 << 20 } else { 6 << 20 },
            burst_settle: Duration::from_secs_f64(if smoke { 0.3 } else { 3.0 }),
            smoke,
            scenarios: SCENARIOS.iter().map(|s| s.to_string()).collect(),
            servers: Server::ALL.to_vec(),
        };
        if let Some(s) = env_num("LOADGEN_SECS") {
            cfg.secs = s;
        }
        if let Some(n) = env_num("LOADGEN_IDLE") {
            cfg.idle_conns = n as usize;
        }
        if let Some(n) = env_num("LOADGEN_BIG") {
            cfg.big_max = n as usize;
        }
        if let Some(n) = env_num("LOADGEN_ROUNDS") {
            cfg.rounds = n as usize;
        }
        if let Some(n) = env_num("LOADGEN_BURST") {
            cfg.burst_conns = n as usize;
        }
        if let Some(m) = env_num("LOADGEN_BURST_MIB") {
            cfg.burst_size = (m * 1048576.0) as usize;
        }
        // Flags with a value; anything we do not know (cargo passes `--bench`) is skipped.
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().cloned().unwrap_or_default();
            match arg.as_str() {
                "--secs" => cfg.secs = value().parse().expect("--secs takes a number"),
                "--idle" => cfg.idle_conns = value().parse().expect("--idle takes a count"),
                "--big" => cfg.big_max = value().parse().expect("--big takes a count"),
                "--rounds" => cfg.rounds = value().parse().expect("--rounds takes a count"),
                "--burst" => cfg.burst_conns = value().parse().expect("--burst takes a count"),
                "--burst-mib" => {
                    let mib: f64 = value().parse().expect("--burst-mib takes a number");
                    cfg.burst_size = (mib * 1048576.0) as usize;
                }
                "--only" => {
                    let v = value();
                    cfg.scenarios = v.split(',').map(str::to_string).collect();
                    for s in &cfg.scenarios {
                        assert!(SCENARIOS.contains(&s.as_str()), "unknown scenario {s:?}");
                    }
                }
                "--servers" => {
                    cfg.servers = value()
                        .split(',')
                        .map(|s| match s {
                            "tcp" | "tcp-echo" => Server::Tcp,
                            "pure-ws" => Server::PureWs,
                            "tungstenite" => Server::Tungstenite,
                            other => panic!("unknown server {other:?}"),
                        })
                        .collect();
                }
                _ => {}
            }
        }
        cfg.big_max = cfg.big_max.max(1);
        cfg.rounds = cfg.rounds.max(1);
        cfg.burst_conns = cfg.burst_conns.max(1);
        cfg.burst_size = cfg.burst_size.max(1);
        cfg
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.secs)
    }
}

// ---------------------------------------------------------------------------------------------
// Small utilities: PRNG, masking, /proc
// ---------------------------------------------------------------------------------------------

/// xorshift64*: plenty for mask keys, handshake keys and test payloads, and no `rand` crate.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        // RandomState's keys come from the OS and differ per instance; mixing in the clock
        // keeps seeds distinct even if that ever changes.
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        );
        Rng(h.finish() | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// XOR `buf` with the 4-byte key repeated (payload offset 0). Eight bytes at a time so that
/// masking the prebuilt 16 MiB frames does not dominate setup.
fn mask(buf: &mut [u8], key: [u8; 4]) {
    let k8 = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().unwrap()) ^ k8;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// Builds a complete client frame (FIN set, masked with `key`) into `out`.
fn build_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    out.clear();
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    mask(&mut out[start..], key);
}

/// Numeric fields of a process's /proc/PID/status, in the order asked: `"VmRSS:"` and
/// `"VmHWM:"` (its peak) in KiB, `"Threads:"` a count.
fn proc_status<const N: usize>(pid: u32, names: [&str; N]) -> Res<[u64; N]> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mut values = [0; N];
    for (value, name) in values.iter_mut().zip(names) {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))?;
        *value = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
    }
    Ok(values)
}

/// CPU time a process has used so far, all its threads (the dead ones too), user plus
/// system, in seconds: fields 14 and 15 of /proc/PID/stat, in clock ticks.
fn cpu_secs(pid: u32) -> Res<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Field 2, the command name, is in parentheses and may contain spaces: count from the
    // last ')'. After it comes field 3, so utime (14) and stime (15) are the 12th and 13th.
    let rest = &text[text.rfind(')').ok_or("no ')' in /proc/PID/stat")? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let mut next = || -> Res<u64> { Ok(fields.next().ok_or("short /proc/PID/stat")?.parse()?) };
    let ticks = next()? + next()?;
    Ok(ticks as f64 / clock_ticks_per_sec())
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(hz > 0, "sysconf(_SC_CLK_TCK) failed");
    hz as f64
}

/// The 2,000-connection idle scenario needs ~2,000 fds on each side; raise the soft limit to
/// the hard one. Children (the servers) inherit it.
fn raise_nofile_limit() {
    // SAFETY: plain getrlimit/setrlimit on a stack struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn nofile_limit() -> u64 {
    // SAFETY: as above.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
}

/// SO_LINGER {on, 0}: close() sends RST and skips TIME_WAIT (std's set_linger is unstable).
fn set_linger_zero(stream: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a pointer/length pair describing a live `linger`.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// ---------------------------------------------------------------------------------------------
// Server processes
// ---------------------------------------------------------------------------------------------

/// A server child process; killed (and reaped) on drop, also when a scenario panics.
struct ServerProc {
    child: Child,
    addr: SocketAddr,
}

impl ServerProc {
    fn start(server: Server) -> Res<ServerProc> {
        let mut cmd = match server {
            Server::PureWs => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_pure-ws"));
                // No connection cap: `idle` may hold more than the default 10,000.
                c.args(["--port", "0", "--echo", "exact", "--quiet"])
                    .args(["--max-connections", "1000000"]);
                c
            }
            Server::Tcp => {
                let mut c = Command::new(env::current_exe()?);
                c.args(["--serve", "tcp-echo"]);
                c
            }
            Server::Tungstenite => {
                let mut c = Command::new(env::current_exe()?);
                c.args(["--serve", "tungstenite"]);
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // If the load generator dies without running destructors (SIGKILL, abort), take the
        // server with it instead of leaving it listening.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", server.name()))?;
        // From here on, an early return drops `proc_`, which kills the child.
        let mut proc_ = ServerProc {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut stdout = BufReader::new(proc_.child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first)?;
        // Keep draining stdout so a chatty server never blocks on a full pipe.
        thread::spawn(move || io::copy(&mut stdout, &mut io::sink()));
        proc_.addr = parse_listen_line(&first).ok_or_else(|| {
            format!(
                "{}: no http://HOST:PORT in its first line on stdout: {first:?}",
                server.name()
            )
        })?;
        Ok(proc_)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds `http://HOST:PORT` in a line and resolves it.
fn parse_listen_line(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("http://")? + "http://".len()..];
    let end = rest
        .find(|c: char| c == '/' || c.is_whitespace())
        .unwrap_or(rest.len());
    rest[..end].to_socket_addrs().ok()?.next()
}

/// `--serve tcp-echo`: the baseline. Thread per connection, TCP_NODELAY, read then write_all.
fn serve_tcp_echo() -> Res<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    announce(&listener)?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        stream.set_nodelay(true)?;
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    Ok(())
}

/// `--serve tungstenite`: the idiomatic blocking Rust WebSocket echo server. Default
/// configuration (its 16 MiB frame limit admits our 16 MiB frames exactly).
fn serve_tungstenite() -> Res<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    announce(&listener)?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        stream.set_nodelay(true)?;
        thread::spawn(move || {
            let Ok(mut ws) = tungstenite::accept(stream) else {
                return;
            };
            loop {
                match ws.read() {
                    Ok(msg) if msg.is_text() || msg.is_binary() => {
                        if ws.send(msg).is_err() {
                            break;
                        }
                    }
                    // Ping/pong/close replies are queued by tungstenite and flushed by the next
                    // read(), which then reports ConnectionClosed after a close handshake.
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
    }
    Ok(())
}

fn announce(listener: &TcpListener) -> Res<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "listening on http://{}/", listener.local_addr()?)?;
    out.flush()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The hand-written WebSocket client
// ---------------------------------------------------------------------------------------------

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn connect_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// What `WsClient::recv` got.
#[derive(Debug, PartialEq, Eq)]
enum Incoming {
    Text,
    Binary,
    Close(Option<u16>),
}

struct WsClient {
    stream: TcpStream,
    /// Read buffer for headers and small payloads; large payloads bypass it.
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    /// The message being assembled; only ever grows, `msg_len` is the live part, so a 16 MiB
    /// echo does not re-zero 16 MiB each time.
    msg: Vec<u8>,
    msg_len: usize,
    /// Scratch for outgoing frames.
    wbuf: Vec<u8>,
    rng: Rng,
}

impl WsClient {
    /// TCP connect plus the opening handshake on path `/`.
    fn connect(addr: SocketAddr) -> io::Result<WsClient> {
        let mut c = WsClient {
            stream: connect_tcp(addr)?,
            rbuf: vec![0; 16 * 1024],
            rpos: 0,
            rend: 0,
            msg: Vec::new(),
            msg_len: 0,
            wbuf: Vec::with_capacity(256),
            rng: Rng::new(),
        };
        c.handshake(addr)?;
        Ok(c)
    }

    fn handshake(&mut self, addr: SocketAddr) -> io::Result<()> {
        let mut key_bytes = [0u8; 16];
        self.rng.fill(&mut key_bytes);
        let key = base64::engine::general_purpose::STANDARD.encode(key_bytes);
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        self.stream.write_all(request.as_bytes())?;

        // Read until the blank line; bytes after it (frames sent right away) stay buffered.
        let head_end = loop {
            if let Some(i) = self.rbuf[..self.rend]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                break i + 4;
            }
            if self.rend == self.rbuf.len() {
                return Err(bad("handshake response larger than 16 KiB"));
            }
            self.fill()?;
        };
        let head = std::str::from_utf8(&self.rbuf[..head_end])
            .map_err(|_| bad("non-UTF-8 handshake response"))?;
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap_or("");
        if !status.starts_with("HTTP/1.1 101") {
            return Err(bad(format!("handshake: expected 101, got {status:?}")));
        }
        let expected = {
            let mut h = Sha1::new();
            h.update(key.as_bytes());
            h.update(WS_GUID.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(h.finalize())
        };
        let (mut upgrade, mut connection, mut accept) = (false, false, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
                "connection" => {
                    connection = value
                        .split(',')
                        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
                }
                "sec-websocket-accept" => accept = value == expected,
                _ => {}
            }
        }
        if !(upgrade && connection && accept) {
            return Err(bad(format!(
                "handshake: bad upgrade/connection/accept headers in {head:?}"
            )));
        }
        self.rpos = head_end;
        Ok(())
    }

    /// Reads more bytes into `rbuf`, compacting first if the buffer is full.
    fn fill(&mut self) -> io::Result<()> {
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
        } else if self.rend == self.rbuf.len() {
            self.rbuf.copy_within(self.rpos..self.rend, 0);
            self.rend -= self.rpos;
            self.rpos = 0;
        }
        let n = self.stream.read(&mut self.rbuf[self.rend..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        self.rend += n;
        Ok(())
    }

    /// Makes at least `n` (≤ rbuf size) unread bytes available in `rbuf`.
    fn want(&mut self, n: usize) -> io::Result<()> {
        while self.rend - self.rpos < n {
            if self.rbuf.len() - self.rpos < n {
                self.rbuf.copy_within(self.rpos..self.rend, 0);
                self.rend -= self.rpos;
                self.rpos = 0;
            }
            self.fill()?;
        }
        Ok(())
    }

    /// Reads `len` payload bytes into `dst`: first what is buffered, the rest straight from
    /// the socket (one big read_exact for large messages, no copy through `rbuf`).
    fn read_payload(&mut self, dst: &mut [u8]) -> io::Result<()> {
        let buffered = (self.rend - self.rpos).min(dst.len());
        dst[..buffered].copy_from_slice(&self.rbuf[self.rpos..self.rpos + buffered]);
        self.rpos += buffered;
        self.stream.read_exact(&mut dst[buffered..])
    }

    /// Sends one masked frame with a fresh random key.
    fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let key = (self.rng.next_u64() as u32).to_ne_bytes();
        let mut frame = std::mem::take(&mut self.wbuf);
        build_frame(&mut frame, opcode, payload, key);
        let r = self.stream.write_all(&frame);
        self.wbuf = frame;
        r
    }

    /// Receives the next data message (reassembling fragments, answering pings) or a close
    /// frame. The message is in `self.message()`.
    fn recv(&mut self) -> io::Result<Incoming> {
        self.msg_len = 0;
        let mut kind: Option<u8> = None;
        loop {
            self.want(2)?;
            let (b0, b1) = (self.rbuf[self.rpos], self.rbuf[self.rpos + 1]);
            let (fin, rsv, opcode) = (b0 & 0x80 != 0, b0 & 0x70, b0 & 0x0F);
            if rsv != 0 {
                return Err(bad(format!("server frame has RSV bits {rsv:#x}")));
            }
            if b1 & 0x80 != 0 {
                return Err(bad("server frame is masked"));
            }
            let (header, len) = match b1 & 0x7F {
                126 => {
                    self.want(4)?;
                    let p = self.rpos;
                    (
                        4,
                        u16::from_be_bytes([self.rbuf[p + 2], self.rbuf[p + 3]]) as u64,
                    )
                }
                127 => {
                    self.want(10)?;
                    let p = self.rpos;
                    (
                        10,
                        u64::from_be_bytes(self.rbuf[p + 2..p + 10].try_into().unwrap()),
                    )
                }
                n => (2, n as u64),
            };
            self.rpos += header;
            let len = usize::try_from(len).map_err(|_| bad("frame too long"))?;

            if opcode >= 0x8 {
                // Control frame: short, never fragmented, may arrive between fragments.
                if !fin || len > 125 {
                    return Err(bad("fragmented or oversized control frame"));
                }
                let mut payload = [0u8; 125];
                self.read_payload(&mut payload[..len])?;
                match opcode {
                    OP_PING => self.send(OP_PONG, &payload[..len])?,
                    OP_PONG => {}
                    OP_CLOSE => {
                        let code = (len >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                        return Ok(Incoming::Close(code));
                    }
                    op => return Err(bad(format!("unknown control opcode {op:#x}"))),
                }
                continue;
            }

            match (opcode, kind) {
                (OP_TEXT | OP_BINARY, None) => kind = Some(opcode),
                (OP_CONT, Some(_)) => {}
                (op, k) => {
                    return Err(bad(format!(
                        "unexpected opcode {op:#x} (message in progress: {k:?})"
                    )))
                }
            }
            let end = self.msg_len + len;
            if self.msg.len() < end {
                self.msg.resize(end, 0);
            }
            let mut msg = std::mem::take(&mut self.msg);
            let r = self.read_payload(&mut msg[self.msg_len..end]);
            self.msg = msg;
            r?;
            self.msg_len = end;
            if fin {
                return Ok(if kind == Some(OP_TEXT) {
                    Incoming::Text
                } else {
                    Incoming::Binary
                });
            }
        }
    }

    fn message(&self) -> &[u8] {
        &self.msg[..self.msg_len]
    }

    /// Client-initiated close handshake: send close(1000), wait for the server's close frame,
    /// then for EOF (the server closes the TCP connection first, RFC 6455 §7.1.1).
    fn close(mut self) -> io::Result<()> {
        self.send(OP_CLOSE, &1000u16.to_be_bytes())?;
        // A server echoes our code (or sends none); anything else means it found fault
        // with something we sent.
        match self.recv()? {
            Incoming::Close(Some(1000) | None) => {}
            other => return Err(bad(format!("expected a close frame (1000), got {other:?}"))),
        }
        if self.rpos != self.rend {
            return Err(bad("bytes after the server's close frame"));
        }
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte)? {
            0 => Ok(()),
            _ => Err(bad("data after the server's close frame")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One echo client over either protocol
// ---------------------------------------------------------------------------------------------

/// A payload plus, for WebSocket servers, its ready-made masked frame, so the client does not
/// spend time masking 16 MiB per message (servers cannot tell a reused mask key).
struct Payload {
    data: Vec<u8>,
    frame: Vec<u8>,
    text: bool,
}

impl Payload {
    fn binary(len: usize, rng: &mut Rng) -> Payload {
        let mut data = vec![0u8; len];
        rng.fill(&mut data);
        let mut frame = Vec::with_capacity(len + 14);
        build_frame(
            &mut frame,
            OP_BINARY,
            &data,
            (rng.next_u64() as u32).to_ne_bytes(),
        );
        Payload {
            data,
            frame,
            text: false,
        }
    }
}

enum Client {
    Tcp { stream: TcpStream, buf: Vec<u8> },
    Ws(Box<WsClient>),
}

impl Client {
    fn open(server: Server, addr: SocketAddr) -> io::Result<Client> {
        if server.is_ws() {
            Ok(Client::Ws(Box::new(WsClient::connect(addr)?)))
        } else {
            Ok(Client::Tcp {
                stream: connect_tcp(addr)?,
                buf: Vec::new(),
            })
        }
    }

    /// Sends one small text message (fresh mask) and checks the echo.
    fn echo_text(&mut self, text: &[u8]) -> io::Result<()> {
        match self {
            Client::Tcp { stream, buf } => tcp_echo(stream, buf, text),
            Client::Ws(ws) => {
                ws.send(OP_TEXT, text)?;
                check_ws_reply(ws, text, true)
            }
        }
    }

    /// Sends a prebuilt payload and checks the echo.
    fn echo(&mut self, p: &Payload) -> io::Result<()> {
        match self {
            Client::Tcp { stream, buf } => tcp_echo(stream, buf, &p.data),
            Client::Ws(ws) => {
                ws.stream.write_all(&p.frame)?;
                check_ws_reply(ws, &p.data, p.text)
            }
        }
    }

    /// Like `echo`, but writes from a second thread while this one reads the reply, so a
    /// 16 MiB message cannot deadlock against a server that echoes while still receiving
    /// (the TCP baseline does). The next message is sent only after this echo is complete.
    fn echo_concurrent(&mut self, p: &Payload) -> io::Result<()> {
        let (mut writer, bytes) = match self {
            Client::Tcp { stream, .. } => (stream.try_clone()?, &p.data),
            Client::Ws(ws) => (ws.stream.try_clone()?, &p.frame),
        };
        thread::scope(|s| {
            let w = s.spawn(move || writer.write_all(bytes));
            let r = match self {
                Client::Tcp { stream, buf } => read_check(stream, buf, &p.data),
                Client::Ws(ws) => check_ws_reply(ws, &p.data, p.text),
            };
            let w = w.join().map_err(|_| bad("writer thread panicked"))?;
            r.and(w)
        })
    }

    /// Ends the connection: the WebSocket close handshake (the server closes TCP first, so the
    /// TIME_WAIT state lands on its side), or for the baseline, which has no close handshake,
    /// an abortive close (SO_LINGER 0, RST). A normal close would leave one TIME_WAIT socket
    /// per connection on our side, and tens of thousands of those make every later connect()
    /// on this machine search longer for a free port: the first `connect` run measured would
    /// slow down the ones after it (seen: 4,300 -> 1,500 conn/s).
    fn close(self) -> io::Result<()> {
        match self {
            Client::Tcp { stream, .. } => set_linger_zero(&stream),
            Client::Ws(ws) => ws.close(),
        }
    }
}

fn check_ws_reply(ws: &mut WsClient, expected: &[u8], text: bool) -> io::Result<()> {
    let got = ws.recv()?;
    let want = if text {
        Incoming::Text
    } else {
        Incoming::Binary
    };
    if got != want {
        return Err(bad(format!("expected a {want:?} reply, got {got:?}")));
    }
    check_same(ws.message(), expected)
}

fn tcp_echo(stream: &mut TcpStream, buf: &mut Vec<u8>, data: &[u8]) -> io::Result<()> {
    stream.write_all(data)?;
    read_check(stream, buf, data)
}

fn read_check(stream: &mut TcpStream, buf: &mut Vec<u8>, expected: &[u8]) -> io::Result<()> {
    if buf.len() < expected.len() {
        buf.resize(expected.len(), 0);
    }
    stream.read_exact(&mut buf[..expected.len()])?;
    check_same(&buf[..expected.len()], expected)
}

fn check_same(got: &[u8], expected: &[u8]) -> io::Result<()> {
    if got.len() != expected.len() {
        return Err(bad(format!(
            "reply is {} bytes, sent {}",
            got.len(),
            expected.len()
        )));
    }
    if got != expected {
        let at = got
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(bad(format!(
            "reply differs from what was sent at byte {at} of {}",
            got.len()
        )));
    }
    Ok(())
}

/// The 16-byte text of message `seq` on connection `conn`: distinct per message, so a
/// duplicated or reordered echo is caught too.
/// Lowercase hex of `(conn << 56) | seq`, written by hand to keep allocation out of the
/// timed loops.
fn small_text(conn: u64, seq: u64) -> [u8; 16] {
    let v = (conn << 56) | (seq & 0x00FF_FFFF_FFFF_FFFF);
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = b"0123456789abcdef"[((v >> (60 - 4 * i)) & 0xF) as usize];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// One line of the result table, filled in server by server.
struct Row {
    label: &'static str,
    unit: &'static str,
    /// Print the ratios to the TCP baseline (not for the memory and thread rows, where the
    /// baseline's figures are those of a server that keeps no state).
    ratios: bool,
    values: [Option<f64>; 3],
}

/// What a timed scenario measured: `units` (messages, MB or connections) over `secs`, and
/// for the rtt scenarios every round-trip time. Tallies of several rounds add up.
#[derive(Default)]
struct Tally {
    units: f64,
    secs: f64,
    /// Round-trip times in ns (rtt scenarios only).
    lat: Vec<u32>,
    /// Messages (or connections) the server handled, untimed warm-ups included.
    ops: f64,
    /// Server CPU time over the whole scenario, setup and close included.
    cpu_secs: f64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.units += other.units;
        self.secs += other.secs;
        self.lat.extend(other.lat);
        self.ops += other.ops;
        self.cpu_secs += other.cpu_secs;
    }

    fn rate(&self) -> f64 {
        self.units / self.secs
    }

    /// Server CPU per message (or connection), in µs.
    fn cpu_us_per_op(&self) -> f64 {
        self.cpu_secs * 1e6 / self.ops
    }

    /// The `p` quantile of the round-trip times in µs (sorts in place).
    fn percentile_us(&mut self, p: f64) -> f64 {
        self.lat.sort_unstable();
        let i = ((self.lat.len() as f64 * p) as usize).min(self.lat.len().saturating_sub(1));
        self.lat.get(i).map_or(f64::NAN, |&ns| ns as f64 / 1e3)
    }
}

/// `conns` connections each doing strict request/response with 16-byte text messages.
fn scenario_rtt(server: Server, addr: SocketAddr, conns: usize, dur: Duration) -> Res<Tally> {
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        clients.push(Client::open(server, addr)?);
    }
    // Everyone starts together after all connections are up, so setup is not timed.
    let barrier = Arc::new(Barrier::new(conns + 1));
    let workers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(id, mut client)| {
            let barrier = barrier.clone();
            thread::spawn(move || -> io::Result<Vec<u32>> {
                // One latency sample per message (u32 ns), preallocated outside the timed loop.
                let mut lat = Vec::with_capacity(if conns == 1 { 1 << 20 } else { 1 << 16 });
                barrier.wait();
                let start = Instant::now();
                let mut seq = 0u64;
                let mut t0 = start;
                loop {
                    client.echo_text(&small_text(id as u64, seq))?;
                    seq += 1;
                    let t1 = Instant::now();
                    lat.push((t1 - t0).as_nanos().min(u32::MAX as u128) as u32);
                    t0 = t1;
                    if t1 - start >= dur {
                        break;
                    }
                }
                client.close()?;
                Ok(lat)
            })
        })
        .collect();
    barrier.wait();
    let mut all = Vec::new();
    let mut first_err = None;
    for w in workers {
        match w.join() {
            Ok(Ok(lat)) => all.extend(lat),
            Ok(Err(e)) => first_err = first_err.or(Some(e.to_string())),
            Err(_) => first_err = first_err.or(Some("client thread panicked".into())),
        }
    }
    if let Some(e) = first_err {
        return Err(e.into());
    }
    // Each connection's samples chain back to back from its start, so their sum is that
    // connection's timed wall time; the close handshakes afterwards are not counted.
    let total_ns: u128 = all.iter().map(|&n| n as u128).sum();
    Ok(Tally {
        units: all.len() as f64,
        secs: total_ns as f64 / 1e9 / conns as f64,
        ops: all.len() as f64,
        lat: all,
        ..Tally::default()
    })
}

/// One connection, back-to-back request/response of `size`-byte binary messages; MB/s of
/// payload echoed (10^6 bytes, one direction). `concurrent` writes from a second thread.
fn scenario_throughput(
    server: Server,
    addr: SocketAddr,
    size: usize,
    dur: Duration,
    max_msgs: usize,
    concurrent: bool,
) -> Res<Tally> {
    let mut rng = Rng::new();
    // A few distinct payloads, cycled, so an echo of the wrong message is noticed.
    let n_payloads = if size > 1 << 20 { 2 } else { 4 };
    let payloads: Vec<Payload> = (0..n_payloads)
        .map(|_| Payload::binary(size, &mut rng))
        .collect();
    let mut client = Client::open(server, addr)?;
    // One untimed warm-up echo: the server's buffers grow to size once.
    client.echo_concurrent(&payloads[0])?;
    let start = Instant::now();
    let mut sent = 0usize;
    while sent < max_msgs && (sent < 2 || start.elapsed() < dur) {
        let p = &payloads[sent % payloads.len()];
        if concurrent {
            client.echo_concurrent(p)?;
        } else {
            client.echo(p)?;
        }
        sent += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    client.close()?;
    Ok(Tally {
        units: (sent * size) as f64 / 1e6,
        secs,
        ops: (sent + 1) as f64,
        ..Tally::default()
    })
}

/// Connection setup and teardown rate: WebSocket connect + handshake + close handshake; for
/// the TCP baseline connect + one 16-byte echo + close.
fn scenario_connect(server: Server, addr: SocketAddr, dur: Duration) -> Res<Tally> {
    let start = Instant::now();
    let mut count = 0u64;
    while count < 2 || start.elapsed() < dur {
        let mut c = Client::open(server, addr).map_err(|e| format!("connection #{count}: {e}"))?;
        if !server.is_ws() {
            c.echo_text(&small_text(0, count))?;
        }
        c.close().map_err(|e| format!("connection #{count}: {e}"))?;
        count += 1;
    }
    Ok(Tally {
        units: count as f64,
        secs: start.elapsed().as_secs_f64(),
        ops: count as f64,
        ..Tally::default()
    })
}

struct Idle {
    kib_open: f64,
    kib_used: f64,
    threads: u64,
}

/// `n` idle connections: server RSS growth per connection right after the handshake (TCP:
/// after one echo), again after each connection echoed one (more) 16-byte message, and the
/// server's thread count with all of them open.
fn scenario_idle(server: Server, proc_: &ServerProc, n: usize) -> Res<Idle> {
    let pid = proc_.pid();
    // The server has not served anyone yet; this is its baseline.
    let [rss0] = proc_status(pid, ["VmRSS:"])?;
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let mut c =
            Client::open(server, proc_.addr).map_err(|e| format!("idle connection #{i}: {e}"))?;
        if !server.is_ws() {
            // The baseline has no handshake to wait for; without a round trip here the loop
            // outruns the server's accept() and overflows its 128-entry backlog, and the
            // dropped SYNs cost a 1 s retransmit each.
            c.echo_text(&small_text(i as u64, 0))
                .map_err(|e| format!("idle connection #{i}: {e}"))?;
        }
        clients.push(c);
    }
    // The TCP baseline's threads are spawned asynchronously after accept; wait until the thread
    // count settles so every connection's thread is counted.
    let settle = || -> Res<[u64; 2]> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = proc_status(pid, ["VmRSS:", "Threads:"])?;
        loop {
            thread::sleep(Duration::from_millis(100));
            let now = proc_status(pid, ["VmRSS:", "Threads:"])?;
            if (now[1] == last[1] && now[1] as usize > n) || Instant::now() > deadline {
                return Ok(now);
            }
            last = now;
        }
    };
    let [rss1, threads] = settle()?;
    // With all of them held, a newcomer must still be served.
    Client::open(server, proc_.addr)
        .and_then(|mut c| {
            c.echo_text(&small_text(n as u64, 0))
                .and_then(|()| c.close())
        })
        .map_err(|e| format!("a new client while {n} are idle: {e}"))?;
    for (i, c) in clients.iter_mut().enumerate() {
        c.echo_text(&small_text(i as u64, 0))
            .map_err(|e| format!("idle connection #{i}: {e}"))?;
    }
    let [rss2, _] = settle()?;
    // Plain drop: the servers see EOF (or a reset) and end the threads; the process is killed
    // right after anyway.
    drop(clients);
    Ok(Idle {
        kib_open: (rss1 as f64 - rss0 as f64) / n as f64,
        kib_used: (rss2 as f64 - rss0 as f64) / n as f64,
        threads,
    })
}

/// Server RSS around a burst of large messages, in KiB.
struct Burst {
    base: u64,
    peak: u64,
    after: u64,
}

/// `conns` connections, all open at once, each echo one `size`-byte binary message per round
/// for `BURST_ROUNDS` rounds, every connection's message in flight together; then all close.
/// The server's RSS before the first connection, its peak (VmHWM: the kernel's record of the
/// highest RSS, so no sampling can miss it), and `settle` after the last close handshake.
fn scenario_burst(
    server: Server,
    proc_: &ServerProc,
    conns: usize,
    size: usize,
    settle: Duration,
) -> Res<Burst> {
    let pid = proc_.pid();
    let [base] = proc_status(pid, ["VmRSS:"])?;
    let payload = Arc::new(Payload::binary(size, &mut Rng::new()));
    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        clients.push(
            Client::open(server, proc_.addr).map_err(|e| format!("burst connection #{i}: {e}"))?,
        );
    }
    let barrier = Arc::new(Barrier::new(conns));
    let workers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let (barrier, payload) = (barrier.clone(), payload.clone());
            thread::spawn(move || -> io::Result<()> {
                // Every thread meets every barrier, even after a failure, so none waits
                // forever for one that gave up.
                let mut result = Ok(());
                for _ in 0..BURST_ROUNDS {
                    barrier.wait();
                    if result.is_ok() {
                        result = client.echo_concurrent(&payload);
                    }
                }
                result.and_then(|()| client.close())
            })
        })
        .collect();
    for (i, w) in workers.into_iter().enumerate() {
        w.join()
            .map_err(|_| "burst client thread panicked".to_string())?
            .map_err(|e| format!("burst connection #{i}: {e}"))?;
    }
    thread::sleep(settle);
    let [after, peak] = proc_status(pid, ["VmRSS:", "VmHWM:"])?;
    Ok(Burst { base, peak, after })
}

// ---------------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        let r = match args.get(i + 1).map(String::as_str) {
            Some("tcp-echo") => serve_tcp_echo(),
            Some("tungstenite") => serve_tungstenite(),
            other => Err(format!("--serve: unknown server {other:?}").into()),
        };
        if let Err(e) = r {
            eprintln!("loadgen --serve: {e}");
            std::process::exit(1);
        }
        return;
    }

    raise_nofile_limit();
    let cfg = Config::from_args(&args);
    let need_fds = cfg.idle_conns as u64 + 64;
    if cfg.scenarios.iter().any(|s| s == "idle") && nofile_limit() < need_fds {
        eprintln!(
            "loadgen: RLIMIT_NOFILE is {} but idle needs ~{need_fds}; run with a higher `ulimit -n` or --idle N",
            nofile_limit()
        );
        std::process::exit(2);
    }
    let big = if cfg.big_max == usize::MAX {
        "no cap".to_string()
    } else {
        format!("at most {}", cfg.big_max)
    };
    eprintln!(
        "loadgen: {} s per scenario in {} round(s), idle {} connections, big 16 MiB messages: {big}{}",
        cfg.secs,
        cfg.rounds,
        cfg.idle_conns,
        if cfg.smoke { " (smoke: checks correctness only)" } else { "" }
    );
    eprintln!("load average at the start: {}", load_average());

    let mut rows: Vec<Row> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut set = |label: &'static str, unit: &'static str, ratios: bool, col: usize, v: f64| {
        let i = rows
            .iter()
            .position(|r| r.label == label)
            .unwrap_or_else(|| {
                rows.push(Row {
                    label,
                    unit,
                    ratios,
                    values: [None; 3],
                });
                rows.len() - 1
            });
        rows[i].values[col] = Some(v);
    };
    let col = |server: Server| Server::ALL.iter().position(|&s| s == server).unwrap();

    for scenario in SCENARIOS
        .iter()
        .filter(|s| cfg.scenarios.iter().any(|c| c == *s))
    {
        if *scenario == "idle" {
            // Not timed, so no rounds: one fresh server each.
            for &server in &cfg.servers {
                eprint!("  idle     {:<12} ", server.name());
                let r = ServerProc::start(server)
                    .and_then(|p| scenario_idle(server, &p, cfg.idle_conns));
                match r {
                    Ok(idle) => {
                        eprintln!(
                            "{} KiB/conn after handshake, {} after an echo, {} threads",
                            fmt_num(idle.kib_open),
                            fmt_num(idle.kib_used),
                            idle.threads
                        );
                        set("idle open", "KiB/conn", false, col(server), idle.kib_open);
                        set("idle used", "KiB/conn", false, col(server), idle.kib_used);
                        set(
                            "idle thr",
                            "threads",
                            false,
                            col(server),
                            idle.threads as f64,
                        );
                    }
                    Err(e) => {
                        eprintln!("FAILED");
                        errors.push(format!("idle against {}: {e}", server.name()));
                    }
                }
            }
            continue;
        }
        if *scenario == "burst" {
            // Like idle: one fresh server each, no rounds (the burst has its own).
            for &server in &cfg.servers {
                eprint!("  burst    {:<12} ", server.name());
                let r = ServerProc::start(server).and_then(|p| {
                    scenario_burst(
                        server,
                        &p,
                        cfg.burst_conns,
                        cfg.burst_size,
                        cfg.burst_settle,
                    )
                });
                match r {
                    Ok(b) => {
                        let mib = |kib: u64| kib as f64 / 1024.0;
                        eprintln!(
                            "RSS {} MiB before, peak {}, {} MiB {:?} after the last close",
                            fmt_num(mib(b.base)),
                            fmt_num(mib(b.peak)),
                            fmt_num(mib(b.after)),
                            cfg.burst_settle
                        );
                        set("burst base", "MiB", false, col(server), mib(b.base));
                        set("burst peak", "MiB", false, col(server), mib(b.peak));
                        set("burst after", "MiB", false, col(server), mib(b.after));
                    }
                    Err(e) => {
                        eprintln!("FAILED");
                        errors.push(format!("burst against {}: {e}", server.name()));
                    }
                }
            }
            continue;
        }

        // Timed scenarios run in rounds that take turns between the servers, each round on
        // a fresh server process, so a burst of load from elsewhere on the machine is spread
        // over all servers instead of landing on whichever ran at that moment.
        let round_dur = cfg.duration() / cfg.rounds as u32;
        let mut tallies: Vec<Option<Tally>> =
            cfg.servers.iter().map(|_| Some(Tally::default())).collect();
        for round in 0..cfg.rounds {
            for (k, &server) in cfg.servers.iter().enumerate() {
                let Some(tally) = tallies[k].as_mut() else {
                    continue;
                };
                let r = ServerProc::start(server).and_then(|p| {
                    let cpu0 = cpu_secs(p.pid())?;
                    let mut t = match *scenario {
                        "rtt1" => scenario_rtt(server, p.addr, 1, round_dur),
                        "rtt32" => scenario_rtt(server, p.addr, 32, round_dur),
                        "mid" => scenario_throughput(
                            server,
                            p.addr,
                            64 << 10,
                            round_dur,
                            usize::MAX,
                            false,
                        ),
                        "big" => scenario_throughput(
                            server,
                            p.addr,
                            16 << 20,
                            round_dur,
                            cfg.big_max,
                            true,
                        ),
                        "connect" => scenario_connect(server, p.addr, round_dur),
                        _ => unreachable!(),
                    }?;
                    t.cpu_secs = cpu_secs(p.pid())? - cpu0;
                    Ok(t)
                });
                match r {
                    Ok(t) => tally.add(t),
                    Err(e) => {
                        eprintln!(
                            "  {scenario:<8} {:<12} FAILED (round {})",
                            server.name(),
                            round + 1
                        );
                        errors.push(format!("{scenario} against {}: {e}", server.name()));
                        tallies[k] = None;
                    }
                }
            }
        }
        for (k, &server) in cfg.servers.iter().enumerate() {
            let Some(mut t) = tallies[k].take() else {
                continue;
            };
            let c = col(server);
            let line = match *scenario {
                "rtt1" => {
                    let (p50, p99) = (t.percentile_us(0.50), t.percentile_us(0.99));
                    set("rtt1", "msg/s", true, c, t.rate());
                    set("rtt1 p50", "µs", true, c, p50);
                    set("rtt1 p99", "µs", true, c, p99);
                    set("rtt1 cpu", "µs/msg", true, c, t.cpu_us_per_op());
                    format!(
                        "{} msg/s, p50 {} µs, p99 {} µs, {} µs CPU/msg",
                        fmt_num(t.rate()),
                        fmt_num(p50),
                        fmt_num(p99),
                        fmt_num(t.cpu_us_per_op())
                    )
                }
                "rtt32" => {
                    set("rtt32", "msg/s", true, c, t.rate());
                    set("rtt32 cpu", "µs/msg", true, c, t.cpu_us_per_op());
                    format!(
                        "{} msg/s, {} µs CPU/msg",
                        fmt_num(t.rate()),
                        fmt_num(t.cpu_us_per_op())
                    )
                }
                "mid" => {
                    set("mid 64K", "MB/s", true, c, t.rate());
                    set("mid cpu", "µs/msg", true, c, t.cpu_us_per_op());
                    format!(
                        "{} MB/s ({} MB echoed), {} µs CPU/msg",
                        fmt_num(t.rate()),
                        fmt_num(t.units),
                        fmt_num(t.cpu_us_per_op())
                    )
                }
                "big" => {
                    set("big 16M", "MB/s", true, c, t.rate());
                    set("big cpu", "ms/msg", true, c, t.cpu_us_per_op() / 1e3);
                    format!(
                        "{} MB/s ({} MB echoed), {} ms CPU/msg",
                        fmt_num(t.rate()),
                        fmt_num(t.units),
                        fmt_num(t.cpu_us_per_op() / 1e3)
                    )
                }
                "connect" => {
                    set("connect", "conn/s", true, c, t.rate());
                    set("connect cpu", "µs/conn", true, c, t.cpu_us_per_op());
                    format!(
                        "{} conn/s ({} connections), {} µs CPU/conn",
                        fmt_num(t.rate()),
                        t.units,
                        fmt_num(t.cpu_us_per_op())
                    )
                }
                _ => unreachable!(),
            };
            eprintln!("  {scenario:<8} {:<12} {line}", server.name());
        }
    }

    eprintln!("load average at the end: {}", load_average());
    print_table(&rows);
    if !errors.is_empty() {
        eprintln!("\nloadgen: {} failure(s):", errors.len());
        for e in &errors {
            eprintln!("  {e}");
        }
        std::process::exit(1);
    }
}

/// The first three fields of /proc/loadavg: the machine has 2 cores, so anything much above
/// 2 means something else was competing with the benchmark.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn print_table(rows: &[Row]) {
    let cell = |v: Option<f64>| v.map_or("-".to_string(), fmt_num);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
        _ => "-".to_string(),
    };
    println!();
    println!(
        "{:<11} {:>9} {:>11} {:>11} {:>12} {:>11} {:>15} {:>15}",
        "scenario",
        "unit",
        "tcp",
        "pure-ws",
        "tungstenite",
        "pure-ws/tcp",
        "tungstenite/tcp",
        "pure-ws/tungst."
    );
    for r in rows {
        let [tcp, pws, tung] = r.values;
        let (a, b) = if r.ratios {
            (ratio(pws, tcp), ratio(tung, tcp))
        } else {
            ("-".into(), "-".into())
        };
        println!(
            "{:<11} {:>9} {:>11} {:>11} {:>12} {:>11} {:>15} {:>15}",
            r.label,
            r.unit,
            cell(tcp),
            cell(pws),
            cell(tung),
            a,
            b,
            ratio(pws, tung)
        );
    }
}
