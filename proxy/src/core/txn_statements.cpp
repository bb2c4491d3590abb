// What a transaction-pooled client's statements do to the server session it borrows, read
// from their text (see txn_statements.hpp).
#include "core/txn_statements.hpp"

#include "core/text.hpp"
#include "shardgate/router/shape.hpp"

namespace shardgate::proxy {
namespace rt = shardgate::router;
namespace {

// A Query or Parse body (named as `body`'s) whose statement makes the server raise `code`,
// `message` and `hint`: the server fails it as its own error would, inside a transaction too.
std::vector<std::byte> raising(char type, std::span<const std::byte> body, std::string_view code,
                               std::string_view message, std::string_view hint) {
    auto quoted = [](std::string_view v) {
        std::string q = "'";
        for (char ch : v) {
            if (ch == '\'') q += '\'';
            q += ch;
        }
        return q + "'";
    };
    const std::string sql = "DO $shardgate$BEGIN RAISE EXCEPTION USING ERRCODE = " + quoted(code) +
                            ", MESSAGE = " + quoted(message) + ", HINT = " + quoted(hint) +
                            "; END$shardgate$";
    std::vector<std::byte> out;
    auto put = [&out](std::string_view s) {
        for (char ch : s)
            out.push_back(static_cast<std::byte>(ch));
        out.push_back(std::byte{0});
    };
    if (type == 'P') {
        auto [name, rest] = cstring(body);
        put(name);
        put(sql);
        out.push_back(std::byte{0});  // no parameter types
        out.push_back(std::byte{0});
        (void)rest;
    } else {
        put(sql);
    }
    return out;
}

}  // namespace

rt::session_effect effect_of(char type, std::span<const std::byte> body, bool truncated) {
    if (truncated) return rt::session_effect::unknown;
    switch (type) {
        case 'Q':
            return rt::find_session_effect(cstring(body).first);
        case 'P': {
            auto [name, rest] = cstring(body);
            // Named statements are shared through statement_mux; only what the query does
            // to the session counts.
            (void)name;
            return rt::find_session_effect(cstring(rest).first);
        }
        case 'F':  // a fast-path call may run anything (set_config, advisory locks...)
            return rt::session_effect::unknown;
        default:
            return rt::session_effect::none;
    }
}

std::optional<std::vector<std::pair<rt::tracked_setting, std::string>>> trackable_settings(
    std::string_view sql) {
    static const rt::shape_lexer lexer;
    thread_local rt::shape_result res;
    lexer.lex(sql, res);
    if (!res.ok() || res.statement_count() == 0) return std::nullopt;
    std::vector<std::pair<rt::tracked_setting, std::string>> out;
    for (const auto& st : res.statements()) {
        auto t = rt::trackable_setting(st.shape);
        if (t && t->name == "search_path" &&
            ascii_lower(sql.substr(st.offset, st.length)).find("pg_temp") != std::string::npos)
            return std::nullopt;  // 'pg_temp' as a string: pinned, as session_effect_of pins it
        if (t) {
            out.emplace_back(std::move(*t), std::string(sql.substr(st.offset, st.length)));
        } else if (rt::session_effect_of(st.shape) != rt::session_effect::none) {
            return std::nullopt;  // something else that stays in the session: pin
        }
    }
    return out;
}

std::optional<std::vector<rt::tracked_setting>> setting_statements(std::string_view sql) {
    static const rt::shape_lexer lexer;
    thread_local rt::shape_result res;
    lexer.lex(sql, res);
    if (!res.ok()) return std::nullopt;
    std::vector<rt::tracked_setting> out;
    for (const auto& st : res.statements()) {
        if (auto t = rt::trackable_setting(st.shape)) {
            out.push_back(std::move(*t));
        } else if (st.shape == "discard all") {
            out.push_back({rt::tracked_setting::kind::reset_all, {}});
        }
    }
    return out;
}

std::vector<std::byte> refusal(char type, std::span<const std::byte> body, rt::session_effect e) {
    return raising(type, body, "0A000",
                   "shardgate: " + std::string(rt::to_string(e)) +
                       " would tie this client to one server connection, and "
                       "transaction_pinning = refuse",
                   "Use a session-mode pool for this client, or set transaction_pinning = pin.");
}

std::vector<std::byte> setting_refusal(char type, std::span<const std::byte> body,
                                       const rt::setting_error& e) {
    std::string_view hint = "Available values: auto, primary, replica.";
    if (e.name == rt::routing_setting::consistency)
        hint = "Available values: eventual, session, instance, global, primary.";
    else if (e.name == rt::routing_setting::min_lsn)
        hint = "The value is a WAL location such as '0/16B3748' (shardgate.last_commit_lsn).";
    return raising(type, body, "22023",
                   "invalid value for parameter \"" + std::string(rt::to_string(e.name)) +
                       "\": \"" + e.value + "\"",
                   hint);
}

std::vector<std::byte> held_limit_refusal(std::span<const std::byte> body) {
    return raising('Q', body, "54000",
                   "shardgate: more than 64 kB of statements before the transaction's first "
                   "query",
                   "A transaction's BEGIN, SET TRANSACTION and SET LOCAL shardgate.* statements "
                   "wait for the statement that chooses its server; send that one sooner.");
}

bool mentions_all(std::span<const std::byte> body) {
    const std::string q = ascii_lower(cstring(body).first);
    return q.find("discard all") != std::string::npos ||
           q.find("deallocate all") != std::string::npos ||
           q.find("deallocate prepare all") != std::string::npos;
}

std::vector<std::string> words_of(std::string_view sql) {
    std::vector<std::string> out;
    std::string cur;
    for (char ch : sql) {
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == ';') {
            if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
        } else {
            cur += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

bool mentions_stdin(std::string_view sql) {
    for (std::size_t at = sql.find_first_of("sS"); at != std::string_view::npos;
         at = sql.find_first_of("sS", at + 1)) {
        if (at + 5 <= sql.size() && ascii_lower(sql.substr(at, 5)) == "stdin") return true;
    }
    return false;
}

bool is_discard_all(std::string_view sql) {
    const auto w = words_of(sql);
    return w.size() == 2 && w[0] == "discard" && w[1] == "all";
}

std::optional<std::string> deallocated_name(std::string_view sql) {
    auto trim = [](std::string_view v) {
        while (!v.empty() &&
               (v.front() == ' ' || v.front() == '\t' || v.front() == '\n' || v.front() == '\r'))
            v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\n' ||
                              v.back() == '\r' || v.back() == ';'))
            v.remove_suffix(1);
        return v;
    };
    auto word = [&trim](std::string_view& v, std::string_view w) {
        v = trim(v);
        if (v.size() <= w.size() || ascii_lower(v.substr(0, w.size())) != w) return false;
        const char next = v[w.size()];
        if (next != ' ' && next != '\t' && next != '\n' && next != '\r') return false;
        v.remove_prefix(w.size());
        return true;
    };
    std::string_view v = sql;
    if (!word(v, "deallocate")) return std::nullopt;
    std::string_view after_prepare = v;
    if (word(after_prepare, "prepare")) v = after_prepare;
    v = trim(v);
    if (v.empty() || v.find(';') != std::string_view::npos) return std::nullopt;
    if (v.front() == '"') {
        if (v.size() < 3 || v.back() != '"' ||
            v.substr(1, v.size() - 2).find('"') != std::string_view::npos)
            return std::nullopt;
        return std::string(v.substr(1, v.size() - 2));
    }
    for (char ch : v) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || ch == '_' || ch == '$' ||
                        static_cast<unsigned char>(ch) >= 0x80;
        if (!ok) return std::nullopt;
    }
    if (ascii_lower(v) == "all") return std::nullopt;
    return ascii_lower(v);
}

}  // namespace shardgate::proxy
