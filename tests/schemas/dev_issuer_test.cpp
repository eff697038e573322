#include "schemas/dev_issuer.hpp"

#include <doctest/doctest.h>
#include <simdjson.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;
namespace jose = schemas::jose;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "dev-issuer-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("dev_issuer: created once, then loaded the same") {
  temp_dir dir;
  const auto data = dir.path / "data";  // does not exist yet
  auto first = schemas::load_or_create_dev_issuer(data);
  REQUIRE_MESSAGE(first.has_value(), (first ? "" : first.error()));
  CHECK(first->kid == "dev");
  CHECK(first->issuer == "yna-dev");
  CHECK(first->key.is_rsa());

  const auto key_file = data / "dev-issuer.key.pem";
  const auto pub_file = data / "dev-issuer.pub.pem";
  REQUIRE(fs::exists(key_file));
  REQUIRE(fs::exists(pub_file));
  struct stat st {};
  REQUIRE(::stat(key_file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(slurp(key_file).rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
  CHECK(slurp(pub_file) == first->key.public_part().to_pem());
  // No temporary files left behind.
  CHECK(std::distance(fs::directory_iterator(data), fs::directory_iterator()) == 2);

  auto second = schemas::load_or_create_dev_issuer(data);
  REQUIRE(second.has_value());
  CHECK(second->key.public_part() == first->key.public_part());
  CHECK(slurp(key_file) == first->key.to_pem());

  SUBCASE("a missing public file is rewritten") {
    fs::remove(pub_file);
    auto third = schemas::load_or_create_dev_issuer(data);
    REQUIRE(third.has_value());
    CHECK(slurp(pub_file) == first->key.public_part().to_pem());
  }
}

TEST_CASE("dev_issuer: concurrent creators agree on one key") {
  temp_dir dir;
  constexpr int n = 4;
  std::vector<std::optional<std::string>> pems(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      auto issuer = schemas::load_or_create_dev_issuer(dir.path);
      if (issuer) pems[i] = issuer->key.public_part().to_pem();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < n; ++i) {
    REQUIRE(pems[i].has_value());
    CHECK(*pems[i] == *pems[0]);
  }
  CHECK(slurp(dir.path / "dev-issuer.pub.pem") == *pems[0]);
}

TEST_CASE("dev_issuer: an unusable key file is an error, not replaced") {
  temp_dir dir;
  const auto key_file = dir.path / "dev-issuer.key.pem";
  std::ofstream(key_file) << "garbage";
  auto issuer = schemas::load_or_create_dev_issuer(dir.path);
  REQUIRE_FALSE(issuer.has_value());
  CHECK(issuer.error().find("dev-issuer.key.pem") != std::string::npos);
  CHECK(slurp(key_file) == "garbage");

  SUBCASE("an EC key is refused: the dev issuer signs RS256") {
    std::ofstream(key_file, std::ios::trunc) << jose::private_key::generate_ec_p256().to_pem();
    auto ec = schemas::load_or_create_dev_issuer(dir.path);
    REQUIRE_FALSE(ec.has_value());
    CHECK(ec.error().find("RSA") != std::string::npos);
  }
}

TEST_CASE("dev_issuer: minted token has the documented header and claims") {
  temp_dir dir;
  auto issuer = schemas::load_or_create_dev_issuer(dir.path);
  REQUIRE(issuer.has_value());
  const auto device_key = jose::private_key::generate_ec_p256().public_part();

  schemas::access_claims claims;
  claims.sub = "alice \"A\"";
  claims.msisdns = {"14254369410", "14254369411"};
  claims.device_id = "phone-1";
  claims.cnf_jwk_json = device_key.to_jwk_json();
  claims.iat = 1700000000;
  claims.exp = 1700003600;
  claims.aud = "yna";
  const auto token = schemas::mint_access_token(*issuer, claims);

  auto jwt = jose::split_jwt(token);
  REQUIRE(jwt.has_value());
  CHECK(jwt->header_json == R"({"alg":"RS256","typ":"JWT","kid":"dev"})");
  CHECK(jose::verify(issuer->key.public_part(), jose::alg::rs256, jwt->signing_input, jwt->signature));
  CHECK(jwt->payload_json ==
        R"({"iss":"yna-dev","sub":"alice \"A\"","msisdns":["14254369410","14254369411"],"device_id":"phone-1",)"
        R"("cnf":{"jwk":)" + device_key.to_jwk_json() +
            R"(},"iat":1700000000,"exp":1700003600,"aud":"yna"})");

  SUBCASE("optional claims are omitted") {
    claims.device_id.clear();
    claims.cnf_jwk_json.reset();
    claims.aud.reset();
    auto bare = jose::split_jwt(schemas::mint_access_token(*issuer, claims));
    REQUIRE(bare.has_value());
    CHECK(bare->payload_json ==
          R"({"iss":"yna-dev","sub":"alice \"A\"","msisdns":["14254369410","14254369411"],"iat":1700000000,"exp":1700003600})");
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    CHECK(parser.parse(bare->payload_json).get(doc) == simdjson::SUCCESS);
  }
}
