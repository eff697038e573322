// yna-notify-bench: notification latency and idle-socket cost of a running engine.
//
// Latency: `--workers` pairs of parties run `--calls` calls in all (start → ringing →
// end), each party with its own WebSocket. For each transition it records the time
// from the acknowledgement of the causing request (HTTP 200 read by the client) to the
// frame's arrival on the other party's socket. Prints p50/p90/p99/max.
// Idle sockets: opens `--idle-sockets` notification sockets that never get traffic and
// reports the engine's resident memory before and after (needs --engine-pid).
// The engine must run on its development issuer (tokens are minted from --data-dir).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/resource.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>

#include "schemas/dev_issuer.hpp"
#include "schemas/pop_token.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using clk = std::chrono::steady_clock;

namespace {

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

constexpr const char* sdp_json = R"(v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n)";

struct party {
  std::string number, token;
};

// Frames arrive on a reader thread; the worker waits for the next one.
struct socket_reader {
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  std::thread th;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<clk::time_point, std::string>> frames;
  bool closed = false;

  void open(std::uint16_t port, const std::string& token, bool read) {
    beast::get_lowest_layer(ws).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    ws.set_option(websocket::stream_base::decorator(
        [token](websocket::request_type& r) { r.set(http::field::authorization, "Bearer " + token); }));
    ws.handshake("127.0.0.1", "/notifications");
    if (!read) return;
    th = std::thread([this] {
      beast::flat_buffer b;
      for (;;) {
        beast::error_code ec;
        ws.read(b, ec);
        const auto t = clk::now();
        std::lock_guard lk(mu);
        if (ec) {
          closed = true;
          cv.notify_all();
          return;
        }
        frames.emplace_back(t, beast::buffers_to_string(b.data()));
        b.consume(b.size());
        cv.notify_all();
      }
    });
  }
  // Arrival time of the next frame containing `needle`; nullopt after 5 s.
  std::optional<clk::time_point> wait_for(std::string_view needle) {
    std::unique_lock lk(mu);
    const auto deadline = clk::now() + std::chrono::seconds(5);
    for (;;) {
      while (!frames.empty()) {
        auto [t, f] = std::move(frames.front());
        frames.pop_front();
        if (f.find(needle) != std::string::npos) return t;
      }
      if (closed || cv.wait_until(lk, deadline) == std::cv_status::timeout) return std::nullopt;
    }
  }
  ~socket_reader() {
    beast::error_code ec;
    beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws).socket().close(ec);
    if (th.joinable()) th.join();
  }
};

struct http_conn {
  net::io_context ioc;
  beast::tcp_stream s{ioc};
  beast::flat_buffer b;
  explicit http_conn(std::uint16_t port) { s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port)); }
  int request(http::verb v, const std::string& target, const std::string& body, const std::string& token,
              const schemas::jose::private_key* key) {
    http::request<http::string_body> req{v, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + token);
    if (key)
      req.set("X-Authorization", schemas::build_request_pop(*key, std::string(http::to_string(v)), target, body,
                                                             "Bearer " + token, now_s()));
    req.body() = body;
    req.prepare_payload();
    http::write(s, req);
    http::response<http::string_body> res;
    http::read(s, b, res);
    last_body = std::move(res.body());
    return res.result_int();
  }
  std::string last_body;
};

double pct(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

long rss_kib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 8080;
  std::string data_dir = "./data";
  int calls = 1000, workers = 8, idle = 0, pid = 0;
  CLI::App app{"yna-notify-bench: notification latency and idle WebSocket cost"};
  app.add_option("--port", port, "Engine port on 127.0.0.1")->required();
  app.add_option("--data-dir", data_dir, "Engine data folder (development issuer)")->required();
  app.add_option("--calls", calls, "Calls in all")->capture_default_str();
  app.add_option("--workers", workers, "Concurrent caller/callee pairs")->capture_default_str();
  app.add_option("--idle-sockets", idle, "Idle WebSockets to open after the latency run")->capture_default_str();
  app.add_option("--engine-pid", pid, "Engine pid, for its resident memory");
  CLI11_PARSE(app, argc, argv);

  auto issuer = schemas::load_or_create_dev_issuer(data_dir);
  if (!issuer) {
    fmt::print(stderr, "dev issuer: {}\n", issuer.error());
    return 2;
  }
  const auto device_key = schemas::jose::private_key::generate_rsa(2048);
  auto mint = [&](const std::string& number) {
    schemas::access_claims c;
    c.sub = "bench-" + number;
    c.msisdns = {number};
    c.device_id = "bench";
    c.cnf_jwk_json = device_key.public_part().to_jwk_json();
    c.iat = now_s();
    c.exp = c.iat + 3600;
    return schemas::mint_access_token(*issuer, c);
  };

  std::mutex mu;
  std::vector<double> invite_ms, ringing_ms, end_ms;
  std::atomic<int> next{0}, failures{0};
  const auto t0 = clk::now();
  std::vector<std::thread> ths;
  for (int w = 0; w < workers; ++w)
    ths.emplace_back([&, w] {
      party mo{fmt::format("1425{:07d}", 2 * w + 1), {}}, mt{fmt::format("1425{:07d}", 2 * w + 2), {}};
      mo.token = mint(mo.number);
      mt.token = mint(mt.number);
      socket_reader mo_ws, mt_ws;
      mo_ws.open(port, mo.token, true);
      mt_ws.open(port, mt.token, true);
      http_conn mo_c(port), mt_c(port);
      auto ms = [](clk::time_point a, clk::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
      while (next.fetch_add(1) < calls) {
        const std::string body = fmt::format(R"({{"from":"{}","to":"{}","sdp":"{}"}})", mo.number, mt.number, sdp_json);
        if (mo_c.request(http::verb::post, "/start", body, mo.token, nullptr) != 200) { ++failures; continue; }
        const auto ack1 = clk::now();
        const auto k = mo_c.last_body.find("\"callId\":\"");
        const std::string id = mo_c.last_body.substr(k + 10, 32);
        auto got1 = mt_ws.wait_for(id);
        if (mt_c.request(http::verb::post, "/ringing/" + id, "{}", mt.token, &device_key) != 200) { ++failures; continue; }
        const auto ack2 = clk::now();
        auto got2 = mo_ws.wait_for("\"Ringing\"");
        if (mo_c.request(http::verb::delete_, "/end/" + id, "", mo.token, &device_key) != 200) { ++failures; continue; }
        const auto ack3 = clk::now();
        auto got3 = mt_ws.wait_for("\"SessionCancelled\"");
        std::lock_guard lk(mu);
        if (got1) invite_ms.push_back(ms(ack1, *got1)); else ++failures;
        if (got2) ringing_ms.push_back(ms(ack2, *got2)); else ++failures;
        if (got3) end_ms.push_back(ms(ack3, *got3)); else ++failures;
      }
    });
  for (auto& t : ths) t.join();
  const double secs = std::chrono::duration<double>(clk::now() - t0).count();
  std::vector<double> all;
  for (auto* v : {&invite_ms, &ringing_ms, &end_ms}) all.insert(all.end(), v->begin(), v->end());
  fmt::print("notification latency (ack of the causing request -> frame on the other socket), {} calls, {} workers, {:.1f} s\n",
             calls, workers, secs);
  fmt::print("{:<14} {:>8} {:>9} {:>9} {:>9} {:>9}\n", "frame", "count", "p50 ms", "p90 ms", "p99 ms", "max ms");
  auto row = [&](const char* name, std::vector<double>& v) {
    fmt::print("{:<14} {:>8} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f}\n", name, v.size(), pct(v, 0.5), pct(v, 0.9),
               pct(v, 0.99), v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()));
  };
  row("invitation", invite_ms);
  row("Ringing", ringing_ms);
  row("ended", end_ms);
  row("all", all);
  fmt::print("failures {}\n", failures.load());

  if (idle > 0) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    const long before = pid ? rss_kib(pid) : -1;
    const std::string token = mint("14259999999");
    net::io_context ioc;  // one for all: a socket costs one descriptor here
    std::vector<std::unique_ptr<websocket::stream<beast::tcp_stream>>> socks;
    for (int i = 0; i < idle; ++i) {
      auto s = std::make_unique<websocket::stream<beast::tcp_stream>>(ioc);
      try {
        beast::get_lowest_layer(*s).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
        s->set_option(websocket::stream_base::decorator(
            [&token](websocket::request_type& r) { r.set(http::field::authorization, "Bearer " + token); }));
        s->handshake("127.0.0.1", "/notifications");
      } catch (const std::exception& e) {
        fmt::print("idle sockets: stopped at {}: {}\n", i, e.what());
        break;
      }
      socks.push_back(std::move(s));
      if ((i + 1) % 1000 == 0) fmt::print(stderr, "\ropened {} idle sockets", i + 1);
    }
    fmt::print(stderr, "\n");
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const long after = pid ? rss_kib(pid) : -1;
    fmt::print("idle sockets: {} open; engine RSS {} KiB -> {} KiB ({:.1f} KiB per socket)\n", socks.size(), before,
               after, socks.empty() || before < 0 ? 0.0 : static_cast<double>(after - before) / static_cast<double>(socks.size()));
  }
  return failures.load() == 0 ? 0 : 1;
}
