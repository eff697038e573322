#include "tools/loadgen/report.hpp"

#include <fmt/format.h>

#include "schemas/json_writer.hpp"

namespace loadgen {

namespace {

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }
double per_s(std::uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0; }

std::string mode_of(const options& o) {
  return o.rate > 0 ? fmt::format("open loop at {:g} calls/s", o.rate) : "closed loop";
}

void latency_fields(schemas::json_writer& w, const histogram& h) {
  w.field("count", h.count());
  w.key("p50_ms").raw(fmt::format("{:.3f}", ms(h.quantile_ns(0.5))));
  w.key("p90_ms").raw(fmt::format("{:.3f}", ms(h.quantile_ns(0.9))));
  w.key("p99_ms").raw(fmt::format("{:.3f}", ms(h.quantile_ns(0.99))));
  w.key("p999_ms").raw(fmt::format("{:.3f}", ms(h.quantile_ns(0.999))));
  w.key("max_ms").raw(fmt::format("{:.3f}", ms(h.max_ns())));
  w.key("mean_ms").raw(fmt::format("{:.3f}", h.mean_ns() / 1e6));
}

void num(schemas::json_writer& w, std::string_view k, double v, int digits = 3) {
  w.key(k).raw(fmt::format("{:.{}f}", v, digits));
}

double cpu_per_request_us(double cpu_s, std::uint64_t requests) {
  return requests && cpu_s >= 0 ? cpu_s * 1e6 / static_cast<double>(requests) : -1;
}

}  // namespace

bool passed(const report_input& in) {
  return in.run.setup_ok && in.st.error_total() == 0 && in.st.notifications_missing.load() == 0 &&
         in.st.unexpected_frames.load() == 0 && in.st.calls_failed.load() == 0;
}

void print_text(const report_input& in, std::FILE* out) {
  const options& o = in.opts;
  const stats& st = in.st;
  const run_result& r = in.run;
  if (!r.setup_ok) {
    fmt::print(out, "setup failed: {}\n", r.setup_error);
    return;
  }
  fmt::print(out, "yna-loadgen: {} users, {}, mix {}, PoP {}, {} threads, {:.1f} s measured{}\n", o.concurrency,
             mode_of(o), o.mix.describe(), o.pop == pop_mode::off ? "off" : "per request", o.threads, r.measured_s,
             o.warmup_s > 0 ? fmt::format(" after {:g} s warm-up", o.warmup_s) : "");
  fmt::print(out, "throughput: {:.1f} requests/s, {:.1f} calls/s completed ({} calls completed, {} failed)\n",
             per_s(r.window_requests, r.measured_s), per_s(r.window_calls, r.measured_s), st.calls_completed.load(),
             st.calls_failed.load());
  fmt::print(out, "{:<14} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "endpoint", "answers", "failed", "p50 ms",
             "p90 ms", "p99 ms", "p99.9 ms", "max ms");
  histogram all;
  auto row = [&](std::string_view name, const histogram& h, std::uint64_t failed) {
    fmt::print(out, "{:<14} {:>9} {:>7} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f}\n", name, h.count(), failed,
               ms(h.quantile_ns(0.5)), ms(h.quantile_ns(0.9)), ms(h.quantile_ns(0.99)), ms(h.quantile_ns(0.999)),
               ms(h.max_ns()));
  };
  std::uint64_t failed_all = 0;
  for (std::size_t i = 0; i < endpoint_count; ++i) {
    if (st.latency[i].count() == 0 && st.failures[i].load() == 0) continue;
    row(to_string(static_cast<endpoint>(i)), st.latency[i], st.failures[i].load());
    all.merge(st.latency[i]);
    failed_all += st.failures[i].load();
  }
  row("all", all, failed_all);
  if (o.websockets) {
    fmt::print(out,
               "notifications: {} expected, {} received, {} missing, {} unexpected, {} read before the answer, "
               "{} about calls left open\n",
               st.notifications_expected.load(), st.notifications_received.load(), st.notifications_missing.load(),
               st.unexpected_frames.load(), st.notifications_early.load(), st.frames_for_open_calls.load());
    row("notification", st.notify_latency, st.notifications_missing.load());
  }
  const auto errs = st.errors();
  if (!errs.empty()) {
    fmt::print(out, "errors by reasonCode:\n");
    for (const auto& [k, n] : errs) fmt::print(out, "  {:>3} {:<28} {}\n", k.first, k.second, n);
  }
  if (o.rate > 0)
    fmt::print(out, "open loop: {} calls skipped (no free user), {} started over 10 ms late\n",
               st.open_loop_skipped.load(), st.open_loop_late.load());
  if (o.overload) {
    fmt::print(out, "refused for load (503 SERVICE_UNAVAILABLE): {} requests, {} calls\n", st.refused.load(),
               st.calls_refused.load());
    row("refused", st.refused_latency, 0);
  }
  if (st.start_retries.load()) fmt::print(out, "/start re-sent after a connection failure: {}\n", st.start_retries.load());
  const auto signed_n = st.pop_signed.load();
  fmt::print(out, "client: {:.2f} s CPU ({:.1f} µs per request), {} PoP tokens signed ({:.0f} µs each)\n", r.client_cpu_s,
             cpu_per_request_us(r.client_cpu_s, r.window_requests), signed_n,
             signed_n ? static_cast<double>(st.pop_sign_ns.load()) / 1e3 / static_cast<double>(signed_n) : 0.0);
  const engine_figures& e = in.engine;
  if (e.pid) {
    fmt::print(out, "engine (pid {}): {:.2f} s CPU, {:.1f} µs per request; RSS {} -> {} KiB", e.pid, r.engine_cpu_s,
               cpu_per_request_us(r.engine_cpu_s, r.window_requests), e.rss_start_kib, e.rss_end_kib);
    if (e.rss_peak_kib >= 0) fmt::print(out, " (peak {} KiB)", e.rss_peak_kib);
    if (e.active_calls_start && e.active_calls_end) {
      const double d = *e.active_calls_end - *e.active_calls_start;
      fmt::print(out, "; active calls {:.0f} -> {:.0f}", *e.active_calls_start, *e.active_calls_end);
      if (d > 0) fmt::print(out, " ({:.2f} KiB RSS per call left active)", static_cast<double>(e.rss_end_kib - e.rss_start_kib) / d);
    }
    fmt::print(out, "\n");
  }
  if (in.idle) {
    const auto& c = *in.idle;
    fmt::print(out, "idle sockets: {} opened, engine RSS {} -> {} KiB ({:.2f} KiB per socket){}\n", c.opened,
               c.rss_before_kib, c.rss_after_kib,
               c.opened ? static_cast<double>(c.rss_after_kib - c.rss_before_kib) / static_cast<double>(c.opened) : 0.0,
               c.error.empty() ? "" : "; " + c.error);
  }
  if (!in.record_file.empty()) fmt::print(out, "record: {} ({} lines)\n", in.record_file, in.record_lines);
  fmt::print(out, "{}\n", passed(in) ? "PASS: every answer, status and notification as expected" : "FAIL: see the errors above");
}

std::string to_json(const report_input& in) {
  const options& o = in.opts;
  const stats& st = in.st;
  const run_result& r = in.run;
  schemas::json_writer w(4096);
  w.begin_object();
  w.field("passed", passed(in));
  w.field("setup_ok", r.setup_ok);
  if (!r.setup_ok) w.field("setup_error", std::string_view(r.setup_error));
  w.key("config").begin_object();
  w.field("users", static_cast<std::uint64_t>(o.concurrency)).field("mode", o.rate > 0 ? "open" : "closed");
  num(w, "rate", o.rate, 1);
  w.field("mix", std::string_view(o.mix.describe())).field("pop", o.pop == pop_mode::off ? "off" : "per-request");
  w.field("threads", static_cast<std::uint64_t>(o.threads)).field("websockets", o.websockets);
  num(w, "warmup_s", o.warmup_s, 1);
  w.end_object();
  num(w, "measured_s", r.measured_s);
  w.field("requests", r.window_requests);
  num(w, "requests_per_s", per_s(r.window_requests, r.measured_s), 1);
  num(w, "calls_per_s", per_s(r.window_calls, r.measured_s), 1);
  w.field("calls_started", st.calls_started.load()).field("calls_completed", st.calls_completed.load());
  w.field("calls_failed", st.calls_failed.load()).field("calls_refused", st.calls_refused.load());
  w.key("endpoints").begin_object();
  for (std::size_t i = 0; i < endpoint_count; ++i) {
    if (st.latency[i].count() == 0 && st.failures[i].load() == 0) continue;
    w.key(to_string(static_cast<endpoint>(i))).begin_object();
    latency_fields(w, st.latency[i]);
    w.field("failed", st.failures[i].load());
    w.end_object();
  }
  w.end_object();
  w.key("notifications").begin_object();
  w.field("expected", st.notifications_expected.load()).field("received", st.notifications_received.load());
  w.field("missing", st.notifications_missing.load()).field("unexpected", st.unexpected_frames.load());
  w.field("before_answer", st.notifications_early.load()).field("for_open_calls", st.frames_for_open_calls.load());
  w.key("latency").begin_object();
  latency_fields(w, st.notify_latency);
  w.end_object();
  w.end_object();
  w.key("errors").begin_array();
  for (const auto& [k, n] : st.errors())
    w.begin_object().field("status", k.first).field("reasonCode", std::string_view(k.second)).field("count", n).end_object();
  w.end_array();
  w.key("open_loop").begin_object();
  w.field("skipped", st.open_loop_skipped.load()).field("late", st.open_loop_late.load()).end_object();
  w.key("refused").begin_object();
  w.field("requests", st.refused.load()).field("calls", st.calls_refused.load());
  w.key("latency").begin_object();
  latency_fields(w, st.refused_latency);
  w.end_object();
  w.end_object();
  w.field("start_retries", st.start_retries.load());
  w.key("client").begin_object();
  num(w, "cpu_s", r.client_cpu_s);
  num(w, "cpu_per_request_us", cpu_per_request_us(r.client_cpu_s, r.window_requests), 1);
  w.field("pop_signed", st.pop_signed.load());
  w.end_object();
  const engine_figures& e = in.engine;
  if (e.pid) {
    w.key("engine").begin_object();
    w.field("pid", e.pid);
    num(w, "cpu_s", r.engine_cpu_s);
    num(w, "cpu_per_request_us", cpu_per_request_us(r.engine_cpu_s, r.window_requests), 1);
    w.field("rss_start_kib", static_cast<std::int64_t>(e.rss_start_kib));
    w.field("rss_end_kib", static_cast<std::int64_t>(e.rss_end_kib));
    w.field("rss_peak_kib", static_cast<std::int64_t>(e.rss_peak_kib));
    if (e.active_calls_start && e.active_calls_end) {
      num(w, "active_calls_start", *e.active_calls_start, 0);
      num(w, "active_calls_end", *e.active_calls_end, 0);
      const double d = *e.active_calls_end - *e.active_calls_start;
      if (d > 0) num(w, "rss_kib_per_active_call", static_cast<double>(e.rss_end_kib - e.rss_start_kib) / d);
    }
    w.end_object();
  }
  if (in.idle) {
    const auto& c = *in.idle;
    w.key("idle_sockets").begin_object();
    w.field("opened", static_cast<std::uint64_t>(c.opened));
    w.field("rss_before_kib", static_cast<std::int64_t>(c.rss_before_kib));
    w.field("rss_after_kib", static_cast<std::int64_t>(c.rss_after_kib));
    if (c.opened)
      num(w, "kib_per_socket", static_cast<double>(c.rss_after_kib - c.rss_before_kib) / static_cast<double>(c.opened));
    if (!c.error.empty()) w.field("error", std::string_view(c.error));
    w.end_object();
  }
  if (!in.record_file.empty())
    w.key("record").begin_object().field("file", std::string_view(in.record_file)).field("lines", in.record_lines).end_object();
  w.end_object();
  return w.take();
}

}  // namespace loadgen
