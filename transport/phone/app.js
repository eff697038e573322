// The web softphone: one page, one number, one call at a time. Signaling is the
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

const phone = {
  me: null,          // my number (E.164 digits, as the token lists it)
  token: null,       // access token (Authorization: Bearer)
  key: null,         // { privateKey, publicJwk }: the device's PoP key
  ws: null,
  online: false,
  stream: null,      // the microphone
  pc: null,          // RTCPeerConnection of the current call
  callId: null,
  incoming: null,    // { callId, from, sdp } while an invitation rings
  held: null,        // 'by-me' | 'by-peer' | null
  status: 'idle',
  ended: null,       // the ending status of the last call
  log: [],           // every notification and request, for the test
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
  const inCall = phone.callId !== null;
  $('online').textContent = phone.online ? `online as +${phone.me}` : 'offline';
  $('online').classList.toggle('on', phone.online);
  $('call').disabled = !phone.online || inCall || phone.incoming !== null;
  $('answer').hidden = phone.incoming === null;
  $('hold').disabled = !inCall || phone.status !== 'Connected' || phone.held !== null || !phone.pc;
  $('resume').disabled = !inCall || phone.held !== 'by-me' || phone.status !== 'Hold';
  $('hangup').disabled = !inCall && phone.incoming === null;
  $('status').textContent = phone.status;
  $('status').classList.toggle('ended', ENDED.has(phone.status));
  const pc = phone.pc;
  $('media').textContent = pc
    ? `peer connection ${pc.connectionState}, audio ${pc.getTransceivers()[0]?.currentDirection ?? '-'}`
    : 'no media';
}

function setStatus(s) {
  phone.status = s;
  render();
}

// One API request, signed with the device's PoP key.
async function api(method, path, body) {
  const uri = base + path;
  const text = body === undefined ? '' : JSON.stringify(body);
  const authorization = `Bearer ${phone.token}`;
  const headers = {
    Authorization: authorization,
    'X-Authorization': await popToken(phone.key.privateKey, { authorization, uri, method, body: text }),
  };
  if (text) headers['Content-Type'] = 'application/json';
  const res = await fetch(uri, { method, headers, body: text || undefined });
  const out = await res.json().catch(() => ({}));
  note('http', `${method} ${path} → ${res.status}${out.reasonCode ? ' ' + out.reasonCode : ''}`);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${out.reasonCode ?? ''} ${out.systemMessage ?? ''}`);
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
}

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
  if (!phone.callId || early.length === 0) return;
  const id = phone.callId;
  const now = Date.now();
  const mine = early.filter((e) => e.id === id && now - e.at <= EARLY_MS).sort((x, y) => x.seq - y.seq);
  early.length = 0;
  for (const e of mine) {
    if (phone.callId !== id) return;  // one of them ended the call
    note('notification', `applying status ${e.s.status} (sequenceNumber ${e.seq}), received before the /start answer`);
    await onStatus(id, e.s);
  }
}

function callIdOf(ref) { return ref.slice(ref.lastIndexOf('/') + 1); }

async function onNotification(n) {
  await applyEarly();
  if (n.sessionInvitationNotification) {
    const inv = n.sessionInvitationNotification;
    const id = callIdOf(inv.callObjectRef);
    note('notification', `invitation from ${inv.originatorAddress} (call ${id.slice(0, 8)}…)`);
    if (phone.callId !== null || phone.incoming !== null) return;  // busy with another call: let it ring out
    phone.incoming = { callId: id, from: inv.originatorAddress, sdp: inv.sdp };
    $('peer').textContent = `from ${inv.originatorAddress}`;
    setStatus('Incoming call');
    await api('POST', `/ringing/${id}`);
    return;
  }
  const s = n.sessionStatusNotification;
  if (!s) return;
  const id = callIdOf(s.callObjectRef);
  note('notification', `status ${s.status}${s.reason ? ' (' + s.reason + ')' : ''}${s.sdp ? ' with sdp' : ''}`);
  if (id !== phone.callId && id !== phone.incoming?.callId) {
    if (phone.callId === '') keepEarly(id, s);  // perhaps the call our /start is making
    return;
  }
  return onStatus(id, s);
}

// Still on the call `id` with the peer connection `pc`, after an await? (A hang-up, or
// an ending notification handled meanwhile, ends it.)
const still = (id, pc) => phone.callId === id && phone.pc === pc;

async function onStatus(id, s) {
  if (ENDED.has(s.status)) return finish(s.status);
  const pc = phone.pc;
  if (s.sdp && pc && pc.signalingState === 'have-local-offer') {
    // The answer to my offer: the call's (Connected), my hold's (Hold), my resume's (Connected).
    await pc.setRemoteDescription({ type: 'answer', sdp: s.sdp });
    if (!still(id, pc)) return;
    if (s.status === 'Connected') phone.held = null;
    return setStatus(s.status);
  }
  if ((s.status === 'Hold' || s.status === 'Resume') && s.sdp && pc) {
    // The other side holds or resumes: answer its offer (the browser turns its sendonly
    // into our recvonly, its sendrecv into ours).
    await pc.setRemoteDescription({ type: 'offer', sdp: s.sdp });
    const sdp = await localDescription(pc, 'answer');
    if (!still(id, pc)) return;
    const holding = s.status === 'Hold';
    await api('POST', `/${holding ? 'acceptHold' : 'acceptResume'}/${id}`, { sdp });
    if (!still(id, pc)) return;
    phone.held = holding ? 'by-peer' : null;
    return setStatus(holding ? 'Hold' : 'Connected');
  }
  setStatus(s.status);
}

async function microphone() {
  phone.stream ??= await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  return phone.stream;
}

async function newPeer() {
  const stream = await microphone();
  const pc = new RTCPeerConnection({ iceServers: [] });  // no STUN/TURN: host candidates only
  for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
  pc.ontrack = (e) => { $('remote-audio').srcObject = e.streams[0] ?? new MediaStream([e.track]); };
  pc.onconnectionstatechange = () => { note('media', `peer connection ${pc.connectionState}`); render(); };
  phone.pc = pc;
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
  const to = $('to-number').value.trim().replace(/^\+/, '');
  phone.ended = null;
  phone.callId = '';  // busy from now on: an invitation arriving meanwhile is not taken
  $('peer').textContent = `to +${to}`;
  setStatus('Calling');
  try {
    const pc = await newPeer();
    const sdp = await localDescription(pc, 'offer');
    const out = await api('POST', '/start', { from: phone.me, to, sdp });
    // Initial first, then what the callee did meanwhile (kept by keepEarly): queued
    // behind the notifications already received, which apply the kept ones first anyway.
    phone.callId = out.callId;
    setStatus('Initial');
    serially(applyEarly);
  } catch (err) {
    finish('Failed');
    throw err;
  }
}

async function answer() {
  const inc = phone.incoming;
  if (!inc) return;
  phone.ended = null;
  phone.incoming = null;
  phone.callId = inc.callId;
  const pc = await newPeer();
  if (!still(inc.callId, pc)) return drop(pc);  // cancelled while the microphone opened
  await pc.setRemoteDescription({ type: 'offer', sdp: inc.sdp });
  const sdp = await localDescription(pc, 'answer');
  if (!still(inc.callId, pc)) return drop(pc);
  await api('POST', `/connected/${inc.callId}`, { sdp });
  // The caller's notifications may have come before this answer: an ending (the call is
  // over, keep its status) or a hold (keep Hold).
  if (still(inc.callId, pc) && phone.held === null) setStatus('Connected');
}

// Hold: a new offer with our audio sendonly; resume: sendrecv again. The answer comes
// back in a status notification (Hold, then Connected).
async function reoffer(direction, endpoint) {
  const pc = phone.pc;
  const id = phone.callId;
  if (!pc || !id) return;
  pc.getTransceivers()[0].direction = direction;
  const sdp = await localDescription(pc, 'offer');
  if (!still(id, pc)) return;
  phone.held = 'by-me';
  await api('POST', `/${endpoint}/${id}`, { sdp });
  // The answer's notification may have come before this HTTP answer and been applied
  // (this offer is no longer pending; a resume may even have followed): keep its status.
  const pending = pc.signalingState === 'have-local-offer' && pc.pendingLocalDescription?.sdp === sdp;
  if (still(id, pc) && pending) setStatus(endpoint === 'hold' ? 'Holding…' : 'Resuming…');
}

// A peer connection whose call ended while it was being set up.
function drop(pc) {
  pc.close();
  if (phone.pc === pc) phone.pc = null;
  render();
}

async function hangup() {
  const id = phone.callId || phone.incoming?.callId;
  if (!id) return;
  // What the engine makes of it (contract §4): the callee before answering → Declined,
  // the caller before the answer → SessionCancelled, once answered → Terminated.
  const answered = ['Connected', 'Hold', 'Holding…', 'Resuming…'].includes(phone.status);
  const ending = phone.incoming ? 'Declined' : answered ? 'Terminated' : 'SessionCancelled';
  await api('DELETE', `/end/${id}`);
  // Unless the other side's ending was applied meanwhile: keep the status it set.
  if (phone.callId === id || phone.incoming?.callId === id) finish(ending);
}

function finish(status) {
  phone.ended = status;
  phone.callId = null;
  early.length = 0;
  phone.incoming = null;
  phone.held = null;
  if (phone.pc) {
    phone.pc.close();
    phone.pc = null;
  }
  $('peer').textContent = '';
  setStatus(status);
}

function button(id, action) {
  $(id).addEventListener('click', () => {
    action().catch((err) => { note('error', String(err.message ?? err)); render(); });
  });
}
button('get-token', getToken);
button('call', call);
button('answer', answer);
button('hold', () => reoffer('sendonly', 'hold'));
button('resume', () => reoffer('sendrecv', 'resume'));
button('hangup', hangup);
render();
