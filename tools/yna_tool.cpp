// yna-tool: the operator's CLI over the event log (contract §8). This file only turns
// flags into the argument structs of tools/cli/commands.hpp; each command lives in
// tools/cli/<command>.cpp. Exit codes: tools/cli/common.hpp and tools/README.md.
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tools/cli/commands.hpp"

int main(int argc, char** argv) {
  using namespace cli;
  CLI::App app{"yna-tool: read, check and audit the yna-engine event log"};
  app.require_subcommand(1);
  app.fallthrough();  // the global flags may also come after the command
  global_options g;
  app.add_option("--data-dir", g.data_dir, "The engine's data folder (the log is DIR/log)")->capture_default_str();
  app.add_flag("--json", g.json, "Machine-readable output");
  app.add_flag("--progress", g.progress, "Progress on stderr even when it is not a terminal");
  app.add_option("--archive", g.archives,
                 "An archive file (from `archive`) read before the live log, by verify, replay, timeline, audit, cdr "
                 "and export (repeatable, any order)");

  auto* token = app.add_subcommand("token", "Mint a development access token (development issuer only)");
  token_args ta;
  token->add_option("--msisdn", ta.numbers, "A number the token may call from and receive on (repeatable)")->required();
  token->add_option("--device-id", ta.device, "device_id claim");
  token->add_option("--sub", ta.sub, "sub claim (default dev-<first number>)");
  token->add_option("--ttl", ta.ttl, "Lifetime in seconds")->capture_default_str();
  token->add_option("--pop-key-out", ta.pop_key_out,
                    "Where to write the device's PoP private key (default ./yna-device-<device-id or number>.pem)");
  token->add_flag("--no-pop-key", ta.no_pop_key, "Mint a token without cnf.jwk (it can only call /start)");

  auto* pop = app.add_subcommand("pop", "Print an X-Authorization (PoP) value for one request");
  pop_args pa;
  pop->add_option("--key", pa.key_file, "The device's PoP private key (from `token`)")->required();
  pop->add_option("--token", pa.token, "The access token sent as Authorization: Bearer")->required();
  pop->add_option("--method", pa.method, "HTTP method")->capture_default_str();
  pop->add_option("--uri", pa.uri, "Request target as sent: path and query, e.g. /hold/ABC")->required();
  pop->add_option("--body", pa.body, "Request body, exactly as sent");
  pop->add_option("--body-file", pa.body_file, "Read the body from this file instead");
  pop->add_option("--ttl", pa.ttl, "Lifetime in seconds (at most 300)")->capture_default_str();

  auto* passport = app.add_subcommand("passport", "Check one SHAKEN PASSporT offline: format, chain, signature (contract §11)");
  passport_args pp;
  passport->add_option("--verify", pp.token, "The PASSporT, or a full Identity header value")->required();
  passport->add_option("--chain", pp.chain,
                       "PEM certificates its x5u names, signing certificate first (default <data-dir>/sti/chain.pem, "
                       "the engine's own)");
  passport->add_option("--trust", pp.trust, "PEM root certificates (default <data-dir>/sti/root.pem)");
  passport->add_option("--from", pp.from, "The calling number orig.tn must be");
  passport->add_option("--to", pp.to, "The called number dest.tn must name");
  passport->add_option("--at", pp.at, "Check iat within 60 s of this time (\"now\", ISO 8601, @epoch-ms)");

  auto* verify = app.add_subcommand("verify", "Check seqs, the hash chain, the indexes and the persisted call state");
  verify_args va;
  verify->add_flag("--no-state", va.no_state, "Skip folding the log to compare with the persisted call state");

  auto* replay = app.add_subcommand("replay", "Fold the whole log with the engine's apply; compare with the persisted call state");
  replay_args ra;
  replay->add_option("--until", ra.until, "Stop after this seq, or before the first event later than this time; "
                                          "then print the calls not ended at that moment");
  replay->add_flag("--all", ra.all, "Print every call (also ended ones)");
  replay->add_option("--call", ra.call_id, "Print only this call");
  replay->add_option("--base-path", ra.base_path, "The engine's --base-path (callObjectRef in --json)");

  auto* timeline = app.add_subcommand("timeline", "Every event of one call, with the notifications it caused");
  timeline_args tl;
  timeline->add_option("call-id", tl.call_id, "The callId")->required();
  timeline->add_option("--base-path", tl.base_path, "The engine's --base-path (callObjectRef in --json)");

  auto* audit = app.add_subcommand("audit", "Events by number, transaction id and time (flags combine)");
  audit_args aa;
  audit->add_option("--msisdn", aa.msisdns, "Events where this number acted or is a party (repeatable: any of them)");
  audit->add_option("--txn", aa.txn, "Events of this x-transaction-id");
  audit->add_option("--since", aa.since, "Events at or after this time (ISO 8601, @epoch-ms, -15m)");
  audit->add_option("--until", aa.until, "Events at or before this time");

  auto* cdr = app.add_subcommand("cdr", "Call detail records (CSV; JSON lines with --json)");
  cdr_args ca;
  cdr->add_option("--since", ca.since, "Calls started at or after this time");
  cdr->add_option("--until", ca.until, "Calls started at or before this time");
  cdr->add_flag("--all", ca.all, "Also calls that have not ended");

  auto* exp = app.add_subcommand("export", "The stored event records as JSON lines");
  export_args ea;
  exp->add_option("--from", ea.from_seq, "First seq");
  exp->add_option("--to", ea.to_seq, "Last seq");
  exp->add_option("--since", ea.since, "Events at or after this time");
  exp->add_option("--until", ea.until, "Events at or before this time");
  exp->add_option("--call", ea.call_id, "Only this call's events");

  auto* arch = app.add_subcommand("archive", "Move the oldest events out of the live log into an archive file");
  archive_args ar;
  arch->add_option("--before", ar.before, "Archive the events older than this time (ISO 8601, @epoch-ms, -2h)");
  arch->add_option("--before-seq", ar.before_seq, "Archive the events before this seq");
  arch->add_option("--out", ar.out, "The archive file to write (must not exist)");
  arch->add_option("--remove", ar.remove, "Only remove the range of this archive (written earlier) from the live log");
  arch->add_option("--admin-socket", ar.admin_socket, "The engine's admin socket (default <data-dir>/admin.sock)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? exit_ok : exit_usage;  // --help is not an error
  }
  install_signal_handlers();
  int rc = exit_usage;
  if (token->parsed()) rc = cmd_token(g, ta);
  else if (pop->parsed()) rc = cmd_pop(pa);
  else if (passport->parsed()) rc = cmd_passport(g, pp);
  else if (verify->parsed()) rc = cmd_verify(g, va);
  else if (replay->parsed()) rc = cmd_replay(g, ra);
  else if (timeline->parsed()) rc = cmd_timeline(g, tl);
  else if (audit->parsed()) rc = cmd_audit(g, aa);
  else if (cdr->parsed()) rc = cmd_cdr(g, ca);
  else if (exp->parsed()) rc = cmd_export(g, ea);
  else if (arch->parsed()) rc = cmd_archive(g, ar);
  // The log is closed and the scratch folder gone by now (the commands own them).
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    if (errno != EPIPE) complain("cannot write the output: {}", std::strerror(errno));
    return exit_cannot_open;  // a reader that went away (| head) is not a broken log
  }
  return interrupted() ? exit_interrupted : rc;
}
