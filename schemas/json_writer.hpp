#pragma once
// The project's one JSON writer: appends compact JSON to a std::string.
// Callers drive structure explicitly (begin_object/key/value/end_object); the writer
// inserts commas and escapes strings (RFC 8259; control characters as \u00XX, invalid
// UTF-8 bytes replaced by U+FFFD so the output is always valid JSON).
// Not thread-safe; cheap to construct; reuse by clear().
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace schemas {

class json_writer {
 public:
  json_writer() = default;
  explicit json_writer(std::size_t reserve) { out_.reserve(reserve); }

  json_writer& begin_object();
  json_writer& end_object();
  json_writer& begin_array();
  json_writer& end_array();
  json_writer& key(std::string_view k);
  json_writer& value(std::string_view s);
  json_writer& value(const char* s) { return value(std::string_view(s)); }
  json_writer& value(std::int64_t n);
  json_writer& value(std::uint64_t n);
  json_writer& value(int n) { return value(static_cast<std::int64_t>(n)); }
  json_writer& value(bool b);
  json_writer& null();
  // Inserts already-encoded JSON verbatim (e.g. a stored JWK object).
  json_writer& raw(std::string_view json);

  // Convenience: key + value.
  template <class T>
  json_writer& field(std::string_view k, const T& v) { key(k); return value(v); }

  const std::string& str() const& { return out_; }
  std::string take() { return std::move(out_); }
  void clear() { out_.clear(); first_.clear(); after_key_ = false; }

 private:
  void separate();
  std::string out_;
  std::vector<bool> first_;  // one entry per open container: nothing written yet
  bool after_key_ = false;
};

// Appends s as a quoted, escaped JSON string.
void append_json_string(std::string& out, std::string_view s);

}  // namespace schemas
