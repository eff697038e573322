// `archive`: move the oldest events out of the live log into an archive file (contract
// §9). Picks the range (from the anchor up to --before, stopping before the first event
// of any call still in memory and before the last event), writes it with
// storage::write_archive (compressed, synced, read back), then has it removed from the
// live log: by the running engine through its admin socket, or, when no engine runs, by
// opening the log itself. --remove FILE does only the second half (after a removal that
// failed or was cut short). Nothing leaves the live log before the file is synced and has
// read back whole; a run killed at any point leaves the live log whole.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <simdjson.h>

#include "schemas/json_writer.hpp"
#include "storage/archive.hpp"
#include "tools/cli/commands.hpp"

namespace cli {

namespace fs = std::filesystem;

namespace {

struct removal {
  bool ok = false;
  std::string error;
  bool by_engine = false;
  storage::removal_report report;
};

// Progress of a stage on stderr, a new line per stage.
struct stage_progress {
  const global_options& g;
  std::string stage;
  std::unique_ptr<progress> p;
  void update(std::string_view s, std::uint64_t done, std::uint64_t total) {
    if (s != stage || !p) {
      p.reset();
      stage = std::string(s);
      p = std::make_unique<progress>(g, stage, total);
    }
    p->update(done);
  }
};

// nullopt: no engine answers there (no socket file, or nobody listening).
std::optional<removal> remove_through_engine(const global_options& g, const fs::path& socket_path,
                                             const fs::path& archive) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = socket_path.string();
  if (p.size() >= sizeof addr.sun_path) return removal{false, p + ": too long for a Unix socket path", true, {}};
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return removal{false, std::string("socket: ") + std::strerror(errno), true, {}};
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } c{fd};
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) return std::nullopt;
    return removal{false, p + ": " + std::strerror(errno), true, {}};
  }
  schemas::json_writer w;
  w.begin_object().field("op", "remove-archived").field("archive", std::string_view(archive.string())).end_object();
  const std::string req = w.take() + "\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return removal{false, p + ": the engine closed its admin socket", true, {}};

  stage_progress prog{g, {}, nullptr};
  std::string buf;
  char chunk[4096];
  simdjson::dom::parser parser;
  for (;;) {
    const auto nl = buf.find('\n');
    if (nl == std::string::npos) {
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return removal{false, "the engine closed its admin socket before answering", true, {}};
      buf.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    const std::string line = buf.substr(0, nl);
    buf.erase(0, nl + 1);
    simdjson::dom::object o;
    if (parser.parse(line).get_object().get(o)) return removal{false, "the engine answered: " + line, true, {}};
    bool ok = false;
    if (o["ok"].get_bool().get(ok)) {  // a progress line
      std::string_view stage;
      std::uint64_t done = 0, total = 0;
      if (!o["stage"].get_string().get(stage) && !o["done"].get_uint64().get(done) && !o["total"].get_uint64().get(total))
        prog.update(stage, done, total);
      continue;
    }
    prog.p.reset();
    removal r;
    r.by_engine = true;
    r.ok = ok;
    if (!ok) {
      std::string_view e;
      r.error = o["error"].get_string().get(e) ? line : std::string(e);
      return r;
    }
    std::uint64_t v = 0;
    std::string_view hash;
    if (!o["firstSeq"].get_uint64().get(v)) r.report.first_seq = v;
    if (!o["lastSeq"].get_uint64().get(v)) r.report.last_seq = v;
    if (!o["calls"].get_uint64().get(v)) r.report.calls = v;
    if (!o["removed"].get_uint64().get(v)) r.report.removed = v;
    if (!o["ms"].get_uint64().get(v)) r.report.seconds = static_cast<double>(v) / 1000;
    if (!o["anchor"]["seq"].get_uint64().get(v)) r.report.anchor.seq = v;
    if (!o["anchor"]["hash"].get_string().get(hash)) r.report.anchor.hash = std::string(hash);
    return r;
  }
}

removal remove_range(const global_options& g, const std::string& socket_flag, const fs::path& archive) {
  const fs::path socket_path = socket_flag.empty() ? fs::path(g.data_dir) / "admin.sock" : fs::path(socket_flag);
  if (auto r = remove_through_engine(g, socket_path, archive)) return *r;
  // No engine answers: open the log ourselves (RocksDB's lock tells whether one holds it).
  storage::log_options lo;
  lo.dir = fs::path(g.data_dir) / "log";
  auto opened = storage::event_log::open(lo);
  if (!opened) {
    if (opened.error().code == storage::open_errc::locked)
      return removal{false,
                     "an engine holds the log but does not answer on " + socket_path.string() +
                         " (started with another --admin-socket? give it with --admin-socket)",
                     false, {}};
    return removal{false, "cannot open the log for writing: " + opened.error().detail, false, {}};
  }
  stage_progress prog{g, {}, nullptr};
  auto rep = (*opened)->remove_archived(archive, [&](std::string_view s, std::uint64_t d, std::uint64_t t) {
    prog.update(s, d, t);
  });
  prog.p.reset();
  if (!rep) return removal{false, rep.error(), false, {}};
  return removal{true, {}, false, *rep};
}

}  // namespace

int cmd_archive(const global_options& g, const archive_args& a) {
  fs::path file;
  std::optional<storage::archive_header> written;
  if (!a.remove.empty()) {
    file = fs::absolute(a.remove);
  } else {
    if (a.out.empty()) {
      complain("archive: --out FILE is required (or --remove FILE)");
      return exit_usage;
    }
    if (a.before.empty() == (a.before_seq == 0)) {
      complain("archive: give exactly one of --before TIME and --before-seq SEQ");
      return exit_usage;
    }
    std::optional<engine::epoch_ms> before;
    if (!a.before.empty()) {
      before = parse_time(a.before, now_ms());
      if (!before) {
        complain("--before {}: not a time (ISO 8601, @epoch-ms, -2h)", a.before);
        return exit_usage;
      }
    }
    file = fs::absolute(a.out);
    std::error_code ec;
    if (fs::exists(file, ec)) {
      complain("{}: exists already (an archive is never overwritten)", file.string());
      return exit_usage;
    }
    auto reader = log_reader::open(g.data_dir);
    if (!reader) return exit_cannot_open;
    const auto& log = reader->log();
    const auto anchor = log.anchor();
    const engine::event_seq last = log.last_seq();
    auto persisted = log.load_persisted();
    if (!persisted) {
      complain("the persisted call states do not read: {}", persisted.error().detail);
      return exit_check_failed;
    }
    // The cut: before --before, before the first event of any call in memory, and never
    // the last event (the live log keeps one, to continue the chain from).
    engine::event_seq stop = last;  // first seq that stays
    std::string stop_why = "the log's last event stays in the live log";
    for (const auto& c : persisted->calls)
      if (c.start_seq < stop) {
        stop = c.start_seq;
        stop_why = "call " + c.call_id + " (" + std::string(engine::to_string(c.status)) + ") is still in memory";
      }
    if (a.before_seq != 0 && a.before_seq < stop) {
      stop = a.before_seq;
      stop_why = "--before-seq";
    }
    engine::event_seq cut = anchor.seq;
    if (before) {
      progress prog(g, "finding the cut", stop);
      auto st = log.scan(anchor.seq + 1, stop == 0 ? 0 : stop - 1, [&](const engine::event& e, std::string_view) {
        if (e.time >= *before) return false;
        cut = e.seq;
        if ((e.seq & 4095) == 0) prog.update(e.seq);
        return !should_stop();
      });
      if (!st) {
        complain("reading the log: {}", st.error().detail);
        return exit_check_failed;
      }
      if (cut + 1 < stop) stop_why = "--before";
    } else if (stop > 0) {
      cut = stop - 1;
    }
    if (interrupted()) return exit_interrupted;
    if (cut <= anchor.seq) {
      if (g.json)
        std::printf("{\"ok\":true,\"archived\":0,\"anchor\":%llu}\n", static_cast<unsigned long long>(anchor.seq));
      else
        std::printf("nothing to archive: the live log starts at event %llu and %s\n",
                    static_cast<unsigned long long>(anchor.seq + 1), stop_why.c_str());
      return exit_ok;
    }
    {
      progress prog(g, "writing " + file.filename().string(), cut - anchor.seq);
      auto h = storage::write_archive(log, anchor.seq + 1, cut, file, [&](std::uint64_t n) { prog.update(n); });
      if (!h) {
        complain("{}; nothing was removed from the live log", h.error());
        return exit_check_failed;
      }
      written = *h;
    }
    if (!g.json)
      std::printf("archived events %llu..%llu to %s (%s, synced and read back)\n",
                  static_cast<unsigned long long>(written->first_seq), static_cast<unsigned long long>(written->last_seq),
                  file.string().c_str(), counted(written->events, "event").c_str());
  }

  const removal r = remove_range(g, a.admin_socket, file);
  if (g.json) {
    schemas::json_writer w;
    w.begin_object().field("ok", r.ok).field("archive", std::string_view(file.string()));
    w.field("removedBy", r.by_engine ? "engine" : "yna-tool");
    if (!r.ok) {
      w.field("error", std::string_view(r.error));
    } else {
      w.field("firstSeq", std::uint64_t{r.report.first_seq}).field("lastSeq", std::uint64_t{r.report.last_seq});
      w.field("calls", r.report.calls).field("removed", r.report.removed);
      w.key("anchor").begin_object().field("seq", std::uint64_t{r.report.anchor.seq});
      w.field("hash", std::string_view(r.report.anchor.hash)).end_object();
    }
    w.end_object();
    std::printf("%s\n", w.str().c_str());
  } else if (r.ok) {
    std::printf("removed events %llu..%llu from the live log (%s; %s kept as final states); the live log starts at "
                "event %llu\n",
                static_cast<unsigned long long>(r.report.first_seq), static_cast<unsigned long long>(r.report.last_seq),
                r.by_engine ? "by the running engine" : "no engine running: by yna-tool",
                counted(r.report.calls, "archived call").c_str(), static_cast<unsigned long long>(r.report.anchor.seq + 1));
  }
  if (!r.ok) {
    complain("{}", r.error);
    if (written) complain("the archive {} is written and verified; once the cause is gone: yna-tool archive --remove {}",
                          file.string(), file.string());
    return exit_check_failed;
  }
  return exit_ok;
}

}  // namespace cli
