// Caller identity (contract §11) on the real binary, checked by implementations that are
// not ours: the PASSporT the engine signs for its own caller verifies with the `jose` npm
// package (tests/interop/passport.mjs) under the chain GET /sti/cert.pem serves, and that
// chain verifies with the `openssl` CLI against the development root in the data folder.
//
// Needs node, `npm ci --prefix tests/interop` and openssl (.ci/install-deps); a missing
// one FAILS the test rather than skipping it.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "schemas/base64url.hpp"
#include "schemas/sti_cert.hpp"
#include "tests/integration/api_fixture.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/node_child.hpp"

#ifndef YNA_INTEROP_DIR
#error "meson passes -DYNA_INTEROP_DIR=<source>/tests/interop"
#endif

using namespace integration;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const fs::path interop_dir{YNA_INTEROP_DIR};

std::string slurp(const fs::path& p) { return slurp_file(p); }
void spit(const fs::path& p, std::string_view text) { spit_file(p, text); }

std::string quote(std::string_view s) {  // for /bin/sh, single quotes
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

void require_toolchain() {
  if (run_command("node --version >/dev/null 2>&1").exit_code != 0)
    FAIL("node is not installed: the caller identity interop test needs it; run .ci/install-deps");
  if (!fs::exists(interop_dir / "node_modules" / "jose"))
    FAIL("the npm package jose is not installed under ", interop_dir.string(), "; run .ci/install-deps");
  if (run_command("openssl version >/dev/null 2>&1").exit_code != 0)
    FAIL("openssl is not installed; run .ci/install-deps");
}

// The certificates of a PEM chain, each as its own PEM text.
std::vector<std::string> pem_blocks(const std::string& pem) {
  std::vector<std::string> out;
  static const std::regex block("-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----");
  for (auto it = std::sregex_iterator(pem.begin(), pem.end(), block); it != std::sregex_iterator(); ++it)
    out.push_back(it->str() + "\n");
  return out;
}

run_result jose_verify(const std::string& token, const fs::path& chain) {
  return run_command("node " + quote((interop_dir / "passport.mjs").string()) + " verify " + quote(token) + " " +
                     quote(chain.string()) + " 2>&1");
}

}  // namespace

TEST_CASE("caller identity: the engine signs a SHAKEN PASSporT for its caller; jose verifies it, openssl the chain") {
  require_toolchain();
  engine_process eng;
  http_client c(eng.port());
  const party mo = new_party(eng), mt = new_party(eng);
  auto mt_ws = listen(eng, mt);

  const auto before = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  auto r = c.post("/start", start_body(mo.number, mt.number, sdp("offer")), mo.auth());
  REQUIRE_200(r);
  const std::string id = json_str(r.body, "/callId").value_or("");
  const auto frame = mt_ws->next(std::chrono::seconds(10));
  REQUIRE(frame.has_value());
  INFO(*frame);
  const std::string inv = "/sessionInvitationNotification";
  CHECK(json_str(*frame, inv + "/verificationStatus") == std::optional<std::string>("TN-Validation-Passed"));
  CHECK(json_str(*frame, inv + "/attestation") == std::optional<std::string>("A"));
  const std::string token = json_str(*frame, inv + "/identity").value_or("");
  REQUIRE(!token.empty());

  // The chain the x5u names, served without a token; the same as the one in the data folder.
  auto cert = c.get("/sti/cert.pem");
  REQUIRE(cert.status == 200);
  CHECK(cert.content_type() == "application/pem-certificate-chain");
  const fs::path sti = eng.data_dir() / "sti";
  CHECK(cert.body == slurp(sti / "chain.pem"));
  const fs::path chain = eng.root() / "served-chain.pem";
  spit(chain, cert.body);

  // jose: signature, alg and typ; then the header and the claims.
  const run_result v = jose_verify(token, chain);
  REQUIRE_MESSAGE(v.exit_code == 0, v.out);
  INFO(v.out);
  CHECK(json_str(v.out, "/header/alg") == std::optional<std::string>("ES256"));
  CHECK(json_str(v.out, "/header/ppt") == std::optional<std::string>("shaken"));
  CHECK(json_str(v.out, "/header/x5u") ==
        std::optional<std::string>("https://127.0.0.1:" + std::to_string(eng.port()) + "/sti/cert.pem"));
  CHECK(json_str(v.out, "/payload/attest") == std::optional<std::string>("A"));
  CHECK(json_str(v.out, "/payload/orig/tn") == std::optional<std::string>(mo.number));
  CHECK(json_str(v.out, "/payload/dest/tn/0") == std::optional<std::string>(mt.number));
  const auto iat = json_num(v.out, "/payload/iat").value_or(0);
  CHECK(iat >= static_cast<double>(before));
  CHECK(iat <= static_cast<double>(before + 60));
  CHECK(std::regex_match(json_str(v.out, "/payload/origid").value_or(""),
                         std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));

  // jose refuses the same PASSporT with one claim changed (the check can fail).
  const auto dot1 = token.find('.'), dot2 = token.find('.', dot1 + 1);
  std::string tampered = token;
  tampered[dot1 + 1 + (dot2 - dot1) / 2] = tampered[dot1 + 1 + (dot2 - dot1) / 2] == 'A' ? 'B' : 'A';
  CHECK(jose_verify(tampered, chain).exit_code != 0);

  // openssl: the served chain leads to the development root, and the signing
  // certificate carries the TNAuthList extension (RFC 8226).
  const auto certs = pem_blocks(cert.body);
  REQUIRE(certs.size() == 2);
  spit(eng.root() / "leaf.pem", certs[0]);
  spit(eng.root() / "ca.pem", certs[1]);
  const std::string root = quote((sti / "root.pem").string());
  const run_result ok = run_command("openssl verify -CAfile " + root + " -untrusted " +
                                    quote((eng.root() / "ca.pem").string()) + " " +
                                    quote((eng.root() / "leaf.pem").string()) + " 2>&1");
  CHECK_MESSAGE(ok.exit_code == 0, ok.out);
  CHECK(ok.out.find(": OK") != std::string::npos);
  // Without the intermediate, or against the leaf as its own root, it fails.
  CHECK(run_command("openssl verify -CAfile " + root + " " + quote((eng.root() / "leaf.pem").string()) + " 2>&1")
            .exit_code != 0);
  const run_result text =
      run_command("openssl x509 -noout -text -in " + quote((eng.root() / "leaf.pem").string()) + " 2>&1");
  INFO(text.out);
  CHECK((text.out.find("TNAuth") != std::string::npos || text.out.find("1.3.6.1.5.5.7.1.26") != std::string::npos));

  // The call says how its caller was verified.
  auto got = c.get("/calls/" + id, mo.auth());
  REQUIRE_200(got);
  CHECK(json_str(got.body, "/verificationStatus") == std::optional<std::string>("TN-Validation-Passed"));
  CHECK(json_str(got.body, "/attestation") == std::optional<std::string>("A"));

  // yna-tool passport --verify: the same PASSporT checked offline against the data folder.
  const char* tool = std::getenv("YNA_TOOL");
  REQUIRE_MESSAGE(tool != nullptr, "meson sets YNA_TOOL to the yna-tool binary");
  const std::string tool_cmd = std::string(tool) + " --data-dir " + quote(eng.data_dir().string()) + " passport ";
  const run_result offline = run_command(tool_cmd + "--verify " + quote(token) + " --from " + mo.number + " --to " +
                                         mt.number + " --at now --json 2>&1");
  INFO(offline.out);
  CHECK(offline.exit_code == 0);
  CHECK(json_str(offline.out, "/verificationStatus") == std::optional<std::string>("TN-Validation-Passed"));
  CHECK(json_str(offline.out, "/attestation") == std::optional<std::string>("A"));
  // Claims changed (another callee), the signature kept: well-formed, not signed.
  const std::string other_claims = "{\"attest\":\"A\",\"dest\":{\"tn\":[\"" + mo.number + "\"]},\"iat\":" +
                                   std::to_string(static_cast<std::int64_t>(iat)) + ",\"orig\":{\"tn\":\"" +
                                   mt.number + "\"},\"origid\":\"x\"}";
  const std::string forged_token =
      token.substr(0, dot1 + 1) + schemas::base64url_encode(other_claims) + token.substr(dot2);
  const run_result forged = run_command(tool_cmd + "--verify " + quote(forged_token) + " --json 2>&1");
  INFO(forged.out);
  CHECK(forged.exit_code == 1);
  CHECK(json_str(forged.out, "/reason") == std::optional<std::string>("bad-signature"));
  const run_result wrong_to = run_command(tool_cmd + "--verify " + quote(token) + " --to " + mo.number + " 2>&1");
  CHECK(wrong_to.exit_code == 1);
  CHECK(wrong_to.out.find("FAILED dest-mismatch") != std::string::npos);  // the table, by default
  CHECK(wrong_to.out.find("TN-Validation-Failed") != std::string::npos);

  // A restart keeps the same chain (made once, in the data folder).
  const std::string first_chain = cert.body;
  eng.restart();
  c.set_port(eng.port());
  CHECK(c.get("/sti/cert.pem").body == first_chain);
}

// ----------------------------------------------------------------------------------------
// The verification service (STI-VS): a gateway's /start with the PASSporT of a caller
// outside the engine. The signer here is not ours: its chain is made by the openssl CLI,
// its PASSporTs are signed by jose, and its certificate repository is a node HTTPS server
// (x5u_server.mjs) on 127.0.0.1.

namespace {

run_result sh(const std::string& cmd) {
  const run_result r = run_command(cmd + " 2>&1");
  INFO(cmd);
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  return r;
}

// An STI chain made with the openssl CLI in `dir`: <name>-root.pem, <name>-chain.pem (leaf,
// intermediate), <name>-leaf.key (PKCS#8). The intermediate and the leaf carry a TNAuthList
// (SPC "TEST") unless `tnauthlist` is false.
void openssl_chain(const fs::path& dir, const std::string& name, bool tnauthlist = true) {
  const std::string d = quote(dir.string()) + "/" + name;
  const std::string tn = tnauthlist ? "1.3.6.1.5.5.7.1.26=DER:30:08:A0:06:16:04:54:45:53:54\n" : "";
  spit(dir / (name + "-ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n" + tn);
  spit(dir / (name + "-leaf.ext"), "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" + tn);
  for (const char* k : {"root", "ca", "leaf"})
    sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + d + "-" + k + ".key");
  sh("openssl req -x509 -new -key " + d + "-root.key -sha256 -days 30 -subj '/CN=" + name +
     " STI root' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -out " + d +
     "-root.pem");
  sh("openssl req -new -key " + d + "-ca.key -subj '/CN=" + name + " STI-CA' -out " + d + "-ca.csr");
  sh("openssl x509 -req -in " + d + "-ca.csr -CA " + d + "-root.pem -CAkey " + d + "-root.key -set_serial 2 -days 30 " +
     "-sha256 -extfile " + d + "-ca.ext -out " + d + "-ca.pem");
  sh("openssl req -new -key " + d + "-leaf.key -subj '/CN=" + name + " STI-AS' -out " + d + "-leaf.csr");
  sh("openssl x509 -req -in " + d + "-leaf.csr -CA " + d + "-ca.pem -CAkey " + d + "-ca.key -set_serial 3 -days 30 " +
     "-sha256 -extfile " + d + "-leaf.ext -out " + d + "-leaf.pem");
  spit(dir / (name + "-chain.pem"), slurp(dir / (name + "-leaf.pem")) + slurp(dir / (name + "-ca.pem")));
}

// A PASSporT signed by jose with `key_file` (PKCS#8 P-256).
std::string jose_sign(const fs::path& key_file, const std::string& header, const std::string& claims) {
  const run_result r = run_command("node " + quote((interop_dir / "passport.mjs").string()) + " sign " +
                                   quote(key_file.string()) + " " + quote(header) + " " + quote(claims) + " 2>&1");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  std::string t = r.out;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t;
}

std::string passport_header(const std::string& x5u, std::string_view alg = "ES256") {
  return R"({"alg":")" + std::string(alg) + R"(","ppt":"shaken","typ":"passport","x5u":")" + x5u + "\"}";
}

std::string passport_claims(const std::string& orig, const std::string& dest, std::int64_t iat,
                            std::string_view attest = "B") {
  return R"({"attest":")" + std::string(attest) + R"(","dest":{"tn":[")" + dest + R"("]},"iat":)" +
         std::to_string(iat) + R"(,"orig":{"tn":")" + orig + R"("},"origid":"0b4f1c8e-6c55-4f62-9b0e-3f3c1a0d7e21"})";
}

// A token from the test's own issuer (the engine runs with --jwt-public-key): a gateway
// (no numbers) or a user of `numbers`; the harness's device key in cnf (PoP).
std::string issuer_token(const schemas::jose::private_key& issuer, const std::string& sub, bool gateway,
                         const std::vector<std::string>& numbers, const std::string& device,
                         const std::string& name = {}) {
  const std::int64_t now = now_seconds();
  std::string c = R"({"iss":"corp","aud":"yna","sub":")" + sub + R"(","iat":)" + std::to_string(now) +
                  R"(,"exp":)" + std::to_string(now + 3600) + R"(,"device_id":")" + device + "\"";
  if (!name.empty()) c += R"(,"name":")" + name + "\"";
  if (gateway) c += R"(,"gateway":true)";
  c += R"(,"msisdns":[)";
  for (std::size_t i = 0; i < numbers.size(); ++i) c += (i ? ",\"" : "\"") + numbers[i] + "\"";
  c += R"(],"cnf":{"jwk":)" + test_device_key().public_part().to_jwk_json() + "}}";
  return schemas::jose::sign_jwt(issuer, schemas::jose::alg::rs256, R"({"alg":"RS256","typ":"JWT","kid":"issuer"})",
                                 c);
}

std::string gateway_start(const std::string& from, const std::string& to, std::optional<std::string> identity) {
  std::string b = "{\"to\":" + json_quote(to) + ",\"from\":" + json_quote(from) + ",\"sdp\":" + json_quote(sdp("offer"));
  if (identity) b += ",\"identity\":" + json_quote(*identity);
  return b + "}";
}

}  // namespace

TEST_CASE("caller identity: a gateway's PASSporT is verified (jose-signed, openssl chain), and every defect fails with its reason") {
  require_toolchain();
  scratch_dir dir;
  const fs::path& d = dir.path;
  // The foreign STI: a good chain, one under another root, one without TNAuthList; an
  // expired one made by the engine's own code (the CLI cannot backdate in OpenSSL 3.0).
  openssl_chain(d, "good");
  openssl_chain(d, "rogue");
  openssl_chain(d, "bare", false);
  const auto old = schemas::sti::make_dev_chain("TEST", now_seconds() - 40 * 86400, 10);
  spit(d / "expired-chain.pem", old.chain_pem);
  spit(d / "expired-leaf.key", old.key_pem);
  spit(d / "roots.pem", slurp(d / "good-root.pem") + slurp(d / "bare-root.pem") + old.root_pem);
  fs::create_directories(d / "served");
  for (const char* n : {"good", "rogue", "bare", "expired"})
    fs::copy_file(d / (std::string(n) + "-chain.pem"), d / "served" / (std::string(n) + ".pem"));
  sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 2 -subj /CN=127.0.0.1 "
     "-addext subjectAltName=IP:127.0.0.1,IP:127.0.0.2 -keyout " + quote((d / "tls.key").string()) + " -out " +
     quote((d / "tls.pem").string()));
  node_child repo("tests/integration/x5u_server.mjs",
                  {(d / "served").string(), (d / "repo.jsonl").string(), "127.0.0.1", (d / "tls.pem").string(),
                   (d / "tls.key").string()},
                  d / "repo.out");
  const std::uint16_t rport = repo.start();
  node_child other("tests/integration/x5u_server.mjs",
                   {(d / "served").string(), (d / "other.jsonl").string(), "127.0.0.2", (d / "tls.pem").string(),
                    (d / "tls.key").string()},
                   d / "other.out");
  const std::uint16_t oport = other.start();
  const std::string base = "https://127.0.0.1:" + std::to_string(rport);

  const auto issuer = schemas::jose::private_key::generate_rsa(2048);
  spit(d / "issuer.pem", issuer.public_part().to_pem());
  engine_process eng({"--jwt-public-key", (d / "issuer.pem").string(), "--jwt-issuer", "corp", "--jwt-audience", "yna",
                      "--gateway-sub", "sbc-1", "--sti-trust", (d / "roots.pem").string(), "--sti-x5u-allow",
                      base + "/certs/", "--outbound-ca", (d / "tls.pem").string(), "--sti-x5u-timeout", "2",
                      "--sti-max-waiting", "1", "--sti-cache", "1"});
  http_client c(eng.port());
  const std::string gw = issuer_token(issuer, "sbc-1", true, {}, "sbc-1a");
  const auto gw_auth = [&] { return bearer(gw); };
  // iat is read at each signing (not once here): on a busy machine the cases before take
  // long enough that a fixed one would go stale and hide the defect under test.

  // One call per case, to a callee of its own whose socket hears the invitation.
  struct outcome {
    std::string status, attestation, failure, identity;
    std::string call_id;
  };
  auto call = [&](const std::string& from, std::optional<std::string> identity, std::string to = {}) {
    if (to.empty()) to = fresh_msisdn();
    const std::string mt_tok = issuer_token(issuer, "u-" + to, false, {to}, "phone");
    auto ws = ws_client::connect(eng.port(), "/notifications", bearer(mt_tok, {{"X-Authorization", std::string(no_pop)}}));
    http_client c(eng.port());  // its own connection: calls may run on several threads
    auto r = c.post("/start", gateway_start(from, to, identity), gw_auth());
    outcome o;
    INFO(r.body);
    REQUIRE(r.status == 200);
    o.call_id = json_str(r.body, "/callId").value_or("");
    auto f = ws->next(std::chrono::seconds(10));
    REQUIRE(f.has_value());
    o.status = json_str(*f, "/sessionInvitationNotification/verificationStatus").value_or("");
    o.attestation = json_str(*f, "/sessionInvitationNotification/attestation").value_or("");
    o.identity = json_str(*f, "/sessionInvitationNotification/identity").value_or("");
    auto v = c.get("/calls/" + o.call_id, gw_auth());
    INFO(v.body);
    REQUIRE(v.status == 200);
    o.failure = json_str(v.body, "/verificationFailure").value_or("");
    return o;
  };
  const std::string from = fresh_msisdn();
  auto failed_with = [&](const outcome& o, std::string_view why) {
    CHECK(o.status == "TN-Validation-Failed");
    CHECK(o.failure == why);
  };

  SUBCASE("passes: a compact PASSporT and a full Identity header value") {
    const std::string to = fresh_msisdn();
    const std::string good = jose_sign(d / "good-leaf.key", passport_header(base + "/certs/good.pem"),
                                       passport_claims(from, to, now_seconds()));
    auto o = call(from, good, to);
    CHECK(o.status == "TN-Validation-Passed");
    CHECK(o.attestation == "B");
    CHECK(o.identity == good);
    CHECK(o.failure.empty());
    const std::string to2 = fresh_msisdn();
    const std::string good2 = jose_sign(d / "good-leaf.key", passport_header(base + "/certs/good.pem"),
                                        passport_claims(from, to2, now_seconds(), "C"));
    auto h = call(from, good2 + ";info=<" + base + "/certs/good.pem>;alg=ES256;ppt=shaken", to2);
    CHECK(h.status == "TN-Validation-Passed");
    CHECK(h.attestation == "C");
    CHECK(h.identity == good2);
    // The chain was fetched once, then served from the cache.
    auto fetches_of = [&](std::string_view path) {
      const std::string log = slurp(d / "repo.jsonl");
      std::size_t n = 0;
      for (auto at = log.find(path); at != std::string::npos; at = log.find(path, at + 1)) ++n;
      return n;
    };
    CHECK(fetches_of("/certs/good.pem") == 1);
    const std::string metrics = c.get("/metrics").body;
    CHECK(metrics.find("yna_sti_verifications_total{result=\"passed\"} 2") != std::string::npos);
    CHECK(metrics.find("yna_sti_x5u_fetches_total{result=\"ok\"} 1") != std::string::npos);
    CHECK(metrics.find("yna_sti_cache_entries 1") != std::string::npos);
    // --sti-cache 1: another x5u takes the one place, so the first is fetched again.
    const std::string to3 = fresh_msisdn();
    CHECK(call(from, jose_sign(d / "rogue-leaf.key", passport_header(base + "/certs/rogue.pem"),
                               passport_claims(from, to3, now_seconds())),
               to3)
              .failure == "untrusted-chain");
    const std::string to4 = fresh_msisdn();
    CHECK(call(from, jose_sign(d / "good-leaf.key", passport_header(base + "/certs/good.pem"),
                               passport_claims(from, to4, now_seconds())),
               to4)
              .status == "TN-Validation-Passed");
    CHECK(fetches_of("/certs/good.pem") == 2);
    CHECK(c.get("/metrics").body.find("yna_sti_cache_entries 1") != std::string::npos);
  }
  SUBCASE("no identity: No-TN-Validation") {
    auto o = call(from, std::nullopt);
    CHECK(o.status == "No-TN-Validation");
    CHECK(o.attestation.empty());
  }
  SUBCASE("the negative matrix: one defect each, each its own recorded reason") {
    const std::string x5u = base + "/certs/good.pem";
    auto signed_for = [&](const std::string& to, const std::string& key, const std::string& url, std::int64_t iat,
                          std::string orig = {}, std::string dest = {}) {
      return jose_sign(d / key, passport_header(url), passport_claims(orig.empty() ? from : orig,
                                                                      dest.empty() ? to : dest, iat));
    };
    std::string to = fresh_msisdn();
    failed_with(call(from, signed_for(to, "rogue-leaf.key", x5u, now_seconds()), to), "bad-signature");  // wrong key
    to = fresh_msisdn();
    {
      const std::string t = signed_for(to, "good-leaf.key", x5u, now_seconds());
      const auto a = t.find('.'), b = t.find('.', a + 1);
      const std::string forged = t.substr(0, a + 1) +
                                 schemas::base64url_encode(passport_claims(from, to, now_seconds(), "A")) + t.substr(b);
      failed_with(call(from, forged, to), "bad-signature");  // tampered claims (attest B → A)
    }
    to = fresh_msisdn();
    failed_with(call(from, compact_jwt(R"({"alg":"none","ppt":"shaken","typ":"passport","x5u":")" + x5u + "\"}",
                                       passport_claims(from, to, now_seconds()), ""),
                     to),
                "bad-alg");
    to = fresh_msisdn();
    failed_with(call(from, compact_jwt(passport_header(x5u, "HS256"), passport_claims(from, to, now_seconds()), "0123456789abcdef"),
                     to),
                "bad-alg");
    to = fresh_msisdn();
    failed_with(call(from, signed_for(to, "good-leaf.key", x5u, now_seconds() - 61), to), "stale");
    to = fresh_msisdn();
    // More than 60 s ahead when it arrives, however long signing and sending took (the
    // exact bound, 60 s accepted and 61 s refused, is schemas/passport_test.cpp's, on a
    // fixed clock; here a second could pass between signing and the engine's check).
    failed_with(call(from, signed_for(to, "good-leaf.key", x5u, now_seconds() + 75), to), "future");
    to = fresh_msisdn();
    failed_with(call(from, signed_for(to, "good-leaf.key", x5u, now_seconds(), {}, fresh_msisdn()), to), "dest-mismatch");
    to = fresh_msisdn();
    failed_with(call(from, signed_for(to, "good-leaf.key", x5u, now_seconds(), fresh_msisdn()), to), "orig-mismatch");
    to = fresh_msisdn();
    failed_with(call(from, signed_for(to, "rogue-leaf.key", base + "/certs/rogue.pem", now_seconds()), to), "untrusted-chain");
    to = fresh_msisdn();
    failed_with(call(from, signed_for(to, "expired-leaf.key", base + "/certs/expired.pem", now_seconds()), to),
                "expired-certificate");
    to = fresh_msisdn();
    failed_with(call(from, signed_for(to, "bare-leaf.key", base + "/certs/bare.pem", now_seconds()), to), "no-tnauthlist");
    // x5u outside the allow-list, on the same server: never fetched.
    to = fresh_msisdn();
    failed_with(call(from, signed_for(to, "good-leaf.key", base + "/elsewhere/good.pem", now_seconds()), to), "x5u-not-allowed");
    CHECK(slurp(d / "repo.jsonl").find("/elsewhere/") == std::string::npos);
    // x5u at a loopback address the allow-list does not name: no connection at all.
    to = fresh_msisdn();
    failed_with(call(from, signed_for(to, "good-leaf.key", "https://127.0.0.2:" + std::to_string(oport) + "/certs/good.pem",
                                      now_seconds()),
                     to),
                "x5u-not-allowed");
    CHECK(slurp(d / "other.jsonl").empty());
    // An Identity header whose info names another certificate than the PASSporT's x5u.
    to = fresh_msisdn();
    failed_with(call(from, signed_for(to, "good-leaf.key", x5u, now_seconds()) + ";info=<" + base + "/certs/rogue.pem>;ppt=shaken",
                     to),
                "identity-header");
  }
  SUBCASE("an x5u that hangs: Failed after --sti-x5u-timeout, and other calls go on meanwhile") {
    const std::string to = fresh_msisdn();
    const std::string t = jose_sign(d / "good-leaf.key", passport_header(base + "/certs/hang"),
                                    passport_claims(from, to, now_seconds()));
    std::atomic<bool> hung_done{false};
    outcome hung;
    std::thread waiting([&] {
      hung = call(from, t, to);
      hung_done = true;
    });
    // Meanwhile a call by one of the engine's own users is answered while the hanging one
    // still waits.
    // Wait for the state (the repository got the request), not for a time.
    const auto asked_by = std::chrono::steady_clock::now() + 30s;
    while (slurp(d / "repo.jsonl").find("/certs/hang") == std::string::npos &&
           std::chrono::steady_clock::now() < asked_by)
      std::this_thread::sleep_for(10ms);
    REQUIRE(slurp(d / "repo.jsonl").find("/certs/hang") != std::string::npos);
    http_client c2(eng.port());
    const std::string own = fresh_msisdn(), callee = fresh_msisdn();
    auto r = c2.post("/start", start_body(own, callee, sdp("offer")), bearer(issuer_token(issuer, "u-" + own, false, {own}, "d")));
    CHECK(r.status == 200);
    CHECK_FALSE(hung_done.load());  // answered while the hanging fetch was still waiting
    // --sti-max-waiting 1: a second gateway /start needing a fetch meanwhile fails at once.
    const std::string to2 = fresh_msisdn();
    const std::string t2 = jose_sign(d / "good-leaf.key", passport_header(base + "/certs/good.pem"),
                                     passport_claims(from, to2, now_seconds()));
    failed_with(call(from, t2, to2), "x5u-unavailable");
    CHECK_FALSE(hung_done.load());
    waiting.join();
    failed_with(hung, "x5u-unavailable");
    // Once the fetch gave up, the limit is free again: the same PASSporT's chain is fetched.
    const std::string to3 = fresh_msisdn();
    CHECK(call(from, jose_sign(d / "good-leaf.key", passport_header(base + "/certs/good.pem"),
                               passport_claims(from, to3, now_seconds())),
               to3)
              .status == "TN-Validation-Passed");
  }
}

TEST_CASE("caller identity: a gateway is the MO party of its calls; only --gateway-sub tokens with gateway:true are gateways") {
  scratch_dir dir;
  const auto issuer = schemas::jose::private_key::generate_rsa(2048);
  spit(dir.path / "issuer.pem", issuer.public_part().to_pem());
  engine_process eng({"--jwt-public-key", (dir.path / "issuer.pem").string(), "--jwt-issuer", "corp", "--jwt-audience",
                      "yna", "--gateway-sub", "sbc-1", "--outbound-allow", "push.example.com",
                      "--max-calls-per-number", "2"});
  http_client c(eng.port());
  const std::string gw = issuer_token(issuer, "sbc-1", true, {}, "sbc-1a", "Edge SBC");
  const std::string outsider = fresh_msisdn(), mt = fresh_msisdn();
  const std::string mt_tok = issuer_token(issuer, "u-mt", false, {mt}, "phone", "Mia");
  auto gw_ws = ws_client::connect(eng.port(), "/notifications", bearer(gw, {{"X-Authorization", std::string(no_pop)}}));
  auto mt_ws = ws_client::connect(eng.port(), "/notifications", bearer(mt_tok, {{"X-Authorization", std::string(no_pop)}}));

  auto r = c.post("/start", gateway_start(outsider, mt, std::nullopt), bearer(gw));
  REQUIRE_200(r);
  const std::string id = json_str(r.body, "/callId").value_or("");
  const auto invitation = mt_ws->next(std::chrono::seconds(10));
  REQUIRE(invitation.has_value());
  // The gateway's own name is not its caller's (contract §10 names come from the caller's token).
  CHECK_FALSE(json_has(*invitation, "/sessionInvitationNotification/originatorName"));
  CHECK_200(c.post("/ringing/" + id, "{}", bearer(mt_tok)));
  // The gateway, MO of the call, hears MT's progress on its socket.
  auto f = gw_ws->next(std::chrono::seconds(10));
  REQUIRE(f.has_value());
  CHECK(json_str(*f, "/sessionStatusNotification/status") == std::optional<std::string>("Ringing"));
  CHECK(json_str(*f, "/sessionStatusNotification/receiverName") == std::optional<std::string>("Mia"));
  auto v = c.get("/calls/" + id, bearer(gw));
  REQUIRE_200(v);
  CHECK(json_str(v.body, "/gateway") == std::optional<std::string>("sbc-1"));
  CHECK(json_str(v.body, "/verificationStatus") == std::optional<std::string>("No-TN-Validation"));
  // The owner of `from` is not MO of a gateway's call: it cannot end it.
  const std::string owner = issuer_token(issuer, "u-out", false, {outsider}, "x");
  CHECK(c.del("/end/" + id, bearer(owner)).status == 403);

  // Its clientCorrelators and its call cap are its own, not its callers' numbers'.
  auto with_correlator = [&](const std::string& f, const std::string& t, const std::string& corr) {
    return "{\"to\":" + json_quote(t) + ",\"from\":" + json_quote(f) + ",\"sdp\":" + json_quote(sdp("offer")) +
           ",\"clientCorrelator\":" + json_quote(corr) + "}";
  };
  const std::string mt2 = fresh_msisdn();
  auto g1 = c.post("/start", with_correlator(outsider, mt2, "c-1"), bearer(gw));
  REQUIRE_200(g1);
  auto g1_again = c.post("/start", with_correlator(outsider, mt2, "c-1"), bearer(gw));
  REQUIRE_200(g1_again);
  CHECK(json_str(g1_again.body, "/callId") == json_str(g1.body, "/callId"));  // the same call
  auto by_owner = c.post("/start", with_correlator(outsider, mt2, "c-1"), bearer(owner));
  REQUIRE_200(by_owner);
  CHECK(json_str(by_owner.body, "/callId") != json_str(g1.body, "/callId"));  // the number's own key
  // The gateway has two calls live (--max-calls-per-number 2), from two different numbers'
  // point of view one each: a third is refused all the same.
  auto third = c.post("/start", gateway_start(fresh_msisdn(), fresh_msisdn(), std::nullopt), bearer(gw));
  CHECK(third.status == 429);
  CHECK(third.body.find("TOO_MANY_CALLS") != std::string::npos);

  // A gateway's socket that reconnects with ?since replays its calls (indexed under its party).
  auto replayed = ws_client::connect(eng.port(), "/notifications?since=0",
                                     bearer(gw, {{"X-Authorization", std::string(no_pop)}}));
  bool ringing_seen = false;
  for (int i = 0; i < 20 && !ringing_seen; ++i) {
    auto frame = replayed->next(std::chrono::seconds(5));
    if (!frame) break;
    ringing_seen = call_id_of(*frame) == id && json_str(*frame, "/sessionStatusNotification/status") ==
                                                   std::optional<std::string>("Ringing");
  }
  CHECK(ringing_seen);
  CHECK_200(c.del("/end/" + id, bearer(gw)));

  // A token with gateway:true whose sub is not listed is not a gateway: it may not call
  // from a number it does not own (and, owning none, is refused outright).
  const std::string pretender = issuer_token(issuer, "sbc-2", true, {}, "x");
  CHECK(c.post("/start", gateway_start(outsider, mt, std::nullopt), bearer(pretender)).status == 401);
  const std::string pretender2 = issuer_token(issuer, "sbc-2", true, {fresh_msisdn()}, "x");
  CHECK(c.post("/start", gateway_start(outsider, mt, std::nullopt), bearer(pretender2)).status == 403);
  // A gateway registers no pusher: it owns no number to be woken for.
  CHECK(c.post("/pushers",
               R"({"url":"https://push.example.com/_matrix/push/v1/notify","appId":"a","pushkey":"k"})", bearer(gw))
            .status == 403);
  // Without --jwt-public-key there is no gateway (the development issuer mints for anyone).
  engine_process dev({"--gateway-sub", "sbc-1"}, false);
  CHECK_THROWS(dev.start());
}
