// Query loop of a transaction-pooled client (pool_mode = transaction), on the Asio workers.
// The client holds a server connection from the first message of a transaction until the
// ReadyForQuery that shows it idle ('I') with nothing owed; then the connection goes back to
// the pool. What the messages mean is the session core's (core/txn_core.hpp); this loop and
// the data plane (plane_txn.cpp) move the bytes.
#include <spdlog/spdlog.h>

#include "control/session.hpp"
#include "core/text.hpp"
#include "core/txn_statements.hpp"
#include "shardgate/pool/replica_health.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/frontend.hpp"
#include "shardgate/protocol/scanner.hpp"
#include "shardgate/protocol/sqlstate.hpp"
#include "shardgate/router/session_effects.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;
namespace rt = shardgate::router;
txn_action client_session::txn_resume(const txn_event& e) {
    const auto a = core_.resume(e);
    if (a.what == txn_action::kind::close) {
        end_ = a.why;
        if (a.why == link_end::client_protocol_error) client_error_ = core_.client_error();
    }
    if (const auto why = core_.take_pin_reason())
        spdlog::debug("client {}@{} pinned to its server connection ({})", user_name_,
                      database_name_, rt::to_string(*why));
    return a;
}

awaitable<void> client_session::flush_client(error_code& ec) {
    // One writer at a time: whoever writes sends everything queued meanwhile, in order.
    if (client_writing_) {
        // The other one is waiting for a slow client: past the limit, so does this one, as
        // the data plane stops reading the server (a client that pipelines and does not read
        // would otherwise make core_.client_out() grow without end).
        while (client_writing_ && core_.client_out().size() >= client_out_limit) {
            client_drained_.expires_at(asio::steady_timer::time_point::max());
            error_code ignored;
            co_await client_drained_.async_wait(ec_token(ignored));
        }
        co_return;
    }
    client_writing_ = true;
    while (!core_.client_out().empty() && !ec) {
        std::swap(core_.client_out(), client_sending_);
        co_await client_.async_write_all(client_sending_.view(), ec);
        client_sending_.clear();
    }
    client_writing_ = false;
    client_drained_.cancel();
}

awaitable<void> client_session::relay_transaction_mode() {
    // Not a coroutine (see relay()): the data plane's or the Asio loop's awaitable.
    core_.configure({cfg_->max_message_size, pool_->cfg.refuse_pinning},
                    split_ ? static_cast<txn_routing*>(this) : nullptr);
    if (!ctx_.planes.empty()) {
        relay_kind_ = relay_kind::plane;
        return relay_transaction_mode_in_plane();
    }
    relay_kind_ = relay_kind::asio_transaction;
    return relay_transaction_mode_asio();
}

awaitable<void> client_session::relay_transaction_mode_asio() {
    auto self = shared_from_this();
    auto ex = client_.socket().get_executor();
    // The greeting's connection (if it took one) goes back to the pool at once.
    if (conn_) detach_server();
    error_code ec;
    for (;;) {
        // A client that pipelines and does not read: what it is owed stays bounded. Its replies
        // wait in the server (flush_client stops the server pump); what shardgate owes itself
        // (a Close of a prepared statement, say) waits in the mux queue, so stop reading it.
        if (core_.owed_replies() >= max_owed_replies && !pumps_stopping_ && server_pump_running_ &&
            conn_) {
            // The server may hold extended-protocol replies back until a Sync or Flush the
            // client has not sent yet: ask for them, or nothing would ever drain.
            pr::fe::encode(core_.to_server(), pr::fe::flush{});
            co_await server().async_write_all(core_.to_server().view(), ec);
            core_.to_server().clear();
            ec = {};
        }
        while (core_.owed_replies() >= max_owed_replies && !pumps_stopping_ &&
               server_pump_running_) {
            client_drained_.expires_at(asio::steady_timer::time_point::max());
            co_await client_drained_.async_wait(ec_token(ec));
            ec = {};
        }
        auto chunk = co_await client_.async_read_chunk(ec);
        if (ec || pumps_stopping_) {
            if (!pumps_stopping_) end_ = link_end::client_closed;
            break;
        }
        txn_event got{txn_event::kind::client_bytes, chunk};
        auto a = txn_resume(got);
        if (a.what == txn_action::kind::need_server) {
            const bool attached = co_await attach_server();
            if (!attached) {
                if (fatal_sent_) break;
                continue;
            }
            server_pump_running_ = true;
            asio::co_spawn(ex, pump_server_txn(self, attach_generation_),
                           [self](const std::exception_ptr&) {
                               self->server_pump_running_ = false;
                               self->server_pump_done_.cancel();
                               self->client_drained_.cancel();
                           });
            a = txn_resume_client();
        }
        if (a.what == txn_action::kind::close && a.why == link_end::client_protocol_error) break;
        if (!core_.client_out().empty()) {
            co_await flush_client(ec);
            if (ec) {
                end_ = link_end::client_write_failed;
                break;
            }
        }
        if (!core_.to_server().empty()) {
            co_await server().async_write_all(core_.to_server().view(), ec);
            core_.to_server().clear();
            if (ec) {
                if (!pumps_stopping_) end_ = link_end::server_write_failed;
                break;
            }
        }
        if (a.what == txn_action::kind::close) break;  // Terminate, and nothing left to answer
    }
    // Stop the server pump, then settle the connection (if one is attached).
    pumps_stopping_ = true;
    if (server_pump_running_) {
        error_code ignored;
        if (conn_) server().socket().cancel(ignored);
        server_pump_done_.expires_at(asio::steady_timer::time_point::max());
        co_await server_pump_done_.async_wait(ec_token(ec));
    }
    co_await finish_transaction_mode();
}

awaitable<void> client_session::finish_transaction_mode() {
    if (!conn_) {
        if (end_ == link_end::client_protocol_error && client_error_ != pr::frame_error::none)
            co_await reject_client_stream(client_error_);
        if (end_ == link_end::admin_shutdown) co_await send_admin_shutdown();
        client_.close();
        co_return;
    }
    // The core settles what the connection is worth (finish_relay gives it back so); replies
    // still owed make it unusable even when the core let go of it already.
    if (!core_.replies_settled()) core_.tracker().mark_dirty();
    txn_event ended{txn_event::kind::ended};
    ended.why = end_;
    ended.server_open = server().is_open();
    (void)core_.resume(ended);
    co_await finish_relay();
}

awaitable<void> client_session::pump_server_txn(std::shared_ptr<client_session> self,
                                                std::uint64_t generation) {
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
        // The connection stays attached until what the client is owed is written: while this
        // pump waits for a slow client, the client loop must not check out another one.
        txn_event got{txn_event::kind::server_bytes, chunk};
        got.server_unsent = true;
        const auto a = txn_resume(got);
        if (a.what == txn_action::kind::close && a.why == link_end::server_protocol_error) {
            self->stop_client_pump();
            co_return;
        }
        co_await flush_client(ec);
        if (ec) {
            if (!pumps_stopping_) {
                end_ = link_end::client_write_failed;
                self->stop_client_pump();
            }
            co_return;
        }
        if (a.what == txn_action::kind::close) {  // Terminate, and nothing left to answer
            self->stop_client_pump();
            co_return;
        }
        // The end of a transaction: the connection goes back to the pool.
        if (core_.may_detach()) {
            detach_server();
            if (ctx_.closing_idle.load(std::memory_order_relaxed)) {
                end_ = link_end::admin_shutdown;
                self->stop_client_pump();
            }
            co_return;
        }
    }
}

void client_session::stop_client_pump() {
    pumps_stopping_ = true;
    error_code ignored;
    client_.socket().cancel(ignored);
}

}  // namespace shardgate::proxy
