// The pure placement step of read/write splitting: which replica (or the primary) a read goes
// to, from the replicas' state.
#include "shardgate/router/placement.hpp"

#include <doctest/doctest.h>

#include <map>
#include <vector>

using namespace shardgate::router;
using namespace std::chrono_literals;

namespace {

replica_view fit(std::uint64_t replayed = 100, std::uint32_t weight = 1) {
    replica_view v;
    v.fit = true;
    v.replayed = replayed;
    v.weight = weight;
    return v;
}

std::optional<placement> place(const std::vector<replica_view>& r, placement_input in = {}) {
    in.replicas = r;
    return place_read(in);
}

}  // namespace

TEST_CASE("placement: no fit replica is no placement") {
    std::vector<replica_view> r(2);
    CHECK_FALSE(place(r));
    CHECK_FALSE(place({}));
}

TEST_CASE("placement: round robin over the fit replicas, by turn") {
    std::vector<replica_view> r{fit(), replica_view{}, fit()};
    std::map<std::size_t, int> seen;
    for (std::uint64_t t = 0; t < 10; ++t) {
        placement_input in;
        in.turn = t;
        const auto p = place(r, in);
        REQUIRE(p);
        CHECK_FALSE(p->primary);
        CHECK_FALSE(p->verify);
        ++seen[p->replica];
    }
    CHECK(seen.size() == 2);
    CHECK(seen[0] == 5);
    CHECK(seen[2] == 5);
}

TEST_CASE("placement: replicas that replayed min_lsn first; else any not slow, to be verified") {
    std::vector<replica_view> r{fit(50), fit(200)};
    placement_input in;
    in.min_lsn = 150;
    for (std::uint64_t t = 0; t < 4; ++t) {
        in.turn = t;
        const auto p = place(r, in);
        REQUIRE(p);
        CHECK(p->replica == 1);
        CHECK_FALSE(p->verify);
    }
    in.min_lsn = 300;  // none has: both are candidates, asked first
    auto p = place(r, in);
    REQUIRE(p);
    CHECK(p->verify);
    r[0].slow = true;
    r[1].slow = true;
    CHECK_FALSE(place(r, in));
    r[1].slow = false;
    p = place(r, in);
    REQUIRE(p);
    CHECK(p->replica == 1);
    CHECK(p->verify);
}

TEST_CASE("placement: primary_reads puts the primary among the candidates, never verified") {
    std::vector<replica_view> r{fit()};
    placement_input in;
    in.primary_reads = true;
    in.min_lsn = 500;  // the replica must be asked
    bool primary_seen = false;
    for (std::uint64_t t = 0; t < 4; ++t) {
        in.turn = t;
        const auto p = place(r, in);
        REQUIRE(p);
        if (p->primary) {
            primary_seen = true;
            CHECK_FALSE(p->verify);
        } else {
            CHECK(p->verify);
        }
    }
    CHECK(primary_seen);
}

TEST_CASE("placement: weighted follows the weights over the random number") {
    std::vector<replica_view> r{fit(100, 1), fit(100, 3)};
    placement_input in;
    in.policy = balance_policy::weighted;
    std::map<std::size_t, int> seen;
    for (std::uint64_t x = 0; x < 400; ++x) {
        in.random = x;
        ++seen[place(r, in)->replica];
    }
    CHECK(seen[0] == 100);
    CHECK(seen[1] == 300);
}

TEST_CASE("placement: least_connections picks the least busy, ties by turn") {
    std::vector<replica_view> r{fit(), fit(), fit()};
    r[0].active = 5;
    r[1].active = 2;
    r[2].active = 2;
    placement_input in;
    in.policy = balance_policy::least_connections;
    std::map<std::size_t, int> seen;
    for (std::uint64_t t = 0; t < 6; ++t) {
        in.turn = t;
        ++seen[place(r, in)->replica];
    }
    CHECK(seen[0] == 0);
    CHECK(seen[1] > 0);
    CHECK(seen[2] > 0);
}

TEST_CASE("placement: least_latency picks the lowest round trip") {
    std::vector<replica_view> r{fit(), fit(), fit()};
    r[0].rtt = 900us;
    r[1].rtt = 300us;
    r[2].rtt = 600us;
    placement_input in;
    in.policy = balance_policy::least_latency;
    in.primary_reads = true;  // the primary has no round trip: never the lowest
    CHECK(place(r, in)->replica == 1);
    CHECK_FALSE(place(r, in)->primary);
}
