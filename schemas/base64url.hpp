#pragma once
// base64url (RFC 4648 §5) as JOSE uses it (RFC 7515 §2): no padding, no whitespace.
// Pure functions, safe from any thread.
#include <optional>
#include <string>
#include <string_view>

namespace schemas {

// Encodes bytes with the URL-safe alphabet and no '=' padding.
[[nodiscard]] std::string base64url_encode(std::string_view bytes);

// Decodes unpadded base64url. Returns nullopt on:
//  - any character outside [A-Za-z0-9_-], including '=' (JWS forbids padding, and
//    accepting it would give one token several spellings), '+', '/', whitespace;
//  - a length of 4k+1 characters, which no byte string encodes to;
//  - non-zero unused bits in the last character (a non-canonical spelling), so
//    each byte string has exactly one accepted encoding.
// The empty string decodes to the empty byte string.
[[nodiscard]] std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace schemas
