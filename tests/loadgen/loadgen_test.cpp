// yna-loadgen's own tests: it runs clean against the real engine, and it notices what it
// must notice: a refused request (429 from the engine's rate limit), a wrong status and
// a missing notification (from a fake engine), a dead server; and --retry-start re-sends
// /start with the same clientCorrelator.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>

#include "tests/integration/harness.hpp"
#include "tests/loadgen/fake_engine.hpp"

#ifndef YNA_LOADGEN_PATH
#define YNA_LOADGEN_PATH "yna-loadgen"
#endif

namespace {

using namespace integration;
using loadgen_test::fake_engine;
using loadgen_test::verdict;
namespace http = boost::beast::http;

struct loadgen_run {
  int exit_code = -1;
  std::string json;  // stdout: the --json report
  std::string cmd;
};

// Runs yna-loadgen against 127.0.0.1:port with `args` (plus --json -q), issuer key from
// `data_dir`. The report is on stdout; stderr goes to the test's stderr. Callers INFO()
// the command and the report, so that a failed check shows them.
loadgen_run run_loadgen(std::uint16_t port, const std::filesystem::path& data_dir, const std::string& args) {
  const std::string cmd = shell_quote(YNA_LOADGEN_PATH) + " --port " + std::to_string(port) + " --data-dir " +
                          shell_quote(data_dir.string()) + " --json -q --device-keys 1 " + args;
  const auto r = run_command(cmd);
  return {r.exit_code, r.out, cmd};
}

std::uint64_t count_of(const std::string& json, const std::string& pointer) {
  return static_cast<std::uint64_t>(json_int(json, pointer).value_or(-1));
}

// The count of errors with this status and reasonCode in the report (0 when none).
std::uint64_t errors_of(const std::string& json, int status, std::string_view code) {
  for (int i = 0; json_has(json, "/errors/" + std::to_string(i)); ++i) {
    const std::string at = "/errors/" + std::to_string(i);
    if (json_int(json, at + "/status") == status && json_str(json, at + "/reasonCode") == std::string(code))
      return static_cast<std::uint64_t>(*json_int(json, at + "/count"));
  }
  return 0;
}

std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::string> v;
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

// A data folder holding only a development issuer key (the fake verifies nothing).
struct issuer_dir {
  std::filesystem::path dir;
  issuer_dir() {
    std::string t = (std::filesystem::temp_directory_path() / "yna-lg-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    dir = t;
    REQUIRE(schemas::load_or_create_dev_issuer(dir));
  }
  ~issuer_dir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

std::string path_of(const http::request<http::string_body>& req) {
  const std::string t(req.target());
  const auto second = t.find('/', 1);
  return t.substr(1, second == std::string::npos ? std::string::npos : second - 1);
}

constexpr const char* fake_call_id = "0123456789ABCDEF0123456789ABCDEF";
std::string fake_frame(std::string_view status) {
  const std::string ref = std::string("\"callObjectRef\":\"/calls/") + fake_call_id + "\"";
  if (status == "invitation")
    return "{\"sessionInvitationNotification\":{" + ref + ",\"notificationReference\":{\"sequenceNumber\":1}}}";
  return "{\"sessionStatusNotification\":{\"status\":\"" + std::string(status) + "\"," + ref +
         ",\"notificationReference\":{\"sequenceNumber\":2}}}";
}

}  // namespace

TEST_CASE("loadgen: full flows against the engine pass, and the record matches what the engine answered") {
  engine_process engine({"--rate-limit", "0", "--rate-limit-sub", "0", "--max-connections-per-ip", "0"});
  const auto record = engine.root() / "record.jsonl";
  const auto r = run_loadgen(engine.port(), engine.data_dir(),
                             "-c 4 -n 24 --threads 2 --mix full:3,answer:1,cancel:1,busy:1 --engine-pid " +
                                 std::to_string(engine.pid()) + " --record " + shell_quote(record.string()));
  INFO(r.cmd << "\n" << r.json);
  CHECK(r.exit_code == 0);
  CHECK(json_str(r.json, "/config/mix") == "full:3,answer:1,cancel:1,busy:1");
  CHECK(r.json.find("\"passed\":true") != std::string::npos);
  CHECK(count_of(r.json, "/calls_completed") == 24);
  CHECK(count_of(r.json, "/calls_failed") == 0);
  const auto requests = count_of(r.json, "/requests");
  CHECK(requests >= 24 * 2);
  CHECK(count_of(r.json, "/endpoints/start/count") == 24);
  CHECK(count_of(r.json, "/notifications/expected") == requests);  // every step of these flows notifies
  CHECK(count_of(r.json, "/notifications/received") == requests);
  CHECK(count_of(r.json, "/notifications/missing") == 0);
  CHECK(json_has(r.json, "/engine/cpu_per_request_us"));

  // Every answer recorded, all 200, 24 distinct calls, each with the engine's txn id.
  const auto lines = lines_of(record);
  CHECK(lines.size() == requests);
  std::set<std::string> calls;
  std::map<std::string, int> by_endpoint;
  for (const auto& l : lines) {
    CHECK(json_int(l, "/status") == 200);
    CHECK(is_guid(json_str(l, "/txn").value_or("")));
    calls.insert(json_str(l, "/callId").value_or(""));
    ++by_endpoint[json_str(l, "/endpoint").value_or("")];
  }
  CHECK(calls.size() == 24);
  CHECK(by_endpoint["start"] == 24);
  CHECK(by_endpoint["end"] == 24);

  // The engine counts the same answers.
  http_client c(engine.port());
  const auto m = c.get("/metrics").body;
  CHECK(metric_sum(m, "yna_http_requests_total", {"status=\"200\""}).value_or(0) >= static_cast<double>(requests));
  CHECK(metric_sum(m, "yna_http_requests_total", {"endpoint=\"start\"", "status=\"200\""}) == 24.0);
}

TEST_CASE("loadgen: open loop at a rate starts every call and passes") {
  engine_process engine({"--rate-limit", "0", "--rate-limit-sub", "0", "--max-connections-per-ip", "0"});
  const auto r = run_loadgen(engine.port(), engine.data_dir(), "-c 4 -n 10 -r 40 --mix answer --threads 1");
  INFO(r.cmd << "\n" << r.json);
  CHECK(r.exit_code == 0);
  CHECK(json_str(r.json, "/config/mode") == "open");
  CHECK(count_of(r.json, "/calls_completed") == 10);
  CHECK(count_of(r.json, "/open_loop/skipped") == 0);
}

TEST_CASE("loadgen: the engine's timers ending calls left ringing (start flow) are not unexpected frames") {
  engine_process engine({"--rate-limit", "0", "--rate-limit-sub", "0", "--max-connections-per-ip", "0", "--invite-timeout", "0.2"});
  const auto r = run_loadgen(engine.port(), engine.data_dir(), "-c 2 -n 30 -r 30 --mix start --pop off --threads 1");
  INFO(r.cmd << "\n" << r.json);
  CHECK(r.exit_code == 0);
  CHECK(count_of(r.json, "/calls_completed") == 30);
  CHECK(count_of(r.json, "/notifications/unexpected") == 0);
  CHECK(count_of(r.json, "/notifications/for_open_calls") > 0);  // NotReachable, to both parties
}

TEST_CASE("loadgen: a refused request (429 from the engine's rate limit) fails the run") {
  engine_process engine({"--rate-limit", "1", "--rate-burst", "3"});
  const auto r = run_loadgen(engine.port(), engine.data_dir(), "-c 1 -n 2 --mix full --threads 1");
  INFO(r.cmd << "\n" << r.json);
  CHECK(r.exit_code == 1);
  CHECK(r.json.find("\"passed\":false") != std::string::npos);
  CHECK(errors_of(r.json, 429, "TOO_MANY_REQUESTS") >= 1);
  CHECK(count_of(r.json, "/calls_failed") >= 1);
}

TEST_CASE("loadgen: a wrong status fails the run, and the call is hung up") {
  issuer_dir keys;
  std::atomic<int> ends{0};
  fake_engine fake([&](const auto& req, auto& res) {
    const std::string p = path_of(req);
    if (p == "start") res.body() = std::string("{\"callId\":\"") + fake_call_id + "\"}";
    else if (p == "ringing") res.result(http::status::created), res.body() = "{}";
    else res.body() = "{}";
    if (p == "end") ++ends;
    return verdict::answer;
  });
  const auto r = run_loadgen(fake.port(), keys.dir, "-c 1 -n 1 --mix answer --no-websockets --threads 1");
  INFO(r.cmd << "\n" << r.json);
  CHECK(r.exit_code == 1);
  CHECK(errors_of(r.json, 201, "UNEXPECTED_STATUS") == 1);
  CHECK(count_of(r.json, "/endpoints/ringing/failed") == 1);
  CHECK(count_of(r.json, "/calls_failed") == 1);
  CHECK(ends.load() == 1);  // the cleanup hang-up
}

TEST_CASE("loadgen: a missing notification fails the run; the same flow with its notifications passes") {
  issuer_dir keys;
  // Atomic: set by this thread, read by the fake engine's connection threads (the loadgen
  // process in between gives no happens-before that the C++ memory model, or TSan, knows).
  std::atomic<bool> send_frames{false};
  std::atomic<fake_engine*> self{nullptr};
  fake_engine fake([&](const auto& req, auto& res) {
    const std::string p = path_of(req);
    const std::string auth(req[http::field::authorization]);
    if (p == "start") {
      res.body() = std::string("{\"callId\":\"") + fake_call_id + "\"}";
      if (send_frames) self.load()->notify_others(auth, fake_frame("invitation"));
    } else {
      res.body() = "{}";
      if (send_frames && p == "end") self.load()->notify_others(auth, fake_frame("Busy"));
    }
    return verdict::answer;
  });
  self = &fake;

  SUBCASE("no frames: both owed notifications are missing") {
    const auto r = run_loadgen(fake.port(), keys.dir, "-c 1 -n 1 --mix busy --threads 1 --notify-timeout 0.3");
    INFO(r.cmd << "\n" << r.json);
    CHECK(r.exit_code == 1);
    CHECK(count_of(r.json, "/notifications/expected") == 2);
    CHECK(count_of(r.json, "/notifications/missing") == 2);
    CHECK(errors_of(r.json, 0, "NOTIFICATION_MISSING") == 2);
  }
  SUBCASE("the frames sent: the run passes") {
    send_frames = true;
    const auto r = run_loadgen(fake.port(), keys.dir, "-c 1 -n 1 --mix busy --threads 1 --notify-timeout 2");
    INFO(r.cmd << "\n" << r.json);
    CHECK(r.exit_code == 0);
    CHECK(count_of(r.json, "/notifications/received") == 2);
    CHECK(fake.sockets() >= 2);
  }
}

TEST_CASE("loadgen: --retry-start re-sends /start with the same clientCorrelator after a dropped connection") {
  issuer_dir keys;
  std::atomic<int> starts{0};
  std::mutex mu;
  std::vector<std::string> bodies;
  fake_engine fake([&](const auto& req, auto& res) {
    {
      std::lock_guard lk(mu);
      bodies.push_back(req.body());
    }
    if (++starts == 1) return verdict::drop;
    res.body() = std::string("{\"callId\":\"") + fake_call_id + "\"}";
    return verdict::answer;
  });
  issuer_dir rec_dir;
  const auto record = rec_dir.dir / "record.jsonl";
  const auto r = run_loadgen(fake.port(), keys.dir,
                             "-c 1 -n 1 --mix start --pop off --no-websockets --retry-start --record " +
                                 shell_quote(record.string()));
  INFO(r.cmd << "\n" << r.json);
  CHECK(r.exit_code == 0);
  CHECK(count_of(r.json, "/start_retries") == 1);
  {
    std::lock_guard lk(mu);  // written by the fake engine's threads
    REQUIRE(bodies.size() == 2);
    CHECK(json_str(bodies[0], "/clientCorrelator") == json_str(bodies[1], "/clientCorrelator"));
  }
  const auto lines = lines_of(record);
  REQUIRE(lines.size() == 2);
  CHECK(json_int(lines[0], "/status") == 0);  // no answer: recorded as such
  CHECK(json_int(lines[1], "/status") == 200);
  CHECK(json_str(lines[0], "/clientCorrelator") == json_str(lines[1], "/clientCorrelator"));

  SUBCASE("without --retry-start the dropped /start is a connection error") {
    starts = 0;
    const auto r2 = run_loadgen(fake.port(), keys.dir, "-c 1 -n 1 --mix start --pop off --no-websockets");
    INFO(r2.cmd << "\n" << r2.json);
    CHECK(r2.exit_code == 1);
    CHECK(errors_of(r2.json, 0, "CONNECTION_ERROR") == 1);
  }
}

TEST_CASE("loadgen: nothing listening is a setup failure, or connection errors without sockets") {
  issuer_dir keys;
  std::uint16_t port = 0;
  {  // a port that was free a moment ago
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  const auto r = run_loadgen(port, keys.dir, "-c 1 -n 1 --mix start --pop off --timeout 1");
  INFO(r.cmd << "\n" << r.json);
  CHECK(r.exit_code == 2);
  CHECK(r.json.find("\"setup_ok\":false") != std::string::npos);
  const auto r2 = run_loadgen(port, keys.dir, "-c 1 -n 2 --mix start --pop off --no-websockets --timeout 1");
  INFO(r2.cmd << "\n" << r2.json);
  CHECK(r2.exit_code == 1);
  CHECK(errors_of(r2.json, 0, "CONNECTION_ERROR") == 2);
}
