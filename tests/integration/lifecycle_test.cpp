// Process lifecycle with a real Postgres: the health endpoints (/health/live, /health/ready and
// their bounds), and graceful shutdown: readiness drops before the listener closes, open
// transactions finish after SIGTERM (session and transaction pooling), and shardgate exits once
// the last client leaves; after SIGINT idle clients are closed at once and the others as soon as
// their transaction ends.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

using conn_ptr = std::unique_ptr<PGconn, void (*)(PGconn*)>;

long long ms_since(clock_type::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count();
}

struct fixture {
    pg_topology topo;
    std::unique_ptr<shardgate_process> sg;

    // `extra` is TOML for [shardgate].
    explicit fixture(const std::string& extra)
        : topo(pg_topology::builder().max_connections(250).build()) {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        std::string toml =
            "[shardgate]\nlisten_port = @PORT@\nhttp_port = @HTTP_PORT@\nworkers = 2\n" + extra;
        toml += "[databases.app]\nport = " + std::to_string(pg().port()) +
                "\nserver_tls = \"disable\"\n[users.alice]\npassword = \"secret\"\n";
        sg = std::make_unique<shardgate_process>(shardgate_options{.config_toml = toml});
    }
    pg_server& pg() { return topo.shard(0).primary(); }
    conn_ptr connect() const {
        const std::string info = "host=127.0.0.1 port=" + std::to_string(sg->port()) +
                                 " user=alice password=secret dbname=app sslmode=disable "
                                 "connect_timeout=10";
        return {PQconnectdb(info.c_str()), PQfinish};
    }
};

bool ok(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const auto st = PQresultStatus(r);
    PQclear(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

// A loopback TCP socket connected to `port` with 10 s send/receive timeouts; -1 on failure.
int tcp_connect(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool send_all(int fd, const std::string& bytes) {
    for (std::size_t off = 0; off < bytes.size();) {
        const auto n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<std::size_t>(n);
    }
    return true;
}

// Everything the peer sends until it closes (or resets, or 10 s pass).
std::string read_to_end(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return out;
        out.append(buf, static_cast<std::size_t>(n));
    }
}

// Sends `request` raw on a new connection and returns the whole reply ("" when refused).
std::string http_raw(int port, const std::string& request) {
    const int fd = tcp_connect(port);
    if (fd < 0) return "";
    send_all(fd, request);
    std::string reply = read_to_end(fd);
    ::close(fd);
    return reply;
}

struct http_response {
    int status = -1;  // -1: no response
    std::string body;
};

http_response http_get(int port, const std::string& path, const std::string& method = "GET") {
    const std::string reply = http_raw(
        port, method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    http_response r;
    if (reply.rfind("HTTP/1.1 ", 0) != 0 || reply.size() < 12) return r;
    r.status = std::stoi(reply.substr(9, 3));
    const auto end = reply.find("\r\n\r\n");
    if (end != std::string::npos) r.body = reply.substr(end + 4);
    return r;
}

// Polls until /health/ready has `status`; the elapsed ms, or -1 after `timeout`.
long long wait_ready_status(int port, int status, std::chrono::milliseconds timeout) {
    const auto t0 = clock_type::now();
    while (clock_type::now() - t0 < timeout) {
        if (http_get(port, "/health/ready").status == status) return ms_since(t0);
        std::this_thread::sleep_for(10ms);
    }
    return -1;
}

}  // namespace

TEST_CASE("/health/live and /health/ready answer 200 while running; anything else 404") {
    fixture f("");
    REQUIRE(f.sg->http_port() > 0);
    CHECK(f.sg->http_port() != f.sg->port());
    const int hp = f.sg->http_port();
    const auto live = http_get(hp, "/health/live");
    CHECK(live.status == 200);
    CHECK(live.body == "live\n");
    const auto ready = http_get(hp, "/health/ready");
    CHECK(ready.status == 200);
    CHECK(ready.body == "ready\n");
    CHECK(http_get(hp, "/health/ready?verbose=1").status == 200);  // query string ignored
    const auto head = http_raw(hp, "HEAD /health/ready HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(head.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(head.find("Content-Length: 6\r\n") != std::string::npos);
    CHECK(head.substr(head.size() - 4) == "\r\n\r\n");  // no body
    CHECK(http_get(hp, "/").status == 404);
    CHECK(http_get(hp, "/health").status == 404);
    CHECK(http_get(hp, "/health/live", "POST").status == 404);
    // Keep-alive with two pipelined requests, the second one asking to close.
    const auto two = http_raw(hp,
                              "GET /health/live HTTP/1.1\r\nHost: a\r\n\r\n"
                              "GET /health/ready HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    CHECK(two.find("HTTP/1.1 200") == 0);
    CHECK(two.find("HTTP/1.1 200", 1) != std::string::npos);
    CHECK(two.find("live\n") != std::string::npos);
    CHECK(two.find("ready\n") != std::string::npos);
    // The proxy itself works alongside.
    auto c = f.connect();
    REQUIRE(PQstatus(c.get()) == CONNECTION_OK);
    CHECK(ok(c.get(), "SELECT 1"));
    CHECK(f.sg->log_tail(100).find("health endpoints on http://127.0.0.1:" + std::to_string(hp)) !=
          std::string::npos);
}

TEST_CASE("the HTTP server is bounded: request size, slow requests, connection count") {
    fixture f("");
    const int hp = f.sg->http_port();
    // Just under 8 KiB of header is served; over 8 KiB the connection is closed unanswered.
    const std::string req = "GET /health/live HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Pad: ";
    CHECK(http_raw(hp, req + std::string(7000, 'a') + "\r\n\r\n").rfind("HTTP/1.1 200", 0) == 0);
    CHECK(http_raw(hp, req + std::string(9000, 'a') + "\r\n\r\n").empty());
    // A request that never completes is closed after 5 s.
    {
        const int fd = tcp_connect(hp);
        REQUIRE(fd >= 0);
        CHECK(send_all(fd, "GET /health/live HTTP/1.1\r\nHost: a\r\n"));
        const auto t0 = clock_type::now();
        CHECK(read_to_end(fd).empty());
        const auto waited = ms_since(t0);
        ::close(fd);
        MESSAGE("incomplete request closed after " << waited << " ms");
        CHECK(waited >= 4500);
        CHECK(waited < 9000);
    }
    // 64 connections at once; the 65th is closed at once, and service resumes after.
    std::vector<int> idle;
    for (int i = 0; i < 64; ++i) {
        idle.push_back(tcp_connect(hp));
        REQUIRE(idle.back() >= 0);
    }
    std::this_thread::sleep_for(300ms);  // all accepted
    const auto t0 = clock_type::now();
    CHECK(http_get(hp, "/health/live").status == -1);
    CHECK(ms_since(t0) < 2000);
    for (int fd : idle)
        ::close(fd);
    CHECK(wait_ready_status(hp, 200, 3s) >= 0);
}

TEST_CASE("SIGTERM during 100 open transactions: every COMMIT succeeds, then a clean exit") {
    std::string mode;
    SUBCASE("session pooling") {
        mode = "session";
    }
    SUBCASE("transaction pooling") {
        mode = "transaction";
    }
    CAPTURE(mode);
    fixture f(
        "pool_size = 110\nshutdown_ready_delay_ms = 500\nshutdown_timeout_ms = 20000\n"
        "pool_mode = \"" +
        mode + "\"\n");
    {
        auto setup = f.connect();
        REQUIRE(PQstatus(setup.get()) == CONNECTION_OK);
        REQUIRE(ok(setup.get(), "CREATE TABLE items(id int PRIMARY KEY, backend int)"));
    }
    std::vector<conn_ptr> clients;
    const auto t_open = clock_type::now();
    for (int i = 0; i < 100; ++i) {
        clients.push_back(f.connect());
        REQUIRE_MESSAGE(PQstatus(clients.back().get()) == CONNECTION_OK,
                        PQerrorMessage(clients.back().get()));
        REQUIRE(ok(clients.back().get(), "BEGIN"));
        REQUIRE(ok(clients.back().get(),
                   "INSERT INTO items VALUES (" + std::to_string(i) + ", pg_backend_pid())"));
    }
    MESSAGE("100 clients in open transactions after " << ms_since(t_open) << " ms");
    // pool_size 110: each open transaction has its own server connection.
    CHECK(f.pg().query_value("SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice' AND "
                             "state = 'idle in transaction'") == "100");

    const auto t_term = clock_type::now();
    f.sg->send_signal(SIGTERM);
    CHECK(wait_ready_status(f.sg->http_port(), 503, 2s) >= 0);
    // Past the ready delay the listener is closed, yet shardgate waits for its clients.
    const auto until = t_term + 1500ms;
    while (clock_type::now() < until && port_accepts(f.sg->port()))
        std::this_thread::sleep_for(20ms);
    CHECK_FALSE(port_accepts(f.sg->port()));
    std::this_thread::sleep_for(300ms);
    REQUIRE(f.sg->running());

    int committed = 0;
    for (auto& c : clients) {
        PGresult* r = PQexec(c.get(), "COMMIT");
        const bool good = PQresultStatus(r) == PGRES_COMMAND_OK &&
                          std::string(PQcmdStatus(r)) == "COMMIT" &&
                          PQtransactionStatus(c.get()) == PQTRANS_IDLE;
        if (!good) MESSAGE("COMMIT failed: " << PQerrorMessage(c.get()));
        committed += good ? 1 : 0;
        PQclear(r);
    }
    CHECK(committed == 100);
    CHECK(f.sg->running());  // clients are still connected
    const auto t_last = clock_type::now();
    clients.clear();  // every client disconnects
    const auto code = f.sg->wait_for_exit(10s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    MESSAGE("exited " << ms_since(t_last) << " ms after the last client left, " << ms_since(t_term)
                      << " ms after SIGTERM");
    CHECK(ms_since(t_last) < 5000);
    CHECK(f.pg().query_value("SELECT count(*) FROM items", "app") == "100");
    CHECK(f.pg().query_value("SELECT count(DISTINCT backend) FROM items", "app") == "100");
}

TEST_CASE("after SIGTERM, readiness is false while the listener still accepts for the delay") {
    fixture f("shutdown_ready_delay_ms = 3000\nshutdown_timeout_ms = 20000\n");
    const int hp = f.sg->http_port();
    REQUIRE(http_get(hp, "/health/ready").status == 200);
    auto held = f.connect();  // keeps shardgate draining after the listener closes
    REQUIRE(PQstatus(held.get()) == CONNECTION_OK);

    const auto t_term = clock_type::now();
    f.sg->send_signal(SIGTERM);
    const auto not_ready_after = wait_ready_status(hp, 503, 2s);
    REQUIRE(not_ready_after >= 0);
    MESSAGE("/health/ready said 503 " << not_ready_after << " ms after SIGTERM");
    CHECK(http_get(hp, "/health/ready").body == "not ready\n");
    CHECK(http_get(hp, "/health/live").status == 200);
    // Still within the delay: a new client logs in and works.
    auto late = f.connect();
    CHECK_MESSAGE(PQstatus(late.get()) == CONNECTION_OK, PQerrorMessage(late.get()));
    CHECK(ok(late.get(), "SELECT 1"));
    CHECK(ms_since(t_term) < 3000);  // the checks above ran inside the delay
    late.reset();

    // After the delay, new connections are refused.
    while (ms_since(t_term) < 10000 && port_accepts(f.sg->port()))
        std::this_thread::sleep_for(20ms);
    const auto closed_after = ms_since(t_term);
    MESSAGE("listener closed " << closed_after << " ms after SIGTERM");
    CHECK(closed_after >= 3000);
    CHECK(closed_after < 6000);
    auto refused = f.connect();
    CHECK(PQstatus(refused.get()) == CONNECTION_BAD);
    // Draining: the held client still works, the health endpoints still answer.
    CHECK(http_get(hp, "/health/ready").status == 503);
    CHECK(http_get(hp, "/health/live").status == 200);
    CHECK(ok(held.get(), "SELECT 1"));
    held.reset();
    const auto code = f.sg->wait_for_exit(10s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
}

TEST_CASE("a second stop signal during the ready delay exits at once") {
    fixture f("shutdown_ready_delay_ms = 10000\nshutdown_timeout_ms = 20000\n");
    auto held = f.connect();
    REQUIRE(PQstatus(held.get()) == CONNECTION_OK);
    f.sg->send_signal(SIGTERM);
    REQUIRE(wait_ready_status(f.sg->http_port(), 503, 2s) >= 0);
    const auto t0 = clock_type::now();
    f.sg->send_signal(SIGINT);
    const auto code = f.sg->wait_for_exit(5s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK(ms_since(t0) < 3000);
}

// Runs `sql` and returns the error message ("" if it succeeded).
std::string error_of(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const auto st = PQresultStatus(r);
    std::string msg = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? "" : PQerrorMessage(c);
    if (msg.empty() && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) msg = "failed";
    PQclear(r);
    return msg;
}

TEST_CASE("SIGINT closes idle clients at once and the others when their transaction ends") {
    std::string mode;
    SUBCASE("session pooling") {
        mode = "session";
    }
    SUBCASE("transaction pooling") {
        mode = "transaction";
    }
    CAPTURE(mode);
    fixture f(
        "pool_size = 30\nshutdown_ready_delay_ms = 200\nshutdown_timeout_ms = 20000\n"
        "pool_mode = \"" +
        mode + "\"\n");
    {
        auto setup = f.connect();
        REQUIRE(PQstatus(setup.get()) == CONNECTION_OK);
        REQUIRE(ok(setup.get(), "CREATE TABLE items(id int PRIMARY KEY)"));
    }
    std::vector<std::string> notices_of(5);  // declared first: outlives the connections
    std::vector<conn_ptr> idle;
    std::vector<conn_ptr> busy;
    for (int i = 0; i < 10; ++i) {
        idle.push_back(f.connect());
        REQUIRE(PQstatus(idle.back().get()) == CONNECTION_OK);
        REQUIRE(ok(idle.back().get(), "SELECT 1"));
    }
    for (int i = 0; i < 5; ++i) {
        busy.push_back(f.connect());
        REQUIRE(PQstatus(busy.back().get()) == CONNECTION_OK);
        REQUIRE(ok(busy.back().get(), "BEGIN"));
        REQUIRE(ok(busy.back().get(), "INSERT INTO items VALUES (" + std::to_string(i) + ")"));
    }

    const auto t_int = clock_type::now();
    f.sg->send_signal(SIGINT);
    CHECK(wait_ready_status(f.sg->http_port(), 503, 2s) >= 0);
    const auto until = t_int + 1500ms;
    while (clock_type::now() < until && port_accepts(f.sg->port()))
        std::this_thread::sleep_for(20ms);
    CHECK_FALSE(port_accepts(f.sg->port()));
    std::this_thread::sleep_for(300ms);

    // Idle clients were told why and closed: their next statement fails.
    int told = 0;
    for (auto& c : idle) {
        const auto err = error_of(c.get(), "SELECT 1");
        CHECK_FALSE(err.empty());
        if (err.find("terminating connection due to administrator command") != std::string::npos)
            ++told;
        CHECK(PQstatus(c.get()) == CONNECTION_BAD);
    }
    CHECK(told == 10);
    MESSAGE("idle clients closed within " << ms_since(t_int) << " ms of SIGINT");

    // Clients in a transaction finish it; then they are closed too.
    REQUIRE(f.sg->running());
    int committed = 0;
    for (int i = 0; i < 5; ++i) {
        PGconn* c = busy[static_cast<std::size_t>(i)].get();
        CHECK(ok(c, "INSERT INTO items VALUES (" + std::to_string(100 + i) + ")"));
        // The FATAL may arrive with COMMIT's reply; libpq then reports it as a notice.
        std::string& notices = notices_of[static_cast<std::size_t>(i)];
        PQsetNoticeProcessor(
            c, [](void* arg, const char* m) { *static_cast<std::string*>(arg) += m; }, &notices);
        committed += ok(c, "COMMIT") ? 1 : 0;
        const auto err = error_of(c, "SELECT 1") + notices;
        CHECK_MESSAGE(
            err.find("terminating connection due to administrator command") != std::string::npos,
            "client " << i << ": " << err);
    }
    CHECK(committed == 5);
    const auto code = f.sg->wait_for_exit(10s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    MESSAGE("exited " << ms_since(t_int) << " ms after SIGINT");
    CHECK(f.pg().query_value("SELECT count(*) FROM items", "app") == "10");
}
