#!/usr/bin/env node
// meson test client-ts: node test/run.mjs YNA_ENGINE
//   1. src/schema.d.ts is what openapi-typescript makes of ../openapi.yaml now: a path or a
//      field changed in the document without `npm run generate` fails here (and the check
//      is shown to catch such a change: one field renamed in a copy of the document);
//   2. tsc compiles the client and its test (the types hold);
//   3. the test drives a whole call through the client against the real engine.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const bin = (name) => path.join(here, 'node_modules', '.bin', name);
const engine = process.argv[2];
if (!engine) {
  console.error('usage: node test/run.mjs YNA_ENGINE');
  process.exit(2);
}
const tmp = mkdtempSync(path.join(tmpdir(), 'yna-client-ts-gen-'));
const generate = (doc, out) => execFileSync(bin('openapi-typescript'), [doc, '--output', out], { cwd: here, stdio: 'pipe' });
let failed = false;
try {
  const doc = path.join(here, '..', 'openapi.yaml');
  const committed = readFileSync(path.join(here, 'src', 'schema.d.ts'), 'utf8');
  generate(doc, path.join(tmp, 'now.d.ts'));
  if (readFileSync(path.join(tmp, 'now.d.ts'), 'utf8') !== committed) {
    console.error('client-ts: src/schema.d.ts is out of date with schemas/openapi.yaml: run `npm run generate` in schemas/client-ts');
    failed = true;
  } else {
    console.log('client-ts: src/schema.d.ts matches schemas/openapi.yaml');
  }
  // The check catches a changed field: a copy of the document with one renamed.
  const text = readFileSync(doc, 'utf8');
  if (!text.includes('clientCorrelator:')) throw new Error('openapi.yaml has no clientCorrelator field to rename');
  writeFileSync(path.join(tmp, 'changed.yaml'), text.replaceAll('clientCorrelator:', 'clientCorrelation:'));
  generate(path.join(tmp, 'changed.yaml'), path.join(tmp, 'changed.d.ts'));
  if (readFileSync(path.join(tmp, 'changed.d.ts'), 'utf8') === committed) {
    console.error('client-ts: a renamed field went unnoticed by the out-of-date check');
    failed = true;
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (failed) process.exit(1);

execFileSync(bin('tsc'), ['-p', '.'], { cwd: here, stdio: 'inherit' });
execFileSync(process.execPath, [path.join(here, 'dist', 'test', 'call.test.js'), engine], { cwd: here, stdio: 'inherit' });
