// What a pool does when a client asks for a server connection, decided from a snapshot of the
// pool's slots (server_pool::checkout takes the snapshot under its lock and carries the
// decision out). No I/O, no clock: the time is given; unit-tested in tests/unit/pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shardgate/pool/pool_settings.hpp"

namespace shardgate::pool {

// The idle connections' startup keys, oldest first, read through the pool's own list (no copy).
struct idle_keys {
    const void* list = nullptr;
    std::size_t size = 0;
    std::string_view (*key_at)(const void* list, std::size_t i) = nullptr;
    [[nodiscard]] bool empty() const { return size == 0; }
    [[nodiscard]] std::string_view operator[](std::size_t i) const { return key_at(list, i); }
};

// The pool's slots when a client asks.
struct slot_view {
    bool closed = false;
    bool paused = false;           // PAUSE: nothing is handed out
    std::uint32_t active = 0;      // checked out
    std::uint32_t connecting = 0;  // logins in flight
    idle_keys idle;                // the idle connections, oldest first
    bool failing = false;          // the last connection attempt failed (backoff)
    std::chrono::steady_clock::time_point next_attempt{};  // no new attempt before this
};

struct checkout_decision {
    enum class kind : std::uint8_t {
        take_idle,       // hand out idle connection `idle_index`
        open,            // open a new connection (a slot is free)
        replace_oldest,  // close the oldest idle connection and open one with the client's key
        fail_closed,     // the pool is closed (57P01 admin_shutdown)
        fail_down,       // nothing is connected and the last attempt failed (08006)
        fail_timeout,    // checkout_timeout has passed (53300)
        wait,            // queue until a connection is freed, or `wake_at`
    };
    kind what = kind::wait;
    std::size_t idle_index = 0;
    std::chrono::steady_clock::time_point wake_at{};
};
std::string_view to_string(checkout_decision::kind k);

// `key`: the client's startup key; `start`: when it began to wait; `now`: the time now.
checkout_decision decide_checkout(const pool_settings& s, const slot_view& v, std::string_view key,
                                  std::chrono::steady_clock::time_point start,
                                  std::chrono::steady_clock::time_point now);

}  // namespace shardgate::pool
