#!/usr/bin/env node
// A certificate repository for tests/integration/caller_id_test.cpp: serves the files of
// DIR over HTTPS (GET /certs/<name> → DIR/<name>, Content-Type
// application/pem-certificate-chain; 404 otherwise), except GET /certs/hang, which is
// never answered (an x5u that hangs). Appends one JSON line per TCP connection
// ({"event":"connection"}) and per request ({"event":"request","path":…}) to OUT, so a
// test can show that nothing reached it.
//
//   node x5u_server.mjs DIR OUT HOST CERT KEY
//
// Prints "x5u server listening on PORT" once it listens on HOST (any free port).
import { appendFileSync, readFileSync } from "node:fs";
import { createServer } from "node:https";
import { basename, join } from "node:path";

const [dir, out, host, cert, key] = process.argv.slice(2);
if (!dir || !out || !host || !cert || !key) {
  process.stderr.write("usage: x5u_server.mjs DIR OUT HOST CERT KEY\n");
  process.exit(2);
}
const log = (line) => appendFileSync(out, JSON.stringify(line) + "\n");

const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
  log({ event: "request", method: req.method, path: req.url });
  if (req.url === "/certs/hang") return;  // never answered
  if (req.method !== "GET" || !req.url.startsWith("/certs/")) return res.writeHead(404).end();
  try {
    const body = readFileSync(join(dir, basename(req.url)));
    res.writeHead(200, { "Content-Type": "application/pem-certificate-chain" }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
server.on("connection", () => log({ event: "connection" }));
server.listen(0, host, () => {
  process.stdout.write(`x5u server listening on ${server.address().port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
