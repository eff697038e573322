// `passport --verify TOKEN`: checks one SHAKEN PASSporT offline (contract §11), the way
// the engine's verification service does, against a certificate chain and roots on disk
// (no x5u fetch). Prints one row per check; --json prints the same as one object.
#include "schemas/json_writer.hpp"
#include "schemas/passport.hpp"
#include "schemas/sti_cert.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/table.hpp"

namespace cli {

namespace {

struct check_row {
  std::string name, result, detail;
};

}  // namespace

int cmd_passport(const global_options& g, const passport_args& a) {
  namespace pp = schemas::passport;
  const std::string chain_file = a.chain.empty() ? (std::filesystem::path(g.data_dir) / "sti" / "chain.pem").string() : a.chain;
  const std::string trust_file = a.trust.empty() ? (std::filesystem::path(g.data_dir) / "sti" / "root.pem").string() : a.trust;
  const engine::epoch_ms now = now_ms();
  std::optional<engine::epoch_ms> at;
  if (!a.at.empty()) {
    at = parse_time(a.at, now);
    if (!at) {
      complain("--at {}: not a time", a.at);
      return exit_usage;
    }
  }

  std::vector<check_row> rows;
  std::optional<pp::failure> first;
  auto record = [&](std::string name, std::optional<pp::failure> f, std::string detail) {
    rows.push_back({std::move(name), f ? "FAILED " + std::string(pp::to_string(*f)) : "ok", std::move(detail)});
    if (f && !first) first = f;
  };

  std::optional<pp::decoded> d;
  auto header = pp::parse_identity_header(a.token);
  if (!header) {
    record("identity header", header.error(), "not a PASSporT or an RFC 8224 Identity header value");
  } else {
    auto decoded = pp::decode(header->token);
    if (!decoded) {
      record("format", decoded.error(), "header or claims not what a SHAKEN PASSporT has");
    } else {
      d = std::move(*decoded);
      record("format", std::nullopt, "ppt " + d->head.ppt + ", x5u " + d->head.x5u);
      if (header->ppt && *header->ppt != d->head.ppt)
        record("identity header", pp::failure::bad_ppt, "ppt=" + *header->ppt + " but the PASSporT says " + d->head.ppt);
    }
  }
  if (d) {
    auto chain = read_file(chain_file);
    auto roots = read_file(trust_file);
    if (!chain || !roots) {
      complain("cannot read {}", !chain ? chain_file : trust_file);
      return exit_cannot_open;
    }
    auto trust = schemas::sti::trust_store::from_pem(*roots);
    if (!trust) {
      complain("{}: {}", trust_file, trust.error());
      return exit_cannot_open;
    }
    const std::int64_t check_s = (at ? *at : now) / 1000;
    auto key = trust->verify(*chain, check_s);
    record("certificate chain", key ? std::nullopt : std::optional<pp::failure>(key.error()),
           chain_file + " against " + trust_file);
    if (key)
      record("signature", pp::signature_ok(*d, key->key) ? std::nullopt : std::optional<pp::failure>(pp::failure::bad_signature),
             "ES256 under the chain's signing certificate");
    if (at) {
      const auto f = pp::check_call(d->body, d->body.orig, d->body.dest.front(), check_s);
      record("iat", f, "issued " + std::to_string(check_s - d->body.iat) + " s before " + format_time(*at));
    }
    if (!a.from.empty()) {
      const auto want = pp::canonical_tn(a.from);
      record("orig", want && *want == d->body.orig ? std::nullopt : std::optional<pp::failure>(pp::failure::orig_mismatch),
             "orig.tn " + d->body.orig + ", --from " + a.from);
    }
    if (!a.to.empty()) {
      const auto want = pp::canonical_tn(a.to);
      bool found = false;
      for (const auto& t : d->body.dest) found = found || (want && t == *want);
      record("dest", found ? std::nullopt : std::optional<pp::failure>(pp::failure::dest_mismatch),
             "dest.tn has " + std::to_string(d->body.dest.size()) + " number(s), --to " + a.to);
    }
  }
  const auto status = first ? pp::verification::failed : pp::verification::passed;

  if (g.json) {
    schemas::json_writer w;
    w.begin_object().field("verificationStatus", pp::to_string(status));
    if (first) w.field("reason", pp::to_string(*first));
    if (d) {
      if (d->body.attest) w.field("attestation", std::string_view(&d->body.attest, 1));
      w.field("x5u", std::string_view(d->head.x5u)).field("ppt", std::string_view(d->head.ppt));
      w.field("orig", std::string_view(d->body.orig)).key("dest").begin_array();
      for (const auto& t : d->body.dest) w.value(std::string_view(t));
      w.end_array().field("iat", d->body.iat);
      if (!d->body.origid.empty()) w.field("origid", std::string_view(d->body.origid));
      if (d->body.div) w.field("div", std::string_view(*d->body.div));
    }
    w.key("checks").begin_array();
    for (const auto& r : rows)
      w.begin_object().field("check", std::string_view(r.name)).field("result", std::string_view(r.result))
          .field("detail", std::string_view(r.detail)).end_object();
    w.end_array().end_object();
    std::puts(w.str().c_str());
  } else {
    if (d) {
      std::printf("PASSporT  orig %s → dest %s, attest %s, iat %s, origid %s\n", d->body.orig.c_str(),
                  d->body.dest.front().c_str(), d->body.attest ? std::string(1, d->body.attest).c_str() : "-",
                  format_time(d->body.iat * 1000).c_str(), d->body.origid.empty() ? "-" : d->body.origid.c_str());
    }
    table t({{"CHECK"}, {"RESULT"}, {"DETAIL", table::align::left, 100}});
    for (const auto& r : rows) t.add({r.name, r.result, r.detail});
    t.print(stdout);
    std::printf("%s\n", std::string(pp::to_string(status)).c_str());
  }
  return first ? exit_check_failed : exit_ok;
}

}  // namespace cli
