// libpqxx prepared statements through transaction pooling: 50 clients over pool_size = 5,
// over 100,000 executions in transactions and outside them, no "does not exist" / "already
// exists" and no wrong result.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;

TEST_CASE("libpqxx prepared statements: 50 clients over pool_size = 5, 100,000 executions") {
    pg_topology topo = pg_topology::builder().build();
    topo.create_role("alice", "secret");
    topo.create_database("app", "alice");
    auto& pg = topo.shard(0).primary();
    pg.exec("CREATE TABLE hits(k int PRIMARY KEY, n bigint NOT NULL); GRANT ALL ON hits TO alice",
            "app");
    const std::string toml =
        "[shardgate]\nlisten_port = @PORT@\nworkers = 2\n"
        "pool_mode = \"transaction\"\npool_size = 5\n"
        "checkout_timeout_ms = 60000\n[databases.app]\nport = " +
        std::to_string(pg.port()) +
        "\nserver_tls = \"disable\"\n[users.alice]\npassword = \"secret\"\n";
    shardgate_process sg(shardgate_options{.config_toml = toml});
    const std::string info = "host=127.0.0.1 port=" + std::to_string(sg.port()) +
                             " user=alice password=secret dbname=app sslmode=disable";

    constexpr int clients = 50;
    constexpr int rounds = 1000;  // x 2 statements = 100,000 executions
    std::atomic<long> executions{0};
    std::atomic<int> errors{0};
    std::mutex mu;
    std::string first_error;
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            try {
                pqxx::connection c(info);
                c.prepare("bump",
                          "INSERT INTO hits VALUES ($1, 1) ON CONFLICT (k) DO UPDATE "
                          "SET n = hits.n + 1");
                c.prepare("get", "SELECT n FROM hits WHERE k = $1");
                for (int r = 0; r < rounds; ++r) {
                    if (r % 2 == 0) {
                        pqxx::work w(c);
                        w.exec_prepared0("bump", i);
                        const auto n = w.exec_prepared1("get", i)[0].as<long>();
                        w.commit();
                        if (n != r + 1) ++errors;
                    } else {
                        pqxx::nontransaction n(c);
                        n.exec_prepared0("bump", i);
                        if (n.exec_prepared1("get", i)[0].as<long>() != r + 1) ++errors;
                    }
                    executions += 2;
                }
            } catch (const std::exception& e) {
                ++errors;
                std::lock_guard lock(mu);
                if (first_error.empty()) first_error = e.what();
            }
        });
    }
    for (auto& t : threads)
        t.join();
    INFO(first_error);
    CHECK(errors == 0);
    CHECK(executions == 2L * clients * rounds);
    CHECK(std::stoi(pg.query_value("SELECT count(*) FROM pg_stat_activity WHERE usename = "
                                   "'alice' AND pid <> pg_backend_pid()")) <= 5);
    CHECK(pg.query_value("SELECT sum(n) FROM hits", "app") == std::to_string(clients * rounds));
    MESSAGE("libpqxx: " << executions.load() << " prepared executions, " << errors.load()
                        << " errors");
}
