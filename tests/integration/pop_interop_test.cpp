// PoP interoperability (contract §2): "Tokens made by T-Mobile's public PoP token
// builder libraries (for example the npm package tmo-poptoken-builder) must verify."
// tests/interop/make_pop.js builds X-Authorization tokens with that package, with the
// device key of the harness's access tokens; the engine must accept them for the
// request they were made for and refuse them (401 POP_INVALID) for any other.
//
// Needs node and `npm ci --prefix tests/interop` (.ci/install-deps does both). When
// either is missing the test FAILS: a skipped interop check would hide a regression.
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "schemas/jose.hpp"
#include "tests/integration/api_fixture.hpp"

#ifndef YNA_INTEROP_DIR
#error "meson passes -DYNA_INTEROP_DIR=<source>/tests/interop"
#endif

using namespace integration;
namespace fs = std::filesystem;

namespace {

using ehts_map = std::vector<std::pair<std::string, std::string>>;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, std::string_view text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}




const fs::path interop_dir{YNA_INTEROP_DIR};

// Fails the test (not skips it) when node or the npm package is missing.
void require_toolchain() {
  const run_result v = run_command("node --version 2>&1");
  if (v.exit_code != 0)
    FAIL("node is not installed (`node --version`: exit ", v.exit_code, " ", v.out,
         "): the PoP interoperability test needs it; run .ci/install-deps");
  const fs::path lib = interop_dir / "node_modules" / "tmo-poptoken-builder" / "poptoken-builder-node.js";
  if (!fs::exists(lib))
    FAIL("the npm package tmo-poptoken-builder is not installed (", lib.string(),
         " is missing): run `npm ci --prefix ", interop_dir.string(), " --no-audit --no-fund` (.ci/install-deps does)");
  MESSAGE("PoP interop with node ", v.out.substr(0, v.out.find('\n')));
}

// A PoP token from tmo-poptoken-builder for `ehts` (in order), signed with the PKCS#8 key at key_pem.
std::string builder_pop(const fs::path& scratch, const fs::path& key_pem, const ehts_map& ehts) {
  static std::atomic<int> n{0};
  const int i = n.fetch_add(1);
  std::string json = "[";
  for (const auto& [k, v] : ehts) json += (json.size() > 1 ? "," : "") + std::string("[") + json_quote(k) + "," + json_quote(v) + "]";
  json += "]";
  const fs::path in = scratch / ("ehts-" + std::to_string(i) + ".json");
  const fs::path err = scratch / ("make_pop-" + std::to_string(i) + ".stderr");
  spit(in, json);
  const std::string cmd = "node " + shell_quote((interop_dir / "make_pop.js").string()) + " " +
                          shell_quote(key_pem.string()) + " < " + shell_quote(in.string()) + " 2> " +
                          shell_quote(err.string());
  run_result r = run_command(cmd);
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == '\r')) r.out.pop_back();
  INFO("make_pop.js: ", cmd, "\nexit ", r.exit_code, "\nstderr: ", slurp(err));
  REQUIRE(r.exit_code == 0);
  REQUIRE(std::count(r.out.begin(), r.out.end(), '.') == 2);
  return r.out;
}

// The builder's claims, decoded (to show what it made).
std::string claims_of(std::string_view jwt) {
  auto parts = schemas::jose::split_jwt(jwt);
  return parts ? parts->payload_json : std::string("<not a JWT>");
}

}  // namespace

TEST_CASE("pop interop: tokens from T-Mobile's tmo-poptoken-builder (npm) verify, and only for their request") {
  require_toolchain();
  auto& eng = shared_engine();
  http_client c(eng.port());
  std::string tmpl = (fs::temp_directory_path() / "yna-interop-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  const fs::path scratch = tmpl;
  struct cleanup {
    fs::path p;
    ~cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup_scratch{scratch};
  const fs::path key = scratch / "device-key.pk8.pem";
  spit(key, test_device_key().to_pem());  // PKCS#8, the format the builder reads

  const party mo = new_party(eng, "mo-dev");
  const party mt = new_party(eng, "mt-dev");
  const std::string mo_auth = "Bearer " + mo.tok, mt_auth = "Bearer " + mt.tok;
  auto send = [&](std::string_view method, const std::string& target, const std::string& body, const std::string& auth,
                  const std::string& pop, header_list extra = {}) {
    header_list h{{"Authorization", auth}, {"X-Authorization", pop}};
    for (auto& e : extra) h.push_back(std::move(e));
    return c.request(method, target, body, h);
  };

  // POST /start with a body carrying UTF-8 (an unknown field, ignored): the builder hashes
  // the string as UTF-8, the engine the raw bytes. T-Mobile's usual ehts order, with a header.
  const std::string start = "{\"to\":" + json_quote(mt.number) + ",\"from\":" + json_quote(mo.number) +
                            ",\"sdp\":" + json_quote(sdp("offer")) + ",\"note\":\"caf\xc3\xa9 \xe2\x98\x8e\"}";
  std::string tok = builder_pop(scratch, key,
                                {{"Content-Type", "application/json"},
                                 {"Authorization", mo_auth},
                                 {"uri", "/start"},
                                 {"http-method", "POST"},
                                 {"body", start}});
  INFO("builder claims: ", claims_of(tok));
  auto r = send("POST", "/start", start, mo_auth, tok, {{"Content-Type", "application/json"}});
  REQUIRE_200(r);
  const std::string id = json_str(r.body, "/callId").value_or("");
  REQUIRE(!id.empty());
  // The same builder token again: its jti (the builder's GUID) is remembered.
  CHECK_ERROR(send("POST", "/start", start, mo_auth, tok, {{"Content-Type", "application/json"}}), 401, "POP_REPLAYED");

  // POST /ringing with no body; header names in ehts are case-insensitive.
  const std::string ringing = "/ringing/" + id;
  CHECK_EMPTY_OK(send("POST", ringing, "", mt_auth,
                      builder_pop(scratch, key, {{"authorization", mt_auth}, {"uri", ringing}, {"http-method", "POST"}})));

  // POST /connected with a body.
  const std::string connected = "/connected/" + id, answer = sdp_body(sdp("answer"));
  CHECK_EMPTY_OK(send("POST", connected, answer, mt_auth,
                      builder_pop(scratch, key,
                                  {{"Authorization", mt_auth}, {"uri", connected}, {"http-method", "POST"}, {"body", answer}})));

  // GET /calls with a query string: uri is the target as sent, path and query.
  const std::string calls = "/calls/" + id + "?view=full";
  r = send("GET", calls, "", mo_auth,
           builder_pop(scratch, key, {{"Authorization", mo_auth}, {"uri", calls}, {"http-method", "GET"}}));
  REQUIRE_200(r);
  CHECK(json_str(r.body, "/status") == std::optional<std::string>("Connected"));

  SUBCASE("builder tokens over another body, uri or method, with another key, or too little coverage: 401 POP_INVALID") {
    const std::string hold = "/hold/" + id, offer = sdp_body(sdp("hold"));
    const auto tok_for = [&](const std::string& m, const std::string& u, const std::string& b) {
      ehts_map e{{"Authorization", mo_auth}, {"uri", u}, {"http-method", m}};
      if (!b.empty()) e.emplace_back("body", b);
      return builder_pop(scratch, key, e);
    };
    CHECK_ERROR(send("POST", hold, offer, mo_auth, tok_for("POST", hold, sdp_body(sdp("other")))), 401, "POP_INVALID");
    CHECK_ERROR(send("POST", hold, offer, mo_auth, tok_for("POST", "/hold/" + unknown_call_id(), offer)), 401,
                "POP_INVALID");
    CHECK_ERROR(send("POST", hold, offer, mo_auth, tok_for("PUT", hold, offer)), 401, "POP_INVALID");
    // DELETE /end has no body: a token made for POST, or over a body, does not fit it.
    const std::string end = "/end/" + id;
    CHECK_ERROR(send("DELETE", end, "", mo_auth, tok_for("POST", end, "")), 401, "POP_INVALID");
    CHECK_ERROR(send("DELETE", end, "", mo_auth, tok_for("DELETE", end, "{}")), 401, "POP_INVALID");
    // GET /calls without the query the token was made for.
    CHECK_ERROR(send("GET", "/calls/" + id, "", mo_auth, tok_for("GET", calls, "")), 401, "POP_INVALID");
    // Signed with a key that is not the token's cnf.jwk.
    const fs::path other_key = scratch / "other-key.pk8.pem";
    spit(other_key, schemas::jose::private_key::generate_rsa(2048).to_pem());
    CHECK_ERROR(send("POST", hold, offer, mo_auth,
                     builder_pop(scratch, other_key,
                                 {{"Authorization", mo_auth}, {"uri", hold}, {"http-method", "POST"}, {"body", offer}})),
                401, "POP_INVALID");
    // ehts without Authorization, or without the body of a request that has one.
    CHECK_ERROR(send("POST", hold, offer, mo_auth,
                     builder_pop(scratch, key, {{"uri", hold}, {"http-method", "POST"}, {"body", offer}})),
                401, "POP_INVALID");
    CHECK_ERROR(send("POST", hold, offer, mo_auth,
                     builder_pop(scratch, key, {{"Authorization", mo_auth}, {"uri", hold}, {"http-method", "POST"}})),
                401, "POP_INVALID");
    // None of them acted; the right token still does.
    CHECK(json_str(c.get("/calls/" + id, mo.auth()).body, "/status") == std::optional<std::string>("Connected"));
    CHECK_EMPTY_OK(send("POST", hold, offer, mo_auth, tok_for("POST", hold, offer)));
  }

  SUBCASE("DELETE /end with no body, the reason header signed too") {
    const std::string end = "/end/" + id;
    CHECK_EMPTY_OK(send("DELETE", end, "", mo_auth,
                        builder_pop(scratch, key,
                                    {{"Authorization", mo_auth}, {"reason", "hangup"}, {"uri", end}, {"http-method", "DELETE"}}),
                        {{"reason", "hangup"}}));
    r = c.get("/calls/" + id, mo.auth());
    CHECK(json_str(r.body, "/status") == std::optional<std::string>("Terminated"));
    // The signed header changed on the way: refused.
    CHECK_ERROR(send("DELETE", end, "", mo_auth,
                     builder_pop(scratch, key,
                                 {{"Authorization", mo_auth}, {"reason", "hangup"}, {"uri", end}, {"http-method", "DELETE"}}),
                     {{"reason", "busy"}}),
                401, "POP_INVALID");
  }
}
