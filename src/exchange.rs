//! The HTTP phase of a connection: read the request head within the handshake timeout,
//! parse it, and answer it with the page, an HTTP error, or the upgrade to a WebSocket
//! session.

use std::ops::Range;
use std::time::Instant;

use crate::config::Config;
use crate::connection_log::{ConnectionLog, Ending, Stage};
use crate::forwarded;
use crate::handshake;
use crate::http::{self, Body, HeadReader, Rejection, Request, Route};
use crate::page::PAGE;
use crate::record::Direction;
use crate::session::Upgrade;
use crate::socket::{is_timeout, set_connection_options, time_left, Wire, ACCEPT_INHERITS_OPTIONS};
use crate::trace;
use crate::Status;

/// The read buffer a connection starts with: an idle connection holds little, and the
/// session doubles it while reads keep filling it.
const FIRST_READ_SIZE: usize = 4 * 1024;

/// Serves one connection from accept to close: the request, then the page, an error, or
/// the WebSocket session.
pub fn serve(wire: &mut Wire, config: &Config, log: &mut ConnectionLog) -> Ending {
    if !ACCEPT_INHERITS_OPTIONS {
        if let Err(err) = set_connection_options(wire.stream(), config) {
            return Ending::SetupFailed(err);
        }
    }
    let mut buf = vec![0; FIRST_READ_SIZE];
    let (reader, pending) = match read_head(wire, &mut buf, config, log) {
        Ok(head) => head,
        Err(ending) => return ending,
    };
    if log.tracing() {
        for line in trace::head_trace(Direction::Received, reader.head()) {
            log.trace(&line);
        }
    }
    let request = match Request::parse(reader.head()) {
        Ok(request) => request,
        Err(rejection) => return refuse(wire, rejection, Body::Included, log, config),
    };
    log.stage = Stage::Request(request.body());
    log.path = request.path.to_string();
    log.client = forwarded::client_address(&request, log.peer.ip(), &config.trusted_proxies);
    match request.route() {
        Route::Upgrade => match handshake::validate(&request, &config.handshake_policy()) {
            Ok(accepted) => {
                let upgrade = Upgrade {
                    accepted: &accepted,
                    request_head: reader.head(),
                };
                upgrade.run(wire, buf, pending, config, log)
            }
            Err(rejection) => refuse(wire, rejection, request.body(), log, config),
        },
        Route::Page => {
            let head = http::Head {
                status: (200, "OK"),
                content_type: "text/html; charset=utf-8",
                connection: "close",
                extra: "Cache-Control: no-cache\r\n",
            };
            let page = head.response(PAGE.as_bytes(), request.body());
            send_and_close(wire, &page, log, config);
            Ending::PageServed
        }
        Route::Refuse(rejection) => refuse(wire, rejection, request.body(), log, config),
    }
}

/// Reads the request head into a [`HeadReader`], and returns it with the range of `buf`
/// that arrived behind the head (frames a client sent without waiting for the answer).
///
/// The handshake timeout is a total, not a per-read limit: a client dribbling one byte at
/// a time (slowloris) is cut off all the same.
fn read_head(
    wire: &mut Wire,
    buf: &mut [u8],
    config: &Config,
    log: &mut ConnectionLog,
) -> Result<(HeadReader, Range<usize>), Ending> {
    let mut reader = HeadReader::new(config.max_head_bytes, config.max_header_lines);
    let deadline = Instant::now() + config.handshake_timeout;
    // The first read waits as long as the connection's options say (at most the handshake
    // timeout); a later one only what is left of it.
    let mut reads = 0;
    loop {
        let Some(left) = time_left(deadline) else {
            let timeout = Rejection::RequestTimeout;
            return Err(refuse(wire, timeout, Body::Included, log, config));
        };
        reads += 1;
        let read = if reads == 1 {
            wire.read(buf)
        } else {
            wire.read_within(buf, Some(left))
        };
        let n = match read {
            Ok(0) => return Err(Ending::GoneBeforeRequest),
            Ok(n) => n,
            Err(err) if is_timeout(&err) => continue,
            Err(err) => return Err(Ending::ReadFailed(err)),
        };
        match reader.push(&buf[..n]) {
            Ok(Status::Complete(head_end)) => return Ok((reader, head_end..n)),
            Ok(Status::Partial) => {}
            Err(rejection) => return Err(refuse(wire, rejection, Body::Included, log, config)),
        }
    }
}

/// Answers with an HTTP error and closes. The trace says which rule refused the request,
/// and shows the response head.
fn refuse(
    wire: &mut Wire,
    rejection: Rejection,
    body: Body,
    log: &mut ConnectionLog,
    config: &Config,
) -> Ending {
    let response = rejection.response(body);
    if log.tracing() {
        let (code, reason) = rejection.status();
        log.trace(&format!(
            "refused: {code} {reason}: {}",
            rejection.message()
        ));
        for line in trace::head_trace(Direction::Sent, &response) {
            log.trace(&line);
        }
    }
    send_and_close(wire, &response, log, config);
    Ending::Refused(rejection)
}

/// Sends a whole HTTP response and closes: one plain request per connection.
fn send_and_close(wire: &mut Wire, response: &[u8], log: &mut ConnectionLog, config: &Config) {
    if wire.send(response, &[]).is_ok() {
        log.stage = Stage::Answered;
        wire.linger_close(config.close_timeout);
    }
}
