// Read/write splitting in the running proxy: per database, the replicas' pools and health,
// the function catalog and routing stats; per client session, its routing state and the server
// its current transaction runs on. The decisions are router/route.hpp's; this file carries
// them out (which replica, which pool) and counts them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "control/cancel_registry.hpp"
#include "control/io.hpp"
#include "shardgate/pool/replica_monitor.hpp"
#include "shardgate/pool/server_pool.hpp"
#include "shardgate/router/route.hpp"

namespace shardgate::proxy {

// Routing counters of one server (the primary or a replica) of a database (SHOW ROUTES).
struct route_counters {
    std::atomic<std::uint64_t> reads{0};          // transactions routed as reads
    std::atomic<std::uint64_t> writes{0};         // transactions routed as writes (primary only)
    std::atomic<std::uint64_t> reads_for_lag{0};  // primary: no replica was fit
    std::atomic<std::uint64_t> reads_for_consistency{0};  // primary: consistency / own writes
    std::atomic<std::uint64_t> fallbacks{0};  // a replica could not be reached: elsewhere
};

// One database with replicas and read_write_split: shared by its pools (one per user).
class split_database : public std::enable_shared_from_this<split_database> {
  public:
    split_database(const database_config& db, std::shared_ptr<const pool::health_feed> feed);

    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] std::size_t replica_count() const { return replicas_.size(); }
    [[nodiscard]] const replica_config& replica(std::size_t i) const { return replicas_[i]; }
    // Where cancels for a connection to the primary (nullopt) or a replica go.
    [[nodiscard]] const cancel_endpoint* endpoint(std::optional<std::size_t> replica) const {
        return &endpoints_[replica ? *replica + 1 : 0];
    }
    [[nodiscard]] std::shared_ptr<const pool::database_health> health() const;
    // health() through a holder's cached copy, reloaded only when the monitor published.
    struct health_cache {
        std::uint64_t generation = 0;
        std::shared_ptr<const pool::database_health> snap;
    };
    const pool::database_health* health(health_cache& c) const;

    // Which functions write; null until the catalog was read once (everything unknown is then
    // treated as writing: see catalog()).
    [[nodiscard]] std::shared_ptr<const router::function_catalog> catalog() const;
    void set_catalog(std::shared_ptr<const router::function_catalog> c);
    struct catalog_cache {
        std::uint64_t generation = 0;
        std::shared_ptr<const router::function_catalog> cat;
    };
    const router::function_catalog* catalog(catalog_cache& c) const;
    [[nodiscard]] const router::function_catalog& configured_only() const { return configured_; }

    // A fit replica for a read that needs `min_lsn` replayed, by the load-balancing policy;
    // nullopt: none (then the primary, or an error). `active(i)` is replica i's pool's active
    // server connections (least_connections). With primary_reads, the result may be `primary`.
    // Replicas known to have replayed min_lsn (by the monitor or by reads' own checks) come
    // first; if none is, any fit one that did not just fail such a check (note_slow), marked
    // `verify`: the read asks it before it runs there.
    struct choice {
        bool primary = false;
        std::size_t replica = 0;
        bool verify = false;
    };
    std::optional<choice> choose(const pool::database_health* snap, std::uint64_t min_lsn,
                                 const std::vector<std::uint32_t>& active);

    // Instance consistency. The latest commit LSN acknowledged to a client of this database by
    // this process (raised before the client gets its ReadyForQuery), and the time of an
    // acknowledged commit whose LSN could not be learnt (covered once the monitor has sampled
    // the primary after it).
    void note_acked(std::uint64_t lsn);
    void note_unknown_ack(std::chrono::steady_clock::time_point at);
    struct frontier {
        std::uint64_t lsn = 0;  // what a read must see replayed
        bool pending = false;   // an acknowledged commit with no LSN yet: read the primary
    };
    frontier instance_frontier(const pool::database_health* snap);
    // Replay positions seen by reads' own checks, fresher than the monitor's samples; forgotten
    // when the monitor finds the replica unfit (a restarted standby may replay less at first).
    void note_replayed(std::size_t replica, std::uint64_t lsn);
    [[nodiscard]] std::uint64_t replayed(const pool::database_health* snap,
                                         std::size_t replica) const;
    // A read's check found the replica still behind after consistency_wait_ms: for ten times
    // that long, reads that would have to ask it go to the primary at once (a replica that
    // lags, or applies with a delay, would make each of them wait for nothing).
    void note_slow(std::size_t replica);

    // Global consistency: the primary's insert LSN, read by a query sent at or after `since`
    // on a connection of `pool` (one query in flight per database; the reads waiting at once
    // share it). nullopt: the primary did not answer.
    awaitable<std::optional<std::uint64_t>> async_primary_lsn(
        std::chrono::steady_clock::time_point since, std::shared_ptr<pool::server_pool> pool,
        std::chrono::milliseconds timeout);

    route_counters& counters(std::optional<std::size_t> replica) {
        return replica ? replica_counters_[*replica] : primary_counters_;
    }
    [[nodiscard]] const database_config& config() const { return cfg_; }

  private:
    std::string name_;
    database_config cfg_;  // a copy: the configuration may be replaced by a reload
    std::vector<replica_config> replicas_;
    std::vector<cancel_endpoint> endpoints_;  // the primary, then the replicas
    std::shared_ptr<const pool::health_feed> feed_;
    router::function_catalog configured_;  // write_functions / read_only_functions only
    mutable std::mutex mu_;
    std::shared_ptr<const router::function_catalog> catalog_;
    std::atomic<std::uint64_t> catalog_generation_{1};
    std::atomic<std::uint64_t> next_{0};  // round robin / weighted
    route_counters primary_counters_;
    std::vector<route_counters> replica_counters_;
    std::atomic<std::uint64_t> acked_lsn_{0};
    std::atomic<std::chrono::steady_clock::rep> unknown_ack_at_{0};              // 0: none
    std::unique_ptr<std::atomic<std::uint64_t>[]> replayed_;                     // per replica
    std::unique_ptr<std::atomic<std::chrono::steady_clock::rep>[]> slow_until_;  // per replica

    struct lsn_waiter;
    awaitable<void> fetch_primary_lsns(std::shared_ptr<pool::server_pool> pool,
                                       std::chrono::milliseconds timeout);
    std::mutex lsn_mu_;
    bool lsn_fetching_ = false;
    std::optional<std::uint64_t> lsn_last_;
    std::chrono::steady_clock::time_point lsn_last_sent_{};
    std::vector<std::shared_ptr<lsn_waiter>> lsn_waiters_;
};

// The workers' classifiers (one per thread) report here every so often (SHOW PARSE_CACHE).
struct parse_cache_totals {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint64_t> evictions{0};
    std::atomic<std::uint64_t> entries{0};  // summed over threads, as last reported
};
parse_cache_totals& parse_cache();

// A client session's splitting state (only for databases that split).
struct split_session {
    router::session_routing_state state;
    split_database::health_cache health;
    split_database::catalog_cache catalog;
    router::route_options options;
    // The current transaction's server: nullopt the primary, else a replica index.
    std::optional<std::size_t> replica;
    bool routed_first = false;  // the transaction's first statement was routed at its start
    bool no_fit_error = false;  // a read with no fit replica and no_fit_replica = "error"
    // A read on the primary (no fit replica, or read-your-writes) that may run on a replica
    // when the primary cannot be reached.
    bool replica_if_primary_down = false;
    // The state before the transaction's first statement was routed: put back when no server
    // could be had for it (its statements never ran).
    router::session_routing_state before;
    // The client is owed ParameterStatus shardgate.last_commit_lsn (its latest write's LSN
    // became known); sent before the next ReadyForQuery.
    bool report_lsn = false;
    bool txn_writes = false;    // a statement of the current transaction writes
    bool count_at_end = false;  // on the primary: counted as read or write when it ends
    // Read-your-writes: when the write whose LSN is pending committed.
    std::optional<std::chrono::steady_clock::time_point> commit_at;
    // A query asking the primary for its insert LSN follows each message sent while this
    // session has a committed write whose LSN is not known (statement_mux's tail): the LSN
    // arrives with the commit's acknowledgement, and covers every write sent before it.
    std::uint32_t lsn_tails_sent = 0;
    std::uint32_t lsn_tails_answered = 0;
    // Messages routed while a write's LSN was pending, and their count when the last tail was
    // sent: a tail answered with more of them since does not settle the pending write.
    std::uint64_t write_seq = 0;
    std::uint64_t last_tail_seq = 0;
    bool copy_in_batch = false;  // a Parse of COPY ... FROM STDIN since the last Sync
    // The transaction's replica must have replayed this before the read runs there (asked at
    // attach time); 0: nothing to check.
    std::uint64_t verify_lsn = 0;
    // Global consistency: a read on a replica that must also see what other proxies
    // acknowledged: the primary's position is read at attach time, then the replica checked.
    bool global_read = false;
    std::chrono::steady_clock::time_point read_at{};
    // A plain BEGIN (and SET TRANSACTION, SET LOCAL shardgate.*) at a transaction's start,
    // answered by shardgate and held until a later statement chooses the server: sent there
    // first (statement_mux::hidden_query). `held_from`: the state before it.
    std::string held;
    router::session_routing_state held_from;
    // `held` would pass its limit with the next statement: that one fails on the server.
    bool held_overflow = false;
    // The message just routed set shardgate.role / consistency / min_lsn to a value it cannot
    // use: it is replaced by one that raises 22023 on the server (relay_txn.cpp).
    std::optional<router::setting_error> error;
    // Named prepared statements, classified at their Parse: a Bind costs no lexing.
    struct name_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    struct prepared_statement {
        std::string text;
        router::classified_query q;
    };
    std::unordered_map<std::string, prepared_statement, name_hash, std::equal_to<>> prepared;
};

}  // namespace shardgate::proxy
