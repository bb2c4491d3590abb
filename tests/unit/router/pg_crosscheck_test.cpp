// The lexer against libpg_query (the real PG15 grammar): statement counts, shared shapes and
// literal values agree on every table case that Postgres parses.
#include <doctest/doctest.h>
#include <pg_query.h>

#include <map>
#include <string>
#include <vector>

#include "shape_cases.hpp"
#include "shardgate/router/pg_parse.hpp"
#include "shardgate/router/shape.hpp"

using namespace shardgate::router;

namespace {

std::string json_escape(std::string_view s) {
    std::string out;
    for (const char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    static constexpr char hex[] = "0123456789abcdef";
                    out += "\\u00";
                    out += hex[(c >> 4) & 0xF];
                    out += hex[c & 0xF];
                } else {
                    out += c;
                }
        }
    }
    return out;
}

std::string parse_tree(const std::string& sql) {
    PgQueryParseResult r = pg_query_parse(sql.c_str());
    std::string out = r.error == nullptr ? r.parse_tree : "";
    pg_query_free_parse_result(r);
    return out;
}

int pg_statement_count(const std::string& sql) {
    PgQuerySplitResult r = pg_query_split_with_parser(sql.c_str());
    const int n = r.error == nullptr ? r.n_stmts : -1;
    pg_query_free_split_result(r);
    return n;
}

std::vector<const shape_cases::shape_case*> all_cases() {
    std::vector<const shape_cases::shape_case*> out;
    for (const auto* t : {&shape_cases::basic_cases(), &shape_cases::clause_cases()}) {
        for (const auto& c : *t)
            out.push_back(&c);
    }
    return out;
}

}  // namespace

TEST_CASE("libpg_query agrees: statement counts, string values, shared shapes") {
    const shape_lexer lexer;
    std::size_t parsed = 0;
    std::size_t values_checked = 0;
    // One shape hash -> the fingerprints of the single statements that have it.
    std::map<std::uint64_t, std::map<std::uint64_t, std::string>> by_shape;
    std::map<std::uint64_t, std::map<std::uint64_t, std::string>> by_fingerprint;
    for (const auto* c : all_cases()) {
        const std::string sql(c->sql);
        if (!parse_check(sql)) continue;
        ++parsed;
        CAPTURE(sql);
        const shape_result r = lexer.lex(sql);
        REQUIRE(r.ok());
        const int pg_count = pg_statement_count(sql);
        CHECK(pg_count == static_cast<int>(r.statement_count()));
        // String-like values appear in the parse tree exactly as the lexer unescaped them.
        const std::string tree = parse_tree(sql);
        for (const auto& st : r.statements()) {
            for (const auto& l : st.literals) {
                std::string key;
                if (l.kind == literal_kind::bit_string) {
                    key = "\"bsval\":\"" + json_escape(l.value) + "\"";
                } else if (l.kind == literal_kind::string || l.kind == literal_kind::unicode ||
                           l.kind == literal_kind::escape_string ||
                           (l.kind == literal_kind::dollar && st.shape.rfind("create", 0) != 0)) {
                    key = "\"sval\":\"" + json_escape(l.value) + "\"";
                } else {
                    continue;
                }
                CAPTURE(key);
                CHECK(tree.find(key) != std::string::npos);
                ++values_checked;
            }
        }
        if (r.statement_count() != 1) continue;
        const auto fp = pg_fingerprint(sql);
        REQUIRE(fp.has_value());
        by_shape[r.statements()[0].hash][*fp] = sql;
        by_fingerprint[*fp][r.statements()[0].hash] = sql;
    }
    CHECK(parsed >= 150);
    CHECK(values_checked >= 60);
    // Our shapes are finer than libpg_query's fingerprints: one shape, one fingerprint.
    for (const auto& [hash, fps] : by_shape) {
        CAPTURE(fps.begin()->second);
        CHECK(fps.size() == 1);
    }
    // The other way round differs by design (the fingerprint ignores more, e.g. the select
    // list's constants and aliases): count it, it is fine.
    std::size_t coarser = 0;
    for (const auto& [fp, shapes] : by_fingerprint)
        coarser += shapes.size() - 1;
    MESSAGE("statements parsed by libpg_query: ", parsed,
            "; string values checked: ", values_checked,
            "; shapes merged by the fingerprint: ", coarser);
}

TEST_CASE("statements sharing a shape share libpg_query's fingerprint") {
    const std::vector<std::pair<std::string, std::string>> same = {
        {"SELECT abalance FROM pgbench_accounts WHERE aid = 1",
         "select abalance from pgbench_accounts where aid = 2"},
        {"SELECT * FROM t WHERE id IN (1,2,3)", "SELECT * FROM t WHERE id IN (4)"},
        {"UPDATE t SET a = 'x' WHERE id = 3", "update T set A = 'y''z' where ID = 4"},
        {"SELECT 1 -- c", "/* c */ SELECT 2"},
    };
    const shape_lexer lexer;
    for (const auto& [a, b] : same) {
        CAPTURE(a);
        CAPTURE(b);
        CHECK(lexer.lex(a).statements()[0].hash == lexer.lex(b).statements()[0].hash);
        CHECK(pg_fingerprint(a) == pg_fingerprint(b));
    }
}
