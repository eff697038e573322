#pragma once
// Maps a request line to a route: which endpoint, which call. Pure and allocation-free
// (views into the target), so it is cheap on the hot path and easy to fuzz.
#include <optional>
#include <string_view>

#include "engine/types.hpp"

namespace transport {

enum class route_kind {
  call_action,    // one of the reference's endpoints on a call (act, call_id)
  start,          // POST /start
  get_call,       // GET /calls/{callId}
  notifications,  // GET /notifications (WebSocket)
  healthz,
  readyz,
  metrics,
  faults,         // POST /_faults (only with --fault-injection)
  phone,          // GET /phone, /phone/, /phone/<file>: the web softphone's static files (asset)
  dev_token,      // POST /dev/token (only on the development issuer)
  sti_cert,       // GET /sti/cert.pem: the engine's STI certificate chain, what its PASSporTs' x5u names
  pushers,        // POST /pushers (act register_pusher), DELETE /pushers/{deviceId} (unregister_pusher; call_id = deviceId)
  settings,       // GET, PUT /settings/{msisdn} (act settings; call_id = the number as the path spells it)
  not_found,
};

struct route {
  route_kind kind = route_kind::not_found;
  engine::action act = engine::action::start;
  std::string_view call_id;
  std::string_view asset;  // phone: the file name ("" for /phone itself, "index.html" for /phone/)
  std::string_view path;   // target without the query string
  std::string_view query;  // after '?', empty if none
  bool method_ok = false;  // false: the path exists but not with this method (405)
  std::string_view allow;  // the method the path takes, for the Allow header
};

// `base_path` is "" or "/something" (no trailing slash).
route match_route(std::string_view method, std::string_view target, std::string_view base_path);

// Metric label of a route ("start", "acceptHold", "calls", "healthz", …, "unknown").
std::string_view route_label(const route& r);

// callIds we accept as input: 1..128 of [A-Za-z0-9._~-].
bool is_valid_call_id(std::string_view id);

}  // namespace transport
