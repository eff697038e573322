#include "engine/reactor.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <utility>

#include "engine/codec.hpp"
#include "engine/decide.hpp"
#include "engine/routing.hpp"
#include "engine/settings.hpp"
#include "schemas/api.hpp"

namespace engine {

namespace {

constexpr epoch_ms sweep_interval_ms = 50;

// The MO party a /start is for: its `from`, or the gateway sending it (contract §11).
std::string mo_party_of(const command& cmd) { return cmd.who.gateway ? gateway_party(cmd.who.sub) : cmd.from; }

// The lane (call_lanes) of a request whose call is not in memory, while the log is read: the
// start key, or the call id.
std::string lookup_key(const command& cmd) {
  if (cmd.act == action::start) {
    if (!cmd.client_correlator || cmd.input_error != reason_code::none) return {};
    std::string k = "s:";
    k.append(mo_party_of(cmd)).push_back('\0');
    k.append(*cmd.client_correlator);
    return k;
  }
  return "c:" + cmd.call_id;
}

std::string lane_key(const command& cmd, const call_state* call) {
  if (cmd.act == action::start) return lookup_key(cmd);
  // One subject's registrations are decided one at a time (the per-subject cap).
  if (is_pusher_action(cmd.act)) return "p:" + (cmd.push && !cmd.push->sub.empty() ? cmd.push->sub : cmd.who.sub);
  if (cmd.act == action::settings) return "n:" + cmd.to;  // one number's settings at a time
  if (!call) return {};
  return "c:" + call->call_id;
}

}  // namespace

reactor::reactor(event_store& store, const clock& clk, registry& m, reactor_options opts, call_table recovered)
    : store_(store),
      clock_(clk),
      opts_(std::move(opts)),
      table_(std::move(recovered)),
      admission_(opts_.max_pending, opts_.max_queue_delay_ms, opts_.admit_floor, clk.mono_ms(), m),
      next_seq_(table_.last_seq() + 1),
      probe_(m) {
  timers_.rebuild(table_);  // deadlines that passed while the engine was down fire at once
  probe_.timers(timers_.size());
  probe_.table(table_);
}

reactor::~reactor() {
  {
    std::lock_guard lk(lookup_mu_);
    lookup_stopping_ = true;
  }
  lookup_cv_.notify_all();
  if (lookup_thread_.joinable()) lookup_thread_.join();
}

// What routing (contract §10) reads: the committed table plus what is decided and not yet
// applied (callWaiting invitations), and presence from transport.
class reactor::view final : public routing_view {
 public:
  explicit view(const reactor& r) : r_(r) {}
  number_settings settings(std::string_view msisdn) const override { return r_.table_.settings().of(msisdn); }
  bool engaged(std::string_view msisdn) const override { return r_.table_.engaged_count(msisdn) > 0; }
  bool has_waiting(std::string_view msisdn) const override {
    if (r_.table_.waiting_count(msisdn) > 0) return true;
    return r_.inflight_waiting_.find(std::string(msisdn)) != r_.inflight_waiting_.end();
  }
  bool reachable(std::string_view msisdn) const override {
    if (!r_.online_ || r_.online_(msisdn)) return true;
    return !r_.table_.pushers().for_number(msisdn).empty();
  }

 private:
  const reactor& r_;
};

void reactor::set_presence(std::function<bool(std::string_view)> online) { online_ = std::move(online); }

void reactor::set_listener(event_listener* l) { listener_ = l; }
void reactor::set_lookup(const call_lookup* l) { lookup_ = l; }
void reactor::set_after_batch(std::function<void()> f) { after_batch_ = std::move(f); }

void reactor::end_batch() {
  if (!std::exchange(answered_, false)) return;
  if (after_batch_) after_batch_();
}

bool reactor::on_reactor_thread() const { return std::this_thread::get_id() == thread_id_; }

void reactor::post(message m) {
  bool wake = false;
  {
    std::lock_guard lk(mu_);
    inbox_.push_back(std::move(m));
    // Only a sleeping reactor is signalled, and only by the first message since it fell
    // asleep: one wake-up per batch, none while it works (it takes the inbox when done).
    wake = std::exchange(asleep_, false);
  }
  if (wake) cv_.notify_one();
}

bool reactor::submit(command cmd, reply_fn done) {
  if (stopping_.load() || !admission_.admit()) return false;
  const epoch_ms deadline = clock_.mono_ms() + opts_.request_timeout_ms;
  post(request{std::move(cmd), std::move(done), deadline, false, std::nullopt});
  return true;
}

bool reactor::query(std::string call_id, actor who, reply_fn done) {
  if (stopping_.load() || !admission_.admit()) return false;
  post(read_request{std::move(call_id), std::move(who), std::move(done), false, std::nullopt});
  return true;
}

bool reactor::query_settings(std::string msisdn, actor who, reply_fn done) {
  if (stopping_.load() || !admission_.admit()) return false;
  post(task_fn([this, msisdn = std::move(msisdn), who = std::move(who), done = std::move(done)](
                   const call_table& table, event_seq) mutable {
    reply rep;
    if (who.gateway || std::find(who.msisdns.begin(), who.msisdns.end(), msisdn) == who.msisdns.end())
      rep = reply{reason_code::forbidden, "the access token does not own the number " + msisdn, {}};
    else
      rep.result = table.settings().of(msisdn);
    answer(done, std::move(rep));
  }));
  return true;
}

bool reactor::run_on_reactor(task_fn task) {
  if (stopping_.load()) return false;
  post(std::move(task));
  return true;
}

void reactor::handle(task_fn&& t) { t(table_, table_.last_seq()); }

void reactor::stop() {
  stopping_.store(true);
  post(stop_msg{});
}

void reactor::run() {
  thread_id_ = std::this_thread::get_id();
  if (lookup_ && !lookup_thread_.joinable()) lookup_thread_ = std::thread([this] { lookup_loop(); });
  for (;;) {
    {
      epoch_ms wait = sweep_interval_ms;
      if (auto next = timers_.next()) wait = std::clamp<epoch_ms>(*next - clock_.now(), 0, sweep_interval_ms);
      std::unique_lock lk(mu_);
      if (inbox_.empty()) {
        asleep_ = true;
        cv_.wait_for(lk, std::chrono::milliseconds(wait), [&] { return !inbox_.empty(); });
        asleep_ = false;
      }
    }
    if (poll_once()) break;
  }
  shut_down();
}

bool reactor::poll_once() {
  thread_id_ = std::this_thread::get_id();
  {
    std::lock_guard lk(mu_);
    batch_.swap(inbox_);
  }
  // The loop's own time on a monotonic clock: what every request and timer waits
  // behind (a wall-clock step must not show up as a pause).
  const auto woke = std::chrono::steady_clock::now();
  const bool had_work = !batch_.empty() || !inflight_.empty();
  for (auto& m : batch_) {
    std::visit(
        [&](auto&& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, stop_msg>)
            stop_requested_ = true;
          else
            handle(std::move(v));
        },
        std::move(m));
  }
  batch_.clear();
  const epoch_ms mono = clock_.mono_ms();
  if (mono - last_sweep_ >= sweep_interval_ms) {
    last_sweep_ = mono;
    expire_stale();
  }
  if (!stop_requested_) {
    fire_due(clock_.now());
    expire_pushers(clock_.now());
  }
  flush();
  admission_.update(mono);
  probe_.pending(admission_.outstanding());
  end_batch();
  if (had_work) {
    probe_.loop(std::chrono::steady_clock::now() - woke);
  }
  return stop_requested_ && inflight_.empty();
}

void reactor::shut_down() {
  // Answer what never reached the log: nothing of it is stored. The lookup thread
  // finishes its job first (its answer lands in the inbox); the jobs it did not start are
  // refused here.
  std::deque<lookup_job> unlooked;
  {
    std::lock_guard lk(lookup_mu_);
    lookup_stopping_ = true;
    unlooked.swap(lookup_queue_);
  }
  lookup_cv_.notify_all();
  if (lookup_thread_.joinable()) lookup_thread_.join();
  for (auto& j : unlooked) std::visit([&](auto& v) { refuse(v.done); }, j);
  for (auto& d : pending_) refuse(d.done);
  pending_.clear();
  lanes_.drain([&](request& r) { refuse(r.done); });
  std::unique_lock lk(mu_);
  for (auto& m : inbox_) {
    if (auto* r = std::get_if<request>(&m)) refuse(r->done);
    if (auto* q = std::get_if<read_request>(&m)) refuse(q->done);
  }
  inbox_.clear();
  lk.unlock();
  end_batch();
}

void reactor::refuse(reply_fn& done) {
  answer(done, reply{reason_code::service_unavailable, "the engine is shutting down", {}});
}

bool reactor::send_to_lookup(lookup_job&& job) {
  {
    std::lock_guard lk(lookup_mu_);
    if (lookup_stopping_) return false;  // job untouched: the caller answers it
    lookup_queue_.push_back(std::move(job));
  }
  lookup_cv_.notify_one();
  probe_.looked_up();
  return true;
}

// The lookup thread: reads calls that are not in memory back from the log (blocking
// I/O, so never on the reactor thread) and hands each request back to the reactor with
// what it found. The reactor then decides it like any other.
void reactor::lookup_loop() {
  for (;;) {
    lookup_job job;
    {
      std::unique_lock lk(lookup_mu_);
      lookup_cv_.wait(lk, [&] { return lookup_stopping_ || !lookup_queue_.empty(); });
      if (lookup_stopping_) return;  // the reactor refuses what is left
      job = std::move(lookup_queue_.front());
      lookup_queue_.pop_front();
    }
    if (auto* r = std::get_if<request>(&job)) {
      if (r->cmd.act == action::start) {
        if (auto id = lookup_->find_start(mo_party_of(r->cmd), *r->cmd.client_correlator))
          r->found = lookup_->load_call(*id);
      } else {
        r->found = lookup_->load_call(r->cmd.call_id);
      }
      r->looked_up = true;
      post(std::move(*r));
    } else {
      auto& q = std::get<read_request>(job);
      q.found = lookup_->load_call(q.call_id);
      q.looked_up = true;
      post(std::move(q));
    }
  }
}

void reactor::handle(request&& r) {
  assert(on_reactor_thread());
  const epoch_ms now = clock_.now();
  if (clock_.mono_ms() > r.deadline) {
    probe_.timed_out();
    if (r.looked_up) release(lookup_key(r.cmd));
    answer(r.done, reply{reason_code::request_timeout, "the request waited too long to be written; nothing was changed", {}});
    return;
  }
  if (r.looked_up) {  // back from the log, holding its key: decided with what the log holds
    const call_state* found = r.found ? &*r.found : nullptr;
    std::string key = lookup_key(r.cmd);
    decide_request(std::move(r), found, std::move(key), now);
    return;
  }
  if (is_pusher_action(r.cmd.act) || r.cmd.act == action::settings) {  // no call: its lane, then the directory
    std::string key = lane_key(r.cmd, nullptr);
    if (lanes_.wait(key, r)) return;
    lanes_.take(key);
    decide_request(std::move(r), nullptr, std::move(key), now);
    return;
  }
  const call_state* call = nullptr;
  const bool start_key = r.cmd.act == action::start && r.cmd.client_correlator && r.cmd.input_error == reason_code::none;
  if (r.cmd.act == action::start) {
    if (start_key) call = table_.find_start(mo_party_of(r.cmd), *r.cmd.client_correlator);
  } else {
    call = table_.find(r.cmd.call_id);
  }
  // Not in memory: the call may be retired (contract §9), or the /start key may name a
  // retired call. The log says, on the lookup thread; the request holds its key meanwhile
  // so nothing else decides on that call or key before it.
  const bool endpoint = r.cmd.act != action::timeout && r.cmd.act != action::retire;
  if (!call && lookup_ && endpoint && r.cmd.input_error == reason_code::none &&
      (r.cmd.act == action::start ? start_key : !r.cmd.call_id.empty())) {
    std::string key = lookup_key(r.cmd);
    if (lanes_.wait(key, r)) return;  // in flight: wait, then look again (memory first)
    lookup_job job{std::move(r)};
    if (send_to_lookup(std::move(job))) {
      lanes_.take(std::move(key));
      return;
    }
    refuse(std::get<request>(job).done);  // stopping
    return;
  }
  std::string key = lane_key(r.cmd, call);
  if (!key.empty()) {
    if (lanes_.wait(key, r)) return;  // an event of this call is on its way to the log: wait for it
    if (call && r.cmd.act != action::timeout) {
      if (auto due = due_timer(*call, now)) {  // a passed deadline wins: its expiry goes first
        fire(call->call_id, *due, *call->timers[*due]);
        lanes_.wait_behind(key, std::move(r));
        return;
      }
    }
    lanes_.take(key);
  }
  decide_request(std::move(r), call, std::move(key), now);
}

// Decides `r` on `call` (memory's, or the log's for a call not in memory) and queues the
// event for the next write. `key` is held by r (or empty).
void reactor::decide_request(request&& r, const call_state* call, std::string key, epoch_ms now) {
  event ev = is_pusher_action(r.cmd.act)        ? decide_pusher(table_.pushers(), r.cmd, now, opts_.pushers)
             : r.cmd.act == action::settings ? decide_settings(table_.settings(), r.cmd, now)
                                             : decide(call, r.cmd, now, opts_.timers, limits_for(r.cmd));
  // Where the call goes (contract §10): the engine's own events, written right after this one.
  std::vector<event> follow;
  if (!is_pusher_action(ev.act) && ev.act != action::settings && ev.act != action::retire)
    follow = route(ev, call, view(*this), opts_.timers);
  const bool holds_caps = ev.act == action::start && ev.accepted() && !ev.noop && ev.status_after &&
                          !is_ended(*ev.status_after);
  if (holds_caps) {
    ++inflight_from_[mo_party(ev.from, ev.gateway)];
    ++inflight_to_[ev.to];
  }
  const bool engine_removal = r.cmd.act == action::unregister_pusher && r.cmd.by_engine;
  if ((r.cmd.act == action::timeout || r.cmd.act == action::retire || engine_removal) && !ev.accepted()) {
    // Disarmed by an event decided before it: not an event. The log shows the winner.
    probe_.superseded();
    lanes_.drop(key);
    answer(r.done, reply{ev.rejected, explain_rejection(ev, call), {}});
    return;
  }
  std::string message;
  if (!ev.accepted())
    message = r.cmd.input_error != reason_code::none ? std::move(r.cmd.input_error_message)
                                                     : explain_rejection(ev, call);
  std::string waits = ev.call_waiting ? ev.to : std::string();
  pending_.push_back(decided{std::move(ev), std::move(r.done), std::move(key), r.deadline, std::move(message),
                             holds_caps, {}, std::chrono::steady_clock::now(), false, {}});
  if (r.looked_up && r.found) pending_.back().found = std::move(r.found);
  if (!waits.empty()) {
    ++inflight_waiting_[waits];
    pending_.back().holds_waiting = std::move(waits);
  }
  if (!follow.empty()) queue_follow_ups(std::move(follow), pending_.back());
}

void reactor::queue_follow_ups(std::vector<event> follow, const decided& trigger) {
  for (auto& ev : follow) {
    admission_.add_own();  // answered (to nobody) like the engine's timers
    std::string waits = ev.act == action::divert && ev.call_waiting ? ev.to : std::string();
    decided d{std::move(ev), [](reply) {}, {}, trigger.deadline, {}, false, {}, trigger.decided_at, true, {}};
    if (!waits.empty()) {
      ++inflight_waiting_[waits];
      d.holds_waiting = std::move(waits);
    }
    pending_.push_back(std::move(d));
  }
}

// The counts behind the call caps: the committed table plus the accepted starts decided
// and not yet applied (a /start is decided long before its batch is durable).
start_limits reactor::limits_for(const command& cmd) const {
  start_limits l;
  if (cmd.act != action::start || cmd.input_error != reason_code::none) return l;
  l.caps = opts_.caps;
  auto in_flight = [](const std::unordered_map<std::string, std::size_t>& m, const std::string& k) -> std::size_t {
    auto it = m.find(k);
    return it == m.end() ? 0 : it->second;
  };
  if (l.caps.max_calls_per_number > 0)
    l.calls_from = table_.live_from_count(mo_party_of(cmd)) + in_flight(inflight_from_, mo_party_of(cmd));
  // Contract §10: unconditional forwarding is decided before the ringing cap (the call
  // never rings this number).
  const number_settings* s = table_.settings().find(cmd.to);
  if (l.caps.max_ringing_per_number > 0 && !(s && s->unconditional))
    l.ringing_to = table_.ringing_count(cmd.to) + in_flight(inflight_to_, cmd.to);
  // A transfer taken up (contract §10): the transferred call, while it is in memory (an
  // ended call stays --call-retention, far longer than the offer timer that bounds this).
  if (cmd.transfer_of) l.transferred = table_.find(*cmd.transfer_of);
  return l;
}

void reactor::release_caps(decided& d, const event& ev) {
  if (!d.holds_waiting.empty()) {
    auto it = inflight_waiting_.find(d.holds_waiting);
    if (it != inflight_waiting_.end() && --it->second == 0) inflight_waiting_.erase(it);
    d.holds_waiting.clear();
  }
  if (!d.holds_caps) return;
  d.holds_caps = false;
  auto drop = [](std::unordered_map<std::string, std::size_t>& m, const std::string& k) {
    auto it = m.find(k);
    if (it != m.end() && --it->second == 0) m.erase(it);
  };
  drop(inflight_from_, mo_party(ev.from, ev.gateway));
  drop(inflight_to_, ev.to);
}

void reactor::handle(read_request&& r) {
  const call_state* call = r.looked_up ? (r.found ? &*r.found : nullptr) : table_.find(r.call_id);
  if (!call && !r.looked_up && lookup_) {  // retired? the log says (contract §9)
    lookup_job job{std::move(r)};
    if (!send_to_lookup(std::move(job))) refuse(std::get<read_request>(job).done);
    return;
  }
  reply rep;
  if (!call) {
    rep = reply{reason_code::call_not_found, "no call with this callId", {}};
  } else if (resolve_role(*call, r.who, action::end) == role::stranger) {
    rep = reply{reason_code::forbidden, "only the parties of a call may read it", {}};
  } else {
    rep.result = std::make_shared<const call_state>(*call);
  }
  answer(r.done, std::move(rep));
}

void reactor::release(const std::string& key) {
  // The call's next waiting request is decided now, against durable state.
  lanes_.release(key, [this](request&& next) { handle(std::move(next)); });
}

void reactor::flush() {
  const std::size_t depth = std::max<std::size_t>(1, opts_.max_inflight_batches);
  while (!pending_.empty() && !unwinding_ && inflight_.size() < depth) {
    std::size_t n = std::min(pending_.size(), opts_.max_batch);
    while (n < pending_.size() && pending_[n].follows) ++n;  // routing's events go with their trigger
    if (spare_batches_.empty()) {
      inflight_.emplace_back();
    } else {
      inflight_.push_back(std::move(spare_batches_.back()));
      spare_batches_.pop_back();
    }
    write_batch& b = inflight_.back();
    b.requests.reserve(n);
    b.events.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      decided d = std::move(pending_.front());
      pending_.pop_front();
      d.ev.seq = next_seq_++;
      b.events.push_back(std::move(d.ev));  // the store's batch; finish() reads it back
      b.requests.push_back(std::move(d));
    }
    // Decided on committed state: no call of this batch has an event in an earlier batch
    // still in flight (a request waits while its call has one: lanes_), so each call folds
    // from the table.
    b.calls = changes_of(b.events);
    b.side = side_changes_of(b.events);
    probe_.batch(n);
    store_.append_async(b.events, &b.calls, &b.side,
                        [this](schemas::status<store_error> s) { post(write_done{s}); });
  }
}

// The state each call of `batch` is left in, for the log to persist with the batch
// (contract §9). Decisions see durable state, so each event folds onto the committed
// call (or onto the state an earlier event of the same batch left).
std::vector<call_change> reactor::changes_of(const std::vector<event>& batch) const {
  std::vector<call_change> out;
  // call id (a view into `batch`, which outlives this function; not into `out`, whose
  // strings move when it grows) -> index in out
  std::unordered_map<std::string_view, std::size_t> at;
  for (const event& e : batch) {
    if (!e.accepted() || e.noop || e.call_id.empty()) continue;
    auto it = at.find(e.call_id);
    if (it == at.end()) {
      call_change c{e.call_id, std::nullopt};
      if (e.act != action::start) {
        const call_state* now = table_.find(e.call_id);
        if (!now) continue;  // cannot happen: events of unknown calls are rejected
        c.after = *now;
      } else {
        c.after.emplace();
      }
      out.push_back(std::move(c));
      it = at.emplace(std::string_view(e.call_id), out.size() - 1).first;
    }
    auto& after = out[it->second].after;
    if (!after) continue;  // retired already in this batch
    if (e.act == action::retire) {
      after.reset();
    } else {
      engine::apply(*after, e);
    }
  }
  return out;
}

// The registrations and settings `batch` changes, as they are after it (the last event of
// a device or number wins).
side_changes reactor::side_changes_of(const std::vector<event>& batch) {
  side_changes side;
  auto& out = side.pushers;
  for (const event& e : batch) {
    if (e.act == action::settings && e.accepted() && !e.noop && e.settings) {
      settings_change c{e.settings->msisdn, std::nullopt};
      if (!e.settings->is_default()) {
        c.after = *e.settings;
        c.after->since = e.seq;
      }
      auto same = std::find_if(side.settings.begin(), side.settings.end(),
                               [&](const settings_change& o) { return o.msisdn == c.msisdn; });
      if (same != side.settings.end())
        *same = std::move(c);
      else
        side.settings.push_back(std::move(c));
      continue;
    }
    if (!is_pusher_action(e.act) || !e.accepted() || e.noop || !e.push) continue;
    pusher_change c{e.push->sub, e.push->device_id, std::nullopt};
    if (e.act == action::register_pusher) {
      c.after = *e.push;
      c.after->since = e.seq;
    }
    auto same = std::find_if(out.begin(), out.end(),
                             [&](const pusher_change& o) { return o.sub == c.sub && o.device_id == c.device_id; });
    if (same != out.end())
      *same = std::move(c);
    else
      out.push_back(std::move(c));
  }
  return side;
}

void reactor::handle(write_done&& d) {
  assert(!inflight_.empty());
  write_batch& b = inflight_.front();
  const bool ok = d.result.has_value();
  if (!ok) {
    probe_.write_failed();
    next_seq_ -= b.requests.size();  // every later batch in flight fails too and gives its seqs back
    unwinding_ = true;
  }
  const auto durable_at = std::chrono::steady_clock::now();  // one clock read per batch
  for (std::size_t i = 0; i < b.requests.size(); ++i) {
    finish(b.requests[i], b.events[i], ok, ok ? store_error::io_error : d.result.error(), durable_at);
  }
  // Release the lanes only after every event of the batch is applied, in log order.
  for (auto& f : b.requests) release(f.key);
  b.requests.clear();
  b.events.clear();
  b.calls.clear();
  b.side.clear();
  spare_batches_.push_back(std::move(b));
  inflight_.pop_front();
  if (inflight_.empty()) unwinding_ = false;
  probe_.table(table_);
}

void reactor::answer(reply_fn& done, reply r) {
  // Counters first: whoever wakes on the reply sees them settled.
  admission_.answered();
  answered_ = true;
  done(std::move(r));
}

void reactor::finish(decided& d, const event& ev, bool durable, store_error err,
                     std::chrono::steady_clock::time_point durable_at) {
  // Applied below (the table counts it from now on) or never written: either way no
  // longer in flight.
  release_caps(d, ev);
  if (!durable) {
    const bool full = err == store_error::no_space;
    answer(d.done, reply{full ? reason_code::service_unavailable : reason_code::internal_error,
                         full ? "the event log is out of disk space; nothing was changed"
                              : "the event log could not be written; nothing was changed",
                         {}});
    return;
  }
  const call_state* before = ev.call_id.empty() ? nullptr : table_.find(ev.call_id);
  const deadlines armed_before = before ? before->timers : deadlines{};
  table_.apply(ev);
  probe_.durable(durable_at - d.decided_at);
  const call_state* after = ev.call_id.empty() ? nullptr : table_.find(ev.call_id);
  if (before && !after) {  // retired: nothing of it stays in the deadline queue
    timers_.update(ev.call_id, armed_before, deadlines{});
    probe_.timers(timers_.size());
  } else if (after && after->timers != armed_before) {
    timers_.update(after->call_id, armed_before, after->timers);
    probe_.timers(timers_.size());
  }
  if (listener_) listener_->on_committed(ev, after);
  // Published after the listener was told (push reads the seq, then the hub's registrations)
  // and settled before the reply.
  probe_.committed(ev, table_);
  answer(d.done, ev.accepted() ? success_reply(ev, d.found ? &*d.found : nullptr)
                               : reply{ev.rejected, std::move(d.message), {}});
}

reply reactor::success_reply(const event& e, const call_state* found) const {
  reply r;
  if (e.act == action::settings && e.settings) r.result = *e.settings;  // as they now are
  if (e.act == action::start) {
    if (const call_state* c = found ? found : table_.find(e.call_id))
      r.result = started_call{c->dialled_number(), c->from, c->call_id, c->client_correlator};
  }
  return r;
}

std::string render_success(const reply& r, std::string_view base_path) {
  if (const auto* s = std::get_if<started_call>(&r.result))
    return schemas::encode_start_response(s->to, s->from, s->call_id, s->client_correlator);
  if (const auto* c = std::get_if<std::shared_ptr<const call_state>>(&r.result); c && *c)
    return encode_call_view(**c, base_path);
  if (const auto* s = std::get_if<number_settings>(&r.result)) {
    return schemas::encode_settings(s->msisdn, rules_of(*s));
  }
  return "{}";
}

void reactor::fire_due(epoch_ms now) {
  while (auto e = timers_.pop_due(now)) {
    const call_state* c = table_.find(e->call_id);
    if (!c) continue;
    const auto& d = c->timers[e->kind];
    if (!d || *d > now) continue;  // a retry of a timer that has since been disarmed or re-armed
    fire(e->call_id, e->kind, *d);
  }
  probe_.timers(timers_.size());
}

// Expired push registrations (contract §13) are removed by the engine, one event each.
void reactor::expire_pushers(epoch_ms now) {
  for (const auto& k : table_.pushers().expired(now, 64)) {
    if (!expiring_.insert(k).second) continue;  // its removal is on its way
    command cmd;
    cmd.act = action::unregister_pusher;
    cmd.push.emplace();
    cmd.push->sub = k.first;
    cmd.push->device_id = k.second;
    cmd.reason = std::string(pusher_expired_reason);
    cmd.by_engine = true;
    cmd.method = "DELETE";
    cmd.path = "/pushers/" + k.second;
    admission_.add_own();
    auto done = [this, k](reply) { expiring_.erase(k); };  // not written: tried again next sweep
    handle(request{std::move(cmd), std::move(done), clock_.mono_ms() + opts_.request_timeout_ms, false, std::nullopt});
  }
}

void reactor::fire(const std::string& call_id, timer_kind kind, epoch_ms deadline) {
  timers_.erase(deadline, call_id, kind);  // decided now; a failed write schedules a retry
  command cmd;
  cmd.act = kind == timer_kind::retire ? action::retire : action::timeout;
  cmd.call_id = call_id;
  cmd.timer = kind;
  admission_.add_own();
  auto done = [this, call_id, kind](reply r) {
    // Not written (log failure, 408, shutdown): the call still has the timer; try again.
    if (r.code == reason_code::internal_error || r.code == reason_code::service_unavailable ||
        r.code == reason_code::request_timeout)
      timers_.schedule(clock_.now() + opts_.timer_retry_ms, call_id, kind);
  };
  handle(request{std::move(cmd), std::move(done), clock_.mono_ms() + opts_.request_timeout_ms, false, std::nullopt});
}

void reactor::expire_stale() {
  const epoch_ms now = clock_.mono_ms();
  // Decided but not yet handed to the store: safe to drop, nothing was written.
  std::vector<std::string> freed;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now > it->deadline) {
      probe_.timed_out();
      answer(it->done, reply{reason_code::request_timeout, "the request was not written in time; nothing was changed", {}});
      release_caps(*it, it->ev);
      freed.push_back(std::move(it->key));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& k : freed) release(k);  // may decide parked requests into pending_
}

}  // namespace engine
