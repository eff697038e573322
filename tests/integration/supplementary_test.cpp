// Supplementary services (contract §10) on the real binary: per-number settings, call
// waiting and forwarding (CFU, CFB, CFNR, CFNRc, chains, loops), with every notification
// seen by every device of every party involved, validated against schemas/asyncapi.yaml
// and schemas/openapi.yaml at the end of each case (tests/integration/frame_validation.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/api_fixture.hpp"
#include "tests/integration/frame_validation.hpp"
#include "tests/integration/ws_client.hpp"

using namespace integration;

namespace {

// How long one expected frame may take: generous, and four times that under sanitizers.
std::chrono::milliseconds frame_wait() { return std::chrono::milliseconds(static_cast<int>(20000 / load_scale())); }
constexpr auto quiet = std::chrono::milliseconds(800);

// One device of a number, with its socket; what it receives is captured for validation.
struct phone {
  std::string name;
  party p;
  std::unique_ptr<ws_client> ws;
  capture* cap = nullptr;

  std::string next() {
    auto f = ws->next(frame_wait());
    INFO(name, " waited for a frame");
    REQUIRE(f.has_value());
    cap->frame(*f);
    return *f;
  }
  std::vector<std::string> drain(std::chrono::milliseconds q = std::chrono::milliseconds(50)) {
    auto v = ws->drain(q);
    for (const auto& f : v) cap->frame(f);
    return v;
  }
};

// The devices of one test, the REST calls it makes (captured), and its checks.
struct stage {
  const engine_process& eng;
  http_client c;
  capture cap;
  std::vector<std::unique_ptr<phone>> phones;

  explicit stage(const engine_process& e) : eng(e), c(e.port()) {}

  phone& device(const std::string& name, const std::string& number, bool connect = true) {
    auto d = std::make_unique<phone>();
    d->name = name;
    d->p = party{number, eng.token({number}, name)};
    d->cap = &cap;
    if (connect) d->ws = listen(eng, d->p);
    phones.push_back(std::move(d));
    return *phones.back();
  }

  response start(const party& from, const std::string& to) {
    auto r = c.post("/start", start_body(from.number, to, sdp("offer-" + from.number)), from.auth());
    cap.response("POST", "/start", r);
    return r;
  }
  response post(const party& p, std::string_view endpoint, const std::string& id, std::string_view body = {}) {
    const std::string target = "/" + std::string(endpoint) + "/" + id;
    auto r = c.post(target, body, p.auth());
    cap.response("POST", target, r);
    return r;
  }
  response answer(const party& p, const std::string& id) { return post(p, "connected", id, sdp_body(sdp("answer"))); }
  response end(const party& p, const std::string& id, std::optional<std::string> reason = std::nullopt) {
    header_list extra;
    if (reason) extra.emplace_back("reason", *reason);
    auto r = c.del("/end/" + id, p.auth(std::move(extra)));
    cap.response("DELETE", "/end/" + id, r);
    return r;
  }
  response get_call(const party& p, const std::string& id) {
    auto r = c.get("/calls/" + id, p.auth());
    cap.response("GET", "/calls/" + id, r);
    return r;
  }
  response put_settings(const party& p, const std::string& number, std::string_view body) {
    auto r = c.request("PUT", "/settings/" + number, body, p.auth());
    cap.response("PUT", "/settings/" + number, r);
    return r;
  }
  response get_settings(const party& p, const std::string& number) {
    auto r = c.get("/settings/" + number, p.auth());
    cap.response("GET", "/settings/" + number, r);
    return r;
  }

  // Every socket is subscribed before the test relies on live delivery (and on presence):
  // a helper calls each number and cancels; each socket sees the invitation and the end.
  void warm_up() {
    const std::string helper = fresh_msisdn();
    const party h{helper, eng.token({helper}, "warm-up")};
    std::set<std::string> numbers;
    for (auto& d : phones)
      if (d->ws) numbers.insert(d->p.number);
    for (const auto& n : numbers) {
      auto r = start(h, n);
      REQUIRE_200(r);
      const std::string id = json_str(r.body, "/callId").value_or("");
      for (auto& d : phones)
        if (d->ws && d->p.number == n) CHECK(frame_type(d->next()) == "sessionInvitationNotification");
      REQUIRE_200(end(h, id));
      for (auto& d : phones)
        if (d->ws && d->p.number == n) CHECK(frame_status(d->next()) == "SessionCancelled");
    }
  }

  // Nothing more arrives on any socket.
  void silence(std::string_view when) {
    std::this_thread::sleep_for(quiet);
    for (auto& d : phones) {
      if (!d->ws) continue;
      const auto v = d->drain();
      INFO(when, ": ", d->name, " got ", v.size(), " more frame(s): ", v.empty() ? std::string() : v.front());
      CHECK(v.empty());
    }
  }

  void validate() { validate_captured(cap, eng.root()); }
};

std::string id_of(const response& r) { return json_str(r.body, "/callId").value_or(""); }

// The frame's field under its wrapper ("/status", "/diversionAddress", …).
std::optional<std::string> field(const std::string& f, const std::string& name) {
  return json_str(f, "/" + frame_type(f) + name);
}

void is_invitation(const std::string& f, const std::string& call_id, const std::string& from, const std::string& to) {
  INFO("frame: ", f);
  CHECK(frame_type(f) == "sessionInvitationNotification");
  CHECK(call_id_of(f) == call_id);
  CHECK(field(f, "/originatorAddress") == "tel:+" + from);
  CHECK(field(f, "/receiverAddress") == "tel:+" + to);
}

void is_status(const std::string& f, const std::string& call_id, const std::string& status,
               std::optional<std::string> reason = std::nullopt) {
  INFO("frame: ", f);
  CHECK(frame_type(f) == "sessionStatusNotification");
  CHECK(call_id_of(f) == call_id);
  CHECK(frame_status(f) == status);
  if (reason) CHECK(field(f, "/reason") == *reason);
}

// A timer flag's seconds, longer under sanitizers (load_scale() < 1): what the test does
// before the timer is due must fit in it on two busy cores.
std::string secs(int s) { return std::to_string(static_cast<int>(std::lround(s / load_scale()))); }

std::string cfu_to(const std::string& target) {
  return R"({"forwarding":{"unconditional":")" + target + R"("}})";
}

}  // namespace

TEST_CASE("settings: the owner reads and replaces them; others are refused; bad rules are 400 with the field named") {
  auto& eng = shared_engine();
  stage s(eng);
  auto& own = s.device("owner-phone", fresh_msisdn());
  const std::string other = fresh_msisdn();
  s.warm_up();

  auto g = s.get_settings(own.p, own.p.number);
  REQUIRE_200(g);
  CHECK(json_str(g.body, "/msisdn") == own.p.number);
  CHECK(g.body.find("\"callWaiting\":true") != std::string::npos);
  CHECK(g.body.find("\"unconditional\":null") != std::string::npos);

  const std::string body = R"({"callWaiting":false,"forwarding":{"busy":")" + other +
                           R"(","noAnswer":{"to":")" + other + R"(","timeout":12}}})";
  auto p = s.put_settings(own.p, "+" + own.p.number, body);
  REQUIRE_200(p);
  CHECK(p.body.find("\"callWaiting\":false") != std::string::npos);
  g = s.get_settings(own.p, own.p.number);
  REQUIRE_200(g);
  CHECK(json_str(g.body, "/forwarding/busy") == other);
  CHECK(json_str(g.body, "/forwarding/noAnswer/to") == other);
  CHECK(json_int(g.body, "/forwarding/noAnswer/timeout") == 12);
  CHECK(g.body.find("\"unconditional\":null") != std::string::npos);

  // Refusals: each a rejected event, none notifies anyone.
  const party stranger{other, eng.token({other}, "stranger")};
  auto forbidden = s.put_settings(stranger, own.p.number, "{}");
  CHECK(forbidden.status == 403);
  CHECK(reason_code_of(forbidden.body) == "FORBIDDEN");
  CHECK(s.get_settings(stranger, own.p.number).status == 403);
  auto self = s.put_settings(own.p, own.p.number, cfu_to(own.p.number));
  CHECK(self.status == 400);
  CHECK(reason_code_of(self.body) == "INVALID_FIELD");
  CHECK(self.body.find("forwarding.unconditional") != std::string::npos);
  auto not_e164 = s.put_settings(own.p, own.p.number, R"({"forwarding":{"busy":"12ab"}})");
  CHECK(not_e164.status == 400);
  CHECK(reason_code_of(not_e164.body) == "INVALID_MSISDN");
  CHECK(not_e164.body.find("forwarding.busy") != std::string::npos);
  for (const char* t : {"4", "301"}) {
    auto slow = s.put_settings(own.p, own.p.number,
                               R"({"forwarding":{"noAnswer":{"to":")" + other + R"(","timeout":)" + t + "}}}");
    CHECK(slow.status == 400);
    CHECK(reason_code_of(slow.body) == "INVALID_FIELD");
    CHECK(slow.body.find("forwarding.noAnswer.timeout") != std::string::npos);
  }
  CHECK(s.put_settings(own.p, "12ab", "{}").status == 400);
  CHECK(s.c.request("POST", "/settings/" + own.p.number, "{}", own.p.auth()).status == 405);
  // Unchanged by the refusals.
  g = s.get_settings(own.p, own.p.number);
  CHECK(json_str(g.body, "/forwarding/busy") == other);
  // {} is the defaults again.
  REQUIRE_200(s.put_settings(own.p, own.p.number, "{}"));
  g = s.get_settings(own.p, own.p.number);
  CHECK(g.body.find("\"busy\":null") != std::string::npos);
  CHECK(g.body.find("\"callWaiting\":true") != std::string::npos);
  s.silence("after settings requests");
  s.validate();
}

TEST_CASE("call waiting: a second call rings the busy callee with callWaiting, its caller is told Waiting; "
          "the callee holds the first, answers the second, then goes back") {
  auto& eng = shared_engine();
  stage s(eng);
  const std::string a = fresh_msisdn(), b = fresh_msisdn(), c = fresh_msisdn();
  auto& a1 = s.device("a-phone", a);
  auto& b1 = s.device("b-phone", b);
  auto& b2 = s.device("b-tablet", b);
  auto& c1 = s.device("c-phone", c);
  auto& c2 = s.device("c-laptop", c);
  s.warm_up();

  auto r1 = s.start(a1.p, b);
  REQUIRE_200(r1);
  const std::string first = id_of(r1);
  is_invitation(b1.next(), first, a, b);
  is_invitation(b2.next(), first, a, b);
  REQUIRE_200(s.answer(b1.p, first));
  is_status(a1.next(), first, "Connected");
  is_status(b2.next(), first, "Connected");

  // C calls B while B is in a call: rings with callWaiting, C (every device) told Waiting.
  auto r2 = s.start(c1.p, b);
  REQUIRE_200(r2);
  const std::string second = id_of(r2);
  for (phone* d : {&b1, &b2}) {
    const auto inv = d->next();
    is_invitation(inv, second, c, b);
    CHECK(inv.find("\"callWaiting\":true") != std::string::npos);
    is_status(d->next(), second, "Waiting");
  }
  is_status(c1.next(), second, "Waiting");  // engine-caused: the requesting device too
  is_status(c2.next(), second, "Waiting");
  CHECK(json_str(s.get_call(c1.p, second).body, "/status") == "Waiting");
  s.silence("after the waiting call");  // A hears nothing of it

  // B holds the first, answers the second.
  REQUIRE_200(s.post(b1.p, "hold", first, sdp_body(sdp("hold"))));
  is_status(a1.next(), first, "Hold");
  is_status(b2.next(), first, "Hold");
  REQUIRE_200(s.post(a1.p, "acceptHold", first, sdp_body(sdp("held"))));
  is_status(b1.next(), first, "Hold");
  is_status(b2.next(), first, "Hold");
  REQUIRE_200(s.answer(b1.p, second));
  is_status(c1.next(), second, "Connected");
  is_status(c2.next(), second, "Connected");
  is_status(b2.next(), second, "Connected");
  // Switch back: B holds the second, resumes the first.
  REQUIRE_200(s.post(b1.p, "hold", second, sdp_body(sdp("hold2"))));
  is_status(c1.next(), second, "Hold");
  is_status(c2.next(), second, "Hold");
  is_status(b2.next(), second, "Hold");
  REQUIRE_200(s.post(c1.p, "acceptHold", second, sdp_body(sdp("held2"))));
  is_status(b1.next(), second, "Hold");
  is_status(b2.next(), second, "Hold");
  is_status(c2.next(), second, "Hold");
  REQUIRE_200(s.post(b1.p, "resume", first, sdp_body(sdp("resume"))));
  is_status(a1.next(), first, "Resume");
  is_status(b2.next(), first, "Resume");
  REQUIRE_200(s.post(a1.p, "acceptResume", first, sdp_body(sdp("resumed"))));
  is_status(b1.next(), first, "Connected");
  is_status(b2.next(), first, "Connected");
  REQUIRE_200(s.end(c1.p, second));
  for (phone* d : {&b1, &b2, &c2}) is_status(d->next(), second, "Terminated");
  REQUIRE_200(s.end(a1.p, first));
  for (phone* d : {&b1, &b2}) is_status(d->next(), first, "Terminated");
  s.silence("after both calls ended");
  s.validate();
}

TEST_CASE("call waiting off, or a call waiting already: the engine's Busy (user-busy), to the caller only") {
  auto& eng = shared_engine();
  stage s(eng);
  const std::string a = fresh_msisdn(), b = fresh_msisdn(), c = fresh_msisdn(), d = fresh_msisdn();
  auto& a1 = s.device("a-phone", a);
  auto& b1 = s.device("b-phone", b);
  auto& c1 = s.device("c-phone", c);
  auto& c2 = s.device("c-laptop", c);
  auto& d1 = s.device("d-phone", d);
  s.warm_up();
  const std::string first = id_of(s.start(a1.p, b));
  is_invitation(b1.next(), first, a, b);
  REQUIRE_200(s.answer(b1.p, first));
  is_status(a1.next(), first, "Connected");

  // One call waiting (C's), so D's call is Busy.
  const std::string second = id_of(s.start(c1.p, b));
  is_invitation(b1.next(), second, c, b);
  is_status(b1.next(), second, "Waiting");
  is_status(c1.next(), second, "Waiting");
  is_status(c2.next(), second, "Waiting");
  auto r3 = s.start(d1.p, b);
  REQUIRE_200(r3);
  is_status(d1.next(), id_of(r3), "Busy", "user-busy");
  s.silence("after the third call");  // B's devices are not told of it

  // Call waiting off: C's second attempt after ending is Busy at once.
  REQUIRE_200(s.end(c1.p, second));
  is_status(b1.next(), second, "SessionCancelled");
  is_status(c2.next(), second, "SessionCancelled");
  REQUIRE_200(s.put_settings(b1.p, b, R"({"callWaiting":false})"));
  auto r4 = s.start(c1.p, b);
  REQUIRE_200(r4);
  is_status(c1.next(), id_of(r4), "Busy", "user-busy");
  is_status(c2.next(), id_of(r4), "Busy", "user-busy");
  auto view = s.get_call(c1.p, id_of(r4));
  CHECK(json_str(view.body, "/status") == "Busy");
  CHECK(json_str(view.body, "/endReason") == "user-busy");
  s.silence("after the busy call");
  REQUIRE_200(s.end(a1.p, first));
  is_status(b1.next(), first, "Terminated");
  s.validate();
}

TEST_CASE("unconditional forwarding: Forwarded to MO, the target invited with diversionAddress, the dialled number "
          "never rings; its answer is CALL_FORWARDED, the target's is the call's; GET /calls shows the diversion") {
  auto& eng = shared_engine();
  stage s(eng);
  const std::string a = fresh_msisdn(), b = fresh_msisdn(), t = fresh_msisdn();
  auto& a1 = s.device("a-phone", a);
  auto& a2 = s.device("a-laptop", a);
  auto& b1 = s.device("b-phone", b);
  auto& t1 = s.device("t-phone", t);
  auto& t2 = s.device("t-tablet", t);
  s.warm_up();
  REQUIRE_200(s.put_settings(b1.p, b, cfu_to(t)));

  auto r = s.start(a1.p, b);
  REQUIRE_200(r);
  CHECK(json_str(r.body, "/to") == b);  // the number dialled
  const std::string id = id_of(r);
  for (phone* d : {&a1, &a2}) {
    const auto f = d->next();
    is_status(f, id, "Forwarded", "unconditional");
    CHECK(field(f, "/diversionAddress") == "tel:+" + b);
  }
  for (phone* d : {&t1, &t2}) {
    const auto f = d->next();
    is_invitation(f, id, a, t);
    CHECK(field(f, "/diversionAddress") == "tel:+" + b);
    CHECK(field(f, "/sdp") == sdp("offer-" + a));
  }
  s.silence("after the diversion");  // B's device got nothing

  auto former = s.answer(b1.p, id);
  CHECK(former.status == 400);
  CHECK(reason_code_of(former.body) == "CALL_FORWARDED");
  REQUIRE_200(s.post(t1.p, "ringing", id));
  for (phone* d : {&a1, &a2, &t2}) is_status(d->next(), id, "Ringing");
  REQUIRE_200(s.answer(t1.p, id));
  for (phone* d : {&a1, &a2, &t2}) is_status(d->next(), id, "Connected");
  auto view = s.get_call(a1.p, id);
  REQUIRE_200(view);
  CHECK(json_str(view.body, "/to") == t);
  CHECK(json_str(view.body, "/dialled") == b);
  CHECK(json_str(view.body, "/diversions/0/from") == b);
  CHECK(json_str(view.body, "/diversions/0/to") == t);
  CHECK(json_str(view.body, "/diversions/0/reason") == "unconditional");
  REQUIRE_200(s.end(t1.p, id));
  for (phone* d : {&a1, &a2, &t2}) is_status(d->next(), id, "Terminated");
  s.silence("after the end");
  REQUIRE_200(s.put_settings(b1.p, b, "{}"));
  s.validate();
}

TEST_CASE("busy forwarding: while in a call with call waiting off, and on the callee's busy /end; "
          "the dialled number's devices are told Forwarded so they stop ringing") {
  auto& eng = shared_engine();
  stage s(eng);
  const std::string a = fresh_msisdn(), b = fresh_msisdn(), t = fresh_msisdn(), x = fresh_msisdn();
  auto& a1 = s.device("a-phone", a);
  auto& b1 = s.device("b-phone", b);
  auto& b2 = s.device("b-tablet", b);
  auto& t1 = s.device("t-phone", t);
  auto& x1 = s.device("x-phone", x);
  s.warm_up();
  REQUIRE_200(s.put_settings(b1.p, b, R"({"forwarding":{"busy":")" + t + R"("}})"));

  // The callee's busy /end.
  const std::string id = id_of(s.start(a1.p, b));
  is_invitation(b1.next(), id, a, b);
  is_invitation(b2.next(), id, a, b);
  REQUIRE_200(s.end(b1.p, id, "busy"));
  const auto fa = a1.next();
  is_status(fa, id, "Forwarded", "user-busy");
  CHECK(field(fa, "/diversionAddress") == "tel:+" + b);
  is_status(b1.next(), id, "Forwarded", "user-busy");  // engine-caused: the ending device too
  is_status(b2.next(), id, "Forwarded", "user-busy");
  const auto inv = t1.next();
  is_invitation(inv, id, a, t);
  CHECK(field(inv, "/diversionAddress") == "tel:+" + b);
  CHECK(json_str(s.get_call(a1.p, id).body, "/status") == "Forwarded");
  REQUIRE_200(s.end(a1.p, id));
  is_status(t1.next(), id, "SessionCancelled");
  s.silence("after the first diversion");

  // Busy in a call with call waiting off: diverted at once, B never rings.
  REQUIRE_200(s.put_settings(b1.p, b, R"({"callWaiting":false,"forwarding":{"busy":")" + t + R"("}})"));
  const std::string other = id_of(s.start(x1.p, b));
  is_invitation(b1.next(), other, x, b);
  is_invitation(b2.next(), other, x, b);
  REQUIRE_200(s.answer(b1.p, other));
  is_status(x1.next(), other, "Connected");
  is_status(b2.next(), other, "Connected");
  const std::string id2 = id_of(s.start(a1.p, b));
  is_status(a1.next(), id2, "Forwarded", "user-busy");
  is_invitation(t1.next(), id2, a, t);
  s.silence("after the busy diversion");  // B's devices: nothing of id2
  REQUIRE_200(s.end(a1.p, id2));
  is_status(t1.next(), id2, "SessionCancelled");
  REQUIRE_200(s.end(x1.p, other));
  is_status(b1.next(), other, "Terminated");
  is_status(b2.next(), other, "Terminated");
  REQUIRE_200(s.put_settings(b1.p, b, "{}"));
  s.validate();
}

TEST_CASE("not-reachable forwarding: a number with no socket and no push registration diverts at once") {
  auto& eng = shared_engine();
  stage s(eng);
  const std::string a = fresh_msisdn(), b = fresh_msisdn(), t = fresh_msisdn();
  auto& a1 = s.device("a-phone", a);
  auto& b1 = s.device("b-phone", b, false);  // no socket
  auto& t1 = s.device("t-phone", t);
  s.warm_up();
  REQUIRE_200(s.put_settings(b1.p, b, R"({"forwarding":{"notReachable":")" + t + R"("}})"));
  const std::string id = id_of(s.start(a1.p, b));
  is_status(a1.next(), id, "Forwarded", "unavailable");
  is_invitation(t1.next(), id, a, t);
  REQUIRE_200(s.end(a1.p, id));
  is_status(t1.next(), id, "SessionCancelled");
  // With a socket, B is reachable: the call rings it.
  b1.ws = listen(eng, b1.p);
  s.warm_up();
  const std::string id2 = id_of(s.start(a1.p, b));
  is_invitation(b1.next(), id2, a, b);
  REQUIRE_200(s.end(a1.p, id2));
  is_status(b1.next(), id2, "SessionCancelled");
  s.silence("after the reachable call");
  REQUIRE_200(s.put_settings(b1.p, b, "{}"));
  s.validate();
}

TEST_CASE("forwarding chains: a 6-hop chain is stopped at 5 (forwarding-limit), a loop ends forwarding-loop, "
          "and a busy target with call waiting off is Busy") {
  auto& eng = shared_engine();
  stage s(eng);
  const std::string a = fresh_msisdn();
  auto& a1 = s.device("a-phone", a);
  std::vector<std::string> hop;
  for (int i = 0; i < 7; ++i) hop.push_back(fresh_msisdn());
  s.warm_up();
  for (int i = 0; i < 6; ++i) {
    const party owner{hop[i], eng.token({hop[i]}, "owner")};
    REQUIRE_200(s.put_settings(owner, hop[i], cfu_to(hop[i + 1])));
  }
  const std::string id = id_of(s.start(a1.p, hop[0]));
  for (int i = 0; i < 5; ++i) {
    const auto f = a1.next();
    is_status(f, id, "Forwarded", "unconditional");
    CHECK(field(f, "/diversionAddress") == "tel:+" + hop[i]);
  }
  is_status(a1.next(), id, "NotReachable", "forwarding-limit");
  auto view = s.get_call(a1.p, id);
  CHECK(json_str(view.body, "/diversions/4/to") == hop[5]);
  CHECK(!json_has(view.body, "/diversions/5"));
  CHECK(json_str(view.body, "/endReason") == "forwarding-limit");

  // A loop: hop[5] -> hop[6] -> hop[5].
  const party last{hop[6], eng.token({hop[6]}, "owner")};
  REQUIRE_200(s.put_settings(last, hop[6], cfu_to(hop[5])));
  const std::string loop = id_of(s.start(a1.p, hop[5]));
  is_status(a1.next(), loop, "Forwarded", "unconditional");
  is_status(a1.next(), loop, "NotReachable", "forwarding-loop");

  // Forwarded to a number in a call with call waiting off and no busy forwarding: Busy.
  const std::string b = fresh_msisdn(), t = fresh_msisdn(), y = fresh_msisdn();
  auto& t1 = s.device("t-phone", t);
  auto& y1 = s.device("y-phone", y);
  s.warm_up();
  const party bp{b, eng.token({b}, "owner")};
  REQUIRE_200(s.put_settings(bp, b, cfu_to(t)));
  REQUIRE_200(s.put_settings(t1.p, t, R"({"callWaiting":false})"));
  const std::string busy_call = id_of(s.start(y1.p, t));
  is_invitation(t1.next(), busy_call, y, t);
  REQUIRE_200(s.answer(t1.p, busy_call));
  is_status(y1.next(), busy_call, "Connected");
  const std::string to_busy = id_of(s.start(a1.p, b));
  is_status(a1.next(), to_busy, "Forwarded", "unconditional");
  is_status(a1.next(), to_busy, "Busy", "user-busy");
  s.silence("after the chains");
  REQUIRE_200(s.end(y1.p, busy_call));
  is_status(t1.next(), busy_call, "Terminated");
  s.validate();
}

TEST_CASE("no-answer forwarding: the answer timer diverts by CFNR when it expires first") {
  engine_process eng({"--answer-timeout", secs(3), "--invite-timeout", "0"});
  stage s(eng);
  const std::string a = fresh_msisdn(), b = fresh_msisdn(), t = fresh_msisdn();
  auto& a1 = s.device("a-phone", a);
  auto& b1 = s.device("b-phone", b);
  auto& t1 = s.device("t-phone", t);
  s.warm_up();
  REQUIRE_200(s.put_settings(b1.p, b, R"({"forwarding":{"noAnswer":{"to":")" + t + R"(","timeout":30}}})"));
  const std::string id = id_of(s.start(a1.p, b));
  is_invitation(b1.next(), id, a, b);
  // The answer timer (3 s) comes first: diverted by CFNR, reason no-answer.
  is_status(a1.next(), id, "Forwarded", "no-answer");
  is_status(b1.next(), id, "Forwarded", "no-answer");
  is_invitation(t1.next(), id, a, t);
  REQUIRE_200(s.end(a1.p, id));
  is_status(t1.next(), id, "SessionCancelled");
  s.silence("after the no-answer diversion");
  s.validate();
}

TEST_CASE("restart safety: a CFNR timer armed before SIGKILL fires once after the restart") {
  engine_process eng({"--invite-timeout", "0", "--answer-timeout", "0"});
  std::string id, b, t, a;
  {
    stage s(eng);
    a = fresh_msisdn(), b = fresh_msisdn(), t = fresh_msisdn();
    auto& a1 = s.device("a-phone", a);
    auto& b1 = s.device("b-phone", b);
    s.warm_up();
    REQUIRE_200(s.put_settings(b1.p, b, R"({"forwarding":{"noAnswer":{"to":")" + t + R"(","timeout":8}}})"));
    id = id_of(s.start(a1.p, b));
    is_invitation(b1.next(), id, a, b);
    // Not diverted yet: the kill comes before the deadline, so the restart is what fires it.
    REQUIRE(!json_has(s.get_call(a1.p, id).body, "/diversions/0"));
  }
  eng.kill9();
  eng.start();
  stage s(eng);
  auto& a1 = s.device("a-phone-2", a);
  auto& t1 = s.device("t-phone", t);
  // The settings survived the crash; the call rings T once the 8 s deadline passes.
  auto g = s.get_settings(party{b, eng.token({b}, "b")}, b);
  CHECK(json_str(g.body, "/forwarding/noAnswer/to") == t);
  const auto inv = t1.next();  // live, or as a ringing invitation when T subscribed late
  is_invitation(inv, id, a, t);
  auto view = s.get_call(a1.p, id);
  CHECK(json_str(view.body, "/to") == t);
  CHECK(json_str(view.body, "/diversions/0/reason") == "no-answer");
  CHECK(!json_has(view.body, "/diversions/1"));
  // Once: after a second restart nothing fires again.
  eng.kill9();
  eng.start();
  stage again(eng);
  auto view2 = again.get_call(party{a, eng.token({a}, "a")}, id);
  CHECK(json_str(view2.body, "/to") == t);
  CHECK(!json_has(view2.body, "/diversions/1"));
  s.validate();
}

namespace {

// A connected call from `mo` to `mt` (each one device); the devices have seen it so far.
std::string connect_call(stage& s, phone& mo, phone& mt, std::vector<phone*> others_of_mt = {},
                         std::vector<phone*> others_of_mo = {}) {
  auto r = s.start(mo.p, mt.p.number);
  REQUIRE_200(r);
  const std::string id = id_of(r);
  is_invitation(mt.next(), id, mo.p.number, mt.p.number);
  for (phone* d : others_of_mt) is_invitation(d->next(), id, mo.p.number, mt.p.number);
  REQUIRE_200(s.answer(mt.p, id));
  is_status(mo.next(), id, "Connected");
  for (phone* d : others_of_mt) is_status(d->next(), id, "Connected");
  for (phone* d : others_of_mo) is_status(d->next(), id, "Connected");
  return id;
}

std::string transfer_start_body(const std::string& from, const std::string& to, const std::string& of) {
  return R"({"from":")" + from + R"(","to":")" + to + R"(","sdp":)" + json_quote(sdp("fresh-offer")) +
         R"(,"transferOf":")" + of + R"("})";
}

}  // namespace

TEST_CASE("transfer: from MT, and from MO during Hold; the remaining party calls the target with transferOf") {
  auto& eng = shared_engine();
  stage s(eng);
  const std::string a = fresh_msisdn(), b = fresh_msisdn(), t = fresh_msisdn();
  auto& a1 = s.device("a-phone", a);
  auto& a2 = s.device("a-laptop", a);
  auto& b1 = s.device("b-phone", b);
  auto& b2 = s.device("b-tablet", b);
  auto& t1 = s.device("t-phone", t);
  s.warm_up();

  // 1. MT transfers.
  std::string id = connect_call(s, a1, b1, {&b2}, {&a2});
  auto self = s.post(b1.p, "transfer", id, R"({"to":")" + b + R"("})");
  CHECK(self.status == 400);
  CHECK(reason_code_of(self.body) == "INVALID_FIELD");
  CHECK(s.post(b1.p, "transfer", id, R"({"to":")" + a + R"("})").status == 400);
  CHECK(reason_code_of(s.post(b1.p, "transfer", id, R"({"to":"12ab"})").body) == "INVALID_MSISDN");
  s.silence("after refused transfers");
  REQUIRE_200(s.post(b1.p, "transfer", id, R"({"to":")" + t + R"("})"));
  for (phone* d : {&a1, &a2, &b2}) {
    const auto f = d->next();
    is_status(f, id, "Terminated", "transferred");
    CHECK(field(f, "/transferTargetAddress") == "tel:+" + t);
  }
  auto view = s.get_call(a1.p, id);
  CHECK(json_str(view.body, "/transferredTo") == t);
  // Only the remaining party, only to the target.
  auto wrong_party = s.c.post("/start", transfer_start_body(b, t, id), b1.p.auth());
  s.cap.response("POST", "/start", wrong_party);
  CHECK(wrong_party.status == 400);
  CHECK(reason_code_of(wrong_party.body) == "WRONG_PARTY");
  auto wrong_target = s.c.post("/start", transfer_start_body(a, fresh_msisdn(), id), a1.p.auth());
  s.cap.response("POST", "/start", wrong_target);
  CHECK(reason_code_of(wrong_target.body) == "INVALID_FIELD");
  auto taken = s.c.post("/start", transfer_start_body(a, t, id), a1.p.auth());
  s.cap.response("POST", "/start", taken);
  REQUIRE_200(taken);
  const std::string next = id_of(taken);
  const auto inv = t1.next();
  is_invitation(inv, next, a, t);
  CHECK(field(inv, "/diversionAddress") == "tel:+" + b);
  CHECK(field(inv, "/sdp") == sdp("fresh-offer"));
  REQUIRE_200(s.answer(t1.p, next));
  is_status(a1.next(), next, "Connected");
  is_status(a2.next(), next, "Connected");
  CHECK(json_str(s.get_call(t1.p, next).body, "/transferOf") == id);
  REQUIRE_200(s.end(t1.p, next));
  is_status(a1.next(), next, "Terminated");
  is_status(a2.next(), next, "Terminated");

  // 2. MO transfers while the call is on hold.
  id = connect_call(s, a1, b1, {&b2}, {&a2});
  REQUIRE_200(s.post(a1.p, "hold", id, sdp_body(sdp("hold"))));
  is_status(a2.next(), id, "Hold");
  is_status(b1.next(), id, "Hold");
  is_status(b2.next(), id, "Hold");
  REQUIRE_200(s.post(b1.p, "acceptHold", id, sdp_body(sdp("held"))));
  for (phone* d : {&a1, &a2, &b2}) is_status(d->next(), id, "Hold");
  REQUIRE_200(s.post(a1.p, "transfer", id, R"({"to":")" + t + R"("})"));
  for (phone* d : {&a2, &b1, &b2}) is_status(d->next(), id, "Terminated", "transferred");
  auto taken2 = s.c.post("/start", transfer_start_body(b, t, id), b2.p.auth());
  s.cap.response("POST", "/start", taken2);
  REQUIRE_200(taken2);
  const auto inv2 = t1.next();
  is_invitation(inv2, id_of(taken2), b, t);
  CHECK(field(inv2, "/diversionAddress") == "tel:+" + a);
  REQUIRE_200(s.end(b2.p, id_of(taken2)));
  is_status(t1.next(), id_of(taken2), "SessionCancelled");
  is_status(b1.next(), id_of(taken2), "SessionCancelled");
  s.silence("after the transfers");
  s.validate();
}

TEST_CASE("upgrade to meeting: rejected, timed out, then accepted: every step told to every device") {
  engine_process eng({"--offer-timeout", secs(2), "--meeting-base-uri", "https://meet.example.test/r/"});
  stage s(eng);
  const std::string a = fresh_msisdn(), b = fresh_msisdn();
  auto& a1 = s.device("a-phone", a);
  auto& a2 = s.device("a-laptop", a);
  auto& b1 = s.device("b-phone", b);
  s.warm_up();
  // Not connected yet: INVALID_STATE, and it notifies nobody.
  auto early = s.start(a1.p, b);
  const std::string id = id_of(early);
  is_invitation(b1.next(), id, a, b);
  auto too_soon = s.post(a1.p, "upgradeToMeeting", id, "{}");
  CHECK(too_soon.status == 400);
  CHECK(reason_code_of(too_soon.body) == "INVALID_STATE");
  s.silence("after an upgrade while ringing");
  REQUIRE_200(s.answer(b1.p, id));
  is_status(a1.next(), id, "Connected");
  is_status(a2.next(), id, "Connected");
  auto outside = s.post(a1.p, "upgradeToMeeting", id, R"({"meetingUri":"https://evil.example/x"})");
  CHECK(outside.status == 400);
  CHECK(outside.body.find("meeting-base-uri") != std::string::npos);

  // Rejected.
  REQUIRE_200(s.post(a1.p, "upgradeToMeeting", id, ""));
  std::string uri;
  for (phone* d : {&a2, &b1}) {
    const auto f = d->next();
    is_status(f, id, "UpgradeToMeetingInitiated");
    uri = field(f, "/meetingUri").value_or("");
    CHECK(uri.starts_with("https://meet.example.test/r/"));
    CHECK(uri.size() == std::string("https://meet.example.test/r/").size() + 32);
  }
  CHECK(reason_code_of(s.post(a1.p, "acceptUpgrade", id, R"({"accept":true})").body) == "WRONG_PARTY");
  REQUIRE_200(s.post(b1.p, "acceptUpgrade", id, R"({"accept":false})"));
  for (phone* d : {&a1, &a2, &b1}) is_status(d->next(), id, "UpgradeToMeetingFailed", "rejected");
  CHECK(json_str(s.get_call(a1.p, id).body, "/status") == "Connected");

  // Timed out (--offer-timeout: 2 s, longer under sanitizers).
  REQUIRE_200(s.post(b1.p, "upgradeToMeeting", id, "{}"));
  is_status(a1.next(), id, "UpgradeToMeetingInitiated");
  is_status(a2.next(), id, "UpgradeToMeetingInitiated");
  for (phone* d : {&a1, &a2, &b1}) is_status(d->next(), id, "UpgradeToMeetingFailed", "offer-timeout");
  CHECK(reason_code_of(s.post(a1.p, "acceptUpgrade", id, R"({"accept":true})").body) == "NO_OFFER_PENDING");

  // Accepted, with the offerer's own URI under the base.
  const std::string mine = "https://meet.example.test/r/standup";
  REQUIRE_200(s.post(b1.p, "upgradeToMeeting", id, R"({"meetingUri":")" + mine + R"("})"));
  is_status(a1.next(), id, "UpgradeToMeetingInitiated");
  is_status(a2.next(), id, "UpgradeToMeetingInitiated");
  REQUIRE_200(s.post(a2.p, "acceptUpgrade", id, R"({"accept":true})"));
  for (phone* d : {&a1, &a2, &b1}) {
    is_status(d->next(), id, "UpgradeToMeetingInProgress");
    const auto ok = d->next();
    is_status(ok, id, "UpgradeToMeetingSuccess");
    CHECK(field(ok, "/meetingUri") == mine);
    is_status(d->next(), id, "Terminated", "upgraded");
  }
  auto view = s.get_call(a1.p, id);
  CHECK(json_str(view.body, "/meetingUri") == mine);
  CHECK(json_str(view.body, "/endReason") == "upgraded");
  s.silence("after the upgrade");
  s.validate();
}

TEST_CASE("race: an answer sent as the no-answer forwarding fires: exactly one wins, and the call says which") {
  engine_process eng({"--answer-timeout", "1", "--invite-timeout", "0"});  // the race is the point: not scaled
  http_client c(eng.port());
  const party a = new_party(eng, "a-phone"), t = new_party(eng, "t-phone");
  int answered = 0, forwarded = 0;
  for (int i = 0; i < 12; ++i) {
    const party b = new_party(eng, "b-phone");
    REQUIRE(c.request("PUT", "/settings/" + b.number,
                      R"({"forwarding":{"noAnswer":{"to":")" + t.number + R"(","timeout":300}}})", b.auth())
                .status == 200);
    auto s = c.post("/start", start_body(a.number, b.number, sdp("a")), a.auth());
    REQUIRE(s.status == 200);
    const std::string id = json_str(s.body, "/callId").value_or("");
    // Around the 1 s answer deadline: from 40 ms before it to 37 ms after.
    std::this_thread::sleep_for(std::chrono::milliseconds(960 + 7 * i));
    auto ans = c.post("/connected/" + id, sdp_body(sdp("b")), b.auth());
    auto view = c.get("/calls/" + id, a.auth());
    REQUIRE(view.status == 200);
    INFO("call ", i, ": answer ", ans.status, " ", ans.body, "; call ", view.body);
    const bool diverted = json_has(view.body, "/diversions/0");
    if (ans.status == 200) {
      ++answered;
      CHECK(!diverted);
      CHECK(json_str(view.body, "/status") == "Connected");
      CHECK(json_str(view.body, "/to") == b.number);
    } else {
      ++forwarded;
      CHECK(ans.status == 400);
      CHECK(reason_code_of(ans.body) == "CALL_FORWARDED");
      CHECK(diverted);
      CHECK(json_str(view.body, "/diversions/0/reason") == "no-answer");
      CHECK(!json_has(view.body, "/diversions/1"));
      CHECK(json_str(view.body, "/to") == t.number);
    }
    c.del("/end/" + id, a.auth());
  }
  MESSAGE("answers that won: " << answered << ", forwardings that won: " << forwarded);
  CHECK(answered + forwarded == 12);
}

TEST_CASE("restart safety: an upgrade's offer timer armed before SIGKILL fires once after the restart") {
  engine_process eng({"--offer-timeout", secs(4)});
  const party a = new_party(eng, "a-phone"), b = new_party(eng, "b-phone");
  std::string id;
  {
    http_client c(eng.port());
    auto r = c.post("/start", start_body(a.number, b.number, sdp("a")), a.auth());
    REQUIRE_200(r);
    id = json_str(r.body, "/callId").value_or("");
    REQUIRE_200(c.post("/connected/" + id, sdp_body(sdp("b")), b.auth()));
    REQUIRE_200(c.post("/upgradeToMeeting/" + id, "{}", a.auth()));
  }
  eng.kill9();
  eng.start();
  // Every notification B was owed, replayed from the log (since=0): exactly one Failed.
  auto failed_told = [&] {
    auto ws = listen(eng, b, "?since=0");
    int n = 0;
    for (const auto& f : ws->drain(std::chrono::milliseconds(800)))
      if (frame_status(f) == "UpgradeToMeetingFailed") {
        ++n;
        CHECK(json_str(f, "/sessionStatusNotification/reason") == "offer-timeout");
      }
    return n;
  };
  http_client c(eng.port());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (json_has(c.get("/calls/" + id, a.auth()).body, "/pendingOffer") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto view = c.get("/calls/" + id, a.auth());
  CHECK(!json_has(view.body, "/pendingOffer"));
  CHECK(json_str(view.body, "/status") == "Connected");
  CHECK(failed_told() == 1);
  eng.kill9();
  eng.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(failed_told() == 1);
}

TEST_CASE("not-reachable forwarding by the invite timer: a reachable MT that never makes progress is diverted, "
          "its devices told Forwarded (unavailable)") {
  engine_process eng({"--invite-timeout", secs(4), "--answer-timeout", "0"});
  stage s(eng);
  const std::string a = fresh_msisdn(), b = fresh_msisdn(), t = fresh_msisdn();
  auto& a1 = s.device("a-phone", a);
  auto& b1 = s.device("b-phone", b);
  auto& t1 = s.device("t-phone", t);
  s.warm_up();
  REQUIRE_200(s.put_settings(b1.p, b, R"({"forwarding":{"notReachable":")" + t + R"("}})"));
  const std::string id = id_of(s.start(a1.p, b));
  is_invitation(b1.next(), id, a, b);  // B has a socket: it rings, but B's device says nothing
  const auto fa = a1.next();
  is_status(fa, id, "Forwarded", "unavailable");
  CHECK(field(fa, "/diversionAddress") == "tel:+" + b);
  is_status(b1.next(), id, "Forwarded", "unavailable");
  is_invitation(t1.next(), id, a, t);
  // T makes progress in time: no second diversion (T forwards nowhere).
  REQUIRE_200(s.post(t1.p, "ringing", id));
  is_status(a1.next(), id, "Ringing");
  REQUIRE_200(s.end(a1.p, id));
  is_status(t1.next(), id, "SessionCancelled");
  s.silence("after the invite-timer diversion");
  s.validate();
}
