// yna-tool while the engine serves (contract §8: "also while the engine runs"): callers
// keep making calls while timeline, cdr, replay, audit and verify read the same log
// through a RocksDB secondary. Everything acknowledged before a command started must be
// in its output; the engine must not notice the readers.
#include "tests/integration/tool_support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <thread>

using namespace integration;
using namespace integration::tool;

namespace {

bool has_row(const std::string& cdr_json, const done_call& c) {
  for (const auto& l : lines(cdr_json))
    if (json_str(l, "/callId") == c.id)
      return json_str(l, "/finalStatus") == "Terminated" && json_str(l, "/from") == c.from &&
             json_str(l, "/to") == c.to && json_str(l, "/endedBy") == "MO" && json_int(l, "/answer").has_value();
  return false;
}

}  // namespace

TEST_CASE("tool: timeline, cdr, replay, audit and verify while the engine serves") {
  engine_process eng;
  traffic load(eng, 2);

  for (int round = 0; round < 3; ++round) {
    load.await(10 * static_cast<std::size_t>(round + 1));
    const auto before = load.done();  // acknowledged before the commands start
    INFO("round ", round, " with ", before.size(), " calls done");

    const auto cdr = run(eng, "--json cdr");
    INFO("cdr: ", cdr.err);
    CHECK(cdr.code == 0);
    std::size_t missing = 0;
    for (const auto& c : before) missing += has_row(cdr.out, c) ? 0 : 1;
    CHECK(missing == 0);

    const done_call& last = before.back();
    const auto tl = run(eng, "--json timeline " + last.id);
    INFO("timeline: ", tl.out, tl.err);
    CHECK(tl.code == 0);
    CHECK(json_str(tl.out, "/events/0/record/type") == "start");
    CHECK(json_str(tl.out, "/events/3/record/type") == "end");
    CHECK_FALSE(json_has(tl.out, "/events/4"));
    CHECK(json_str(tl.out, "/call/status") == "Terminated");
    const auto human = run(eng, "timeline " + last.id);
    CHECK(human.code == 0);
    CHECK(human.out.find("Connected -> Terminated") != std::string::npos);

    const auto au = run(eng, "--json audit --msisdn " + last.to);
    CHECK(au.code == 0);
    CHECK(lines(au.out).size() == 4);

    const auto rp = run(eng, "--json replay");
    INFO("replay: ", rp.out, rp.err);
    CHECK(rp.code == 0);
    CHECK(json_bool(rp.out, "/ok") == true);
    CHECK(json_int(rp.out, "/events") >= static_cast<std::int64_t>(4 * before.size()));
    CHECK(json_int(rp.out, "/statuses/Terminated") >= static_cast<std::int64_t>(before.size()));
    CHECK(json_bool(rp.out, "/state/compared") == true);

    const auto v = run(eng, "verify");
    INFO("verify: ", v.out, v.err);
    CHECK(v.code == 0);
  }
  load.stop();
  CHECK(load.failures().empty());
  http_client c(eng.port());
  CHECK(c.get("/healthz").status == 200);
  CHECK(c.get("/readyz").status == 200);
  const auto final_replay = run(eng, "--json replay");
  CHECK(json_int(final_replay.out, "/statuses/Terminated") == static_cast<std::int64_t>(load.done().size()));
  CHECK(json_int(final_replay.out, "/active") == 0);
}
