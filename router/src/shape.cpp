// shape_lexer: statements split at top-level semicolons, each normalized and hashed in one pass.
#include "shardgate/router/shape.hpp"

#include <xxhash.h>

#include <cstring>

#include "sql_scanner.hpp"

namespace shardgate::router {

using detail::token;
using detail::token_kind;

std::string_view to_string(literal_kind k) {
    switch (k) {
        case literal_kind::integer:
            return "integer";
        case literal_kind::numeric:
            return "numeric";
        case literal_kind::string:
            return "string";
        case literal_kind::escape_string:
            return "escape_string";
        case literal_kind::bit_string:
            return "bit_string";
        case literal_kind::dollar:
            return "dollar";
        case literal_kind::unicode:
            return "unicode";
        case literal_kind::param:
            return "param";
    }
    return "unknown";
}

std::string_view to_string(shape_error e) {
    switch (e) {
        case shape_error::none:
            return "none";
        case shape_error::unterminated_string:
            return "unterminated quoted string";
        case shape_error::unterminated_quoted_identifier:
            return "unterminated quoted identifier";
        case shape_error::unterminated_dollar_quote:
            return "unterminated dollar-quoted string";
        case shape_error::unterminated_comment:
            return "unterminated /* comment";
        case shape_error::zero_length_identifier:
            return "zero-length delimited identifier";
        case shape_error::trailing_junk:
            return "trailing junk after numeric literal or parameter";
        case shape_error::invalid_escape:
            return "invalid escape sequence or byte sequence in string";
        case shape_error::invalid_unicode_escape:
            return "invalid Unicode escape";
        case shape_error::invalid_character:
            return "NUL byte in query text";
        case shape_error::too_long:
            return "query text too long";
    }
    return "unknown";
}

namespace {

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view word, std::string_view lower_kw) {
    if (word.size() != lower_kw.size()) return false;
    for (std::size_t i = 0; i < word.size(); ++i) {
        if (lower(word[i]) != lower_kw[i]) return false;
    }
    return true;
}

bool is_hint_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == ',';
}

// "key=value, k2='v 2' flag": keys lower-cased, quotes around a value dropped.
void parse_hints(std::string_view s, std::vector<hint>& out) {
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_hint_space(s[i]))
            ++i;
        if (i >= s.size()) break;
        hint h;
        while (i < s.size() && s[i] != '=' && !is_hint_space(s[i]))
            h.key.push_back(lower(s[i++]));
        if (i < s.size() && s[i] == '=') {
            ++i;
            if (i < s.size() && (s[i] == '\'' || s[i] == '"')) {
                const char q = s[i++];
                while (i < s.size() && s[i] != q)
                    h.value.push_back(s[i++]);
                if (i < s.size()) ++i;
            } else {
                while (i < s.size() && !is_hint_space(s[i]))
                    h.value.push_back(s[i++]);
            }
        }
        if (!h.key.empty()) out.push_back(std::move(h));
    }
}

// Reserved words after which "(" opens an expression, not an argument list: "where (a)" keeps
// its space, "count(*)" does not. Cosmetic only: the choice depends on the tokens alone.
bool spaced_before_paren(std::string_view word) {
    static constexpr std::string_view words[] = {
        "and",   "as",     "by",   "case",      "check",     "do",     "else", "except",
        "from",  "having", "in",   "intersect", "into",      "is",     "join", "lateral",
        "not",   "on",     "or",   "over",      "returning", "select", "then", "union",
        "using", "values", "when", "where",     "with"};
    if (word.size() < 2 || word.size() > 9) return false;
    for (const std::string_view w : words) {
        if (iequals(word, w)) return true;
    }
    return false;
}

// How a token touches its neighbours in the shape text. Spaces are dropped only where the
// concatenation cannot read back as different tokens, so equal shapes mean equal token streams.
enum class glue : std::uint8_t { none, word, open };

}  // namespace

// Builds one shape_result; one instance per lex() call.
class shape_builder {
  public:
    shape_builder(std::string_view sql, shape_result& out) : sql_(sql), sc_(sql), out_(out) {}

    void run();

  private:
    void fail(shape_error e, std::uint32_t at);
    statement_shape& begin_statement();
    void read_hints(std::uint32_t pos, statement_shape& st) const;
    bool statement(std::uint32_t& pos, bool& more);
    bool emit(const token& t, std::uint32_t& pos, statement_shape& st);
    void track_function_body(std::string_view word);
    bool add_literal(const token& t, std::uint32_t slot, statement_shape& st);
    bool try_in_list(std::uint32_t& pos, statement_shape& st);
    void append(statement_shape& st, std::string_view text, bool space_before, glue after);

    std::string_view sql_;
    detail::sql_scanner sc_;
    shape_result& out_;
    // Per statement:
    int paren_depth_ = 0;
    int begin_depth_ = 0;         // BEGIN ... END inside CREATE FUNCTION (psql's heuristic)
    int word_count_ = 0;          // identifiers so far, for the CREATE FUNCTION test
    bool in_function_ = false;    // the statement starts CREATE [OR REPLACE] FUNCTION|PROCEDURE
    std::string_view last_word_;  // the last unquoted identifier, when prev_ is glue::word
    char lead_[4] = {};           // first letters of create/or/replace/function/procedure
    glue prev_ = glue::open;      // the last token's right side
};

void shape_lexer::lex(std::string_view sql, shape_result& out) const {
    shape_builder b(sql, out);
    b.run();
}

shape_result shape_lexer::lex(std::string_view sql) const {
    shape_result r;
    lex(sql, r);
    return r;
}

void shape_builder::fail(shape_error e, std::uint32_t at) {
    out_.error_ = e;
    out_.error_offset_ = at;
    out_.count_ = 0;
}

void shape_builder::run() {
    out_.count_ = 0;
    out_.values_.clear();
    out_.error_ = shape_error::none;
    out_.error_offset_ = 0;
    if (sql_.size() > shape_lexer::max_input_bytes) return fail(shape_error::too_long, 0);
    // The simple Query message is a C string: a NUL cannot reach Postgres' lexer.
    if (const void* nul = std::memchr(sql_.data(), 0, sql_.size()); nul != nullptr) {
        return fail(shape_error::invalid_character,
                    static_cast<std::uint32_t>(static_cast<const char*>(nul) - sql_.data()));
    }
    // Values never outgrow their tokens, so this one reservation holds them all.
    out_.values_.reserve(sql_.size());
    std::uint32_t pos = 0;
    bool more = true;
    while (more) {
        if (!statement(pos, more)) return;
    }
    // Literal views are set last: values_ is final now. Values are contiguous in literal order.
    const char* base = out_.values_.data();
    std::size_t total = out_.values_.size();
    for (std::size_t s = out_.count_; s-- > 0;) {
        auto& lits = out_.statements_[s].literals;
        for (std::size_t i = lits.size(); i-- > 0;) {
            lits[i].value =
                std::string_view(base + lits[i].value_offset, total - lits[i].value_offset);
            total = lits[i].value_offset;
        }
    }
}

statement_shape& shape_builder::begin_statement() {
    if (out_.count_ == out_.statements_.size()) out_.statements_.emplace_back();
    statement_shape& st = out_.statements_[out_.count_];
    st.shape.clear();
    st.hash = 0;
    st.offset = 0;
    st.length = 0;
    st.slot_count = 0;
    st.literals.clear();
    st.hints.clear();
    paren_depth_ = 0;
    begin_depth_ = 0;
    word_count_ = 0;
    in_function_ = false;
    last_word_ = {};
    std::memset(lead_, 0, sizeof lead_);
    prev_ = glue::open;
    return st;
}

void shape_builder::read_hints(std::uint32_t pos, statement_shape& st) const {
    // Comments before the first token; the ones starting "shardgate:" carry hints.
    constexpr std::string_view tag = "shardgate:";
    const auto n = static_cast<std::uint32_t>(sql_.size());
    while (pos < n) {
        std::uint32_t p = pos;
        if (sql_.compare(p, 2, "/*") == 0) {
            const std::uint32_t e = sc_.comment_end(p);
            if (e == 0) return;  // the token scan reports it
            std::string_view body = sql_.substr(p + 2, e - 4 - p);
            while (!body.empty() && is_hint_space(body.front()))
                body.remove_prefix(1);
            if (body.size() >= tag.size() && iequals(body.substr(0, tag.size()), tag)) {
                parse_hints(body.substr(tag.size()), st.hints);
            }
            pos = e;
            continue;
        }
        const char c = sql_[p];
        const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
        if (!space && sql_.compare(p, 2, "--") != 0) return;
        if (space) {
            ++pos;
        } else {
            while (pos < n && sql_[pos] != '\n' && sql_[pos] != '\r')
                ++pos;
        }
    }
}

bool shape_builder::statement(std::uint32_t& pos, bool& more) {
    statement_shape& st = begin_statement();
    read_hints(pos, st);
    bool any = false;
    std::uint32_t last_end = 0;
    while (true) {
        const token t = sc_.next(pos);
        if (t.kind == token_kind::error) {
            fail(t.error, t.begin);
            return false;
        }
        if (t.kind == token_kind::end) {
            more = false;
            break;
        }
        if (t.is_punct(sql_, ';') && paren_depth_ <= 0 && begin_depth_ == 0) break;
        if (!any) st.offset = t.begin;
        any = true;
        if (!emit(t, pos, st)) return false;
        last_end = pos;
    }
    if (any) {
        st.length = last_end - st.offset;
        st.hash = XXH3_64bits(st.shape.data(), st.shape.size());
        ++out_.count_;
    }
    return true;
}

void shape_builder::append(statement_shape& st, std::string_view text, bool space_before,
                           glue after) {
    if (space_before && prev_ != glue::open) st.shape.push_back(' ');
    st.shape.append(text);
    prev_ = after;
}

bool shape_builder::emit(const token& t, std::uint32_t& pos, statement_shape& st) {
    const std::string_view text = sql_.substr(t.begin, t.end - t.begin);
    switch (t.kind) {
        case token_kind::identifier: {
            // Resize once and fold in place: this loop is most of a short query's shape.
            std::size_t at = st.shape.size();
            st.shape.resize(at + text.size() + (prev_ != glue::open ? 1 : 0));
            if (prev_ != glue::open) st.shape[at++] = ' ';
            for (const char c : text)
                st.shape[at++] = lower(c);
            prev_ = glue::word;
            last_word_ = text;
            if (word_count_ < 4 || in_function_) track_function_body(text);
            ++word_count_;
            if (iequals(text, "in")) return try_in_list(pos, st);
            return true;
        }
        case token_kind::quoted_identifier:
            append(st, text, true, glue::word);
            last_word_ = {};
            return true;
        case token_kind::national:
            append(st, "nchar", true, glue::word);
            last_word_ = {};
            return true;
        case token_kind::param:
            append(st, text, true, glue::none);
            return true;
        case token_kind::literal:
            append(st, "$?", true, glue::none);
            return add_literal(t, st.slot_count++, st);
        case token_kind::op:
            append(st, text == "!=" ? std::string_view("<>") : text, true, glue::none);
            return true;
        default:
            break;
    }
    // Punctuation: no space inside ( ) [ ] or around . and ::, none before , ; or before ( after a
    // name that is not a reserved word.
    const char c = text[0];
    if (c == '(') {
        ++paren_depth_;
        const bool call = prev_ == glue::word && !spaced_before_paren(last_word_);
        append(st, text, !call, glue::open);
    } else if (c == ')') {
        --paren_depth_;
        append(st, text, false, glue::none);
    } else if (text == "::" || c == '[' || c == '.') {
        append(st, text, false, glue::open);
    } else if (c == ']' || c == ',' || c == ';') {
        append(st, text, false, glue::none);
    } else {
        append(st, text, true, glue::none);
    }
    return true;
}

void shape_builder::track_function_body(std::string_view word) {
    // psql's rule (psqlscan.l): in CREATE [OR REPLACE] FUNCTION|PROCEDURE, semicolons between
    // BEGIN and its END (CASE ... END counted inside) belong to the body (BEGIN ATOMIC).
    if (word_count_ < 4) {
        if (iequals(word, "create") || iequals(word, "or") || iequals(word, "replace") ||
            iequals(word, "function") || iequals(word, "procedure")) {
            lead_[word_count_] = lower(word[0]);
        }
        in_function_ =
            lead_[0] == 'c' &&
            (lead_[1] == 'f' || lead_[1] == 'p' ||
             (lead_[1] == 'o' && lead_[2] == 'r' && (lead_[3] == 'f' || lead_[3] == 'p')));
    }
    if (!in_function_ || paren_depth_ != 0) return;
    if (iequals(word, "begin")) {
        ++begin_depth_;
    } else if (iequals(word, "case")) {
        if (begin_depth_ >= 1) ++begin_depth_;
    } else if (iequals(word, "end")) {
        if (begin_depth_ > 0) --begin_depth_;
    }
}

bool shape_builder::add_literal(const token& t, std::uint32_t slot, statement_shape& st) {
    literal lit;
    lit.kind = t.kind == token_kind::param ? literal_kind::param : t.lit;
    lit.slot = slot;
    lit.offset = t.begin;
    lit.length = t.end - t.begin;
    lit.value_offset = static_cast<std::uint32_t>(out_.values_.size());
    if (const shape_error e = sc_.decode(t, out_.values_); e != shape_error::none) {
        fail(e, t.begin);
        return false;
    }
    st.literals.push_back(lit);
    return true;
}

bool shape_builder::try_in_list(std::uint32_t& pos, statement_shape& st) {
    // IN (1, 2, 3) and IN (1, 2) share one shape: a list of only constants and parameters is a
    // single ($*) slot whose literals all carry the same slot number.
    auto element = [](const token& t) {
        return t.kind == token_kind::literal || t.kind == token_kind::param;
    };
    std::uint32_t p = pos;
    if (!sc_.next(p).is_punct(sql_, '(')) return true;
    while (true) {
        if (!element(sc_.next(p))) return true;
        const token sep = sc_.next(p);
        if (sep.is_punct(sql_, ')')) break;
        if (!sep.is_punct(sql_, ',')) return true;
    }
    const std::uint32_t slot = st.slot_count++;
    std::uint32_t q = pos;
    (void)sc_.next(q);  // (
    while (q < p) {
        if (!add_literal(sc_.next(q), slot, st)) return false;
        (void)sc_.next(q);  // , or )
    }
    append(st, "($*)", true, glue::none);
    pos = p;
    return true;
}

}  // namespace shardgate::router
