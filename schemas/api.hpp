#pragma once
// Codecs for the reference's REST schemas (CallStartRequest, CallStatusRequest,
// CallStartResponse, ErrorInfo) and the contract's input rules (§3).
// Decoders never throw and never crash on hostile input: every failure is a
// decode_error carrying the reasonCode to send. Thread-safe (per-thread parsers).
#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include "schemas/reason_code.hpp"
#include "schemas/result.hpp"

namespace schemas {

inline constexpr std::size_t max_sdp_bytes = 64 * 1024;
inline constexpr std::size_t max_client_correlator = 256;
inline constexpr std::size_t max_header_field = 256;  // reason, conference

struct decode_error {
  reason_code code;
  std::string message;  // systemMessage: names the field and what is wrong
};

struct start_request {
  std::string to;    // normalized: digits only
  std::string from;  // normalized: digits only
  std::string sdp;
  std::optional<std::string> client_correlator;
  // A gateway's caller identity (contract §11): a PASSporT or a full RFC 8224 Identity
  // header value, printable, at most max_identity_bytes. Others' is ignored.
  std::optional<std::string> identity;
  // Contract §10: the callId of the call whose transfer this /start takes up (1..128 of
  // [A-Za-z0-9._~-]).
  std::optional<std::string> transfer_of;
};
inline constexpr std::size_t max_identity_bytes = 8192;

// Contract §10. POST /transfer/{callId}: {"to": <msisdn>} (required, normalized).
result<std::string, decode_error> decode_transfer_request(std::string_view body);
// POST /upgradeToMeeting/{callId}: {"meetingUri": <uri>} (optional; printable, 1..2048;
// an empty body is {}). nullopt: none given (the engine makes one).
inline constexpr std::size_t max_meeting_uri_bytes = 2048;
result<std::optional<std::string>, decode_error> decode_upgrade_request(std::string_view body);
// POST /acceptUpgrade/{callId}: {"accept": true|false} (required).
result<bool, decode_error> decode_accept_upgrade_request(std::string_view body);

struct status_request {
  std::optional<std::string> sdp;
};

// POST /pushers (contract §13): {"url", "appId", "pushkey", "data"?}.
struct pusher_request {
  std::string url, app_id, pushkey;
  std::string data;  // the `data` object as minified JSON text; "" when absent
};
inline constexpr std::size_t max_pushkey_bytes = 512;
inline constexpr std::size_t max_push_data_bytes = 4096;
inline constexpr std::size_t max_push_url_bytes = 2048;
inline constexpr std::size_t max_app_id_bytes = 256;

// E.164 digits, 6 to 15, an optional leading '+' dropped. nullopt when invalid.
std::optional<std::string> normalize_msisdn(std::string_view s);

// RFC 8866 shape check: first line "v=0"; o=, s=, t= and at least one m= line; every
// line "<letter>=<text>"; CRLF or LF line ends; at most max_sdp_bytes; no NUL bytes.
bool is_valid_sdp(std::string_view sdp);

// Printable ASCII (0x20..0x7E), 1..max characters.
bool is_printable(std::string_view s, std::size_t max);

// A callId as input (paths, transferOf): 1..128 of [A-Za-z0-9._~-].
bool is_valid_call_id(std::string_view id);

// A GUID: 8-4-4-4-12 hex digits (either case), optionally in braces.
bool is_valid_guid(std::string_view s);

result<start_request, decode_error> decode_start_request(std::string_view body);

// An empty body is the same as {}. sdp_required: the endpoint needs an offer/answer.
result<status_request, decode_error> decode_status_request(std::string_view body, bool sdp_required);

// Types and sizes: url (1..2048), appId (printable, 1..256), pushkey (1..512 bytes),
// data (an object, at most 4 KiB as minified JSON). The URL's form and host are the
// transport's to check.
result<pusher_request, decode_error> decode_pusher_request(std::string_view body);

// PUT /settings/{msisdn} (contract §10): {"callWaiting": bool, "forwarding":
// {"unconditional": <msisdn>|null, "busy": …, "noAnswer": {"to": <msisdn>, "timeout": S}|null,
// "notReachable": …}}. A PUT replaces the number's settings: an absent callWaiting is
// true, an absent or null rule is no forwarding. Numbers normalized (digits); a rule to
// `self` (the number whose settings these are) is INVALID_FIELD; timeout 5..300 seconds
// (default 20). Unknown members are ignored.
struct settings_request {
  bool call_waiting = true;
  std::optional<std::string> unconditional, busy, not_reachable;
  std::optional<std::string> no_answer;  // the target of CFNR
  int no_answer_timeout_s = 20;
  bool operator==(const settings_request&) const = default;
};
inline constexpr int min_no_answer_timeout_s = 5, max_no_answer_timeout_s = 300;
result<settings_request, decode_error> decode_settings_request(std::string_view body, std::string_view self);
// The GET /settings/{msisdn} body: the same shape, every rule present (null when unset).
std::string encode_settings(std::string_view msisdn, const settings_request& s);

// A Matrix Push Gateway's answer {"rejected": ["<pushkey>", …]}: the pushkeys it refused
// (none when the body is not that).
std::vector<std::string> decode_rejected_pushkeys(std::string_view body);

std::string encode_start_response(std::string_view to, std::string_view from, std::string_view call_id,
                                  const std::optional<std::string>& client_correlator);

// {"errors":[{"reasonCode":…,"systemMessage":…,"userMessage":…}]}
std::string encode_error_info(reason_code code, std::string_view system_message);

// A tel URI for a normalized MSISDN: "tel:+<digits>".
std::string tel_uri(std::string_view msisdn);

}  // namespace schemas
