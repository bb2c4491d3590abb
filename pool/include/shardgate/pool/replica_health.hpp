// Replica fitness for reads, decided from observations only (no I/O): lag in bytes and in time,
// limits with hysteresis, bans on failed checks, round-trip times for balancing.
//
// How lag is measured
// -------------------
// Byte lag is the primary's WAL position (`pg_current_wal_insert_lsn()`) minus the replica's replay
// position (`pg_last_wal_replay_lsn()`), 0 when the replica is ahead of our last primary sample.
//
// Time lag is *not* `now() - pg_last_xact_replay_timestamp()`: that grows without bound while
// the primary is idle, although an idle primary's replicas are perfectly fresh. Instead the
// monitor keeps a short history of the primary's positions, each with the steady time it was
// first seen there. A replica's time lag is
//
//     now - (the time the primary was first seen at a position beyond the replica's replay LSN)
//
// and 0 when the replica has replayed everything the primary had. In words: "the replica has
// been missing WAL that the primary had since then". On an idle primary the position does not
// move, replicas catch up, and the time lag stays 0 however long nothing happens; when replay
// stalls under writes, it grows with the wall clock from the first write the replica missed.
//
// Both lags are lower bounds with an error of about one polling interval: the primary is sampled
// at most once per interval (a position is "first seen" up to an interval after it was written),
// and a replica is compared with the latest primary sample, never a later one. The history keeps
// `history_capacity` positions, one per primary sample that saw the position move; once full it
// thins out with age (recent positions stay exact, older ones merge geometrically), so a large
// lag is under-counted by a small fraction of itself, never more. Before the monitor's first
// primary sample nothing is known: a replica that was already behind then shows a time lag
// counted from that first sample.
//
// Fitness
// -------
// A replica is `fit` (takes reads) while its lag is within max_lag_bytes and max_lag_ms. Above
// either it becomes `lagging`, and it returns to `fit` only once both lags are at or below the
// readmit marks (default: half the maxima), so a replica hovering around a limit does not flap.
// A failed check (connect or login refused, query failed, connection lost, timeout) or a server
// that is not in recovery (promoted: not a replica any more) bans the replica; it is re-checked
// every interval and re-admitted after `readmit_after_checks` passing checks in a row, to `fit`
// when below the readmit marks and to `lagging` otherwise. Until the primary's position has been
// seen once, lag is unknown and replicas stay `unknown` (unfit).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardgate::pool {

using health_clock = std::chrono::steady_clock;

// pg_lsn text ("16/B374D848": high and low 32 bits in hex) to a 64-bit WAL position.
// https://www.postgresql.org/docs/15/datatype-pg-lsn.html
std::optional<std::uint64_t> parse_lsn(std::string_view text);
// The inverse, as Postgres prints it: upper-case hex, no padding ("16/B374D848", "0/0").
std::string format_lsn(std::uint64_t lsn);

// The check queries, and their single rows (text format) decoded without I/O. A malformed row
// (wrong column count, NULL where a value is needed, bad text) decodes to nullopt.
// https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-RECOVERY-INFO-TABLE
// The insert position, not pg_current_wal_lsn() (the write position): with synchronous_commit
// = off a commit returns before its record is written, so only the insert position is sure to
// be past every commit a client has seen (read-your-writes compares against it).
inline constexpr std::string_view primary_check_sql = "SELECT pg_current_wal_insert_lsn()";
inline constexpr std::string_view replica_check_sql =
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn()";

struct lag_settings {
    std::uint64_t max_lag_bytes = 0;          // 0: no limit
    std::chrono::milliseconds max_lag_ms{0};  // 0: no limit
    // Hysteresis: a lagging replica is fit again only at or below these; default half the max.
    std::optional<std::uint64_t> readmit_lag_bytes;
    std::optional<std::chrono::milliseconds> readmit_lag_ms;
    std::uint32_t readmit_after_checks = 1;  // passing checks in a row that end a ban
    double rtt_ewma_weight = 0.25;           // weight of the newest round trip in the average
    std::size_t history_capacity = 1024;     // primary positions kept for the time lag (>= 3)

    bool operator==(const lag_settings&) const = default;
};

// Fitness of one replica. Exactly one function (replica_health::set_state) changes it.
enum class replica_state : std::uint8_t {
    unknown,  // no passing check yet, or the primary's position was never seen: no reads
    fit,      // answers, is in recovery, lag within the limits: takes reads
    lagging,  // answers, but lag went above a max and is not yet back at the readmit marks
    banned,   // the last check failed or it is not in recovery: re-checked every interval
};
std::string_view to_string(replica_state s);

// Why a check failed (the ban reason).
enum class check_failure : std::uint8_t {
    none,
    connect_failed,   // TCP connect, TLS or login refused
    connection_lost,  // the connection broke during the check
    query_failed,     // the server answered the check with an error, or with a malformed row
    timeout,          // no answer within the check timeout
    not_in_recovery,  // pg_is_in_recovery() is false: promoted, not a replica
};
std::string_view to_string(check_failure f);

// One passing check of a replica.
struct replica_sample {
    bool in_recovery = true;
    std::uint64_t replay_lsn = 0;
    std::optional<std::uint64_t> receive_lsn;  // NULL when WAL does not come by streaming
    std::chrono::microseconds rtt{0};          // the check query's round trip
};

using text_row = std::vector<std::optional<std::string>>;  // a DataRow's values; nullopt: NULL
std::optional<std::uint64_t> decode_primary_row(const text_row& row);
// The replay position may be NULL only when not in recovery; `rtt` is left 0.
std::optional<replica_sample> decode_replica_row(const text_row& row);

struct replica_status {
    replica_state state = replica_state::unknown;
    std::uint64_t lag_bytes = 0;  // as of the last passing check
    std::chrono::milliseconds lag_ms{0};
    std::uint64_t replay_lsn = 0;  // 0 before the first passing check
    std::uint64_t receive_lsn = 0;
    std::chrono::microseconds rtt_ewma{0};             // 0 before the first passing check
    health_clock::time_point last_check{};             // when the last check (passing or not) ended
    health_clock::time_point since{};                  // when `state` was entered
    check_failure last_failure = check_failure::none;  // of the last failed check
    std::string last_error;                            // its detail, for logs and SHOW
    std::uint32_t passes_in_row = 0;
    std::uint64_t checks = 0;  // passing + failed
    std::uint64_t failures = 0;
    std::uint64_t bans = 0;  // times it entered `banned`

    [[nodiscard]] bool fit() const { return state == replica_state::fit; }
};

// A state change an observation caused, for logs (from == to: none).
struct state_change {
    replica_state from = replica_state::unknown;
    replica_state to = replica_state::unknown;
    [[nodiscard]] bool changed() const { return from != to; }
};

// Everything known about one database at one moment: a plain value to copy and publish.
struct health_report {
    bool primary_known = false;      // its position was seen at least once
    bool primary_reachable = false;  // its last check passed
    std::uint64_t primary_lsn = 0;   // the latest position seen
    health_clock::time_point primary_checked{};
    std::string primary_error;  // of the last failed primary check
    std::uint64_t primary_failures = 0;
    std::vector<replica_status> replicas;  // in configuration order

    [[nodiscard]] bool fit(std::size_t replica) const {
        return replica < replicas.size() && replicas[replica].fit();
    }
    // Read-your-writes: the replica answers (fit or lagging) and its last passing check saw it
    // replayed up to `lsn` or beyond. Replay never goes back, so an old check errs on the safe
    // side.
    [[nodiscard]] bool replayed_at_least(std::size_t replica, std::uint64_t lsn) const;
    [[nodiscard]] std::size_t fit_count() const;
};

// The lag and fitness bookkeeping of one monitored database (a primary and its replicas).
// Not thread-safe: one owner feeds it and publishes report() copies.
class replica_health {
  public:
    replica_health(std::size_t replica_count, lag_settings s);

    // A passing primary check: pg_current_wal_insert_lsn() as seen at `at`.
    void observe_primary(health_clock::time_point at, std::uint64_t lsn);
    // A failed primary check; lags keep being measured against the last position seen.
    void primary_failed(health_clock::time_point at, std::string detail);

    state_change observe_replica(std::size_t replica, health_clock::time_point at,
                                 const replica_sample& s);
    state_change replica_failed(std::size_t replica, health_clock::time_point at, check_failure why,
                                std::string detail);

    [[nodiscard]] const replica_status& status(std::size_t replica) const;
    [[nodiscard]] std::size_t replica_count() const { return report_.replicas.size(); }
    [[nodiscard]] bool replayed_at_least(std::size_t replica, std::uint64_t lsn) const;
    [[nodiscard]] const health_report& report() const { return report_; }
    [[nodiscard]] const lag_settings& settings() const { return s_; }

    // The lags of a replay position against what the primary is known to have had.
    [[nodiscard]] std::uint64_t byte_lag(std::uint64_t replay_lsn) const;
    [[nodiscard]] std::chrono::milliseconds time_lag(std::uint64_t replay_lsn,
                                                     health_clock::time_point now) const;
    [[nodiscard]] std::size_t history_size() const { return history_.size(); }

  private:
    struct position {
        std::uint64_t lsn;
        health_clock::time_point first_seen;
    };
    [[nodiscard]] bool over_max(const replica_status& r) const;
    [[nodiscard]] bool at_readmit_marks(const replica_status& r) const;
    void set_state(replica_status& r, replica_state to, health_clock::time_point at);
    void thin_history();

    lag_settings s_;
    std::uint64_t readmit_bytes_ = 0;
    std::chrono::milliseconds readmit_ms_{0};
    std::vector<position> history_;  // ascending in lsn and in time
    health_report report_;           // primary fields and replica statuses, kept current
};

}  // namespace shardgate::pool
