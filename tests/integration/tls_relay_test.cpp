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
