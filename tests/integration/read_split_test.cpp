// Read/write splitting against a real primary and two streaming replicas: reads spread as each
// load-balancing policy says, writes only on the primary, a replica paused past max_lag_* stops
// taking reads within a monitor interval and takes them again once resumed, a replica killed
// under read load, read-your-writes (session vs eventual), and the primary stopped and back.
// One file over 500 lines: every case needs the same three-server cluster fixture and its
// helpers (SHOW ROUTES, xact_commit counts, pgbench), each case one promise of the issue.
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "split_cluster.hpp"

using namespace split_fixture;

TEST_CASE("pgbench -S spreads over the replicas as each policy says; writes only on the primary") {
    cluster c;
    work_dir dir("pgbench");
    {
        const std::string init_info = c.primary().superuser_conninfo("app");
        const auto init =
            run_command({(pg_bindir() / "pgbench").string(), "-i", "-s", "1", "-q", init_info},
                        {.timeout = 120s, .cwd = dir.path()});
        REQUIRE(init.exit_code == 0);
        c.primary().exec("GRANT ALL ON ALL TABLES IN SCHEMA public TO alice", "app");
        c.topo.wait_for_replicas_streaming();
    }
    struct policy {
        const char* name;
        double min_share2, max_share2;  // replica 2's share of the replicas' reads
    };
    // least_connections sends a read where fewer connections are in use: on this shared
    // machine a replica that happens to run slower holds its connections longer and gets
    // fewer reads (0.807 was seen under a parallel ctest), so only "both take a real part" is
    // a property of the policy; round robin and weights are exact counts.
    for (const policy p :
         {policy{"round_robin", 0.40, 0.60}, policy{"weighted", 0.65, 0.85},
          policy{"least_connections", 0.10, 0.90}, policy{"least_latency", 0.0, 1.0}}) {
        const std::string policy_name = p.name;  // doctest prints a const char* as a pointer
        CAPTURE(policy_name);
        c.start(std::string("load_balance = \"") + p.name + "\"\n", "", 2000);
        const long long before[3] = {c.commits(c.primary()), c.commits(c.replica(0)),
                                     c.commits(c.replica(1))};
        const auto n = processed(c.pgbench(dir, {"-n", "-S", "-c", "8", "-j", "2", "-T", "3"}));
        const long long delta[3] = {c.commits(c.primary()) - before[0],
                                    c.commits(c.replica(0)) - before[1],
                                    c.commits(c.replica(1)) - before[2]};
        const auto routes = c.routed_reads();
        // Reads the primary took because no replica was fit, or its checkout failed: under a
        // heavily loaded machine a monitor probe can time out (see the closing checks).
        const auto for_lag = c.routed_reads("reads_for_lag");
        const auto fallbacks = c.routed_reads("fallbacks");
        MESSAGE(policy_name << ": " << n << " transactions; xact_commit primary " << delta[0]
                            << ", replica1 " << delta[1] << ", replica2 " << delta[2]
                            << "; SHOW ROUTES reads " << routes[0] << "/" << routes[1] << "/"
                            << routes[2] << ", reads_for_lag " << for_lag[0] << ", fallbacks "
                            << fallbacks[0] << "/" << fallbacks[1] << "/" << fallbacks[2]);
        // pgbench's own few statements aside, reads ran on the replicas only, but for those
        // the design sends to the primary: while a replica is judged unfit (a probe slower
        // than the check timeout on a loaded machine) or cannot be reached.
        const long long diverted = for_lag[0] + fallbacks[1] + fallbacks[2];
        CHECK(diverted <= n / 100);
        CHECK(delta[0] < n / 50 + 20 + diverted);
        CHECK(delta[1] + delta[2] >= n * 95 / 100);
        const double share2 = static_cast<double>(delta[2]) / (delta[1] + delta[2]);
        CHECK(share2 >= p.min_share2);
        CHECK(share2 <= p.max_share2);
        // Every transaction was counted on a route: a replica's reads, or a diverted read.
        CHECK(routes[1] + routes[2] + diverted >= n);
    }
    // Writes: pgbench's TPC-B-like script (reads and writes in transactions) never fails,
    // which it would on a replica ("cannot execute UPDATE in a read-only transaction").
    const auto before_primary = c.commits(c.primary());
    c.start("");  // pooled connections were just terminated: a fresh shardgate
    const auto n = processed(c.pgbench(dir, {"-n", "-c", "4", "-j", "2", "-T", "2"}));
    CHECK(c.commits(c.primary()) - before_primary >= n);
    // A volatile user function (from pg_proc) and nextval() make a SELECT a write (reads
    // right after a write go to the primary in session consistency: eventual here).
    c.start("consistency = \"eventual\"\n");
    auto conn = c.connect();
    for (int i = 0; i < 10; ++i) {
        CHECK(server_port(conn.get()) != c.primary().port());
        CHECK(value(conn.get(), "SELECT bump()") == "0");
        CHECK(value(conn.get(), "SELECT nextval('kv_id_seq') > 0") == "t");
        CHECK(value(conn.get(), "/* shardgate: role=primary */ SELECT inet_server_port()") ==
              std::to_string(c.primary().port()));
    }
}

TEST_CASE("a replica paused past max_lag_bytes stops taking reads within a monitor interval") {
    cluster c;
    c.start("load_balance = \"round_robin\"\nmax_lag_bytes = 262144\nmax_lag_ms = 0\n");
    c.replica(0).exec("SELECT pg_wal_replay_pause()");
    // Writes on the primary until replica 1 is max_lag_bytes behind (as measured here).
    std::atomic<bool> writing{true};
    std::thread writer([&] {
        while (writing) {
            c.primary().exec("INSERT INTO kv(v) SELECT g FROM generate_series(1, 2000) g", "app");
            std::this_thread::sleep_for(20ms);
        }
    });
    // One loop on open connections (a few ms a turn): the lag as measured here, and replica
    // 1's state in the admin console.
    auto on_primary = c.primary().connect_superuser("app");
    auto on_replica = c.replica(0).connect_superuser("app");
    auto admin = c.connect("", "shardgate");
    const auto replica1_state = [&] {
        PGresult* r = PQexec(admin.get(), "SHOW REPLICAS");
        std::string state;
        for (int i = 0; i < PQntuples(r); ++i) {
            if (std::string(PQgetvalue(r, i, 3)) == "replica" &&
                std::stoi(PQgetvalue(r, i, 2)) == c.replica(0).port())
                state = PQgetvalue(r, i, 4);
        }
        PQclear(r);
        return state;
    };
    clock_type::time_point passed{};
    clock_type::time_point noticed{};
    for (auto until = clock_type::now() + 20s; clock_type::now() < until;) {
        const auto replay = on_replica.query_value("SELECT pg_last_wal_replay_lsn()");
        const auto lag = std::stoll(
            on_primary.query_value("SELECT pg_current_wal_lsn() - '" + replay + "'::pg_lsn"));
        const auto state = replica1_state();
        const auto now = clock_type::now();
        if (passed == clock_type::time_point{} && lag > 262144) passed = now;
        if (state == "lagging") {
            noticed = now;
            break;
        }
        std::this_thread::sleep_for(2ms);
    }
    REQUIRE(passed != clock_type::time_point{});
    REQUIRE(noticed != clock_type::time_point{});
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(noticed - passed);
    MESSAGE("replica 1 lagging " << took.count()
                                 << " ms after this test saw it pass max_lag_bytes (interval "
                                    "100 ms)");
    // One interval, plus the check's round trip and this loop's turn.
    CHECK(took <= 100ms + 50ms);
    CHECK(replica1_state() == "lagging");
    writing = false;
    writer.join();
    // Replica 2 (never paused) may have lagged for a moment under the writes.
    REQUIRE(c.wait_for_states({"lagging", "fit"}, 5s));
    // No read goes to it now.
    auto conn = c.connect();
    const auto before = c.routed_reads();
    for (int i = 0; i < 200; ++i)
        CHECK(server_port(conn.get()) == c.replica(1).port());
    const auto after = c.routed_reads();
    CHECK(after[1] == before[1]);
    // Resumed: it catches up and takes reads again.
    c.replica(0).exec("SELECT pg_wal_replay_resume()");
    REQUIRE(c.wait_for_states({"fit", "fit"}, 5s));
    int on_first = 0;
    for (int i = 0; i < 100; ++i)
        on_first += server_port(conn.get()) == c.replica(0).port() ? 1 : 0;
    CHECK(on_first >= 30);
}

TEST_CASE("a replica killed under read load: reads go elsewhere") {
    cluster c;
    c.start("load_balance = \"round_robin\"\n");
    std::atomic<bool> running{true};
    std::atomic<long> ok{0};
    std::atomic<long> failed_after{0};
    std::atomic<long> failed_during{0};
    std::atomic<int> phase{0};  // 0 before the kill, 1 while it happens, 2 after
    std::mutex mu;
    std::string first_error;
    std::vector<std::thread> readers;
    for (int t = 0; t < 8; ++t) {
        readers.emplace_back([&] {
            auto conn = c.connect();
            while (running) {
                if (PQstatus(conn.get()) != CONNECTION_OK) conn = c.connect();
                const int ph = phase.load();
                PGresult* r = PQexec(conn.get(), "SELECT count(*) FROM kv");
                const bool good = PQresultStatus(r) == PGRES_TUPLES_OK;
                if (!good) {
                    std::lock_guard lock(mu);
                    if (first_error.empty()) first_error = PQresultErrorMessage(r);
                }
                PQclear(r);
                if (good) {
                    ++ok;
                } else if (ph == 2 && phase.load() == 2) {
                    ++failed_after;
                } else {
                    ++failed_during;
                }
            }
        });
    }
    std::this_thread::sleep_for(1s);
    phase = 1;
    c.replica(0).kill();
    std::this_thread::sleep_for(50ms);
    phase = 2;
    std::this_thread::sleep_for(2s);
    running = false;
    for (auto& t : readers)
        t.join();
    MESSAGE(ok.load() << " reads; failed while the kill happened: " << failed_during.load()
                      << ", after: " << failed_after.load() << "; first error: " << first_error);
    CHECK(ok > 1000);
    // Only queries already running on it (one per client at most) may fail.
    CHECK(failed_during <= 8);
    CHECK(failed_after == 0);
    CHECK(c.replica_states() == std::vector<std::string>{"banned", "fit"});
}

TEST_CASE("read-your-writes: zero stale reads in session consistency, stale ones in eventual") {
    cluster c;
    // The replicas apply commits 30 ms late.
    for (int i = 0; i < 2; ++i) {
        c.replica(i).exec("ALTER SYSTEM SET recovery_min_apply_delay = '30ms'");
        c.replica(i).exec("SELECT pg_reload_conf()");
    }
    for (const std::string mode : {"session", "eventual"}) {
        CAPTURE(mode);
        c.start(std::string("consistency = \"") + mode + "\"\n");
        auto conn = c.connect();
        int stale = 0;
        for (int i = 0; i < 10000; ++i) {
            const auto id = value(conn.get(), "INSERT INTO kv(v) VALUES (1) RETURNING id");
            REQUIRE(id.rfind("ERROR", 0) != 0);
            if (value(conn.get(), "SELECT count(*) FROM kv WHERE id = " + id) != "1") ++stale;
            if (mode == "eventual" && stale >= 100) break;  // shown
        }
        const auto routes = c.routed_reads();
        MESSAGE(mode << ": " << stale << " stale reads; reads routed primary/replicas " << routes[0]
                     << "/" << routes[1] << "/" << routes[2]);
        if (mode == "session")
            CHECK(stale == 0);
        else
            CHECK(stale > 0);
    }
}

TEST_CASE("the primary stopped: writes fail fast, reads keep working; back: writes work") {
    cluster c;
    c.start("");
    auto conn = c.connect();
    CHECK(value(conn.get(), "INSERT INTO kv(v) VALUES (1) RETURNING 'ok'") == "ok");
    c.primary().stop();
    for (int i = 0; i < 5; ++i) {
        const auto t0 = clock_type::now();
        const auto w = value(conn.get(), "INSERT INTO kv(v) VALUES (1) RETURNING 'ok'");
        const auto took = clock_type::now() - t0;
        CAPTURE(w);
        CHECK(w.rfind("ERROR", 0) == 0);
        CHECK(took < 2s);
        CHECK(value(conn.get(), "SELECT count(*) > 0 FROM kv") == "t");
    }
    c.primary().start();
    bool wrote = false;
    for (auto until = clock_type::now() + 10s; clock_type::now() < until && !wrote;) {
        wrote = value(conn.get(), "INSERT INTO kv(v) VALUES (1) RETURNING 'ok'") == "ok";
        if (!wrote) std::this_thread::sleep_for(100ms);
    }
    CHECK(wrote);
    CHECK(value(conn.get(), "SELECT count(*) > 0 FROM kv") == "t");
}

TEST_CASE("causality across connections: shardgate.last_commit_lsn, then SET shardgate.min_lsn") {
    cluster c;
    c.start("consistency = \"session\"\nmax_lag_ms = 60000\n");
    auto writer = c.connect();
    auto reader = c.connect();
    auto careless = c.connect("options='-c shardgate.consistency=eventual'");
    // The replicas stop replaying: a reader that skips replicas behind the writer's commit
    // must read from the primary.
    for (int i = 0; i < 2; ++i)
        c.replica(i).exec("SELECT pg_wal_replay_pause()");
    const auto id = value(writer.get(), "INSERT INTO kv(v) VALUES (7) RETURNING id");
    REQUIRE(id.rfind("ERROR", 0) != 0);
    // The writer learns its commit's LSN within a monitor interval or so (reported before a
    // later ReadyForQuery).
    std::string lsn;
    for (auto until = clock_type::now() + 5s; clock_type::now() < until && lsn.empty();) {
        (void)value(writer.get(), "SELECT 1");
        if (const char* v = PQparameterStatus(writer.get(), "shardgate.last_commit_lsn")) lsn = v;
        if (lsn.empty()) std::this_thread::sleep_for(20ms);
    }
    REQUIRE(!lsn.empty());
    MESSAGE("writer's commit LSN: " << lsn);
    // Without it, a read from a replica misses the row; with it, never.
    CHECK(value(careless.get(), "SELECT count(*) FROM kv WHERE id = " + id) == "0");
    CHECK(ok(reader.get(), "SET shardgate.min_lsn = '" + lsn + "'"));
    for (int i = 0; i < 20; ++i) {
        CHECK(value(reader.get(), "SELECT count(*) FROM kv WHERE id = " + id) == "1");
        CHECK(server_port(reader.get()) == c.primary().port());
    }
    for (int i = 0; i < 2; ++i)
        c.replica(i).exec("SELECT pg_wal_replay_resume()");
    // Once a replica has replayed it, the reader's reads go there again.
    bool on_replica = false;
    for (auto until = clock_type::now() + 5s; clock_type::now() < until && !on_replica;) {
        on_replica = server_port(reader.get()) != c.primary().port();
        if (!on_replica) std::this_thread::sleep_for(50ms);
    }
    CHECK(on_replica);
    CHECK(value(reader.get(), "SELECT count(*) FROM kv WHERE id = " + id) == "1");
}

TEST_CASE("hints and transactions: role comments, SET shardgate.role, READ ONLY, BEGIN") {
    cluster c;
    c.start("consistency = \"eventual\"\n");
    auto conn = c.connect();
    const int primary = c.primary().port();
    CHECK(server_port(conn.get()) != primary);
    CHECK(value(conn.get(), "/* shardgate: role=primary */ SELECT inet_server_port()") ==
          std::to_string(primary));
    CHECK(ok(conn.get(), "SET shardgate.role = 'primary'"));
    CHECK(server_port(conn.get()) == primary);
    CHECK(ok(conn.get(), "RESET shardgate.role"));
    CHECK(server_port(conn.get()) != primary);
    // BEGIN READ ONLY: a replica; BEGIN: the primary; a transaction keeps its server.
    CHECK(ok(conn.get(), "BEGIN READ ONLY"));
    const int ro = server_port(conn.get());
    CHECK(ro != primary);
    CHECK(server_port(conn.get()) == ro);
    CHECK(ok(conn.get(), "COMMIT"));
    CHECK(ok(conn.get(), "BEGIN"));
    CHECK(server_port(conn.get()) == primary);
    CHECK(value(conn.get(), "INSERT INTO kv(v) VALUES (1) RETURNING 'ok'") == "ok");
    CHECK(ok(conn.get(), "COMMIT"));
    // A startup option sends a whole session to the primary.
    auto pinned = c.connect("options='-c shardgate.role=primary'");
    CHECK(server_port(pinned.get()) == primary);
    // Routing stats count it all.
    const auto routes = c.show("ROUTES");
    REQUIRE(routes.size() == 3);
    CHECK(std::stoll(routes[0].at("writes")) >= 1);
}

TEST_CASE("a plain BEGIN waits for the statement that chooses: SET TRANSACTION READ ONLY") {
    cluster c;
    c.start("consistency = \"eventual\"\n");
    auto conn = c.connect();
    const int primary = c.primary().port();
    auto tag = [&](const std::string& sql) {
        PGresult* r = PQexec(conn.get(), sql.c_str());
        std::string out =
            PQresultStatus(r) == PGRES_COMMAND_OK ? PQcmdStatus(r) : PQresultErrorMessage(r);
        PQclear(r);
        return out;
    };
    // Each its own Query, as psycopg, asyncpg and psql send them.
    CHECK(tag("BEGIN") == "BEGIN");
    CHECK(PQtransactionStatus(conn.get()) == PQTRANS_INTRANS);
    CHECK(tag("SET TRANSACTION READ ONLY") == "SET");
    const int ro = server_port(conn.get());
    CHECK(ro != primary);
    CHECK(value(conn.get(), "SELECT current_setting('transaction_read_only')") == "on");
    CHECK(server_port(conn.get()) == ro);
    CHECK(tag("COMMIT") == "COMMIT");
    CHECK(PQtransactionStatus(conn.get()) == PQTRANS_IDLE);
    // SET LOCAL shardgate.role after BEGIN, and START TRANSACTION's own tag.
    CHECK(tag("START TRANSACTION") == "START TRANSACTION");
    CHECK(tag("SET LOCAL shardgate.role = 'replica'") == "SET");
    CHECK(server_port(conn.get()) != primary);
    CHECK(tag("ROLLBACK") == "ROLLBACK");
    // Without a choice, a BEGIN'd transaction runs on the primary: a write in it works and
    // is rolled back with it.
    const auto before = value(conn.get(), "/* shardgate: role=primary */ SELECT count(*) FROM kv");
    CHECK(tag("BEGIN") == "BEGIN");
    CHECK(value(conn.get(), "INSERT INTO kv(v) VALUES (7) RETURNING v") == "7");
    CHECK(server_port(conn.get()) == primary);
    CHECK(tag("ROLLBACK") == "ROLLBACK");
    CHECK(value(conn.get(), "/* shardgate: role=primary */ SELECT count(*) FROM kv") == before);
    // BEGIN, then COMMIT with nothing in between; a bad shardgate.role value is refused
    // without opening anything.
    CHECK(tag("BEGIN") == "BEGIN");
    CHECK(tag("COMMIT") == "COMMIT");
    CHECK(PQtransactionStatus(conn.get()) == PQTRANS_IDLE);
    CHECK(tag("BEGIN") == "BEGIN");
    CHECK(tag("SET LOCAL shardgate.role = 'nowhere'").find("nowhere") != std::string::npos);
    CHECK(tag("ROLLBACK") == "ROLLBACK");
    CHECK(PQtransactionStatus(conn.get()) == PQTRANS_IDLE);
    // Outside a transaction too: 22023, and the session's routing is unchanged.
    PGresult* r = PQexec(conn.get(), "SET shardgate.consistency = 'sometimes'");
    CHECK(std::string(PQresultErrorField(r, PG_DIAG_SQLSTATE)) == "22023");
    CHECK(std::string(PQresultErrorMessage(r)).find("shardgate.consistency") != std::string::npos);
    PQclear(r);
    CHECK(server_port(conn.get()) != primary);
}

TEST_CASE("prepared statements are routed by the statement they were parsed from") {
    cluster c;
    c.start("consistency = \"eventual\"\n");
    auto conn = c.connect();
    const int primary = c.primary().port();
    auto exec_port = [&](const char* name) {
        PGresult* r = PQexecPrepared(conn.get(), name, 0, nullptr, nullptr, nullptr, 0);
        const int port = PQresultStatus(r) == PGRES_TUPLES_OK ? std::stoi(PQgetvalue(r, 0, 0)) : -1;
        if (port < 0) MESSAGE(PQresultErrorMessage(r));
        PQclear(r);
        return port;
    };
    auto prepare = [&](const char* name, const char* sql) {
        PGresult* r = PQprepare(conn.get(), name, sql, 0, nullptr);
        const bool good = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        return good;
    };
    REQUIRE(prepare("port", "SELECT inet_server_port()"));
    REQUIRE(prepare("write", "SELECT inet_server_port() FROM (SELECT bump()) AS x"));
    for (int i = 0; i < 20; ++i) {
        CHECK(exec_port("port") != primary);
        CHECK(exec_port("write") == primary);  // bump() is a volatile user function
    }
    // The same name parsed again with another text is routed by the new text.
    CHECK(ok(conn.get(), "DEALLOCATE port"));
    REQUIRE(prepare("port", "SELECT inet_server_port() FROM (SELECT bump()) AS x"));
    CHECK(exec_port("port") == primary);
}
