// The replica health and lag monitor: polls each database's primary and replicas on dedicated
// connections and publishes an immutable health snapshot per database that any thread reads
// without waiting on I/O. The decisions themselves live in replica_health.hpp.
//
// Usage:
//     replica_monitor mon(io.get_executor());
//     mon.update({db});                      // starts polling (and later: applies changes)
//     auto feed = mon.feed("app");           // once; stable across update()
//     auto snap = feed->load();              // any thread, any time: a mutex and a refcount
//     if (snap && snap->health.fit(i)) ...   // snap->replicas[i] is the replica's config
//     snap->health.replayed_at_least(i, lsn) // read-your-writes
//     snap->health.replicas[i].rtt_ewma      // least-latency balancing
//     mon.stop();
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shardgate/pool/replica_health.hpp"
#include "shardgate/pool/server_login.hpp"
#include "shardgate/pool/stream.hpp"

namespace shardgate::pool {

struct replica_endpoint {
    backend_address address;
    std::uint32_t weight = 1;  // for balancing: not used by the monitor
    std::string zone;          // for balancing: not used by the monitor
};

struct monitor_settings {
    std::chrono::milliseconds interval{250};          // one check of every server per interval
    std::chrono::milliseconds check_timeout{0};       // per check query; 0: the interval
    std::chrono::milliseconds connect_timeout{2000};  // connect + TLS + login
    lag_settings lag;
};

struct monitored_database {
    std::string name;
    backend_address primary;
    std::vector<replica_endpoint> replicas;
    std::string user;  // a role that may run the check functions (any role can)
    std::string password;
    monitor_settings settings;
};

// One published moment of one database; immutable once published.
struct database_health {
    std::string name;
    std::vector<replica_endpoint> replicas;  // replicas[i] is health.replicas[i]'s server
    health_report health;
    health_clock::time_point published{};
    std::uint64_t version = 0;  // grows with every publication of this database
};

// Where one database's snapshots appear. Handles stay valid across update() and beyond the
// monitor's life. load() is null until the database's poller has started (it publishes an
// all-`unknown` snapshot at once, then one after every check) and after the database is
// removed; treat null like "no replica is fit".
class health_feed {
  public:
    [[nodiscard]] std::shared_ptr<const database_health> load() const {
        std::lock_guard lock(mu_);
        return current_;
    }
    // Grows with every change of what load() returns: readers on a hot path keep their copy
    // of the snapshot and load() again only when this moved (one relaxed atomic read).
    [[nodiscard]] std::uint64_t generation() const {
        return generation_.load(std::memory_order_acquire);
    }

  private:
    friend class replica_monitor;
    friend class database_monitor;
    // Only the current owner (the poller started last for this name) may publish.
    void publish(std::uint64_t owner, std::shared_ptr<const database_health> s) {
        std::lock_guard lock(mu_);
        if (owner == owner_) {
            current_ = std::move(s);
            generation_.fetch_add(1, std::memory_order_release);
        }
    }
    void set_owner(std::uint64_t owner) {
        std::lock_guard lock(mu_);
        owner_ = owner;
        current_.reset();
        generation_.fetch_add(1, std::memory_order_release);
    }

    mutable std::mutex mu_;
    std::uint64_t owner_ = 0;
    std::shared_ptr<const database_health> current_;
    std::atomic<std::uint64_t> generation_{1};
};

class database_monitor;

// Thread-safe. Each database is polled on its own strand of the executor given here.
class replica_monitor {
  public:
    // `tls` is used for backends whose tls_mode is not disable (null: plain TCP).
    explicit replica_monitor(asio::any_io_executor ex, ssl::context* tls = nullptr);
    ~replica_monitor();  // stop()
    replica_monitor(const replica_monitor&) = delete;
    replica_monitor& operator=(const replica_monitor&) = delete;

    // Makes `databases` the monitored set: new ones start, removed ones stop (their feeds then
    // load() null), changed ones restart from `unknown`, unchanged ones go on untouched.
    void update(std::vector<monitored_database> databases);
    // Closes every connection and ends polling; a login in flight is abandoned and closed when
    // it ends (within connect_timeout). Feeds keep their last snapshot. update() restarts.
    void stop();

    // Null when `database` was never monitored; a removed database's feed stays (loads null)
    // and comes back to life if the database is added again.
    [[nodiscard]] std::shared_ptr<const health_feed> feed(std::string_view database) const;
    // feed(database)->load(), or null.
    [[nodiscard]] std::shared_ptr<const database_health> snapshot(std::string_view database) const;
    [[nodiscard]] std::vector<std::string> databases() const;  // monitored now

  private:
    struct entry {
        monitored_database config;
        std::shared_ptr<database_monitor> poller;
    };
    void stop_locked(entry& e);

    const asio::any_io_executor ex_;
    ssl::context* const tls_;
    mutable std::mutex mu_;
    std::map<std::string, entry, std::less<>> dbs_;                           // monitored now
    std::map<std::string, std::shared_ptr<health_feed>, std::less<>> feeds_;  // ever monitored
    std::uint64_t next_owner_ = 1;
};

}  // namespace shardgate::pool
