// The read/write splitting fixture: a primary with two streaming replicas and shardgate in
// front of them, with helpers for SHOW ROUTES, xact_commit counts and pgbench. Shared by the
// read_split*_test.cpp files.
#pragma once

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <chrono>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "client_program.hpp"
#include "shardgate/testsupport/testsupport.hpp"

namespace split_fixture {
using namespace shardgate::testsupport;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

using conn_ptr = std::unique_ptr<PGconn, void (*)(PGconn*)>;

struct cluster {
    pg_topology topo;
    std::unique_ptr<shardgate_process> sg;

    cluster() : cluster(pg_topology::builder().replicas(2)) {}
    // `b` must give one shard with two replicas.
    explicit cluster(const pg_topology::builder& b) : topo(b.build()) {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        primary().exec(
            "CREATE TABLE kv(id bigserial PRIMARY KEY, v int NOT NULL); "
            "GRANT ALL ON kv TO alice; GRANT ALL ON SEQUENCE kv_id_seq TO alice; "
            "CREATE FUNCTION bump() RETURNS int LANGUAGE sql VOLATILE AS "
            "'INSERT INTO kv(v) VALUES (0) RETURNING v'",
            "app");
        topo.wait_for_replicas_streaming();
    }
    pg_server& primary() { return topo.shard(0).primary(); }
    pg_server& replica(int i) { return topo.shard(0).replica(i); }

    // shardgate in front, with `db_extra` in [databases.app].
    // `check_timeout_ms`: replica_check_timeout_ms. Short by default, so that the cases with a
    // paused or killed replica see it banned quickly; the load cases give a loaded machine's
    // probes more room.
    void start(const std::string& db_extra, const std::string& main_extra = "",
               int check_timeout_ms = 300) {
        sg.reset();
        sg = std::make_unique<shardgate_process>(
            shardgate_options{.config_toml = toml(db_extra, main_extra, check_timeout_ms)});
        // Until the monitor has checked every replica once, reads go to the primary.
        wait_for_states({"fit", "fit"}, 10s);
    }
    // The configuration start() uses (another shardgate in front of the same servers).
    std::string toml(const std::string& db_extra, const std::string& main_extra = "",
                     int check_timeout_ms = 300) {
        std::string toml =
            "[shardgate]\nlisten_port = @PORT@\nworkers = 2\nadmin_users = [\"alice\"]\n"
            "replica_check_interval_ms = 100\nreplica_check_timeout_ms = " +
            std::to_string(check_timeout_ms) +
            "\nserver_backoff_initial_ms = 100\nserver_backoff_max_ms = 200\n"
            "server_connect_timeout_ms = 1000\n" +
            main_extra;
        toml += "[databases.app]\nport = " + std::to_string(primary().port()) +
                "\nserver_tls = \"disable\"\nreplicas = [{ host = \"127.0.0.1\", port = " +
                std::to_string(replica(0).port()) + ", weight = 1 }, { host = \"127.0.0.1\", " +
                "port = " + std::to_string(replica(1).port()) + ", weight = 3 }]\n" + db_extra +
                "[users.alice]\npassword = \"secret\"\n";
        return toml;
    }
    conn_ptr connect(const std::string& extra = "", const std::string& db = "app") const {
        return connect_to(sg->port(), extra, db);
    }
    static conn_ptr connect_to(int port, const std::string& extra = "",
                               const std::string& db = "app") {
        const std::string info = "host=127.0.0.1 port=" + std::to_string(port) +
                                 " user=alice password=secret dbname=" + db +
                                 " sslmode=disable connect_timeout=10 " + extra;
        return {PQconnectdb(info.c_str()), PQfinish};
    }
    // The admin console's SHOW <what>: rows as column name -> value.
    std::vector<std::map<std::string, std::string>> show(const std::string& what) const {
        auto c = connect("", "shardgate");
        std::vector<std::map<std::string, std::string>> rows;
        PGresult* r = PQexec(c.get(), ("SHOW " + what).c_str());
        for (int i = 0; i < PQntuples(r); ++i) {
            std::map<std::string, std::string> row;
            for (int j = 0; j < PQnfields(r); ++j)
                row[PQfname(r, j)] = PQgetvalue(r, i, j);
            rows.push_back(std::move(row));
        }
        PQclear(r);
        return rows;
    }
    std::vector<std::string> replica_states() const {
        std::vector<std::string> out;
        for (auto& row : show("REPLICAS"))
            if (row["role"] == "replica") out.push_back(row["state"]);
        return out;
    }
    bool wait_for_states(const std::vector<std::string>& want, std::chrono::milliseconds limit) {
        const auto until = clock_type::now() + limit;
        while (clock_type::now() < until) {
            if (replica_states() == want) return true;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }
    // Reads routed to each server so far (SHOW ROUTES): primary, replica 1, replica 2.
    std::vector<long long> routed_reads(const char* column = "reads") const {
        std::vector<long long> out;
        for (auto& row : show("ROUTES"))
            out.push_back(std::stoll(row[column]));
        return out;
    }
    // Committed transactions in app on `s` (its backends for alice closed first, so their
    // statistics are flushed).
    long long commits(pg_server& s) {
        // Not the monitor's (shardgate-monitor): a replica would be banned meanwhile.
        s.exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'alice' AND "
            "application_name NOT LIKE 'shardgate-%'");
        std::this_thread::sleep_for(200ms);
        return std::stoll(
            s.query_value("SELECT xact_commit FROM pg_stat_database WHERE datname = 'app'"));
    }
    // pgbench against app through shardgate, as alice, with a clean environment, in `dir`.
    command_result pgbench(const work_dir& dir, std::vector<std::string> args) const {
        return client_program::pgbench(dir.path(), sg->port(), "alice", "secret", "app",
                                       std::move(args));
    }
};

inline std::string value(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                          ? std::string(PQgetvalue(r, 0, 0))
                          : std::string("ERROR: ") + PQresultErrorMessage(r);
    PQclear(r);
    return out;
}

// A statement that returns no rows ran without error.
inline bool ok(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const bool good = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!good)
        MESSAGE(sql << ": " << std::string(PQresStatus(PQresultStatus(r))) << " "
                    << std::string(PQresultErrorMessage(r)));
    PQclear(r);
    return good;
}

// The server a read ran on: its port (inet_server_port()).
inline int server_port(PGconn* c) {
    const auto v = value(c, "SELECT inet_server_port()");
    return v.rfind("ERROR", 0) == 0 ? -1 : std::stoi(v);
}

inline long long processed(const command_result& r) {
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("number of failed transactions: 0 (0.000%)") != std::string::npos);
    std::smatch m;
    REQUIRE(std::regex_search(r.output, m,
                              std::regex("number of transactions actually processed: ([0-9]+)")));
    return std::stoll(m[1].str());
}

}  // namespace split_fixture
