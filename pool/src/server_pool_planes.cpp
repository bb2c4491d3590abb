// What data planes ask of a server pool: whether a connection may stay parked in a plane, how
// long, and whether a client queued in a plane should ask the pool now (server_pool.hpp,
// proxy/src/plane_txn.hpp). Split from server_pool.cpp, which checks connections out and in.
#include "shardgate/pool/server_pool.hpp"

#include <algorithm>

namespace shardgate::pool {
using std::chrono::milliseconds;

bool server_pool::may_park(const server_conn& c, steady::time_point now) const {
    // Lock-free: data planes ask twice per transaction.
    return parkable_.load(std::memory_order_relaxed) &&
           plane_waiting_.load(std::memory_order_relaxed) == 0 && now < c.expires;
}

server_pool::advice server_pool::advise(steady::time_point since, steady::time_point now) const {
    std::lock_guard lock(mu_);
    if (closed_ || paused_ || (backoff_.count() > 0 && total_locked() == 0) ||
        now - since >= s_.checkout_timeout ||
        (s_.reserve_pool_size > 0 && now - since >= s_.reserve_pool_timeout))
        return advice::now;
    if (!idle_.empty() || (total_locked() < s_.pool_size && now >= next_attempt_))
        return advice::if_room;
    return advice::wait;
}

std::chrono::milliseconds server_pool::park_limit() const {
    std::lock_guard lock(mu_);
    // Short enough that idle timeouts and liveness checks stay the pool's business (a parked
    // connection the server closes is seen at once: the plane watches it).
    auto limit = s_.server_check_delay / 2;
    if (s_.server_idle_timeout.count() > 0) limit = std::min(limit, s_.server_idle_timeout / 2);
    return std::max(limit, milliseconds(1));
}

}  // namespace shardgate::pool
