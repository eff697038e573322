// The API over real HTTP on the real binary: success paths of every endpoint, GET
// /calls after each step (contract §1, §3), idempotent /start, DELETE /end twice, every
// ending a party causes (§4), x-transaction-id (§2), health/metrics (§1), restart.
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>

#include "tests/integration/api_fixture.hpp"

using namespace integration;

namespace {

std::optional<std::string> opt(std::string s) { return s; }
const std::optional<std::string> none;

std::string get_view(http_client& c, const party& p, const std::string& id) {
  auto r = c.get("/calls/" + id, p.auth());
  INFO("GET /calls/", id, ": ", r.status, " ", r.body);
  REQUIRE(r.status == 200);
  CHECK(r.content_type().rfind("application/json", 0) == 0);
  return r.body;
}

}  // namespace

TEST_CASE("api: a call through every endpoint, checked with GET /calls after each step") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng, "mo-dev");
  const party mt = new_party(eng, "mt-dev");
  const std::string offer = sdp("moOffer");

  // A leading '+' is accepted and dropped.
  auto r = c.post("/start", start_body("+" + mo.number, "+" + mt.number, offer, "corr-lifecycle"), mo.auth());
  REQUIRE_200(r);
  CHECK(r.content_type().rfind("application/json", 0) == 0);
  CHECK(json_str(r.body, "/from") == opt(mo.number));
  CHECK(json_str(r.body, "/to") == opt(mt.number));
  CHECK(json_str(r.body, "/clientCorrelator") == opt("corr-lifecycle"));
  const std::string id = json_str(r.body, "/callId").value_or("");
  CAPTURE(id);
  CHECK(is_call_id(id));

  std::string v = get_view(c, mo, id);
  CHECK(json_str(v, "/callId") == opt(id));
  CHECK(json_str(v, "/from") == opt(mo.number));
  CHECK(json_str(v, "/to") == opt(mt.number));
  CHECK(json_str(v, "/status") == opt("Initial"));
  CHECK(json_str(v, "/callObjectRef") == opt("/calls/" + id));
  const auto created = json_int(v, "/createdAt");
  REQUIRE(created.has_value());
  CHECK(*created > 1'600'000'000'000);  // epoch ms
  CHECK(!json_has(v, "/connectedAt"));
  CHECK(!json_has(v, "/endedAt"));
  CHECK(!json_has(v, "/endReason"));
  CHECK(!json_has(v, "/pendingOffer"));
  CHECK(!json_has(v, "/heldBy"));
  CHECK(json_str(v, "/sdp/from") == opt(offer));
  CHECK(!json_has(v, "/sdp/to"));
  // The called party may read it too, and sees the same call.
  CHECK(json_str(get_view(c, mt, id), "/status") == opt("Initial"));

  auto act = [&](const party& p, std::string_view ep, std::string_view body) {
    auto res = c.post("/" + std::string(ep) + "/" + id, body, p.auth());
    INFO("POST /", ep, " -> ", res.status, " ", res.body);
    CHECK_EMPTY_OK(res);
    return get_view(c, mo, id);
  };

  const std::string early = sdp("mtEarly");
  v = act(mt, "inProgress", sdp_body(early));
  CHECK(json_str(v, "/status") == opt("InProgress"));
  CHECK(json_str(v, "/sdp/to") == opt(early));

  v = act(mt, "proceeding", "{}");
  CHECK(json_str(v, "/status") == opt("Proceeding"));

  v = act(mt, "ringing", "{}");
  CHECK(json_str(v, "/status") == opt("Ringing"));
  CHECK(!json_has(v, "/connectedAt"));

  const std::string answer = sdp("mtAnswer");
  v = act(mt, "connected", sdp_body(answer));
  CHECK(json_str(v, "/status") == opt("Connected"));
  const auto connected = json_int(v, "/connectedAt");
  REQUIRE(connected.has_value());
  CHECK(*connected >= *created);
  CHECK(json_str(v, "/sdp/to") == opt(answer));
  CHECK(json_str(v, "/sdp/from") == opt(offer));
  CHECK(!json_has(v, "/endedAt"));

  const std::string hold_offer = sdp("moHold");
  v = act(mo, "hold", sdp_body(hold_offer));
  CHECK(json_str(v, "/status") == opt("Connected"));
  CHECK(json_str(v, "/pendingOffer/by") == opt(mo.number));
  CHECK(json_str(v, "/pendingOffer/role") == opt("MO"));
  CHECK(json_str(v, "/pendingOffer/kind") == opt("hold"));
  CHECK(json_str(v, "/sdp/from") == opt(hold_offer));
  CHECK(!json_has(v, "/heldBy"));

  const std::string hold_answer = sdp("mtHeld");
  v = act(mt, "acceptHold", sdp_body(hold_answer));
  CHECK(json_str(v, "/status") == opt("Hold"));
  CHECK(!json_has(v, "/pendingOffer"));
  CHECK(json_str(v, "/heldBy") == opt(mo.number));
  CHECK(json_str(v, "/sdp/to") == opt(hold_answer));

  v = act(mo, "resume", sdp_body(sdp("moResume")));
  CHECK(json_str(v, "/status") == opt("Hold"));
  CHECK(json_str(v, "/pendingOffer/by") == opt(mo.number));
  CHECK(json_str(v, "/pendingOffer/role") == opt("MO"));
  CHECK(json_str(v, "/pendingOffer/kind") == opt("resume"));
  CHECK(json_str(v, "/heldBy") == opt(mo.number));

  v = act(mt, "acceptResume", sdp_body(sdp("mtResumed")));
  CHECK(json_str(v, "/status") == opt("Connected"));
  CHECK(!json_has(v, "/pendingOffer"));
  CHECK(!json_has(v, "/heldBy"));
  CHECK(json_int(v, "/connectedAt") == connected);  // resuming does not re-connect

  const std::string reneg_offer = sdp("mtReneg");
  v = act(mt, "renegotiate", sdp_body(reneg_offer));
  CHECK(json_str(v, "/status") == opt("Connected"));
  CHECK(json_str(v, "/pendingOffer/by") == opt(mt.number));
  CHECK(json_str(v, "/pendingOffer/role") == opt("MT"));
  CHECK(json_str(v, "/pendingOffer/kind") == opt("renegotiate"));
  CHECK(json_str(v, "/sdp/to") == opt(reneg_offer));

  const std::string reneg_answer = sdp("moRenegAnswer");
  v = act(mo, "renegotiate", sdp_body(reneg_answer));
  CHECK(json_str(v, "/status") == opt("Connected"));
  CHECK(!json_has(v, "/pendingOffer"));
  CHECK(json_str(v, "/sdp/from") == opt(reneg_answer));

  auto e = c.del("/end/" + id, mo.auth({{"reason", "bye"}, {"conference", "conf-7"}}));
  CHECK_EMPTY_OK(e);
  v = get_view(c, mo, id);
  CHECK(json_str(v, "/status") == opt("Terminated"));
  CHECK(json_str(v, "/endReason") == opt("bye"));
  const auto ended = json_int(v, "/endedAt");
  REQUIRE(ended.has_value());
  CHECK(*ended >= *connected);
  CHECK(json_int(v, "/connectedAt") == connected);
  CHECK(!json_has(v, "/pendingOffer"));

  SUBCASE("DELETE /end again: 200, nothing changes") {
    CHECK_EMPTY_OK(c.del("/end/" + id, mt.auth({{"reason", "again"}})));
    CHECK_EMPTY_OK(c.del("/end/" + id, mo.auth()));
    CHECK(get_view(c, mo, id) == v);
  }
}

TEST_CASE("api: /start answers a CallStartResponse") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);

  SUBCASE("no clientCorrelator: none in the answer, and each start is a new call") {
    auto a = c.post("/start", start_body(mo.number, mt.number, sdp()), mo.auth());
    auto b = c.post("/start", start_body(mo.number, mt.number, sdp()), mo.auth());
    REQUIRE_200(a);
    REQUIRE_200(b);
    CHECK(!json_has(a.body, "/clientCorrelator"));
    CHECK(json_str(a.body, "/callId") != json_str(b.body, "/callId"));
    CHECK(is_call_id(json_str(a.body, "/callId").value_or("")));
    CHECK(is_call_id(json_str(b.body, "/callId").value_or("")));
  }
  SUBCASE("unknown JSON fields are ignored") {
    auto body = start_body(mo.number, mt.number, sdp());
    body.insert(1, R"("extra":{"nested":[1,2,3]},"priority":7,)");
    CHECK_200(c.post("/start", body, mo.auth()));
  }
  SUBCASE("6 and 15 digit numbers are valid") {
    const std::string n = fresh_msisdn();
    const std::string six = n.substr(n.size() - 6), fifteen = "9999" + n;
    const std::string tok = eng.token({six, fifteen});
    auto a = c.post("/start", start_body(six, mt.number, sdp()), bearer(tok));
    CHECK_200(a);
    CHECK(json_str(a.body, "/from") == opt(six));
    auto b = c.post("/start", start_body("+" + fifteen, six, sdp()), bearer(tok));
    CHECK_200(b);
    CHECK(json_str(b.body, "/from") == opt(fifteen));
    CHECK(json_str(b.body, "/to") == opt(six));
  }
  SUBCASE("a clientCorrelator of 256 printable characters is accepted") {
    const std::string corr(256, 'k');
    auto a = c.post("/start", start_body(mo.number, mt.number, sdp(), corr), mo.auth());
    CHECK_200(a);
    CHECK(json_str(a.body, "/clientCorrelator") == opt(corr));
  }
  SUBCASE("a token owning several numbers may call from any of them") {
    const std::string other = fresh_msisdn();
    const std::string tok = eng.token({mo.number, other});
    CHECK_200(c.post("/start", start_body(other, mt.number, sdp()), bearer(tok)));
  }
}

TEST_CASE("api: /start is idempotent on from + clientCorrelator") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  const party mt2 = new_party(eng);

  const double active0 = active_calls(c);
  auto first = c.post("/start", start_body(mo.number, mt.number, sdp("a"), "corr-idem"), mo.auth());
  REQUIRE_200(first);
  const auto id = json_str(first.body, "/callId");
  REQUIRE(id.has_value());
  CHECK(active_calls(c) == active0 + 1);

  SUBCASE("the same request again: the first call's answer, nothing created") {
    auto again = c.post("/start", start_body(mo.number, mt.number, sdp("a"), "corr-idem"), mo.auth());
    CHECK_200(again);
    CHECK(json_str(again.body, "/callId") == id);
    CHECK(json_str(again.body, "/from") == opt(mo.number));
    CHECK(json_str(again.body, "/to") == opt(mt.number));
    CHECK(json_str(again.body, "/clientCorrelator") == opt("corr-idem"));
    CHECK(active_calls(c) == active0 + 1);
  }
  SUBCASE("same from and clientCorrelator with another to and sdp: still the first call") {
    auto again = c.post("/start", start_body("+" + mo.number, mt2.number, sdp("b"), "corr-idem"), mo.auth());
    CHECK_200(again);
    CHECK(json_str(again.body, "/callId") == id);
    CHECK(json_str(again.body, "/to") == opt(mt.number));
    CHECK(active_calls(c) == active0 + 1);
  }
  SUBCASE("the repeat does not reset the call") {
    REQUIRE_200(c.post("/ringing/" + *id, "{}", mt.auth()));
    CHECK_200(c.post("/start", start_body(mo.number, mt.number, sdp("a"), "corr-idem"), mo.auth()));
    CHECK(json_str(get_view(c, mo, *id), "/status") == opt("Ringing"));
  }
  SUBCASE("another clientCorrelator: a new call") {
    auto other = c.post("/start", start_body(mo.number, mt.number, sdp("a"), "corr-idem-2"), mo.auth());
    CHECK_200(other);
    CHECK(json_str(other.body, "/callId") != id);
    CHECK(active_calls(c) == active0 + 2);
  }
  SUBCASE("the same clientCorrelator from another number: a new call") {
    auto other = c.post("/start", start_body(mt2.number, mt.number, sdp("a"), "corr-idem"), mt2.auth());
    CHECK_200(other);
    CHECK(json_str(other.body, "/callId") != id);
    CHECK(active_calls(c) == active0 + 2);
  }
}

TEST_CASE("api: every ending a party causes (contract §4)") {
  auto& eng = shared_engine();
  http_client c(eng.port());

  struct ending {
    const char* state;
    bool by_mo;
    std::optional<std::string> reason;
    const char* want;
  };
  const ending cases[] = {
      {"Initial", true, std::nullopt, "SessionCancelled"},
      {"InProgress", true, std::nullopt, "SessionCancelled"},
      {"Ringing", true, std::string("busy"), "SessionCancelled"},  // `busy` only means Busy from MT
      {"Proceeding", false, std::string("busy"), "Busy"},
      {"Ringing", false, std::string("busy"), "Busy"},
      {"Initial", false, std::string("not-now"), "Declined"},
      {"Ringing", false, std::string("user-declined"), "Declined"},
      {"Ringing", false, std::nullopt, "Declined"},
      {"Connected", true, std::string("bye"), "Terminated"},
      {"Connected", false, std::string("bye"), "Terminated"},
      {"Connected+hold(MO)", false, std::nullopt, "Terminated"},
      {"Hold(MO)", true, std::nullopt, "Terminated"},
      {"Hold(MO)", false, std::string("hangup"), "Terminated"},
      {"Hold+resume(MO)", false, std::nullopt, "Terminated"},
  };
  for (const auto& k : cases) {
    CAPTURE(k.state);
    CAPTURE(k.by_mo);
    CAPTURE(k.want);
    const test_call t = make_call(eng, c, k.state);
    header_list h;
    if (k.reason) h.emplace_back("reason", *k.reason);
    CHECK_EMPTY_OK(t.end(k.by_mo ? t.mo : t.mt, h));
    const std::string v = t.view();
    CHECK(json_str(v, "/status") == opt(k.want));
    CHECK(json_has(v, "/endedAt"));
    CHECK(!json_has(v, "/pendingOffer"));
    CHECK(!json_has(v, "/heldBy"));
    if (k.reason) CHECK(json_str(v, "/endReason") == k.reason);
    const bool was_connected = std::string_view(k.want) == "Terminated";
    CHECK(json_has(v, "/connectedAt") == was_connected);
    // DELETE is idempotent: a second end (by either party) changes nothing.
    CHECK_EMPTY_OK(t.end(t.mo, {{"reason", "second"}}));
    CHECK_EMPTY_OK(t.end(t.mt, {{"reason", "busy"}}));
    CHECK(t.view() == v);
  }
}

TEST_CASE("api: x-transaction-id is echoed when it is a GUID, made when absent") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  const std::string guid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

  SUBCASE("echoed on success") {
    auto r = c.post("/start", start_body(mo.number, mt.number, sdp()), mo.auth({{"x-transaction-id", guid}}));
    CHECK_200(r);
    CHECK(r.header("x-transaction-id") == opt(guid));
    const auto id = json_str(r.body, "/callId").value_or("");
    auto g = c.get("/calls/" + id, mo.auth({{"x-transaction-id", guid}}));
    CHECK(g.header("x-transaction-id") == opt(guid));
  }
  SUBCASE("echoed on errors") {
    auto r401 = c.post("/start", "{}", {{"x-transaction-id", guid}});
    CHECK(r401.status == 401);
    CHECK(r401.header("x-transaction-id") == opt(guid));
    auto r404 = c.post("/ringing/" + unknown_call_id(), "{}", mt.auth({{"x-transaction-id", guid}}));
    CHECK(r404.status == 404);
    CHECK(r404.header("x-transaction-id") == opt(guid));
    auto r400 = c.post("/start", "{", mo.auth({{"x-transaction-id", guid}}));
    CHECK(r400.status == 400);
    CHECK(r400.header("x-transaction-id") == opt(guid));
    auto r405 = c.get("/start", mo.auth({{"x-transaction-id", guid}}));
    CHECK(r405.status == 405);
    CHECK(r405.header("x-transaction-id") == opt(guid));
    auto r404p = c.get("/no/such/path", {{"x-transaction-id", guid}});
    CHECK(r404p.status == 404);
    CHECK(r404p.header("x-transaction-id") == opt(guid));
    auto r403 = c.post("/start", start_body(mt.number, mo.number, sdp()), mo.auth({{"x-transaction-id", guid}}));
    CHECK(r403.status == 403);
    CHECK(r403.header("x-transaction-id") == opt(guid));
  }
  SUBCASE("upper-case GUID echoed as sent") {
    const std::string upper = "3F2504E0-4F89-41D3-9A0C-0305E82C3301";
    auto r = c.post("/start", start_body(mo.number, mt.number, sdp()), mo.auth({{"x-transaction-id", upper}}));
    CHECK_200(r);
    CHECK(r.header("x-transaction-id") == opt(upper));
  }
  SUBCASE("absent: every response carries a fresh GUID") {
    auto a = c.post("/start", start_body(mo.number, mt.number, sdp()), mo.auth());
    auto b = c.post("/start", "{", mo.auth());
    auto h = c.get("/healthz");
    auto n = c.get("/no/such/path");
    auto w = c.get("/start", mo.auth());
    auto big = c.post("/start", std::string(70000, ' '), mo.auth());
    CHECK(w.status == 405);
    CHECK(big.status == 413);
    for (const response* r : {&a, &b, &h, &n, &w, &big}) {
      const auto t = r->header("x-transaction-id");
      INFO("status ", r->status, " x-transaction-id: ", t.value_or("<absent>"));
      CHECK(t.has_value());
      CHECK(is_guid(t.value_or("")));
    }
    CHECK(a.header("x-transaction-id") != b.header("x-transaction-id"));
  }
  SUBCASE("not a GUID: 400 INVALID_TRANSACTION_ID, answered with a made-up GUID") {
    auto r = c.post("/start", start_body(mo.number, mt.number, sdp()), mo.auth({{"x-transaction-id", "not-a-guid"}}));
    CHECK_ERROR(r, 400, "INVALID_TRANSACTION_ID");
    CHECK(is_guid(r.header("x-transaction-id").value_or("")));
    const test_call t = make_call(eng, c, "Ringing");
    auto g = c.get("/calls/" + t.id, t.mo.auth({{"x-transaction-id", "1234"}}));
    CHECK_ERROR(g, 400, "INVALID_TRANSACTION_ID");
    auto e = t.end(t.mo, {{"x-transaction-id", "3f2504e0-4f89-41d3-9a0c-0305e82c330"}});  // one digit short
    CHECK_ERROR(e, 400, "INVALID_TRANSACTION_ID");
    CHECK(t.status() == "Ringing");  // rejected: nothing changed
  }
}

TEST_CASE("api: /healthz, /readyz and /metrics need no token and show no call data") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const test_call t = make_call(eng, c, "Ringing");
  (void)c.post("/start", "{}", {});  // one 401, so that status appears in the counters

  auto h = c.get("/healthz");
  CHECK(h.status == 200);
  auto rd = c.get("/readyz");
  CHECK(rd.status == 200);

  auto m = c.get("/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.content_type().rfind("text/plain", 0) == 0);
  const std::string& text = m.body;
  for (const char* s : {"# TYPE yna_http_requests_total counter", "# TYPE yna_commit_batch_events histogram",
                        "# TYPE yna_log_sync_seconds histogram", "# TYPE yna_active_calls gauge"}) {
    CAPTURE(s);
    CHECK(text.find(s) != std::string::npos);
  }
  CHECK(metric_value(text, "yna_active_calls").has_value());
  CHECK(metric_value(text, "yna_commit_batch_events_bucket{le=\"1\"}").has_value());
  CHECK(metric_value(text, "yna_commit_batch_events_bucket{le=\"+Inf\"}").has_value());
  CHECK(metric_value(text, "yna_commit_batch_events_count").value_or(0) >= 1);
  CHECK(metric_value(text, "yna_commit_batch_events_sum").value_or(0) >= 1);
  CHECK(metric_value(text, "yna_log_sync_seconds_bucket{le=\"+Inf\"}").has_value());
  CHECK(metric_value(text, "yna_log_sync_seconds_count").value_or(0) >= 1);
  CHECK(metric_value(text, "yna_log_sync_seconds_sum").has_value());
  CHECK(metric_sum(text, "yna_http_requests_total", {"endpoint=\"start\"", "status=\"200\""}).value_or(0) >= 1);
  CHECK(metric_sum(text, "yna_http_requests_total", {"endpoint=\"ringing\"", "status=\"200\""}).value_or(0) >= 1);
  CHECK(metric_sum(text, "yna_http_requests_total", {"endpoint=\"start\"", "status=\"401\""}).value_or(0) >= 1);
  // No call data: neither the call's id nor its numbers.
  CHECK(text.find(t.id) == std::string::npos);
  CHECK(text.find(t.mo.number) == std::string::npos);
  CHECK(text.find(t.mt.number) == std::string::npos);

  SUBCASE("the request counter counts each answered request once") {
    const double before =
        metric_sum(text, "yna_http_requests_total", {"endpoint=\"ringing\"", "status=\"200\""}).value_or(0);
    REQUIRE_200(t.post(t.mt, "ringing", "{}"));
    auto m2 = c.get("/metrics");
    CHECK(metric_sum(m2.body, "yna_http_requests_total", {"endpoint=\"ringing\"", "status=\"200\""}).value_or(0) ==
          before + 1);
  }
}

TEST_CASE("api: base path and --max-body-bytes flags") {
  engine_process eng({"--base-path", "/v1", "--max-body-bytes", "2048"});
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  auto r = c.post("/v1/start", start_body(mo.number, mt.number, sdp()), mo.auth());
  REQUIRE_200(r);
  const std::string id = json_str(r.body, "/callId").value_or("");
  CHECK_EMPTY_OK(c.post("/v1/ringing/" + id, "{}", mt.auth()));
  auto v = c.get("/v1/calls/" + id, mo.auth());
  CHECK_200(v);
  CHECK(json_str(v.body, "/status") == opt("Ringing"));
  CHECK(json_str(v.body, "/callObjectRef") == opt("/v1/calls/" + id));
  CHECK_ERROR(c.post("/start", start_body(mo.number, mt.number, sdp()), mo.auth()), 404, "NOT_FOUND");
  CHECK_ERROR(c.post("/ringing/" + id, "{}", mt.auth()), 404, "NOT_FOUND");
  CHECK(c.get("/v1/healthz").status == 200);

  // The body limit follows the flag: 2048 bytes pass the size check, 2049 do not.
  std::string body = start_body(mo.number, mt.number, sdp(), "");
  const std::string pad(2048 - body.size(), 'p');
  body = start_body(mo.number, mt.number, sdp(), pad);
  REQUIRE(body.size() == 2048);
  CHECK(c.post("/v1/start", body, mo.auth()).status != 413);
  body = start_body(mo.number, mt.number, sdp(), pad + "p");
  CHECK_ERROR(c.post("/v1/start", body, mo.auth()), 413, "BODY_TOO_LARGE");
}

namespace {

void survives_restart(std::vector<std::string> flags) {
  engine_process eng(std::move(flags));
  http_client c(eng.port());
  const test_call held = make_call(eng, c, "Hold(MO)");
  const test_call offering = make_call(eng, c, "Connected+hold(MO)");
  const test_call ringing = make_call(eng, c, "Ringing");
  const test_call ended = make_call(eng, c, "Ringing");
  REQUIRE_200(ended.end(ended.mt, {{"reason", "not-now"}}));
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  auto s = c.post("/start", start_body(mo.number, mt.number, sdp(), "corr-restart"), mo.auth());
  REQUIRE_200(s);

  const std::string v_held = held.view(), v_offering = offering.view(), v_ringing = ringing.view(),
                    v_ended = ended.view();
  const double active = active_calls(c);
  CHECK(active == 4);

  (void)eng.stop();  // clean-exit status is checked by its own test below
  eng.start();
  c.set_port(eng.port());

  CHECK(held.view() == v_held);
  CHECK(offering.view() == v_offering);
  CHECK(ringing.view() == v_ringing);
  CHECK(ended.view() == v_ended);
  CHECK(json_str(ended.view(), "/status") == opt("Declined"));
  CHECK(active_calls(c) == active);

  // Tokens minted before the restart still work, and the calls go on where they were.
  CHECK_EMPTY_OK(offering.post(offering.mt, "acceptHold", sdp_body(sdp("held2"))));
  CHECK(offering.status() == "Hold");
  CHECK_EMPTY_OK(held.post(held.mo, "resume", sdp_body(sdp("resume2"))));
  CHECK_EMPTY_OK(ringing.post(ringing.mt, "connected", sdp_body(sdp("answer2"))));
  CHECK(ringing.status() == "Connected");
  // The idempotency key survives too.
  auto again = c.post("/start", start_body(mo.number, mt.number, sdp(), "corr-restart"), mo.auth());
  CHECK_200(again);
  CHECK(json_str(again.body, "/callId") == json_str(s.body, "/callId"));

  // A second restart, after more events, folds to the same state again.
  const std::string v2_held = held.view(), v2_offering = offering.view(), v2_ringing = ringing.view();
  (void)eng.stop();
  eng.start();
  c.set_port(eng.port());
  CHECK(held.view() == v2_held);
  CHECK(offering.view() == v2_offering);
  CHECK(ringing.view() == v2_ringing);
  CHECK(ended.view() == v_ended);
}

}  // namespace

TEST_CASE("api: calls survive SIGTERM and a restart on the same data folder") { survives_restart({}); }

TEST_CASE("api: restart with ended calls retired from memory (--call-retention 0): they still answer") {
  survives_restart({"--call-retention", "0"});
}

// Regression: SIGTERM used to kill the process (status
// "killed by signal 15") instead of stopping it: the signal is blocked only after the
// reactor, RocksDB and I/O threads exist, so one of them receives it with the default action.
TEST_CASE("engine: SIGTERM stops it cleanly (exit code 0)") {
  engine_process eng;
  http_client c(eng.port());
  (void)make_call(eng, c, "Ringing");
  const exit_status st = eng.stop(20s);
  INFO("yna-engine ", st.describe(), "\n--- stderr tail ---\n", eng.stderr_tail());
  CHECK(st.clean());
}

// Regression: main() could destroy the server while the signal thread was still inside
// server::stop() (run() returns as soon as the I/O threads see the work end): a data race
// on the work guards, and Asio signalling destroyed io_contexts. One shutdown in a dozen
// or so showed it under ThreadSanitizer (exit 66); a clean exit every time is the check.
TEST_CASE("engine: SIGTERM stops it cleanly every time (the server outlives a stop() in progress)") {
  engine_process eng({}, false);
  for (int i = 0; i < 10; ++i) {
    eng.start();
    {
      http_client c(eng.port());
      CHECK(c.get("/healthz").status == 200);
    }
    const exit_status st = eng.stop(20s);
    INFO("shutdown ", i, ": yna-engine ", st.describe(), "\n--- stderr tail ---\n", eng.stderr_tail());
    REQUIRE(st.clean());
  }
}

// Regression: a 413 used to answer with a made-up
// x-transaction-id even when the request sent a valid GUID.
TEST_CASE("api: x-transaction-id is echoed on 413 too (every response carries it back)") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const std::string guid = "3f2504e0-4f89-41d3-9a0c-0305e82c3302";
  auto r = c.post("/start", std::string(70000, ' '), mo.auth({{"x-transaction-id", guid}}));
  CHECK(r.status == 413);
  CHECK(r.header("x-transaction-id") == opt(guid));
}

TEST_CASE("api: unauthenticated requests are logged (bounded, never the token) and not stored") {
  engine_process eng;
  http_client c(eng.port());
  const std::string secret = "not.a-real.token-SECRET123";
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 30; ++i) CHECK(c.post("/start", "{}", bearer(secret)).status == 401);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count();
  const std::string log = eng.stderr_tail(400);
  std::size_t lines = 0;
  for (std::size_t p = log.find("401 on start"); p != std::string::npos; p = log.find("401 on start", p + 1)) ++lines;
  CHECK(lines >= 1);
  CHECK(lines <= static_cast<std::size_t>(10 * (seconds + 2)));  // at most 10 in any one second
  CHECK(log.find(secret) == std::string::npos);
  const auto m = c.get("/metrics").body;
  CHECK(metric_value(m, "yna_unauthenticated_requests_total").value_or(0) == 30);
  CHECK(metric_value(m, "yna_events_total{outcome=\"rejected\"}").value_or(0) == 0);
}
