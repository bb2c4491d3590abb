// libpq through shardgate, asynchronous side: single-row mode, pipelines, notices, LISTEN/NOTIFY.
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client_fixture.hpp"
#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace client_tests;
using namespace std::chrono_literals;

namespace {}  // namespace

TEST_CASE("single-row mode over 100k rows") {
    fixture f;
    pg_connection c(f.proxy_conninfo());
    PGconn* pc = c.native();
    REQUIRE(PQsendQuery(pc, "SELECT g, md5(g::text) FROM generate_series(1, 100000) g") == 1);
    REQUIRE(PQsetSingleRowMode(pc) == 1);
    long long rows = 0, sum = 0;
    bool order_ok = true, shape_ok = true;
    std::string last_status;
    while (PGresult* r = PQgetResult(pc)) {
        if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
            ++rows;
            const long long g = std::stoll(PQgetvalue(r, 0, 0));
            order_ok = order_ok && g == rows;
            shape_ok = shape_ok && PQntuples(r) == 1 && PQgetlength(r, 0, 1) == 32;
            sum += g;
        } else {
            last_status = describe(r) + " " + PQcmdStatus(r) + " " + std::to_string(PQntuples(r));
        }
        PQclear(r);
    }
    CHECK(rows == 100000);
    CHECK(sum == 100000LL * 100001 / 2);
    CHECK(order_ok);
    CHECK(shape_ok);
    CHECK(last_status == "PGRES_TUPLES_OK SELECT 100000 0");
    CHECK(c.query_value("SELECT 'still usable'") == "still usable");
}

namespace {

// Several queries in one pipeline, the third failing: it aborts the rest up to the Sync.
std::vector<std::string> run_pipeline(PGconn* c) {
    std::vector<std::string> t;
    wrap(PQexec(c, "CREATE TEMP TABLE pl (v int)"));
    REQUIRE(PQenterPipelineMode(c) == 1);
    auto send = [&](const char* sql) {
        CHECK(PQsendQueryParams(c, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1);
    };
    send("INSERT INTO pl VALUES (1)");
    send("SELECT count(*) FROM pl");
    send("SELECT 1 / 0");
    send("INSERT INTO pl VALUES (2)");
    send("SELECT 42");
    CHECK(PQpipelineSync(c) == 1);
    send("INSERT INTO pl VALUES (3)");
    CHECK(PQsendPrepare(c, "pp", "SELECT $1::int * 2", 0, nullptr) == 1);
    const char* v[] = {"21"};
    CHECK(PQsendQueryPrepared(c, "pp", 1, v, nullptr, nullptr, 0) == 1);
    CHECK(PQpipelineSync(c) == 1);
    // Each query: its results then a null; each Sync: PGRES_PIPELINE_SYNC alone.
    for (int i = 0; i < 10; ++i) {
        PGresult* r = PQgetResult(c);
        const bool sync = r != nullptr && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        t.push_back(describe(r));
        PQclear(r);
        if (!sync) t.push_back(describe(PQgetResult(c)));
    }
    CHECK(PQpipelineStatus(c) == PQ_PIPELINE_ON);
    CHECK(PQexitPipelineMode(c) == 1);
    result_ptr left = wrap(PQexec(c, "SELECT array_agg(v ORDER BY v) FROM pl"));
    t.push_back(describe(left.get()));
    return t;
}

}  // namespace

TEST_CASE("pipeline mode: an error aborts the rest up to the sync, the next batch runs") {
    fixture f;
    pg_connection proxy(f.proxy_conninfo());
    pg_connection direct(f.direct_conninfo());
    const std::vector<std::string> expected{"PGRES_COMMAND_OK",
                                            "null",
                                            "PGRES_TUPLES_OK=1",
                                            "null",
                                            "PGRES_FATAL_ERROR:22012",
                                            "null",
                                            "PGRES_PIPELINE_ABORTED",
                                            "null",
                                            "PGRES_PIPELINE_ABORTED",
                                            "null",
                                            "PGRES_PIPELINE_SYNC",
                                            "PGRES_COMMAND_OK",
                                            "null",
                                            "PGRES_COMMAND_OK",
                                            "null",
                                            "PGRES_TUPLES_OK=42",
                                            "null",
                                            "PGRES_PIPELINE_SYNC",
                                            "PGRES_TUPLES_OK={3}"};
    CHECK(run_pipeline(direct.native()) == expected);
    CHECK(run_pipeline(proxy.native()) == expected);
}

TEST_CASE("pipeline mode: a Flush request gets results before any Sync") {
    fixture f;
    pg_connection c(f.proxy_conninfo());
    PGconn* pc = c.native();
    REQUIRE(PQenterPipelineMode(pc) == 1);
    REQUIRE(PQsetnonblocking(pc, 1) == 0);
    REQUIRE(PQsendQueryParams(pc, "SELECT 'flushed'", 0, nullptr, nullptr, nullptr, nullptr, 0) ==
            1);
    REQUIRE(PQsendFlushRequest(pc) == 1);
    // Only Parse/Bind/Describe/Execute/Flush went out: the server must answer without a Sync.
    std::string got;
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (got.empty() && std::chrono::steady_clock::now() < until) {
        REQUIRE(PQflush(pc) >= 0);
        pollfd p{PQsocket(pc), POLLIN, 0};
        ::poll(&p, 1, 100);
        REQUIRE(PQconsumeInput(pc) == 1);
        if (!PQisBusy(pc)) {
            result_ptr r = wrap(PQgetResult(pc));
            got = describe(r.get());
        }
    }
    CHECK(got == "PGRES_TUPLES_OK=flushed");
    REQUIRE(PQsetnonblocking(pc, 0) == 0);
    CHECK(PQgetResult(pc) == nullptr);
    REQUIRE(PQpipelineSync(pc) == 1);
    CHECK(describe(wrap(PQgetResult(pc)).get()) == "PGRES_PIPELINE_SYNC");
    CHECK(PQexitPipelineMode(pc) == 1);
    CHECK(c.query_value("SELECT 'usable'") == "usable");
}

TEST_CASE("a pipeline of 50,000 queries sent before reading: back-pressure, no deadlock") {
    fixture f;
    pg_connection c(f.proxy_conninfo());
    PGconn* pc = c.native();
    // A deadlock would block libpq forever: a watchdog shuts the socket down after 60 s.
    std::mutex m;
    std::condition_variable cv;
    bool done = false, fired = false;
    std::thread watchdog([&] {
        std::unique_lock lock(m);
        if (!cv.wait_for(lock, 60s, [&] { return done; })) {
            fired = true;
            ::shutdown(PQsocket(pc), SHUT_RDWR);
        }
    });
    constexpr int n = 50000;
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(PQenterPipelineMode(pc) == 1);
    bool sent = true;
    for (int i = 0; i < n && sent; ++i) {
        const std::string v = std::to_string(i);
        const char* vals[] = {v.c_str()};
        sent = PQsendQueryParams(pc, "SELECT $1::int, repeat('x', 200)", 1, nullptr, vals, nullptr,
                                 nullptr, 0) == 1;
    }
    CHECK(sent);
    CHECK(PQpipelineSync(pc) == 1);
    int ok = 0, in_order = 0;
    std::string last;
    for (int i = 0; i < n; ++i) {
        PGresult* r = PQgetResult(pc);
        if (r == nullptr) break;
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            ++ok;
            in_order += std::stoi(PQgetvalue(r, 0, 0)) == i ? 1 : 0;
        } else {
            last = describe(r) + " " + PQerrorMessage(pc);
        }
        PQclear(r);
        PQclear(PQgetResult(pc));  // the null after each query's results
        if (!last.empty()) break;
    }
    const std::string sync = describe(wrap(PQgetResult(pc)).get());
    {
        std::lock_guard lock(m);
        done = true;
    }
    cv.notify_one();
    watchdog.join();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    MESSAGE(n << " pipelined queries in " << ms << " ms");
    CHECK_FALSE(fired);
    CHECK(last == "");
    CHECK(ok == n);
    CHECK(in_order == n);
    CHECK(sync == "PGRES_PIPELINE_SYNC");
}

namespace {

struct notice_log {
    std::vector<std::string> messages;  // as the notice processor got them
    std::vector<std::string> fields;    // "severity sqlstate primary" from the notice receiver
};

std::vector<std::string> run_notices(PGconn* c, notice_log& log) {
    PQsetNoticeProcessor(
        c,
        [](void* arg, const char* msg) { static_cast<notice_log*>(arg)->messages.push_back(msg); },
        &log);
    std::vector<std::string> t;
    t.push_back(describe(wrap(PQexec(c,
                                     "DO $$ BEGIN RAISE NOTICE 'hello %', 42; "
                                     "RAISE WARNING 'careful' USING HINT = 'a hint'; END $$"))
                             .get()));
    t.push_back(describe(wrap(PQexec(c,
                                     "CREATE FUNCTION pg_temp.noisy(i int) RETURNS int "
                                     "LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'row %', i; "
                                     "RETURN i; END $$"))
                             .get()));
    result_ptr r = wrap(PQexec(c, "SELECT pg_temp.noisy(g) FROM generate_series(1, 3) g"));
    t.push_back(describe(r.get()) + " rows " + std::to_string(PQntuples(r.get())));
    t.push_back(describe(wrap(PQexec(c, "DROP TABLE IF EXISTS no_such_table")).get()));
    return t;
}

}  // namespace

TEST_CASE("NoticeResponse reaches the notice processor") {
    fixture f;
    pg_connection proxy(f.proxy_conninfo());
    pg_connection direct(f.direct_conninfo());
    notice_log p, d;
    const auto pt = run_notices(proxy.native(), p);
    CHECK(pt == run_notices(direct.native(), d));
    CHECK(pt == std::vector<std::string>{"PGRES_COMMAND_OK", "PGRES_COMMAND_OK",
                                         "PGRES_TUPLES_OK=1 rows 3", "PGRES_COMMAND_OK"});
    CHECK(p.messages == d.messages);
    CHECK(p.messages ==
          std::vector<std::string>{"NOTICE:  hello 42\n", "WARNING:  careful\nHINT:  a hint\n",
                                   "NOTICE:  row 1\n", "NOTICE:  row 2\n", "NOTICE:  row 3\n",
                                   "NOTICE:  table \"no_such_table\" does not exist, skipping\n"});
}

namespace {

// Waits up to `timeout` for one notification on c.
std::unique_ptr<PGnotify, void (*)(void*)> wait_notify(PGconn* c, std::chrono::milliseconds t) {
    const auto until = std::chrono::steady_clock::now() + t;
    for (;;) {
        PQconsumeInput(c);
        if (PGnotify* n = PQnotifies(c)) return {n, PQfreemem};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left <= 0ms) return {nullptr, PQfreemem};
        pollfd p{PQsocket(c), POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(left.count()));
    }
}

}  // namespace

TEST_CASE("LISTEN/NOTIFY between clients through shardgate") {
    fixture f;
    pg_connection listener(f.proxy_conninfo());
    pg_connection sender(f.proxy_conninfo());
    pg_connection direct(f.direct_conninfo());
    listener.exec("LISTEN ch");
    const int sender_pid = std::stoi(sender.query_value("SELECT pg_backend_pid()"));

    sender.exec("NOTIFY ch, 'hello'");
    auto n = wait_notify(listener.native(), 5s);
    REQUIRE(n != nullptr);
    CHECK(std::string(n->relname) == "ch");
    CHECK(std::string(n->extra) == "hello");
    CHECK(n->be_pid == sender_pid);

    // Delivered at commit only.
    sender.exec("BEGIN; NOTIFY ch, 'in a transaction'");
    CHECK(wait_notify(listener.native(), 300ms) == nullptr);
    sender.exec("COMMIT");
    n = wait_notify(listener.native(), 5s);
    REQUIRE(n != nullptr);
    CHECK(std::string(n->extra) == "in a transaction");

    // A big payload, from a client connected to Postgres directly.
    const int direct_pid = std::stoi(direct.query_value("SELECT pg_backend_pid()"));
    direct.exec("SELECT pg_notify('ch', repeat('p', 7000))");
    n = wait_notify(listener.native(), 5s);
    REQUIRE(n != nullptr);
    CHECK(std::string(n->extra) == std::string(7000, 'p'));
    CHECK(n->be_pid == direct_pid);

    // To itself: arrives with the reply to its own command.
    const int own_pid = std::stoi(listener.query_value("SELECT pg_backend_pid()"));
    listener.exec("NOTIFY ch, 'self'");
    PQconsumeInput(listener.native());
    n = {PQnotifies(listener.native()), PQfreemem};
    REQUIRE(n != nullptr);
    CHECK(std::string(n->extra) == "self");
    CHECK(n->be_pid == own_pid);

    // A burst: 1000 notifications committed at once arrive complete and in order.
    sender.exec(
        "BEGIN; SELECT pg_notify('ch', 'burst ' || g) FROM generate_series(1, 1000) g; "
        "COMMIT");
    int burst = 0, burst_in_order = 0;
    while (burst < 1000) {
        n = wait_notify(listener.native(), 5s);
        if (n == nullptr) break;
        ++burst;
        burst_in_order += std::string(n->extra) == "burst " + std::to_string(burst) ? 1 : 0;
    }
    CHECK(burst == 1000);
    CHECK(burst_in_order == 1000);

    listener.exec("UNLISTEN ch");
    sender.exec("NOTIFY ch, 'nobody listens'");
    CHECK(wait_notify(listener.native(), 300ms) == nullptr);
}
