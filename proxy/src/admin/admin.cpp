// Admin console: command parsing, the console's query loop, PAUSE / RESUME / RELOAD.
// SHOW tables are built in admin_show.cpp.
#include "admin/admin.hpp"
#include "core/text.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "admin/admin_show.hpp"
#include "control/pools.hpp"
#include "control/version.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/errors.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;

namespace {

// SQLSTATEs only the console sends (Postgres' errcodes.txt names).
constexpr std::string_view insufficient_privilege = "42501";
constexpr std::string_view syntax_error = "42601";
constexpr std::string_view object_in_use = "55006";

bool is_blank(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_blank(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_blank(s.back()))
        s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> words(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_blank(s[i]))
            ++i;
        const auto from = i;
        while (i < s.size() && !is_blank(s[i]))
            ++i;
        if (i > from) out.push_back(s.substr(from, i - from));
    }
    return out;
}

// A database name as PAUSE / RESUME take it: plain, or in double quotes ("" is a quote).
bool database_word(std::string_view w, std::string& out) {
    if (w.size() >= 2 && w.front() == '"' && w.back() == '"') {
        out.clear();
        for (std::size_t i = 1; i + 1 < w.size(); ++i) {
            if (w[i] == '"' && i + 2 < w.size() && w[i + 1] == '"') ++i;
            out += w[i];
        }
        return !out.empty();
    }
    if (w.find('"') != std::string_view::npos) return false;
    out = std::string(w);
    return true;
}

admin_command invalid(std::string msg) {
    return {admin_command::kind::invalid, {}, std::move(msg)};
}

}  // namespace

admin_access console_access(const config& c, std::string_view user) {
    auto has = [user](const std::vector<std::string>& v) {
        return std::find(v.begin(), v.end(), user) != v.end();
    };
    if (has(c.admin_users)) return admin_access::admin;
    if (has(c.stats_users)) return admin_access::stats;
    return admin_access::none;
}

const std::vector<std::string_view>& admin_show_subjects() {
    static const std::vector<std::string_view> s{"help",    "pools",    "databases", "config",
                                                 "version", "replicas", "routes",    "parse_cache"};
    return s;
}

admin_command parse_admin_command(std::string_view statement) {
    const auto w = words(statement);
    if (w.empty()) return {};
    const auto verb = ascii_lower(w[0]);
    if (verb == "show") {
        if (w.size() != 2) return invalid("SHOW takes one word, as in SHOW POOLS");
        auto subject = ascii_lower(w[1]);
        const auto& known = admin_show_subjects();
        if (std::find(known.begin(), known.end(), subject) == known.end())
            return invalid("unknown SHOW subject \"" + std::string(w[1]) + "\"");
        return {admin_command::kind::show, std::move(subject), {}};
    }
    if (verb == "pause" || verb == "resume") {
        const auto k = verb == "pause" ? admin_command::kind::pause : admin_command::kind::resume;
        if (w.size() == 1) return {k, {}, {}};
        std::string db;
        if (w.size() != 2 || !database_word(w[1], db))
            return invalid(std::string(verb == "pause" ? "PAUSE" : "RESUME") +
                           " takes at most one database name");
        return {k, std::move(db), {}};
    }
    if (verb == "reload") {
        if (w.size() != 1) return invalid("RELOAD takes no arguments");
        return {admin_command::kind::reload, {}, {}};
    }
    std::string shown(trim(statement).substr(0, 64));
    return invalid("invalid command \"" + shown + "\"");
}

std::vector<std::string_view> split_admin_statements(std::string_view sql) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto semi = sql.find(';');
        const auto part = trim(sql.substr(0, semi));
        if (!part.empty()) out.push_back(part);
        if (semi == std::string_view::npos) break;
        sql.remove_prefix(semi + 1);
    }
    return out;
}

namespace {

// What a failed command tells the client (an ERROR; the session goes on).
struct console_error {
    std::string code;
    std::string message;
    std::string detail;
    std::string hint;
};

class console {
  public:
    console(proxy_context& ctx, pg_stream& client, std::string user, admin_access access)
        : ctx_(ctx), client_(client), user_(std::move(user)), access_(access) {}

    awaitable<void> run(backend_key key);

  private:
    awaitable<bool> flush();
    awaitable<void> simple_query(std::span<const std::byte> body);
    awaitable<std::optional<console_error>> execute(const admin_command& cmd);
    awaitable<std::optional<console_error>> pause(const std::string& db);
    std::optional<console_error> resume(const std::string& db);
    std::optional<console_error> reload();
    void error(const console_error& e);

    proxy_context& ctx_;
    pg_stream& client_;
    std::string user_;
    admin_access access_;
    pr::write_buffer out_;
};

awaitable<bool> console::flush() {
    if (out_.empty()) co_return true;
    error_code ec;
    co_await client_.async_write(out_.view(), ec);
    out_.clear();
    co_return !ec;
}

void console::error(const console_error& e) {
    pr::encode_error(out_, {pr::severity::error, e.code, e.message, e.detail, e.hint});
}

awaitable<void> console::run(backend_key key) {
    // Fixed parameters, as PgBouncer's console reports them; server_version names shardgate
    // so that clients do not mistake the console for a Postgres server.
    const std::string server_version = std::string(version()) + "/shardgate";
    const std::pair<std::string_view, std::string_view> params[] = {
        {"server_version", server_version}, {"server_encoding", "UTF8"},
        {"client_encoding", "UTF8"},        {"DateStyle", "ISO"},
        {"integer_datetimes", "on"},        {"standard_conforming_strings", "on"},
        {"application_name", "shardgate"},
    };
    for (const auto& [name, value] : params)
        pr::be::encode(out_, pr::be::parameter_status{std::string(name), std::string(value)});
    pr::be::encode(out_, pr::be::backend_key_data{key.pid, key.secret});
    pr::be::encode(out_, pr::be::ready_for_query{'I'});
    const bool greeted = co_await flush();
    if (!greeted) co_return;

    const pr::frame_decoder decoder(ctx_.live_config()->max_message_size);
    std::vector<std::byte> in;
    std::array<std::byte, 8192> chunk{};
    bool skipping = false;  // an extended-protocol message was refused: ignore until Sync
    for (;;) {
        auto f = decoder.feed(in);
        if (f.status == pr::frame_status::error) {
            const std::string msg = f.error == pr::frame_error::too_large
                                        ? "message too large for the admin console"
                                        : "invalid message length";
            pr::encode_error(out_, {pr::severity::fatal, pr::sqlstate::protocol_violation, msg});
            co_await flush();
            co_return;
        }
        if (f.status == pr::frame_status::need_more) {
            // Replies to everything received so far go out before waiting for more.
            const bool sent = co_await flush();
            if (!sent) co_return;
            error_code ec;
            const auto n = co_await client_.async_read_some(asio::buffer(chunk), ec);
            if (ec) co_return;
            in.insert(in.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
            continue;
        }
        const char type = f.msg.type;
        // Copy the body: `in` is compacted before the command runs.
        const std::vector<std::byte> body(f.msg.body.begin(), f.msg.body.end());
        in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(f.consumed));
        if (type == 'X') co_return;
        if (type == 'S') {
            skipping = false;
            pr::be::encode(out_, pr::be::ready_for_query{'I'});
        } else if (skipping || type == 'H' || type == 'd' || type == 'c' || type == 'f') {
            // Ignored: after a refused extended-protocol message until Sync, Flush, and copy
            // messages outside COPY (Postgres ignores those too).
        } else if (type == 'Q') {
            co_await simple_query(body);
        } else if (type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C' ||
                   type == 'F') {
            error({std::string(pr::sqlstate::feature_not_supported),
                   "the admin console supports only the simple query protocol",
                   {},
                   "Send console commands as simple queries, e.g. psql -c 'SHOW POOLS'."});
            if (type == 'F')
                pr::be::encode(out_, pr::be::ready_for_query{'I'});
            else
                skipping = true;
        } else {
            const std::string msg =
                "invalid frontend message type " + std::to_string(static_cast<int>(type));
            pr::encode_error(out_, {pr::severity::fatal, pr::sqlstate::protocol_violation, msg});
            co_await flush();
            co_return;
        }
    }
}

awaitable<void> console::simple_query(std::span<const std::byte> body) {
    std::string_view sql(reinterpret_cast<const char*>(body.data()), body.size());
    if (!sql.empty() && sql.back() == '\0') sql.remove_suffix(1);
    const auto statements = split_admin_statements(sql);
    if (statements.empty()) pr::be::encode(out_, pr::be::empty_query_response{});
    for (const auto stmt : statements) {
        const auto cmd = parse_admin_command(stmt);
        spdlog::debug("admin console: user {}: {}", user_, stmt);
        auto failed = co_await execute(cmd);
        if (failed) {
            error(*failed);
            break;  // as Postgres: the rest of a multi-statement Query is skipped
        }
    }
    pr::be::encode(out_, pr::be::ready_for_query{'I'});
}

awaitable<std::optional<console_error>> console::execute(const admin_command& cmd) {
    using k = admin_command::kind;
    if (cmd.what == k::invalid) {
        console_error e{
            std::string(syntax_error), cmd.error, {}, "SHOW HELP lists the console's commands."};
        co_return e;
    }
    if (cmd.what == k::show) {
        encode_show(out_, ctx_, cmd.subject);
        co_return std::nullopt;
    }
    if (access_ != admin_access::admin) {
        spdlog::info("admin console: user {} (stats_users) may not run control commands", user_);
        console_error e{std::string(insufficient_privilege), "admin access needed",
                        "stats_users may only run SHOW commands.", ""};
        co_return e;
    }
    std::optional<console_error> result;
    std::string tag;
    switch (cmd.what) {
        case k::pause:
            result = co_await pause(cmd.subject);
            tag = "PAUSE";
            break;
        case k::resume:
            result = resume(cmd.subject);
            tag = "RESUME";
            break;
        case k::reload:
            result = reload();
            tag = "RELOAD";
            break;
        default:
            co_return std::nullopt;
    }
    if (!result) pr::be::encode(out_, pr::be::command_complete{tag});
    co_return result;
}

awaitable<std::optional<console_error>> console::pause(const std::string& db) {
    const auto cfg = ctx_.live_config();
    if (!db.empty() && cfg->databases.count(db) == 0) {
        console_error e{std::string(pr::sqlstate::invalid_catalog_name), "no such database: ", "",
                        ""};
        e.message += db;
        co_return e;
    }
    std::string what = "all databases";
    if (!db.empty()) what = "database " + db;
    spdlog::info("admin console: user {}: PAUSE {}", user_, what);
    ctx_.pools->pause(db);
    // Returns once no server connection of the paused pools is in use: transactions (and, in
    // session mode, clients) finish first. Bounded by shutdown_timeout.
    const auto until = std::chrono::steady_clock::now() + cfg->shutdown_timeout;
    asio::steady_timer t(client_.socket().get_executor());
    for (;;) {
        std::uint32_t busy = 0;
        for (const auto& e : ctx_.pools->entries()) {
            if (!db.empty() && e->database != db) continue;
            const auto s = e->pool->stats();
            busy += s.active + s.connecting;
        }
        if (busy == 0) break;
        if (std::chrono::steady_clock::now() >= until) {
            spdlog::warn("admin console: PAUSE {}: {} server connections still in use after {} ms",
                         what, busy, cfg->shutdown_timeout.count());
            console_error e{std::string(object_in_use),
                            {},
                            "The pools stay paused: new queries wait. Session-mode clients keep "
                            "their connection until they disconnect.",
                            "RESUME lets waiting clients through again."};
            e.message = "PAUSE timed out after " + std::to_string(cfg->shutdown_timeout.count()) +
                        " ms (shutdown_timeout): " + std::to_string(busy) +
                        " server connections of " + what + " are still in use";
            co_return e;
        }
        t.expires_after(std::chrono::milliseconds(20));
        error_code ec;
        co_await t.async_wait(ec_token(ec));
    }
    spdlog::info("admin console: PAUSE {}: no server connection in use", what);
    co_return std::nullopt;
}

std::optional<console_error> console::resume(const std::string& db) {
    if (!db.empty() && ctx_.live_config()->databases.count(db) == 0)
        return console_error{std::string(pr::sqlstate::invalid_catalog_name),
                             "no such database: " + db, "", ""};
    auto err = ctx_.pools->resume(db);
    if (!err.empty())
        return console_error{"55000", err, "", "RESUME without a database resumes everything."};
    spdlog::info("admin console: user {}: RESUME {}", user_, db.empty() ? "all" : db);
    return std::nullopt;
}

std::optional<console_error> console::reload() {
    if (!ctx_.reload)
        return console_error{std::string(pr::sqlstate::feature_not_supported),
                             "RELOAD is not available", "", ""};
    spdlog::info("admin console: user {}: RELOAD", user_);
    auto err = ctx_.reload();
    if (!err.empty())
        return console_error{"F0000", "RELOAD failed: " + err,
                             "The running configuration stays in effect.", ""};
    return std::nullopt;
}

}  // namespace

awaitable<void> async_run_console(proxy_context& ctx, pg_stream& client,
                                  std::shared_ptr<const config> login_cfg, std::string user,
                                  backend_key key) {
    const auto access = console_access(*login_cfg, user);
    if (access == admin_access::none) {
        spdlog::info("admin console: user {} is not in admin_users or stats_users", user);
        pr::write_buffer out;
        const std::string msg = "not allowed: user \"" + user + "\" may not use the admin console";
        pr::encode_error(out, {pr::severity::fatal, insufficient_privilege, msg,
                               "Only admin_users and stats_users may connect to database "
                               "\"shardgate\"."});
        error_code ec;
        co_await client.async_write(out.view(), ec);
        co_return;
    }
    console c(ctx, client, std::move(user), access);
    co_await c.run(key);
}

}  // namespace shardgate::proxy
