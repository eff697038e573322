#include "transport/api.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>

#include "engine/log.hpp"
#include "schemas/api.hpp"
#include "transport/phone_assets.hpp"

namespace transport {

using rc = schemas::reason_code;

namespace {

std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void random_bytes(unsigned char* p, int n) {
  if (RAND_bytes(p, n) != 1) std::abort();  // no randomness: never hand out guessable ids
}

http_response error(rc code, std::string_view message, std::string txn) {
  return response_of(schemas::http_status(code), schemas::encode_error_info(code, message), std::move(txn), "application/json");
}

// A request refused for load (admission control, or --max-pending): nothing was stored.
http_response overloaded(std::string txn) {
  http_response res = error(rc::service_unavailable, "the engine is overloaded; retry later", std::move(txn));
  res.retry_after_s = 1;
  return res;
}

// The number of /settings/{msisdn}: E.164 digits, '+' (or its escape %2B) allowed first.
std::optional<std::string> settings_number(std::string_view raw) {
  if (raw.size() >= 3 && raw.substr(0, 3) == "%2B") raw.remove_prefix(3);
  return schemas::normalize_msisdn(raw);
}

}  // namespace

std::string new_call_id() {
  unsigned char b[16];
  random_bytes(b, sizeof b);
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    s[2 * i] = hex[b[i] >> 4];
    s[2 * i + 1] = hex[b[i] & 0xF];
  }
  return s;
}

std::string new_transaction_id() {
  unsigned char b[16];
  random_bytes(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  char s[37];
  std::snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

api::api(engine::reactor& reactor, const token_verifier& verifier, engine::registry& metrics, api_options opts,
         std::function<bool()> ready)
    : reactor_(reactor),
      verifier_(verifier),
      metrics_(metrics),
      opts_(std::move(opts)),
      ready_(std::move(ready)),
      latency_(metrics.get_histogram("yna_http_request_seconds", "Time from request read to response ready",
                                     engine::latency_buckets_seconds())),
      unauthenticated_(metrics.get_counter("yna_unauthenticated_requests_total",
                                           "Requests refused with 401 (counted and logged, never stored)")),
      rate_limited_(metrics.get_counter("yna_rate_limited_requests_total",
                                        "Requests refused with 429: over --rate-limit for their token, or "
                                        "--rate-limit-sub for their subject, or a device key over its PoP jti "
                                        "share (not stored)")),
      tokens_cached_(metrics.get_gauge("yna_tokens_cached", "Verified access tokens cached (--token-cache bounds it)")),
      tokens_evicted_(metrics.get_gauge("yna_tokens_evicted",
                                        "Verified access tokens evicted from a full cache (LRU; costs a re-verify)")),
      pop_jtis_(metrics.get_gauge("yna_pop_jtis", "PoP jti values remembered for replay detection (live)")),
      pop_keys_(metrics.get_gauge("yna_pop_keys", "Device keys with a live PoP jti remembered")),
      rate_buckets_token_(metrics.get_gauge("yna_rate_limiter_buckets", "Rate-limiter buckets held", "key=\"token\"")),
      rate_buckets_sub_(metrics.get_gauge("yna_rate_limiter_buckets", "Rate-limiter buckets held", "key=\"sub\"")),
      rate_evicted_(metrics.get_gauge("yna_rate_limiter_evicted", "Rate-limiter buckets forgotten to make room (LRU)")),
      pop_(opts_.pop),
      rate_(opts_.rate_per_token, opts_.rate_burst, opts_.rate_max_tokens),
      rate_sub_(opts_.rate_per_sub, opts_.rate_sub_burst, opts_.rate_max_tokens) {}

void api::refresh_gauges() {
  // What has expired or refilled is forgotten first, so each gauge says what is held
  // for a reason (and falls back to 0 when traffic stops).
  const std::int64_t now = now_s();
  verifier_.forget_expired(now);
  pop_.forget_expired(now);
  rate_.forget_idle(mono_ns() / 1'000'000);
  rate_sub_.forget_idle(mono_ns() / 1'000'000);
  tokens_cached_.set(static_cast<std::int64_t>(verifier_.cached()));
  tokens_evicted_.set(static_cast<std::int64_t>(verifier_.evicted()));
  pop_jtis_.set(static_cast<std::int64_t>(pop_.remembered()));
  pop_keys_.set(static_cast<std::int64_t>(pop_.keys_remembered()));
  rate_buckets_token_.set(static_cast<std::int64_t>(rate_.size()));
  rate_buckets_sub_.set(static_cast<std::int64_t>(rate_sub_.size()));
  rate_evicted_.set(static_cast<std::int64_t>(rate_.evicted() + rate_sub_.evicted()));
}

void api::note_unauthenticated(const route& r, std::string_view why) {
  unauthenticated_.inc();
  // Logged, never stored (contract §6); at most 10 lines a second so a flood of bad
  // tokens cannot flood the log too. Never the token itself.
  if (log_limit_.allow(mono_ns() / 1'000'000'000)) engine::log::warn("401 on {}: {}", route_label(r), why);
}

engine::counter& api::requests(const route& r, int status) {
  // The registry keeps each counter for its lifetime; label sets are few (routes × statuses).
  // Cached per I/O thread under a number made of the label's parts: no string per answer.
  thread_local std::unordered_map<std::uint32_t, engine::counter*> cache;
  const std::uint32_t key = (static_cast<std::uint32_t>(r.kind) << 24) | (static_cast<std::uint32_t>(r.act) << 12) |
                            (static_cast<std::uint32_t>(status) & 0xfff);
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  std::string labels = "endpoint=\"" + std::string(route_label(r)) + "\",status=\"" + std::to_string(status) + "\"";
  auto& c = metrics_.get_counter("yna_http_requests_total", "HTTP requests answered, by endpoint and status", labels);
  cache.emplace(key, &c);
  return c;
}

void api::account(const route& r, std::int64_t started_ns, int status) {
  requests(r, status).inc();
  latency_.observe(static_cast<double>(mono_ns() - started_ns) / 1e9);
}

void api::finish(const route& r, std::int64_t started_ns, const respond_fn& respond, http_response res) {
  account(r, started_ns, res.status);
  respond(std::move(res));
}

http_response api::protocol_error(rc code, std::string_view message, std::string_view transaction_id) {
  route r;
  requests(r, schemas::http_status(code)).inc();
  return error(code, message,
               schemas::is_valid_guid(transaction_id) ? std::string(transaction_id) : new_transaction_id());
}

bool api::is_health_check(std::string_view method, std::string_view target) const {
  const route r = match_route(method, target, opts_.base_path);
  return r.method_ok && (r.kind == route_kind::healthz || r.kind == route_kind::readyz);
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of `name` in an application/x-www-form-urlencoded query, percent-decoded;
// nullopt when absent or badly encoded.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    std::string_view raw = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        out.push_back(' ');
      } else if (raw[i] == '%') {
        if (i + 2 >= raw.size()) return std::nullopt;
        const int hi = hex_value(raw[i + 1]);
        const int lo = hex_value(raw[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      } else {
        out.push_back(raw[i]);
      }
    }
    return out;
  }
  return std::nullopt;
}

}  // namespace

std::variant<socket_grant, http_response> api::authorize_socket(const http_request& req) {
  const std::int64_t started = mono_ns();
  const route r = match_route(req.method, req.target, opts_.base_path);
  const bool txn_valid = req.has_transaction_id && schemas::is_valid_guid(req.transaction_id);
  std::string txn = txn_valid ? std::string(req.transaction_id) : new_transaction_id();
  auto refuse = [&](http_response res) -> std::variant<socket_grant, http_response> {
    requests(r, res.status).inc();
    latency_.observe(static_cast<double>(mono_ns() - started) / 1e9);
    return res;
  };
  if (r.kind != route_kind::notifications)
    return refuse(error(rc::not_found, "WebSocket upgrades are served on /notifications only", std::move(txn)));
  if (!r.method_ok) {
    http_response res = error(rc::method_not_allowed, "use GET to open the notification WebSocket", std::move(txn));
    res.allow = r.allow;
    return refuse(std::move(res));
  }
  std::optional<std::string> query_token;
  std::string_view authorization = req.authorization;
  if (authorization.empty()) {
    query_token = query_param(r.query, "access_token");
    if (!query_token)
      return refuse(error(rc::unauthorized, "send 'Authorization: Bearer <token>' or ?access_token=<token>", std::move(txn)));
  }
  auto who = query_token ? verifier_.verify_token(*query_token, now_s()) : verifier_.verify_authorization(authorization, now_s());
  if (!who) {
    note_unauthenticated(r, describe(who.error()));
    const auto code = who.error() == auth_error::expired ? rc::token_expired : rc::unauthorized;
    return refuse(error(code, describe(who.error()), std::move(txn)));
  }
  // A gateway is told of its calls as their MO party (contract §11): its socket listens,
  // and replays, under its party key instead of numbers.
  if (who->gateway) who->msisdns = {engine::gateway_party(who->sub)};
  socket_grant g{std::move(*who), std::nullopt, txn};
  if (auto since = query_param(r.query, "since")) {
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(since->data(), since->data() + since->size(), v);
    if (ec != std::errc() || p != since->data() + since->size() || since->empty())
      return refuse(error(rc::invalid_field, "since must be a sequenceNumber (a non-negative integer)", std::move(txn)));
    g.since = v;
  }
  requests(r, 101).inc();
  return g;
}

http_response api::phone_file(const route& r, std::string txn) const {
  if (r.asset.empty()) {  // /phone: the page's relative links need the trailing slash
    http_response res = response_of(301, "", std::move(txn), "text/plain; charset=utf-8");
    res.location = opts_.base_path + "/phone/";
    return res;
  }
  const phone_asset* a = find_phone_asset(r.asset);
  if (!a) return error(rc::not_found, "no such file in /phone/", std::move(txn));
  http_response res = response_of(200, std::string(a->bytes), std::move(txn), a->content_type);
  res.cache_control = "no-cache";  // revalidate: a new engine build may serve a new page
  return res;
}

void api::handle(const http_request& req, respond_fn respond, respond_later_fn respond_later) {
  const std::int64_t started = mono_ns();
  const route r = match_route(req.method, req.target, opts_.base_path);
  const bool txn_valid = req.has_transaction_id && schemas::is_valid_guid(req.transaction_id);
  std::string txn = txn_valid ? std::string(req.transaction_id) : new_transaction_id();

  if (r.kind == route_kind::not_found || (r.kind == route_kind::faults && !opts_.faults) ||
      (r.kind == route_kind::dev_token && !opts_.dev_token))
    return finish(r, started, respond, error(rc::not_found, "no such path", std::move(txn)));
  if (!r.method_ok) {
    http_response res = error(rc::method_not_allowed,
                              std::string(req.method) + " is not allowed here; use " + std::string(r.allow), std::move(txn));
    res.allow = r.allow;
    return finish(r, started, respond, std::move(res));
  }
  switch (r.kind) {
    case route_kind::healthz:
      return finish(r, started, respond, response_of(200, R"({"status":"ok"})", std::move(txn), "application/json"));
    case route_kind::readyz:
      if (ready_())
        return finish(r, started, respond, response_of(200, R"({"status":"ready"})", std::move(txn), "application/json"));
      return finish(r, started, respond,
                    error(rc::service_unavailable, "not ready: recovering or storage failing", std::move(txn)));
    case route_kind::metrics:
      refresh_gauges();
      return finish(r, started, respond,
                    response_of(200, metrics_.render(), std::move(txn), "text/plain; version=0.0.4"));
    case route_kind::notifications:
      return finish(r, started, respond,
                    error(rc::invalid_field, "GET /notifications needs a WebSocket upgrade (Upgrade: websocket)",
                          std::move(txn)));
    case route_kind::faults: {
      auto out = opts_.faults(req.body);
      if (!out) return finish(r, started, respond, error(rc::invalid_field, out.error(), std::move(txn)));
      return finish(r, started, respond, response_of(200, std::move(*out), std::move(txn), "application/json"));
    }
    case route_kind::phone:
      return finish(r, started, respond, phone_file(r, std::move(txn)));
    case route_kind::sti_cert: {
      if (!opts_.signer) return finish(r, started, respond, error(rc::not_found, "no such path", std::move(txn)));
      http_response res = response_of(200, opts_.signer->chain_pem, std::move(txn), "application/pem-certificate-chain");
      res.cache_control = "max-age=3600";
      return finish(r, started, respond, std::move(res));
    }
    case route_kind::dev_token: {
      // No access token to key the rate limit by: one bucket for every caller of /dev/token.
      if (!rate_.allow(std::hash<std::string_view>{}("/dev/token"), mono_ns() / 1'000'000)) {
        rate_limited_.inc();
        http_response res = error(rc::too_many_requests, "over the request rate allowed for /dev/token (--rate-limit)",
                                  std::move(txn));
        res.retry_after_s = 1;
        return finish(r, started, respond, std::move(res));
      }
      auto out = opts_.dev_token(req.body);
      if (!out) return finish(r, started, respond, error(rc::invalid_field, out.error(), std::move(txn)));
      http_response res = response_of(200, std::move(*out), std::move(txn), "application/json");
      res.cache_control = "no-store";
      return finish(r, started, respond, std::move(res));
    }
    default:
      break;
  }

  // Overload: refused before authentication, so a request beyond capacity costs no
  // RSA verify (the reactor's admission control; submit() below decides for real).
  if (!reactor_.admitting()) return finish(r, started, respond, overloaded(std::move(txn)));
  // Call endpoints: authentication first (contract §2, order of checks).
  auto who = verifier_.verify_authorization(req.authorization, now_s());
  if (!who) {
    note_unauthenticated(r, describe(who.error()));
    const auto code = who.error() == auth_error::expired ? rc::token_expired : rc::unauthorized;
    return finish(r, started, respond, error(code, describe(who.error()), std::move(txn)));
  }
  // Keyed by the token itself, however the header spells the scheme and blanks.
  // Per token and per subject: one user's many tokens share one subject bucket.
  const auto token = bearer_token(req.authorization).value_or(req.authorization);
  const std::int64_t now_ms = mono_ns() / 1'000'000;
  const bool token_ok = rate_.allow(std::hash<std::string_view>{}(token), now_ms);
  if (!token_ok || !rate_sub_.allow(std::hash<std::string_view>{}(who->sub), now_ms)) {
    rate_limited_.inc();
    http_response res = error(rc::too_many_requests,
                              token_ok ? "over the request rate allowed per subject (--rate-limit-sub)"
                                       : "over the request rate allowed per access token (--rate-limit)",
                              std::move(txn));
    res.retry_after_s = 1;
    return finish(r, started, respond, std::move(res));
  }
  if (r.kind != route_kind::start || req.has_x_authorization) {
    const pop_request pr{req.method, req.target, req.body, req.header};
    auto pop = pop_.verify(req.x_authorization, who->cnf_key ? &*who->cnf_key : nullptr, who->cnf_thumbprint, pr,
                           now_s());
    if (!pop) {
      http_response res = error(pop_reason(pop.error()), describe(pop.error()), std::move(txn));
      if (pop.error() == pop_error::key_share_full)
        rate_limited_.inc();  // the key is over its share: a rate limit, not a failed proof
      else
        note_unauthenticated(r, describe(pop.error()));
      if (pop.error() == pop_error::cache_full || pop.error() == pop_error::key_share_full) res.retry_after_s = 1;
      return finish(r, started, respond, std::move(res));
    }
  }

  if (r.kind == route_kind::settings && req.method == "GET") {
    if (req.has_transaction_id && !txn_valid)
      return finish(r, started, respond,
                    error(rc::invalid_transaction_id, "x-transaction-id must be a GUID", std::move(txn)));
    auto number = settings_number(r.call_id);
    if (!number)
      return finish(r, started, respond,
                    error(rc::invalid_msisdn, "the number in the path must be E.164: 6 to 15 digits", std::move(txn)));
    engine::actor a{who->sub, who->device_id, who->msisdns, who->gateway, who->name};
    auto [done, refuse] = through_reactor(r, started, std::move(respond), std::move(respond_later), std::move(txn));
    if (!reactor_.query_settings(std::move(*number), std::move(a), std::move(done))) refuse();
    return;
  }

  if (r.kind == route_kind::get_call) {
    if (req.has_transaction_id && !txn_valid)
      return finish(r, started, respond,
                    error(rc::invalid_transaction_id, "x-transaction-id must be a GUID", std::move(txn)));
    engine::actor a{who->sub, who->device_id, who->msisdns, who->gateway, who->name};
    auto [done, refuse] = through_reactor(r, started, std::move(respond), std::move(respond_later), std::move(txn));
    if (!reactor_.query(std::string(r.call_id), std::move(a), std::move(done))) refuse();
    return;
  }

  // Input (400): recorded as a rejected event like any other outcome.
  rc input_error = rc::none;
  std::string input_message;
  if (req.has_transaction_id && !txn_valid) {
    input_error = rc::invalid_transaction_id;
    input_message = "x-transaction-id must be a GUID";
  } else if (r.kind == route_kind::call_action && !is_valid_call_id(r.call_id)) {
    input_error = rc::invalid_field;
    input_message = "callId must be 1 to 128 characters of [A-Za-z0-9._~-]";
  } else if (r.kind == route_kind::pushers && r.act == engine::action::unregister_pusher &&
             !is_valid_call_id(r.call_id)) {
    input_error = rc::invalid_field;
    input_message = "deviceId must be 1 to 128 characters of [A-Za-z0-9._~-]";
  }
  handle_call(r, req, std::move(*who), std::move(txn), input_error, std::move(input_message), started,
              std::move(respond), std::move(respond_later));
}

void api::handle_call(const route& r, const http_request& req, principal who, std::string txn,
                      rc input_error, std::string input_message, std::int64_t started,
                      respond_fn respond, respond_later_fn respond_later) {
  engine::command cmd;
  cmd.act = r.kind == route_kind::start ? engine::action::start : r.act;
  const std::int64_t token_exp = who.exp;
  cmd.who = engine::actor{std::move(who.sub), std::move(who.device_id), std::move(who.msisdns), who.gateway,
                          std::move(who.name)};
  cmd.txn_id = txn;
  cmd.method = std::string(req.method);
  cmd.path = std::string(r.path.substr(0, 512));
  if (r.kind == route_kind::call_action) cmd.call_id = std::string(r.call_id.substr(0, 128));

  std::optional<std::string> gateway_identity;  // a gateway's /start: what it sent to verify
  auto set_input_error = [&](rc c, std::string m) {
    if (input_error == rc::none) {
      input_error = c;
      input_message = std::move(m);
    }
  };
  if (input_error == rc::none) {
    switch (cmd.act) {
      case engine::action::start: {
        auto d = schemas::decode_start_request(req.body);
        if (!d) {
          set_input_error(d.error().code, d.error().message);
        } else {
          cmd.new_call_id = new_call_id();
          cmd.from = std::move(d->from);
          cmd.to = std::move(d->to);
          cmd.sdp = std::move(d->sdp);
          cmd.client_correlator = std::move(d->client_correlator);
          cmd.transfer_of = std::move(d->transfer_of);
          const auto& mine = cmd.who.msisdns;
          if (cmd.who.gateway) {
            // STI-VS (contract §11): verified before the reactor; the result travels in the command.
            gateway_identity = std::move(d->identity);
            if (!gateway_identity) cmd.identity = engine::caller_identity{};  // No-TN-Validation
          } else if (opts_.signer && std::find(mine.begin(), mine.end(), cmd.from) != mine.end()) {
            // STI-AS: the owner of `from` is attested (A). Anyone else is refused by decide.
            cmd.identity = sign_start(*opts_.signer, cmd.from, cmd.to, now_s());
          }
        }
        break;
      }
      case engine::action::register_pusher: {
        auto d = schemas::decode_pusher_request(req.body);
        if (!d) {
          set_input_error(d.error().code, d.error().message);
          break;
        }
        const std::string bad_url = opts_.check_push_url ? opts_.check_push_url(d->url)
                                                         : std::string("no pusher URL is allowed (--outbound-allow)");
        if (!bad_url.empty()) {
          set_input_error(rc::invalid_field, "url: " + bad_url);
          break;
        }
        engine::pusher p;
        p.url = std::move(d->url);
        p.app_id = std::move(d->app_id);
        p.pushkey = std::move(d->pushkey);
        p.data = std::move(d->data);
        p.expires_at = (token_exp + opts_.pusher_ttl_s) * 1000;
        cmd.push = std::move(p);
        break;
      }
      case engine::action::settings: {
        auto number = settings_number(r.call_id);
        if (!number) {
          set_input_error(rc::invalid_msisdn, "the number in the path must be E.164: 6 to 15 digits");
          break;
        }
        cmd.to = std::move(*number);
        auto d = schemas::decode_settings_request(req.body, cmd.to);
        if (!d) {
          set_input_error(d.error().code, d.error().message);
          break;
        }
        cmd.settings = engine::settings_of(cmd.to, std::move(*d));
        break;
      }
      case engine::action::transfer: {
        auto d = schemas::decode_transfer_request(req.body);
        if (!d)
          set_input_error(d.error().code, d.error().message);
        else
          cmd.to = std::move(*d);
        break;
      }
      case engine::action::upgrade_to_meeting: {
        auto d = schemas::decode_upgrade_request(req.body);
        if (!d) {
          set_input_error(d.error().code, d.error().message);
        } else if (*d && !d->value().starts_with(opts_.meeting_base_uri)) {
          set_input_error(rc::invalid_field, "field 'meetingUri' must start with " + opts_.meeting_base_uri +
                                                 " (--meeting-base-uri)");
        } else {
          cmd.meeting_uri = *d ? std::move(**d) : opts_.meeting_base_uri + new_call_id();  // 128 random bits
        }
        break;
      }
      case engine::action::accept_upgrade: {
        auto d = schemas::decode_accept_upgrade_request(req.body);
        if (!d)
          set_input_error(d.error().code, d.error().message);
        else
          cmd.accept = *d;
        break;
      }
      case engine::action::unregister_pusher:
        cmd.push.emplace();
        cmd.push->sub = cmd.who.sub;
        cmd.push->device_id = std::string(r.call_id.substr(0, 128));
        break;
      case engine::action::end:
        if (req.has_reason) {
          if (!schemas::is_printable(req.reason, schemas::max_header_field))
            set_input_error(rc::invalid_field, "header 'reason' must be 1 to 256 printable characters");
          else
            cmd.reason = std::string(req.reason);
        }
        if (req.has_conference) {
          if (!schemas::is_printable(req.conference, schemas::max_header_field))
            set_input_error(rc::invalid_field, "header 'conference' must be 1 to 256 printable characters");
          else
            cmd.conference = std::string(req.conference);
        }
        break;
      default: {
        const bool sdp_required = cmd.act != engine::action::in_progress && cmd.act != engine::action::proceeding &&
                                  cmd.act != engine::action::ringing;
        auto d = schemas::decode_status_request(req.body, sdp_required);
        if (!d)
          set_input_error(d.error().code, d.error().message);
        else
          cmd.sdp = std::move(d->sdp);
        break;
      }
    }
  }
  cmd.input_error = input_error;
  cmd.input_error_message = std::move(input_message);

  if (gateway_identity && input_error == rc::none) {
    if (!opts_.verify_identity) {
      cmd.identity = engine::caller_identity{schemas::passport::verification::failed, 0, {}, "untrusted-chain",
                                             "this engine verifies no identity (no --sti-trust)"};
    } else {
      // The verifier answers at once (cached chain, or a failure found first) or from its
      // thread after fetching x5u; either way the command goes on from there.
      auto pending = std::make_shared<engine::command>(std::move(cmd));
      const std::string from = pending->from, to = pending->to;
      opts_.verify_identity(std::move(*gateway_identity), from, to, now_s(),
                            [this, r, pending, started, respond = std::move(respond),
                             respond_later = std::move(respond_later), txn = std::move(txn)](
                                engine::caller_identity id) mutable {
                              pending->identity = std::move(id);
                              submit(r, std::move(*pending), started, std::move(respond), std::move(respond_later),
                                     std::move(txn));
                            });
      return;
    }
  }
  submit(r, std::move(cmd), started, std::move(respond), std::move(respond_later), std::move(txn));
}

void api::submit(const route& r, engine::command cmd, std::int64_t started, respond_fn respond,
                 respond_later_fn respond_later, std::string txn) {
  auto [done, refuse] = through_reactor(r, started, std::move(respond), std::move(respond_later), std::move(txn));
  if (!reactor_.submit(std::move(cmd), std::move(done))) refuse();
}

std::pair<engine::reply_fn, std::function<void()>> api::through_reactor(const route& r, std::int64_t started,
                                                                         respond_fn respond,
                                                                         respond_later_fn respond_later,
                                                                         std::string txn) {
  // On the reactor thread: only the hand-off. The connection's I/O thread renders the
  // reply (render_success, ErrorInfo) and counts it.
  engine::reply_fn done = [this, r, started, later = std::move(respond_later), txn](engine::reply rep) {
    later([this, r, started, txn, rep = std::move(rep)]() mutable {
      http_response res;
      res.transaction_id = std::move(txn);
      if (rep.code == rc::none) {
        res.body = engine::render_success(rep, opts_.base_path);
      } else {
        res.status = schemas::http_status(rep.code);
        res.body = schemas::encode_error_info(rep.code, rep.message);
        if (rep.code == rc::service_unavailable) res.retry_after_s = 1;
      }
      account(r, started, res.status);
      return res;
    });
  };
  auto refuse = [this, r, started, respond = std::move(respond), txn] { finish(r, started, respond, overloaded(txn)); };
  return {std::move(done), std::move(refuse)};
}

}  // namespace transport
