#pragma once
// RAII for the OpenSSL objects the crypto code touches, and error-queue hygiene.
// Private to schemas/ (jose*.cpp, digest.cpp).
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace schemas::detail {

template <class T, void (*Free)(T*)>
struct openssl_deleter {
  void operator()(T* p) const noexcept { Free(p); }
};
template <class T, void (*Free)(T*)>
using openssl_handle = std::unique_ptr<T, openssl_deleter<T, Free>>;

using bio_ptr = openssl_handle<BIO, BIO_free_all>;
using bn_ptr = openssl_handle<BIGNUM, BN_free>;
using pkey_ptr = openssl_handle<EVP_PKEY, EVP_PKEY_free>;
using pkey_ctx_ptr = openssl_handle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using md_ctx_ptr = openssl_handle<EVP_MD_CTX, EVP_MD_CTX_free>;
using param_bld_ptr = openssl_handle<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using params_ptr = openssl_handle<OSSL_PARAM, OSSL_PARAM_free>;
using decoder_ctx_ptr = openssl_handle<OSSL_DECODER_CTX, OSSL_DECODER_CTX_free>;
using x509_ptr = openssl_handle<X509, X509_free>;
using ecdsa_sig_ptr = openssl_handle<ECDSA_SIG, ECDSA_SIG_free>;

// OpenSSL keeps a per-thread error queue; a failure we turn into a value must not
// leave entries behind for the next, unrelated call on this thread to trip over.
// Returns `v` so it can wrap a return expression.
template <class T>
T clear_errors(T v) {
  ERR_clear_error();
  return v;
}

// The bytes written into a memory BIO.
inline std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

}  // namespace schemas::detail
