#include "schemas/sti_cert.hpp"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <limits>
#include <stdexcept>

#include "schemas/detail/openssl_handles.hpp"

namespace schemas::sti {

namespace {

using detail::bio_ptr;
using detail::clear_errors;
using detail::pkey_ptr;
using detail::x509_ptr;
using x509_store_ptr = detail::openssl_handle<X509_STORE, X509_STORE_free>;
using x509_store_ctx_ptr = detail::openssl_handle<X509_STORE_CTX, X509_STORE_CTX_free>;
using asn1_object_ptr = detail::openssl_handle<ASN1_OBJECT, ASN1_OBJECT_free>;
using asn1_octet_ptr = detail::openssl_handle<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using x509_ext_ptr = detail::openssl_handle<X509_EXTENSION, X509_EXTENSION_free>;
using x509_name_ptr = detail::openssl_handle<X509_NAME, X509_NAME_free>;

struct x509_stack_free {
  void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_pop_free(s, X509_free); }
};
using x509_stack_ptr = std::unique_ptr<STACK_OF(X509), x509_stack_free>;

std::vector<x509_ptr> read_certs(std::string_view pem) {
  std::vector<x509_ptr> out;
  if (pem.size() > 256 * 1024) return out;
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return out;
  while (out.size() < 16) {
    x509_ptr c(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!c) break;
    out.push_back(std::move(c));
  }
  ERR_clear_error();  // the read that ended the loop
  return out;
}

std::string to_pem(X509* c) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), c) != 1) throw std::runtime_error("sti: cannot encode a certificate");
  return detail::bio_contents(bio.get());
}

asn1_object_ptr tnauthlist_object() { return asn1_object_ptr(OBJ_txt2obj(std::string(tnauthlist_oid).c_str(), 1)); }

bool has_tnauthlist(X509* c) {
  auto obj = tnauthlist_object();
  return obj && X509_get_ext_by_OBJ(c, obj.get(), -1) >= 0;
}

// --- making the development chain -------------------------------------------------------

void check(int ok, const char* what) {
  if (ok != 1) {
    ERR_clear_error();
    throw std::runtime_error(std::string("sti: ") + what);
  }
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  x509_ext_ptr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext) check(0, "cannot make an extension");
  check(X509_add_ext(cert, ext.get(), -1), "cannot add an extension");
}

void add_tnauthlist(X509* cert, std::string_view spc) {
  const std::string der = tnauthlist_der(spc);
  asn1_octet_ptr data(ASN1_OCTET_STRING_new());
  if (!data) check(0, "out of memory");
  check(ASN1_OCTET_STRING_set(data.get(), reinterpret_cast<const unsigned char*>(der.data()),
                              static_cast<int>(der.size())),
        "cannot set TNAuthList");
  auto obj = tnauthlist_object();
  x509_ext_ptr ext(X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), 0, data.get()));
  if (!ext) check(0, "cannot make TNAuthList");
  check(X509_add_ext(cert, ext.get(), -1), "cannot add TNAuthList");
}

x509_ptr make_cert(EVP_PKEY* subject_key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                   std::string_view spc, std::int64_t now_s, int days) {
  x509_ptr c(X509_new());
  if (!c) check(0, "out of memory");
  check(X509_set_version(c.get(), 2), "version");
  unsigned char serial[16];
  check(RAND_bytes(serial, sizeof serial), "random serial");
  serial[0] &= 0x7f;  // positive
  detail::bn_ptr bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(c.get()))) check(0, "serial");
  x509_name_ptr name(X509_NAME_new());
  check(X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("yna-engine development STI"), -1, -1, 0),
        "name");
  check(X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1,
                                   0),
        "name");
  check(X509_set_subject_name(c.get(), name.get()), "subject");
  check(X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name.get()), "issuer");
  time_t now = static_cast<time_t>(now_s);
  if (!X509_time_adj_ex(X509_getm_notBefore(c.get()), 0, -3600, &now) ||
      !X509_time_adj_ex(X509_getm_notAfter(c.get()), days, 0, &now))
    check(0, "validity");
  check(X509_set_pubkey(c.get(), subject_key), "public key");
  X509* iss = issuer ? issuer : c.get();
  add_ext(c.get(), iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_ext(c.get(), iss, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add_ext(c.get(), iss, NID_subject_key_identifier, "hash");
  if (issuer) add_ext(c.get(), iss, NID_authority_key_identifier, "keyid:always");
  if (!spc.empty()) add_tnauthlist(c.get(), spc);
  if (X509_sign(c.get(), issuer_key, EVP_sha256()) <= 0) check(0, "signing a certificate");
  return c;
}

pkey_ptr new_ec_key() {
  pkey_ptr k(EVP_EC_gen("P-256"));
  if (!k) check(0, "EC key generation");
  return k;
}

std::string key_pem(EVP_PKEY* k) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    check(0, "encoding a key");
  return detail::bio_contents(bio.get());
}

}  // namespace

std::string tnauthlist_der(std::string_view spc) {
  // TNAuthorizationList ::= SEQUENCE OF TNEntry; TNEntry ::= CHOICE { spc [0] EXPLICIT
  // ServiceProviderCode (IA5String), … }. Short lengths only: an SPC is a few characters.
  if (spc.empty() || spc.size() > 100) throw std::invalid_argument("sti: a service provider code is 1..100 chars");
  const auto n = static_cast<char>(spc.size());
  std::string ia5 = std::string{'\x16', n} + std::string(spc);
  std::string tagged = std::string{'\xA0', static_cast<char>(ia5.size())} + ia5;
  return std::string{'\x30', static_cast<char>(tagged.size())} + tagged;
}

std::vector<std::string> split_pem_chain(std::string_view pem) {
  std::vector<std::string> out;
  for (auto& c : read_certs(pem)) out.push_back(to_pem(c.get()));
  return out;
}

result<trust_store, std::string> trust_store::from_pem(std::string_view roots_pem) {
  auto certs = read_certs(roots_pem);
  if (certs.empty()) return failure{std::string("no PEM certificate in it")};
  x509_store_ptr store(X509_STORE_new());
  if (!store) return failure{std::string("out of memory")};
  for (auto& c : certs)
    if (X509_STORE_add_cert(store.get(), c.get()) != 1) return clear_errors(failure{std::string("cannot add a root")});
  X509_STORE* raw = store.release();
  return trust_store(std::shared_ptr<X509_STORE>(raw, X509_STORE_free), certs.size());
}

result<trust_store::verified, passport::failure> trust_store::verify(std::string_view chain_pem,
                                                                     std::int64_t now_s) const {
  using passport::failure;
  auto certs = read_certs(chain_pem);
  if (certs.empty()) return schemas::failure{failure::bad_certificate};
  X509* leaf = certs.front().get();
  x509_stack_ptr untrusted(sk_X509_new_null());
  if (!untrusted) return schemas::failure{failure::bad_certificate};
  for (std::size_t i = 1; i < certs.size(); ++i) {
    if (!sk_X509_push(untrusted.get(), certs[i].get())) return schemas::failure{failure::bad_certificate};
    X509_up_ref(certs[i].get());
  }
  x509_store_ctx_ptr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store_.get(), leaf, untrusted.get()) != 1)
    return clear_errors(schemas::failure{failure::bad_certificate});
  X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(now_s));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    switch (err) {
      case X509_V_ERR_CERT_HAS_EXPIRED:
      case X509_V_ERR_CERT_NOT_YET_VALID:
        return schemas::failure{failure::expired_certificate};
      default:
        return schemas::failure{failure::untrusted_chain};
    }
  }
  if (!has_tnauthlist(leaf)) return schemas::failure{failure::no_tnauthlist};
  auto key = jose::public_key::from_native(X509_get0_pubkey(leaf));
  if (!key || !key->is_ec_p256()) return schemas::failure{failure::bad_certificate};
  // Until when: the earliest notAfter of the chain (the root's included).
  std::int64_t not_after = std::numeric_limits<std::int64_t>::max();
  STACK_OF(X509)* path = X509_STORE_CTX_get0_chain(ctx.get());
  for (int i = 0; path && i < sk_X509_num(path); ++i) {
    struct tm t {};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(path, i)), &t) == 1)
      not_after = std::min<std::int64_t>(not_after, static_cast<std::int64_t>(timegm(&t)));
  }
  return verified{std::move(*key), not_after};
}

dev_chain make_dev_chain(std::string_view spc, std::int64_t now_s, int days, bool leaf_tnauthlist) {
  auto root_key = new_ec_key(), ca_key = new_ec_key(), leaf_key = new_ec_key();
  auto root = make_cert(root_key.get(), "yna-engine development STI root", nullptr, root_key.get(), true, {}, now_s,
                        days);
  auto ca = make_cert(ca_key.get(), "yna-engine development STI-CA", root.get(), root_key.get(), true, spc, now_s,
                      days);
  auto leaf = make_cert(leaf_key.get(), "yna-engine development STI-AS", ca.get(), ca_key.get(), false,
                        leaf_tnauthlist ? spc : std::string_view(), now_s, days);
  dev_chain out;
  out.root_pem = to_pem(root.get());
  out.chain_pem = to_pem(leaf.get()) + to_pem(ca.get());
  out.key_pem = key_pem(leaf_key.get());
  return out;
}

}  // namespace schemas::sti
