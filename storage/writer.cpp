// The writer thread: the only code that writes to a writer instance. Appends run
// one at a time, in the order they were handed over, so the chain
// head and the expected next seq need no lock. Each batch is written without a sync and
// handed to the syncer thread, which syncs the WAL and answers the batches in order
// (log_state.hpp: the sync pipeline).
#include <algorithm>
#include <chrono>
#include <future>
#include <shared_mutex>
#include <string>

#include <rocksdb/perf_level.h>
#include <rocksdb/write_batch.h>

#include "engine/codec.hpp"
#include "engine/log.hpp"
#include "schemas/digest.hpp"
#include "storage/detail/keys.hpp"
#include "engine/pushers.hpp"
#include "storage/detail/log_state.hpp"
#include "storage/event_log.hpp"

namespace storage {
namespace detail {
namespace {

std::optional<std::string> check_numbering(const log_state& s, const std::vector<engine::event>& batch) {
  const engine::event_seq next = s.written_seq + 1;
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (batch[i].seq != next + i)
      return "append refused: event " + std::to_string(i) + " of the batch has seq " + std::to_string(batch[i].seq) +
             ", expected " + std::to_string(next + i);
  return std::nullopt;
}

// The batch is durable: readers may see it, and a failure later rolls back to it.
void acknowledge(log_state& s, const unsynced_batch& b) {
  if (b.last == 0) return;
  {
    std::lock_guard lk(s.sync_mu);
    s.synced_hash = b.head_hash;
  }
  s.last_seq.store(b.last);
}

// Answers one batch: the observer's figures, then `done`. On the syncer thread, or on the
// writer thread when there is no syncer; in order.
void answer(unsynced_batch& b, schemas::status<engine::store_error> result) {
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - b.started;
  if (b.observer) b.observer(b.events, took.count(), result.has_value());
  b.done(result);
}

// Hands a batch to the sync pipeline (or answers it at once when writes are not synced).
void hand_over(log_state& s, unsynced_batch&& b) {
  if (!s.options.sync) {
    if (b.failed) return answer(b, schemas::failure{*b.failed});
    acknowledge(s, b);
    return answer(b, {});
  }
  {
    std::lock_guard lk(s.sync_mu);
    s.unsynced.push_back(std::move(b));
  }
  s.sync_cv.notify_all();
}

// Writer thread: waits until the syncer has answered everything handed to it.
void wait_syncer_idle(log_state& s) {
  std::unique_lock lk(s.sync_mu);
  s.sync_cv.wait(lk, [&] { return s.unsynced.empty() && !s.syncing; });
}

void run_append(log_state& s, append_job& j, std::optional<engine::store_error> injected,
                const sync_observer& observer) {
  auto& batch = *j.batch;
  unsynced_batch b{std::move(j.done), 0, {}, std::nullopt, batch.size(), std::chrono::steady_clock::now(), observer};
  auto fail = [&](engine::store_error e) {
    b.failed = e;
    s.discarding = true;  // what was decided after this batch is numbered past it
    hand_over(s, std::move(b));
  };

  if (injected) return fail(*injected);
  if (batch.empty()) return hand_over(s, std::move(b));
  if (!ready_to_write(s)) return fail(s.failed_with);
  if (auto bad = check_numbering(s, batch)) {
    if (s.discarding) return fail(s.failed_with);  // decided before the reactor heard of the failure
    s.warn(*bad);
    return fail(engine::store_error::corruption);
  }
  s.discarding = false;

  rocksdb::WriteBatch& wb = s.write_buffer;
  wb.Clear();
  std::string& key = s.key_buffer;
  std::string prev = s.head_hash;
  for (auto& e : batch) {
    e.prev_hash = prev;
    const std::string raw = engine::encode_event(e);
    prev = schemas::to_hex(schemas::sha256(raw));
    if (e.seq == 1) wb.Put(s.cf[cf_meta], slice(log_id_key), slice(prev));  // the log's name
    const std::string seq = seq_key(e.seq);
    wb.Put(s.cf[cf_events], slice(seq), slice(raw));
    const index_ids ids = ids_of(e, s.scratch_id);
    for (int k = 0; k < index_kind_count; ++k)
      for (std::string_view id : ids.of[k]) {
        assign_index_key(key, id, seq);  // no string per entry
        wb.Put(s.cf[index_cf(static_cast<index_kind>(k))], slice(key), rocksdb::Slice());
      }
    if (auto sk = start_key_of(e)) wb.Put(s.cf[cf_by_start], slice(*sk), slice(e.call_id));
  }
  // The push registrations and settings the batch changed (contract §13, §10), and the state of the calls,
  // in the same atomic write (contract §9).
  if (j.side) write_side(wb, s.cf[cf_calls], *j.side);
  if (j.calls) {
    for (const auto& c : *j.calls) {
      if (c.after)
        wb.Put(s.cf[cf_calls], slice(c.call_id), slice(engine::encode_call(*c.after)));
      else
        wb.Delete(s.cf[cf_calls], slice(c.call_id));
    }
    wb.Put(s.cf[cf_calls], slice(state_seq_key), slice(seq_key(batch.back().seq)));
  }
  // How far a reader beside this engine may read (durable_key).
  wb.Put(s.cf[cf_meta], slice(durable_key), slice(seq_key(s.last_seq.load())));

  // Without a sync: the syncer syncs it (and whatever was written meanwhile) and only
  // then is it acknowledged. Without --sync (tests, benchmarks) it is acknowledged now.
  rocksdb::WriteOptions wo;
  wo.sync = false;
  const auto st = s.db->Write(wo, &wb);
  if (st.ok()) {
    s.head_hash = prev;
    s.written_seq = batch.back().seq;
    b.last = batch.back().seq;
    b.head_hash = std::move(prev);
    return hand_over(s, std::move(b));
  }
  s.recovery_needed = true;
  s.failed_with = to_store_error(st);
  s.warn("append of " + std::to_string(batch.size()) + " events from seq " + std::to_string(batch.front().seq) +
         " failed: " + st.ToString());
  fail(to_store_error(st));
}

// Writer thread, after a sync: when nothing else waits, records how far the log is
// acknowledged (durable_key), so a reader beside an idle engine sees its last batch.
void mark_durable(log_state& s) {
  const engine::event_seq acked = s.last_seq.load();
  if (s.recovery_needed || !s.db || acked != s.written_seq) return;  // a batch follows and carries it
  rocksdb::WriteBatch wb;
  wb.Put(s.cf[cf_meta], slice(durable_key), slice(seq_key(acked)));
  rocksdb::WriteOptions wo;
  wo.sync = false;
  if (auto st = s.db->Write(wo, &wb); !st.ok()) {
    s.recovery_needed = true;
    s.failed_with = to_store_error(st);
    s.discarding = true;
    s.warn("writing the durable mark failed: " + st.ToString());
  }
}

void writer_loop(log_state& s) {
  for (;;) {
    std::optional<job> next;
    sync_observer observer;
    std::optional<engine::store_error> injected;
    {
      std::unique_lock lk(s.mu);
      s.cv.wait(lk, [&] { return s.stopping || !s.queue.empty(); });
      if (s.queue.empty()) return;  // stopping, and everything handed over is done
      next = std::move(s.queue.front());
      s.queue.pop_front();
      if (!next->task) {
        observer = s.observer;
        injected = std::exchange(s.fail_next, std::nullopt);
      }
    }
    if (next->task) {
      next->task();
      continue;
    }
    run_append(s, *next, injected, observer);
  }
}

// The syncer thread: syncs the WAL for the batches written so far and answers them, in
// order. Every batch it takes was written before its sync starts.
void syncer_loop(log_state& s) {
  for (;;) {
    std::deque<unsynced_batch> take;
    std::optional<engine::store_error> failed;
    {
      std::unique_lock lk(s.sync_mu);
      s.sync_cv.wait(lk, [&] { return s.sync_stopping || !s.unsynced.empty(); });
      if (s.unsynced.empty()) return;  // stopping, and every batch is answered
      take.swap(s.unsynced);
      s.syncing = true;
      failed = s.sync_failed;  // a failed sync not yet rolled back: nothing more is synced on this WAL
    }
    const bool written = std::any_of(take.begin(), take.end(), [](const unsynced_batch& b) { return !b.failed; });
    if (!failed && written) {
      rocksdb::Status st;
      {
        std::shared_lock g(s.db_mu);  // the writer reopens only once this thread is idle
        st = s.db ? s.db->SyncWAL() : rocksdb::Status::IOError("the log is closed");
      }
      if (!st.ok()) {
        failed = to_store_error(st);
        s.warn("WAL sync failed: " + st.ToString() + "; failing every batch not yet acknowledged");
      }
    }
    if (!failed) {
      for (const auto& b : take)
        if (!b.failed) acknowledge(s, b);
      // The durable mark, before anyone hears of the batches: a reader beside this engine
      // (yna-tool) sees what a client was told is stored.
      std::lock_guard lk(s.mu);
      if (s.queue.empty() && !s.stopping) {
        s.queue.push_back(append_job{nullptr, nullptr, nullptr, {}, [&s] { mark_durable(s); }});
        s.cv.notify_one();
      }
    }
    if (failed) {
      // Before anyone hears of the failure: the next append (renumbered from the failed
      // batch) must find the writer rolling back, not a chain that still runs past it.
      std::lock_guard lk(s.sync_mu);
      if (!s.sync_failed) s.sync_failed = failed;
    }
    for (auto& b : take) {
      if (b.failed)
        answer(b, schemas::failure{*b.failed});
      else if (failed)
        answer(b, schemas::failure{*failed});
      else
        answer(b, {});
    }
    {
      std::lock_guard lk(s.sync_mu);
      s.syncing = false;
    }
    s.sync_cv.notify_all();
  }
}

}  // namespace

bool ready_to_write(log_state& s) {
  bool sync_failed;
  {
    std::lock_guard lk(s.sync_mu);
    sync_failed = s.sync_failed.has_value();
  }
  if (sync_failed || s.recovery_needed) {
    // Every batch handed on is answered first (acknowledged, or failed with the sync);
    // then the writer continues from the last acknowledged one.
    wait_syncer_idle(s);
    std::lock_guard lk(s.sync_mu);
    if (s.sync_failed) {
      s.failed_with = *s.sync_failed;
      s.sync_failed.reset();
      s.recovery_needed = true;
      s.discarding = true;
    }
    s.written_seq = s.last_seq.load();
    s.head_hash = s.synced_hash;
  }
  // Never write through a RocksDB that has not recovered from the last failure: its WAL
  // writer has seen an error, and writing to it again is undefined (RocksDB asserts).
  if (s.recovery_needed) recover(s);
  return !s.recovery_needed && s.db;
}

void start_writer(log_state& s) {
  s.written_seq = s.last_seq.load();
  s.synced_hash = s.head_hash;
  s.writer = std::thread([&s] {
    engine::log::name_this_thread("yna-log-writer");
    // No per-operation perf counting (thread-local work on every write; nothing reads it).
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
    writer_loop(s);
  });
  if (s.options.sync)
    s.syncer = std::thread([&s] {
      engine::log::name_this_thread("yna-log-sync");
      rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
      syncer_loop(s);
    });
}

// Writer thread: a dispatcher's cursor (contract §13), queued like an append so that this
// thread stays the only one that writes (a write from another thread could reach a WAL
// file whose sync failed, before the reopen). Not synced: the next batch's sync covers it.
void write_cursor(log_state& s, const std::string& key, std::optional<engine::event_seq> seq) {
  if (!ready_to_write(s)) return;  // the log cannot be written now: the cursor stays behind
  rocksdb::WriteOptions wo;
  wo.sync = false;
  const auto st = seq ? s.db->Put(wo, s.cf[cf_meta], slice(key), slice(seq_key(*seq)))
                      : s.db->Delete(wo, s.cf[cf_meta], slice(key));
  if (!st.ok()) {
    s.recovery_needed = true;
    s.failed_with = to_store_error(st);
    s.discarding = true;
    s.warn("writing the cursor " + key + " failed: " + st.ToString());
  }
}

bool post_to_writer(log_state& s, std::function<void()> fn) {
  {
    std::lock_guard lk(s.mu);
    if (s.stopping) return false;
    s.queue.push_back(append_job{nullptr, nullptr, nullptr, {}, std::move(fn)});
  }
  s.cv.notify_one();
  return true;
}

bool run_on_writer(log_state& s, const std::function<void()>& fn) {
  std::promise<void> ran;
  auto done = ran.get_future();
  {
    std::lock_guard lk(s.mu);
    if (s.stopping) return false;
    s.queue.push_back(append_job{nullptr, nullptr, nullptr, {}, [&] {
                                   fn();
                                   ran.set_value();
                                 }});
  }
  s.cv.notify_one();
  done.wait();
  return true;
}

void stop_writer(log_state& s) {
  {
    std::lock_guard lk(s.mu);
    s.stopping = true;
  }
  s.cv.notify_one();
  if (s.writer.joinable()) s.writer.join();
  // Everything written is synced and answered before the syncer stops.
  {
    std::lock_guard lk(s.sync_mu);
    s.sync_stopping = true;
  }
  s.sync_cv.notify_all();
  if (s.syncer.joinable()) s.syncer.join();
}

}  // namespace detail

void event_log::append_async(std::vector<engine::event>& batch, const std::vector<engine::call_change>* calls,
                             const engine::side_changes* side, engine::append_done done) {
  {
    std::lock_guard lk(s_->mu);
    if (!s_->is_reader() && !s_->stopping) {
      s_->queue.emplace_back(detail::append_job{&batch, calls, side, std::move(done)});
      s_->cv.notify_one();
      return;
    }
  }
  done(schemas::failure{engine::store_error::closed});
}

void event_log::fail_next_append(engine::store_error e) {
  std::lock_guard lk(s_->mu);
  s_->fail_next = e;
}

void event_log::set_sync_observer(sync_observer observer) {
  std::lock_guard lk(s_->mu);
  s_->observer = std::move(observer);
}

}  // namespace storage
