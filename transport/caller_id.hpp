#pragma once
// Caller identity (contract §11), the engine's side as a signing service (STI-AS): its
// STI certificate and key (--sti-cert/--sti-key, or a development chain made once in the
// data folder), the x5u it publishes (GET <base>/sti/cert.pem serves the chain), and the
// SHAKEN PASSporT it signs for each /start whose token owns `from`. The formats are
// schemas/passport.hpp and schemas/sti_cert.hpp; this is the policy and the files.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

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

}  // namespace transport
