// decode_snapshot on arbitrary bytes (a corrupted snapshot file). Properties:
//  - a failure is malformed or unsupported_version;
//  - a decoded table re-encodes to a snapshot that decodes to the same calls (every
//    field of every call_state), the same last_seq and the same active count;
//  - active() is the number of calls not in an ended state.
#include "engine/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"

namespace {

bool same_offer(const std::optional<engine::pending_offer>& a, const std::optional<engine::pending_offer>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->by == b->by && a->kind == b->kind && a->since == b->since && a->prior_sdp == b->prior_sdp);
}

bool same(const engine::call_state& a, const engine::call_state& b) {
  return a.call_id == b.call_id && a.from == b.from && a.to == b.to && a.status == b.status &&
         a.client_correlator == b.client_correlator && a.created_at == b.created_at &&
         a.connected_at == b.connected_at && a.ended_at == b.ended_at && a.end_reason == b.end_reason &&
         same_offer(a.offer, b.offer) && a.held_by == b.held_by && a.mo_sdp == b.mo_sdp && a.mt_sdp == b.mt_sdp &&
         a.mo_device == b.mo_device && a.mt_device == b.mt_device && a.last_seq == b.last_seq &&
         a.event_count == b.event_count && a.timers == b.timers;
}

std::size_t live(const engine::call_table& t) {
  std::size_t n = 0;
  for (const auto& [id, c] : t.calls()) n += engine::is_ended(c.status) ? 0 : 1;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto t = engine::decode_snapshot(bytes);
  if (!t) {
    FUZZ_CHECK(t.error() == engine::codec_error::malformed || t.error() == engine::codec_error::unsupported_version);
    return 0;
  }
  FUZZ_CHECK(t->active() == live(*t));
  for (const auto& [id, c] : t->calls()) FUZZ_CHECK(id == c.call_id && !id.empty());

  const std::string once = engine::encode_snapshot(*t);
  auto t2 = engine::decode_snapshot(once);
  FUZZ_CHECK(t2.has_value());
  FUZZ_CHECK(t2->size() == t->size() && t2->last_seq() == t->last_seq() && t2->active() == t->active());
  for (const auto& [id, c] : t->calls()) {
    const engine::call_state* d = t2->find(id);
    FUZZ_CHECK(d != nullptr);
    FUZZ_CHECK(same(c, *d));
  }
  return 0;
}
