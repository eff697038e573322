#pragma once
// The webhooks' dispatch plan (contract §13): for each --webhook URL, every notification
// of every event (engine::derive_notification, as the WebSocket sends it), one delivery
// per recipient number, lane = that number, signed when sent (webhook.hpp's formats).
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/result.hpp"
#include "transport/dispatch.hpp"

namespace transport {

struct webhook_settings {
  std::vector<std::string> urls;  // --webhook
  std::string secret;             // the contents of --webhook-secret-file
  retry_policy retry;             // --webhook-retry-min/-max, --webhook-max-age
  std::string base_path;          // callObjectRef in the frames
};

// Cursor names of webhook plans start with this.
inline constexpr std::string_view webhook_cursor_prefix = "webhook:";

// One plan per URL. Fails naming the flag when a URL is not usable, its host is not
// allowed (`host_allowed`: --outbound-allow), a URL is given twice, or the secret is empty.
schemas::result<std::vector<std::unique_ptr<dispatch_plan>>, std::string> make_webhook_plans(
    const webhook_settings& settings, const std::function<bool(std::string_view host)>& host_allowed);

}  // namespace transport
