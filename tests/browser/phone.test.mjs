// End-to-end test of the web softphone (transport/phone/): the real yna-engine, two
// headless Chromium pages with fake microphones, a real WebRTC call signaled through
// the API. Every step goes through the page's own buttons; the test only reads
// `window.phone` (the page's state) and the peer connection's getStats().
//
// usage: node phone.test.mjs [ENGINE [ARTIFACT_DIR]]
//   ENGINE        build/transport/yna-engine
//   ARTIFACT_DIR  build/browser-artifacts (screenshots, page logs)
// Prints one line per check and "N passed, N failed"; exits 1 on any failure.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const engineBin = resolve(process.argv[2] ?? 'build/transport/yna-engine');
const artifacts = resolve(process.argv[3] ?? 'build/browser-artifacts');
const chromiumBin = process.env.CHROMIUM ?? '/usr/bin/chromium';
const A_NUMBER = '+14250000001';
const B_NUMBER = '+14250000002';

let passed = 0;
let failed = 0;
function check(ok, what, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ': ' + detail : ''}`);
  return ok;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function startEngine(dataDir) {
  const child = spawn(engineBin, ['--listen', '127.0.0.1:0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolveUrl, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`engine did not start in 20 s: ${err}`)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/yna-engine listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolveUrl({ child, url: m[1], stderr: () => err }); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`engine exited (${code}): ${err}`)); });
  });
}

// The first audio transceiver's negotiated direction and RTP packet counters.
async function audio(page) {
  return page.evaluate(async () => {
    const pc = window.phone.pc;
    if (!pc) return null;
    const out = { state: pc.connectionState, direction: pc.getTransceivers()[0]?.currentDirection, received: 0, sent: 0 };
    (await pc.getStats()).forEach((s) => {
      if (s.kind !== 'audio') return;
      if (s.type === 'inbound-rtp') out.received += s.packetsReceived ?? 0;
      if (s.type === 'outbound-rtp') out.sent += s.packetsSent ?? 0;
    });
    return out;
  });
}

// Packets received by each page over `ms` milliseconds.
async function receivedOver(pages, ms) {
  const before = await Promise.all(pages.map(audio));
  await sleep(ms);
  const after = await Promise.all(pages.map(audio));
  return after.map((a, i) => (a && before[i] ? a.received - before[i].received : -1));
}

const status = (page) => page.evaluate(() => window.phone.status);
const waitFor = (page, fn, arg, timeout = 15000) => page.waitForFunction(fn, arg, { timeout, polling: 100 });

async function openPhone(browser, base, number, name) {
  const context = await browser.newContext({ viewport: { width: 760, height: 680 } });
  await context.grantPermissions(['microphone'], { origin: base });
  const page = await context.newPage();
  page.on('console', (m) => console.log(`[${name} console] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[${name} pageerror] ${e.message}`));
  await page.goto(`${base}/phone/`);
  await page.fill('#my-number', number);
  await page.click('#get-token');
  await waitFor(page, () => window.phone.online);
  return page;
}

async function main() {
  mkdirSync(artifacts, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'yna-browser-'));
  const started = Date.now();
  const engine = await startEngine(dataDir);
  const browser = await chromium.launch({
    executablePath: chromiumBin,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      // Host candidates on loopback, by address (no mDNS names to resolve, no multicast).
      '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
    ],
  });
  const pages = [];
  const shot = (page, name) => page.screenshot({ path: join(artifacts, name) });
  try {
    const a = await openPhone(browser, engine.url, A_NUMBER, 'A');
    const b = await openPhone(browser, engine.url, B_NUMBER, 'B');
    pages.push(a, b);
    check(true, 'both pages got a development token and opened their notification socket');

    // Call: A dials B, B's page rings, A sees it ring.
    await a.fill('#to-number', B_NUMBER);
    await a.click('#call');
    await waitFor(b, () => window.phone.incoming !== null);
    await b.waitForSelector('#answer:not([hidden])');
    await waitFor(a, () => window.phone.status === 'Ringing');
    check(true, 'B sees the incoming call, A sees it ring');
    await shot(b, 'phone-b-incoming.png');

    // Answer: both peer connections connect and audio flows both ways.
    await b.click('#answer');
    const connected = () => window.phone.pc?.connectionState === 'connected';
    await Promise.all([waitFor(a, connected, null, 20000), waitFor(b, connected, null, 20000)]);
    check(true, 'both peer connections reach connected');
    await Promise.all([a, b].map((p) => waitFor(p, async () => {
      let n = 0;
      (await window.phone.pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') n += s.packetsReceived; });
      return n > 0;
    }, null, 10000)));
    const [ra, rb] = [await audio(a), await audio(b)];
    check(ra.received > 0 && rb.received > 0, 'each side receives audio packets (inbound-rtp packetsReceived > 0)',
          `A ${ra.received}, B ${rb.received}`);
    check((await status(a)) === 'Connected' && (await status(b)) === 'Connected', 'both pages show Connected');
    await shot(a, 'phone-a-connected.png');
    await shot(b, 'phone-b-connected.png');

    // Hold (A holds B): A's audio goes sendonly, B's recvonly; B stops sending, so A's
    // inbound packet counter stops while B's keeps growing.
    await a.click('#hold');
    await Promise.all([waitFor(a, () => window.phone.status === 'Hold'), waitFor(b, () => window.phone.status === 'Hold')]);
    await sleep(500);  // packets already in flight when the answer was applied
    const [ha, hb] = [await audio(a), await audio(b)];
    check(ha.direction === 'sendonly' && hb.direction === 'recvonly', 'hold: negotiated directions',
          `A ${ha.direction}, B ${hb.direction}`);
    const [dha, dhb] = await receivedOver([a, b], 2000);
    check(dha <= 2 && dhb >= 25, 'hold: in 2 s the holder receives nothing and the held side still receives',
          `A +${dha}, B +${dhb} packets`);
    await shot(a, 'phone-a-hold.png');
    await shot(b, 'phone-b-hold.png');

    // Resume: both directions again, both counters grow.
    await a.click('#resume');
    await Promise.all([waitFor(a, () => window.phone.status === 'Connected'),
                       waitFor(b, () => window.phone.status === 'Connected')]);
    await sleep(500);
    const [sa, sb] = [await audio(a), await audio(b)];
    check(sa.direction === 'sendrecv' && sb.direction === 'sendrecv', 'resume: negotiated directions',
          `A ${sa.direction}, B ${sb.direction}`);
    const [dsa, dsb] = await receivedOver([a, b], 2000);
    check(dsa >= 25 && dsb >= 25, 'resume: in 2 s both sides receive audio again', `A +${dsa}, B +${dsb} packets`);

    // Hang up: A ends, B learns it from its notification; both pages show the ending.
    await a.click('#hangup');
    await Promise.all([waitFor(a, () => window.phone.ended === 'Terminated'),
                       waitFor(b, () => window.phone.ended === 'Terminated')]);
    const shown = await Promise.all([a, b].map((p) => p.textContent('#status')));
    check(shown[0] === 'Terminated' && shown[1] === 'Terminated', 'hang-up: both pages show Terminated', shown.join(', '));
    await shot(a, 'phone-a-ended.png');
    await shot(b, 'phone-b-ended.png');

    // A second call, declined: B calls A, A's page rings, A hangs up without answering.
    await b.fill('#to-number', A_NUMBER);
    await b.click('#call');
    await waitFor(a, () => window.phone.incoming !== null);
    await a.click('#hangup');
    await Promise.all([waitFor(a, () => window.phone.ended === 'Declined'),
                       waitFor(b, () => window.phone.ended === 'Declined')]);
    check(true, 'a second call, declined before the answer: both pages show Declined');

    // The pages' PoP tokens went through the engine's one verifier: nothing was refused.
    const metrics = await (await fetch(`${engine.url}/metrics`)).text();
    const refused = metrics.match(/^yna_unauthenticated_requests_total (\d+)/m);
    check(refused && refused[1] === '0', 'no request of the pages was refused with 401 (PoP and token verified)',
          refused ? refused[1] : 'metric missing');
  } catch (err) {
    check(false, 'the call flow ran to the end', String(err.message ?? err).split('\n')[0]);
    for (const [i, p] of pages.entries()) {
      await shot(p, `phone-${'ab'[i]}-failure.png`).catch(() => {});
      const log = await p.evaluate(() => window.phone.log).catch(() => []);
      console.log(`[${'AB'[i]} page log]\n${log.map((l) => `  ${l.kind}: ${l.text}`).join('\n')}`);
    }
  } finally {
    for (const [i, p] of pages.entries()) {
      const log = await p.evaluate(() => window.phone.log).catch(() => []);
      writeFileSync(join(artifacts, `phone-${'ab'[i]}-log.json`), JSON.stringify(log, null, 1));
    }
    await browser.close();
    engine.child.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
  console.log(`screenshots: ${artifacts} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((err) => {
  console.log(`FAIL ${err.message ?? err}`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
