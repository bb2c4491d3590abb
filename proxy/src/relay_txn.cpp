// Query loop of a transaction-pooled client (pool_mode = transaction), on the Asio workers.
// The client holds a server connection from the first message of a transaction until the
// ReadyForQuery that shows it idle ('I') with nothing owed; then the connection goes back to
// the pool. A client that leaves state in its server session (SET, PREPARE, LISTEN, temporary
// tables, WITH HOLD cursors, session advisory locks, named protocol-level statements: see
// router/session_effects.hpp) is pinned to its connection until it disconnects.
#include <spdlog/spdlog.h>

#include "session.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/scanner.hpp"
#include "shardgate/protocol/sqlstate.hpp"
#include "shardgate/router/session_effects.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;
namespace rt = shardgate::router;
namespace {

// The C string at the start of `body`, and the rest after its NUL (empty views if malformed).
std::pair<std::string_view, std::span<const std::byte>> cstring(std::span<const std::byte> body) {
    const auto* p = reinterpret_cast<const char*>(body.data());
    for (std::size_t i = 0; i < body.size(); ++i) {
        if (p[i] == '\0') return {std::string_view(p, i), body.subspan(i + 1)};
    }
    return {{}, {}};
}

// What a client message does to its server session, for the messages that may pin.
rt::session_effect effect_of(char type, std::span<const std::byte> body, bool truncated) {
    if (truncated) return rt::session_effect::unknown;
    switch (type) {
        case 'Q':
            return rt::find_session_effect(cstring(body).first);
        case 'P': {
            auto [name, rest] = cstring(body);
            // A named statement lives in the server session.
            if (!name.empty()) return rt::session_effect::prepare;
            return rt::find_session_effect(cstring(rest).first);
        }
        case 'F':  // a fast-path call may run anything (set_config, advisory locks...)
            return rt::session_effect::unknown;
        default:
            return rt::session_effect::none;
    }
}

}  // namespace

awaitable<bool> client_session::attach_server() {
    auto res = co_await pool_->pool->checkout(client_.socket().get_executor());
    if (!res.ok()) {
        // Not FATAL: the client may try again; it gets one error per reply it is owed.
        const std::string msg = "shardgate: " + res.error_message;
        const std::string code = res.error_code;
        spdlog::info("database {} user {}: no server connection: {}", database_name_, user_name_,
                     res.error_message);
        const std::size_t owed = std::max<std::size_t>(1, tracker_.owed());
        for (std::size_t i = 0; i < owed; ++i) {
            pr::encode_error(out_, {pr::severity::error, code, msg});
            pr::be::encode(out_, pr::be::ready_for_query{'I'});
        }
        tracker_.forget_owed();
        co_await flush_out();
        co_return false;
    }
    conn_ = std::move(res.conn);
    if (!co_await apply_startup_params()) co_return false;
    ctx_.cancels.set_target(key_, cancel_target{db_->host, db_->port, conn_->key});
    ++attach_generation_;
    co_return true;
}

void client_session::detach_server() {
    ctx_.cancels.clear_target(key_);
    conn_->txn_status = 'I';
    pool_->pool->checkin(std::move(conn_));
}

awaitable<void> client_session::relay_transaction_mode() {
    auto self = shared_from_this();
    auto ex = client_.socket().get_executor();
    // The greeting's connection goes back to the pool at once.
    detach_server();
    // Bodies of Query and Parse up to 64 KiB are looked at (pinning); a longer one straddling
    // reads is taken as unknown, which pins.
    pr::message_scanner scanner(pr::exchange_tracker::client_types(), cfg_->max_message_size,
                                64 * 1024);
    std::vector<std::byte> held;
    error_code ec;
    for (;;) {
        auto chunk = co_await client_.async_read_chunk(ec);
        if (ec || pumps_stopping_) {
            if (!pumps_stopping_) end_ = link_end::client_closed;
            break;
        }
        if (tracker_.terminated()) continue;  // only watched for its close now
        std::size_t forward = chunk.size();
        rt::session_effect effect = rt::session_effect::none;
        const auto err = scanner.feed(chunk, [&](char t, std::span<const std::byte> body,
                                                 bool truncated) {
            if (tracker_.terminated()) return;
            tracker_.on_client(t);
            if (t == 'X') {
                const auto* p = body.data();
                if (p != nullptr && p >= chunk.data() + 5 && p <= chunk.data() + chunk.size())
                    forward = static_cast<std::size_t>(p - chunk.data()) - 5;
                else
                    forward = 0, tracker_.mark_dirty();
                return;
            }
            if (effect == rt::session_effect::none) effect = effect_of(t, body, truncated);
        });
        if (err != pr::frame_error::none && !tracker_.terminated()) {
            end_ = link_end::client_protocol_error;
            client_error_ = err;
            break;
        }
        client_at_boundary_ = scanner.at_boundary();
        if (effect != rt::session_effect::none && !pinned_) {
            pinned_ = true;
            spdlog::debug("client {}@{} pinned to its server connection ({})", user_name_,
                          database_name_, rt::to_string(effect));
        }
        chunk = chunk.first(forward);
        if (!chunk.empty()) {
            if (!conn_) {
                // The read buffer is scratch: keep the bytes while waiting for a connection.
                held.assign(chunk.begin(), chunk.end());
                const bool attached = co_await attach_server();
                if (!attached) {
                    if (fatal_sent_) break;
                    if (!client_at_boundary_) {  // the rest of the message would be orphaned
                        end_ = link_end::client_protocol_error;
                        client_error_ = pr::frame_error::none;
                        break;
                    }
                    continue;
                }
                server_pump_running_ = true;
                asio::co_spawn(ex, pump_server_txn(self, attach_generation_),
                               [self](const std::exception_ptr&) {
                                   self->server_pump_running_ = false;
                                   self->server_pump_done_.cancel();
                               });
                chunk = held;
            }
            co_await server().async_write_all(chunk, ec);
            if (ec) {
                if (!pumps_stopping_) end_ = link_end::server_write_failed;
                break;
            }
        }
        if (tracker_.terminated() && (!conn_ || (tracker_.server_idle() && server_at_boundary_))) {
            end_ = link_end::client_closed;
            break;
        }
    }
    // Stop the server pump, then settle the connection (if one is attached).
    pumps_stopping_ = true;
    if (server_pump_running_) {
        error_code ignored;
        if (conn_) server().socket().cancel(ignored);
        server_pump_done_.expires_at(asio::steady_timer::time_point::max());
        co_await server_pump_done_.async_wait(ec_token(ec));
    }
    if (!conn_) {
        if (end_ == link_end::client_protocol_error && client_error_ != pr::frame_error::none)
            co_await reject_client_stream(client_error_);
        client_.close();
        co_return;
    }
    co_await finish_relay();
}

awaitable<void> client_session::pump_server_txn(std::shared_ptr<client_session> self,
                                                std::uint64_t generation) {
    // Each attachment starts at a message boundary of the server's stream.
    pr::message_scanner scanner(pr::type_set{'Z', 'E'}, pr::postgres_max_message_length, 4096);
    server_at_boundary_ = true;
    error_code ec;
    while (!pumps_stopping_ && conn_ && attach_generation_ == generation) {
        const auto chunk = co_await server().async_read_chunk(ec);
        if (ec || pumps_stopping_) {
            if (!pumps_stopping_) {
                end_ = link_end::server_closed;
                self->stop_client_pump();
            }
            co_return;
        }
        const auto err = scanner.feed(chunk, [&](char type, std::span<const std::byte> body, bool) {
            if (type == 'Z') {
                tracker_.on_ready(body.empty() ? 'I' : static_cast<char>(body[0]));
            } else if (type == 'E') {
                auto e = pr::be::decode_error_response(body);
                if (e && (e->severity() == "FATAL" || e->severity() == "PANIC"))
                    tracker_.on_fatal();
            }
        });
        if (err != pr::frame_error::none) {
            end_ = link_end::server_protocol_error;
            self->stop_client_pump();
            co_return;
        }
        co_await client_.async_write_all(chunk, ec);
        server_at_boundary_ = scanner.at_boundary();
        if (ec) {
            if (!pumps_stopping_) {
                end_ = link_end::client_write_failed;
                self->stop_client_pump();
            }
            co_return;
        }
        if (tracker_.server_idle() && server_at_boundary_) {
            if (tracker_.terminated()) {
                end_ = link_end::client_closed;
                self->stop_client_pump();
                co_return;
            }
            // The end of a transaction: the connection goes back to the pool.
            if (tracker_.txn_status() == 'I' && client_at_boundary_ && !pinned_ &&
                !tracker_.server_fatal()) {
                detach_server();
                co_return;
            }
        }
    }
}

void client_session::stop_client_pump() {
    pumps_stopping_ = true;
    error_code ignored;
    client_.socket().cancel(ignored);
}

}  // namespace shardgate::proxy
