#include "transport/router.hpp"

#include "schemas/api.hpp"

#include <array>

namespace transport {

namespace {

struct call_path {
  std::string_view word;
  engine::action act;
  std::string_view method;
};

constexpr std::array<call_path, 13> call_paths{{
    {"inProgress", engine::action::in_progress, "POST"},
    {"proceeding", engine::action::proceeding, "POST"},
    {"ringing", engine::action::ringing, "POST"},
    {"connected", engine::action::connected, "POST"},
    {"hold", engine::action::hold, "POST"},
    {"acceptHold", engine::action::accept_hold, "POST"},
    {"resume", engine::action::resume, "POST"},
    {"acceptResume", engine::action::accept_resume, "POST"},
    {"renegotiate", engine::action::renegotiate, "POST"},
    {"end", engine::action::end, "DELETE"},
    // Contract §10
    {"transfer", engine::action::transfer, "POST"},
    {"upgradeToMeeting", engine::action::upgrade_to_meeting, "POST"},
    {"acceptUpgrade", engine::action::accept_upgrade, "POST"},
}};

route simple(route r, route_kind k, std::string_view method, std::string_view want) {
  r.kind = k;
  r.allow = want;
  r.method_ok = method == want;
  return r;
}

}  // namespace

bool is_valid_call_id(std::string_view id) { return schemas::is_valid_call_id(id); }

route match_route(std::string_view method, std::string_view target, std::string_view base_path) {
  route r;
  const auto q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  std::string_view p = r.path;
  if (!base_path.empty()) {
    if (p.substr(0, base_path.size()) != base_path) return r;
    p.remove_prefix(base_path.size());
  }
  if (p.empty() || p.front() != '/') return r;
  p.remove_prefix(1);
  const auto slash = p.find('/');
  const std::string_view word = p.substr(0, slash);
  if (slash == std::string_view::npos) {
    if (word == "start") return simple(r, route_kind::start, method, "POST");
    if (word == "healthz") return simple(r, route_kind::healthz, method, "GET");
    if (word == "readyz") return simple(r, route_kind::readyz, method, "GET");
    if (word == "metrics") return simple(r, route_kind::metrics, method, "GET");
    if (word == "notifications") return simple(r, route_kind::notifications, method, "GET");
    if (word == "_faults") return simple(r, route_kind::faults, method, "POST");
    if (word == "phone") return simple(r, route_kind::phone, method, "GET");
    if (word == "pushers") {
      r = simple(r, route_kind::pushers, method, "POST");
      r.act = engine::action::register_pusher;
      return r;
    }
    return r;
  }
  const std::string_view id = p.substr(slash + 1);
  if (word == "phone") {  // flat folder: /phone/<file>, the index at /phone/
    if (id.find('/') != std::string_view::npos) return r;
    r = simple(r, route_kind::phone, method, "GET");
    r.asset = id.empty() ? std::string_view("index.html") : id;
    return r;
  }
  if (word == "dev" && id == "token") return simple(r, route_kind::dev_token, method, "POST");
  if (word == "sti" && id == "cert.pem") return simple(r, route_kind::sti_cert, method, "GET");
  if (id.empty() || id.find('/') != std::string_view::npos) return r;
  if (word == "pushers") {
    r = simple(r, route_kind::pushers, method, "DELETE");
    r.act = engine::action::unregister_pusher;
    r.call_id = id;  // the device id
    return r;
  }
  if (word == "settings") {  // two methods on one path
    r.kind = route_kind::settings;
    r.act = engine::action::settings;
    r.allow = "GET, PUT";
    r.method_ok = method == "GET" || method == "PUT";
    r.call_id = id;
    return r;
  }
  if (word == "calls") {
    r = simple(r, route_kind::get_call, method, "GET");
    r.call_id = id;
    return r;
  }
  for (const auto& cp : call_paths) {
    if (cp.word == word) {
      r = simple(r, route_kind::call_action, method, cp.method);
      r.act = cp.act;
      r.call_id = id;
      return r;
    }
  }
  return r;
}

std::string_view route_label(const route& r) {
  switch (r.kind) {
    case route_kind::call_action: return engine::to_string(r.act);
    case route_kind::start: return "start";
    case route_kind::get_call: return "calls";
    case route_kind::notifications: return "notifications";
    case route_kind::healthz: return "healthz";
    case route_kind::readyz: return "readyz";
    case route_kind::metrics: return "metrics";
    case route_kind::faults: return "faults";
    case route_kind::phone: return "phone";
    case route_kind::dev_token: return "devToken";
    case route_kind::sti_cert: return "stiCert";
    case route_kind::pushers: return engine::to_string(r.act);
    case route_kind::settings: return "settings";
    case route_kind::not_found: return "unknown";
  }
  return "unknown";
}

}  // namespace transport
