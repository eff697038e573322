#include "transport/fault_route.hpp"

#include <simdjson.h>

#include "engine/log.hpp"
#include "schemas/json_writer.hpp"

namespace transport {

schemas::result<std::string, std::string> apply_faults(std::string_view body, storage::event_log& log,
                                                        storage::fault_env& env) {
  using fail = schemas::failure<std::string>;
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(body.data(), body.size()).get_object().get(obj)) return fail{"the body must be a JSON object"};

  std::string_view wal_name = "none";
  std::uint64_t count = 0;
  std::optional<storage::wal_fault> wal;
  if (auto v = obj["wal"]; v.error() != simdjson::NO_SUCH_FIELD) {
    if (v.get_string().get(wal_name) || !(wal = storage::parse_wal_fault(wal_name)))
      return fail{"wal must be none, append_no_space, append_io_error or sync_io_error"};
  }
  if (auto v = obj["count"]; v.error() != simdjson::NO_SUCH_FIELD) {
    if (v.get_uint64().get(count) || count > 1'000'000) return fail{"count must be an integer from 0 to 1000000"};
  }
  std::optional<engine::store_error> append;
  if (auto v = obj["append"]; v.error() != simdjson::NO_SUCH_FIELD) {
    std::string_view a;
    if (v.get_string().get(a) || (a != "io_error" && a != "no_space")) return fail{"append must be io_error or no_space"};
    append = a == "io_error" ? engine::store_error::io_error : engine::store_error::no_space;
  }
  std::optional<std::uint64_t> sync_delay;
  if (auto v = obj["sync_delay_ms"]; v.error() != simdjson::NO_SUCH_FIELD) {
    std::uint64_t ms = 0;
    if (v.get_uint64().get(ms) || ms > 10'000) return fail{"sync_delay_ms must be an integer from 0 to 10000"};
    sync_delay = ms;
  }
  if (wal) env.arm(*wal, static_cast<std::uint32_t>(count));
  if (sync_delay) env.set_sync_delay_ms(static_cast<std::uint32_t>(*sync_delay));
  if (append) log.fail_next_append(*append);
  engine::log::warn("fault injection: wal={} count={} append={} sync_delay_ms={}", wal_name, count,
                    append ? engine::to_string(*append) : std::string_view("-"), env.sync_delay_ms());

  schemas::json_writer w(96);
  w.begin_object().field("wal", wal_name).field("count", count)
      .field("sync_delay_ms", static_cast<std::uint64_t>(env.sync_delay_ms()))
      .field("injected", env.injected()).end_object();
  return w.take();
}

}  // namespace transport
