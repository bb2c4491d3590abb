// Session robustness through shardgate: cancel, clients and servers vanishing mid-query,
// oversized messages and garbage, with everyone else unaffected.
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

std::string conn(int port, const std::string& db = "app") {
    return "host=127.0.0.1 port=" + std::to_string(port) +
           " user=alice password=secret dbname=" + db + " sslmode=disable connect_timeout=10";
}

// A topology of `shards` single servers, database app on each, shardgate with app0..appN-1.
struct fixture {
    pg_topology topo;
    std::unique_ptr<shardgate_process> sg;

    explicit fixture(int shards = 1, const std::string& extra_main = "")
        : topo(pg_topology::builder().shards(shards).build()) {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        // Session pooling: one server connection per client, for its whole session.
        std::string toml =
            "[shardgate]\nlisten_port = @PORT@\nworkers = 2\npool_mode = \"session\"\n" +
            extra_main;
        for (int i = 0; i < shards; ++i) {
            toml += "[databases.app" + std::to_string(i) +
                    "]\nport = " + std::to_string(topo.shard(i).primary().port()) +
                    "\ndbname = \"app\"\nserver_tls = \"disable\"\n";
        }
        toml += "[users.alice]\npassword = \"secret\"\n";
        sg = std::make_unique<shardgate_process>(shardgate_options{.config_toml = toml});
    }
    pg_server& pg(int i = 0) { return topo.shard(i).primary(); }
    int sleeping_backends(int i = 0) {
        return std::stoi(pg(i).query_value(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND "
            "state = 'active' AND pid <> pg_backend_pid()"));
    }
    bool wait_for_sleepers(int want, std::chrono::milliseconds timeout, int i = 0) {
        const auto until = clock_type::now() + timeout;
        while (clock_type::now() < until) {
            if (sleeping_backends(i) == want) return true;
            std::this_thread::sleep_for(20ms);
        }
        return sleeping_backends(i) == want;
    }
};

std::string result_sqlstate(PGresult* r) {
    const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s == nullptr ? "" : s;
}

// Sends raw bytes to the port and returns what comes back before the peer closes (bounded).
std::string raw_exchange(int port, const std::string& bytes) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    CHECK(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(bytes.size()));
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

std::string be32(uint32_t v) {
    std::string s(4, '\0');
    s[0] = static_cast<char>(v >> 24);
    s[1] = static_cast<char>(v >> 16);
    s[2] = static_cast<char>(v >> 8);
    s[3] = static_cast<char>(v);
    return s;
}

}  // namespace

TEST_CASE("a cancel of pg_sleep(10) through shardgate returns 57014 within 1 s") {
    fixture f;
    pg_connection c(conn(f.sg->port(), "app0"));
    REQUIRE(PQsendQuery(c.native(), "SELECT pg_sleep(10)") == 1);
    REQUIRE(f.wait_for_sleepers(1, 5s));
    PGcancel* cancel = PQgetCancel(c.native());
    char err[256];
    const auto t0 = clock_type::now();
    REQUIRE(PQcancel(cancel, err, sizeof err) == 1);
    PQfreeCancel(cancel);
    PGresult* r = PQgetResult(c.native());
    const auto elapsed = clock_type::now() - t0;
    REQUIRE(r != nullptr);
    CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR);
    CHECK(result_sqlstate(r) == "57014");
    PQclear(r);
    while ((r = PQgetResult(c.native())) != nullptr)
        PQclear(r);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
    MESSAGE("cancel answered in " << ms << " ms");
    CHECK(ms < 1000);
    // The connection stays usable, as with Postgres.
    CHECK(c.query_value("SELECT 'still here'") == "still here");
}

TEST_CASE("a CancelRequest with an unknown key is dropped silently and cancels nothing") {
    fixture f;
    pg_connection c(conn(f.sg->port(), "app0"));
    REQUIRE(PQsendQuery(c.native(), "SELECT pg_sleep(1.5)") == 1);
    REQUIRE(f.wait_for_sleepers(1, 5s));
    const std::string cancel = be32(16) + be32(80877102) + be32(12345) + be32(67890);
    CHECK(raw_exchange(f.sg->port(), cancel).empty());
    PGresult* r = PQgetResult(c.native());
    REQUIRE(r != nullptr);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    while ((r = PQgetResult(c.native())) != nullptr)
        PQclear(r);
}

TEST_CASE("a client that disconnects mid-query leaves no query running on the server") {
    fixture f;
    for (const bool terminate : {true, false}) {
        CAPTURE(terminate);
        PGconn* c = PQconnectdb(conn(f.sg->port(), "app0").c_str());
        REQUIRE(PQstatus(c) == CONNECTION_OK);
        REQUIRE(PQsendQuery(c, "SELECT pg_sleep(30)") == 1);
        REQUIRE(f.wait_for_sleepers(1, 5s));
        if (terminate) {
            PQfinish(c);  // sends Terminate, then closes
        } else {
            ::shutdown(PQsocket(c), SHUT_RDWR);  // vanishes without a word
            PQfinish(c);
        }
        CHECK(f.wait_for_sleepers(0, 2s));
    }
    pg_connection ok(conn(f.sg->port(), "app0"));
    CHECK(ok.query_value("SELECT 1") == "1");
}

TEST_CASE("a server dying mid-query: ErrorResponse to its client, everyone else unaffected") {
    fixture f(2);
    pg_connection victim(conn(f.sg->port(), "app0"));
    pg_connection bystander(conn(f.sg->port(), "app1"));
    REQUIRE(PQsendQuery(victim.native(), "SELECT pg_sleep(30)") == 1);
    REQUIRE(f.wait_for_sleepers(1, 5s));
    f.pg(0).kill();
    PGresult* r = PQgetResult(victim.native());
    REQUIRE(r != nullptr);
    CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR);
    CHECK(result_sqlstate(r) == "08006");
    CHECK(std::string(PQresultErrorMessage(r)).find("server closed the connection unexpectedly") !=
          std::string::npos);
    PQclear(r);
    while ((r = PQgetResult(victim.native())) != nullptr)
        PQclear(r);
    CHECK(PQstatus(victim.native()) == CONNECTION_BAD);

    CHECK(bystander.query_value("SELECT 'fine'") == "fine");
    pg_connection newcomer(conn(f.sg->port(), "app1"));
    CHECK(newcomer.query_value("SELECT 2") == "2");
    // While shard 0 is down its clients get a clear error; once back, it works again.
    PGconn* down = PQconnectdb(conn(f.sg->port(), "app0").c_str());
    CHECK(PQstatus(down) == CONNECTION_BAD);
    CHECK(std::string(PQerrorMessage(down)).find("could not connect to server") !=
          std::string::npos);
    PQfinish(down);
    f.pg(0).start();
    // The pool retries after its backoff (1 s after the one failed attempt above).
    const auto until = clock_type::now() + 5s;
    PGconn* back = nullptr;
    for (;;) {
        back = PQconnectdb(conn(f.sg->port(), "app0").c_str());
        if (PQstatus(back) == CONNECTION_OK || clock_type::now() > until) break;
        PQfinish(back);
        std::this_thread::sleep_for(100ms);
    }
    REQUIRE(PQstatus(back) == CONNECTION_OK);
    PGresult* three = PQexec(back, "SELECT 3");
    CHECK(std::string(PQgetvalue(three, 0, 0)) == "3");
    PQclear(three);
    PQfinish(back);
}

TEST_CASE("oversized messages and garbage end only the offending session") {
    fixture f(1, "max_message_size = 4096\n");
    pg_connection good(conn(f.sg->port(), "app0"));
    {
        pg_connection big(conn(f.sg->port(), "app0"));
        CHECK(big.query_value("SELECT length(repeat('x', 3000))") == "3000");
        const std::string sql = "SELECT '" + std::string(5000, 'x') + "'";
        // The first result carries shardgate's error (PQexec would keep only libpq's own
        // "server closed the connection" that follows it).
        REQUIRE(PQsendQuery(big.native(), sql.c_str()) == 1);
        PGresult* r = PQgetResult(big.native());
        REQUIRE(r != nullptr);
        CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR);
        CHECK(result_sqlstate(r) == "54000");
        PQclear(r);
        while ((r = PQgetResult(big.native())) != nullptr)
            PQclear(r);
    }
    // A startup packet over Postgres' 10000-byte limit, and random bytes: closed, no reply.
    CHECK(raw_exchange(f.sg->port(), be32(20000) + std::string(100, 'a')).empty());
    CHECK(raw_exchange(f.sg->port(), std::string("\x01\x02garbage", 9)).empty());
    // A major protocol version shardgate (like Postgres) does not speak: a FATAL error.
    const auto reply = raw_exchange(f.sg->port(), be32(8) + be32(2U << 16));
    REQUIRE_FALSE(reply.empty());
    CHECK(reply[0] == 'E');
    CHECK(reply.find("0A000") != std::string::npos);
    CHECK(good.query_value("SELECT 'unaffected'") == "unaffected");
}
