// A session holding three server connections at once (checkout_all over three pools of one
// real Postgres) and the fan-out core running one Query on all three: the client sees one
// result; when one of them fails (an error, or its backend terminated mid-statement) the
// others are cancelled, the statement ends with that error, and each connection goes back to
// its pool with the disposition its stream earned. The driver here is test-only: the proxy's
// sessions get theirs with sharding.
#include <doctest/doctest.h>

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/fanout.hpp"
#include "shardgate/pool/server_pool.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/testsupport/testsupport.hpp"

namespace asio = boost::asio;
namespace sp = shardgate::pool;
namespace pr = shardgate::protocol;
using namespace shardgate::testsupport;
using namespace std::chrono_literals;
using shardgate::proxy::backend_disposition;
using shardgate::proxy::fanout;
using shardgate::proxy::fanout_action;

namespace {

struct fixture {
    pg_server server;
    asio::io_context io{1};
    std::vector<std::shared_ptr<sp::server_pool>> pools;

    fixture() {
        sp::pool_settings s;
        s.pool_size = 1;
        s.checkout_timeout = 10s;
        s.server_check_delay = 60s;
        for (int i = 0; i < 3; ++i) {
            pools.push_back(std::make_shared<sp::server_pool>(
                "fanout" + std::to_string(i), s, io.get_executor(), [this] {
                    sp::server_login_request r;
                    r.backend = {"app", server.host(), static_cast<std::uint16_t>(server.port()),
                                 "postgres", sp::server_tls_mode::disable};
                    r.user = pg_server::superuser;
                    r.password = pg_server::superuser_password;
                    r.timeout = 5000ms;
                    return std::optional<sp::server_login_request>(r);
                }));
        }
    }
};

struct result {
    bool ran = false;
    std::vector<char> types;
    std::vector<std::string> codes;
    std::string tag;
    std::size_t rows = 0;
    std::vector<backend_disposition> dispositions;
    std::vector<std::int32_t> pids;
    std::chrono::milliseconds took{};
};

void read_client(const pr::write_buffer& out, result& r) {
    const pr::frame_decoder dec(pr::postgres_max_message_length);
    auto in = out.view();
    for (auto f = dec.feed(in); f.status == pr::frame_status::ok; f = dec.feed(in)) {
        r.types.push_back(f.msg.type);
        if (f.msg.type == 'D') ++r.rows;
        if (f.msg.type == 'C') r.tag = pr::be::decode_command_complete(f.msg.body)->tag;
        if (f.msg.type == 'E')
            r.codes.emplace_back(pr::be::decode_error_response(f.msg.body)->code());
        in = in.subspan(f.consumed);
    }
}

// One backend's reads, fed to the fan-out until it is done (one thread: no locking).
asio::awaitable<void> pump(fanout& f, sp::server_conn& c, std::size_t k, fixture& fx,
                           std::vector<std::unique_ptr<sp::server_conn>>& conns) {
    auto ex = co_await asio::this_coro::executor;
    sp::error_code ec;
    co_await c.stream.async_write_all(f.to_backend(k).view(), ec);
    f.to_backend(k).clear();
    fanout_action a = ec ? f.on_closed(k) : fanout_action{};
    while (!f.finished(k) && !ec) {
        const auto chunk = co_await c.stream.async_read_chunk(ec);
        a = ec ? f.on_closed(k) : f.on_bytes(k, chunk);
        if (!f.to_backend(k).empty()) {  // a CopyFail, say
            sp::error_code wec;
            co_await c.stream.async_write_all(f.to_backend(k).view(), wec);
            f.to_backend(k).clear();
        }
        // One action names one backend; the others due come from next_cancel().
        std::optional<std::size_t> cancel;
        if (a.what == fanout_action::kind::cancel) cancel = a.backend;
        for (; cancel; cancel = f.next_cancel()) {
            auto target =
                sp::cancel_target{fx.server.host(), static_cast<std::uint16_t>(fx.server.port()),
                                  conns[*cancel]->key};
            co_await sp::async_send_cancel(ex, target);
        }
    }
}

// Checks out one connection of each pool, runs `sql` (which may use {pid1}: backend 1's
// process id) on all three, gives each back as the fan-out says.
result run(fixture& fx, const std::string& sql_template, bool kill_second = false) {
    result r;
    auto ex = fx.io.get_executor();
    asio::co_spawn(
        fx.io,
        [&]() -> asio::awaitable<void> {
            auto got = co_await sp::checkout_all(ex, fx.pools);
            if (!got.ok()) co_return;
            auto conns = std::move(got.conns);
            for (auto& c : conns)
                r.pids.push_back(c->key.pid);
            std::string sql = sql_template;
            for (auto at = sql.find("{pid1}"); at != std::string::npos; at = sql.find("{pid1}"))
                sql.replace(at, 6, std::to_string(r.pids[1]));
            std::vector<std::byte> body;
            for (char ch : sql)
                body.push_back(static_cast<std::byte>(ch));
            body.push_back(std::byte{0});
            fanout f(conns.size());
            f.start(body);
            const auto start = std::chrono::steady_clock::now();
            if (kill_second) {
                // Backend 1 is terminated while it sleeps (from another connection).
                asio::co_spawn(
                    ex,
                    [&fx, pid = r.pids[1]]() -> asio::awaitable<void> {
                        auto here = co_await asio::this_coro::executor;
                        asio::steady_timer t(here, 300ms);
                        co_await t.async_wait(asio::use_awaitable);
                        fx.server.exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
                    },
                    asio::detached);
            }
            int running = static_cast<int>(conns.size());
            asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
            for (std::size_t k = 0; k < conns.size(); ++k) {
                asio::co_spawn(ex, pump(f, *conns[k], k, fx, conns),
                               [&running, &all_done](const std::exception_ptr&) {
                                   if (--running == 0) all_done.cancel();
                               });
            }
            sp::error_code ec;
            co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            r.took = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start);
            read_client(f.client_out(), r);
            for (std::size_t k = 0; k < conns.size(); ++k) {
                const auto d = f.disposition(k);
                r.dispositions.push_back(d);
                sp::give_back(std::move(conns[k]),
                              d == backend_disposition::clean   ? sp::conn_state::clean
                              : d == backend_disposition::dirty ? sp::conn_state::dirty
                                                                : sp::conn_state::poisoned);
            }
            r.ran = true;
        },
        asio::detached);
    fx.io.run();
    fx.io.restart();
    return r;
}

}  // namespace

TEST_CASE("fan-out: SELECT 1 on three pools at once is one result of three rows") {
    fixture fx;
    const auto r = run(fx, "SELECT 1 AS x");
    REQUIRE(r.ran);
    CHECK(r.types == std::vector<char>{'T', 'D', 'D', 'D', 'C', 'Z'});
    CHECK(r.tag == "SELECT 3");
    CHECK(r.dispositions == std::vector<backend_disposition>(3, backend_disposition::clean));
    for (auto& p : fx.pools) {
        CHECK(p->stats().idle == 1);
        CHECK(p->stats().active == 0);
    }
    // Three distinct backends served it.
    REQUIRE(r.pids.size() == 3);
    CHECK(r.pids[0] != r.pids[1]);
    CHECK(r.pids[1] != r.pids[2]);
    for (auto& p : fx.pools)
        p->close();
}

TEST_CASE("fan-out: an error on one backend cancels the others; all three go back clean") {
    fixture fx;
    // Backend 1 divides by zero after half a second (the others are asleep by then); they
    // would sleep 30 s unless cancelled.
    const auto r = run(fx,
                       "SELECT CASE WHEN pg_backend_pid() = {pid1} "
                       "THEN pg_sleep(0.5)::text || (1 / (pg_backend_pid() - {pid1}))::text "
                       "ELSE pg_sleep(30)::text END AS x");
    REQUIRE(r.ran);
    REQUIRE(r.codes.size() == 1);
    CHECK(r.codes[0] == "22012");
    CHECK(r.took < 10s);
    CHECK(r.dispositions == std::vector<backend_disposition>(3, backend_disposition::clean));
    for (auto& p : fx.pools) {
        CHECK(p->stats().idle == 1);
        CHECK(p->stats().closed == 0);
    }
    for (auto& p : fx.pools)
        p->close();
}

TEST_CASE("fan-out: a backend terminated mid-statement is closed, the others go back clean") {
    fixture fx;
    const auto r = run(fx,
                       "SELECT CASE WHEN pg_backend_pid() = {pid1} "
                       "THEN pg_sleep(30)::text ELSE '1' END AS x",
                       true);
    REQUIRE(r.ran);
    REQUIRE(r.codes.size() == 1);
    CHECK(r.codes[0] == "57P01");  // its FATAL, as the client's ERROR
    CHECK(r.took < 10s);
    REQUIRE(r.dispositions.size() == 3);
    CHECK(r.dispositions[0] == backend_disposition::clean);
    CHECK(r.dispositions[1] == backend_disposition::poisoned);
    CHECK(r.dispositions[2] == backend_disposition::clean);
    CHECK(fx.pools[0]->stats().idle == 1);
    CHECK(fx.pools[1]->stats().idle == 0);
    CHECK(fx.pools[2]->stats().idle == 1);
    for (auto& p : fx.pools)
        p->close();
}
