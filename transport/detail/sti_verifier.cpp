// identity_verifier (transport/caller_id.hpp): the STI-VS of contract §11. Checks that
// need nothing fetched run on the caller's thread; x5u fetches run on the `yna-sti`
// thread (Asio coroutines over detail::outbound_connection), one per URL at a time, with
// every /start waiting on that URL finished when it ends.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "engine/log.hpp"
#include "schemas/passport.hpp"
#include "schemas/sti_cert.hpp"
#include "transport/caller_id.hpp"
#include "transport/detail/outbound.hpp"
#include "transport/webhook.hpp"

namespace transport {

namespace net = boost::asio;
namespace pp = schemas::passport;
using steady = std::chrono::steady_clock;

namespace {

engine::caller_identity failed(pp::failure f, std::string detail, std::string passport = {}, char attest = 0) {
  engine::caller_identity id;
  id.status = pp::verification::failed;
  id.failure = std::string(pp::to_string(f));
  id.detail = std::move(detail);
  id.passport = std::move(passport);
  id.attest = attest;
  return id;
}

// Failures worth remembering for a while (the chain will not change in seconds); a fetch
// that failed is tried again sooner.
constexpr std::chrono::seconds negative_ttl{30};
constexpr std::chrono::seconds unavailable_ttl{5};

}  // namespace

bool x5u_allowed(std::string_view url, const std::vector<std::string>& prefixes) {
  auto u = parse_outbound_url(url);
  if (!u || !u->tls) return false;
  const std::string path = u->target.substr(0, u->target.find('?'));
  for (const auto& p : prefixes) {
    auto a = parse_outbound_url(p);
    if (!a || a->tls != u->tls || a->host != u->host || a->port != u->port) continue;
    const std::string base = a->target.substr(0, a->target.find('?'));
    if (path.compare(0, base.size(), base) != 0) continue;
    // "/certs" lets in "/certs/x" and "/certs", not "/certsx".
    if (base.back() == '/' || path.size() == base.size() || path[base.size()] == '/') return true;
  }
  return false;
}

struct identity_verifier::impl {
  sti_verify_settings s;
  schemas::sti::trust_store trust;
  detail::outbound_policy policy;
  std::shared_ptr<net::ssl::context> tls;
  net::io_context ioc{1};
  net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
  std::thread thread;

  struct entry {
    std::optional<schemas::sti::trust_store::verified> chain;  // nullopt: the failure below
    pp::failure why = pp::failure::x5u_unavailable;
    std::string detail;
    steady::time_point expires;
    std::list<std::string>::iterator lru;
  };
  struct waiter {
    pp::decoded passport;
    std::string token;
    done_fn done;
  };
  mutable std::mutex mu;
  std::unordered_map<std::string, entry> cache;  // by x5u, under mu
  std::list<std::string> lru;                    // most recent first, under mu
  std::unordered_map<std::string, std::vector<waiter>> fetching;  // by x5u, under mu
  std::size_t waiting = 0;                                         // under mu

  engine::counter* passed;
  engine::counter* failed_ctr;
  engine::counter* fetch_ok;
  engine::counter* fetch_failed;
  engine::gauge* cache_gauge;

  impl(sti_verify_settings settings, schemas::sti::trust_store t, engine::registry& m)
      : s(std::move(settings)), trust(std::move(t)) {
    for (const auto& p : s.x5u_allow)
      if (auto u = parse_outbound_url(p)) policy.allow.push_back(u->host);
    tls = detail::make_client_tls(s.outbound_ca);
    passed = &m.get_counter("yna_sti_verifications_total", "Gateway identities verified (contract §11)",
                            "result=\"passed\"");
    failed_ctr = &m.get_counter("yna_sti_verifications_total", "Gateway identities verified (contract §11)",
                                "result=\"failed\"");
    fetch_ok = &m.get_counter("yna_sti_x5u_fetches_total", "x5u certificate fetches", "result=\"ok\"");
    fetch_failed = &m.get_counter("yna_sti_x5u_fetches_total", "x5u certificate fetches", "result=\"failed\"");
    cache_gauge = &m.get_gauge("yna_sti_cache_entries", "x5u chains (and recent failures) cached");
  }

  void finish(const done_fn& done, engine::caller_identity id) {
    (id.status == pp::verification::passed ? passed : failed_ctr)->inc();
    done(std::move(id));
  }

  // The last step, with the chain known.
  engine::caller_identity conclude(const pp::decoded& d, std::string token, const entry& e, std::int64_t now_s) {
    if (!e.chain) return failed(e.why, e.detail, std::move(token), d.body.attest);
    if (now_s > e.chain->not_after)
      return failed(pp::failure::expired_certificate, "a certificate of " + d.head.x5u + " has expired",
                    std::move(token), d.body.attest);
    if (!pp::signature_ok(d, e.chain->key))
      return failed(pp::failure::bad_signature, "the signature does not verify under " + d.head.x5u, std::move(token),
                    d.body.attest);
    engine::caller_identity id;
    id.status = pp::verification::passed;
    id.attest = d.body.attest;
    id.passport = std::move(token);
    return id;
  }

  // Under mu: the entry when cached and fresh (touched), else nullptr (a stale one dropped).
  entry* cached(const std::string& url) {
    auto it = cache.find(url);
    if (it == cache.end()) return nullptr;
    if (steady::now() >= it->second.expires) {
      lru.erase(it->second.lru);
      cache.erase(it);
      return nullptr;
    }
    lru.splice(lru.begin(), lru, it->second.lru);
    return &it->second;
  }

  // Under mu.
  void remember(const std::string& url, entry e) {
    if (auto it = cache.find(url); it != cache.end()) {
      lru.erase(it->second.lru);
      cache.erase(it);
    }
    while (s.cache_entries > 0 && cache.size() >= s.cache_entries && !lru.empty()) {
      cache.erase(lru.back());
      lru.pop_back();
    }
    if (s.cache_entries == 0) return;
    lru.push_front(url);
    e.lru = lru.begin();
    cache.emplace(url, std::move(e));
    cache_gauge->set(static_cast<std::int64_t>(cache.size()));
  }

  net::awaitable<void> fetch(std::string url) {
    entry e;
    auto u = parse_outbound_url(url);
    schemas::result<detail::outbound_response, std::string> r = schemas::failure{std::string("not a URL")};
    if (u) {
      detail::outbound_connection conn(*u, policy, tls);
      // (No braced list of strings in a coroutine: GCC 12 cannot compile it.)
      detail::outbound_headers accept;
      accept.emplace_back(std::string("Accept"), std::string("application/pem-certificate-chain, */*"));
      r = co_await conn.get(accept, s.timeout);
    }
    const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch()).count();
    if (!r) {
      e.why = pp::failure::x5u_unavailable;
      e.detail = "fetching " + url + ": " + r.error();
      e.expires = steady::now() + unavailable_ttl;
    } else if (r->status != 200) {
      e.why = pp::failure::x5u_unavailable;
      e.detail = url + " answered " + std::to_string(r->status);
      e.expires = steady::now() + unavailable_ttl;
    } else if (auto v = trust.verify(r->body, now_s); !v) {
      e.why = v.error();
      e.detail = std::string(pp::to_string(v.error())) + ": the chain at " + url;
      e.expires = steady::now() + negative_ttl;
    } else {
      e.chain = std::move(*v);
      e.expires = steady::now() + s.cache_ttl;
    }
    (e.chain || e.why != pp::failure::x5u_unavailable ? fetch_ok : fetch_failed)->inc();
    if (!e.chain) engine::log::info("caller identity: {}", e.detail);
    std::vector<waiter> ws;
    {
      std::lock_guard lk(mu);
      remember(url, e);
      if (auto it = fetching.find(url); it != fetching.end()) {
        ws = std::move(it->second);
        fetching.erase(it);
      }
      waiting -= ws.size();
    }
    for (auto& w : ws) finish(w.done, conclude(w.passport, std::move(w.token), e, now_s));
  }
};

identity_verifier::identity_verifier(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

identity_verifier::~identity_verifier() { stop(); }

schemas::result<std::unique_ptr<identity_verifier>, std::string> identity_verifier::create(sti_verify_settings s,
                                                                                             engine::registry& m) {
  auto trust = schemas::sti::trust_store::from_pem(s.trust_pem);
  if (!trust) return schemas::failure{"--sti-trust: " + trust.error()};
  for (const auto& p : s.x5u_allow) {
    auto u = parse_outbound_url(p);
    if (!u || !u->tls) return schemas::failure{"--sti-x5u-allow " + p + ": not an https:// URL prefix"};
  }
  try {
    return std::unique_ptr<identity_verifier>(
        new identity_verifier(std::make_unique<impl>(std::move(s), std::move(*trust), m)));
  } catch (const std::exception& e) {
    return schemas::failure{std::string(e.what())};
  }
}

void identity_verifier::start() {
  if (impl_->thread.joinable()) return;
  impl_->thread = std::thread([this] {
    engine::log::name_this_thread("yna-sti");
    impl_->ioc.run();
  });
}

void identity_verifier::stop() {
  if (!impl_) return;
  impl_->work.reset();
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  // Whoever still waits gets an answer (the engine is stopping; nothing is written).
  std::unordered_map<std::string, std::vector<impl::waiter>> left;
  {
    std::lock_guard lk(impl_->mu);
    left.swap(impl_->fetching);
    impl_->waiting = 0;
  }
  for (auto& [url, ws] : left)
    for (auto& w : ws) w.done(failed(pp::failure::x5u_unavailable, "the engine is stopping", std::move(w.token)));
}

void identity_verifier::verify(std::string identity, std::string from, std::string to, std::int64_t now_s,
                               done_fn done) {
  auto& m = *impl_;
  auto header = pp::parse_identity_header(identity);
  if (!header) return m.finish(done, failed(header.error(), "the identity is not a PASSporT or an Identity header value"));
  std::string token = std::move(header->token);
  auto d = pp::decode(token);
  // Only a PASSporT that decoded travels on (in the invitation's `identity`).
  if (!d) return m.finish(done, failed(d.error(), "the PASSporT is not a SHAKEN one"));
  if (d->head.ppt != "shaken" || (header->ppt && *header->ppt != d->head.ppt))
    return m.finish(done, failed(pp::failure::bad_ppt, "a /start's PASSporT is ppt shaken", token, d->body.attest));
  // RFC 8224 §4.1, ATIS-1000074: the Identity header's info names the same certificate.
  if (header->info && *header->info != d->head.x5u)
    return m.finish(done, failed(pp::failure::identity_header, "the info parameter is not the PASSporT's x5u", token,
                                 d->body.attest));
  if (auto f = pp::check_call(d->body, from, to, now_s, m.s.skew_s)) {
    std::string why = *f == pp::failure::stale    ? "iat is " + std::to_string(now_s - d->body.iat) + " s old"
                      : *f == pp::failure::future ? "iat is " + std::to_string(d->body.iat - now_s) + " s ahead"
                      : *f == pp::failure::orig_mismatch ? "orig.tn " + d->body.orig + " is not the call's from"
                                                         : "dest.tn does not name the call's to";
    return m.finish(done, failed(*f, std::move(why), token, d->body.attest));
  }
  const std::string url = d->head.x5u;
  if (!x5u_allowed(url, m.s.x5u_allow))
    return m.finish(done, failed(pp::failure::x5u_not_allowed, url + " is not under --sti-x5u-allow", token,
                                 d->body.attest));
  std::unique_lock lk(m.mu);
  if (impl::entry* e = m.cached(url)) {
    const impl::entry copy = *e;
    lk.unlock();
    return m.finish(done, m.conclude(*d, std::move(token), copy, now_s));
  }
  if (m.waiting >= m.s.max_waiting) {
    lk.unlock();
    return m.finish(done, failed(pp::failure::x5u_unavailable, "too many /starts wait for x5u fetches", token,
                                 d->body.attest));
  }
  ++m.waiting;
  auto [it, first] = m.fetching.try_emplace(url);
  it->second.push_back(impl::waiter{std::move(*d), std::move(token), std::move(done)});
  lk.unlock();
  if (first) net::co_spawn(m.ioc, m.fetch(url), net::detached);
}

}  // namespace transport
