// The finer rules of contract §1 over HTTP: early states in any order, either party
// holds, renegotiation while held, first MT device to answer wins (also when racing),
// idempotent /start under concurrency, the 64 KiB SDP limit on its own.
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>

#include "tests/integration/api_fixture.hpp"

using namespace integration;

namespace {

std::optional<std::string> opt(std::string s) { return s; }

}  // namespace

TEST_CASE("flow: early states follow each other in any order and repeat, never back to Initial") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const test_call t = make_call(eng, c, "Initial");
  const std::pair<const char*, const char*> steps[] = {
      {"ringing", "Ringing"},       {"inProgress", "InProgress"}, {"ringing", "Ringing"},
      {"ringing", "Ringing"},       {"proceeding", "Proceeding"}, {"inProgress", "InProgress"},
      {"inProgress", "InProgress"}, {"proceeding", "Proceeding"}, {"ringing", "Ringing"},
  };
  for (const auto& [ep, want] : steps) {
    CAPTURE(ep);
    CHECK_EMPTY_OK(t.post(t.mt, ep, "{}"));
    CHECK(t.status() == want);
  }
  CHECK_EMPTY_OK(t.post(t.mt, "connected", sdp_body(sdp("answer"))));
  CHECK(t.status() == "Connected");
}

TEST_CASE("flow: the called party holds; only the holder resumes") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const test_call t = make_call(eng, c, "Connected");
  CHECK_EMPTY_OK(t.post(t.mt, "hold", sdp_body(sdp("mtHold"))));
  std::string v = t.view();
  CHECK(json_str(v, "/pendingOffer/by") == opt(t.mt.number));
  CHECK(json_str(v, "/pendingOffer/role") == opt("MT"));
  CHECK(json_str(v, "/pendingOffer/kind") == opt("hold"));
  CHECK_ERROR(t.post(t.mt, "acceptHold", sdp_body(sdp())), 400, "WRONG_PARTY");  // the offerer cannot accept
  CHECK_EMPTY_OK(t.post(t.mo, "acceptHold", sdp_body(sdp("moHeld"))));
  v = t.view();
  CHECK(json_str(v, "/status") == opt("Hold"));
  CHECK(json_str(v, "/heldBy") == opt(t.mt.number));
  CHECK_ERROR(t.post(t.mo, "resume", sdp_body(sdp())), 400, "WRONG_PARTY");
  CHECK_EMPTY_OK(t.post(t.mt, "resume", sdp_body(sdp("mtResume"))));
  CHECK_ERROR(t.post(t.mt, "acceptResume", sdp_body(sdp())), 400, "WRONG_PARTY");
  CHECK_EMPTY_OK(t.post(t.mo, "acceptResume", sdp_body(sdp("moResumed"))));
  v = t.view();
  CHECK(json_str(v, "/status") == opt("Connected"));
  CHECK(!json_has(v, "/heldBy"));
}

TEST_CASE("flow: renegotiation while held keeps the call on Hold") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const test_call t = make_call(eng, c, "Hold(MO)");
  const std::string offer = sdp("mtRenegHeld");
  CHECK_EMPTY_OK(t.post(t.mt, "renegotiate", sdp_body(offer)));
  std::string v = t.view();
  CHECK(json_str(v, "/status") == opt("Hold"));
  CHECK(json_str(v, "/pendingOffer/kind") == opt("renegotiate"));
  CHECK(json_str(v, "/pendingOffer/by") == opt(t.mt.number));
  CHECK(json_str(v, "/sdp/to") == opt(offer));
  // The holder cannot resume while another offer is pending.
  CHECK_ERROR(t.post(t.mo, "resume", sdp_body(sdp())), 400, "OFFER_PENDING");
  CHECK_EMPTY_OK(t.post(t.mo, "renegotiate", sdp_body(sdp("moAnswerHeld"))));
  v = t.view();
  CHECK(json_str(v, "/status") == opt("Hold"));
  CHECK(json_str(v, "/heldBy") == opt(t.mo.number));
  CHECK(!json_has(v, "/pendingOffer"));
  CHECK_EMPTY_OK(t.post(t.mo, "resume", sdp_body(sdp("resume"))));
}

TEST_CASE("flow: first MT device to answer wins") {
  auto& eng = shared_engine();
  http_client c(eng.port());

  SUBCASE("one after the other") {
    const test_call t = make_call(eng, c, "Ringing");
    const party phone{t.mt.number, eng.token({t.mt.number}, "mt-phone")};
    const party laptop{t.mt.number, eng.token({t.mt.number}, "mt-laptop")};
    CHECK_EMPTY_OK(t.post(phone, "connected", sdp_body(sdp("phone"))));
    CHECK_ERROR(t.post(laptop, "connected", sdp_body(sdp("laptop"))), 400, "INVALID_STATE");
    CHECK(json_str(t.view(), "/sdp/to") == opt(sdp("phone")));
    // Any device of the party may act on the call afterwards (e.g. hang up).
    CHECK_EMPTY_OK(t.end(laptop));
    CHECK(t.status() == "Terminated");
  }
  SUBCASE("racing: exactly one answer is accepted") {
    for (int round = 0; round < 5; ++round) {
      const test_call t = make_call(eng, c, "Ringing");
      constexpr int devices = 6;
      std::vector<party> devs;
      for (int d = 0; d < devices; ++d)
        devs.push_back(party{t.mt.number, eng.token({t.mt.number}, "mt-dev-" + std::to_string(d))});
      std::atomic<int> ok{0}, invalid_state{0}, other{0};
      std::atomic<bool> go{false};
      std::vector<std::thread> pool;
      for (int d = 0; d < devices; ++d) {
        pool.emplace_back([&, d] {
          http_client own(eng.port());
          (void)own.get("/healthz");  // connect before the race
          while (!go.load()) std::this_thread::yield();
          auto r = own.post("/connected/" + t.id, sdp_body(sdp("dev" + std::to_string(d))), devs[d].auth());
          if (r.status == 200)
            ++ok;
          else if (reason_code_of(r.body) == "INVALID_STATE")
            ++invalid_state;
          else
            ++other;
        });
      }
      go = true;
      for (auto& th : pool) th.join();
      CAPTURE(round);
      CHECK(ok.load() == 1);
      CHECK(invalid_state.load() == devices - 1);
      CHECK(other.load() == 0);
      CHECK(t.status() == "Connected");
    }
  }
}

TEST_CASE("flow: concurrent repeats of one /start create one call") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  const double active0 = active_calls(c);
  constexpr int threads = 8;
  std::vector<std::string> ids(threads);
  std::vector<int> statuses(threads);
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      http_client own(eng.port());
      (void)own.get("/healthz");
      while (!go.load()) std::this_thread::yield();
      auto r = own.post("/start", start_body(mo.number, mt.number, sdp(), "corr-race"), mo.auth());
      statuses[i] = r.status;
      ids[i] = json_str(r.body, "/callId").value_or("");
    });
  }
  go = true;
  for (auto& th : pool) th.join();
  for (int i = 0; i < threads; ++i) {
    CAPTURE(i);
    CHECK(statuses[i] == 200);
    CHECK(ids[i] == ids[0]);
  }
  CHECK(!ids[0].empty());
  CHECK(active_calls(c) == active0 + 1);
}

TEST_CASE("flow: an SDP over 64 KiB is INVALID_SDP even when the body limit allows it") {
  engine_process eng({"--max-body-bytes", "262144"});
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  std::string s = sdp("limit");
  const std::string filler = "a=x:" + std::string(65536 - s.size() - 6, 'z') + "\r\n";
  std::string exact = s + filler;
  REQUIRE(exact.size() == 65536);
  auto ok = c.post("/start", start_body(mo.number, mt.number, exact), mo.auth());
  CHECK_200(ok);
  std::string over = exact;
  over.insert(over.size() - 2, "z");
  REQUIRE(over.size() == 65537);
  CHECK_ERROR(c.post("/start", start_body(mo.number, mt.number, over), mo.auth()), 400, "INVALID_SDP");
  const std::string id = json_str(ok.body, "/callId").value_or("");
  CHECK_ERROR(c.post("/connected/" + id, sdp_body(over), mt.auth()), 400, "INVALID_SDP");
  CHECK_EMPTY_OK(c.post("/connected/" + id, sdp_body(exact), mt.auth()));
}

TEST_CASE("flow: glare: two offers at once, exactly one wins, the other is OFFER_PENDING") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  for (int round = 0; round < 6; ++round) {
    CAPTURE(round);
    const test_call t = make_call(eng, c, "Connected");
    // MO holds while MT renegotiates (rounds alternate which offer each side makes).
    const char* mo_ep = round % 2 ? "renegotiate" : "hold";
    const char* mt_ep = round % 2 ? "hold" : "renegotiate";
    response mo_r, mt_r;
    std::atomic<bool> go{false};
    std::thread a([&] {
      http_client own(eng.port());
      (void)own.get("/healthz");
      while (!go.load()) std::this_thread::yield();
      mo_r = own.post("/" + std::string(mo_ep) + "/" + t.id, sdp_body(sdp("moGlare")), t.mo.auth());
    });
    std::thread b([&] {
      http_client own(eng.port());
      (void)own.get("/healthz");
      while (!go.load()) std::this_thread::yield();
      mt_r = own.post("/" + std::string(mt_ep) + "/" + t.id, sdp_body(sdp("mtGlare")), t.mt.auth());
    });
    go = true;
    a.join();
    b.join();
    INFO("MO ", mo_ep, ": ", mo_r.status, " ", mo_r.body, "; MT ", mt_ep, ": ", mt_r.status, " ", mt_r.body);
    CHECK((mo_r.status == 200) != (mt_r.status == 200));
    const response& loser = mo_r.status == 200 ? mt_r : mo_r;
    CHECK_ERROR(loser, 400, "OFFER_PENDING");
    const std::string v = t.view();
    const party& winner = mo_r.status == 200 ? t.mo : t.mt;
    CHECK(json_str(v, "/pendingOffer/by") == opt(winner.number));
  }
}
