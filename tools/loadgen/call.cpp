// One call: its requests in flow order, each checked against the status the flow
// expects, and the notification each accepted step owes the other party. A party waits
// for what it is owed before it acts (it reacts to what it was told, as a phone does);
// whatever is still owed at the end is waited for then.
#include <chrono>
#include <optional>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "schemas/pop_token.hpp"
#include "tools/loadgen/user.hpp"

namespace loadgen {

namespace {

constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);
// A PoP is used at once: a short lifetime keeps each device key's live jtis (the
// engine's --pop-jti-per-key share) small however fast the users send.
constexpr std::int64_t pop_ttl_s = 10;

constexpr std::string_view sdp_mo = R"(v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=loadgen-mo\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n)";
constexpr std::string_view sdp_mt = R"(v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=loadgen-mt\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n)";

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string new_guid(std::mt19937_64& rng) {
  const std::uint64_t a = rng(), b = rng();
  return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff,
                     0x8000 | ((b >> 48) & 0x3fff), b & 0xffffffffffffull);
}

std::string_view reason_code_of(std::string_view body) {
  constexpr std::string_view key = "\"reasonCode\":\"";
  const auto at = body.find(key);
  if (at == std::string_view::npos) return {};
  const auto end = body.find('"', at + key.size());
  return end == std::string_view::npos ? std::string_view{} : body.substr(at + key.size(), end - at - key.size());
}

// --overload: the engine refused the request for load (nothing stored), which is what an
// overload run expects of the requests beyond capacity.
bool is_refusal(const options& o, int status, std::string_view reason_code) {
  return o.overload && status == 503 && reason_code == "SERVICE_UNAVAILABLE";
}

struct owed {
  side to;
  std::string_view kind;
  clk::time_point ack;
};

struct call {
  std::string id;
  std::string correlator;
  std::vector<owed> owed_frames;
  bool ok = true;
  bool ended = false;
};

party& of(user& u, side s) { return s == side::mo ? u.mo : u.mt; }
std::string_view name_of(side s) { return s == side::mo ? "MO" : "MT"; }

// Sends one step's request (re-sending /start after a connection failure when asked),
// records every answer, and returns the last.
net::awaitable<answer> send_step(run_context& ctx, user& u, const step& s, call& c) {
  const options& o = ctx.opts;
  party& p = of(u, s.by);
  std::string target = o.base_path + "/" + std::string(to_string(s.ep));
  if (s.ep != endpoint::start) target += "/" + c.id;
  std::string body;
  if (s.ep == endpoint::start)
    body = fmt::format(R"({{"from":"{}","to":"{}","sdp":"{}","clientCorrelator":"{}"}})", u.mo.id.number,
                       u.mt.id.number, sdp_mo, c.correlator);
  else if (s.sdp)
    body = fmt::format(R"({{"sdp":"{}"}})", s.by == side::mo ? sdp_mo : sdp_mt);
  const http::verb verb = s.ep == endpoint::end ? http::verb::delete_ : http::verb::post;

  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, o.host);
  req.set(http::field::authorization, p.authorization);
  req.set("x-transaction-id", new_guid(u.rng));
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  if (!s.reason.empty()) req.set("reason", s.reason);
  req.body() = body;
  req.prepare_payload();

  const auto give_up = clk::now() + o.retry_for;
  answer a;
  for (int attempt = 0;; ++attempt) {
    if (o.pop == pop_mode::per_request && p.id.key) {
      const auto t0 = clk::now();
      req.set("X-Authorization", schemas::build_request_pop(*p.id.key, http::to_string(verb), target, body,
                                                             p.authorization, now_s(), pop_ttl_s));
      ctx.st.pop_signed.fetch_add(1, std::memory_order_relaxed);
      ctx.st.pop_sign_ns.fetch_add(static_cast<std::uint64_t>((clk::now() - t0).count()), std::memory_order_relaxed);
    }
    a = co_await p.http.send(req);
    const std::string_view rc = a.status >= 400 ? reason_code_of(a.body) : std::string_view{};
    std::string call_id = c.id;
    if (s.ep == endpoint::start && a.status == 200) {
      constexpr std::string_view key = "\"callId\":\"";
      if (const auto k = a.body.find(key); k != std::string::npos)
        call_id = a.body.substr(k + key.size(), a.body.find('"', k + key.size()) - k - key.size());
    }
    ctx.rec.write({call_id, to_string(s.ep), name_of(s.by), a.txn, s.ep == endpoint::start ? c.correlator : "", rc,
                   a.error, a.status});
    ctx.st.total_requests.fetch_add(1, std::memory_order_relaxed);
    if (a.status != 0 && ctx.st.measuring.load(std::memory_order_relaxed)) {
      ctx.st.requests.fetch_add(1, std::memory_order_relaxed);
      if (is_refusal(o, a.status, rc)) {
        ctx.st.refused.fetch_add(1, std::memory_order_relaxed);
        ctx.st.refused_latency.record(a.read - a.sent);
      } else {
        ctx.st.latency[static_cast<std::size_t>(s.ep)].record(a.read - a.sent);
      }
    }
    if (s.ep == endpoint::start && a.status == 200) c.id = std::move(call_id);
    if (a.status != 0 || s.ep != endpoint::start || !o.retry_start || clk::now() >= give_up || ctx.stopping) break;
    ctx.st.start_retries.fetch_add(1, std::memory_order_relaxed);
    net::steady_timer pause(u.strand, std::chrono::milliseconds(100));
    co_await pause.async_wait(tuple_awaitable);
  }
  co_return a;
}

// Waits until `p`'s inbox holds a frame of `call_id` of `kind`, or `deadline`; takes it.
net::awaitable<std::optional<clk::time_point>> take_frame(user& u, party& p, std::string_view call_id,
                                                          std::string_view kind, clk::time_point deadline) {
  for (;;) {
    auto& in = p.ws.inbox;
    for (auto it = in.begin(); it != in.end(); ++it) {
      if (it->call_id == call_id && it->kind == kind) {
        const auto at = it->at;
        in.erase(it);
        co_return at;
      }
    }
    if (clk::now() >= deadline) co_return std::nullopt;
    u.wake.expires_at(deadline);
    co_await u.wake.async_wait(tuple_awaitable);
  }
}

// Collects every frame still owed to `who` (both parties when nullopt).
net::awaitable<void> settle(run_context& ctx, user& u, call& c, std::optional<side> who) {
  std::vector<owed> keep;
  for (const owed& w : c.owed_frames) {
    if (who && w.to != *who) {
      keep.push_back(w);
      continue;
    }
    const auto at = co_await take_frame(u, of(u, w.to), c.id, w.kind, w.ack + ctx.opts.notify_timeout);
    if (!ctx.st.measuring.load(std::memory_order_relaxed)) continue;
    ctx.st.notifications_expected.fetch_add(1, std::memory_order_relaxed);
    if (!at) {
      ctx.st.notifications_missing.fetch_add(1, std::memory_order_relaxed);
      ctx.st.error(0, notification_missing);
      c.ok = false;
      continue;
    }
    ctx.st.notifications_received.fetch_add(1, std::memory_order_relaxed);
    if (*at < w.ack) ctx.st.notifications_early.fetch_add(1, std::memory_order_relaxed);
    ctx.st.notify_latency.record(*at < w.ack ? clk::duration::zero() : *at - w.ack);
  }
  c.owed_frames = std::move(keep);
}

// Drops what is left in both inboxes. Frames of this call, or of a call this user never
// made, were owed by no step; frames of calls left open are the engine's business.
void purge(run_context& ctx, user& u) {
  for (party* p : {&u.mo, &u.mt}) {
    for (const frame& f : p->ws.inbox) {
      if (u.left_open.count(f.call_id)) {
        ctx.st.frames_for_open_calls.fetch_add(1, std::memory_order_relaxed);
      } else if (ctx.st.measuring.load(std::memory_order_relaxed)) {
        ctx.st.unexpected_frames.fetch_add(1, std::memory_order_relaxed);
      }
    }
    p->ws.inbox.clear();
  }
}

}  // namespace

net::awaitable<bool> run_call(run_context& ctx, user& u, flow_kind k) {
  const options& o = ctx.opts;
  call c;
  c.correlator = fmt::format("lg-{}-{}", o.run_id, ctx.next_call.fetch_add(1, std::memory_order_relaxed));
  const bool measured = ctx.st.measuring.load(std::memory_order_relaxed);
  if (measured) ctx.st.calls_started.fetch_add(1, std::memory_order_relaxed);
  bool connection_failed = false;
  bool refused = false;
  ctx.st.in_flight.fetch_add(1, std::memory_order_relaxed);

  for (const step& s : steps_of(k)) {
    if (o.websockets) co_await settle(ctx, u, c, s.by);
    const answer a = co_await send_step(ctx, u, s, c);
    if (a.status == s.expect_status) {
      if (s.ep == endpoint::end) c.ended = true;
      if (o.websockets && !s.notify.empty()) c.owed_frames.push_back({s.by == side::mo ? side::mt : side::mo, s.notify, a.read});
      continue;
    }
    c.ok = false;
    connection_failed = a.status == 0;
    const std::string_view rc = reason_code_of(a.body);
    if (is_refusal(o, a.status, rc)) {  // the call gives up here; not a failure
      refused = true;
      break;
    }
    ctx.st.error(a.status, a.status == 0 ? (a.timed_out ? request_timeout : connection_error)
                                         : (rc.empty() ? wrong_status : rc));
    if (ctx.st.measuring.load(std::memory_order_relaxed))
      ctx.st.failures[static_cast<std::size_t>(s.ep)].fetch_add(1, std::memory_order_relaxed);
    break;
  }
  if (o.websockets) co_await settle(ctx, u, c, std::nullopt);
  if (!c.ok && !c.id.empty() && !c.ended && !connection_failed) {
    // Leave nothing ringing: the caller hangs up (not counted against the flow).
    const step hang_up{endpoint::end, side::mo, false, {}, 200, {}};
    co_await send_step(ctx, u, hang_up, c);
  }
  if (!c.id.empty() && (!c.ended || !c.ok)) u.left_open.insert(c.id);
  if (o.websockets) purge(ctx, u);

  ctx.st.in_flight.fetch_sub(1, std::memory_order_relaxed);
  ctx.st.total_calls.fetch_add(1, std::memory_order_relaxed);
  if (ctx.st.measuring.load(std::memory_order_relaxed) && measured)
    (c.ok ? ctx.st.calls_completed : refused ? ctx.st.calls_refused : ctx.st.calls_failed)
        .fetch_add(1, std::memory_order_relaxed);
  co_return !connection_failed;
}

}  // namespace loadgen
