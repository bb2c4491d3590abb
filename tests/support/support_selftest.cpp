// Self-test of the test support code: real Postgres topologies, auth, TLS, teardown, processes.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <thread>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace std::chrono_literals;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.rfind(prefix, 0) == 0;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

// Postmasters and all their children: what teardown must leave behind as nothing.
std::vector<pid_t> server_processes(pg_topology& topology) {
    std::vector<pid_t> pids;
    for (pg_server* s : topology.servers()) {
        const pid_t pm = s->postmaster_pid();
        REQUIRE(pm != 0);
        pids.push_back(pm);
        for (pid_t child : descendants(pm))
            pids.push_back(child);
    }
    return pids;
}

}  // namespace

TEST_CASE("a 1-shard topology with 2 replicas replicates, authenticates and is torn down") {
    std::filesystem::path dir;
    std::vector<pid_t> pids;
    {
        const auto t0 = std::chrono::steady_clock::now();
        pg_topology topology = pg_topology::builder().shards(1).replicas(2).build();
        const auto started_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - t0)
                                    .count();
        MESSAGE("1 shard with 2 replicas started in " << started_ms << " ms");
        WARN_LT(started_ms, 5000);
        dir = topology.dir();
        REQUIRE(std::filesystem::is_directory(dir));

        pg_shard& shard = topology.shard(0);
        REQUIRE(shard.replica_count() == 2);
        CHECK(shard.primary().query_value("SELECT pg_is_in_recovery()") == "f");
        for (std::size_t i = 0; i < 2; ++i)
            CHECK(shard.replica(i).query_value("SELECT pg_is_in_recovery()") == "t");
        CHECK(shard.primary().port() != shard.replica(0).port());
        CHECK(shard.primary().query_value("SHOW max_connections") == "200");

        {  // writes on the primary reach both replicas
            shard.primary().exec(
                "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')");
            shard.wait_for_replicas_streaming();
            for (std::size_t i = 0; i < 2; ++i) {
                CHECK(shard.replica(i).query_value("SELECT v FROM t WHERE id = 1") == "one");
                try {
                    shard.replica(i).exec("INSERT INTO t VALUES (2, 'two')");
                    FAIL("a replica accepted a write");
                } catch (const pg_error& e) {
                    CHECK(e.sqlstate() == "25006");  // read_only_sql_transaction
                }
            }
            CHECK(shard.primary().query_value(
                      "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "2");
        }

        {  // SCRAM authentication over TCP: right password works, wrong one fails
            topology.create_role("alice", "s3cret pass'word");
            CHECK(starts_with(shard.primary().query_value(
                                  "SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'"),
                              "SCRAM-SHA-256$"));
            pg_connection alice(shard.primary().conninfo("alice", "s3cret pass'word"));
            CHECK(alice.query_value("SELECT current_user") == "alice");
            try {
                pg_connection wrong(shard.primary().conninfo("alice", "wrong"));
                FAIL("a wrong password was accepted");
            } catch (const pg_error& e) {
                CHECK(contains(e.what(), "password authentication failed"));
            }
            shard.wait_for_replicas_streaming();
            pg_connection on_replica(shard.replica(1).conninfo("alice", "s3cret pass'word"));
            CHECK(on_replica.query_value("SELECT current_user") == "alice");

            topology.create_database("appdb", "alice");
            pg_connection in_db(shard.primary().conninfo("alice", "s3cret pass'word", "appdb"));
            CHECK(in_db.query_value("SELECT current_database()") == "appdb");
        }

        {  // a killed replica and a restarted primary come back
            pg_server& replica = shard.replica(1);
            const pid_t pm = replica.postmaster_pid();
            replica.kill();
            CHECK_FALSE(replica.running());
            CHECK_FALSE(process_alive(pm));
            shard.primary().restart();
            shard.primary().exec("CREATE TABLE after_crash AS SELECT 42 AS answer");
            replica.start();
            shard.wait_for_replicas_streaming();
            CHECK(replica.query_value("SELECT answer FROM after_crash") == "42");
        }

        {  // the shardgate config points at shard 0's primary
            shardgate_config_options o;
            o.users = {{"alice", "pw"}};
            const std::string toml = render_shardgate_config(topology, o);
            CHECK(contains(toml, "listen_port = @PORT@"));
            CHECK(contains(toml, "[databases.app]"));
            CHECK(contains(toml, "port = " + std::to_string(shard.primary().port())));
            CHECK(contains(toml, "server_tls = \"disable\""));
            CHECK(contains(toml, "[users.alice]\npassword = \"pw\"\nauth = \"scram-sha-256\""));
        }

        pids = server_processes(topology);
    }
    CHECK_FALSE(std::filesystem::exists(dir));
    CHECK(wait_until_gone(pids, 5s));
}

TEST_CASE(
    "a TLS-only server with md5 auth: verify-full works by IP and by name, plain TCP is refused") {
    pg_server_options o;
    o.name = "tls";
    o.tls = true;
    o.tls_only = true;
    o.auth = auth_method::md5;
    std::filesystem::path dir;
    {
        pg_server server(o);
        dir = server.socket_dir();
        server.create_role("bob", "hunter2", auth_method::md5);
        CHECK(starts_with(
            server.query_value("SELECT rolpassword FROM pg_authid WHERE rolname = 'bob'"), "md5"));

        pg_connection by_ip(server.tls_conninfo("bob", "hunter2"));
        CHECK(by_ip.query_value("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == "t");

        pg_connection by_name(make_conninfo({{"host", "localhost"},
                                             {"port", std::to_string(server.port())},
                                             {"user", "bob"},
                                             {"password", "hunter2"},
                                             {"dbname", "postgres"},
                                             {"sslmode", "verify-full"},
                                             {"sslrootcert", server.tls_ca_file().string()}}));
        CHECK(by_name.query_value("SELECT current_user") == "bob");

        CHECK_THROWS_AS(pg_connection(server.conninfo("bob", "hunter2") + " sslmode=disable"),
                        pg_error);
        CHECK_THROWS_AS(pg_connection(server.tls_conninfo("bob", "nope")), pg_error);
    }
    CHECK_FALSE(std::filesystem::exists(dir));
}

TEST_CASE("shardgate_process: port, readiness, signals, stop, and failures with the log") {
    const std::string config = "[shardgate]\nlisten_addr = \"127.0.0.1\"\nlisten_port = @PORT@\n";
    std::filesystem::path dir;
    {
        shardgate_process proxy(FAKE_SHARDGATE_BINARY, config);
        dir = proxy.config_file().parent_path();
        CHECK(proxy.running());
        CHECK(port_accepts(proxy.port()));
        CHECK(contains(read_file(proxy.config_file()),
                       "listen_port = " + std::to_string(proxy.port())));

        proxy.reload();
        bool reloaded = false;
        for (int i = 0; i < 200 && !reloaded; ++i) {
            reloaded = contains(read_file(proxy.log_file()), "reload requested");
            if (!reloaded) std::this_thread::sleep_for(10ms);
        }
        CHECK(reloaded);
        CHECK(proxy.stop() == 0);
        CHECK_FALSE(proxy.running());
        CHECK(contains(proxy.log_tail(), "stopping"));

        proxy.start();
        CHECK(port_accepts(proxy.port()));
        proxy.send_signal(SIGKILL);
        CHECK(proxy.wait_for_exit(5s) == 128 + SIGKILL);
    }
    CHECK_FALSE(std::filesystem::exists(dir));

    try {
        shardgate_process broken("/bin/false", config);
        FAIL("a binary that exits at once was reported as started");
    } catch (const std::runtime_error& e) {
        CHECK(contains(e.what(), "exited with 1"));
    }
}
