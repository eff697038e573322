// Compact JWS: splitting, RS256/ES256 signing and verification.
#include "schemas/jose.hpp"

#include <openssl/rsa.h>

#include <stdexcept>

#include "schemas/base64url.hpp"
#include "schemas/detail/openssl_handles.hpp"

namespace schemas::jose {

using namespace schemas::detail;

namespace {

constexpr std::size_t es256_half = 32;  // r and s are each one P-256 field element

bool key_matches(const public_key& key, alg a) noexcept {
  return a == alg::rs256 ? key.is_rsa() : key.is_ec_p256();
}

// JWS carries ECDSA signatures as fixed-width r||s; OpenSSL wants DER.
std::string raw_to_der(std::string_view raw) {
  ecdsa_sig_ptr sig(ECDSA_SIG_new());
  bn_ptr r(BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), es256_half, nullptr));
  bn_ptr s(BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + es256_half, es256_half, nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return clear_errors(std::string());
  r.release();  // owned by sig now
  s.release();
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return clear_errors(std::string());
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string der_to_raw(std::string_view der) {
  const auto* cursor = reinterpret_cast<const unsigned char*>(der.data());
  ecdsa_sig_ptr sig(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
  if (!sig) return clear_errors(std::string());
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(2 * es256_half, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, bytes, es256_half) < 0 || BN_bn2binpad(s, bytes + es256_half, es256_half) < 0) {
    return clear_errors(std::string());
  }
  return out;
}

// RS256 is PKCS#1 v1.5 padding; say so rather than rely on the provider default.
bool set_padding(EVP_PKEY_CTX* pctx, alg a) {
  return a != alg::rs256 || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
}

}  // namespace

std::string_view to_string(jose_error e) noexcept {
  switch (e) {
    case jose_error::malformed: return "malformed";
    case jose_error::unsupported_alg: return "unsupported_alg";
    case jose_error::bad_key: return "bad_key";
    case jose_error::bad_signature: return "bad_signature";
    case jose_error::crypto_failure: return "crypto_failure";
  }
  return "unknown";
}

std::optional<alg> parse_alg(std::string_view name) noexcept {
  if (name == "RS256") return alg::rs256;
  if (name == "ES256") return alg::es256;
  return std::nullopt;
}

std::string_view to_string(alg a) noexcept { return a == alg::rs256 ? "RS256" : "ES256"; }

result<jwt_view, jose_error> split_jwt(std::string_view compact) {
  if (compact.size() > max_jwt_bytes) return failure{jose_error::malformed};
  const auto dot1 = compact.find('.');
  if (dot1 == std::string_view::npos) return failure{jose_error::malformed};
  const auto dot2 = compact.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || compact.find('.', dot2 + 1) != std::string_view::npos) {
    return failure{jose_error::malformed};
  }
  const auto header_b64 = compact.substr(0, dot1);
  const auto payload_b64 = compact.substr(dot1 + 1, dot2 - dot1 - 1);
  if (header_b64.empty() || payload_b64.empty()) return failure{jose_error::malformed};
  auto header = base64url_decode(header_b64);
  auto payload = base64url_decode(payload_b64);
  auto signature = base64url_decode(compact.substr(dot2 + 1));
  if (!header || !payload || !signature) return failure{jose_error::malformed};
  return jwt_view{std::move(*header), std::move(*payload), compact.substr(0, dot2), std::move(*signature)};
}

bool verify(const public_key& key, alg a, std::string_view signing_input, std::string_view signature) {
  if (!key_matches(key, a)) return false;
  EVP_PKEY* pkey = key.native_handle();
  std::string der;
  if (a == alg::es256) {
    if (signature.size() != 2 * es256_half) return false;
    der = raw_to_der(signature);
    if (der.empty()) return false;
    signature = der;
  } else if (signature.size() != static_cast<std::size_t>(EVP_PKEY_get_size(pkey))) {
    return false;
  }
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), &pctx, "SHA256", nullptr, nullptr, pkey, nullptr) != 1 ||
      !set_padding(pctx, a)) {
    return clear_errors(false);
  }
  const int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                                  signature.size(), reinterpret_cast<const unsigned char*>(signing_input.data()),
                                  signing_input.size());
  return rc == 1 ? true : clear_errors(false);
}

std::string sign(const private_key& key, alg a, std::string_view signing_input) {
  if (!key_matches(key.public_part(), a)) throw std::invalid_argument("jose::sign: key type does not match alg");
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), &pctx, "SHA256", nullptr, nullptr, key.native_handle(), nullptr) != 1 ||
      !set_padding(pctx, a)) {
    throw std::runtime_error(clear_errors(std::string("jose::sign: OpenSSL init failed")));
  }
  // One pass: the key's maximum signature size (RSA: the modulus; ECDSA: the largest DER)
  // rather than a first call that only asks for it (every /start signs, contract §11).
  std::size_t len = static_cast<std::size_t>(EVP_PKEY_get_size(key.native_handle()));
  std::string out(len, '\0');
  if (len == 0 || EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, data,
                                 signing_input.size()) != 1) {
    throw std::runtime_error(clear_errors(std::string("jose::sign: OpenSSL sign failed")));
  }
  out.resize(len);
  if (a == alg::es256) {
    out = der_to_raw(out);
    if (out.empty()) throw std::runtime_error("jose::sign: bad ECDSA signature from OpenSSL");
  }
  return out;
}

std::string sign_jwt(const private_key& key, alg a, std::string_view header_json, std::string_view payload_json) {
  std::string token = base64url_encode(header_json);
  token.push_back('.');
  token += base64url_encode(payload_json);
  const std::string signature = sign(key, a, token);
  token.push_back('.');
  token += base64url_encode(signature);
  return token;
}

}  // namespace schemas::jose
