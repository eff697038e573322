#pragma once
// The seam between the reactor and the log. storage::event_log implements it over
// RocksDB; engine::memory_store (below) keeps events in memory for tests and can be told
// to fail. The reactor is the only caller.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/types.hpp"
#include "schemas/result.hpp"

namespace engine {

enum class store_error : std::uint8_t {
  io_error,     // write or sync failed
  no_space,     // the disk is full
  corruption,   // the log does not continue where it should
  closed,       // the store is shutting down
};
std::string_view to_string(store_error e) noexcept;

using append_done = std::function<void(schemas::status<store_error>)>;

// The state of one call after a batch (contract §9): written in the same atomic write as
// the batch's events, so the persisted call state is always the fold of the log up to its
// last event. `after` empty: the call was retired, its state is deleted.
struct call_change {
  std::string call_id;
  std::optional<call_state> after;
};

// A push registration after a batch (contract §13), written like a call_change.
// `after` empty: the registration was removed.
struct pusher_change {
  std::string sub, device_id;
  std::optional<pusher> after;
};

// A number's settings after a batch (contract §10), written like a call_change. `after`
// empty: the number is back to the defaults (nothing kept).
struct settings_change {
  std::string msisdn;
  std::optional<number_settings> after;
};

// What a batch changes of the fold besides calls: push registrations and settings.
struct side_changes {
  std::vector<pusher_change> pushers;
  std::vector<settings_change> settings;
  bool empty() const noexcept { return pushers.empty() && settings.empty(); }
  void clear() {
    pushers.clear();
    settings.clear();
  }
};

class event_store {
 public:
  virtual ~event_store() = default;

  // Appends `batch` durably: one atomic write, then a WAL sync that started after it. The
  // events are numbered
  // already (consecutive, continuing the log) and have no prev_hash: the store owns the
  // hash chain and fills prev_hash into each event of `batch` before writing. `calls`
  // are the states of the calls the batch changed, written in the same atomic write, and
  // the persisted state is then the fold of the log up to the batch's last event; null:
  // events only, the persisted state stays where it was (tests, tools).
  // `done` is called exactly once, on any thread, after the batch is durable (success)
  // or has failed; on failure nothing of the batch is in the log and the chain is as it
  // was. Several appends may be in flight (the next is written while the last one
  // syncs): their `done`s come in the order they were handed over, and once one fails
  // every append handed over before its `done` fails too (they continue a chain that is
  // not there); the caller renumbers from the failed batch and hands over again only
  // after every append in flight is answered. The caller keeps `batch` and `calls` alive
  // and untouched until `done`. Called on the reactor thread.
  // `side` (may be null): the registrations and settings the batch changed, written the
  // same way.
  virtual void append_async(std::vector<event>& batch, const std::vector<call_change>* calls,
                            const side_changes* side, append_done done) = 0;
  void append_async(std::vector<event>& batch, const std::vector<call_change>* calls, append_done done) {
    append_async(batch, calls, nullptr, std::move(done));
  }
  // Events only: the persisted call state falls behind the log, and the next start-up
  // folds the difference (storage::load_calls).
  void append_async(std::vector<event>& batch, append_done done) {
    append_async(batch, nullptr, nullptr, std::move(done));
  }
};

// Calls that are no longer in memory, read back from the log (contract §9: a retired call
// still answers). Blocking I/O: called from the reactor's lookup thread, never from the
// reactor or an I/O thread. Thread-safe.
class call_lookup {
 public:
  virtual ~call_lookup() = default;
  // The call folded from its events (by the call index), retired flag included; nullopt
  // when no event started a call with this id.
  virtual std::optional<call_state> load_call(std::string_view call_id) const = 0;
  // The id of the call started by this MO party (mo_party: `from`, or a gateway's party)
  // with this clientCorrelator, nullopt when none.
  virtual std::optional<std::string> find_start(std::string_view from, std::string_view client_correlator) const = 0;
};

// Reading the log back by party, for notification replay (GET /notifications?since=N).
// Implementations do blocking I/O: call from a worker thread, never from the reactor
// or an I/O thread. Thread-safe.
class event_reader {
 public:
  virtual ~event_reader() = default;
  // The seqs in (after, upto] of every event that names one of `msisdns` (as the actor
  // or as a party of its call), increasing, without duplicates; at most `limit` + 1 of
  // them (so the caller can tell "more than limit").
  virtual std::vector<event_seq> party_events(const std::vector<std::string>& msisdns, event_seq after,
                                              event_seq upto, std::size_t limit) const = 0;
  // The event at `seq`, nullopt when absent or unreadable.
  virtual std::optional<event> read(event_seq seq) const = 0;
  // Events 1..anchor_seq() were archived out of the log (contract §9): a replay from before
  // it cannot be served. 0 when nothing was.
  virtual event_seq anchor_seq() const { return 0; }
};

// The log read in order by the dispatchers of contract §13 (webhooks), each with a
// durable cursor kept in the log's storage, so a restart resumes delivery where it
// stopped. Blocking I/O: a dispatcher's own thread, never the reactor or an I/O thread.
// Thread-safe.
class delivery_source {
 public:
  virtual ~delivery_source() = default;
  // Acknowledged events with seq > after, in order, at most `limit` of them (fewer at the
  // end of the log). Events archived out of the log are skipped (none past a cursor is:
  // archiving stops at the lowest cursor).
  virtual std::vector<event> events_after(event_seq after, std::size_t limit) const = 0;
  // The last acknowledged seq.
  virtual event_seq acknowledged_seq() const = 0;
  // Every cursor, by name.
  virtual std::map<std::string, event_seq> cursors() const = 0;
  // Sets (seq) or removes (nullopt) a cursor. Durable with the log's next sync: one lost
  // in a crash only repeats deliveries. False when it could not be written.
  virtual bool set_cursor(std::string_view name, std::optional<event_seq> seq) = 0;
};

// In-memory store for tests: appends complete synchronously, inside append_async
// (unless paused). It keeps the pipelining rules: after a failed append, appends that do
// not continue the stored events fail too.
class memory_store final : public event_store, public call_lookup {
 public:
  using event_store::append_async;
  void append_async(std::vector<event>& batch, const std::vector<call_change>* calls,
                    const side_changes* side, append_done done) override;
  std::optional<call_state> load_call(std::string_view call_id) const override;
  std::optional<std::string> find_start(std::string_view from, std::string_view client_correlator) const override;

  // The next append fails with `e` (once).
  void fail_next_append(store_error e = store_error::io_error);
  // While paused, appends wait (in flight, not durable) until resume() completes them,
  // in order: for tests that need writes to be in flight at a chosen moment.
  void pause();
  void resume();
  bool has_waiting_append() const;
  std::size_t waiting_appends() const;

  std::vector<event> events() const;
  std::size_t appends() const;
  // The persisted call states (what the appends' `calls` left), by call id.
  std::map<std::string, call_state> persisted_calls() const;
  // The persisted push registrations, by (sub, device_id).
  std::map<std::pair<std::string, std::string>, pusher> persisted_pushers() const;
  // The persisted settings, by number.
  std::map<std::string, number_settings> persisted_settings() const;
  // Lookups served so far (load_call and find_start).
  std::size_t lookups() const;

 private:
  mutable std::mutex mu_;
  std::vector<event> events_;
  std::map<std::string, call_state> persisted_;
  std::map<std::pair<std::string, std::string>, pusher> persisted_pushers_;
  std::map<std::string, number_settings> persisted_settings_;
  mutable std::size_t lookups_ = 0;
  std::size_t appends_ = 0;
  bool fail_next_ = false;
  store_error fail_with_ = store_error::io_error;
  bool paused_ = false;
  bool discarding_ = false;  // an append failed: appends not starting at expect_next_ fail
  event_seq expect_next_ = 0;
  struct waiting {
    std::vector<event>* batch;
    const std::vector<call_change>* calls;
    const side_changes* side;
    append_done done;
  };
  std::deque<waiting> waiting_;

  // Under mu_: writes the batch or says why not (fail_next_, or numbering past a failure).
  std::optional<store_error> complete(std::vector<event>& batch, const std::vector<call_change>* calls,
                                      const side_changes* side);
  void write(std::vector<event>& batch, const std::vector<call_change>* calls, const side_changes* side);
};

}  // namespace engine
