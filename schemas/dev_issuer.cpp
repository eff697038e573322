#include "schemas/dev_issuer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "schemas/files.hpp"
#include "schemas/json_writer.hpp"

namespace schemas {

namespace fs = std::filesystem;

namespace {

constexpr std::uintmax_t max_key_file_bytes = 1 << 20;

std::string errno_text(const std::string& what, const fs::path& path) {
  return what + " " + path.string() + ": " + std::strerror(errno);
}

result<std::string, std::string> read_file(const fs::path& path) { return read_small_file(path, max_key_file_bytes); }

// A fresh, exclusively created file next to `target`, holding `contents`, synced.
result<fs::path, std::string> write_temp(const fs::path& target, std::string_view contents, mode_t mode) {
  unsigned char nonce[8];
  if (RAND_bytes(nonce, sizeof nonce) != 1) return failure{std::string("RAND_bytes failed")};
  std::string suffix = ".tmp-" + std::to_string(::getpid()) + "-";
  for (const unsigned char b : nonce) suffix += "0123456789abcdef"[b & 0xF];
  fs::path temp = target;
  temp += suffix;
  if (auto st = write_new_file(temp, contents, mode); !st) return failure{st.error()};
  return temp;
}

// Publishes a new key file unless one exists. link() (unlike rename) fails with
// EEXIST instead of replacing, so when two processes race the first key wins and
// the loser adopts it. Returns false when another process got there first.
result<bool, std::string> publish_key(const fs::path& key_path, std::string_view pem) {
  auto temp = write_temp(key_path, pem, 0600);
  if (!temp) return failure{temp.error()};
  const int rc = ::link(temp->c_str(), key_path.c_str());
  const int link_errno = errno;
  ::unlink(temp->c_str());
  if (rc != 0 && link_errno == EEXIST) return false;
  if (rc != 0) {
    errno = link_errno;
    return failure{errno_text("cannot create", key_path)};
  }
  sync_dir(key_path.parent_path());
  return true;
}

// The .pub.pem is derived from the key, so replacing it (temp + rename) is harmless.
status<std::string> ensure_public_file(const fs::path& pub_path, const std::string& pem) {
  if (auto existing = read_file(pub_path); existing && *existing == pem) return {};
  auto temp = write_temp(pub_path, pem, 0644);
  if (!temp) return failure{temp.error()};
  if (::rename(temp->c_str(), pub_path.c_str()) != 0) {
    auto error = errno_text("cannot create", pub_path);
    ::unlink(temp->c_str());
    return failure{error};
  }
  sync_dir(pub_path.parent_path());
  return {};
}

result<jose::private_key, std::string> load_key(const fs::path& key_path) {
  auto pem = read_file(key_path);
  if (!pem) return failure{pem.error()};
  auto key = jose::private_key::from_pem(*pem);
  if (!key) {
    return failure{key_path.string() + " is not a usable private key (" +
                   std::string(jose::to_string(key.error())) + ")"};
  }
  if (!key->is_rsa()) return failure{key_path.string() + " is not an RSA key (the dev issuer signs RS256)"};
  return std::move(*key);
}

}  // namespace

result<dev_issuer, std::string> load_or_create_dev_issuer(const fs::path& data_dir) {
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return failure{"cannot create " + data_dir.string() + ": " + ec.message()};
  const fs::path key_path = data_dir / dev_issuer_key_file;
  const fs::path pub_path = data_dir / dev_issuer_pub_file;

  if (!fs::exists(key_path, ec)) {
    auto fresh = jose::private_key::generate_rsa(2048);
    auto published = publish_key(key_path, fresh.to_pem());
    if (!published) return failure{published.error()};
    // When another process won the race, fall through and load its key.
  }
  auto key = load_key(key_path);
  if (!key) return failure{key.error()};
  if (auto st = ensure_public_file(pub_path, key->public_part().to_pem()); !st) return failure{st.error()};
  return dev_issuer{std::move(*key), std::string(dev_issuer_kid), std::string(dev_issuer_name)};
}

std::string mint_access_token(const dev_issuer& issuer, const access_claims& claims) {
  json_writer header;
  header.begin_object().field("alg", "RS256").field("typ", "JWT").field("kid", issuer.kid).end_object();

  json_writer payload;
  payload.begin_object().field("iss", issuer.issuer).field("sub", claims.sub);
  payload.key("msisdns").begin_array();
  for (const auto& m : claims.msisdns) payload.value(m);
  payload.end_array();
  if (!claims.device_id.empty()) payload.field("device_id", claims.device_id);
  if (claims.cnf_jwk_json) payload.key("cnf").begin_object().key("jwk").raw(*claims.cnf_jwk_json).end_object();
  payload.field("iat", claims.iat).field("exp", claims.exp);
  if (claims.aud) payload.field("aud", *claims.aud);
  payload.end_object();

  return jose::sign_jwt(issuer.key, jose::alg::rs256, header.str(), payload.str());
}

}  // namespace schemas
