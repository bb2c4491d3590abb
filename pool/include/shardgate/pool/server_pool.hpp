// A pool of server connections for one (database, user, backend): sized, with a reserve for
// bursts, a bounded wait for clients, recycling by age and idleness, a warm minimum, liveness
// checks of long-idle connections and exponential backoff while the backend is down.
//
// Thread-safe: sessions on any worker check connections out and in. A waiting client sleeps on
// a timer of its own executor; whoever frees a connection hands it straight to the first
// waiter (FIFO), so an idle connection and a waiting client never coexist.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "shardgate/pool/pool_settings.hpp"
#include "shardgate/pool/server_conn.hpp"
#include "shardgate/pool/server_login.hpp"
#include "shardgate/pool/slot_policy.hpp"
#include "shardgate/pool/stream.hpp"

namespace shardgate::pool {

// How a connection comes back to its pool (libpqxx's clean / dirty / poisoned):
enum class conn_state : std::uint8_t {
    clean,     // idle ('I'), nothing of its last client left: reusable as it is
    dirty,     // its client left session state (or a transaction): rolled back and reset with
               // reset_query first; closed instead if that fails, or if the backend holds a
               // temporary schema (DISCARD ALL keeps it, so the next client would not get a
               // backend like a new one)
    poisoned,  // broken, mid-query, or of unknown state: closed
};
std::string_view to_string(conn_state s);

struct pool_stats {
    std::uint32_t active = 0;  // checked out
    std::uint32_t idle = 0;
    std::uint32_t connecting = 0;  // logins in flight
    std::uint32_t waiting = 0;     // clients queued for a connection
    std::uint64_t opened = 0;      // connections opened since start
    std::uint64_t closed = 0;
    std::uint64_t connect_failures = 0;
    std::uint64_t checkout_timeouts = 0;
    std::chrono::milliseconds backoff{0};  // current backoff after failures, 0 when healthy
    std::uint32_t used = 0;  // of `idle`: idle past server_check_delay (checked before use)
    std::chrono::microseconds max_wait{0};  // how long the longest-waiting client has waited
    bool paused = false;                    // PAUSE: checkouts wait until resume()
};

struct checkout_result {
    std::unique_ptr<server_conn> conn;  // null on failure
    std::string error_code;             // SQLSTATE for the client
    std::string error_message;
    std::vector<std::byte> server_error;  // the server's own login refusal, raw, if any
    [[nodiscard]] bool ok() const { return conn != nullptr; }
};

class server_pool : public std::enable_shared_from_this<server_pool> {
  public:
    // `login` builds a fresh login request for each new connection (credentials may only be
    // learned once a client has authenticated; then it returns a request with no password
    // and no keys, and warm-up waits). `maint_ex` runs warm-up logins.
    using login_factory = std::function<std::optional<server_login_request>()>;

    server_pool(std::string name, pool_settings s, asio::any_io_executor maint_ex,
                login_factory login);
    ~server_pool();
    server_pool(const server_pool&) = delete;
    server_pool& operator=(const server_pool&) = delete;

    // Waits up to checkout_timeout. The connection's socket is rebound to `ex`. An idle
    // connection opened with the same startup parameters is preferred; a new one is opened
    // with them. `since`: when the client started waiting (a data plane may have queued it
    // first); checkout_timeout and reserve_pool_timeout count from then.
    awaitable<checkout_result> checkout(
        asio::any_io_executor ex,
        const std::vector<std::pair<std::string, std::string>>& startup_params = {},
        std::optional<steady::time_point> since = std::nullopt);
    // Returns a connection that is idle ('I') and clean; a connection past its lifetime is
    // closed instead.
    void checkin(std::unique_ptr<server_conn> c);
    // Closes a connection that cannot be reused (dirty, broken, or its client vanished).
    void discard(std::unique_ptr<server_conn> c);
    // checkin, discard, or a reset then checkin (dirty), as `how` says.
    void release(std::unique_ptr<server_conn> c, conn_state how);

    // Periodic upkeep (idle timeout, lifetime, min_pool_size warm-up).
    void maintain();
    void set_settings(const pool_settings& s);
    // Closes idle connections and refuses new checkouts (database removed from config).
    void close();
    // PAUSE (admin console): checkouts wait (still bounded by checkout_timeout), idle
    // connections are closed and so is every connection checked in until resume(); connections
    // in use stay with their clients. Paused and drained once stats() shows no active and no
    // connecting connection.
    void pause();
    // RESUME: every waiting client looks again (and opens a connection if needed).
    void resume();

    // Data planes keep idle connections of transaction-mode pools registered with themselves
    // between transactions ("parked"; checked out as far as the pool knows). A plane may park
    // one only while nobody waits, the pool is neither paused nor closed, and the connection
    // is within its lifetime; it gives parked ones back within `park_limit()` (half the
    // check delay and of the idle timeout).
    [[nodiscard]] bool may_park(const server_conn& c, steady::time_point now = steady::now()) const;
    [[nodiscard]] std::chrono::milliseconds park_limit() const;
    // A connection coming back from a client may stay in its plane for another of that
    // plane's clients: the pool is neither paused nor closed and the connection is within its
    // lifetime (may_park also wants nobody waiting in the pool).
    [[nodiscard]] bool may_keep(const server_conn& c, steady::time_point now) const {
        return serving_.load(std::memory_order_relaxed) && now < c.expires;
    }
    // When the pool's longest-waiting client started waiting (time_point::max() if none).
    [[nodiscard]] steady::time_point oldest_waiter() const {
        return steady::time_point(steady::duration(oldest_waiter_.load(std::memory_order_relaxed)));
    }
    // Data planes queue their clients themselves while the pool has nothing to give, and ask
    // the pool (checkout) only when it says so, for a client waiting since `since`:
    //   wait:    nothing idle, no room for a new connection (or backing off): keep waiting for
    //            a connection to come back;
    //   if_room: an idle connection or room for a new one: ask, a few clients at a time;
    //   now:     the pool must decide: paused or closed, the backend down with nothing
    //            connected, or the client has waited reserve_pool_timeout (the reserve) or
    //            checkout_timeout (the error).
    enum class advice : std::uint8_t { wait, if_room, now };
    [[nodiscard]] advice advise(steady::time_point since, steady::time_point now) const;
    void note_parked(int delta) { parked_.fetch_add(delta, std::memory_order_relaxed); }
    // Clients queued in a data plane (counted in stats().waiting).
    void note_plane_waiting(int delta) {
        plane_waiting_.fetch_add(delta, std::memory_order_relaxed);
    }

    [[nodiscard]] pool_stats stats() const;
    [[nodiscard]] const std::string& name() const { return name_; }
    // The pool's place in the one order checkout_all takes pools in (creation order).
    [[nodiscard]] std::uint64_t order() const { return order_; }

  private:
    struct waiter;
    [[nodiscard]] std::uint32_t total_locked() const;
    steady::time_point expiry_for(steady::time_point created);
    static bool closed_by_server(tcp::socket& s);
    void close_conn(std::unique_ptr<server_conn> c);  // not under the lock
    // checkout's view of the slots for decide_checkout, and its refusals' words.
    [[nodiscard]] slot_view slots_locked() const;
    checkout_result refusal_locked(checkout_decision::kind k);
    void give_or_idle_locked(std::unique_ptr<server_conn> c,
                             std::vector<std::unique_ptr<server_conn>>& to_close);
    void wake_first_locked();
    awaitable<checkout_result> open_new(
        asio::any_io_executor ex, const std::vector<std::pair<std::string, std::string>>& params);
    void warm_up_locked();
    awaitable<void> reset_then_checkin(std::shared_ptr<server_pool> self,
                                       std::unique_ptr<server_conn> c);

    const std::string name_;
    const std::uint64_t order_;
    const asio::any_io_executor maint_ex_;
    const login_factory login_;
    mutable std::mutex mu_;
    pool_settings s_;
    std::vector<std::unique_ptr<server_conn>> idle_;  // most recently used last
    std::deque<std::shared_ptr<waiter>> waiters_;
    std::uint32_t active_ = 0;
    std::atomic<int> parked_{0};  // of active_: idle in a data plane
    std::atomic<int> plane_waiting_{0};
    // No waiters, not paused, not closed (kept by update_parkable_locked()).
    std::atomic<bool> parkable_{true};
    std::atomic<bool> serving_{true};  // neither paused nor closed
    std::atomic<steady::rep> oldest_waiter_{steady::time_point::max().time_since_epoch().count()};
    static steady::rep waiter_since(const waiter& w);
    void update_parkable_locked() {
        parkable_.store(waiters_.empty() && !paused_ && !closed_, std::memory_order_relaxed);
        serving_.store(!paused_ && !closed_, std::memory_order_relaxed);
        oldest_waiter_.store(waiters_.empty() ? steady::time_point::max().time_since_epoch().count()
                                              : waiter_since(*waiters_.front()),
                             std::memory_order_relaxed);
    }
    std::uint32_t connecting_ = 0;
    bool closed_ = false;
    bool paused_ = false;
    pool_stats counters_;
    std::chrono::milliseconds backoff_{0};
    steady::time_point next_attempt_{};
    std::string last_error_;
    std::mt19937_64 rng_{std::random_device{}()};
};

// A session's connections from several pools (a statement on several shards, or a primary and
// a replica), all or none. However the caller lists them, the pools are taken one at a time in
// one process-wide order (server_pool::order()), so a session only ever waits for a pool while
// holding pools earlier in that order: two sessions can never each hold what the other waits
// for. checkout_timeout (and the reserve) count from `since` for every pool. On a failure the
// connections already taken go back clean (no client has used them) and `failure` says which
// pool failed and why. Each pool at most once per call: two connections of one pool, taken one
// after the other, could deadlock two sessions inside that pool.
struct multi_checkout_result {
    std::vector<std::unique_ptr<server_conn>> conns;  // in the caller's order; empty on failure
    checkout_result failure;                          // error_code/error_message when failed
    std::size_t failed_index = 0;                     // into the caller's list
    [[nodiscard]] bool ok() const { return !conns.empty(); }
};
awaitable<multi_checkout_result> checkout_all(
    asio::any_io_executor ex, std::vector<std::shared_ptr<server_pool>> pools,
    std::vector<std::pair<std::string, std::string>> startup_params = {},
    std::optional<steady::time_point> since = std::nullopt);

// Returns `c` to the pool that opened it (server_conn::home), in state `how`; closes it if that
// pool is gone. Every connection goes back this way, so none can reach another pool.
void give_back(std::unique_ptr<server_conn> c, conn_state how);

}  // namespace shardgate::pool
