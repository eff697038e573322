#!/usr/bin/env python3
"""Notification watcher for the crash test (tests/crash/crash-test.sh).

A minimal RFC 6455 client, Python 3 standard library only, over plain TCP (the crash
test runs the engine without TLS). It opens GET /notifications with
`Authorization: Bearer <token>` and `?since=<N>` (first connection: --since, 0 by
default: the whole log), and writes one JSON line per notification frame to --out,
flushed per line:

    {"seq": sequenceNumber, "type": "invitation"|"status", "status": ..., "callId": ...,
     "conn": k}

(with --frames also "frame": the frame as received). Whenever the socket fails (the
engine was SIGKILLed, a close frame, a protocol error) it reconnects every --retry
seconds with since=<highest sequenceNumber seen> until it gets SIGTERM or SIGINT. Each
connection and disconnection is a line too: {"connect": k, "since": N, "t": ms} and
{"disconnect": k, "why": "...", "frames": n, "t": ms}; the last line is
{"stop": true, "connections": k, "frames": n, "t": ms}.

It reads continuously (select on the socket, recv up to 256 KiB at a time) so that it
is never the slow reader the engine cuts off; control frames are answered at once
(ping -> pong, close -> close). Exit code: 0 after SIGTERM/SIGINT, 2 on a usage error.
"""
import argparse
import base64
import hashlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import urllib.parse

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class Failed(Exception):
    """The connection is over (why in the message); reconnect."""


class Stopped(Exception):
    """SIGTERM/SIGINT while connected."""


def now_ms():
    return int(time.time() * 1000)


def mask_frame(opcode, payload=b""):
    """A client frame: FIN set, masked with a fresh key (RFC 6455 §5.3)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    body = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return head + key + body


class Watcher:
    def __init__(self, args, token):
        self.a = args
        self.token = token
        self.out = open(args.out, "a", encoding="utf-8")
        self.last = args.since  # highest sequenceNumber seen
        self.conn = 0
        self.frames = 0
        self.stop = False
        self.refusals = {}  # why a connection attempt failed -> count (reported once each)
        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        self.wake = rfd
        signal.set_wakeup_fd(wfd)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum, frame):
        self.stop = True

    def line(self, obj):
        self.out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.out.flush()

    def _drain_wake(self):
        try:
            while os.read(self.wake, 512):
                pass
        except BlockingIOError:
            pass

    # --- opening handshake (RFC 6455 §4.1) ---------------------------------------------
    def connect(self):
        a = self.a
        s = socket.create_connection((a.host, a.port), timeout=a.handshake_timeout)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            key = base64.b64encode(os.urandom(16)).decode()
            target = a.path + "?" + urllib.parse.urlencode({"since": self.last})
            req = (f"GET {target} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   f"Authorization: Bearer {self.token}\r\n\r\n")
            s.sendall(req.encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise Failed("handshake: connection closed")
                buf += chunk
                if len(buf) > 65536:
                    raise Failed("handshake: response headers too large")
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("iso-8859-1").split("\r\n")
            status = lines[0].split(" ", 2)
            if len(status) < 2 or status[1] != "101":
                raise Failed(f"handshake: {lines[0]}")
            hdr = {}
            for h in lines[1:]:
                k, _, v = h.partition(":")
                hdr[k.strip().lower()] = v.strip()
            want = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
            if hdr.get("upgrade", "").lower() != "websocket":
                raise Failed("handshake: no 'Upgrade: websocket'")
            if "upgrade" not in [t.strip().lower() for t in hdr.get("connection", "").split(",")]:
                raise Failed("handshake: no 'Connection: Upgrade'")
            if hdr.get("sec-websocket-accept") != want:
                raise Failed(f"handshake: Sec-WebSocket-Accept {hdr.get('sec-websocket-accept')!r}, expected {want!r}")
            if hdr.get("sec-websocket-extensions"):
                raise Failed("handshake: an extension we did not ask for")
            s.settimeout(None)
            return s, bytearray(rest)
        except BaseException:
            s.close()
            raise

    # --- frames (RFC 6455 §5) ------------------------------------------------------------
    def session(self, s, buf):
        """Reads frames until the connection fails; returns why."""
        message = None  # bytearray while a fragmented text message is being assembled
        in_conn = 0
        closing_since = None  # after our close frame (on stop): wait briefly for the reply
        pos = 0
        try:
            while True:
                # Parse every complete frame in buf[pos:].
                while True:
                    avail = len(buf) - pos
                    if avail < 2:
                        break
                    b0, b1 = buf[pos], buf[pos + 1]
                    fin, rsv, op = b0 & 0x80, b0 & 0x70, b0 & 0x0F
                    masked, n = b1 & 0x80, b1 & 0x7F
                    hl = 2
                    if n == 126:
                        if avail < 4:
                            break
                        n = struct.unpack_from("!H", buf, pos + 2)[0]
                        hl = 4
                    elif n == 127:
                        if avail < 10:
                            break
                        n = struct.unpack_from("!Q", buf, pos + 2)[0]
                        hl = 10
                    if rsv:
                        raise Failed("protocol: RSV bits set (no extension was negotiated)")
                    if masked:
                        raise Failed("protocol: masked frame from the server")
                    if avail < hl + n:
                        break
                    payload = bytes(buf[pos + hl:pos + hl + n])
                    pos += hl + n
                    if op >= 0x8:  # control frame
                        if not fin or n > 125:
                            raise Failed("protocol: fragmented or oversized control frame")
                        if op == OP_PING:
                            s.sendall(mask_frame(OP_PONG, payload))
                        elif op == OP_PONG:
                            pass
                        elif op == OP_CLOSE:
                            code = struct.unpack("!H", payload[:2])[0] if n >= 2 else None
                            reason = payload[2:].decode("utf-8", "replace")
                            if closing_since is None:
                                try:
                                    s.sendall(mask_frame(OP_CLOSE, payload[:2]))
                                except OSError:
                                    pass
                            return f"close {code} {reason}".strip(), in_conn
                        else:
                            raise Failed(f"protocol: unknown control opcode {op:#x}")
                        continue
                    if op == OP_TEXT or op == OP_BINARY:
                        if message is not None:
                            raise Failed("protocol: new data frame inside a fragmented message")
                        if op == OP_BINARY:
                            raise Failed("protocol: binary frame (notifications are text)")
                        message = bytearray(payload)
                    elif op == OP_CONT:
                        if message is None:
                            raise Failed("protocol: continuation frame without a message")
                        message += payload
                    else:
                        raise Failed(f"protocol: unknown data opcode {op:#x}")
                    if fin:
                        self.on_message(bytes(message))
                        in_conn += 1
                        message = None
                if pos:
                    del buf[:pos]
                    pos = 0
                # Wait for data (or a signal).
                if self.stop and closing_since is None:
                    closing_since = time.monotonic()
                    try:
                        s.sendall(mask_frame(OP_CLOSE, struct.pack("!H", 1000)))
                    except OSError:
                        return "stopped", in_conn
                if closing_since is not None and time.monotonic() - closing_since > 1.0:
                    return "stopped", in_conn
                r, _, _ = select.select([s, self.wake], [], [], 0.5)
                if self.wake in r:
                    self._drain_wake()
                if s in r:
                    try:
                        chunk = s.recv(262144)
                    except OSError as e:
                        raise Failed(f"recv: {e.strerror or e}")
                    if not chunk:
                        raise Failed("eof" if message is None else "eof inside a fragmented message")
                    buf += chunk
        except Failed as e:
            return str(e), in_conn
        except OSError as e:
            return f"send: {e.strerror or e}", in_conn

    def on_message(self, data):
        self.frames += 1
        rec = {}
        try:
            text = data.decode("utf-8")  # strict: a text message must be valid UTF-8
            obj = json.loads(text)
            if "sessionInvitationNotification" in obj:
                n, rec["type"] = obj["sessionInvitationNotification"], "invitation"
            elif "sessionStatusNotification" in obj:
                n, rec["type"] = obj["sessionStatusNotification"], "status"
                rec["status"] = n.get("status")
            else:
                raise ValueError("neither sessionInvitationNotification nor sessionStatusNotification")
            seq = n["notificationReference"]["sequenceNumber"]
            if not isinstance(seq, int):
                raise ValueError("sequenceNumber is not an integer")
            rec = {"seq": seq, **rec, "callId": n["callObjectRef"].rsplit("/", 1)[-1], "conn": self.conn}
            if self.a.frames:
                rec["frame"] = obj
            self.last = max(self.last, seq)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            rec = {"bad": str(e), "text": data[:300].decode("utf-8", "replace"), "conn": self.conn}
        self.line(rec)

    def run(self):
        while not self.stop:
            try:
                s, buf = self.connect()
            except (OSError, Failed) as e:
                why = str(e) if isinstance(e, Failed) else f"connect: {e.strerror or e}"
                key = why.split(":")[0] if why.startswith("connect") else why
                self.refusals[key] = self.refusals.get(key, 0) + 1
                if self.refusals[key] == 1 and not why.startswith("connect"):
                    print(f"ws-watch: {why}", file=sys.stderr, flush=True)
                self.pause()
                continue
            self.conn += 1
            self.line({"connect": self.conn, "since": self.last, "t": now_ms()})
            why, n = self.session(s, buf)
            s.close()
            self.line({"disconnect": self.conn, "why": why, "frames": n, "t": now_ms()})
            if not self.stop:
                self.pause()
        self.line({"stop": True, "connections": self.conn, "frames": self.frames, "t": now_ms()})

    def pause(self):
        """Waits --retry seconds, or less when a signal comes."""
        r, _, _ = select.select([self.wake], [], [], self.a.retry)
        if r:
            self._drain_wake()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/notifications", help="base path + /notifications")
    p.add_argument("--token-file", required=True, help="file holding the access token (not on the command line)")
    p.add_argument("--out", required=True, help="JSON lines, appended and flushed per line")
    p.add_argument("--since", type=int, default=0, help="since= of the first connection")
    p.add_argument("--retry", type=float, default=0.1, help="seconds between reconnection attempts")
    p.add_argument("--handshake-timeout", type=float, default=2.0)
    p.add_argument("--frames", action="store_true", help="also write each frame as received")
    a = p.parse_args()
    with open(a.token_file, encoding="utf-8") as f:
        token = f.read().strip()
    if not token:
        print("ws-watch: empty token file", file=sys.stderr)
        return 2
    Watcher(a, token).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
