// libpq in-process through shardgate: typed parameters, prepared statements, PQfn, status.
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "client_fixture.hpp"
#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace client_tests;
using namespace std::chrono_literals;

namespace {

// Drains the results of one command: the transcript of every result up to the null.
std::string drain(PGconn* c) {
    std::string s;
    while (PGresult* r = PQgetResult(c)) {
        s += (s.empty() ? "" : ",") + describe(r);
        PQclear(r);
    }
    return s;
}

std::string be(std::uint64_t v, int bytes) {
    std::string s(static_cast<std::size_t>(bytes), '\0');
    for (int i = bytes - 1; i >= 0; --i, v >>= 8)
        s[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    return s;
}

std::uint64_t from_be(const char* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

// A binary int4[] value (array_send layout), NULL elements as std::nullopt.
std::string int4_array(const std::vector<std::optional<std::int32_t>>& elems) {
    bool has_null = false;
    for (const auto& e : elems)
        has_null = has_null || !e;
    std::string s = be(1, 4) + be(has_null ? 1 : 0, 4) + be(23, 4) + be(elems.size(), 4) + be(1, 4);
    for (const auto& e : elems)
        s += e ? be(4, 4) + be(static_cast<std::uint32_t>(*e), 4) : be(0xffffffff, 4);
    return s;
}

// Every field of every row: "NULL" or its bytes.
std::vector<std::string> cells(const PGresult* r) {
    std::vector<std::string> out;
    for (int row = 0; row < PQntuples(r); ++row)
        for (int col = 0; col < PQnfields(r); ++col)
            out.push_back(PQgetisnull(r, row, col)
                              ? "NULL"
                              : std::string(PQgetvalue(r, row, col), PQgetlength(r, row, col)));
    return out;
}

const char* const typed_query =
    "SELECT $1::int4 + 1, $2::int8 * 2, $3::float8 / 2, $4::numeric + 1, upper($5::text), "
    "$6::bytea, length($6::bytea), $7::timestamptz + interval '1 day', $8::int4[], "
    "array_length($8::int4[], 1), $9::text IS NULL, NULL::int4, ARRAY['a', NULL, 'c']::text[], "
    "'{1.5,2.25}'::float8[], '-0.000012345'::numeric, 'NaN'::numeric, $10::numeric * 2";

// Runs typed_query with binary and text parameters; result_format 1 = binary results.
result_ptr exec_typed(PGconn* c, int result_format) {
    std::string bytes;
    for (int i = 0; i < 256; ++i)
        bytes += static_cast<char>(i);
    double f = 2.5;
    std::uint64_t fbits;
    std::memcpy(&fbits, &f, sizeof f);
    const std::vector<std::string> values{
        be(41, 4), be(std::uint64_t{1} << 40, 8), be(fbits, 8), "12345678901234567890.123", "hello",
        bytes, be(757382400000000, 8),  // 2024-01-01 00:00:00 UTC in microseconds since 2000-01-01
        int4_array({1, std::nullopt, 3}), "",
        // numeric_send of 12345.678: ndigits 3, weight 1, sign +, dscale 3, base-10000 digits
        be(3, 2) + be(1, 2) + be(0, 2) + be(3, 2) + be(1, 2) + be(2345, 2) + be(6780, 2)};
    const Oid types[] = {23, 20, 701, 1700, 25, 17, 1184, 1007, 25, 1700};
    const int formats[] = {1, 1, 1, 0, 0, 1, 1, 1, 0, 1};
    const char* ptrs[10];
    int lengths[10];
    for (std::size_t i = 0; i < values.size(); ++i) {
        ptrs[i] = values[i].data();
        lengths[i] = static_cast<int>(values[i].size());
    }
    ptrs[8] = nullptr;  // SQL NULL
    lengths[8] = 0;
    return wrap(PQexecParams(c, typed_query, 10, types, ptrs, lengths, formats, result_format));
}

}  // namespace

TEST_CASE("PQexecParams: text and binary parameters and results of many types") {
    fixture f;
    pg_connection proxy(f.proxy_conninfo());
    pg_connection direct(f.direct_conninfo());
    for (PGconn* c : {proxy.native(), direct.native()})
        wrap(PQexec(c, "SET TimeZone = 'UTC'"));

    for (int format : {1, 0}) {
        CAPTURE(format);
        result_ptr p = exec_typed(proxy.native(), format);
        result_ptr d = exec_typed(direct.native(), format);
        REQUIRE(PQresultStatus(d.get()) == PGRES_TUPLES_OK);
        INFO(PQresultErrorMessage(p.get()));
        REQUIRE(PQresultStatus(p.get()) == PGRES_TUPLES_OK);
        CHECK(PQnfields(p.get()) == 17);
        CHECK(cells(p.get()) == cells(d.get()));
        for (int col = 0; col < PQnfields(p.get()); ++col) {
            CHECK(PQftype(p.get(), col) == PQftype(d.get(), col));
            CHECK(PQfformat(p.get(), col) == format);
        }
        CHECK(PQgetisnull(p.get(), 0, 11) == 1);
    }

    result_ptr b = exec_typed(proxy.native(), 1);
    const PGresult* r = b.get();
    REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
    CHECK(from_be(PQgetvalue(r, 0, 0), 4) == 42);
    CHECK(from_be(PQgetvalue(r, 0, 1), 8) == (std::uint64_t{1} << 41));
    const std::uint64_t fbits = from_be(PQgetvalue(r, 0, 2), 8);
    double half;
    std::memcpy(&half, &fbits, sizeof half);
    CHECK(half == 1.25);
    CHECK(std::string(PQgetvalue(r, 0, 4)) == "HELLO");
    REQUIRE(PQgetlength(r, 0, 5) == 256);
    for (int i = 0; i < 256; ++i)
        CHECK(static_cast<unsigned char>(PQgetvalue(r, 0, 5)[i]) == i);
    CHECK(from_be(PQgetvalue(r, 0, 6), 4) == 256);
    CHECK(from_be(PQgetvalue(r, 0, 7), 8) == 757382400000000 + 86400000000);
    CHECK(std::string(PQgetvalue(r, 0, 8), PQgetlength(r, 0, 8)) ==
          int4_array({1, std::nullopt, 3}));
    CHECK(from_be(PQgetvalue(r, 0, 9), 4) == 3);
    CHECK(PQgetvalue(r, 0, 10)[0] == 1);                               // bool true
    CHECK(std::string(PQgetvalue(r, 0, 16), PQgetlength(r, 0, 16)) ==  // 24691.356
          be(3, 2) + be(1, 2) + be(0, 2) + be(3, 2) + be(2, 2) + be(4691, 2) + be(3560, 2));

    result_ptr t = exec_typed(proxy.native(), 0);
    CHECK(cells(t.get()) ==
          std::vector<std::string>{"42", "2199023255552", "1.25", "12345678901234567891.123",
                                   "HELLO", cells(t.get())[5], "256", "2024-01-02 00:00:00+00",
                                   "{1,NULL,3}", "3", "t", "NULL", "{a,NULL,c}", "{1.5,2.25}",
                                   "-0.000012345", "NaN", "24691.356"});
    CHECK(cells(t.get())[5].substr(0, 10) == "\\x00010203");
}

TEST_CASE("PQprepare, PQexecPrepared, PQdescribePrepared and PQdescribePortal") {
    fixture f;
    pg_connection c(f.proxy_conninfo());
    PGconn* pc = c.native();
    c.exec("CREATE TEMP TABLE kv (k int PRIMARY KEY, v text)");

    const Oid ins_types[] = {23, 25};
    CHECK(describe(
              wrap(PQprepare(pc, "ins", "INSERT INTO kv VALUES ($1, $2) RETURNING k", 2, ins_types))
                  .get()) == "PGRES_COMMAND_OK");
    result_ptr d = wrap(PQdescribePrepared(pc, "ins"));
    REQUIRE(PQresultStatus(d.get()) == PGRES_COMMAND_OK);
    CHECK(PQnparams(d.get()) == 2);
    CHECK(PQparamtype(d.get(), 0) == 23);
    CHECK(PQparamtype(d.get(), 1) == 25);
    CHECK(PQnfields(d.get()) == 1);
    CHECK(std::string(PQfname(d.get(), 0)) == "k");
    CHECK(PQftype(d.get(), 0) == 23);

    for (int k = 1; k <= 5; ++k) {
        const std::string ks = std::to_string(k), vs = "value " + ks;
        const char* vals[] = {ks.c_str(), vs.c_str()};
        result_ptr r = wrap(PQexecPrepared(pc, "ins", 2, vals, nullptr, nullptr, 0));
        CHECK(describe(r.get()) == "PGRES_TUPLES_OK=" + ks);
        CHECK(std::string(PQcmdStatus(r.get())) == "INSERT 0 1");
    }

    // Parameter types inferred by the server; binary results.
    CHECK(describe(
              wrap(PQprepare(pc, "sel", "SELECT k, v FROM kv WHERE k >= $1 ORDER BY k", 0, nullptr))
                  .get()) == "PGRES_COMMAND_OK");
    d = wrap(PQdescribePrepared(pc, "sel"));
    CHECK(PQnparams(d.get()) == 1);
    CHECK(PQparamtype(d.get(), 0) == 23);
    CHECK(PQnfields(d.get()) == 2);
    CHECK(std::string(PQfname(d.get(), 1)) == "v");
    const std::string three = be(3, 4);
    const char* vals[] = {three.data()};
    const int lens[] = {4}, fmts[] = {1};
    result_ptr rows = wrap(PQexecPrepared(pc, "sel", 1, vals, lens, fmts, 1));
    REQUIRE(PQresultStatus(rows.get()) == PGRES_TUPLES_OK);
    CHECK(PQntuples(rows.get()) == 3);
    CHECK(from_be(PQgetvalue(rows.get(), 2, 0), 4) == 5);
    CHECK(std::string(PQgetvalue(rows.get(), 2, 1)) == "value 5");

    // The unnamed statement, then errors that leave the connection usable.
    CHECK(describe(wrap(PQprepare(pc, "", "SELECT $1::text || '!'", 0, nullptr)).get()) ==
          "PGRES_COMMAND_OK");
    const char* hi[] = {"hi"};
    CHECK(describe(wrap(PQexecPrepared(pc, "", 1, hi, nullptr, nullptr, 0)).get()) ==
          "PGRES_TUPLES_OK=hi!");
    CHECK(describe(wrap(PQprepare(pc, "ins", "SELECT 1", 0, nullptr)).get()) ==
          "PGRES_FATAL_ERROR:42P05");
    CHECK(describe(wrap(PQprepare(pc, "bad", "SELEC 1", 0, nullptr)).get()) ==
          "PGRES_FATAL_ERROR:42601");
    CHECK(describe(wrap(PQdescribePrepared(pc, "nope")).get()) == "PGRES_FATAL_ERROR:26000");
    const char* dup[] = {"1", "again"};
    CHECK(describe(wrap(PQexecPrepared(pc, "ins", 2, dup, nullptr, nullptr, 0)).get()) ==
          "PGRES_FATAL_ERROR:23505");
    c.exec("DEALLOCATE ins");
    CHECK(describe(wrap(PQexecPrepared(pc, "ins", 2, dup, nullptr, nullptr, 0)).get()) ==
          "PGRES_FATAL_ERROR:26000");

    // A named portal: a cursor declared in a transaction.
    c.exec("BEGIN");
    c.exec("DECLARE cur CURSOR FOR SELECT k, v, now() AS at FROM kv ORDER BY k");
    result_ptr portal = wrap(PQdescribePortal(pc, "cur"));
    REQUIRE(PQresultStatus(portal.get()) == PGRES_COMMAND_OK);
    CHECK(PQnfields(portal.get()) == 3);
    CHECK(std::string(PQfname(portal.get(), 2)) == "at");
    CHECK(PQftype(portal.get(), 0) == 23);
    CHECK(PQftype(portal.get(), 1) == 25);
    CHECK(PQftype(portal.get(), 2) == 1184);
    CHECK(c.query("FETCH 2 FROM cur").size() == 2);
    CHECK(c.query_value("FETCH 1 FROM cur") == "3");
    CHECK(describe(wrap(PQdescribePortal(pc, "no_portal")).get()) == "PGRES_FATAL_ERROR:34000");
    CHECK(PQtransactionStatus(pc) == PQTRANS_INERROR);
    c.exec("ROLLBACK");
    CHECK(c.query_value("SELECT count(*) FROM kv") == "5");
}

TEST_CASE("PQfn calls int4pl by OID; empty queries; parameter status is forwarded") {
    fixture f;
    pg_connection c(f.proxy_conninfo());
    pg_connection direct(f.direct_conninfo());
    PGconn* pc = c.native();

    SUBCASE("FunctionCall") {
        auto fn = [&](const std::string& name, PQArgBlock* args, int nargs, int* out) {
            const Oid oid =
                static_cast<Oid>(std::stoul(c.query_value("SELECT '" + name + "'::regproc::oid")));
            int len = 0;
            return wrap(PQfn(pc, oid, out, &len, 1, args, nargs));
        };
        PQArgBlock args[2];
        args[0].len = 4;
        args[0].isint = 1;
        args[0].u.integer = 40;
        args[1] = args[0];
        args[1].u.integer = 2;
        int sum = 0;
        CHECK(describe(fn("int4pl", args, 2, &sum).get()) == "PGRES_COMMAND_OK");
        CHECK(sum == 42);
        args[1].u.integer = 0;  // int4div(40, 0)
        int ignored = 0;
        CHECK(describe(fn("int4div", args, 2, &ignored).get()) == "PGRES_FATAL_ERROR:22012");
        const std::string text = "hello, world";
        PQArgBlock t;
        t.len = static_cast<int>(text.size());
        t.isint = 0;
        t.u.ptr = reinterpret_cast<int*>(const_cast<char*>(text.data()));
        int len = 0;
        CHECK(describe(fn("textlen", &t, 1, &len).get()) == "PGRES_COMMAND_OK");
        CHECK(len == 12);
        CHECK(c.query_value("SELECT 'usable after FunctionCall'") == "usable after FunctionCall");
    }

    SUBCASE("empty query strings") {
        CHECK(describe(wrap(PQexec(pc, "")).get()) == "PGRES_EMPTY_QUERY");
        CHECK(describe(wrap(PQexec(pc, " ; ")).get()) == "PGRES_EMPTY_QUERY");
        CHECK(describe(wrap(PQexec(pc, "-- only a comment")).get()) == "PGRES_EMPTY_QUERY");
        CHECK(
            describe(wrap(PQexecParams(pc, "", 0, nullptr, nullptr, nullptr, nullptr, 0)).get()) ==
            "PGRES_EMPTY_QUERY");
        CHECK(describe(wrap(PQprepare(pc, "e", "", 0, nullptr)).get()) == "PGRES_COMMAND_OK");
        CHECK(describe(wrap(PQexecPrepared(pc, "e", 0, nullptr, nullptr, nullptr, 0)).get()) ==
              "PGRES_EMPTY_QUERY");
        REQUIRE(PQsendQuery(pc, "SELECT 1; ; SELECT 2") == 1);
        CHECK(drain(pc) == "PGRES_TUPLES_OK=1,PGRES_TUPLES_OK=2");
    }

    SUBCASE("target_session_attrs: libpq's own checks at login") {
        for (const std::string attrs : {"read-write", "primary", "any", "standby", "read-only"}) {
            CAPTURE(attrs);
            auto login = [&](const std::string& base) {
                PGconn* t = PQconnectdb((base + " target_session_attrs=" + attrs).c_str());
                std::string outcome = PQstatus(t) == CONNECTION_OK ? "ok" : PQerrorMessage(t);
                PQfinish(t);
                const auto failed = outcome.find(" failed: ");  // drop the host and port
                return failed == std::string::npos ? outcome : outcome.substr(failed);
            };
            const std::string d = login(f.direct_conninfo());
            CHECK(login(f.proxy_conninfo()) == d);
            CHECK((d == "ok") == (attrs == "read-write" || attrs == "primary" || attrs == "any"));
        }
    }

    SUBCASE("ParameterStatus: at login and after SET") {
        for (const std::string name :
             {"server_version", "server_encoding", "client_encoding", "DateStyle", "TimeZone",
              "integer_datetimes", "IntervalStyle", "is_superuser", "session_authorization",
              "in_hot_standby", "standard_conforming_strings", "application_name"}) {
            CAPTURE(name);
            const char* p = PQparameterStatus(pc, name.c_str());
            const char* d = PQparameterStatus(direct.native(), name.c_str());
            REQUIRE(p != nullptr);
            REQUIRE(d != nullptr);
            CHECK(std::string(p) == d);
        }
        CHECK(PQserverVersion(pc) == PQserverVersion(direct.native()));
        CHECK(PQserverVersion(pc) >= 150000);
        CHECK(std::string(PQparameterStatus(pc, "client_encoding")) == "UTF8");
        CHECK(std::string(PQparameterStatus(pc, "session_authorization")) == "alice");
        CHECK(std::string(PQparameterStatus(pc, "server_version")) ==
              c.query_value("SHOW server_version"));

        c.exec("SET TimeZone = 'America/New_York'");
        CHECK(std::string(PQparameterStatus(pc, "TimeZone")) == "America/New_York");
        c.exec("SET DateStyle = 'SQL, DMY'; SET application_name = 'libpq test'");
        CHECK(std::string(PQparameterStatus(pc, "DateStyle")) == "SQL, DMY");
        CHECK(std::string(PQparameterStatus(pc, "application_name")) == "libpq test");
        CHECK(PQsetClientEncoding(pc, "LATIN1") == 0);
        CHECK(std::string(PQparameterStatus(pc, "client_encoding")) == "LATIN1");
        c.exec("BEGIN; SET LOCAL TimeZone = 'Asia/Tokyo'");
        CHECK(std::string(PQparameterStatus(pc, "TimeZone")) == "Asia/Tokyo");
        c.exec("ROLLBACK");
        CHECK(std::string(PQparameterStatus(pc, "TimeZone")) == "America/New_York");
        c.exec("RESET ALL");
        CHECK(std::string(PQparameterStatus(pc, "TimeZone")) ==
              PQparameterStatus(direct.native(), "TimeZone"));
        CHECK(std::string(PQparameterStatus(pc, "application_name")) == "");
    }
}
