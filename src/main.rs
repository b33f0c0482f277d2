//! The command line: parse arguments into a `Config`, start the server, map errors to exit codes.

use std::io::Write as _;
use std::net::{IpAddr, Ipv6Addr};
use std::process::ExitCode;
use std::time::Duration;

use pure_ws::echo::EchoMode;
use pure_ws::{Config, Server};

const USAGE: &str = "\
Usage: pure-ws [OPTIONS]

A WebSocket echo server (RFC 6455). Open http://HOST:PORT in a browser to try it.

Options:
      --host ADDR                 address to listen on: IPv4, IPv6 (::1 or [::1]) or a
                                  host name [default: 127.0.0.1]
      --port PORT                 port to listen on, 0 for any free port [default: the
                                  PORT environment variable if set, else 4000]
      --echo prefix|exact         reply 'Server got: ' + message, or the message unchanged
                                  [default: prefix]
      --max-message-size BYTES    largest message accepted; larger ones are closed with
                                  1009 [default: 16777216]
      --max-connections N         open connections at most; more get 503 [default: 10000]
      --handshake-timeout SECS    time to send a complete request head [default: 10]
      --ping-interval SECS        ping a silent client after SECS and close it with 1001
                                  after SECS more; 0 disables [default: 30]
      --allowed-origin ORIGIN     accept WebSocket handshakes only from this Origin
                                  (repeatable); without it any origin is accepted
      --subprotocol NAME          select only this subprotocol (repeatable): the client's
                                  first offer in the list; without it the client's first
                                  offer is selected
      --trusted-proxy ADDR        IP address of a reverse proxy whose X-Forwarded-For or
                                  Forwarded header names the client in the log (repeatable)
      --quiet                     no log line per connection
      --trace                     log each handshake step, each read, each frame both
                                  ways and each failure's reason to stderr, a line each
  -h, --help                      print this help
  -V, --version                   print the version
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

/// Parses the arguments; `env_port` is the `PORT` environment variable, used when no
/// `--port` is given (the convention of container platforms).
fn parse_args<I: IntoIterator<Item = String>>(
    args: I,
    env_port: Option<String>,
) -> Result<Command, String> {
    let mut config = Config::default();
    let mut port = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--quiet" => config.quiet = true,
            "--trace" => config.trace = true,
            "--host" => config.host = host(&value()?)?,
            "--port" => port = Some(number(&flag, &value()?)?),
            "--echo" => {
                config.echo = match value()?.as_str() {
                    "prefix" => EchoMode::Prefix,
                    "exact" => EchoMode::Exact,
                    other => return Err(format!("--echo must be prefix or exact, not '{other}'")),
                }
            }
            "--max-message-size" => config.max_message_size = number(&flag, &value()?)?,
            "--max-connections" => {
                config.max_connections = number(&flag, &value()?)?;
                if config.max_connections == 0 {
                    return Err("--max-connections must be at least 1".to_string());
                }
            }
            "--handshake-timeout" => {
                config.handshake_timeout =
                    seconds(&flag, &value()?)?.ok_or("--handshake-timeout must be more than 0")?;
            }
            "--ping-interval" => config.ping_interval = seconds(&flag, &value()?)?,
            "--allowed-origin" => config.allowed_origins.push(value()?),
            "--subprotocol" => config.subprotocols.push(subprotocol(&value()?)?),
            "--trusted-proxy" => config.trusted_proxies.push(ip_address(&flag, &value()?)?),
            _ => return Err(format!("unknown option '{flag}'")),
        }
    }
    config.port = match port {
        Some(port) => port,
        None => env_port.map_or(Ok(config.port), |env| port_from_env(&env))?,
    };
    Ok(Command::Run(Box::new(config)))
}

/// The `PORT` environment variable as a port; set but invalid is an error, not a default.
fn port_from_env(value: &str) -> Result<u16, String> {
    value.parse().map_err(|_| {
        format!("the PORT environment variable must be a port number 0-65535, not '{value}'")
    })
}

/// A `--host` value: `[::1]` is taken as `::1`, as it is written in URLs.
fn host(value: &str) -> Result<String, String> {
    match value.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
            .map(|v6| v6.to_string())
            .ok_or_else(|| format!("--host in brackets must be an IPv6 address, not '{value}'")),
        None if value.is_empty() => Err("--host needs an address".to_string()),
        None => Ok(value.to_string()),
    }
}

/// A `--subprotocol` value. RFC 6455 §4.1: subprotocol names are tokens (§11.3.4:
/// `1#token`), so anything else could never be offered by a client and is refused here.
fn subprotocol(value: &str) -> Result<String, String> {
    if pure_ws::grammar::is_token(value) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "--subprotocol takes a token (letters, digits and !#$%&'*+-.^_`|~), not '{value}'"
        ))
    }
}

/// An IP address, IPv6 with or without brackets.
fn ip_address(flag: &str, value: &str) -> Result<IpAddr, String> {
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    bare.parse()
        .map_err(|_| format!("{flag} takes an IP address, not '{value}'"))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} takes a whole number, not '{value}'"))
}

/// Seconds as a duration; `None` for 0.
fn seconds(flag: &str, value: &str) -> Result<Option<Duration>, String> {
    let secs: f64 = value
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s <= 1e9)
        .ok_or_else(|| format!("{flag} takes a number of seconds, not '{value}'"))?;
    Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs)))
}

fn main() -> ExitCode {
    return_freed_large_buffers_to_the_os();
    // A PORT that is not UTF-8 is kept (lossily) so that it is reported, not ignored.
    let env_port = std::env::var_os("PORT").map(|port| port.to_string_lossy().into_owned());
    let config = match parse_args(std::env::args().skip(1), env_port) {
        Ok(Command::Run(config)) => *config,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("pure-ws {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("pure-ws: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listen = config.listen_address();
    let server = match Server::bind(config.clone()) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("pure-ws: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match server.local_addr() {
        Ok(addr) => say(&format!("pure-ws listening on http://{addr}")),
        Err(err) => {
            eprintln!("pure-ws: cannot read the listening address: {err}");
            return ExitCode::FAILURE;
        }
    }
    say(&describe_limits(&config));
    match server.run() {
        Ok(never) => match never {},
        Err(err) => {
            eprintln!("pure-ws: cannot serve: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a startup line. Whoever started the server may have closed its stdout after
/// reading the address; that must not stop the server, so a failed write is ignored.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Makes freed buffers of 128 KiB and more go back to the OS at once, so a burst of large
/// messages does not leave the server tens of MiB larger after its connections are gone.
///
/// glibc's malloc maps such a buffer with `mmap` and unmaps it when it is freed, but each
/// such free raises that threshold (up to 32 MiB), so later multi-MiB buffers come from
/// per-thread arenas, which keep the memory. Setting the threshold once turns the raising
/// off. The price: a large buffer freed is gone, and the next one is fresh pages the kernel
/// zeroes; so the protocol keeps a connection's message buffer while the connection is
/// busy, and hands one over 256 KiB back once it goes quiet.
///
/// A threshold the user set (`MALLOC_MMAP_THRESHOLD_`, or `glibc.malloc.mmap_threshold` in
/// `GLIBC_TUNABLES`) is theirs to choose and is left alone; the other malloc settings
/// (`MALLOC_ARENA_MAX`, ...) are not touched and keep working.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_freed_large_buffers_to_the_os() {
    use std::ffi::c_int;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    const M_MMAP_THRESHOLD: c_int = -3;
    let user_set = std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
        || std::env::var("GLIBC_TUNABLES")
            .is_ok_and(|tunables| tunables.contains("glibc.malloc.mmap_threshold"));
    if !user_set {
        // SAFETY: mallopt takes plain integers, no pointer; glibc checks the value and
        // locks its arenas itself. Called first thing in main, before any other thread.
        unsafe { mallopt(M_MMAP_THRESHOLD, 128 * 1024) };
    }
}

/// Nothing to set elsewhere: musl's malloc, for one, unmaps large buffers when freed.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_freed_large_buffers_to_the_os() {}

fn describe_limits(config: &Config) -> String {
    let ping = match config.ping_interval {
        Some(interval) => format!("{}s", interval.as_secs_f64()),
        None => "off".to_string(),
    };
    let list = |items: &[String], none: &str| match items {
        [] => none.to_string(),
        items => items.join(" "),
    };
    let origins = list(&config.allowed_origins, "any");
    let subprotocols = list(&config.subprotocols, "any");
    let proxies: Vec<String> = config
        .trusted_proxies
        .iter()
        .map(|p| p.to_string())
        .collect();
    let proxies = list(&proxies, "none");
    // Only the echo mode is lowercased: subprotocol names are case-sensitive.
    let echo = format!("{:?}", config.echo).to_lowercase();
    format!(
        "echo {echo}; max message {} bytes; max connections {}; handshake timeout {}s; \
         ping interval {ping}; origins {origins}; subprotocols {subprotocols}; \
         trusted proxies {proxies}",
        config.max_message_size,
        config.max_connections,
        config.handshake_timeout.as_secs_f64(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| s.to_string()), None)
    }

    fn config(args: &[&str], env_port: Option<&str>) -> Result<Config, String> {
        match parse_args(
            args.iter().map(|s| s.to_string()),
            env_port.map(String::from),
        )? {
            Command::Run(config) => Ok(*config),
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        assert_eq!(parse(&[]), Ok(Command::Run(Box::default())));
    }

    #[test]
    fn parses_every_option() {
        let Ok(Command::Run(config)) = parse(&[
            "--host",
            "0.0.0.0",
            "--port=0",
            "--echo",
            "exact",
            "--max-message-size",
            "100",
            "--max-connections",
            "5",
            "--handshake-timeout",
            "1.5",
            "--ping-interval",
            "0",
            "--allowed-origin",
            "http://a",
            "--allowed-origin=http://b",
            "--subprotocol",
            "chat",
            "--subprotocol=v2.json",
            "--trusted-proxy",
            "10.0.0.1",
            "--trusted-proxy=[::1]",
            "--quiet",
            "--trace",
        ]) else {
            panic!("should parse");
        };
        assert_eq!(config.host, "0.0.0.0");
        assert_eq!(config.port, 0);
        assert_eq!(config.echo, EchoMode::Exact);
        assert_eq!(config.max_message_size, 100);
        assert_eq!(config.max_connections, 5);
        assert_eq!(config.handshake_timeout, Duration::from_millis(1500));
        assert_eq!(config.ping_interval, None);
        assert_eq!(config.allowed_origins, ["http://a", "http://b"]);
        assert_eq!(config.subprotocols, ["chat", "v2.json"]);
        let proxies: [IpAddr; 2] = ["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(config.trusted_proxies, proxies);
        assert!(config.quiet);
        assert!(config.trace);
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        for args in [
            &["--bogus"][..],
            &["--port"],
            &["--port", "70000"],
            &["--echo", "loud"],
            &["--max-connections", "0"],
            &["--handshake-timeout", "0"],
            &["--ping-interval", "-1"],
            &["--ping-interval", "NaN"],
            &["--subprotocol", ""],
            &["--subprotocol", "two words"],
            &["--subprotocol", "a,b"],
            &["--subprotocol", "caf\u{e9}"],
            &["--trusted-proxy", "proxy.example"],
            &["--trusted-proxy", "10.0.0.1/8"],
            &["--host", "[127.0.0.1]"],
            &["--host", "[::1"],
            &["--host", ""],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
        assert_eq!(parse(&["-h"]), Ok(Command::Help));
        assert_eq!(parse(&["-V"]), Ok(Command::Version));
    }

    #[test]
    fn hosts_take_ipv6_with_or_without_brackets() {
        assert_eq!(config(&["--host", "::1"], None).unwrap().host, "::1");
        assert_eq!(config(&["--host", "[::1]"], None).unwrap().host, "::1");
        assert_eq!(config(&["--host=[::]"], None).unwrap().host, "::");
        assert_eq!(
            config(&["--host", "localhost"], None).unwrap().host,
            "localhost"
        );
    }

    #[test]
    fn the_port_environment_variable_applies_without_port() {
        assert_eq!(config(&[], Some("8080")).unwrap().port, 8080);
        assert_eq!(config(&[], Some("0")).unwrap().port, 0);
        assert_eq!(config(&[], None).unwrap().port, 4000);
        assert_eq!(config(&["--port", "9"], Some("8080")).unwrap().port, 9);
        assert_eq!(config(&["--port", "9"], Some("junk")).unwrap().port, 9);
        for bad in ["", "http", "65536", "-1", " 80", "80.0"] {
            let err = config(&[], Some(bad)).unwrap_err();
            assert!(err.contains("PORT"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_startup_line_keeps_the_case_of_names() {
        let config = config(&["--subprotocol", "Chat", "--echo", "exact"], None).unwrap();
        let limits = describe_limits(&config);
        assert!(limits.contains("echo exact;"), "{limits}");
        assert!(limits.contains("subprotocols Chat;"), "{limits}");
        assert!(limits.ends_with("trusted proxies none"), "{limits}");
    }
}
