"use strict";
// The page's script: a WebSocket to the URL the page came from, the message log, and the
// frame inspector. One block, so that nothing it declares reaches the page's global scope.
{
  const ECHO_PREFIX = "Server got: ";
  // The subprotocol that asks pure-ws to describe, in JSON text messages of their own, the
  // handshake and every frame it receives and sends.
  const INSPECT = "pure-ws.inspect";
  const STORE_KEY = "pure-ws.showFrames";
  const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  // Messages longer than this are shortened in the log (never on the wire).
  const SHOWN_CHARS = 1000;
  const CLOSE_CODES = {
    1000: "Normal closure",
    1001: "Going away",
    1002: "Protocol error",
    1003: "Unsupported data",
    1005: "No status code received",
    1006: "Abnormal closure (connection lost)",
    1007: "Invalid payload data",
    1008: "Policy violation",
    1009: "Message too big",
    1010: "Mandatory extension missing",
    1011: "Internal server error",
    1012: "Service restart",
    1013: "Try again later",
    1015: "TLS handshake failure",
  };
  const OPCODES = { 0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong" };
  const LENGTH_ENCODINGS = { 0: "7-bit", 2: "16-bit", 8: "64-bit" };
  // The longest payload each length encoding can carry, and which encodings are wider.
  const LENGTH_LIMITS = { "7-bit": 125, "16-bit": 65535 };
  const ENCODING_RANK = { "7-bit": 0, "16-bit": 1, "64-bit": 2 };
  // Why a rule is what it is, said in the log once, on the first card where a learner meets
  // it (and always in the field's tooltip).
  const WHY = {
    mask: "Why mask? A page's script chooses these bytes; XORed with a key it cannot predict, " +
      "they cannot pose as a request that tricks a proxy into caching a reply (RFC 6455 §10.3).",
    lengths: "Why three length encodings? 7 bits carry up to 125; 126 means 16 bits follow " +
      "(up to 65,535), 127 means 64 bits: a small frame spends one byte on its length.",
  };
  // Close codes an endpoint reports to its own application but never sends (RFC 6455 §7.4.1).
  const NEVER_SENT = {
    1005: "1005 never goes on the wire: it is what your browser reports to this page when " +
      "the close frame carried no code (RFC 6455 §7.4.1).",
    1006: "1006 never goes on the wire: it is what your browser reports to this page when " +
      "the connection dropped without a close frame (RFC 6455 §7.4.1).",
  };
  const encoder = new TextEncoder();
  const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  // The control characters the server will not show as text: all but tab, LF and CR.
  const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

  // The socket goes to the very URL the page came from, so the page works at the root and
  // under any sub-path a proxy mounts it at (the server upgrades on any path).
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    location.pathname + location.search;
  const el = {
    status: document.getElementById("status"),
    endpoint: document.getElementById("endpoint"),
    stats: document.getElementById("stats"),
    log: document.getElementById("log"),
    form: document.getElementById("composer"),
    message: document.getElementById("message"),
    send: document.getElementById("send"),
    clear: document.getElementById("clear"),
    reconnect: document.getElementById("reconnect"),
    disconnect: document.getElementById("disconnect"),
    showFrames: document.getElementById("show-frames"),
    binary: document.getElementById("kind-binary"),
    sizes: document.querySelectorAll("button.size"),
    commands: document.getElementById("commands"),
    commandButtons: document.querySelectorAll("button.command"),
    framesNote: document.getElementById("frames-note"),
    handshake: document.getElementById("handshake"),
    hsNote: document.getElementById("hs-note"),
    hsFields: document.getElementById("hs-fields"),
    hsHeads: document.getElementById("hs-heads"),
  };

  let ws = null;
  let inspecting = false;    // the open socket's server selected INSPECT
  let echoNext = null;       // {received, sent}: the server described a message; its echo comes next
  let pingAsked = false;     // the page asked for a ping; the server's next ping is that one
  let awaitingFrames = [];   // sent entries whose frames the server has not described yet
  let pending = [];          // sent messages awaiting their echo: {text, binary, t0}
  const history = [];        // sent messages, oldest first, for ArrowUp / ArrowDown
  let historyPos = 0;        // history.length means "the line being typed"
  let draft = "";
  let stats = { sent: 0, received: 0, rttSum: 0, rttCount: 0 };
  const whyShown = new Set(); // the WHY notes already in the log

  el.endpoint.textContent = url;

  const pad = (n, width) => String(n).padStart(width, "0");

  function clock(d) {
    return pad(d.getHours(), 2) + ":" + pad(d.getMinutes(), 2) + ":" + pad(d.getSeconds(), 2) +
      "." + pad(d.getMilliseconds(), 3);
  }

  const grouped = n => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

  const plural = (n, word) => grouped(n) + " " + word + (n === 1 ? "" : "s");

  function describeClose(code, reason) {
    const words = CLOSE_CODES[code] || (code >= 4000 ? "Application-defined" : "Unknown code");
    let s = "Closed — " + code + " " + words;
    if (reason) s += ": “" + reason + "”";
    return s;
  }

  const formatRtt = ms => (ms < 10 ? ms.toFixed(1) : String(Math.round(ms))) + " ms";

  function renderStats() {
    let s = stats.sent + " sent · " + stats.received + " received";
    if (stats.rttCount) s += " · avg RTT " + formatRtt(stats.rttSum / stats.rttCount);
    el.stats.textContent = s;
  }

  const nearBottom = () => el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 48;

  function loadShowFrames() {
    try {
      return localStorage.getItem(STORE_KEY) === "1";
    } catch {
      return false; // storage is off for this page: frames start hidden
    }
  }

  function saveShowFrames(on) {
    try {
      localStorage.setItem(STORE_KEY, on ? "1" : "0");
    } catch {
      // Storage is off for this page: the choice lasts until it is reloaded.
    }
  }

  // ---- bytes ----

  function hexToBytes(s) {
    if (typeof s !== "string" || s === "") return [];
    return s.split(" ").map(h => parseInt(h, 16));
  }

  const hex = bytes => Array.from(bytes, b => pad(b.toString(16), 2)).join(" ");

  const bits = (value, width) => pad(value.toString(2), width);

  function utf8OrNull(bytes) {
    try {
      return strictUtf8.decode(bytes);
    } catch {
      return null;
    }
  }

  // The server's one rule for showing a payload (`printable` in src/trace.rs): its text when
  // it is UTF-8 (a code point cut off by the end of the bytes is allowed) with no control
  // character but tab, LF and CR; otherwise null, and it is shown in hex.
  function printable(bytes) {
    let text;
    try {
      // Streaming, the decoder holds back a cut-off sequence at the end instead of failing.
      const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
      text = decoder.decode(new Uint8Array(bytes), { stream: true });
    } catch {
      return null;
    }
    return CONTROL.test(text) ? null : text;
  }

  const base64 = bytes => btoa(String.fromCharCode(...bytes));

  // ---- the log ----

  // Every piece of text goes in through textContent, never as HTML.
  function node(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function shorten(text) {
    if (text.length <= SHOWN_CHARS) return text;
    return text.slice(0, 200) + " … (" + plural(text.length, "character") + " in all)";
  }

  function addEntry(kind, label, text, extra = {}) {
    const stick = kind === "sent" || nearBottom();
    const now = new Date();
    const li = node("li", "entry " + kind + (extra.error ? " error" : ""));

    const meta = node("div", "meta");
    if (label) meta.appendChild(node("span", "dir", label));
    if (extra.binary) meta.appendChild(node("span", "kind", "binary"));
    if (extra.tag) meta.appendChild(node("span", "kind", extra.tag));
    const time = node("time", "", clock(now));
    time.dateTime = now.toISOString();
    meta.appendChild(time);
    if (typeof extra.rtt === "number") {
      const rtt = node("span", "rtt", "RTT " + formatRtt(extra.rtt));
      rtt.title = "Round-trip time from send to echo";
      meta.appendChild(rtt);
    }
    li.appendChild(meta);
    li.appendChild(node(kind === "system" ? "span" : "p", "text", shorten(text)));
    if (extra.why) li.appendChild(node("div", "why", extra.why));

    el.log.appendChild(li);
    if (stick) el.log.scrollTop = el.log.scrollHeight;
    return li;
  }

  // ---- frames, drawn the way RFC 6455 §5.2 draws them ----

  function field(cls, bitText, name, value, why) {
    const f = node("div", "fld " + cls);
    f.appendChild(node("span", "fbits", bitText));
    f.appendChild(node("span", "fname", name));
    f.appendChild(node("span", "fval", value));
    if (why) f.title = why;
    return f;
  }

  function fieldGroup(byteText, fields) {
    const g = node("div", "fgroup");
    g.appendChild(node("div", "fbyte", byteText));
    const row = node("div", "fields");
    fields.forEach(f => row.appendChild(f));
    g.appendChild(row);
    return g;
  }

  // What each payload byte shows in the text row: a character on the byte that starts it
  // (UTF-8 for text, printable ASCII otherwise), "·" for bytes that are not one.
  function byteChars(bytes, from, utf8) {
    const out = bytes.map(() => "");
    let i = from;
    while (i < bytes.length) {
      const b = bytes[i];
      let n = !utf8 || b < 0xc0 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      let ch = null;
      if (i + n <= bytes.length && (b >= 0x20 && b !== 0x7f) && (utf8 || b < 0x7f)) {
        ch = utf8 ? utf8OrNull(new Uint8Array(bytes.slice(i, i + n))) : String.fromCharCode(b);
      }
      if (ch === null) n = 1;
      out[i] = ch === null ? "·" : ch === " " ? "␣" : ch;
      i += n;
    }
    return out;
  }

  // The payload as aligned rows, masked bytes ⊕ key = bytes, and, when the payload is text
  // by the server's rule (`withText`), the text they spell; 16 bytes a line, like a hex
  // dump, each line with its row labels.
  function payloadRows(masked, plain, key, opcode, withText) {
    const box = node("div", "payload");
    const labels = key.length ? ["masked", "⊕ key", "= bytes"] : ["bytes"];
    if (withText) labels.push("text");
    const codeBytes = opcode === 8 ? 2 : 0;
    const chars = byteChars(plain, codeBytes, opcode !== 2);
    let line = null;
    plain.forEach((b, i) => {
      if (i % 16 === 0) {
        line = node("div", "prow");
        const legend = node("div", "pcol legend");
        labels.forEach(t => legend.appendChild(node("span", "", t)));
        line.appendChild(legend);
        box.appendChild(line);
      }
      const col = node("div", "pcol" + (key.length ? " mk" : "") + (i < codeBytes ? " code" : ""));
      if (key.length) {
        col.appendChild(node("span", "m", hex([masked[i]])));
        col.appendChild(node("span", "k", hex([key[i % 4]])));
      }
      col.appendChild(node("span", "u", hex([b])));
      if (withText) col.appendChild(node("span", "c", i < codeBytes ? (i === 0 ? "code" : "") : chars[i]));
      line.appendChild(col);
    });
    return box;
  }

  // A frame header's fields, read from its bytes the way RFC 6455 §5.2 lays them out.
  function readHeader(bytes) {
    const [b0, b1] = bytes;
    const opcode = b0 & 0x0f;
    const mask = b1 >> 7;
    const len7 = b1 & 0x7f;
    const extSize = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const ext = bytes.slice(2, 2 + extSize);
    return {
      bytes,
      b0,
      b1,
      fin: b0 >> 7,
      rsv: [(b0 >> 6) & 1, (b0 >> 5) & 1, (b0 >> 4) & 1],
      opcode,
      opName: OPCODES[opcode] || "reserved",
      mask,
      len7,
      extSize,
      ext,
      key: mask ? bytes.slice(2 + extSize, 6 + extSize) : [],
      hiddenKey: false,
      length: extSize ? ext.reduce((n, b) => n * 256 + b, 0) : len7,
      encoding: LENGTH_ENCODINGS[extSize],
    };
  }

  // Where the server's decoded fields `f` say something else than the header `h` and the
  // payload bytes, one sentence each.
  function crossCheck(h, f, masked, plain, fromBrowser) {
    const problems = [];
    const expect = (what, fromHeader, fromJson) => {
      if (fromHeader !== fromJson) {
        problems.push(what + ": the header says " + fromHeader + ", the server's fields say " + fromJson);
      }
    };
    expect("header size", 2 + h.extSize + h.key.length, h.bytes.length);
    expect("FIN", h.fin === 1, f.fin);
    expect("RSV1", h.rsv[0] === 1, f.rsv1);
    expect("RSV2", h.rsv[1] === 1, f.rsv2);
    expect("RSV3", h.rsv[2] === 1, f.rsv3);
    expect("opcode", h.opcode, f.opcode);
    if (OPCODES[h.opcode]) expect("opcode name", h.opName, f.opcodeName);
    expect("MASK", h.mask === 1, f.mask);
    expect("masking key", h.mask ? hex(h.key) : null, f.maskingKey);
    expect("payload length", h.length, f.payloadLength);
    expect("length encoding", h.encoding, f.lengthEncoding);
    expect("payload bytes", h.length, masked.length + f.more);
    expect("unmasked payload", hex(plain), f.payloadHex);
    // Binary and reserved frames have no text; a close frame's text is its reason.
    const textBytes = h.opcode === 2 || !OPCODES[h.opcode] ? null : h.opcode === 8 ? plain.slice(2) : plain;
    const shown = textBytes && printable(textBytes);
    expect("payload text", shown, f.payloadText);
    const isClose = h.opcode === 8 && plain.length >= 2;
    expect("close code", isClose ? plain[0] * 256 + plain[1] : null, f.closeCode);
    expect("close reason", isClose ? shown : null, f.closeReason);
    if ((h.mask === 1) !== fromBrowser) {
      problems.push("RFC 6455 §5.1: a client masks every frame, a server none");
    }
    return problems;
  }

  function frameTitle(h, fromBrowser, part) {
    const title = node("div", "frame-title");
    if (part) title.appendChild(node("span", "part", part));
    title.appendChild(document.createTextNode(
      (fromBrowser ? "Your browser → server" : "Server → your browser") + " · " + h.opName +
      " · " + plural(h.length, "byte") + " · " + h.encoding + " length · " +
      (h.mask ? "masked" : "not masked")));
    return title;
  }

  // The header bytes in a row, each coloured by the field it belongs to; a key the page
  // cannot see is four "??".
  function headerBytes(h) {
    const hdr = node("div", "hdr");
    hdr.appendChild(node("span", "caption", "header"));
    const hdrHex = node("span", "hdr-hex");
    const shown = h.hiddenKey ? h.bytes.map(b => hex([b])).concat(["??", "??", "??", "??"])
      : h.bytes.map(b => hex([b]));
    shown.forEach((b, i) => {
      const cls = i < 2 ? "f-hdr" : i < 2 + h.extSize ? "f-ext" : "f-key";
      if (i) hdrHex.appendChild(document.createTextNode(" "));
      hdrHex.appendChild(node("span", "hb " + cls, b));
    });
    hdr.appendChild(hdrHex);
    return hdr;
  }

  // Under each header byte (or group of bytes), the fields it holds: bits, name, meaning.
  function headerFields(h) {
    const groups = node("div", "fgroups");
    groups.appendChild(fieldGroup(hex([h.b0]), [
      field("f-fin", String(h.fin), "FIN", h.fin ? "final" : "more follow"),
      field("f-rsv", String(h.rsv[0]), "RSV1", h.rsv[0] ? "set" : "–"),
      field("f-rsv", String(h.rsv[1]), "RSV2", h.rsv[1] ? "set" : "–"),
      field("f-rsv", String(h.rsv[2]), "RSV3", h.rsv[2] ? "set" : "–"),
      field("f-op", bits(h.opcode, 4), "opcode", h.opcode + " " + h.opName),
    ]));
    groups.appendChild(fieldGroup(hex([h.b1]), [
      field("f-mask", String(h.mask), "MASK", h.mask ? "masked" : "none", WHY.mask),
      field("f-len", bits(h.len7, 7), "payload len",
        h.extSize ? h.len7 + ": " + h.encoding + " follows" : String(h.len7), WHY.lengths),
    ]));
    if (h.extSize) {
      groups.appendChild(fieldGroup(hex(h.ext), [
        field("f-ext", grouped(h.length), "extended length", h.encoding, WHY.lengths),
      ]));
    }
    if (h.mask) {
      groups.appendChild(fieldGroup(h.hiddenKey ? "?? ?? ?? ??" : hex(h.key), [
        field("f-key", "", "masking key", h.hiddenKey ? "your browser's, not shown" : "XORed into the payload",
          WHY.mask),
      ]));
    }
    return groups;
  }

  function closeLine(code, reason) {
    const words = CLOSE_CODES[code] ? " " + CLOSE_CODES[code] : "";
    return "close code " + code + words + (reason ? " · reason “" + reason + "”" : "");
  }

  // A ping's or pong's payload, by the server's rule: its text, or its bytes in hex.
  function controlPayload(f) {
    if (f.payloadLength === 0) return "no payload";
    const cut = f.more > 0 ? "…" : "";
    return typeof f.payloadText === "string" ? "payload “" + f.payloadText + cut + "”"
      : "payload " + f.payloadHex + cut + " (hex: not printable text)";
  }

  // The lines under a frame: how many payload bytes are not shown, a control frame's
  // payload or close code, and how a received frame came through TCP.
  function appendNotes(box, f) {
    if (f.more > 0) box.appendChild(node("div", "more", "… " + plural(f.more, "more byte")));
    if (f.opcode === 9 || f.opcode === 10) box.appendChild(node("div", "more", controlPayload(f)));
    if (typeof f.closeCode === "number") box.appendChild(node("div", "more", closeLine(f.closeCode, f.closeReason)));
    if (f.reads > 1) {
      box.appendChild(node("div", "note arrival",
        "arrived in " + plural(f.reads, "read") + ": TCP carries bytes, not frames, and the server joined them"));
    }
    if (f.sharedRead) {
      box.appendChild(node("div", "note arrival",
        "shared a read with another frame: the server split the bytes where its header said it ends"));
    }
  }

  // The WHY note `key`, on this card if the log does not show it yet.
  function whyOnce(box, key) {
    if (whyShown.has(key)) return;
    whyShown.add(key);
    box.appendChild(node("div", "why", WHY[key]));
  }

  // Draws one FRAME of the server's description. The fields are read from the header bytes
  // themselves; the server's decoded fields only serve to cross-check them. `opts.part`
  // names its place in a fragmented message; `opts.notes` are lines of its own.
  function renderFrame(f, opts = {}) {
    const fromBrowser = f.direction === "received";
    const box = node("div", "frame " + (fromBrowser ? "browser" : "server"));
    const bytes = hexToBytes(f.header);
    if (bytes.length < 2) {
      box.appendChild(node("div", "mismatch", "The server described a frame without its header bytes."));
      return box;
    }
    const h = readHeader(bytes);
    const masked = hexToBytes(f.payloadMasked);
    const plain = masked.map((b, i) => (h.mask ? b ^ h.key[i % 4] : b));
    const problems = crossCheck(h, f, masked, plain, fromBrowser);

    box.appendChild(frameTitle(h, fromBrowser, opts.part));
    box.appendChild(headerBytes(h));
    box.appendChild(headerFields(h));
    const withText = typeof f.payloadText === "string";
    if (plain.length) box.appendChild(payloadRows(masked, plain, h.key, h.opcode, withText));
    appendNotes(box, f);
    (opts.notes || []).forEach(text => box.appendChild(node("div", "note", text)));
    if (h.mask) whyOnce(box, "mask");
    if (h.extSize) whyOnce(box, "lengths");
    if (problems.length) box.appendChild(node("div", "mismatch", "Mismatch — " + problems.join("; ")));
    return box;
  }

  // A frame's place in a message of `count` frames, when there are several.
  function partName(i, count) {
    if (count < 2) return "";
    return i === 0 ? "first" : i === count - 1 ? "final" : "continuation";
  }

  // The drawings of a message's frames (the first `frames` of `count`), each labelled with
  // its place and given the lines `notesOf` has for it.
  function messageCards(frames, count, notesOf) {
    return frames.map((f, i) => renderFrame(f, {
      part: partName(i, count),
      notes: notesOf ? notesOf(f) : [],
    }));
  }

  // Puts the drawings `boxes` right under the log entry `after` (if it is still shown);
  // `omitted` counts the frames of a message past those the server describes.
  function attachFrames(after, side, boxes, omitted) {
    if (!after || after.parentNode !== el.log) return;
    const stick = nearBottom();
    const li = node("li", "frames " + side);
    boxes.forEach(box => li.appendChild(box));
    if (omitted > 0) li.appendChild(node("div", "more", "… and " + plural(omitted, "more frame")));
    el.log.insertBefore(li, after.nextSibling);
    if (stick) el.log.scrollTop = el.log.scrollHeight;
  }

  // The close frame the page asks the browser to send with close(code, reason), drawn from
  // what the page knows: a browser drops every message that comes after close(), so the
  // server's account of this frame never reaches the page. The masking key is the
  // browser's own secret, so the key and the masked bytes cannot be shown.
  function ownCloseFrame(code, reason) {
    const payload = [code >> 8, code & 0xff, ...encoder.encode(reason)];
    const h = readHeader([0x88, 0x80 | payload.length]);
    h.hiddenKey = true;
    const box = node("div", "frame browser own");
    const title = frameTitle(h, true, "");
    title.appendChild(document.createTextNode(" · drawn by this page, not by the server"));
    box.appendChild(title);
    box.appendChild(headerBytes(h));
    box.appendChild(headerFields(h));
    box.appendChild(payloadRows([], payload, [], 8, true));
    box.appendChild(node("div", "more", closeLine(code, reason)));
    box.appendChild(node("div", "note", "The masking key is your browser's, drawn for this frame: " +
      "page JavaScript cannot see it, so neither the key nor the masked bytes can be shown."));
    whyOnce(box, "mask");
    return box;
  }

  // ---- the handshake card ----

  function resetHandshake(on, note) {
    el.handshake.hidden = !on;
    el.hsFields.hidden = true;
    el.hsHeads.hidden = true;
    el.hsNote.className = "check";
    el.hsNote.textContent = note;
  }

  function showHandshake(r) {
    const lines = { key: r.key, guid: r.guid, joined: r.joined, sha1: r.sha1, accept: r.accept };
    Object.keys(lines).forEach(k => {
      document.getElementById("hs-" + k).textContent = lines[k] || "";
    });
    document.getElementById("hs-request").textContent = (r.request || []).join("\n");
    document.getElementById("hs-response").textContent = (r.response || []).join("\n");
    el.hsFields.hidden = false;
    el.hsHeads.hidden = false;

    const problems = [];
    if (r.guid !== GUID) problems.push("the GUID is not RFC 6455's");
    if (r.joined !== r.key + r.guid) problems.push("key + GUID is not the key followed by the GUID");
    const digest = hexToBytes(r.sha1);
    if (digest.length !== 20 || base64(digest) !== r.accept) {
      problems.push("Accept is not the base64 of the SHA-1");
    }
    const sent = (r.response || []).filter(l => /^sec-websocket-accept:/i.test(l));
    if (sent.length !== 1 || sent[0].replace(/^[^:]*:\s*/, "") !== r.accept) {
      problems.push("the response does not carry this Accept");
    }
    el.hsNote.className = "check " + (problems.length ? "bad" : "ok");
    el.hsNote.textContent = problems.length
      ? "✗ " + problems.join("; ")
      : "✓ Accept = base64(SHA-1(key + GUID)), as your browser checked before opening the socket.";
    // Where the page may use Web Crypto (https or localhost), it recomputes the SHA-1 too.
    if (problems.length || !window.crypto || !crypto.subtle) return;
    recomputeSha1(r);
  }

  // Adds to the handshake note whether this page's own SHA-1 of key + GUID is the server's.
  function recomputeSha1(r) {
    crypto.subtle.digest("SHA-1", encoder.encode(r.joined)).then(d => {
      const same = hex(new Uint8Array(d)) === r.sha1;
      el.hsNote.className = "check " + (same ? "ok" : "bad");
      el.hsNote.textContent += same
        ? " This page's own SHA-1 agrees."
        : " ✗ This page computes a different SHA-1: " + hex(new Uint8Array(d));
    }, () => {
      el.hsNote.textContent += " (This page could not recompute the SHA-1.)";
    });
  }

  // ---- what the server says ----

  // A description of frames, or null for anything else. Echoes never start with "{" in the
  // default prefix mode; and the message after a "message" description is always its echo.
  function parseRecord(data) {
    if (data.charAt(0) !== "{") return null;
    try {
      const r = JSON.parse(data);
      return r && typeof r.inspect === "string" ? r : null;
    } catch {
      return null;
    }
  }

  function closeWords(f) {
    return (typeof f.closeCode === "number" ? ": " + f.closeCode : "") +
      (f.closeReason ? " “" + f.closeReason + "”" : "");
  }

  // A control frame your browser sent.
  function controlText(f) {
    switch (f.opcode) {
      case 10: return "Pong from your browser, answering the server's ping with its payload";
      case 9: return "Ping from your browser; the server answers with a pong";
      case 8: return "Close frame from your browser" + closeWords(f) + "; the server replies with its own";
      default: return "Control frame " + f.opcode + " from your browser";
    }
  }

  // A control frame the server sends on its own, described just before it goes out.
  function serverControlText(f) {
    switch (f.opcode) {
      case 9: {
        const asked = pingAsked;
        pingAsked = false;
        return "Ping from the server" + (asked ? ", as this page asked" : "") +
          "; your browser answers with a pong";
      }
      case 8: return "Close frame from the server" + closeWords(f) + "; your browser answers with its own";
      default: return "Control frame " + f.opcode + " from the server";
    }
  }

  // The lines a control frame's card has of its own.
  function controlNotes(f) {
    if (f.direction !== "sent" || f.opcode !== 8) return [];
    return ["Nothing follows the server's close frame, not even its account of your browser's " +
      "answer: RFC 6455 §5.5.1 allows no data frame after a close."];
  }

  // A control frame: one your browser sent, with the server's answer if it had one, or one
  // the server sends on its own.
  function describeControl(r) {
    if (!r.received && !r.sent) return;
    const text = r.received ? controlText(r.received) : serverControlText(r.sent);
    const li = addEntry("system", "", text);
    const frames = [r.received, r.sent].filter(Boolean);
    attachFrames(li, "control", frames.map(f => renderFrame(f, { notes: controlNotes(f) })), 0);
  }

  // The frames that carried a message of the page's in: under that message's entry.
  function describeSent(r) {
    const frames = Array.isArray(r.received) ? r.received : [];
    const omitted = r.omitted || 0;
    attachFrames(awaitingFrames.shift(), "browser", messageCards(frames, frames.length + omitted), omitted);
  }

  // The server heard a command: its frames, and what happens next.
  function acknowledged(r) {
    describeSent(r);
    if (r.command === "ping") pingAsked = true;
    if (r.command === "fragment") {
      addEntry("system", "", "The server sends its next echo in three frames: send a message to see them");
    }
  }

  function inspect(r) {
    switch (r.inspect) {
      case "handshake":
        showHandshake(r);
        break;
      case "message":
        describeSent(r);
        echoNext = {
          received: Array.isArray(r.received) ? r.received : [],
          sent: Array.isArray(r.sent) ? r.sent : [],
        };
        break;
      case "command":
        acknowledged(r);
        break;
      case "control":
        describeControl(r);
        break;
      default:
    }
  }

  // The notes for the frame of an echo: when it needs a wider length encoding than the
  // frame it answers (the 125-byte message: its echo is 137 bytes, over what 7 bits hold),
  // a line that says so.
  function echoLengthNotes(received, sent) {
    const [mine] = received;
    const [echo] = sent;
    if (sent.length !== 1 || received.length !== 1) return () => [];
    if (!(ENCODING_RANK[echo.lengthEncoding] > ENCODING_RANK[mine.lengthEncoding])) return () => [];
    const added = echo.payloadLength - mine.payloadLength;
    const what = added === encoder.encode(ECHO_PREFIX).length ? "“" + ECHO_PREFIX + "” adds " : "the echo adds ";
    const limit = LENGTH_LIMITS[mine.lengthEncoding];
    return () => ["Your " + plural(mine.payloadLength, "byte") + " fit the " + mine.lengthEncoding + " length; " +
      what + plural(added, "byte") + ", and " + grouped(echo.payloadLength) + " is over " + grouped(limit) +
      ", so the echo needs the " + echo.lengthEncoding + " length."];
  }

  function receiveEcho(data, t1, described) {
    const binary = typeof data !== "string";
    const bytes = binary ? new Uint8Array(data) : null;
    const text = binary ? utf8OrNull(bytes) : data;
    const extra = { binary };
    if (text !== null) {
      // It echoes the oldest waiting message it matches; those sent before that one are no
      // longer timed.
      const i = pending.findIndex(p => p.binary === binary && ECHO_PREFIX + p.text === text);
      if (i >= 0) {
        extra.rtt = t1 - pending[i].t0;
        pending.splice(0, i + 1);
      }
    }
    stats.received++;
    if (typeof extra.rtt === "number") {
      stats.rttSum += extra.rtt;
      stats.rttCount++;
    }
    renderStats();
    const shown = text !== null ? text
      : hex(bytes.subarray(0, 64)) + (bytes.length > 64 ? " … " + plural(bytes.length - 64, "more byte") : "");
    const li = addEntry("received", "Received", shown, extra);
    if (described) {
      const { received, sent } = described;
      attachFrames(li, "server", messageCards(sent, sent.length, echoLengthNotes(received, sent)), 0);
    }
  }

  // ---- the connection ----

  function setState(state, text) {
    el.status.dataset.state = state;
    el.status.textContent = text;
    const open = state === "open";
    el.send.disabled = !open;
    el.sizes.forEach(b => {
      b.disabled = !open;
    });
    el.reconnect.hidden = state !== "closed";
    el.disconnect.hidden = !open;
    // The commands ask the frame inspector, so they show with it and work while it is on.
    const frames = el.showFrames.checked;
    el.commands.hidden = !frames;
    el.framesNote.hidden = !frames;
    el.commandButtons.forEach(b => {
      b.disabled = !(open && inspecting);
    });
  }

  function connect() {
    if (ws && ws.readyState !== WebSocket.CLOSED) return;
    pending = [];
    awaitingFrames = [];
    echoNext = null;
    pingAsked = false;
    inspecting = false;
    const wantFrames = el.showFrames.checked;
    resetHandshake(wantFrames, "Waiting for the server's description of the handshake…");
    setState("connecting", "Connecting…");
    let sock;
    try {
      sock = wantFrames ? new WebSocket(url, [INSPECT]) : new WebSocket(url);
    } catch (e) {
      setState("closed", "Closed — could not create WebSocket: " + (e && e.message ? e.message : e));
      return;
    }
    sock.binaryType = "arraybuffer";
    ws = sock;
    listen(sock, wantFrames);
  }

  // What the socket's events do. A handler that acts first checks that `sock` is still the
  // page's socket: one the page has let go of (see abandon) changes nothing on the page.
  function listen(sock, wantFrames) {
    let opened = false;

    sock.onopen = () => {
      if (ws !== sock) return;
      opened = true;
      inspecting = sock.protocol === INSPECT;
      setState("open", "Connected");
      if (!wantFrames) {
        addEntry("system", "", "Connected");
      } else if (inspecting) {
        addEntry("system", "", "Connected, showing frames");
      } else {
        const note = "The server did not select " + INSPECT + ", so it describes no frames";
        resetHandshake(true, note + ".");
        addEntry("system", "", "Connected; " + note);
      }
    };

    sock.onmessage = ev => {
      if (ws !== sock) return;
      const t1 = performance.now();
      if (inspecting && !echoNext && typeof ev.data === "string") {
        const record = parseRecord(ev.data);
        if (record) {
          inspect(record);
          return;
        }
      }
      const described = echoNext;
      echoNext = null;
      receiveEcho(ev.data, t1, described);
    };

    sock.onerror = () => {
      // The close event that always follows carries the code; nothing to add here.
    };

    sock.onclose = ev => {
      if (ws !== sock) return;
      // A socket that never opened failed its handshake (refused, not found, no server):
      // its 1006 says nothing, the URL says where to look.
      const text = opened ? describeClose(ev.code, ev.reason) : "Could not connect to " + url;
      if (!opened) resetHandshake(wantFrames, "No handshake: could not connect.");
      setState("closed", text);
      addEntry("system", "", text, { error: ev.code !== 1000, why: opened ? NEVER_SENT[ev.code] : undefined });
    };
  }

  // Lets go of the current socket, closing it cleanly; the next connect() starts afresh.
  function abandon() {
    const sock = ws;
    ws = null;
    if (!sock) return;
    // Closing a socket that is still connecting makes Chromium warn on the console, so such
    // a socket is closed as soon as it opens instead.
    if (sock.readyState === WebSocket.CONNECTING) {
      sock.onopen = () => sock.close(1000, "Frames toggled");
    } else if (sock.readyState === WebSocket.OPEN) {
      closeOwn(sock, "Frames toggled", true);
    }
  }

  // Closes `sock` with 1000 and `reason`; with `draw`, first shows the close frame that asks
  // the browser to send, which the server's account would describe too late to be seen.
  function closeOwn(sock, reason, draw) {
    if (draw) {
      const li = addEntry("system", "", "This page called close(1000, “" + reason + "”): your browser sends this close frame");
      attachFrames(li, "browser", [ownCloseFrame(1000, reason)], 0);
    }
    sock.close(1000, reason);
  }

  // Sends `name` to the server as a command of the frame inspector, drawn as a message of
  // the page's: the server's acknowledgment describes its frames.
  function command(name) {
    if (!ws || ws.readyState !== WebSocket.OPEN || !inspecting) return;
    const text = JSON.stringify({ command: name });
    stats.sent++;
    renderStats();
    awaitingFrames.push(addEntry("sent", "Sent", text, { tag: "command" }));
    ws.send(text);
  }

  function transmit(text) {
    const binary = el.binary.checked;
    // Update the page first so its layout work is not counted in the round trip.
    stats.sent++;
    renderStats();
    const li = addEntry("sent", "Sent", text, { binary });
    if (inspecting) awaitingFrames.push(li);
    pending.push({ text, binary, t0: performance.now() });
    ws.send(binary ? encoder.encode(text) : text);
  }

  function send() {
    const text = el.message.value;
    el.message.focus();
    if (!ws || ws.readyState !== WebSocket.OPEN || text === "") return;
    if (history[history.length - 1] !== text) history.push(text);
    if (history.length > 100) history.shift();
    historyPos = history.length;
    el.message.value = "";
    transmit(text);
  }

  // A message of exactly `size` bytes (ASCII, so also `size` characters).
  function sizedMessage(size) {
    const fill = "abcdefghijklmnopqrstuvwxyz0123456789";
    let s = grouped(size) + " bytes: ";
    while (s.length < size) s += fill;
    return s.slice(0, size);
  }

  el.form.addEventListener("submit", ev => {
    ev.preventDefault();
    send();
  });

  el.sizes.forEach(button => {
    button.addEventListener("click", () => {
      if (ws && ws.readyState === WebSocket.OPEN) transmit(sizedMessage(Number(button.dataset.size)));
    });
  });

  el.commandButtons.forEach(button => {
    button.addEventListener("click", () => command(button.dataset.command));
  });

  // ArrowUp / ArrowDown step through what was sent, like a shell.
  el.message.addEventListener("keydown", ev => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.isComposing) return;
    if (ev.key !== "ArrowUp" && ev.key !== "ArrowDown") return;
    if (!history.length) return;
    if (historyPos === history.length) draft = el.message.value;
    const next = historyPos + (ev.key === "ArrowUp" ? -1 : 1);
    if (next < 0 || next > history.length) return;
    ev.preventDefault();
    historyPos = next;
    el.message.value = next === history.length ? draft : history[next];
    const end = el.message.value.length;
    el.message.setSelectionRange(end, end);
  });

  el.showFrames.addEventListener("change", () => {
    const on = el.showFrames.checked;
    saveShowFrames(on);
    addEntry("system", "", on ? "Frames on: reconnecting, offering " + INSPECT : "Frames off: reconnecting");
    abandon();
    connect();
  });

  el.clear.addEventListener("click", () => {
    el.log.textContent = "";
    whyShown.clear();
    stats = { sent: 0, received: 0, rttSum: 0, rttCount: 0 };
    renderStats();
    el.message.focus();
  });

  el.reconnect.addEventListener("click", () => {
    connect();
    el.message.focus();
  });

  el.disconnect.addEventListener("click", () => {
    if (ws && ws.readyState === WebSocket.OPEN) {
      setState("closing", "Closing…");
      el.disconnect.hidden = true;
      closeOwn(ws, "Closed by user", el.showFrames.checked);
    }
    el.message.focus();
  });

  el.showFrames.checked = loadShowFrames();
  renderStats();
  connect();
  // Focus from script rather than with the autofocus attribute, which Chromium reports on
  // the console when the page already has a focused element.
  el.message.focus();
}
