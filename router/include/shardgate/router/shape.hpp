// Query-shape lexer: one pass over SQL text -> normalized shape, XXH3-64 shape hash, literals.
// Lexical rules mirrored: https://www.postgresql.org/docs/15/sql-syntax-lexical.html (and PG15's
// scan.l where the page is silent). No I/O, no exceptions: bad input yields an error result.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace shardgate::router {

enum class literal_kind : std::uint8_t {
    integer,        // 42 (digits only; may still overflow int4/int8: Postgres makes it numeric)
    numeric,        // 1.5, .5, 1., 1e-3
    string,         // 'it''s'   (standard_conforming_strings on: backslash is literal)
    escape_string,  // E'a\nb'
    bit_string,     // B'101' / X'1F': value as Postgres keeps it, "b101" / "x1F"
    dollar,         // $$body$$ or $tag$body$tag$: body verbatim
    unicode,        // U&'d\0061t' [UESCAPE '!']
    param,          // $1 inside a collapsed IN list only (value: the digits, "1")
};

std::string_view to_string(literal_kind k);

enum class shape_error : std::uint8_t {
    none,
    unterminated_string,             // '..., E'..., B'..., X'..., U&'...
    unterminated_quoted_identifier,  // "...
    unterminated_dollar_quote,       // $tag$... without the closing $tag$
    unterminated_comment,            // /* ... without its (nested) */
    zero_length_identifier,          // ""
    trailing_junk,                   // 123abc, 0x1F, 1e-, $1a (PG15 rejects these too)
    invalid_escape,                  // E'' escape giving a NUL byte or invalid UTF-8
    invalid_unicode_escape,          // bad \XXXX / \+XXXXXX / surrogate / UESCAPE character
    invalid_character,               // a NUL byte inside the text
    too_long,                        // input over shape_lexer::max_input_bytes
};

std::string_view to_string(shape_error e);

// One literal value taken out of the shape. A collapsed IN list gives one literal per element,
// all with the same slot.
struct literal {
    literal_kind kind = literal_kind::integer;
    std::uint32_t slot = 0;          // which placeholder of the shape ($? or ($*)), 0-based
    std::uint32_t offset = 0;        // byte offset of the whole token in the original SQL
    std::uint32_t length = 0;        // bytes of the whole token (quotes, prefix, continuations)
    std::string_view value;          // unescaped as Postgres would; points into the shape_result
    std::uint32_t value_offset = 0;  // where value lives in the result's value buffer
};

// A `/* shardgate: key=value, ... */` comment before a statement's first token.
struct hint {
    std::string key;  // lower-cased
    std::string value;
    bool operator==(const hint&) const = default;
};

struct statement_shape {
    // Tokens separated canonically: keywords and unquoted identifiers lower-cased, quoted
    // identifiers and operators as written (`!=` becomes `<>`), each literal `$?`, each
    // collapsed IN list ` ($*)`, parameters `$n` kept, comments dropped.
    std::string shape;
    std::uint64_t hash = 0;    // XXH3-64 of shape
    std::uint32_t offset = 0;  // first token's byte offset in the original SQL
    std::uint32_t length = 0;  // up to the end of the last token (the `;` excluded)
    std::uint32_t slot_count = 0;
    std::vector<literal> literals;  // in source order
    std::vector<hint> hints;
};

// The lexer's output. Move-only: literal values point into it. Reuse one per worker thread with
// shape_lexer::lex(sql, out) and the steady state allocates nothing.
class shape_result {
  public:
    shape_result() = default;
    shape_result(const shape_result&) = delete;
    shape_result& operator=(const shape_result&) = delete;
    shape_result(shape_result&&) noexcept = default;
    shape_result& operator=(shape_result&&) noexcept = default;
    ~shape_result() = default;

    [[nodiscard]] bool ok() const { return error_ == shape_error::none; }
    explicit operator bool() const { return ok(); }
    [[nodiscard]] shape_error error() const { return error_; }
    [[nodiscard]] std::uint32_t error_offset() const { return error_offset_; }
    // Non-empty statements (`;;` and comment-only pieces are not statements). Empty on error.
    [[nodiscard]] std::span<const statement_shape> statements() const {
        return {statements_.data(), count_};
    }
    [[nodiscard]] std::size_t statement_count() const { return count_; }

  private:
    friend class shape_builder;
    std::vector<statement_shape> statements_;  // [0, count_) valid; the rest kept for reuse
    std::size_t count_ = 0;
    std::vector<char> values_;  // unescaped literal values (a vector keeps its buffer on move)
    shape_error error_ = shape_error::none;
    std::uint32_t error_offset_ = 0;
};

class shape_lexer {
  public:
    // Postgres' own limit for a query message (1 GB - 1); offsets are 32-bit.
    static constexpr std::size_t max_input_bytes = 0x3fffffff;

    [[nodiscard]] shape_result lex(std::string_view sql) const;
    // Reuses out's buffers; out is fully overwritten.
    void lex(std::string_view sql, shape_result& out) const;
};

}  // namespace shardgate::router
