//! Headless Chromium and a small Chrome DevTools Protocol (CDP) client, for tests that
//! drive a page the way a person would: load it, type, press keys, click, read the DOM,
//! take screenshots, and check that the page put nothing on the console. The CDP
//! WebSocket is `tungstenite` and its messages are `serde_json` values, so no
//! browser-automation crate is needed. It knows nothing about the page under test.
//!
//! Needs Debian's Chromium (`apt-get install -y chromium`); `PURE_WS_CHROMIUM` names
//! another binary.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// How long any single expectation may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);
/// Chromium's first start on a cold machine can be slow.
const BROWSER_START: Duration = Duration::from_secs(60);

/// A headless Chromium with its own profile directory; killed and cleaned up when dropped.
pub struct Browser {
    child: Child,
    dir: PathBuf,
}

impl Browser {
    fn log_path(&self) -> PathBuf {
        self.dir.join("chromium.log")
    }

    /// The Chromium binary to run; fails with install instructions if it is missing.
    pub fn executable() -> String {
        let exe = std::env::var("PURE_WS_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.into());
        assert!(
            Path::new(&exe).exists(),
            "{exe} not found: this test needs Chromium. Install it with \
             `apt-get update && apt-get install -y chromium` (or set PURE_WS_CHROMIUM), \
             then run `cargo test --test browser -- --ignored`"
        );
        exe
    }

    /// Starts `exe` headless and connects to its DevTools endpoint.
    pub fn launch(exe: &str) -> (Browser, Cdp) {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("pure-ws-browser-{}-{nanos}", std::process::id()));
        let profile = dir.join("profile");
        fs::create_dir_all(&profile).unwrap();
        let log = fs::File::create(dir.join("chromium.log")).unwrap();
        let child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--disable-extensions",
                "--disable-default-apps",
                "--no-first-run",
                "--no-default-browser-check",
                "--mute-audio",
                "--window-size=1000,760",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        let mut browser = Browser { child, dir };

        // Chromium writes "PORT\n/devtools/browser/ID" here once it listens.
        let active_port = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + BROWSER_START;
        let endpoint = loop {
            if let Ok(text) = fs::read_to_string(&active_port) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break format!("127.0.0.1:{}{}", port.trim(), path.trim());
                }
            }
            if let Ok(Some(status)) = browser.child.try_wait() {
                panic!("Chromium exited early ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "Chromium did not open its DevTools port within {BROWSER_START:?}"
            );
            thread::sleep(Duration::from_millis(50));
        };
        let cdp = Cdp::connect(&endpoint);
        (browser, cdp)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log = fs::read_to_string(self.log_path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "---- chromium log (tail) ----\n{}\n-----------------------------",
                tail.join("\n")
            );
        }
        // Chromium's helper processes may still be writing for a moment.
        for _ in 0..50 {
            if fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// What the page did that a test may complain about.
#[derive(Default)]
struct Observed {
    console_errors: Vec<String>,
    /// Every console message, whatever its level.
    console: Vec<String>,
    failed_requests: Vec<String>,
    dialogs: Vec<String>,
    /// Request id -> URL, to name the URL of a failed request.
    urls: HashMap<String, String>,
    /// How many load events the tab has fired.
    loads: u32,
}

/// A JSON value as plain text: strings without their quotes.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A DevTools connection, attached to one tab after `open_tab`; it records what the page
/// logs, fails to load or pops up, for `assert_clean` and `assert_silent`.
pub struct Cdp {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    session: Option<String>,
    seen: Observed,
}

impl Cdp {
    fn connect(endpoint: &str) -> Cdp {
        let addr = endpoint.split('/').next().unwrap();
        let stream = TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("cannot reach DevTools at {addr}: {e}"));
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://{endpoint}"), stream)
            .unwrap_or_else(|e| panic!("DevTools WebSocket handshake failed: {e}"));
        Cdp {
            ws,
            next_id: 0,
            session: None,
            seen: Observed::default(),
        }
    }

    /// Sends one command and returns its result; events read meanwhile are recorded.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            msg["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("CDP send {method}: {e}"));
        loop {
            let value = self.next_message(method);
            if value["id"].as_u64() == Some(id) {
                if let Some(err) = value.get("error") {
                    panic!("CDP {method} failed: {err}");
                }
                return value["result"].clone();
            }
            self.observe(&value);
        }
    }

    /// Reads the next CDP message (a reply or an event).
    fn next_message(&mut self, waiting_for: &str) -> Value {
        loop {
            let msg = match self.ws.read() {
                Ok(msg) => msg,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    panic!(
                        "nothing from Chromium within {WAIT:?} while waiting for {waiting_for} \
                         (page blocked by a dialog? {:?})",
                        self.seen.dialogs
                    )
                }
                Err(e) => panic!("CDP read while waiting for {waiting_for}: {e}"),
            };
            if let Message::Text(text) = msg {
                return serde_json::from_str(text.as_str()).expect("CDP sent invalid JSON");
            }
        }
    }

    /// Loads `url` in the tab and returns once its load event has fired.
    pub fn navigate(&mut self, url: &str) {
        let loads = self.seen.loads;
        let r = self.call("Page.navigate", json!({ "url": url }));
        if let Some(err) = r.get("errorText") {
            panic!("cannot load {url}: {err}");
        }
        let deadline = Instant::now() + WAIT;
        while self.seen.loads == loads {
            assert!(
                Instant::now() < deadline,
                "{url} did not finish loading within {WAIT:?}"
            );
            let event = self.next_message("the page's load event");
            self.observe(&event);
        }
    }

    fn observe(&mut self, event: &Value) {
        let p = &event["params"];
        let seen = &mut self.seen;
        let method = event["method"].as_str().unwrap_or("");
        if matches!(method, "Log.entryAdded" | "Runtime.consoleAPICalled") {
            seen.console.push(format!("{method}: {p}"));
        }
        match method {
            "Runtime.consoleAPICalled"
                if matches!(p["type"].as_str(), Some("error" | "assert")) =>
            {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|v| {
                                text(if v["value"].is_null() {
                                    &v["description"]
                                } else {
                                    &v["value"]
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                seen.console_errors.push(format!(
                    "console.{}: {}",
                    text(&p["type"]),
                    args.join(" ")
                ));
            }
            "Runtime.exceptionThrown" => {
                let d = &p["exceptionDetails"];
                seen.console_errors.push(format!(
                    "uncaught {}: {}",
                    text(&d["text"]),
                    text(&d["exception"]["description"])
                ));
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                let e = &p["entry"];
                seen.console_errors.push(format!(
                    "[{}] {} {}",
                    text(&e["source"]),
                    text(&e["text"]),
                    text(&e["url"])
                ));
            }
            "Network.requestWillBeSent" => {
                seen.urls
                    .insert(text(&p["requestId"]), text(&p["request"]["url"]));
            }
            "Network.loadingFailed" => {
                let url = seen
                    .urls
                    .get(&text(&p["requestId"]))
                    .cloned()
                    .unwrap_or_default();
                seen.failed_requests
                    .push(format!("{} {url}", text(&p["errorText"])));
            }
            "Network.responseReceived" if p["response"]["status"].as_u64().unwrap_or(0) >= 400 => {
                let r = &p["response"];
                seen.failed_requests
                    .push(format!("HTTP {} {}", r["status"], text(&r["url"])));
            }
            "Page.loadEventFired" => seen.loads += 1,
            "Page.javascriptDialogOpening" => {
                seen.dialogs
                    .push(format!("{}({})", text(&p["type"]), text(&p["message"])));
                // Dismiss it so the page keeps running and the test can report it.
                let mut msg = json!({ "id": 0, "method": "Page.handleJavaScriptDialog", "params": { "accept": false } });
                if let Some(session) = &self.session {
                    msg["sessionId"] = json!(session);
                }
                let _ = self.ws.send(Message::text(msg.to_string()));
            }
            _ => {}
        }
    }

    /// Opens a fresh tab, attaches to it and turns on the event domains we watch.
    pub fn open_tab(&mut self) {
        let target = self.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = self.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        self.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_string(),
        );
        for domain in ["Page", "Runtime", "Log", "Network"] {
            self.call(&format!("{domain}.enable"), json!({}));
        }
        // Let the page believe it has focus, as a foreground tab would.
        self.call(
            "Emulation.setFocusEmulationEnabled",
            json!({ "enabled": true }),
        );
    }

    /// Evaluates `expr` in the page and returns its value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            panic!(
                "page threw evaluating `{expr}`: {}",
                ex["exception"]["description"]
            );
        }
        r["result"]["value"].clone()
    }

    pub fn eval_str(&mut self, expr: &str) -> String {
        match self.eval(expr) {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }

    /// Polls `expr` until it is truthy; on time-out fails with `what` and the page's state
    /// (the text of its `#status` and `#log`, where it has them).
    pub fn wait_for(&mut self, what: &str, expr: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.eval(expr);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(
                self.seen.dialogs.is_empty(),
                "the page opened a dialog: {:?}",
                self.seen.dialogs
            );
            if Instant::now() > deadline {
                let status = self
                    .eval_str("document.getElementById('status')?.textContent ?? '(no #status)'");
                let log = self.eval_str("document.getElementById('log')?.innerText ?? '(no #log)'");
                panic!(
                    "timed out after {WAIT:?} waiting for {what}\nstatus: {status}\nlog:\n{log}"
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn type_text(&mut self, text: &str) {
        self.call("Input.insertText", json!({ "text": text }));
    }

    /// Presses and releases a key that types nothing (ArrowUp, Escape, ...).
    pub fn press(&mut self, key: &str, key_code: u32) {
        for kind in ["rawKeyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": kind, "key": key, "code": key, "windowsVirtualKeyCode": key_code }),
            );
        }
    }

    pub fn press_enter(&mut self) {
        for kind in ["keyDown", "keyUp"] {
            let mut params = json!({
                "type": kind, "key": "Enter", "code": "Enter",
                "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
            });
            if kind == "keyDown" {
                params["text"] = json!("\r");
                params["unmodifiedText"] = json!("\r");
            }
            self.call("Input.dispatchKeyEvent", params);
        }
    }

    /// Clicks the middle of the element with this id, like a mouse would.
    pub fn click(&mut self, id: &str) {
        let rect = self.eval(&format!(
            "(() => {{ const e = document.getElementById('{id}'); e.scrollIntoView({{block: 'nearest'}});
                      const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (x, y) = (rect[0].as_f64().unwrap(), rect[1].as_f64().unwrap());
        self.call(
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseMoved", "x": x, "y": y }),
        );
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            );
        }
    }

    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot data is base64");
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Checks that `what` put nothing at all on the console, at any level.
    pub fn assert_silent(&self, what: &str) {
        assert!(
            self.seen.console.is_empty(),
            "{what} must log nothing: {:#?}",
            self.seen.console
        );
    }

    /// Makes sure every event sent so far has been read, then checks the page
    /// logged no errors, opened no dialog and no request failed.
    pub fn assert_clean(&mut self, when: &str) {
        self.eval("new Promise(r => setTimeout(r, 100))");
        let seen = &self.seen;
        assert!(
            seen.dialogs.is_empty(),
            "{when}: the page opened dialogs: {:?}",
            seen.dialogs
        );
        assert!(
            seen.console_errors.is_empty(),
            "{when}: console errors: {:#?}",
            seen.console_errors
        );
        assert!(
            seen.failed_requests.is_empty(),
            "{when}: failed requests: {:#?}",
            seen.failed_requests
        );
    }
}

/// `s` as a JavaScript string literal, to splice into an expression.
pub fn js_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}
