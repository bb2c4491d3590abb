// Session effects of statements, read from their shapes.
#include "shardgate/router/session_effects.hpp"

#include <cctype>
#include <cstdint>
#include <vector>

namespace shardgate::router {
namespace {

bool starts_with(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}
bool contains(std::string_view s, std::string_view p) {
    return s.find(p) != std::string_view::npos;
}

}  // namespace

std::string_view to_string(session_effect e) {
    switch (e) {
        case session_effect::none:
            return "none";
        case session_effect::set:
            return "SET";
        case session_effect::discard:
            return "DISCARD";
        case session_effect::prepare:
            return "PREPARE";
        case session_effect::listen:
            return "LISTEN";
        case session_effect::temp_object:
            return "temporary object";
        case session_effect::hold_cursor:
            return "WITH HOLD cursor";
        case session_effect::advisory_lock:
            return "session advisory lock";
        case session_effect::load:
            return "LOAD";
        case session_effect::unknown:
            return "unparsable statement";
    }
    return "?";
}

session_effect session_effect_of(std::string_view s) {
    // The temporary schema named (SET search_path TO pg_temp, then a plain CREATE TABLE, makes
    // a temporary table): the backend may get a temporary schema, which outlives DISCARD ALL.
    if (contains(s, "pg_temp")) return session_effect::temp_object;
    // SET LOCAL and SET TRANSACTION end with their transaction; SET SESSION does not.
    if (starts_with(s, "set ")) {
        if (starts_with(s, "set local ") || starts_with(s, "set transaction ") ||
            starts_with(s, "set constraints "))
            return session_effect::none;
        return session_effect::set;
    }
    if (starts_with(s, "reset ")) return session_effect::set;
    if (starts_with(s, "discard ")) return session_effect::discard;
    if (starts_with(s, "prepare ") && !starts_with(s, "prepare transaction "))
        return session_effect::prepare;
    if (starts_with(s, "deallocate")) return session_effect::prepare;
    // UNLISTEN only removes state (asyncpg's connection reset sends UNLISTEN *).
    if (starts_with(s, "listen ")) return session_effect::listen;
    if (starts_with(s, "load ")) return session_effect::load;
    if (starts_with(s, "declare ") && contains(s, " with hold "))
        return session_effect::hold_cursor;
    if (starts_with(s, "declare ") && s.size() >= 10 && s.substr(s.size() - 10) == " with hold")
        return session_effect::hold_cursor;
    if (starts_with(s, "create temp ") || starts_with(s, "create temporary ") ||
        starts_with(s, "create local temp") || starts_with(s, "create global temp") ||
        starts_with(s, "create or replace temp") || contains(s, " into temp ") ||
        contains(s, " into temporary "))
        return session_effect::temp_object;
    // Session advisory locks (the _xact_ variants end with the transaction).
    for (std::string_view f : {"pg_advisory_lock", "pg_try_advisory_lock"}) {
        for (std::size_t at = s.find(f); at != std::string_view::npos; at = s.find(f, at + 1)) {
            const auto rest = s.substr(at + f.size());
            if (starts_with(rest, "(") || starts_with(rest, " (") || starts_with(rest, "_shared"))
                return session_effect::advisory_lock;
        }
    }
    // set_config(name, value, false) is a SET; with true it is SET LOCAL.
    if (contains(s, "set_config")) {
        if (!contains(s, ", true)") && !contains(s, ",true)")) return session_effect::set;
    }
    return session_effect::none;
}

std::optional<tracked_setting> trackable_setting(std::string_view s) {
    std::vector<std::string_view> tok;
    for (std::size_t i = 0; i < s.size() && tok.size() < 6;) {
        const auto sp = s.find(' ', i);
        tok.push_back(s.substr(i, sp == std::string_view::npos ? s.npos : sp - i));
        if (sp == std::string_view::npos) break;
        i = sp + 1;
    }
    auto name_of = [](std::string_view t) -> std::optional<std::string> {
        if (t.empty()) return std::nullopt;
        std::string n;
        for (char ch : t) {
            if (ch == '"') continue;  // GUC names are case-insensitive, quoted or not
            n += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        for (std::string_view bad : {"role", "session", "local", "transaction", "constraints",
                                     "names", "schema", "xml", "authorization"}) {
            if (n == bad) return std::nullopt;
        }
        return n;
    };
    if (tok.size() >= 2 && tok[0] == "reset") {
        if (tok.size() != 2) return std::nullopt;
        if (tok[1] == "all") return tracked_setting{tracked_setting::kind::reset_all, ""};
        auto n = name_of(tok[1]);
        if (!n) return std::nullopt;
        return tracked_setting{tracked_setting::kind::reset, *n};
    }
    if (tok.size() >= 3 && tok[0] == "set") {
        std::size_t i = 1;
        if (tok[i] == "session" && tok.size() >= 4 && tok[2] != "authorization" &&
            tok[2] != "characteristics")
            ++i;
        if (tok[i] == "time" && i + 1 < tok.size() && tok[i + 1] == "zone") {
            // SET TIME ZONE LOCAL / DEFAULT is RESET timezone.
            if (tok.size() == i + 3 && (tok[i + 2] == "local" || tok[i + 2] == "default"))
                return tracked_setting{tracked_setting::kind::reset, "timezone"};
            return tracked_setting{tracked_setting::kind::set, "timezone"};
        }
        // SET SCHEMA 'x' sets search_path; SET NAMES 'x' client_encoding (DEFAULT: reset).
        if ((tok[i] == "schema" || tok[i] == "names") && tok.size() == i + 2) {
            std::string n = tok[i] == "schema" ? "search_path" : "client_encoding";
            return tracked_setting{
                tok[i + 1] == "default" ? tracked_setting::kind::reset : tracked_setting::kind::set,
                std::move(n)};
        }
        if (i + 1 >= tok.size() || (tok[i + 1] != "to" && tok[i + 1] != "=")) return std::nullopt;
        auto n = name_of(tok[i]);
        if (!n) return std::nullopt;
        // SET x TO DEFAULT is RESET x.
        if (tok.size() == i + 3 && tok[i + 2] == "default")
            return tracked_setting{tracked_setting::kind::reset, *n};
        return tracked_setting{tracked_setting::kind::set, *n};
    }
    return std::nullopt;
}

namespace {

// Every statement session_effect_of() can flag has one of these words in its text (in its
// shape, which lower-cases keywords and keeps quoted identifiers as written): "reset" and
// "set_config" contain "set", "create temp" and "pg_temp." contain "temp". A text without
// any (most queries) needs no lexing.
bool may_have_session_effect(std::string_view sql) {
    auto lower = [](char c) {
        return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    };
    auto at = [&](std::size_t i, std::string_view w) {  // w starts at sql[i] (w[0] matched)
        if (sql.size() - i < w.size()) return false;
        for (std::size_t k = 1; k < w.size(); ++k)
            if (lower(sql[i + k]) != w[k]) return false;
        return true;
    };
    // The words' first letters as bits of (c | 0x20) - 'a', which is below 26 only for
    // letters: most bytes are passed over by a shift and a mask, with no branch per letter
    // (every query is scanned on the hot path).
    constexpr auto bit = [](char c) { return std::uint32_t{1} << (c - 'a'); };
    constexpr std::uint32_t firsts =
        bit('s') | bit('d') | bit('p') | bit('l') | bit('t') | bit('a');
    for (std::size_t i = 0; i < sql.size(); ++i) {
        const unsigned x = (static_cast<unsigned char>(sql[i]) | 0x20U) - 'a';
        if (x >= 26 || ((firsts >> x) & 1U) == 0) continue;
        switch (lower(sql[i])) {
            case 's':
                if (at(i, "set")) return true;
                break;
            case 'd':
                if (at(i, "discard") || at(i, "deallocate") || at(i, "declare")) return true;
                break;
            case 'p':
                if (at(i, "prepare")) return true;
                break;
            case 'l':
                if (at(i, "listen") || at(i, "load")) return true;
                break;
            case 't':
                if (at(i, "temp")) return true;
                break;
            default:  // 'a'
                if (at(i, "advisory")) return true;
                break;
        }
    }
    return false;
}

}  // namespace

session_effect find_session_effect(std::string_view sql) {
    if (!may_have_session_effect(sql)) return session_effect::none;
    thread_local shape_result res;
    static const shape_lexer lexer;
    lexer.lex(sql, res);
    if (!res.ok()) return session_effect::unknown;
    for (const auto& st : res.statements()) {
        if (auto e = session_effect_of(st.shape); e != session_effect::none) return e;
    }
    return session_effect::none;
}

}  // namespace shardgate::router
