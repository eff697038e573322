// The authorization matrix (contract §2, §3): every endpoint of the reference plus
// GET /calls/{id}, against every way a request can fail to be authorized, over the
// real binary. Each cell is checked for its status, its reasonCode and the ErrorInfo
// shape; a request refused before the state machine leaves the call as it was.
//
// PoP tokens are built by hand here (schemas::build_pop_token / build_request_pop) and
// always sent explicitly, so the harness never signs one behind the test's back.
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <functional>
#include <sstream>

#include "schemas/jose.hpp"
#include "schemas/pop_token.hpp"
#include "tests/integration/api_fixture.hpp"

using namespace integration;

namespace {

namespace jose = schemas::jose;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Access-token claims with the test device key as cnf.jwk, so that a PoP built with
// test_device_key() would verify if the token itself did.
std::string token_claims(std::string_view iss, std::string_view msisdn, std::int64_t iat, std::int64_t exp) {
  return "{\"iss\":" + json_quote(iss) + ",\"sub\":\"matrix-" + std::string(msisdn) + "\",\"msisdns\":[" +
         json_quote(msisdn) + "],\"device_id\":\"matrix-dev\",\"cnf\":{\"jwk\":" +
         test_device_key().public_part().to_jwk_json() + "},\"iat\":" + std::to_string(iat) +
         ",\"exp\":" + std::to_string(exp) + "}";
}

// RS256 token with the engine's kid, signed by `key`, with issuer `iss`.
std::string rs256_token(const jose::private_key& key, std::string_view iss, std::string_view msisdn) {
  const std::int64_t now = now_seconds();
  schemas::access_claims c;
  c.sub = "matrix-" + std::string(msisdn);
  c.msisdns = {std::string(msisdn)};
  c.device_id = "matrix-dev";
  c.iat = now;
  c.exp = now + 3600;
  c.cnf_jwk_json = test_device_key().public_part().to_jwk_json();
  return schemas::mint_access_token(
      schemas::dev_issuer{key, std::string(schemas::dev_issuer_kid), std::string(iss)}, c);
}

const jose::private_key& foreign_key() {
  static const jose::private_key k = jose::private_key::generate_rsa(2048);
  return k;
}

// The classic key-confusion attack: HS256 with the issuer's RSA public key PEM (as a
// verifier would read it from its file) as the HMAC secret.
std::string hs256_confusion_token(const engine_process& eng, std::string_view msisdn) {
  std::string secret = slurp(eng.data_dir() / schemas::dev_issuer_pub_file);
  if (secret.empty()) secret = eng.issuer().key.public_part().to_pem();
  const std::int64_t now = now_seconds();
  const std::string header = R"({"alg":"HS256","typ":"JWT","kid":"dev"})";
  const std::string payload = token_claims(schemas::dev_issuer_name, msisdn, now, now + 3600);
  const std::string signing_input = compact_jwt(header, payload, "");  // "h.p."
  const std::string to_sign = signing_input.substr(0, signing_input.size() - 1);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(to_sign.data()), to_sign.size(), mac, &mac_len);
  return compact_jwt(header, payload, std::string(reinterpret_cast<const char*>(mac), mac_len));
}

std::string alg_none_token(std::string_view msisdn) {
  const std::int64_t now = now_seconds();
  return compact_jwt(R"({"alg":"none","typ":"JWT","kid":"dev"})",
                     token_claims(schemas::dev_issuer_name, msisdn, now, now + 3600), "");
}

// A PoP over (method, uri, body) for the Authorization header value `authorization`.
std::string pop(std::string_view authorization, std::string_view method, std::string_view uri,
                std::string_view body) {
  return schemas::build_request_pop(test_device_key(), method, uri, body, authorization, now_seconds());
}

std::string expired_pop(std::string_view authorization, std::string_view method, std::string_view uri,
                        std::string_view body) {
  schemas::pop_claims v{{"Authorization", std::string(authorization)},
                        {"uri", std::string(uri)},
                        {"http-method", std::string(method)}};
  if (!body.empty()) v.emplace_back("body", std::string(body));
  const std::int64_t now = now_seconds();
  return schemas::build_pop_token(test_device_key(), v, now - 200, now - 60);  // past the 10 s leeway
}

// One row of the matrix: the request that succeeds for `actor` on the call in `state`.
struct endpoint_row {
  std::string name;    // as in the reference
  std::string method;  // POST, DELETE, GET
  std::string state;   // make_call state where the request succeeds ("" for /start)
  bool by_mt;          // who sends it
  std::string body;    // "" for none
};

std::vector<endpoint_row> rows() {
  return {
      {"start", "POST", "", false, "<start>"},
      {"inProgress", "POST", "Initial", true, sdp_body(sdp("early"))},
      {"proceeding", "POST", "Initial", true, "{}"},
      {"ringing", "POST", "Proceeding", true, "{}"},
      {"connected", "POST", "Ringing", true, sdp_body(sdp("answer"))},
      {"hold", "POST", "Connected", false, sdp_body(sdp("hold"))},
      {"acceptHold", "POST", "Connected+hold(MO)", true, sdp_body(sdp("held"))},
      {"resume", "POST", "Hold(MO)", false, sdp_body(sdp("resume"))},
      {"acceptResume", "POST", "Hold+resume(MO)", true, sdp_body(sdp("resumed"))},
      {"renegotiate", "POST", "Connected", false, sdp_body(sdp("reneg"))},
      {"end", "DELETE", "Connected", false, ""},
      {"calls", "GET", "Initial", false, ""},
  };
}

// What the contract says a cell must answer.
struct expectation {
  int status;
  std::string code;  // "" for success
};

// One column: the request headers (and possibly another Authorization) for the row's
// request, and what must come back.
struct column {
  std::string name;
  // (authorization of the actor, method, target, body) → headers to send
  std::function<header_list(const std::string& actor_number, const std::string& actor_auth, const std::string& method,
                            const std::string& target, const std::string& body)>
      headers;
  std::function<expectation(const endpoint_row&)> expect;
};

expectation unauthorized(const endpoint_row&) { return {401, "UNAUTHORIZED"}; }

std::vector<column> columns(const engine_process& eng, const party& stranger) {
  const auto with_pop = [](std::string authorization, const std::string& method, const std::string& target,
                           const std::string& body) {
    return header_list{{"Authorization", authorization}, {"X-Authorization", pop(authorization, method, target, body)}};
  };
  const auto pop_column = [](std::string code) {
    return [code](const endpoint_row&) { return expectation{401, code}; };
  };
  std::vector<column> cols;
  cols.push_back({"no token",
                  [](auto&, auto&, auto&, auto&, auto&) { return header_list{}; },
                  unauthorized});
  cols.push_back({"malformed token",
                  [with_pop](auto&, auto&, auto& m, auto& t, auto& b) { return with_pop("Bearer not-a.jwt", m, t, b); },
                  unauthorized});
  cols.push_back({"expired token",
                  [&eng, with_pop](auto& n, auto&, auto& m, auto& t, auto& b) {
                    const std::int64_t now = now_seconds();
                    return with_pop("Bearer " + eng.token_at({n}, now - 7200, now - 3600), m, t, b);
                  },
                  [](const endpoint_row&) { return expectation{401, "TOKEN_EXPIRED"}; }});
  cols.push_back({"foreign key, dev kid and iss",
                  [with_pop](auto& n, auto&, auto& m, auto& t, auto& b) {
                    return with_pop("Bearer " + rs256_token(foreign_key(), schemas::dev_issuer_name, n), m, t, b);
                  },
                  unauthorized});
  cols.push_back({"dev key, another iss",
                  [&eng, with_pop](auto& n, auto&, auto& m, auto& t, auto& b) {
                    return with_pop("Bearer " + rs256_token(eng.issuer().key, "https://evil.example", n), m, t, b);
                  },
                  unauthorized});
  cols.push_back({"alg none",
                  [with_pop](auto& n, auto&, auto& m, auto& t, auto& b) {
                    return with_pop("Bearer " + alg_none_token(n), m, t, b);
                  },
                  unauthorized});
  cols.push_back({"HS256 keyed with the issuer's public key PEM",
                  [&eng, with_pop](auto& n, auto&, auto& m, auto& t, auto& b) {
                    return with_pop("Bearer " + hs256_confusion_token(eng, n), m, t, b);
                  },
                  unauthorized});
  cols.push_back({"other party's (stranger's) token",
                  [&stranger, with_pop](auto&, auto&, auto& m, auto& t, auto& b) {
                    return with_pop("Bearer " + stranger.tok, m, t, b);
                  },
                  [](const endpoint_row&) { return expectation{403, "FORBIDDEN"}; }});
  cols.push_back({"valid token, no PoP",
                  [](auto&, auto& a, auto&, auto&, auto&) {
                    return header_list{{"Authorization", a}, {"X-Authorization", std::string(no_pop)}};
                  },
                  [](const endpoint_row& r) {
                    // Optional on /start (contract §2): the request succeeds without one.
                    return r.name == "start" ? expectation{200, ""} : expectation{401, "POP_MISSING"};
                  }});
  cols.push_back({"PoP over another body",
                  [](auto&, auto& a, auto& m, auto& t, auto& b) {
                    const std::string other = b.empty() ? std::string("{}") : b + " ";
                    return header_list{{"Authorization", a}, {"X-Authorization", pop(a, m, t, other)}};
                  },
                  pop_column("POP_INVALID")});
  cols.push_back({"PoP over another uri",
                  [](auto&, auto& a, auto& m, auto& t, auto& b) {
                    std::string other = t;
                    const auto slash = other.rfind('/');
                    other = slash == 0 ? other + "?again=1" : other.substr(0, slash + 1) + unknown_call_id();
                    return header_list{{"Authorization", a}, {"X-Authorization", pop(a, m, other, b)}};
                  },
                  pop_column("POP_INVALID")});
  cols.push_back({"PoP with another method",
                  [](auto&, auto& a, auto& m, auto& t, auto& b) {
                    const std::string other = m == "POST" ? "PUT" : "POST";
                    return header_list{{"Authorization", a}, {"X-Authorization", pop(a, other, t, b)}};
                  },
                  pop_column("POP_INVALID")});
  cols.push_back({"expired PoP",
                  [](auto&, auto& a, auto& m, auto& t, auto& b) {
                    return header_list{{"Authorization", a}, {"X-Authorization", expired_pop(a, m, t, b)}};
                  },
                  pop_column("POP_EXPIRED")});
  return cols;
}

void check_cell(const response& r, const expectation& want) {
  if (want.status == 200) {
    INFO("response: ", r.status, " ", r.body);
    CHECK(r.status == 200);
    CHECK(r.content_type().rfind("application/json", 0) == 0);
    CHECK(json_is_object(r.body));
    CHECK(!json_has(r.body, "/errors"));
  } else {
    CHECK_ERROR(r, want.status, want.code);
    // Every answer carries x-transaction-id (contract §2).
    CHECK(is_guid(r.header("x-transaction-id").value_or("")));
  }
}

}  // namespace

TEST_CASE("authz matrix: every endpoint × every way to fail authorization → the contract's status and reasonCode") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party stranger = new_party(eng, "eve-dev");
  const auto cols = columns(eng, stranger);
  int cells = 0;

  for (const endpoint_row& row : rows()) {
    CAPTURE(row.name);
    // The call the row acts on, in the state where its request succeeds.
    test_call t;
    t.c = &c;
    std::string target, body = row.body;
    if (row.name == "start") {
      t.mo = new_party(eng, "mo-dev");
      t.mt = new_party(eng, "mt-dev");
      target = "/start";
      body = start_body(t.mo.number, t.mt.number, sdp("offer"));
    } else {
      t = make_call(eng, c, row.state);
      target = (row.name == "calls" ? "/calls/" : "/" + row.name + "/") + t.id;
    }
    const party& actor = row.by_mt ? t.mt : t.mo;
    const std::string actor_auth = "Bearer " + actor.tok;
    const std::string before = row.name == "start" ? std::string() : t.view();

    for (const column& col : cols) {
      CAPTURE(col.name);
      const expectation want = col.expect(row);
      const header_list h = col.headers(actor.number, actor_auth, row.method, target, body);
      const response r = c.request(row.method, target, body, h);
      check_cell(r, want);
      ++cells;
      // Nothing refused before the state machine may change the call.
      if (row.name != "start" && want.status != 200) CHECK(t.view() == before);
    }

    // valid: a fresh PoP over exactly this request → success.
    const std::string valid_pop = pop(actor_auth, row.method, target, body);
    const header_list valid{{"Authorization", actor_auth}, {"X-Authorization", valid_pop}};
    {
      CAPTURE("valid");
      const response r = c.request(row.method, target, body, valid);
      check_cell(r, {200, ""});
      ++cells;
      if (row.name == "start") {
        CHECK(is_call_id(json_str(r.body, "/callId").value_or("")));
      } else if (row.name == "calls") {
        CHECK(json_str(r.body, "/callId") == std::optional<std::string>(t.id));
        CHECK(json_str(r.body, "/status") == std::optional<std::string>("Initial"));
      } else {
        CHECK(json_object_size(r.body) == std::optional<std::size_t>(0));
      }
    }
    // replayed: the same X-Authorization on the same request again. The jti was
    // recorded when the PoP verified, so this is POP_REPLAYED, not a state error
    // (nor, for the idempotent /end and the GET, a second success).
    {
      CAPTURE("replayed PoP");
      const std::string after = row.name == "start" ? std::string() : t.view();
      check_cell(c.request(row.method, target, body, valid), {401, "POP_REPLAYED"});
      ++cells;
      if (row.name != "start") CHECK(t.view() == after);
    }
  }
  CHECK(cells == 12 * (static_cast<int>(cols.size()) + 2));
  MESSAGE("authz matrix: ", cells, " cells (12 endpoints × ", cols.size() + 2, " columns)");
}

TEST_CASE("authz matrix: a token whose iss differs from --jwt-issuer is UNAUTHORIZED on every endpoint") {
  const std::string iss = "https://issuer.example/yna";
  engine_process eng({"--jwt-issuer", iss});
  http_client c(eng.port());
  // Parties with tokens of the configured issuer (the development key, iss = --jwt-issuer).
  auto party_of = [&](const std::string& number) { return party{number, rs256_token(eng.issuer().key, iss, number)}; };
  const party mo = party_of(fresh_msisdn());
  const party mt = party_of(fresh_msisdn());

  // Control: the configured issuer's tokens work.
  const auto s = c.post("/start", start_body(mo.number, mt.number, sdp("offer")), mo.auth());
  REQUIRE_200(s);
  const std::string id = json_str(s.body, "/callId").value_or("");
  REQUIRE(!id.empty());
  CHECK_200(c.get("/calls/" + id, mo.auth()));

  // The same key and kid, but the development issuer's iss: not this engine's issuer.
  const std::string dev_iss_mo = "Bearer " + eng.token({mo.number});
  const std::string dev_iss_mt = "Bearer " + eng.token({mt.number});
  int cells = 0;
  for (const endpoint_row& row : rows()) {
    CAPTURE(row.name);
    const std::string target = row.name == "start" ? "/start" : (row.name == "calls" ? "/calls/" : "/" + row.name + "/") + id;
    const std::string body = row.name == "start" ? start_body(mo.number, mt.number, sdp("offer")) : row.body;
    const std::string& a = row.by_mt ? dev_iss_mt : dev_iss_mo;
    const response r = c.request(row.method, target, body, {{"Authorization", a}, {"X-Authorization", pop(a, row.method, target, body)}});
    check_cell(r, {401, "UNAUTHORIZED"});
    ++cells;
  }
  CHECK(cells == 12);
  const auto v = c.get("/calls/" + id, mo.auth());
  CHECK(json_str(v.body, "/status") == std::optional<std::string>("Initial"));
}

TEST_CASE("authz: a PoP is spent once it verified, even when the request then fails on input, lookup, party or state") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const test_call t = make_call(eng, c, "Connected");
  const party stranger = new_party(eng, "eve-dev");
  struct attempt {
    const char* what;
    const party* who;
    std::string target, body;
    int first_status;
    const char* first_code;
  };
  const attempt attempts[] = {
      {"state: acceptHold with no hold pending", &t.mt, "/acceptHold/" + t.id, sdp_body(sdp("x")), 400, "NO_OFFER_PENDING"},
      {"input: bad JSON", &t.mo, "/hold/" + t.id, "{\"sdp\":", 400, "INVALID_JSON"},
      {"lookup: unknown call", &t.mo, "/hold/" + unknown_call_id(), sdp_body(sdp("x")), 404, "CALL_NOT_FOUND"},
      {"party: a stranger", &stranger, "/hold/" + t.id, sdp_body(sdp("x")), 403, "FORBIDDEN"},
  };
  for (const auto& a : attempts) {
    CAPTURE(a.what);
    const std::string auth = "Bearer " + a.who->tok;
    const header_list h{{"Authorization", auth}, {"X-Authorization", pop(auth, "POST", a.target, a.body)}};
    CHECK_ERROR(c.post(a.target, a.body, h), a.first_status, a.first_code);
    CHECK_ERROR(c.post(a.target, a.body, h), 401, "POP_REPLAYED");
  }
  // A PoP that failed to verify is not spent: its jti is recorded only once it verified,
  // so a correct PoP reusing that jti is accepted.
  const std::string auth = "Bearer " + t.mo.tok;
  const std::string target = "/hold/" + t.id, body = sdp_body(sdp("hold"));
  const std::string jti = "matrix-jti-" + t.id;
  const std::int64_t now = now_seconds();
  const auto pop_over = [&](std::string_view b) {
    return schemas::build_pop_token(test_device_key(),
                                    {{"Authorization", auth}, {"uri", target}, {"http-method", "POST"}, {"body", std::string(b)}},
                                    now, now + 120, jti);
  };
  CHECK_ERROR(c.post(target, body, {{"Authorization", auth}, {"X-Authorization", pop_over(body + " ")}}), 401,
              "POP_INVALID");
  CHECK_EMPTY_OK(c.post(target, body, {{"Authorization", auth}, {"X-Authorization", pop_over(body)}}));
  CHECK(t.status() == "Connected");
  CHECK(json_str(t.view(), "/pendingOffer/kind").has_value());
}
