#pragma once
// Caller identity (contract §11). As a signing service (STI-AS): its STI certificate and
// key (--sti-cert/--sti-key, or a development chain made once in the data folder), the
// x5u it publishes (GET <base>/sti/cert.pem serves the chain), and the SHAKEN PASSporT it
// signs for each /start whose token owns `from`. As a verification service (STI-VS):
// identity_verifier checks what a gateway's /start carries, fetching x5u under
// --sti-x5u-allow (detail/sti_verifier.cpp, its own thread). The formats are
// schemas/passport.hpp and schemas/sti_cert.hpp; this is the policy, the files, the cache.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/metrics.hpp"
#include "engine/types.hpp"
#include "schemas/jose.hpp"
#include "schemas/result.hpp"

namespace transport {

struct sti_signer {
  schemas::jose::private_key key;  // EC P-256
  std::string chain_pem;           // the signing certificate, then intermediates
  std::string x5u;                 // where verifiers fetch chain_pem
  std::filesystem::path root_file; // the development root (for a verifier's --sti-trust); empty with --sti-cert
};

// The development service provider code in the development chain's TNAuthList.
inline constexpr std::string_view dev_spc = "0YNA";

// --sti-cert and --sti-key when given (both, or neither); else <data_dir>/sti/{chain,key,
// root}.pem, made on the first start (key 0600) and reused after. Checks that the key is
// EC P-256 and is the certificate's. Failure: a message naming the file.
[[nodiscard]] schemas::result<sti_signer, std::string> load_sti_signer(const std::optional<std::string>& cert_file,
                                                                       const std::optional<std::string>& key_file,
                                                                       const std::filesystem::path& data_dir,
                                                                       std::string x5u, std::int64_t now_s);

// The identity of a /start by the owner of `from`: a SHAKEN PASSporT (attest A, orig
// `from`, dest [`to`], iat `now_s`, a fresh origid), status Passed.
[[nodiscard]] engine::caller_identity sign_start(const sti_signer& s, std::string_view from, std::string_view to,
                                                 std::int64_t now_s);

// The STI-VS's settings (yna-engine flags).
struct sti_verify_settings {
  std::string trust_pem;                    // --sti-trust: PEM roots (the development root by default)
  std::vector<std::string> x5u_allow;       // --sti-x5u-allow: URL prefixes x5u may start with
  std::chrono::milliseconds timeout{2000};  // --sti-x5u-timeout: one fetch, connecting to answer
  std::size_t cache_entries = 1000;         // --sti-cache: certificate chains kept (by x5u)
  std::chrono::seconds cache_ttl{3600};     // a fetched chain is fetched again after this
  std::size_t max_waiting = 4096;           // --sti-max-waiting: /starts waiting for fetches; more fail at once
  std::string outbound_ca;                  // --outbound-ca: roots for HTTPS x5u besides the system's
  std::int64_t skew_s = 60;                 // iat within this of now, either way
};

// Verifies gateways' identities (contract §11): format, the call (iat, orig, dest), x5u
// (allowed prefix, fetched over HTTPS under the outbound rules, cached), the chain against
// the trust store (TNAuthList), the signature. Each result is a caller_identity: Passed
// (with the PASSporT's attest) or Failed with the reason. Thread-safe.
class identity_verifier {
 public:
  using done_fn = std::function<void(engine::caller_identity)>;

  [[nodiscard]] static schemas::result<std::unique_ptr<identity_verifier>, std::string> create(
      sti_verify_settings s, engine::registry& metrics);
  ~identity_verifier();
  identity_verifier(const identity_verifier&) = delete;
  identity_verifier& operator=(const identity_verifier&) = delete;

  // The fetching thread (yna-sti). Before start(), a fetch waits until it runs.
  void start();
  void stop();

  // Verifies `identity` (a PASSporT or an Identity header value) for a call from → to
  // (digits) at `now_s`. `done` runs exactly once: before this returns when nothing needs
  // fetching (a cached chain, or a failure found first), else on the yna-sti thread.
  void verify(std::string identity, std::string from, std::string to, std::int64_t now_s, done_fn done);

 private:
  struct impl;
  explicit identity_verifier(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

// Whether `url` starts with one of `prefixes` as a URL: same scheme, host and port, and
// its path under the prefix's path (so "https://a.example/" never lets in
// "https://a.example.evil/…"). Exposed for tests.
[[nodiscard]] bool x5u_allowed(std::string_view url, const std::vector<std::string>& prefixes);

}  // namespace transport
