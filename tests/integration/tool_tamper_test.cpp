// yna-tool against a log changed behind the engine's back (contract §6: any change is
// detectable): one stored event's bytes changed through RocksDB's C++ API or its own
// `ldb` tool, an event that no longer decodes, a missing event, a missing index entry.
// `verify` fails naming that event; `replay` refuses to go past it and names it too.
// Also the exit codes for a folder without a log, an unknown call and bad flags, and a
// reader of the output that goes away.
#include "tests/integration/tool_support.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace integration;
using namespace integration::tool;

namespace {

constexpr std::uint64_t victim = 6;  // the event the tests change (of 12)

// Three calls of four events each (start, ringing, connected, end), engine stopped.
void write_log(engine_process& eng) {
  caller k(eng);
  for (int i = 0; i < 3; ++i) {
    const party a = new_party(eng, "a"), b = new_party(eng, "b");
    const std::string id = k.start(a, b, sdp("a"));
    k.act("ringing", id, b);
    k.act("connected", id, b, sdp("b"));
    k.end(id, a);
  }
  for (const auto& s : k.steps) REQUIRE(s.status == 200);
  REQUIRE(eng.stop().clean());
}

// The record with one digit of its time changed: still a valid, decodable record.
std::string one_byte_changed(std::string raw) {
  const auto at = raw.find("\"time\":");
  REQUIRE(at != std::string::npos);
  char& digit = raw[at + 7 + 12];  // a digit of the 13-digit epoch-ms value
  REQUIRE((digit >= '0' && digit <= '9'));
  digit = digit == '9' ? '0' : static_cast<char>(digit + 1);
  return raw;
}

std::string hex(std::string_view s) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out = "0x";
  for (unsigned char c : s) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

void expect_named(const engine_process& eng, std::uint64_t seq, std::string_view why) {
  const std::string at = "BROKEN at seq " + std::to_string(seq) + ":";
  const auto v = run(eng, "verify");
  INFO("verify: ", v.out, v.err);
  CHECK(v.code == 1);
  CHECK(v.out.find(at) != std::string::npos);
  CHECK(v.out.find(why) != std::string::npos);
  const auto vj = run(eng, "verify --json");
  CHECK(vj.code == 1);
  CHECK(json_int(vj.out, "/firstBad") == static_cast<std::int64_t>(seq));

  const auto r = run(eng, "--json replay");
  INFO("replay: ", r.out, r.err);
  CHECK(r.code == 1);
  CHECK(json_bool(r.out, "/ok") == false);
  CHECK(json_int(r.out, "/broken/seq") == static_cast<std::int64_t>(seq));
  CHECK(json_int(r.out, "/lastSeq") <= static_cast<std::int64_t>(seq));  // nothing folded past the break
  const auto rh = run(eng, "replay");
  CHECK(rh.code == 1);
  CHECK(rh.out.find(at) != std::string::npos);

  const auto c = run(eng, "cdr");  // call records from a broken log are not trusted either
  INFO("cdr: ", c.out, c.err);
  CHECK(c.code == 1);
  CHECK(c.err.find(at) != std::string::npos);
}

}  // namespace

TEST_CASE("tool verify/replay: a changed stored event is named") {
  engine_process eng;
  write_log(eng);
  {
    const auto ok = run(eng, "verify");
    INFO(ok.out, ok.err);
    REQUIRE(ok.code == 0);
    REQUIRE(run(eng, "replay").code == 0);
  }

  SUBCASE("one byte changed through the C++ API") {
    {
      raw_db db(eng.data_dir());
      db.put("events", victim, one_byte_changed(db.get("events", victim).value()));
    }
    expect_named(eng, victim, "does not hash to the prev stored in event 7");
  }

  SUBCASE("one byte changed with RocksDB's ldb") {
    if (std::system("command -v ldb >/dev/null 2>&1") != 0) {
      MESSAGE("ldb (rocksdb-tools) is not installed: this variant is covered by the C++ API one");
      return;
    }
    std::string changed;
    {
      raw_db db(eng.data_dir());
      changed = one_byte_changed(db.get("events", victim).value());
    }
    const std::string key = hex(std::string(7, '\0') + static_cast<char>(victim));
    const auto r = run_command("ldb --db=" + shell_quote((eng.data_dir() / "log").string()) +
                               " --column_family=events --key_hex --value_hex put " + key + " " + hex(changed) + " 2>&1");
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    {
      raw_db db(eng.data_dir());
      REQUIRE(db.get("events", victim) == changed);
    }
    expect_named(eng, victim, "does not hash to the prev stored in event 7");
  }

  SUBCASE("a record that no longer decodes") {
    {
      raw_db db(eng.data_dir());
      const std::string raw = db.get("events", victim).value();
      db.put("events", victim, raw.substr(0, raw.size() / 2));
    }
    expect_named(eng, victim, "does not decode");
  }

  SUBCASE("an event removed") {
    {
      raw_db db(eng.data_dir());
      db.remove("events", victim);
    }
    expect_named(eng, victim, "is missing");
  }

  SUBCASE("an index entry removed: verify names the event, replay does not use indexes") {
    std::string txn;
    {
      raw_db db(eng.data_dir());
      const std::string raw = db.get("events", victim).value();
      txn = json_str(raw, "/txn").value();
      db.remove_index("by_txn", txn, victim);
    }
    const auto v = run(eng, "verify");
    INFO(v.out, v.err);
    CHECK(v.code == 1);
    CHECK(v.out.find("BROKEN at seq 6: event 6 has no by_txn entry") != std::string::npos);
    CHECK(run(eng, "replay").code == 0);
    const auto a = run(eng, "--json audit --txn " + txn);  // the index is what audit reads
    CHECK(a.code == 0);
    CHECK(a.out.empty());
  }

  SUBCASE("the tool never writes: the change is still there, the engine still starts") {
    {
      raw_db db(eng.data_dir());
      db.put("events", victim, one_byte_changed(db.get("events", victim).value()));
    }
    CHECK(run(eng, "verify").code == 1);
    CHECK(run(eng, "verify").code == 1);
    eng.start();
    http_client c(eng.port());
    CHECK(c.get("/healthz").status == 200);
  }
}

TEST_CASE("tool: exit codes for a missing log, an unknown call and bad flags") {
  engine_process eng;
  caller k(eng);
  const party a = new_party(eng), b = new_party(eng);
  const std::string id = k.start(a, b, sdp("a"));
  REQUIRE(!id.empty());

  for (const char* cmd : {"verify", "replay", "timeline X", "audit", "cdr", "export"}) {
    const auto r = run_in(eng.root() / "no-such-folder", eng.root(), cmd);
    INFO(cmd, ": ", r.out, r.err);
    CHECK(r.code == 3);
    CHECK(r.err.find("cannot open the log") != std::string::npos);
  }
  const auto unknown = run(eng, "timeline 0123456789ABCDEF0123456789ABCDEF");
  CHECK(unknown.code == 4);
  CHECK(unknown.err.find("no event of call") != std::string::npos);
  CHECK(run(eng, "timeline " + id).code == 0);
  CHECK(run(eng, "timeline").code == 2);
  CHECK(run(eng, "no-such-command").code == 2);
  CHECK(run(eng, "").code == 2);
  CHECK(run(eng, "audit --since tomorrow").code == 2);
  CHECK(run(eng, "audit --msisdn 12").code == 2);
  CHECK(run(eng, "cdr --until 2025-13-01").code == 2);
  CHECK(run(eng, "export --from x").code == 2);
  CHECK(run(eng, "--help").code == 0);
  CHECK(run(eng, "replay --help").code == 0);
}

TEST_CASE("tool: a reader that goes away (| head) stops the scan, exit 3, no scratch folder left") {
  engine_process eng;
  caller k(eng);
  const party a = new_party(eng), b = new_party(eng);
  for (int i = 0; i < 200; ++i) k.start(a, b, sdp(std::string(200, 'x')));  // ~200 KB of records: more than a pipe holds
  const auto tool = tool_path();
  REQUIRE(tool.has_value());
  const auto tmp = eng.root() / "tmp";
  std::filesystem::create_directories(tmp);
  const auto rc_file = eng.root() / "rc";
  const auto r = run_command("(TMPDIR=" + shell_quote(tmp.string()) + " " + shell_quote(tool->string()) + " --data-dir " +
                             shell_quote(eng.data_dir().string()) + " export 2>/dev/null; echo $? > " +
                             shell_quote(rc_file.string()) + ") | head -c 1");
  CHECK(r.out == "{");
  std::ifstream in(rc_file);
  int rc = -1;
  in >> rc;
  CHECK(rc == 3);
  CHECK(std::filesystem::is_empty(tmp));  // the secondary's scratch folder was removed
}
