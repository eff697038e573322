#include "schemas/api.hpp"

#include <simdjson.h>

#include "schemas/json_writer.hpp"

namespace schemas {

namespace {

simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

failure<decode_error> fail(reason_code c, std::string msg) { return failure{decode_error{c, std::move(msg)}}; }

// Reads an optional string field. Returns false (and sets err) on a wrong type.
bool read_string(simdjson::dom::object obj, std::string_view name, std::optional<std::string>& out,
                 std::optional<decode_error>& err) {
  simdjson::dom::element el;
  if (obj.at_key(name).get(el) != simdjson::SUCCESS) return true;  // absent
  std::string_view sv;
  if (el.get_string().get(sv) != simdjson::SUCCESS) {
    err = decode_error{reason_code::invalid_field, std::string("field '") + std::string(name) + "' must be a string"};
    return false;
  }
  out = std::string(sv);
  return true;
}

result<simdjson::dom::object, decode_error> parse_object(std::string_view body) {
  simdjson::dom::element doc;
  auto ec = thread_parser().parse(body.data(), body.size()).get(doc);
  if (ec != simdjson::SUCCESS)
    return fail(reason_code::invalid_json, std::string("request body is not valid JSON: ") + simdjson::error_message(ec));
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS)
    return fail(reason_code::invalid_json, "request body must be a JSON object");
  return obj;
}

std::optional<decode_error> check_sdp(const std::optional<std::string>& sdp) {
  if (!sdp) return std::nullopt;
  if (sdp->size() > max_sdp_bytes) return decode_error{reason_code::invalid_sdp, "sdp is larger than 64 KiB"};
  if (!is_valid_sdp(*sdp))
    return decode_error{reason_code::invalid_sdp,
                        "sdp is not a session description (needs v=0, o=, s=, t= and an m= line)"};
  return std::nullopt;
}

}  // namespace

std::optional<std::string> normalize_msisdn(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.size() < 6 || s.size() > 15) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  return std::string(s);
}

bool is_valid_sdp(std::string_view sdp) {
  if (sdp.size() > max_sdp_bytes || sdp.empty()) return false;
  bool first = true, has_o = false, has_s = false, has_t = false, has_m = false;
  std::size_t pos = 0;
  while (pos < sdp.size()) {
    std::size_t end = sdp.find('\n', pos);
    if (end == std::string_view::npos) end = sdp.size();
    std::string_view line = sdp.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      if (pos >= sdp.size()) break;  // trailing newline
      return false;
    }
    if (line.size() < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z') return false;
    for (char c : line)
      if (c == '\0' || c == '\r') return false;
    if (first) {
      if (line != "v=0") return false;
      first = false;
      continue;
    }
    switch (line[0]) {
      case 'o': has_o = true; break;
      case 's': has_s = true; break;
      case 't': has_t = true; break;
      case 'm': has_m = true; break;
      default: break;
    }
  }
  return !first && has_o && has_s && has_t && has_m;
}

bool is_printable(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (c < 0x20 || c > 0x7E) return false;
  return true;
}

bool is_valid_guid(std::string_view s) {
  if (s.size() == 38 && s.front() == '{' && s.back() == '}') s = s.substr(1, 36);
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

bool is_valid_call_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '~' || c == '-';
    if (!ok) return false;
  }
  return true;
}

result<start_request, decode_error> decode_start_request(std::string_view body) {
  auto obj = parse_object(body);
  if (!obj) return failure{obj.error()};
  std::optional<std::string> to, from, sdp, correlator, identity, transfer_of;
  std::optional<decode_error> err;
  if (!read_string(*obj, "to", to, err) || !read_string(*obj, "from", from, err) ||
      !read_string(*obj, "sdp", sdp, err) || !read_string(*obj, "clientCorrelator", correlator, err) ||
      !read_string(*obj, "identity", identity, err) || !read_string(*obj, "transferOf", transfer_of, err))
    return failure{*err};
  if (!to) return fail(reason_code::missing_field, "field 'to' is required");
  if (!from) return fail(reason_code::missing_field, "field 'from' is required");
  if (!sdp) return fail(reason_code::missing_field, "field 'sdp' is required");
  auto to_n = normalize_msisdn(*to);
  if (!to_n) return fail(reason_code::invalid_msisdn, "field 'to' must be an E.164 number of 6 to 15 digits");
  auto from_n = normalize_msisdn(*from);
  if (!from_n) return fail(reason_code::invalid_msisdn, "field 'from' must be an E.164 number of 6 to 15 digits");
  if (*to_n == *from_n) return fail(reason_code::invalid_field, "'from' and 'to' must differ");
  if (correlator && !is_printable(*correlator, max_client_correlator))
    return fail(reason_code::invalid_field, "field 'clientCorrelator' must be 1 to 256 printable characters");
  if (auto e = check_sdp(sdp)) return failure{*e};
  if (identity && (identity->empty() || identity->size() > max_identity_bytes || !is_printable(*identity, max_identity_bytes)))
    return fail(reason_code::invalid_field, "field 'identity' must be 1 to 8192 printable characters");
  if (transfer_of && !is_valid_call_id(*transfer_of))
    return fail(reason_code::invalid_field, "field 'transferOf' must be a callId: 1 to 128 of [A-Za-z0-9._~-]");
  return start_request{std::move(*to_n), std::move(*from_n), std::move(*sdp), std::move(correlator),
                       std::move(identity), std::move(transfer_of)};
}

result<std::string, decode_error> decode_transfer_request(std::string_view body) {
  auto obj = parse_object(body);
  if (!obj) return failure{obj.error()};
  std::optional<std::string> to;
  std::optional<decode_error> err;
  if (!read_string(*obj, "to", to, err)) return failure{*err};
  if (!to) return fail(reason_code::missing_field, "field 'to' is required");
  auto n = normalize_msisdn(*to);
  if (!n) return fail(reason_code::invalid_msisdn, "field 'to' must be an E.164 number of 6 to 15 digits");
  return std::move(*n);
}

result<std::optional<std::string>, decode_error> decode_upgrade_request(std::string_view body) {
  bool blank = true;
  for (char c : body)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') { blank = false; break; }
  if (blank) return std::optional<std::string>();
  auto obj = parse_object(body);
  if (!obj) return failure{obj.error()};
  std::optional<std::string> uri;
  std::optional<decode_error> err;
  if (!read_string(*obj, "meetingUri", uri, err)) return failure{*err};
  if (uri && !is_printable(*uri, max_meeting_uri_bytes))
    return fail(reason_code::invalid_field, "field 'meetingUri' must be 1 to 2048 printable characters");
  return uri;
}

result<bool, decode_error> decode_accept_upgrade_request(std::string_view body) {
  auto obj = parse_object(body);
  if (!obj) return failure{obj.error()};
  simdjson::dom::element el;
  if (obj->at_key("accept").get(el) != simdjson::SUCCESS) return fail(reason_code::missing_field, "field 'accept' is required");
  bool v = false;
  if (el.get_bool().get(v) != simdjson::SUCCESS) return fail(reason_code::invalid_field, "field 'accept' must be true or false");
  return v;
}

result<status_request, decode_error> decode_status_request(std::string_view body, bool sdp_required) {
  std::optional<std::string> sdp;
  bool blank = true;
  for (char c : body)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') { blank = false; break; }
  if (!blank) {
    auto obj = parse_object(body);
    if (!obj) return failure{obj.error()};
    std::optional<decode_error> err;
    if (!read_string(*obj, "sdp", sdp, err)) return failure{*err};
  }
  if (!sdp && sdp_required) return fail(reason_code::missing_field, "field 'sdp' is required on this endpoint");
  if (auto e = check_sdp(sdp)) return failure{*e};
  return status_request{std::move(sdp)};
}

result<pusher_request, decode_error> decode_pusher_request(std::string_view body) {
  auto obj = parse_object(body);
  if (!obj) return failure{obj.error()};
  std::optional<decode_error> err;
  std::optional<std::string> url, app_id, pushkey;
  if (!read_string(*obj, "url", url, err) || !read_string(*obj, "appId", app_id, err) ||
      !read_string(*obj, "pushkey", pushkey, err))
    return failure{*err};
  if (!url) return fail(reason_code::missing_field, "field 'url' is required");
  if (!app_id) return fail(reason_code::missing_field, "field 'appId' is required");
  if (!pushkey) return fail(reason_code::missing_field, "field 'pushkey' is required");
  if (url->empty() || url->size() > max_push_url_bytes)
    return fail(reason_code::invalid_field, "url must be 1 to 2048 characters");
  if (!is_printable(*app_id, max_app_id_bytes))
    return fail(reason_code::invalid_field, "appId must be 1 to 256 printable characters");
  if (pushkey->empty() || pushkey->size() > max_pushkey_bytes)
    return fail(reason_code::invalid_field, "pushkey must be 1 to 512 bytes");
  pusher_request out{std::move(*url), std::move(*app_id), std::move(*pushkey), {}};
  simdjson::dom::element data;
  if (obj->at_key("data").get(data) == simdjson::SUCCESS) {
    if (!data.is_object()) return fail(reason_code::invalid_field, "field 'data' must be an object");
    out.data = simdjson::minify(data);
    if (out.data.size() > max_push_data_bytes)
      return fail(reason_code::invalid_field, "data must be at most 4 KiB (as minified JSON)");
  }
  return out;
}

namespace {

// One forwarding rule: absent or null (none), else a number that is not `self`.
bool read_target(simdjson::dom::object fw, std::string_view name, std::string_view self,
                 std::optional<std::string>& out, std::optional<decode_error>& err) {
  simdjson::dom::element el;
  if (fw.at_key(name).get(el) != simdjson::SUCCESS || el.is_null()) return true;
  std::string_view text;
  const std::string field = "forwarding." + std::string(name);
  if (el.get_string().get(text) != simdjson::SUCCESS) {
    err = decode_error{reason_code::invalid_field, "field '" + field + "' must be a number (string) or null"};
    return false;
  }
  auto n = normalize_msisdn(text);
  if (!n) {
    err = decode_error{reason_code::invalid_msisdn, "field '" + field + "' must be an E.164 number of 6 to 15 digits"};
    return false;
  }
  if (*n == self) {
    err = decode_error{reason_code::invalid_field, "field '" + field + "' forwards the number to itself"};
    return false;
  }
  out = std::move(*n);
  return true;
}

}  // namespace

result<settings_request, decode_error> decode_settings_request(std::string_view body, std::string_view self) {
  auto obj = parse_object(body);
  if (!obj) return failure{obj.error()};
  settings_request out;
  simdjson::dom::element el;
  if (obj->at_key("callWaiting").get(el) == simdjson::SUCCESS && el.get_bool().get(out.call_waiting) != simdjson::SUCCESS)
    return fail(reason_code::invalid_field, "field 'callWaiting' must be true or false");
  if (obj->at_key("forwarding").get(el) != simdjson::SUCCESS || el.is_null()) return out;
  simdjson::dom::object fw;
  if (el.get_object().get(fw) != simdjson::SUCCESS)
    return fail(reason_code::invalid_field, "field 'forwarding' must be an object or null");
  std::optional<decode_error> err;
  if (!read_target(fw, "unconditional", self, out.unconditional, err) || !read_target(fw, "busy", self, out.busy, err) ||
      !read_target(fw, "notReachable", self, out.not_reachable, err))
    return failure{*err};
  if (fw.at_key("noAnswer").get(el) == simdjson::SUCCESS && !el.is_null()) {
    simdjson::dom::object na;
    if (el.get_object().get(na) != simdjson::SUCCESS)
      return fail(reason_code::invalid_field, "field 'forwarding.noAnswer' must be {\"to\", \"timeout\"} or null");
    simdjson::dom::element to;
    if (na.at_key("to").get(to) != simdjson::SUCCESS || to.is_null())
      return fail(reason_code::missing_field, "field 'forwarding.noAnswer.to' is required");
    std::string_view text;
    if (to.get_string().get(text) != simdjson::SUCCESS)
      return fail(reason_code::invalid_field, "field 'forwarding.noAnswer.to' must be a number (string)");
    auto n = normalize_msisdn(text);
    if (!n) return fail(reason_code::invalid_msisdn, "field 'forwarding.noAnswer.to' must be an E.164 number of 6 to 15 digits");
    if (*n == self) return fail(reason_code::invalid_field, "field 'forwarding.noAnswer.to' forwards the number to itself");
    out.no_answer = std::move(*n);
    simdjson::dom::element t;
    if (na.at_key("timeout").get(t) == simdjson::SUCCESS) {
      std::int64_t s = 0;
      if (t.get_int64().get(s) != simdjson::SUCCESS || s < min_no_answer_timeout_s || s > max_no_answer_timeout_s)
        return fail(reason_code::invalid_field, "field 'forwarding.noAnswer.timeout' must be 5 to 300 (seconds)");
      out.no_answer_timeout_s = static_cast<int>(s);
    }
  }
  return out;
}

std::string encode_settings(std::string_view msisdn, const settings_request& s) {
  json_writer w(256);
  auto rule = [&](std::string_view k, const std::optional<std::string>& v) {
    w.key(k);
    if (v)
      w.value(std::string_view(*v));
    else
      w.null();
  };
  w.begin_object().field("msisdn", msisdn).field("callWaiting", s.call_waiting);
  w.key("forwarding").begin_object();
  rule("unconditional", s.unconditional);
  rule("busy", s.busy);
  w.key("noAnswer");
  if (s.no_answer)
    w.begin_object().field("to", std::string_view(*s.no_answer)).field("timeout", s.no_answer_timeout_s).end_object();
  else
    w.null();
  rule("notReachable", s.not_reachable);
  w.end_object().end_object();
  return w.take();
}

std::vector<std::string> decode_rejected_pushkeys(std::string_view body) {
  std::vector<std::string> out;
  simdjson::dom::element doc;
  simdjson::dom::array rejected;
  if (thread_parser().parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS) return out;
  if (doc["rejected"].get_array().get(rejected) != simdjson::SUCCESS) return out;
  for (auto el : rejected) {
    std::string_view k;
    if (el.get_string().get(k) == simdjson::SUCCESS) out.emplace_back(k);
  }
  return out;
}

std::string encode_start_response(std::string_view to, std::string_view from, std::string_view call_id,
                                  const std::optional<std::string>& client_correlator) {
  json_writer w(128);
  w.begin_object().field("to", to).field("from", from).field("callId", call_id);
  if (client_correlator) w.field("clientCorrelator", std::string_view(*client_correlator));
  w.end_object();
  return w.take();
}

std::string encode_error_info(reason_code code, std::string_view system_message) {
  if (code == reason_code::none) return "{}";
  json_writer w(160);
  w.begin_object().key("errors").begin_array().begin_object();
  w.field("reasonCode", to_string(code));
  w.field("systemMessage", system_message.empty() ? user_message(code) : system_message);
  w.field("userMessage", user_message(code));
  w.end_object().end_array().end_object();
  return w.take();
}

std::string tel_uri(std::string_view msisdn) {
  std::string s = "tel:+";
  s.append(msisdn);
  return s;
}

}  // namespace schemas
