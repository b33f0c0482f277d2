#!/usr/bin/env python3
"""The client side of scripts/behind-nginx.sh: a WebSocket client and a DevTools driver.

Standard library only (Python 3.7+), so the script needs no virtualenv. Each command
prints one line of detail and exits 0 when the check it makes holds, 1 when it does
not, 2 on bad usage.

  echo URL [--count N] [--header 'Name: value'] [--cafile PEM]
      open N connections one after another; on each send a text message and expect
      "Server got: " + the message back, then close with 1000.
  idle URL SECONDS [--cafile PEM]
      open a connection, stay silent for SECONDS (answering the server's pings), then
      echo once. Exit 0 if the connection survived the silence.
  page DEVTOOLS_PORT URL WS_URL SCREENSHOT
      in a running headless Chromium: load URL, wait until the page is connected,
      type a message, send it, expect the echo in the page, check that the page
      opened WS_URL, save a screenshot.
"""

import argparse
import base64
import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import sys
import time
import urllib.parse
import urllib.request

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PREFIX = "Server got: "
# Any single wait of this script is bounded by this.
WAIT = 15.0


class Ended(Exception):
    """The connection ended: EOF, a reset, or a close frame."""


class WebSocket:
    """A minimal RFC 6455 client: enough for text echoes, pings and closes."""

    def __init__(self, url, headers=(), cafile=None, timeout=WAIT):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("ws", "wss"):
            raise ValueError("not a ws:// or wss:// URL: " + url)
        host, port = u.hostname, u.port or (443 if u.scheme == "wss" else 80)
        sock = socket.create_connection((host, port), timeout=timeout)
        if u.scheme == "wss":
            # Verify the server's certificate against the test's own CA file.
            ctx = ssl.create_default_context(cafile=cafile)
            sock = ctx.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        target = (u.path or "/") + ("?" + u.query if u.query else "")
        hostport = u.netloc.rsplit("@", 1)[-1]
        lines = [
            "GET %s HTTP/1.1" % target,
            "Host: " + hostport,
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: " + key,
            "Sec-WebSocket-Version: 13",
        ] + list(headers)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status, *fields = head.decode("latin-1").split("\r\n")
        if status.split(" ")[1:2] != ["101"]:
            raise Ended("handshake refused: " + status)
        fields = dict((k.strip().lower(), v.strip()) for k, _, v in
                      (f.partition(":") for f in fields))
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if fields.get("sec-websocket-accept") != want:
            raise Ended("handshake answered without the right Sec-WebSocket-Accept")

    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except (ConnectionError, ssl.SSLError) as e:
            raise Ended("connection error: %s" % e) from e
        if not data:
            raise Ended("EOF without a close frame")
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, opcode, payload=b""):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def recv_frame(self):
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._take(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._take(8))
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n)

    def recv_text(self):
        """The next text message, its fragments joined; pings are answered."""
        parts = []
        while True:
            fin, opcode, payload = self.recv_frame()
            if opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise Ended("close frame %s from the server" % code)
            elif opcode in (0x0, 0x1):
                parts.append(payload)
                if fin:
                    return b"".join(parts).decode("utf-8")

    def echo(self, text):
        self.send(0x1, text.encode())
        got = self.recv_text()
        if got != PREFIX + text:
            raise Ended("sent %r, got %r" % (text, got))

    def close(self):
        """Close handshake: send 1000, wait for the server's close and its EOF."""
        try:
            self.send(0x8, struct.pack("!H", 1000))
            self.sock.settimeout(3)
            while True:
                self.recv_frame()
        except (Ended, OSError):
            pass
        finally:
            self.sock.close()


def cmd_echo(args):
    for i in range(args.count):
        ws = WebSocket(args.url, args.header, args.cafile)
        ws.echo("hello %d" % (i + 1))
        ws.close()
    print("%d/%d connections echoed" % (args.count, args.count))
    return 0


def cmd_idle(args):
    ws = WebSocket(args.url, cafile=args.cafile)
    pings = 0
    start = time.monotonic()
    deadline = start + args.seconds
    try:
        # Silent until the deadline: nothing is sent but pongs. Any frame but a ping
        # is unexpected: a close, EOF, or a text message that echoes nothing.
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ws.sock.settimeout(left)
            try:
                _, opcode, payload = ws.recv_frame()
            except socket.timeout:
                break
            if opcode != 0x9:
                raise Ended("unexpected frame with opcode %d: %r" % (opcode, payload[:40]))
            ws.send(0xA, payload)
            pings += 1
        ws.sock.settimeout(WAIT)
        ws.echo("after %g s idle" % args.seconds)
    except Ended as e:
        print("connection ended after %.1f s idle (%s; %d pings answered)"
              % (time.monotonic() - start, e, pings))
        return 1
    ws.close()
    print("survived %g s idle (%d pings answered), then echoed" % (args.seconds, pings))
    return 0


class DevTools:
    """The Chrome DevTools Protocol on one page target, over the client above."""

    def __init__(self, port):
        with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=WAIT) as r:
            targets = json.load(r)
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise Ended("Chromium has no page target")
        self.ws = WebSocket(pages[0]["webSocketDebuggerUrl"])
        self.next_id = 0
        self.events = []

    def _read(self):
        self.ws.sock.settimeout(WAIT)
        try:
            return json.loads(self.ws.recv_text())
        except socket.timeout:
            raise Ended("Chromium sent nothing for %g s" % WAIT) from None

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(0x1, json.dumps({"id": self.next_id, "method": method,
                                      "params": params}).encode())
        while True:
            msg = self._read()
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise Ended("%s failed: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read())
        raise Ended("no %s within %g s" % (method, WAIT))

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise Ended("page threw on %s: %s" % (expr, r["exceptionDetails"].get("text")))
        return r["result"].get("value")

    def poll(self, expr, what):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            value = self.eval(expr)
            if value:
                return value
            time.sleep(0.1)
        raise Ended("%s not within %g s" % (what, WAIT))


def cmd_page(args):
    dt = DevTools(args.devtools_port)
    detail = []
    try:
        dt.call("Page.enable")
        dt.call("Network.enable")
        dt.call("Page.navigate", url=args.url)
        dt.wait_event("Page.loadEventFired")
        docs = [e["params"]["response"] for e in dt.events
                if e.get("method") == "Network.responseReceived"
                and e["params"].get("type") == "Document"]
        protocol = docs[-1].get("protocol", "?") if docs else "?"
        detail.append("page over %s" % protocol)
        state = dt.poll("document.getElementById('status').dataset.state !== 'connecting'"
                        " && document.getElementById('status').dataset.state",
                        "the page leaving 'connecting'")
        opened = [e["params"]["url"] for e in dt.events
                  if e.get("method") == "Network.webSocketCreated"]
        detail.append("WebSocket %s" % (opened[-1] if opened else "none"))
        if state != "open":
            status = dt.eval("document.getElementById('status').textContent")
            raise Ended("page says %r" % status)
        text = "through nginx %d" % os.getpid()
        dt.eval("document.getElementById('message').focus()")
        dt.call("Input.insertText", text=text)
        dt.eval("document.getElementById('send').click()")
        want = PREFIX + text
        dt.poll("Array.from(document.querySelectorAll('#log .entry.received .text'))"
                ".some(e => e.textContent === %s)" % json.dumps(want),
                "the echo %r in the page" % want)
        detail.append("page shows %r" % want)
        shot = dt.call("Page.captureScreenshot", format="png")
        with open(args.screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        if opened and opened[-1] != args.ws_url:
            raise Ended("expected the page to open %s" % args.ws_url)
        if protocol != "h2":
            raise Ended("expected the page over HTTP/2 (h2)")
    except Ended as e:
        print("; ".join(detail + [str(e)]))
        return 1
    finally:
        dt.ws.close()
    print("; ".join(detail))
    return 0


def main():
    # A SIGTERM (from `timeout`) ends the run through the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo")
    e.add_argument("url")
    e.add_argument("--count", type=int, default=1)
    e.add_argument("--header", action="append", default=[])
    e.add_argument("--cafile")
    i = sub.add_parser("idle")
    i.add_argument("url")
    i.add_argument("seconds", type=float)
    i.add_argument("--cafile")
    g = sub.add_parser("page")
    g.add_argument("devtools_port", type=int)
    g.add_argument("url")
    g.add_argument("ws_url")
    g.add_argument("screenshot")
    args = p.parse_args()
    try:
        return {"echo": cmd_echo, "idle": cmd_idle, "page": cmd_page}[args.cmd](args)
    except (Ended, OSError, ValueError) as e:
        print("%s: %s" % (type(e).__name__, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
