#include "tests/integration/tool_support.hpp"

#include <rocksdb/db.h>
#include <simdjson.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace integration::tool {

namespace fs = std::filesystem;

tool_result run(const engine_process& eng, const std::string& args) {
  return run_in(eng.data_dir(), eng.root(), args);
}

tool_result run_in(const fs::path& data_dir, const fs::path& scratch, const std::string& args) {
  const auto tool = tool_path();
  REQUIRE_MESSAGE(tool.has_value(), "yna-tool is not built (set YNA_TOOL)");
  static int n = 0;
  const fs::path err = scratch / ("tool-stderr-" + std::to_string(++n) + ".txt");
  const std::string cmd = shell_quote(tool->string()) + " --data-dir " + shell_quote(data_dir.string()) + " " +
                          args + " 2>" + shell_quote(err.string());
  const run_result r = run_command(cmd);
  tool_result out{r.exit_code, r.out, {}};
  std::ifstream in(err);
  std::ostringstream ss;
  ss << in.rdbuf();
  out.err = ss.str();
  return out;
}

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string new_guid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string s = "xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx";
  for (char& c : s)
    if (c == 'x') c = hex[rng() & 15];
  return s;
}

std::optional<bool> json_bool(std::string_view body, std::string_view pointer) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  bool v = false;
  if (p.parse(body.data(), body.size()).get(doc) || doc.at_pointer(pointer).get_bool().get(v)) return std::nullopt;
  return v;
}

std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    if (end > pos) out.emplace_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

step caller::send(const std::string& method, const std::string& target, const std::string& body, const party& who,
                  header_list extra) {
  step s;
  s.txn = new_guid();
  extra.emplace_back("x-transaction-id", s.txn);
  s.before_ms = now_ms();
  const response r = http_.request(method, target, body, who.auth(std::move(extra)));
  s.after_ms = now_ms();
  s.status = r.status;
  s.body = r.body;
  steps.push_back(s);
  return s;
}

std::string caller::start(const party& mo, const party& mt, const std::string& sdp_text,
                          std::optional<std::string> correlator) {
  const step s = send("POST", "/start", start_body(mo.number, mt.number, sdp_text, std::move(correlator)), mo, {});
  return s.status == 200 ? json_str(s.body, "/callId").value_or("") : "";
}

step caller::act(const std::string& verb, const std::string& id, const party& who, std::optional<std::string> sdp_text) {
  return send("POST", "/" + verb + "/" + id, sdp_text ? sdp_body(*sdp_text) : "{}", who, {});
}

step caller::end(const std::string& id, const party& who, std::optional<std::string> reason) {
  header_list h;
  if (reason) h.emplace_back("reason", *reason);
  return send("DELETE", "/end/" + id, "", who, std::move(h));
}

// ---------------------------------------------------------------------------- raw_db

struct raw_db::impl {
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::vector<std::string> names;

  rocksdb::ColumnFamilyHandle* family(std::string_view name) {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return handles[i];
    throw std::runtime_error("no column family " + std::string(name));
  }
};

namespace {

std::string seq_key(std::uint64_t seq) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i, seq >>= 8) k[static_cast<std::size_t>(i)] = static_cast<char>(seq & 0xff);
  return k;
}

void check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) throw std::runtime_error(std::string(what) + ": " + s.ToString());
}

}  // namespace

raw_db::raw_db(const fs::path& data_dir) : impl_(new impl) {
  const std::string dir = (data_dir / "log").string();
  rocksdb::Options o;
  check(rocksdb::DB::ListColumnFamilies(o, dir, &impl_->names), "list column families");
  std::vector<rocksdb::ColumnFamilyDescriptor> d;
  for (const auto& n : impl_->names) d.emplace_back(n, rocksdb::ColumnFamilyOptions());
  check(rocksdb::DB::Open(o, dir, d, &impl_->handles, &impl_->db), "open");
}

raw_db::~raw_db() {
  for (auto* h : impl_->handles) impl_->db->DestroyColumnFamilyHandle(h);
  delete impl_->db;
  delete impl_;
}

std::optional<std::string> raw_db::get(std::string_view family, std::uint64_t seq) {
  std::string v;
  auto s = impl_->db->Get({}, impl_->family(family), seq_key(seq), &v);
  if (s.IsNotFound()) return std::nullopt;
  check(s, "get");
  return v;
}

void raw_db::put(std::string_view family, std::uint64_t seq, std::string_view value) {
  rocksdb::WriteOptions w;
  w.sync = true;
  check(impl_->db->Put(w, impl_->family(family), seq_key(seq), rocksdb::Slice(value.data(), value.size())), "put");
}

std::optional<std::string> raw_db::get_key(std::string_view family, std::string_view key) {
  std::string v;
  auto s = impl_->db->Get({}, impl_->family(family), rocksdb::Slice(key.data(), key.size()), &v);
  if (s.IsNotFound()) return std::nullopt;
  check(s, "get");
  return v;
}

void raw_db::put_key(std::string_view family, std::string_view key, std::string_view value) {
  rocksdb::WriteOptions w;
  w.sync = true;
  check(impl_->db->Put(w, impl_->family(family), rocksdb::Slice(key.data(), key.size()),
                       rocksdb::Slice(value.data(), value.size())),
        "put");
}

void raw_db::remove(std::string_view family, std::uint64_t seq) {
  rocksdb::WriteOptions w;
  w.sync = true;
  check(impl_->db->Delete(w, impl_->family(family), seq_key(seq)), "delete");
}

void raw_db::remove_index(std::string_view family, std::string_view id, std::uint64_t seq) {
  rocksdb::WriteOptions w;
  w.sync = true;
  std::string key(id);
  key.push_back('\0');
  key += seq_key(seq);
  check(impl_->db->Delete(w, impl_->family(family), key), "delete");
}

std::uint64_t raw_db::last(std::string_view family) {
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator({}, impl_->family(family)));
  it->SeekToLast();
  if (!it->Valid() || it->key().size() != 8) return 0;
  std::uint64_t seq = 0;
  for (char c : it->key().ToString()) seq = (seq << 8) | static_cast<unsigned char>(c);
  return seq;
}

}  // namespace integration::tool
