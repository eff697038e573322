// A whole call through the generated client against the real yna-engine (argv[2]): two
// devices get tokens from the development issuer, open notification sockets, and go
// through start, ringing, connected, hold, acceptHold, resume, acceptResume, end and
// GET /calls, each request with a PoP token signed by the client's middleware. The
// callee's socket is dropped mid-call and resumes with `since`: it misses nothing.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import createClient from "openapi-fetch";

import {
  callIdOf,
  createYnaClient,
  NotificationSocket,
  sequenceOf,
  type NotificationFrame,
  type paths,
  type SessionStatus,
} from "../src/index.js";

const SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n";

async function startEngine(binary: string): Promise<{ proc: ChildProcess; baseUrl: string; dir: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), "yna-client-ts-"));
  const proc = spawn(binary, ["--listen", "127.0.0.1:0", "--data-dir", path.join(dir, "data")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  proc.stderr!.on("data", (d) => (err += d.toString()));
  const baseUrl = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the engine did not start:\n${err}`)), 20000);
    proc.stdout!.on("data", (d) => {
      out += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on("exit", (code) => reject(new Error(`the engine exited (${code}):\n${err}`)));
  });
  return { proc, baseUrl, dir };
}

// A device: its key, its token (development issuer, cnf.jwk = its key), its client and
// the frames its socket received, in order.
class Device {
  frames: NotificationFrame[] = [];
  private waiters: Array<() => void> = [];
  socket!: NotificationSocket;
  client!: ReturnType<typeof createYnaClient>;

  constructor(readonly msisdn: string, readonly deviceId: string) {}

  async register(baseUrl: string): Promise<void> {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = publicKey.export({ format: "jwk" }) as { n: string; e: string };
    const open = createClient<paths>({ baseUrl });  // /dev/token needs no token
    const { data, error } = await open.POST("/dev/token", {
      body: { msisdn: this.msisdn, deviceId: this.deviceId, jwk: { kty: "RSA", n: jwk.n, e: jwk.e } },
    });
    assert.ok(data, `dev token: ${JSON.stringify(error)}`);
    const pem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    this.client = createYnaClient({ baseUrl, accessToken: data.accessToken, popKeyPem: pem });
    this.socket = new NotificationSocket({
      baseUrl,
      accessToken: data.accessToken,
      reconnectDelayMs: 200,
      onFrame: (f) => {
        this.frames.push(f);
        for (const w of this.waiters.splice(0)) w();
      },
    });
    await this.socket.open();
  }

  // Waits (at most 15 s: the suite also runs against sanitizer builds) for a frame about
  // `callId` with this status (or an invitation).
  async expect(callId: string, status: SessionStatus | "invitation"): Promise<NotificationFrame> {
    const match = (f: NotificationFrame) =>
      callIdOf(f) === callId &&
      (status === "invitation"
        ? "sessionInvitationNotification" in f
        : "sessionStatusNotification" in f && f.sessionStatusNotification.status === status);
    const deadline = Date.now() + 15000;
    for (;;) {
      const f = this.frames.find(match);
      if (f) return f;
      if (Date.now() > deadline)
        throw new Error(`${this.deviceId}: no ${status} for ${callId}; got ${JSON.stringify(this.frames)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }
}

async function main(): Promise<void> {
  const binary = process.argv[2];
  assert.ok(binary, "usage: call.test.js YNA_ENGINE");
  const { proc, baseUrl, dir } = await startEngine(binary);
  const a = new Device("14255550100", "ts-caller");
  const b = new Device("14255550199", "ts-callee");
  try {
    await a.register(baseUrl);
    await b.register(baseUrl);

    const started = await a.client.POST("/start", {
      body: { from: a.msisdn, to: b.msisdn, sdp: SDP, clientCorrelator: "ts-1" },
    });
    assert.equal(started.response.status, 200, JSON.stringify(started.error));
    const callId = started.data!.callId;
    assert.match(callId, /^[0-9A-F]{32,}$/);
    assert.equal(started.data!.clientCorrelator, "ts-1");
    await b.expect(callId, "invitation");

    const path = { path: { callId } };
    let r = await b.client.POST("/ringing/{callId}", { params: path });
    assert.equal(r.response.status, 200, JSON.stringify(r.error));
    await a.expect(callId, "Ringing");

    r = await b.client.POST("/connected/{callId}", { params: path, body: { sdp: SDP } });
    assert.equal(r.response.status, 200, JSON.stringify(r.error));
    await a.expect(callId, "Connected");

    // The callee's connection drops; the hold offer happens while it is away. The socket
    // reconnects with since=<last seen> and the engine replays what it missed.
    const seenBefore = b.socket.lastSequence;
    b.socket.drop();
    r = await a.client.POST("/hold/{callId}", { params: path, body: { sdp: SDP } });
    assert.equal(r.response.status, 200, JSON.stringify(r.error));
    await b.expect(callId, "Hold");
    assert.ok(b.socket.lastSequence! > seenBefore!, "the replayed frame moved the socket's position on");

    r = await b.client.POST("/acceptHold/{callId}", { params: path, body: { sdp: SDP } });
    assert.equal(r.response.status, 200, JSON.stringify(r.error));
    await a.expect(callId, "Hold");

    r = await a.client.POST("/resume/{callId}", { params: path, body: { sdp: SDP } });
    assert.equal(r.response.status, 200, JSON.stringify(r.error));
    await b.expect(callId, "Resume");

    r = await b.client.POST("/acceptResume/{callId}", { params: path, body: { sdp: SDP } });
    assert.equal(r.response.status, 200, JSON.stringify(r.error));
    const connectedAgain = a.frames.filter(
      (f) => "sessionStatusNotification" in f && callIdOf(f) === callId && f.sessionStatusNotification.status === "Connected");
    assert.ok(connectedAgain.length >= 1);

    const ended = await a.client.DELETE("/end/{callId}", { params: path });
    assert.equal(ended.response.status, 200, JSON.stringify(ended.error));
    await b.expect(callId, "Terminated");

    const call = await b.client.GET("/calls/{callId}", { params: path });
    assert.equal(call.response.status, 200, JSON.stringify(call.error));
    assert.equal(call.data!.status, "Terminated");
    assert.equal(call.data!.from, a.msisdn);
    assert.equal(call.data!.to, b.msisdn);

    // Errors come back typed as ErrorInfo.
    const late = await a.client.POST("/hold/{callId}", { params: path, body: { sdp: SDP } });
    assert.equal(late.response.status, 400);
    assert.equal(late.error?.errors?.[0]?.reasonCode, "CALL_ENDED");

    // Every frame each socket got, in strictly increasing sequenceNumber, none twice.
    for (const d of [a, b]) {
      const seqs = d.frames.map(sequenceOf);
      for (let i = 1; i < seqs.length; ++i) assert.ok(seqs[i] > seqs[i - 1], `${d.deviceId}: ${seqs}`);
    }
    console.log(`client-ts: a whole call through the generated client: OK (${a.frames.length} + ${b.frames.length} frames)`);
  } finally {
    a.socket?.close();
    b.socket?.close();
    proc.kill("SIGTERM");
    await new Promise((r) => proc.once("exit", r));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
