#!/usr/bin/env node
// Validates the project's API documents, and real traffic against them.
//
//   node validate.js [ROOT] [--frames FILE]... [--responses FILE]...
//
// ROOT (default: three folders up from this script) holds schemas/asyncapi.yaml and
// schemas/openapi.yaml. Always:
//   - schemas/asyncapi.yaml is parsed and validated by @asyncapi/parser (AsyncAPI 2.6 and
//     its default ruleset: errors and warnings fail), and must describe the
//     /notifications channel (subscribe) with the ws binding's query `since`,
//     `access_token` and header `Authorization`, and exactly the messages
//     sessionInvitationNotification and sessionStatusNotification; every message example
//     must validate against its payload schema;
//   - schemas/openapi.yaml is validated by @apidevtools/swagger-parser (OpenAPI 3.0
//     schema, $refs resolved).
// --frames FILE: one WebSocket frame (JSON) per line, as received. Each frame must be an
//   object with one key; the message whose name is that key gives the payload schema
//   (ajv) the frame must satisfy.
// --responses FILE: one JSON object per line, {"method","path","status","body"} with
//   body the raw response body (a string); each body must satisfy the schema of that
//   operation's response (its status, else `default`) in openapi.yaml.
// Exits 0 when everything holds, 1 with every error on stderr otherwise, 2 on misuse.
'use strict';

const fs = require('fs');
const path = require('path');

function need(name) {
  try {
    return require(name);
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND') {
      console.error(`validate.js: ${name} is not installed: run npm ci --prefix ${path.relative(process.cwd(), __dirname) || '.'} (as .ci/install-deps does)`);
      process.exit(1);
    }
    throw e;
  }
}

const { Parser, fromFile, DiagnosticSeverity } = need('@asyncapi/parser');
const SwaggerParser = need('@apidevtools/swagger-parser');
const Ajv = need('ajv');
const addFormats = need('ajv-formats');

function usage(msg) {
  if (msg) console.error(`validate.js: ${msg}`);
  console.error('usage: node validate.js [ROOT] [--frames FILE]... [--responses FILE]...');
  process.exit(2);
}

function parseArgs(argv) {
  const out = { root: path.resolve(__dirname, '..', '..', '..'), frames: [], responses: [] };
  let rootSet = false;
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--frames' || a === '--responses') {
      if (i + 1 >= argv.length) usage(`${a} needs a file`);
      out[a.slice(2)].push(argv[++i]);
    } else if (a === '-h' || a === '--help') {
      usage();
    } else if (a.startsWith('-')) {
      usage(`unknown option ${a}`);
    } else if (!rootSet) {
      out.root = path.resolve(a);
      rootSet = true;
    } else {
      usage(`unexpected argument ${a}`);
    }
  }
  return out;
}

function newAjv() {
  // strict: false — AsyncAPI and OpenAPI schemas carry keywords of their own (x-parser-*,
  // example, discriminator…) that are annotations, not assertions.
  const ajv = new Ajv({ strict: false, allErrors: true, allowUnionTypes: true });
  addFormats(ajv);
  ajv.addFormat('int32', { type: 'number', validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n) => Number.isInteger(n) });
  return ajv;
}

function describeAjvErrors(errors) {
  return (errors || []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params ? ' ' + JSON.stringify(e.params) : ''}`).join('; ');
}

function readLines(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l, i) => ({ line: i + 1, text: l.replace(/\r$/, '') }))
    .filter((l) => l.text.trim() !== '');
}

function short(s, n = 200) {
  return s.length > n ? s.slice(0, n) + '…' : s;
}

// ---------------------------------------------------------------------------- AsyncAPI

// Rules of the parser's default ruleset that do not apply here, and why. Every other
// warning fails.
const ASYNCAPI_WAIVED = {
  // The contact must have a url and an email: this API has a team name but no public
  // page or address to give (as openapi.yaml's license has no URL: schemas/redocly.yaml).
  'asyncapi-info-contact-properties': 'no public contact url or email',
};

async function checkAsyncApi(file, errors) {
  const parser = new Parser();
  const { document, diagnostics } = await fromFile(parser, file).parse();
  for (const d of diagnostics) {
    const where = d.path && d.path.length ? ` at ${d.path.join('.')}` : '';
    const text = `${path.basename(file)}: ${d.code}: ${d.message}${where}`;
    // Warnings fail too (issue 22: the parser's warnings are gone and stay gone); hints
    // and information are printed.
    if (d.severity === DiagnosticSeverity.Error) errors.push(text);
    else if (d.severity === DiagnosticSeverity.Warning && !ASYNCAPI_WAIVED[d.code]) errors.push(text);
    else console.error(`note: ${text}`);
  }
  if (!document) {
    if (!errors.length) errors.push(`${path.basename(file)}: did not parse`);
    return null;
  }

  const want = ['sessionInvitationNotification', 'sessionStatusNotification'];
  const channel = document.channels().all().find((c) => c.address() === '/notifications');
  if (!channel) {
    errors.push('asyncapi.yaml: no /notifications channel');
    return null;
  }
  const raw = channel.json();
  if (!raw.subscribe) errors.push('asyncapi.yaml: /notifications has no subscribe operation');
  const ws = raw.bindings && raw.bindings.ws;
  if (!ws) {
    errors.push('asyncapi.yaml: /notifications has no ws binding');
  } else {
    for (const q of ['since', 'access_token'])
      if (!ws.query || !ws.query.properties || !ws.query.properties[q])
        errors.push(`asyncapi.yaml: the ws binding does not describe the query parameter ${q}`);
    if (!ws.headers || !ws.headers.properties || !ws.headers.properties.Authorization)
      errors.push('asyncapi.yaml: the ws binding does not describe the Authorization header');
  }

  const ajv = newAjv();
  const validators = new Map();
  for (const m of channel.messages().all()) {
    const name = m.name() || m.id();
    const payload = m.payload();
    if (!payload) {
      errors.push(`asyncapi.yaml: message ${name} has no payload`);
      continue;
    }
    let validate;
    try {
      validate = ajv.compile(payload.json());
    } catch (e) {
      errors.push(`asyncapi.yaml: the payload schema of ${name} does not compile: ${e.message}`);
      continue;
    }
    validators.set(name, validate);
    for (const ex of m.examples().all()) {
      if (!ex.hasPayload()) continue;
      if (!validate(ex.payload()))
        errors.push(`asyncapi.yaml: example ${ex.name() || '?'} of ${name} does not match its payload: ${describeAjvErrors(validate.errors)}`);
    }
  }
  const have = [...validators.keys()].sort();
  if (JSON.stringify(have) !== JSON.stringify(want))
    errors.push(`asyncapi.yaml: /notifications messages are [${have.join(', ')}], want [${want.join(', ')}]`);
  return validators;
}

function checkFrames(file, validators, errors) {
  let ok = 0;
  const lines = readLines(file);
  for (const { line, text } of lines) {
    const where = `${path.basename(file)}:${line}`;
    let frame;
    try {
      frame = JSON.parse(text);
    } catch (e) {
      errors.push(`${where}: not JSON (${e.message}): ${short(text)}`);
      continue;
    }
    if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
      errors.push(`${where}: not a JSON object: ${short(text)}`);
      continue;
    }
    const keys = Object.keys(frame);
    if (keys.length !== 1) {
      errors.push(`${where}: a frame has exactly one key (the notification type), this has [${keys.join(', ')}]`);
      continue;
    }
    const validate = validators.get(keys[0]);
    if (!validate) {
      errors.push(`${where}: no message named ${keys[0]} in asyncapi.yaml`);
      continue;
    }
    if (!validate(frame)) {
      errors.push(`${where}: ${keys[0]} does not match asyncapi.yaml: ${describeAjvErrors(validate.errors)}: ${short(text)}`);
      continue;
    }
    ++ok;
  }
  return { ok, total: lines.length };
}

// ---------------------------------------------------------------------------- OpenAPI

async function checkOpenApi(file, errors) {
  try {
    return await SwaggerParser.validate(file);
  } catch (e) {
    errors.push(`openapi.yaml: ${e.message}`);
    if (Array.isArray(e.details)) for (const d of e.details) errors.push(`  ${JSON.stringify(d)}`);
    return null;
  }
}

function templateRegex(template) {
  const parts = template.split(/\{[^}]+\}/).map((p) => p.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&'));
  return new RegExp(`^${parts.join('[^/]+')}$`);
}

function checkResponses(file, api, errors) {
  const ajv = newAjv();
  const compiled = new Map();
  const routes = Object.keys(api.paths || {}).map((t) => ({ t, re: templateRegex(t) }));
  let ok = 0;
  const lines = readLines(file);
  for (const { line, text } of lines) {
    const where = `${path.basename(file)}:${line}`;
    let rec;
    try {
      rec = JSON.parse(text);
    } catch (e) {
      errors.push(`${where}: not JSON (${e.message})`);
      continue;
    }
    const method = String(rec.method || '').toLowerCase();
    const target = String(rec.path || '').split('?')[0];
    const status = String(rec.status);
    const route = routes.find((r) => r.re.test(target));
    const op = route && api.paths[route.t][method];
    if (!op) {
      errors.push(`${where}: ${rec.method} ${target} is not in openapi.yaml`);
      continue;
    }
    const res = (op.responses || {})[status] || (op.responses || {}).default;
    if (!res) {
      errors.push(`${where}: ${rec.method} ${route.t} has no response ${status} nor default in openapi.yaml`);
      continue;
    }
    const media = res.content && (res.content['application/json'] || null);
    if (!media || !media.schema) {
      ++ok;  // nothing to check the body against (e.g. text/plain or no content)
      continue;
    }
    let body;
    try {
      body = typeof rec.body === 'string' ? JSON.parse(rec.body) : rec.body;
    } catch (e) {
      errors.push(`${where}: ${rec.method} ${target} ${status}: body is not JSON: ${short(String(rec.body))}`);
      continue;
    }
    const key = `${route.t} ${method} ${status}`;
    if (!compiled.has(key)) compiled.set(key, ajv.compile(media.schema));
    const validate = compiled.get(key);
    if (!validate(body)) {
      errors.push(`${where}: ${rec.method} ${target} ${status} does not match openapi.yaml: ${describeAjvErrors(validate.errors)}: ${short(JSON.stringify(body))}`);
      continue;
    }
    ++ok;
  }
  return { ok, total: lines.length };
}

// ---------------------------------------------------------------------------- main

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const asyncFile = path.join(args.root, 'schemas', 'asyncapi.yaml');
  const openFile = path.join(args.root, 'schemas', 'openapi.yaml');
  const errors = [];
  const summary = [];

  const validators = await checkAsyncApi(asyncFile, errors);
  if (validators) summary.push(`asyncapi.yaml valid (${validators.size} messages)`);
  const api = await checkOpenApi(openFile, errors);
  if (api) summary.push(`openapi.yaml valid (${Object.keys(api.paths || {}).length} paths)`);

  for (const f of args.frames) {
    if (!validators) break;
    const { ok, total } = checkFrames(f, validators, errors);
    summary.push(`${ok}/${total} frames of ${path.basename(f)} match asyncapi.yaml`);
  }
  for (const f of args.responses) {
    if (!api) break;
    const { ok, total } = checkResponses(f, api, errors);
    summary.push(`${ok}/${total} responses of ${path.basename(f)} match openapi.yaml`);
  }

  for (const s of summary) console.log(s);
  if (errors.length) {
    for (const e of errors) console.error(`error: ${e}`);
    console.error(`validate.js: ${errors.length} error(s)`);
    process.exit(1);
  }
  console.log('validate.js: OK');
}

main().catch((e) => {
  console.error(`validate.js: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
