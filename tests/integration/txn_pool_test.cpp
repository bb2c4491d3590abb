// Transaction pooling (pool_mode = "transaction") with a real Postgres (one file, over 500
// lines: every case shares its fixture and helpers, each is one promise of the README): many
// clients over a few server connections, a connection held for a whole transaction, clients pinned
// by session state, checkout_timeout as a plain ERROR that leaves the client usable, per-client
// startup parameters on shared connections, clients vanishing mid-transaction, and pgbench.
// One file over 500 lines: every case shares the fixture and helpers above them.
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "client_program.hpp"
#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

using conn_ptr = std::unique_ptr<PGconn, void (*)(PGconn*)>;

struct fixture {
    pg_topology topo;
    std::unique_ptr<shardgate_process> sg;

    explicit fixture(const std::string& pool) : topo(pg_topology::builder().build()) {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        pg().exec(
            "CREATE TABLE counter(id int PRIMARY KEY, n bigint NOT NULL); "
            "INSERT INTO counter VALUES (1, 0); GRANT ALL ON counter TO alice",
            "app");
        std::string toml =
            "[shardgate]\nlisten_port = @PORT@\nworkers = 2\n"
            "pool_mode = \"transaction\"\n" +
            pool;
        // ctest runs this file on both engines: the data plane (default) and Asio.
        toml += "[databases.app]\nport = " + std::to_string(pg().port()) +
                "\nserver_tls = \"disable\"\n[users.alice]\npassword = \"secret\"\n";
        sg = std::make_unique<shardgate_process>(shardgate_options{.config_toml = toml});
    }
    pg_server& pg() { return topo.shard(0).primary(); }
    conn_ptr connect(const std::string& extra = "") const {
        const std::string info = "host=127.0.0.1 port=" + std::to_string(sg->port()) +
                                 " user=alice password=secret dbname=app sslmode=disable "
                                 "connect_timeout=10 " +
                                 extra;
        return {PQconnectdb(info.c_str()), PQfinish};
    }
    // pgbench against app through shardgate, as alice, with a clean environment, in `dir`.
    command_result pgbench(const work_dir& dir, std::vector<std::string> args) const {
        return client_program::pgbench(dir.path(), sg->port(), "alice", "secret", "app",
                                       std::move(args));
    }
    int server_conns() {
        return std::stoi(
            pg().query_value("SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice' AND "
                             "datname = 'app' AND pid <> pg_backend_pid()"));
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

// Checks one pgbench run (exit 0, no failed transaction, some work done); its transactions.
long long check_pgbench_run(const command_result& r) {
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("number of failed transactions: 0 (0.000%)") != std::string::npos);
    std::smatch m;
    REQUIRE(std::regex_search(r.output, m,
                              std::regex("number of transactions actually processed: ([0-9]+)")));
    const long long n = std::stoll(m[1].str());
    CHECK(n > 100);
    return n;
}

std::string status_of(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    std::string out = PQresStatus(PQresultStatus(r));
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) out += std::string(":") + s;
    PQclear(r);
    return out;
}

// Two clients of `f`: the first holds the pool's only connection in an open transaction.
std::pair<conn_ptr, conn_ptr> holder_and_waiter(const fixture& f) {
    auto a = f.connect();
    auto b = f.connect();
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    CHECK(status_of(a.get(), "BEGIN") == "PGRES_COMMAND_OK");
    CHECK(status_of(a.get(), "SELECT 1") == "PGRES_TUPLES_OK");
    return {std::move(a), std::move(b)};
}

}  // namespace

TEST_CASE("20 clients share 2 server connections transaction by transaction") {
    fixture f("pool_size = 2\ncheckout_timeout_ms = 20000\n");
    std::vector<conn_ptr> clients;
    for (int i = 0; i < 20; ++i) {
        clients.push_back(f.connect());
        REQUIRE(PQstatus(clients.back().get()) == CONNECTION_OK);
    }
    CHECK(f.server_conns() <= 2);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    std::set<std::string> pids_seen;
    std::mutex mu;
    for (auto& c : clients) {
        threads.emplace_back([&, conn = c.get()] {
            for (int t = 0; t < 50; ++t) {
                bool ok = status_of(conn, "BEGIN") == "PGRES_COMMAND_OK" &&
                          status_of(conn, "UPDATE counter SET n = n + 1 WHERE id = 1") ==
                              "PGRES_COMMAND_OK";
                const auto pid = value(conn, "SELECT pg_backend_pid()");
                ok = ok && status_of(conn, "COMMIT") == "PGRES_COMMAND_OK";
                ok = ok && value(conn, "SELECT 1") == "1";  // a single-statement transaction
                if (!ok) ++failures;
                std::lock_guard lock(mu);
                pids_seen.insert(pid);
            }
        });
    }
    for (auto& t : threads)
        t.join();
    CHECK(failures == 0);
    CHECK(value(clients[0].get(), "SELECT n FROM counter WHERE id = 1") == "1000");
    CHECK(pids_seen.size() <= 2);
    CHECK(f.server_conns() <= 2);
}

TEST_CASE("a transaction keeps its server connection until it ends") {
    fixture f("pool_size = 1\ncheckout_timeout_ms = 10000\n");
    auto a = f.connect();
    auto b = f.connect();
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    CHECK(status_of(a.get(), "BEGIN") == "PGRES_COMMAND_OK");
    const auto pid_a = value(a.get(), "SELECT pg_backend_pid()");
    std::atomic<bool> b_done{false};
    std::string pid_b;
    std::thread tb([&] {
        pid_b = value(b.get(), "SELECT pg_backend_pid()");
        b_done = true;
    });
    std::this_thread::sleep_for(300ms);
    CHECK_FALSE(b_done.load());  // waits for A's transaction
    CHECK(value(a.get(), "SELECT pg_backend_pid()") == pid_a);
    CHECK(status_of(a.get(), "COMMIT") == "PGRES_COMMAND_OK");
    tb.join();
    CHECK(pid_b == pid_a);  // the same, single server connection
}

TEST_CASE("checkout_timeout in transaction mode: an ERROR, and the client stays usable") {
    fixture f("pool_size = 1\ncheckout_timeout_ms = 400\n");
    auto [a, b] = holder_and_waiter(f);
    const auto t0 = clock_type::now();
    PGresult* r = PQexec(b.get(), "SELECT 2");
    const auto waited = clock_type::now() - t0;
    CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR);  // libpq's name for ERROR
    CHECK(std::string(PQresultErrorField(r, PG_DIAG_SEVERITY)) == "ERROR");
    CHECK(std::string(PQresultErrorField(r, PG_DIAG_SQLSTATE)) == "53300");
    CHECK(std::string(PQresultErrorMessage(r)).find("checkout_timeout") != std::string::npos);
    PQclear(r);
    CHECK(waited >= 350ms);
    CHECK(PQstatus(b.get()) == CONNECTION_OK);
    CHECK(status_of(a.get(), "COMMIT") == "PGRES_COMMAND_OK");
    CHECK(value(b.get(), "SELECT 3") == "3");  // the same client connection, now served
}

TEST_CASE("reserve_pool_size in transaction mode: the reserve only after reserve_pool_timeout") {
    fixture f(
        "pool_size = 1\nreserve_pool_size = 1\nreserve_pool_timeout_ms = 300\n"
        "checkout_timeout_ms = 3000\n");
    auto [a, b] = holder_and_waiter(f);
    const auto t0 = clock_type::now();
    CHECK(value(b.get(), "SELECT 2") == "2");  // waits, then gets the reserve connection
    const auto waited = clock_type::now() - t0;
    CHECK(waited >= 250ms);
    CHECK(waited < 2500ms);
    CHECK(f.server_conns() == 2);
    CHECK(status_of(a.get(), "COMMIT") == "PGRES_COMMAND_OK");
}

TEST_CASE("clients waiting for a connection are served in arrival order; one may leave") {
    fixture f("pool_size = 1\ncheckout_timeout_ms = 5000\n");
    auto a = f.connect();
    std::vector<conn_ptr> waiting;
    for (int i = 0; i < 4; ++i) {
        waiting.push_back(f.connect());
        REQUIRE(PQstatus(waiting.back().get()) == CONNECTION_OK);
    }
    CHECK(status_of(a.get(), "BEGIN") == "PGRES_COMMAND_OK");
    CHECK(status_of(a.get(), "SELECT 1") == "PGRES_TUPLES_OK");
    // Each asks in turn while a holds the only connection; the second leaves while queued.
    for (auto& w : waiting) {
        REQUIRE(PQsendQuery(w.get(), "SELECT clock_timestamp()::text") == 1);
        std::this_thread::sleep_for(30ms);
    }
    waiting[1].reset();
    std::this_thread::sleep_for(30ms);
    CHECK(status_of(a.get(), "COMMIT") == "PGRES_COMMAND_OK");
    std::vector<std::string> served;
    for (auto& w : waiting) {
        if (!w) continue;
        PGresult* r = PQgetResult(w.get());
        REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
        served.emplace_back(PQgetvalue(r, 0, 0));
        PQclear(r);
        while ((r = PQgetResult(w.get())) != nullptr)
            PQclear(r);
    }
    REQUIRE(served.size() == 3);
    INFO(served[0] << " " << served[1] << " " << served[2]);
    CHECK(served[0] < served[1]);  // the same format: text order is time order
    CHECK(served[1] < served[2]);
    CHECK(f.server_conns() == 1);
    CHECK(value(a.get(), "SELECT 5") == "5");
}

TEST_CASE("session state pins a client to its server connection until it leaves") {
    fixture f("pool_size = 2\ncheckout_timeout_ms = 5000\n");
    auto a = f.connect();
    auto b = f.connect();
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    // A temporary table lives in the server session: A keeps its connection.
    CHECK(status_of(a.get(), "CREATE TEMP TABLE mine(x int)") == "PGRES_COMMAND_OK");
    const auto pid_a = value(a.get(), "SELECT pg_backend_pid()");
    // B's transactions never land on A's connection, however many run.
    for (int i = 0; i < 20; ++i) {
        CHECK(value(b.get(), "SELECT to_regclass('pg_temp.mine') IS NULL") == "t");
        CHECK(value(b.get(), "SELECT pg_backend_pid()") != pid_a);
    }
    CHECK(value(a.get(), "SELECT count(*) FROM mine") == "0");
    CHECK(value(a.get(), "SELECT pg_backend_pid()") == pid_a);
    a.reset();  // its connection is reset (DISCARD ALL) and shared again
    for (int i = 0; i < 10; ++i) {
        auto c = f.connect();
        CHECK(status_of(c.get(), "SELECT * FROM mine") == "PGRES_FATAL_ERROR:42P01");
    }
    CHECK(f.server_conns() <= 2);
}

TEST_CASE("startup parameters follow each client onto shared connections") {
    fixture f("pool_size = 1\n");
    auto a = f.connect("application_name=alpha options='-c statement_timeout=4s'");
    auto b = f.connect("application_name=beta");
    REQUIRE(PQstatus(a.get()) == CONNECTION_OK);
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    for (int i = 0; i < 5; ++i) {
        CHECK(value(a.get(), "SHOW application_name") == "alpha");
        CHECK(value(a.get(), "SHOW statement_timeout") == "4s");
        CHECK(value(b.get(), "SHOW application_name") == "beta");
        CHECK(value(b.get(), "SHOW statement_timeout") == "0");
    }
    CHECK(std::string(PQparameterStatus(a.get(), "application_name")) == "alpha");
    CHECK(f.server_conns() == 1);
}

TEST_CASE("a burst of logins opens no server connection per login") {
    // PgBouncer greets transaction-mode clients without a server connection; so does
    // shardgate after the first login with the same startup parameters.
    fixture f("pool_size = 50\ncheckout_timeout_ms = 20000\n");
    auto first = f.connect("application_name=burst");
    REQUIRE(PQstatus(first.get()) == CONNECTION_OK);
    CHECK(f.server_conns() == 1);
    std::vector<conn_ptr> clients;
    for (int i = 0; i < 200; ++i)
        clients.emplace_back(nullptr, PQfinish);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (std::size_t i = t; i < clients.size(); i += 8)
                clients[i] = f.connect("application_name=burst");
        });
    }
    for (auto& t : threads)
        t.join();
    for (auto& c : clients) {
        REQUIRE(PQstatus(c.get()) == CONNECTION_OK);
        CHECK(std::string(PQparameterStatus(c.get(), "application_name")) == "burst");
        CHECK(PQparameterStatus(c.get(), "server_version") != nullptr);
    }
    CHECK(f.server_conns() == 1);
    // They all work, on the connections the pool opens as transactions need them.
    for (auto& c : clients)
        CHECK(value(c.get(), "SHOW application_name") == "burst");
    // Other parameters: one more greeting from a server connection, which the pool may reuse.
    auto other = f.connect("application_name=other");
    REQUIRE(PQstatus(other.get()) == CONNECTION_OK);
    CHECK(std::string(PQparameterStatus(other.get(), "application_name")) == "other");
    CHECK(value(other.get(), "SHOW application_name") == "other");
}

TEST_CASE("a client that vanishes mid-transaction leaves nothing behind") {
    fixture f("pool_size = 1\n");
    {
        auto a = f.connect();
        CHECK(status_of(a.get(), "BEGIN") == "PGRES_COMMAND_OK");
        CHECK(status_of(a.get(), "UPDATE counter SET n = 42 WHERE id = 1") == "PGRES_COMMAND_OK");
    }
    auto b = f.connect();
    CHECK(value(b.get(), "SELECT n FROM counter WHERE id = 1") == "0");  // rolled back
    CHECK(PQtransactionStatus(b.get()) == PQTRANS_IDLE);
    CHECK(status_of(b.get(), "SELECT 1") == "PGRES_TUPLES_OK");
}

TEST_CASE("cancel reaches the client's running query, never another client's") {
    fixture f("pool_size = 1\n");
    // `a` and `b` are greeted from the pool's cache (same parameters as `first`): their
    // cancel keys work all the same.
    auto first = f.connect();
    auto a = f.connect();
    auto b = f.connect();
    REQUIRE(PQstatus(first.get()) == CONNECTION_OK);
    REQUIRE(PQstatus(a.get()) == CONNECTION_OK);
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    auto cancel = [](PGconn* c) {
        PGcancel* k = PQgetCancel(c);
        char err[256] = {};
        const bool sent = PQcancel(k, err, sizeof err) == 1;
        PQfreeCancel(k);
        return sent;
    };
    {
        // A's own query is cancelled (57014) and A stays usable.
        const auto t0 = std::chrono::steady_clock::now();
        std::thread canceller([&] {
            std::this_thread::sleep_for(300ms);
            CHECK(cancel(a.get()));
        });
        CHECK(status_of(a.get(), "SELECT pg_sleep(10)") == "PGRES_FATAL_ERROR:57014");
        canceller.join();
        CHECK(std::chrono::steady_clock::now() - t0 < 3s);
        CHECK(value(a.get(), "SELECT 1") == "1");
    }
    {
        // A is idle, between transactions: its server connection is B's now. Cancelling A
        // must not touch B's query.
        std::thread canceller([&] {
            std::this_thread::sleep_for(300ms);
            cancel(a.get());
        });
        CHECK(status_of(b.get(), "SELECT pg_sleep(1)") == "PGRES_TUPLES_OK");
        canceller.join();
    }
}

TEST_CASE("pgbench -M simple and -M extended, 16 clients over pool_size = 4: 0 failures") {
    fixture f("pool_size = 4\ncheckout_timeout_ms = 30000\n");
    work_dir dir{"shardgate-txn-pgbench"};
    auto pgbench = [&](std::vector<std::string> a) { return f.pgbench(dir, std::move(a)); };
    const auto init = pgbench({"-i", "-s", "1", "-q"});
    INFO(init.output);
    REQUIRE(init.exit_code == 0);
    for (const char* mode : {"simple", "extended"}) {
        CAPTURE(mode);
        const auto n = check_pgbench_run(pgbench({"-M", mode, "-c", "16", "-j", "2", "-T", "5"}));
        MESSAGE(std::string(mode) << ": " << n << " transactions");
    }
    CHECK(f.server_conns() <= 4);
}

TEST_CASE("prepared statements through transaction pooling: 50 clients over pool_size = 5") {
    // Every client prepares the same three statements under its own names and runs them in
    // and out of transactions; server connections change under it all the time.
    fixture f("pool_size = 5\ncheckout_timeout_ms = 60000\nmax_prepared_statements = 2\n");
    f.pg().exec("CREATE TABLE kv(k int PRIMARY KEY, v bigint NOT NULL); GRANT ALL ON kv TO alice",
                "app");
    constexpr int clients = 50;
    constexpr int rounds = 700;  // 50 x 700 x 3 = 105,000 executions
    std::atomic<long> executions{0};
    std::atomic<int> errors{0};
    std::mutex mu;
    std::string first_error;
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            auto c = f.connect();
            auto fail = [&](PGresult* r, const char* what) {
                ++errors;
                std::lock_guard lock(mu);
                if (first_error.empty())
                    first_error = std::string(what) + ": " + PQresultErrorMessage(r);
            };
            const std::string n = std::to_string(i);
            const std::string s_get = "get" + n, s_put = "put" + n, s_add = "add" + n;
            struct {
                const std::string& name;
                const char* sql;
            } stmts[] = {{s_get, "SELECT v FROM kv WHERE k = $1"},
                         {s_put, "INSERT INTO kv VALUES ($1, 0) ON CONFLICT (k) DO NOTHING"},
                         {s_add, "UPDATE kv SET v = v + 1 WHERE k = $1"}};
            for (const auto& st : stmts) {
                PGresult* r = PQprepare(c.get(), st.name.c_str(), st.sql, 1, nullptr);
                if (PQresultStatus(r) != PGRES_COMMAND_OK) fail(r, "prepare");
                PQclear(r);
            }
            const std::string key = std::to_string(i);
            const char* params[] = {key.c_str()};
            for (int round = 0; round < rounds; ++round) {
                const bool in_txn = round % 5 == 0;
                if (in_txn) PQclear(PQexec(c.get(), "BEGIN"));
                for (const auto& st : stmts) {
                    PGresult* r =
                        PQexecPrepared(c.get(), st.name.c_str(), 1, params, nullptr, nullptr, 0);
                    const auto status = PQresultStatus(r);
                    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
                        fail(r, st.name.c_str());
                    else
                        ++executions;
                    PQclear(r);
                }
                if (in_txn) PQclear(PQexec(c.get(), "COMMIT"));
                if (round == rounds / 2) {
                    // SQL DEALLOCATE of a protocol statement, then preparing it again, work
                    // as in Postgres.
                    PGresult* r = PQexec(c.get(), ("DEALLOCATE " + s_get).c_str());
                    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail(r, "deallocate");
                    PQclear(r);
                    r = PQexecPrepared(c.get(), s_get.c_str(), 1, params, nullptr, nullptr, 0);
                    if (PQresultStatus(r) != PGRES_FATAL_ERROR) fail(r, "deallocated");
                    PQclear(r);
                    r = PQprepare(c.get(), s_get.c_str(), stmts[0].sql, 1, nullptr);
                    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail(r, "prepare again");
                    PQclear(r);
                }
            }
        });
    }
    for (auto& t : threads)
        t.join();
    INFO(first_error);
    CHECK(errors == 0);
    CHECK(executions >= 100000);
    MESSAGE("executions: " << executions.load() << ", errors: " << errors.load());
    CHECK(f.server_conns() <= 5);
    auto c = f.connect();
    CHECK(value(c.get(), "SELECT sum(v) FROM kv") == std::to_string(clients * rounds));
}

TEST_CASE("pgbench -M prepared, 16 clients over pool_size = 4: 0 failures") {
    fixture f("pool_size = 4\ncheckout_timeout_ms = 30000\n");
    work_dir dir{"shardgate-txn-pgbench-prepared"};
    auto pgbench = [&](std::vector<std::string> a) { return f.pgbench(dir, std::move(a)); };
    const auto init = pgbench({"-i", "-s", "1", "-q"});
    INFO(init.output);
    REQUIRE(init.exit_code == 0);
    // -N holds a connection from BEGIN to END. PG15's pgbench prepares a client's statements
    // with blocking PQprepare calls on its thread, so clients sharing a thread with one that is
    // inside a transaction would wait on each other (as through any transaction pooler):
    // one thread per client.
    for (const char* script : {"-S", "-N"}) {
        CAPTURE(script);
        const auto n = check_pgbench_run(
            pgbench({"-M", "prepared", script, "-c", "16", "-j", "16", "-T", "5"}));
        MESSAGE(std::string(script) << ": " << n << " transactions");
    }
    CHECK(f.server_conns() <= 4);
}

TEST_CASE("SET follows each client: 50 clients, own search_path and TimeZone, pool_size = 5") {
    fixture f("pool_size = 5\ncheckout_timeout_ms = 60000\n");
    constexpr int clients = 50;
    constexpr int transactions = 1000;
    for (int i = 0; i < clients; ++i)
        f.pg().exec("CREATE SCHEMA s" + std::to_string(i) + " AUTHORIZATION alice", "app");
    const std::vector<std::string> zones = {"UTC", "Europe/Paris", "Asia/Tokyo", "America/New_York",
                                            "Australia/Sydney"};
    std::atomic<int> wrong{0};
    std::atomic<long> statements{0};
    std::mutex mu;
    std::string first_wrong;
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            auto c = f.connect();
            const std::string schema = "s" + std::to_string(i);
            const std::string zone = zones[static_cast<std::size_t>(i) % zones.size()];
            status_of(c.get(), "SET search_path = " + schema + ", public");
            status_of(c.get(), "SET TimeZone TO '" + zone + "'");
            if (i % 2 == 0)
                status_of(c.get(), "SET statement_timeout = '" + std::to_string(i + 1) + "s'");
            const std::string want = schema + ", public|" + zone + "|" +
                                     (i % 2 == 0 ? std::to_string(i + 1) + "s" : "0");
            const std::string q =
                "SELECT current_setting('search_path') || '|' || "
                "current_setting('TimeZone') || '|' || "
                "current_setting('statement_timeout')";
            for (int t = 0; t < transactions; ++t) {
                std::string got;
                if (t % 10 == 0) {  // some explicit transactions too
                    status_of(c.get(), "BEGIN");
                    got = value(c.get(), q);
                    status_of(c.get(), "COMMIT");
                } else {
                    got = value(c.get(), q);
                }
                ++statements;
                if (got != want) {
                    ++wrong;
                    std::lock_guard lock(mu);
                    if (first_wrong.empty())
                        first_wrong = "client " + std::to_string(i) + ": " + got;
                }
            }
            // The client's own PGparameterStatus agrees.
            if (std::string(PQparameterStatus(c.get(), "TimeZone")) != zone) ++wrong;
        });
    }
    for (auto& t : threads)
        t.join();
    INFO(first_wrong);
    CHECK(wrong == 0);
    CHECK(statements == clients * transactions);
    CHECK(f.server_conns() <= 5);
    MESSAGE(statements.load() << " statements, " << wrong.load()
                              << " saw another client's settings");
}

TEST_CASE("RESET, SET inside a transaction, and a failed SET") {
    fixture f("pool_size = 1\n");
    auto a = f.connect("options='-c statement_timeout=3s'");
    auto b = f.connect();
    CHECK(status_of(a.get(), "SET statement_timeout = '9s'") == "PGRES_COMMAND_OK");
    CHECK(value(b.get(), "SHOW statement_timeout") == "0");
    CHECK(value(a.get(), "SHOW statement_timeout") == "9s");
    CHECK(status_of(a.get(), "RESET statement_timeout") == "PGRES_COMMAND_OK");
    CHECK(value(b.get(), "SHOW statement_timeout") == "0");
    CHECK(value(a.get(), "SHOW statement_timeout") == "3s");  // back to its startup value
    CHECK(status_of(a.get(), "SET no_such_setting = 1") == "PGRES_FATAL_ERROR:42704");
    CHECK(value(b.get(), "SELECT 1") == "1");
    CHECK(value(a.get(), "SHOW statement_timeout") == "3s");
    // SET inside a transaction block: rolled back, nothing remembered.
    CHECK(status_of(a.get(), "BEGIN") == "PGRES_COMMAND_OK");
    CHECK(status_of(a.get(), "SET lock_timeout = '7s'") == "PGRES_COMMAND_OK");
    CHECK(status_of(a.get(), "ROLLBACK") == "PGRES_COMMAND_OK");
    CHECK(value(a.get(), "SHOW lock_timeout") == "0");
}

TEST_CASE("transaction_pinning = refuse: a clear 0A000 instead of pinning") {
    fixture f("pool_size = 1\ntransaction_pinning = \"refuse\"\n");
    auto a = f.connect();
    auto b = f.connect();
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    PGresult* r = PQexec(a.get(), "LISTEN chan");
    CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR);
    CHECK(std::string(PQresultErrorField(r, PG_DIAG_SQLSTATE)) == "0A000");
    CHECK(std::string(PQresultErrorMessage(r)).find("transaction_pinning") != std::string::npos);
    PQclear(r);
    CHECK(value(b.get(), "SELECT 1") == "1");  // a is not pinned: the one connection is shared
    // Inside a transaction block the transaction fails, as it would in Postgres.
    CHECK(status_of(a.get(), "BEGIN") == "PGRES_COMMAND_OK");
    CHECK(status_of(a.get(), "CREATE TEMP TABLE t(x int)") == "PGRES_FATAL_ERROR:0A000");
    CHECK(PQtransactionStatus(a.get()) == PQTRANS_INERROR);
    CHECK(status_of(a.get(), "ROLLBACK") == "PGRES_COMMAND_OK");
    CHECK(value(a.get(), "SELECT 2") == "2");
    CHECK(value(b.get(), "SELECT 3") == "3");
    // Replayable settings are still fine.
    CHECK(status_of(a.get(), "SET search_path = x, public") == "PGRES_COMMAND_OK");
    CHECK(value(a.get(), "SHOW search_path") == "x, public");
    CHECK(value(b.get(), "SHOW search_path") == "\"$user\", public");
}
