//! `cargo run --example learn -- SCENARIO [--url ws://HOST:PORT/PATH]`: a raw WebSocket
//! client for learning the protocol. It makes one of the hard cases of RFC 6455 happen on
//! a real connection and prints each byte both ways, decoded; run the server with
//! `--trace` beside it to see the same frames from the other end. The scenarios are in
//! `scenarios.rs`; this file maps the command line to them, and results to exit codes:
//! 0 when the scenario ran to the end, 1 when it could not (no server, no answer, a
//! broken rule), 2 for a usage error.

mod scenarios;

use std::io::Write as _;
use std::process::ExitCode;

use scenarios::Command;

fn main() -> ExitCode {
    // Arguments that are not UTF-8 are kept, lossily, so they are reported, not a panic.
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    let (scenario, url) = match scenarios::parse_args(args) {
        Ok(Command::Run { scenario, url }) => (scenario, url),
        Ok(Command::Help) => {
            print!("{}", scenarios::usage());
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("learn: {message}\n\n{}", scenarios::usage());
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    match scenarios::run(scenario, &url, &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = out.flush();
            eprintln!("learn: {message}");
            ExitCode::FAILURE
        }
    }
}
