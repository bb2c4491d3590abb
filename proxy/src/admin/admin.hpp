// The admin console, as PgBouncer has it: the virtual database "shardgate" on the client port.
// Users in admin_users (every command) or stats_users (SHOW only) log in as usual and get no
// server connection; shardgate answers their simple-protocol queries itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "control/context.hpp"
#include "control/io.hpp"

namespace shardgate::proxy {

inline constexpr std::string_view admin_database = "shardgate";

enum class admin_access : std::uint8_t {
    none,   // not a console user: refused at login
    stats,  // stats_users: SHOW only
    admin,  // admin_users: everything
};
admin_access console_access(const config& c, std::string_view user);

// One console statement, parsed. Words are case-insensitive; database names are kept as
// written (double quotes removed).
struct admin_command {
    enum class kind : std::uint8_t { empty, show, pause, resume, reload, invalid };
    kind what = kind::empty;
    std::string subject;  // show: "pools", "databases", ...; pause/resume: a database or ""
    std::string error;    // invalid: the message for the client (SQLSTATE 42601)
};

// SHOW subjects the console answers, lower case, in SHOW HELP's order.
const std::vector<std::string_view>& admin_show_subjects();
admin_command parse_admin_command(std::string_view statement);
// A Query's text cut at ';' (console commands have no quoted semicolons), blanks trimmed.
std::vector<std::string_view> split_admin_statements(std::string_view sql);

// The console session of a client authenticated as `user` for database "shardgate": refuses
// non-console users (FATAL 42501), else sends the greeting and answers queries until the
// client leaves. `login_cfg` is the configuration the client authenticated against.
awaitable<void> async_run_console(proxy_context& ctx, pg_stream& client,
                                  std::shared_ptr<const config> login_cfg, std::string user,
                                  backend_key key);

}  // namespace shardgate::proxy
