// A server connection whose backend got a temporary schema is closed when its client leaves,
// in session and in transaction pooling: the schema outlives DISCARD ALL, so the next client
// would see a backend unlike a new one (current_schema() under search_path = pg_temp names it,
// and PREPARE TRANSACTION fails differently). The next client's view is compared with a new
// direct connection's, statement by statement.
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace std::chrono_literals;

namespace {

using conn_ptr = std::unique_ptr<PGconn, void (*)(PGconn*)>;

struct fixture {
    pg_topology topo;
    std::unique_ptr<shardgate_process> sg;

    explicit fixture(const std::string& mode) : topo(pg_topology::builder().build()) {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        pg().exec(
            "CREATE FUNCTION make_temp() RETURNS int LANGUAGE plpgsql AS $$BEGIN "
            "CREATE TEMP TABLE IF NOT EXISTS made_inside (a int); RETURN 1; END$$",
            "app");
        std::string toml = "[shardgate]\nlisten_port = @PORT@\nworkers = 2\npool_mode = \"" + mode +
                           "\"\npool_size = 1\n";
        toml += "[databases.app]\nport = " + std::to_string(pg().port()) +
                "\nserver_tls = \"disable\"\n[users.alice]\npassword = \"secret\"\n";
        sg = std::make_unique<shardgate_process>(shardgate_options{.config_toml = toml});
    }
    pg_server& pg() { return topo.shard(0).primary(); }
    conn_ptr connect(int port) const {
        const std::string info = "host=127.0.0.1 port=" + std::to_string(port) +
                                 " user=alice password=secret dbname=app sslmode=disable";
        conn_ptr c{PQconnectdb(info.c_str()), PQfinish};
        REQUIRE_MESSAGE(PQstatus(c.get()) == CONNECTION_OK, PQerrorMessage(c.get()));
        return c;
    }
    conn_ptr proxied() const { return connect(sg->port()); }
    conn_ptr direct() { return connect(pg().port()); }
    // Waits until shardgate's one server connection is idle in the pool (a departed client's
    // connection is reset, or closed, after it left).
    bool wait_settled() {
        const auto until = std::chrono::steady_clock::now() + 5s;
        while (std::chrono::steady_clock::now() < until) {
            const auto busy = pg().query_value(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice' AND state <> "
                "'idle'");
            if (busy == "0") return true;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }
    bool wait_gone(const std::string& pid) {
        const auto until = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < until) {
            if (pg().query_value("SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid) == "0")
                return true;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }
};

// "STATUS[:sqlstate][=value]" per statement.
std::vector<std::string> transcript(PGconn* c, const std::vector<std::string>& sqls) {
    std::vector<std::string> out;
    for (const auto& sql : sqls) {
        PGresult* r = PQexec(c, sql.c_str());
        std::string line = sql + " -> " + PQresStatus(PQresultStatus(r));
        if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) line += std::string(":") + s;
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            line += "=" + std::string(PQgetisnull(r, 0, 0) ? "NULL" : PQgetvalue(r, 0, 0));
        PQclear(r);
        out.push_back(line);
    }
    return out;
}

std::string value(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    std::string v = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : PQresultErrorMessage(r);
    PQclear(r);
    return v;
}

// The sequence, and what else shows a backend that has had a temporary schema.
const std::vector<std::string> next_client = {
    "SET search_path TO pg_temp",
    "BEGIN",
    "SELECT current_schema()",
    "PREPARE TRANSACTION 'x'",
    "ROLLBACK",
    "RESET search_path",
    "SELECT pg_my_temp_schema() = 0",
    "SELECT count(*) FROM pg_class WHERE relpersistence = 't'",
};

void check_closed_after(const std::string& mode, const std::vector<std::string>& first_client) {
    fixture f(mode);
    const auto want = transcript(f.direct().get(), next_client);
    std::string first_pid;
    {
        auto a = f.proxied();
        first_pid = value(a.get(), "SELECT pg_backend_pid()");
        for (const auto& sql : first_client) {
            PGresult* r = PQexec(a.get(), sql.c_str());
            CHECK_MESSAGE(PQresultStatus(r) != PGRES_FATAL_ERROR, sql, ": ",
                          PQresultErrorMessage(r));
            PQclear(r);
        }
    }
    REQUIRE(f.wait_settled());
    // The first backend is closed, and gone: a backend that is still exiting is still listed
    // with its temporary tables in pg_class (they are dropped as it exits).
    REQUIRE(f.wait_gone(first_pid));
    auto b = f.proxied();
    CHECK(value(b.get(), "SELECT pg_backend_pid()") != first_pid);  // a new backend
    CHECK(transcript(b.get(), next_client) == want);
}

}  // namespace

TEST_CASE("a backend that got a temporary schema is not handed to the next client") {
    for (const std::string mode : {"session", "transaction"}) {
        CAPTURE(mode);
        SUBCASE("CREATE TEMP TABLE") {
            check_closed_after(mode, {"CREATE TEMP TABLE t (a int)", "INSERT INTO t VALUES (1)"});
        }
        SUBCASE("a plain CREATE TABLE under search_path = pg_temp") {
            check_closed_after(mode, {"SET search_path TO pg_temp", "CREATE TABLE t (a int)"});
        }
        SUBCASE("CREATE TABLE pg_temp.t, dropped again") {
            check_closed_after(mode, {"CREATE TABLE pg_temp.t (a int)", "DROP TABLE pg_temp.t"});
        }
        SUBCASE("DISCARD TEMP before leaving") {
            check_closed_after(mode, {"CREATE TEMP TABLE t (a int)", "DISCARD TEMP"});
        }
    }
}

TEST_CASE("session mode: a temporary table made inside a function is noticed too") {
    // shardgate cannot see it in the SQL; the pool asks the backend when it resets it.
    check_closed_after("session", {"SELECT make_temp()"});
}

TEST_CASE("a backend that never had a temporary schema is reused") {
    for (const std::string mode : {"session", "transaction"}) {
        CAPTURE(mode);
        fixture f(mode);
        std::string first_pid;
        {
            auto a = f.proxied();
            first_pid = value(a.get(), "SELECT pg_backend_pid()");
            // Naming pg_temp without creating anything leaves no schema behind (but
            // current_schema() under search_path = pg_temp would create it).
            CHECK(value(a.get(), "SELECT count(*) FROM pg_temp.pg_class").find("not exist") !=
                  std::string::npos);
            CHECK(value(a.get(), "SET search_path TO pg_temp; SHOW search_path") == "pg_temp");
        }
        REQUIRE(f.wait_settled());
        auto b = f.proxied();
        CHECK(value(b.get(), "SELECT pg_backend_pid()") == first_pid);
        CHECK(value(b.get(), "SHOW search_path") == "\"$user\", public");
    }
}
