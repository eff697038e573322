#include "schemas/reason_code.hpp"

#include <array>

namespace schemas {

namespace {

struct info {
  std::string_view name;
  int status;
  std::string_view user;
};

constexpr std::array<info, reason_code_count> table{{
    {"", 200, ""},
    {"INVALID_JSON", 400, "The request body is not valid JSON."},
    {"MISSING_FIELD", 400, "A required field is missing."},
    {"INVALID_FIELD", 400, "A field has an invalid value or type."},
    {"INVALID_MSISDN", 400, "A phone number is not a valid E.164 number."},
    {"INVALID_SDP", 400, "The SDP is not a valid session description."},
    {"BODY_TOO_LARGE", 413, "The request body is too large."},
    {"INVALID_TRANSACTION_ID", 400, "The x-transaction-id header is not a GUID."},
    {"UNAUTHORIZED", 401, "Authentication failed."},
    {"TOKEN_EXPIRED", 401, "The access token has expired."},
    {"POP_MISSING", 401, "The X-Authorization PoP token is required."},
    {"POP_INVALID", 401, "The PoP token is invalid."},
    {"POP_EXPIRED", 401, "The PoP token has expired."},
    {"POP_REPLAYED", 401, "The PoP token was already used."},
    {"FORBIDDEN", 403, "You are not allowed to do this."},
    {"CALL_NOT_FOUND", 404, "The call does not exist."},
    {"INVALID_STATE", 400, "The call is not in a state that allows this."},
    {"WRONG_PARTY", 400, "This party cannot do this on the call."},
    {"OFFER_PENDING", 400, "Another offer is pending on the call."},
    {"NO_OFFER_PENDING", 400, "There is no offer to answer."},
    {"CALL_ENDED", 400, "The call has ended."},
    {"REQUEST_TIMEOUT", 408, "The request was not completed in time; nothing was changed."},
    {"SERVICE_UNAVAILABLE", 503, "The service is busy or unavailable; try again."},
    {"INTERNAL_ERROR", 500, "Internal error; nothing was changed."},
    {"NOT_FOUND", 404, "No such resource."},
    {"METHOD_NOT_ALLOWED", 405, "Method not allowed on this resource."},
    {"TOO_MANY_REQUESTS", 429, "Too many requests; slow down."},
    {"HEADERS_TOO_LARGE", 431, "The request headers are too large."},
    {"TOO_MANY_CALLS", 429, "Too many calls from this number are in progress; end one first."},
    {"TOO_MANY_PUSHERS", 429, "This account has as many push registrations as it may; remove one first."},
    {"CALL_FORWARDED", 400, "The call was forwarded to another number; only its current parties may act on it."},
}};

const info& lookup(reason_code c) noexcept {
  const auto i = static_cast<std::size_t>(c);
  return table[i < table.size() ? i : static_cast<std::size_t>(reason_code::internal_error)];
}

}  // namespace

std::string_view to_string(reason_code c) noexcept { return lookup(c).name; }
int http_status(reason_code c) noexcept { return lookup(c).status; }
std::string_view user_message(reason_code c) noexcept { return lookup(c).user; }

std::optional<reason_code> parse_reason_code(std::string_view s) noexcept {
  for (std::size_t i = 1; i < table.size(); ++i)
    if (table[i].name == s) return static_cast<reason_code>(i);
  return std::nullopt;
}

}  // namespace schemas
