#include "schemas/digest.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace schemas {

namespace {

[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(std::string("sha256: ") + what);
}

}  // namespace

struct sha256_hasher::impl {
  EVP_MD_CTX* ctx = nullptr;
  ~impl() { EVP_MD_CTX_free(ctx); }
  void init() {
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) fail("EVP_DigestInit_ex");
  }
};

sha256_digest sha256(std::string_view bytes) {
  sha256_digest out{};
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size()) {
    fail("EVP_Digest");
  }
  return out;
}

sha256_hasher::sha256_hasher() : impl_(std::make_unique<impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (impl_->ctx == nullptr) fail("EVP_MD_CTX_new");
  impl_->init();
}

sha256_hasher::~sha256_hasher() = default;
sha256_hasher::sha256_hasher(sha256_hasher&&) noexcept = default;
sha256_hasher& sha256_hasher::operator=(sha256_hasher&&) noexcept = default;

void sha256_hasher::update(std::string_view bytes) {
  if (EVP_DigestUpdate(impl_->ctx, bytes.data(), bytes.size()) != 1) fail("EVP_DigestUpdate");
}

sha256_digest sha256_hasher::finish() {
  sha256_digest out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx, out.data(), &len) != 1 || len != out.size()) {
    fail("EVP_DigestFinal_ex");
  }
  impl_->init();
  return out;
}

std::string to_hex(const sha256_digest& digest) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (const std::uint8_t b : digest) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 0xF]);
  }
  return out;
}

std::string to_bytes(const sha256_digest& digest) {
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

}  // namespace schemas
