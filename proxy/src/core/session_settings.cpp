// Session settings under transaction pooling (session_settings.hpp). Moved from the client
// session (no behaviour change).
#include "core/session_settings.hpp"

#include <algorithm>

#include "core/text.hpp"
#include "core/txn_statements.hpp"

namespace shardgate::proxy {
namespace {

// The value the server last reported (ParameterStatus) for setting `lower_name`, or null if it
// is not a reported setting.
const std::string* reported(const pool::backend_state& c, std::string_view lower_name) {
    for (const auto& [n, v] : c.params)
        if (ascii_lower(n) == lower_name) return &v;
    return nullptr;
}

// A setting's name as an identifier ("myapp.tenant" as "myapp"."tenant"): names are kept in
// lower case, as Postgres folds them.
std::string quoted_name(std::string_view name) {
    std::string out = "\"";
    for (char ch : name) {
        if (ch == '.') {
            out += "\".\"";
        } else {
            if (ch == '"') out += '"';
            out += ch;
        }
    }
    return out + '"';
}

// An E'' literal: valid whatever standard_conforming_strings says.
void append_literal(std::string& sql, std::string_view v) {
    sql += "E'";
    for (char ch : v) {
        if (ch == '\'' || ch == '\\') sql += ch;
        sql += ch;
    }
    sql += '\'';
}

}  // namespace

bool parse_options(std::string_view opts, std::vector<std::pair<std::string, std::string>>& out,
                   std::string& bad) {
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false;
    for (std::size_t i = 0; i < opts.size(); ++i) {
        const char ch = opts[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v') {
            if (in_word) words.push_back(std::move(cur)), cur.clear(), in_word = false;
            continue;
        }
        in_word = true;
        if (ch == '\\' && i + 1 < opts.size()) {
            cur += opts[++i];
        } else {
            cur += ch;
        }
    }
    if (in_word) words.push_back(std::move(cur));
    for (std::size_t i = 0; i < words.size(); ++i) {
        std::string setting;
        if (words[i] == "-c" && i + 1 < words.size()) {
            setting = words[++i];
        } else if ((words[i].rfind("-c", 0) == 0 || words[i].rfind("--", 0) == 0) &&
                   words[i].size() > 2) {
            setting = words[i].substr(2);
        } else {
            bad = words[i];
            return false;
        }
        const auto eq = setting.find('=');
        if (eq == std::string::npos || eq == 0) {
            bad = setting;
            return false;
        }
        auto name = setting.substr(0, eq);
        for (auto& ch : name)
            if (ch == '-') ch = '_';  // --statement-timeout=... as Postgres accepts it
        out.emplace_back(std::move(name), setting.substr(eq + 1));
    }
    return true;
}

setting_list session_settings::startup_settings() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, v] : startup_params) {
        std::string bad;
        if (k == "options") {
            (void)parse_options(v, out, bad);  // refused at login if bad
        } else {
            out.emplace_back(k, v);
        }
    }
    return out;
}

std::string set_config_sql(const setting_list& settings) {
    std::string sql;
    for (const auto& [k, v] : settings) {
        sql += sql.empty() ? "SELECT " : ", ";
        sql += "pg_catalog.set_config(";
        append_literal(sql, k);
        sql += ", ";
        append_literal(sql, v);
        sql += ", false)";
    }
    return sql;
}

bool session_settings::reset_tail(std::string_view sql, std::string& tail) const {
    if (startup_params.empty()) return false;
    const auto statements = setting_statements(sql);
    if (!statements) return false;
    // Which startup parameters the Query leaves at the server's default: the ones whose last
    // word in it is RESET name, SET name TO DEFAULT, SET TIME ZONE LOCAL, RESET ALL or
    // DISCARD ALL (a later SET of the same name in the Query keeps its own value).
    auto settings = startup_settings();
    std::vector<bool> restore(settings.size(), false);
    for (const auto& t : *statements) {
        for (std::size_t i = 0; i < settings.size(); ++i) {
            const bool same = t.what == router::tracked_setting::kind::reset_all ||
                              ascii_lower(settings[i].first) == t.name;
            if (same) restore[i] = t.what != router::tracked_setting::kind::set;
        }
    }
    std::vector<std::pair<std::string, std::string>> put_back;
    for (std::size_t i = 0; i < settings.size(); ++i) {
        // A name given twice (options after a plain parameter): its last value counts.
        if (!restore[i]) continue;
        std::erase_if(put_back, [&](const auto& e) {
            return ascii_lower(e.first) == ascii_lower(settings[i].first);
        });
        put_back.push_back(std::move(settings[i]));
    }
    if (put_back.empty()) return false;
    tail = set_config_sql(put_back);
    return true;
}

const std::string& session_settings::current_session_key() {
    if (!key_valid_) {
        key_cache_ = session_key();
        key_valid_ = true;
    }
    return key_cache_;
}

std::string session_settings::session_key() const {
    std::string key = pool::startup_key(startup_params);
    for (const auto& [name, stmt] : settings_) {
        key += '\x01';
        key += stmt;
    }
    return key;
}

void session_settings::end_exchange(char txn_status, pool::backend_state* backend) {
    if (pending_.empty()) return;
    if (!pending_failed_ && !pending_unexecuted_ && txn_status == 'I')
        commit(backend);
    else
        pending_.clear();
    pending_unexecuted_ = false;
}

void session_settings::commit(pool::backend_state* conn) {
    // A RESET of a startup parameter returns the server to its own default rather than the
    // client's startup value: the connection must be set up again before its next use.
    bool redo = false;
    auto is_startup = [this](const std::string& name) {
        for (const auto& [k, v] : startup_params) {
            if (ascii_lower(k) == name || k == "options") return true;
        }
        return false;
    };
    for (auto& [t, stmt] : pending_) {
        const std::string& t_name = t.name;  // Clang 14 cannot capture a structured binding
        auto same = [&t_name](const auto& e) { return e.first == t_name; };
        switch (t.what) {
            case router::tracked_setting::kind::set:
                std::erase_if(settings_, same);
                // A reported setting (DateStyle, TimeZone, IntervalStyle...) is replayed with
                // the value the server ended up with: SET datestyle TO ymd changes only the
                // order, so its text alone would lose the style set before it. Other settings
                // are whole in every SET: their last statement is their value.
                if (const std::string* now = conn ? reported(*conn, t.name) : nullptr) {
                    std::string canonical;
                    for (const auto& [n, v] : conn->params)
                        if (&v == now) canonical = n;
                    stmt = set_config_sql({{canonical, *now}});
                }
                settings_.emplace_back(t.name, std::move(stmt));
                break;
            case router::tracked_setting::kind::reset:
                std::erase_if(settings_, same);
                // A custom setting (a dotted name) stays defined after RESET, with an empty
                // value: replaying the RESET defines it on the next connection too.
                if (t.name.find('.') != std::string::npos)
                    settings_.emplace_back(t.name, "RESET " + quoted_name(t.name));
                redo = redo || is_startup(t.name);
                break;
            case router::tracked_setting::kind::reset_all:
                // The same for RESET ALL and DISCARD ALL.
                std::erase_if(settings_,
                              [](const auto& e) { return e.first.find('.') == std::string::npos; });
                for (auto& [name, text] : settings_)
                    text = "RESET " + quoted_name(name);
                redo = redo || !startup_params.empty();
                break;
        }
    }
    pending_.clear();
    key_valid_ = false;
    if (conn) conn->applied_key = redo ? std::string("\x02redo") : session_key();
}

}  // namespace shardgate::proxy
