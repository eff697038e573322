#pragma once
// A RocksDB Env whose WAL files fail on demand: the fault seam for the storage
// recovery tests (disk full, I/O errors), in the spirit of RocksDB's own
// FaultInjectionTestFS. Only files ending in ".log" (the WAL) are affected.
#include <atomic>
#include <memory>
#include <string>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

namespace storage_test {

enum class wal_fault { none, append_no_space, append_io_error, sync_io_error };

class faulty_fs final : public rocksdb::FileSystemWrapper {
 public:
  explicit faulty_fs(std::shared_ptr<std::atomic<wal_fault>> fault)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), fault_(std::move(fault)) {}
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
  class wal_file final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    wal_file(std::unique_ptr<rocksdb::FSWritableFile> f, std::shared_ptr<std::atomic<wal_fault>> fault)
        : FSWritableFileOwnerWrapper(std::move(f)), fault_(std::move(fault)) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* d) override {
      if (auto e = append_error(); !e.ok()) return e;
      return FSWritableFileOwnerWrapper::Append(data, o, d);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v, rocksdb::IODebugContext* d) override {
      if (auto e = append_error(); !e.ok()) return e;
      return FSWritableFileOwnerWrapper::Append(data, o, v, d);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
      if (*fault_ == wal_fault::sync_io_error) return rocksdb::IOStatus::IOError("injected EIO on WAL sync");
      return FSWritableFileOwnerWrapper::Sync(o, d);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
      if (*fault_ == wal_fault::sync_io_error) return rocksdb::IOStatus::IOError("injected EIO on WAL fsync");
      return FSWritableFileOwnerWrapper::Fsync(o, d);
    }

   private:
    rocksdb::IOStatus append_error() const {
      switch (fault_->load()) {
        case wal_fault::append_no_space: return rocksdb::IOStatus::NoSpace("injected ENOSPC on WAL append");
        case wal_fault::append_io_error: return rocksdb::IOStatus::IOError("injected EIO on WAL append");
        default: return rocksdb::IOStatus::OK();
      }
    }
    std::shared_ptr<std::atomic<wal_fault>> fault_;
  };

  rocksdb::IOStatus wrap(const std::string& name, rocksdb::IOStatus s, std::unique_ptr<rocksdb::FSWritableFile>* r) {
    if (s.ok() && name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0)
      *r = std::make_unique<wal_file>(std::move(*r), fault_);
    return s;
  }
  std::shared_ptr<std::atomic<wal_fault>> fault_;
};

// The Env to pass as log_options::env, and the switch that arms it.
struct faulty_env {
  std::shared_ptr<std::atomic<wal_fault>> fault = std::make_shared<std::atomic<wal_fault>>(wal_fault::none);
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(std::make_shared<faulty_fs>(fault));
  void arm(wal_fault f) { fault->store(f); }
};

}  // namespace storage_test
