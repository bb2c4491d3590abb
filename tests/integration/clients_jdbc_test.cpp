// The real JDBC driver (pgjdbc) through transaction pooling: 50 threads over pool_size = 5 reuse
// PreparedStatements until pgjdbc names them on the server (prepareThreshold 1 and the default 5),
// run by tests/integration/clients/JdbcPrepared.java with Java's single-file source launcher.
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
    return client_program::run_client(dir, argv, 120s);
}

const fs::path program = fs::path(__FILE__).parent_path() / "clients" / "JdbcPrepared.java";
// Debian 12: default-jdk-headless (the source launcher compiles, so a JRE is not enough) and
// libpostgresql-jdbc-java.
const fs::path java = "/usr/bin/java";
const fs::path javac = "/usr/bin/javac";
const fs::path driver_jar = "/usr/share/java/postgresql.jar";

}  // namespace

TEST_CASE("pgjdbc PreparedStatements: 50 clients over pool_size = 5") {
    // A missing JDK or driver is a broken test machine, not a reason to skip. javac stands for
    // the jdk.compiler module the source launcher needs (a JRE alone has java but not that).
    for (const fs::path& needed : {java, javac, driver_jar}) {
        const std::string missing = needed.string() +
                                    " is missing: run scripts/install-deps.sh "
                                    "(default-jdk-headless, libpostgresql-jdbc-java)";
        REQUIRE_MESSAGE(fs::exists(needed), missing);
    }
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
    work_dir dir{"shardgate-jdbc-clients"};
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

    // 25 clients with prepareThreshold=1 and 25 with the default 5; half of each with a 4-entry
    // statement cache, so evicted one-off statements are closed (Close). 300 rounds of about 8
    // executions each: about 119,000.
    // A sanitized shardgate is a few times slower: a fifth of the load (the same mix).
    const bool light = sanitized_shardgate();
    const std::string rounds = light ? "60" : "300";
    const std::string want = light ? "20000" : "100000";
    std::vector<std::string> argv{java.string(), "-cp", driver_jar.string(), program.string()};
    for (const auto& [flag, value] :
         std::vector<std::pair<std::string, std::string>>{{"--host", "127.0.0.1"},
                                                          {"--port", std::to_string(sg.port())},
                                                          {"--user", "alice"},
                                                          {"--password", "secret"},
                                                          {"--dbname", "app"},
                                                          {"--threads", "50"},
                                                          {"--rounds", rounds},
                                                          {"--deadline", "90"},
                                                          {"--min-executions", want}})
        argv.insert(argv.end(), {flag, value});
    const client_result r = run_client(dir.path(), argv);
    sampler.request_stop();
    sampler.join();
    const std::string log = sg.log_tail(20);
    INFO("client stdout: " << r.out);
    INFO("client stderr: " << r.err);
    INFO("shardgate log:\n" << log);
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    CHECK(json_int(r.out, "clients") == 50);
    CHECK(json_int(r.out, "errors") == 0);
    CHECK(json_int(r.out, "not_exist_errors") == 0);
    CHECK(json_int(r.out, "already_exists_errors") == 0);
    CHECK(r.out.find("\"first_error\": null") != std::string::npos);
    CHECK(r.out.find("does not exist") == std::string::npos);
    CHECK(r.out.find("already exists") == std::string::npos);
    CHECK(json_int(r.out, "executions") >= std::stoll(want));
    for (const char* kind : {"threshold_1", "threshold_default", "transactions", "rollbacks",
                             "batches", "one_offs", "closes"})
        CHECK(json_int(r.out, kind) > 0);
    // pgjdbc really used named server statements (S_n) for most executions.
    CHECK(json_int(r.out, "named_parses") > 0);
    CHECK(json_int(r.out, "named_binds") >= json_int(r.out, "executions") / 2);
    CHECK(peak <= 5);
    CHECK(server_conns() <= 5);
    if (split_replicas() > 0) CHECK(split_replica_backends(topo, "alice") > 0);
    MESSAGE("pgjdbc: " << r.out << "server connections at most: " << peak.load());
    CHECK(sg.running());
}
