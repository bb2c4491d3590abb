// Server connection pools through shardgate with a real Postgres: reuse with a clean reset,
// client parameters applied per checkout, checkout timeout and recovery, reserve pool,
// lifetime recycling, idle timeout, min_pool_size warm-up, liveness checks, and a backend
// restarted under load (backoff, then recovery without restarting shardgate).
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

using conn_ptr = std::unique_ptr<PGconn, void (*)(PGconn*)>;

struct fixture {
    pg_topology topo;
    std::unique_ptr<shardgate_process> sg;

    // `pool` is TOML for [shardgate] (pool keys).
    explicit fixture(const std::string& pool) : topo(pg_topology::builder().build()) {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        // Session pooling (txn_pool_test covers transaction pooling, the default).
        std::string toml =
            "[shardgate]\nlisten_port = @PORT@\nworkers = 2\npool_mode = \"session\"\n" + pool;
        toml += "[databases.app]\nport = " + std::to_string(pg().port()) +
                "\nserver_tls = \"disable\"\n[users.alice]\npassword = \"secret\"\n";
        sg = std::make_unique<shardgate_process>(shardgate_options{.config_toml = toml});
    }
    pg_server& pg() { return topo.shard(0).primary(); }
    std::string info(const std::string& extra = "") const {
        return "host=127.0.0.1 port=" + std::to_string(sg->port()) +
               " user=alice password=secret dbname=app sslmode=disable connect_timeout=10 " + extra;
    }
    conn_ptr connect(const std::string& extra = "") const {
        return {PQconnectdb(info(extra).c_str()), PQfinish};
    }
    // Server connections shardgate holds for alice in app (its own, not the test's probes).
    int server_conns() {
        return std::stoi(
            pg().query_value("SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice' AND "
                             "datname = 'app' AND pid <> pg_backend_pid()"));
    }
    // Waits until `want` of shardgate's server connections are idle after their reset (a
    // client's release runs ROLLBACK/DISCARD ALL after it disconnected).
    bool wait_reset(int want, std::chrono::milliseconds timeout = 5s) {
        const auto until = clock_type::now() + timeout;
        auto count = [this] {
            return std::stoi(pg().query_value(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice' AND datname = "
                "'app' AND state = 'idle' AND query = 'DISCARD ALL'"));
        };
        while (clock_type::now() < until && count() < want)
            std::this_thread::sleep_for(20ms);
        return count() >= want;
    }
    bool wait_server_conns(int want, std::chrono::milliseconds timeout) {
        const auto until = clock_type::now() + timeout;
        while (clock_type::now() < until) {
            if (server_conns() == want) return true;
            std::this_thread::sleep_for(50ms);
        }
        return server_conns() == want;
    }
};

std::string value(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                          ? std::string(PQgetvalue(r, 0, 0))
                          : std::string("ERROR: ") + PQresultErrorMessage(r);
    PQclear(r);
    return out;
}

bool ok(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const auto st = PQresultStatus(r);
    PQclear(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

}  // namespace

TEST_CASE("a session-mode server connection is reused, reset between clients") {
    fixture f("pool_size = 2\n");
    std::string pid;
    {
        auto a = f.connect();
        REQUIRE(PQstatus(a.get()) == CONNECTION_OK);
        pid = value(a.get(), "SELECT pg_backend_pid()");
        CHECK(ok(a.get(), "SET statement_timeout = '7s'"));
        CHECK(ok(a.get(), "PREPARE p AS SELECT 1"));
        CHECK(ok(a.get(), "LISTEN somewhere"));
    }
    REQUIRE(f.wait_reset(1));
    auto b = f.connect();
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    CHECK(value(b.get(), "SELECT pg_backend_pid()") == pid);  // the same server connection
    CHECK(value(b.get(), "SHOW statement_timeout") == "0");   // DISCARD ALL ran
    CHECK(value(b.get(), "SELECT count(*) FROM pg_prepared_statements") == "0");
    CHECK(value(b.get(), "SELECT count(*) FROM pg_listening_channels()") == "0");
    CHECK(f.server_conns() == 1);
}

TEST_CASE("a client that leaves inside a transaction: rolled back, the connection reused") {
    fixture f("pool_size = 1\n");
    std::string pid;
    {
        auto a = f.connect();
        pid = value(a.get(), "SELECT pg_backend_pid()");
        CHECK(ok(a.get(), "CREATE TABLE kept(x int)"));
        CHECK(ok(a.get(), "BEGIN"));
        CHECK(ok(a.get(), "INSERT INTO kept VALUES (1)"));
    }
    REQUIRE(f.wait_reset(1));
    auto b = f.connect();
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    CHECK(value(b.get(), "SELECT pg_backend_pid()") == pid);
    CHECK(value(b.get(), "SELECT count(*) FROM kept") == "0");
    CHECK(PQtransactionStatus(b.get()) == PQTRANS_IDLE);
}

TEST_CASE("startup parameters and -c options are applied per client on a shared connection") {
    fixture f("pool_size = 1\n");
    {
        auto a = f.connect(
            "application_name=first options='-c search_path=s1,public "
            "-c statement_timeout=5s'");
        REQUIRE(PQstatus(a.get()) == CONNECTION_OK);
        CHECK(std::string(PQparameterStatus(a.get(), "application_name")) == "first");
        CHECK(value(a.get(), "SHOW search_path") == "s1,public");  // as given, like Postgres
        CHECK(value(a.get(), "SHOW statement_timeout") == "5s");
        CHECK(value(a.get(), "SHOW application_name") == "first");
    }
    {
        auto b = f.connect("application_name=second");
        REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
        CHECK(std::string(PQparameterStatus(b.get(), "application_name")) == "second");
        CHECK(value(b.get(), "SHOW search_path") == "\"$user\", public");
        CHECK(value(b.get(), "SHOW statement_timeout") == "0");
    }
    {
        auto c = f.connect("options='-c DateStyle=German'");
        REQUIRE(PQstatus(c.get()) == CONNECTION_OK);
        CHECK(std::string(PQparameterStatus(c.get(), "DateStyle")) == "German, DMY");
        CHECK(value(c.get(), "SELECT '2024-03-01'::date") == "01.03.2024");
    }
    // A bad value fails the login as Postgres does, and the pool stays usable.
    auto bad = f.connect("options='-c DateStyle=nonsense'");
    CHECK(PQstatus(bad.get()) == CONNECTION_BAD);
    CHECK(std::string(PQerrorMessage(bad.get())).find("DateStyle") != std::string::npos);
    {
        // Other backend options reach a connection opened for this client and Postgres
        // judges them (-d needs a superuser): its refusal reaches the client, no backoff.
        auto e = f.connect("options='-d 5'");
        CHECK(PQstatus(e.get()) == CONNECTION_BAD);
        CHECK(std::string(PQerrorMessage(e.get())).find("permission denied") != std::string::npos);
    }
    auto d = f.connect();
    REQUIRE(PQstatus(d.get()) == CONNECTION_OK);
    CHECK(std::string(PQparameterStatus(d.get(), "DateStyle")) == "ISO, MDY");
    CHECK(f.server_conns() == 1);
}

TEST_CASE("checkout_timeout: a client that waits too long gets 53300; the pool recovers") {
    fixture f("pool_size = 1\ncheckout_timeout_ms = 500\n");
    auto a = f.connect();
    REQUIRE(PQstatus(a.get()) == CONNECTION_OK);
    const auto t0 = clock_type::now();
    auto b = f.connect();
    const auto waited = clock_type::now() - t0;
    CHECK(PQstatus(b.get()) == CONNECTION_BAD);
    const std::string err = PQerrorMessage(b.get());
    CHECK(err.find("checkout_timeout") != std::string::npos);
    CHECK(waited >= 450ms);
    CHECK(waited < 3s);
    MESSAGE("second client refused after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
            << " ms: " << err);
    a.reset();
    auto c = f.connect();
    REQUIRE(PQstatus(c.get()) == CONNECTION_OK);
    CHECK(value(c.get(), "SELECT 1") == "1");
}

TEST_CASE("a waiting client gets the connection another client releases") {
    fixture f("pool_size = 1\ncheckout_timeout_ms = 5000\n");
    auto a = f.connect();
    REQUIRE(PQstatus(a.get()) == CONNECTION_OK);
    const auto pid = value(a.get(), "SELECT pg_backend_pid()");
    std::thread release([&a] {
        std::this_thread::sleep_for(300ms);
        a.reset();
    });
    auto b = f.connect();
    release.join();
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    CHECK(value(b.get(), "SELECT pg_backend_pid()") == pid);
}

TEST_CASE("reserve_pool_size: extra connections only after reserve_pool_timeout") {
    fixture f(
        "pool_size = 1\nreserve_pool_size = 1\nreserve_pool_timeout_ms = 300\n"
        "checkout_timeout_ms = 1500\n");
    auto a = f.connect();
    REQUIRE(PQstatus(a.get()) == CONNECTION_OK);
    const auto t0 = clock_type::now();
    auto b = f.connect();  // waits 300 ms, then takes the reserve connection
    const auto waited = clock_type::now() - t0;
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    CHECK(waited >= 250ms);
    CHECK(f.server_conns() == 2);
    auto c = f.connect();  // pool and reserve in use: times out
    CHECK(PQstatus(c.get()) == CONNECTION_BAD);
}

TEST_CASE(
    "server_lifetime: a connection past its lifetime is replaced at check-in, never "
    "mid-session") {
    fixture f("pool_size = 1\nserver_lifetime_ms = 1000\nserver_lifetime_jitter_ms = 0\n");
    auto a = f.connect();
    REQUIRE(PQstatus(a.get()) == CONNECTION_OK);
    const auto pid1 = value(a.get(), "SELECT pg_backend_pid()");
    const auto start1 = value(a.get(),
                              "SELECT backend_start FROM pg_stat_activity WHERE pid = "
                              "pg_backend_pid()");
    CHECK(ok(a.get(), "BEGIN"));
    std::this_thread::sleep_for(1300ms);  // past its lifetime, in use: kept
    CHECK(value(a.get(), "SELECT pg_backend_pid()") == pid1);
    CHECK(ok(a.get(), "COMMIT"));
    a.reset();  // checked in after its lifetime: closed
    auto b = f.connect();
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    CHECK(value(b.get(), "SELECT pg_backend_pid()") != pid1);
    const auto start2 = value(b.get(),
                              "SELECT backend_start FROM pg_stat_activity WHERE pid = "
                              "pg_backend_pid()");
    CHECK(start2 > start1);
    MESSAGE("backend_start " << start1 << " -> " << start2);
}

TEST_CASE("server_idle_timeout closes idle connections; min_pool_size keeps warm ones") {
    SUBCASE("idle timeout") {
        fixture f("pool_size = 3\nserver_idle_timeout_ms = 500\n");
        {
            auto a = f.connect();
            auto b = f.connect();
            REQUIRE(PQstatus(a.get()) == CONNECTION_OK);
            REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
            CHECK(f.server_conns() == 2);
        }
        CHECK(f.server_conns() == 2);  // idle in the pool
        CHECK(f.wait_server_conns(0, 3s));
    }
    SUBCASE("min_pool_size warm-up, and idle timeout down to it") {
        fixture f("pool_size = 4\nmin_pool_size = 2\nserver_idle_timeout_ms = 500\n");
        // Warm connections open without any client.
        CHECK(f.wait_server_conns(2, 3s));
        {
            auto a = f.connect();
            auto b = f.connect();
            auto c = f.connect();
            REQUIRE(PQstatus(c.get()) == CONNECTION_OK);
            CHECK(f.server_conns() == 3);
        }
        std::this_thread::sleep_for(1500ms);
        CHECK(f.server_conns() == 2);  // back down to min_pool_size, not below
    }
}

TEST_CASE("server_check_delay: a dead idle connection is noticed before it is handed out") {
    fixture f("pool_size = 2\nserver_check_delay_ms = 0\nserver_idle_timeout_ms = 0\n");
    {
        auto a = f.connect();
        REQUIRE(PQstatus(a.get()) == CONNECTION_OK);
    }
    // Kill the idle server connection behind shardgate's back.
    f.pg().exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'alice' "
        "AND pid <> pg_backend_pid()");
    auto b = f.connect();
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    CHECK(value(b.get(), "SELECT 1") == "1");
}

TEST_CASE("a backend restarted under load: clear errors, backoff, recovery without restart") {
    fixture f(
        "pool_size = 4\nserver_backoff_initial_ms = 200\nserver_backoff_max_ms = 800\n"
        "server_check_delay_ms = 0\nserver_connect_timeout_ms = 1000\n");
    std::atomic<bool> stop{false};
    std::atomic<int> ok_count{0};
    std::atomic<int> err_count{0};
    std::atomic<int> unclear{0};
    std::vector<std::thread> load;
    for (int i = 0; i < 4; ++i) {
        load.emplace_back([&] {
            while (!stop) {
                auto c = f.connect("connect_timeout=5");
                if (PQstatus(c.get()) == CONNECTION_OK && ok(c.get(), "SELECT 1")) {
                    ++ok_count;
                } else {
                    ++err_count;
                    const std::string e = PQerrorMessage(c.get());
                    // Every failure says what happened (no hang, no empty message).
                    if (e.find("server") == std::string::npos &&
                        e.find("shutting down") == std::string::npos &&
                        e.find("terminat") == std::string::npos)
                        ++unclear;
                    std::this_thread::sleep_for(20ms);
                }
            }
        });
    }
    std::this_thread::sleep_for(500ms);
    const int before = ok_count;
    CHECK(before > 0);
    f.pg().stop();
    std::this_thread::sleep_for(1500ms);
    const int errors_while_down = err_count;
    f.pg().start();
    const auto up = clock_type::now();
    // Recovery: successes again within the backoff cap plus a little.
    const int at_restart = ok_count;
    while (ok_count == at_restart && clock_type::now() - up < 5s)
        std::this_thread::sleep_for(20ms);
    const auto recovered_after = clock_type::now() - up;
    std::this_thread::sleep_for(500ms);
    stop = true;
    for (auto& t : load)
        t.join();
    CHECK(errors_while_down > 0);
    CHECK(ok_count > at_restart);
    CHECK(recovered_after < 2s);
    CHECK(unclear == 0);
    CHECK(f.sg->running());
    const auto log = f.sg->log_tail(400);
    CHECK(log.find("next attempt in") != std::string::npos);
    MESSAGE("ok " << ok_count.load() << ", errors " << err_count.load() << ", recovered after "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(recovered_after).count()
                  << " ms");
}
