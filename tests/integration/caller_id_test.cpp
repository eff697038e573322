// Caller identity (contract §11) on the real binary, checked by implementations that are
// not ours: the PASSporT the engine signs for its own caller verifies with the `jose` npm
// package (tests/interop/passport.mjs) under the chain GET /sti/cert.pem serves, and that
// chain verifies with the `openssl` CLI against the development root in the data folder.
//
// Needs node, `npm ci --prefix tests/interop` and openssl (.ci/install-deps); a missing
// one FAILS the test rather than skipping it.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/integration/api_fixture.hpp"
#include "tests/integration/harness.hpp"

#ifndef YNA_INTEROP_DIR
#error "meson passes -DYNA_INTEROP_DIR=<source>/tests/interop"
#endif

using namespace integration;
namespace fs = std::filesystem;

namespace {

const fs::path interop_dir{YNA_INTEROP_DIR};

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

  // A restart keeps the same chain (made once, in the data folder).
  const std::string first_chain = cert.body;
  eng.restart();
  c.set_port(eng.port());
  CHECK(c.get("/sti/cert.pem").body == first_chain);
}
