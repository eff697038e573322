#include "schemas/jose.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <string>

#include "schemas/base64url.hpp"
#include "schemas/digest.hpp"

namespace jose = schemas::jose;
using jose::alg;
using jose::jose_error;

namespace {

// RFC 7515 Appendix A.2 (RS256) and A.3 (ES256): public keys and the example JWSs.
constexpr const char* rfc_rsa_jwk =
    R"({"kty":"RSA","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"})";
constexpr const char* rfc_rs256_token =
    "eyJhbGciOiJSUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujG"
    "bds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZ"
    "RmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98"
    "rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
constexpr const char* rfc_ec_jwk =
    R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})";
constexpr const char* rfc_es256_token =
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

// RFC 7638 §3.1: this key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
constexpr const char* rfc7638_jwk =
    R"({"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"})";

const jose::private_key& rsa_key() {
  static const auto key = jose::private_key::generate_rsa();
  return key;
}
const jose::private_key& ec_key() {
  static const auto key = jose::private_key::generate_ec_p256();
  return key;
}

std::string flip(std::string s, std::size_t at) {
  s[at] = static_cast<char>(s[at] ^ 0x01);
  return s;
}

// A PEM made directly with OpenSSL, for key types jose must refuse.
std::string foreign_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace

TEST_CASE("jose: parse_alg accepts exactly RS256 and ES256") {
  CHECK(jose::parse_alg("RS256") == alg::rs256);
  CHECK(jose::parse_alg("ES256") == alg::es256);
  for (const char* other : {"none", "None", "HS256", "RS384", "RS512", "PS256", "ES384", "EdDSA", "rs256", "RS256 ", ""}) {
    CAPTURE(other);
    CHECK_FALSE(jose::parse_alg(other).has_value());
  }
}

TEST_CASE("jose: split_jwt") {
  const std::string token = rfc_rs256_token;
  SUBCASE("three parts decode; signing input views into the token") {
    auto jwt = jose::split_jwt(token);
    REQUIRE(jwt.has_value());
    CHECK(jwt->header_json == R"({"alg":"RS256"})");
    CHECK(jwt->payload_json.find(R"("iss":"joe")") != std::string::npos);
    CHECK(jwt->signature.size() == 256);
    CHECK(jwt->signing_input.data() == token.data());
    CHECK(jwt->signing_input.size() == token.rfind('.'));
  }
  SUBCASE("an empty signature part is allowed (alg none is rejected later)") {
    auto jwt = jose::split_jwt("eyJhbGciOiJub25lIn0.e30.");
    REQUIRE(jwt.has_value());
    CHECK(jwt->signature.empty());
  }
  SUBCASE("malformed shapes") {
    for (const char* bad : {"", "abc", "eyJhbGciOiJub25lIn0.e30", "a.b.c.d", ".e30.", "e30..", "e3=.e30.", "e30.e30.a+b"}) {
      CAPTURE(bad);
      auto jwt = jose::split_jwt(bad);
      REQUIRE_FALSE(jwt.has_value());
      CHECK(jwt.error() == jose_error::malformed);
    }
  }
  SUBCASE("over 16 KiB") {
    const std::string big = "e30." + std::string(jose::max_jwt_bytes, 'A') + ".e30";
    auto jwt = jose::split_jwt(big);
    REQUIRE_FALSE(jwt.has_value());
    CHECK(jwt.error() == jose_error::malformed);
  }
}

TEST_CASE("jose: RS256 sign/verify round trip") {
  const auto pub = rsa_key().public_part();
  CHECK(pub.is_rsa());
  CHECK_FALSE(pub.is_ec_p256());
  const std::string input = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0";
  const auto sig = jose::sign(rsa_key(), alg::rs256, input);
  CHECK(sig.size() == 256);
  CHECK(jose::verify(pub, alg::rs256, input, sig));
  CHECK_FALSE(jose::verify(pub, alg::rs256, input, flip(sig, 0)));
  CHECK_FALSE(jose::verify(pub, alg::rs256, input, flip(sig, sig.size() - 1)));
  CHECK_FALSE(jose::verify(pub, alg::rs256, flip(input, 5), sig));
  CHECK_FALSE(jose::verify(pub, alg::rs256, input, sig.substr(1)));
  CHECK_FALSE(jose::verify(pub, alg::rs256, input, ""));
  // Another RSA key does not verify it.
  CHECK_FALSE(jose::verify(jose::private_key::generate_rsa().public_part(), alg::rs256, input, sig));
}

TEST_CASE("jose: ES256 sign/verify round trip with raw r||s") {
  const auto pub = ec_key().public_part();
  CHECK(pub.is_ec_p256());
  CHECK_FALSE(pub.is_rsa());
  const std::string input = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0";
  const auto sig = jose::sign(ec_key(), alg::es256, input);
  REQUIRE(sig.size() == 64);
  CHECK(jose::verify(pub, alg::es256, input, sig));
  CHECK_FALSE(jose::verify(pub, alg::es256, input, flip(sig, 10)));
  CHECK_FALSE(jose::verify(pub, alg::es256, input, flip(sig, 40)));
  CHECK_FALSE(jose::verify(pub, alg::es256, flip(input, 3), sig));
  CHECK_FALSE(jose::verify(pub, alg::es256, input, sig + '\0'));
  CHECK_FALSE(jose::verify(pub, alg::es256, input, sig.substr(0, 63)));
  CHECK_FALSE(jose::verify(pub, alg::es256, input, std::string(64, '\0')));
  // ECDSA is randomised: two signatures differ, both verify.
  const auto sig2 = jose::sign(ec_key(), alg::es256, input);
  CHECK(sig2 != sig);
  CHECK(jose::verify(pub, alg::es256, input, sig2));
}

TEST_CASE("jose: key type must match the alg") {
  const std::string input = "a.b";
  const auto rs_sig = jose::sign(rsa_key(), alg::rs256, input);
  const auto es_sig = jose::sign(ec_key(), alg::es256, input);
  CHECK_FALSE(jose::verify(rsa_key().public_part(), alg::es256, input, es_sig));
  CHECK_FALSE(jose::verify(ec_key().public_part(), alg::rs256, input, rs_sig));
  CHECK_FALSE(jose::verify(rsa_key().public_part(), alg::es256, input, rs_sig.substr(0, 64)));
  CHECK_THROWS_AS((void)jose::sign(rsa_key(), alg::es256, input), std::invalid_argument);
  CHECK_THROWS_AS((void)jose::sign(ec_key(), alg::rs256, input), std::invalid_argument);
}

TEST_CASE("jose: sign_jwt makes a compact JWS that splits and verifies") {
  const auto token = jose::sign_jwt(ec_key(), alg::es256, R"({"alg":"ES256"})", R"({"sub":"x"})");
  auto jwt = jose::split_jwt(token);
  REQUIRE(jwt.has_value());
  CHECK(jwt->header_json == R"({"alg":"ES256"})");
  CHECK(jwt->payload_json == R"({"sub":"x"})");
  CHECK(jose::verify(ec_key().public_part(), alg::es256, jwt->signing_input, jwt->signature));
}

TEST_CASE("jose: RFC 7515 example tokens verify with the RFC's keys") {
  SUBCASE("A.2 RS256") {
    auto key = jose::public_key::from_jwk(rfc_rsa_jwk);
    REQUIRE(key.has_value());
    const std::string token = rfc_rs256_token;
    auto jwt = jose::split_jwt(token);
    REQUIRE(jwt.has_value());
    CHECK(jose::verify(*key, alg::rs256, jwt->signing_input, jwt->signature));
    CHECK_FALSE(jose::verify(*key, alg::rs256, flip(std::string(jwt->signing_input), 30), jwt->signature));
  }
  SUBCASE("A.3 ES256") {
    auto key = jose::public_key::from_jwk(rfc_ec_jwk);
    REQUIRE(key.has_value());
    const std::string token = rfc_es256_token;
    auto jwt = jose::split_jwt(token);
    REQUIRE(jwt.has_value());
    CHECK(jose::verify(*key, alg::es256, jwt->signing_input, jwt->signature));
    CHECK_FALSE(jose::verify(*key, alg::es256, jwt->signing_input, flip(jwt->signature, 63)));
  }
}

TEST_CASE("jose: JWK export is canonical (RFC 7638 thumbprint)") {
  auto key = jose::public_key::from_jwk(rfc7638_jwk);
  REQUIRE(key.has_value());
  const auto json = key->to_jwk_json();
  CHECK(json.rfind(R"({"e":"AQAB","kty":"RSA","n":"0vx7ago)", 0) == 0);
  CHECK(schemas::base64url_encode(schemas::to_bytes(schemas::sha256(json))) ==
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST_CASE("jose: JWK round trip") {
  for (const auto* key : {&rsa_key(), &ec_key()}) {
    const auto pub = key->public_part();
    const auto json = pub.to_jwk_json();
    CAPTURE(json);
    auto back = jose::public_key::from_jwk(json);
    REQUIRE(back.has_value());
    CHECK(*back == pub);
    CHECK(back->to_jwk_json() == json);
    CHECK(back->is_rsa() == pub.is_rsa());
    const alg a = pub.is_rsa() ? alg::rs256 : alg::es256;
    CHECK(jose::verify(*back, a, "x.y", jose::sign(*key, a, "x.y")));
  }
  CHECK_FALSE(rsa_key().public_part() == ec_key().public_part());
  CHECK_FALSE(rsa_key().public_part() == jose::private_key::generate_rsa().public_part());
}

TEST_CASE("jose: JWK rejects what is not an RS256/ES256 public key") {
  const auto expect = [](const std::string& json, jose_error e) {
    CAPTURE(json);
    auto key = jose::public_key::from_jwk(json);
    REQUIRE_FALSE(key.has_value());
    CHECK(key.error() == e);
  };
  const auto ec = ec_key().public_part().to_jwk_json();
  expect("", jose_error::malformed);
  expect("[]", jose_error::malformed);
  expect("{", jose_error::malformed);
  expect(R"({"kty":"RSA","e":"AQAB"})", jose_error::malformed);
  expect(R"({"kty":"RSA","n":5,"e":"AQAB"})", jose_error::malformed);
  expect(R"({"kty":"RSA","n":"a+b","e":"AQAB"})", jose_error::malformed);
  expect(R"({"kty":"oct","k":"AAAA"})", jose_error::unsupported_alg);
  expect(R"({"kty":"OKP","crv":"Ed25519","x":"AAAA"})", jose_error::unsupported_alg);
  expect(R"({"kty":"EC","crv":"P-384","x":"AAAA","y":"AAAA"})", jose_error::unsupported_alg);
  // 1024-bit modulus: under the RS256 minimum.
  expect(R"({"kty":"RSA","e":"AQAB","n":")" + schemas::base64url_encode(std::string(127, '\xc3') + '\x01') + R"("})",
         jose_error::bad_key);
  // Even modulus and e = 1 are not RSA keys.
  expect(R"({"kty":"RSA","e":"AQAB","n":")" + schemas::base64url_encode(std::string(256, '\xc2')) + R"("})",
         jose_error::bad_key);
  expect(R"({"kty":"RSA","e":"AQ","n":")" + schemas::base64url_encode(std::string(256, '\xc3')) + R"("})",
         jose_error::bad_key);
  // A point that is not on P-256 (y changed), and a short coordinate.
  std::string off_curve = ec;
  const auto y_at = off_curve.find(R"("y":")") + 6;
  off_curve[y_at] = off_curve[y_at] == 'A' ? 'B' : 'A';
  expect(off_curve, jose_error::bad_key);
  expect(R"({"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"})", jose_error::bad_key);
}

TEST_CASE("jose: PEM round trips and refusals") {
  SUBCASE("public PEM") {
    for (const auto* key : {&rsa_key(), &ec_key()}) {
      const auto pem = key->public_part().to_pem();
      CHECK(pem.rfind("-----BEGIN PUBLIC KEY-----", 0) == 0);
      auto back = jose::public_key::from_pem(pem);
      REQUIRE(back.has_value());
      CHECK(*back == key->public_part());
    }
  }
  SUBCASE("private PEM is PKCS#8 and signs the same") {
    for (const auto* key : {&rsa_key(), &ec_key()}) {
      const auto pem = key->to_pem();
      CHECK(pem.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
      auto back = jose::private_key::from_pem(pem);
      REQUIRE(back.has_value());
      CHECK(back->public_part() == key->public_part());
      const alg a = key->is_rsa() ? alg::rs256 : alg::es256;
      CHECK(jose::verify(key->public_part(), a, "p.q", jose::sign(*back, a, "p.q")));
      // A private PEM given as a public key yields its public half.
      auto pub = jose::public_key::from_pem(pem);
      REQUIRE(pub.has_value());
      CHECK(*pub == key->public_part());
      CHECK(pub->to_pem().find("PRIVATE") == std::string::npos);
    }
  }
  SUBCASE("a public PEM is not a private key") {
    auto priv = jose::private_key::from_pem(rsa_key().public_part().to_pem());
    REQUIRE_FALSE(priv.has_value());
    CHECK(priv.error() == jose_error::malformed);
  }
  SUBCASE("garbage") {
    auto key = jose::public_key::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    REQUIRE_FALSE(key.has_value());
    CHECK(key.error() == jose_error::malformed);
    CHECK_FALSE(jose::private_key::from_pem("not a pem").has_value());
  }
  SUBCASE("other key types and short RSA") {
    auto ed = jose::public_key::from_pem(foreign_pem(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")));
    REQUIRE_FALSE(ed.has_value());
    CHECK(ed.error() == jose_error::unsupported_alg);
    auto p384 = jose::public_key::from_pem(foreign_pem(EVP_EC_gen("P-384")));
    REQUIRE_FALSE(p384.has_value());
    CHECK(p384.error() == jose_error::unsupported_alg);
    auto short_rsa = jose::public_key::from_pem(foreign_pem(EVP_RSA_gen(1024)));
    REQUIRE_FALSE(short_rsa.has_value());
    CHECK(short_rsa.error() == jose_error::bad_key);
  }
  CHECK_THROWS_AS((void)jose::private_key::generate_rsa(1024), std::invalid_argument);
}

TEST_CASE("jose: to_string names every error") {
  CHECK(jose::to_string(jose_error::bad_signature) == "bad_signature");
  CHECK(jose::to_string(alg::es256) == "ES256");
  CHECK(jose::to_string(alg::rs256) == "RS256");
}

TEST_CASE("jose: from_native shares an OpenSSL key already parsed, with from_pem's checks") {
  const auto ec = schemas::jose::private_key::generate_ec_p256();
  auto k = schemas::jose::public_key::from_native(ec.public_part().native_handle());
  REQUIRE(k.has_value());
  CHECK(*k == ec.public_part());
  CHECK(k->is_ec_p256());
  // The private handle gives its public half only.
  auto from_private = schemas::jose::public_key::from_native(ec.native_handle());
  REQUIRE(from_private.has_value());
  CHECK(*from_private == ec.public_part());
  CHECK_FALSE(schemas::jose::public_key::from_native(nullptr).has_value());
}
