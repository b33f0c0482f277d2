"use strict";
(function () {
  var ECHO_PREFIX = "Server got: ";
  // The subprotocol that asks pure-ws to describe, in JSON text messages of their own, the
  // handshake and every frame it receives and sends.
  var INSPECT = "pure-ws.inspect";
  var STORE_KEY = "pure-ws.showFrames";
  var GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  // Messages longer than this are shortened in the log (never on the wire).
  var SHOWN_CHARS = 1000;
  var CLOSE_CODES = {
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
    1015: "TLS handshake failure"
  };
  var OPCODES = { 0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong" };
  var LENGTH_ENCODINGS = { 0: "7-bit", 2: "16-bit", 8: "64-bit" };
  var encoder = new TextEncoder();
  var strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  // What the server does for payloadText: bad or cut-off sequences become U+FFFD.
  var lossyUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });

  // The socket goes to the very URL the page came from, so the page works at the root and
  // under any sub-path a proxy mounts it at (the server upgrades on any path).
  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    location.pathname + location.search;
  var el = {
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
    handshake: document.getElementById("handshake"),
    hsNote: document.getElementById("hs-note"),
    hsFields: document.getElementById("hs-fields"),
    hsHeads: document.getElementById("hs-heads")
  };

  var ws = null;
  var inspecting = false;    // the open socket's server selected INSPECT
  var echoNext = null;       // {frame}: the server described a message; its echo comes next
  var awaitingFrames = [];   // sent entries whose frames the server has not described yet
  var pending = [];          // sent messages awaiting their echo: {text, binary, t0}
  var history = [];          // sent messages, oldest first, for ArrowUp / ArrowDown
  var historyPos = 0;        // history.length means "the line being typed"
  var draft = "";
  var stats = { sent: 0, received: 0, rttSum: 0, rttCount: 0 };

  el.endpoint.textContent = url;

  function pad(n, width) {
    var s = String(n);
    while (s.length < width) s = "0" + s;
    return s;
  }

  function clock(d) {
    return pad(d.getHours(), 2) + ":" + pad(d.getMinutes(), 2) + ":" + pad(d.getSeconds(), 2) +
      "." + pad(d.getMilliseconds(), 3);
  }

  function grouped(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function plural(n, word) {
    return grouped(n) + " " + word + (n === 1 ? "" : "s");
  }

  function describeClose(code, reason) {
    var words = CLOSE_CODES[code] || (code >= 4000 ? "Application-defined" : "Unknown code");
    var s = "Closed — " + code + " " + words;
    if (reason) s += ": “" + reason + "”";
    return s;
  }

  function formatRtt(ms) {
    return (ms < 10 ? ms.toFixed(1) : String(Math.round(ms))) + " ms";
  }

  function renderStats() {
    var s = stats.sent + " sent · " + stats.received + " received";
    if (stats.rttCount) s += " · avg RTT " + formatRtt(stats.rttSum / stats.rttCount);
    el.stats.textContent = s;
  }

  function nearBottom() {
    return el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 48;
  }

  function loadShowFrames() {
    try {
      return localStorage.getItem(STORE_KEY) === "1";
    } catch (e) {
      return false; // storage is off for this page: frames start hidden
    }
  }

  function saveShowFrames(on) {
    try {
      localStorage.setItem(STORE_KEY, on ? "1" : "0");
    } catch (e) {
      // Storage is off for this page: the choice lasts until it is reloaded.
    }
  }

  // ---- bytes ----

  function hexToBytes(s) {
    if (typeof s !== "string" || s === "") return [];
    return s.split(" ").map(function (h) { return parseInt(h, 16); });
  }

  function hex(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return pad(b.toString(16), 2); }).join(" ");
  }

  function bits(value, width) {
    return pad(value.toString(2), width);
  }

  function utf8OrNull(bytes) {
    try {
      return strictUtf8.decode(bytes);
    } catch (e) {
      return null;
    }
  }

  function base64(bytes) {
    return btoa(String.fromCharCode.apply(null, bytes));
  }

  // ---- the log ----

  // Every piece of text goes in through textContent, never as HTML.
  function node(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function shorten(text) {
    if (text.length <= SHOWN_CHARS) return text;
    return text.slice(0, 200) + " … (" + plural(text.length, "character") + " in all)";
  }

  function addEntry(kind, label, text, extra) {
    var stick = kind === "sent" || nearBottom();
    var now = new Date();
    var li = node("li", "entry " + kind + (extra && extra.error ? " error" : ""));

    var meta = node("div", "meta");
    if (label) meta.appendChild(node("span", "dir", label));
    if (extra && extra.binary) meta.appendChild(node("span", "kind", "binary"));
    var time = node("time", "", clock(now));
    time.dateTime = now.toISOString();
    meta.appendChild(time);
    if (extra && typeof extra.rtt === "number") {
      var rtt = node("span", "rtt", "RTT " + formatRtt(extra.rtt));
      rtt.title = "Round-trip time from send to echo";
      meta.appendChild(rtt);
    }
    li.appendChild(meta);
    li.appendChild(node(kind === "system" ? "span" : "p", "text", shorten(text)));

    el.log.appendChild(li);
    if (stick) el.log.scrollTop = el.log.scrollHeight;
    return li;
  }

  // ---- frames, drawn the way RFC 6455 §5.2 draws them ----

  function field(cls, bitText, name, value) {
    var f = node("div", "fld " + cls);
    f.appendChild(node("span", "fbits", bitText));
    f.appendChild(node("span", "fname", name));
    f.appendChild(node("span", "fval", value));
    return f;
  }

  function fieldGroup(bytes, fields) {
    var g = node("div", "fgroup");
    g.appendChild(node("div", "fbyte", hex(bytes)));
    var row = node("div", "fields");
    fields.forEach(function (f) { row.appendChild(f); });
    g.appendChild(row);
    return g;
  }

  // What each payload byte shows in the text row: a character on the byte that starts it
  // (UTF-8 for text, printable ASCII otherwise), "·" for bytes that are not one.
  function byteChars(bytes, from, utf8) {
    var out = bytes.map(function () { return ""; });
    var i = from;
    while (i < bytes.length) {
      var b = bytes[i];
      var n = !utf8 || b < 0xc0 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      var ch = null;
      if (i + n <= bytes.length && (b >= 0x20 && b !== 0x7f) && (utf8 || b < 0x7f)) {
        ch = utf8 ? utf8OrNull(new Uint8Array(bytes.slice(i, i + n))) : String.fromCharCode(b);
      }
      if (ch === null) n = 1;
      out[i] = ch === null ? "·" : ch === " " ? "␣" : ch;
      i += n;
    }
    return out;
  }

  // The payload as three aligned rows, masked bytes ⊕ key = bytes, and the text they spell;
  // 16 bytes a line, like a hex dump, each line with its row labels.
  function payloadRows(masked, plain, key, opcode) {
    var box = node("div", "payload");
    var labels = key.length ? ["masked", "⊕ key", "= bytes", "text"] : ["bytes", "text"];
    var codeBytes = opcode === 8 ? 2 : 0;
    var chars = byteChars(plain, codeBytes, opcode !== 2);
    var line = null;
    plain.forEach(function (b, i) {
      if (i % 16 === 0) {
        line = node("div", "prow");
        var legend = node("div", "pcol legend");
        labels.forEach(function (t) { legend.appendChild(node("span", "", t)); });
        line.appendChild(legend);
        box.appendChild(line);
      }
      var col = node("div", "pcol" + (key.length ? " mk" : "") + (i < codeBytes ? " code" : ""));
      if (key.length) {
        col.appendChild(node("span", "m", hex([masked[i]])));
        col.appendChild(node("span", "k", hex([key[i % 4]])));
      }
      col.appendChild(node("span", "u", hex([b])));
      col.appendChild(node("span", "c", i < codeBytes ? (i === 0 ? "code" : "") : chars[i]));
      line.appendChild(col);
    });
    return box;
  }

  // Draws one FRAME of the server's description. The fields are read from the header bytes
  // themselves; the server's decoded fields only serve to cross-check them.
  function renderFrame(f) {
    var fromBrowser = f.direction === "received";
    var box = node("div", "frame " + (fromBrowser ? "browser" : "server"));
    var header = hexToBytes(f.header);
    if (header.length < 2) {
      box.appendChild(node("div", "mismatch", "The server described a frame without its header bytes."));
      return box;
    }
    var b0 = header[0];
    var b1 = header[1];
    var fin = b0 >> 7;
    var rsv = [(b0 >> 6) & 1, (b0 >> 5) & 1, (b0 >> 4) & 1];
    var opcode = b0 & 0x0f;
    var mask = b1 >> 7;
    var len7 = b1 & 0x7f;
    var extSize = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    var ext = header.slice(2, 2 + extSize);
    var key = mask ? header.slice(2 + extSize, 6 + extSize) : [];
    var length = extSize ? ext.reduce(function (n, b) { return n * 256 + b; }, 0) : len7;
    var opName = OPCODES[opcode] || "reserved";
    var encoding = LENGTH_ENCODINGS[extSize];

    var masked = hexToBytes(f.payloadMasked);
    var plain = masked.map(function (b, i) { return mask ? b ^ key[i % 4] : b; });

    var problems = [];
    function expect(what, fromHeader, fromJson) {
      if (fromHeader !== fromJson) {
        problems.push(what + ": the header says " + fromHeader + ", the server's fields say " + fromJson);
      }
    }
    expect("header size", 2 + extSize + key.length, header.length);
    expect("FIN", fin === 1, f.fin);
    expect("RSV1", rsv[0] === 1, f.rsv1);
    expect("RSV2", rsv[1] === 1, f.rsv2);
    expect("RSV3", rsv[2] === 1, f.rsv3);
    expect("opcode", opcode, f.opcode);
    if (OPCODES[opcode]) expect("opcode name", opName, f.opcodeName);
    expect("MASK", mask === 1, f.mask);
    expect("masking key", mask ? hex(key) : null, f.maskingKey);
    expect("payload length", length, f.payloadLength);
    expect("length encoding", encoding, f.lengthEncoding);
    expect("payload bytes", length, masked.length + f.more);
    expect("unmasked payload", hex(plain), f.payloadHex);
    var textBytes = opcode <= 1 ? plain : opcode === 8 ? plain.slice(2) : null;
    expect("payload text", textBytes && lossyUtf8.decode(new Uint8Array(textBytes)), f.payloadText);
    expect("close code", opcode === 8 && plain.length >= 2 ? plain[0] * 256 + plain[1] : null,
      f.closeCode);
    if ((mask === 1) !== fromBrowser) {
      problems.push("RFC 6455 §5.1: a client masks every frame, a server none");
    }

    box.appendChild(node("div", "frame-title",
      (fromBrowser ? "Your browser → server" : "Server → your browser") + " · " + opName +
      " · " + plural(length, "byte") + " · " + encoding + " length · " +
      (mask ? "masked" : "not masked")));

    var hdr = node("div", "hdr");
    hdr.appendChild(node("span", "caption", "header"));
    var hdrHex = node("span", "hdr-hex");
    header.forEach(function (b, i) {
      var cls = i < 2 ? "f-hdr" : i < 2 + extSize ? "f-ext" : "f-key";
      if (i) hdrHex.appendChild(document.createTextNode(" "));
      hdrHex.appendChild(node("span", "hb " + cls, hex([b])));
    });
    hdr.appendChild(hdrHex);
    box.appendChild(hdr);

    var groups = node("div", "fgroups");
    groups.appendChild(fieldGroup([b0], [
      field("f-fin", String(fin), "FIN", fin ? "final" : "more follow"),
      field("f-rsv", String(rsv[0]), "RSV1", rsv[0] ? "set" : "–"),
      field("f-rsv", String(rsv[1]), "RSV2", rsv[1] ? "set" : "–"),
      field("f-rsv", String(rsv[2]), "RSV3", rsv[2] ? "set" : "–"),
      field("f-op", bits(opcode, 4), "opcode", opcode + " " + opName)
    ]));
    groups.appendChild(fieldGroup([b1], [
      field("f-mask", String(mask), "MASK", mask ? "masked" : "none"),
      field("f-len", bits(len7, 7), "payload len",
        extSize ? len7 + ": " + encoding + " follows" : String(len7))
    ]));
    if (extSize) {
      groups.appendChild(fieldGroup(ext, [
        field("f-ext", grouped(length), "extended length", encoding)
      ]));
    }
    if (mask) {
      groups.appendChild(fieldGroup(key, [
        field("f-key", "", "masking key", "XORed into the payload")
      ]));
    }
    box.appendChild(groups);

    if (plain.length) box.appendChild(payloadRows(masked, plain, key, opcode));
    if (f.more > 0) box.appendChild(node("div", "more", "… " + plural(f.more, "more byte")));
    if (typeof f.closeCode === "number") {
      var reason = f.closeReason ? " · reason “" + f.closeReason + "”" : "";
      var words = CLOSE_CODES[f.closeCode] ? " " + CLOSE_CODES[f.closeCode] : "";
      box.appendChild(node("div", "more", "close code " + f.closeCode + words + reason));
    }
    if (problems.length) box.appendChild(node("div", "mismatch", "Mismatch — " + problems.join("; ")));
    return box;
  }

  // Puts the drawings of `frames` right under the log entry `after` (if it is still shown);
  // `omitted` counts the frames of a message past those the server describes.
  function attachFrames(after, side, frames, omitted) {
    if (!after || after.parentNode !== el.log) return;
    var stick = nearBottom();
    var li = node("li", "frames " + side);
    frames.forEach(function (f) {
      if (f) li.appendChild(renderFrame(f));
    });
    if (omitted > 0) li.appendChild(node("div", "more", "… and " + plural(omitted, "more frame")));
    el.log.insertBefore(li, after.nextSibling);
    if (stick) el.log.scrollTop = el.log.scrollHeight;
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
    var lines = { key: r.key, guid: r.guid, joined: r.joined, sha1: r.sha1, accept: r.accept };
    Object.keys(lines).forEach(function (k) {
      document.getElementById("hs-" + k).textContent = lines[k] || "";
    });
    document.getElementById("hs-request").textContent = (r.request || []).join("\n");
    document.getElementById("hs-response").textContent = (r.response || []).join("\n");
    el.hsFields.hidden = false;
    el.hsHeads.hidden = false;

    var problems = [];
    if (r.guid !== GUID) problems.push("the GUID is not RFC 6455's");
    if (r.joined !== r.key + r.guid) problems.push("key + GUID is not the key followed by the GUID");
    var digest = hexToBytes(r.sha1);
    if (digest.length !== 20 || base64(digest) !== r.accept) {
      problems.push("Accept is not the base64 of the SHA-1");
    }
    var sent = (r.response || []).filter(function (l) { return /^sec-websocket-accept:/i.test(l); });
    if (sent.length !== 1 || sent[0].replace(/^[^:]*:\s*/, "") !== r.accept) {
      problems.push("the response does not carry this Accept");
    }
    el.hsNote.className = "check " + (problems.length ? "bad" : "ok");
    el.hsNote.textContent = problems.length
      ? "✗ " + problems.join("; ")
      : "✓ Accept = base64(SHA-1(key + GUID)), as your browser checked before opening the socket.";
    // Where the page may use Web Crypto (https or localhost), it recomputes the SHA-1 too.
    if (problems.length || !window.crypto || !crypto.subtle) return;
    crypto.subtle.digest("SHA-1", encoder.encode(r.joined)).then(function (d) {
      var same = hex(new Uint8Array(d)) === r.sha1;
      el.hsNote.className = "check " + (same ? "ok" : "bad");
      el.hsNote.textContent += same
        ? " This page's own SHA-1 agrees."
        : " ✗ This page computes a different SHA-1: " + hex(new Uint8Array(d));
    }, function () {
      el.hsNote.textContent += " (This page could not recompute the SHA-1.)";
    });
  }

  // ---- what the server says ----

  // A description of frames, or null for anything else. Echoes never start with "{" in the
  // default prefix mode; and the message after a "message" description is always its echo.
  function parseRecord(data) {
    if (data.charAt(0) !== "{") return null;
    try {
      var r = JSON.parse(data);
      return r && typeof r.inspect === "string" ? r : null;
    } catch (e) {
      return null;
    }
  }

  function controlText(f) {
    switch (f.opcode) {
      case 10: return "Pong from your browser, answering the server's keepalive ping";
      case 9: return "Ping from your browser; the server answers with a pong";
      case 8: return "Close frame from your browser" +
        (typeof f.closeCode === "number" ? ": " + f.closeCode : "") +
        (f.closeReason ? " “" + f.closeReason + "”" : "") + "; the server replies with its own";
      default: return "Control frame " + f.opcode + " from your browser";
    }
  }

  // A control frame the server sends on its own, described just before it goes out.
  function serverControlText(f) {
    switch (f.opcode) {
      case 9: return "Keepalive ping from the server; your browser answers with a pong";
      case 8: return "Close frame from the server" +
        (typeof f.closeCode === "number" ? ": " + f.closeCode : "") +
        (f.closeReason ? " “" + f.closeReason + "”" : "");
      default: return "Control frame " + f.opcode + " from the server";
    }
  }

  function inspect(r) {
    if (r.inspect === "handshake") {
      showHandshake(r);
    } else if (r.inspect === "message") {
      attachFrames(awaitingFrames.shift(), "browser", r.received || [], r.omitted);
      echoNext = { frame: r.sent };
    } else if (r.inspect === "control" && r.received) {
      var li = addEntry("system", "", controlText(r.received));
      attachFrames(li, "control", [r.received, r.sent]);
    } else if (r.inspect === "control" && r.sent) {
      var own = addEntry("system", "", serverControlText(r.sent));
      attachFrames(own, "control", [r.sent]);
    }
  }

  function receiveEcho(data, t1, frame) {
    var binary = typeof data !== "string";
    var bytes = binary ? new Uint8Array(data) : null;
    var text = binary ? utf8OrNull(bytes) : data;
    var extra = { binary: binary };
    if (text !== null) {
      for (var i = 0; i < pending.length; i++) {
        if (pending[i].binary === binary && ECHO_PREFIX + pending[i].text === text) {
          extra.rtt = t1 - pending[i].t0;
          pending.splice(0, i + 1);
          break;
        }
      }
    }
    stats.received++;
    if (typeof extra.rtt === "number") {
      stats.rttSum += extra.rtt;
      stats.rttCount++;
    }
    renderStats();
    var shown = text !== null ? text
      : hex(bytes.subarray(0, 64)) + (bytes.length > 64 ? " … " + plural(bytes.length - 64, "more byte") : "");
    var li = addEntry("received", "Received", shown, extra);
    if (frame) attachFrames(li, "server", [frame]);
  }

  // ---- the connection ----

  function setState(state, text) {
    el.status.dataset.state = state;
    el.status.textContent = text;
    var open = state === "open";
    el.send.disabled = !open;
    el.sizes.forEach(function (b) { b.disabled = !open; });
    el.reconnect.hidden = state !== "closed";
    el.disconnect.hidden = !open;
  }

  function connect() {
    if (ws && ws.readyState !== WebSocket.CLOSED) return;
    pending = [];
    awaitingFrames = [];
    echoNext = null;
    inspecting = false;
    var wantFrames = el.showFrames.checked;
    resetHandshake(wantFrames, "Waiting for the server's description of the handshake…");
    setState("connecting", "Connecting…");
    var sock;
    try {
      sock = wantFrames ? new WebSocket(url, [INSPECT]) : new WebSocket(url);
    } catch (e) {
      setState("closed", "Closed — could not create WebSocket: " + (e && e.message ? e.message : e));
      return;
    }
    sock.binaryType = "arraybuffer";
    ws = sock;
    var opened = false;

    sock.onopen = function () {
      if (ws !== sock) return;
      opened = true;
      inspecting = sock.protocol === INSPECT;
      setState("open", "Connected");
      if (!wantFrames) {
        addEntry("system", "", "Connected");
      } else if (inspecting) {
        addEntry("system", "", "Connected, showing frames");
      } else {
        var note = "The server did not select " + INSPECT + ", so it describes no frames";
        resetHandshake(true, note + ".");
        addEntry("system", "", "Connected; " + note);
      }
    };

    sock.onmessage = function (ev) {
      if (ws !== sock) return;
      var t1 = performance.now();
      if (inspecting && !echoNext && typeof ev.data === "string") {
        var record = parseRecord(ev.data);
        if (record) {
          inspect(record);
          return;
        }
      }
      var frame = echoNext && echoNext.frame;
      echoNext = null;
      receiveEcho(ev.data, t1, frame);
    };

    sock.onerror = function () {
      // The close event that always follows carries the code; nothing to add here.
    };

    sock.onclose = function (ev) {
      if (ws !== sock) return;
      // A socket that never opened failed its handshake (refused, not found, no server):
      // its 1006 says nothing, the URL says where to look.
      var text = opened ? describeClose(ev.code, ev.reason) : "Could not connect to " + url;
      if (!opened) resetHandshake(wantFrames, "No handshake: could not connect.");
      setState("closed", text);
      addEntry("system", "", text, { error: ev.code !== 1000 });
    };
  }

  // Lets go of the current socket, closing it cleanly; the next connect() starts afresh.
  function abandon() {
    var sock = ws;
    ws = null;
    if (!sock) return;
    // Closing a socket that is still connecting makes Chromium warn on the console, so such
    // a socket is closed as soon as it opens instead.
    if (sock.readyState === WebSocket.CONNECTING) {
      sock.onopen = function () { sock.close(1000, "Frames toggled"); };
    } else if (sock.readyState === WebSocket.OPEN) {
      sock.close(1000, "Frames toggled");
    }
  }

  function transmit(text) {
    var binary = el.binary.checked;
    // Update the page first so its layout work is not counted in the round trip.
    stats.sent++;
    renderStats();
    var li = addEntry("sent", "Sent", text, { binary: binary });
    if (inspecting) awaitingFrames.push(li);
    pending.push({ text: text, binary: binary, t0: performance.now() });
    ws.send(binary ? encoder.encode(text) : text);
  }

  function send() {
    var text = el.message.value;
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
    var s = grouped(size) + " bytes: ";
    var fill = "abcdefghijklmnopqrstuvwxyz0123456789";
    while (s.length < size) s += fill;
    return s.slice(0, size);
  }

  el.form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    send();
  });

  el.sizes.forEach(function (button) {
    button.addEventListener("click", function () {
      if (ws && ws.readyState === WebSocket.OPEN) transmit(sizedMessage(Number(button.dataset.size)));
    });
  });

  // ArrowUp / ArrowDown step through what was sent, like a shell.
  el.message.addEventListener("keydown", function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.isComposing) return;
    if (ev.key !== "ArrowUp" && ev.key !== "ArrowDown") return;
    if (!history.length) return;
    if (historyPos === history.length) draft = el.message.value;
    var next = historyPos + (ev.key === "ArrowUp" ? -1 : 1);
    if (next < 0 || next > history.length) return;
    ev.preventDefault();
    historyPos = next;
    el.message.value = next === history.length ? draft : history[next];
    var end = el.message.value.length;
    el.message.setSelectionRange(end, end);
  });

  el.showFrames.addEventListener("change", function () {
    var on = el.showFrames.checked;
    saveShowFrames(on);
    addEntry("system", "", on ? "Frames on: reconnecting, offering " + INSPECT : "Frames off: reconnecting");
    abandon();
    connect();
  });

  el.clear.addEventListener("click", function () {
    el.log.textContent = "";
    stats = { sent: 0, received: 0, rttSum: 0, rttCount: 0 };
    renderStats();
    el.message.focus();
  });

  el.reconnect.addEventListener("click", function () {
    connect();
    el.message.focus();
  });

  el.disconnect.addEventListener("click", function () {
    if (ws && ws.readyState === WebSocket.OPEN) {
      setState("closing", "Closing…");
      el.disconnect.hidden = true;
      ws.close(1000, "Closed by user");
    }
    el.message.focus();
  });

  el.showFrames.checked = loadShowFrames();
  renderStats();
  connect();
  // Focus from script rather than with the autofocus attribute, which Chromium reports on
  // the console when the page already has a focused element.
  el.message.focus();
})();
