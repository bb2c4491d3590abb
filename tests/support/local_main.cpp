// sg-local: starts a local development topology (Postgres shards with replicas) behind shardgate.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;

namespace {

volatile sig_atomic_t stop_signal = 0;
int signal_pipe[2] = {-1, -1};

void on_signal(int sig) {
    stop_signal = sig;
    [[maybe_unused]] ssize_t n = ::write(signal_pipe[1], "x", 1);
}

struct interrupted {};

void check_interrupted() {
    if (stop_signal != 0) throw interrupted{};
}

void install_signal_handlers() {
    if (::pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        ::sigaction(sig, &sa, nullptr);
}

struct settings {
    int shards = 2;
    int replicas = 1;
    int port = 0;
    bool smoke = false;
    bool no_proxy = false;
    std::string shardgate = default_shardgate_binary().string();
};

void create_demo_data(pg_topology& topology) {
    topology.create_role("app", "app", auth_method::scram_sha_256);
    topology.create_database("app", "app");
    for (std::size_t i = 0; i < topology.shard_count(); ++i) {
        const std::string n = std::to_string(i);
        std::string sql =
            "CREATE TABLE demo (id int PRIMARY KEY, shard int NOT NULL, note text NOT NULL);";
        sql += "INSERT INTO demo SELECT g, " + n;
        sql += ", format('demo row %s on shard " + n;
        sql += "', g) FROM generate_series(1, 3) g; ALTER TABLE demo OWNER TO app;";
        topology.shard(i).primary().exec(sql, "app");
    }
    topology.wait_for_replicas_streaming();
}

void print_servers(pg_topology& topology) {
    for (std::size_t i = 0; i < topology.shard_count(); ++i) {
        pg_shard& shard = topology.shard(i);
        std::cout << "  shard " << i << ": primary 127.0.0.1:" << shard.primary().port();
        for (std::size_t r = 0; r < shard.replica_count(); ++r)
            std::cout << ", replica 127.0.0.1:" << shard.replica(r).port();
        std::cout << "\n";
    }
    std::cout << "  data, sockets and server logs: " << topology.dir().string() << "\n";
}

void smoke_query(const std::string& conninfo, const std::string& through) {
    pg_connection c(conninfo);
    const std::string version = c.query_value("SELECT version()");
    auto rows = c.query("SELECT id, shard, note FROM demo ORDER BY id LIMIT 1");
    if (rows.empty() || rows[0].size() != 3)
        throw std::runtime_error("the demo table returned no row");
    std::cout << "Smoke query through " << through << ":\n"
              << "  SELECT version()  -> " << version << "\n"
              << "  SELECT ... demo   -> id=" << rows[0][0].value_or("NULL")
              << " shard=" << rows[0][1].value_or("NULL") << " note=" << rows[0][2].value_or("NULL")
              << "\n";
}

// Waits for SIGINT/SIGTERM/SIGHUP; returns 1 early if shardgate dies.
int wait_for_stop(shardgate_process* proxy) {
    for (;;) {
        pollfd p{signal_pipe[0], POLLIN, 0};
        ::poll(&p, 1, 1000);
        if (stop_signal != 0) return 0;
        if (proxy != nullptr && !proxy->running()) {
            std::cerr << "sg-local: shardgate exited unexpectedly; its last output:\n"
                      << proxy->log_tail();
            return 1;
        }
    }
}

int run(const settings& s) {
    const auto t0 = std::chrono::steady_clock::now();
    std::cout << "sg-local: starting " << s.shards << " shard(s), each a primary + " << s.replicas
              << " replica(s)..." << std::endl;
    pg_topology topology = pg_topology::builder().shards(s.shards).replicas(s.replicas).build();
    check_interrupted();
    create_demo_data(topology);
    // The replicas serve reads through shardgate: they must have the demo rows first.
    topology.wait_for_replicas_streaming();
    check_interrupted();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    std::cout << "Postgres is up (" << ms.count() << " ms):\n";
    print_servers(topology);

    if (s.no_proxy) {
        const pg_server& primary = topology.shard(0).primary();
        smoke_query(primary.conninfo("app", "app", "app"), "shard 0's primary (no proxy)");
        std::cout << "\nConnect to shard 0's primary directly with:\n  psql \""
                  << primary.conninfo("app", "app", "app") << "\"\n"
                  << std::flush;
        if (s.smoke) return 0;
        std::cout << "Press Ctrl-C to stop and remove everything." << std::endl;
        const int rc = wait_for_stop(nullptr);
        std::cout << "sg-local: stopping Postgres..." << std::endl;
        return rc;
    }

    shardgate_config_options config;
    config.users = {{"app", "app", auth_method::scram_sha_256}};
    // Reads go to the shard's replicas (read/write splitting), writes to its primary.
    config.databases = {{.name = "app", .replicas = true}};
    shardgate_options options;
    options.binary = s.shardgate;
    options.port = s.port;
    options.config_toml = render_shardgate_config(topology, config);
    shardgate_process proxy(options);
    check_interrupted();
    std::cout << "shardgate is listening on 127.0.0.1:" << proxy.port() << " (config "
              << proxy.config_file().string() << ", log " << proxy.log_file().string() << ")\n";
    try {
        smoke_query(proxy.conninfo("app", "app", "app"), "shardgate");
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string(e.what()) + "\nshardgate's last output:\n" +
                                 proxy.log_tail());
    }
    std::cout << "\nConnect with:\n  psql \"" << proxy.conninfo("app", "app", "app") << "\"\n"
              << "Writes go to shard 0's primary, reads to its replicas once the replica monitor\n"
                 "has checked them (SELECT inet_server_port() shows which server answered).\n"
              << std::flush;
    if (s.smoke) return 0;
    std::cout << "Press Ctrl-C to stop and remove everything." << std::endl;
    const int rc = wait_for_stop(&proxy);
    std::cout << "sg-local: stopping shardgate and Postgres..." << std::endl;
    return rc;
}

int sg_local_main(int argc, char** argv) {
    settings s;
    CLI::App app{
        "sg-local: a local shardgate development topology (Postgres 15 shards + replicas)"};
    app.add_option("--shards", s.shards, "number of shards")
        ->check(CLI::Range(1, 16))
        ->capture_default_str();
    app.add_option("--replicas", s.replicas, "streaming replicas per shard")
        ->check(CLI::Range(0, 8))
        ->capture_default_str();
    app.add_option("--port", s.port, "shardgate listen port (0: a free port)")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    app.add_flag("--smoke", s.smoke, "exit 0 right after the smoke query (for CI)");
    app.add_option("--shardgate", s.shardgate, "path of the shardgate binary")
        ->capture_default_str();
    app.add_flag("--no-proxy", s.no_proxy, "start only the Postgres topology, without shardgate");
    CLI11_PARSE(app, argc, argv);

    try {
        install_signal_handlers();
        const int rc = run(s);
        std::cout << "sg-local: done" << std::endl;
        return rc;
    } catch (const interrupted&) {
        std::cerr << "sg-local: interrupted (signal " << stop_signal
                  << "), everything was torn down" << std::endl;
        return 130;
    } catch (const std::exception& e) {
        std::cerr << "sg-local: " << e.what() << std::endl;
        return 1;
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return sg_local_main(argc, argv);
    } catch (...) {
        std::cerr << "sg-local: unexpected failure" << std::endl;
        return 1;
    }
}
