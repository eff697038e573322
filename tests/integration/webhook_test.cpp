// Webhooks over the real binary (contract §13): a receiver on loopback
// (webhook_receiver.mjs: node's own HMAC checks every signature) gets every notification
// owed, in log order per number, across SIGKILLs of the engine and while it is itself
// down for a while; nothing owed goes missing (duplicates are allowed and told apart by
// id). Also the start-up checks: no secret, a host not allowed, a URL that is not one.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "tests/integration/api_fixture.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/node_child.hpp"

using namespace integration;
namespace fs = std::filesystem;

namespace {

// The webhook receiver (webhook_receiver.mjs): checks signatures with the secret in
// <dir>/secret, writes what it got to <dir>/received.jsonl.
class receiver {
 public:
  explicit receiver(const fs::path& dir)
      : dir_(dir),
        child_("tests/integration/webhook_receiver.mjs", {(dir / "secret").string(), (dir / "received.jsonl").string()},
               dir / "receiver.out") {
    port_ = child_.start({"0"});
  }
  void start(std::uint16_t port) { port_ = child_.start({std::to_string(port)}); }
  void stop() { child_.stop(); }
  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::vector<std::string> lines() const { return json_lines(dir_ / "received.jsonl"); }

 private:
  fs::path dir_;
  node_child child_;
  std::uint16_t port_ = 0;
};

// A notification owed to one number: the call, the number, and "invitation" or the status.
using owed = std::tuple<std::string, std::string, std::string>;

struct received {
  std::size_t requests = 0, invalid = 0, duplicates = 0, out_of_order = 0;
  std::set<owed> got;
  std::set<std::string> ids;
  std::string first_invalid, first_out_of_order;
};

received read_received(const receiver& r) {
  received out;
  std::map<std::string, std::int64_t> last_seq;  // per number, the highest seq delivered
  for (const auto& line : r.lines()) {
    ++out.requests;
    if (json_str(line, "/delivery").value_or("") == "" || line.find("\"valid\":true") == std::string::npos) {
      if (!out.invalid++) out.first_invalid = line;
      continue;
    }
    const std::string id = json_str(line, "/body/id").value_or("");
    const std::string msisdn = json_str(line, "/body/msisdn").value_or("");
    const bool invitation = json_has(line, "/body/notification/sessionInvitationNotification");
    const std::string kind = invitation ? "sessionInvitationNotification" : "sessionStatusNotification";
    const std::int64_t seq = json_int(line, "/body/notification/" + kind + "/notificationReference/sequenceNumber").value_or(-1);
    const std::string ref = json_str(line, "/body/notification/" + kind + "/callObjectRef").value_or("");
    const std::string status =
        invitation ? "invitation" : json_str(line, "/body/notification/sessionStatusNotification/status").value_or("");
    if (!out.ids.insert(id).second) {
      ++out.duplicates;  // a redelivery: at least once
      continue;
    }
    if (id != std::to_string(seq) + "-" + msisdn && !out.invalid++) out.first_invalid = "id does not match: " + line;
    auto& last = last_seq[msisdn];
    if (seq <= last && !out.out_of_order++) out.first_out_of_order = line;
    last = std::max(last, seq);
    out.got.emplace(ref.substr(ref.rfind('/') + 1), msisdn, status);
  }
  return out;
}

// Waits until every owed notification arrived (or `limit` passed); returns what arrived.
received wait_for(const receiver& r, const std::set<owed>& want, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    received got = read_received(r);
    const bool all = std::includes(got.got.begin(), got.got.end(), want.begin(), want.end());
    if (all || std::chrono::steady_clock::now() > deadline) return got;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string missing(const received& got, const std::set<owed>& want) {
  std::string out;
  int n = 0;
  for (const auto& w : want)
    if (!got.got.count(w) && n++ < 5) out += std::get<0>(w) + " " + std::get<1>(w) + " " + std::get<2>(w) + "; ";
  return out;
}

void write_secret(const fs::path& dir) {
  std::ofstream(dir / "secret") << "s3cr3t-for-the-test\n";
}

std::vector<std::string> engine_args(const receiver& r, const fs::path& dir, std::string retry_max = "0.5") {
  return {"--webhook", r.url(), "--webhook-secret-file", (dir / "secret").string(), "--outbound-allow", "127.0.0.1",
          "--webhook-retry-min", "0.1", "--webhook-retry-max", retry_max};
}

// Drives one whole call; every acknowledged step adds what it owes to `want`.
void whole_call(const engine_process& eng, http_client& c, std::set<owed>& want) {
  const party mo = new_party(eng, "mo-dev"), mt = new_party(eng, "mt-dev");
  auto r = c.post("/start", start_body(mo.number, mt.number, sdp("offer")), mo.auth());
  REQUIRE_200(r);
  test_call t{&c, mo, mt, json_str(r.body, "/callId").value_or("")};
  want.emplace(t.id, mt.number, "invitation");
  auto step = [&](const response& s, const std::string& status) {
    REQUIRE_200(s);
    want.emplace(t.id, mo.number, status);
    want.emplace(t.id, mt.number, status);
  };
  step(t.post(mt, "ringing", "{}"), "Ringing");
  step(t.post(mt, "connected", sdp_body(sdp("answer"))), "Connected");
  step(t.end(mo), "Terminated");
}


}  // namespace

TEST_CASE("webhooks: every notification owed arrives signed and in order per number, across 5 SIGKILLs") {
  scratch_dir dir;
  write_secret(dir.path);
  receiver rcv(dir.path);
  engine_process eng(engine_args(rcv, dir.path));
  http_client c(eng.port());
  std::set<owed> want;
  const int per_round = scaled(8, 2);
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < per_round; ++i) whole_call(eng, c, want);
    if (round == 5) break;
    // Odd rounds: killed at once, with deliveries likely in flight and the cursor behind;
    // even rounds: once every delivery is done and its cursor saved (no lag).
    if (round % 2 == 0) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (metric_sum(c.get("/metrics").body, "yna_dispatch_lag_events", {}).value_or(-1) != 0 &&
             std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    eng.kill9();
    eng.start();
    c.set_port(eng.port());
  }
  const received got = wait_for(rcv, want, std::chrono::seconds(60));
  INFO("missing (first 5): ", missing(got, want));
  CHECK(std::includes(got.got.begin(), got.got.end(), want.begin(), want.end()));
  INFO("first invalid: ", got.first_invalid);
  CHECK(got.invalid == 0);
  INFO("first out of order: ", got.first_out_of_order);
  CHECK(got.out_of_order == 0);
  MESSAGE("webhooks across 5 SIGKILLs: ", want.size(), " owed, ", got.ids.size(), " distinct delivered, ",
          got.duplicates, " duplicates (redelivered after a kill), ", got.requests, " requests");
  auto m = c.get("/metrics");
  CHECK(metric_sum(m.body, "yna_dispatch_delivered_total", {}).value_or(0) > 0);
  // The last restart resumed from a cursor: it did not deliver everything again.
  const double since_restart = metric_sum(m.body, "yna_dispatch_delivered_total", {}).value_or(-1);
  CHECK(since_restart < static_cast<double>(want.size()));
  MESSAGE("since the last restart: ", since_restart, " delivered, ",
          metric_sum(m.body, "yna_dispatch_retries_total", {}).value_or(-1), " retried");
}

TEST_CASE("webhooks: the receiver down for a while: retried, then caught up; requests unaffected") {
  scratch_dir dir;
  write_secret(dir.path);
  receiver rcv(dir.path);
  const std::uint16_t port = rcv.port();
  engine_process eng(engine_args(rcv, dir.path, "2"));
  http_client c(eng.port());
  std::set<owed> want;
  for (int i = 0; i < 3; ++i) whole_call(eng, c, want);
  {
    const received first = wait_for(rcv, want, std::chrono::seconds(20));
    CHECK(std::includes(first.got.begin(), first.got.end(), want.begin(), want.end()));
  }

  rcv.stop();
  const auto down_for = std::chrono::seconds(std::getenv("YNA_WEBHOOK_DOWN_S") ? std::atoi(std::getenv("YNA_WEBHOOK_DOWN_S")) : 30);
  const auto until = std::chrono::steady_clock::now() + down_for;
  std::vector<double> ms;
  while (std::chrono::steady_clock::now() < until) {
    const auto t0 = std::chrono::steady_clock::now();
    whole_call(eng, c, want);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 4);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  auto m = c.get("/metrics");
  CHECK(metric_sum(m.body, "yna_dispatch_retries_total", {}).value_or(0) > 0);
  CHECK(metric_sum(m.body, "yna_dispatch_lag_events", {}).value_or(0) > 0);

  rcv.start(port);
  const received got = wait_for(rcv, want, std::chrono::seconds(60));
  INFO("missing (first 5): ", missing(got, want));
  CHECK(std::includes(got.got.begin(), got.got.end(), want.begin(), want.end()));
  CHECK(got.invalid == 0);
  CHECK(got.out_of_order == 0);
  std::sort(ms.begin(), ms.end());
  MESSAGE("receiver down ", down_for.count(), " s: ", ms.size(), " calls meanwhile, request median ",
          ms[ms.size() / 2], " ms, max ", ms.back(), " ms; ", got.ids.size(), " delivered after it came back");
  // The cursor caught up: nothing lags once every owed delivery arrived.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  double lag = 1;
  while (std::chrono::steady_clock::now() < deadline &&
         (lag = metric_sum(c.get("/metrics").body, "yna_dispatch_lag_events", {}).value_or(-1)) != 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(lag == 0);
}

TEST_CASE("webhooks: start-up refuses a webhook without a secret, a host not allowed, a URL that is not one") {
  scratch_dir dir;
  write_secret(dir.path);
  const std::string engine = shell_quote(engine_path().string());
  const std::string data = shell_quote((dir.path / "data").string());
  const std::string secret = shell_quote((dir.path / "secret").string());
  struct bad_case {
    std::string args, says;
  };
  const bad_case cases[] = {
      {"--webhook http://127.0.0.1:9/hook --outbound-allow 127.0.0.1", "--webhook needs --webhook-secret-file"},
      {"--webhook http://127.0.0.1:9/hook --webhook-secret-file " + secret, "is not in --outbound-allow"},
      {"--webhook http://example.com/hook --webhook-secret-file " + secret + " --outbound-allow example.org",
       "is not in --outbound-allow"},
      {"--webhook ftp://example.com/ --webhook-secret-file " + secret + " --outbound-allow example.com",
       "must start with http:// or https://"},
      {"--webhook http://user@example.com/ --webhook-secret-file " + secret + " --outbound-allow example.com",
       "user info"},
      {"--webhook http://127.0.0.1:9/hook --webhook-secret-file " + shell_quote((dir.path / "absent").string()) +
           " --outbound-allow 127.0.0.1",
       "cannot be read"},
  };
  for (const auto& bc : cases) {
    const auto r = run_command(engine + " --listen 127.0.0.1:0 --data-dir " + data + " " + bc.args + " 2>&1");
    INFO(bc.args, " → exit ", r.exit_code, ": ", r.out);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find(bc.says) != std::string::npos);
  }
}

namespace {

// The receiver with extra arguments (--tls, --status), on a port of its own.
struct special_receiver {
  node_child child;
  std::uint16_t port;
  special_receiver(const fs::path& dir, std::vector<std::string> extra)
      : child("tests/integration/webhook_receiver.mjs", {(dir / "secret").string(), (dir / "received.jsonl").string()},
              dir / "special.out") {
    extra.insert(extra.begin(), "0");
    port = child.start(extra);
  }
};

double metric_of(engine_process& eng, std::string_view name) {
  http_client c(eng.port());
  return metric_sum(c.get("/metrics").body, name, {}).value_or(-1);
}

// Drives one call, then waits (at most 20 s) until `metric` reaches `at_least`.
void one_call_then_wait(engine_process& eng, std::string_view metric, double at_least) {
  http_client c(eng.port());
  std::set<owed> want;
  whole_call(eng, c, want);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (metric_of(eng, metric) < at_least && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

}  // namespace

TEST_CASE("webhooks: outbound rules: TLS verified against --outbound-ca, no redirect followed, loopback by name refused") {
  scratch_dir dir;
  write_secret(dir.path);
  const fs::path cert = dir.path / "cert.pem", key = dir.path / "key.pem";
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=127.0.0.1 "
                          "-addext subjectAltName=IP:127.0.0.1 -keyout '" + key.string() + "' -out '" +
                          cert.string() + "' > '" + (dir.path / "openssl.log").string() + "' 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::vector<std::string> fast{"--webhook-retry-min", "0.1", "--webhook-retry-max", "0.2",
                                      "--webhook-secret-file", (dir.path / "secret").string()};
  auto args = [&](std::string url, std::vector<std::string> more) {
    std::vector<std::string> a{"--webhook", std::move(url)};
    a.insert(a.end(), fast.begin(), fast.end());
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };

  SUBCASE("HTTPS, the receiver's certificate trusted through --outbound-ca: delivered") {
    special_receiver r(dir.path, {"--tls", cert.string(), key.string()});
    engine_process eng(args("https://127.0.0.1:" + std::to_string(r.port) + "/hook",
                            {"--outbound-allow", "127.0.0.1", "--outbound-ca", cert.string()}));
    one_call_then_wait(eng, "yna_dispatch_delivered_total", 7);
    CHECK(metric_of(eng, "yna_dispatch_delivered_total") == 7);  // 1 invitation + 3 statuses × 2 numbers
    CHECK(json_lines(dir.path / "received.jsonl").size() == 7);
  }
  SUBCASE("HTTPS, the certificate not trusted: nothing sent, retried") {
    special_receiver r(dir.path, {"--tls", cert.string(), key.string()});
    engine_process eng(args("https://127.0.0.1:" + std::to_string(r.port) + "/hook", {"--outbound-allow", "127.0.0.1"}));
    one_call_then_wait(eng, "yna_dispatch_retries_total", 3);
    CHECK(metric_of(eng, "yna_dispatch_delivered_total") == 0);
    CHECK(metric_of(eng, "yna_dispatch_retries_total") > 0);
    CHECK(json_lines(dir.path / "received.jsonl").empty());
    CHECK(eng.stderr_tail().find("TLS with 127.0.0.1") != std::string::npos);
  }
  SUBCASE("a 302 is an answer like any failure: retried, the Location never followed") {
    special_receiver r(dir.path, {"--status", "302"});
    engine_process eng(args("http://127.0.0.1:" + std::to_string(r.port) + "/hook", {"--outbound-allow", "127.0.0.1"}));
    one_call_then_wait(eng, "yna_dispatch_retries_total", 8);
    CHECK(metric_of(eng, "yna_dispatch_delivered_total") == 0);
    CHECK(metric_of(eng, "yna_dispatch_retries_total") > 0);
    const auto got = json_lines(dir.path / "received.jsonl");
    CHECK(got.size() > 7);  // the same deliveries again and again, all at /hook
    CHECK(eng.stderr_tail().find("answered 302") != std::string::npos);
  }
  SUBCASE("a delivery still failing --webhook-max-age after its event is dead: counted, logged, the cursor passes it") {
    special_receiver r(dir.path, {"--status", "500"});
    engine_process eng(args("http://127.0.0.1:" + std::to_string(r.port) + "/hook",
                            {"--outbound-allow", "127.0.0.1", "--webhook-max-age", "1"}));
    one_call_then_wait(eng, "yna_dispatch_dead_total", 7);
    CHECK(metric_of(eng, "yna_dispatch_dead_total") == 7);
    CHECK(metric_of(eng, "yna_dispatch_delivered_total") == 0);
    CHECK(eng.stderr_tail().find("is dead after") != std::string::npos);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (metric_of(eng, "yna_dispatch_lag_events") != 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(metric_of(eng, "yna_dispatch_lag_events") == 0);
  }
  SUBCASE("a host name listed in --outbound-allow that resolves to loopback: not connected to") {
    special_receiver r(dir.path, {});
    engine_process eng(args("http://localhost:" + std::to_string(r.port) + "/hook", {"--outbound-allow", "localhost"}));
    one_call_then_wait(eng, "yna_dispatch_retries_total", 3);
    CHECK(metric_of(eng, "yna_dispatch_delivered_total") == 0);
    CHECK(json_lines(dir.path / "received.jsonl").empty());
    CHECK(eng.stderr_tail().find("has no address that may be connected to") != std::string::npos);
  }
}
