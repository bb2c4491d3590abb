// Read/write splitting: replica choice by load-balancing policy, catalog and health access.
#include "control/read_split.hpp"

#include "shardgate/router/placement.hpp"

#include <algorithm>
#include <random>

#include "shardgate/pool/replica_health.hpp"

namespace shardgate::proxy {

parse_cache_totals& parse_cache() {
    static parse_cache_totals t;
    return t;
}

split_database::split_database(const database_config& db,
                               std::shared_ptr<const pool::health_feed> feed)
    : name_(db.name),
      cfg_(db),
      replicas_(db.replicas),
      feed_(std::move(feed)),
      replica_counters_(db.replicas.size()),
      replayed_(std::make_unique<std::atomic<std::uint64_t>[]>(db.replicas.size())),
      slow_until_(
          std::make_unique<std::atomic<std::chrono::steady_clock::rep>[]>(db.replicas.size())) {
    endpoints_.push_back({db.host, db.port});
    for (const auto& r : db.replicas)
        endpoints_.push_back({r.host, r.port});
    for (const auto& f : db.write_functions)
        configured_.add_write_function(f);
    for (const auto& f : db.read_only_functions)
        configured_.add_read_only_function(f);
}

std::shared_ptr<const pool::database_health> split_database::health() const {
    return feed_ ? feed_->load() : nullptr;
}

const pool::database_health* split_database::health(health_cache& c) const {
    if (!feed_) return nullptr;
    const auto g = feed_->generation();
    if (g != c.generation) {
        c.snap = feed_->load();
        c.generation = g;
    }
    return c.snap.get();
}

const router::function_catalog* split_database::catalog(catalog_cache& c) const {
    const auto g = catalog_generation_.load(std::memory_order_acquire);
    if (g != c.generation) {
        c.cat = catalog();
        c.generation = g;
    }
    return c.cat.get();
}

std::shared_ptr<const router::function_catalog> split_database::catalog() const {
    std::lock_guard lock(mu_);
    return catalog_;
}

void split_database::set_catalog(std::shared_ptr<const router::function_catalog> c) {
    std::lock_guard lock(mu_);
    catalog_ = std::move(c);
    catalog_generation_.fetch_add(1, std::memory_order_release);
}

void split_database::note_acked(std::uint64_t lsn) {
    auto seen = acked_lsn_.load(std::memory_order_relaxed);
    while (seen < lsn && !acked_lsn_.compare_exchange_weak(seen, lsn, std::memory_order_release,
                                                           std::memory_order_relaxed)) {
    }
}

void split_database::note_unknown_ack(std::chrono::steady_clock::time_point at) {
    const auto t = at.time_since_epoch().count();
    auto seen = unknown_ack_at_.load(std::memory_order_relaxed);
    while (seen < t && !unknown_ack_at_.compare_exchange_weak(seen, t, std::memory_order_release,
                                                              std::memory_order_relaxed)) {
    }
}

split_database::frontier split_database::instance_frontier(const pool::database_health* snap) {
    const auto unknown = unknown_ack_at_.load(std::memory_order_acquire);
    if (unknown != 0) {
        // The monitor's primary sample, as of when its check was sent, covers every commit
        // acknowledged before then.
        if (snap == nullptr || !snap->health.primary_known || !snap->health.primary_reachable ||
            snap->health.primary_checked.time_since_epoch().count() < unknown)
            return {acked_lsn_.load(std::memory_order_acquire), true};
        note_acked(snap->health.primary_lsn);
        auto expected = unknown;
        unknown_ack_at_.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
    }
    return {acked_lsn_.load(std::memory_order_acquire), false};
}

void split_database::note_replayed(std::size_t replica, std::uint64_t lsn) {
    if (replica >= replicas_.size()) return;
    auto& r = replayed_[replica];
    auto seen = r.load(std::memory_order_relaxed);
    while (seen < lsn && !r.compare_exchange_weak(seen, lsn, std::memory_order_relaxed)) {
    }
}

void split_database::note_slow(std::size_t replica) {
    if (replica >= replicas_.size()) return;
    const auto until = std::chrono::steady_clock::now() +
                       10 * std::max(cfg_.consistency_wait, std::chrono::milliseconds(1));
    slow_until_[replica].store(until.time_since_epoch().count(), std::memory_order_relaxed);
}

std::uint64_t split_database::replayed(const pool::database_health* snap,
                                       std::size_t replica) const {
    if (snap == nullptr || replica >= snap->health.replicas.size()) return 0;
    const auto& st = snap->health.replicas[replica];
    if (!st.fit()) {
        replayed_[replica].store(0, std::memory_order_relaxed);
        return 0;
    }
    return std::max(st.replay_lsn, replayed_[replica].load(std::memory_order_relaxed));
}

struct split_database::lsn_waiter {
    explicit lsn_waiter(const asio::any_io_executor& e) : ex(e), timer(e) {}
    asio::any_io_executor ex;
    asio::steady_timer timer;  // touched on `ex` only
    std::chrono::steady_clock::time_point since;
    std::optional<std::uint64_t> lsn;
    bool done = false;
};

awaitable<std::optional<std::uint64_t>> split_database::async_primary_lsn(
    std::chrono::steady_clock::time_point since, std::shared_ptr<pool::server_pool> pool,
    std::chrono::milliseconds timeout) {
    auto ex = co_await asio::this_coro::executor;
    auto w = std::make_shared<lsn_waiter>(ex);
    w->since = since;
    bool start = false;
    {
        std::lock_guard lock(lsn_mu_);
        if (lsn_last_ && lsn_last_sent_ >= since) co_return lsn_last_;
        lsn_waiters_.push_back(w);
        start = !std::exchange(lsn_fetching_, true);
    }
    if (start)
        asio::co_spawn(ex, shared_from_this()->fetch_primary_lsns(std::move(pool), timeout),
                       asio::detached);
    while (!w->done) {
        w->timer.expires_at(asio::steady_timer::time_point::max());
        error_code ec;
        co_await w->timer.async_wait(ec_token(ec));
    }
    co_return w->lsn;
}

awaitable<void> split_database::fetch_primary_lsns(std::shared_ptr<pool::server_pool> pool,
                                                   std::chrono::milliseconds timeout) {
    auto self = shared_from_this();
    auto ex = co_await asio::this_coro::executor;
    const std::vector<std::pair<std::string, std::string>> no_params;  // a named local: GCC 12
    for (;;) {
        const auto sent = std::chrono::steady_clock::now();
        std::optional<std::uint64_t> lsn;
        auto res = co_await pool->checkout(ex, no_params);
        if (res.ok()) {
            const auto r = co_await pool::async_exec(
                *res.conn, "SELECT pg_catalog.pg_current_wal_insert_lsn()::text", timeout);
            if (r.ok && r.error.empty() && r.first_value) lsn = pool::parse_lsn(*r.first_value);
            pool::give_back(std::move(res.conn), r.ok && r.txn_status == 'I'
                                                     ? pool::conn_state::clean
                                                     : pool::conn_state::poisoned);
        }
        std::vector<std::shared_ptr<lsn_waiter>> ready;
        bool more = false;
        {
            std::lock_guard lock(lsn_mu_);
            if (lsn) {
                lsn_last_ = lsn;
                lsn_last_sent_ = sent;
            }
            // Served: every read that arrived before this query was sent (the others need a
            // later one). A failed query serves them all: they read from the primary.
            std::erase_if(lsn_waiters_, [&](const auto& w) {
                if (lsn && w->since > sent) return false;
                ready.push_back(w);
                return true;
            });
            more = !lsn_waiters_.empty();
            lsn_fetching_ = more;
        }
        for (auto& w : ready) {
            asio::post(w->ex, [w, lsn] {
                w->lsn = lsn;
                w->done = true;
                w->timer.cancel();
            });
        }
        if (!more) co_return;
    }
}

std::optional<split_database::choice> split_database::choose(
    const pool::database_health* snap, std::uint64_t min_lsn,
    const std::vector<std::uint32_t>& active) {
    // What the monitor and reads' own checks know of each replica; the choice is
    // router::place_read's.
    if (snap == nullptr) return std::nullopt;
    const auto& h = snap->health;
    thread_local std::vector<router::replica_view> views;
    views.clear();
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    const std::size_t n = std::min(replicas_.size(), h.replicas.size());
    for (std::size_t i = 0; i < n; ++i) {
        router::replica_view v;
        v.fit = h.fit(i);
        v.replayed = v.fit && min_lsn != 0 ? replayed(snap, i) : 0;
        v.slow = now < slow_until_[i].load(std::memory_order_relaxed);
        v.weight = replicas_[i].weight;
        v.active = i < active.size() ? active[i] : 0;
        v.rtt = h.replicas[i].rtt_ewma;
        views.push_back(v);
    }
    router::placement_input in;
    in.replicas = views;
    in.min_lsn = min_lsn;
    in.primary_reads = cfg_.primary_reads;
    in.primary_weight = cfg_.primary_read_weight;
    switch (cfg_.load_balance) {
        case load_balance_policy::round_robin:
            in.policy = router::balance_policy::round_robin;
            break;
        case load_balance_policy::weighted: {
            in.policy = router::balance_policy::weighted;
            thread_local std::minstd_rand rng{std::random_device{}()};
            in.random = rng();
            break;
        }
        case load_balance_policy::least_connections:
            in.policy = router::balance_policy::least_connections;
            break;
        case load_balance_policy::least_latency:
            in.policy = router::balance_policy::least_latency;
            break;
    }
    in.turn = next_.fetch_add(1, std::memory_order_relaxed);
    const auto p = router::place_read(in);
    if (!p) return std::nullopt;
    return choice{p->primary, p->replica, p->verify};
}

}  // namespace shardgate::proxy
