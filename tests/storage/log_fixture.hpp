#pragma once
// Shared by the storage tests: a temporary folder per test, events to append, a
// blocking append, and raw RocksDB access for tampering with a closed log.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/common/wait_until.hpp"
#include <rocksdb/db.h>

#include "engine/event_store.hpp"
#include "engine/types.hpp"
#include "storage/detail/keys.hpp"
#include "storage/detail/rocks.hpp"
#include "storage/event_log.hpp"

namespace storage_test {

// A fresh folder under the system temp dir, removed with everything in it.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("yna-storage-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::filesystem::path log() const { return path / "log"; }
};

inline engine::event make_event(engine::event_seq seq, std::string call_id, std::string msisdn, std::string txn,
                                engine::action act = engine::action::ringing) {
  engine::event e;
  e.seq = seq;
  e.time = 1764200000000 + static_cast<engine::epoch_ms>(seq) * 10;
  e.act = act;
  e.call_id = std::move(call_id);
  e.msisdn = std::move(msisdn);
  e.actor_role = engine::role::mt;
  e.sub = "user-" + e.msisdn;
  e.device_id = "phone";
  e.txn_id = std::move(txn);
  e.method = "POST";
  e.path = "/" + std::string(engine::to_string(act)) + "/" + e.call_id;
  e.status_before = engine::call_status::in_progress;
  e.status_after = engine::call_status::ringing;
  return e;
}

inline engine::event make_start(engine::event_seq seq, std::string call_id, std::string from, std::string to,
                                std::string txn) {
  engine::event e = make_event(seq, std::move(call_id), from, std::move(txn), engine::action::start);
  e.actor_role = engine::role::mo;
  e.method = "POST";
  e.path = "/start";
  e.from = std::move(from);
  e.to = std::move(to);
  e.sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
  e.client_correlator = "corr-" + std::to_string(seq);
  e.status_before.reset();
  e.status_after = engine::call_status::initial;
  return e;
}

// `n` plain events from seq `first`, alternating between two calls.
inline std::vector<engine::event> make_batch(engine::event_seq first, std::size_t n) {
  std::vector<engine::event> b;
  for (std::size_t i = 0; i < n; ++i) {
    const auto seq = first + i;
    b.push_back(make_event(seq, seq % 2 ? "CALLODD" : "CALLEVEN", "1425000000" + std::to_string(seq % 10),
                           "txn-" + std::to_string(seq)));
  }
  return b;
}

using append_status = schemas::status<engine::store_error>;

using test_support::wait_until;

// Appends and waits for `done`; fails the test if done does not come in 10 s. `calls`:
// the call states written with the batch (null: events only).
inline append_status append_wait(storage::event_log& log, std::vector<engine::event>& batch,
                                 const std::vector<engine::call_change>* calls = nullptr,
                                 const engine::side_changes* side = nullptr) {
  auto p = std::make_shared<std::promise<append_status>>();
  auto f = p->get_future();
  log.append_async(batch, calls, side, [p](append_status s) { p->set_value(s); });
  REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  return f.get();
}

// Warnings go to `warnings` when given, else nowhere (failures are what these tests
// provoke). `env`: RocksDB's Env, for fault injection.
inline std::unique_ptr<storage::event_log> open_log(const std::filesystem::path& dir, bool sync = false,
                                                    rocksdb::Env* env = nullptr,
                                                    std::shared_ptr<std::vector<std::string>> warnings = {}) {
  storage::log_options o;
  o.dir = dir;
  o.sync = sync;
  o.env = env;
  o.on_warning = [warnings](std::string_view w) {
    if (warnings) warnings->emplace_back(w);
  };
  auto r = storage::event_log::open(o);
  REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().detail));
  return std::move(r).value();
}

// Raw RocksDB on a closed log, with every column family, for tampering.
struct raw_db {
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  explicit raw_db(const std::filesystem::path& dir) {
    auto st = rocksdb::DB::Open(storage::detail::db_options(false), dir.string(), storage::detail::cf_descriptors(false, rocksdb::NewLRUCache(8 << 20)),
                                &handles, &db);
    REQUIRE_MESSAGE(st.ok(), st.ToString());
  }
  ~raw_db() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  rocksdb::ColumnFamilyHandle* cf(storage::detail::cf_id id) const { return handles[id]; }
  std::string get(storage::detail::cf_id id, const std::string& key) const {
    std::string v;
    auto st = db->Get({}, cf(id), key, &v);
    REQUIRE_MESSAGE(st.ok(), st.ToString());
    return v;
  }
  void put(storage::detail::cf_id id, const std::string& key, const std::string& value) {
    REQUIRE(db->Put({}, cf(id), key, value).ok());
  }
  void del(storage::detail::cf_id id, const std::string& key) { REQUIRE(db->Delete({}, cf(id), key).ok()); }
  std::vector<engine::event_seq> seq_keys(storage::detail::cf_id id) const {
    std::vector<engine::event_seq> out;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, cf(id)));
    for (it->SeekToFirst(); it->Valid(); it->Next())
      out.push_back(storage::detail::parse_seq_key(it->key().ToStringView()).value_or(0));
    return out;
  }
};

}  // namespace storage_test
