#include "schemas/api.hpp"

#include <doctest/doctest.h>

using namespace schemas;

namespace {
constexpr const char* sdp_json = R"(v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n)";
std::string start_body(std::string fields) { return "{" + fields + "}"; }
reason_code start_error(const std::string& body) {
  auto r = decode_start_request(body);
  REQUIRE(!r.has_value());
  return r.error().code;
}
}  // namespace

TEST_CASE("api: CallStartRequest decodes and normalizes numbers") {
  auto r = decode_start_request(start_body(std::string(R"("to":"+14254369410","from":"14254369411","sdp":")") +
                                           sdp_json + R"(","clientCorrelator":"abc","extra":{"x":1})"));
  REQUIRE(r.has_value());
  CHECK(r->to == "14254369410");
  CHECK(r->from == "14254369411");
  CHECK(r->client_correlator == "abc");
  CHECK(r->sdp.rfind("v=0\r\n", 0) == 0);
}

TEST_CASE("api: CallStartRequest input rules give the contract's reasonCodes") {
  const std::string sdp = std::string(R"("sdp":")") + sdp_json + "\"";
  CHECK(start_error("") == reason_code::invalid_json);
  CHECK(start_error("{") == reason_code::invalid_json);
  CHECK(start_error("[1,2]") == reason_code::invalid_json);
  CHECK(start_error("\"str\"") == reason_code::invalid_json);
  CHECK(start_error("{\"to\":\"\xff\xfe\"}") == reason_code::invalid_json);  // invalid UTF-8
  CHECK(start_error(start_body(R"("from":"14254369411",)" + sdp)) == reason_code::missing_field);
  CHECK(start_error(start_body(R"("to":"14254369411",)" + sdp)) == reason_code::missing_field);
  CHECK(start_error(start_body(R"("to":"14254369411","from":"14254369412")")) == reason_code::missing_field);
  CHECK(start_error(start_body(R"("to":14254369411,"from":"14254369412",)" + sdp)) == reason_code::invalid_field);
  CHECK(start_error(start_body(R"("to":"14254369411","from":"14254369412","sdp":5)")) == reason_code::invalid_field);
  CHECK(start_error(start_body(R"("to":"12345","from":"14254369412",)" + sdp)) == reason_code::invalid_msisdn);
  CHECK(start_error(start_body(R"("to":"1234567890123456","from":"14254369412",)" + sdp)) ==
        reason_code::invalid_msisdn);
  CHECK(start_error(start_body(R"("to":"14254a69411","from":"14254369412",)" + sdp)) == reason_code::invalid_msisdn);
  CHECK(start_error(start_body(R"("to":"14254369411","from":"+14254369411",)" + sdp)) == reason_code::invalid_field);
  CHECK(start_error(start_body(R"("to":"14254369411","from":"14254369412","sdp":"hello")")) ==
        reason_code::invalid_sdp);
  CHECK(start_error(start_body(R"("to":"14254369411","from":"14254369412","clientCorrelator":")" +
                               std::string(257, 'c') + "\"," + sdp)) == reason_code::invalid_field);
  CHECK(start_error(start_body(R"("to":"14254369411","from":"14254369412","clientCorrelator":"a\u0001",)" + sdp)) ==
        reason_code::invalid_field);
}

TEST_CASE("api: CallStatusRequest") {
  CHECK(decode_status_request("", false).has_value());
  CHECK(decode_status_request("  ", false).has_value());
  CHECK(decode_status_request("{}", false).has_value());
  CHECK(decode_status_request("{}", true).error().code == reason_code::missing_field);
  CHECK(decode_status_request("", true).error().code == reason_code::missing_field);
  CHECK(decode_status_request(R"({"sdp":1})", false).error().code == reason_code::invalid_field);
  CHECK(decode_status_request(R"({"sdp":"x"})", false).error().code == reason_code::invalid_sdp);
  CHECK(decode_status_request("nope", false).error().code == reason_code::invalid_json);
  auto ok = decode_status_request(std::string(R"({"sdp":")") + sdp_json + "\"}", true);
  REQUIRE(ok.has_value());
  CHECK(ok->sdp.has_value());
}

TEST_CASE("api: SDP shape check (RFC 8866)") {
  CHECK(is_valid_sdp("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"));
  CHECK(is_valid_sdp("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=audio 9 RTP/AVP 0"));
  CHECK_FALSE(is_valid_sdp(""));
  CHECK_FALSE(is_valid_sdp("v=1\r\no=-\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"));
  CHECK_FALSE(is_valid_sdp("o=-\r\nv=0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"));
  CHECK_FALSE(is_valid_sdp("v=0\r\no=-\r\ns=-\r\nt=0 0\r\n"));         // no m=
  CHECK_FALSE(is_valid_sdp("v=0\r\no=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"));  // no s=
  CHECK_FALSE(is_valid_sdp("v=0\r\no=-\r\ns=-\r\nt=0 0\r\n\r\nm=audio 9 RTP/AVP 0\r\n"));  // blank line
  CHECK_FALSE(is_valid_sdp("v=0\r\no=-\r\ns=-\r\nt=0 0\r\nX=1\r\nm=audio 9 RTP/AVP 0\r\n"));
  std::string big = "v=0\r\no=-\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
  while (big.size() <= max_sdp_bytes) big += "a=x\r\n";
  CHECK_FALSE(is_valid_sdp(big));
}

TEST_CASE("api: GUIDs and numbers") {
  CHECK(is_valid_guid("a777980f-9e7a-4f4a-ae26-22feb3964399"));
  CHECK(is_valid_guid("{A777980F-9E7A-4F4A-AE26-22FEB3964399}"));
  CHECK_FALSE(is_valid_guid("a777980f9e7a4f4aae2622feb3964399"));
  CHECK_FALSE(is_valid_guid("a777980f-9e7a-4f4a-ae26-22feb396439g"));
  CHECK_FALSE(is_valid_guid(""));
  CHECK(normalize_msisdn("+123456") == "123456");
  CHECK_FALSE(normalize_msisdn("++123456").has_value());
  CHECK_FALSE(normalize_msisdn("12345").has_value());
  CHECK(tel_uri("14254369410") == "tel:+14254369410");
}

TEST_CASE("api: ErrorInfo and CallStartResponse encoding") {
  CHECK(encode_error_info(reason_code::none, "") == "{}");
  CHECK(encode_error_info(reason_code::call_ended, "ended \"now\"") ==
        R"({"errors":[{"reasonCode":"CALL_ENDED","systemMessage":"ended \"now\"","userMessage":"The call has ended."}]})");
  CHECK(encode_start_response("2", "1", "ID", std::nullopt) == R"({"to":"2","from":"1","callId":"ID"})");
  CHECK(encode_start_response("2", "1", "ID", std::string("c")) ==
        R"({"to":"2","from":"1","callId":"ID","clientCorrelator":"c"})");
}

TEST_CASE("reason codes: names, statuses and the inverse") {
  for (std::uint8_t i = 1; i < reason_code_count; ++i) {
    const auto c = static_cast<reason_code>(i);
    CHECK(!to_string(c).empty());
    CHECK(parse_reason_code(to_string(c)) == c);
    CHECK(http_status(c) >= 400);
  }
  CHECK(http_status(reason_code::request_timeout) == 408);
  CHECK(http_status(reason_code::internal_error) == 500);
  CHECK(http_status(reason_code::body_too_large) == 413);
  CHECK(http_status(reason_code::call_not_found) == 404);
  CHECK(http_status(reason_code::forbidden) == 403);
  CHECK(http_status(reason_code::pop_replayed) == 401);
}

TEST_CASE("api: PUT /settings bodies (contract §10): defaults, rules, and every refusal names its field") {
  const std::string self = "14250000001";
  auto ok = schemas::decode_settings_request(
      R"({"callWaiting":false,"forwarding":{"unconditional":null,"busy":"+14250000002",)"
      R"("noAnswer":{"to":"14250000003","timeout":25},"notReachable":"14250000004","later":1}})",
      self);
  REQUIRE(ok.has_value());
  CHECK_FALSE(ok->call_waiting);
  CHECK_FALSE(ok->unconditional);
  CHECK(ok->busy == std::optional<std::string>("14250000002"));
  CHECK(ok->no_answer == std::optional<std::string>("14250000003"));
  CHECK(ok->no_answer_timeout_s == 25);
  CHECK(ok->not_reachable == std::optional<std::string>("14250000004"));
  // The GET body decodes to the same settings.
  const std::string shown = schemas::encode_settings(self, *ok);
  CHECK(shown == R"({"msisdn":"14250000001","callWaiting":false,"forwarding":{"unconditional":null,)"
                 R"("busy":"14250000002","noAnswer":{"to":"14250000003","timeout":25},"notReachable":"14250000004"}})");
  auto again = schemas::decode_settings_request(shown, self);
  REQUIRE(again.has_value());
  CHECK(*again == *ok);

  auto defaults = schemas::decode_settings_request("{}", self);
  REQUIRE(defaults.has_value());
  CHECK(*defaults == schemas::settings_request{});
  CHECK(defaults->call_waiting);
  auto default_timeout = schemas::decode_settings_request(R"({"forwarding":{"noAnswer":{"to":"14250000003"}}})", self);
  REQUIRE(default_timeout.has_value());
  CHECK(default_timeout->no_answer_timeout_s == 20);

  auto refused = [&](std::string_view body) {
    auto r = schemas::decode_settings_request(body, self);
    REQUIRE_FALSE(r.has_value());
    return std::string(schemas::to_string(r.error().code)) + ": " + r.error().message;
  };
  CHECK(refused("[]").starts_with("INVALID_JSON"));
  CHECK(refused(R"({"callWaiting":"yes"})").find("callWaiting") != std::string::npos);
  CHECK(refused(R"({"forwarding":[]})").find("'forwarding'") != std::string::npos);
  CHECK(refused(R"({"forwarding":{"busy":42}})").find("forwarding.busy") != std::string::npos);
  CHECK(refused(R"({"forwarding":{"busy":"12"}})").starts_with("INVALID_MSISDN"));
  CHECK(refused(R"({"forwarding":{"unconditional":"+14250000001"}})").find("to itself") != std::string::npos);
  CHECK(refused(R"({"forwarding":{"noAnswer":{"timeout":30}}})").starts_with("MISSING_FIELD"));
  CHECK(refused(R"({"forwarding":{"noAnswer":{"to":"14250000003","timeout":4}}})").find("5 to 300") != std::string::npos);
  CHECK(refused(R"({"forwarding":{"noAnswer":{"to":"14250000003","timeout":301}}})").find("5 to 300") !=
        std::string::npos);
  CHECK(refused(R"({"forwarding":{"noAnswer":{"to":"14250000003","timeout":20.5}}})").find("timeout") !=
        std::string::npos);
  CHECK(refused(R"({"forwarding":{"noAnswer":"14250000003"}})").find("noAnswer") != std::string::npos);
}
