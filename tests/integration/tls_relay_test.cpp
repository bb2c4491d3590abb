// TLS clients relayed from plain server connections, many at once on one worker: each client's
// bytes must be its own. The relay reads a server's bytes into per-thread scratch memory; a
// TLS write that waits for a slow client must not refer to that memory, which the next session
// on the worker overwrites (issue 12, item 6). Session and transaction pooling.
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace std::chrono_literals;

namespace {

// Row g of the result: its number, then a pattern that depends on it.
std::string expected_row(int g) {
    std::string s = std::to_string(g) + ":";
    const std::string part = std::to_string(g * 7919 % 100000);
    while (s.size() < 2000)
        s += part + ",";
    return s.substr(0, 2000);
}

void run(const std::string& mode) {
    pg_topology topo = pg_topology::builder().tls().build();
    topo.create_role("alice", "secret");
    topo.create_database("app", "alice");
    const auto& tls = topo.tls();
    // One worker: every TLS session shares its thread (and scratch memory); server side plain.
    const std::string toml =
        "[shardgate]\nlisten_port = @PORT@\nworkers = 1\npool_mode = \"" + mode +
        "\"\npool_size = 40\ntls_cert_file = \"" + tls.cert_file.string() +
        "\"\ntls_key_file = \"" + tls.key_file.string() +
        "\"\n[databases.app]\nport = " + std::to_string(topo.shard(0).primary().port()) +
        "\nserver_tls = \"disable\"\n[users.alice]\npassword = \"secret\"\n";
    shardgate_process sg(shardgate_options{.config_toml = toml});
    const std::string info = "host=127.0.0.1 port=" + std::to_string(sg.port()) +
                             " user=alice password=secret dbname=app sslmode=require";
    // About 8 MB per query: far more than a socket buffer holds, so writes to a client that is
    // slow to read must wait.
    const std::string sql =
        "SELECT g::text || ':' || left(repeat((g * 7919 % 100000)::text || ',', 2000), 2000 - "
        "length(g::text) - 1) FROM generate_series(1, 4000) g";
    constexpr int clients = 16;
    constexpr int queries = 3;
    std::atomic<int> wrong{0};
    std::atomic<int> done{0};
    std::mutex mu;
    std::string first_problem;
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            std::unique_ptr<PGconn, void (*)(PGconn*)> c{PQconnectdb(info.c_str()), PQfinish};
            auto problem = [&](const std::string& what) {
                ++wrong;
                std::lock_guard lock(mu);
                if (first_problem.empty())
                    first_problem = "client " + std::to_string(i) + ": " + what;
            };
            if (PQstatus(c.get()) != CONNECTION_OK || PQsslInUse(c.get()) != 1)
                return problem(PQerrorMessage(c.get()));
            for (int q = 0; q < queries; ++q) {
                PGresult* r = PQexec(c.get(), sql.c_str());
                if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 4000) {
                    problem(PQresultErrorMessage(r));
                    PQclear(r);
                    return;
                }
                for (int g = 1; g <= 4000; ++g) {
                    if (PQgetvalue(r, g - 1, 0) != expected_row(g)) {
                        problem("row " + std::to_string(g) + " differs");
                        break;
                    }
                }
                PQclear(r);
                // Some clients read slowly: their writes wait while others go on.
                if (i % 2 == 0) std::this_thread::sleep_for(20ms);
            }
            ++done;
        });
    }
    for (auto& t : threads)
        t.join();
    INFO(first_problem);
    CHECK(wrong == 0);
    CHECK(done == clients);
}

}  // namespace

TEST_CASE("many TLS clients on one worker fetching large results get exactly their rows") {
    SUBCASE("session pooling") {
        run("session");
    }
    SUBCASE("transaction pooling") {
        run("transaction");
    }
}

namespace {

// TLS on both sides (client to shardgate, shardgate to Postgres), relayed by the data plane:
// large results read slowly, a large COPY in, a pipeline of extended-protocol queries.
void run_both_sides(const std::string& mode) {
    pg_topology topo = pg_topology::builder().tls().build();
    topo.create_role("alice", "secret");
    topo.create_database("app", "alice");
    const auto& tls = topo.tls();
    const std::string toml =
        "[shardgate]\nlisten_port = @PORT@\nworkers = 1\ndata_planes = 1\npool_mode = \"" + mode +
        "\"\npool_size = 4\ntls_cert_file = \"" + tls.cert_file.string() + "\"\ntls_key_file = \"" +
        tls.key_file.string() + "\"\n[databases.app]\nhost = \"localhost\"\nport = " +
        std::to_string(topo.shard(0).primary().port()) +
        "\nserver_tls = \"verify-full\"\nserver_tls_ca_file = \"" + tls.ca_file.string() +
        "\"\n[users.alice]\npassword = \"secret\"\n";
    shardgate_process sg(shardgate_options{.config_toml = toml});
    const std::string info = "host=127.0.0.1 port=" + std::to_string(sg.port()) +
                             " user=alice password=secret dbname=app sslmode=require";
    std::unique_ptr<PGconn, void (*)(PGconn*)> c{PQconnectdb(info.c_str()), PQfinish};
    REQUIRE(PQstatus(c.get()) == CONNECTION_OK);
    REQUIRE(PQsslInUse(c.get()) == 1);
    auto value = [&](const std::string& sql) {
        PGresult* r = PQexec(c.get(), sql.c_str());
        INFO(PQresultErrorMessage(r));
        std::string v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                            ? PQgetvalue(r, 0, 0)
                            : std::string("<error>");
        PQclear(r);
        return v;
    };
    CHECK(value("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == "t");

    SUBCASE("a large result to a client that reads late") {
        const std::string sql =
            "SELECT g::text || ':' || left(repeat((g * 7919 % 100000)::text || ',', 2000), 2000 - "
            "length(g::text) - 1) FROM generate_series(1, 8000) g";
        for (int round = 0; round < 2; ++round) {
            REQUIRE(PQsendQuery(c.get(), sql.c_str()) == 1);
            // The server's 16 MB fill the socket buffers and the proxy's: its writes wait.
            std::this_thread::sleep_for(300ms);
            PGresult* r = PQgetResult(c.get());
            REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
            REQUIRE(PQntuples(r) == 8000);
            int differ = 0;
            for (int g = 1; g <= 8000; ++g)
                differ += PQgetvalue(r, g - 1, 0) == expected_row(g) ? 0 : 1;
            CHECK(differ == 0);
            PQclear(r);
            while ((r = PQgetResult(c.get())) != nullptr)
                PQclear(r);
        }
    }
    SUBCASE("a large COPY in") {
        PQclear(PQexec(c.get(), "CREATE TEMP TABLE t (a int, b text)"));
        PGresult* r = PQexec(c.get(), "COPY t FROM STDIN");
        REQUIRE(PQresultStatus(r) == PGRES_COPY_IN);
        PQclear(r);
        std::string batch;
        long long sum = 0;
        constexpr int rows = 200000;
        for (int i = 1; i <= rows; ++i) {
            batch +=
                std::to_string(i) + "\t" + std::string(60, static_cast<char>('a' + i % 26)) + "\n";
            sum += i;
            if (batch.size() > 60000 || i == rows) {
                REQUIRE(PQputCopyData(c.get(), batch.data(), static_cast<int>(batch.size())) == 1);
                batch.clear();
            }
        }
        REQUIRE(PQputCopyEnd(c.get(), nullptr) == 1);
        r = PQgetResult(c.get());
        CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
        PQclear(r);
        while ((r = PQgetResult(c.get())) != nullptr)
            PQclear(r);
        CHECK(value("SELECT count(*) || ' ' || sum(a) || ' ' || sum(length(b)) FROM t") ==
              std::to_string(rows) + " " + std::to_string(sum) + " " + std::to_string(60LL * rows));
    }
    SUBCASE("a pipeline of extended-protocol queries") {
        REQUIRE(PQenterPipelineMode(c.get()) == 1);
        constexpr int n = 500;
        for (int i = 0; i < n; ++i) {
            const std::string v = std::to_string(i);
            const char* params[] = {v.c_str()};
            REQUIRE(PQsendQueryParams(c.get(), "SELECT $1::int * 2, repeat('y', 3000)", 1, nullptr,
                                      params, nullptr, nullptr, 0) == 1);
        }
        REQUIRE(PQpipelineSync(c.get()) == 1);
        int right = 0;
        for (int i = 0; i < n; ++i) {
            PGresult* r = PQgetResult(c.get());
            if (PQresultStatus(r) == PGRES_TUPLES_OK &&
                PQgetvalue(r, 0, 0) == std::to_string(2 * i))
                ++right;
            PQclear(r);
            PQclear(PQgetResult(c.get()));  // the end of this query's results
        }
        CHECK(right == n);
        PGresult* r = PQgetResult(c.get());
        CHECK(PQresultStatus(r) == PGRES_PIPELINE_SYNC);
        PQclear(r);
        REQUIRE(PQexitPipelineMode(c.get()) == 1);
    }
    CHECK(value("SELECT 40 + 2") == "42");
}

}  // namespace

TEST_CASE("TLS on both sides, relayed by the data plane, loses nothing") {
    for (const std::string mode : {"session", "transaction"}) {
        CAPTURE(mode);
        run_both_sides(mode);
    }
}
