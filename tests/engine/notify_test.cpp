#include "engine/notify.hpp"

#include <doctest/doctest.h>

#include "engine/call_table.hpp"
#include "engine/decide.hpp"

using namespace engine;

namespace {

constexpr const char* sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
const actor mo{"mo-sub", "mo-phone", {"14250000001"}, false, ""};
const actor mt{"mt-sub", "mt-phone", {"14250000002"}, false, ""};

struct call_driver {
  call_table table;
  event_seq seq = 0;
  event last;

  event run(action a, const actor& who, std::optional<std::string> body_sdp = sdp,
            std::optional<std::string> reason = std::nullopt) {
    command c;
    c.act = a;
    c.who = who;
    c.sdp = std::move(body_sdp);
    c.reason = std::move(reason);
    if (a == action::start) {
      c.new_call_id = "C1";
      c.from = "14250000001";
      c.to = "14250000002";
    } else {
      c.call_id = "C1";
    }
    event e = decide(a == action::start ? nullptr : table.find("C1"), c, 1000 + static_cast<epoch_ms>(seq));
    e.seq = ++seq;
    table.apply(e);
    last = e;
    return e;
  }
};

}  // namespace

TEST_CASE("notify: the invitation goes to MT devices, with the offer") {
  call_driver d;
  auto n = derive_notification(d.run(action::start, mo));
  REQUIRE(n);
  CHECK(n->type == notification_type::invitation);
  CHECK(n->is_for("mt-sub", "any-device", {"14250000002"}));
  CHECK_FALSE(n->is_for("mo-sub", "other-device", {"14250000001"}));  // MO is not invited
  CHECK(n->recipients() == std::vector<std::string>{"14250000002"});
  const std::string f = encode_notification(*n, "/v1");
  CHECK(f.rfind(R"({"sessionInvitationNotification":{"originatorAddress":"tel:+14250000001","receiverAddress":"tel:+14250000002","callObjectRef":"/v1/calls/C1",)", 0) == 0);
  CHECK(f.find(R"("verificationStatus":"TN-Validation-Passed")") != std::string::npos);
  CHECK(f.find(R"("notificationReference":{"epochTime":1000,"notificationId":1,"sequenceNumber":1})") != std::string::npos);
}

TEST_CASE("notify: each status change, told to both parties but the causing device") {
  call_driver d;
  d.run(action::start, mo);
  struct step {
    action a;
    const actor* who;
    bool with_sdp;
    const char* status;
    std::optional<int> code;
  };
  const step steps[] = {
      {action::in_progress, &mt, false, "InProgress", 180},
      {action::in_progress, &mt, true, "InProgress", 183},
      {action::proceeding, &mt, false, "Proceeding", std::nullopt},
      {action::ringing, &mt, false, "Ringing", 180},
      {action::connected, &mt, true, "Connected", std::nullopt},
      {action::hold, &mo, true, "Hold", std::nullopt},
      {action::accept_hold, &mt, true, "Hold", std::nullopt},
      {action::resume, &mo, true, "Resume", std::nullopt},
      {action::accept_resume, &mt, true, "Connected", std::nullopt},
      {action::renegotiate, &mt, true, "Connected", std::nullopt},
      {action::renegotiate, &mo, true, "Connected", std::nullopt},
  };
  for (const auto& s : steps) {
    CAPTURE(to_string(s.a));
    const event e = d.run(s.a, *s.who, s.with_sdp ? std::optional<std::string>(sdp) : std::nullopt);
    REQUIRE(e.accepted());
    auto n = derive_notification(e);
    REQUIRE(n);
    CHECK(n->type == notification_type::status);
    CHECK(n->status == s.status);
    CHECK(n->response_code == s.code);
    CHECK(n->sdp.has_value() == s.with_sdp);
    CHECK(n->seq == e.seq);
    // the causing device is not told; the same party's other devices and the other party are
    CHECK_FALSE(n->is_for(s.who->sub, s.who->device_id, s.who->msisdns));
    CHECK(n->is_for(s.who->sub, "another-device", s.who->msisdns));
    const actor& other = s.who == &mo ? mt : mo;
    CHECK(n->is_for(other.sub, other.device_id, other.msisdns));
    CHECK_FALSE(n->is_for("eve", "d", {"19990000000"}));
  }
  const event end = d.run(action::end, mt, std::nullopt, "bye");
  auto n = derive_notification(end);
  REQUIRE(n);
  CHECK(n->status == "Terminated");
  CHECK(n->reason == "bye");
  CHECK(encode_notification(*n, "").find(R"("reason":"bye")") != std::string::npos);
}

TEST_CASE("notify: rejected and no-op events notify nobody") {
  call_driver d;
  d.run(action::start, mo);
  CHECK_FALSE(derive_notification(d.run(action::hold, mo)).has_value());  // INVALID_STATE
  d.run(action::end, mo);
  CHECK_FALSE(derive_notification(d.run(action::end, mt, std::nullopt)).has_value());  // noop
}

TEST_CASE("notify: a replayed event gives the same frame; ringing calls are tracked for late devices") {
  call_driver d;
  const event start = d.run(action::start, mo);
  CHECK(encode_notification(*derive_notification(start), "") == encode_notification(*derive_notification(start), ""));
  auto ringing = d.table.ringing("14250000002");
  REQUIRE(ringing.size() == 1);
  CHECK(encode_notification(invitation_for(*ringing[0]), "") == encode_notification(*derive_notification(start), ""));
  d.run(action::ringing, mt);
  CHECK(d.table.ringing("14250000002").size() == 1);
  d.run(action::connected, mt);
  CHECK(d.table.ringing("14250000002").empty());
}

TEST_CASE("notify: the token's name is originatorName in invitations and MT's is receiverName in statuses (contract §10)") {
  call_driver d;
  actor alice = mo, bob = mt;
  alice.name = "Alice \"A\" Smith";
  bob.name = "Bob";
  const event start = d.run(action::start, alice);
  CHECK(start.mo_name == alice.name);
  const auto inv = derive_notification(start);
  REQUIRE(inv.has_value());
  const std::string frame = encode_notification(*inv, "");
  CHECK(frame.find(R"("originatorName":"Alice \"A\" Smith")") != std::string::npos);
  CHECK(frame.find("receiverName") == std::string::npos);  // MT's name is not known yet
  // A device connecting later gets the same invitation from the call's state.
  CHECK(encode_notification(invitation_for(*d.table.find("C1")), "").find(R"("originatorName":"Alice)") !=
        std::string::npos);

  // Before MT said its name: statuses carry none.
  actor nameless_mt = mt;
  const event progress = d.run(action::in_progress, nameless_mt, std::nullopt);
  CHECK(encode_notification(*derive_notification(progress), "").find("receiverName") == std::string::npos);
  const event ring = d.run(action::ringing, bob, std::nullopt);
  CHECK(encode_notification(*derive_notification(ring), "").find(R"("receiverName":"Bob")") != std::string::npos);
  d.run(action::connected, nameless_mt);  // a request without a name does not forget it
  const event hold = d.run(action::hold, alice);  // MO's request: MT's name from the call
  CHECK(encode_notification(*derive_notification(hold), "").find(R"("receiverName":"Bob")") != std::string::npos);
  CHECK(d.table.find("C1")->mt_name == "Bob");
  CHECK(d.table.find("C1")->mo_name == alice.name);
}
