// Transaction pooling (pool_mode = transaction), the session's side on its Asio worker. The
// client holds a server connection from the first message of a transaction until the
// ReadyForQuery that shows it idle ('I') with nothing owed; then the connection goes back to
// the pool. What the messages mean is the session core's (core/txn_core.hpp); the data plane
// (plane_txn.cpp) moves the bytes; this side settles the end of the session.
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

awaitable<void> client_session::relay_transaction_mode() {
    // Not a coroutine (see relay()): the data plane's awaitable.
    core_.configure({cfg_->max_message_size, pool_->cfg.refuse_pinning},
                    split_ ? static_cast<txn_routing*>(this) : nullptr);
    return relay_transaction_mode_in_plane();
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

}  // namespace shardgate::proxy
