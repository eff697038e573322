// The call caps of contract §3a (issue 14, point 9) on the real binary: at most
// --max-calls-per-number calls not ended from one number (a further /start is 429
// TOO_MANY_CALLS), and a /start to a number that already has --max-ringing-per-number
// calls ringing ends at once Busy, reason too-many-calls, told to the caller only: the
// callee gets no invitation, live, on connecting later, or on replay. The counts come
// back from the log after a restart; 0 turns a cap off.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "tests/integration/api_fixture.hpp"
#include "tests/integration/ws_client.hpp"

using namespace integration;

namespace {



response start(http_client& c, const party& from, const party& to, std::optional<std::string> corr = std::nullopt) {
  return c.post("/start", start_body(from.number, to.number, sdp("offer"), std::move(corr)), from.auth());
}

std::string start_ok(http_client& c, const party& from, const party& to) {
  auto r = start(c, from, to);
  INFO("/start ", from.number, " -> ", to.number, ": ", r.status, " ", r.body);
  REQUIRE(r.status == 200);
  return json_str(r.body, "/callId").value_or("");
}

double capped(http_client& c, std::string_view cap) {
  auto m = c.get("/metrics");
  REQUIRE(m.status == 200);
  return metric_value(m.body, "yna_calls_capped_total{cap=\"" + std::string(cap) + "\"}").value_or(-1);
}

// Frames of `frames` about call `id`.
std::size_t about(const std::vector<std::string>& frames, const std::string& id) {
  return static_cast<std::size_t>(
      std::count_if(frames.begin(), frames.end(), [&](const std::string& f) { return call_id_of(f) == id; }));
}
std::size_t invitations(const std::vector<std::string>& frames) {
  return static_cast<std::size_t>(std::count_if(frames.begin(), frames.end(), [](const std::string& f) {
    return frame_type(f) == "sessionInvitationNotification";
  }));
}

// The next frame about `id` within a few seconds (others are skipped); "" when none came.
std::string frame_about(ws_client& w, const std::string& id) {
  for (int i = 0; i < 100; ++i) {
    auto f = w.next(std::chrono::seconds(5));
    if (!f) return {};
    if (call_id_of(*f) == id) return *f;
  }
  return {};
}

// Flags of the engine of the small-caps test: timers off, so no call ends by itself.
const std::vector<std::string> small_caps{"--max-calls-per-number", "5", "--max-ringing-per-number", "3",
                                          "--invite-timeout",       "0", "--answer-timeout",         "0",
                                          "--rate-limit", "0", "--rate-limit-sub", "0"};

}  // namespace

TEST_CASE("call caps: --max-calls-per-number 5: the 6th call not ended from one number is 429 TOO_MANY_CALLS; "
          "ending one frees a slot; the count survives a restart") {
  engine_process eng(small_caps);
  http_client c(eng.port());
  const party a = new_party(eng, "a-phone");
  std::vector<party> callees;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    callees.push_back(new_party(eng, "callee"));
    ids.push_back(start_ok(c, a, callees.back()));
  }
  callees.push_back(new_party(eng, "callee"));
  const party& sixth = callees.back();
  const auto refused = start(c, a, sixth);
  CHECK_ERROR(refused, 429, "TOO_MANY_CALLS");
  CHECK(json_str(refused.body, "/errors/0/systemMessage").value_or("").find(a.number) != std::string::npos);
  CHECK(!json_has(refused.body, "/callId"));
  CHECK(capped(c, "calls_per_number") == 1);
  // Another caller is not affected, and an answered call still counts.
  const party b = new_party(eng, "b-phone");
  start_ok(c, b, sixth);
  test_call answered{&c, a, callees[0], ids[0]};
  REQUIRE(answered.post(callees[0], "connected", sdp_body(sdp("answer"))).status == 200);
  CHECK_ERROR(start(c, a, sixth), 429, "TOO_MANY_CALLS");
  // Ending one (the callee declines it) frees exactly one slot.
  test_call declined{&c, a, callees[1], ids[1]};
  REQUIRE(declined.end(callees[1]).status == 200);
  ids[1] = start_ok(c, a, sixth);
  CHECK_ERROR(start(c, a, sixth), 429, "TOO_MANY_CALLS");
  CHECK(capped(c, "calls_per_number") == 3);

  // After a restart the table is recovered from the log's persisted calls: still 5.
  eng.restart();
  c.set_port(eng.port());
  CHECK_ERROR(start(c, a, new_party(eng, "callee")), 429, "TOO_MANY_CALLS");
  REQUIRE(answered.end(a).status == 200);
  start_ok(c, a, new_party(eng, "callee"));
  CHECK_ERROR(start(c, a, new_party(eng, "callee")), 429, "TOO_MANY_CALLS");
}

TEST_CASE("call caps: --max-ringing-per-number 3: the 4th call ringing one number ends Busy (too-many-calls), "
          "told to every device of the caller only; the callee is never invited to it") {
  engine_process eng(small_caps);
  http_client c(eng.port());
  const party v = new_party(eng, "v-phone");
  auto v_live = listen(eng, v);
  std::vector<party> callers;
  std::vector<std::string> ringing;
  for (int i = 0; i < 3; ++i) {
    callers.push_back(new_party(eng, "caller"));
    ringing.push_back(start_ok(c, callers.back(), v));
  }
  for (const auto& id : ringing) CHECK(frame_type(frame_about(*v_live, id)) == "sessionInvitationNotification");

  // The 4th caller, with the requesting device and a second device listening.
  const party d = new_party(eng, "d-phone");
  const party d_tablet{d.number, eng.token({d.number}, "d-tablet")};
  auto d_phone_ws = listen(eng, d);
  auto d_tablet_ws = listen(eng, d_tablet);
  const auto r = start(c, d, v, "corr-d");
  INFO("capped /start: ", r.status, " ", r.body);
  REQUIRE(r.status == 200);  // accepted: the call exists, and ended at once
  const std::string capped_id = json_str(r.body, "/callId").value_or("");
  REQUIRE(is_call_id(capped_id));
  std::string busy_frame;
  for (auto* w : {d_phone_ws.get(), d_tablet_ws.get()}) {  // the requesting device too: the engine caused it
    const std::string f = frame_about(*w, capped_id);
    INFO("frame: ", f);
    CHECK(frame_type(f) == "sessionStatusNotification");
    CHECK(frame_status(f) == "Busy");
    CHECK(json_str(f, "/sessionStatusNotification/reason") == std::optional<std::string>("too-many-calls"));
    CHECK(!json_has(f, "/sessionStatusNotification/sdp"));
    busy_frame = f;
  }
  CHECK(about(v_live->drain(), capped_id) == 0);  // the callee: nothing
  const test_call capped_call{&c, d, v, capped_id};
  const std::string view = capped_call.view();
  CHECK(json_str(view, "/status") == std::optional<std::string>("Busy"));
  CHECK(json_str(view, "/endReason") == std::optional<std::string>("too-many-calls"));
  CHECK_ERROR(capped_call.post(v, "ringing", "{}"), 400, "CALL_ENDED");
  CHECK(capped(c, "ringing_per_number") == 1);
  CHECK(capped(c, "calls_per_number") == 0);
  // Its idempotent repeat answers the same call, and creates nothing.
  const auto again = start(c, d, v, "corr-d");
  CHECK(again.status == 200);
  CHECK(json_str(again.body, "/callId") == std::optional<std::string>(capped_id));

  // A callee device connecting now is sent the 3 calls still ringing it, not the capped one.
  const party v_tablet{v.number, eng.token({v.number}, "v-tablet")};
  {
    auto late = listen(eng, v_tablet);
    const auto frames = late->drain(std::chrono::milliseconds(500));
    CHECK(invitations(frames) == 3);
    CHECK(about(frames, capped_id) == 0);
    for (const auto& id : ringing) CHECK(about(frames, id) == 1);
  }
  // Replay (?since=0) agrees with live delivery: the caller gets the same Busy frame, the
  // callee nothing about the capped call.
  {
    auto replay_d = listen(eng, d, "?since=0");
    const auto frames = replay_d->drain(std::chrono::milliseconds(500));
    REQUIRE(about(frames, capped_id) == 1);
    CHECK(*std::find_if(frames.begin(), frames.end(), [&](const auto& f) { return call_id_of(f) == capped_id; }) ==
          busy_frame);
    auto replay_v = listen(eng, v_tablet, "?since=0");
    const auto v_frames = replay_v->drain(std::chrono::milliseconds(500));
    CHECK(invitations(v_frames) == 3);
    CHECK(about(v_frames, capped_id) == 0);
  }

  // The callee answers one: it stops ringing, and the next call rings it.
  REQUIRE(c.post("/connected/" + ringing[0], sdp_body(sdp("answer")), v.auth()).status == 200);
  const party e = new_party(eng, "e-phone");
  const std::string rings = start_ok(c, e, v);
  CHECK(frame_type(frame_about(*v_live, rings)) == "sessionInvitationNotification");
  const party f = new_party(eng, "f-phone");
  auto f_ws = listen(eng, f);
  const std::string busy_again = start_ok(c, f, v);
  CHECK(frame_status(frame_about(*f_ws, busy_again)) == "Busy");
  CHECK(about(v_live->drain(), busy_again) == 0);

  // After a restart the 3 ringing calls come back from the log: a 4th still ends Busy,
  // and a callee device connecting is still sent exactly those 3.
  v_live.reset();
  eng.restart();
  c.set_port(eng.port());
  const party g = new_party(eng, "g-phone");
  auto g_ws = listen(eng, g);
  const std::string after_restart = start_ok(c, g, v);
  const std::string gf = frame_about(*g_ws, after_restart);
  CHECK(frame_status(gf) == "Busy");
  CHECK(json_str(gf, "/sessionStatusNotification/reason") == std::optional<std::string>("too-many-calls"));
  auto v_again = listen(eng, v);
  const auto frames = v_again->drain(std::chrono::milliseconds(500));
  CHECK(invitations(frames) == 3);
  CHECK(about(frames, ringing[1]) == 1);
  CHECK(about(frames, ringing[2]) == 1);
  CHECK(about(frames, rings) == 1);
  CHECK(about(frames, after_restart) == 0);
  CHECK(about(frames, busy_again) == 0);
  CHECK(about(frames, capped_id) == 0);
}

TEST_CASE("call caps: 0 turns them off: 120 calls from one number, 40 ringing one number, all invited") {
  engine_process eng({"--max-calls-per-number", "0", "--max-ringing-per-number", "0", "--rate-limit", "0", "--rate-limit-sub", "0", "--max-connections-per-ip", "0"});
  http_client c(eng.port());
  const party a = new_party(eng, "a-phone");
  const party v = new_party(eng, "v-phone");
  auto v_ws = listen(eng, v);
  for (int i = 0; i < 80; ++i) start_ok(c, a, new_party(eng, "callee"));
  for (int i = 0; i < 40; ++i) start_ok(c, a, v);
  std::size_t invited = 0;
  for (int i = 0; i < 40; ++i) {
    auto f = v_ws->next(std::chrono::seconds(10));
    if (!f) break;
    invited += frame_type(*f) == "sessionInvitationNotification";
  }
  CHECK(invited == 40);
  CHECK(capped(c, "calls_per_number") == 0);
  CHECK(capped(c, "ringing_per_number") == 0);
}

TEST_CASE("call caps: with the defaults, 2,000 /starts to one number from many callers give the callee 32 "
          "invitations, not 2,000; the 101st call from one number is refused") {
  // The caps at their defaults (--max-calls-per-number 100, --max-ringing-per-number 32);
  // timers off, so that no ringing call ends by itself on a slow machine.
  engine_process eng({"--invite-timeout", "0", "--answer-timeout", "0"});
  http_client c(eng.port());
  const party v = new_party(eng, "v-phone");
  auto v_ws = listen(eng, v);
  const int total = scaled(2000, 200);
  constexpr int threads = 8, callers_per_thread = 25;  // 200 callers, 10 calls each (2,000 unscaled)
  const int per_caller = std::max(1, total / (threads * callers_per_thread));
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      http_client own(eng.port());
      std::vector<party> mine;
      for (int k = 0; k < callers_per_thread; ++k) mine.push_back(new_party(eng, "caller"));
      for (int n = 0; n < per_caller; ++n)
        for (const auto& p : mine) (start(own, p, v).status == 200 ? ok : failed)++;
    });
  for (auto& th : pool) th.join();
  const int sent = threads * callers_per_thread * per_caller;
  CHECK(failed.load() == 0);
  CHECK(ok.load() == sent);
  const auto live = v_ws->drain(std::chrono::milliseconds(1000));
  CHECK(invitations(live) == 32);
  CHECK(live.size() == 32);
  CHECK(capped(c, "ringing_per_number") == sent - 32);
  {
    auto late = listen(eng, v);  // connecting afterwards: the 32 calls still ringing
    CHECK(invitations(late->drain(std::chrono::milliseconds(1000))) == 32);
  }

  const party a = new_party(eng, "a-phone");
  for (int i = 0; i < 100; ++i) start_ok(c, a, new_party(eng, "callee"));
  CHECK_ERROR(start(c, a, new_party(eng, "callee")), 429, "TOO_MANY_CALLS");
  CHECK(capped(c, "calls_per_number") == 1);
}
