// Notification flows over WebSocket against the real binary (contract §1, §4, §5), with
// real sockets: who receives which frame at every step of a call, the endings, resuming
// with since= under load, the multi-device answer race, and since= edge cases. Every frame
// received and every REST response is captured and validated with
// tests/schemas/validate/validate.js against schemas/asyncapi.yaml and
// schemas/openapi.yaml (node and `npm ci --prefix tests/schemas/validate` are needed; the
// test FAILS without them, as .ci/install-deps installs both).
//
// No timing assertions: waits are generous (a noisy 2-core machine) and only bound how
// long a test may hang; "nothing arrives" checks are backed by a final drain, where a
// stray frame would show up at the latest.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/api_fixture.hpp"
#include "tests/integration/frame_validation.hpp"
#include "tests/integration/ws_client.hpp"


using namespace integration;
namespace fs = std::filesystem;

namespace {

constexpr auto frame_wait = std::chrono::seconds(20);  // one expected frame
constexpr auto quiet = std::chrono::milliseconds(1000);  // "nothing more comes"

// ---------------------------------------------------------------------------- devices

// One device: a party's number and a token with its own device_id, and its own socket.
struct device {
  std::string name;
  party p;
  std::unique_ptr<ws_client> ws;
  capture* cap = nullptr;

  std::optional<std::string> next(std::chrono::milliseconds t = frame_wait) {
    auto f = ws->next(t);
    if (f) cap->frame(*f);
    return f;
  }
  std::vector<std::string> drain(std::chrono::milliseconds q = quiet) {
    auto v = ws->drain(q);
    for (const auto& f : v) cap->frame(f);
    return v;
  }
};

header_list ws_headers(const party& p) { return p.auth({{"X-Authorization", std::string(no_pop)}}); }


device make_device(const engine_process& eng, capture& cap, std::string name, const std::string& number,
                   std::string_view query = {}, bool connect = true) {
  device d;
  d.name = std::move(name);
  d.p = party{number, eng.token({number}, d.name)};
  d.cap = &cap;
  if (connect) d.ws = listen(eng, d.p, query);
  return d;
}

// REST with capture.
struct rest {
  http_client& c;
  capture& cap;
  response post(const party& p, std::string_view endpoint, std::string_view id, std::string_view body) {
    const std::string target = "/" + std::string(endpoint) + "/" + std::string(id);
    auto r = c.post(target, body, p.auth());
    cap.response("POST", target, r);
    return r;
  }
  response start(const party& from, const std::string& to, std::string_view offer) {
    auto r = c.post("/start", start_body(from.number, to, offer), from.auth());
    cap.response("POST", "/start", r);
    return r;
  }
  response end(const party& p, std::string_view id, std::optional<std::string> reason = std::nullopt) {
    const std::string target = "/end/" + std::string(id);
    header_list extra;
    if (reason) extra.emplace_back("reason", *reason);
    auto r = c.del(target, p.auth(std::move(extra)));
    cap.response("DELETE", target, r);
    return r;
  }
  response get_call(const party& p, std::string_view id) {
    const std::string target = "/calls/" + std::string(id);
    auto r = c.get(target, p.auth());
    cap.response("GET", target, r);
    return r;
  }
};

std::string call_id_from(const response& r) { return json_str(r.body, "/callId").value_or(""); }

// ---------------------------------------------------------------------------- frames

struct want {
  bool invitation = false;
  std::string status;                 // status notifications
  std::optional<std::int64_t> code;   // responseCode, absent when nullopt
  std::optional<std::string> sdp;     // absent when nullopt
  std::optional<std::string> reason;  // absent when nullopt
};

// Checks one frame against what a step should have sent; returns its sequenceNumber.
std::uint64_t check_frame(const std::string& f, const want& w, const std::string& call_id, const std::string& mo,
                          const std::string& mt) {
  INFO("frame: ", f);
  CHECK(json_object_size(f) == std::optional<std::size_t>(1));  // one wrapper key
  const std::string type = w.invitation ? "sessionInvitationNotification" : "sessionStatusNotification";
  REQUIRE(frame_type(f) == type);
  const std::string o = "/" + type;
  CHECK(json_str(f, o + "/callObjectRef") == "/calls/" + call_id);
  CHECK(json_str(f, o + "/receiverAddress") == "tel:+" + mt);
  const auto seq = json_int(f, o + "/notificationReference/sequenceNumber");
  REQUIRE(seq.has_value());
  CHECK(*seq > 0);
  CHECK(json_int(f, o + "/notificationReference/notificationId") == seq);
  CHECK(json_int(f, o + "/notificationReference/epochTime").value_or(0) > 0);
  if (w.invitation) {
    CHECK(json_str(f, o + "/originatorAddress") == "tel:+" + mo);
    CHECK(json_str(f, o + "/verificationStatus") == "TN-Validation-Passed");
    CHECK(json_str(f, o + "/sdp") == w.sdp);
    CHECK_FALSE(json_has(f, o + "/status"));
  } else {
    CHECK(json_str(f, o + "/status") == w.status);
    if (w.code)
      CHECK(json_int(f, o + "/responseCode") == w.code);
    else
      CHECK_FALSE(json_has(f, o + "/responseCode"));
    if (w.sdp)
      CHECK(json_str(f, o + "/sdp") == w.sdp);
    else
      CHECK_FALSE(json_has(f, o + "/sdp"));
    if (w.reason)
      CHECK(json_str(f, o + "/reason") == w.reason);
    else
      CHECK_FALSE(json_has(f, o + "/reason"));
  }
  return static_cast<std::uint64_t>(*seq);
}

// One step of a call: every device in `to` gets exactly the frame `w` (one frame, the
// same sequenceNumber on every socket, above `prev`); the others (the causing device,
// strangers) get nothing. Returns the step's sequenceNumber.
std::uint64_t expect_step(std::string_view step, std::vector<device*> all, const std::set<device*>& to, const want& w,
                          const std::string& call_id, const std::string& mo, const std::string& mt,
                          std::uint64_t prev) {
  std::optional<std::uint64_t> seq;
  for (device* d : all) {
    if (!to.count(d)) continue;
    INFO("step ", step, ": device ", d->name, " should get ", w.invitation ? "the invitation" : w.status);
    auto f = d->next();
    REQUIRE(f.has_value());
    const auto s = check_frame(*f, w, call_id, mo, mt);
    if (seq)
      CHECK(s == *seq);
    else
      seq = s;
    CHECK(s > prev);
  }
  // The frames of one event go out together: by now a stray one has very likely arrived
  // (and if not, the next step or the final drain sees it).
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  for (device* d : all) {
    if (to.count(d)) continue;
    auto f = d->next(std::chrono::milliseconds(1));
    INFO("step ", step, ": device ", d->name, " should get nothing; got ", f.value_or(""));
    CHECK_FALSE(f.has_value());
  }
  for (device* d : all) {
    if (!to.count(d)) continue;
    auto f = d->next(std::chrono::milliseconds(1));
    INFO("step ", step, ": device ", d->name, " should get exactly one frame; another: ", f.value_or(""));
    CHECK_FALSE(f.has_value());
  }
  return seq.value_or(prev);
}

void expect_silence(std::string_view when, std::vector<device*> all) {
  std::this_thread::sleep_for(quiet);
  for (device* d : all) {
    const auto v = d->drain(std::chrono::milliseconds(50));
    INFO(when, ": device ", d->name, " should get nothing more; got ", v.size(), " frame(s): ",
         v.empty() ? std::string() : v.front());
    CHECK(v.empty());
  }
}

// Makes sure each socket is subscribed before the test relies on live delivery: a helper
// party calls each number and cancels; every socket of the number sees the invitation
// (live or, if it subscribed after the /start, as a ringing invitation: either way it is
// subscribed once it has it) and the cancel.
void warm_up(const engine_process& eng, rest& api, std::vector<device*> devices) {
  const std::string helper = fresh_msisdn();
  const party h{helper, eng.token({helper}, "warm-up")};
  std::vector<std::string> numbers;
  for (device* d : devices)
    if (std::find(numbers.begin(), numbers.end(), d->p.number) == numbers.end()) numbers.push_back(d->p.number);
  for (const auto& n : numbers) {
    auto r = api.start(h, n, sdp("warm-up"));
    REQUIRE_200(r);
    const std::string id = call_id_from(r);
    for (device* d : devices) {
      if (d->p.number != n) continue;
      INFO("warm-up invitation to ", d->name);
      auto f = d->next();
      REQUIRE(f.has_value());
      CHECK(frame_type(*f) == "sessionInvitationNotification");
    }
    REQUIRE_200(api.end(h, id));
    for (device* d : devices) {
      if (d->p.number != n) continue;
      INFO("warm-up cancel to ", d->name);
      auto f = d->next();
      REQUIRE(f.has_value());
      CHECK(frame_status(*f) == "SessionCancelled");
    }
  }
}

// The five sockets of the flow tests: MO's two devices, MT's two devices, a stranger.
struct cast {
  capture cap;
  device mo1, mo2, mt1, mt2, x;
  std::vector<device*> all() { return {&mo1, &mo2, &mt1, &mt2, &x}; }
  std::set<device*> but(device* actor) {
    std::set<device*> s{&mo1, &mo2, &mt1, &mt2};
    s.erase(actor);
    return s;
  }
  std::set<device*> mts() { return {&mt1, &mt2}; }
};

void cast_up(cast& k, const engine_process& eng, rest& api) {
  const std::string mo = fresh_msisdn(), mt = fresh_msisdn(), x = fresh_msisdn();
  k.mo1 = make_device(eng, k.cap, "mo-phone", mo);
  k.mo2 = make_device(eng, k.cap, "mo-laptop", mo);
  k.mt1 = make_device(eng, k.cap, "mt-phone", mt);
  k.mt2 = make_device(eng, k.cap, "mt-tablet", mt);
  k.x = make_device(eng, k.cap, "stranger", x);
  warm_up(eng, api, k.all());
}

// ---------------------------------------------------------------------------- raw socket

// What a socket saw until the server closed it (or `limit` passed): its frames and the
// close code of the server's close frame (-1 without one).
struct closed_socket {
  int refused = 0;  // HTTP status of a refused upgrade
  std::vector<std::string> frames;
  int close_code = -1;
  std::string close_reason;
  bool timed_out = false;
};

closed_socket read_until_close(std::uint16_t port, const std::string& target, const header_list& headers,
                               std::chrono::seconds limit = std::chrono::seconds(30)) {
  namespace net = boost::asio;
  namespace beast = boost::beast;
  namespace websocket = beast::websocket;
  closed_socket out;
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::get_lowest_layer(ws).connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  websocket::response_type res;
  beast::error_code ec;
  ws.handshake(res, "127.0.0.1:" + std::to_string(port), target, ec);
  if (ec) {
    out.refused = res.result_int() ? static_cast<int>(res.result_int()) : -1;
    return out;
  }
  beast::flat_buffer buf;
  bool done = false;
  std::function<void()> read = [&] {
    ws.async_read(buf, [&](beast::error_code e, std::size_t) {
      if (e) {
        done = true;
        if (e == websocket::error::closed) {
          out.close_code = static_cast<int>(ws.reason().code);
          out.close_reason = std::string(ws.reason().reason.c_str());
        }
        return;
      }
      out.frames.push_back(beast::buffers_to_string(buf.data()));
      buf.consume(buf.size());
      read();
    });
  };
  read();
  ioc.run_for(limit);
  if (!done) {
    out.timed_out = true;
    beast::get_lowest_layer(ws).socket().close(ec);
  }
  return out;
}

}  // namespace

// ============================================================================ the flow

TEST_CASE("notification flow: every step reaches exactly the right devices, once, with the right fields") {
  engine_process eng;
  http_client c(eng.port());
  cast k;
  rest api{c, k.cap};
  cast_up(k, eng, api);
  const std::string mo = k.mo1.p.number, mt = k.mt1.p.number;
  const auto all = k.all();

  const std::string offer = sdp("offer");
  auto r = api.start(k.mo1.p, mt, offer);
  REQUIRE_200(r);
  const std::string id = call_id_from(r);
  REQUIRE(is_call_id(id));
  // §5: on /start every MT device gets the invitation, nobody else (not MO's other device).
  std::uint64_t seq = expect_step("start", all, k.mts(), want{true, "", {}, offer, {}}, id, mo, mt, 0);

  struct step {
    const char* name;
    device* actor;
    const char* endpoint;
    std::optional<std::string> body_sdp;  // nullopt: body "{}"
    want w;
  };
  const std::string early = sdp("early"), answer = sdp("answer"), hold = sdp("hold"), held = sdp("held"),
                    resume = sdp("resume"), resumed = sdp("resumed"), reneg = sdp("reneg"),
                    reneg_answer = sdp("reneg-answer");
  const std::vector<step> steps = {
      {"inProgress with sdp", &k.mt1, "inProgress", early, want{false, "InProgress", 183, early, {}}},
      {"inProgress without sdp", &k.mt1, "inProgress", std::nullopt, want{false, "InProgress", 180, {}, {}}},
      {"proceeding", &k.mt2, "proceeding", std::nullopt, want{false, "Proceeding", {}, {}, {}}},
      {"ringing", &k.mt1, "ringing", std::nullopt, want{false, "Ringing", 180, {}, {}}},
      {"connected", &k.mt1, "connected", answer, want{false, "Connected", {}, answer, {}}},
      {"hold (MO offers)", &k.mo1, "hold", hold, want{false, "Hold", {}, hold, {}}},
      {"acceptHold (MT answers)", &k.mt1, "acceptHold", held, want{false, "Hold", {}, held, {}}},
      {"resume (MO's other device)", &k.mo2, "resume", resume, want{false, "Resume", {}, resume, {}}},
      {"acceptResume", &k.mt1, "acceptResume", resumed, want{false, "Connected", {}, resumed, {}}},
      {"renegotiate offer (MT)", &k.mt1, "renegotiate", reneg, want{false, "Connected", {}, reneg, {}}},
      {"renegotiate answer (MO)", &k.mo1, "renegotiate", reneg_answer, want{false, "Connected", {}, reneg_answer, {}}},
  };
  for (const auto& s : steps) {
    auto res = api.post(s.actor->p, s.endpoint, id, s.body_sdp ? sdp_body(*s.body_sdp) : std::string("{}"));
    INFO("step ", s.name, ": ", res.status, " ", res.body);
    REQUIRE(res.status == 200);
    seq = expect_step(s.name, all, k.but(s.actor), s.w, id, mo, mt, seq);
  }
  auto view = api.get_call(k.mo1.p, id);
  REQUIRE_200(view);
  CHECK(json_str(view.body, "/status") == "Connected");

  REQUIRE_200(api.end(k.mo2.p, id, "hangup"));
  seq = expect_step("end", all, k.but(&k.mo2), want{false, "Terminated", {}, {}, "hangup"}, id, mo, mt, seq);

  // Requests that change nothing notify nobody: a repeated end (200, no-op) and a
  // rejected one.
  REQUIRE_200(api.end(k.mt1.p, id, "again"));
  CHECK(api.post(k.mt1.p, "hold", id, sdp_body(sdp("late"))).status == 400);
  view = api.get_call(k.mt2.p, id);
  REQUIRE_200(view);
  CHECK(json_str(view.body, "/status") == "Terminated");
  expect_silence("after the end", all);
  validate_captured(k.cap, eng.root());
}

TEST_CASE("notification flow: the endings of §4 reach the right devices with the reason") {
  engine_process eng;
  http_client c(eng.port());
  cast k;
  rest api{c, k.cap};
  cast_up(k, eng, api);
  const std::string mo = k.mo1.p.number, mt = k.mt1.p.number;
  const auto all = k.all();

  // A call rung on both MT devices; returns its id and the last sequenceNumber.
  auto ringing_call = [&](std::string_view tag) {
    const std::string offer = sdp(tag);
    auto r = api.start(k.mo1.p, mt, offer);
    REQUIRE_200(r);
    const std::string id = call_id_from(r);
    auto s = expect_step("start", all, k.mts(), want{true, "", {}, offer, {}}, id, mo, mt, 0);
    REQUIRE_200(api.post(k.mt1.p, "ringing", id, "{}"));
    s = expect_step("ringing", all, k.but(&k.mt1), want{false, "Ringing", 180, {}, {}}, id, mo, mt, s);
    return std::pair{id, s};
  };

  {  // MO ends before Connected: SessionCancelled, the MT devices stop ringing
    auto [id, s] = ringing_call("cancel");
    REQUIRE_200(api.end(k.mo1.p, id, "changed-mind"));
    expect_step("cancel", all, k.but(&k.mo1), want{false, "SessionCancelled", {}, {}, "changed-mind"}, id, mo, mt, s);
  }
  {  // the same without a reason header: no reason field
    auto [id, s] = ringing_call("cancel-2");
    REQUIRE_200(api.end(k.mo2.p, id));
    expect_step("cancel without reason", all, k.but(&k.mo2), want{false, "SessionCancelled", {}, {}, {}}, id, mo, mt,
                s);
  }
  {  // MT ends before Connected with reason busy: Busy, to MO and the other MT device
    auto [id, s] = ringing_call("busy");
    REQUIRE_200(api.end(k.mt1.p, id, "busy"));
    expect_step("busy", all, k.but(&k.mt1), want{false, "Busy", {}, {}, "busy"}, id, mo, mt, s);
  }
  {  // MT ends before Connected with another reason: Declined, to MO and the other MT device
    auto [id, s] = ringing_call("decline");
    REQUIRE_200(api.end(k.mt2.p, id, "rejected"));
    expect_step("decline", all, k.but(&k.mt2), want{false, "Declined", {}, {}, "rejected"}, id, mo, mt, s);
  }
  {  // MT ends a Connected call: Terminated
    auto [id, s] = ringing_call("terminate");
    const std::string answer = sdp("answer");
    REQUIRE_200(api.post(k.mt1.p, "connected", id, sdp_body(answer)));
    s = expect_step("connected", all, k.but(&k.mt1), want{false, "Connected", {}, answer, {}}, id, mo, mt, s);
    REQUIRE_200(api.end(k.mt1.p, id, "bye"));
    expect_step("terminate by MT", all, k.but(&k.mt1), want{false, "Terminated", {}, {}, "bye"}, id, mo, mt, s);
  }
  {  // MO ends a call on Hold: Terminated
    auto [id, s] = ringing_call("terminate-held");
    const std::string answer = sdp("answer"), hold = sdp("hold"), held = sdp("held");
    REQUIRE_200(api.post(k.mt2.p, "connected", id, sdp_body(answer)));
    s = expect_step("connected", all, k.but(&k.mt2), want{false, "Connected", {}, answer, {}}, id, mo, mt, s);
    REQUIRE_200(api.post(k.mt2.p, "hold", id, sdp_body(hold)));
    s = expect_step("hold (MT offers)", all, k.but(&k.mt2), want{false, "Hold", {}, hold, {}}, id, mo, mt, s);
    REQUIRE_200(api.post(k.mo1.p, "acceptHold", id, sdp_body(held)));
    s = expect_step("acceptHold (MO)", all, k.but(&k.mo1), want{false, "Hold", {}, held, {}}, id, mo, mt, s);
    REQUIRE_200(api.end(k.mo1.p, id, "bye"));
    expect_step("terminate by MO", all, k.but(&k.mo1), want{false, "Terminated", {}, {}, "bye"}, id, mo, mt, s);
  }
  expect_silence("after the ending", all);
  validate_captured(k.cap, eng.root());
}

// ============================================================================ since= under load

TEST_CASE("notification flow: resuming with since mid-call while events keep coming loses and repeats nothing") {
  engine_process eng({"--rate-limit", "0", "--rate-limit-sub", "0", "--max-connections-per-ip", "0"});
  http_client c(eng.port());
  capture cap;
  rest api{c, cap};
  const std::string a = fresh_msisdn(), b = fresh_msisdn();
  device ref = make_device(eng, cap, "a-ref", a);    // stays connected the whole time
  device roam = make_device(eng, cap, "a-roam", a);  // drops and resumes with since=
  const party a_main{a, eng.token({a}, "a-main")}, a_writer{a, eng.token({a}, "a-writer")},
      b_dev{b, eng.token({b}, "b-phone")};
  warm_up(eng, api, {&ref, &roam});

  std::vector<std::string> ref_frames, roam_frames;
  auto pump_ref = [&](std::size_t more) {  // read `more` further frames from the reference socket
    for (std::size_t i = 0; i < more; ++i) {
      auto f = ref.next(std::chrono::seconds(30));
      REQUIRE(f.has_value());
      ref_frames.push_back(*f);
    }
  };

  // The writer: calls A→B and B→A, one after the other, each through many transitions.
  std::atomic<bool> stop{false};
  std::atomic<int> writer_events{0};
  std::string writer_error;
  std::thread writer([&] {
    try {
      http_client w(eng.port());
      auto must = [&](const response& r, std::string_view what) {
        if (r.status != 200) throw std::runtime_error(std::string(what) + ": " + std::to_string(r.status) + " " + r.body);
        writer_events.fetch_add(1);
      };
      auto post = [&](const party& p, std::string_view ep, const std::string& id, std::string_view body) {
        must(w.post("/" + std::string(ep) + "/" + id, body, p.auth()), ep);
      };
      for (int n = 0; !stop.load(); ++n) {
        auto r = w.post("/start", start_body(a, b, sdp("w-offer")), a_writer.auth());
        must(r, "start A->B");
        std::string id = call_id_from(r);
        post(b_dev, "ringing", id, "{}");
        post(b_dev, "connected", id, sdp_body(sdp("w-answer")));
        post(a_writer, "hold", id, sdp_body(sdp("w-hold")));
        post(b_dev, "acceptHold", id, sdp_body(sdp("w-held")));
        post(a_writer, "resume", id, sdp_body(sdp("w-resume")));
        post(b_dev, "acceptResume", id, sdp_body(sdp("w-resumed")));
        post(b_dev, "renegotiate", id, sdp_body(sdp("w-reneg")));
        post(a_writer, "renegotiate", id, sdp_body(sdp("w-reneg-answer")));
        must(w.del("/end/" + id, b_dev.auth({{"reason", "w-bye"}})), "end");
        r = w.post("/start", start_body(b, a, sdp("w-offer-2")), b_dev.auth());
        must(r, "start B->A");
        id = call_id_from(r);
        post(a_writer, "inProgress", id, sdp_body(sdp("w-early")));
        post(a_writer, "ringing", id, "{}");
        must(w.del("/end/" + id, a_writer.auth({{"reason", "busy"}})), "end busy");
      }
    } catch (const std::exception& e) {
      writer_error = e.what();
    }
  });
  struct joiner {
    std::thread& t;
    std::atomic<bool>& stop;
    ~joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join_writer{writer, stop};

  // The busy call of the main thread.
  auto r = api.start(a_main, b, sdp("main-offer"));
  REQUIRE_200(r);
  const std::string id = call_id_from(r);
  REQUIRE_200(api.post(b_dev, "ringing", id, "{}"));
  REQUIRE_200(api.post(b_dev, "connected", id, sdp_body(sdp("main-answer"))));

  // The roaming device reads a while, drops, and comes back with since= three times, in
  // the middle of the main call, each time after missing at least 20 frames, and with the
  // main call and the writer going on while its replay is read.
  auto roam_read = [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      auto f = roam.next(std::chrono::seconds(30));
      REQUIRE(f.has_value());
      roam_frames.push_back(*f);
    }
  };
  auto ref_past = [&](std::uint64_t since, std::size_t k) {  // until the reference socket has k frames after since
    auto after = [&] {
      return static_cast<std::size_t>(std::count_if(ref_frames.begin(), ref_frames.end(),
                                                    [&](const std::string& f) { return frame_seq(f) > since; }));
    };
    while (after() < k) pump_ref(1);
  };
  struct away_step {
    const party* who;
    const char* endpoint;
    const char* tag;
  };
  const std::vector<std::vector<away_step>> while_away = {
      {{&a_main, "hold", "main-hold"}, {&b_dev, "acceptHold", "main-held"}},
      {{&b_dev, "acceptResume", "main-resumed"}},
      {{&a_main, "renegotiate", "main-reneg-answer"}},
  };
  const std::vector<std::vector<away_step>> on_return = {
      {{&a_main, "resume", "main-resume"}},
      {{&b_dev, "renegotiate", "main-reneg"}},
      {},
  };
  roam_read(25);
  std::vector<std::uint64_t> resumed_after;
  for (std::size_t cycle = 0; cycle < while_away.size(); ++cycle) {
    CAPTURE(cycle);
    const std::uint64_t since = frame_seq(roam_frames.back());
    REQUIRE(since > 0);
    resumed_after.push_back(since);
    roam.ws.reset();
    for (const auto& st : while_away[cycle]) REQUIRE_200(api.post(*st.who, st.endpoint, id, sdp_body(sdp(st.tag))));
    ref_past(since, 20);
    roam.ws = listen(eng, roam.p, "?since=" + std::to_string(since));
    for (const auto& st : on_return[cycle]) REQUIRE_200(api.post(*st.who, st.endpoint, id, sdp_body(sdp(st.tag))));
    roam_read(25);
  }
  pump_ref(10);
  stop = true;
  writer.join();
  if (!writer_error.empty()) FAIL("the writer thread failed: ", writer_error);
  REQUIRE_200(api.end(a_main, id, "main-bye"));

  // Everything that is left, from both sockets.
  for (auto& f : ref.drain(std::chrono::milliseconds(2000))) ref_frames.push_back(f);
  for (auto& f : roam.drain(std::chrono::milliseconds(2000))) roam_frames.push_back(f);
  MESSAGE("writer made ", writer_events.load(), " events; the reference socket saw ", ref_frames.size(),
          " frames; the roaming one ", roam_frames.size(), ", resuming after ", resumed_after[0], ", ",
          resumed_after[1], " and ", resumed_after[2]);
  REQUIRE(!roam_frames.empty());
  CHECK(frame_status(roam_frames.back()) == "Terminated");  // the main call's end, by a-main: A's other devices see it
  CHECK(json_str(roam_frames.back(), "/sessionStatusNotification/reason") == "main-bye");

  auto seqs = [](const std::vector<std::string>& v) {
    std::vector<std::uint64_t> s;
    for (const auto& f : v) s.push_back(frame_seq(f));
    return s;
  };
  auto increasing = [](const std::vector<std::uint64_t>& s) {
    for (std::size_t i = 1; i < s.size(); ++i)
      if (s[i] <= s[i - 1]) return false;
    return true;
  };
  CHECK(increasing(seqs(ref_frames)));
  CHECK(increasing(seqs(roam_frames)));
  // Both read the warm-up in warm_up(); from there on, the roaming socket's frames across
  // its four connections are exactly the reference socket's: no gap, no duplicate, byte
  // for byte.
  CHECK(seqs(roam_frames) == seqs(ref_frames));
  CHECK(roam_frames == ref_frames);
  validate_captured(cap, eng.root());
}

// ============================================================================ answer race

TEST_CASE("notification flow: two MT devices race /connected; one wins, the loser and MO see Connected") {
  engine_process eng;
  http_client c(eng.port());
  cast k;
  rest api{c, k.cap};
  cast_up(k, eng, api);
  const std::string mo = k.mo1.p.number, mt = k.mt1.p.number;
  const auto all = k.all();

  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    const std::string offer = sdp("race-offer");
    auto r = api.start(k.mo1.p, mt, offer);
    REQUIRE_200(r);
    const std::string id = call_id_from(r);
    auto s = expect_step("start", all, k.mts(), want{true, "", {}, offer, {}}, id, mo, mt, 0);
    REQUIRE_200(api.post(k.mt1.p, "ringing", id, "{}"));
    s = expect_step("ringing", all, k.but(&k.mt1), want{false, "Ringing", 180, {}, {}}, id, mo, mt, s);

    // Both answer at once, each on its own connection.
    const std::string ans1 = sdp("answer-phone"), ans2 = sdp("answer-tablet");
    response res1, res2;
    std::string err1, err2;
    std::latch go(2);
    auto answer = [&](device& d, const std::string& ans, response& out, std::string& err) {
      std::optional<http_client> own;
      try {
        own.emplace(eng.port());
        (void)own->get("/healthz");  // connected before the start line
      } catch (const std::exception& e) {
        err = e.what();
        own.reset();
      }
      const std::string target = "/connected/" + id;
      const std::string body = sdp_body(ans);
      const header_list h = d.p.auth();
      go.arrive_and_wait();
      if (!own) return;
      try {
        out = own->post(target, body, h);
        k.cap.response("POST", target, out);
      } catch (const std::exception& e) {
        err = e.what();
      }
    };
    std::thread t1([&] { answer(k.mt1, ans1, res1, err1); });
    std::thread t2([&] { answer(k.mt2, ans2, res2, err2); });
    t1.join();
    t2.join();
    INFO("mt-phone: ", res1.status, " ", res1.body, " ", err1);
    INFO("mt-tablet: ", res2.status, " ", res2.body, " ", err2);
    REQUIRE(err1.empty());
    REQUIRE(err2.empty());
    REQUIRE(((res1.status == 200) != (res2.status == 200)));  // exactly one wins
    const bool phone_won = res1.status == 200;
    device& winner = phone_won ? k.mt1 : k.mt2;
    const response& lost = phone_won ? res2 : res1;
    CHECK_ERROR(lost, 400, "INVALID_STATE");
    const std::string& win_sdp = phone_won ? ans1 : ans2;
    MESSAGE("round ", round, ": ", winner.name, " answered first");
    s = expect_step("race", all, k.but(&winner), want{false, "Connected", {}, win_sdp, {}}, id, mo, mt, s);

    // A later answer, from either device, is refused and notifies nobody.
    CHECK_ERROR(api.post(k.mt1.p, "connected", id, sdp_body(sdp("late-1"))), 400, "INVALID_STATE");
    CHECK_ERROR(api.post(k.mt2.p, "connected", id, sdp_body(sdp("late-2"))), 400, "INVALID_STATE");
    auto view = api.get_call(k.mo1.p, id);
    REQUIRE_200(view);
    CHECK(json_str(view.body, "/status") == "Connected");
    CHECK(json_str(view.body, "/sdp/to") == win_sdp);
    expect_silence("after the late answers", all);

    REQUIRE_200(api.end(k.mo1.p, id, "bye"));
    expect_step("end", all, k.but(&k.mo1), want{false, "Terminated", {}, {}, "bye"}, id, mo, mt, s);
  }
  expect_silence("after the races", all);
  validate_captured(k.cap, eng.root());
}

// ============================================================================ since= edges

TEST_CASE("notification flow: since=0 replays everything, since beyond the log replays nothing, too far back is refused") {
  engine_process eng({"--max-replay-events", "20", "--rate-limit", "0", "--rate-limit-sub", "0", "--max-connections-per-ip", "0"});
  http_client c(eng.port());
  capture cap;
  rest api{c, cap};
  const std::string a = fresh_msisdn(), b = fresh_msisdn();
  const party a1{a, eng.token({a}, "a-phone")}, b1{b, eng.token({b}, "b-phone")};
  // since=0 from the start: no subscription race, every event of A from here on.
  device ref = make_device(eng, cap, "a-ref", a, "?since=0");

  // Noise on other numbers must not show up.
  {
    const std::string n = fresh_msisdn();
    const party other{n, eng.token({n}, "other")};
    auto r = api.start(other, fresh_msisdn(), sdp("noise"));
    REQUIRE_200(r);
    REQUIRE_200(api.end(other, call_id_from(r)));
  }
  // 8 events of A. Call 1, A → B: start (invitation to B only), ringing, connected, end by
  // A's phone, then a rejected hold (notifies nobody).
  auto r = api.start(a1, b, sdp("c1"));
  REQUIRE_200(r);
  const std::string c1 = call_id_from(r);
  REQUIRE_200(api.post(b1, "ringing", c1, "{}"));
  REQUIRE_200(api.post(b1, "connected", c1, sdp_body(sdp("c1-answer"))));
  REQUIRE_200(api.end(a1, c1, "bye"));
  CHECK_ERROR(api.post(a1, "hold", c1, sdp_body(sdp("late"))), 400, "CALL_ENDED");
  // Call 2, B → A: invitation to A, inProgress by A's phone, cancelled by B.
  r = api.start(b1, a, sdp("c2"));
  REQUIRE_200(r);
  const std::string c2 = call_id_from(r);
  REQUIRE_200(api.post(a1, "inProgress", c2, "{}"));
  REQUIRE_200(api.end(b1, c2));

  std::vector<std::string> ref_frames;
  for (const char* what : {"Ringing", "Connected", "Terminated", "invitation", "InProgress", "SessionCancelled"}) {
    INFO("reference socket waits for ", what);
    auto f = ref.next();
    REQUIRE(f.has_value());
    CHECK((frame_status(*f) == what ||
           (std::string_view(what) == "invitation" && frame_type(*f) == "sessionInvitationNotification")));
    ref_frames.push_back(*f);
  }
  CHECK(ref.drain().empty());

  {  // since=0 on a fresh socket: everything of the number, in order, byte for byte
    device fresh = make_device(eng, cap, "a-laptop", a, "?since=0");
    CHECK(fresh.drain() == ref_frames);
    // The device that caused some of them gets all the others.
    device own = make_device(eng, cap, "a-phone", a, "?since=0");
    std::vector<std::string> others;
    for (const auto& f : ref_frames)
      if (frame_status(f) != "Terminated" && frame_status(f) != "InProgress") others.push_back(f);
    CHECK(own.drain() == others);
  }

  {  // since beyond the current position: nothing old (not even a ringing invitation), then live
    r = api.start(b1, a, sdp("c3"));  // 2 more events of A (10)
    REQUIRE_200(r);
    const std::string c3 = call_id_from(r);
    auto inv = ref.next();
    REQUIRE(inv.has_value());
    CHECK(frame_type(*inv) == "sessionInvitationNotification");
    ref_frames.push_back(*inv);
    const std::uint64_t now = frame_seq(*inv);
    device late = make_device(eng, cap, "a-watch", a);  // no since: the ringing invitation
    auto li = late.next();
    REQUIRE(li.has_value());
    CHECK(*li == *inv);
    device future = make_device(eng, cap, "a-tv", a, "?since=" + std::to_string(now + 1000));
    CHECK(future.drain().empty());
    CHECK(late.drain().empty());
    REQUIRE_200(api.end(b1, c3, "gone"));
    auto live = future.next();
    REQUIRE(live.has_value());
    CHECK(frame_status(*live) == "SessionCancelled");
    CHECK(frame_seq(*live) > now);
    auto f = ref.next();
    REQUIRE(f.has_value());
    CHECK(*f == *live);
    ref_frames.push_back(*f);
    auto lf = late.next();
    REQUIRE(lf.has_value());
    CHECK(*lf == *live);
  }

  {  // since further back than --max-replay-events (20) is refused with a policy close
    const std::uint64_t mark = frame_seq(ref_frames.back());
    // 9 more calls A → B, started and cancelled by A's phone: 18 more events of A (28).
    std::vector<std::string> cancels;
    for (int i = 0; i < 9; ++i) {
      r = api.start(a1, b, sdp("more"));
      REQUIRE_200(r);
      REQUIRE_200(api.end(a1, call_id_from(r)));
      auto f = ref.next();
      REQUIRE(f.has_value());
      CHECK(frame_status(*f) == "SessionCancelled");
      cancels.push_back(*f);
    }
    const auto far = read_until_close(eng.port(), "/notifications?since=0", ws_headers(a1));
    for (const auto& f : far.frames) cap.frame(f);
    CHECK(far.refused == 0);  // the upgrade succeeds; the replay is refused on the socket
    CHECK(far.frames.empty());
    CHECK_FALSE(far.timed_out);
    CHECK(far.close_code == 1008);  // policy violation
    CHECK(!far.close_reason.empty());
    MESSAGE("too far back: close ", far.close_code, " \"", far.close_reason, "\"");
    // Within the limit (18 events after the mark): replayed.
    device near = make_device(eng, cap, "a-desk", a, "?since=" + std::to_string(mark));
    CHECK(near.drain() == cancels);
  }
  CHECK(ref.drain().empty());
  validate_captured(cap, eng.root());
}
