#include "transport/webhook_plan.hpp"

#include <chrono>

#include "engine/clock.hpp"
#include "engine/notify.hpp"
#include "schemas/digest.hpp"

namespace transport {

namespace {

class webhook_plan final : public dispatch_plan {
 public:
  webhook_plan(std::string url, const outbound_url& where, const webhook_settings& s)
      : url_(std::move(url)), secret_(s.secret), retry_(s.retry), base_path_(s.base_path) {
    label_ = std::string(webhook_cursor_prefix) + where.shown();  // no space: naive metric parsers split on it
    // The URL as shown (no query), and when it has a query a digest of the whole URL, so
    // two URLs that differ only there keep two cursors.
    cursor_ = std::string(webhook_cursor_prefix) + where.shown();
    if (where.target.find('?') != std::string::npos)
      cursor_ += "?" + schemas::to_hex(schemas::sha256(url_)).substr(0, 12);
  }

  const std::string& cursor_name() const override { return cursor_; }
  const std::string& label() const override { return label_; }
  const retry_policy& retry() const override { return retry_; }

  void plan(const engine::event& e, std::vector<planned_delivery>& out) override {
    auto n = engine::derive_notification(e);
    if (!n) return;
    const std::string frame = engine::encode_notification(*n, base_path_);
    for (auto& m : n->recipients()) {
      // Per number of the engine's users; a gateway hears of its calls on its socket.
      if (!e.gateway.empty() && m == engine::gateway_party(e.gateway)) continue;
      planned_delivery d;
      d.url = url_;
      d.body = webhook_body(e.seq, m, frame);
      d.id = webhook_id(e.seq, m);
      d.lane = std::move(m);
      out.push_back(std::move(d));
    }
  }

  std::vector<std::pair<std::string, std::string>> headers(const delivery_queue::delivery& d) override {
    const std::int64_t t = engine::system_clock{}.now() / 1000;
    std::vector<std::pair<std::string, std::string>> h;
    h.emplace_back("Content-Type", "application/json");
    h.emplace_back("Yna-Delivery", d.id);
    h.emplace_back("Yna-Signature", webhook_signature(secret_, t, d.body));
    return h;
  }

 private:
  std::string url_, secret_;
  retry_policy retry_;
  std::string base_path_, label_, cursor_;
};

}  // namespace

schemas::result<std::vector<std::unique_ptr<dispatch_plan>>, std::string> make_webhook_plans(
    const webhook_settings& s, const std::function<bool(std::string_view host)>& host_allowed) {
  std::vector<std::unique_ptr<dispatch_plan>> out;
  if (s.urls.empty()) return out;
  if (s.secret.empty()) return schemas::failure{std::string("the webhook secret is empty")};
  for (const auto& url : s.urls) {
    auto u = parse_outbound_url(url);
    if (!u) return schemas::failure{"--webhook " + u.error()};
    if (!host_allowed(u->host))
      return schemas::failure{"--webhook " + u->shown() + ": its host " + u->host +
                              " is not in --outbound-allow (contract §13: nothing outbound goes to a host not listed)"};
    auto p = std::make_unique<webhook_plan>(url, *u, s);
    for (const auto& other : out)
      if (other->cursor_name() == p->cursor_name()) return schemas::failure{"--webhook " + u->shown() + " is given twice"};
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace transport
