//! End-to-end test of the page (`src/page.rs`, built from `static/`) in a real browser.
//!
//! Starts the real `pure-ws` binary on an ephemeral port, opens its page in
//! headless Chromium, and drives it through the Chrome DevTools Protocol (CDP)
//! the way a person would: typing, pressing Enter, clicking buttons. The browser and
//! the DevTools client are in `common/cdp.rs`; this file holds the tests and what they
//! know about the page.
//!
//! Needs Debian's Chromium (`apt-get install -y chromium`); set
//! `PURE_WS_CHROMIUM` to use another binary. Run with:
//!
//! ```text
//! cargo test --test browser -- --ignored
//! ```
//!
//! Screenshots are written to `target/browser-screenshot*.png`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};

mod common;

use common::cdp::{js_str, text, Browser, Cdp};
use common::Server;

/// Opens a WebSocket from the page to `url` offering `protocols`, sends `text`, and returns
/// `[protocol, first reply]`, or `["closed", code]` if it closed first.
fn page_socket(cdp: &mut Cdp, url: &str, protocols: &[&str], text: &str) -> Value {
    cdp.eval(&format!(
        "new Promise(resolve => {{
            const ws = new WebSocket({}, {});
            ws.onopen = () => ws.send({});
            ws.onmessage = ev => {{ resolve([ws.protocol, ev.data]); ws.close(1000); }};
            ws.onclose = ev => resolve(['closed', String(ev.code)]);
            setTimeout(() => resolve(['timed out', '']), 10000);
        }})",
        js_str(url),
        serde_json::to_string(protocols).unwrap(),
        js_str(text)
    ))
}

// ---------------------------------------------------------------------------
// JavaScript snippets that read the page.

const STATE: &str = "document.getElementById('status').dataset.state";
const STATUS: &str = "document.getElementById('status').textContent";
const INPUT_VALUE: &str = "document.getElementById('message').value";
const ACTIVE_ID: &str = "document.activeElement && document.activeElement.id";
const SEND_DISABLED: &str = "document.getElementById('send').disabled";
const RECONNECT_VISIBLE: &str = "(() => { const b = document.getElementById('reconnect');
    return !b.hidden && b.offsetParent !== null && getComputedStyle(b).visibility !== 'hidden'; })()";

/// True once the log holds a received entry whose text is exactly `text`.
fn received(text: &str) -> String {
    format!(
        "[...document.querySelectorAll('#log .entry.received .text')].some(e => e.textContent === {})",
        js_str(text)
    )
}

/// The RTT label of the received entry whose text is exactly `text`.
fn rtt_of(text: &str) -> String {
    format!(
        "(() => {{ const e = [...document.querySelectorAll('#log .entry.received')]
                    .find(e => e.querySelector('.text').textContent === {});
                  const r = e && e.querySelector('.rtt'); return r ? r.textContent : ''; }})()",
        js_str(text)
    )
}

fn sent(text: &str) -> String {
    format!(
        "[...document.querySelectorAll('#log .entry.sent .text')].some(e => e.textContent === {})",
        js_str(text)
    )
}

fn assert_rtt(cdp: &mut Cdp, echo: &str) {
    let rtt = cdp.eval_str(&rtt_of(echo));
    let ms = rtt.trim_start_matches("RTT ").trim_end_matches(" ms");
    assert!(
        rtt.ends_with(" ms") && ms.parse::<f64>().is_ok_and(|v| v >= 0.0),
        "round-trip time for {echo:?} should read like `RTT 1.2 ms`, got {rtt:?}"
    );
}

/// Switches to a 390-pixel-wide phone screen of `height` in dark mode, and checks that
/// `what` fits it without sideways scrolling.
fn phone_dark(cdp: &mut Cdp, height: u32, what: &str) {
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 390, "height": height, "deviceScaleFactor": 1, "mobile": true }),
    );
    cdp.call(
        "Emulation.setEmulatedMedia",
        json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] }),
    );
    cdp.wait_for("the phone-width layout", "window.innerWidth === 390");
    assert_eq!(
        cdp.eval("document.documentElement.scrollWidth <= window.innerWidth"),
        json!(true),
        "{what} must fit a 390px-wide phone screen"
    );
}

/// Back from [`phone_dark`] to the light `desktop` viewport a test started with.
fn back_to_desktop(cdp: &mut Cdp, desktop: &Value) {
    cdp.call("Emulation.setDeviceMetricsOverride", desktop.clone());
    cdp.call("Emulation.setEmulatedMedia", json!({ "features": [] }));
}

/// Where the screenshots go.
fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target")
}

/// A server, and a headless Chromium tab as wide as a desktop screen and `height` pixels
/// high, on the page at `path` with its WebSocket open. Returns the viewport too, for
/// [`back_to_desktop`]; the browser lives as long as the returned `Browser`.
fn open_page(height: u32, path: &str) -> (Server, Browser, Cdp, Value) {
    let chromium = Browser::executable();
    let server = Server::start(&[]);
    let (browser, mut cdp) = Browser::launch(&chromium);
    cdp.open_tab();
    let desktop =
        json!({ "width": 1000, "height": height, "deviceScaleFactor": 1, "mobile": false });
    cdp.call("Emulation.setDeviceMetricsOverride", desktop.clone());
    cdp.navigate(&format!("http://{}{path}", server.addr));
    cdp.wait_for("the connection to open", &format!("{STATE} === 'open'"));
    (server, browser, cdp, desktop)
}

/// Whether the log's content fits its width: long lines wrap instead of scrolling sideways.
const LOG_FITS: &str =
    "(() => { const l = document.getElementById('log'); return l.scrollWidth <= l.clientWidth; })()";

/// Waits for the page to show the connection closed with `code`, explained in `words`,
/// with Reconnect offered and Send disabled.
fn expect_closed(cdp: &mut Cdp, when: &str, code: &str, words: &str) {
    cdp.wait_for(
        &format!("the page to show the connection closed {when}"),
        &format!("{STATE} === 'closed'"),
    );
    let status = cdp.eval_str(STATUS);
    assert!(
        status.contains("Closed") && status.contains(code) && status.contains(words),
        "status {when} should name {code} as {words:?}: {status:?}"
    );
    assert_eq!(
        cdp.eval(RECONNECT_VISIBLE),
        json!(true),
        "Reconnect must show when closed"
    );
    assert_eq!(
        cdp.eval(SEND_DISABLED),
        json!(true),
        "Send must be disabled when closed"
    );
}

#[test]
#[ignore = "needs Chromium: apt-get install -y chromium, then cargo test --test browser -- --ignored"]
fn echo_page_in_headless_chromium() {
    let target = screenshots();
    // Load the page and wait for the WebSocket to open: it connects to its own URL, path
    // and query included, and logs nothing to the console on the way.
    let (mut server, _browser, mut cdp, desktop) = open_page(720, "/?from=test");
    assert_eq!(cdp.eval_str("document.title"), "pure-ws");
    assert_eq!(
        cdp.eval_str("document.getElementById('endpoint').textContent"),
        format!("ws://{}/?from=test", server.addr),
        "the page connects to the URL it was loaded from"
    );
    cdp.eval("new Promise(r => setTimeout(r, 200))");
    cdp.assert_silent("the page, on load");
    assert_eq!(
        cdp.eval(SEND_DISABLED),
        json!(false),
        "Send must be enabled while connected"
    );
    assert_eq!(
        cdp.eval(RECONNECT_VISIBLE),
        json!(false),
        "Reconnect must be hidden while connected"
    );
    assert_eq!(
        cdp.eval_str(ACTIVE_ID),
        "message",
        "the message input should have focus on load"
    );
    let label = cdp.eval_str("document.querySelector('label[for=message]')?.textContent ?? ''");
    assert!(
        !label.trim().is_empty(),
        "the message input needs a <label for=message>"
    );

    // 1. Type a message and press Enter: the echo shows up with a round-trip time.
    let hello = "Hello from Chromium — grüße ✓";
    cdp.type_text(hello);
    cdp.press_enter();
    let echo = format!("Server got: {hello}");
    cdp.wait_for("the echo of the first message", &received(&echo));
    assert_eq!(
        cdp.eval(&sent(hello)),
        json!(true),
        "the sent message should be in the log"
    );
    assert_rtt(&mut cdp, &echo);
    assert_eq!(cdp.eval_str(INPUT_VALUE), "", "input cleared after sending");
    assert_eq!(
        cdp.eval_str(ACTIVE_ID),
        "message",
        "the input keeps focus after Enter"
    );

    // 2. Markup is shown as text, sent with the Send button this time.
    let xss = "<img src=x onerror=alert(1)>";
    cdp.type_text(xss);
    cdp.click("send");
    cdp.wait_for(
        "the markup message in the log",
        "document.querySelectorAll('#log .entry.sent').length === 2",
    );
    assert_eq!(
        cdp.eval("document.querySelectorAll('#log img').length"),
        json!(0),
        "no <img> may be created in the log"
    );
    assert_eq!(
        cdp.eval(&sent(xss)),
        json!(true),
        "the markup should be shown literally as sent"
    );
    let echo = format!("Server got: {xss}");
    cdp.wait_for("the echo of the markup message", &received(&echo));
    assert_eq!(
        cdp.eval("document.images.length"),
        json!(0),
        "no <img> may be created anywhere"
    );
    assert!(
        cdp.eval_str("document.getElementById('log').textContent")
            .contains(xss),
        "the log should contain the markup as literal text"
    );
    assert_eq!(
        cdp.eval_str(ACTIVE_ID),
        "message",
        "the input keeps focus after clicking Send"
    );

    // 3. A long message without spaces (a 16-bit length frame) wraps instead of
    //    widening the log.
    let long: String = "0123456789abcdef".repeat(9);
    cdp.type_text(&long);
    cdp.press_enter();
    let echo = format!("Server got: {long}");
    cdp.wait_for("the echo of the long message", &received(&echo));
    assert_rtt(&mut cdp, &echo);
    assert_eq!(
        cdp.eval(LOG_FITS),
        json!(true),
        "long messages must wrap, not scroll sideways"
    );
    assert_eq!(
        cdp.eval("(() => { const l = document.getElementById('log'); return l.scrollHeight - l.scrollTop - l.clientHeight < 2; })()"),
        json!(true),
        "the log should be scrolled to the newest message"
    );
    cdp.assert_clean("after three echoes");

    // A page script offering a subprotocol gets it selected, as browsers require, on any
    // path.
    let base = format!("ws://{}", server.addr);
    for (path, offers) in [
        ("/", &["chat"][..]),
        ("/ws/room?x=1", &["chat", "superchat"]),
    ] {
        let answer = page_socket(&mut cdp, &format!("{base}{path}"), offers, "sub");
        assert_eq!(
            answer,
            json!(["chat", "Server got: sub"]),
            "{path} {offers:?}"
        );
    }
    cdp.assert_clean("after sockets offering subprotocols");
    cdp.screenshot(&target.join("browser-screenshot.png"));

    // The same page at phone width and in dark mode: nothing sticks out sideways.
    phone_dark(&mut cdp, 760, "the page");
    cdp.screenshot(&target.join("browser-screenshot-phone-dark.png"));
    back_to_desktop(&mut cdp, &desktop);

    // 4. Disconnect: a clean close (1000), then Reconnect and echo again.
    cdp.click("disconnect");
    expect_closed(&mut cdp, "after Disconnect", "1000", "Normal closure");
    cdp.click("reconnect");
    cdp.wait_for("the connection to reopen", &format!("{STATE} === 'open'"));
    assert_eq!(
        cdp.eval_str(ACTIVE_ID),
        "message",
        "the input has focus after Reconnect"
    );
    cdp.type_text("again");
    cdp.press_enter();
    cdp.wait_for(
        "the echo after reconnecting",
        &received("Server got: again"),
    );
    // ArrowUp recalls what was sent; ArrowDown goes back to the (empty) draft.
    cdp.press("ArrowUp", 38);
    assert_eq!(
        cdp.eval_str(INPUT_VALUE),
        "again",
        "ArrowUp recalls the last message"
    );
    cdp.press("ArrowUp", 38);
    assert_eq!(
        cdp.eval_str(INPUT_VALUE),
        long,
        "ArrowUp again recalls the one before"
    );
    cdp.press("ArrowDown", 40);
    cdp.press("ArrowDown", 40);
    assert_eq!(
        cdp.eval_str(INPUT_VALUE),
        "",
        "ArrowDown returns to the draft"
    );
    cdp.assert_clean("after disconnect and reconnect");

    // 5. The server goes away: the page says so, with code 1006, and offers Reconnect.
    server.kill();
    expect_closed(
        &mut cdp,
        "after the server went away",
        "1006",
        "Abnormal closure",
    );
    let why = cdp.eval_str(
        "[...document.querySelectorAll('#log .entry.system')].pop().querySelector('.why')?.textContent ?? ''",
    );
    assert!(
        why.starts_with("1006 never goes on the wire"),
        "the page says why 1006 came from no frame: {why:?}"
    );
    cdp.assert_clean("after the server went away");
    cdp.screenshot(&target.join("browser-screenshot-closed.png"));

    // 6. Clear empties the log.
    cdp.click("clear");
    cdp.wait_for(
        "Clear to empty the log",
        "document.querySelectorAll('#log > *').length === 0",
    );
    cdp.assert_clean("at the end");

    // 7. A handshake that fails (here 403 for the origin) is reported as a failure to
    //    connect to the URL, not as a lost connection.
    let refusing = Server::start(&["--allowed-origin", "https://elsewhere.example"]);
    cdp.navigate(&format!("http://{}/", refusing.addr));
    cdp.wait_for("the failed handshake", &format!("{STATE} === 'closed'"));
    let status = cdp.eval_str(STATUS);
    assert_eq!(
        status,
        format!("Could not connect to ws://{}/", refusing.addr),
        "a failed handshake names the URL"
    );
    assert_eq!(cdp.eval(RECONNECT_VISIBLE), json!(true));
}

// ---------------------------------------------------------------------------
// The frame inspector.

/// The GUID of RFC 6455 §1.3 that the server appends to the key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const SHOW_FRAMES: &str = "document.getElementById('show-frames').checked";
const HANDSHAKE_SHOWN: &str = "!document.getElementById('handshake').hidden";
/// The visible "why" notes in the log.
const WHY_NOTES: &str = "[...document.querySelectorAll('#log .why')].map(e => e.textContent)";
/// What the page says where the header bytes and the server's decoded fields disagree.
const MISMATCHES: &str = "[...document.querySelectorAll('#log .mismatch')].map(e => e.textContent)";

/// Every frame drawn in the log, in order: who sent it, whether the page drew it itself
/// (`own`, rather than from the server's account), its place in a fragmented message, its
/// title, its header bytes as shown, its field labels, its payload columns (masked, key,
/// unmasked, text for the browser's frames; unmasked, text for the server's; no text for a
/// payload that is not text), the notes under it, and the text of the log entry it is
/// drawn under.
const FRAMES: &str = "[...document.querySelectorAll('#log .frame')].map(f => ({
    from: f.classList.contains('browser') ? 'browser' : 'server',
    own: f.classList.contains('own'),
    part: f.querySelector('.part')?.textContent ?? '',
    title: f.querySelector('.frame-title').textContent,
    header: f.querySelector('.hdr-hex').textContent,
    fields: [...f.querySelectorAll('.fname')].map(e => e.textContent),
    columns: [...f.querySelectorAll('.pcol:not(.legend)')].map(c => [...c.children].map(s => s.textContent)),
    notes: [...f.querySelectorAll('.more, .note, .why')].map(e => e.textContent).join(' '),
    under: f.closest('li').previousElementSibling?.querySelector('.text')?.textContent ?? ''
}))";

/// The text of a handshake-card line.
fn card(cdp: &mut Cdp, line: &str) -> String {
    cdp.eval_str(&format!("document.getElementById('hs-{line}').textContent"))
}

/// Scrolls the log so that the last entry whose text starts with `entry` is at its top.
fn scroll_to(cdp: &mut Cdp, entry: &str) {
    cdp.eval(&format!(
        "[...document.querySelectorAll('#log .entry')]
            .filter(e => e.querySelector('.text').textContent.startsWith({})).pop()
            .scrollIntoView({{ block: 'start' }})",
        js_str(entry)
    ));
}

/// Folds the handshake card, as a reader done with it would, to give the log the room.
fn fold_handshake(cdp: &mut Cdp) {
    cdp.eval("document.querySelector('#handshake > details').open = false");
}

/// Waits for the frame `from` ("browser" or "server") drawn under the entry whose text
/// starts with `entry`.
fn frame_under(cdp: &mut Cdp, from: &str, entry: &str) -> Value {
    cdp.wait_for(
        &format!("the {from}'s frame under {entry:?}"),
        &format!(
            "{FRAMES}.find(f => f.from === {} && f.under.startsWith({}))",
            js_str(from),
            js_str(entry)
        ),
    )
}

/// The header bytes a frame shows, lower-case.
fn header(frame: &Value) -> String {
    text(&frame["header"]).to_ascii_lowercase()
}

fn assert_header_starts(frame: &Value, expected: &str, what: &str) {
    assert!(
        header(frame).starts_with(&expected.to_ascii_lowercase()),
        "{what}: header should start with {expected}, the page shows {:?}",
        frame["header"]
    );
}

fn hex_byte(cell: &Value) -> u8 {
    u8::from_str_radix(cell.as_str().unwrap_or_default(), 16)
        .unwrap_or_else(|_| panic!("not a hex byte: {cell}"))
}

/// Checks the three rows of a masked frame (masked bytes, the key repeated, the unmasked
/// bytes) against each other and against the masking key at the end of the header, and
/// returns what the text row spells.
fn unmasked_text(frame: &Value) -> (Vec<u8>, String) {
    let header: Vec<u8> = header(frame)
        .split(' ')
        .map(|h| hex_byte(&json!(h)))
        .collect();
    let key = &header[header.len() - 4..];
    let mut bytes = Vec::new();
    let mut spelled = String::new();
    for (i, column) in frame["columns"].as_array().unwrap().iter().enumerate() {
        let cells = column.as_array().unwrap();
        let (masked, k, plain) = (
            hex_byte(&cells[0]),
            hex_byte(&cells[1]),
            hex_byte(&cells[2]),
        );
        assert_eq!(k, key[i % 4], "key row, byte {i}: the masking key repeated");
        assert_eq!(
            masked ^ k,
            plain,
            "byte {i}: masked XOR key is the unmasked byte"
        );
        bytes.push(plain);
        spelled.push_str(&text(&cells[3]));
    }
    (bytes, spelled)
}

/// How many reads a frame's card says it arrived in, if it says so.
fn reads(frame: &Value) -> Option<u32> {
    let notes = text(&frame["notes"]);
    let (_, after) = notes.split_once("arrived in ")?;
    after.split(' ').next()?.parse().ok()
}

fn assert_fields(frame: &Value, names: &[&str]) {
    let shown: Vec<String> = frame["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    assert_eq!(shown, names, "the labelled fields of {}", frame["title"]);
}

const MASKED_FIELDS: [&str; 8] = [
    "FIN",
    "RSV1",
    "RSV2",
    "RSV3",
    "opcode",
    "MASK",
    "payload len",
    "masking key",
];

#[test]
#[ignore = "needs Chromium: apt-get install -y chromium, then cargo test --test browser -- --ignored"]
fn frame_inspector_in_headless_chromium() {
    let target = screenshots();
    let (server, _browser, mut cdp, desktop) = open_page(1000, "/");
    let page = format!("http://{}/", server.addr);
    assert_eq!(cdp.eval(SHOW_FRAMES), json!(false), "frames start off");
    assert_eq!(cdp.eval(HANDSHAKE_SHOWN), json!(false), "no handshake card");

    // Frames on: the page reconnects offering pure-ws.inspect, and the handshake card shows
    // how the server turned the browser's key into Sec-WebSocket-Accept.
    cdp.click("show-frames");
    let key = text(&cdp.wait_for(
        "the handshake card",
        "document.getElementById('hs-key').textContent",
    ));
    cdp.wait_for("the connection to reopen", &format!("{STATE} === 'open'"));
    assert_eq!(cdp.eval(HANDSHAKE_SHOWN), json!(true));
    let digest = {
        use sha1::{Digest, Sha1};
        Sha1::digest(format!("{key}{GUID}").as_bytes())
    };
    let sha1_hex: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(card(&mut cdp, "guid"), GUID);
    assert_eq!(card(&mut cdp, "joined"), format!("{key}{GUID}"));
    assert_eq!(
        card(&mut cdp, "sha1").to_ascii_lowercase(),
        sha1_hex.join(" ")
    );
    assert_eq!(
        card(&mut cdp, "accept"),
        base64::engine::general_purpose::STANDARD.encode(digest),
        "the accept shown is base64(SHA-1(key + GUID)) of the key shown"
    );
    assert!(
        cdp.eval_str("document.getElementById('hs-note').textContent")
            .starts_with('✓'),
        "the page's own check of the handshake passes"
    );

    // "Hello": the RFC 6455 §5.7 frame, as this browser masked it, and its echo.
    cdp.type_text("Hello");
    cdp.press_enter();
    cdp.wait_for("the echo of Hello", &received("Server got: Hello"));
    let hello = frame_under(&mut cdp, "browser", "Hello");
    assert_header_starts(&hello, "81 85", "the browser's Hello");
    assert_eq!(
        header(&hello).len(),
        "81 85 37 fa 21 3d".len(),
        "2 bytes + key"
    );
    assert_fields(&hello, &MASKED_FIELDS);
    let (bytes, spelled) = unmasked_text(&hello);
    assert_eq!(bytes, b"Hello", "the masked bytes XOR the key give Hello");
    assert_eq!(spelled, "Hello", "the text row spells Hello");
    let echo = frame_under(&mut cdp, "server", "Server got: Hello");
    assert_eq!(
        header(&echo),
        "81 11",
        "the echo: FIN + text, unmasked, 17 bytes"
    );
    assert_fields(&echo, &MASKED_FIELDS[..7]);

    // 200 characters need the 16-bit extended length, in both directions.
    let long: String = "The quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(200)
        .collect();
    cdp.type_text(&long);
    cdp.press_enter();
    cdp.wait_for(
        "the echo of 200 characters",
        &received(&format!("Server got: {long}")),
    );
    let sent200 = frame_under(&mut cdp, "browser", &long);
    assert_header_starts(&sent200, "81 FE 00 C8", "the browser's 200 bytes");
    let (bytes, _) = unmasked_text(&sent200);
    assert_eq!(bytes, long.as_bytes()[..64], "the first 64 bytes, unmasked");
    assert!(text(&sent200["notes"]).contains("136 more bytes"));
    assert!(text(&sent200["fields"]).contains("extended length"));
    assert!(
        text(&sent200["notes"]).contains("Why three length encodings?"),
        "the first frame with an extended length says why there are three: {}",
        sent200["notes"]
    );
    let why = cdp.eval(WHY_NOTES);
    assert_eq!(
        why.as_array().map(Vec::len),
        Some(2),
        "each why note once: masking (on the close card when frames went on) and lengths: {why}"
    );
    let echo200 = frame_under(&mut cdp, "server", &format!("Server got: {long}"));
    assert_header_starts(&echo200, "81 7E 00 D4", "the echo's 212 bytes");
    assert!(text(&echo200["notes"]).contains("148 more bytes"));

    assert_eq!(
        cdp.eval(MISMATCHES),
        json!([]),
        "the header bytes and the server's fields agree"
    );
    assert_eq!(
        cdp.eval(
            "[...document.querySelectorAll('#log .entry.received .text')].map(e => e.textContent)"
        ),
        json!(["Server got: Hello", format!("Server got: {long}")]),
        "only the echoes are shown as messages, never the inspection messages"
    );
    assert_eq!(
        cdp.eval(LOG_FITS),
        json!(true),
        "frames wrap instead of widening the log"
    );
    cdp.assert_clean("after Hello and 200 characters");

    // Screenshots with the Hello frames in view, light at desktop width, then dark at 390px.
    let hello_in_view = "[...document.querySelectorAll('#log .entry.sent')]
        .find(e => e.textContent.includes('Hello')).scrollIntoView({ block: 'start' })";
    cdp.eval(hello_in_view);
    cdp.screenshot(&target.join("browser-inspector.png"));
    phone_dark(&mut cdp, 844, "the inspector");
    cdp.eval(hello_in_view);
    cdp.screenshot(&target.join("browser-inspector-phone-dark.png"));
    back_to_desktop(&mut cdp, &desktop);

    // The three length encodings side by side: 125 bytes fit in 7 bits, 126 need 16, and
    // 65,536 need 64 (each echo is 12 bytes longer).
    for size in ["125", "126", "65536"] {
        cdp.click(&format!("size-{size}"));
    }
    cdp.wait_for(
        "the three echoes",
        "document.querySelectorAll('#log .frame.server').length === 5",
    );
    for (prefix, sent, echoed) in [
        ("125 bytes", "81 fd", "81 7e 00 89"),
        ("126 bytes", "81 fe 00 7e", "81 7e 00 8a"),
        (
            "65,536 bytes",
            "81 ff 00 00 00 00 00 01 00 00",
            "81 7f 00 00 00 00 00 01 00 0c",
        ),
    ] {
        let frame = frame_under(&mut cdp, "browser", prefix);
        assert_header_starts(&frame, sent, prefix);
        let frame = frame_under(&mut cdp, "server", &format!("Server got: {prefix}"));
        assert_eq!(header(&frame), echoed, "the echo of {prefix}");
    }
    let big = frame_under(&mut cdp, "browser", "65,536 bytes");
    assert!(
        text(&big["notes"]).contains("65,472 more bytes"),
        "64 of 65,536 bytes shown: {}",
        big["notes"]
    );
    // The server reads at most 64 KiB at a time, so a 65,546-byte frame takes several.
    assert!(
        reads(&big).is_some_and(|n| n > 1),
        "the 65,536-byte frame says it arrived in several reads: {}",
        big["notes"]
    );
    // 125 bytes fit in 7 bits, but their echo is 137: the echo's card says why it needs 16.
    let echo125 = frame_under(&mut cdp, "server", "Server got: 125 bytes");
    assert!(
        text(&echo125["notes"]).contains("Your 125 bytes fit the 7-bit length; “Server got: ” adds 12 bytes, and 137 is over 125, so the echo needs the 16-bit length."),
        "the 125-byte echo explains its 16-bit length: {}",
        echo125["notes"]
    );
    fold_handshake(&mut cdp);
    scroll_to(&mut cdp, "Server got: 125 bytes");
    cdp.screenshot(&target.join("browser-lengths.png"));
    let echo126 = frame_under(&mut cdp, "server", "Server got: 126 bytes");
    assert!(
        !text(&echo126["notes"]).contains("the echo needs"),
        "126 bytes and their echo both use 16 bits: {}",
        echo126["notes"]
    );
    cdp.eval(
        "[...document.querySelectorAll('#log .frame.browser')]
            .find(f => f.textContent.includes('arrived in')).scrollIntoView({ block: 'start' })",
    );
    cdp.screenshot(&target.join("browser-reads.png"));

    // Binary: opcode 2 both ways, the echo shown as its text.
    cdp.click("kind-binary");
    cdp.click("message");
    cdp.type_text("Hello");
    cdp.press_enter();
    cdp.wait_for(
        "the binary echo",
        "[...document.querySelectorAll('#log .entry.received')].some(e =>
            e.querySelector('.kind')?.textContent === 'binary'
            && e.querySelector('.text').textContent === 'Server got: Hello')",
    );
    let frames = cdp.eval(FRAMES);
    let frames = frames.as_array().unwrap();
    assert_header_starts(&frames[frames.len() - 2], "82 85", "the binary Hello");
    assert_eq!(
        header(&frames[frames.len() - 1]),
        "82 11",
        "its binary echo"
    );
    cdp.click("kind-text");

    // Multi-byte UTF-8: the text row shows each character on the byte that starts it.
    cdp.click("message");
    cdp.type_text("grüße ✓");
    cdp.press_enter();
    let utf8 = frame_under(&mut cdp, "browser", "grüße ✓");
    let (bytes, spelled) = unmasked_text(&utf8);
    assert_eq!(bytes, "grüße ✓".as_bytes());
    assert_eq!(spelled, "grüße␣✓", "one character per starting byte");
    assert_eq!(cdp.eval(MISMATCHES), json!([]), "every frame so far agrees");
    cdp.assert_clean("after the length encodings and a binary message");
    cdp.assert_silent("the inspector");

    // The choice survives a reload.
    cdp.navigate(&page);
    cdp.wait_for("the connection to open", &format!("{STATE} === 'open'"));
    assert_eq!(cdp.eval(SHOW_FRAMES), json!(true), "frames stay on");
    let again = text(&cdp.wait_for(
        "the handshake card after reloading",
        "document.getElementById('hs-key').textContent",
    ));
    assert_ne!(again, key, "a new connection has a new key");

    // Frames off: a plain connection, no card, no frames; and that too is kept.
    cdp.click("show-frames");
    cdp.wait_for(
        "the plain connection",
        &format!("{STATE} === 'open' && !{HANDSHAKE_SHOWN}"),
    );
    cdp.type_text("plain");
    cdp.press_enter();
    cdp.wait_for("the plain echo", &received("Server got: plain"));
    assert_eq!(
        cdp.eval(&format!("{FRAMES}.map(f => f.own)")),
        json!([true]),
        "the only card is the close frame the page asked for when frames went off"
    );
    cdp.navigate(&page);
    cdp.wait_for("the connection to open", &format!("{STATE} === 'open'"));
    assert_eq!(cdp.eval(SHOW_FRAMES), json!(false), "frames stay off");

    // The browser's pong, answering the keepalive ping of a server that pings after 1 s.
    let pinging = Server::start(&["--ping-interval", "1"]);
    cdp.navigate(&format!("http://{}/", pinging.addr));
    cdp.wait_for("the connection to open", &format!("{STATE} === 'open'"));
    cdp.click("show-frames");
    let pong = cdp.wait_for(
        "the browser's pong",
        &format!("{FRAMES}.find(f => f.from === 'browser' && f.title.includes('pong'))"),
    );
    assert_header_starts(&pong, "8a 89", "a masked pong of 9 bytes");
    assert!(
        text(&pong["notes"]).contains("payload “keepalive”"),
        "the pong's payload as text, by the trace's rule: {}",
        pong["notes"]
    );
    let ping = frame_under(&mut cdp, "server", "Ping from the server;");
    assert_eq!(header(&ping), "89 09", "the keepalive ping, unmasked");
    assert!(
        text(&ping["notes"]).contains("payload “keepalive”"),
        "the ping's payload as text, by the trace's rule: {}",
        ping["notes"]
    );
    assert_eq!(cdp.eval(MISMATCHES), json!([]), "the pong's fields agree");
    assert!(
        cdp.eval_str("document.getElementById('log').textContent")
            .contains("Pong from your browser"),
        "the pong is a system entry"
    );
    cdp.assert_clean("after the pong");
    cdp.assert_silent("the inspector");
}

// ---------------------------------------------------------------------------
// What the page asks the server to show, and the close frame it asks the browser to send.

/// The note above the log that the frame cards are the server's account.
const FRAMES_NOTE: &str = "(() => { const n = document.getElementById('frames-note');
    return n.hidden ? '' : n.textContent; })()";
/// Whether the three command buttons are shown and can be clicked.
const COMMANDS_USABLE: &str = "(() => { const g = document.getElementById('commands');
    const b = [...g.querySelectorAll('button')];
    return !g.hidden && b.length === 3 && b.every(x => !x.disabled && x.offsetParent !== null); })()";

/// Clicks the command button `name` and waits for the page to draw the command as a sent
/// message with the frame that carried it; returns that frame.
fn give_command(cdp: &mut Cdp, name: &str) -> Value {
    cdp.click(&format!("command-{name}"));
    let json = format!("{{\"command\":\"{name}\"}}");
    cdp.wait_for(&format!("the {name} command in the log"), &sent(&json));
    let frame = frame_under(cdp, "browser", &json);
    let expected = format!("81 {:02x}", 0x80 | json.len());
    assert_header_starts(&frame, &expected, &format!("the {name} command"));
    let (bytes, _) = unmasked_text(&frame);
    assert_eq!(
        bytes,
        json.as_bytes(),
        "the command's frame carries its JSON"
    );
    frame
}

/// The unmasked payload bytes a frame's card shows, in order.
fn payload_bytes(frame: &Value) -> Vec<u8> {
    frame["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cells| hex_byte(&cells[0]))
        .collect()
}

#[test]
#[ignore = "needs Chromium: apt-get install -y chromium, then cargo test --test browser -- --ignored"]
fn page_commands_in_headless_chromium() {
    let target = screenshots();
    let (_server, _browser, mut cdp, desktop) = open_page(1300, "/");
    assert_eq!(
        cdp.eval("document.getElementById('commands').hidden"),
        json!(true),
        "no commands without the frame inspector"
    );
    assert_eq!(cdp.eval_str(FRAMES_NOTE), "", "no note without frames");

    cdp.click("show-frames");
    cdp.wait_for(
        "the inspector's connection",
        &format!("{STATE} === 'open' && document.getElementById('hs-key').textContent"),
    );
    cdp.wait_for("the three commands", COMMANDS_USABLE);
    fold_handshake(&mut cdp);
    let note = cdp.eval_str(FRAMES_NOTE);
    assert!(
        note.contains("the server's account") && note.contains("not as your browser saw them"),
        "the page says once whose account the cards are: {note:?}"
    );

    // Fragment the echo: the next echo comes as first, continuation and final frames.
    give_command(&mut cdp, "fragment");
    cdp.wait_for(
        "the note that the next echo comes in three frames",
        "document.getElementById('log').textContent.includes('next echo in three frames')",
    );
    cdp.click("message");
    let message = "Hello in three frames";
    cdp.type_text(message);
    cdp.press_enter();
    let echo = format!("Server got: {message}");
    cdp.wait_for("the fragmented echo", &received(&echo));
    let frames = cdp.eval(&format!(
        "{FRAMES}.filter(f => f.from === 'server' && f.under === {})",
        js_str(&echo)
    ));
    let frames = frames.as_array().unwrap();
    let parts: Vec<String> = frames.iter().map(|f| text(&f["part"])).collect();
    assert_eq!(parts, ["first", "continuation", "final"], "{frames:#?}");
    let firsts: Vec<String> = frames.iter().map(|f| header(f)[..2].to_string()).collect();
    assert_eq!(
        firsts,
        ["01", "00", "80"],
        "text FIN 0, continuation FIN 0, continuation FIN 1"
    );
    let joined: Vec<u8> = frames.iter().flat_map(payload_bytes).collect();
    assert_eq!(joined, echo.as_bytes(), "the three payloads make the echo");
    scroll_to(&mut cdp, &echo);
    cdp.screenshot(&target.join("browser-fragmented.png"));

    // Ping me: the server's ping, described before it goes out, then the browser's pong.
    give_command(&mut cdp, "ping");
    let ping = frame_under(
        &mut cdp,
        "server",
        "Ping from the server, as this page asked",
    );
    let payload = "ping at the page's request";
    assert_eq!(
        header(&ping),
        format!("89 {:02x}", payload.len()),
        "an unmasked ping"
    );
    assert!(
        text(&ping["notes"]).contains(&format!("payload “{payload}”")),
        "{}",
        ping["notes"]
    );
    let pong = frame_under(&mut cdp, "browser", "Pong from your browser");
    assert_header_starts(
        &pong,
        &format!("8a {:02x}", 0x80 | payload.len()),
        "the pong",
    );
    let (bytes, _) = unmasked_text(&pong);
    assert_eq!(
        bytes,
        payload.as_bytes(),
        "the pong carries the ping's payload"
    );
    assert!(
        text(&pong["notes"]).contains(&format!("payload “{payload}”")),
        "{}",
        pong["notes"]
    );
    scroll_to(&mut cdp, "Ping from the server");
    cdp.screenshot(&target.join("browser-ping.png"));
    phone_dark(&mut cdp, 844, "the command buttons and cards");
    scroll_to(&mut cdp, "Ping from the server");
    cdp.screenshot(&target.join("browser-ping-phone-dark.png"));
    back_to_desktop(&mut cdp, &desktop);

    // Each "why" note shows once, where it is first met: masking on the first masked card.
    let why = cdp.eval(WHY_NOTES);
    let why: Vec<String> = why.as_array().unwrap().iter().map(text).collect();
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(
        why[0].starts_with("Why mask?") && why[0].contains("RFC 6455 §10.3"),
        "{why:?}"
    );
    assert_eq!(cdp.eval(MISMATCHES), json!([]), "every frame so far agrees");
    cdp.assert_clean("after the fragmented echo and the ping");

    // Disconnect: the page draws the close frame it asked the browser to send, with what it
    // cannot know (the masking key) said so.
    cdp.click("disconnect");
    expect_closed(&mut cdp, "after Disconnect", "1000", "Normal closure");
    let own = frame_under(
        &mut cdp,
        "browser",
        "This page called close(1000, “Closed by user”)",
    );
    assert_eq!(own["own"], json!(true));
    let reason = "Closed by user";
    assert_eq!(
        header(&own),
        format!("88 {:02x} ?? ?? ?? ??", 0x80 | (2 + reason.len())),
        "FIN + close, MASK + length, and a key the page cannot see"
    );
    assert_fields(&own, &MASKED_FIELDS);
    assert_eq!(
        payload_bytes(&own),
        [&[0x03, 0xe8][..], reason.as_bytes()].concat(),
        "the payload: 1000 in two bytes, then the reason in UTF-8"
    );
    let notes = text(&own["notes"]);
    assert!(
        notes.contains("close code 1000 Normal closure · reason “Closed by user”")
            && notes.contains("page JavaScript cannot see it"),
        "{notes}"
    );
    scroll_to(&mut cdp, "This page called close");
    cdp.screenshot(&target.join("browser-disconnect-close.png"));

    // Close from the server: its close frame is described before it goes out, and then the
    // socket closes cleanly with its code and reason.
    cdp.click("reconnect");
    cdp.wait_for("the three commands again", COMMANDS_USABLE);
    fold_handshake(&mut cdp);
    give_command(&mut cdp, "close");
    let close = frame_under(&mut cdp, "server", "Close frame from the server: 1000");
    let reason = "closed at the page's request";
    assert_eq!(header(&close), format!("88 {:02x}", 2 + reason.len()));
    assert!(
        text(&close["notes"]).contains(&format!(
            "close code 1000 Normal closure · reason “{reason}”"
        )),
        "{}",
        close["notes"]
    );
    expect_closed(&mut cdp, "after the server's close", "1000", reason);
    assert_eq!(
        cdp.eval("[...document.querySelectorAll('#log .entry.system .text')].pop().textContent"),
        json!(format!("Closed — 1000 Normal closure: “{reason}”")),
        "the socket's close event comes last, after the server's close frame"
    );
    assert_eq!(
        cdp.eval("[...document.querySelectorAll('#commands button')].every(b => b.disabled)"),
        json!(true),
        "no commands while closed"
    );
    scroll_to(&mut cdp, "{\"command\":\"close\"}");
    cdp.screenshot(&target.join("browser-server-close.png"));
    assert_eq!(cdp.eval(MISMATCHES), json!([]), "every frame agrees");
    cdp.assert_clean("after the commands");
    cdp.assert_silent("the commands");
}
