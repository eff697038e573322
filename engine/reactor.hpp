#pragma once
// The reactor: the one thread that owns all call state.
//
// I/O threads submit() commands; the reactor decides each into an event, collects the
// events decided while earlier writes are in flight into the next batch, hands that
// batch to the event_store (group commit: one sync for many requests; up to
// max_inflight_batches batches in flight, so the next one is written while the last one
// syncs), and only once the store says a batch is durable applies it to the call table,
// publishes notifications and replies, batch by batch in log order. Commands on a call
// that has an event in flight wait ("parked") until that event is durable, so every
// decision sees durable state and a failed write never has to be undone. Replies are
// values (reply); the I/O threads render them.
//
// Timers (contract §7) live here as a deadline queue built from call state. An expiry
// is a command like any other (engine as the actor): it goes through decide(), waits its
// turn on a busy call, and becomes an event only once it is durable. A request decided
// after a deadline has passed waits for that expiry first, so a deadline always wins
// over a later decision and exactly one of them is in the log.
//
// Lifetime: constructed after recovery with the recovered call table; run() on its own
// thread until stop(). All public functions but run() may be called from any thread.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "engine/admission.hpp"
#include "engine/call_lanes.hpp"
#include "engine/call_table.hpp"
#include "engine/clock.hpp"
#include "engine/decide.hpp"
#include "engine/event_store.hpp"
#include "engine/metrics.hpp"
#include "engine/reactor_probe.hpp"
#include "engine/timer_queue.hpp"
#include "engine/types.hpp"

namespace engine {

// A /start's answer: the call it made, or the call an earlier /start with the same
// clientCorrelator made (StartCallResponse).
struct started_call {
  std::string to;
  std::string from;
  std::string call_id;
  std::optional<std::string> client_correlator;
};

// What a request gets back: values, not JSON. The I/O thread that answers the request
// renders it (render_success, ErrorInfo), so the reactor spends no time on bodies.
struct reply {
  reason_code code = reason_code::none;  // none: success
  std::string message;                   // systemMessage for errors
  // On success: the call of a /start, the call a GET reads (shared: a reply is copied
  // into the closure that takes it to the I/O thread); nothing for other actions.
  // A GET /settings: the number's settings.
  std::variant<std::monostate, started_call, std::shared_ptr<const call_state>, number_settings> result;
};

// The JSON body of a successful reply: StartCallResponse, the call view (its
// callObjectRef under `base_path`), or "{}". Any thread.
std::string render_success(const reply& r, std::string_view base_path);
// Called exactly once per submitted request, on the reactor thread: must only hand off
// (post to the session's thread), never block.
using reply_fn = std::function<void(reply)>;

// Receives every committed event with the call as it is after the event (nullptr when the
// event names no known call). Called on the reactor thread, in log order. Notifications
// are derived from here.
class event_listener {
 public:
  virtual ~event_listener() = default;
  virtual void on_committed(const event& e, const call_state* after) = 0;
};

struct reactor_options {
  std::size_t max_pending = 16384;    // requests accepted but not yet answered; beyond: 503
  // Admission control (overload): at most as many requests outstanding as the reactor
  // answered in max_queue_delay_ms at its recent best rate (Little's law), so an admitted
  // request waits about that long at most, and the rest are refused at once (503) instead
  // of queueing. Never fewer than admit_floor; 0 turns it off (only max_pending applies).
  epoch_ms max_queue_delay_ms = 250;
  std::size_t admit_floor = 256;
  std::size_t max_batch = 1024;       // events per write
  // Writes handed to the store at once (--write-pipeline): the next batch is decided and
  // written while the last one syncs. 1: each batch waits for the last one's sync.
  std::size_t max_inflight_batches = 2;
  epoch_ms request_timeout_ms = 5000; // not written by then: 408, nothing stored (monotonic time)
  timer_settings timers;              // durations of the call timers (contract §7) and the retention (§9)
  call_caps caps;                     // calls per number, ringing per number (contract §3a; 0: off)
  pusher_limits pushers;              // push registrations (contract §13)
  epoch_ms timer_retry_ms = 1000;     // an expiry whose write failed is tried again after this
};

class reactor {
 public:
  reactor(event_store& store, const clock& clk, registry& metrics, reactor_options opts, call_table recovered);
  ~reactor();
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  // Queues a command. Returns false (and does not call `done`) when the reactor holds
  // max_pending requests already or is stopping: the caller answers 503.
  [[nodiscard]] bool submit(command cmd, reply_fn done);
  // Reads a call for one of its parties (GET /calls/{id}): 200 with the view, 404, 403.
  [[nodiscard]] bool query(std::string call_id, actor who, reply_fn done);
  // Reads a number's settings for its owner (GET /settings/{msisdn}): 200, 403.
  [[nodiscard]] bool query_settings(std::string msisdn, actor who, reply_fn done);

  void set_listener(event_listener* l);  // before run()
  // Called on the reactor thread at the end of every loop iteration (and of the shut-down)
  // that answered a request: the transport hands the batch's replies and notification
  // frames to each I/O thread at once here, one wake-up per thread per batch. Before run().
  void set_after_batch(std::function<void()> f);
  // Where calls that are not in memory (retired, contract §9) are read back from; before
  // run(). Without one, a call not in memory is unknown (404) and a /start is new.
  void set_lookup(const call_lookup* l);
  // Whether a number has a notification socket open (contract §10: a number with no
  // socket and no push registration is not reachable, and CFNRc applies). Called on the
  // reactor thread; must not block. Before run(). Without one, every number is online.
  void set_presence(std::function<bool(std::string_view msisdn)> online);

  // Runs `task` on the reactor thread, between batches, with the committed call table
  // and the seq of the last event it holds (every event up to it has been published to
  // the listener, none after). For work that must not race with publishing, such as
  // subscribing a WebSocket. False when stopping.
  using task_fn = std::function<void(const call_table&, event_seq committed)>;
  [[nodiscard]] bool run_on_reactor(task_fn task);

  // Runs the loop on the calling thread until stop(); finishes the in-flight write first.
  void run();
  // One iteration of that loop without waiting: handles what was submitted (and the
  // store's answers) since the last one, times out stale requests, fires due timers and
  // hands the next batch to the store. True once stop() was called and no write is in
  // flight (run() then answers what is left and returns). For tests that drive the
  // reactor step by step on their own thread, with a manual_clock and no sleeps; never
  // together with run().
  bool poll_once();
  void stop();

  // Any thread (approximate).
  std::size_t pending() const noexcept { return admission_.outstanding(); }
  // False (and counted as shed) when a request submitted now would be refused for load:
  // lets the transport refuse before it spends CPU on authentication. submit() decides
  // for real.
  bool admitting() noexcept { return admission_.admitting(); }
  std::size_t admit_limit() const noexcept { return admission_.limit(); }
  event_seq committed_seq() const noexcept { return probe_.committed_seq(); }
  // Before run() only: the push registrations recovered.
  const pusher_directory& recovered_pushers() const noexcept { return table_.pushers(); }
  std::size_t active_calls() const noexcept { return probe_.active_calls(); }
  std::size_t armed_timers() const noexcept { return probe_.armed_timers(); }
  std::size_t calls_in_memory() const noexcept { return probe_.calls_in_memory(); }

 private:
  struct request {
    command cmd;
    reply_fn done;
    epoch_ms deadline;  // on the monotonic clock (clock::mono_ms)
    // Set once the lookup thread has read the call from the log (it was not in memory):
    // `found` is that call, or empty when the log has none. The request then holds its
    // lane already.
    bool looked_up = false;
    std::optional<call_state> found;
  };
  struct read_request {
    std::string call_id;
    actor who;
    reply_fn done;
    bool looked_up = false;
    std::optional<call_state> found;
  };
  using lookup_job = std::variant<request, read_request>;
  struct write_done {
    schemas::status<store_error> result;
  };
  struct stop_msg {};
  using message = std::variant<request, read_request, write_done, task_fn, stop_msg>;
  struct decided {
    event ev;
    reply_fn done;
    std::string key;  // its lane (call_lanes), released when written ("" for none)
    epoch_ms deadline;  // monotonic
    std::string message;  // systemMessage when rejected
    bool holds_caps = false;  // an accepted start counted in inflight_from_/inflight_to_
    std::optional<call_state> found;  // the call read back from the log (not in memory), for the reply
    std::chrono::steady_clock::time_point decided_at;  // yna_commit_seconds
    // An event routing added after the request's (contract §10): written in the same batch
    // as the event before it, answered to nobody.
    bool follows = false;
    std::string holds_waiting;  // the MT its callWaiting invitation counts in inflight_waiting_
  };

  void post(message m);
  void end_batch();
  void shut_down();
  void handle(request&& r);
  void handle(read_request&& r);
  void handle(write_done&& d);
  void handle(task_fn&& t);
  void decide_request(request&& r, const call_state* call, std::string key, epoch_ms now);
  bool send_to_lookup(lookup_job&& job);
  void lookup_loop();
  void refuse(reply_fn& done);
  std::vector<call_change> changes_of(const std::vector<event>& batch) const;
  static side_changes side_changes_of(const std::vector<event>& batch);
  void expire_pushers(epoch_ms now);
  void release(const std::string& key);
  start_limits limits_for(const command& cmd) const;
  void release_caps(decided& d, const event& ev);
  void queue_follow_ups(std::vector<event> follow, const decided& trigger);
  void flush();
  void expire_stale();
  void fire_due(epoch_ms now);
  void fire(const std::string& call_id, timer_kind kind, epoch_ms deadline);
  // ev: d's event as the store wrote it (moved out of d at flush, prev_hash filled in).
  // durable_at: when the store's answer was taken (yna_commit_seconds).
  void finish(decided& d, const event& ev, bool durable, store_error err,
              std::chrono::steady_clock::time_point durable_at);
  void answer(reply_fn& done, reply r);
  reply success_reply(const event& e, const call_state* found) const;
  bool on_reactor_thread() const;

  event_store& store_;
  const clock& clock_;
  reactor_options opts_;
  call_table table_;
  event_listener* listener_ = nullptr;
  std::function<void()> after_batch_;
  bool answered_ = false;  // answer() ran since after_batch_ was last called

  // shared with other threads
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<message> inbox_;
  bool asleep_ = false;  // the reactor waits on cv_ (under mu_)
  admission admission_;
  std::atomic<bool> stopping_{false};

  // The lookup thread (calls not in memory, read back from the log), under lookup_mu_.
  const call_lookup* lookup_ = nullptr;
  std::mutex lookup_mu_;
  std::condition_variable lookup_cv_;
  std::deque<lookup_job> lookup_queue_;
  bool lookup_stopping_ = false;
  std::thread lookup_thread_;

  // reactor thread only
  std::thread::id thread_id_;
  std::vector<message> batch_;  // the inbox as taken by poll_once
  bool stop_requested_ = false;
  call_lanes<request> lanes_;  // per call (or /start key): the requests waiting for its event in flight
  std::deque<decided> pending_;     // decided, waiting for the next write
  // A batch handed to the store: its requests, its events (the store's, which it fills the
  // hash chain into) and the states of the calls it changes, written with it.
  struct write_batch {
    std::vector<decided> requests;
    std::vector<event> events;
    std::vector<call_change> calls;
    side_changes side;
  };
  // Handed to the store and not yet answered, oldest first (the store answers in this
  // order). A deque: the store holds pointers into each until its answer.
  std::deque<write_batch> inflight_;
  std::vector<write_batch> spare_batches_;  // answered, kept for their vectors' capacity
  // A write failed: no new batch until every one in flight is answered (the later ones
  // fail with it), so next_seq_ is renumbered from the failed one.
  bool unwinding_ = false;
  // Accepted starts decided but not yet applied to table_ (pending_ or being written), by
  // MO and by MT: the call caps count them with the table's calls, so a burst decided
  // within one batch cannot pass them. Released when the start is applied or dropped.
  std::unordered_map<std::string, std::size_t> inflight_from_;
  std::unordered_map<std::string, std::size_t> inflight_to_;
  // Invitations with callWaiting decided and not yet applied, by MT: one call waits at a time.
  std::unordered_map<std::string, std::size_t> inflight_waiting_;
  std::function<bool(std::string_view)> online_;
  class view;  // routing_view over the table, the in-flight counts and presence
  friend class view;
  event_seq next_seq_;
  epoch_ms last_sweep_ = 0;  // monotonic
  timer_queue timers_;
  // Registrations whose expiry is being written (one removal each at a time).
  std::set<pusher_directory::key> expiring_;

  reactor_probe probe_;  // metrics, and the figures other threads read
};

}  // namespace engine
