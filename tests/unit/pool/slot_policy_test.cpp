// The pool's checkout decision, slot by slot, with the time given.
#include "shardgate/pool/slot_policy.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace shardgate::pool;
using namespace std::chrono_literals;
using kind = checkout_decision::kind;
using clock_type = std::chrono::steady_clock;

namespace {

struct pool_model {
    pool_settings s;
    std::vector<std::string> idle;  // startup keys, oldest first
    slot_view v;
    pool_model() { s.pool_size = 2; }
    checkout_decision ask(std::string_view key, clock_type::time_point start,
                          clock_type::time_point now) {
        v.idle = {&idle, idle.size(), [](const void* l, std::size_t i) -> std::string_view {
                      return (*static_cast<const std::vector<std::string>*>(l))[i];
                  }};
        return decide_checkout(s, v, key, start, now);
    }
};

const auto t0 = clock_type::time_point{} + 1000s;

}  // namespace

TEST_CASE("slot_policy: an idle connection with the client's key, most recently used first") {
    pool_model p;
    p.idle = {"a", "b", "a"};
    const auto d = p.ask("a", t0, t0);
    CHECK(d.what == kind::take_idle);
    CHECK(d.idle_index == 2);
}

TEST_CASE(
    "slot_policy: no idle match: a new connection while there is room, else the oldest "
    "idle one is replaced") {
    pool_model p;
    p.idle = {"b"};
    CHECK(p.ask("a", t0, t0).what == kind::open);  // 1 of 2 slots used
    p.idle = {"b", "c"};
    CHECK(p.ask("a", t0, t0).what == kind::replace_oldest);
}

TEST_CASE("slot_policy: while backing off, any idle connection (the client's settings go on top)") {
    pool_model p;
    p.idle = {"b", "c"};
    p.v.next_attempt = t0 + 500ms;
    const auto d = p.ask("a", t0, t0);
    CHECK(d.what == kind::take_idle);
    CHECK(d.idle_index == 1);
}

TEST_CASE("slot_policy: full pool: wait until checkout_timeout, then 53300") {
    pool_model p;
    p.v.active = 2;
    p.s.checkout_timeout = 5s;
    auto d = p.ask("a", t0, t0 + 1s);
    CHECK(d.what == kind::wait);
    CHECK(d.wake_at == t0 + 5s);
    CHECK(p.ask("a", t0, t0 + 5s).what == kind::fail_timeout);
}

TEST_CASE("slot_policy: the reserve opens after reserve_pool_timeout, and the wait wakes for it") {
    pool_model p;
    p.v.active = 2;
    p.s.reserve_pool_size = 1;
    p.s.reserve_pool_timeout = 2s;
    auto d = p.ask("a", t0, t0 + 1s);
    CHECK(d.what == kind::wait);
    CHECK(d.wake_at == t0 + 2s);
    CHECK(p.ask("a", t0, t0 + 2s).what == kind::open);
    p.v.active = 3;
    CHECK(p.ask("a", t0, t0 + 3s).what == kind::wait);
}

TEST_CASE("slot_policy: a backend that is down is an error at once when nothing is connected") {
    pool_model p;
    p.v.failing = true;
    p.v.next_attempt = t0 + 1s;
    CHECK(p.ask("a", t0, t0).what == kind::fail_down);
    // With something connected (in use), the client waits for it or for the next attempt.
    p.v.active = 1;
    const auto d = p.ask("a", t0, t0);
    CHECK(d.what == kind::wait);
    CHECK(d.wake_at == t0 + 1s);
    // Once the next attempt is due, a free slot is used.
    CHECK(p.ask("a", t0, t0 + 1s).what == kind::open);
}

TEST_CASE("slot_policy: paused: nothing is handed out, not even an idle connection") {
    pool_model p;
    p.v.paused = true;
    p.idle = {"a"};
    CHECK(p.ask("a", t0, t0).what == kind::wait);
    p.s.checkout_timeout = 1s;
    CHECK(p.ask("a", t0, t0 + 1s).what == kind::fail_timeout);
}

TEST_CASE("slot_policy: closed refuses first") {
    pool_model p;
    p.v.closed = true;
    p.idle = {"a"};
    CHECK(p.ask("a", t0, t0).what == kind::fail_closed);
}

TEST_CASE("slot_policy: connections being opened count against the size") {
    pool_model p;
    p.v.connecting = 2;
    CHECK(p.ask("a", t0, t0).what == kind::wait);
}
