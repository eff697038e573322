// match_route on arbitrary bytes, split at '\n' into method, base path and target
// (the rest, '\n's included, is the target). Properties:
//  - path, query and call_id are views into the target (substrings, not copies);
//    path + "?" + query is the target when it has a '?', else path is the target;
//  - a call route (call_action, get_call) has a non-empty call_id without '/' or '?',
//    and the path ends with it; so have DELETE /pushers/{deviceId} (its device id) and
//    /settings/{msisdn} (the number); every other route has no call_id;
//  - a found route names the method it takes (allow) and method_ok == (method == allow);
//    /settings takes two (allow "GET, PUT");
//    not_found has method_ok false and no allow;
//  - the label is never empty; is_valid_call_id(call_id) => 1..128 of [A-Za-z0-9._~-];
//  - mounting: the same target under a base path routes to the same kind and call_id.
#include "transport/router.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"

namespace {

bool inside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '~' || c == '-';
}

void check(std::string_view method, std::string_view target, std::string_view base, const transport::route& r) {
  using transport::route_kind;
  FUZZ_CHECK(inside(r.path, target) && inside(r.query, target) && inside(r.call_id, target));
  FUZZ_CHECK(target.find(r.call_id) != std::string_view::npos);
  if (const auto q = target.find('?'); q != std::string_view::npos) {
    FUZZ_CHECK(r.path == target.substr(0, q) && r.query == target.substr(q + 1));
  } else {
    FUZZ_CHECK(r.path == target && r.query.empty());
  }
  // DELETE /pushers/{deviceId} carries the device id where calls carry theirs.
  const bool call = r.kind == route_kind::call_action || r.kind == route_kind::get_call ||
                    (r.kind == route_kind::pushers && !r.call_id.empty()) || r.kind == route_kind::settings;
  if (call) {
    FUZZ_CHECK(!r.call_id.empty());
    FUZZ_CHECK(r.call_id.find('/') == std::string_view::npos && r.call_id.find('?') == std::string_view::npos);
    FUZZ_CHECK(r.path.size() > r.call_id.size() && r.path.substr(r.path.size() - r.call_id.size()) == r.call_id);
    FUZZ_CHECK(r.path[r.path.size() - r.call_id.size() - 1] == '/');
  } else {
    FUZZ_CHECK(r.call_id.empty());
  }
  if (r.kind == route_kind::not_found) {
    FUZZ_CHECK(!r.method_ok && r.allow.empty());
  } else {
    FUZZ_CHECK(!r.allow.empty());
    if (r.kind == route_kind::settings)
      FUZZ_CHECK(r.allow == "GET, PUT" && r.method_ok == (method == "GET" || method == "PUT"));
    else
      FUZZ_CHECK(r.method_ok == (method == r.allow));
    FUZZ_CHECK(r.path.substr(0, base.size()) == base);
  }
  if (r.kind == route_kind::phone) {  // a file of the flat /phone/ folder, or /phone itself
    FUZZ_CHECK(r.asset.empty() || r.asset == "index.html" || inside(r.asset, target));
    FUZZ_CHECK(r.asset.find('/') == std::string_view::npos && r.asset.find('?') == std::string_view::npos);
  } else {
    FUZZ_CHECK(r.asset.empty());
  }
  FUZZ_CHECK(!transport::route_label(r).empty());
  if (transport::is_valid_call_id(r.call_id)) {
    FUZZ_CHECK(!r.call_id.empty() && r.call_id.size() <= 128);
    for (char c : r.call_id) FUZZ_CHECK(id_char(c));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view method, base;
  for (std::string_view* p : {&method, &base}) {
    const auto nl = in.find('\n');
    *p = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  }
  const std::string_view target = in;

  const transport::route r = transport::match_route(method, target, base);
  check(method, target, base, r);

  // Mounted under a clean base path, a base-less route keeps its kind and call id.
  // (Only for targets whose path has no '?' before the mount point, i.e. all.)
  const transport::route plain = transport::match_route(method, target, "");
  check(method, target, "", plain);
  const std::string mounted = "/api/v1" + std::string(target);
  const transport::route m = transport::match_route(method, mounted, "/api/v1");
  check(method, mounted, "/api/v1", m);
  FUZZ_CHECK(m.kind == plain.kind && m.call_id == plain.call_id && m.method_ok == plain.method_ok);
  if (plain.kind == transport::route_kind::call_action) FUZZ_CHECK(m.act == plain.act);
  return 0;
}
