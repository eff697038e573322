// yna-microbench: per-operation costs on the request path, single-threaded.
// Each operation runs `--iterations` times per round, timed one by one; prints the
// median and p99 of each round, for `--rounds` rounds (the machine is shared: look at
// the medians across rounds, not one number).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "engine/call_table.hpp"
#include "engine/codec.hpp"
#include "engine/decide.hpp"
#include "schemas/api.hpp"
#include "schemas/dev_issuer.hpp"
#include "schemas/jose.hpp"
#include "schemas/passport.hpp"
#include "schemas/pop_token.hpp"
#include "schemas/sti_cert.hpp"
#include "transport/auth.hpp"
#include "transport/caller_id.hpp"
#include "transport/pop.hpp"

namespace {

using clk = std::chrono::steady_clock;

struct stats {
  double median_us, p99_us;
};

stats measure(int iterations, const std::function<void(int)>& op) {
  std::vector<double> t(static_cast<std::size_t>(iterations));
  for (int i = 0; i < iterations; ++i) {
    const auto a = clk::now();
    op(i);
    t[static_cast<std::size_t>(i)] = std::chrono::duration<double, std::micro>(clk::now() - a).count();
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t[t.size() * 99 / 100]};
}

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

constexpr const char* sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";

}  // namespace

int main(int argc, char** argv) {
  int iterations = 2000, rounds = 3;
  CLI::App app{"yna-microbench: per-operation costs on the request path"};
  app.add_option("--iterations", iterations, "Operations per round")->capture_default_str();
  app.add_option("--rounds", rounds, "Rounds")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  namespace jose = schemas::jose;
  const auto issuer_key = jose::private_key::generate_rsa(2048);
  const schemas::dev_issuer issuer{issuer_key, "dev", "yna-dev"};
  const auto device = jose::private_key::generate_rsa(2048);
  schemas::access_claims c;
  c.sub = "bench";
  c.msisdns = {"14250000001"};
  c.device_id = "d1";
  c.cnf_jwk_json = device.public_part().to_jwk_json();
  c.iat = now_s();
  c.exp = c.iat + 3600;
  const std::string token = schemas::mint_access_token(issuer, c);
  const std::string authorization = "Bearer " + token;
  transport::issuer_config cfg;
  cfg.keys.push_back({"dev", issuer_key.public_part()});
  cfg.issuer = "yna-dev";
  const transport::token_verifier verifier(cfg);
  const transport::token_verifier cold(cfg, 0);  // no cache: every verify does the RSA work
  transport::pop_verifier pops({10, 300, 10'000'000, 0});  // one key, no per-key share

  const std::string body = std::string(R"({"sdp":")") + "v=0\\r\\no=- 1 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\nm=audio 9 RTP/AVP 0\\r\\n\"}";
  const std::string target = "/connected/0AEE1B58BAEEDA3EABA42B32EBB3DFE0";
  // PoP tokens are built beforehand: signing is the client's cost, not the server's.
  std::vector<std::string> pop_tokens, pop_tokens2;  // a jti is accepted once: one set per operation
  const auto principal = verifier.verify_authorization(authorization, now_s());
  if (!principal) {
    fmt::print(stderr, "bench setup: token does not verify\n");
    return 1;
  }
  const std::string start_body = R"({"from":"14250000001","to":"14250000002","sdp":")" +
                                 std::string("v=0\\r\\no=- 1 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\nm=audio 9 RTP/AVP 0\\r\\n") + "\"}";
  engine::call_state call;
  {
    engine::command s;
    s.act = engine::action::start;
    s.new_call_id = "C";
    s.who = engine::actor{"a", "d", {"14250000001"}, false, ""};
    s.from = "14250000001";
    s.to = "14250000002";
    s.sdp = sdp;
    engine::apply(call, engine::decide(nullptr, s, 1));
  }
  engine::command ring;
  ring.act = engine::action::ringing;
  ring.call_id = "C";
  ring.who = engine::actor{"b", "d", {"14250000002"}, false, ""};
  ring.sdp = sdp;
  const engine::event sample = engine::decide(&call, ring, 2);

  // Caller identity (contract §11): the development chain, its signer and its trust store.
  const auto sti = schemas::sti::make_dev_chain("0YNA", now_s());
  const auto sti_key = jose::private_key::from_pem(sti.key_pem);
  auto sti_trust = schemas::sti::trust_store::from_pem(sti.root_pem);
  if (!sti_key || !sti_trust) {
    fmt::print(stderr, "bench setup: development STI chain unusable\n");
    return 1;
  }
  const transport::sti_signer signer{*sti_key, sti.chain_pem, "https://cert.example.com/sti/cert.pem", {}};
  const auto sti_chain = sti_trust->verify(sti.chain_pem, now_s());
  const std::string passport = transport::sign_start(signer, "14250000001", "14250000002", now_s()).passport;

  fmt::print("{:<34} {:>12} {:>12}\n", "operation", "median µs", "p99 µs");
  // Rows: JWT verify without and with the token cache; PoP verify alone (RSA verify of
  // the PoP signature, edts, jti); the whole per-request authentication of a call
  // endpoint (cached bearer + PoP); input decoding; decide+apply; the event codec.
  for (int round = 1; round <= rounds; ++round) {
    pop_tokens.clear();
    pop_tokens2.clear();
    for (int i = 0; i < iterations; ++i) {
      pop_tokens.push_back(schemas::build_request_pop(device, "POST", target, body, authorization, now_s()));
      pop_tokens2.push_back(schemas::build_request_pop(device, "POST", target, body, authorization, now_s()));
    }
    fmt::print("round {}\n", round);
    auto row = [](std::string_view name, stats s) { fmt::print("  {:<32} {:>12.2f} {:>12.2f}\n", name, s.median_us, s.p99_us); };
    row("bearer JWT verify (RS256), cold", measure(iterations, [&](int) {
          if (!cold.verify_authorization(authorization, now_s())) std::abort();
        }));
    row("bearer JWT verify, cached", measure(iterations, [&](int) {
          if (!verifier.verify_authorization(authorization, now_s())) std::abort();
        }));
    row("PoP verify (RS256 + edts + jti)", measure(iterations, [&](int i) {
          transport::pop_request r{"POST", target, body, [&](std::string_view n) -> std::optional<std::string_view> {
                                     if (n.size() == 13) return std::string_view(authorization);
                                     return std::nullopt;
                                   }};
          if (!pops.verify(pop_tokens[static_cast<std::size_t>(i)], &*principal->cnf_key, principal->cnf_thumbprint, r, now_s())) std::abort();
        }));
    row("auth per request (cached + PoP)", measure(iterations, [&](int i) {
          const auto p = verifier.verify_authorization(authorization, now_s());
          transport::pop_request r{"POST", target, body, [&](std::string_view n) -> std::optional<std::string_view> {
                                     if (n.size() == 13) return std::string_view(authorization);
                                     return std::nullopt;
                                   }};
          if (!p || !pops.verify(pop_tokens2[static_cast<std::size_t>(i)], &*p->cnf_key, p->cnf_thumbprint, r, now_s())) std::abort();
        }));
    row("decode CallStartRequest", measure(iterations, [&](int) {
          if (!schemas::decode_start_request(start_body)) std::abort();
        }));
    row("decode CallStatusRequest (sdp)", measure(iterations, [&](int) {
          if (!schemas::decode_status_request(body, true)) std::abort();
        }));
    row("PASSporT sign (ES256, /start)", measure(iterations, [&](int) {
          if (transport::sign_start(signer, "14250000001", "14250000002", now_s()).passport.empty()) std::abort();
        }));
    row("PASSporT verify, chain cached", measure(iterations, [&](int) {
          // What the STI-VS does for a gateway's /start when x5u's chain is cached.
          auto h = schemas::passport::parse_identity_header(passport);
          auto d = h ? schemas::passport::decode(h->token) : schemas::result<schemas::passport::decoded,
                                                                               schemas::passport::failure>(
                                                                 schemas::failure{schemas::passport::failure::malformed});
          if (!d || schemas::passport::check_call(d->body, "14250000001", "14250000002", now_s()) ||
              !schemas::passport::signature_ok(*d, sti_chain->key))
            std::abort();
        }));
    row("STI chain verify (2 certificates)", measure(iterations, [&](int) {
          if (!sti_trust->verify(sti.chain_pem, now_s())) std::abort();
        }));
    row("decide + apply (ringing)", measure(iterations, [&](int) {
          engine::call_state copy = call;
          engine::apply(copy, engine::decide(&copy, ring, 3));
        }));
    row("encode event", measure(iterations, [&](int) {
          if (engine::encode_event(sample).empty()) std::abort();
        }));
    row("decode event", measure(iterations, [&](int) {
          static const std::string bytes = engine::encode_event(sample);
          if (!engine::decode_event(bytes)) std::abort();
        }));
  }

  // The call table's memory per call (heap bytes, mallinfo2) while active and after it
  // ended (until retired), and the cost of encoding each call's persisted state.
  {
    constexpr int n = 100'000;
    const auto heap = [] { return static_cast<double>(mallinfo2().uordblks); };
    const double h0 = heap();
    auto table = std::make_unique<engine::call_table>();
    engine::event_seq seq = 0;
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      engine::command s;
      s.act = engine::action::start;
      s.new_call_id = fmt::format("{:032X}", i + 1);
      s.who = engine::actor{"a", "d", {fmt::format("1425{:07d}", i % 5000)}, false, ""};
      s.from = s.who.msisdns[0];
      s.to = fmt::format("1426{:07d}", i % 5000);
      s.sdp = sdp;
      s.client_correlator = fmt::format("corr-{}", i);
      table->apply(engine::decide(nullptr, s, ++seq));
      ids.push_back(s.new_call_id);
    }
    const double h1 = heap();
    const auto t0 = clk::now();
    std::size_t state_bytes = 0;  // what each batch persists per call it changes (contract §9)
    for (const auto& [id, c] : table->calls()) state_bytes += engine::encode_call(c).size();
    const double snap_us = std::chrono::duration<double, std::micro>(clk::now() - t0).count();
    for (int i = 0; i < n; ++i) {
      engine::command e;
      e.act = engine::action::end;
      e.call_id = ids[static_cast<std::size_t>(i)];
      e.who = engine::actor{"a", "d", {fmt::format("1425{:07d}", i % 5000)}, false, ""};
      table->apply(engine::decide(table->find(e.call_id), e, ++seq));
    }
    const double h2 = heap();
    fmt::print("call table, {} calls: {:.0f} bytes per active call, {:.0f} bytes per ended call (kept); "
               "persisted state {:.2f} µs and {:.0f} bytes per call\n",
               n, (h1 - h0) / n, (h2 - h0) / n, snap_us / n, static_cast<double>(state_bytes) / n);
  }
  return 0;
}
