// decode_call on arbitrary bytes (a corrupted value in the log's `calls` family, which
// start-up loads: contract §9). Properties:
//  - a failure is malformed;
//  - a decoded call has a callId and re-encodes to bytes that decode to the same call
//    (every field of call_state), and encoding is stable from then on;
//  - a table restored from it counts it once, however often it is restored (live, ringing,
//    engaged and waiting counts).
#include "engine/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"

namespace {

bool same_offer(const std::optional<engine::pending_offer>& a, const std::optional<engine::pending_offer>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->by == b->by && a->kind == b->kind && a->since == b->since && a->prior_sdp == b->prior_sdp &&
                a->meeting_uri == b->meeting_uri);
}

bool same(const engine::call_state& a, const engine::call_state& b) {
  return a.call_id == b.call_id && a.from == b.from && a.to == b.to && a.status == b.status &&
         a.client_correlator == b.client_correlator && a.created_at == b.created_at &&
         a.connected_at == b.connected_at && a.ended_at == b.ended_at && a.end_reason == b.end_reason &&
         same_offer(a.offer, b.offer) && a.held_by == b.held_by && a.mo_sdp == b.mo_sdp && a.mt_sdp == b.mt_sdp &&
         a.mo_device == b.mo_device && a.mt_device == b.mt_device && a.start_seq == b.start_seq &&
         a.last_seq == b.last_seq && a.event_count == b.event_count && a.timers == b.timers &&
         a.retired == b.retired && a.dialled == b.dialled && a.diversions == b.diversions &&
         a.call_waiting == b.call_waiting && a.transfer_to == b.transfer_to && a.transferred_by == b.transferred_by &&
         a.transfer_of == b.transfer_of && a.transferred_from == b.transferred_from && a.meeting_uri == b.meeting_uri;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto c = engine::decode_call(bytes);
  if (!c) {
    FUZZ_CHECK(c.error() == engine::codec_error::malformed);
    return 0;
  }
  FUZZ_CHECK(!c->call_id.empty());
  const std::string once = engine::encode_call(*c);
  auto again = engine::decode_call(once);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(same(*c, *again));
  FUZZ_CHECK(engine::encode_call(*again) == once);

  engine::call_table t;
  t.restore(*c, c->last_seq);
  t.restore(*again, c->last_seq);  // the same call twice: counted once
  FUZZ_CHECK(t.size() == 1);
  FUZZ_CHECK(t.active() == (engine::is_ended(c->status) ? 0u : 1u));
  // Live calls count by MO party: `from`, or a gateway's party (contract §11).
  FUZZ_CHECK(t.live_from_count(engine::mo_party(c->from, c->gateway)) == t.active());
  FUZZ_CHECK(t.ringing_count(c->to) == (engine::is_early(c->status) ? 1u : 0u));
  // Contract §10: busy (Connected or Hold) counts both numbers, a waiting call its MT.
  const bool engaged = c->status == engine::call_status::connected || c->status == engine::call_status::hold;
  FUZZ_CHECK(t.engaged_count(c->to) >= (engaged ? 1u : 0u));
  FUZZ_CHECK(t.waiting_count(c->to) == (engine::is_early(c->status) && c->call_waiting ? 1u : 0u));
  return 0;
}
