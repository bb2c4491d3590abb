// checkout_all against a real Postgres: 200 sessions that each need two of three pools of one
// server (pool_size = 2), arriving in random order and listing their pools in random order, are
// all served within checkout_timeout, with no deadlock and never more than pool_size
// connections of a pool in use; a pool that cannot serve gives back what the others gave.
#include <doctest/doctest.h>

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it

#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shardgate/pool/server_pool.hpp"
#include "shardgate/testsupport/testsupport.hpp"

namespace asio = boost::asio;
namespace sp = shardgate::pool;
using namespace shardgate::testsupport;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int sessions = 200;
constexpr auto checkout_timeout = 30s;

struct pools_fixture {
    pg_server server;
    // Like the proxy's workers: each io_context is run by one thread only (a pool wakes a waiter
    // by posting to the waiter's own executor; its timer is not thread-safe).
    asio::io_context io{1};
    asio::io_context io2{1};
    std::vector<std::shared_ptr<sp::server_pool>> pools;
    std::array<std::atomic<int>, 3> in_use{};
    std::array<std::atomic<int>, 3> peak{};

    explicit pools_fixture(std::uint16_t bad_port = 0) {
        sp::pool_settings s;
        s.pool_size = 2;
        s.checkout_timeout = checkout_timeout;
        s.server_check_delay = 60s;
        for (int i = 0; i < 3; ++i) {
            const std::uint16_t port =
                i == 2 && bad_port != 0 ? bad_port : static_cast<std::uint16_t>(server.port());
            pools.push_back(std::make_shared<sp::server_pool>(
                "pool" + std::to_string(i), s, io.get_executor(), [port, this] {
                    sp::server_login_request r;
                    r.backend = {"app", server.host(), port, "postgres",
                                 sp::server_tls_mode::disable};
                    r.user = pg_server::superuser;
                    r.password = pg_server::superuser_password;
                    r.timeout = 5000ms;
                    return std::optional<sp::server_login_request>(r);
                }));
        }
    }
    void note_in_use(std::size_t pool, int delta) {
        const int now = in_use[pool].fetch_add(delta) + delta;
        int p = peak[pool].load();
        while (now > p && !peak[pool].compare_exchange_weak(p, now)) {
        }
    }
};

struct outcome {
    std::atomic<int> served{0};
    std::atomic<int> failed{0};
    std::atomic<int> done{0};
    std::atomic<long long> longest_wait_ms{0};
    std::mutex mu;
    std::vector<std::string> errors;
};

// One session: waits `delay`, checks out `want`, runs SELECT 1 on each connection, gives them
// back clean.
asio::awaitable<void> session(pools_fixture& f, outcome& o, std::vector<std::size_t> want,
                              std::chrono::milliseconds delay) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer t(ex, delay);
    co_await t.async_wait(asio::use_awaitable);
    std::vector<std::shared_ptr<sp::server_pool>> ps;
    for (auto i : want)
        ps.push_back(f.pools[i]);
    const auto start = clock_type::now();
    auto r = co_await sp::checkout_all(ex, ps);
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
    long long prev = o.longest_wait_ms.load();
    while (waited > prev && !o.longest_wait_ms.compare_exchange_weak(prev, waited)) {
    }
    if (!r.ok()) {
        ++o.failed;
        std::lock_guard lock(o.mu);
        o.errors.push_back(r.failure.error_code + " " + r.failure.error_message);
    } else {
        for (auto i : want)
            f.note_in_use(i, 1);
        bool all_ok = true;
        for (auto& c : r.conns) {
            auto e = co_await sp::async_exec(*c, "SELECT 1", 5000ms);
            all_ok = all_ok && e.ok && e.error.empty() && e.first_value == "1";
        }
        for (auto i : want)
            f.note_in_use(i, -1);
        for (auto& c : r.conns)
            sp::give_back(std::move(c), all_ok ? sp::conn_state::clean : sp::conn_state::poisoned);
        if (all_ok) {
            ++o.served;
        } else {
            ++o.failed;
            std::lock_guard lock(o.mu);
            o.errors.push_back("SELECT 1 failed");
        }
    }
    ++o.done;
}

// Runs the sessions on two worker threads, one io_context each, sharing the pools as the proxy's
// workers do; each session gets a pair from `pairs` (listed in random order) and a random
// arrival within 100 ms.
void run_sessions(pools_fixture& f, outcome& o,
                  const std::vector<std::vector<std::size_t>>& pairs) {
    std::mt19937 rng(12345);
    for (int i = 0; i < sessions; ++i) {
        auto want = pairs[static_cast<std::size_t>(i) % pairs.size()];
        std::shuffle(want.begin(), want.end(), rng);
        const auto delay =
            std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 100)(rng));
        asio::co_spawn(i % 2 == 0 ? f.io : f.io2, session(f, o, want, delay), asio::detached);
    }
    std::vector<std::thread> threads;
    threads.emplace_back([&f] { f.io.run(); });
    threads.emplace_back([&f] { f.io2.run(); });
    for (auto& t : threads)
        t.join();
    for (auto& p : f.pools)
        p->close();
}

}  // namespace

TEST_CASE("200 sessions that each need the same 2 of 3 pools (pool_size 2) are all served") {
    pools_fixture f;
    outcome o;
    run_sessions(f, o, {{0, 1}});
    CHECK(o.done == sessions);
    CHECK(o.served == sessions);
    CHECK(o.failed == 0);
    for (const auto& e : o.errors)
        MESSAGE(e);
    CHECK(o.longest_wait_ms.load() < std::chrono::milliseconds(checkout_timeout).count());
    CHECK(f.peak[0] <= 2);
    CHECK(f.peak[1] <= 2);
    CHECK(f.peak[2] == 0);
    CHECK(f.pools[0]->stats().opened <= 2);
}

TEST_CASE("200 sessions that each need 2 of 3 pools, every pair, are all served") {
    pools_fixture f;
    outcome o;
    run_sessions(f, o, {{0, 1}, {1, 2}, {2, 0}});
    CHECK(o.done == sessions);
    CHECK(o.served == sessions);
    for (const auto& e : o.errors)
        MESSAGE(e);
    CHECK(o.longest_wait_ms.load() < std::chrono::milliseconds(checkout_timeout).count());
    for (std::size_t i = 0; i < 3; ++i)
        CHECK(f.peak[i] <= 2);
}

TEST_CASE(
    "a pool that cannot connect fails the checkout and the others get their connection back") {
    // Port 1 on loopback: nothing listens there (connection refused at once).
    pools_fixture f(1);
    auto ex = f.io.get_executor();
    sp::multi_checkout_result r;
    asio::co_spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
            std::vector<std::shared_ptr<sp::server_pool>> want{f.pools[2], f.pools[0], f.pools[1]};
            r = co_await sp::checkout_all(ex, want);
        },
        asio::detached);
    f.io.run();
    REQUIRE_FALSE(r.ok());
    CHECK(r.failed_index == 0);
    CHECK(r.failure.error_code == "08001");
    MESSAGE(r.failure.error_message);
    // Pools 0 and 1 come before pool 2 in the order: their connections went back idle.
    CHECK(f.pools[0]->stats().active == 0);
    CHECK(f.pools[0]->stats().idle == 1);
    CHECK(f.pools[1]->stats().idle == 1);
    for (auto& p : f.pools)
        p->close();
}

TEST_CASE("asking one pool twice in one checkout is refused") {
    pools_fixture f;
    auto ex = f.io.get_executor();
    sp::multi_checkout_result r;
    asio::co_spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
            std::vector<std::shared_ptr<sp::server_pool>> want{f.pools[0], f.pools[1], f.pools[0]};
            r = co_await sp::checkout_all(ex, want);
        },
        asio::detached);
    f.io.run();
    REQUIRE_FALSE(r.ok());
    CHECK(r.failure.error_code == "XX000");
    CHECK(f.pools[0]->stats().active == 0);
    CHECK(f.pools[1]->stats().active == 0);
}
