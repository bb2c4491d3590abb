// shape_lexer: the SQL table, same-shape groups, offsets, reuse of one result.
#include "shardgate/router/shape.hpp"

#include <doctest/doctest.h>
#include <xxhash.h>

#include <string>
#include <vector>

#include "shape_cases.hpp"

using namespace shardgate::router;
using shape_cases::shape_case;

namespace {

std::string joined_shapes(const shape_result& r) {
    std::string s;
    for (const auto& st : r.statements()) {
        if (!s.empty()) s += '\n';
        s += st.shape;
    }
    return s;
}

void check_case(const shape_case& c) {
    CAPTURE(c.sql);
    const shape_result r = shape_lexer{}.lex(c.sql);
    REQUIRE_MESSAGE(r.ok(), to_string(r.error()), " at ", r.error_offset());
    CHECK(joined_shapes(r) == c.shape);
    std::vector<literal> lits;
    std::vector<hint> hints;
    for (const auto& st : r.statements()) {
        CHECK(st.hash == XXH3_64bits(st.shape.data(), st.shape.size()));
        CHECK(st.offset + st.length <= c.sql.size());
        lits.insert(lits.end(), st.literals.begin(), st.literals.end());
        hints.insert(hints.end(), st.hints.begin(), st.hints.end());
        std::uint32_t slots = 0;
        for (const auto& l : st.literals)
            slots = std::max(slots, l.slot + 1);
        CHECK(st.slot_count == slots);
    }
    REQUIRE(lits.size() == c.lits.size());
    for (std::size_t i = 0; i < lits.size(); ++i) {
        CAPTURE(i);
        CHECK(lits[i].kind == c.lits[i].kind);
        CHECK(lits[i].value == c.lits[i].value);
        CHECK(lits[i].slot == c.lits[i].slot);
        REQUIRE(lits[i].offset + lits[i].length <= c.sql.size());
    }
    REQUIRE(hints.size() == c.hints.size());
    for (std::size_t i = 0; i < hints.size(); ++i) {
        CHECK(hints[i].key == c.hints[i].key);
        CHECK(hints[i].value == c.hints[i].value);
    }
}

std::uint64_t hash_of(std::string_view sql) {
    const shape_result r = shape_lexer{}.lex(sql);
    REQUIRE(r.ok());
    REQUIRE(r.statement_count() == 1);
    return r.statements()[0].hash;
}

}  // namespace

TEST_CASE("shape table: identifiers, literals, numbers, operators, comments") {
    const auto& cases = shape_cases::basic_cases();
    CHECK(cases.size() >= 100);
    for (const auto& c : cases)
        check_case(c);
}

TEST_CASE("shape table: IN lists, statements, hints, whole queries") {
    const auto& cases = shape_cases::clause_cases();
    CHECK(cases.size() >= 70);
    for (const auto& c : cases)
        check_case(c);
}

TEST_CASE("literal offsets cover the tokens as written") {
    const std::string_view sql = "SELECT 'a''b', E'\\n' , $x$y$x$ FROM t WHERE id IN (7, 'q')";
    const shape_result r = shape_lexer{}.lex(sql);
    REQUIRE(r.ok());
    const auto& lits = r.statements()[0].literals;
    REQUIRE(lits.size() == 5);
    CHECK(sql.substr(lits[0].offset, lits[0].length) == "'a''b'");
    CHECK(sql.substr(lits[1].offset, lits[1].length) == "E'\\n'");
    CHECK(sql.substr(lits[2].offset, lits[2].length) == "$x$y$x$");
    CHECK(sql.substr(lits[3].offset, lits[3].length) == "7");
    CHECK(sql.substr(lits[4].offset, lits[4].length) == "'q'");
    const statement_shape& st = r.statements()[0];
    CHECK(sql.substr(st.offset, st.length) == sql);

    const std::string_view two = "  SELECT 1 ;  SELECT 'x' -- c";
    const shape_result r2 = shape_lexer{}.lex(two);
    REQUIRE(r2.statement_count() == 2);
    CHECK(two.substr(r2.statements()[0].offset, r2.statements()[0].length) == "SELECT 1");
    CHECK(two.substr(r2.statements()[1].offset, r2.statements()[1].length) == "SELECT 'x'");
    const std::string_view u = "SELECT U&'a!0062' UESCAPE '!' + 1";
    const shape_result r3 = shape_lexer{}.lex(u);
    REQUIRE(r3.ok());
    const literal& l = r3.statements()[0].literals[0];
    CHECK(u.substr(l.offset, l.length) == "U&'a!0062' UESCAPE '!'");
    CHECK(l.value == "ab");
}

TEST_CASE("same shape for different literal values; different shape for other structure") {
    const std::vector<std::vector<std::string_view>> same = {
        {"SELECT abalance FROM pgbench_accounts WHERE aid = 1",
         "select abalance from pgbench_accounts where aid=99999",
         "SELECT  abalance\nFROM pgbench_accounts -- x\n WHERE aid = '1'",
         "/* shardgate: shard=1 */ SELECT abalance FROM pgbench_accounts WHERE aid = $$7$$",
         "SELECT abalance FROM pgbench_accounts WHERE aid = E'\\x31'",
         "SELECT abalance FROM pgbench_accounts WHERE aid = 1.5e3"},
        {"SELECT * FROM t WHERE id IN (1,2,3)", "SELECT * FROM t WHERE id IN (1)",
         "select * from t where id in ('a', $1, 2.5)", "SELECT * FROM T WHERE ID IN(1,2)"},
        {"INSERT INTO t VALUES (1, 'a')", "insert into T values (2,'it''s')",
         "INSERT INTO t VALUES (3, U&'\\0041')"},
        {"SELECT a != b", "SELECT a <> b", "SELECT A<>B"},
        {"SELECT count(*) FROM t", "SELECT COUNT ( * ) FROM t", "select count(*)from t"},
        {"SELECT x::int FROM t WHERE d > DATE '2024-01-01'",
         "SELECT x :: int FROM t WHERE d > date '1999-12-31'"},
    };
    for (const auto& group : same) {
        const std::uint64_t h = hash_of(group[0]);
        for (const auto sql : group) {
            CAPTURE(sql);
            CHECK(hash_of(sql) == h);
        }
    }
    const std::vector<std::string_view> distinct = {
        "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
        "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
        "SELECT abalance FROM pgbench_accounts WHERE aid = -1",
        "SELECT abalance FROM pgbench_accounts WHERE bid = 1",
        "SELECT abalance FROM pgbench_accounts WHERE aid < 1",
        "SELECT \"abalance\" FROM pgbench_accounts WHERE aid = 1",
        "SELECT \"Abalance\" FROM pgbench_accounts WHERE aid = 1",
        "SELECT * FROM t WHERE id IN (1,2)",
        "SELECT * FROM t WHERE id IN (1,a)",
        "SELECT * FROM t WHERE id IN (SELECT 1)",
        "SELECT * FROM t WHERE id = ANY('{1,2}')",
        "SELECT '1'::int",
        "SELECT '1'::bigint",
        "SELECT 1, 2",
        "SELECT 1 2",
        "SELECT a.b",
        "SELECT a.c",
        "SELECT a- -1",
        "SELECT a--1\n",
        "SELECT $1",
        "SELECT $2",
        "SELECT f(a)",
        "SELECT f (a)",
        "SELECT f((a))",
    };
    std::vector<std::uint64_t> hashes;
    for (const auto sql : distinct)
        hashes.push_back(hash_of(sql));
    for (std::size_t i = 0; i < hashes.size(); ++i) {
        for (std::size_t j = i + 1; j < hashes.size(); ++j) {
            CAPTURE(distinct[i]);
            CAPTURE(distinct[j]);
            const bool both_calls = (i == 21 && j == 22);  // f(a) and f (a): same tokens
            CHECK((hashes[i] == hashes[j]) == both_calls);
        }
    }
}

TEST_CASE("one result reused across calls keeps no stale state") {
    shape_result r;
    const shape_lexer lexer;
    lexer.lex("/* shardgate: a=1 */ SELECT 1, 'x'; SELECT 2; SELECT 3", r);
    REQUIRE(r.statement_count() == 3);
    lexer.lex("SELECT 'y'", r);
    REQUIRE(r.ok());
    REQUIRE(r.statement_count() == 1);
    CHECK(r.statements()[0].hints.empty());
    REQUIRE(r.statements()[0].literals.size() == 1);
    CHECK(r.statements()[0].literals[0].value == "y");
    lexer.lex("SELECT 'unterminated", r);
    CHECK(!r.ok());
    CHECK(r.statement_count() == 0);
    lexer.lex("SELECT 5", r);
    REQUIRE(r.ok());
    CHECK(r.statements()[0].literals[0].value == "5");
    shape_result moved = std::move(r);
    CHECK(moved.statements()[0].literals[0].value == "5");
}
