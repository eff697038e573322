#include "engine/codec.hpp"
#include "engine/decide.hpp"

#include <doctest/doctest.h>

using namespace engine;

TEST_CASE("codec: an event survives encode/decode with every field") {
  event e;
  e.seq = 42;
  e.time = 1764200000123;
  e.act = action::end;
  e.call_id = "ABC";
  e.msisdn = "14250000001";
  e.actor_role = role::mt;
  e.sub = "user \"quoted\"";
  e.device_id = "phone-1";
  e.txn_id = "6f1c2c9e-8a51-4f0b-9d35-6b7a3cf1d2aa";
  e.method = "DELETE";
  e.path = "/end/ABC";
  e.sdp = "v=0\r\n";
  e.reason = "busy";
  e.conference = "no";
  e.rejected = schemas::reason_code::call_ended;
  e.status_before = call_status::terminated;
  e.prev_hash = std::string(64, 'a');
  const std::string bytes = encode_event(e);
  auto d = decode_event(bytes);
  REQUIRE(d.has_value());
  CHECK(encode_event(*d) == bytes);
  CHECK(d->rejected == schemas::reason_code::call_ended);
  CHECK(d->sub == e.sub);
  CHECK(d->sdp == e.sdp);
  CHECK(!d->status_after.has_value());
  CHECK(d->status_before == call_status::terminated);
}

TEST_CASE("codec: a start's caller identity survives the event, the call and the fold (contract §11)") {
  event e;
  e.seq = 7;
  e.act = action::start;
  e.call_id = "CALL";
  e.from = "14250000001";
  e.to = "14250000002";
  e.status_after = call_status::initial;
  caller_identity id;
  id.status = schemas::passport::verification::failed;
  id.attest = 'B';
  id.passport = "aaa.bbb.ccc";
  id.failure = "stale";
  id.detail = "iat 61 s old";
  e.identity = id;
  const std::string bytes = encode_event(e);
  CHECK(bytes.find(R"("identity":{"status":"TN-Validation-Failed","attest":"B","passport":"aaa.bbb.ccc",)"
                   R"("failure":"stale","detail":"iat 61 s old"})") != std::string::npos);
  auto d = decode_event(bytes);
  REQUIRE(d.has_value());
  CHECK(d->identity == e.identity);
  CHECK(encode_event(*d) == bytes);

  call_state c;
  apply(c, e);
  CHECK(c.identity == e.identity);  // ringing: the PASSporT is kept for the invitation
  auto back = decode_call(encode_call(c));
  REQUIRE(back.has_value());
  CHECK(back->identity == c.identity);
  const std::string view = encode_call_view(c, "");
  CHECK(view.find(R"("verificationStatus":"TN-Validation-Failed","attestation":"B")") != std::string::npos);

  event answer;
  answer.seq = 8;
  answer.act = action::connected;
  answer.call_id = "CALL";
  answer.actor_role = role::mt;
  answer.status_after = call_status::connected;
  apply(c, answer);
  REQUIRE(c.identity.has_value());
  CHECK(c.identity->passport.empty());  // no longer ringing: dropped from memory
  CHECK(c.identity->status == schemas::passport::verification::failed);

  // A start recorded before caller identity existed has none, and says Passed.
  event old = e;
  old.identity.reset();
  auto od = decode_event(encode_event(old));
  REQUIRE(od.has_value());
  CHECK_FALSE(od->identity.has_value());
  CHECK(verification_of(od->identity) == schemas::passport::verification::passed);

  CHECK(decode_event(R"({"v":1,"type":"start","payload":{"identity":{"status":"Maybe"}}})").error() ==
        codec_error::malformed);
  CHECK(decode_event(R"({"v":1,"type":"start","payload":{"identity":{"status":"No-TN-Validation","attest":"Z"}}})")
            .error() == codec_error::malformed);
}

TEST_CASE("codec: malformed and future records are refused") {
  CHECK(decode_event("not json").error() == codec_error::malformed);
  CHECK(decode_event("[1]").error() == codec_error::malformed);
  CHECK(decode_event(R"({"v":2,"type":"start"})").error() == codec_error::unsupported_version);
  CHECK(decode_event(R"({"v":1,"type":"teleport"})").error() == codec_error::malformed);
  CHECK(decode_event(R"({"v":1,"seq":"x","type":"start"})").error() == codec_error::malformed);
}

TEST_CASE("codec: call view has the contract's fields") {
  call_state c;
  c.call_id = "ID";
  c.from = "14250000001";
  c.to = "14250000002";
  c.status = call_status::connected;
  c.created_at = 5;
  c.connected_at = 6;
  c.offer = pending_offer{role::mt, offer_kind::hold, 7, {}, {}};
  const std::string v = encode_call_view(c, "/api");
  CHECK(v.find(R"("callObjectRef":"/api/calls/ID")") != std::string::npos);
  CHECK(v.find(R"("pendingOffer":{"by":"14250000002","role":"MT","kind":"hold"})") != std::string::npos);
  CHECK(v.find("endedAt") == std::string::npos);
  CHECK(v.find(R"("connectedAt":6)") != std::string::npos);
}

TEST_CASE("codec: regressions found by fuzzing") {
  // a version that truncates to 1 in 32 bits is still unknown
  CHECK(decode_event(R"({"v":4294967297,"seq":1,"type":"end","outcome":{"accepted":true}})").error() ==
        codec_error::unsupported_version);
  // a persisted call state without a callId is not one the engine wrote
  CHECK(decode_call(R"({"from":"1","to":"2","status":"Hold"})").error() == codec_error::malformed);
  CHECK(decode_call(R"({"callId":"B","status":"Nonsense"})").error() == codec_error::malformed);
  CHECK(decode_call(R"({"callId":"B","status":"Hold","retired":true})")->retired);
}
