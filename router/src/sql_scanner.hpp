// Internal: PG15 token scanner and literal decoder behind shape_lexer (pure, no allocation).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "shardgate/router/shape.hpp"

namespace shardgate::router::detail {

enum class token_kind : std::uint8_t {
    end,                // no more input
    identifier,         // unquoted identifier or keyword (case-folded when shaped)
    quoted_identifier,  // "..." or U&"..." [UESCAPE '.'], kept as written
    param,              // $1
    literal,            // any constant; see token::lit
    national,           // the N of N'...' (Postgres turns it into the keyword NCHAR)
    op,                 // operator per PG's rules (trailing +/- stripped)
    punct,              // , ( ) [ ] ; . : :: := $ and any other single character
    error,
};

struct token {
    token_kind kind = token_kind::end;
    literal_kind lit = literal_kind::integer;
    shape_error error = shape_error::none;
    char uescape = '\\';      // escape character of a U&'' literal
    std::uint32_t begin = 0;  // byte range in the SQL; for errors, where the problem is
    std::uint32_t end = 0;

    [[nodiscard]] bool is_punct(std::string_view sql, char c) const {
        return kind == token_kind::punct && end - begin == 1 && sql[begin] == c;
    }
};

class sql_scanner {
  public:
    explicit sql_scanner(std::string_view sql) : sql_(sql) {}

    // Skips whitespace and comments from pos, then scans one token; pos ends after it.
    [[nodiscard]] token next(std::uint32_t& pos) const;
    // Skips whitespace and comments; false (with pos at the comment) if a comment is unterminated.
    [[nodiscard]] bool skip_space(std::uint32_t& pos) const;
    // End of the block comment starting at pos ("/*"), nesting honoured; 0 if unterminated.
    [[nodiscard]] std::uint32_t comment_end(std::uint32_t pos) const;
    // Appends the value of literal token t (unescaped as Postgres would) to out.
    [[nodiscard]] shape_error decode(const token& t, std::vector<char>& out) const;

    [[nodiscard]] std::string_view text() const { return sql_; }

  private:
    [[nodiscard]] char at(std::uint32_t i) const { return i < sql_.size() ? sql_[i] : '\0'; }
    [[nodiscard]] token scan_number(std::uint32_t& pos) const;
    [[nodiscard]] token scan_operator(std::uint32_t& pos) const;
    [[nodiscard]] token scan_dollar(std::uint32_t& pos) const;
    [[nodiscard]] token scan_quoted(std::uint32_t& pos, std::uint32_t quote_at, literal_kind k,
                                    std::uint32_t begin) const;
    [[nodiscard]] token scan_quoted_identifier(std::uint32_t& pos, std::uint32_t quote_at,
                                               std::uint32_t begin) const;
    // After a U&'..' or U&".." token: consumes an optional UESCAPE 'c' into t.
    void scan_uescape(std::uint32_t& pos, token& t) const;
    // End of one '...' segment whose opening quote is at q (backslash escapes if escapes).
    [[nodiscard]] std::uint32_t quote_segment_end(std::uint32_t q, bool escapes) const;
    // End of one segment of a k literal (bit strings end at the first quote).
    [[nodiscard]] std::uint32_t segment_end(std::uint32_t q, literal_kind k) const;
    // Position of the next segment's quote if a string continues after end (newline rule).
    [[nodiscard]] std::uint32_t continuation(std::uint32_t end) const;

    std::string_view sql_;
};

}  // namespace shardgate::router::detail
