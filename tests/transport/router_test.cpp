#include "transport/router.hpp"

#include <doctest/doctest.h>

using namespace transport;

TEST_CASE("router: the reference's paths and methods") {
  struct row { const char* method; const char* target; route_kind kind; engine::action act; bool ok; };
  const row rows[] = {
      {"POST", "/start", route_kind::start, engine::action::start, true},
      {"GET", "/start", route_kind::start, engine::action::start, false},
      {"POST", "/inProgress/ID", route_kind::call_action, engine::action::in_progress, true},
      {"POST", "/proceeding/ID", route_kind::call_action, engine::action::proceeding, true},
      {"POST", "/ringing/ID", route_kind::call_action, engine::action::ringing, true},
      {"POST", "/connected/ID", route_kind::call_action, engine::action::connected, true},
      {"POST", "/hold/ID", route_kind::call_action, engine::action::hold, true},
      {"POST", "/acceptHold/ID", route_kind::call_action, engine::action::accept_hold, true},
      {"POST", "/resume/ID", route_kind::call_action, engine::action::resume, true},
      {"POST", "/acceptResume/ID", route_kind::call_action, engine::action::accept_resume, true},
      {"POST", "/renegotiate/ID", route_kind::call_action, engine::action::renegotiate, true},
      {"DELETE", "/end/ID", route_kind::call_action, engine::action::end, true},
      {"POST", "/end/ID", route_kind::call_action, engine::action::end, false},
      {"GET", "/calls/ID", route_kind::get_call, engine::action::start, true},
      {"GET", "/healthz", route_kind::healthz, engine::action::start, true},
      {"GET", "/readyz", route_kind::readyz, engine::action::start, true},
      {"GET", "/metrics", route_kind::metrics, engine::action::start, true},
      {"GET", "/notifications?since=5", route_kind::notifications, engine::action::start, true},
  };
  for (const auto& r : rows) {
    CAPTURE(r.target);
    CAPTURE(r.method);
    const route m = match_route(r.method, r.target, "");
    CHECK(m.kind == r.kind);
    CHECK(m.method_ok == r.ok);
    if (r.kind == route_kind::call_action) {
      CHECK(m.act == r.act);
      CHECK(m.call_id == "ID");
    }
  }
}

TEST_CASE("router: unknown paths, extra segments, base path, query") {
  CHECK(match_route("POST", "/ringing", "").kind == route_kind::not_found);
  CHECK(match_route("POST", "/ringing/", "").kind == route_kind::not_found);
  CHECK(match_route("POST", "/ringing/a/b", "").kind == route_kind::not_found);
  CHECK(match_route("POST", "/Ringing/a", "").kind == route_kind::not_found);
  CHECK(match_route("POST", "", "").kind == route_kind::not_found);
  CHECK(match_route("POST", "*", "").kind == route_kind::not_found);
  CHECK(match_route("POST", "/start", "/v1").kind == route_kind::not_found);
  const route r = match_route("POST", "/v1/ringing/X?a=b", "/v1");
  CHECK(r.kind == route_kind::call_action);
  CHECK(r.call_id == "X");
  CHECK(r.path == "/v1/ringing/X");
  CHECK(r.query == "a=b");
  CHECK(route_label(r) == "ringing");
}

TEST_CASE("router: the web softphone's files and /dev/token") {
  route r = match_route("GET", "/phone", "");
  CHECK(r.kind == route_kind::phone);
  CHECK(r.asset.empty());
  r = match_route("GET", "/phone/", "");
  CHECK(r.kind == route_kind::phone);
  CHECK(r.asset == "index.html");
  r = match_route("GET", "/v1/phone/app.js?x=1", "/v1");
  CHECK(r.kind == route_kind::phone);
  CHECK(r.asset == "app.js");
  CHECK(route_label(r) == "phone");
  CHECK_FALSE(match_route("HEAD", "/phone/app.js", "").method_ok);
  CHECK(match_route("GET", "/phone/a/b.js", "").kind == route_kind::not_found);
  CHECK(match_route("GET", "/phones/", "").kind == route_kind::not_found);
  r = match_route("POST", "/dev/token", "");
  CHECK(r.kind == route_kind::dev_token);
  CHECK(r.method_ok);
  CHECK(route_label(r) == "devToken");
  CHECK_FALSE(match_route("GET", "/dev/token", "").method_ok);
  CHECK(match_route("POST", "/dev/other", "").kind == route_kind::not_found);
  CHECK(match_route("POST", "/dev", "").kind == route_kind::not_found);
}

TEST_CASE("router: callId syntax") {
  CHECK(is_valid_call_id("0AEE1B58BAEEDA3EABA42B32EBB3DFE0"));
  CHECK(is_valid_call_id("a-b_c.d~e"));
  CHECK_FALSE(is_valid_call_id(""));
  CHECK_FALSE(is_valid_call_id(std::string(129, 'A')));
  CHECK_FALSE(is_valid_call_id("a%20b"));
  CHECK_FALSE(is_valid_call_id("a b"));
}
