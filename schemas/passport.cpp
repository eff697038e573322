#include "schemas/passport.hpp"

#include <simdjson.h>

#include <array>
#include <stdexcept>

#include "schemas/base64url.hpp"
#include "schemas/json_writer.hpp"

namespace schemas::passport {

namespace {

constexpr std::array<std::string_view, 3> verification_names = {"No-TN-Validation", "TN-Validation-Passed",
                                                                 "TN-Validation-Failed"};

constexpr std::array<std::string_view, 18> failure_names = {
    "malformed",       "bad-alg",          "bad-typ",         "bad-ppt",         "bad-claims",
    "bad-x5u",         "x5u-not-allowed",  "x5u-unavailable", "bad-certificate", "untrusted-chain",
    "expired-certificate", "no-tnauthlist", "bad-signature",  "stale",           "future",
    "orig-mismatch",   "dest-mismatch",    "identity-header",
};

simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

bool get_string(simdjson::dom::object o, std::string_view k, std::string& out) {
  std::string_view v;
  if (o[k].get_string().get(v) != simdjson::SUCCESS) return false;
  out.assign(v);
  return true;
}

// {"tn": "<digits>"} (one) or {"tn": ["<digits>", …]} (many); other members ignored.
bool read_tn(simdjson::dom::object o, std::string_view k, bool many, std::vector<std::string>& out) {
  simdjson::dom::object tn_obj;
  if (o[k].get_object().get(tn_obj) != simdjson::SUCCESS) return false;
  auto tn = tn_obj["tn"];
  auto add = [&](simdjson::dom::element e) {
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS) return false;
    auto c = canonical_tn(s);
    if (!c) return false;
    out.push_back(std::move(*c));
    return true;
  };
  if (!many) {
    simdjson::dom::element e;
    return tn.get(e) == simdjson::SUCCESS && add(e);
  }
  simdjson::dom::array arr;
  if (tn.get_array().get(arr) != simdjson::SUCCESS) return false;
  for (simdjson::dom::element e : arr) {
    if (out.size() >= 16 || !add(e)) return false;  // a call has one callee; a few at most
  }
  return !out.empty();
}

bool https_url(std::string_view u) { return u.size() > 8 && u.size() <= 2048 && u.substr(0, 8) == "https://"; }

}  // namespace

std::string_view to_string(verification v) noexcept { return verification_names[static_cast<std::size_t>(v)]; }

std::optional<verification> parse_verification(std::string_view s) noexcept {
  for (std::size_t i = 0; i < verification_names.size(); ++i)
    if (verification_names[i] == s) return static_cast<verification>(i);
  return std::nullopt;
}

std::string_view to_string(failure f) noexcept { return failure_names[static_cast<std::size_t>(f)]; }

std::optional<failure> parse_failure(std::string_view s) noexcept {
  for (std::size_t i = 0; i < failure_names.size(); ++i)
    if (failure_names[i] == s) return static_cast<failure>(i);
  return std::nullopt;
}

std::optional<std::string> canonical_tn(std::string_view tn) {
  if (tn.size() > 64) return std::nullopt;
  std::string out;
  for (char c : tn) {
    if (c >= '0' && c <= '9')
      out += c;
    else if (c != '+' && c != '-' && c != '.' && c != '(' && c != ')' && c != ' ')
      return std::nullopt;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

result<decoded, failure> decode(std::string_view token) {
  if (token.size() > max_passport_bytes) return schemas::failure{failure::malformed};
  auto jwt = jose::split_jwt(token);
  if (!jwt) return schemas::failure{failure::malformed};
  decoded d;
  simdjson::dom::object h;
  if (thread_parser().parse(jwt->header_json).get_object().get(h) != simdjson::SUCCESS)
    return schemas::failure{failure::malformed};
  if (!get_string(h, "alg", d.head.alg)) return schemas::failure{failure::bad_alg};
  if (d.head.alg != "ES256") return schemas::failure{failure::bad_alg};  // RFC 8588 §3: ES256 only
  if (h["crit"].error() != simdjson::NO_SUCH_FIELD) return schemas::failure{failure::malformed};
  if (!get_string(h, "typ", d.head.typ) || d.head.typ != "passport") return schemas::failure{failure::bad_typ};
  if (!get_string(h, "ppt", d.head.ppt) || (d.head.ppt != "shaken" && d.head.ppt != "div"))
    return schemas::failure{failure::bad_ppt};
  if (!get_string(h, "x5u", d.head.x5u) || !https_url(d.head.x5u)) return schemas::failure{failure::bad_x5u};

  simdjson::dom::object c;
  if (thread_parser().parse(jwt->payload_json).get_object().get(c) != simdjson::SUCCESS)
    return schemas::failure{failure::malformed};
  std::vector<std::string> orig;
  if (!read_tn(c, "orig", false, orig)) return schemas::failure{failure::bad_claims};
  d.body.orig = std::move(orig.front());
  if (!read_tn(c, "dest", true, d.body.dest)) return schemas::failure{failure::bad_claims};
  // iat: an integer NumericDate (RFC 8225 §5.1.1).
  std::int64_t iat = 0;
  if (c["iat"].get_int64().get(iat) != simdjson::SUCCESS || iat < 0 || iat > 253402300799)
    return schemas::failure{failure::bad_claims};
  d.body.iat = iat;
  if (d.head.ppt == "shaken") {
    std::string attest;
    if (!get_string(c, "attest", attest) || attest.size() != 1 || attest[0] < 'A' || attest[0] > 'C')
      return schemas::failure{failure::bad_claims};
    d.body.attest = attest[0];
    if (!get_string(c, "origid", d.body.origid) || d.body.origid.empty() || d.body.origid.size() > 128)
      return schemas::failure{failure::bad_claims};
  } else {
    std::vector<std::string> div;
    if (!read_tn(c, "div", false, div)) return schemas::failure{failure::bad_claims};
    d.body.div = std::move(div.front());
    d.body.attest = 0;
  }
  d.signing_input.assign(jwt->signing_input);
  d.signature = std::move(jwt->signature);
  return d;
}

result<identity_header, failure> parse_identity_header(std::string_view value) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  value = trim(value);
  if (value.empty() || value.size() > max_passport_bytes + 2048) return schemas::failure{failure::identity_header};
  identity_header out;
  auto semi = value.find(';');
  out.token = std::string(trim(value.substr(0, semi)));
  if (out.token.empty()) return schemas::failure{failure::identity_header};
  while (semi != std::string_view::npos) {
    value.remove_prefix(semi + 1);
    semi = value.find(';');
    std::string_view param = trim(value.substr(0, semi));
    const auto eq = param.find('=');
    if (param.empty() || eq == std::string_view::npos || eq == 0) return schemas::failure{failure::identity_header};
    std::string_view name = trim(param.substr(0, eq)), v = trim(param.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
    if (v.empty()) return schemas::failure{failure::identity_header};
    std::optional<std::string>* slot = name == "info" ? &out.info : name == "alg" ? &out.alg : name == "ppt" ? &out.ppt : nullptr;
    if (!slot) continue;  // RFC 8224 §4.1: unknown parameters are ignored
    if (*slot) return schemas::failure{failure::identity_header};  // a parameter given twice
    slot->emplace(v);
  }
  if (out.alg && *out.alg != "ES256") return schemas::failure{failure::bad_alg};
  return out;
}

bool signature_ok(const decoded& d, const jose::public_key& key) {
  return key.is_ec_p256() && jose::verify(key, jose::alg::es256, d.signing_input, d.signature);
}

std::optional<failure> check_call(const claims& c, std::string_view from, std::string_view to, std::int64_t now_s,
                                  std::int64_t skew_s) {
  if (c.iat < now_s - skew_s) return failure::stale;
  if (c.iat > now_s + skew_s) return failure::future;
  const auto f = canonical_tn(from), t = canonical_tn(to);
  if (!f || c.orig != *f) return failure::orig_mismatch;
  if (!t) return failure::dest_mismatch;
  for (const auto& d : c.dest)
    if (d == *t) return std::nullopt;
  return failure::dest_mismatch;
}

std::string sign(const jose::private_key& key, std::string_view x5u, const claims& c) {
  if (!key.is_ec_p256()) throw std::invalid_argument("passport: the signing key must be EC P-256");
  const bool div = c.div.has_value();
  json_writer h(160);
  h.begin_object().field("alg", "ES256").field("ppt", div ? "div" : "shaken").field("typ", "passport");
  h.field("x5u", x5u).end_object();
  json_writer b(256);
  b.begin_object();
  if (!div) b.field("attest", std::string_view(&c.attest, 1));
  b.key("dest").begin_object().key("tn").begin_array();
  for (const auto& d : c.dest) b.value(std::string_view(d));
  b.end_array().end_object();
  if (div) b.key("div").begin_object().field("tn", std::string_view(*c.div)).end_object();
  b.field("iat", c.iat);
  b.key("orig").begin_object().field("tn", std::string_view(c.orig)).end_object();
  if (!div) b.field("origid", std::string_view(c.origid));
  b.end_object();
  return jose::sign_jwt(key, jose::alg::es256, h.str(), b.str());
}

}  // namespace schemas::passport
