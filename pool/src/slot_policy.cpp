// The pool's checkout decision (slot_policy.hpp).
#include "shardgate/pool/slot_policy.hpp"

#include <algorithm>

namespace shardgate::pool {

std::string_view to_string(checkout_decision::kind k) {
    switch (k) {
        case checkout_decision::kind::take_idle:
            return "take_idle";
        case checkout_decision::kind::open:
            return "open";
        case checkout_decision::kind::replace_oldest:
            return "replace_oldest";
        case checkout_decision::kind::fail_closed:
            return "fail_closed";
        case checkout_decision::kind::fail_down:
            return "fail_down";
        case checkout_decision::kind::fail_timeout:
            return "fail_timeout";
        case checkout_decision::kind::wait:
            return "wait";
    }
    return "?";
}

namespace {

using kind = checkout_decision::kind;

// Among idle connections: a connection's startup parameters are what RESET returns to, so a
// client gets, in order: an idle connection opened with its own parameters (most recently used
// first); a new one; else the oldest idle one is replaced by a new one. (One opened with other
// parameters, or none, with the client's applied on top, would RESET to the wrong values:
// only while backing off, when no new one may be opened.)
checkout_decision from_idle(const slot_view& v, std::string_view key, bool room, bool may_connect) {
    const auto& idle = v.idle;
    for (std::size_t i = idle.size; i-- > 0;)
        if (idle[i] == key) return {kind::take_idle, i};
    if (!may_connect) return {kind::take_idle, idle.size - 1};
    return {room ? kind::open : kind::replace_oldest};
}

}  // namespace

checkout_decision decide_checkout(const pool_settings& s, const slot_view& v, std::string_view key,
                                  std::chrono::steady_clock::time_point start,
                                  std::chrono::steady_clock::time_point now) {
    const bool reserve_ok = s.reserve_pool_size > 0 && now - start >= s.reserve_pool_timeout;
    const std::uint32_t limit = s.pool_size + (reserve_ok ? s.reserve_pool_size : 0);
    const auto total = v.active + v.connecting + static_cast<std::uint32_t>(v.idle.size);
    const bool may_connect = now >= v.next_attempt;
    if (v.closed) return {kind::fail_closed};
    if (!v.paused && !v.idle.empty()) return from_idle(v, key, total < limit, may_connect);
    if (!v.paused && total < limit && may_connect) return {kind::open};
    // Nothing is connected and the last attempt failed: say so now rather than keep the
    // client waiting for a backend that is down.
    if (!v.paused && v.failing && total == 0) return {kind::fail_down};
    if (now - start >= s.checkout_timeout) return {kind::fail_timeout};
    // Queued: for a connection to be freed, a slot, the reserve, the backoff to end, or
    // (paused) resume().
    checkout_decision d{kind::wait};
    d.wake_at = start + s.checkout_timeout;
    if (s.reserve_pool_size > 0 && !reserve_ok)
        d.wake_at = std::min(d.wake_at, start + s.reserve_pool_timeout);
    if (v.next_attempt > now) d.wake_at = std::min(d.wake_at, v.next_attempt);
    return d;
}

}  // namespace shardgate::pool
