#pragma once
// The contract's stable reasonCodes (contract §3) and the HTTP status each maps to.
// Every failure that reaches a client is one of these; only transport/ turns them into
// HTTP responses, everything else passes them around as values.
#include <cstdint>
#include <optional>
#include <string_view>

namespace schemas {

enum class reason_code : std::uint8_t {
  none = 0,  // success
  invalid_json,
  missing_field,
  invalid_field,
  invalid_msisdn,
  invalid_sdp,
  body_too_large,
  invalid_transaction_id,
  unauthorized,
  token_expired,
  pop_missing,
  pop_invalid,
  pop_expired,
  pop_replayed,
  forbidden,
  call_not_found,
  invalid_state,
  wrong_party,
  offer_pending,
  no_offer_pending,
  call_ended,
  request_timeout,
  service_unavailable,
  internal_error,
  not_found,           // unknown path (protocol level)
  method_not_allowed,  // wrong method on a known path (protocol level)
  too_many_requests,
  headers_too_large,
  too_many_calls,  // contract §3a: --max-calls-per-number calls not ended from one number
  too_many_pushers,  // contract §13: a subject has --max-pushers-per-sub registrations already
  call_forwarded,    // contract §10: the request's number was the call's MT, and the call went on elsewhere
};

inline constexpr std::uint8_t reason_code_count = static_cast<std::uint8_t>(reason_code::call_forwarded) + 1;

// The contract's spelling, e.g. "INVALID_STATE". none → "".
std::string_view to_string(reason_code c) noexcept;
// Inverse of to_string; nullopt for unknown text.
std::optional<reason_code> parse_reason_code(std::string_view s) noexcept;
// HTTP status for the code (200 for none).
int http_status(reason_code c) noexcept;
// A default human sentence for ErrorInfo's userMessage.
std::string_view user_message(reason_code c) noexcept;

}  // namespace schemas
