#include "transport/webhook.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "schemas/json_writer.hpp"
#include "transport/detail/ascii.hpp"

namespace transport {

std::string outbound_url::shown() const {
  std::string out = tls ? "https://" : "http://";
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) out += ":" + std::to_string(port);
  out += target.substr(0, target.find('?'));
  return out;
}

schemas::result<outbound_url, std::string> parse_outbound_url(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return schemas::failure{"'" + std::string(url) + "' is not a usable URL: " + std::string(why)};
  };
  outbound_url u;
  std::string_view rest = url;
  auto starts = [&](std::string_view scheme) {
    if (rest.size() < scheme.size()) return false;
    for (std::size_t i = 0; i < scheme.size(); ++i)
      if (detail::ascii_lower(rest[i]) != scheme[i]) return false;
    return true;
  };
  if (starts("https://")) {
    u.tls = true;
    rest.remove_prefix(8);
  } else if (starts("http://")) {
    rest.remove_prefix(7);
  } else {
    return bad("it must start with http:// or https://");
  }
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("it has a space or a control character");
  if (url.find('#') != std::string_view::npos) return bad("a fragment (#) is not sent anywhere");
  const std::size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) return bad("user info (user@host) is not allowed");
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 address without its ']'");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("something after the IPv6 address that is not a port");
      port = after.substr(1);
    }
  } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("an IPv6 address goes in brackets");
  }
  if (host.empty()) return bad("no host");
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == ':' || c == '_';
    if (!ok) return bad("the host has a character that is not allowed");
  }
  u.host.reserve(host.size());
  for (char c : host) u.host += detail::ascii_lower(c);
  u.port = u.tls ? 443 : 80;
  if (!port.empty()) {
    unsigned p = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
      return bad("the port must be a number from 1 to 65535");
    u.port = static_cast<std::uint16_t>(p);
  }
  u.target = target.empty() ? "/" : std::string(target);
  if (u.target.front() == '?') u.target.insert(0, "/");
  return u;
}

std::string webhook_id(engine::event_seq seq, std::string_view msisdn) {
  std::string id = std::to_string(seq);
  id += '-';
  id += msisdn;
  return id;
}

std::string webhook_body(engine::event_seq seq, std::string_view msisdn, std::string_view frame) {
  schemas::json_writer w(frame.size() + 96);
  w.begin_object();
  w.field("id", std::string_view(webhook_id(seq, msisdn)));
  w.field("msisdn", msisdn);
  w.key("notification").raw(frame);
  w.end_object();
  return w.take();
}

std::string webhook_signature(std::string_view secret, std::int64_t unix_seconds, std::string_view body) {
  const std::string t = std::to_string(unix_seconds);
  std::string message;
  message.reserve(t.size() + 1 + body.size());
  message += t;
  message += '.';
  message += body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const bool ok = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len) != nullptr;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "t=" + t + ",v1=";
  if (!ok) return out;  // an empty v1 never verifies: the receiver refuses, we retry
  for (unsigned i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 0xf];
  }
  return out;
}

std::chrono::milliseconds retry_delay(const retry_policy& p, int failures, double unit) {
  const double base = static_cast<double>(p.min.count()) * std::ldexp(1.0, std::clamp(failures - 1, 0, 40));
  const double capped = std::min(base, static_cast<double>(p.max.count()));
  const double jittered = std::min(capped * (1.0 + 0.5 * std::clamp(unit, 0.0, 1.0)), static_cast<double>(p.max.count()));
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::max(jittered, 1.0)));
}

void delivery_queue::add(engine::event_seq seq, engine::epoch_ms committed, std::vector<planned_delivery> owed) {
  if (seq <= read_upto_) return;  // read twice (a re-read after a restart of the reader)
  read_upto_ = seq;
  if (owed.empty()) return;
  open_[seq] = {owed.size(), committed};
  for (auto& o : owed) {
    auto& lane = lanes_[o.lane];
    lane.push_back(delivery{seq, o.lane, std::move(o.url), std::move(o.body), std::move(o.id), committed, 0, {}});
    if (lane.size() == 1) due_.emplace(clock::time_point{}, seq, o.lane);
    ++pending_;
  }
}

delivery_queue::delivery* delivery_queue::take(clock::time_point now) {
  if (due_.empty() || std::get<0>(*due_.begin()) > now) return nullptr;
  auto node = due_.extract(due_.begin());
  ++in_flight_;
  return &lanes_.at(std::get<2>(node.value())).front();
}

std::optional<delivery_queue::clock::time_point> delivery_queue::next_due() const {
  if (due_.empty()) return std::nullopt;
  return std::get<0>(*due_.begin());
}

void delivery_queue::pop(delivery* d) {
  --in_flight_;
  --pending_;
  if (auto it = open_.find(d->seq); it != open_.end() && --it->second.first == 0) open_.erase(it);
  auto lane = lanes_.find(d->lane);
  lane->second.pop_front();  // d is its front: gone from here on
  if (lane->second.empty()) {
    lanes_.erase(lane);
    return;
  }
  const delivery& next = lane->second.front();
  due_.emplace(next.next_try, next.seq, next.lane);
}

void delivery_queue::delivered(delivery* d) { pop(d); }

bool delivery_queue::failed(delivery* d, clock::time_point now, engine::epoch_ms wall_now, const retry_policy& p,
                            double unit) {
  if (wall_now - d->committed > p.max_age.count()) {
    pop(d);
    return false;
  }
  ++d->failures;
  d->next_try = now + retry_delay(p, d->failures, unit);
  --in_flight_;
  due_.emplace(d->next_try, d->seq, d->lane);
  return true;
}

engine::event_seq delivery_queue::cursor() const { return open_.empty() ? read_upto_ : open_.begin()->first - 1; }

std::optional<engine::epoch_ms> delivery_queue::oldest() const {
  if (open_.empty()) return std::nullopt;
  return open_.begin()->second.second;
}

}  // namespace transport
