#!/usr/bin/env node
// A webhook receiver for tests/integration/webhook_test.cpp: a real HTTP server on
// loopback that checks each delivery's signature with node's own crypto (an
// implementation independent of the engine's OpenSSL code, contract §13) and appends one
// JSON line per request to OUT:
//   {"valid": <signature, timestamp and id all check>, "delivery": <Yna-Delivery>,
//    "body": <the parsed body, or null>, "why": <what did not check, when not valid>,
//    "receivedAt": <epoch ms>}
// It answers 204 to a valid delivery (or STATUS, with a Location header, when --status is
// given: a redirect must not be followed) and 401 to anything else; with --tls it serves
// HTTPS with that certificate and key.
//
//   node webhook_receiver.mjs SECRET_FILE OUT [PORT] [--tls CERT KEY] [--status STATUS]
//
// Prints "receiver listening on PORT" once it listens (PORT 0 or absent: any free port).
import { createHmac, timingSafeEqual } from "node:crypto";
import { appendFileSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createTlsServer } from "node:https";

const args = process.argv.slice(2);
const option = (name, n) => {
  const at = args.indexOf(name);
  return at < 0 ? null : args.splice(at, n + 1).slice(1);
};
const tls = option("--tls", 2);
const answer = option("--status", 1);
const [secretFile, out, port = "0"] = args;
if (!secretFile || !out) {
  process.stderr.write("usage: webhook_receiver.mjs SECRET_FILE OUT [PORT]\n");
  process.exit(2);
}
const secret = readFileSync(secretFile, "utf8").replace(/[\r\n]+$/, "");

// What a receiver does with a delivery: the five lines of the README.
function verify(signature, rawBody) {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(signature ?? "");
  if (!m) return "no Yna-Signature of the form t=<seconds>,v1=<64 hex>";
  const mac = createHmac("sha256", secret).update(`${m[1]}.${rawBody}`).digest();
  if (!timingSafeEqual(mac, Buffer.from(m[2], "hex"))) return "the signature does not match";
  if (Math.abs(Date.now() / 1000 - Number(m[1])) > 300) return "the timestamp is more than 5 minutes off";
  return null;
}

const handler = (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks).toString("utf8");
    let why = req.method === "POST" ? verify(req.headers["yna-signature"], raw) : "not a POST";
    let body = null;
    try {
      body = JSON.parse(raw);
    } catch {
      why ??= "the body is not JSON";
    }
    if (!why && req.headers["content-type"] !== "application/json") why = "Content-Type is not application/json";
    if (!why && body?.id !== req.headers["yna-delivery"]) why = "Yna-Delivery is not the body's id";
    const line = { valid: !why, delivery: req.headers["yna-delivery"] ?? null, body, why, receivedAt: Date.now() };
    appendFileSync(out, JSON.stringify(line) + "\n");
    if (why) res.writeHead(401).end();
    else if (answer) res.writeHead(Number(answer[0]), { Location: "http://127.0.0.1:9/elsewhere" }).end();
    else res.writeHead(204).end();
  });
};
const server = tls
  ? createTlsServer({ cert: readFileSync(tls[0]), key: readFileSync(tls[1]) }, handler)
  : createServer(handler);
server.keepAliveTimeout = 30000;
server.listen(Number(port), "127.0.0.1", () => {
  process.stdout.write(`receiver listening on ${server.address().port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
