#pragma once
// The project's one SHA-256 (OpenSSL EVP): token hashes (PoP `edts`), the event
// log's hash chain. Free functions are safe from any thread; a sha256_hasher is
// owned by one thread at a time.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace schemas {

using sha256_digest = std::array<std::uint8_t, 32>;

// One-shot SHA-256 of bytes. Throws std::runtime_error only if OpenSSL cannot
// provide SHA-256 at all (a broken installation, found at start-up).
[[nodiscard]] sha256_digest sha256(std::string_view bytes);

// Incremental SHA-256. After finish() the hasher is reset and can hash a new
// message, so one hasher per thread can be kept and reused. Move-only.
class sha256_hasher {
 public:
  sha256_hasher();
  ~sha256_hasher();
  sha256_hasher(sha256_hasher&&) noexcept;
  sha256_hasher& operator=(sha256_hasher&&) noexcept;
  sha256_hasher(const sha256_hasher&) = delete;
  sha256_hasher& operator=(const sha256_hasher&) = delete;

  void update(std::string_view bytes);
  // The digest of everything passed to update() since construction or the last
  // finish(); resets the hasher.
  [[nodiscard]] sha256_digest finish();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Lower-case hex, 64 characters.
[[nodiscard]] std::string to_hex(const sha256_digest& digest);

// The digest's 32 bytes as a string (for base64url-encoding, comparing, etc.).
[[nodiscard]] std::string to_bytes(const sha256_digest& digest);

}  // namespace schemas
