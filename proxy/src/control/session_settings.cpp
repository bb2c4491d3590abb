// Session settings under transaction pooling: what a client's SET / RESET leave, kept as the
// statements that replay them on the next server connection (session_key() names the result).
// Split from session.cpp.
#include "control/session.hpp"
#include "core/text.hpp"

namespace shardgate::proxy {
namespace {

// The value the server last reported (ParameterStatus) for setting `lower_name`, or null if it
// is not a reported setting.
const std::string* reported(const pool::server_conn& c, std::string_view lower_name) {
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

}  // namespace

std::string client_session::session_key() const {
    std::string key = pool::startup_key(startup_params_);
    for (const auto& [name, stmt] : settings_) {
        key += '\x01';
        key += stmt;
    }
    return key;
}

void client_session::commit_settings() {
    // A RESET of a startup parameter returns the server to its own default rather than the
    // client's startup value: the connection must be set up again before its next use.
    bool redo = false;
    auto is_startup = [this](const std::string& name) {
        for (const auto& [k, v] : startup_params_) {
            if (ascii_lower(k) == name || k == "options") return true;
        }
        return false;
    };
    for (auto& [t, stmt] : pending_settings_) {
        const std::string& t_name = t.name;  // Clang 14 cannot capture a structured binding
        auto same = [&t_name](const auto& e) { return e.first == t_name; };
        switch (t.what) {
            case router::tracked_setting::kind::set:
                std::erase_if(settings_, same);
                // A reported setting (DateStyle, TimeZone, IntervalStyle...) is replayed with
                // the value the server ended up with: SET datestyle TO ymd changes only the
                // order, so its text alone would lose the style set before it. Other settings
                // are whole in every SET: their last statement is their value.
                if (const std::string* now = conn_ ? reported(*conn_, t.name) : nullptr) {
                    std::string canonical;
                    for (const auto& [n, v] : conn_->params)
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
                redo = redo || !startup_params_.empty();
                break;
        }
    }
    pending_settings_.clear();
    session_key_valid_ = false;
    if (conn_) conn_->applied_key = redo ? std::string("\x02redo") : session_key();
}

}  // namespace shardgate::proxy
