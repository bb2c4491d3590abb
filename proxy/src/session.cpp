// Client session lifecycle: phase order, errors to the client, greeting, teardown.
#include "session.hpp"

#include <spdlog/spdlog.h>

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
      cfg_(ctx.cfg),
      client_(std::move(sock)),
      login_deadline_(client_.socket().get_executor()) {
    ctx_.clients.fetch_add(1, std::memory_order_relaxed);
}

client_session::~client_session() {
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
    if (server_) server_->close();
    login_deadline_.disarm();
}

awaitable<bool> client_session::flush_out() {
    if (out_.empty()) co_return true;
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
    // Postgres' authentication_timeout: the whole login must finish in time.
    login_deadline_.arm(cfg_->client_login_timeout, [this] { close_all(); });

    if (co_await read_startup() != startup_outcome::proceed) co_return close_all();
    set_phase(session_phase::auth);
    if (!co_await authenticate()) co_return close_all();
    set_phase(session_phase::server_login);
    if (!co_await login_to_server()) co_return close_all();
    login_deadline_.disarm();
    set_phase(session_phase::relay);
    co_await relay();
    set_phase(session_phase::closed);
    close_all();
}

awaitable<bool> client_session::login_to_server() {
    auto db_it = cfg_->databases.find(database_name_);
    if (db_it == cfg_->databases.end()) {
        co_await send_error({pr::severity::fatal, pr::sqlstate::invalid_catalog_name,
                             "database \"" + database_name_ + "\" does not exist"});
        co_return false;
    }
    db_ = &db_it->second;
    server_login_request req;
    req.backend = backend_address{db_->name, db_->host, db_->port, db_->dbname, db_->server_tls};
    req.user = db_->server_user.empty() ? user_name_ : db_->server_user;
    const bool same_user = req.user == user_name_;
    req.password = !db_->server_password.empty()     ? db_->server_password
                   : (same_user && user_ != nullptr) ? user_->password
                                                     : std::string();
    if (same_user && user_ != nullptr) req.md5_hash = user_->md5_hash;
    if (same_user && db_->server_password.empty()) req.keys = scram_keys_;
    req.params = startup_params_;
    auto tls_it = ctx_.server_tls.find(db_->name);
    req.tls = tls_it == ctx_.server_tls.end() ? nullptr : tls_it->second.get();
    req.timeout = cfg_->server_connect_timeout;

    auto res = co_await async_server_login(client_.socket().get_executor(), std::move(req));
    if (!res.ok()) {
        if (!res.server_error.empty()) {
            // The server's own refusal (wrong server password, too many connections, unknown
            // role or database on the server...) reaches the client unchanged.
            out_.bytes(res.server_error);
            co_await flush_out();
        } else {
            spdlog::warn("login to {}:{} for database {} failed: {}", db_->host, db_->port,
                         db_->name, res.error_message);
            co_await send_error(
                {pr::severity::fatal, res.error_code, "shardgate: " + res.error_message});
        }
        co_return false;
    }
    server_.emplace(std::move(*res.stream));
    key_ = ctx_.cancels.issue();
    key_issued_ = true;
    ctx_.cancels.set_target(key_, cancel_target{db_->host, db_->port, res.server_key});

    // Greeting, in Postgres' order: ParameterStatus..., BackendKeyData, ReadyForQuery.
    out_.bytes(res.greeting);
    pr::be::encode(out_, pr::be::backend_key_data{key_.pid, key_.secret});
    pr::be::encode(out_, pr::be::ready_for_query{res.txn_status});
    co_return co_await flush_out();
}

void start_session(proxy_context& ctx, tcp::socket sock) {
    auto ex = sock.get_executor();
    auto session = std::make_shared<client_session>(ctx, std::move(sock));
    asio::co_spawn(
        ex, [session]() -> awaitable<void> { co_await session->run(); },
        [](const std::exception_ptr& e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& err) {
                spdlog::error("client session ended with an exception: {}", err.what());
            }
        });
}

}  // namespace shardgate::proxy
