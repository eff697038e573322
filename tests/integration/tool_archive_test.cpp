// yna-tool archive (contract §9) on the real engine: the older part of the log moves to
// an archive file while calls go on; the live log then starts at its anchor, archived
// calls still answer (final state, idempotency key), a replay from before the anchor is
// refused, and verify/cdr/timeline read archive and log as one history. Then every fault
// the issue names: a truncated file, another log's, one out of order, a changed byte, a
// run killed half way; none removes anything from the live log.
#include "tests/integration/tool_support.hpp"

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/integration/ws_client.hpp"

using namespace integration;
using namespace integration::tool;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::uint64_t last_seq(const engine_process& eng) {
  const auto v = run(eng, "--json verify --no-state");
  REQUIRE_MESSAGE(v.code == 0, (v.out + v.err));
  return static_cast<std::uint64_t>(json_int(v.out, "/lastSeq").value_or(0));
}

std::int64_t anchor_of(const engine_process& eng) {
  const auto v = run(eng, "--json verify --no-state");
  return json_int(v.out, "/anchor").value_or(-1);
}

std::set<std::string> line_set(const std::string& text) {
  const auto l = lines(text);
  return {l.begin(), l.end()};
}

// One complete call with a clientCorrelator: start, ringing, connected, end.
struct known_call {
  party a, b;
  std::string id;
  std::string correlator;
};
known_call make_known_call(const engine_process& eng) {
  known_call k{new_party(eng, "a"), new_party(eng, "b"), {}, "corr-" + new_guid()};
  caller c(eng);
  k.id = c.start(k.a, k.b, sdp("a"), k.correlator);
  REQUIRE_FALSE(k.id.empty());
  REQUIRE(c.act("ringing", k.id, k.b).status == 200);
  REQUIRE(c.act("connected", k.id, k.b, sdp("b")).status == 200);
  REQUIRE(c.end(k.id, k.a).status == 200);
  return k;
}

// Waits (30 s at most) until the engine has retired at least n calls.
void await_retired(const engine_process& eng, double n) {
  http_client http(eng.port());
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (metric_value(http.get("/metrics").body, "yna_calls_retired_total").value_or(0) < n &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(metric_value(http.get("/metrics").body, "yna_calls_retired_total").value_or(0) >= n);
}

// Asks the engine's admin socket for its anchor. The socket serves one request at a time,
// so the answer also means any removal the engine had begun has finished.
std::string admin_anchor(const engine_process& eng) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = (eng.data_dir() / "admin.sock").string();
  REQUIRE(p.size() < sizeof addr.sun_path);
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  const std::string req = "{\"op\":\"anchor\"}\n";
  REQUIRE(::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size()));
  std::string line;
  char c = 0;
  while (::read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  ::close(fd);
  return line;
}

}  // namespace

TEST_CASE("archive while calls go on: one history in archive and log, archived calls still answer") {
  engine_process eng({"--call-retention", "0.2"});
  const known_call k = make_known_call(eng);
  traffic load(eng, 2);
  load.await(60);
  await_retired(eng, 30);  // the early calls (the known one first) have retired

  const auto cdr_before = run(eng, "--json cdr");
  REQUIRE(cdr_before.code == 0);
  const auto rows_before = line_set(cdr_before.out);
  REQUIRE(rows_before.size() >= 60);
  const std::uint64_t half = last_seq(eng) / 2;
  const fs::path file = eng.root() / "older-half.yna-archive";

  // The older half, while the traffic goes on: the running engine removes it.
  const auto ar = run(eng, "--json archive --before-seq " + std::to_string(half + 1) + " --out " +
                               shell_quote(file.string()));
  REQUIRE_MESSAGE(ar.code == 0, (ar.out + ar.err));
  CHECK(json_bool(ar.out, "/ok") == true);
  CHECK(json_str(ar.out, "/removedBy") == "engine");
  const auto anchor = json_int(ar.out, "/anchor/seq").value_or(0);
  CHECK(anchor > 0);
  CHECK(anchor <= static_cast<std::int64_t>(half));
  CHECK(json_int(ar.out, "/removed").value_or(0) == anchor);
  CHECK(json_int(ar.out, "/calls").value_or(0) > 0);
  REQUIRE(fs::exists(file));
  CHECK_FALSE(fs::exists(file.string() + ".partial"));

  load.await(load.done().size() + 20);  // the engine kept serving
  CHECK(load.failures().empty());

  // The admin socket is the engine's user's alone.
  struct stat st{};
  REQUIRE(::stat((eng.data_dir() / "admin.sock").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // verify: the live log from its anchor; with the archive, one chain.
  const auto v = run(eng, "verify");
  CHECK_MESSAGE(v.code == 0, (v.out + v.err));
  CHECK(v.out.find("anchor: events 1.." + std::to_string(anchor) + " archived") != std::string::npos);
  const auto va = run(eng, "--json --archive " + shell_quote(file.string()) + " verify");
  CHECK_MESSAGE(va.code == 0, (va.out + va.err));
  CHECK(json_bool(va.out, "/ok") == true);
  CHECK(json_bool(va.out, "/archives/0/ok") == true);

  // cdr over archive + log: every record of before archiving, unchanged.
  const auto cdr_after = run(eng, "--json --archive " + shell_quote(file.string()) + " cdr");
  REQUIRE(cdr_after.code == 0);
  const auto rows_after = line_set(cdr_after.out);
  std::size_t missing = 0;
  for (const auto& r : rows_before)
    if (!rows_after.count(r)) ++missing;
  CHECK(missing == 0);
  // Without the archive the old calls are not in the records, and the tool says why.
  const auto cdr_live = run(eng, "--json cdr");
  CHECK(cdr_live.code == 0);
  CHECK(cdr_live.err.find("--archive") != std::string::npos);
  CHECK(cdr_live.out.find(k.id) == std::string::npos);
  CHECK(cdr_after.out.find(k.id) != std::string::npos);

  // timeline: not in the live log alone; all of it with the archive.
  const auto t_live = run(eng, "timeline " + k.id);
  CHECK(t_live.code == 4);
  CHECK(t_live.err.find("--archive") != std::string::npos);
  const auto t_all = run(eng, "--json --archive " + shell_quote(file.string()) + " timeline " + k.id);
  CHECK_MESSAGE(t_all.code == 0, t_all.err);
  CHECK(json_str(t_all.out, "/call/status") == "Terminated");

  // The known call's events are all archived; it answers from its archived state.
  http_client http(eng.port());
  auto get = http.get("/calls/" + k.id, k.a.auth());
  REQUIRE(get.status == 200);
  CHECK(json_str(get.body, "/status") == "Terminated");
  CHECK(get.body.find("v=0") == std::string::npos);  // no SDP kept
  CHECK(http.get("/calls/" + k.id, new_party(eng, "x").auth()).status == 403);
  CHECK(http.post("/hold/" + k.id, "{}", k.a.auth()).status == 400);
  // Its idempotency key outlives the archiving: the same /start returns the same call.
  auto again = http.post("/start", start_body(k.a.number, k.b.number, sdp("a"), k.correlator), k.a.auth());
  REQUIRE(again.status == 200);
  CHECK(json_str(again.body, "/callId") == k.id);

  // A replay from before the anchor cannot be whole: refused, naming the anchor.
  auto ws = listen(eng, k.a, "?since=1");
  REQUIRE(ws);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!ws->closed() && std::chrono::steady_clock::now() < deadline) ws->next(std::chrono::milliseconds(200));
  CHECK(ws->closed());
  CHECK(ws->close_code() == 1008);
  CHECK(ws->close_reason().find("anchor " + std::to_string(anchor)) != std::string::npos);
  auto ws_ok = listen(eng, k.a, "?since=" + std::to_string(anchor));
  REQUIRE(ws_ok);
  ws_ok->drain(std::chrono::milliseconds(300));
  CHECK_FALSE(ws_ok->closed());

  load.stop();
  // One byte changed in the archive is named.
  std::string bytes = slurp(file);
  const fs::path bad = eng.root() / "changed.yna-archive";
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x20);
  spit(bad, bytes);
  const auto vb = run(eng, "--archive " + shell_quote(bad.string()) + " verify");
  CHECK(vb.code == 1);
  CHECK(vb.out.find("BROKEN archive") != std::string::npos);
  CHECK(vb.out.find("block") != std::string::npos);

  // After a restart: the same answers.
  REQUIRE(eng.restart().clean());
  http_client h2(eng.port());
  CHECK(h2.get("/calls/" + k.id, k.a.auth()).status == 200);
  auto again2 = h2.post("/start", start_body(k.a.number, k.b.number, sdp("a"), k.correlator), k.a.auth());
  CHECK(json_str(again2.body, "/callId") == k.id);
  CHECK(run(eng, "--archive " + shell_quote(file.string()) + " verify").code == 0);
  CHECK(anchor_of(eng) == anchor);
}

TEST_CASE("archive faults: truncated, another log, out of order: refused, nothing removed") {
  engine_process eng({"--call-retention", "0"});
  for (int i = 0; i < 12; ++i) make_known_call(eng);
  REQUIRE(eng.stop().clean());
  // A copy of the folder has the same log (same logId): archives made from it are
  // archives of this log whose range was not removed here.
  const fs::path copy = eng.root() / "copy";
  fs::copy(eng.data_dir(), copy, fs::copy_options::recursive);
  fs::remove(copy / "admin.sock");
  const fs::path first = eng.root() / "first.yna-archive", second = eng.root() / "second.yna-archive";
  auto r1 = run_in(copy, eng.root(), "archive --before-seq 11 --out " + shell_quote(first.string()));
  REQUIRE_MESSAGE(r1.code == 0, (r1.out + r1.err));
  CHECK(r1.out.find("no engine running: by yna-tool") != std::string::npos);
  auto r2 = run_in(copy, eng.root(), "archive --before-seq 21 --out " + shell_quote(second.string()));
  REQUIRE_MESSAGE(r2.code == 0, (r2.out + r2.err));
  // Another log entirely.
  engine_process other({"--call-retention", "0"});
  for (int i = 0; i < 3; ++i) make_known_call(other);
  const fs::path foreign = eng.root() / "foreign.yna-archive";
  REQUIRE(run(other, "archive --before-seq 5 --out " + shell_quote(foreign.string())).code == 0);

  eng.start();
  const std::uint64_t last = last_seq(eng);
  auto whole = [&] {
    CHECK(anchor_of(eng) == 0);
    CHECK(last_seq(eng) == last);
    const auto v = run(eng, "verify");
    CHECK_MESSAGE(v.code == 0, (v.out + v.err));
    CHECK(v.out.find("anchor") == std::string::npos);
  };
  // Truncated.
  const std::string bytes = slurp(first);
  const fs::path cut = eng.root() / "cut.yna-archive";
  spit(cut, bytes.substr(0, bytes.size() - 40));
  auto t = run(eng, "archive --remove " + shell_quote(cut.string()));
  CHECK(t.code == 1);
  CHECK(t.err.find("truncated") != std::string::npos);
  CHECK(t.err.find("nothing was removed") != std::string::npos);
  whole();
  // From another log.
  auto f = run(eng, "archive --remove " + shell_quote(foreign.string()));
  CHECK(f.code == 1);
  CHECK(f.err.find("another log") != std::string::npos);
  whole();
  // Out of order: the second range before the first.
  auto o = run(eng, "archive --remove " + shell_quote(second.string()));
  CHECK(o.code == 1);
  CHECK(o.err.find("out of order") != std::string::npos);
  whole();
  // verify --archive names the gap the same way.
  auto vg = run(eng, "--archive " + shell_quote(second.string()) + " verify");
  CHECK(vg.code == 1);
  // In order they go: first, then second; the same file twice is refused.
  auto ok1 = run(eng, "--json archive --remove " + shell_quote(first.string()));
  REQUIRE_MESSAGE(ok1.code == 0, (ok1.out + ok1.err));
  CHECK(json_str(ok1.out, "/removedBy") == "engine");
  CHECK(anchor_of(eng) == 10);
  auto dup = run(eng, "archive --remove " + shell_quote(first.string()));
  CHECK(dup.code == 1);
  CHECK(dup.err.find("archived already") != std::string::npos);
  REQUIRE(run(eng, "archive --remove " + shell_quote(second.string())).code == 0);
  CHECK(anchor_of(eng) == 20);
  const auto va = run(eng, "--archive " + shell_quote(second.string()) + " --archive " + shell_quote(first.string()) +
                               " verify");  // any order
  CHECK_MESSAGE(va.code == 0, (va.out + va.err));
  CHECK(va.out.find("form one chain") != std::string::npos);
  const auto vl = run(eng, "--archive " + shell_quote(second.string()) + " verify");  // events 1..10 not given
  CHECK(vl.code == 0);
  CHECK(vl.out.find("start later") != std::string::npos);
  // Nothing past a call in memory: a call left ringing stays, and so does its start.
  const party a = new_party(eng, "a"), b = new_party(eng, "b");
  caller c(eng);
  const std::string live = c.start(a, b, sdp("a"));
  REQUIRE_FALSE(live.empty());
  for (int i = 0; i < 3; ++i) make_known_call(eng);
  const fs::path third = eng.root() / "third.yna-archive";
  auto r3 = run(eng, "--json archive --before -0s --out " + shell_quote(third.string()));  // "now"
  REQUIRE_MESSAGE(r3.code == 0, (r3.out + r3.err));
  CHECK(json_int(r3.out, "/anchor/seq").value_or(0) > 20);
  const auto tl = run(eng, "timeline " + live);  // all of its events are still in the live log
  CHECK_MESSAGE(tl.code == 0, tl.err);
  CHECK_MESSAGE(tl.out.find("start") != std::string::npos, tl.out);
  http_client http(eng.port());
  CHECK(http.get("/calls/" + live, a.auth()).status == 200);
  CHECK(run(eng, "verify").code == 0);
}

TEST_CASE("archive killed at any point leaves the live log whole and no partial file under its name") {
  engine_process eng({"--call-retention", "0"});
  traffic load(eng, 2);
  load.await(300);
  load.stop();
  await_retired(eng, static_cast<double>(load.done().size()));  // every call retired: the log is still
  const std::uint64_t last = last_seq(eng);
  const auto tool = tool_path();
  REQUIRE(tool);
  for (const char* after : {"0.01", "0.03", "0.06", "0.12", "0.25"}) {
    CAPTURE(after);
    const fs::path file = eng.root() / (std::string("killed-") + after + ".yna-archive");
    const std::int64_t anchor_before = anchor_of(eng);
    run_command("timeout -s KILL " + std::string(after) + " " + shell_quote(tool->string()) + " --data-dir " +
                shell_quote(eng.data_dir().string()) + " archive --before -0s --out " + shell_quote(file.string()) +
                " >/dev/null 2>&1");
    // A removal the engine had begun goes on without the tool: wait until it has finished.
    CHECK(json_bool(admin_anchor(eng), "/ok") == true);
    // The live log is whole; its anchor moved only with an archive file that reads back.
    const std::int64_t anchor_after = anchor_of(eng);
    if (fs::exists(file) && anchor_after == anchor_before) {
      // Killed after the file was written, before the removal: the file is whole, and
      // --remove finishes the job.
      auto r = run(eng, "archive --remove " + shell_quote(file.string()));
      CHECK_MESSAGE(r.code == 0, (r.out + r.err));
      CHECK(anchor_of(eng) > anchor_before);
    }
    const auto v = run(eng, "verify");
    CHECK_MESSAGE(v.code == 0, (v.out + v.err));
    CHECK(last_seq(eng) == last);
    if (anchor_after != anchor_before) {  // the whole run, or the engine finished its removal
      REQUIRE(fs::exists(file));
      auto r = run(eng, "archive --remove " + shell_quote(file.string()));  // already moved: says so
      CHECK(r.err.find("archived already") != std::string::npos);
    }
  }
  eng.stop();
}
