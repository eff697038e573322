#!/usr/bin/env node
// Prints one PoP token made by T-Mobile's public PoP token builder (npm
// tmo-poptoken-builder), for tests/integration/pop_interop_test.cpp.
//
//   node make_pop.js PRIVATE_KEY_PKCS8.pem [EHTS_JSON]
//
// EHTS_JSON (argv[3], or stdin when absent) is the ordered ehts map: either an array
// of [name, value] pairs or an object (its keys in order). Names are "uri",
// "http-method", "body" or a header name; values are what the request sends.
// Exit codes: 0 token printed, 2 usage or input error, 3 the library failed.
'use strict';

const fs = require('fs');

// The package's package.json names a main file it does not ship: require the file.
let builder;
try {
  builder = require('tmo-poptoken-builder/poptoken-builder-node.js');
} catch (e) {
  process.stderr.write('make_pop.js: cannot load tmo-poptoken-builder (run `npm ci` in ' + __dirname + '): ' +
                       e.message + '\n');
  process.exit(3);
}

function fail(msg) {
  process.stderr.write('make_pop.js: ' + msg + '\n');
  process.exit(2);
}

if (process.argv.length < 3) fail('usage: make_pop.js PRIVATE_KEY.pem [EHTS_JSON]');

let pem;
try {
  pem = fs.readFileSync(process.argv[2], 'utf8');
} catch (e) {
  fail('cannot read ' + process.argv[2] + ': ' + e.message);
}

const text = process.argv.length > 3 ? process.argv[3] : fs.readFileSync(0, 'utf8');
let parsed;
try {
  parsed = JSON.parse(text);
} catch (e) {
  fail('the ehts map is not JSON: ' + e.message);
}

const ehts = new Map();
if (Array.isArray(parsed)) {
  for (const pair of parsed) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string')
      fail('each entry must be a [name, value] pair of strings');
    ehts.set(pair[0], pair[1]);
  }
} else if (parsed !== null && typeof parsed === 'object') {
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'string') fail('value of ' + k + ' must be a string');
    ehts.set(k, v);
  }
} else {
  fail('the ehts map must be an array of pairs or an object');
}

let token;
try {
  token = builder.buildPopToken(ehts, pem);
} catch (e) {
  process.stderr.write('make_pop.js: buildPopToken failed: ' + e + '\n');
  process.exit(3);
}
process.stdout.write(token + '\n');
