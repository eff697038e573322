// transport/caller_id.hpp without sockets: the x5u allow-list, the signer's files and its
// PASSporTs, gateway tokens (contract §11). Fetching and the whole STI-VS run against the
// real binary in tests/integration/caller_id_test.cpp.
#include "transport/caller_id.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "schemas/dev_issuer.hpp"
#include "schemas/passport.hpp"
#include "schemas/sti_cert.hpp"
#include "transport/auth.hpp"

namespace fs = std::filesystem;
using transport::x5u_allowed;

TEST_CASE("caller_id: x5u must start with an --sti-x5u-allow prefix as a URL, not as text") {
  const std::vector<std::string> allow{"https://cert.example.com/sti/", "https://127.0.0.1:8443/certs"};
  CHECK(x5u_allowed("https://cert.example.com/sti/a.pem", allow));
  CHECK(x5u_allowed("https://CERT.example.com/sti/a.pem", allow));  // host names are case-insensitive
  CHECK(x5u_allowed("https://127.0.0.1:8443/certs/a.pem", allow));
  CHECK(x5u_allowed("https://127.0.0.1:8443/certs", allow));
  CHECK_FALSE(x5u_allowed("https://127.0.0.1:8443/certsx/a.pem", allow));     // not under the path
  CHECK_FALSE(x5u_allowed("https://cert.example.com.evil.net/sti/a.pem", allow));
  CHECK_FALSE(x5u_allowed("https://cert.example.com:444/sti/a.pem", allow));  // another port
  CHECK_FALSE(x5u_allowed("http://cert.example.com/sti/a.pem", allow));       // not HTTPS
  CHECK_FALSE(x5u_allowed("https://127.0.0.2:8443/certs/a.pem", allow));      // another address
  CHECK_FALSE(x5u_allowed("https://cert.example.com/other/a.pem", allow));
  CHECK_FALSE(x5u_allowed("https://cert.example.com/sti/a.pem", {}));
  CHECK_FALSE(x5u_allowed("not a url", allow));
}

TEST_CASE("caller_id: the development chain is made once in the data folder and signs verifiable PASSporTs") {
  const fs::path dir = fs::temp_directory_path() / ("yna-sti-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::int64_t now = 1'800'000'000;
  auto s = transport::load_sti_signer(std::nullopt, std::nullopt, dir, "https://x.example/sti/cert.pem", now);
  REQUIRE(s);
  CHECK(fs::exists(dir / "sti" / "chain.pem"));
  CHECK((fs::status(dir / "sti" / "key.pem").permissions() & fs::perms::group_read) == fs::perms::none);
  auto again = transport::load_sti_signer(std::nullopt, std::nullopt, dir, "https://x.example/sti/cert.pem", now);
  REQUIRE(again);
  CHECK(again->chain_pem == s->chain_pem);  // the same chain, not a new one

  const auto id = transport::sign_start(*s, "12025550100", "12025550199", now);
  CHECK(id.status == schemas::passport::verification::passed);
  CHECK(id.attest == 'A');
  auto d = schemas::passport::decode(id.passport);
  REQUIRE(d);
  CHECK(d->head.x5u == "https://x.example/sti/cert.pem");
  std::ifstream root_in(s->root_file);
  std::stringstream root;
  root << root_in.rdbuf();
  auto trust = schemas::sti::trust_store::from_pem(root.str());
  REQUIRE(trust);
  auto chain = trust->verify(s->chain_pem, now);
  REQUIRE(chain);
  CHECK(schemas::passport::signature_ok(*d, chain->key));
  CHECK_FALSE(schemas::passport::check_call(d->body, "12025550100", "12025550199", now));

  // --sti-cert and --sti-key go together, and the key must be the certificate's.
  CHECK_FALSE(transport::load_sti_signer(std::string((dir / "sti" / "chain.pem").string()), std::nullopt, dir, "", now));
  const auto other = schemas::sti::make_dev_chain("X", now);
  {
    std::ofstream(dir / "other-key.pem") << other.key_pem;
  }
  auto mismatched = transport::load_sti_signer((dir / "sti" / "chain.pem").string(), (dir / "other-key.pem").string(),
                                               dir, "", now);
  REQUIRE_FALSE(mismatched);
  CHECK(mismatched.error().find("is not the key of") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("caller_id: a token is a gateway only with gateway:true and its sub in --gateway-sub") {
  const auto key = schemas::jose::private_key::generate_rsa(2048);
  transport::issuer_config cfg;
  cfg.keys.push_back(transport::trusted_key{"k", key.public_part()});
  cfg.gateway_subs = {"sbc-1"};
  transport::token_verifier v(cfg, 0);
  const std::int64_t now = 1'800'000'000;
  auto tok = [&](std::string claims) {
    return schemas::jose::sign_jwt(key, schemas::jose::alg::rs256, R"({"alg":"RS256","kid":"k"})", claims);
  };
  auto gw = v.verify_token(tok(R"({"sub":"sbc-1","gateway":true,"exp":1800000100})"), now);
  REQUIRE(gw);
  CHECK(gw->gateway);
  CHECK(gw->msisdns.empty());
  // Numbers in a gateway's token are not read: it owns none.
  auto gw2 = v.verify_token(tok(R"({"sub":"sbc-1","gateway":true,"msisdns":["12025550100"],"exp":1800000100})"), now);
  REQUIRE(gw2);
  CHECK(gw2->msisdns.empty());
  // Not listed: an ordinary token, which must own a number.
  CHECK_FALSE(v.verify_token(tok(R"({"sub":"sbc-2","gateway":true,"exp":1800000100})"), now));
  auto user = v.verify_token(tok(R"({"sub":"sbc-2","gateway":true,"msisdns":["12025550100"],"exp":1800000100})"), now);
  REQUIRE(user);
  CHECK_FALSE(user->gateway);
  // Listed, without the claim (or with it false, or not a boolean).
  auto plain = v.verify_token(tok(R"({"sub":"sbc-1","msisdns":["12025550100"],"exp":1800000100})"), now);
  REQUIRE(plain);
  CHECK_FALSE(plain->gateway);
  CHECK_FALSE(v.verify_token(tok(R"({"sub":"sbc-1","gateway":"yes","msisdns":["1202555"],"exp":1800000100})"), now));
}
