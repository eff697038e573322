#pragma once
// STI certificates (contract §11; ATIS-1000080, RFC 8226): the X.509 side of SHAKEN.
// A PASSporT's `x5u` names a PEM chain (the signing certificate first, then the
// intermediates); the verifier checks it against a trust store of roots, at a given time,
// and requires the TNAuthList extension (OID 1.3.6.1.5.5.7.1.26) on the signing
// certificate. Also makes the development chain (root, intermediate, leaf, each EC P-256,
// the intermediate and the leaf with a TNAuthList naming one service provider code) that
// yna-engine writes into its data folder when no --sti-cert is given.
//
// No I/O but what the caller hands in; no clock reading (times are parameters).
// A trust_store is immutable and may be used from many threads at once.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/jose.hpp"
#include "schemas/passport.hpp"
#include "schemas/result.hpp"

struct x509_store_st;  // OpenSSL's X509_STORE

namespace schemas::sti {

inline constexpr std::string_view tnauthlist_oid = "1.3.6.1.5.5.7.1.26";

// The DER of a TNAuthList (RFC 8226 §9, explicit tags) holding one service provider code:
// SEQUENCE { [0] IA5String spc }.
[[nodiscard]] std::string tnauthlist_der(std::string_view spc);

// Every certificate in a PEM text, in order, re-encoded as PEM (nothing else kept).
// malformed text or no certificate: empty.
[[nodiscard]] std::vector<std::string> split_pem_chain(std::string_view pem);

class trust_store {
 public:
  // One or more PEM root certificates. Failure: a message.
  [[nodiscard]] static result<trust_store, std::string> from_pem(std::string_view roots_pem);

  // Checks `chain_pem` (the signing certificate, then intermediates) at `now_s`: a chain
  // to one of the roots (untrusted_chain), every certificate valid then
  // (expired_certificate), a TNAuthList on the signing certificate (no_tnauthlist), an EC
  // P-256 key in it (bad_certificate, also for text holding no certificate). Returns the
  // signing certificate's public key, and until when the chain stays valid.
  struct verified {
    jose::public_key key;
    std::int64_t not_after = 0;  // the earliest notAfter of the chain's certificates (seconds)
  };
  [[nodiscard]] result<verified, passport::failure> verify(std::string_view chain_pem, std::int64_t now_s) const;
  [[nodiscard]] std::size_t roots() const noexcept { return roots_; }

 private:
  explicit trust_store(std::shared_ptr<x509_store_st> s, std::size_t n) : store_(std::move(s)), roots_(n) {}
  std::shared_ptr<x509_store_st> store_;
  std::size_t roots_ = 0;
};

// A development STI chain (contract §11): made once, kept in the data folder.
struct dev_chain {
  std::string root_pem;   // the trust anchor (for --sti-trust of a verifier)
  std::string chain_pem;  // the signing certificate, then the intermediate: what x5u serves
  std::string key_pem;    // the signing key (PKCS#8)
};
// Makes a fresh chain valid from `now_s` - 1 h for `days` days; the intermediate and the
// leaf carry a TNAuthList with `spc` (the leaf not when `leaf_tnauthlist` is false: a
// chain that must fail, for tests). Throws std::runtime_error if OpenSSL fails.
[[nodiscard]] dev_chain make_dev_chain(std::string_view spc, std::int64_t now_s, int days = 3650,
                                       bool leaf_tnauthlist = true);

}  // namespace schemas::sti
