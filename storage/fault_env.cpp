#include "storage/fault_env.hpp"

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <chrono>
#include <thread>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

namespace storage {

namespace {

constexpr std::array<std::string_view, 4> fault_names{"none", "append_no_space", "append_io_error", "sync_io_error"};

}  // namespace

std::string_view to_string(wal_fault f) noexcept { return fault_names[static_cast<std::size_t>(f)]; }

std::optional<wal_fault> parse_wal_fault(std::string_view s) noexcept {
  for (std::size_t i = 0; i < fault_names.size(); ++i)
    if (fault_names[i] == s) return static_cast<wal_fault>(i);
  return std::nullopt;
}

// What is armed, and how many more times it fires (0: until disarmed).
struct fault_env::state {
  std::mutex mu;
  wal_fault fault = wal_fault::none;
  std::uint32_t remaining = 0;
  std::atomic<std::uint64_t> injected{0};
  std::atomic<std::uint32_t> sync_delay_ms{0};
  std::atomic<std::uint64_t> syncs{0};
  std::atomic<std::uint64_t> appends{0};
  std::condition_variable released;  // under mu
  bool holding = false;               // under mu

  void delay_sync() {
    syncs.fetch_add(1);
    {
      std::unique_lock lk(mu);
      released.wait(lk, [&] { return !holding; });
    }
    if (const auto ms = sync_delay_ms.load(std::memory_order_relaxed))
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }

  // True when an operation of kind `f` must fail now (and counts it).
  bool take(wal_fault f) {
    std::lock_guard lk(mu);
    if (fault != f) return false;
    if (remaining > 0 && --remaining == 0) fault = wal_fault::none;
    injected.fetch_add(1);
    return true;
  }
};

namespace {

class wal_file final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  wal_file(std::unique_ptr<rocksdb::FSWritableFile> f, std::shared_ptr<fault_env::state> s)
      : FSWritableFileOwnerWrapper(std::move(f)), s_(std::move(s)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* d) override {
    if (auto e = append_error(); !e.ok()) return e;
    s_->appends.fetch_add(1);
    return FSWritableFileOwnerWrapper::Append(data, o, d);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& v, rocksdb::IODebugContext* d) override {
    if (auto e = append_error(); !e.ok()) return e;
    s_->appends.fetch_add(1);
    return FSWritableFileOwnerWrapper::Append(data, o, v, d);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    s_->delay_sync();
    if (s_->take(wal_fault::sync_io_error)) return rocksdb::IOStatus::IOError("injected EIO on WAL sync");
    return FSWritableFileOwnerWrapper::Sync(o, d);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    s_->delay_sync();
    if (s_->take(wal_fault::sync_io_error)) return rocksdb::IOStatus::IOError("injected EIO on WAL fsync");
    return FSWritableFileOwnerWrapper::Fsync(o, d);
  }

 private:
  rocksdb::IOStatus append_error() const {
    if (s_->take(wal_fault::append_no_space)) return rocksdb::IOStatus::NoSpace("injected ENOSPC on WAL append");
    if (s_->take(wal_fault::append_io_error)) return rocksdb::IOStatus::IOError("injected EIO on WAL append");
    return rocksdb::IOStatus::OK();
  }
  std::shared_ptr<fault_env::state> s_;
};

class faulty_fs final : public rocksdb::FileSystemWrapper {
 public:
  explicit faulty_fs(std::shared_ptr<fault_env::state> s)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), s_(std::move(s)) {}
  const char* Name() const override { return "yna_faulty_fs"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r, rocksdb::IODebugContext* d) override {
    return wrap(f, target()->NewWritableFile(f, o, r, d), r);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* d) override {
    return wrap(f, target()->ReuseWritableFile(f, old, o, r, d), r);
  }

 private:
  rocksdb::IOStatus wrap(const std::string& name, rocksdb::IOStatus st, std::unique_ptr<rocksdb::FSWritableFile>* r) {
    if (st.ok() && name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0)
      *r = std::make_unique<wal_file>(std::move(*r), s_);
    return st;
  }
  std::shared_ptr<fault_env::state> s_;
};

}  // namespace

fault_env::fault_env()
    : state_(std::make_shared<state>()), env_(rocksdb::NewCompositeEnv(std::make_shared<faulty_fs>(state_))) {}

fault_env::~fault_env() = default;

rocksdb::Env* fault_env::env() const noexcept { return env_.get(); }

void fault_env::arm(wal_fault f, std::uint32_t count) {
  std::lock_guard lk(state_->mu);
  state_->fault = f;
  state_->remaining = f == wal_fault::none ? 0 : count;
}

void fault_env::set_sync_delay_ms(std::uint32_t ms) { state_->sync_delay_ms.store(ms); }

std::uint32_t fault_env::sync_delay_ms() const noexcept { return state_->sync_delay_ms.load(); }

std::uint64_t fault_env::injected() const noexcept { return state_->injected.load(); }
std::uint64_t fault_env::wal_syncs() const noexcept { return state_->syncs.load(); }
std::uint64_t fault_env::wal_appends() const noexcept { return state_->appends.load(); }

void fault_env::hold_syncs(bool hold) {
  {
    std::lock_guard lk(state_->mu);
    state_->holding = hold;
  }
  state_->released.notify_all();
}

}  // namespace storage
