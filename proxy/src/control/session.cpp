// Client session lifecycle: phase order, errors to the client, greeting, teardown.
#include "control/session.hpp"
#include "core/text.hpp"

#include <spdlog/spdlog.h>

#include "admin/admin.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;

std::string_view to_string(session_phase p) {
    switch (p) {
        case session_phase::startup:
            return "startup";
        case session_phase::auth:
            return "auth";
        case session_phase::server_login:
            return "server_login";
        case session_phase::relay:
            return "relay";
        case session_phase::closed:
            return "closed";
    }
    return "?";
}

client_session::client_session(proxy_context& ctx, tcp::socket sock)
    : ctx_(ctx),
      cfg_(ctx.live_config()),
      client_(std::move(sock)),
      login_deadline_(client_.socket().get_executor()),
      core_(ctx.prepared, cfg_->max_prepared_statements, ctx.client_memory.get()),
      server_pump_done_(client_.socket().get_executor()) {
    ctx_.clients.fetch_add(1, std::memory_order_relaxed);
}

client_session::~client_session() {
    if (conn_) pool::give_back(std::move(conn_), pool::conn_state::poisoned);  // not released
    if (pool_) pool_->clients.fetch_sub(1, std::memory_order_relaxed);
    if (key_issued_) ctx_.cancels.release(key_);
    ctx_.clients.fetch_sub(1, std::memory_order_relaxed);
}

void client_session::set_phase(session_phase p) {
    // Phases only move forward; closing is allowed from anywhere.
    assert(p == session_phase::closed || static_cast<int>(p) > static_cast<int>(phase_));
    phase_ = p;
}

void client_session::close_all() {
    client_.close();
    // The pooled connection is closed, not freed: a coroutine may be using it; whoever
    // releases it then finds it closed and discards it.
    if (conn_) conn_->stream.close();
    login_deadline_.disarm();
}

awaitable<bool> client_session::flush_out() {
    if (out_.empty()) co_return true;
    if (queue_client_output_) {
        core_.client_out().bytes(out_.view());
        out_.clear();
        co_return true;
    }
    error_code ec;
    co_await client_.async_write(out_.view(), ec);
    out_.clear();
    co_return !ec;
}

awaitable<void> client_session::send_error(const pr::error_fields& e) {
    pr::encode_error(out_, e);
    co_await flush_out();
}

awaitable<void> client_session::run() {
    error_code ec;
    client_.socket().set_option(tcp::no_delay(true), ec);
    // Postgres' authentication_timeout: startup and authentication must finish in time. The
    // wait for a server connection that follows has its own limit (checkout_timeout, with an
    // error message, and server_connect_timeout).
    login_deadline_.arm(cfg_->client_login_timeout, [this] { close_all(); });

    if (co_await read_startup() != startup_outcome::proceed) co_return close_all();
    set_phase(session_phase::auth);
    if (!co_await authenticate()) co_return close_all();
    login_deadline_.disarm();
    set_phase(session_phase::server_login);
    if (!co_await login_to_server()) co_return close_all();
    set_phase(session_phase::relay);
    out_.release();  // the login's messages are sent; an idle client keeps no buffer
    co_await relay();
    set_phase(session_phase::closed);
    client_.close();
}

awaitable<bool> client_session::login_to_server() {
    if (database_name_ == admin_database) {
        // The admin console (admin.hpp) answers by itself: no server connection, and the
        // session ends with the console.
        key_ = ctx_.cancels.issue();
        key_issued_ = true;
        co_await async_run_console(ctx_, client_, cfg_, user_name_, key_);
        co_return false;
    }
    auto db_it = cfg_->databases.find(database_name_);
    if (db_it == cfg_->databases.end()) {
        const std::string msg = "database \"" + database_name_ + "\" does not exist";
        co_await send_error({pr::severity::fatal, pr::sqlstate::invalid_catalog_name, msg});
        co_return false;
    }
    db_ = &db_it->second;
    auto user_it = cfg_->users.find(user_name_);
    if (user_it == cfg_->users.end()) co_return false;  // authentication refused it already
    pool_ = ctx_.pools->get(*db_, user_it->second);
    if (!pool_) {  // removed by a reload since this client connected
        const std::string msg = "database \"" + database_name_ + "\" does not exist";
        co_await send_error({pr::severity::fatal, pr::sqlstate::invalid_catalog_name, msg});
        co_return false;
    }
    pool_->clients.fetch_add(1, std::memory_order_relaxed);
    if (scram_keys_) {
        pool_->learn_keys(*scram_keys_);
        scram_keys_.reset();  // an idle client keeps nothing it no longer needs
    }
    start_splitting();
    const bool txn = pool_->cfg.mode == pool_mode::transaction;
    if (txn) {
        // Transaction pooling: a login like an earlier one is greeted as that one was, and
        // its first transaction takes a server connection like every later one.
        const auto cached = pool_->cached_greeting(
            pool::startup_key(core_.settings().startup_params), pool::steady::now());
        if (cached) {
            key_ = ctx_.cancels.issue();
            key_issued_ = true;
            // Where cancels go; the backend key comes with each transaction's connection.
            ctx_.cancels.set_target(key_, cancel_target{db_->host, db_->port, {}});
            co_return co_await send_greeting(cached->params);
        }
    }

    // Transaction pooling shares connections between clients transaction by transaction:
    // they are opened without client parameters, which are applied per checkout instead.
    static const std::vector<std::pair<std::string, std::string>> none;
    const auto& params = txn ? none : core_.settings().startup_params;
    auto res = co_await pool_->pool->checkout(client_.socket().get_executor(), params);
    // Session mode: RESET returns a connection to the startup parameters it was opened with,
    // so one opened with another client's (or with none) would leak them into this session, or
    // RESET to the server's defaults. A waiting client can be handed any connection: such a
    // one is replaced by a new one opened with ours, unless the backend cannot be reached now
    // (then the client's parameters are applied on top: availability first).
    const auto want_key = pool::startup_key(params);
    auto foreign = [&](const pool::checkout_result& r) {
        return r.ok() && r.conn->startup_key != want_key &&
               pool_->pool->stats().backoff.count() == 0;
    };
    for (int tries = 0; tries < 3 && foreign(res); ++tries) {
        pool::give_back(std::move(res.conn), pool::conn_state::poisoned);
        auto again = co_await pool_->pool->checkout(client_.socket().get_executor(), params);
        res = std::move(again);
    }
    if (foreign(res)) {
        // Still someone else's (the pool kept handing them out): not usable for this client.
        pool::give_back(std::move(res.conn), pool::conn_state::clean);
        res.error_code = pr::sqlstate::too_many_connections;
        res.error_message =
            "no server connection with this client's startup parameters "
            "became available";
    }
    if (!res.ok()) {
        if (!res.server_error.empty()) {
            // The server's own refusal (wrong server password, too many connections, unknown
            // role or database on the server...) reaches the client unchanged.
            out_.bytes(res.server_error);
            co_await flush_out();
        } else {
            spdlog::warn("database {} user {}: no server connection: {}", db_->name, user_name_,
                         res.error_message);
            const std::string msg = "shardgate: " + res.error_message;
            co_await send_error({pr::severity::fatal, res.error_code, msg});
        }
        co_return false;
    }
    conn_ = std::move(res.conn);
    if (!co_await apply_startup_params()) co_return false;
    key_ = ctx_.cancels.issue();
    key_issued_ = true;
    ctx_.cancels.set_target(key_, cancel_target{db_->host, db_->port, conn_->key});
    if (txn) {
        pool_->remember_greeting(pool::startup_key(core_.settings().startup_params),
                                 {conn_->params, pool::steady::now() + pool_entry::greeting_ttl});
    }
    // The parameters are the connection's, after the client's settings were applied.
    co_return co_await send_greeting(conn_->params);
}

awaitable<bool> client_session::send_greeting(
    const std::vector<std::pair<std::string, std::string>>& params) {
    // Postgres' order: ParameterStatus..., BackendKeyData, ReadyForQuery.
    for (const auto& [name, value] : params)
        pr::be::encode(out_, pr::be::parameter_status{name, value});
    pr::be::encode(out_, pr::be::backend_key_data{key_.pid, key_.secret});
    pr::be::encode(out_, pr::be::ready_for_query{'I'});
    co_return co_await flush_out();
}

awaitable<bool> client_session::apply_startup_params() {
    // Server connections are opened with only user and database; each client's startup
    // parameters (and -c settings in `options`) are applied with set_config(), which reads
    // values as the startup packet would (lists like search_path included), and only where
    // the connection's value differs.
    // A connection whose session values are exactly these parameters needs nothing.
    // Transaction pooling: the connection may carry another client's parameters. RESET ALL
    // returns it to the server's defaults (it was opened with none), then ours are applied
    // (startup parameters, then the client's SET statements), all in one round trip.
    const bool txn = pool_->cfg.mode == pool_mode::transaction;
    const auto my_key = txn ? core_.settings().current_session_key()
                            : pool::startup_key(core_.settings().startup_params);
    if ((txn ? conn_->applied_key : conn_->startup_key) == my_key) co_return true;
    std::vector<std::pair<std::string, std::string>> wanted;
    for (const auto& [k, v] : core_.settings().startup_params) {
        if (k == "options") {
            std::string bad;
            if (!parse_options(v, wanted, bad)) {
                // Strings in locals: GCC 12 mishandles temporaries inside co_await operands.
                const std::string msg = "shardgate: unsupported startup option \"" + bad + "\"";
                co_await send_error({pr::severity::fatal, pr::sqlstate::feature_not_supported, msg,
                                     "Only -c name=value and --name=value are supported in "
                                     "options."});
                fatal_sent_ = true;
                pool::give_back(std::move(conn_), pool::conn_state::clean);  // untouched
                co_return false;
            }
        } else {
            wanted.emplace_back(k, v);
        }
    }
    std::vector<std::pair<std::string, std::string>> to_set;
    std::vector<std::pair<std::string, std::string>> applied;
    for (const auto& [k, v] : wanted) {
        const auto key = ascii_lower(k);
        const std::string* reported = nullptr;
        for (const auto& [n, val] : conn_->params)
            if (ascii_lower(n) == key) reported = &val;
        if (!txn && reported != nullptr && *reported == v) continue;
        if (!txn && reported == nullptr) {
            auto it = conn_->applied.find(key);
            if (it != conn_->applied.end() && it->second == v) continue;
        }
        to_set.emplace_back(k, v);
        if (reported == nullptr) applied.emplace_back(key, v);
    }
    std::string sql = set_config_sql(to_set);
    if (txn) {
        sql = "RESET ALL" + (sql.empty() ? std::string() : "; " + sql);
        for (const auto& [name, stmt] : core_.settings().replayed())
            sql += "; " + stmt;
        conn_->applied.clear();
    }
    if (sql.empty()) co_return true;
    auto r = co_await pool::async_exec(*conn_, sql, cfg_->server_connect_timeout);
    if (!r.ok && r.error.empty() && conn_lost_retries_ > 0) {
        // The connection broke or did not answer in time (not the client's fault): the caller
        // tries another one.
        --conn_lost_retries_;
        spdlog::info(
            "pool {}: server connection {} lost while applying settings ({}); trying "
            "another",
            pool_->pool->name(), conn_->id, r.error_message);
        pool::give_back(std::move(conn_), pool::conn_state::poisoned);
        co_return false;
    }
    if (!r.ok || !r.error.empty() || r.txn_status != 'I') {
        // Postgres refuses a bad startup parameter with FATAL and the same message.
        fatal_sent_ = true;
        if (r.error.size() > 5) {
            // The server's own error (with its detail), as the FATAL it is at login.
            fatal_from_error(r.error);
            co_await flush_out();
        } else {
            const std::string code =
                r.error_code.empty() ? std::string(pr::sqlstate::connection_failure) : r.error_code;
            co_await send_error({pr::severity::fatal, code, r.error_message});
        }
        // Back to the pool it came from (a replica's, with read/write splitting): clean if it
        // answered and is idle, and the next client's settings are applied afresh.
        conn_->applied_key =
            "\x02"
            "failed";
        pool::give_back(std::move(conn_), r.ok && r.txn_status == 'I' ? pool::conn_state::clean
                                                                      : pool::conn_state::poisoned);
        co_return false;
    }
    for (auto& [k, v] : applied)
        conn_->applied[k] = v;
    if (txn) conn_->applied_key = my_key;
    co_return true;
}

void client_session::fatal_from_error(std::span<const std::byte> whole) {
    // Fields: a code byte and a C string each, then a NUL. S and V become FATAL.
    const auto mark = out_.begin_message('E');
    std::size_t at = 5;
    while (at < whole.size() && whole[at] != std::byte{0}) {
        const char field = static_cast<char>(whole[at]);
        std::size_t end = at + 1;
        while (end < whole.size() && whole[end] != std::byte{0})
            ++end;
        out_.u8(static_cast<std::uint8_t>(field));
        if (field == 'S' || field == 'V') {
            out_.cstring("FATAL");
        } else {
            out_.bytes(whole.subspan(at + 1, end - at - 1));
            out_.u8(0);
        }
        at = end + 1;
    }
    out_.u8(0);
    out_.end_message(mark);
}

void start_session(proxy_context& ctx, tcp::socket sock) {
    auto ex = sock.get_executor();
    auto session = std::make_shared<client_session>(ctx, std::move(sock));
    // The session's coroutine itself, kept alive by the completion handler (no wrapping
    // coroutine frame: an idle client costs what its frames hold).
    auto body = session->run();
    asio::co_spawn(ex, std::move(body), [session](const std::exception_ptr& e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& err) {
            spdlog::error("client session ended with an exception: {}", err.what());
        }
    });
}

}  // namespace shardgate::proxy
