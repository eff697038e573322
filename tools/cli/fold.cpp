#include "tools/cli/fold.hpp"

#include <algorithm>
#include <chrono>

#include <simdjson.h>

#include "engine/codec.hpp"
#include "schemas/digest.hpp"

namespace cli {

namespace {

const std::string zero_hash(64, '0');

// One call through the snapshot codec: whatever the codec stores is compared, so a
// field added to call_state and its snapshot is compared without a change here.
std::string encode_one(const engine::call_state& c) {
  engine::call_table t;
  t.restore(c, 0);
  return engine::encode_snapshot(t);
}

std::string shorten(std::string s) {
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// "status: snapshot \"Connected\", log \"Terminated\"; endedAt: …" for two encode_one outputs.
std::string field_diff(const std::string& snap_json, const std::string& log_json) {
  simdjson::dom::parser pa, pb;
  simdjson::dom::object a, b;
  if (pa.parse(snap_json)["calls"].at(0).get_object().get(a) || pb.parse(log_json)["calls"].at(0).get_object().get(b))
    return "the encodings differ";
  std::string out;
  auto note = [&](std::string_view key, const std::string& sv, const std::string& lv) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{}: snapshot {}, log {}", key, shorten(sv), shorten(lv));
  };
  for (auto [key, va] : a) {
    simdjson::dom::element vb;
    if (b.at_key(key).get(vb)) {
      note(key, simdjson::minify(va), "absent");
    } else if (simdjson::minify(va) != simdjson::minify(vb)) {
      note(key, simdjson::minify(va), simdjson::minify(vb));
    }
  }
  for (auto [key, vb] : b) {
    simdjson::dom::element va;
    if (a.at_key(key).get(va)) note(key, "absent", simdjson::minify(vb));
  }
  return out.empty() ? "the encodings differ" : out;
}

snapshot_check compare_calls(const engine::call_table& folded, engine::event_seq seq, std::string_view bytes) {
  snapshot_check c;
  c.present = c.compared = true;
  c.seq = seq;
  auto snap = engine::decode_snapshot(bytes);
  if (!snap) {
    c.ok = false;
    c.problem = fmt::format("the snapshot at seq {} does not decode: {}", seq, engine::to_string(snap.error()));
    return c;
  }
  c.calls = snap->size();
  auto differ = [&](std::string problem) {
    if (c.ok) c.problem = std::move(problem);
    c.ok = false;
    ++c.differing;
  };
  std::vector<const engine::call_state*> mine;
  mine.reserve(folded.size());
  for (const auto& [id, call] : folded.calls()) mine.push_back(&call);
  std::sort(mine.begin(), mine.end(), [](auto* x, auto* y) { return x->start_seq < y->start_seq; });
  for (const engine::call_state* f : mine) {
    const engine::call_state* s = snap->find(f->call_id);
    if (!s) {
      differ(fmt::format("call {} (started at seq {}) is in the log but not in the snapshot", f->call_id, f->start_seq));
      continue;
    }
    const std::string a = encode_one(*s), b = encode_one(*f);
    if (a != b) differ(fmt::format("call {} differs: {}", f->call_id, field_diff(a, b)));
  }
  for (const auto& [id, call] : snap->calls())
    if (!folded.find(id)) differ(fmt::format("call {} is in the snapshot but not in the log", id));
  return c;
}

}  // namespace

double fold_result::events_per_second() const {
  const double fold_only = seconds - snapshot.seconds;
  return fold_only > 0 ? static_cast<double>(events) / fold_only : 0;
}

snapshot_check compare_snapshot(const engine::call_table& folded, engine::event_seq seq, std::string_view bytes) {
  const auto t0 = std::chrono::steady_clock::now();
  snapshot_check c = compare_calls(folded, seq, bytes);
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return c;
}

fold_result fold_log(const storage::event_log& log, const fold_options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  fold_result r;
  r.log_last_seq = log.last_seq();
  std::optional<std::pair<engine::event_seq, std::string>> snap;
  if (o.compare_snapshot) snap = log.latest_snapshot();
  if (snap) {
    r.snapshot.present = true;
    r.snapshot.seq = snap->first;
  }

  engine::event_seq expected = 1;
  std::string prev = zero_hash;
  bool limit_reached = false;
  const storage::event_log::scan_fn step = [&](const engine::event& e, std::string_view raw) {
    if (o.until_time && e.time > *o.until_time) {
      limit_reached = true;
      return false;
    }
    if ((r.events & 1023) == 0 && should_stop()) {
      r.stopped = limit_reached = true;
      return false;
    }
    if (o.check_chain) {
      if (e.seq != expected) {
        r.broken = log_break{expected, fmt::format("event {} is missing (the next stored is {})", expected, e.seq)};
        return false;
      }
      if (e.prev_hash != prev) {
        r.broken = e.seq == 1 ? log_break{1, "event 1: prev is not 64 zeros"}
                              : log_break{e.seq - 1, fmt::format("event {} does not hash to the prev stored in event {} "
                                                                 "(event {} was changed, or that prev)",
                                                                 e.seq - 1, e.seq, e.seq - 1)};
        return false;
      }
      prev = schemas::to_hex(schemas::sha256(raw));
    }
    expected = e.seq + 1;
    r.table.apply(e);
    ++r.events;
    if (!e.accepted()) ++r.rejected;
    else if (e.noop) ++r.noops;
    r.last_seq = e.seq;
    if (o.observe) o.observe(e, r.table);
    if (o.prog && (r.events & 4095) == 0) o.prog->update(r.events);
    return true;
  };
  auto scan = [&](engine::event_seq from, engine::event_seq to) {
    if (r.broken || limit_reached || from > to) return;
    if (auto st = log.scan(from, to, step); !st) r.broken = log_break{st.error().seq, st.error().detail};
  };

  const bool snapshot_in_range = snap && snap->first <= o.until_seq;
  if (snapshot_in_range) {
    scan(1, snap->first);
    if (!r.broken && !limit_reached) {
      if (r.last_seq == snap->first) {
        r.snapshot = compare_snapshot(r.table, snap->first, snap->second);
      } else {
        r.snapshot.compared = true;
        r.snapshot.ok = false;
        r.snapshot.differing = 1;
        r.snapshot.problem = fmt::format("the snapshot is at seq {} but the log ends at {}", snap->first, r.last_seq);
      }
    }
    if (!o.stop_at_snapshot) scan(snap->first + 1, o.until_seq);
  } else if (!(o.stop_at_snapshot && o.compare_snapshot)) {
    scan(1, o.until_seq);
  }
  if (o.prog) o.prog->update(r.events);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::optional<log_break> read_events(const storage::event_log& log, const std::vector<engine::event_seq>& seqs,
                                     const storage::event_log::scan_fn& fn) {
  for (engine::event_seq seq : seqs) {
    bool found = false, more = true;
    auto st = log.scan(seq, seq, [&](const engine::event& e, std::string_view raw) {
      found = true;
      more = fn(e, raw);
      return more;
    });
    if (!st) return log_break{st.error().seq ? st.error().seq : seq, st.error().detail};
    if (!found) return log_break{seq, fmt::format("event {} is named by an index but is not in the log", seq)};
    if (!more) break;
  }
  return std::nullopt;
}

}  // namespace cli
