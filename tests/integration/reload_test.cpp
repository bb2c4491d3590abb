// SIGHUP reloads the configuration without dropping clients: new pool sizes apply at once, a new
// database is served, a removed one drains (its clients keep working, new ones are refused),
// and a broken file changes nothing.
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

using conn_ptr = std::unique_ptr<PGconn, void (*)(PGconn*)>;

struct fixture {
    pg_topology topo;
    std::unique_ptr<shardgate_process> sg;

    fixture() : topo(pg_topology::builder().build()) {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        topo.create_database("other", "alice");
        sg = std::make_unique<shardgate_process>(shardgate_options{.config_toml = toml(1, false)});
    }
    std::string toml(int pool_size, bool with_other, const std::string& app_name = "app") {
        std::string t =
            "[shardgate]\nlisten_port = @PORT@\nworkers = 2\npool_mode = \"session\"\n"
            "pool_size = " +
            std::to_string(pool_size) + "\ncheckout_timeout_ms = 500\n";
        const auto port = std::to_string(topo.shard(0).primary().port());
        t += "[databases." + app_name + "]\nport = " + port +
             "\ndbname = \"app\"\nserver_tls = \"disable\"\n";
        if (with_other) t += "[databases.other]\nport = " + port + "\nserver_tls = \"disable\"\n";
        t += "[users.alice]\npassword = \"secret\"\n";
        return t;
    }
    conn_ptr connect(const std::string& db = "app") const {
        const std::string info = "host=127.0.0.1 port=" + std::to_string(sg->port()) +
                                 " user=alice password=secret sslmode=disable connect_timeout=10 "
                                 "dbname=" +
                                 db;
        return {PQconnectdb(info.c_str()), PQfinish};
    }
    // Reload outcomes logged so far.
    int reloads() const {
        const auto log = sg->log_tail(100000);
        int n = 0;
        for (const char* what : {"configuration reloaded", "reload failed"}) {
            for (auto at = log.find(what); at != std::string::npos; at = log.find(what, at + 1))
                ++n;
        }
        return n;
    }
    void reload_and_wait(const std::string& t) {
        const int before = reloads();
        sg->write_config(t);
        sg->reload();
        const auto until = clock_type::now() + 5s;
        while (clock_type::now() < until && reloads() == before)
            std::this_thread::sleep_for(20ms);
    }
};

std::string value(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                          ? std::string(PQgetvalue(r, 0, 0))
                          : std::string("ERROR: ") + PQresultErrorMessage(r);
    PQclear(r);
    return out;
}

}  // namespace

TEST_CASE("SIGHUP: bigger pool at once, new database served, clients never dropped") {
    fixture f;
    auto a = f.connect();
    REQUIRE(PQstatus(a.get()) == CONNECTION_OK);
    {
        auto b = f.connect();  // pool_size 1, session mode: waits, then times out
        CHECK(PQstatus(b.get()) == CONNECTION_BAD);
    }
    auto gone = f.connect("other");
    CHECK(PQstatus(gone.get()) == CONNECTION_BAD);  // not configured yet

    f.reload_and_wait(f.toml(3, true));
    CHECK(f.sg->log_tail(20).find("configuration reloaded") != std::string::npos);
    CHECK(value(a.get(), "SELECT 1") == "1");  // the connected client never noticed
    auto b = f.connect();
    auto c = f.connect();
    CHECK(PQstatus(b.get()) == CONNECTION_OK);  // pool_size 3 applies to the running pool
    CHECK(PQstatus(c.get()) == CONNECTION_OK);
    auto o = f.connect("other");
    REQUIRE(PQstatus(o.get()) == CONNECTION_OK);
    CHECK(value(o.get(), "SELECT current_database()") == "other");
}

TEST_CASE("SIGHUP: a removed database drains; a broken file changes nothing") {
    fixture f;
    f.reload_and_wait(f.toml(2, true));
    auto o = f.connect("other");
    REQUIRE(PQstatus(o.get()) == CONNECTION_OK);
    f.reload_and_wait(f.toml(2, false));
    CHECK(value(o.get(), "SELECT 'still here'") == "still here");  // its client keeps working
    auto o2 = f.connect("other");
    CHECK(PQstatus(o2.get()) == CONNECTION_BAD);
    CHECK(std::string(PQerrorMessage(o2.get())).find("does not exist") != std::string::npos);

    f.reload_and_wait("[shardgate]\nlisten_port = @PORT@\npool_size = \"many\"\n");
    CHECK(f.sg->log_tail(20).find("reload failed") != std::string::npos);
    CHECK(f.sg->running());
    auto a = f.connect();
    CHECK(PQstatus(a.get()) == CONNECTION_OK);  // the old configuration still serves
    CHECK(value(a.get(), "SELECT 2") == "2");
}
