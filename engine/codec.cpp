#include "engine/codec.hpp"

#include <simdjson.h>

namespace engine {

namespace dom = simdjson::dom;
using schemas::json_writer;

std::string_view to_string(codec_error e) noexcept {
  return e == codec_error::malformed ? "malformed record" : "unsupported record version";
}

namespace {

dom::parser& thread_parser() {
  thread_local dom::parser p;
  return p;
}

// The record's top-level object; false when it is not JSON or not an object.
bool parse_root(std::string_view bytes, dom::object& obj) {
  dom::element doc;
  return !thread_parser().parse(bytes.data(), bytes.size()).get(doc) && !doc.get_object().get(obj);
}

void opt_field(json_writer& w, std::string_view k, const std::optional<std::string>& v) {
  if (v) w.field(k, std::string_view(*v));
}
void str_field(json_writer& w, std::string_view k, const std::string& v) {
  if (!v.empty()) w.field(k, std::string_view(v));
}

// Small readers over a dom::object: absent keys leave the output untouched.
struct reader {
  dom::object obj;
  bool ok = true;
  bool present = true;  // false: an absent sub-object; every read finds nothing

  simdjson::simdjson_result<dom::element> at(std::string_view k) {
    if (!present) return simdjson::simdjson_result<dom::element>(simdjson::NO_SUCH_FIELD);
    return obj.at_key(k);
  }

  void str(std::string_view k, std::string& out) {
    std::string_view v;
    auto r = at(k);
    if (r.error() == simdjson::NO_SUCH_FIELD) return;
    if (r.get_string().get(v)) { ok = false; return; }
    out = std::string(v);
  }
  void opt(std::string_view k, std::optional<std::string>& out) {
    std::string_view v;
    auto r = at(k);
    if (r.error() == simdjson::NO_SUCH_FIELD) return;
    if (r.get_string().get(v)) { ok = false; return; }
    out = std::string(v);
  }
  template <class I>
  void num(std::string_view k, I& out) {
    auto r = at(k);
    if (r.error() == simdjson::NO_SUCH_FIELD) return;
    if constexpr (std::is_signed_v<I>) {
      std::int64_t v;
      if (r.get_int64().get(v)) { ok = false; return; }
      out = static_cast<I>(v);
    } else {
      std::uint64_t v;
      if (r.get_uint64().get(v)) { ok = false; return; }
      out = static_cast<I>(v);
    }
  }
  void opt_num(std::string_view k, std::optional<std::int64_t>& out) {
    auto r = at(k);
    if (r.error() == simdjson::NO_SUCH_FIELD) return;
    std::int64_t v;
    if (r.get_int64().get(v)) { ok = false; return; }
    out = v;
  }
  bool boolean(std::string_view k) {
    auto r = at(k);
    if (r.error() == simdjson::NO_SUCH_FIELD) return false;
    bool v = false;
    if (r.get_bool().get(v)) ok = false;
    return v;
  }
  reader sub(std::string_view k) {
    dom::object o;
    auto r = at(k);
    if (r.error() == simdjson::NO_SUCH_FIELD) return reader{dom::object{}, true, false};
    if (r.get_object().get(o)) { ok = false; return reader{dom::object{}, true, false}; }
    return reader{o, true, true};
  }
  bool has(std::string_view k) { return at(k).error() != simdjson::NO_SUCH_FIELD; }
  template <class E, class P>
  void en(std::string_view k, E& out, P parse) {
    std::string s;
    if (!has(k)) return;
    str(k, s);
    auto v = parse(s);
    if (!v) { ok = false; return; }
    out = *v;
  }
};

void write_deadlines(json_writer& w, std::string_view k, const deadlines& d) {
  if (!d.any()) return;
  w.key(k).begin_object();
  for (int i = 0; i < timer_kind_count; ++i)
    if (d.slot[i]) w.field(to_string(static_cast<timer_kind>(i)), *d.slot[i]);
  w.end_object();
}

void read_deadlines(reader& r, std::string_view k, deadlines& d) {
  if (!r.has(k)) return;
  reader sub = r.sub(k);
  for (int i = 0; i < timer_kind_count; ++i) sub.opt_num(to_string(static_cast<timer_kind>(i)), d.slot[i]);
  if (!sub.ok) r.ok = false;
}

void write_identity(json_writer& w, const caller_identity& id) {
  w.begin_object().field("status", schemas::passport::to_string(id.status));
  if (id.attest) w.field("attest", std::string_view(&id.attest, 1));
  str_field(w, "passport", id.passport);
  str_field(w, "failure", id.failure);
  str_field(w, "detail", id.detail);
  w.end_object();
}

bool read_identity(reader r, caller_identity& id) {
  if (!r.present || !r.has("status")) return false;
  r.en("status", id.status, schemas::passport::parse_verification);
  std::string attest;
  r.str("attest", attest);
  if (attest.size() > 1 || (attest.size() == 1 && (attest[0] < 'A' || attest[0] > 'C'))) return false;
  id.attest = attest.empty() ? 0 : attest[0];
  r.str("passport", id.passport);
  r.str("failure", id.failure);
  r.str("detail", id.detail);
  return r.ok;
}

void write_diversions(json_writer& w, const std::vector<diversion>& ds) {
  w.key("diversions").begin_array();
  for (const auto& d : ds) {
    w.begin_object().field("from", std::string_view(d.from)).field("to", std::string_view(d.to));
    w.field("reason", std::string_view(d.reason)).field("time", d.time).end_object();
  }
  w.end_array();
}

bool read_diversions(reader& r, std::vector<diversion>& out) {
  if (!r.has("diversions")) return true;
  dom::array a;
  if (r.obj.at_key("diversions").get_array().get(a)) return false;
  for (auto el : a) {
    dom::object o;
    if (el.get_object().get(o)) return false;
    reader d{o};
    diversion v;
    d.str("from", v.from);
    d.str("to", v.to);
    d.str("reason", v.reason);
    d.num("time", v.time);
    if (!d.ok) return false;
    out.push_back(std::move(v));
  }
  return true;
}

void write_call_internal(json_writer& w, const call_state& c) {
  w.begin_object();
  w.field("callId", std::string_view(c.call_id)).field("from", std::string_view(c.from));
  w.field("to", std::string_view(c.to)).field("status", to_string(c.status));
  str_field(w, "gateway", c.gateway);
  str_field(w, "moName", c.mo_name);
  str_field(w, "mtName", c.mt_name);
  opt_field(w, "clientCorrelator", c.client_correlator);
  if (c.identity) {
    w.key("identity");
    write_identity(w, *c.identity);
  }
  str_field(w, "dialled", c.dialled);
  if (!c.diversions.empty()) write_diversions(w, c.diversions);
  if (c.call_waiting) w.field("callWaiting", true);
  str_field(w, "transferTo", c.transfer_to);
  if (c.transferred_by) w.field("transferredBy", to_string(*c.transferred_by));
  str_field(w, "transferOf", c.transfer_of);
  str_field(w, "transferredFrom", c.transferred_from);
  str_field(w, "meetingUri", c.meeting_uri);
  w.field("createdAt", c.created_at);
  if (c.connected_at) w.field("connectedAt", *c.connected_at);
  if (c.ended_at) w.field("endedAt", *c.ended_at);
  opt_field(w, "endReason", c.end_reason);
  if (c.offer) {
    w.key("offer").begin_object().field("by", to_string(c.offer->by)).field("kind", to_string(c.offer->kind));
    w.field("since", c.offer->since);
    str_field(w, "priorSdp", c.offer->prior_sdp);
    str_field(w, "meetingUri", c.offer->meeting_uri);
    w.end_object();
  }
  if (c.held_by) w.field("heldBy", to_string(*c.held_by));
  write_deadlines(w, "timers", c.timers);
  str_field(w, "moSdp", c.mo_sdp);
  str_field(w, "mtSdp", c.mt_sdp);
  str_field(w, "moDevice", c.mo_device);
  str_field(w, "mtDevice", c.mt_device);
  w.field("startSeq", c.start_seq).field("lastSeq", c.last_seq).field("events", static_cast<std::uint64_t>(c.event_count));
  if (c.retired) w.field("retired", true);
  w.end_object();
}

bool read_call_internal(dom::object o, call_state& c) {
  reader r{o};
  r.str("callId", c.call_id);
  r.str("from", c.from);
  r.str("to", c.to);
  r.en("status", c.status, parse_call_status);
  r.str("gateway", c.gateway);
  r.str("moName", c.mo_name);
  r.str("mtName", c.mt_name);
  r.opt("clientCorrelator", c.client_correlator);
  if (r.has("identity")) {
    caller_identity id;
    if (!read_identity(r.sub("identity"), id)) return false;
    c.identity = std::move(id);
  }
  r.str("dialled", c.dialled);
  if (!read_diversions(r, c.diversions)) return false;
  c.call_waiting = r.boolean("callWaiting");
  r.str("transferTo", c.transfer_to);
  if (r.has("transferredBy")) {
    role by{};
    r.en("transferredBy", by, parse_role);
    c.transferred_by = by;
  }
  r.str("transferOf", c.transfer_of);
  r.str("transferredFrom", c.transferred_from);
  r.str("meetingUri", c.meeting_uri);
  r.num("createdAt", c.created_at);
  r.opt_num("connectedAt", c.connected_at);
  r.opt_num("endedAt", c.ended_at);
  r.opt("endReason", c.end_reason);
  if (r.has("offer")) {
    reader of = r.sub("offer");
    pending_offer p;
    of.en("by", p.by, parse_role);
    of.en("kind", p.kind, parse_offer_kind);
    of.num("since", p.since);
    of.str("priorSdp", p.prior_sdp);
    of.str("meetingUri", p.meeting_uri);
    if (!of.ok) return false;
    c.offer = p;
  }
  if (r.has("heldBy")) {
    role h{};
    r.en("heldBy", h, parse_role);
    c.held_by = h;
  }
  read_deadlines(r, "timers", c.timers);
  r.str("moSdp", c.mo_sdp);
  r.str("mtSdp", c.mt_sdp);
  r.str("moDevice", c.mo_device);
  r.str("mtDevice", c.mt_device);
  r.num("startSeq", c.start_seq);
  r.num("lastSeq", c.last_seq);
  r.num("events", c.event_count);
  c.retired = r.has("retired") && r.boolean("retired");
  return r.ok && !c.call_id.empty();
}

void write_pusher(json_writer& w, const pusher& p) {
  w.begin_object();
  w.field("sub", std::string_view(p.sub)).field("device", std::string_view(p.device_id));
  if (!p.msisdns.empty()) {
    w.key("msisdns").begin_array();
    for (const auto& m : p.msisdns) w.value(std::string_view(m));
    w.end_array();
  }
  str_field(w, "url", p.url);
  str_field(w, "appId", p.app_id);
  str_field(w, "pushkey", p.pushkey);
  str_field(w, "data", p.data);
  if (p.expires_at) w.field("expiresAt", p.expires_at);
  if (p.since) w.field("since", p.since);
  w.end_object();
}

bool read_pusher(reader r, pusher& p) {
  r.str("sub", p.sub);
  r.str("device", p.device_id);
  if (r.has("msisdns")) {
    dom::array a;
    if (r.obj.at_key("msisdns").get_array().get(a)) return false;
    for (auto el : a) {
      std::string_view m;
      if (el.get_string().get(m)) return false;
      p.msisdns.emplace_back(m);
    }
  }
  r.str("url", p.url);
  r.str("appId", p.app_id);
  r.str("pushkey", p.pushkey);
  r.str("data", p.data);
  r.num("expiresAt", p.expires_at);
  r.num("since", p.since);
  return r.ok;
}

void write_settings(json_writer& w, const number_settings& s) {
  w.begin_object().field("msisdn", std::string_view(s.msisdn)).field("callWaiting", s.call_waiting);
  opt_field(w, "unconditional", s.unconditional);
  opt_field(w, "busy", s.busy);
  if (s.no_answer)
    w.key("noAnswer").begin_object().field("to", std::string_view(*s.no_answer)).field("timeout", s.no_answer_timeout_s).end_object();
  opt_field(w, "notReachable", s.not_reachable);
  if (s.since) w.field("since", s.since);
  w.end_object();
}

bool read_settings(reader r, number_settings& s) {
  if (!r.present || !r.has("msisdn")) return false;
  r.str("msisdn", s.msisdn);
  s.call_waiting = !r.has("callWaiting") || r.boolean("callWaiting");
  r.opt("unconditional", s.unconditional);
  r.opt("busy", s.busy);
  if (r.has("noAnswer")) {
    reader na = r.sub("noAnswer");
    std::string to;
    na.str("to", to);
    na.num("timeout", s.no_answer_timeout_s);
    if (!na.ok || to.empty()) return false;
    s.no_answer = std::move(to);
  }
  r.opt("notReachable", s.not_reachable);
  r.num("since", s.since);
  return r.ok && !s.msisdn.empty();
}

}  // namespace

std::string encode_settings_record(const number_settings& s) {
  json_writer w(192);
  write_settings(w, s);
  return w.take();
}

schemas::result<number_settings, int> decode_settings_record(std::string_view bytes) {
  dom::object obj;
  if (!parse_root(bytes, obj)) return schemas::failure{0};
  number_settings s;
  if (!read_settings(reader{obj}, s)) return schemas::failure{0};
  return s;
}

std::string encode_pusher(const pusher& p) {
  json_writer w(256 + p.data.size() + p.pushkey.size());
  write_pusher(w, p);
  return w.take();
}

schemas::result<pusher, int> decode_pusher(std::string_view bytes) {
  dom::object obj;
  if (!parse_root(bytes, obj)) return schemas::failure{0};
  pusher p;
  if (!read_pusher(reader{obj}, p) || p.sub.empty()) return schemas::failure{0};
  return p;
}

std::string encode_event(const event& e) {
  json_writer w(256 + (e.sdp ? e.sdp->size() : 0) + (e.identity ? e.identity->passport.size() : 0));
  w.begin_object();
  w.field("v", static_cast<std::uint64_t>(e.version)).field("seq", e.seq).field("time", e.time);
  w.field("type", to_string(e.act));
  w.field("callId", std::string_view(e.call_id));
  if (e.timer) {
    w.key("timer").begin_object().field("kind", to_string(*e.timer));
    w.field("deadline", e.timer_deadline).end_object();
  }
  w.key("actor").begin_object();
  w.field("msisdn", std::string_view(e.msisdn)).field("role", to_string(e.actor_role));
  w.field("sub", std::string_view(e.sub));
  str_field(w, "device", e.device_id);
  w.end_object();
  w.field("txn", std::string_view(e.txn_id));
  w.field("method", std::string_view(e.method)).field("path", std::string_view(e.path));
  w.key("payload").begin_object();
  str_field(w, "from", e.from);
  str_field(w, "to", e.to);
  str_field(w, "gateway", e.gateway);
  str_field(w, "moName", e.mo_name);
  str_field(w, "mtName", e.mt_name);
  opt_field(w, "sdp", e.sdp);
  opt_field(w, "clientCorrelator", e.client_correlator);
  opt_field(w, "reason", e.reason);
  opt_field(w, "conference", e.conference);
  if (e.identity) {
    w.key("identity");
    write_identity(w, *e.identity);
  }
  if (e.push) {
    w.key("pusher");
    write_pusher(w, *e.push);
  }
  if (e.settings) {
    w.key("settings");
    write_settings(w, *e.settings);
  }
  str_field(w, "diversion", e.diversion);
  if (e.call_waiting) w.field("callWaiting", true);
  if (e.routed) w.field("routed", true);
  if (e.mt_unaware) w.field("mtUnaware", true);
  str_field(w, "transferTo", e.transfer_to);
  str_field(w, "transferOf", e.transfer_of);
  str_field(w, "meetingUri", e.meeting_uri);
  if (e.accept) w.field("accept", *e.accept);
  str_field(w, "step", e.step);
  w.end_object();
  w.key("outcome").begin_object();
  w.field("accepted", e.accepted());
  if (!e.accepted()) w.field("reasonCode", schemas::to_string(e.rejected));
  if (e.noop) w.field("noop", true);
  if (e.status_before) w.field("before", to_string(*e.status_before));
  if (e.status_after) w.field("after", to_string(*e.status_after));
  w.end_object();
  write_deadlines(w, "arms", e.arms);
  w.field("prev", std::string_view(e.prev_hash));
  w.end_object();
  return w.take();
}

schemas::result<event, codec_error> decode_event(std::string_view bytes) {
  dom::object obj;
  if (!parse_root(bytes, obj)) return schemas::failure{codec_error::malformed};
  reader r{obj};
  event e;
  std::uint64_t version = 0;  // read wide: a huge v must not truncate to a known one
  r.num("v", version);
  if (!r.ok) return schemas::failure{codec_error::malformed};
  if (version != event::current_version) return schemas::failure{codec_error::unsupported_version};
  e.version = static_cast<std::uint32_t>(version);
  r.num("seq", e.seq);
  r.num("time", e.time);
  if (!r.has("type")) return schemas::failure{codec_error::malformed};
  r.en("type", e.act, parse_action);
  r.str("callId", e.call_id);
  if (r.has("timer")) {
    reader t = r.sub("timer");
    timer_kind k{};
    if (!t.has("kind")) return schemas::failure{codec_error::malformed};
    t.en("kind", k, parse_timer_kind);
    t.num("deadline", e.timer_deadline);
    if (!t.ok) return schemas::failure{codec_error::malformed};
    e.timer = k;
  }
  reader a = r.sub("actor");
  a.str("msisdn", e.msisdn);
  a.en("role", e.actor_role, parse_role);
  a.str("sub", e.sub);
  a.str("device", e.device_id);
  r.str("txn", e.txn_id);
  r.str("method", e.method);
  r.str("path", e.path);
  reader p = r.sub("payload");
  p.str("from", e.from);
  p.str("to", e.to);
  p.str("gateway", e.gateway);
  p.str("moName", e.mo_name);
  p.str("mtName", e.mt_name);
  p.opt("sdp", e.sdp);
  p.opt("clientCorrelator", e.client_correlator);
  p.opt("reason", e.reason);
  p.opt("conference", e.conference);
  if (p.has("identity")) {
    caller_identity id;
    if (!read_identity(p.sub("identity"), id)) return schemas::failure{codec_error::malformed};
    e.identity = std::move(id);
  }
  if (p.has("pusher")) {
    reader ps = p.sub("pusher");
    pusher pu;
    if (!ps.ok || !read_pusher(ps, pu)) return schemas::failure{codec_error::malformed};
    e.push = std::move(pu);
  }
  if (p.has("settings")) {
    number_settings st;
    if (!read_settings(p.sub("settings"), st)) return schemas::failure{codec_error::malformed};
    e.settings = std::move(st);
  }
  p.str("diversion", e.diversion);
  e.call_waiting = p.boolean("callWaiting");
  e.routed = p.boolean("routed");
  e.mt_unaware = p.boolean("mtUnaware");
  p.str("transferTo", e.transfer_to);
  p.str("transferOf", e.transfer_of);
  p.str("meetingUri", e.meeting_uri);
  if (p.has("accept")) e.accept = p.boolean("accept");
  p.str("step", e.step);
  reader o = r.sub("outcome");
  const bool accepted = o.boolean("accepted");
  if (!accepted) {
    std::string code;
    o.str("reasonCode", code);
    auto rc = schemas::parse_reason_code(code);
    if (!rc) return schemas::failure{codec_error::malformed};
    e.rejected = *rc;
  }
  e.noop = o.boolean("noop");
  if (o.has("before")) {
    call_status s{};
    o.en("before", s, parse_call_status);
    e.status_before = s;
  }
  if (o.has("after")) {
    call_status s{};
    o.en("after", s, parse_call_status);
    e.status_after = s;
  }
  read_deadlines(r, "arms", e.arms);
  r.str("prev", e.prev_hash);
  if (!(r.ok && a.ok && p.ok && o.ok)) return schemas::failure{codec_error::malformed};
  return e;
}

std::string encode_call(const call_state& c) {
  json_writer w(256 + c.mo_sdp.size() + c.mt_sdp.size() + (c.offer ? c.offer->prior_sdp.size() : 0));
  write_call_internal(w, c);
  return w.take();
}

schemas::result<call_state, codec_error> decode_call(std::string_view bytes) {
  dom::object obj;
  if (!parse_root(bytes, obj)) return schemas::failure{codec_error::malformed};
  call_state c;
  if (!read_call_internal(obj, c)) return schemas::failure{codec_error::malformed};
  return c;
}

void write_call_view(json_writer& w, const call_state& c, std::string_view base_path) {
  w.begin_object();
  w.field("callId", std::string_view(c.call_id));
  w.field("from", std::string_view(c.from)).field("to", std::string_view(c.to));
  w.field("status", to_string(c.status));
  str_field(w, "gateway", c.gateway);
  // Forwarding (contract §10): `to` is the current MT; the number MO dialled and each
  // diversion beside it.
  if (!c.diversions.empty()) {
    w.field("dialled", std::string_view(c.dialled_number()));
    write_diversions(w, c.diversions);
  }
  if (c.call_waiting) w.field("callWaiting", true);
  // Transfer and upgrade (contract §10).
  str_field(w, "transferredTo", c.transfer_to);
  str_field(w, "transferOf", c.transfer_of);
  str_field(w, "meetingUri", c.meeting_uri);
  std::string ref(base_path);
  ref += "/calls/";
  ref += c.call_id;
  w.field("callObjectRef", std::string_view(ref));
  opt_field(w, "clientCorrelator", c.client_correlator);
  w.field("createdAt", c.created_at);
  if (c.connected_at) w.field("connectedAt", *c.connected_at);
  if (c.ended_at) w.field("endedAt", *c.ended_at);
  opt_field(w, "endReason", c.end_reason);
  w.field("verificationStatus", schemas::passport::to_string(verification_of(c.identity)));
  if (c.identity && c.identity->attest) w.field("attestation", std::string_view(&c.identity->attest, 1));
  if (c.identity && !c.identity->failure.empty()) w.field("verificationFailure", std::string_view(c.identity->failure));
  if (c.offer) {
    const std::string& by = c.offer->by == role::mo ? c.from : c.to;
    w.key("pendingOffer").begin_object().field("by", std::string_view(by));
    w.field("role", to_string(c.offer->by)).field("kind", to_string(c.offer->kind));
    str_field(w, "meetingUri", c.offer->meeting_uri);
    w.end_object();
  }
  if (c.held_by) w.field("heldBy", std::string_view(*c.held_by == role::mo ? c.from : c.to));
  w.key("sdp").begin_object();
  str_field(w, "from", c.mo_sdp);
  str_field(w, "to", c.mt_sdp);
  w.end_object();
  w.end_object();
}

std::string encode_call_view(const call_state& c, std::string_view base_path) {
  json_writer w(512 + c.mo_sdp.size() + c.mt_sdp.size());
  write_call_view(w, c, base_path);
  return w.take();
}

}  // namespace engine
