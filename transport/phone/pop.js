// The device's PoP key and T-Mobile's PoP token (X-Authorization), made with WebCrypto.
// Same format as schemas/pop_token.cpp: an RS256 JWT with iat, exp, ehts (the signed
// values' names joined by ';'), edts = base64url(SHA-256 of the values concatenated in
// ehts order), jti and v "1". The engine verifies it like any other client's
// (transport/pop.cpp): uri is the request target as sent, body only when non-empty.
const utf8 = new TextEncoder();

export function base64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// A fresh RSA-2048 key pair; the private half cannot be exported from the page.
export async function makeDeviceKey() {
  const pair = await crypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    false, ['sign', 'verify']);
  const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
  return { privateKey: pair.privateKey, publicJwk: { kty: 'RSA', n: jwk.n, e: jwk.e } };
}

// The X-Authorization value for one request. `authorization` is the Authorization
// header exactly as sent, `uri` the request target (path and query), `body` the exact
// body text ('' for none).
export async function popToken(privateKey, { authorization, uri, method, body = '' }, ttlSeconds = 60) {
  const names = ['Authorization', 'uri', 'http-method'];
  const values = [authorization, uri, method];
  if (body !== '') {
    names.push('body');
    values.push(body);
  }
  const digest = await crypto.subtle.digest('SHA-256', utf8.encode(values.join('')));
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iat: now,
    exp: now + ttlSeconds,
    ehts: names.join(';'),
    edts: base64url(new Uint8Array(digest)),
    jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
    v: '1',
  };
  const part = (o) => base64url(utf8.encode(JSON.stringify(o)));
  const input = part({ alg: 'RS256', typ: 'JWT' }) + '.' + part(claims);
  const signature = await crypto.subtle.sign('RSASSA-PKCS1-v1_5', privateKey, utf8.encode(input));
  return input + '.' + base64url(new Uint8Array(signature));
}
