#pragma once
// Calls as a human table or JSON (engine::write_call_view, the GET /calls view), for
// `replay`'s state of the calls and `timeline`'s final state.
#include <cstdio>
#include <string_view>
#include <vector>

#include "engine/types.hpp"
#include "schemas/json_writer.hpp"

namespace cli {

void print_calls(std::FILE* out, const std::vector<const engine::call_state*>& calls);
void write_calls_json(schemas::json_writer& w, const std::vector<const engine::call_state*>& calls,
                      std::string_view base_path);

}  // namespace cli
