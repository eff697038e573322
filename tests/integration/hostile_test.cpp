// A hostile storm over the real binary: thousands of malformed requests from several
// threads (bad JSON, wrong types, invalid UTF-8 in bodies and headers, huge headers,
// truncated bodies, random bytes, unknown methods, absurd targets, bad tokens, bad
// PoPs) while valid calls run start → ringing → connected → end. Afterwards:
//   - every valid call completed, every bad request got its error (status ≥ 400 with
//     ErrorInfo whenever a response is possible);
//   - the engine's memory stayed bounded and it still serves;
//   - the log holds nothing the bad requests should not have left: no call but the
//     valid ones, no event from an unauthenticated request, only REJECTED events from
//     the authenticated bad ones, and the hash chain verifies (yna-tool verify).
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "engine/types.hpp"
#include "schemas/jose.hpp"
#include "schemas/pop_token.hpp"
#include "storage/event_log.hpp"
#include "tests/integration/api_fixture.hpp"

using namespace integration;
namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace http = beast::http;
using clock_type = std::chrono::steady_clock;

namespace {

// ------------------------------------------------------------------ sizes

constexpr int hostile_threads = 5;
const int bad_per_thread = scaled(2000);  // 10000 from these threads (fewer under sanitizers), plus the workers' bad PoPs
constexpr int valid_workers = 3;
const int min_valid_calls = scaled(54, 12);  // ≥ 50 (fewer under sanitizers); workers keep calling until the storm is over

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}


// ------------------------------------------------------------------ raw sockets

std::optional<response> parse_response(std::string_view bytes) {
  if (bytes.empty()) return std::nullopt;
  http::response_parser<http::string_body> p;
  p.eager(true);
  p.body_limit(64 << 20);
  beast::error_code ec;
  p.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (!p.is_done() && p.got_some() && p.need_eof()) p.put_eof(ec);
  if (!p.is_done()) return std::nullopt;
  response out;
  out.status = static_cast<int>(p.get().result_int());
  for (const auto& f : p.get()) {
    std::string name(f.name_string());
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  out.body = p.get().body();
  return out;
}

// Sends `bytes` on a fresh connection, then either closes at once (abort: no answer is
// possible) or shuts down its write side and reads until the engine closes (≤ 20 s).
// Returns what came back (empty when nothing); throws only when it cannot connect.
std::string send_and_close(std::uint16_t port, std::string_view bytes, bool abort) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  }
  std::string_view left = bytes;
  while (!left.empty()) {
    const ssize_t n = ::send(fd, left.data(), left.size(), MSG_NOSIGNAL);
    if (n <= 0) break;  // the engine already closed: fine for garbage
    left.remove_prefix(static_cast<std::size_t>(n));
  }
  std::string got;
  if (!abort) {
    ::shutdown(fd, SHUT_WR);
    const auto deadline = clock_type::now() + 20s;
    for (;;) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
      if (ms <= 0) {
        got += "<timeout: the engine kept the connection open>";
        break;
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(ms)) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return got;
}

std::string raw_http(std::string_view method, std::string_view target, const header_list& headers,
                     std::string_view body, bool content_length = true) {
  std::string s = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) s += k + ": " + v + "\r\n";
  if (content_length) s += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return s + "\r\n" + std::string(body);
}

std::string pop_for(std::string_view auth, std::string_view method, std::string_view target, std::string_view body) {
  return schemas::build_request_pop(test_device_key(), method, target, body, auth, now_seconds());
}

// ------------------------------------------------------------------ expectations

// What a bad request must get.
struct expectation {
  int status = 0;             // exact status, or 0: any status ≥ 400
  std::string code;           // exact reasonCode, or "": any
  bool response_optional = false;  // a closed connection is an acceptable answer
  bool event = false;         // authenticated, well-formed, on one of the eleven endpoints:
                              // stored as one REJECTED event when answered 400
};

struct tally {
  std::mutex mu;
  std::map<std::string, int> sent, answered, closed;
  std::vector<std::string> violations;
  int events_expected = 0;    // answered 400 with expectation.event
  int total = 0;

  void record(const std::string& category, const std::string& what, const expectation& want,
              const std::optional<response>& got, const std::string& error = {}) {
    std::string problem;
    if (!got) {
      if (!want.response_optional) problem = "no response" + (error.empty() ? "" : ": " + error);
    } else {
      const response& r = *got;
      if (r.status < 400)
        problem = "status " + std::to_string(r.status);
      else if (want.status && r.status != want.status)
        problem = "status " + std::to_string(r.status) + ", want " + std::to_string(want.status);
      else if (!is_error_info(r.body))
        problem = "not an ErrorInfo";
      else if (r.content_type().rfind("application/json", 0) != 0)
        problem = "content-type " + r.content_type();
      else if (!want.code.empty() && reason_code_of(r.body) != want.code)
        problem = "reasonCode " + reason_code_of(r.body) + ", want " + want.code;
    }
    std::lock_guard lk(mu);
    ++total;
    ++sent[category];
    (got ? answered : closed)[category]++;
    if (got && want.event && got->status == 400) ++events_expected;
    if (!problem.empty() && violations.size() < 200) {
      std::string shown = what.substr(0, 300);
      for (char& ch : shown)
        if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = '.';
      violations.push_back("[" + category + "] " + shown + " → " + problem +
                           (got ? " | " + std::to_string(got->status) + " " + got->body.substr(0, 200) : ""));
    }
  }
};

// ------------------------------------------------------------------ the storm

struct shared_calls {
  std::mutex mu;
  std::vector<std::string> ids;  // calls of the valid workers, for bad requests to aim at
  std::string pick(std::mt19937& rng) {
    std::lock_guard lk(mu);
    if (ids.empty()) return unknown_call_id();
    return ids[std::uniform_int_distribution<std::size_t>(0, ids.size() - 1)(rng)];
  }
};

const char* const call_words[] = {"inProgress", "proceeding", "ringing",      "connected", "hold",
                                  "acceptHold", "resume",     "acceptResume", "renegotiate"};

// One hostile thread: `n` bad requests of every kind, round-robin, parameters from `rng`.
void hostile(const engine_process& eng, int index, int n, shared_calls& calls, tally& t,
             const std::vector<party>& own) {
  std::mt19937 rng(1000 + index);
  const auto pick = [&](auto lo, auto hi) { return std::uniform_int_distribution<long long>(lo, hi)(rng); };
  http_client c(eng.port());
  const std::uint16_t port = eng.port();
  const std::int64_t now = now_seconds();
  const std::string foreign = foreign_token({own.front().number});
  const std::string expired = eng.token_at({own.front().number}, now - 7200, now - 3600);
  const std::string none = compact_jwt(R"({"alg":"none","typ":"JWT","kid":"dev"})",
                                       "{\"iss\":\"yna-dev\",\"sub\":\"hostile-none\",\"msisdns\":[\"14250000000\"],\"exp\":" +
                                           std::to_string(now + 3600) + "}",
                                       "");
  std::string truncated_sig = own.front().tok;
  truncated_sig.resize(truncated_sig.size() - 5);
  const std::vector<std::string> bad_tokens{"garbage", "a.b.c", none, foreign, expired, truncated_sig, "", "...."};

  for (int i = 0; i < n; ++i) {
    const party& me = own[static_cast<std::size_t>(i) % own.size()];
    const std::string auth = "Bearer " + me.tok;
    const std::string victim = fresh_msisdn();
    const int kind = i % 12;
    try {
      switch (kind) {
        case 0: {  // bad JSON on /start (authenticated: a REJECTED event)
          static const char* const bodies[] = {"{",  "not json", "{\"to\":", "[1,2", "{\"to\":\"1\",}", "{'to':1}",
                                               "{\"to\":\"14250000001\" \"from\":\"x\"}", "\x01\x02\x03", "{}}"};
          const std::string body = bodies[pick(0, 8)];
          t.record("bad JSON", "POST /start " + body, {400, "INVALID_JSON", false, true},
                   c.post("/start", body, bearer(me.tok)));
          break;
        }
        case 1: {  // wrong JSON types
          const std::string s = json_quote(sdp());
          const std::string variants[] = {
              "{\"to\":14250000001,\"from\":" + json_quote(me.number) + ",\"sdp\":" + s + "}",
              "{\"to\":" + json_quote(victim) + ",\"from\":true,\"sdp\":" + s + "}",
              "{\"to\":" + json_quote(victim) + ",\"from\":" + json_quote(me.number) + ",\"sdp\":[\"v=0\"]}",
              "{\"to\":" + json_quote(victim) + ",\"from\":" + json_quote(me.number) + ",\"sdp\":" + s +
                  ",\"clientCorrelator\":{}}",
              "{\"to\":null,\"from\":" + json_quote(me.number) + ",\"sdp\":" + s + "}",
          };
          const std::string& body = variants[pick(0, 4)];
          t.record("wrong JSON types", "POST /start " + body, {400, "", false, true}, c.post("/start", body, bearer(me.tok)));
          break;
        }
        case 2: {  // invalid UTF-8 in the body
          const std::string bad_utf8[] = {"\xff\xfe", "\xc3\x28", "\xe2\x82", "\xed\xa0\x80", "\xf8\x88\x80\x80\x80"};
          const std::string& b = bad_utf8[pick(0, 4)];
          const bool in_sdp = pick(0, 1) == 1;
          const std::string body = in_sdp ? "{\"to\":" + json_quote(victim) + ",\"from\":" + json_quote(me.number) +
                                                ",\"sdp\":\"v=0\\r\\n" + b + "\\r\\n\"}"
                                          : "{\"to\":\"" + b + "\",\"from\":" + json_quote(me.number) +
                                                ",\"sdp\":" + json_quote(sdp()) + "}";
          t.record("invalid UTF-8 body", "POST /start " + body, {400, "", false, true}, c.post("/start", body, bearer(me.tok)));
          break;
        }
        case 3: {  // invalid UTF-8 / control bytes in headers (fresh connection: raw bytes)
          const int v = static_cast<int>(pick(0, 3));
          std::string bytes, what;
          expectation want;
          if (v == 0) {  // the transaction id: an input error of an authenticated request
            const std::string body = start_body(me.number, victim, sdp());
            bytes = raw_http("POST", "/start", {{"Authorization", auth}, {"x-transaction-id", "\xff\xfe-\xc3\x28"}}, body);
            what = "POST /start x-transaction-id: <invalid UTF-8>";
            want = {400, "INVALID_TRANSACTION_ID", false, true};
          } else if (v == 1) {  // the reason header of /end: must be printable ASCII
            const std::string target = "/end/" + unknown_call_id();
            bytes = raw_http("DELETE", target,
                             {{"Authorization", auth}, {"X-Authorization", pop_for(auth, "DELETE", target, "")},
                              {"reason", "caf\xc3\xa9 \xff"}},
                             "");
            what = "DELETE /end reason: <non-ASCII>";
            want = {400, "INVALID_FIELD", false, true};
          } else if (v == 2) {  // the token itself
            bytes = raw_http("POST", "/start", {{"Authorization", "Bearer \xff\xfe\xfd.\xc3\x28.x"}}, "{}");
            what = "POST /start Authorization: <invalid UTF-8>";
            want = {401, "UNAUTHORIZED"};
          } else {  // control bytes in a header value or name: not HTTP
            bytes = raw_http("GET", "/healthz", {{pick(0, 1) ? "X-Bad" : "X-B\x01d", "a\x01\x02z"}}, "", false);
            what = "GET /healthz with control bytes in a header";
            want = {400, ""};
          }
          t.record("invalid UTF-8/bytes in headers", what, want, raw_request(port, bytes, 20s));
          break;
        }
        case 4: {  // huge headers: well over the 16 KiB default (limits_test.cpp checks the exact
                   // limit; a block of many small fields just over it slips through, see there)
          const std::size_t size = static_cast<std::size_t>(pick(24 * 1024, 64 * 1024));
          const bool many = pick(0, 1) == 1;
          header_list h{{"Authorization", auth}};
          if (many)
            for (std::size_t k = 0; k * 100 < size; ++k) h.emplace_back("X-Pad-" + std::to_string(k), std::string(90, 'p'));
          else
            h.emplace_back("X-Pad", std::string(size, 'p'));
          const std::string target = pick(0, 1) ? "/start" : "/ringing/" + calls.pick(rng);
          t.record("huge headers", "POST " + target + " with " + std::to_string(size) + " bytes of headers",
                   {431, "HEADERS_TOO_LARGE"}, raw_request(port, raw_http("POST", target, h, "{}"), 20s));
          break;
        }
        case 5: {  // truncated body: Content-Length larger than what is sent, then close
          const std::string body = start_body(me.number, victim, sdp());
          const std::size_t cut = static_cast<std::size_t>(pick(0, static_cast<long long>(body.size()) - 1));
          std::string bytes = "POST /start HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + auth +
                              "\r\nContent-Length: " + std::to_string(body.size() + pick(1, 5000)) + "\r\n\r\n" +
                              body.substr(0, cut);
          const bool abort = pick(0, 1) == 1;
          const std::string got = send_and_close(port, bytes, abort);
          t.record("truncated body", std::string("truncated /start body, ") + (abort ? "closed" : "half-closed"),
                   {0, "", true}, parse_response(got), got.substr(0, 100));
          break;
        }
        case 6: {  // random bytes
          std::string bytes(static_cast<std::size_t>(pick(1, 2048)), '\0');
          for (char& ch : bytes) ch = static_cast<char>(pick(0, 255));
          if (pick(0, 3) == 0) bytes = "POST /start HTTP/1.1\r\n" + bytes;  // garbage after a plausible start
          const std::string got = send_and_close(port, bytes, false);
          t.record("random bytes", "random bytes (" + std::to_string(bytes.size()) + ")", {0, "", true},
                   parse_response(got), got.substr(0, 100));
          break;
        }
        case 7: {  // unknown methods
          static const char* const methods[] = {"BREW", "PROPFIND", "FOO", "get", "CONNECT", "TRACE", "PURGE", "M-SEARCH"};
          const std::string m = methods[pick(0, 7)];
          const std::string targets[] = {"/start", "/end/" + calls.pick(rng), "/calls/" + calls.pick(rng), "/nowhere",
                                         "/ringing/" + calls.pick(rng)};
          const std::string& target = targets[pick(0, 4)];
          const std::string bytes = m == "CONNECT" ? "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                                                   : raw_http(m, target, {{"Authorization", auth}}, "{}");
          t.record("unknown methods", m + " " + target, {0, ""}, raw_request(port, bytes, 20s));
          break;
        }
        case 8: {  // absurd targets
          const std::string id = calls.pick(rng);
          const std::string targets[] = {"/../../etc/passwd",
                                         "*",
                                         "http://evil.example/start",
                                         "/calls/" + std::string(static_cast<std::size_t>(pick(200, 6000)), 'A'),
                                         "/ringing/%00%ff%fe",
                                         "/ringing/" + id + "/extra",
                                         "//start",
                                         "/START",
                                         "/ringing/" + std::string(300, 'B'),
                                         "/start?" + std::string(4000, 'q'),
                                         "/calls/" + id + "/../../start",
                                         "/end/<script>"};
          const int v = static_cast<int>(pick(0, 11));
          const std::string& target = targets[v];
          const std::string method = v == 3 || v == 10 ? "GET" : v == 11 ? "DELETE" : "POST";
          header_list h{{"Authorization", auth}, {"X-Authorization", pop_for(auth, method, target, "{}")}};
          // An authenticated, PoP-signed request on a real endpoint with a malformed callId
          // (or /start with a query and no fields) is an input error of that endpoint: one
          // REJECTED event.
          const bool event = v == 4 || v == 8 || v == 9 || v == 11;
          t.record("absurd targets", method + " " + target, {0, "", false, event},
                   raw_request(port, raw_http(method, target, h, "{}"), 20s));
          break;
        }
        case 9: {  // bad tokens, aimed at the valid calls
          const std::string& tok = bad_tokens[static_cast<std::size_t>(pick(0, static_cast<long long>(bad_tokens.size()) - 1))];
          const std::string id = calls.pick(rng);
          const int v = static_cast<int>(pick(0, 2));
          const std::string target = v == 0 ? "/start" : v == 1 ? "/end/" + id : "/" + std::string(call_words[pick(0, 8)]) + "/" + id;
          const std::string method = v == 1 ? "DELETE" : "POST";
          const std::string body = v == 0 ? start_body(own.front().number, victim, sdp()) : v == 1 ? "" : sdp_body(sdp());
          const std::string want_code = tok == expired ? "TOKEN_EXPIRED" : "UNAUTHORIZED";
          t.record("bad tokens", method + " " + target + " Bearer " + tok.substr(0, 20), {401, want_code},
                   c.request(method, target, body, bearer(tok)));
          break;
        }
        case 10: {  // bad PoPs on the valid calls (from a stranger's valid token)
          const std::string id = calls.pick(rng);
          const std::string word = call_words[pick(0, 8)];
          const std::string target = "/" + word + "/" + id;
          const std::string body = sdp_body(sdp("x"));
          std::string pop, code = "POP_INVALID";
          switch (pick(0, 5)) {
            case 0: pop = "garbage"; break;
            case 1: pop = pop_for(auth, "POST", target, body + " "); break;            // another body
            case 2: pop = pop_for(auth, "POST", "/" + word + "/" + unknown_call_id(), body); break;  // another uri
            case 3: pop = pop_for(auth, "PUT", target, body); break;                   // another method
            case 4: {
              const std::int64_t ts = now_seconds();
              pop = schemas::build_pop_token(test_device_key(),
                                             {{"Authorization", auth}, {"uri", target}, {"http-method", "POST"}, {"body", body}},
                                             ts - 200, ts - 60);
              code = "POP_EXPIRED";
              break;
            }
            default: pop = std::string(no_pop); code = "POP_MISSING"; break;
          }
          t.record("bad PoPs", "POST " + target + " with a bad PoP", {401, code},
                   c.post(target, body, {{"Authorization", auth}, {"X-Authorization", pop}}));
          break;
        }
        default: {  // framing: bad Content-Length, chunked garbage, wrong version
          static const char* const frames[] = {
              "POST /start HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
              "POST /start HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
              "POST /start HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n12345",
              "POST /start HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nxx\r\n0\r\n\r\n",
              "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
              "GET /healthz\r\n\r\n",
              "\r\n\r\n\r\n",
          };
          const int v = static_cast<int>(pick(0, 6));
          const std::string got = send_and_close(port, frames[v], false);
          // Every one of them is a complete (bad) message: an answer is expected, or a close
          // for the ones that are not even a request line.
          t.record("bad framing", frames[v], {0, "", v >= 4}, parse_response(got), got.substr(0, 100));
          break;
        }
      }
    } catch (const std::exception& e) {
      t.record("harness", "kind " + std::to_string(kind) + ": " + e.what(), {}, std::nullopt, e.what());
      c.close();
    }
  }
}

struct valid_result {
  std::atomic<int> completed{0};
  std::mutex mu;
  std::vector<std::string> failures;
  std::set<std::string> ids, subs;
  std::set<std::string> mo_numbers;
};

// One valid worker: whole calls, each with bad PoPs of its own parties thrown in.
// Runs until the storm is over and `min_calls` calls completed in all, or `max_calls` of its own.
void valid_worker(const engine_process& eng, int index, const std::atomic<bool>& storm_over, shared_calls& calls,
                  valid_result& out, tally& t, int min_calls, int max_calls) {
  http_client c(eng.port());
  int mine = 0;
  while (mine < max_calls && (!storm_over.load() || out.completed.load() < min_calls)) {
    const party mo = new_party(eng, "mo-" + std::to_string(index));
    const party mt = new_party(eng, "mt-" + std::to_string(index));
    std::string step = "start";
    try {
      auto r = c.post("/start", start_body(mo.number, mt.number, sdp("offer")), mo.auth());
      if (r.status != 200) throw std::runtime_error(std::to_string(r.status) + " " + r.body);
      const std::string id = json_str(r.body, "/callId").value_or("");
      {
        std::lock_guard lk(calls.mu);
        calls.ids.push_back(id);
      }
      {
        std::lock_guard lk(out.mu);
        out.ids.insert(id);
        out.subs.insert("it-" + mo.number);
        out.subs.insert("it-" + mt.number);
        out.mo_numbers.insert(mo.number);
      }
      const auto ok = [&](const char* what, const response& res) {
        step = what;
        if (res.status != 200) throw std::runtime_error(std::to_string(res.status) + " " + res.body);
      };
      ok("ringing", c.post("/ringing/" + id, "{}", mt.auth()));
      // The parties' own tokens with PoPs that do not fit: refused, nothing happens.
      const std::string answer = sdp_body(sdp("answer"));
      const std::string mt_auth = "Bearer " + mt.tok, mo_auth = "Bearer " + mo.tok;
      t.record("bad PoPs (own call)", "POST /connected with a PoP over another body", {401, "POP_INVALID"},
               c.post("/connected/" + id, answer,
                      {{"Authorization", mt_auth}, {"X-Authorization", pop_for(mt_auth, "POST", "/connected/" + id, "{}")}}));
      t.record("bad PoPs (own call)", "DELETE /end with a PoP for another call", {401, "POP_INVALID"},
               c.del("/end/" + id, {{"Authorization", mo_auth},
                                     {"X-Authorization", pop_for(mo_auth, "DELETE", "/end/" + unknown_call_id(), "")}}));
      ok("connected", c.post("/connected/" + id, answer, mt.auth()));
      t.record("bad PoPs (own call)", "DELETE /end without PoP", {401, "POP_MISSING"},
               c.del("/end/" + id, {{"Authorization", mo_auth}, {"X-Authorization", std::string(no_pop)}}));
      ok("end", c.del("/end/" + id, mo.auth()));
      step = "check";
      r = c.get("/calls/" + id, mo.auth());
      if (json_str(r.body, "/status") != std::optional<std::string>("Terminated"))
        throw std::runtime_error("status after end: " + r.body);
      out.completed.fetch_add(1);
      ++mine;
    } catch (const std::exception& e) {
      std::lock_guard lk(out.mu);
      out.failures.push_back("worker " + std::to_string(index) + " call " + std::to_string(mine) + " at " + step + ": " +
                             e.what());
      c.close();
      if (out.failures.size() > 20) return;
    }
  }
}

}  // namespace

TEST_CASE("hostile: thousands of malformed requests from several threads, interleaved with valid calls") {
  engine_process eng;  // default flags: the limits a production engine runs with
  http_client c(eng.port());
  // The hostile threads' own parties (valid tokens, used for authenticated bad requests),
  // several per thread so that no token reaches the default rate limit.
  std::vector<std::vector<party>> own(hostile_threads);
  std::set<std::string> hostile_subs;
  for (auto& v : own)
    for (int k = 0; k < 24; ++k) {
      v.push_back(new_party(eng, "hostile"));
      hostile_subs.insert("it-" + v.back().number);
    }

  shared_calls calls;
  valid_result valid;
  tally bad;

  int warm_calls = 0;
  // Warm-up: a few calls and a few hundred bad requests, then the RSS baseline.
  {
    std::atomic<bool> over{true};
    valid_result warm;
    tally warm_bad;
    std::thread w([&] { valid_worker(eng, 99, over, calls, warm, warm_bad, 5, 5); });
    hostile(eng, 99, 240, calls, warm_bad, own.front());
    w.join();
    // The warm-up counts like the storm (its calls are valid calls too).
    for (const auto& id : warm.ids) valid.ids.insert(id);
    for (const auto& s : warm.subs) valid.subs.insert(s);
    for (const auto& s : warm.mo_numbers) valid.mo_numbers.insert(s);
    warm_calls = warm.completed.load();
    REQUIRE(warm.failures.empty());
    bad.events_expected += warm_bad.events_expected;
    bad.total += warm_bad.total;
    INFO((warm_bad.violations.empty() ? std::string() : warm_bad.violations.front()));
    CHECK(warm_bad.violations.empty());
    CHECK(c.get("/healthz").status == 200);
  }
  const long rss_warm = rss_kib(eng.pid());
  REQUIRE(rss_warm > 0);

  const auto t0 = clock_type::now();
  std::atomic<bool> storm_over{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < valid_workers; ++i)
    threads.emplace_back([&, i] { valid_worker(eng, i, storm_over, calls, valid, bad, min_valid_calls, 1 << 30); });
  std::vector<std::thread> hostiles;
  for (int i = 0; i < hostile_threads; ++i)
    hostiles.emplace_back([&, i] { hostile(eng, i, bad_per_thread, calls, bad, own[static_cast<std::size_t>(i)]); });
  for (auto& th : hostiles) th.join();
  storm_over = true;
  for (auto& th : threads) th.join();
  const double storm_s = std::chrono::duration<double>(clock_type::now() - t0).count();

  // --- every valid call completed, every bad request got its error
  std::string summary;
  for (const auto& [cat, n] : bad.sent)
    summary += "\n  " + cat + ": " + std::to_string(n) + " sent, " + std::to_string(bad.answered[cat]) + " answered, " +
               std::to_string(bad.closed[cat]) + " closed";
  MESSAGE("hostile storm: ", bad.total, " bad requests (240 of them, and ", warm_calls,
          " more valid calls, in the warm-up) and ", valid.completed.load(), " valid calls in ", storm_s, " s",
          summary);
  {
    std::string shown;
    for (std::size_t i = 0; i < valid.failures.size() && i < 10; ++i) shown += "\n  " + valid.failures[i];
    INFO("valid call failures:", shown);
    CHECK(valid.failures.empty());
  }
  CHECK(valid.completed.load() >= scaled(50, 10));
  CHECK(valid.ids.size() == static_cast<std::size_t>(valid.completed.load() + warm_calls));
  CHECK(bad.total >= 3000);
  {
    std::string shown;
    for (std::size_t i = 0; i < bad.violations.size() && i < 15; ++i) shown += "\n  " + bad.violations[i];
    INFO(bad.violations.size(), " bad requests not answered as they should:", shown);
    CHECK(bad.violations.empty());
  }

  // --- still serving; memory bounded
  CHECK(c.get("/healthz").status == 200);
  CHECK(c.get("/readyz").status == 200);
  {
    const test_call after = make_call(eng, c, "Connected");
    CHECK(after.status() == "Connected");
    valid.ids.insert(after.id);
    valid.subs.insert("it-" + after.mo.number);
    valid.subs.insert("it-" + after.mt.number);
    valid.mo_numbers.insert(after.mo.number);
  }
  const long rss_after = rss_kib(eng.pid());
  // Bound: what the storm leaves behind is a few thousand small events (RocksDB memtable,
  // at most one 64 MiB write buffer), PoP jti entries and per-thread allocator arenas;
  // nothing per bad request may stay. 2× the warmed-up RSS plus 64 MiB allows all of that
  // and still catches a leak of even ~20 KiB per bad request.
  const long bound = 2 * rss_warm + 64 * 1024;
  MESSAGE("engine RSS: ", rss_warm / 1024, " MiB after warm-up, ", rss_after / 1024, " MiB after the storm (bound ",
          bound / 1024, " MiB)");
  CHECK(rss_after < bound);

  // --- the log: nothing the bad requests should not have left
  const auto st = eng.stop();
  CHECK(st.clean());
  auto opened = storage::event_log::open_reader(eng.data_dir() / "log", eng.root() / "reader-scratch");
  REQUIRE(opened.has_value());
  auto& log = **opened;
  std::size_t accepted_starts = 0, hostile_rejected = 0, total = 0;
  std::map<std::string, int> accepted_per_call, rejected_per_call;
  std::vector<std::string> strays;
  auto scanned = log.scan(1, std::numeric_limits<engine::event_seq>::max(), [&](const engine::event& e, std::string_view) {
    ++total;
    const bool from_valid = valid.subs.count(e.sub) > 0;
    const bool from_hostile = hostile_subs.count(e.sub) > 0;
    if (e.act == engine::action::start && e.accepted()) {
      ++accepted_starts;
      if (!valid.ids.count(e.call_id) || !valid.mo_numbers.count(e.from))
        strays.push_back("accepted start of an unknown call " + e.call_id + " from " + e.from + " by " + e.sub);
    }
    if (from_hostile) {
      if (e.accepted())
        strays.push_back("ACCEPTED event from a hostile token: " + std::string(engine::to_string(e.act)) + " " + e.path);
      else
        ++hostile_rejected;
    } else if (!from_valid) {
      strays.push_back("event from an unknown sub '" + e.sub + "' (unauthenticated?): " + e.method + " " + e.path);
    }
    if (from_valid) (e.accepted() ? accepted_per_call : rejected_per_call)[e.call_id]++;
    return true;
  });
  CHECK(scanned.has_value());
  {
    std::string shown;
    for (std::size_t i = 0; i < strays.size() && i < 10; ++i) shown += "\n  " + strays[i];
    INFO(strays.size(), " unexpected events:", shown);
    CHECK(strays.empty());
  }
  CHECK(accepted_starts == valid.ids.size());
  // Each valid call: start, ringing, connected, end (the last one: start→connected), and no
  // rejected event (its bad PoPs were 401s: never stored).
  for (const auto& id : valid.ids) {
    CAPTURE(id);
    CHECK(accepted_per_call[id] >= 3);
    CHECK(accepted_per_call[id] <= 4);
    CHECK(rejected_per_call[id] == 0);
  }
  // The hostile tokens' rejected events are exactly their answered input errors.
  CHECK(hostile_rejected == static_cast<std::size_t>(bad.events_expected));
  MESSAGE("log: ", total, " events; ", accepted_starts, " accepted starts; ", hostile_rejected,
          " rejected events from the hostile tokens (their authenticated input errors)");

  const auto report = log.verify();
  INFO("verify: ", report.problem);
  CHECK(report.ok);
  opened->reset();
  if (auto tool = tool_path()) {
    const fs::path out = eng.root() / "verify.txt";
    const std::string cmd = tool->string() + " --data-dir " + eng.data_dir().string() + " verify > " + out.string() + " 2>&1";
    const int rc = std::system(cmd.c_str());
    INFO(cmd, "\n", slurp(out));
    CHECK(rc == 0);
  } else {
    MESSAGE("yna-tool not built (set YNA_TOOL): verified with storage::event_log::verify only");
  }
}
