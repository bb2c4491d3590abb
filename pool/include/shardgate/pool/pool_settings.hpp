// A server connection pool's sizes and times (pool_size, reserve, checkout_timeout, lifetimes,
// backoff, reset query): plain data, shared by the pool and its sans-I/O slot policy.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace shardgate::pool {

struct pool_settings {
    std::uint32_t pool_size = 20;  // server connections, in use + idle + being opened
    std::uint32_t min_pool_size = 0;
    std::uint32_t reserve_pool_size = 0;  // extra connections for clients that waited ...
    std::chrono::milliseconds reserve_pool_timeout{5000};  // ... at least this long
    std::chrono::milliseconds checkout_timeout{120000};    // longest wait for a connection
    std::chrono::milliseconds server_lifetime{3600000};
    std::chrono::milliseconds server_lifetime_jitter{360000};  // lifetime is cut by up to this
    std::chrono::milliseconds server_idle_timeout{600000};     // 0: never
    std::chrono::milliseconds server_check_delay{30000};       // idle longer: checked before use
    std::chrono::milliseconds server_connect_timeout{5000};
    std::chrono::milliseconds backoff_initial{1000};  // after a failed connect: 1 s, 2 s, 4 s...
    std::chrono::milliseconds backoff_max{30000};
    // Run on a dirty connection before it is reused (server_reset_query); "" = none.
    std::string reset_query = "DISCARD ALL";
};

}  // namespace shardgate::pool
