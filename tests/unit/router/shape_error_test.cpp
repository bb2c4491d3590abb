// shape_lexer on bad input: every unterminated or invalid form is an error; random bytes and
// mutated SQL never crash and always give self-consistent results.
#include <doctest/doctest.h>
#include <xxhash.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "shape_cases.hpp"
#include "shardgate/router/pg_parse.hpp"
#include "shardgate/router/shape.hpp"

using namespace shardgate::router;

namespace {

struct error_case {
    std::string_view sql;
    shape_error error;
};

const std::vector<error_case>& error_cases() {
    using e = shape_error;
    static const std::vector<error_case> cases = {
        {"SELECT 'abc", e::unterminated_string},
        {"SELECT 'it''s", e::unterminated_string},
        {"SELECT '", e::unterminated_string},
        {R"(SELECT E'abc\')", e::unterminated_string},
        {R"(SELECT E'\)", e::unterminated_string},
        {"SELECT E'", e::unterminated_string},
        {"SELECT B'101", e::unterminated_string},
        {"SELECT X'1F", e::unterminated_string},
        {"SELECT U&'abc", e::unterminated_string},
        {"SELECT N'abc", e::unterminated_string},
        {"SELECT 'a'\n'b", e::unterminated_string},
        {"SELECT 1; SELECT 'x", e::unterminated_string},
        {"SELECT 1 IN (1, 'x", e::unterminated_string},
        {R"(SELECT "abc)", e::unterminated_quoted_identifier},
        {R"(SELECT "a"")", e::unterminated_quoted_identifier},
        {R"(SELECT U&"abc)", e::unterminated_quoted_identifier},
        {R"(SELECT "")", e::zero_length_identifier},
        {R"(SELECT U&"")", e::zero_length_identifier},
        {"SELECT $$abc", e::unterminated_dollar_quote},
        {"SELECT $$", e::unterminated_dollar_quote},
        {"SELECT $tag$abc$tag", e::unterminated_dollar_quote},
        {"SELECT $a$ $A$", e::unterminated_dollar_quote},
        {"SELECT /* abc", e::unterminated_comment},
        {"SELECT /* /* */", e::unterminated_comment},
        {"SELECT /*/", e::unterminated_comment},
        {"/* shardgate: x=1", e::unterminated_comment},
        {"SELECT 1 IN (1 /* x", e::unterminated_comment},
        {"SELECT 0x1F", e::trailing_junk},
        {"SELECT 0o17", e::trailing_junk},
        {"SELECT 0b101", e::trailing_junk},
        {"SELECT 123abc", e::trailing_junk},
        {"SELECT 1_000", e::trailing_junk},
        {"SELECT 1e", e::trailing_junk},
        {"SELECT 1e-", e::trailing_junk},
        {"SELECT 1E+x", e::trailing_junk},
        {"SELECT 1.5x", e::trailing_junk},
        {"SELECT 1.e", e::trailing_junk},
        {"SELECT .5e+", e::trailing_junk},
        {"SELECT 1.5e3x", e::trailing_junk},
        {"SELECT $1abc", e::trailing_junk},
        {"SELECT $1_", e::trailing_junk},
        {R"(SELECT E'\0')", e::invalid_escape},
        {R"(SELECT E'\400')", e::invalid_escape},
        {R"(SELECT E'\xff')", e::invalid_escape},
        {R"(SELECT E'\x00')", e::invalid_escape},
        {R"(SELECT E'\u0000')", e::invalid_escape},
        {R"(SELECT E'\uD83D')", e::invalid_escape},
        {R"(SELECT E'\uDE00')", e::invalid_escape},
        {R"(SELECT E'\uD83Dx')", e::invalid_escape},
        {R"(SELECT E'\uD83D\n')", e::invalid_escape},
        {R"(SELECT E'\u12')", e::invalid_escape},
        {R"(SELECT E'\U0011FFFF')", e::invalid_escape},
        {R"(SELECT E'\U1234')", e::invalid_escape},
        {R"(SELECT 1 IN (E'\0'))", e::invalid_escape},
        {R"(SELECT U&'\00')", e::invalid_unicode_escape},
        {R"(SELECT U&'\0000')", e::invalid_unicode_escape},
        {R"(SELECT U&'\D83D')", e::invalid_unicode_escape},
        {R"(SELECT U&'\DE00')", e::invalid_unicode_escape},
        {R"(SELECT U&'\+110000')", e::invalid_unicode_escape},
        {R"(SELECT U&'\')", e::invalid_unicode_escape},
        {R"(SELECT U&'!0041' UESCAPE 'ab')", e::invalid_unicode_escape},
        {R"(SELECT U&'x' UESCAPE '+')", e::invalid_unicode_escape},
        {R"(SELECT U&'x' UESCAPE 'a')", e::invalid_unicode_escape},
        {R"(SELECT U&'x' UESCAPE ' ')", e::invalid_unicode_escape},
        {R"(SELECT U&'x' UESCAPE 1)", e::invalid_unicode_escape},
        {R"(SELECT U&'x' UESCAPE)", e::invalid_unicode_escape},
        {R"(SELECT U&'x' UESCAPE '!)", e::unterminated_string},
    };
    return cases;
}

// Everything a successful result promises, checked against the input.
void check_consistent(std::string_view sql, const shape_result& r) {
    if (!r.ok()) {
        REQUIRE(r.statement_count() == 0);
        REQUIRE(r.error_offset() <= sql.size());
        return;
    }
    for (const auto& st : r.statements()) {
        REQUIRE(st.hash == XXH3_64bits(st.shape.data(), st.shape.size()));
        REQUIRE(std::size_t{st.offset} + st.length <= sql.size());
        REQUIRE(!st.shape.empty());
        for (const auto& l : st.literals) {
            REQUIRE(std::size_t{l.offset} + l.length <= sql.size());
            REQUIRE(l.slot < st.slot_count);
            REQUIRE(l.value.size() <= l.length);
        }
    }
}

// Lexes a copy in a heap block of exactly its size: a read past the end is caught by ASan.
void lex_exact(const shape_lexer& lexer, std::string_view sql, shape_result& r) {
    const auto buf = std::make_unique<char[]>(sql.size() + (sql.empty() ? 1 : 0));
    std::copy(sql.begin(), sql.end(), buf.get());
    const std::string_view exact(buf.get(), sql.size());
    lexer.lex(exact, r);
    check_consistent(exact, r);
}

}  // namespace

TEST_CASE("unterminated and invalid input gives an error, as in Postgres") {
    const shape_lexer lexer;
    for (const auto& c : error_cases()) {
        CAPTURE(c.sql);
        const shape_result r = lexer.lex(c.sql);
        CHECK(!r.ok());
        CHECK(r.error() == c.error);
        CHECK(r.statement_count() == 0);
        CHECK(r.error_offset() <= c.sql.size());
        CHECK(!to_string(r.error()).empty());
        CHECK_MESSAGE(!parse_check(c.sql), "libpg_query accepts what the lexer rejects");
    }
    const std::string nul("SELECT 1\0", 9);
    const shape_result r = lexer.lex(nul);
    CHECK(r.error() == shape_error::invalid_character);
    CHECK(r.error_offset() == 8);
}

TEST_CASE("every prefix of every table case lexes without crashing") {
    shape_result r;
    const shape_lexer lexer;
    std::size_t n = 0;
    for (const auto* table : {&shape_cases::basic_cases(), &shape_cases::clause_cases()}) {
        for (const auto& c : *table) {
            for (std::size_t len = 0; len <= c.sql.size(); ++len) {
                lex_exact(lexer, c.sql.substr(0, len), r);
                ++n;
            }
        }
    }
    CHECK(n > 5000);
}

TEST_CASE("100k random byte strings and mutations of valid SQL never crash") {
    std::mt19937_64 rng(20240601);
    shape_result r;
    const shape_lexer lexer;
    // Bytes that drive the lexer's states, plus any byte at all.
    static constexpr std::string_view alphabet = "'\"$-/*\\eEbBxXnNuU&0123456789.+;(),:_ \n\t";
    std::vector<std::string> seeds;
    for (const auto* table : {&shape_cases::basic_cases(), &shape_cases::clause_cases()}) {
        for (const auto& c : *table)
            seeds.emplace_back(c.sql);
    }
    std::size_t errors = 0;
    for (int iter = 0; iter < 100000; ++iter) {
        std::string s;
        if (iter % 2 == 0) {
            const std::size_t len = rng() % 48;
            for (std::size_t i = 0; i < len; ++i) {
                s.push_back(rng() % 4 == 0 ? static_cast<char>(rng() % 256)
                                           : alphabet[rng() % alphabet.size()]);
            }
        } else {
            s = seeds[rng() % seeds.size()];
            const int edits = 1 + static_cast<int>(rng() % 4);
            for (int k = 0; k < edits; ++k) {
                const std::size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
                const char c = rng() % 2 == 0 ? alphabet[rng() % alphabet.size()]
                                              : static_cast<char>(rng() % 256);
                switch (rng() % 3) {
                    case 0:
                        s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), c);
                        break;
                    case 1:
                        if (at < s.size()) s.erase(at, 1);
                        break;
                    default:
                        if (at < s.size()) s[at] = c;
                        break;
                }
            }
        }
        lex_exact(lexer, s, r);
        if (!r.ok()) ++errors;
    }
    CHECK(errors > 1000);  // the generator does reach the error paths
}
