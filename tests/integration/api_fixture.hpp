#pragma once
// Shared pieces of the API tests: one engine for the whole test binary (each test uses
// numbers of its own, so tests do not see each other's calls), parties with tokens,
// request bodies, and assertion macros that print the response when they fail.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "tests/integration/harness.hpp"
#include "tests/integration/ws_client.hpp"

// Failed CHECKs on optional values print them instead of "{?}".
namespace doctest {
template <class T>
struct StringMaker<std::optional<T>> {
  static String convert(const std::optional<T>& v) {
    if (!v) return "nullopt";
    return String("optional(") + StringMaker<T>::convert(*v) + ")";
  }
};
}  // namespace doctest

namespace integration {

// The engine the API tests share; started on first use, killed at exit.
inline engine_process& shared_engine() {
  static engine_process e;
  return e;
}

// A party: one MSISDN and a token (one device) for it.
struct party {
  std::string number;
  std::string tok;
  header_list auth(header_list extra = {}) const { return bearer(tok, std::move(extra)); }
};

inline party new_party(const engine_process& e, std::string device = "dev-1") {
  party p;
  p.number = fresh_msisdn();
  p.tok = e.token({p.number}, std::move(device));
  return p;
}

// A notification socket for the party's device (its token, no PoP on the upgrade).
inline std::unique_ptr<ws_client> listen(const engine_process& eng, const party& p, std::string_view query = {}) {
  return ws_client::connect(eng.port(), "/notifications" + std::string(query),
                            p.auth({{"X-Authorization", std::string(no_pop)}}));
}

// The callId a notification frame is about (the last segment of its callObjectRef).
inline std::string call_id_of(std::string_view frame) {
  const auto ref = json_str(frame, "/" + frame_type(frame) + "/callObjectRef").value_or("");
  return ref.substr(ref.rfind('/') + 1);
}

inline std::string start_body(std::string_view from, std::string_view to, std::string_view offer,
                              std::optional<std::string> correlator = std::nullopt) {
  std::string b = "{\"to\":" + json_quote(to) + ",\"from\":" + json_quote(from) + ",\"sdp\":" + json_quote(offer);
  if (correlator) b += ",\"clientCorrelator\":" + json_quote(*correlator);
  return b + "}";
}

inline std::string sdp_body(std::string_view s) { return "{\"sdp\":" + json_quote(s) + "}"; }

// Access-token claims for hand-made tokens; `extra` is spliced in (",\"aud\":\"x\"").
inline std::string claims(std::string_view msisdn, std::string_view iss, std::int64_t iat, std::int64_t exp,
                          std::string_view extra = "") {
  return "{\"iss\":" + json_quote(iss) + ",\"sub\":\"crafted\",\"msisdns\":[" + json_quote(msisdn) +
         "],\"iat\":" + std::to_string(iat) + ",\"exp\":" + std::to_string(exp) + std::string(extra) + "}";
}

// 32 or more upper-case hex digits (contract §3: at least 128 random bits).
inline bool is_call_id(std::string_view id) {
  if (id.size() < 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

// An id no call has (same shape as the engine's).
inline std::string unknown_call_id() { return "0123456789ABCDEF0123456789ABCDEF"; }

// yna_active_calls once it has settled: the gauge may be updated a moment after the
// 200 went out, so it is read until it holds still for 100 ms (at most 3 s).
inline double active_calls(http_client& c) {
  std::optional<double> last;
  int same = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = c.get("/metrics");
    REQUIRE(m.status == 200);
    const auto v = metric_value(m.body, "yna_active_calls");
    REQUIRE(v.has_value());
    same = (last && *last == *v) ? same + 1 : 0;
    last = v;
    if (same >= 5) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return *last;
}

// One call between two fresh parties, with shorthands for its endpoints.
struct test_call {
  http_client* c = nullptr;
  party mo, mt;
  std::string id;

  response post(const party& p, std::string_view endpoint, std::string_view body = {}, header_list extra = {}) const {
    return c->post("/" + std::string(endpoint) + "/" + id, body, p.auth(std::move(extra)));
  }
  response end(const party& p, header_list extra = {}) const { return c->del("/end/" + id, p.auth(std::move(extra))); }
  response get(const party& p) const { return c->get("/calls/" + id, p.auth()); }
  // GET /calls as MO: the body, or "" when it is not 200.
  std::string view() const {
    auto r = get(mo);
    return r.status == 200 ? r.body : std::string();
  }
  std::string status() const { return json_str(view(), "/status").value_or("<GET /calls failed>"); }
};

// Starts a call MO → MT and drives it to `state`, requiring every step to succeed:
// Initial, InProgress, Proceeding, Ringing, Connected, Connected+hold(MO),
// Connected+reneg(MO), Hold(MO), Hold+resume(MO), Terminated.
inline test_call make_call(const engine_process& e, http_client& c, std::string_view state = "Initial") {
  test_call t;
  t.c = &c;
  t.mo = new_party(e, "mo-dev");
  t.mt = new_party(e, "mt-dev");
  auto r = c.post("/start", start_body(t.mo.number, t.mt.number, sdp("offer")), t.mo.auth());
  INFO("setup /start: ", r.status, " ", r.body);
  REQUIRE(r.status == 200);
  t.id = json_str(r.body, "/callId").value_or("");
  REQUIRE(!t.id.empty());
  auto step = [&](const party& p, std::string_view ep, std::string_view body) {
    auto s = t.post(p, ep, body);
    INFO("setup step ", ep, " towards ", state, ": ", s.status, " ", s.body);
    REQUIRE(s.status == 200);
  };
  if (state == "Initial") return t;
  if (state == "InProgress") return step(t.mt, "inProgress", sdp_body(sdp("early"))), t;
  if (state == "Proceeding") return step(t.mt, "proceeding", "{}"), t;
  step(t.mt, "ringing", "{}");
  if (state == "Ringing") return t;
  step(t.mt, "connected", sdp_body(sdp("answer")));
  if (state == "Connected") return t;
  if (state == "Terminated") {
    auto s = t.end(t.mo);
    INFO("setup end: ", s.status, " ", s.body);
    REQUIRE(s.status == 200);
    return t;
  }
  if (state == "Connected+reneg(MO)") return step(t.mo, "renegotiate", sdp_body(sdp("reneg"))), t;
  step(t.mo, "hold", sdp_body(sdp("hold")));
  if (state == "Connected+hold(MO)") return t;
  step(t.mt, "acceptHold", sdp_body(sdp("held")));
  if (state == "Hold(MO)") return t;
  step(t.mo, "resume", sdp_body(sdp("resume")));
  if (state == "Hold+resume(MO)") return t;
  FAIL("make_call: unknown state ", state);
  return t;
}

}  // namespace integration

// The response must be 200; prints it otherwise.
#define REQUIRE_200(resp)                                                       \
  do {                                                                          \
    const ::integration::response& r200_ = (resp);                              \
    INFO("response: ", r200_.status, " ", r200_.body);                          \
    REQUIRE(r200_.status == 200);                                               \
  } while (0)

#define CHECK_200(resp)                                                         \
  do {                                                                          \
    const ::integration::response& r200_ = (resp);                              \
    INFO("response: ", r200_.status, " ", r200_.body);                          \
    CHECK(r200_.status == 200);                                                 \
  } while (0)

// An empty ErrorInfo `{}` with 200 and application/json.
#define CHECK_EMPTY_OK(resp)                                                    \
  do {                                                                          \
    const ::integration::response& rok_ = (resp);                               \
    INFO("response: ", rok_.status, " ", rok_.body);                            \
    CHECK(rok_.status == 200);                                                  \
    CHECK(rok_.content_type().rfind("application/json", 0) == 0);               \
    CHECK(::integration::json_object_size(rok_.body) == std::optional<std::size_t>(0)); \
  } while (0)

// An ErrorInfo error: status, application/json, parses as ErrorInfo, reasonCode.
#define CHECK_ERROR(resp, want_status, want_code)                               \
  do {                                                                          \
    const ::integration::response& rerr_ = (resp);                              \
    INFO("response: ", rerr_.status, " ", rerr_.body);                          \
    CHECK(rerr_.status == (want_status));                                       \
    CHECK(::integration::reason_code_of(rerr_.body) == std::string_view(want_code)); \
    CHECK(::integration::is_error_info(rerr_.body));                            \
    CHECK(rerr_.content_type().rfind("application/json", 0) == 0);              \
  } while (0)
