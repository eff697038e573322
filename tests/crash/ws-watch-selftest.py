#!/usr/bin/env python3
"""Self-test of tests/crash/ws-watch.py against a scripted WebSocket server (no engine).

The engine's frames are small and its sockets never idle during the crash test, so
fragmentation, pings and the 16- and 64-bit lengths are not exercised there; they are
here. The server checks the watcher's handshake and masking; the watcher's lines are
checked at the end. Run by tests/crash/crash-test.sh before the engine starts.
Exit code 0 when every check passed; the first failure is printed.
"""
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TOKEN = "header.payload.signature"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def frame(op, payload, fin=True):
    n = len(payload)
    b0 = (0x80 if fin else 0) | op
    if n < 126:
        return struct.pack("!BB", b0, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", b0, 126, n) + payload
    return struct.pack("!BBQ", b0, 127, n) + payload


def note(seq, call, pad=""):
    return json.dumps({"sessionStatusNotification": {
        "status": "Ringing", "receiverAddress": "tel:+17310000002", "callObjectRef": f"/calls/{call}",
        "sdp": pad, "notificationReference": {"epochTime": 1, "notificationId": seq, "sequenceNumber": seq}}},
        ensure_ascii=False).encode()


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def read_client_frame(s):
    """(opcode, payload) of one client frame; it must be masked."""
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    check(b1 & 0x80, "a client frame is not masked")
    key = recv_exact(s, 4) if b1 & 0x80 else b"\0\0\0\0"
    data = bytes(c ^ key[i & 3] for i, c in enumerate(recv_exact(s, n)))
    return b0 & 0x0F, data


def accept(srv, answer="ok"):
    """Accepts one connection, checks the upgrade request; returns (socket, since)."""
    s, _ = srv.accept()
    s.settimeout(5)
    req = b""
    while b"\r\n\r\n" not in req:
        req += s.recv(4096)
    lines = req.decode().split("\r\n")
    hdr = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
    check(lines[0].startswith("GET /notifications?since=") and lines[0].endswith(" HTTP/1.1"), f"request line {lines[0]!r}")
    check(hdr.get("upgrade", "").lower() == "websocket", "no Upgrade: websocket")
    check("upgrade" in hdr.get("connection", "").lower(), "no Connection: Upgrade")
    check(hdr.get("sec-websocket-version") == "13", "no Sec-WebSocket-Version: 13")
    check(hdr.get("authorization") == f"Bearer {TOKEN}", "no Authorization: Bearer <token>")
    key = hdr.get("sec-websocket-key", "")
    check(len(base64.b64decode(key)) == 16, "Sec-WebSocket-Key is not 16 bytes in base64")
    acc = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    if answer == "bad-accept":
        acc = base64.b64encode(hashlib.sha1(b"wrong" + GUID).digest()).decode()
    if answer == "401":
        s.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
    else:
        s.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Accept: {acc}\r\n\r\n").encode())
    since = int(lines[0].split("since=", 1)[1].split(" ", 1)[0])
    return s, since


def server(srv, watcher):
    # 1: frames of every shape, then the connection drops (as when the engine is killed).
    s, since = accept(srv)
    check(since == 0, f"first since={since}, expected 0")
    big = "x" * 70000
    s.sendall(frame(0x1, note(1, "C1")) + frame(0x9, b"hi"))
    m2 = note(2, "C2", pad="caf\u00e9")  # a two-byte character split across fragments
    cut = m2.index("\u00e9".encode()) + 1
    s.sendall(frame(0x1, m2[:10], fin=False) + frame(0x9, b"p2") + frame(0x0, m2[10:cut], fin=False)
              + frame(0x0, m2[cut:]))
    s.sendall(frame(0x1, note(3, "C3", pad="y" * 300)) + frame(0x1, note(4, "C4", pad=big)))
    for want in (b"hi", b"p2"):
        op, data = read_client_frame(s)
        check(op == 0xA and data == want, f"expected a pong {want!r}, got opcode {op:#x} {data!r}")
    time.sleep(0.2)
    s.close()
    # 2: resumes with since=4; a close frame from the server (1001).
    s, since = accept(srv)
    check(since == 4, f"since={since} after frames 1..4, expected 4")
    s.sendall(frame(0x1, note(5, "C5")) + frame(0x8, struct.pack("!H", 1001) + b"going away"))
    op, data = read_client_frame(s)
    check(op == 0x8 and data[:2] == struct.pack("!H", 1001), f"expected the close echoed, got {op:#x} {data!r}")
    s.close()
    # 3, 4: refused upgrades (a wrong Sec-WebSocket-Accept, a 401): not connections; retried.
    for answer in ("bad-accept", "401"):
        s, since = accept(srv, answer)
        check(since == 5, f"since={since} after a refused upgrade, expected 5")
        time.sleep(0.05)
        s.close()
    # 5: connected; SIGTERM: the watcher sends close 1000 and exits.
    s, since = accept(srv)
    check(since == 5, f"since={since}, expected 5")
    s.sendall(frame(0x1, note(6, "C6")))
    time.sleep(0.3)
    watcher.send_signal(signal.SIGTERM)
    op, data = read_client_frame(s)
    check(op == 0x8 and data[:2] == struct.pack("!H", 1000), f"expected close 1000 on SIGTERM, got {op:#x} {data!r}")
    s.sendall(frame(0x8, struct.pack("!H", 1000)))
    time.sleep(0.1)
    s.close()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(10)
    with tempfile.TemporaryDirectory() as tmp:
        with open(f"{tmp}/token", "w") as f:
            f.write(TOKEN + "\n")
        out = f"{tmp}/out.jsonl"
        w = subprocess.Popen([sys.executable, f"{here}/ws-watch.py", "--port", str(srv.getsockname()[1]),
                              "--token-file", f"{tmp}/token", "--out", out, "--retry", "0.05"],
                             stderr=subprocess.PIPE, text=True)
        t = threading.Thread(target=lambda: _run(srv, w))
        t.start()
        t.join(30)
        try:
            rc = w.wait(10)
        except subprocess.TimeoutExpired:
            w.kill()
            rc = None
        check(rc == 0, f"watcher exit code {rc}")
        err = w.stderr.read()
        lines = [json.loads(x) for x in open(out)] if os.path.exists(out) else []
    got = [(r["seq"], r["type"], r.get("status"), r["callId"], r["conn"]) for r in lines if "seq" in r]
    want = [(1, "status", "Ringing", "C1", 1), (2, "status", "Ringing", "C2", 1), (3, "status", "Ringing", "C3", 1),
            (4, "status", "Ringing", "C4", 1), (5, "status", "Ringing", "C5", 2), (6, "status", "Ringing", "C6", 3)]
    check(got == want, f"frames {got}, expected {want}")
    conns = [(r["connect"], r["since"]) for r in lines if "connect" in r]
    check(conns == [(1, 0), (2, 4), (3, 5)], f"connections {conns}")
    whys = [r["why"] for r in lines if "disconnect" in r]
    check(len(whys) == 3 and whys[0] == "eof" and whys[1] == "close 1001 going away" and whys[2] == "close 1000",
          f"disconnects {whys}")
    check(lines and lines[-1].get("stop") is True, "no stop line")
    check("Sec-WebSocket-Accept" in err and "401" in err, f"refused upgrades not reported on stderr: {err!r}")
    if failures:
        print("ws-watch self-test FAILED: " + "; ".join(failures))
        return 1
    print("ws-watch self-test: handshake, masking, fragmentation, ping/pong, 16/64-bit lengths, close, "
          "resume with since, refused upgrades, SIGTERM: ok")
    return 0


def _run(srv, w):
    try:
        server(srv, w)
    except Exception as e:  # noqa: BLE001 - any server-side failure is a test failure
        failures.append(f"server: {type(e).__name__}: {e}")
        w.kill()


if __name__ == "__main__":
    sys.exit(main())
