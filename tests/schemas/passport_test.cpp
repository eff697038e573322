// SHAKEN PASSporTs and STI certificates (contract §11): schemas/passport.hpp and
// schemas/sti_cert.hpp, without sockets. The interop with other implementations (jose,
// the openssl CLI) is in tests/integration/caller_id_test.cpp.
#include "schemas/passport.hpp"

#include <doctest/doctest.h>

#include "schemas/base64url.hpp"
#include "schemas/sti_cert.hpp"

namespace pp = schemas::passport;
namespace sti = schemas::sti;
using schemas::jose::private_key;

namespace {

constexpr std::int64_t now = 1'800'000'000;
constexpr std::string_view x5u = "https://cert.example.com/sti.pem";

pp::claims sample() {
  pp::claims c;
  c.attest = 'A';
  c.orig = "12025550100";
  c.dest = {"12025550199"};
  c.iat = now;
  c.origid = "123e4567-e89b-12d3-a456-426655440000";
  return c;
}

// A token with its header or claims replaced by `json` (part 0 or 1), signature kept.
std::string with_part(const std::string& token, int part, std::string_view json) {
  const auto a = token.find('.'), b = token.find('.', a + 1);
  const std::string enc = schemas::base64url_encode(json);
  return part == 0 ? enc + token.substr(a) : token.substr(0, a + 1) + enc + token.substr(b);
}

}  // namespace

TEST_CASE("passport: signed, decoded and verified; claims in lexicographic order") {
  const auto key = private_key::generate_ec_p256();
  const std::string token = pp::sign(key, x5u, sample());
  const auto a = token.find('.'), b = token.find('.', a + 1);
  CHECK(*schemas::base64url_decode(token.substr(0, a)) ==
        R"({"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://cert.example.com/sti.pem"})");
  CHECK(*schemas::base64url_decode(token.substr(a + 1, b - a - 1)) ==
        R"({"attest":"A","dest":{"tn":["12025550199"]},"iat":1800000000,"orig":{"tn":"12025550100"},)"
        R"("origid":"123e4567-e89b-12d3-a456-426655440000"})");
  auto d = pp::decode(token);
  REQUIRE(d);
  CHECK(d->head.x5u == x5u);
  CHECK(d->body == sample());
  CHECK(pp::signature_ok(*d, key.public_part()));
  CHECK_FALSE(pp::signature_ok(*d, private_key::generate_ec_p256().public_part()));  // wrong key
  CHECK_FALSE(pp::signature_ok(*d, private_key::generate_rsa().public_part()));
  CHECK_FALSE(pp::check_call(d->body, "12025550100", "12025550199", now));
  CHECK_FALSE(pp::check_call(d->body, "+1-202-555-0100", "+12025550199", now + 60));  // canonical form, 60 s ok
}

TEST_CASE("passport: a div PASSporT names the diverting number") {
  const auto key = private_key::generate_ec_p256();
  pp::claims c = sample();
  c.div = "12025550177";
  auto d = pp::decode(pp::sign(key, x5u, c));
  REQUIRE(d);
  CHECK(d->head.ppt == "div");
  CHECK(d->body.div == std::optional<std::string>("12025550177"));
  CHECK(pp::signature_ok(*d, key.public_part()));
}

TEST_CASE("passport: every malformed or refused shape has its reason") {
  const auto key = private_key::generate_ec_p256();
  const std::string good = pp::sign(key, x5u, sample());
  auto reason = [](std::string_view t) {
    auto d = pp::decode(t);
    return d ? std::string("decoded") : std::string(pp::to_string(d.error()));
  };
  CHECK(reason("") == "malformed");
  CHECK(reason("a.b") == "malformed");
  CHECK(reason(std::string(5000, 'a')) == "malformed");
  CHECK(reason(with_part(good, 0, R"({"alg":"none","ppt":"shaken","typ":"passport","x5u":"https://a/b"})")) ==
        "bad-alg");
  CHECK(reason(with_part(good, 0, R"({"alg":"HS256","ppt":"shaken","typ":"passport","x5u":"https://a/b"})")) ==
        "bad-alg");
  CHECK(reason(with_part(good, 0, R"({"alg":"RS256","ppt":"shaken","typ":"passport","x5u":"https://a/b"})")) ==
        "bad-alg");
  CHECK(reason(with_part(good, 0, R"({"ppt":"shaken","typ":"passport","x5u":"https://a/b"})")) == "bad-alg");
  CHECK(reason(with_part(good, 0, R"({"alg":"ES256","ppt":"shaken","typ":"JWT","x5u":"https://a/b"})")) == "bad-typ");
  CHECK(reason(with_part(good, 0, R"({"alg":"ES256","ppt":"rph","typ":"passport","x5u":"https://a/b"})")) ==
        "bad-ppt");
  CHECK(reason(with_part(good, 0, R"({"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"http://a/b"})")) ==
        "bad-x5u");
  CHECK(reason(with_part(good, 0, R"({"alg":"ES256","ppt":"shaken","typ":"passport"})")) == "bad-x5u");
  CHECK(reason(with_part(good, 0, R"({"alg":"ES256","crit":["x"],"ppt":"shaken","typ":"passport","x5u":"https://a/b"})")) ==
        "malformed");
  CHECK(reason(with_part(good, 1, R"({"attest":"D","dest":{"tn":["1"]},"iat":1,"orig":{"tn":"2"},"origid":"x"})")) ==
        "bad-claims");
  CHECK(reason(with_part(good, 1, R"({"attest":"A","dest":{"tn":"1"},"iat":1,"orig":{"tn":"2"},"origid":"x"})")) ==
        "bad-claims");  // dest.tn is an array
  CHECK(reason(with_part(good, 1, R"({"attest":"A","dest":{"tn":["1"]},"iat":1.5,"orig":{"tn":"2"},"origid":"x"})")) ==
        "bad-claims");
  CHECK(reason(with_part(good, 1, R"({"attest":"A","dest":{"tn":["1"]},"iat":1,"orig":{"tn":"2x"},"origid":"x"})")) ==
        "bad-claims");
  CHECK(reason(with_part(good, 1, R"({"attest":"A","dest":{"tn":["1"]},"iat":1,"orig":{"tn":"2"}})")) == "bad-claims");
  CHECK(reason(with_part(good, 1, R"([1])")) == "malformed");
  // Tampered claims still decode; the signature no longer holds.
  const std::string tampered =
      with_part(good, 1, R"({"attest":"A","dest":{"tn":["12025550199"]},"iat":1800000000,"orig":{"tn":"12025550666"},)"
                         R"("origid":"123e4567-e89b-12d3-a456-426655440000"})");
  auto d = pp::decode(tampered);
  REQUIRE(d);
  CHECK_FALSE(pp::signature_ok(*d, key.public_part()));
}

TEST_CASE("passport: the call checks: iat 60 s either way, orig, dest") {
  const pp::claims c = sample();
  CHECK(pp::check_call(c, "12025550100", "12025550199", now + 61) == pp::failure::stale);
  CHECK(pp::check_call(c, "12025550100", "12025550199", now - 61) == pp::failure::future);
  CHECK_FALSE(pp::check_call(c, "12025550100", "12025550199", now - 60));
  CHECK(pp::check_call(c, "12025550101", "12025550199", now) == pp::failure::orig_mismatch);
  CHECK(pp::check_call(c, "12025550100", "12025550198", now) == pp::failure::dest_mismatch);
}

TEST_CASE("passport: the Identity header value (RFC 8224 §4.1)") {
  auto h = pp::parse_identity_header("abc.def.ghi;info=<https://cert.example.com/a.pem>;alg=ES256;ppt=\"shaken\"");
  REQUIRE(h);
  CHECK(h->token == "abc.def.ghi");
  CHECK(h->info == std::optional<std::string>("https://cert.example.com/a.pem"));
  CHECK(h->alg == std::optional<std::string>("ES256"));
  CHECK(h->ppt == std::optional<std::string>("shaken"));
  auto bare = pp::parse_identity_header("  abc.def.ghi ");
  REQUIRE(bare);
  CHECK(bare->token == "abc.def.ghi");
  CHECK_FALSE(bare->info);
  auto other = pp::parse_identity_header("abc.def.ghi;foo=bar;ppt=shaken");  // unknown parameters ignored
  REQUIRE(other);
  CHECK(pp::parse_identity_header("abc.def.ghi;alg=RS256").error() == pp::failure::bad_alg);
  CHECK(pp::parse_identity_header("abc.def.ghi;ppt=a;ppt=b").error() == pp::failure::identity_header);
  CHECK(pp::parse_identity_header("abc.def.ghi;;").error() == pp::failure::identity_header);
  CHECK(pp::parse_identity_header(";info=x").error() == pp::failure::identity_header);
  CHECK(pp::parse_identity_header("").error() == pp::failure::identity_header);
}

TEST_CASE("passport: names of statuses and reasons round-trip") {
  for (auto v : {pp::verification::none, pp::verification::passed, pp::verification::failed})
    CHECK(pp::parse_verification(pp::to_string(v)) == v);
  CHECK(pp::to_string(pp::verification::passed) == "TN-Validation-Passed");
  for (int i = 0; i <= static_cast<int>(pp::failure::identity_header); ++i) {
    const auto f = static_cast<pp::failure>(i);
    CHECK(pp::parse_failure(pp::to_string(f)) == f);
  }
  CHECK_FALSE(pp::parse_failure("nope"));
}

TEST_CASE("sti: the development chain verifies against its root, not another's; expiry and TNAuthList") {
  const auto chain = sti::make_dev_chain("1234", now, 30);
  CHECK(sti::split_pem_chain(chain.chain_pem).size() == 2);
  auto trust = sti::trust_store::from_pem(chain.root_pem);
  REQUIRE(trust);
  CHECK(trust->roots() == 1);
  auto key = trust->verify(chain.chain_pem, now);
  REQUIRE(key);
  // The chain's key signs what verifies under the certificate's key.
  const auto signer = private_key::from_pem(chain.key_pem);
  REQUIRE(signer);
  CHECK(key->key == signer->public_part());
  CHECK(key->not_after == now + 30 * 86400);  // every certificate: 30 days from now

  CHECK(trust->verify(chain.chain_pem, now + 31 * 86400).error() == pp::failure::expired_certificate);
  CHECK(trust->verify(chain.chain_pem, now - 2 * 3600).error() == pp::failure::expired_certificate);  // not yet valid

  const auto other = sti::make_dev_chain("1234", now, 30);
  auto other_trust = sti::trust_store::from_pem(other.root_pem);
  REQUIRE(other_trust);
  CHECK(other_trust->verify(chain.chain_pem, now).error() == pp::failure::untrusted_chain);
  // Without its intermediate the leaf leads nowhere.
  CHECK(trust->verify(sti::split_pem_chain(chain.chain_pem)[0], now).error() == pp::failure::untrusted_chain);

  const auto bare = sti::make_dev_chain("1234", now, 30, false);
  auto bare_trust = sti::trust_store::from_pem(bare.root_pem);
  REQUIRE(bare_trust);
  CHECK(bare_trust->verify(bare.chain_pem, now).error() == pp::failure::no_tnauthlist);

  CHECK(trust->verify("not a certificate", now).error() == pp::failure::bad_certificate);
  CHECK_FALSE(sti::trust_store::from_pem("nothing"));
  CHECK(sti::tnauthlist_der("1234") == std::string("\x30\x08\xA0\x06\x16\x04" "1234", 10));
}
