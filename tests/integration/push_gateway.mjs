#!/usr/bin/env node
// A Matrix Push Gateway stand-in for tests/integration/pushers_test.cpp: a real HTTP
// server on loopback that appends each POST's body (one JSON line) to OUT and answers
// 200 {"rejected": [...]} naming every pushkey of the request that starts with "reject-",
// as a gateway does for a pushkey the push service no longer knows.
//
//   node push_gateway.mjs OUT [PORT]
//
// Prints "gateway listening on PORT" once it listens.
import { appendFileSync } from "node:fs";
import { createServer } from "node:http";

const [out, port = "0"] = process.argv.slice(2);
if (!out) {
  process.stderr.write("usage: push_gateway.mjs OUT [PORT]\n");
  process.exit(2);
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body = null;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      body = null;
    }
    appendFileSync(out, JSON.stringify({ path: req.url, body }) + "\n");
    const keys = (body?.notification?.devices ?? []).map((d) => d.pushkey).filter((k) => k?.startsWith("reject-"));
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ rejected: keys }));
  });
});
server.listen(Number(port), "127.0.0.1", () => process.stdout.write(`gateway listening on ${server.address().port}\n`));
