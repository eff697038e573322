// public_key / private_key: loading (PEM, JWK), generating and exporting keys.
#include "schemas/jose.hpp"

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <simdjson.h>

#include <stdexcept>
#include <vector>

#include "schemas/base64url.hpp"
#include "schemas/detail/openssl_handles.hpp"

namespace schemas::jose {

using namespace schemas::detail;

namespace {

constexpr int min_rsa_bits = 2048;    // RFC 7518 §3.3
constexpr int max_rsa_bits = 16384;   // bounds the cost of one verification
constexpr std::size_t max_pem_bytes = 1 << 20;
constexpr std::size_t max_jwk_bytes = 16 * 1024;
constexpr std::size_t p256_coord_bytes = 32;

// Encrypted keys are not supported; without this OpenSSL may prompt on the tty.
int refuse_passphrase(char*, std::size_t, std::size_t*, const OSSL_PARAM*, void*) { return 0; }

// Decodes the first key of the wanted kind in a PEM text; nullptr if none.
pkey_ptr decode_pem(std::string_view pem, int selection) {
  EVP_PKEY* raw = nullptr;
  decoder_ctx_ptr dctx(OSSL_DECODER_CTX_new_for_pkey(&raw, "PEM", nullptr, nullptr, selection,
                                                      nullptr, nullptr));
  if (!dctx) return nullptr;
  OSSL_DECODER_CTX_set_passphrase_cb(dctx.get(), refuse_passphrase, nullptr);
  auto* data = reinterpret_cast<const unsigned char*>(pem.data());
  std::size_t len = pem.size();
  if (OSSL_DECODER_from_data(dctx.get(), &data, &len) != 1) {
    EVP_PKEY_free(raw);
    return clear_errors(nullptr);
  }
  return pkey_ptr(raw);  // may be null: nothing of the wanted kind in the text
}

// A copy holding only the public half (SubjectPublicKeyInfo round trip).
pkey_ptr public_only(EVP_PKEY* p) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(p, &der);
  if (len <= 0) return clear_errors(nullptr);
  const unsigned char* cursor = der;
  pkey_ptr out(d2i_PUBKEY(nullptr, &cursor, len));
  OPENSSL_free(der);
  if (!out) ERR_clear_error();
  return out;
}

bn_ptr get_bn(const EVP_PKEY* p, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(p, name, &bn) != 1) return clear_errors(nullptr);
  return bn_ptr(bn);
}

std::string bn_bytes(const BIGNUM* bn, int pad_to = 0) {
  const int n = pad_to > 0 ? pad_to : BN_num_bytes(bn);
  std::string out(static_cast<std::size_t>(n), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), n);
  return out;
}

// Cheap sanity checks for an RSA public key. OpenSSL's EVP_PKEY_public_check would
// also run a Miller-Rabin round on n, too slow for keys parsed per request (cnf.jwk).
bool rsa_public_is_sane(const EVP_PKEY* p) {
  auto n = get_bn(p, OSSL_PKEY_PARAM_RSA_N);
  auto e = get_bn(p, OSSL_PKEY_PARAM_RSA_E);
  if (!n || !e) return false;
  return BN_is_odd(n.get()) && BN_is_odd(e.get()) && !BN_is_one(e.get()) &&
         BN_cmp(e.get(), n.get()) < 0;
}

bool ec_public_is_valid(EVP_PKEY* p) {
  pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, p, nullptr));
  return ctx && EVP_PKEY_public_check(ctx.get()) == 1 ? true : clear_errors(false);
}

pkey_ptr from_params(const char* type, OSSL_PARAM_BLD* bld) {
  params_ptr params(OSSL_PARAM_BLD_to_param(bld));
  pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return clear_errors(nullptr);
  }
  return pkey_ptr(raw);
}

std::optional<std::string> b64_member(simdjson::dom::object obj, std::string_view name) {
  std::string_view text;
  if (obj[name].get_string().get(text) != simdjson::SUCCESS) return std::nullopt;
  return base64url_decode(text);
}

result<pkey_ptr, jose_error> rsa_from_jwk(simdjson::dom::object obj) {
  auto n = b64_member(obj, "n");
  auto e = b64_member(obj, "e");
  if (!n || !e || n->empty() || e->empty()) return failure{jose_error::malformed};
  if (n->size() > max_rsa_bits / 8 + 1 || e->size() > n->size()) return failure{jose_error::bad_key};
  bn_ptr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()), nullptr));
  bn_ptr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()), nullptr));
  param_bld_ptr bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return clear_errors(failure{jose_error::crypto_failure});
  }
  auto key = from_params("RSA", bld.get());
  if (!key) return failure{jose_error::bad_key};
  return key;
}

result<pkey_ptr, jose_error> ec_from_jwk(simdjson::dom::object obj) {
  std::string_view crv;
  if (obj["crv"].get_string().get(crv) != simdjson::SUCCESS) return failure{jose_error::malformed};
  if (crv != "P-256") return failure{jose_error::unsupported_alg};
  auto x = b64_member(obj, "x");
  auto y = b64_member(obj, "y");
  if (!x || !y) return failure{jose_error::malformed};
  // RFC 7518 §6.2.1.2: each coordinate is exactly the full field size.
  if (x->size() != p256_coord_bytes || y->size() != p256_coord_bytes) return failure{jose_error::bad_key};
  const std::string point = '\x04' + *x + *y;  // SEC 1 uncompressed
  param_bld_ptr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    return clear_errors(failure{jose_error::crypto_failure});
  }
  auto key = from_params("EC", bld.get());
  if (!key) return failure{jose_error::bad_key};
  return key;
}

}  // namespace

// Every key enters through here, so the "RS256 or ES256 key" invariant holds.
struct detail::key_access {
  static result<public_key::kind, jose_error> classify(EVP_PKEY* p) {
    if (EVP_PKEY_is_a(p, "RSA")) {
      const int bits = EVP_PKEY_get_bits(p);
      if (bits < min_rsa_bits || bits > max_rsa_bits) return failure{jose_error::bad_key};
      return public_key::kind::rsa;
    }
    if (EVP_PKEY_is_a(p, "EC")) {
      char name[64] = {};
      std::size_t len = 0;
      if (EVP_PKEY_get_group_name(p, name, sizeof name, &len) != 1) {
        return clear_errors(failure{jose_error::bad_key});
      }
      const std::string_view group(name, len);
      if (group != "prime256v1" && group != "P-256") return failure{jose_error::unsupported_alg};
      return public_key::kind::ec_p256;
    }
    return failure{jose_error::unsupported_alg};  // RSA-PSS, Ed25519, DSA, ...
  }

  static result<public_key, jose_error> make_public(pkey_ptr key) {
    if (!key) return failure{jose_error::crypto_failure};
    auto kind = classify(key.get());
    if (!kind) return failure{kind.error()};
    auto pub = public_only(key.get());
    if (!pub) return failure{jose_error::crypto_failure};
    const bool sane = *kind == public_key::kind::rsa ? rsa_public_is_sane(pub.get())
                                                     : ec_public_is_valid(pub.get());
    if (!sane) return failure{jose_error::bad_key};
    return public_key(std::shared_ptr<evp_pkey_st>(pub.release(), EVP_PKEY_free), *kind);
  }

  static result<private_key, jose_error> make_private(pkey_ptr key) {
    const char* secret = EVP_PKEY_is_a(key.get(), "RSA") ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY;
    if (!get_bn(key.get(), secret)) return failure{jose_error::malformed};  // a public key
    auto pub = make_public(public_only(key.get()));
    if (!pub) return failure{pub.error()};
    return private_key(std::shared_ptr<evp_pkey_st>(key.release(), EVP_PKEY_free), std::move(*pub));
  }
};

result<public_key, jose_error> public_key::from_pem(std::string_view pem) {
  if (pem.size() > max_pem_bytes) return failure{jose_error::malformed};
  if (auto key = decode_pem(pem, EVP_PKEY_PUBLIC_KEY)) return detail::key_access::make_public(std::move(key));
  if (auto key = decode_pem(pem, EVP_PKEY_KEYPAIR)) return detail::key_access::make_public(std::move(key));
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio) {
    x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert) {
      if (pkey_ptr key{X509_get_pubkey(cert.get())}) return detail::key_access::make_public(std::move(key));
    }
  }
  return clear_errors(failure{jose_error::malformed});
}

result<public_key, jose_error> public_key::from_native(evp_pkey_st* pkey) {
  if (!pkey || EVP_PKEY_up_ref(pkey) != 1) return failure{jose_error::malformed};
  return detail::key_access::make_public(pkey_ptr(pkey));
}

result<public_key, jose_error> public_key::from_jwk(std::string_view jwk_json) {
  if (jwk_json.size() > max_jwk_bytes) return failure{jose_error::malformed};
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(jwk_json.data(), jwk_json.size()).get_object().get(obj) != simdjson::SUCCESS) {
    return failure{jose_error::malformed};
  }
  std::string_view kty;
  if (obj["kty"].get_string().get(kty) != simdjson::SUCCESS) return failure{jose_error::malformed};
  result<pkey_ptr, jose_error> key = kty == "RSA" ? rsa_from_jwk(obj)
                                     : kty == "EC" ? ec_from_jwk(obj)
                                                   : result<pkey_ptr, jose_error>(failure{jose_error::unsupported_alg});
  if (!key) return failure{key.error()};
  return detail::key_access::make_public(std::move(*key));
}

int public_key::bits() const noexcept { return EVP_PKEY_get_bits(pkey_.get()); }

bool public_key::is_device_grade_rsa() const noexcept {
  if (!is_rsa()) return false;
  const int b = bits();
  if (b < 2048 || b > 4096) return false;
  auto e = get_bn(pkey_.get(), OSSL_PKEY_PARAM_RSA_E);
  return e && BN_num_bits(e.get()) == 17 && BN_get_word(e.get()) == 65537;
}

std::string public_key::to_jwk_json() const {
  // Base64url text needs no JSON escaping.
  if (is_rsa()) {
    auto n = get_bn(pkey_.get(), OSSL_PKEY_PARAM_RSA_N);
    auto e = get_bn(pkey_.get(), OSSL_PKEY_PARAM_RSA_E);
    if (!n || !e) throw std::runtime_error("jose: cannot read RSA public key");
    return R"({"e":")" + base64url_encode(bn_bytes(e.get())) + R"(","kty":"RSA","n":")" +
           base64url_encode(bn_bytes(n.get())) + R"("})";
  }
  auto x = get_bn(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_X);
  auto y = get_bn(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_Y);
  if (!x || !y) throw std::runtime_error("jose: cannot read EC public key");
  return R"({"crv":"P-256","kty":"EC","x":")" + base64url_encode(bn_bytes(x.get(), p256_coord_bytes)) +
         R"(","y":")" + base64url_encode(bn_bytes(y.get(), p256_coord_bytes)) + R"("})";
}

std::string public_key::to_pem() const {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) != 1) {
    throw std::runtime_error("jose: cannot write public key PEM");
  }
  return bio_contents(bio.get());
}

bool operator==(const public_key& a, const public_key& b) noexcept {
  return EVP_PKEY_eq(a.pkey_.get(), b.pkey_.get()) == 1 ? true : clear_errors(false);
}

private_key private_key::generate_rsa(int bits) {
  if (bits < min_rsa_bits || bits > max_rsa_bits) throw std::invalid_argument("jose: RSA key size out of range");
  pkey_ptr key(EVP_RSA_gen(static_cast<unsigned int>(bits)));
  if (!key) throw std::runtime_error("jose: RSA key generation failed");
  auto made = detail::key_access::make_private(std::move(key));
  if (!made) throw std::runtime_error("jose: generated RSA key unusable");
  return std::move(*made);
}

private_key private_key::generate_ec_p256() {
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) throw std::runtime_error("jose: EC key generation failed");
  auto made = detail::key_access::make_private(std::move(key));
  if (!made) throw std::runtime_error("jose: generated EC key unusable");
  return std::move(*made);
}

result<private_key, jose_error> private_key::from_pem(std::string_view pem) {
  if (pem.size() > max_pem_bytes) return failure{jose_error::malformed};
  auto key = decode_pem(pem, EVP_PKEY_KEYPAIR);
  if (!key) return failure{jose_error::malformed};
  return detail::key_access::make_private(std::move(key));
}

std::string private_key::to_pem() const {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw std::runtime_error("jose: cannot write private key PEM");
  }
  return bio_contents(bio.get());
}

public_key private_key::public_part() const { return public_; }

}  // namespace schemas::jose
