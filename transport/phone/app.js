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
  // Handled one at a time, in order: each may await SDP work and requests.
  let queue = Promise.resolve();
  ws.onmessage = (e) => {
    queue = queue.then(() => onNotification(JSON.parse(e.data))).catch((err) => note('error', String(err)));
  };
}

function callIdOf(ref) { return ref.slice(ref.lastIndexOf('/') + 1); }

async function onNotification(n) {
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
  if (id !== phone.callId && id !== phone.incoming?.callId) return;
  if (ENDED.has(s.status)) return finish(s.status);
  const pc = phone.pc;
  if (s.sdp && pc && pc.signalingState === 'have-local-offer') {
    // The answer to my offer: the call's (Connected), my hold's (Hold), my resume's (Connected).
    await pc.setRemoteDescription({ type: 'answer', sdp: s.sdp });
    if (s.status === 'Connected') phone.held = null;
    return setStatus(s.status);
  }
  if ((s.status === 'Hold' || s.status === 'Resume') && s.sdp && pc) {
    // The other side holds or resumes: answer its offer (the browser turns its sendonly
    // into our recvonly, its sendrecv into ours).
    await pc.setRemoteDescription({ type: 'offer', sdp: s.sdp });
    const sdp = await localDescription(pc, 'answer');
    const holding = s.status === 'Hold';
    await api('POST', `/${holding ? 'acceptHold' : 'acceptResume'}/${id}`, { sdp });
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
    phone.callId = out.callId;
    setStatus('Initial');
  } catch (err) {
    finish('Failed');
    throw err;
  }
}

async function answer() {
  const inc = phone.incoming;
  phone.ended = null;
  phone.incoming = null;
  phone.callId = inc.callId;
  const pc = await newPeer();
  await pc.setRemoteDescription({ type: 'offer', sdp: inc.sdp });
  const sdp = await localDescription(pc, 'answer');
  await api('POST', `/connected/${inc.callId}`, { sdp });
  setStatus('Connected');
}

// Hold: a new offer with our audio sendonly; resume: sendrecv again. The answer comes
// back in a status notification (Hold, then Connected).
async function reoffer(direction, endpoint) {
  const pc = phone.pc;
  pc.getTransceivers()[0].direction = direction;
  const sdp = await localDescription(pc, 'offer');
  phone.held = 'by-me';
  await api('POST', `/${endpoint}/${phone.callId}`, { sdp });
  setStatus(endpoint === 'hold' ? 'Holding…' : 'Resuming…');
}

async function hangup() {
  const id = phone.callId || phone.incoming?.callId;
  if (!id) return;
  // What the engine makes of it (contract §4): the callee before answering → Declined,
  // the caller before the answer → SessionCancelled, once answered → Terminated.
  const answered = ['Connected', 'Hold', 'Holding…', 'Resuming…'].includes(phone.status);
  const ending = phone.incoming ? 'Declined' : answered ? 'Terminated' : 'SessionCancelled';
  await api('DELETE', `/end/${id}`);
  finish(ending);
}

function finish(status) {
  phone.ended = status;
  phone.callId = null;
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
