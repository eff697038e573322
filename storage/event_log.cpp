#include "storage/event_log.hpp"

#include <algorithm>

#include <cstdio>
#include <system_error>

#include <rocksdb/write_batch.h>

#include "engine/call_table.hpp"
#include "engine/codec.hpp"
#include "engine/pushers.hpp"
#include "schemas/digest.hpp"
#include "storage/detail/keys.hpp"
#include "storage/detail/log_state.hpp"
#include "storage/detail/rocks.hpp"

namespace storage {

using detail::log_state;
using detail::slice;
using detail::view;

std::string_view to_string(open_errc e) noexcept {
  switch (e) {
    case open_errc::io_error: return "io_error";
    case open_errc::locked: return "locked";
    case open_errc::not_found: return "not_found";
    case open_errc::unsupported_version: return "unsupported_version";
    case open_errc::corruption: return "corruption";
  }
  return "?";
}

std::string_view to_string(read_errc e) noexcept {
  switch (e) {
    case read_errc::io_error: return "io_error";
    case read_errc::bad_key: return "bad_key";
    case read_errc::undecodable: return "undecodable";
    case read_errc::seq_mismatch: return "seq_mismatch";
  }
  return "?";
}

namespace detail {

log_state::~log_state() { close_db(*this); }

void close_db(log_state& s) {
  if (!s.db) return;
  for (auto*& h : s.cf) {
    if (h) s.db->DestroyColumnFamilyHandle(h);
    h = nullptr;
  }
  s.db->Close().PermitUncheckedError();
  delete s.db;
  s.db = nullptr;
}

rocksdb::Status open_writer_db(log_state& s) {
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  if (!s.budget.cache) s.budget = make_memory_budget(s.options.memory_budget);
  auto opts = db_options(false, s.options.env);
  opts.write_buffer_manager = s.budget.write_buffers;
  opts.info_log = forwarding_logger([&s](std::string_view line) { s.warn(line); });
  auto st = rocksdb::DB::Open(opts, s.options.dir.string(), cf_descriptors(true, s.budget.cache, s.options.compress), &handles, &s.db);
  if (!st.ok()) {
    s.db = nullptr;
    return st;
  }
  adopt_handles(s, handles);
  return st;
}

void adopt_handles(log_state& s, const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  for (std::size_t i = 0; i < handles.size() && i < s.cf.size(); ++i) s.cf[i] = handles[i];
}

void log_state::warn(std::string_view what) const {
  if (options.on_warning)
    options.on_warning(what);
  else
    std::fprintf(stderr, "storage: %.*s\n", static_cast<int>(what.size()), what.data());
}

}  // namespace detail

namespace {

schemas::failure<open_error> open_failure(open_errc code, std::string detail) {
  return schemas::failure{open_error{code, std::move(detail)}};
}

schemas::failure<open_error> open_failure(const rocksdb::Status& s) {
  return open_failure(detail::to_open_errc(s), s.ToString());
}

read_error closed_error() { return read_error{read_errc::io_error, 0, "the log is closed after a failed reopen"}; }

bool events_empty(const log_state& s) {
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator({}, s.cf[detail::cf_events]));
  it->SeekToFirst();
  return !it->Valid();
}

// Refuses a log of another format. A writer stamps a new (empty) log.
schemas::status<open_error> check_format(log_state& s) {
  std::string v;
  auto st = s.db->Get({}, s.cf[detail::cf_meta], slice(detail::format_version_key), &v);
  if (st.ok())
    return v == detail::format_version
               ? schemas::status<open_error>{}
               : open_failure(open_errc::unsupported_version, "log format version " + v + ", this build reads " +
                                                                  std::string(detail::format_version));
  if (!st.IsNotFound()) return open_failure(st);
  if (!events_empty(s)) return open_failure(open_errc::corruption, "events present but no format version in meta");
  if (s.is_reader()) return {};  // a writer is creating it right now
  rocksdb::WriteOptions wo;
  wo.sync = true;
  st = s.db->Put(wo, s.cf[detail::cf_meta], slice(detail::format_version_key), slice(detail::format_version));
  if (!st.ok()) return open_failure(st);
  return {};
}

// The writer continues the chain from the last stored record.
schemas::status<open_error> load_heads(log_state& s) {
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator({}, s.cf[detail::cf_events]));
  it->SeekToLast();
  if (it->Valid()) {
    auto seq = detail::parse_seq_key(view(it->key()));
    if (!seq) return open_failure(open_errc::corruption, "last key of events is not a seq");
    s.last_seq = *seq;
    s.head_hash = schemas::to_hex(schemas::sha256(view(it->value())));
  } else {
    s.last_seq = 0;
    s.head_hash = detail::zero_hash();
  }
  if (!it->status().ok()) return open_failure(it->status());
  return {};
}

// Logs written before the log id existed get it at the writer's next open.
schemas::status<open_error> ensure_log_id(log_state& s) {
  std::string id;
  auto st = s.db->Get({}, s.cf[detail::cf_meta], slice(detail::log_id_key), &id);
  if (st.ok() || !st.IsNotFound()) return st.ok() ? schemas::status<open_error>{} : open_failure(st);
  std::string first;
  st = s.db->Get({}, s.cf[detail::cf_events], slice(detail::seq_key(1)), &first);
  if (st.IsNotFound()) return {};  // empty: written with event 1
  if (!st.ok()) return open_failure(st);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  st = s.db->Put(wo, s.cf[detail::cf_meta], slice(detail::log_id_key),
                 slice(schemas::to_hex(schemas::sha256(first))));
  return st.ok() ? schemas::status<open_error>{} : open_failure(st);
}

}  // namespace

event_log::event_log(std::unique_ptr<detail::log_state> state) : s_(std::move(state)) {}

event_log::~event_log() {
  if (s_->is_reader()) return;
  detail::stop_writer(*s_);
  // A clean close leaves no WAL to replay: the next open (start-up) then reads only the
  // persisted calls, whatever the memtables held (up to max_total_wal_size otherwise).
  if (s_->db && !s_->recovery_needed) {
    // Every batch is answered: the durable mark covers the whole log.
    rocksdb::WriteOptions wo;
    wo.sync = s_->options.sync;
    if (auto st = s_->db->Put(wo, s_->cf[detail::cf_meta], slice(detail::durable_key),
                              slice(detail::seq_key(s_->last_seq.load())));
        !st.ok())
      s_->warn("durable mark at close: " + st.ToString());
    std::vector<rocksdb::ColumnFamilyHandle*> all(s_->cf.begin(), s_->cf.end());
    rocksdb::FlushOptions fo;
    fo.wait = true;
    if (auto st = s_->db->Flush(fo, all); !st.ok()) s_->warn("flush at close: " + st.ToString());
  }
}

schemas::result<std::unique_ptr<event_log>, open_error> event_log::open(const log_options& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return open_failure(open_errc::io_error, options.dir.string() + ": " + ec.message());

  auto s = std::make_unique<log_state>();
  s->options = options;
  s->kind = detail::instance_kind::writer;
  if (auto st = detail::open_writer_db(*s); !st.ok()) return open_failure(st);
  if (auto f = check_format(*s); !f) return schemas::failure{f.error()};
  if (auto l = load_heads(*s); !l) return schemas::failure{l.error()};
  if (auto i = ensure_log_id(*s); !i) return schemas::failure{i.error()};
  detail::start_writer(*s);
  return std::unique_ptr<event_log>(new event_log(std::move(s)));
}

schemas::result<std::unique_ptr<event_log>, open_error> event_log::open_reader(
    const std::filesystem::path& dir, const std::filesystem::path& scratch_dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir / "CURRENT", ec))
    return open_failure(open_errc::not_found, dir.string() + ": no RocksDB log here");
  std::filesystem::create_directories(scratch_dir, ec);

  auto s = std::make_unique<log_state>();
  s->options.dir = dir;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  s->budget = detail::make_memory_budget(s->options.memory_budget);
  auto opts = detail::db_options(true);
  opts.write_buffer_manager = s->budget.write_buffers;
  s->kind = detail::instance_kind::secondary;
  auto st = rocksdb::DB::OpenAsSecondary(opts, dir.string(), scratch_dir.string(), detail::cf_descriptors(false, s->budget.cache),
                                         &handles, &s->db);
  if (!st.ok()) {
    handles.clear();
    s->db = nullptr;
    s->kind = detail::instance_kind::read_only;
    auto ro = rocksdb::DB::OpenForReadOnly(opts, dir.string(), detail::cf_descriptors(false, s->budget.cache), &handles, &s->db);
    if (!ro.ok()) return open_failure(st);  // the secondary's reason is the more telling one
  }
  detail::adopt_handles(*s, handles);
  if (auto f = check_format(*s); !f) return schemas::failure{f.error()};
  auto log = std::unique_ptr<event_log>(new event_log(std::move(s)));
  if (auto c = log->catch_up(); !c) return open_failure(open_errc::io_error, c.error().detail);
  return log;
}

bool event_log::is_reader() const noexcept { return s_->is_reader(); }

std::string event_log::log_id() const {
  detail::read_guard g(*s_);
  if (!g.ready) return {};
  std::string id;
  if (!s_->db->Get({}, s_->cf[detail::cf_meta], slice(detail::log_id_key), &id).ok()) return {};
  return id;
}

namespace detail {

read_guard::read_guard(const log_state& s) : lock(s.db_mu) {
  if (!s.db) {
    ready = schemas::failure{closed_error()};
    return;
  }
  if (s.kind == instance_kind::writer) visible = s.last_seq.load();
  if (s.kind != instance_kind::secondary) return;
  std::lock_guard lk(s.catch_up_mu);
  if (auto st = s.db->TryCatchUpWithPrimary(); !st.ok()) {
    ready = schemas::failure{read_error{read_errc::io_error, 0, "catch up with the writer: " + st.ToString()}};
    return;
  }
  std::string mark;
  if (s.db->Get({}, s.cf[cf_meta], slice(durable_key), &mark).ok())
    if (auto seq = parse_seq_key(mark)) visible = *seq;
}

}  // namespace detail

schemas::status<read_error> event_log::catch_up() const { return detail::read_guard(*s_).ready; }

log_memory event_log::memory() const {
  log_memory m;
  m.budget = s_->options.memory_budget;
  if (s_->budget.cache) {
    m.block_cache = s_->budget.cache->GetUsage();
    m.pinned = s_->budget.cache->GetPinnedUsage();
  }
  std::shared_lock lk(s_->db_mu);
  if (!s_->db) return m;
  std::uint64_t v = 0;
  if (s_->db->GetAggregatedIntProperty(rocksdb::DB::Properties::kSizeAllMemTables, &v)) m.memtables = v;
  if (s_->db->GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimateTableReadersMem, &v)) m.table_readers = v;
  return m;
}

engine::event_seq event_log::last_seq() const {
  if (!s_->is_reader()) return s_->last_seq.load();
  detail::read_guard g(*s_);
  if (!g.ready) return 0;
  std::unique_ptr<rocksdb::Iterator> it(s_->db->NewIterator({}, s_->cf[detail::cf_events]));
  it->SeekToLast();
  if (!it->Valid()) return 0;
  return std::min(detail::parse_seq_key(view(it->key())).value_or(0), g.visible);
}

schemas::result<persisted_state, read_error> event_log::load_persisted() const {
  detail::read_guard g(*s_);
  if (!g.ready) return schemas::failure{g.ready.error()};
  persisted_state out;
  // One iterator: the state seq (key "", first) and the calls are one point in time.
  std::unique_ptr<rocksdb::Iterator> it(s_->db->NewIterator({}, s_->cf[detail::cf_calls]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key = view(it->key());
    if (key == detail::state_seq_key) {
      auto seq = detail::parse_seq_key(view(it->value()));
      if (!seq) return schemas::failure{read_error{read_errc::bad_key, 0, "calls: the state seq is not 8 bytes"}};
      out.seq = *seq;
      continue;
    }
    if (!key.empty() && key.front() == detail::side_state_prefix) {
      if (key.size() > 1 && key[1] == 's') {
        auto st = engine::decode_settings_record(view(it->value()));
        if (!st) return schemas::failure{read_error{read_errc::undecodable, 0, "calls: a number's settings do not decode"}};
        out.settings.push_back(std::move(*st));
        continue;
      }
      auto p = engine::decode_pusher(view(it->value()));
      if (!p) return schemas::failure{read_error{read_errc::undecodable, 0, "calls: a push registration does not decode"}};
      out.pushers.push_back(std::move(*p));
      continue;
    }
    auto c = engine::decode_call(view(it->value()));
    if (!c || c->call_id != key)
      return schemas::failure{read_error{read_errc::undecodable, 0,
                                         "calls: the state of call " + std::string(key) + " does not decode"}};
    out.calls.push_back(std::move(*c));
  }
  if (!it->status().ok()) return schemas::failure{read_error{read_errc::io_error, 0, it->status().ToString()}};
  return out;
}

schemas::status<read_error> event_log::persist_calls(const std::vector<engine::call_change>& calls,
                                                     engine::event_seq seq,
                                                     const engine::side_changes& side) {
  if (s_->is_reader()) return schemas::failure{read_error{read_errc::io_error, 0, "a reader cannot write"}};
  detail::read_guard g(*s_);
  if (!g.ready) return g.ready;
  rocksdb::WriteBatch wb;
  for (const auto& c : calls) {
    if (c.after)
      wb.Put(s_->cf[detail::cf_calls], slice(c.call_id), slice(engine::encode_call(*c.after)));
    else
      wb.Delete(s_->cf[detail::cf_calls], slice(c.call_id));
  }
  detail::write_side(wb, s_->cf[detail::cf_calls], side);
  wb.Put(s_->cf[detail::cf_calls], slice(detail::state_seq_key), slice(detail::seq_key(seq)));
  rocksdb::WriteOptions wo;
  wo.sync = s_->options.sync;
  if (auto st = s_->db->Write(wo, &wb); !st.ok())
    return schemas::failure{read_error{read_errc::io_error, 0, "writing call states: " + st.ToString()}};
  return {};
}

log_anchor event_log::anchor() const {
  detail::read_guard g(*s_);
  if (!g.ready) return {};
  return detail::read_anchor(*s_, {});
}

std::optional<engine::call_state> event_log::load_call(std::string_view call_id) const {
  detail::read_guard g(*s_);
  if (!g.ready || call_id.empty()) return std::nullopt;
  // One point in time for the archived state, the index and the events: a removal that
  // runs meanwhile (archived state written, then anchor, then events deleted) cannot show
  // this read half of each.
  struct release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* snap;
    ~release() {
      if (snap) db->ReleaseSnapshot(snap);
    }
  } snap{s_->db, s_->is_reader() ? nullptr : s_->db->GetSnapshot()};
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.snap;
  auto base = detail::read_archived(*s_, ro, call_id);
  const engine::event_seq after = base ? base->upto : detail::read_anchor(*s_, ro).seq;

  std::string upper = detail::index_prefix(call_id);
  upper.back() = '\x01';
  rocksdb::Slice upper_slice = slice(upper);
  rocksdb::ReadOptions iro = ro;
  iro.iterate_upper_bound = &upper_slice;
  std::vector<engine::event> events;
  std::unique_ptr<rocksdb::Iterator> it(s_->db->NewIterator(iro, s_->cf[detail::cf_by_call]));
  std::string raw;
  for (it->Seek(slice(detail::index_key(call_id, after + 1))); it->Valid(); it->Next()) {
    auto entry = detail::parse_index_key(view(it->key()));
    if (!entry || entry->id != call_id) continue;
    if (entry->seq > g.visible) break;  // written, not yet acknowledged
    if (!s_->db->Get(ro, s_->cf[detail::cf_events], slice(detail::seq_key(entry->seq)), &raw).ok()) continue;
    if (auto ev = engine::decode_event(raw); ev && ev->seq == entry->seq) events.push_back(std::move(*ev));
  }
  if (!it->status().ok()) s_->warn("by_call read: " + it->status().ToString());
  return engine::fold_call(events, base ? std::optional<engine::call_state>(std::move(base->state)) : std::nullopt);
}

std::optional<std::string> event_log::find_start(std::string_view from, std::string_view client_correlator) const {
  detail::read_guard g(*s_);
  if (!g.ready) return std::nullopt;
  std::string id;
  auto st = s_->db->Get({}, s_->cf[detail::cf_by_start], slice(detail::start_key(from, client_correlator)), &id);
  if (!st.ok()) {
    if (!st.IsNotFound()) s_->warn("by_start read: " + st.ToString());
    return std::nullopt;
  }
  return id;
}

schemas::status<read_error> event_log::scan(engine::event_seq from, engine::event_seq to, const scan_fn& fn) const {
  detail::read_guard g(*s_);
  if (!g.ready) return g.ready;
  from = std::max(from, detail::read_anchor(*s_, {}).seq + 1);
  to = std::min(to, g.visible);
  if (from > to) return {};
  rocksdb::ReadOptions ro;
  std::string upper;
  rocksdb::Slice upper_slice;
  if (to != std::numeric_limits<engine::event_seq>::max()) {
    upper = detail::seq_key(to + 1);
    upper_slice = slice(upper);
    ro.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(s_->db->NewIterator(ro, s_->cf[detail::cf_events]));
  for (it->Seek(slice(detail::seq_key(from))); it->Valid(); it->Next()) {
    auto seq = detail::parse_seq_key(view(it->key()));
    if (!seq)
      return schemas::failure{
          read_error{read_errc::bad_key, 0, "events key of " + std::to_string(it->key().size()) + " bytes"}};
    const std::string_view raw = view(it->value());
    auto ev = engine::decode_event(raw);
    if (!ev)
      return schemas::failure{read_error{read_errc::undecodable, *seq,
                                         "event " + std::to_string(*seq) + ": " +
                                             std::string(engine::to_string(ev.error()))}};
    if (ev->seq != *seq)
      return schemas::failure{read_error{read_errc::seq_mismatch, *seq,
                                         "event " + std::to_string(*seq) + " says seq " + std::to_string(ev->seq)}};
    if (!fn(*ev, raw)) return {};
  }
  if (!it->status().ok()) return schemas::failure{read_error{read_errc::io_error, 0, it->status().ToString()}};
  return {};
}

std::optional<engine::event> event_log::get(engine::event_seq seq) const {
  detail::read_guard g(*s_);
  if (!g.ready || seq > g.visible) return std::nullopt;
  std::string raw;
  if (!s_->db->Get({}, s_->cf[detail::cf_events], slice(detail::seq_key(seq)), &raw).ok()) return std::nullopt;
  auto ev = engine::decode_event(raw);
  if (!ev || ev->seq != seq) return std::nullopt;
  return std::move(ev).value();
}

namespace {

// Entries of `id` with seq in [from, to]. Bounded to the keys that start with
// id + '\0'; keys of a longer id that itself starts with id + '\0' are skipped.
std::vector<engine::event_seq> index_seqs(const log_state& s, detail::cf_id family, std::string_view id,
                                          engine::event_seq from, engine::event_seq to) {
  std::vector<engine::event_seq> out;
  if (id.empty() || from > to) return out;
  detail::read_guard g(s);
  if (!g.ready) {
    s.warn("index read: " + g.ready.error().detail);
    return out;
  }
  from = std::max(from, detail::read_anchor(s, {}).seq + 1);  // entries an interrupted removal left
  to = std::min(to, g.visible);
  if (from > to) return out;
  std::string upper = detail::index_prefix(id);
  upper.back() = '\x01';
  rocksdb::Slice upper_slice = slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(ro, s.cf[family]));
  for (it->Seek(slice(detail::index_key(id, from))); it->Valid(); it->Next()) {
    auto entry = detail::parse_index_key(view(it->key()));
    if (!entry || entry->id != id) continue;
    if (entry->seq > to) break;
    out.push_back(entry->seq);
  }
  if (!it->status().ok()) s.warn("index read: " + it->status().ToString());
  return out;
}

constexpr auto all_seqs = std::numeric_limits<engine::event_seq>::max();

}  // namespace

std::vector<engine::event_seq> event_log::seqs_by_call(std::string_view call_id) const {
  return index_seqs(*s_, detail::cf_by_call, call_id, 0, all_seqs);
}

std::vector<engine::event_seq> event_log::party_events(const std::vector<std::string>& msisdns,
                                                       engine::event_seq after, engine::event_seq upto,
                                                       std::size_t limit) const {
  std::vector<engine::event_seq> out;
  if (upto <= after) return out;
  for (const auto& m : msisdns) {
    auto seqs = seqs_by_msisdn(m, after + 1, upto);
    out.insert(out.end(), seqs.begin(), seqs.end());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.size() > limit + 1) out.resize(limit + 1);
  return out;
}

std::vector<engine::event_seq> event_log::seqs_by_msisdn(std::string_view msisdn, engine::event_seq from,
                                                         engine::event_seq to) const {
  return index_seqs(*s_, detail::cf_by_msisdn, msisdn, from, to);
}

std::vector<engine::event_seq> event_log::seqs_by_txn(std::string_view txn_id) const {
  return index_seqs(*s_, detail::cf_by_txn, txn_id, 0, all_seqs);
}

}  // namespace storage
