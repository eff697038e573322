#pragma once
// The REST API without sockets: turns one parsed HTTP request into a response, either
// at once (routing, auth and protocol errors, health, metrics) or through the reactor
// (every call endpoint). Session code (server.cpp) only moves bytes; everything the
// contract says about a request happens here. No Beast/Asio include.
//
// Thread-safety: handle() is called concurrently from the I/O threads. Each request is
// answered exactly once: through `respond` on the calling I/O thread (answers made at
// once), or through `respond_later` from the reactor thread, whose function the
// connection's I/O thread runs to make the response (rendering and metrics stay off the
// reactor).
#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "engine/log.hpp"
#include "engine/metrics.hpp"
#include "engine/reactor.hpp"
#include "schemas/result.hpp"
#include "transport/auth.hpp"
#include "transport/caller_id.hpp"
#include "transport/pop.hpp"
#include "transport/rate_limiter.hpp"
#include "transport/router.hpp"

namespace transport {

struct http_request {
  std::string_view method;
  std::string_view target;
  std::string_view body;
  // Header values; the has_ flags tell an empty header from an absent one.
  std::string_view authorization;
  std::string_view x_authorization;
  std::string_view transaction_id;
  std::string_view reason;
  std::string_view conference;
  bool has_transaction_id = false;
  bool has_x_authorization = false;
  bool has_reason = false;
  bool has_conference = false;
  // Any request header by name (case-insensitive), for what a PoP token may cover.
  std::function<std::optional<std::string_view>(std::string_view)> header;
};

struct http_response {
  int status = 200;
  std::string body;
  std::string transaction_id;
  std::string_view content_type = "application/json";
  std::string_view allow;  // set on 405
  int retry_after_s = 0;   // set on 429 and 503: Retry-After
  std::string_view cache_control;  // set on the phone's static files
  std::string location;            // set on redirects
};

// A response with these fields and the rest at their defaults.
inline http_response response_of(int status, std::string body, std::string transaction_id,
                                 std::string_view content_type) {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  r.transaction_id = std::move(transaction_id);
  r.content_type = content_type;
  return r;
}

using respond_fn = std::function<void(http_response)>;
using render_fn = std::function<http_response()>;
using respond_later_fn = std::function<void(render_fn)>;

// What a WebSocket upgrade on GET /notifications is granted.
struct socket_grant {
  principal who;
  std::optional<std::uint64_t> since;  // ?since=<sequenceNumber>
  std::string transaction_id;
};

struct api_options {
  std::string base_path;
  double rate_per_token = 50;    // requests per second per access token; 0: no limit
  double rate_burst = 100;
  std::size_t rate_max_tokens = 1'000'000;  // buckets per limiter (tokens, subjects)
  double rate_per_sub = 100;     // requests per second per subject (`sub`), all its tokens; 0: no limit
  double rate_sub_burst = 200;
  pop_options pop;
  // POST /_faults (yna-engine --fault-injection): arms a storage fault from the JSON
  // body; returns the response body, or an error message (400). Empty: the path is 404.
  std::function<schemas::result<std::string, std::string>(std::string_view body)> faults;
  // POST /dev/token (only on the development issuer; transport/dev_token_route.hpp):
  // mints an access token for the body's MSISDN bound to its public JWK; returns the
  // response body, or an error message (400). Empty: the path is 404.
  std::function<schemas::result<std::string, std::string>(std::string_view body)> dev_token;
  // POST /pushers (contract §13): why a pusher's URL may not be used (not a URL, its host
  // not in --outbound-allow), or "" when it may. Empty function: every URL is refused.
  std::function<std::string(std::string_view url)> check_push_url;
  std::int64_t pusher_ttl_s = 30 * 86400;  // --pusher-ttl: after the registering token's exp
  // --meeting-base-uri (contract §10): an upgrade's meetingUri must start with it; when a
  // request gives none, the engine makes one: this + 32 hex digits (128 random bits).
  std::string meeting_base_uri = "https://meet.yna.invalid/m/";
  // The STI-AS (contract §11): signs a PASSporT for each /start whose token owns `from`;
  // GET /sti/cert.pem serves its chain. Null: no signing (invitations then say Passed
  // with no PASSporT, as before caller identity existed; tests of the API alone).
  std::shared_ptr<const sti_signer> signer;
  // The STI-VS (contract §11): verifies a gateway's /start `identity` (identity_verifier::
  // verify); its result travels in the command. Empty: every gateway identity is Failed
  // (no verifier configured).
  std::function<void(std::string identity, std::string from, std::string to, std::int64_t now_s,
                     std::function<void(engine::caller_identity)> done)>
      verify_identity;
};

class api {
 public:
  // `ready` says whether /readyz is ready (recovered and storage writable).
  // Order of checks on call endpoints (contract §2): bearer token, rate limit, PoP
  // (required everywhere but /start, where it is verified when present), then input.
  api(engine::reactor& reactor, const token_verifier& verifier, engine::registry& metrics, api_options opts,
      std::function<bool()> ready);

  void handle(const http_request& req, respond_fn respond, respond_later_fn respond_later);

  // For an upgrade request: routes it (must be GET /notifications), authenticates it
  // (Bearer header, or the access_token query parameter for browsers; no PoP) and reads
  // `since`. On failure, the HTTP response to send instead of upgrading.
  std::variant<socket_grant, http_response> authorize_socket(const http_request& req);

  // A response for errors found before a request could be routed (bad HTTP, body too
  // large, headers too large): ErrorInfo carrying the request's transaction id when it
  // sent a valid one (empty: none was read), else a fresh one.
  http_response protocol_error(schemas::reason_code code, std::string_view message,
                               std::string_view transaction_id = {});

  // True for GET /healthz and GET /readyz (under the base path): what a connection in a
  // reserved health slot may ask.
  bool is_health_check(std::string_view method, std::string_view target) const;

 private:
  http_response phone_file(const route& r, std::string txn) const;
  void finish(const route& r, std::int64_t started_ns, const respond_fn& respond, http_response res);
  // The metrics of an answered request (by endpoint and status, latency).
  void account(const route& r, std::int64_t started_ns, int status);
  // Hands a built command to the reactor, answering through respond/respond_later. Any
  // thread (a gateway's /start continues on the verifier's).
  void submit(const route& r, engine::command cmd, std::int64_t started, respond_fn respond,
              respond_later_fn respond_later, std::string txn);
  void handle_call(const route& r, const http_request& req, principal who, std::string txn,
                   schemas::reason_code input_error, std::string input_message, std::int64_t started_ns,
                   respond_fn respond, respond_later_fn respond_later);
  engine::counter& requests(const route& r, int status);
  void note_unauthenticated(const route& r, std::string_view why);
  // Sets the gauges of the bounded tables (replay cache, rate limiters) before /metrics.
  void refresh_gauges();
  // The reply callback handed to the reactor (hands its reply to the connection's I/O
  // thread, which renders it), and what to do when the reactor refuses the request (503).
  std::pair<engine::reply_fn, std::function<void()>> through_reactor(const route& r, std::int64_t started,
                                                                     respond_fn respond,
                                                                     respond_later_fn respond_later, std::string txn);

  engine::reactor& reactor_;
  const token_verifier& verifier_;
  engine::registry& metrics_;
  api_options opts_;
  std::function<bool()> ready_;
  engine::histogram& latency_;
  engine::counter& unauthenticated_;
  engine::log::limiter log_limit_{10};
  engine::counter& rate_limited_;
  engine::gauge& tokens_cached_;
  engine::gauge& tokens_evicted_;
  engine::gauge& pop_jtis_;
  engine::gauge& pop_keys_;
  engine::gauge& rate_buckets_token_;
  engine::gauge& rate_buckets_sub_;
  engine::gauge& rate_evicted_;
  pop_verifier pop_;
  rate_limiter rate_;
  rate_limiter rate_sub_;
};

// 128 random bits as 32 upper-case hex digits (contract §3).
std::string new_call_id();
// A random (version 4) GUID, lower-case.
std::string new_transaction_id();

}  // namespace transport
