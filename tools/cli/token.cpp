// `token` (development access tokens with a device PoP key) and `pop` (an
// X-Authorization value for one request).
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "schemas/api.hpp"
#include "schemas/dev_issuer.hpp"
#include "schemas/json_writer.hpp"
#include "schemas/pop_token.hpp"
#include "tools/cli/commands.hpp"

namespace cli {

namespace {

std::int64_t now_s() { return now_ms() / 1000; }

// Writes a private key readable by its owner only.
bool write_private(const std::string& path, const std::string& pem) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << pem;
    if (!out) return false;
  }
  ::chmod(tmp.c_str(), 0600);
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int cmd_token(const global_options& g, const token_args& a) {
  schemas::access_claims c;
  for (const auto& n : a.numbers) {
    auto m = schemas::normalize_msisdn(n);
    if (!m) {
      complain("{} is not an E.164 number (6 to 15 digits)", n);
      return exit_usage;
    }
    c.msisdns.push_back(*m);
  }
  auto issuer = schemas::load_or_create_dev_issuer(g.data_dir);
  if (!issuer) {
    complain("development issuer: {}", issuer.error());
    return exit_cannot_open;
  }
  c.sub = a.sub.empty() ? "dev-" + c.msisdns.front() : a.sub;
  c.device_id = a.device;
  c.iat = now_s();
  c.exp = c.iat + a.ttl;
  std::string key_file = a.pop_key_out;
  if (!a.no_pop_key) {
    // The device's PoP key pair: the private half stays with the device (a file here),
    // the public half goes into the token's cnf.jwk.
    if (key_file.empty()) key_file = "yna-device-" + (a.device.empty() ? c.msisdns.front() : a.device) + ".pem";
    const auto key = schemas::jose::private_key::generate_rsa(2048);
    if (!write_private(key_file, key.to_pem())) {
      complain("cannot write the PoP key to {}", key_file);
      return exit_cannot_open;
    }
    c.cnf_jwk_json = key.public_part().to_jwk_json();
  }
  const std::string token = schemas::mint_access_token(*issuer, c);
  if (g.json) {
    schemas::json_writer w;
    w.begin_object().field("access_token", std::string_view(token)).field("sub", std::string_view(c.sub));
    w.field("exp", c.exp);
    if (!a.no_pop_key) w.field("pop_key_file", std::string_view(key_file));
    w.end_object();
    std::printf("%s\n", w.str().c_str());
  } else {
    std::printf("%s\n", token.c_str());
    if (!a.no_pop_key)
      std::fprintf(stderr, "PoP key: %s (sign requests with: yna-tool pop --key %s --token ... --method ... --uri ...)\n",
                   key_file.c_str(), key_file.c_str());
  }
  return exit_ok;
}

int cmd_pop(const pop_args& a) {
  auto pem = read_file(a.key_file);
  if (!pem) {
    complain("cannot read {}", a.key_file);
    return exit_cannot_open;
  }
  auto key = schemas::jose::private_key::from_pem(*pem);
  if (!key || !key->is_rsa()) {
    complain("{} is not an RSA private key (PEM)", a.key_file);
    return exit_usage;
  }
  std::string payload = a.body;
  if (!a.body_file.empty()) {
    auto b = read_file(a.body_file);
    if (!b) {
      complain("cannot read {}", a.body_file);
      return exit_cannot_open;
    }
    payload = std::move(*b);
  }
  std::printf("%s\n",
              schemas::build_request_pop(*key, a.method, a.uri, payload, "Bearer " + a.token, now_s(), a.ttl).c_str());
  return exit_ok;
}

}  // namespace cli
