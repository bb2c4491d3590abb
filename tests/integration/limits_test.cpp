// Bounded memory (issue 12, item 6): a client that pipelines and does not read its results
// does not make shardgate buffer them (the relay stops reading the server instead, on both
// engines); max_client_memory bounds what all clients' partly received messages hold; a held
// BEGIN followed by endless SET LOCAL shardgate.* fails cleanly instead of growing.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace std::chrono_literals;

namespace {

using conn_ptr = std::unique_ptr<PGconn, void (*)(PGconn*)>;

long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

struct fixture {
    pg_topology topo;
    std::unique_ptr<shardgate_process> sg;

    explicit fixture(const std::string& main_extra, bool tls = false, bool replicas = false,
                     const std::string& users = "[users.alice]\npassword = \"secret\"\n")
        : topo(pg_topology::builder().tls(tls).replicas(replicas ? 1 : 0).build()) {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        std::string toml = "[shardgate]\nlisten_port = @PORT@\nworkers = 2\n" + main_extra;
        if (tls)
            toml += "tls_cert_file = \"" + topo.tls().cert_file.string() + "\"\ntls_key_file = \"" +
                    topo.tls().key_file.string() + "\"\n";
        toml += "[databases.app]\nport = " + std::to_string(topo.shard(0).primary().port()) +
                "\nserver_tls = \"disable\"\n";
        if (replicas) {
            toml += "replicas = [{ host = \"127.0.0.1\", port = " +
                    std::to_string(topo.shard(0).replica(0).port()) + " }]\n";
            topo.wait_for_replicas_streaming();
        }
        toml += users;
        sg = std::make_unique<shardgate_process>(shardgate_options{.config_toml = toml});
    }
    conn_ptr connect(const std::string& extra = "sslmode=disable") const {
        const std::string info = "host=127.0.0.1 port=" + std::to_string(sg->port()) +
                                 " user=alice password=secret dbname=app " + extra;
        conn_ptr c{PQconnectdb(info.c_str()), PQfinish};
        REQUIRE_MESSAGE(PQstatus(c.get()) == CONNECTION_OK, PQerrorMessage(c.get()));
        return c;
    }
};

// 300 queries of 1 MB results each, pipelined and then not read for a while: shardgate's
// resident memory must not follow the 300 MB the server is ready to send.
void pipeline_without_reading(const fixture& f, PGconn* c) {
    const long before = rss_kib(f.sg->pid());
    REQUIRE(PQenterPipelineMode(c) == 1);
    REQUIRE(PQsetnonblocking(c, 1) == 0);
    constexpr int queries = 300;
    const char* sql = "SELECT repeat('x', 1000000)";
    REQUIRE(PQsendPrepare(c, "big", sql, 0, nullptr) == 1);
    for (int i = 0; i < queries; ++i) {
        REQUIRE(PQsendQueryPrepared(c, "big", 0, nullptr, nullptr, nullptr, 0) == 1);
        REQUIRE(PQpipelineSync(c) == 1);
        while (PQflush(c) == 1)
            std::this_thread::sleep_for(1ms);  // the socket is full: shardgate stopped reading
    }
    long peak = rss_kib(f.sg->pid());
    for (int i = 0; i < 30; ++i) {
        std::this_thread::sleep_for(50ms);
        peak = std::max(peak, rss_kib(f.sg->pid()));
    }
    MESSAGE("shardgate VmRSS " << before << " KiB before, at most " << peak
                               << " KiB while 300 MB of results waited for the client");
    if (!sanitized_shardgate()) CHECK(peak - before < 64 * 1024);
    // Then every result arrives, whole.
    REQUIRE(PQsetnonblocking(c, 0) == 0);
    int rows = 0;
    int syncs = 0;
    bool prepared = false;
    while (syncs < queries) {
        PGresult* r = PQgetResult(c);
        if (r == nullptr) continue;
        const auto st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK && !prepared) prepared = true;  // the Parse
        if (st == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 1000000) ++rows;
        if (st == PGRES_PIPELINE_SYNC) ++syncs;
        if (st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED) {
            FAIL_CHECK(PQresultErrorMessage(r));
            PQclear(r);
            break;
        }
        PQclear(r);
    }
    CHECK(rows == queries);
}

std::string be32(std::uint32_t v) {
    const std::uint32_t n = htonl(v);
    return std::string(reinterpret_cast<const char*>(&n), 4);
}

// A logged-in raw socket (trust authentication), or -1.
int raw_login(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
    const std::string params = std::string("user\0alice\0database\0app\0\0", 25);
    const std::string startup =
        be32(static_cast<std::uint32_t>(8 + params.size())) + be32(196608) + params;
    if (::send(fd, startup.data(), startup.size(), 0) != static_cast<ssize_t>(startup.size()))
        return -1;
    // Up to the first ReadyForQuery ('Z', length 5, status).
    std::string got;
    char buf[4096];
    while (got.find(std::string("Z\0\0\0\5", 5)) == std::string::npos) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return -1;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return fd;
}

}  // namespace

TEST_CASE("a client that pipelines Close messages behind a large result: bounded") {
    // shardgate answers a Close of a prepared statement itself; behind a result the client
    // does not read, those answers wait in the session's queue: it must stop reading the
    // client rather than queue them without end (the data plane stops reading a client that
    // does not take its replies).
    fixture f("", false, false, "[users.alice]\nauth = \"trust\"\npassword = \"secret\"\n");
    const int fd = raw_login(f.sg->port());
    REQUIRE(fd >= 0);
    const std::string query = "SELECT repeat('x', 10000) FROM generate_series(1, 5000)";
    const std::string q =
        "Q" + be32(static_cast<std::uint32_t>(4 + query.size() + 1)) + query + std::string(1, '\0');
    REQUIRE(::send(fd, q.data(), q.size(), 0) == static_cast<ssize_t>(q.size()));
    std::string closes;
    const std::string one = "C" + be32(4 + 1 + 5) + "Snope" + std::string(1, '\0');
    for (int i = 0; i < 10000; ++i)
        closes += one;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    const long before = rss_kib(f.sg->pid());
    std::size_t sent = 0;
    const auto until = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < until && sent < 200'000'000) {
        const auto n = ::send(fd, closes.data(), closes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
        } else {
            std::this_thread::sleep_for(1ms);
        }
    }
    const long after = rss_kib(f.sg->pid());
    MESSAGE((sent / one.size()) << " Close messages taken in 3 s; shardgate VmRSS " << before
                                << " -> " << after << " KiB");
    if (!sanitized_shardgate()) CHECK(after - before < 64 * 1024);
    ::close(fd);
}

TEST_CASE("a client that pipelines and does not read: results wait in the server, not here") {
    SUBCASE("data plane (plain TCP)") {
        fixture f("");
        auto c = f.connect();
        pipeline_without_reading(f, c.get());
    }
    SUBCASE("data plane (TLS clients)") {
        fixture f("", true);
        auto c = f.connect("sslmode=require");
        pipeline_without_reading(f, c.get());
    }
}

TEST_CASE("max_client_memory: messages being received by all clients together are bounded") {
    // 4 MiB for all clients; each holds 64 KiB free.
    fixture f("max_client_memory = 4194304\n");
    auto a = f.connect();
    // One 3 MB statement fits, and runs.
    const std::string three_mb = "SELECT length('" + std::string(3'000'000, 'a') + "')";
    PGresult* r = PQexec(a.get(), three_mb.c_str());
    CHECK(std::string(PQgetvalue(r, 0, 0)) == "3000000");
    PQclear(r);
    // A 6 MB one cannot be held: FATAL 53200, as Postgres says when it is out of memory.
    auto b = f.connect();
    const std::string six_mb = "SELECT length('" + std::string(6'000'000, 'b') + "')";
    // The first result carries shardgate's error (PQexec would keep only libpq's own "server
    // closed the connection" that follows it).
    REQUIRE(PQsendQuery(b.get(), six_mb.c_str()) == 1);
    r = PQgetResult(b.get());
    REQUIRE(r != nullptr);
    const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    INFO(std::string(PQresultErrorMessage(r)));
    CHECK(std::string(code ? code : "") == "53200");
    CHECK(std::string(PQresultErrorMessage(r)).find("max_client_memory") != std::string::npos);
    PQclear(r);
    while ((r = PQgetResult(b.get())) != nullptr)
        PQclear(r);
    // The budget was given back: others go on.
    r = PQexec(a.get(), three_mb.c_str());
    INFO(std::string(PQresultErrorMessage(r)));
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    auto admin_like = f.connect();
    r = PQexec(admin_like.get(), "SELECT 1");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
}

TEST_CASE("a held BEGIN then endless SET LOCAL shardgate.role: a clean error, not growth") {
    fixture f("", false, true);
    auto c = f.connect();
    PGresult* r = PQexec(c.get(), "BEGIN");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    std::string error;
    int ok_count = 0;
    for (int i = 0; i < 5000 && error.empty(); ++i) {
        r = PQexec(c.get(), "SET LOCAL shardgate.role = replica");
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            ++ok_count;
        } else {
            const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            error = code ? code : PQresultErrorMessage(r);
        }
        PQclear(r);
    }
    MESSAGE(ok_count << " SET LOCAL statements held, then: " << error);
    CHECK(error == "54000");
    CHECK(ok_count > 100);
    // The transaction failed as Postgres fails one: ROLLBACK ends it, and the session goes on.
    r = PQexec(c.get(), "SELECT 1");
    const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    CHECK(std::string(code != nullptr ? code : "") == "25P02");
    PQclear(r);
    r = PQexec(c.get(), "ROLLBACK");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    r = PQexec(c.get(), "SELECT 41 + 1");
    CHECK(std::string(PQgetvalue(r, 0, 0)) == "42");
    PQclear(r);
}
