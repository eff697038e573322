// SHAKEN PASSporTs with jose (npm, not ours), for tests/integration/caller_id_test.cpp:
//
//   node passport.mjs verify <token> <chain.pem>
//     Verifies an ES256 PASSporT (typ "passport") under the first certificate of the PEM
//     chain; prints {"header":…,"payload":…} on success, exits 1 with the reason otherwise.
//   node passport.mjs sign <key.pem> <header-json> <payload-json>
//     Signs the given protected header and payload (exactly as given: the test picks the
//     x5u, ppt, claims) with the PKCS#8 P-256 key; prints the compact token.
import { readFileSync } from 'node:fs';
import { CompactSign, importPKCS8, importX509, jwtVerify } from 'jose';

const [, , mode, ...args] = process.argv;
try {
  if (mode === 'verify') {
    const [token, chainFile] = args;
    const pem = readFileSync(chainFile, 'utf8');
    const first = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/);
    if (!first) throw new Error('no certificate in ' + chainFile);
    const key = await importX509(first[0], 'ES256');
    const { payload, protectedHeader } = await jwtVerify(token, key, { algorithms: ['ES256'], typ: 'passport' });
    process.stdout.write(JSON.stringify({ header: protectedHeader, payload }) + '\n');
  } else if (mode === 'sign') {
    const [keyFile, header, payload] = args;
    const key = await importPKCS8(readFileSync(keyFile, 'utf8'), 'ES256');
    const token = await new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader(JSON.parse(header)).sign(key);
    process.stdout.write(token + '\n');
  } else {
    throw new Error('usage: passport.mjs verify <token> <chain.pem> | sign <key.pem> <header-json> <payload-json>');
  }
} catch (e) {
  process.stderr.write(String(e && e.message ? e.message : e) + '\n');
  process.exit(1);
}
