// The admin console (database "shardgate") with a real Postgres behind shardgate, driven by
// psql and libpq: SHOW POOLS counts while a client holds a connection, SHOW CONFIG, access for
// admin_users / stats_users / others, unknown commands as 42601 errors that leave the session
// usable, PAUSE waiting for an open transaction and holding new queries until RESUME, RELOAD.
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

using conn_ptr = std::unique_ptr<PGconn, void (*)(PGconn*)>;

std::string config_for(int pg_port, const std::string& extra) {
    return "[shardgate]\nlisten_port = @PORT@\nworkers = 2\npool_mode = \"transaction\"\n"
           "pool_size = 2\nadmin_users = [\"alice\"]\nstats_users = [\"bob\"]\n" +
           extra + "[databases.app]\nport = " + std::to_string(pg_port) +
           "\nserver_tls = \"disable\"\n[users.alice]\npassword = \"secret\"\n"
           "[users.bob]\npassword = \"bobpw\"\n[users.carol]\npassword = \"carolpw\"\n";
}

struct fixture {
    pg_topology topo;
    std::unique_ptr<shardgate_process> sg;
    work_dir files{"shardgate-admin"};

    explicit fixture(const std::string& extra = "") : topo(pg_topology::builder().build()) {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        pg().exec(
            "CREATE TABLE counter(id int PRIMARY KEY, n bigint NOT NULL); "
            "INSERT INTO counter VALUES (1, 0); GRANT ALL ON counter TO alice",
            "app");
        sg = std::make_unique<shardgate_process>(
            shardgate_options{.config_toml = config_for(pg().port(), extra)});
    }
    pg_server& pg() { return topo.shard(0).primary(); }
    conn_ptr connect(const std::string& db = "app", const std::string& user = "alice",
                     const std::string& password = "secret") const {
        const std::string info = "host=127.0.0.1 port=" + std::to_string(sg->port()) +
                                 " user=" + user + " password=" + password + " dbname=" + db +
                                 " sslmode=disable connect_timeout=10";
        return {PQconnectdb(info.c_str()), PQfinish};
    }
    conn_ptr admin(const std::string& user = "alice", const std::string& password = "secret") {
        return connect("shardgate", user, password);
    }
    int server_conns() {
        return std::stoi(
            pg().query_value("SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice' AND "
                             "datname = 'app' AND pid <> pg_backend_pid()"));
    }
    // psql with a clean environment (no PG* variables, ~/.pgpass or psqlrc).
    command_result psql(const std::string& user, const std::string& password,
                        const std::vector<std::string>& args) {
        std::vector<std::string> cmd{"env",
                                     "-i",
                                     "PATH=/usr/bin:/bin",
                                     "LC_ALL=C",
                                     "HOME=" + files.path().string(),
                                     "PGPASSFILE=" + (files.path() / "no-pgpass").string(),
                                     "PGSYSCONFDIR=" + files.path().string(),
                                     "PGPASSWORD=" + password,
                                     "PGCONNECT_TIMEOUT=10",
                                     (pg_bindir() / "psql").string(),
                                     "-X",
                                     "-A",
                                     "-F",
                                     "|",
                                     "host=127.0.0.1 port=" + std::to_string(sg->port()) +
                                         " dbname=shardgate sslmode=disable user=" + user};
        cmd.insert(cmd.end(), args.begin(), args.end());
        return run_command(cmd, {.timeout = 60s, .cwd = files.path()});
    }
};

struct result {
    std::string status;  // PGRES_... and ":SQLSTATE" on errors
    std::string message;
    std::vector<std::map<std::string, std::string>> rows;  // column name -> value
};

result run(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    result out;
    out.status = PQresStatus(PQresultStatus(r));
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) out.status += std::string(":") + s;
    out.message = PQresultErrorMessage(r);
    for (int i = 0; i < PQntuples(r); ++i) {
        std::map<std::string, std::string> row;
        for (int j = 0; j < PQnfields(r); ++j)
            row[PQfname(r, j)] = PQgetisnull(r, i, j) ? "NULL" : PQgetvalue(r, i, j);
        out.rows.push_back(std::move(row));
    }
    PQclear(r);
    return out;
}

std::map<std::string, std::string> pool_row(PGconn* admin, const std::string& db,
                                            const std::string& user) {
    for (auto& row : run(admin, "SHOW POOLS").rows)
        if (row["database"] == db && row["user"] == user) return row;
    return {};
}

std::string value(PGconn* c, const std::string& sql) {
    auto r = run(c, sql);
    if (r.rows.empty() || r.rows[0].empty()) return "ERROR: " + r.message;
    return r.rows[0].begin()->second;
}

// Polls `pred` for up to `limit`.
template <class F>
bool eventually(F pred, std::chrono::milliseconds limit = 5s) {
    const auto until = clock_type::now() + limit;
    while (clock_type::now() < until) {
        if (pred()) return true;
        std::this_thread::sleep_for(20ms);
    }
    return pred();
}

}  // namespace

TEST_CASE("SHOW POOLS counts a client that holds a server connection") {
    fixture f;
    auto a = f.connect();
    auto b = f.connect();
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    auto admin = f.admin();
    REQUIRE_MESSAGE(PQstatus(admin.get()) == CONNECTION_OK, PQerrorMessage(admin.get()));
    // The greeting carries fixed parameters, as PgBouncer's console does.
    CHECK(std::string(PQparameterStatus(admin.get(), "client_encoding")) == "UTF8");
    CHECK(std::string(PQparameterStatus(admin.get(), "standard_conforming_strings")) == "on");
    CHECK(std::string(PQparameterStatus(admin.get(), "server_version")).find("shardgate") !=
          std::string::npos);
    CHECK(PQbackendPID(admin.get()) != 0);

    CHECK(run(a.get(), "BEGIN").status == "PGRES_COMMAND_OK");
    CHECK(value(a.get(), "SELECT n FROM counter WHERE id = 1") == "0");
    auto row = pool_row(admin.get(), "app", "alice");
    REQUIRE_FALSE(row.empty());
    CHECK(row["cl_active"] == "2");  // both clients are logged in; none waits
    CHECK(row["cl_waiting"] == "0");
    CHECK(row["sv_active"] == "1");  // A's transaction holds one
    CHECK(row["sv_idle"] == "0");
    CHECK(row["sv_login"] == "0");
    CHECK(row["maxwait"] == "0");
    CHECK(row["pool_mode"] == "transaction");
    CHECK(run(a.get(), "COMMIT").status == "PGRES_COMMAND_OK");
    // The connection goes back once the client has its ReadyForQuery, so the console may
    // look a moment before it does: wait for it to be counted idle.
    CHECK(eventually([&] {
        row = pool_row(admin.get(), "app", "alice");
        return row["sv_active"] == "0" && row["sv_idle"] != "0";
    }));
    CHECK(row["sv_active"] == "0");
    CHECK(row["sv_idle"] != "0");  // back in the pool (the two logins may have opened two)
    b.reset();
    CHECK(eventually([&] { return pool_row(admin.get(), "app", "alice")["cl_active"] == "1"; }));

    // psql itself: a table with PgBouncer's column names.
    auto p = f.psql("alice", "secret", {"-c", "SHOW POOLS"});
    CHECK_MESSAGE(p.exit_code == 0, p.output);
    CHECK(p.output.find("database|user|cl_active|cl_waiting|cl_active_cancel_req|"
                        "cl_waiting_cancel_req|sv_active|sv_active_cancel|sv_being_canceled|"
                        "sv_idle|sv_used|sv_tested|sv_login|maxwait|maxwait_us|pool_mode|"
                        "load_balance_hosts") != std::string::npos);
    // cl_active 1, nothing waiting, nothing in use.
    CHECK(p.output.find("\napp|alice|1|0|0|0|0|0|0|") != std::string::npos);
    CHECK(p.output.find("|0|0|transaction|\n") != std::string::npos);
    CHECK(p.output.find("(1 row)") != std::string::npos);
}

TEST_CASE("SHOW CONFIG, DATABASES, VERSION and HELP through psql") {
    fixture f("checkout_timeout_ms = 7000\n");
    auto p = f.psql(
        "alice", "secret",
        {"-c", "SHOW CONFIG", "-c", "show databases;", "-c", "Show Version", "-c", "SHOW HELP"});
    CHECK_MESSAGE(p.exit_code == 0, p.output);
    const auto& o = p.output;
    CHECK(o.find("key|value|default|changeable") != std::string::npos);
    CHECK(o.find("pool_mode|transaction|transaction|yes") != std::string::npos);
    CHECK(o.find("pool_size|2|20|yes") != std::string::npos);
    CHECK(o.find("checkout_timeout_ms|7000|120000|yes") != std::string::npos);
    CHECK(o.find("listen_port|" + std::to_string(f.sg->port()) + "|6432|no") != std::string::npos);
    CHECK(o.find("admin_users|alice||yes") != std::string::npos);
    CHECK(o.find("replica_check_interval_ms|250|250|yes") != std::string::npos);
    CHECK(o.find("function_catalog_refresh_ms|60000|60000|yes") != std::string::npos);
    CHECK(o.find("name|host|port|database|force_user|pool_size|min_pool_size|reserve_pool|"
                 "server_lifetime|pool_mode|") != std::string::npos);
    CHECK(o.find("app|127.0.0.1|" + std::to_string(f.pg().port()) +
                 "|app||2|0|0|3600|transaction|") != std::string::npos);
    CHECK(o.find("shardgate 0.") != std::string::npos);
    CHECK(o.find("Console usage") != std::string::npos);  // the NOTICE, on stderr
    CHECK(o.find("PAUSE [<db>]") != std::string::npos);
}

TEST_CASE("admin_users may do everything, stats_users only SHOW, others nothing") {
    fixture f;
    auto bob = f.admin("bob", "bobpw");
    REQUIRE_MESSAGE(PQstatus(bob.get()) == CONNECTION_OK, PQerrorMessage(bob.get()));
    CHECK(run(bob.get(), "SHOW POOLS").status == "PGRES_TUPLES_OK");
    auto r = run(bob.get(), "PAUSE");
    CHECK(r.status == "PGRES_FATAL_ERROR:42501");
    CHECK(r.message.find("admin access needed") != std::string::npos);
    CHECK(run(bob.get(), "RELOAD").status == "PGRES_FATAL_ERROR:42501");
    CHECK(run(bob.get(), "SHOW VERSION").status == "PGRES_TUPLES_OK");

    // A user who is neither: authenticated, then refused with FATAL 42501.
    auto carol = f.admin("carol", "carolpw");
    CHECK(PQstatus(carol.get()) == CONNECTION_BAD);
    const std::string err = PQerrorMessage(carol.get());
    CHECK_MESSAGE(err.find("not allowed") != std::string::npos, err);
    auto p = f.psql("carol", "carolpw", {"-c", "SHOW POOLS"});
    CHECK(p.exit_code == 2);
    CHECK_MESSAGE(p.output.find("FATAL:  not allowed: user \"carol\" may not use the admin "
                                "console") != std::string::npos,
                  p.output);
    // A wrong password is refused as for any database.
    auto wrong = f.admin("alice", "nope");
    CHECK(PQstatus(wrong.get()) == CONNECTION_BAD);
    CHECK(std::string(PQerrorMessage(wrong.get())).find("password authentication failed") !=
          std::string::npos);
}

TEST_CASE("unknown commands are 42601 errors and the session goes on") {
    fixture f;
    auto admin = f.admin();
    REQUIRE(PQstatus(admin.get()) == CONNECTION_OK);
    auto r = run(admin.get(), "SELECT 1");
    CHECK(r.status == "PGRES_FATAL_ERROR:42601");
    CHECK(r.message.find("invalid command \"SELECT 1\"") != std::string::npos);
    CHECK(run(admin.get(), "SHOW CLIENTZ").status == "PGRES_FATAL_ERROR:42601");
    CHECK(run(admin.get(), "show version;").rows.size() == 1);
    CHECK(run(admin.get(), "").status == "PGRES_EMPTY_QUERY");
    // Several statements in one Query: results up to the first error.
    CHECK(run(admin.get(), "SHOW VERSION; BOGUS; SHOW POOLS").status == "PGRES_FATAL_ERROR:42601");
    // The extended protocol is refused with a clear error, and the session stays usable.
    PGresult* pr =
        PQexecParams(admin.get(), "SHOW POOLS", 0, nullptr, nullptr, nullptr, nullptr, 0);
    CHECK(PQresultStatus(pr) == PGRES_FATAL_ERROR);
    CHECK(std::string(PQresultErrorField(pr, PG_DIAG_SQLSTATE)) == "0A000");
    CHECK(std::string(PQresultErrorMessage(pr)).find("simple query protocol") != std::string::npos);
    PQclear(pr);
    CHECK(PQstatus(admin.get()) == CONNECTION_OK);
    CHECK(value(admin.get(), "SHOW VERSION").find("shardgate") == 0);

    // psql goes on after the error, as against Postgres.
    auto p = f.psql("alice", "secret", {"-c", "FROB", "-c", "SHOW VERSION"});
    CHECK(p.output.find("ERROR:  invalid command \"FROB\"") != std::string::npos);
    CHECK(p.output.find("HINT:  SHOW HELP lists the console's commands.") != std::string::npos);
    CHECK_MESSAGE(p.output.find("shardgate 0.") != std::string::npos, p.output);
}

TEST_CASE("PAUSE waits for an open transaction; paused queries run after RESUME") {
    fixture f("checkout_timeout_ms = 30000\n");
    auto a = f.connect();
    auto b = f.connect();
    REQUIRE(PQstatus(b.get()) == CONNECTION_OK);
    auto admin = f.admin();
    REQUIRE(PQstatus(admin.get()) == CONNECTION_OK);
    CHECK(value(b.get(), "SELECT 1") == "1");  // an idle connection in the pool

    CHECK(run(a.get(), "BEGIN").status == "PGRES_COMMAND_OK");
    CHECK(run(a.get(), "UPDATE counter SET n = n + 1 WHERE id = 1").status == "PGRES_COMMAND_OK");
    std::atomic<bool> paused{false};
    std::string pause_status;
    clock_type::time_point paused_at;
    std::thread pauser([&] {
        pause_status = run(admin.get(), "PAUSE").status;
        paused_at = clock_type::now();
        paused = true;
    });
    std::this_thread::sleep_for(400ms);
    CHECK_FALSE(paused.load());  // A is inside a transaction
    // New queries from other clients wait while paused.
    std::atomic<bool> b_done{false};
    std::string b_value;
    std::thread tb([&] {
        b_value = value(b.get(), "SELECT n FROM counter WHERE id = 1");
        b_done = true;
    });
    // A finishes its transaction on the connection it holds.
    CHECK(value(a.get(), "SELECT n FROM counter WHERE id = 1") == "1");
    const auto committed_at = clock_type::now();
    CHECK(run(a.get(), "COMMIT").status == "PGRES_COMMAND_OK");
    pauser.join();
    CHECK(pause_status == "PGRES_COMMAND_OK");
    CHECK(paused_at >= committed_at);
    // Paused: no server connection left open, B waits (its wait shows in SHOW POOLS).
    CHECK(eventually([&] { return f.server_conns() == 0; }));
    std::this_thread::sleep_for(300ms);
    CHECK_FALSE(b_done.load());
    auto admin2 = f.admin();
    auto row = pool_row(admin2.get(), "app", "alice");
    CHECK(row["cl_waiting"] == "1");
    CHECK(row["sv_active"] == "0");
    CHECK(row["sv_idle"] == "0");
    auto dbs = run(admin2.get(), "SHOW DATABASES");
    REQUIRE(dbs.rows.size() == 1);
    CHECK(dbs.rows[0]["paused"] == "1");
    // A itself waits for its next transaction too; RESUME lets both through.
    CHECK(run(admin2.get(), "RESUME").status == "PGRES_COMMAND_OK");
    tb.join();
    CHECK(b_value == "1");
    CHECK(value(a.get(), "SELECT 2") == "2");
    CHECK(run(admin2.get(), "SHOW DATABASES").rows[0]["paused"] == "0");
}

TEST_CASE("PAUSE of one database, unknown databases, and PAUSE that cannot finish") {
    fixture f("shutdown_timeout_ms = 600\n");
    auto admin = f.admin();
    REQUIRE(PQstatus(admin.get()) == CONNECTION_OK);
    auto r = run(admin.get(), "PAUSE nosuch");
    CHECK(r.status == "PGRES_FATAL_ERROR:3D000");
    CHECK(r.message.find("no such database: nosuch") != std::string::npos);
    CHECK(run(admin.get(), "PAUSE app").status == "PGRES_COMMAND_OK");
    CHECK(run(admin.get(), "SHOW DATABASES").rows[0]["paused"] == "1");
    CHECK(run(admin.get(), "RESUME app").status == "PGRES_COMMAND_OK");

    // A transaction that stays open: PAUSE gives up after shutdown_timeout, pools stay paused.
    auto a = f.connect();
    CHECK(run(a.get(), "BEGIN").status == "PGRES_COMMAND_OK");
    CHECK(value(a.get(), "SELECT 1") == "1");
    const auto t0 = clock_type::now();
    r = run(admin.get(), "PAUSE");
    CHECK(clock_type::now() - t0 >= 550ms);
    CHECK(r.status == "PGRES_FATAL_ERROR:55006");
    CHECK(r.message.find("1 server connections of all databases are still in use") !=
          std::string::npos);
    CHECK(run(admin.get(), "RESUME app").status == "PGRES_FATAL_ERROR:55000");  // all paused
    CHECK(run(admin.get(), "RESUME").status == "PGRES_COMMAND_OK");
    CHECK(run(a.get(), "COMMIT").status == "PGRES_COMMAND_OK");
    CHECK(value(a.get(), "SELECT 3") == "3");
}

TEST_CASE("RELOAD answers: applied, or the error, and the console goes on") {
    fixture f;
    auto admin = f.admin();
    REQUIRE(PQstatus(admin.get()) == CONNECTION_OK);
    auto r = run(admin.get(), "RELOAD");
    if (r.status != "PGRES_COMMAND_OK") {
        // Without a reload hook (a build without configuration reload).
        CHECK(r.message.find("RELOAD is not available") != std::string::npos);
        return;
    }
    // A changed file is applied: SHOW CONFIG shows the new value.
    f.sg->write_config(config_for(f.pg().port(), "checkout_timeout_ms = 4321\n"));
    CHECK(run(admin.get(), "RELOAD").status == "PGRES_COMMAND_OK");
    bool found = false;
    for (auto& row : run(admin.get(), "SHOW CONFIG").rows)
        if (row["key"] == "checkout_timeout_ms") found = row["value"] == "4321";
    CHECK(found);
    // A broken file: an ERROR that says why, and the running configuration stays.
    f.sg->write_config("[shardgate]\nlisten_port = @PORT@\nbogus_key = 1\n");
    r = run(admin.get(), "RELOAD");
    CHECK(r.status.rfind("PGRES_FATAL_ERROR", 0) == 0);
    CHECK_MESSAGE(r.message.find("bogus_key") != std::string::npos, r.message);
    CHECK(value(admin.get(), "SHOW VERSION").find("shardgate") == 0);
    auto c = f.connect();
    CHECK(value(c.get(), "SELECT 5") == "5");
}
