//! The WebSocket session: after the `101`, read bytes into the protocol, write what comes
//! out, and keep the peer alive with pings. Every protocol decision is the protocol's;
//! this module only moves bytes and keeps time.

use std::io;
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::close::{CloseCode, ClosePayload};
use crate::config::Config;
use crate::connection_log::{ConnectionLog, Ending, Stage};
use crate::echo;
use crate::handshake::{self, AcceptSteps, Accepted};
use crate::inspect::{self, Command, Inspector};
use crate::message::{Delivery, Event, MessageKind};
use crate::protocol::{Protocol, State};
use crate::record::{Direction, FrameRecord, Record};
use crate::socket::{is_timeout, time_left, Wire};
use crate::trace;

/// The read buffer starts small (an idle connection holds little) and doubles, up to the
/// maximum, while reads keep filling it, so a busy connection takes many frames per syscall.
const MAX_READ_SIZE: usize = 64 * 1024;
/// Reply payloads up to this size are copied behind their header so that all the replies
/// to one read go out in one write; larger ones are written from the message buffer.
const COPY_LIMIT: usize = 16 * 1024;
/// Reply buffers larger than this are freed after they are written.
const RETAINED_OUT_CAPACITY: usize = 256 * 1024;

/// A handshake that was accepted, with the request head it came in.
pub struct Upgrade<'a> {
    /// What the `101` carries.
    pub accepted: &'a Accepted,
    /// The request head, for the inspector's first message.
    pub request_head: &'a [u8],
}

impl Upgrade<'_> {
    /// Completes the upgrade and runs the WebSocket session until it ends, starting with
    /// the bytes in `buf[pending]` (frames sent right behind the request).
    pub fn run(
        &self,
        wire: &mut Wire,
        buf: Vec<u8>,
        pending: Range<usize>,
        config: &Config,
        log: &mut ConnectionLog,
    ) -> Ending {
        log.subprotocol = self.accepted.subprotocol.clone();
        let response = handshake::switching_protocols(self.accepted);
        if let Err(err) = wire.send(&response, &[]) {
            return Ending::HandshakeFailed(err);
        }
        log.stage = Stage::WebSocket;
        let inspecting = self.accepted.subprotocol.as_deref() == Some(inspect::SUBPROTOCOL);
        let steps = (log.tracing() || inspecting).then(|| AcceptSteps::new(&self.accepted.key));
        if let Some(steps) = &steps {
            for line in trace::accept_trace(steps) {
                log.trace(&line);
            }
            for line in trace::head_trace(Direction::Sent, &response) {
                log.trace(&line);
            }
        }
        let mut session = Session::new(wire, config, log);
        if let (true, Some(steps)) = (inspecting, &steps) {
            session.inspect(&inspect::handshake_json(
                self.request_head,
                steps,
                &response,
            ));
        }
        session.run(buf, pending)
    }
}

/// Where `out` stood before the protocol acted (see [`Session::observe`]).
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: usize,
    /// No close frame of ours was queued before `at`.
    open: bool,
}

/// Whether the peer is keeping its side of the connection alive.
#[derive(Clone, Copy, Debug)]
enum Liveness {
    /// Heard from within the last ping interval.
    Active,
    /// Silent for a whole ping interval: a ping is out.
    PingSent,
    /// Silent for another interval: our close frame is out, and the peer has until
    /// `deadline` to answer it.
    Closing { deadline: Instant },
}

/// One WebSocket connection in the shell: reads bytes into the protocol, writes what comes
/// out, keeps time.
struct Session<'c> {
    wire: &'c mut Wire,
    config: &'c Config,
    log: &'c mut ConnectionLog,
    protocol: Protocol,
    out: Vec<u8>,
    liveness: Liveness,
    /// When the peer last sent bytes, or we last pinged it.
    quiet_since: Instant,
    /// The first thing that decided how the connection ends.
    ending: Option<Ending>,
    /// The frame inspector, when the peer selected its subprotocol.
    inspector: Option<Inspector>,
}

impl<'c> Session<'c> {
    fn new(wire: &'c mut Wire, config: &'c Config, log: &'c mut ConnectionLog) -> Session<'c> {
        let mut protocol = Protocol::new(config.max_message_size);
        if log.tracing() {
            protocol.record();
        }
        Session {
            wire,
            config,
            log,
            protocol,
            out: Vec::new(),
            liveness: Liveness::Active,
            quiet_since: Instant::now(),
            ending: None,
            inspector: None,
        }
    }

    /// Turns the frame inspector on, and queues its first message, `greeting`.
    fn inspect(&mut self, greeting: &str) {
        self.protocol.record();
        self.inspector = Some(Inspector::default());
        let start = self.out.len();
        if self
            .protocol
            .send_header(MessageKind::Text, greeting.len(), &mut self.out)
            .is_ok()
        {
            let sent = FrameRecord::sent(&self.out[start..], &[greeting.as_bytes()]);
            self.log.trace(&trace::inspector_line(&sent));
            self.out.extend_from_slice(greeting.as_bytes());
        }
    }

    /// Where `out` stands now, and whether the connection is still open.
    fn mark(&self) -> Mark {
        Mark {
            at: self.out.len(),
            open: self.protocol.state() == State::Open,
        }
    }

    /// Hands what the protocol recorded since `mark` to the trace and the inspector. The
    /// inspector's messages about control frames go in ahead of the protocol's answers,
    /// queued from `mark`; once our close frame was queued before `mark`, they are dropped
    /// (RFC 6455 §5.5.1: no data frame after a close). The trace shows the lines in the
    /// order their bytes crossed the wire.
    fn observe(&mut self, mark: Mark) {
        let records = self.protocol.take_records();
        let mut inserted = Vec::new();
        if let Some(inspector) = &mut self.inspector {
            let messages = inspector.control_messages(&records);
            if !messages.is_empty() && mark.open {
                inserted = Inspector::insert_before(&messages, mark.at, &mut self.out);
            }
        }
        // What arrived comes first; the inspector's messages go out ahead of the answers.
        let answers = records
            .iter()
            .position(|r| matches!(r, Record::Frame(f) if f.direction == Direction::Sent))
            .unwrap_or(records.len());
        for record in &records[..answers] {
            self.log.trace(&trace::record_line(record));
        }
        for frame in &inserted {
            self.log.trace(&trace::inspector_line(frame));
        }
        for record in &records[answers..] {
            self.log.trace(&trace::record_line(record));
        }
    }

    /// Runs the connection, starting with the bytes in `buf[pending]`, until it ends.
    fn run(mut self, buf: Vec<u8>, pending: Range<usize>) -> Ending {
        if let Err(err) = self.serve(buf, pending) {
            self.end(if is_timeout(&err) {
                Ending::WriteTimedOut
            } else {
                Ending::Io(err)
            });
        }
        self.ending.unwrap_or(Ending::Abnormal)
    }

    /// The read-process-write loop, until the protocol reads no more or our close frame
    /// goes unanswered.
    fn serve(&mut self, mut buf: Vec<u8>, mut pending: Range<usize>) -> io::Result<()> {
        if !pending.is_empty() {
            self.protocol.record_read(&buf[pending.clone()], true);
        }
        loop {
            self.process(&mut buf[pending])?;
            self.flush()?;
            // RFC 6455 §7.1.1: "when a server is instructed to _Close the WebSocket
            // Connection_ it SHOULD initiate a TCP Close immediately". pure-ws sends its FIN
            // as soon as the close handshake is over or the connection failed, then drains
            // what the peer may still send (a late pong behind its close frame, anything
            // after a failure), so a reset cannot destroy our last frame.
            match self.protocol.state() {
                State::Closed | State::Failed => {
                    self.wire.linger_close(self.config.close_timeout);
                    return Ok(());
                }
                State::Open | State::Closing => {}
            }
            match self.read(&mut buf)? {
                Some(arrived) => pending = 0..arrived,
                None => return Ok(()),
            }
        }
    }

    /// Hands `input` to the protocol and answers every message in it.
    fn process(&mut self, input: &mut [u8]) -> io::Result<()> {
        let mut at = 0;
        while at < input.len() {
            let mark = self.mark();
            let (used, event) = self.protocol.receive(&mut input[at..], &mut self.out);
            self.observe(mark);
            match event {
                Some(Event::Message(delivery)) => self.echo(&delivery)?,
                Some(Event::Closed { code }) => self.end(Ending::ClosedByPeer(code)),
                Some(Event::Failed(err)) => self.end(Ending::Failed(err)),
                Some(Event::Abnormal) | None => {}
            }
            at += used;
        }
        Ok(())
    }

    /// Queues the reply to a message. A small payload is copied behind its header, so all
    /// the replies to one read go out in one write; a large one is written from where it
    /// lies, behind what is queued, in one vectored write. With the inspector, a command
    /// is obeyed instead, and an echo goes out described.
    fn echo(&mut self, delivery: &Delivery) -> io::Result<()> {
        let Some(message) = self.protocol.message(delivery) else {
            return Ok(());
        };
        self.log.messages_in += 1;
        if let Some(command) = self.inspector.as_ref().and_then(|_| Command::of(&message)) {
            self.obey(command);
            return Ok(());
        }
        let reply = echo::reply(self.config.echo, &message);
        if let Some(inspector) = &mut self.inspector {
            let (described, echoed) = inspector.echo(&self.protocol, &reply, &mut self.out);
            if let Some(frame) = &described {
                self.log.trace(&trace::inspector_line(frame));
            }
            for frame in &echoed {
                self.log.trace(&trace::frame_line(frame));
            }
            self.log.messages_out += u64::from(!echoed.is_empty());
            return Ok(());
        }
        let start = self.out.len();
        if self
            .protocol
            .send_header(reply.kind, reply.len(), &mut self.out)
            .is_err()
        {
            return Ok(());
        }
        if self.log.tracing() {
            let sent = FrameRecord::sent(&self.out[start..], &[reply.prefix, reply.payload]);
            self.log.trace(&trace::frame_line(&sent));
        }
        self.out.extend_from_slice(reply.prefix);
        if reply.payload.len() <= COPY_LIMIT {
            self.out.extend_from_slice(reply.payload);
        } else {
            self.wire.send(&self.out, reply.payload)?;
            self.out.clear();
        }
        self.log.messages_out += 1;
        Ok(())
    }

    /// One write for everything a read produced: replies, pongs and close frames.
    fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.wire.send(&self.out, &[])?;
        if self.protocol.state() != State::Open {
            self.log.stage = Stage::Closing;
        }
        self.out.clear();
        if self.out.capacity() > RETAINED_OUT_CAPACITY {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Waits for bytes, keeping the peer alive with pings meanwhile. Returns how many bytes
    /// arrived at the start of `buf` (0 after a timeout or the peer's EOF), or `None` when
    /// our close frame went unanswered in time.
    fn read(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let wait = match self.liveness {
            Liveness::Active | Liveness::PingSent => self
                .config
                .ping_interval
                .map(|interval| self.until_due(interval)),
            Liveness::Closing { deadline } => match time_left(deadline) {
                Some(left) => Some(left),
                None => {
                    // It replaces why we closed: the close went unanswered too.
                    self.ending = Some(Ending::CloseTimeout);
                    return Ok(None);
                }
            },
        };
        // A large message buffer kept for the next message goes back soon after the
        // connection goes quiet.
        let release = self.config.spare_memory_timeout;
        let timeout = match wait {
            _ if !self.protocol.holds_spare_memory() => wait,
            Some(wait) => Some(wait.min(release)),
            None => Some(release),
        };
        match self.wire.read_within(buf, timeout) {
            Ok(0) => {
                if let Some(Event::Abnormal) = self.protocol.receive_eof() {
                    self.end(Ending::Abnormal);
                }
                Ok(Some(0))
            }
            Ok(n) => {
                self.protocol.record_read(&buf[..n], false);
                self.arrived(n, buf);
                Ok(Some(n))
            }
            Err(err) if is_timeout(&err) => {
                self.silence();
                Ok(Some(0))
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(Some(0)),
            Err(err) => Err(err),
        }
    }

    /// `n` bytes arrived: the peer is alive. A read that filled the buffer doubles it, up
    /// to the maximum, so a busy connection takes many frames per syscall.
    fn arrived(&mut self, n: usize, buf: &mut Vec<u8>) {
        self.quiet_since = Instant::now();
        if let Liveness::PingSent = self.liveness {
            self.liveness = Liveness::Active;
        }
        if n == buf.len() && buf.len() < MAX_READ_SIZE {
            buf.resize(buf.len() * 2, 0);
        }
    }

    /// How long to wait before a ping is due: the whole `interval` while the peer spoke
    /// within the last second (a constant, so the socket's timeout does not change from
    /// message to message), else what is left of it (after a wait that ended early).
    fn until_due(&self, interval: Duration) -> Duration {
        let left = interval.saturating_sub(self.quiet_since.elapsed());
        if left + Duration::from_secs(1) >= interval {
            interval
        } else {
            left.max(Duration::from_millis(1))
        }
    }

    /// A read timed out: spare memory goes back, and once the peer has been silent for a
    /// whole ping interval, it is kept alive. A read may end before that (to hand memory
    /// back, or on the socket's first timeout), so the silence is measured, not assumed.
    fn silence(&mut self) {
        self.protocol.release_spare_memory();
        let due = self
            .config
            .ping_interval
            .is_some_and(|interval| self.quiet_since.elapsed() >= interval);
        if due {
            let mark = self.mark();
            self.ping_or_close();
            self.observe(mark);
        }
    }

    /// Does what the page asked on the inspector's subprotocol: says it heard, then pings,
    /// notes that the next echo goes in three frames, or starts the close handshake.
    fn obey(&mut self, command: Command) {
        if let Some(inspector) = &mut self.inspector {
            if let Some(frame) = inspector.acknowledge(command, &self.protocol, &mut self.out) {
                self.log.trace(&trace::inspector_line(&frame));
            }
        }
        let mark = self.mark();
        match command {
            Command::Ping => {
                let _ = self.protocol.send_ping(inspect::PAGE_PING, &mut self.out);
            }
            Command::Fragment => {}
            Command::Close => {
                let payload = ClosePayload {
                    code: CloseCode::NORMAL,
                    reason: inspect::PAGE_CLOSE,
                };
                self.start_close(payload, Ending::ClosedOnRequest);
            }
        }
        self.observe(mark);
    }

    /// Pings a silent peer, or closes with 1001 when it stayed silent after the ping.
    fn ping_or_close(&mut self) {
        match self.liveness {
            Liveness::Active => {
                if self.protocol.send_ping(b"keepalive", &mut self.out).is_ok() {
                    self.liveness = Liveness::PingSent;
                    self.quiet_since = Instant::now();
                }
            }
            Liveness::PingSent => {
                let payload = ClosePayload {
                    code: CloseCode::GOING_AWAY,
                    reason: "ping timeout",
                };
                self.start_close(payload, Ending::PingTimeout);
            }
            Liveness::Closing { .. } => {}
        }
    }

    /// Starts the close handshake from our side, for the reason `ending` gives.
    fn start_close(&mut self, payload: ClosePayload, ending: Ending) {
        if self.protocol.close(payload, &mut self.out).is_ok() {
            self.end(ending);
            // RFC 6455 §5.5.1: "After both sending and receiving a Close message, an
            // endpoint considers the WebSocket connection closed and MUST close the
            // underlying TCP connection." So a close we start waits for the peer's;
            // pure-ws waits at most the close timeout, then drops the connection.
            let deadline = Instant::now() + self.config.close_timeout;
            self.liveness = Liveness::Closing { deadline };
        }
    }

    /// Records how the connection ends, unless something decided it already.
    fn end(&mut self, ending: Ending) {
        self.ending.get_or_insert(ending);
    }
}
