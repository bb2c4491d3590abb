// PG15 token scanner: character classes and token rules from src/backend/parser/scan.l.
#include "sql_scanner.hpp"

#include <array>
#include <cstring>

namespace shardgate::router::detail {
namespace {

// Character classes from scan.l, as one table lookup per byte.
enum : std::uint8_t { c_space = 1, c_digit = 2, c_ident_start = 4, c_op = 8 };

constexpr std::array<std::uint8_t, 256> make_classes() {
    std::array<std::uint8_t, 256> t{};
    for (const char c : std::string_view(" \t\n\r\f"))
        t[static_cast<unsigned char>(c)] |= c_space;
    for (int c = '0'; c <= '9'; ++c)
        t[c] |= c_digit;
    for (int c = 'a'; c <= 'z'; ++c)
        t[c] |= c_ident_start;
    for (int c = 'A'; c <= 'Z'; ++c)
        t[c] |= c_ident_start;
    t['_'] |= c_ident_start;
    for (int c = 0x80; c <= 0xff; ++c)
        t[c] |= c_ident_start;
    for (const char c : std::string_view("~!@#^&|`?+-*/%<>="))
        t[static_cast<unsigned char>(c)] |= c_op;
    return t;
}
constexpr std::array<std::uint8_t, 256> classes = make_classes();

bool has(char c, std::uint8_t cls) {
    return (classes[static_cast<unsigned char>(c)] & cls) != 0;
}
// scan.l: space [ \t\n\r\f] (no \v in PG15).
bool is_space(char c) {
    return has(c, c_space);
}
bool is_digit(char c) {
    return has(c, c_digit);
}
// ident_start [A-Za-z\200-\377_]
bool is_ident_start(char c) {
    return has(c, c_ident_start);
}
// ident_cont [A-Za-z\200-\377_0-9\$]
bool is_ident_cont(char c) {
    return has(c, c_ident_start | c_digit) || c == '$';
}
// dolq_cont [A-Za-z\200-\377_0-9] (no '$': it ends the tag)
bool is_dolq_cont(char c) {
    return has(c, c_ident_start | c_digit);
}
// op_chars [\~\!\@\#\^\&\|\`\?\+\-\*\/\%\<\>\=]
bool is_op_char(char c) {
    return has(c, c_op);
}
bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

token make(token_kind k, std::uint32_t begin, std::uint32_t end) {
    token t;
    t.kind = k;
    t.begin = begin;
    t.end = end;
    return t;
}

token fail(shape_error e, std::uint32_t at) {
    token t;
    t.kind = token_kind::error;
    t.error = e;
    t.begin = at;
    t.end = at;
    return t;
}

}  // namespace

bool sql_scanner::skip_space(std::uint32_t& pos) const {
    const auto n = static_cast<std::uint32_t>(sql_.size());
    while (pos < n) {
        const char c = sql_[pos];
        if (is_space(c)) {
            ++pos;
        } else if (c == '-' && at(pos + 1) == '-') {
            pos += 2;
            while (pos < n && sql_[pos] != '\n' && sql_[pos] != '\r')
                ++pos;
        } else if (c == '/' && at(pos + 1) == '*') {
            const std::uint32_t e = comment_end(pos);
            if (e == 0) return false;
            pos = e;
        } else {
            break;
        }
    }
    return true;
}

std::uint32_t sql_scanner::comment_end(std::uint32_t pos) const {
    // Comments nest in Postgres (unlike the SQL standard's reading of C comments).
    const auto n = static_cast<std::uint32_t>(sql_.size());
    std::uint32_t depth = 1;
    std::uint32_t i = pos + 2;
    while (i + 1 < n) {
        if (sql_[i] == '/' && sql_[i + 1] == '*') {
            ++depth;
            i += 2;
        } else if (sql_[i] == '*' && sql_[i + 1] == '/') {
            i += 2;
            if (--depth == 0) return i;
        } else {
            ++i;
        }
    }
    return 0;
}

token sql_scanner::next(std::uint32_t& pos) const {
    const auto n = static_cast<std::uint32_t>(sql_.size());
    if (!skip_space(pos)) return fail(shape_error::unterminated_comment, pos);
    if (pos >= n) return make(token_kind::end, pos, pos);
    const std::uint32_t begin = pos;
    const char c = sql_[pos];
    if (c == '\0') return fail(shape_error::invalid_character, pos);
    if (is_ident_start(c)) {
        const char c1 = at(pos + 1);
        if (c1 == '\'' && pos + 1 < n) {
            switch (lower(c)) {
                case 'b':
                case 'x':
                    return scan_quoted(pos, pos + 1, literal_kind::bit_string, begin);
                case 'e':
                    return scan_quoted(pos, pos + 1, literal_kind::escape_string, begin);
                case 'n':
                    pos += 1;  // N'..' is NCHAR '..': the quote is scanned next
                    return make(token_kind::national, begin, pos);
                default:
                    break;
            }
        }
        if (lower(c) == 'u' && c1 == '&' && pos + 2 < n) {
            if (sql_[pos + 2] == '\'') {
                token t = scan_quoted(pos, pos + 2, literal_kind::unicode, begin);
                if (t.kind != token_kind::error) scan_uescape(pos, t);
                return t;
            }
            if (sql_[pos + 2] == '"') {
                token t = scan_quoted_identifier(pos, pos + 2, begin);
                if (t.kind != token_kind::error) scan_uescape(pos, t);
                return t;
            }
        }
        ++pos;
        while (pos < n && is_ident_cont(sql_[pos]))
            ++pos;
        return make(token_kind::identifier, begin, pos);
    }
    if (c == '"') return scan_quoted_identifier(pos, pos, begin);
    if (c == '\'') return scan_quoted(pos, pos, literal_kind::string, begin);
    if (c == '$') return scan_dollar(pos);
    if (is_digit(c) || (c == '.' && is_digit(at(pos + 1)))) return scan_number(pos);
    if (c == ':') {
        pos += (at(pos + 1) == ':' || at(pos + 1) == '=') ? 2 : 1;
        return make(token_kind::punct, begin, pos);
    }
    if (is_op_char(c)) return scan_operator(pos);
    ++pos;  // , ( ) [ ] ; . and anything else Postgres returns as a single character
    return make(token_kind::punct, begin, pos);
}

token sql_scanner::scan_number(std::uint32_t& pos) const {
    const std::uint32_t begin = pos;
    std::uint32_t i = pos;
    bool integer = true;
    while (is_digit(at(i)))
        ++i;
    if (at(i) == '.') {
        if (at(i + 1) == '.' && i > begin) {
            pos = i;  // decimalfail: "1..": the integer, then the dots
            token t = make(token_kind::literal, begin, i);
            t.lit = literal_kind::integer;
            return t;
        }
        integer = false;
        ++i;
        while (is_digit(at(i)))
            ++i;
    }
    if (at(i) == 'e' || at(i) == 'E') {
        std::uint32_t j = i + 1;
        if (at(j) == '+' || at(j) == '-') ++j;
        if (!is_digit(at(j))) return fail(shape_error::trailing_junk, begin);  // realfail
        while (is_digit(at(j)))
            ++j;
        i = j;
        integer = false;
    }
    // PG15 rejects {integer,decimal,real}_junk: 123abc, 0x1F, 1.5e3x.
    if (is_ident_start(at(i)) && i < sql_.size()) return fail(shape_error::trailing_junk, begin);
    pos = i;
    token t = make(token_kind::literal, begin, i);
    t.lit = integer ? literal_kind::integer : literal_kind::numeric;
    return t;
}

token sql_scanner::scan_operator(std::uint32_t& pos) const {
    const std::uint32_t begin = pos;
    std::uint32_t i = pos;
    while (is_op_char(at(i)))
        ++i;
    std::uint32_t len = i - begin;
    // A comment start inside the run ends the operator (skip_space saw none at its start).
    for (std::uint32_t k = begin + 1; k + 1 < i; ++k) {
        if ((sql_[k] == '/' && sql_[k + 1] == '*') || (sql_[k] == '-' && sql_[k + 1] == '-')) {
            len = k - begin;
            break;
        }
    }
    // Trailing + or - is not part of a multi-character operator unless it also holds one of
    // ~ ! @ # % ^ & | ` ? (so "=-1" is "=" "-" "1", but "!=-" stays one operator).
    auto last = [&] { return sql_[begin + len - 1]; };
    if (len > 1 && (last() == '+' || last() == '-')) {
        bool special = false;
        for (std::uint32_t k = begin; k + 1 < begin + len; ++k) {
            if (std::strchr("~!@#^&|`?%", sql_[k]) != nullptr) special = true;
        }
        if (!special) {
            do {
                --len;
            } while (len > 1 && (last() == '+' || last() == '-'));
        }
    }
    pos = begin + len;
    return make(token_kind::op, begin, pos);
}

token sql_scanner::scan_dollar(std::uint32_t& pos) const {
    const std::uint32_t begin = pos;
    const auto n = static_cast<std::uint32_t>(sql_.size());
    std::uint32_t i = pos + 1;
    if (is_digit(at(i))) {
        while (is_digit(at(i)))
            ++i;
        if (i < n && is_ident_start(sql_[i])) return fail(shape_error::trailing_junk, begin);
        pos = i;
        return make(token_kind::param, begin, i);
    }
    if (i < n && is_ident_start(sql_[i])) {
        ++i;
        while (i < n && is_dolq_cont(sql_[i]))
            ++i;
    }
    if (i >= n || sql_[i] != '$') {
        pos = begin + 1;  // dolqfailed: a lone '$'
        return make(token_kind::punct, begin, pos);
    }
    const std::string_view delim = sql_.substr(begin, i + 1 - begin);
    const std::size_t close = sql_.find(delim, i + 1);
    if (close == std::string_view::npos) return fail(shape_error::unterminated_dollar_quote, begin);
    pos = static_cast<std::uint32_t>(close + delim.size());
    token t = make(token_kind::literal, begin, pos);
    t.lit = literal_kind::dollar;
    return t;
}

std::uint32_t sql_scanner::quote_segment_end(std::uint32_t q, bool escapes) const {
    const auto n = static_cast<std::uint32_t>(sql_.size());
    std::uint32_t i = q + 1;
    while (i < n) {
        const char c = sql_[i];
        if (c == '\\' && escapes) {
            i += 2;
        } else if (c == '\'') {
            if (i + 1 < n && sql_[i + 1] == '\'') {
                i += 2;  // '' stands for one quote
            } else {
                return i + 1;
            }
        } else {
            ++i;
        }
    }
    return 0;
}

std::uint32_t sql_scanner::continuation(std::uint32_t end) const {
    // "'a'\n'b'" is 'ab': only whitespace holding a newline may separate the pieces. PG15 (as
    // libpg_query shows) does not continue across a -- comment, whatever scan.l's patterns say.
    const auto n = static_cast<std::uint32_t>(sql_.size());
    bool newline = false;
    std::uint32_t i = end;
    while (i < n) {
        const char c = sql_[i];
        if (c == '\n' || c == '\r') {
            newline = true;
        } else if (c != ' ' && c != '\t' && c != '\f') {
            break;
        }
        ++i;
    }
    return (newline && i < n && sql_[i] == '\'') ? i : 0;
}

std::uint32_t sql_scanner::segment_end(std::uint32_t q, literal_kind k) const {
    // B'' and X'' take neither '' nor backslashes specially: their '' would end the string and
    // start another, which the grammar rejects; the bit type rejects bad digits later.
    if (k == literal_kind::bit_string) {
        const std::size_t close = sql_.find('\'', q + 1);
        return close == std::string_view::npos ? 0 : static_cast<std::uint32_t>(close + 1);
    }
    return quote_segment_end(q, k == literal_kind::escape_string);
}

token sql_scanner::scan_quoted(std::uint32_t& pos, std::uint32_t quote_at, literal_kind k,
                               std::uint32_t begin) const {
    std::uint32_t e = segment_end(quote_at, k);
    if (e == 0) return fail(shape_error::unterminated_string, begin);
    for (std::uint32_t q = continuation(e); q != 0; q = continuation(e)) {
        e = segment_end(q, k);
        if (e == 0) return fail(shape_error::unterminated_string, q);
    }
    pos = e;
    token t = make(token_kind::literal, begin, e);
    t.lit = k;
    return t;
}

token sql_scanner::scan_quoted_identifier(std::uint32_t& pos, std::uint32_t quote_at,
                                          std::uint32_t begin) const {
    const auto n = static_cast<std::uint32_t>(sql_.size());
    std::uint32_t i = quote_at + 1;
    while (i < n) {
        if (sql_[i] == '"') {
            if (i + 1 < n && sql_[i + 1] == '"') {
                i += 2;
                continue;
            }
            break;
        }
        ++i;
    }
    if (i >= n) return fail(shape_error::unterminated_quoted_identifier, begin);
    if (i == quote_at + 1) return fail(shape_error::zero_length_identifier, begin);
    pos = i + 1;
    return make(token_kind::quoted_identifier, begin, pos);
}

void sql_scanner::scan_uescape(std::uint32_t& pos, token& t) const {
    // PG's parser.c: U&'..' or U&".." may be followed by UESCAPE and a one-character string.
    std::uint32_t p = pos;
    if (!skip_space(p)) return;  // the next token reports the unterminated comment
    constexpr std::string_view kw = "uescape";
    if (p + kw.size() > sql_.size()) return;
    for (std::size_t k = 0; k < kw.size(); ++k) {
        if (lower(sql_[p + k]) != kw[k]) return;
    }
    p += static_cast<std::uint32_t>(kw.size());
    if (is_ident_cont(at(p)) && p < sql_.size()) return;  // an identifier like uescapex
    if (!skip_space(p) || at(p) != '\'' || p >= sql_.size()) {
        t = fail(shape_error::invalid_unicode_escape, p);
        return;
    }
    const std::uint32_t e = quote_segment_end(p, false);
    if (e == 0) {
        t = fail(shape_error::unterminated_string, p);
        return;
    }
    const char esc = sql_[p + 1];
    if (e != p + 3 || is_hex(esc) || esc == '+' || esc == '\'' || esc == '"' || is_space(esc)) {
        t = fail(shape_error::invalid_unicode_escape, p);
        return;
    }
    t.uescape = esc;
    t.end = e;
    pos = e;
}

}  // namespace shardgate::router::detail
