// The web softphone: one page, one number, a call in focus and at most one more (call
// waiting: answering it holds the first; Switch goes back and forth), blind transfer,
// and the number's forwarding settings (contract §10). Signaling is the
// calling API (REST with PoP, notifications over the WebSocket); media is WebRTC,
// non-trickle (the API carries no ICE candidates, so every SDP is sent only once
// gathering is complete). `window.phone` exposes the state for the browser test
// (tests/browser/phone.test.mjs).
import { makeDeviceKey, popToken } from './pop.js';

const $ = (id) => document.getElementById(id);
// The API lives where the engine serves /phone/ from (it may run under --base-path).
const base = location.pathname.replace(/\/phone(\/.*)?$/, '');
const ENDED = new Set(['Terminated', 'SessionCancelled', 'Declined', 'Busy', 'NoAnswer', 'NotReachable', 'Failed']);
// A notification can come before the HTTP answer of the request that caused it: the
// callee's Ringing (or Busy, or its answer) before our /start answer names the call. The
// status notifications that arrive while our /start is in flight, for a call we do not
// know, are kept here (at most EARLY_MAX, each for EARLY_MS) and applied in sequenceNumber
// order once the /start answer names their call; the others are dropped then.
const EARLY_MAX = 64;
const EARLY_MS = 10000;
const early = [];  // { id, seq, at, s }

// A call on this device: the one in focus (phone.cur, the buttons act on it) or a second
// one parked on hold while the focus is on another (call waiting, contract §10).
function newCall(callId, peer) {
  return { callId, peer, pc: null, held: null, status: 'Calling' };
}

const phone = {
  me: null,          // my number (E.164 digits, as the token lists it)
  token: null,       // access token (Authorization: Bearer)
  key: null,         // { privateKey, publicJwk }: the device's PoP key
  ws: null,
  online: false,
  stream: null,      // the microphone
  cur: null,         // the call in focus: { callId ('' while its /start is in flight), peer, pc, held, status }
  parked: null,      // the other call, held by me, while `cur` is a call I answered or switched to
  incoming: null,    // { callId, from, sdp, waiting } while an invitation rings (waiting: I am in a call)
  idle: 'idle',      // what the status line says with no call in focus
  ended: null,       // the ending status of the last call that ended in focus
  settings: null,    // my number's settings (GET /settings), as last read or saved
  log: [],           // every notification and request, for the test
  // The call in focus, as the single-call page had it (the browser test reads these).
  get callId() { return this.cur ? this.cur.callId : null; },
  get pc() { return this.cur?.pc ?? null; },
  get held() { return this.cur?.held ?? null; },
  get status() { return this.cur ? this.cur.status : this.idle; },
};
window.phone = phone;

function note(kind, text) {
  phone.log.push({ kind, text });
  const li = document.createElement('li');
  li.className = kind;
  li.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
  $('log').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

function render() {
  const c = phone.cur;
  const inCall = c !== null;
  const ringing = phone.incoming !== null && !phone.incoming.waiting;
  const waiting = phone.incoming?.waiting ? phone.incoming : null;
  $('online').textContent = phone.online ? `online as +${phone.me}` : 'offline';
  $('online').classList.toggle('on', phone.online);
  $('call').disabled = !phone.online || inCall || phone.incoming !== null;
  $('answer').hidden = !ringing;
  $('hold').disabled = !inCall || c.status !== 'Connected' || c.held !== null || !c.pc;
  $('resume').disabled = !inCall || c.held !== 'by-me' || c.status !== 'Hold';
  $('hangup').disabled = !inCall && !ringing;
  $('transfer').disabled = !inCall || !c.callId || !['Connected', 'Hold'].includes(c.status);
  $('status').textContent = phone.status;
  $('status').classList.toggle('ended', ENDED.has(phone.status));
  $('peer').textContent = c ? c.peer : ringing ? `from ${phone.incoming.from}` : '';
  // Call waiting: a second call rings while I am in one; the other call, on hold.
  $('waiting').hidden = !waiting;
  $('waiting-from').textContent = waiting ? waiting.from : '';
  $('other').hidden = phone.parked === null;
  $('other-call').textContent = phone.parked ? `${phone.parked.peer} (${phone.parked.status}, on hold)` : '';
  const pc = c?.pc;
  $('media').textContent = pc
    ? `peer connection ${pc.connectionState}, audio ${pc.getTransceivers()[0]?.currentDirection ?? '-'}`
    : 'no media';
}

function setStatus(c, s) {
  c.status = s;
  render();
}

// One API request, signed with the device's PoP key.
async function api(method, path, body, extra = {}) {
  const uri = base + path;
  const text = body === undefined ? '' : JSON.stringify(body);
  const authorization = `Bearer ${phone.token}`;
  const headers = {
    Authorization: authorization,
    'X-Authorization': await popToken(phone.key.privateKey, { authorization, uri, method, body: text }),
  };
  if (text) headers['Content-Type'] = 'application/json';
  Object.assign(headers, extra);
  const res = await fetch(uri, { method, headers, body: text || undefined });
  const out = await res.json().catch(() => ({}));
  const code = out.errors?.[0]?.reasonCode ?? out.reasonCode;
  note('http', `${method} ${path} → ${res.status}${code ? ' ' + code : ''}`);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${code ?? ''} ${out.errors?.[0]?.systemMessage ?? ''}`);
  return out;
}

async function getToken() {
  const msisdn = $('my-number').value.trim();
  phone.key = await makeDeviceKey();
  const res = await fetch(`${base}/dev/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ msisdn, jwk: phone.key.publicJwk }),
  });
  const out = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`POST /dev/token: ${res.status} ${out.systemMessage ?? ''}`);
  phone.token = out.accessToken;
  phone.me = msisdn.replace(/^\+/, '');
  note('http', `POST /dev/token → ${res.status} (device ${out.deviceId})`);
  connect();
  await loadSettings();
}

// ---- settings (contract §10): call waiting and forwarding of my number

const RULES = ['unconditional', 'busy', 'noAnswer', 'notReachable'];

function showSettings(s) {
  phone.settings = s;
  $('cw').checked = s.callWaiting;
  for (const r of RULES) {
    const v = s.forwarding[r];
    $(`fw-${r}`).value = v === null ? '' : '+' + (r === 'noAnswer' ? v.to : v);
  }
  if (s.forwarding.noAnswer) $('fw-timeout').value = s.forwarding.noAnswer.timeout;
  render();
}

async function loadSettings() {
  showSettings(await api('GET', `/settings/${phone.me}`));
}

async function saveSettings() {
  const forwarding = {};
  for (const r of RULES) {
    const v = $(`fw-${r}`).value.trim();
    if (!v) continue;
    forwarding[r] = r === 'noAnswer' ? { to: v, timeout: Number($('fw-timeout').value) || 20 } : v;
  }
  showSettings(await api('PUT', `/settings/${phone.me}`, { callWaiting: $('cw').checked, forwarding }));
}

// ---- notifications

function connect() {
  if (phone.ws) phone.ws.close();
  const url = new URL(`${base}/notifications`, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('access_token', phone.token);
  const ws = new WebSocket(url);
  phone.ws = ws;
  ws.onopen = () => { phone.online = true; note('ws', 'notifications connected'); render(); };
  ws.onclose = () => { if (phone.ws === ws) { phone.online = false; note('ws', 'notifications closed'); render(); } };
  ws.onmessage = (e) => serially(() => onNotification(JSON.parse(e.data)));
}

// Notifications are handled one at a time, in order: each may await SDP work and
// requests. Work that must not overtake a notification's handling (applying the kept
// early ones) goes through the same queue.
let queue = Promise.resolve();
function serially(fn) {
  queue = queue.then(fn).catch((err) => note('error', String(err.message ?? err)));
}

// Keeps a status notification of a call we cannot know yet (our /start is in flight).
function keepEarly(id, s) {
  const now = Date.now();
  while (early.length && (now - early[0].at > EARLY_MS || early.length >= EARLY_MAX)) early.shift();
  early.push({ id, seq: s.notificationReference?.sequenceNumber ?? 0, at: now, s });
}

// Applies the kept notifications of the call we now know, oldest sequenceNumber first;
// drops the rest. Runs at the start of every notification's handling (so one that came
// before the /start answer but is handled after it cannot overtake the kept ones) and
// once queued by call() when the /start answer comes.
async function applyEarly() {
  const c = phone.cur;
  if (!c || !c.callId || early.length === 0) return;
  const now = Date.now();
  const mine = early.filter((e) => e.id === c.callId && now - e.at <= EARLY_MS).sort((x, y) => x.seq - y.seq);
  early.length = 0;
  for (const e of mine) {
    if (phone.cur !== c) return;  // one of them ended the call
    note('notification', `applying status ${e.s.status} (sequenceNumber ${e.seq}), received before the /start answer`);
    await onStatus(c, e.s);
  }
}

function callIdOf(ref) { return ref.slice(ref.lastIndexOf('/') + 1); }
const digits = (tel) => (tel ?? '').replace(/^tel:\+?/, '');

async function onNotification(n) {
  await applyEarly();
  if (n.sessionInvitationNotification) {
    const inv = n.sessionInvitationNotification;
    const id = callIdOf(inv.callObjectRef);
    const via = inv.diversionAddress ? `, diverted by ${inv.diversionAddress}` : '';
    note('notification', `invitation from ${inv.originatorAddress} (call ${id.slice(0, 8)}…${via})${inv.callWaiting ? ' [call waiting]' : ''}`);
    if (phone.incoming !== null || phone.parked !== null) return;  // two calls at most: let it ring out
    if (phone.cur !== null && !phone.cur.callId) return;  // dialling: let it ring out
    phone.incoming = { callId: id, from: inv.originatorAddress, sdp: inv.sdp, waiting: phone.cur !== null };
    if (!phone.incoming.waiting) phone.idle = 'Incoming call';
    render();
    await api('POST', `/ringing/${id}`);
    return;
  }
  const s = n.sessionStatusNotification;
  if (!s) return;
  const id = callIdOf(s.callObjectRef);
  const extra = [s.reason && `(${s.reason})`, s.sdp && 'with sdp', s.diversionAddress && `diversion ${s.diversionAddress}`,
                 s.transferTargetAddress && `transfer to ${s.transferTargetAddress}`].filter(Boolean).join(' ');
  note('notification', `status ${s.status}${extra ? ' ' + extra : ''}`);
  if (phone.incoming?.callId === id) {  // the caller gave up, or it went elsewhere
    if (ENDED.has(s.status) || s.status === 'Forwarded') {
      const waiting = phone.incoming.waiting;
      phone.incoming = null;
      if (!waiting) { phone.ended = s.status; phone.idle = s.status; }
      render();
    }
    return;
  }
  const c = [phone.cur, phone.parked].find((x) => x && x.callId === id);
  if (!c) {
    if (phone.cur && phone.cur.callId === '') keepEarly(id, s);  // perhaps the call our /start is making
    return;
  }
  return onStatus(c, s);
}

// Still on call `c` with the peer connection `pc`, after an await? (A hang-up, or an
// ending notification handled meanwhile, ends it.)
const still = (c, pc) => (phone.cur === c || phone.parked === c) && c.pc === pc;

async function onStatus(c, s) {
  if (ENDED.has(s.status)) {
    finish(c, s.status);
    // Transferred away by the other party (contract §10): call the target myself.
    if (s.reason === 'transferred' && s.transferTargetAddress && phone.cur === null)
      await callTo(digits(s.transferTargetAddress), c.callId);
    return;
  }
  const pc = c.pc;
  if (s.sdp && pc && pc.signalingState === 'have-local-offer') {
    // The answer to my offer: the call's (Connected), my hold's (Hold), my resume's (Connected).
    await pc.setRemoteDescription({ type: 'answer', sdp: s.sdp });
    if (!still(c, pc)) return;
    if (s.status === 'Connected') c.held = null;
    return setStatus(c, s.status);
  }
  if ((s.status === 'Hold' || s.status === 'Resume') && s.sdp && pc) {
    // The other side holds or resumes: answer its offer (the browser turns its sendonly
    // into our recvonly, its sendrecv into ours).
    await pc.setRemoteDescription({ type: 'offer', sdp: s.sdp });
    const sdp = await localDescription(pc, 'answer');
    if (!still(c, pc)) return;
    const holding = s.status === 'Hold';
    await api('POST', `/${holding ? 'acceptHold' : 'acceptResume'}/${c.callId}`, { sdp });
    if (!still(c, pc)) return;
    c.held = holding ? 'by-peer' : null;
    return setStatus(c, holding ? 'Hold' : 'Connected');
  }
  setStatus(c, s.status);
}

async function microphone() {
  phone.stream ??= await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  return phone.stream;
}

async function newPeer(c) {
  const stream = await microphone();
  const pc = new RTCPeerConnection({ iceServers: [] });  // no STUN/TURN: host candidates only
  for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
  pc.ontrack = (e) => {
    c.remote = e.streams[0] ?? new MediaStream([e.track]);
    if (phone.cur === c) $('remote-audio').srcObject = c.remote;
  };
  pc.onconnectionstatechange = () => { note('media', `peer connection ${pc.connectionState}`); render(); };
  c.pc = pc;
  return pc;
}

// Non-trickle: the description once ICE gathering is complete (at most 5 s).
async function localDescription(pc, type) {
  const d = type === 'offer' ? await pc.createOffer() : await pc.createAnswer();
  await pc.setLocalDescription(d);
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); } };
      const timer = setTimeout(() => { pc.removeEventListener('icegatheringstatechange', done); resolve(); }, 5000);
      pc.addEventListener('icegatheringstatechange', done);
    });
  }
  return pc.localDescription.sdp;
}

async function call() {
  await callTo($('to-number').value.trim().replace(/^\+/, ''));
}

// A new call in focus; `transferOf`: the call whose transfer it takes up (contract §10).
async function callTo(to, transferOf) {
  phone.ended = null;
  const c = newCall('', `to +${to}`);  // busy from now on: an invitation arriving meanwhile is not taken
  phone.cur = c;
  setStatus(c, transferOf ? 'Transferring' : 'Calling');
  try {
    const pc = await newPeer(c);
    const sdp = await localDescription(pc, 'offer');
    const body = { from: phone.me, to, sdp };
    if (transferOf) body.transferOf = transferOf;
    const out = await api('POST', '/start', body);
    // Initial first, then what the callee did meanwhile (kept by keepEarly): queued
    // behind the notifications already received, which apply the kept ones first anyway.
    c.callId = out.callId;
    if (phone.cur === c) setStatus(c, 'Initial');
    serially(applyEarly);
  } catch (err) {
    finish(c, 'Failed');
    throw err;
  }
}

async function answer() {
  const inc = phone.incoming;
  if (!inc) return;
  if (inc.waiting) {
    // Call waiting: the call in focus goes on hold, then this one is answered.
    const first = phone.cur;
    if (first.status === 'Connected' && first.held === null) await reoffer(first, 'sendonly', 'hold');
    phone.parked = first;
  }
  phone.ended = null;
  phone.incoming = null;
  const c = newCall(inc.callId, `from ${inc.from}`);
  phone.cur = c;
  setStatus(c, 'Answering');
  const pc = await newPeer(c);
  if (!still(c, pc)) return drop(c, pc);  // cancelled while the microphone opened
  await pc.setRemoteDescription({ type: 'offer', sdp: inc.sdp });
  const sdp = await localDescription(pc, 'answer');
  if (!still(c, pc)) return drop(c, pc);
  await api('POST', `/connected/${inc.callId}`, { sdp });
  // The caller's notifications may have come before this answer: an ending (the call is
  // over, keep its status) or a hold (keep Hold).
  if (still(c, pc) && c.held === null) setStatus(c, 'Connected');
}

async function decline() {
  const inc = phone.incoming;
  if (!inc) return;
  await api('DELETE', `/end/${inc.callId}`, undefined, { reason: 'busy' });
  if (phone.incoming?.callId === inc.callId) phone.incoming = null;
  render();
}

// Hold: a new offer with our audio sendonly; resume: sendrecv again. The answer comes
// back in a status notification (Hold, then Connected).
async function reoffer(c, direction, endpoint) {
  const pc = c?.pc;
  if (!pc || !c.callId) return;
  pc.getTransceivers()[0].direction = direction;
  const sdp = await localDescription(pc, 'offer');
  if (!still(c, pc)) return;
  c.held = 'by-me';
  await api('POST', `/${endpoint}/${c.callId}`, { sdp });
  // The answer's notification may have come before this HTTP answer and been applied
  // (this offer is no longer pending; a resume may even have followed): keep its status.
  const pending = pc.signalingState === 'have-local-offer' && pc.pendingLocalDescription?.sdp === sdp;
  if (still(c, pc) && pending) setStatus(c, endpoint === 'hold' ? 'Holding…' : 'Resuming…');
}

// Switches the focus to the other call: the one in focus goes on hold, the other resumes.
async function swap() {
  const first = phone.cur, other = phone.parked;
  if (!first || !other) return;
  if (first.status === 'Connected' && first.held === null) await reoffer(first, 'sendonly', 'hold');
  phone.cur = other;
  phone.parked = first;
  if (other.remote) $('remote-audio').srcObject = other.remote;
  render();
  if (other.held === 'by-me' && other.status === 'Hold') await reoffer(other, 'sendrecv', 'resume');
}

// Blind transfer (contract §10): the call in focus ends; its other party calls the target.
async function transfer() {
  const c = phone.cur;
  const to = $('transfer-to').value.trim().replace(/^\+/, '');
  if (!c || !c.callId || !to) return;
  await api('POST', `/transfer/${c.callId}`, { to });
  if (phone.cur === c || phone.parked === c) finish(c, 'Terminated');
}

// A peer connection whose call ended while it was being set up.
function drop(c, pc) {
  pc.close();
  if (c.pc === pc) c.pc = null;
  render();
}

async function hangup() {
  const c = phone.cur;
  if (!c) {
    const inc = phone.incoming;  // the callee before answering: Declined (contract §4)
    if (!inc) return;
    await api('DELETE', `/end/${inc.callId}`);
    if (phone.incoming?.callId === inc.callId) {
      phone.incoming = null;
      phone.ended = 'Declined';
      phone.idle = 'Declined';
      render();
    }
    return;
  }
  // What the engine makes of it (contract §4): the caller before the answer →
  // SessionCancelled, once answered → Terminated.
  const answered = ['Connected', 'Hold', 'Holding…', 'Resuming…'].includes(c.status);
  await api('DELETE', `/end/${c.callId}`);
  // Unless the other side's ending was applied meanwhile: keep the status it set.
  if (phone.cur === c || phone.parked === c) finish(c, answered ? 'Terminated' : 'SessionCancelled');
}

// Call `c` ended with `status`; the other call, if any, comes into focus (still on hold:
// Resume brings it back).
function finish(c, status) {
  if (c.pc) {
    c.pc.close();
    c.pc = null;
  }
  c.status = status;
  if (phone.parked === c) {
    phone.parked = null;
  } else if (phone.cur === c) {
    early.length = 0;
    phone.ended = status;
    phone.idle = status;
    phone.cur = phone.parked;
    phone.parked = null;
    if (phone.cur?.remote) $('remote-audio').srcObject = phone.cur.remote;
  }
  render();
}

function button(id, action) {
  $(id).addEventListener('click', () => {
    action().catch((err) => { note('error', String(err.message ?? err)); render(); });
  });
}
button('get-token', getToken);
button('call', call);
button('answer', answer);
button('answer-waiting', answer);
button('decline-waiting', decline);
button('hold', () => reoffer(phone.cur, 'sendonly', 'hold'));
button('resume', () => reoffer(phone.cur, 'sendrecv', 'resume'));
button('swap', swap);
button('transfer', transfer);
button('hangup', hangup);
button('save-settings', saveSettings);
render();
