// Real Python drivers through transaction pooling: psycopg 3 (prepare_threshold=0 and default)
// and asyncpg (named prepared statements, statement cache on, a Pool and plain connections),
// 50 clients over pool_size = 5, run by tests/integration/clients/prepared_clients.py.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "client_program.hpp"
#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
namespace fs = std::filesystem;

namespace {

using client_program::client_result;
using client_program::json_int;

client_result run_client(const fs::path& dir, const std::vector<std::string>& argv) {
    return client_program::run_client(dir, argv, 100s);
}

const fs::path script = fs::path(__FILE__).parent_path() / "clients" / "prepared_clients.py";

}  // namespace

TEST_CASE("psycopg 3 and asyncpg prepared statements: 50 clients over pool_size = 5") {
    pg_topology topo = pg_topology::builder().replicas(split_replicas()).build();
    topo.create_role("alice", "secret");
    topo.create_database("app", "alice");
    wait_for_split(topo);
    pg_server& pg = topo.shard(0).primary();
    const std::string toml =
        "[shardgate]\nlisten_port = @PORT@\nworkers = 2\npool_mode = \"transaction\"\n"
        "pool_size = 5\ncheckout_timeout_ms = 20000\n[databases.app]\nport = " +
        std::to_string(pg.port()) + "\nserver_tls = \"disable\"\n" + split_toml(topo) +
        "[users.alice]\npassword = \"secret\"\n";
    shardgate_process sg(shardgate_options{.config_toml = toml});
    work_dir dir{"shardgate-python-clients"};
    auto server_conns = [&] {
        return std::stoi(
            pg.query_value("SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice' AND "
                           "datname = 'app' AND pid <> pg_backend_pid() AND "
                           "application_name NOT IN ('shardgate-monitor', 'shardgate-catalog')"));
    };
    // The most server connections seen while the clients run, sampled every 200 ms.
    std::atomic<int> peak{0};
    std::jthread sampler([&](std::stop_token stop) {
        while (!stop.stop_requested()) {
            peak = std::max(peak.load(), server_conns());
            std::this_thread::sleep_for(200ms);
        }
    });

    // 17 psycopg clients prepare on first use, 8 after 5 runs (the default), a third of them
    // commit themselves; 15 asyncpg Pool connections (acquired per round, reset on release) and
    // 10 plain asyncpg connections. 500 rounds of 4+ executions each: about 110,000.
    // A sanitized shardgate is a few times slower: a fifth of the load (the same mix).
    const bool light = sanitized_shardgate();
    const std::string rounds = light ? "100" : "500";
    const long long want = light ? 20000 : 100000;
    std::vector<std::string> argv{"/usr/bin/python3", script.string()};
    for (const auto& [flag, value] :
         std::vector<std::pair<std::string, std::string>>{{"--port", std::to_string(sg.port())},
                                                          {"--user", "alice"},
                                                          {"--password", "secret"},
                                                          {"--dbname", "app"},
                                                          {"--psycopg-prepared", "17"},
                                                          {"--psycopg-default", "8"},
                                                          {"--asyncpg-pool", "15"},
                                                          {"--asyncpg-conns", "10"},
                                                          {"--rounds", rounds},
                                                          {"--deadline", "75"}})
        argv.insert(argv.end(), {flag, value});
    const client_result r = run_client(dir.path(), argv);
    sampler.request_stop();
    sampler.join();
    const std::string log = sg.log_tail(20);
    INFO("script stdout: " << r.out);
    INFO("script stderr: " << r.err);
    INFO("shardgate log:\n" << log);
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    CHECK(json_int(r.out, "clients") == 50);
    CHECK(json_int(r.out, "errors") == 0);
    CHECK(r.out.find("\"first_error\": null") != std::string::npos);
    CHECK(r.out.find("does not exist") == std::string::npos);
    CHECK(r.out.find("already exists") == std::string::npos);
    CHECK(json_int(r.out, "executions") >= want);
    for (const char* kind : {"psycopg_prepared", "psycopg_default", "asyncpg_pool", "asyncpg_conn"})
        CHECK(json_int(r.out, kind) > 0);
    CHECK(peak <= 5);
    CHECK(server_conns() <= 5);
    if (split_replicas() > 0) CHECK(split_replica_backends(topo, "alice") > 0);
    MESSAGE("python drivers: " << r.out << "server connections at most: " << peak.load());
    CHECK(sg.running());
}
