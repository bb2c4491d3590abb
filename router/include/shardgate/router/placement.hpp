// Which server a read runs on, once route.hpp has said it may run on a replica: the pure step
// of read/write splitting's placement. The caller gathers each replica's state (fitness from
// the monitor, replayed position, whether it just failed a consistency check, weight, active
// connections, round-trip time) and a turn and a random number; this picks. No I/O, no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

namespace shardgate::router {

enum class balance_policy : std::uint8_t {
    round_robin,
    weighted,
    least_connections,
    least_latency
};

struct replica_view {
    bool fit = false;            // the monitor finds it fit (lag within bounds, reachable)
    std::uint64_t replayed = 0;  // the position it is known to have replayed
    bool slow = false;           // it just failed a consistency check: not asked again yet
    std::uint32_t weight = 1;
    std::uint32_t active = 0;          // its pool's server connections in use (least_connections)
    std::chrono::microseconds rtt{0};  // the monitor's round-trip estimate (least_latency)
};

struct placement_input {
    std::span<const replica_view> replicas;
    std::uint64_t min_lsn = 0;   // what the read must see replayed (0: nothing)
    bool primary_reads = false;  // the primary takes reads too, with primary_weight
    std::uint32_t primary_weight = 1;
    balance_policy policy = balance_policy::round_robin;
    std::uint64_t turn = 0;    // a counter advanced per read (round robin, ties)
    std::uint64_t random = 0;  // a random number (weighted)
};

struct placement {
    bool primary = false;
    std::size_t replica = 0;
    bool verify = false;  // the replica must be asked whether it replayed min_lsn first
};

// Replicas known to have replayed min_lsn come first; if none has, any fit one that is not
// slow, marked verify. nullopt: no replica is fit (the caller falls back to the primary, or
// refuses the read).
std::optional<placement> place_read(const placement_input& in);

}  // namespace shardgate::router
