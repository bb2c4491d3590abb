// libpqxx through shardgate: transactions, prepared statements, streams, pipelines, 20 threads.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
// Debian's libpqxx 6.4 was configured without C++17, which leaves its std::optional support (all
// header templates) switched off; NULLs in stream_from need it.
#ifndef PQXX_HAVE_OPTIONAL
#define PQXX_HAVE_OPTIONAL 1
#endif
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "client_fixture.hpp"
#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace client_tests;
using namespace std::chrono_literals;

namespace {

// Runs f, returning "ok" or the SQLSTATE of the pqxx::sql_error it threw.
template <typename F>
std::string outcome(F&& f) {
    try {
        f();
        return "ok";
    } catch (const pqxx::sql_error& e) {
        return e.sqlstate();
    }
}

}  // namespace

TEST_CASE("pqxx::work: commit, abort, errors, a failing commit") {
    fixture f;
    pqxx::connection c(f.proxy_conninfo());
    pqxx::connection direct(f.direct_conninfo());
    {
        pqxx::work w(c);
        w.exec0("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)");
        w.exec0("INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g");
        w.commit();
    }
    {
        pqxx::work w(c);
        w.exec0("UPDATE accounts SET balance = balance - 30 WHERE id = 1");
        w.exec0("UPDATE accounts SET balance = balance + 30 WHERE id = 2");
        CHECK(w.exec1("SELECT balance FROM accounts WHERE id = 1")[0].as<int>() == 70);
        w.commit();
    }
    {
        pqxx::work w(c);
        w.exec0("UPDATE accounts SET balance = 0");
        w.abort();
    }
    {
        pqxx::work w(c);
        w.exec0("DELETE FROM accounts");
    }  // destroyed without commit: rolled back
    {
        pqxx::work w(direct);
        CHECK(w.exec1("SELECT sum(balance) FROM accounts")[0].as<int>() == 1000);
        CHECK(w.exec1("SELECT balance FROM accounts WHERE id = 2")[0].as<int>() == 130);
    }
    {
        pqxx::work w(c);
        CHECK(outcome([&] { w.exec("SELECT 1 / 0"); }) == "22012");
    }
    {  // the server's view: after an error, 25P02 until ROLLBACK
        pqxx::nontransaction n(c);
        n.exec0("BEGIN");
        CHECK(outcome([&] { n.exec("SELECT 1 / 0"); }) == "22012");
        CHECK(outcome([&] { n.exec("INSERT INTO accounts VALUES (1, 1)"); }) == "25P02");
        n.exec0("ROLLBACK");
    }
    {  // a deferred constraint makes COMMIT itself fail
        pqxx::work w(c);
        w.exec0("CREATE TABLE d (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)");
        w.commit();
        pqxx::work w2(c);
        w2.exec0("INSERT INTO d VALUES (1), (1)");
        CHECK(outcome([&] { w2.commit(); }) == "23505");
    }
    pqxx::work w(c);
    CHECK(w.exec1("SELECT count(*) FROM d")[0].as<int>() == 0);
    CHECK(w.exec1("SELECT count(*) FROM accounts")[0].as<int>() == 10);
}

TEST_CASE("prepared statements, nontransaction and subtransactions") {
    fixture f;
    pqxx::connection c(f.proxy_conninfo());
    pqxx::connection direct(f.direct_conninfo());
    pqxx::nontransaction setup(c);
    setup.exec0("CREATE TABLE kv (k int PRIMARY KEY, v text, b bytea)");
    setup.commit();

    c.prepare("ins", "INSERT INTO kv (k, v, b) VALUES ($1, $2, $3)");
    c.prepare("get", "SELECT v, b, length(b) FROM kv WHERE k = $1");
    {
        pqxx::work w(c);
        std::string bytes;
        for (int i = 0; i < 256; ++i)
            bytes += static_cast<char>(i);
        for (int k = 1; k <= 20; ++k)
            w.exec_prepared0("ins", k, "value " + std::to_string(k), pqxx::binarystring(bytes));
        w.exec_prepared0("ins", 21, std::optional<std::string>{}, nullptr);
        const pqxx::row r = w.exec_prepared1("get", 7);
        CHECK(r[0].as<std::string>() == "value 7");
        CHECK(pqxx::binarystring(r[1]).str() == bytes);
        CHECK(r[2].as<int>() == 256);
        const pqxx::row n = w.exec_prepared1("get", 21);
        CHECK(n[0].is_null());
        CHECK(n[1].is_null());
        CHECK(outcome([&] { w.exec_prepared("ins", 1, "dup", nullptr); }) == "23505");
    }  // aborted: nothing inserted
    {
        pqxx::read_transaction r(direct);
        CHECK(r.exec1("SELECT count(*) FROM kv")[0].as<int>() == 0);
    }

    // nontransaction: every statement commits at once; an error does not undo the others.
    pqxx::nontransaction n(c);
    n.exec_prepared0("ins", 1, "one", nullptr);
    CHECK(outcome([&] { n.exec_prepared0("ins", 1, "again", nullptr); }) == "23505");
    n.exec_prepared0("ins", 2, "two", nullptr);
    {
        pqxx::nontransaction d(direct);
        CHECK(d.exec1("SELECT string_agg(v, ',' ORDER BY k) FROM kv")[0].as<std::string>() ==
              "one,two");
    }
    n.commit();
    c.unprepare("ins");
    {
        pqxx::nontransaction n2(c);
        CHECK(outcome([&] { n2.exec("EXECUTE ins(3, 'x', NULL)"); }) == "26000");
        CHECK(n2.exec_params1("SELECT $1::int + $2::int", 40, 2)[0].as<int>() == 42);
    }

    // Subtransactions (savepoints): a failed one leaves the outer transaction usable.
    pqxx::work w(c);
    {
        pqxx::subtransaction s(w, "first");
        s.exec0("INSERT INTO kv (k, v) VALUES (10, 'kept')");
        s.commit();
    }
    {
        pqxx::subtransaction s(w, "second");
        s.exec0("INSERT INTO kv (k, v) VALUES (11, 'undone')");
        CHECK(outcome([&] { s.exec0("INSERT INTO kv (k, v) VALUES (10, 'duplicate')"); }) ==
              "23505");
        s.abort();
    }
    {
        pqxx::subtransaction s(w, "third");
        s.exec0("INSERT INTO kv (k, v) VALUES (12, 'also undone')");
        s.abort();
    }
    w.exec0("INSERT INTO kv (k, v) VALUES (13, 'outer')");
    w.commit();
    pqxx::nontransaction check(direct);
    CHECK(check.exec1("SELECT string_agg(k::text, ',' ORDER BY k) FROM kv")[0].as<std::string>() ==
          "1,2,10,13");
}

TEST_CASE("stream_to and stream_from (COPY) and pqxx::pipeline") {
    fixture f;
    pqxx::connection c(f.proxy_conninfo());
    pqxx::connection direct(f.direct_conninfo());
    using row_t = std::tuple<int, std::optional<std::string>, std::optional<double>>;
    std::vector<row_t> rows;
    for (int i = 1; i <= 20000; ++i) {
        std::optional<std::string> s = "row " + std::to_string(i);
        if (i % 7 == 0) s = "tab\there, back\\slash, new\nline, \xc3\xa9";
        if (i % 11 == 0) s.reset();
        if (i % 13 == 0) s = "";
        std::optional<double> d = i * 0.5;
        if (i % 17 == 0) d.reset();
        rows.emplace_back(i, s, d);
    }
    {
        pqxx::work w(c);
        w.exec0("CREATE TABLE s (id int PRIMARY KEY, name text, x float8)");
        pqxx::stream_to out(w, "s", std::vector<std::string>{"id", "name", "x"});
        for (const auto& r : rows)
            out << r;
        out.complete();
        w.commit();
    }
    // stream_from reads a table (COPY TO STDOUT); ids come in insertion order. The raw lines
    // through shardgate and directly must be the same, and parse back into what was written.
    // (The column-list constructor of 6.4's stream_from leaves m_retry_line uninitialised, so
    // it is not used: table s has exactly the columns of row_t.)
    auto raw_lines = [&](pqxx::connection& conn) {
        pqxx::work w(conn);
        pqxx::stream_from in(w, "s");
        std::vector<std::string> lines;
        std::string line;
        while (in.get_raw_line(line))
            lines.push_back(line);
        in.complete();
        return lines;
    };
    const std::vector<std::string> proxy_lines = raw_lines(c);
    const std::vector<std::string> direct_lines = raw_lines(direct);
    CHECK(proxy_lines.size() == 20000);
    CHECK(direct_lines.size() == 20000);
    for (std::size_t i = 0; i < std::min(proxy_lines.size(), direct_lines.size()); ++i) {
        if (proxy_lines[i] != direct_lines[i]) {
            CHECK_MESSAGE(proxy_lines[i] == direct_lines[i], "first different line: " << i);
            break;
        }
    }
    for (pqxx::connection* conn : {&direct, &c}) {
        const bool via_proxy = conn == &c;
        CAPTURE(via_proxy);
        pqxx::work w(*conn);
        CHECK(w.exec1("SELECT count(*) FROM s")[0].as<int>() == 20000);
        pqxx::stream_from in(w, "s");
        std::vector<row_t> got;
        row_t r;
        std::string error;
        try {
            while (in >> r)
                got.push_back(r);
            in.complete();
        } catch (const std::exception& e) {
            error = std::string(e.what()) + " after " + std::to_string(got.size()) + " rows";
        }
        CHECK(error == "");
        CHECK(got.size() == rows.size());
        CHECK((got == rows));
    }

    // pqxx::pipeline: many queries in flight, results retrieved in order or by id.
    auto run_pipeline = [](pqxx::connection& conn) {
        std::vector<std::string> t;
        pqxx::work w(conn);
        pqxx::pipeline p(w);
        std::vector<pqxx::pipeline::query_id> ids;
        for (int i = 0; i < 50; ++i)
            ids.push_back(p.insert("SELECT " + std::to_string(i) + " * 2, 'x'"));
        const auto count_id = p.insert("SELECT count(*) FROM s WHERE x IS NULL");
        p.complete();
        int sum = 0;
        for (auto id : ids)
            sum += p.retrieve(id)[0][0].as<int>();
        t.push_back(std::to_string(sum));
        t.push_back(p.retrieve(count_id)[0][0].as<std::string>());
        p.insert("SELECT 'a'");
        const auto fails = p.insert("SELECT 1 / 0");
        p.insert("SELECT 'after the error'");
        while (!p.empty()) {
            try {
                auto [id, res] = p.retrieve();
                t.push_back(std::to_string(id == fails) + ":" + res[0][0].as<std::string>());
            } catch (const pqxx::sql_error& e) {
                t.push_back(std::string("error ") + e.sqlstate());
                break;
            }
        }
        return t;
    };
    const auto via_proxy = run_pipeline(c);
    CHECK(via_proxy == run_pipeline(direct));
    REQUIRE(via_proxy.size() >= 3);
    CHECK(via_proxy[0] == "2450");
    CHECK(via_proxy[1] == std::to_string(20000 / 17));
    CHECK(via_proxy[2] == "0:a");
    pqxx::work w(c);
    CHECK(w.exec1("SELECT 'usable'")[0].as<std::string>() == "usable");
}

TEST_CASE("20 threads, each with its own connection, 200 transactions each") {
    fixture f;
    {
        pqxx::connection c(f.proxy_conninfo());
        pqxx::work w(c);
        w.exec0("CREATE TABLE conc (thread int, seq int, val text, PRIMARY KEY (thread, seq))");
        w.exec0("CREATE TABLE counters (thread int PRIMARY KEY, n int NOT NULL)");
        w.exec0("INSERT INTO counters SELECT g, 0 FROM generate_series(0, 19) g");
        w.commit();
    }
    constexpr int threads = 20, txns = 200;
    std::vector<std::string> errors(threads);
    std::vector<int> committed(threads, 0);
    std::atomic<int> ready{0};
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            try {
                pqxx::connection c(f.proxy_conninfo());
                c.prepare("ins", "INSERT INTO conc VALUES ($1, $2, $3)");
                c.prepare("bump", "UPDATE counters SET n = n + 1 WHERE thread = $1 RETURNING n");
                c.prepare("get", "SELECT val FROM conc WHERE thread = $1 AND seq = $2");
                ++ready;
                while (ready.load() < threads)
                    std::this_thread::yield();
                for (int i = 0; i < txns; ++i) {
                    const std::string val = "t" + std::to_string(t) + "-" + std::to_string(i);
                    pqxx::work w(c);
                    w.exec_prepared0("ins", t, i, val);
                    const int n = w.exec_prepared1("bump", t)[0].as<int>();
                    const auto back = w.exec_prepared1("get", t, i)[0].as<std::string>();
                    if (n != committed[t] + 1 || back != val) {
                        errors[t] = "txn " + std::to_string(i) + ": counter " + std::to_string(n) +
                                    ", read back " + back;
                        return;
                    }
                    if (i % 10 == 9) {
                        w.abort();
                    } else {
                        w.commit();
                        ++committed[t];
                    }
                }
                pqxx::read_transaction r(c);
                const auto row = r.exec_params1(
                    "SELECT count(*), (SELECT n FROM counters WHERE thread = $1) "
                    "FROM conc WHERE thread = $1",
                    t);
                if (row[0].as<int>() != committed[t] || row[1].as<int>() != committed[t])
                    errors[t] = "final count " + row[0].as<std::string>() + ", counter " +
                                row[1].as<std::string>();
            } catch (const std::exception& e) {
                errors[t] = e.what();
            }
        });
    }
    for (auto& th : pool)
        th.join();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    MESSAGE((threads * txns) << " transactions on " << threads << " connections in " << ms
                             << " ms");
    for (int t = 0; t < threads; ++t) {
        CAPTURE(t);
        CHECK(errors[t] == "");
        CHECK(committed[t] == txns - txns / 10);
    }
    CHECK(f.pg().query_value("SELECT count(*) FROM conc", "app") ==
          std::to_string(threads * (txns - txns / 10)));
    CHECK(f.pg().query_value("SELECT sum(n) FROM counters", "app") ==
          std::to_string(threads * (txns - txns / 10)));
}
