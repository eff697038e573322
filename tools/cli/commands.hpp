#pragma once
// The yna-tool commands (contract §8), one function each; tools/yna_tool.cpp parses the
// flags into these structs. Each returns an exit_code (tools/cli/common.hpp).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/cli/common.hpp"

namespace cli {

struct token_args {
  std::vector<std::string> numbers;
  std::string device, sub, pop_key_out;
  std::int64_t ttl = 3600;
  bool no_pop_key = false;
};
int cmd_token(const global_options& g, const token_args& a);

struct pop_args {
  std::string key_file, token, method = "POST", uri, body, body_file;
  std::int64_t ttl = 120;
};
int cmd_pop(const pop_args& a);

struct passport_args {
  std::string token;          // a compact PASSporT or an RFC 8224 Identity header value
  std::string chain, trust;   // PEM files; default <data-dir>/sti/chain.pem and root.pem
  std::string from, to;       // when given: orig.tn and dest.tn must match
  std::string at;             // when given: iat must be within 60 s of it ("now" checks freshness)
};
int cmd_passport(const global_options& g, const passport_args& a);

struct verify_args {
  bool no_state = false;
};
int cmd_verify(const global_options& g, const verify_args& a);

struct replay_args {
  std::string until;    // SEQ|TIME, empty: the whole log
  std::string call_id;  // print only this call
  bool all = false;     // print every call, not only those not ended
  std::string base_path;
};
int cmd_replay(const global_options& g, const replay_args& a);

struct timeline_args {
  std::string call_id;
  std::string base_path;  // for the callObjectRef of the notification frames (--json)
};
int cmd_timeline(const global_options& g, const timeline_args& a);

struct audit_args {
  std::vector<std::string> msisdns;
  std::string txn, since, until;
};
int cmd_audit(const global_options& g, const audit_args& a);

struct cdr_args {
  std::string since, until;  // on the call's start time
  bool all = false;          // also calls that have not ended
};
int cmd_cdr(const global_options& g, const cdr_args& a);

struct archive_args {
  std::string before;            // TIME: archive the events older than this
  std::uint64_t before_seq = 0;  // or: the events before this seq
  std::string out;               // the archive file to write (never overwritten)
  std::string remove;            // only remove the range of this archive, written earlier
  std::string admin_socket;      // the engine's admin socket; empty: <data-dir>/admin.sock
};
int cmd_archive(const global_options& g, const archive_args& a);

struct export_args {
  std::uint64_t from_seq = 1;
  std::uint64_t to_seq = 0;  // 0: to the end
  std::string since, until;
  std::string call_id;
};
int cmd_export(const global_options& g, const export_args& a);

}  // namespace cli
