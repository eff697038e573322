#include "tools/cli/fold.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include <simdjson.h>

#include "engine/codec.hpp"
#include "schemas/digest.hpp"

namespace cli {

namespace {


std::string shorten(std::string s) {
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// "status: persisted \"Connected\", log \"Terminated\"; endedAt: …" for two encode_call outputs.
std::string field_diff(const std::string& state_json, const std::string& log_json) {
  simdjson::dom::parser pa, pb;
  simdjson::dom::object a, b;
  if (pa.parse(state_json).get_object().get(a) || pb.parse(log_json).get_object().get(b))
    return "the encodings differ";
  std::string out;
  auto note = [&](std::string_view key, const std::string& sv, const std::string& lv) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{}: persisted {}, log {}", key, shorten(sv), shorten(lv));
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

state_check compare_calls(const engine::call_table& folded, const storage::persisted_state& p) {
  state_check c;
  c.present = c.compared = true;
  c.seq = p.seq;
  c.calls = p.calls.size();
  auto differ = [&](std::string problem) {
    if (c.ok) c.problem = std::move(problem);
    c.ok = false;
    ++c.differing;
  };
  std::unordered_map<std::string_view, const engine::call_state*> persisted;
  for (const auto& call : p.calls) persisted.emplace(call.call_id, &call);
  std::vector<const engine::call_state*> mine;
  mine.reserve(folded.size());
  for (const auto& [id, call] : folded.calls()) mine.push_back(&call);
  std::sort(mine.begin(), mine.end(), [](auto* x, auto* y) { return x->start_seq < y->start_seq; });
  for (const engine::call_state* f : mine) {
    auto it = persisted.find(f->call_id);
    if (f->retired) {
      if (it != persisted.end())
        differ(fmt::format("call {} is retired in the log but still in the persisted state", f->call_id));
      continue;
    }
    if (it == persisted.end()) {
      differ(fmt::format("call {} (started at seq {}) is in the log but not in the persisted state", f->call_id,
                         f->start_seq));
      continue;
    }
    const std::string a = engine::encode_call(*it->second), b = engine::encode_call(*f);
    if (a != b) differ(fmt::format("call {} differs: {}", f->call_id, field_diff(a, b)));
  }
  for (const auto& call : p.calls)
    if (!folded.find(call.call_id))
      differ(fmt::format("call {} is in the persisted state but not in the log", call.call_id));
  // The push registrations (contract §13): the same rule.
  for (const auto& pu : p.pushers) {
    const engine::pusher* f = folded.pushers().find(pu.sub, pu.device_id);
    if (!f)
      differ(fmt::format("the push registration of device {} (sub {}) is in the persisted state but not in the log",
                         pu.device_id, pu.sub));
    else if (engine::encode_pusher(*f) != engine::encode_pusher(pu))
      differ(fmt::format("the push registration of device {} (sub {}) differs: {}", pu.device_id, pu.sub,
                         field_diff(engine::encode_pusher(pu), engine::encode_pusher(*f))));
  }
  for (const auto& entry : folded.pushers().all()) {  // not a structured binding: lambdas capture it (clang 14)
    const auto& k = entry.first;
    if (std::none_of(p.pushers.begin(), p.pushers.end(),
                     [&](const engine::pusher& x) { return x.sub == k.first && x.device_id == k.second; }))
      differ(fmt::format("the push registration of device {} (sub {}) is in the log but not in the persisted state",
                         k.second, k.first));
  }
  // The numbers' settings (contract §10): the same rule.
  for (const auto& st : p.settings) {
    const engine::number_settings* f = folded.settings().find(st.msisdn);
    if (!f)
      differ(fmt::format("the settings of {} are in the persisted state but not in the log", st.msisdn));
    else if (engine::encode_settings_record(*f) != engine::encode_settings_record(st))
      differ(fmt::format("the settings of {} differ: {}", st.msisdn,
                         field_diff(engine::encode_settings_record(st), engine::encode_settings_record(*f))));
  }
  for (const auto& entry : folded.settings().all()) {
    const std::string& n = entry.first;
    if (std::none_of(p.settings.begin(), p.settings.end(),
                     [&](const engine::number_settings& x) { return x.msisdn == n; }))
      differ(fmt::format("the settings of {} are in the log but not in the persisted state", n));
  }
  return c;
}

}  // namespace

double fold_result::events_per_second() const {
  const double fold_only = seconds - state.seconds;
  return fold_only > 0 ? static_cast<double>(events) / fold_only : 0;
}

state_check compare_state(const engine::call_table& folded, const storage::persisted_state& persisted) {
  const auto t0 = std::chrono::steady_clock::now();
  state_check c = compare_calls(folded, persisted);
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return c;
}

fold_result fold_log(const history& hist, const fold_options& o) {
  const storage::event_log& log = hist.log();
  const auto t0 = std::chrono::steady_clock::now();
  fold_result r;
  r.table = engine::call_table(engine::call_table::on_retire::keep);
  // The persisted state first: the events up to its seq are in the log by then.
  std::optional<storage::persisted_state> snap;
  if (o.compare_state) {
    auto p = log.load_persisted();
    if (!p) {
      r.state.present = r.state.compared = true;
      r.state.ok = false;
      r.state.differing = 1;
      r.state.problem = "the persisted state does not read: " + p.error().detail;
    } else if (p->seq > 0) {
      snap = std::move(*p);
      r.state.present = true;
      r.state.seq = snap->seq;
    }
  }
  r.log_last_seq = log.last_seq();

  engine::event_seq expected = hist.first_seq();
  std::string prev = hist.first_prev();
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
        r.broken = e.seq == 1                   ? log_break{1, "event 1: prev is not 64 zeros"}
                   : e.seq == hist.first_seq() ? log_break{e.seq, fmt::format("event {}: prev is not the hash its archive "
                                                                              "or the anchor gives", e.seq)}
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
    if (auto st = hist.scan(from, to, step); !st) r.broken = log_break{st.error().seq, st.error().detail};
  };

  const bool state_in_range = snap && snap->seq <= o.until_seq;
  if (state_in_range) {
    scan(hist.first_seq(), snap->seq);
    if (!r.broken && !limit_reached) {
      if (r.last_seq == snap->seq) {
        r.state = compare_state(r.table, *snap);
      } else {
        r.state.compared = true;
        r.state.ok = false;
        r.state.differing = 1;
        r.state.problem = fmt::format("the persisted state is at seq {} but the log ends at {}", snap->seq, r.last_seq);
      }
    }
    if (!o.stop_at_state) scan(snap->seq + 1, o.until_seq);
  } else if (!(o.stop_at_state && o.compare_state)) {
    scan(hist.first_seq(), o.until_seq);
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
