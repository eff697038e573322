// The writer thread: the only code that writes to a writer instance. Appends run
// one at a time, in the order they were handed over, so the chain
// head and the expected next seq need no lock.
#include <algorithm>
#include <chrono>
#include <future>
#include <string>

#include <rocksdb/perf_level.h>
#include <rocksdb/write_batch.h>

#include "engine/codec.hpp"
#include "engine/log.hpp"
#include "schemas/digest.hpp"
#include "storage/detail/keys.hpp"
#include "storage/detail/log_state.hpp"
#include "storage/event_log.hpp"

namespace storage {
namespace detail {
namespace {

std::optional<std::string> check_numbering(const log_state& s, const std::vector<engine::event>& batch) {
  const engine::event_seq next = s.last_seq.load() + 1;
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (batch[i].seq != next + i)
      return "append refused: event " + std::to_string(i) + " of the batch has seq " + std::to_string(batch[i].seq) +
             ", expected " + std::to_string(next + i);
  return std::nullopt;
}

void run_append(log_state& s, append_job& j, std::optional<engine::store_error> injected,
                const sync_observer& observer) {
  auto& batch = *j.batch;
  const auto t0 = std::chrono::steady_clock::now();
  auto finish = [&](schemas::status<engine::store_error> result) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
    if (observer) observer(batch.size(), took.count(), result.has_value());
    j.done(result);
  };

  if (injected) return finish(schemas::failure{*injected});
  if (batch.empty()) return finish({});
  if (auto bad = check_numbering(s, batch)) {
    s.warn(*bad);
    return finish(schemas::failure{engine::store_error::corruption});
  }
  // Never write through a RocksDB that has not recovered from the last failure: its WAL
  // writer has seen an error, and writing to it again is undefined (RocksDB asserts).
  if (s.recovery_needed) recover(s);
  if (s.recovery_needed || !s.db) return finish(schemas::failure{s.failed_with});

  rocksdb::WriteBatch wb;
  std::string prev = s.head_hash;
  for (auto& e : batch) {
    e.prev_hash = prev;
    const std::string raw = engine::encode_event(e);
    prev = schemas::to_hex(schemas::sha256(raw));
    if (e.seq == 1) wb.Put(s.cf[cf_meta], slice(log_id_key), slice(prev));  // the log's name
    wb.Put(s.cf[cf_events], slice(seq_key(e.seq)), slice(raw));
    const index_ids ids = ids_of(e);
    for (int k = 0; k < index_kind_count; ++k)
      for (std::string_view id : ids.of[k])
        wb.Put(s.cf[index_cf(static_cast<index_kind>(k))], slice(index_key(id, e.seq)), rocksdb::Slice());
    if (auto sk = start_key_of(e)) wb.Put(s.cf[cf_by_start], slice(*sk), slice(e.call_id));
  }
  // The state of the calls the batch changed, in the same atomic write (contract §9).
  if (j.calls) {
    for (const auto& c : *j.calls) {
      if (c.after)
        wb.Put(s.cf[cf_calls], slice(c.call_id), slice(engine::encode_call(*c.after)));
      else
        wb.Delete(s.cf[cf_calls], slice(c.call_id));
    }
    wb.Put(s.cf[cf_calls], slice(state_seq_key), slice(seq_key(batch.back().seq)));
  }

  rocksdb::WriteOptions wo;
  wo.sync = s.options.sync;
  const auto st = s.db->Write(wo, &wb);
  if (st.ok()) {
    s.head_hash = std::move(prev);
    s.last_seq.store(batch.back().seq);
    return finish({});
  }
  s.recovery_needed = true;
  s.failed_with = to_store_error(st);
  s.warn("append of " + std::to_string(batch.size()) + " events from seq " + std::to_string(batch.front().seq) +
         " failed: " + st.ToString());
  finish(schemas::failure{to_store_error(st)});
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

}  // namespace

void start_writer(log_state& s) {
  s.writer = std::thread([&s] {
    engine::log::name_this_thread("yna-log-writer");
    // No per-operation perf counting (thread-local work on every write; nothing reads it).
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
    writer_loop(s);
  });
}

bool run_on_writer(log_state& s, const std::function<void()>& fn) {
  std::promise<void> ran;
  auto done = ran.get_future();
  {
    std::lock_guard lk(s.mu);
    if (s.stopping) return false;
    s.queue.push_back(append_job{nullptr, nullptr, {}, [&] {
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
}

}  // namespace detail

void event_log::append_async(std::vector<engine::event>& batch, const std::vector<engine::call_change>* calls,
                             engine::append_done done) {
  {
    std::lock_guard lk(s_->mu);
    if (!s_->is_reader() && !s_->stopping) {
      s_->queue.emplace_back(detail::append_job{&batch, calls, std::move(done)});
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
