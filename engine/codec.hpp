#pragma once
// Byte formats of the engine's values: the event record stored in the log, the
// persisted state of one call, and the public JSON view of a call (GET /calls/{id}).
// Event record (version 1), compact JSON, keys in this order:
//   {"v":1,"seq":7,"time":1764200000000,"type":"hold","callId":"…",
//    ["timer":{"kind":"invite","deadline":<ms>},]     (type "timeout" only)
//    "actor":{"msisdn":"…","role":"MO","sub":"…","device":"…"},
//    "txn":"…","method":"POST","path":"/hold/…",
//    "payload":{"from":…,"to":…,"gateway":…,"moName":…,"mtName":…,"sdp":…,"clientCorrelator":…,
//               "reason":…,"conference":…,
//               "identity":{"status":"TN-Validation-Passed","attest":"A","passport":…,
//                           "failure":…,"detail":…},  (start: caller identity, contract §11)
//               "pusher":{…},                        (push registrations, contract §13)
//               "settings":{"msisdn":…,"callWaiting":…,"unconditional":…,"busy":…,
//                           "noAnswer":{"to":…,"timeout":S},"notReachable":…},  (contract §10)
//               "diversion":…,"callWaiting":true,"routed":true,"mtUnaware":true,  (routing, §10)
//               "transferTo":…,"transferOf":…,"meetingUri":…,"accept":…,"step":…},  (§10)
//    "outcome":{"accepted":true,"noop":false,"before":"Connected","after":"Connected"}
//              | {"accepted":false,"reasonCode":"OFFER_PENDING","before":…},
//    ["arms":{"invite":<ms>,"answer":<ms>,"offer":<ms>,"maxDuration":<ms>},]  (deadlines armed)
//    "prev":"<hex sha-256 of the previous record>"}
// Absent optional values are omitted. Decoding accepts any key order and ignores
// unknown keys, so newer writers stay readable.
#include <string>
#include <string_view>

#include "engine/call_table.hpp"
#include "engine/types.hpp"
#include "schemas/json_writer.hpp"
#include "schemas/result.hpp"

namespace engine {

enum class codec_error { malformed, unsupported_version };
std::string_view to_string(codec_error e) noexcept;

std::string encode_event(const event& e);
schemas::result<event, codec_error> decode_event(std::string_view bytes);

// One call with every field of call_state, as the log persists it (contract §9: the
// `calls` column family): {"callId":…,"from":…,…,"startSeq":N,"lastSeq":N,"events":N}.
std::string encode_call(const call_state& c);
schemas::result<call_state, codec_error> decode_call(std::string_view bytes);


// The contract's view of a call (§1, GET /calls/{callId}).
void write_call_view(schemas::json_writer& w, const call_state& c, std::string_view base_path);
std::string encode_call_view(const call_state& c, std::string_view base_path);

}  // namespace engine
