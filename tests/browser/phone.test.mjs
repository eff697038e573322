// End-to-end test of the web softphone (transport/phone/): the real yna-engine, two
// headless Chromium pages with fake microphones, a real WebRTC call signaled through
// the API. Every step goes through the page's own buttons; the test only reads
// `window.phone` (the page's state) and the peer connection's getStats().
//
// usage: node phone.test.mjs [ENGINE [ARTIFACT_DIR]]
//   ENGINE        build/transport/yna-engine
//   ARTIFACT_DIR  build/browser-artifacts (screenshots, page logs)
// Prints one line per check and "N passed, N failed"; exits 1 on any failure.
//
// Every step waits for a state (the page's `window.phone`, the peer connection's
// counters) with a generous deadline, never for a fixed time, and no step depends on
// which of an HTTP answer and the notification it caused reaches the page first: the
// sanitizer runs on a busy 2-core machine make both slow and either may win. Deadlines
// are DEADLINE_MS divided by $YNA_TEST_LOAD_SCALE (0.25 under .ci/sanitize: 4x longer).
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
const C_NUMBER = '+14250000003';

let passed = 0;
let failed = 0;
function check(ok, what, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ': ' + detail : ''}`);
  return ok;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// How long any one wait may take: ample on an idle machine, scaled up for the slow
// (sanitized, loaded) runs. A pass never waits this long; only a failure does.
const loadScale = Math.min(1, Math.max(0.05, Number(process.env.YNA_TEST_LOAD_SCALE) || 1));
const DEADLINE_MS = Math.round(60000 / loadScale);

function startEngine(dataDir) {
  const child = spawn(engineBin, ['--listen', '127.0.0.1:0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolveUrl, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`engine did not start in ${DEADLINE_MS / 1000} s: ${err}`)), DEADLINE_MS);
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

const waitFor = (page, fn, arg, timeout = DEADLINE_MS) => page.waitForFunction(fn, arg, { timeout, polling: 100 });
const waitStatus = (page, s) => waitFor(page, (want) => window.phone.status === want, s);

// Waits (by the deadline) until the page's received-packet counter has grown by `n` from
// `from` (an audio() result); returns the growth seen (less than `n` at the deadline).
// Under CPU load Chromium's fake microphone and the RTP path run late, so the packets come
// in bursts: a count in a fixed window would measure the machine, not the call.
async function receivesAtLeast(page, from, n) {
  const until = Date.now() + DEADLINE_MS;
  let grown = 0;
  while (Date.now() < until) {
    const now = await audio(page);
    grown = now && from ? now.received - from.received : -1;
    if (grown >= n) return grown;
    await sleep(200);
  }
  return grown;
}

// Waits until the page's received-packet counter stood still for `quietMs` (packets
// already in flight when a hold took effect have arrived); by the deadline.
async function quiet(page, quietMs) {
  const until = Date.now() + DEADLINE_MS;
  let last = await audio(page);
  let since = Date.now();
  while (Date.now() < until) {
    await sleep(200);
    const now = await audio(page);
    if (!now || !last) return false;
    if (now.received !== last.received) { last = now; since = Date.now(); }
    else if (Date.now() - since >= quietMs) return true;
  }
  return false;
}

// Forces the race of issue 18 on the page's next POST whose path matches `path` (a
// RegExp): the engine answers it at once, but the answer reaches the page only after the
// page has logged the notification `text`, which that request caused (for /start: the
// page cannot know its call yet). Returns { released }: a promise of { status, seen,
// error } once the answer is handed to the page; the route is removed by then.
async function holdReply(page, path, text) {
  const matches = (url) => path.test(url.pathname);
  let release;
  const released = new Promise((r) => { release = r; });
  await page.route(matches, async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    const held = { status: 0, seen: false };
    try {
      const response = await route.fetch({ timeout: DEADLINE_MS });  // the engine answers now; the page waits
      held.status = response.status();
      try {
        await waitFor(page, (t) => window.phone.log.some((l) => l.kind === 'notification' && l.text.startsWith(t)), text);
        held.seen = true;
      } catch (err) {
        held.error = `no "${text}" while the answer was held: ${String(err.message ?? err).split('\n')[0]}`;
      }
      await route.fulfill({ response });
    } catch (err) {
      held.error ??= String(err.message ?? err).split('\n')[0];
      await route.abort().catch(() => {});
    }
    await page.unroute(matches).catch(() => {});
    release(held);
  });
  return { released };
}

// The index in the page's log of the first entry of `kind` whose text starts with `text`.
const logIndex = (page, kind, text) =>
  page.evaluate(([k, t]) => window.phone.log.findIndex((l) => l.kind === k && l.text.startsWith(t)), [kind, text]);

async function openPhone(browser, base, number, name) {
  const context = await browser.newContext({ viewport: { width: 760, height: 680 } });
  await context.grantPermissions(['microphone'], { origin: base });
  const page = await context.newPage();
  page.setDefaultTimeout(DEADLINE_MS);  // clicks wait for their button to be enabled
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

    // Call, with the race of issue 18 forced: A dials B, and the engine's answer to A's
    // POST /start is held back from A's page until B's page has sent /ringing and A's
    // page has received that Ringing notification (for a call it cannot know yet). The
    // page must keep it and apply it once the /start answer names the call: A shows
    // Ringing, then Connected when B answers.
    const race = await holdReply(a, /\/start$/, 'status Ringing');
    await a.fill('#to-number', B_NUMBER);
    await a.click('#call');
    await waitFor(b, () => window.phone.incoming !== null);
    await b.waitForSelector('#answer:not([hidden])');
    const held = await race.released;
    check(held.status === 200 && held.seen, 'race: A\'s page got B\'s Ringing while its POST /start answer was held back',
          held.error ?? `engine answered ${held.status}`);
    await waitStatus(a, 'Ringing');
    const [ringAt, startAt] = [await logIndex(a, 'notification', 'status Ringing'), await logIndex(a, 'http', 'POST /start → 200')];
    check(ringAt >= 0 && startAt > ringAt && (await a.evaluate(() => window.phone.callId)) !== '',
          'race: A shows Ringing, from the notification that came before its /start answer',
          `log #${ringAt} Ringing, #${startAt} POST /start → 200`);
    check(true, 'B sees the incoming call, A sees it ring');
    await shot(b, 'phone-b-incoming.png');

    // Answer: both peer connections connect and audio flows both ways. B's /connected
    // answer and A's Connected notification may come in either order.
    await b.click('#answer');
    const connected = () => window.phone.pc?.connectionState === 'connected';
    await Promise.all([waitFor(a, connected), waitFor(b, connected)]);
    check(true, 'both peer connections reach connected');
    await Promise.all([waitStatus(a, 'Connected'), waitStatus(b, 'Connected')]);
    check(true, 'both pages show Connected (A after the forced race)');
    const [ra, rb] = await Promise.all([a, b].map((p) => receivesAtLeast(p, { received: 0 }, 1)));
    check(ra > 0 && rb > 0, 'each side receives audio packets (inbound-rtp packetsReceived > 0)', `A ${ra}, B ${rb}`);
    await shot(a, 'phone-a-connected.png');
    await shot(b, 'phone-b-connected.png');

    // Hold (A holds B): A's audio goes sendonly, B's recvonly; B stops sending, so A's
    // inbound packet counter stops while B's keeps growing. A's Hold (the answer, by
    // notification) and B's (after its /acceptHold answer) may come in either order.
    // The race forced on A: the answer's notification before A's own /hold answer; the
    // late 200 must not turn A's Hold back into "Holding…".
    const race3 = await holdReply(a, /\/hold\/[^/]+$/, 'status Hold with sdp');
    await a.click('#hold');
    const held3 = await race3.released;
    await waitFor(a, () => window.phone.log.some((l) => l.kind === 'http' && l.text.startsWith('POST /hold/')));
    const afterHold = await a.evaluate(() => window.phone.status);
    check(held3.status === 200 && held3.seen && afterHold === 'Hold',
          'race: A applied the hold\'s answer before its /hold answer came, and still shows Hold after it',
          held3.error ?? `A shows ${afterHold}`);
    await Promise.all([waitStatus(a, 'Hold'), waitStatus(b, 'Hold')]);
    const [ha, hb] = [await audio(a), await audio(b)];
    check(ha.direction === 'sendonly' && hb.direction === 'recvonly', 'hold: negotiated directions',
          `A ${ha.direction}, B ${hb.direction}`);
    // Packets in flight when the hold took effect may still land: wait until A's counter
    // stands still, then it must stay (nearly) still for 2 s while B's keeps growing.
    const settled = await quiet(a, 1000);
    const [qa, qb] = [await audio(a), await audio(b)];
    await sleep(2000);  // a measuring window, not a synchronisation
    const dha = (await audio(a)).received - qa.received;
    const dhb = await receivesAtLeast(b, qb, 25);
    check(settled && dha <= 2 && dhb >= 25, 'hold: the holder receives nothing (2 s) and the held side still receives (25 packets)',
          `A +${dha}${settled ? '' : ' (never quiet)'}, B +${dhb} packets`);
    await shot(a, 'phone-a-hold.png');
    await shot(b, 'phone-b-hold.png');

    // Resume: both directions again, both counters grow.
    await a.click('#resume');
    await Promise.all([waitStatus(a, 'Connected'), waitStatus(b, 'Connected')]);
    const [sa, sb] = [await audio(a), await audio(b)];
    check(sa.direction === 'sendrecv' && sb.direction === 'sendrecv', 'resume: negotiated directions',
          `A ${sa.direction}, B ${sb.direction}`);
    const [dsa, dsb] = await Promise.all([receivesAtLeast(a, sa, 25), receivesAtLeast(b, sb, 25)]);
    check(dsa >= 25 && dsb >= 25, 'resume: both sides receive audio again (25 packets each)', `A +${dsa}, B +${dsb} packets`);

    // Hang up: A ends, B learns it from its notification; both pages show the ending.
    await a.click('#hangup');
    await Promise.all([waitFor(a, () => window.phone.ended === 'Terminated'),
                       waitFor(b, () => window.phone.ended === 'Terminated')]);
    const shown = await Promise.all([a, b].map((p) => p.textContent('#status')));
    check(shown[0] === 'Terminated' && shown[1] === 'Terminated', 'hang-up: both pages show Terminated', shown.join(', '));
    await shot(a, 'phone-a-ended.png');
    await shot(b, 'phone-b-ended.png');

    // A second call, declined, with the race forced on an ending: B calls A, A's page
    // rings, A hangs up without answering, and B's page gets the Declined before its own
    // /start answer. The kept Declined must end B's call once the answer names it.
    const race2 = await holdReply(b, /\/start$/, 'status Declined');
    await b.fill('#to-number', A_NUMBER);
    await b.click('#call');
    await waitFor(a, () => window.phone.incoming !== null);
    await a.click('#hangup');
    const held2 = await race2.released;
    check(held2.status === 200 && held2.seen, 'race: B\'s page got A\'s Declined while its POST /start answer was held back',
          held2.error ?? `engine answered ${held2.status}`);
    await Promise.all([waitFor(a, () => window.phone.ended === 'Declined'),
                       waitFor(b, () => window.phone.ended === 'Declined')]);
    const [declAt, start2At] = await Promise.all([
      b.evaluate(() => window.phone.log.findLastIndex((l) => l.kind === 'notification' && l.text.startsWith('status Declined'))),
      b.evaluate(() => window.phone.log.findLastIndex((l) => l.kind === 'http' && l.text.startsWith('POST /start → 200')))]);
    check(declAt >= 0 && start2At > declAt && (await b.evaluate(() => window.phone.callId)) === null,
          'a second call, declined before the answer: both pages show Declined (B from the notification before its /start answer)',
          `B log #${declAt} Declined, #${start2At} POST /start → 200`);

    // Call waiting (contract §10): A calls B, B answers; C calls B while B is in the call.
    // B's page shows the waiting call; answering it holds A; audio flows between B and C;
    // Switch holds C and resumes A, and audio flows between A and B again.
    const c = await openPhone(browser, engine.url, C_NUMBER, 'C');
    pages.push(c);
    await a.fill('#to-number', B_NUMBER);
    await a.click('#call');
    await waitFor(b, () => window.phone.incoming !== null);
    await b.click('#answer');
    await Promise.all([waitStatus(a, 'Connected'), waitStatus(b, 'Connected')]);
    await c.fill('#to-number', B_NUMBER);
    await c.click('#call');
    await waitFor(b, () => window.phone.incoming?.waiting === true);
    // C is told Waiting (then Ringing: B's page alerts the waiting call like any other).
    await waitFor(c, () => window.phone.log.some((l) => l.kind === 'notification' && l.text.includes('status Waiting')));
    check(await b.isVisible('#waiting'), 'call waiting: B is in a call and sees the second one waiting; C is told Waiting');
    await shot(b, 'phone-b-waiting.png');
    await b.click('#answer-waiting');
    await Promise.all([waitStatus(a, 'Hold'), waitStatus(c, 'Connected'),
                       waitFor(b, () => window.phone.parked?.status === 'Hold' && window.phone.status === 'Connected')]);
    const [wb, wc] = [await audio(b), await audio(c)];
    const [dwb, dwc] = await Promise.all([receivesAtLeast(b, wb, 25), receivesAtLeast(c, wc, 25)]);
    check(dwb >= 25 && dwc >= 25, 'call waiting: B answered C with A on hold; audio flows between B and C (25 packets each)',
          `B +${dwb}, C +${dwc} packets`);
    await shot(b, 'phone-b-two-calls.png');
    await b.click('#swap');
    await Promise.all([waitStatus(c, 'Hold'), waitStatus(a, 'Connected'),
                       waitFor(b, () => window.phone.parked?.status === 'Hold' && window.phone.status === 'Connected')]);
    const [xa, xb] = [await audio(a), await audio(b)];
    const [dxa, dxb] = await Promise.all([receivesAtLeast(a, xa, 25), receivesAtLeast(b, xb, 25)]);
    check(dxa >= 25 && dxb >= 25, 'switch: C on hold, A resumed; audio flows between A and B again', `A +${dxa}, B +${dxb} packets`);

    // C hangs up its held call; then B transfers A to C (blind): A's page is told
    // Terminated (transferred) and calls C itself with transferOf; C's invitation names B
    // as the diversion; C answers and audio flows on the new call.
    await c.click('#hangup');
    await Promise.all([waitFor(c, () => window.phone.ended === 'Terminated'),
                       waitFor(b, () => window.phone.parked === null)]);
    await b.fill('#transfer-to', C_NUMBER);
    await b.click('#transfer');
    await waitFor(b, () => window.phone.ended === 'Terminated' && window.phone.cur === null);
    await waitFor(c, () => window.phone.incoming !== null && !window.phone.incoming.waiting);
    const diverted = await logIndex(c, 'notification', 'invitation from tel:+14250000001');
    const viaB = await c.evaluate((i) => window.phone.log[i]?.text ?? '', diverted);
    check(viaB.includes('diverted by tel:+14250000002'), 'transfer: A calls C by itself; C\'s invitation names B', viaB);
    await c.click('#answer');
    await Promise.all([waitStatus(a, 'Connected'), waitStatus(c, 'Connected')]);
    const [ta, tc] = [await audio(a), await audio(c)];
    const [dta, dtc] = await Promise.all([receivesAtLeast(a, ta, 25), receivesAtLeast(c, tc, 25)]);
    check(dta >= 25 && dtc >= 25, 'transfer: audio flows on the new call between A and C (25 packets each)',
          `A +${dta}, C +${dtc} packets`);
    await shot(a, 'phone-a-transferred.png');
    await a.click('#hangup');
    await Promise.all([waitFor(a, () => window.phone.ended === 'Terminated'),
                       waitFor(c, () => window.phone.ended === 'Terminated')]);

    // Forwarding settings from the page: C forwards to B unconditionally; A's call to C
    // rings B, its invitation naming C.
    await c.fill('#fw-unconditional', B_NUMBER);
    await c.click('#save-settings');
    await waitFor(c, () => window.phone.settings?.forwarding?.unconditional === '14250000002');
    await a.fill('#to-number', C_NUMBER);
    await a.click('#call');
    await waitFor(b, () => window.phone.incoming !== null);
    await waitFor(a, () => window.phone.log.some((l) => l.kind === 'notification' && l.text.startsWith('status Forwarded')));
    const fwd = await b.evaluate(() => window.phone.log.findLast((l) => l.text.startsWith('invitation'))?.text ?? '');
    check(fwd.includes('diverted by tel:+14250000003'), 'forwarding set on the page: A\'s call to C rings B', fwd);
    await a.click('#hangup');
    await waitFor(b, () => window.phone.incoming === null);

    // The pages' PoP tokens went through the engine's one verifier: nothing was refused.
    const metrics = await (await fetch(`${engine.url}/metrics`)).text();
    const refused = metrics.match(/^yna_unauthenticated_requests_total (\d+)/m);
    check(refused && refused[1] === '0', 'no request of the pages was refused with 401 (PoP and token verified)',
          refused ? refused[1] : 'metric missing');
  } catch (err) {
    check(false, 'the call flow ran to the end', String(err.message ?? err).split('\n')[0]);
    for (const [i, p] of pages.entries()) {
      await shot(p, `phone-${'abc'[i]}-failure.png`).catch(() => {});
      const log = await p.evaluate(() => window.phone.log).catch(() => []);
      console.log(`[${'ABC'[i]} page log]\n${log.map((l) => `  ${l.kind}: ${l.text}`).join('\n')}`);
    }
  } finally {
    for (const [i, p] of pages.entries()) {
      const log = await p.evaluate(() => window.phone.log).catch(() => []);
      writeFileSync(join(artifacts, `phone-${'abc'[i]}-log.json`), JSON.stringify(log, null, 1));
    }
    await browser.close();
    // Wait for the engine to be gone before removing its folder: a clean stop flushes the
    // log's memtables, writing files into it until the process exits.
    const child = engine.child;
    const gone = child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve() : new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const stuck = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await gone;
    clearTimeout(stuck);
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
