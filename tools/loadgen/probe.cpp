#include "tools/loadgen/probe.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace loadgen {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

double engine_cpu_seconds(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto paren = all.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return -1;
  std::istringstream rest(all.substr(paren + 2));
  std::string field;
  double utime = 0, stime = 0;
  // Fields after the name start at 3 (state); utime is 14, stime 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long engine_rss_kib(int pid, std::string_view field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(field.size()));
  return -1;
}

std::optional<double> fetch_metric(const std::string& host, std::uint16_t port, const std::string& base_path,
                                   const std::string& series) {
  try {
    net::io_context ioc;
    beast::tcp_stream s(ioc);
    s.expires_after(std::chrono::seconds(5));
    s.connect(tcp::endpoint(net::ip::make_address(host), port));
    http::request<http::empty_body> req{http::verb::get, base_path + "/metrics", 11};
    req.set(http::field::host, host);
    http::write(s, req);
    beast::flat_buffer b;
    http::response<http::string_body> res;
    http::read(s, b, res);
    std::istringstream in(res.body());
    std::string line;
    while (std::getline(in, line)) {
      if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ')
        return std::stod(line.substr(series.size() + 1));
    }
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

idle_socket_cost measure_idle_sockets(const std::string& host, std::uint16_t port, const std::string& base_path,
                                      const std::string& token, std::size_t n, int pid) {
  idle_socket_cost c;
  c.rss_before_kib = pid ? engine_rss_kib(pid) : -1;
  net::io_context ioc;
  std::vector<std::unique_ptr<websocket::stream<beast::tcp_stream>>> socks;
  socks.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto s = std::make_unique<websocket::stream<beast::tcp_stream>>(ioc);
    try {
      beast::get_lowest_layer(*s).connect(tcp::endpoint(net::ip::make_address(host), port));
      s->set_option(websocket::stream_base::decorator(
          [&token](websocket::request_type& r) { r.set(http::field::authorization, "Bearer " + token); }));
      s->handshake(host, base_path + "/notifications");
    } catch (const std::exception& e) {
      c.error = "stopped at socket " + std::to_string(i) + ": " + e.what();
      break;
    }
    socks.push_back(std::move(s));
  }
  c.opened = socks.size();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  c.rss_after_kib = pid ? engine_rss_kib(pid) : -1;
  for (auto& s : socks) {
    beast::error_code ec;
    beast::get_lowest_layer(*s).socket().close(ec);
  }
  return c;
}

}  // namespace loadgen
