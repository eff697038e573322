#pragma once
// A request for the PoP fuzzers: the input split at '\n' into token, method and
// target; everything after the third '\n' is the body (it may hold more '\n's).
// Missing parts are empty. Headers: a fixed Authorization and Content-Type.
#include <optional>
#include <string>
#include <string_view>

#include "transport/pop.hpp"

namespace fuzz {

struct split_request {
  std::string_view token, method, target, body;

  explicit split_request(std::string_view in) {
    std::string_view* parts[] = {&token, &method, &target};
    for (auto* p : parts) {
      const auto nl = in.find('\n');
      *p = in.substr(0, nl);
      in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
    }
    body = in;
  }

  transport::pop_request view() const {
    return {method, target, body, [](std::string_view name) -> std::optional<std::string_view> {
              std::string l(name);
              for (auto& c : l)
                if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
              if (l == "authorization") return std::string_view("Bearer access-token");
              if (l == "content-type") return std::string_view("application/json");
              return std::nullopt;
            }};
  }
};

}  // namespace fuzz
