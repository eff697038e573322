#include "transport/caller_id.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "schemas/files.hpp"
#include "schemas/passport.hpp"
#include "schemas/sti_cert.hpp"
#include "transport/api.hpp"

namespace transport {

namespace fs = std::filesystem;
using schemas::failure;

namespace {

schemas::result<std::string, std::string> read_text(const fs::path& p) { return schemas::read_small_file(p); }

// <data>/sti: made whole in a temporary folder, then renamed into place (a second
// engine racing on the same folder loses the rename and uses the winner's chain).
schemas::status<std::string> ensure_dev_chain(const fs::path& dir, std::int64_t now_s) {
  std::error_code ec;
  if (fs::exists(dir / "chain.pem", ec)) return {};
  const fs::path tmp = dir.parent_path() / ("sti.tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return failure{"cannot create " + tmp.string() + ": " + ec.message()};
  const auto chain = schemas::sti::make_dev_chain(dev_spc, now_s);
  for (const auto& [name, text, mode] : {std::tuple{"key.pem", &chain.key_pem, 0600},
                                         std::tuple{"chain.pem", &chain.chain_pem, 0644},
                                         std::tuple{"root.pem", &chain.root_pem, 0644}}) {
    if (auto st = schemas::write_new_file(tmp / name, *text, static_cast<mode_t>(mode)); !st) return st;
  }
  schemas::sync_dir(tmp);
  fs::rename(tmp, dir, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    if (!fs::exists(dir / "chain.pem")) return failure{"cannot create " + dir.string()};
  }
  schemas::sync_dir(dir.parent_path());
  return {};
}

}  // namespace

schemas::result<sti_signer, std::string> load_sti_signer(const std::optional<std::string>& cert_file,
                                                         const std::optional<std::string>& key_file,
                                                         const fs::path& data_dir, std::string x5u,
                                                         std::int64_t now_s) {
  if (cert_file.has_value() != key_file.has_value()) return failure{std::string("--sti-cert and --sti-key go together")};
  fs::path cert_path, key_path, root_path;
  if (cert_file) {
    cert_path = *cert_file;
    key_path = *key_file;
  } else {
    const fs::path dir = data_dir / "sti";
    try {
      if (auto st = ensure_dev_chain(dir, now_s); !st) return failure{st.error()};
    } catch (const std::exception& e) {
      return failure{std::string("cannot make the development STI chain: ") + e.what()};
    }
    cert_path = dir / "chain.pem";
    key_path = dir / "key.pem";
    root_path = dir / "root.pem";
  }
  auto chain = read_text(cert_path);
  if (!chain) return failure{chain.error()};
  auto key_pem = read_text(key_path);
  if (!key_pem) return failure{key_pem.error()};
  auto certs = schemas::sti::split_pem_chain(*chain);
  if (certs.empty()) return failure{cert_path.string() + " holds no PEM certificate"};
  auto key = schemas::jose::private_key::from_pem(*key_pem);
  if (!key || !key->is_ec_p256()) return failure{key_path.string() + " is not an EC P-256 private key (SHAKEN signs ES256)"};
  auto leaf_key = schemas::jose::public_key::from_pem(certs.front());
  if (!leaf_key || !(*leaf_key == key->public_part()))
    return failure{key_path.string() + " is not the key of the first certificate of " + cert_path.string()};
  std::string served;
  for (const auto& c : certs) served += c;
  return sti_signer{std::move(*key), std::move(served), std::move(x5u), root_path};
}

engine::caller_identity sign_start(const sti_signer& s, std::string_view from, std::string_view to,
                                   std::int64_t now_s) {
  schemas::passport::claims c;
  c.attest = 'A';  // the token owns `from`: full attestation (RFC 8588 §4)
  c.orig = std::string(from);
  c.dest = {std::string(to)};
  c.iat = now_s;
  c.origid = new_transaction_id();  // a random UUID
  engine::caller_identity id;
  id.status = schemas::passport::verification::passed;
  id.attest = 'A';
  id.passport = schemas::passport::sign(s.key, s.x5u, c);
  return id;
}

}  // namespace transport
