// A logged-in session goes to a data plane (session mode: a relay_link, data_plane.cpp;
// transaction pooling: relay_txn.cpp) and comes back to its worker when it ends: finish_relay
// decides what the client hears and what becomes of the server connection.
#include <spdlog/spdlog.h>

#include "control/session.hpp"
#include "core/text.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/scanner.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;

awaitable<void> client_session::relay() {
    // Not a coroutine: it picks the relay and returns its awaitable, so an idle client keeps
    // no frame of its own here (scale: bytes per idle client).
    if (ctx_.closing_idle.load()) {
        // SIGINT came while this client logged in.
        end_ = link_end::admin_shutdown;
        return finish_relay();
    }
    // SIGINT reaches the sessions in the planes through the planes (data_plane::close_idle).
    if (pool_->cfg.mode == pool_mode::transaction) return relay_transaction_mode();
    return relay_in_data_plane();
}

awaitable<void> client_session::finish_relay() {
    // Decides what the client hears and what happens to the server connection.
    auto ex = client_.socket().get_executor();
    conn_->txn_status = core_.tracker().txn_status();
    const bool server_open = server().is_open();
    const bool server_clean = core_.server_clean(server_open);
    switch (end_) {
        case link_end::client_closed:
        case link_end::client_write_failed:
            if (!server_clean && !core_.tracker().server_idle() && key_issued_) {
                // Nobody can read the answer any more: stop the server's work rather than
                // let it run to completion unobserved.
                if (auto target = ctx_.cancels.find(key_)) co_await async_send_cancel(ex, *target);
            }
            break;
        case link_end::client_protocol_error:
            co_await reject_client_stream(client_error_);
            break;
        case link_end::server_closed:
        case link_end::server_write_failed:
            if (!core_.tracker().terminated()) co_await report_server_lost();
            break;
        case link_end::server_protocol_error:
            spdlog::error("server for database {} sent a malformed stream, closing",
                          database_name_);
            break;
        case link_end::admin_shutdown:
            co_await send_admin_shutdown();
            break;
    }
    const auto d = core_.end_disposition(end_, server_open, pool_->cfg.mode == pool_mode::session);
    client_.close();
    co_await release_server(d);
}

awaitable<void> client_session::release_server(backend_disposition d) {
    if (!conn_) co_return;
    pool::give_back(std::move(conn_), d == backend_disposition::poisoned
                                          ? pool::conn_state::poisoned
                                      : d == backend_disposition::dirty ? pool::conn_state::dirty
                                                                        : pool::conn_state::clean);
    co_return;
}

awaitable<void> client_session::send_admin_shutdown() {
    // As Postgres tells a session that pg_terminate_backend or a fast shutdown ends.
    spdlog::debug("client {}@{}: closed between transactions (SIGINT)", user_name_, database_name_);
    co_await send_error({pr::severity::fatal, pr::sqlstate::admin_shutdown,
                         "terminating connection due to administrator command",
                         "shardgate is shutting down (SIGINT)."});
    // The client may be sending its next statement right now: closing with it unread would
    // reset the connection, and the client could lose the error.
    co_await drain_client();
}

awaitable<void> client_session::reject_client_stream(protocol::frame_error err) {
    // Postgres answers an oversized or malformed message with a FATAL error.
    spdlog::info("client {}@{}: {}, closing", user_name_, database_name_, pr::to_string(err));
    if (!core_.server_at_boundary() || !core_.tracker().server_idle())
        co_return;  // would corrupt the stream
    const bool too_large = err == pr::frame_error::too_large;
    if (core_.client_memory_refused()) {
        const std::string msg = "out of memory: shardgate holds max_client_memory (" +
                                std::to_string(ctx_.client_memory->limit()) +
                                " bytes) of partly received messages for all clients";
        co_await send_error({pr::severity::fatal, "53200", msg,
                             "Send smaller messages, or raise max_client_memory."});
        co_await drain_client();
        co_return;
    }
    co_await send_error(
        {pr::severity::fatal,
         too_large ? pr::sqlstate::program_limit_exceeded : pr::sqlstate::protocol_violation,
         too_large ? "message exceeds shardgate's max_message_size" : "invalid message length"});
    co_await drain_client();
}

awaitable<void> client_session::report_server_lost() {
    // An error can only be injected between messages; the server's own FATAL already told the
    // client why it is going away.
    if (core_.tracker().server_fatal() || !core_.server_at_boundary() || !client_.is_open())
        co_return;
    co_await send_error(
        {pr::severity::fatal, pr::sqlstate::connection_failure,
         "server closed the connection unexpectedly",
         "The backend server for database \"" + database_name_ + "\" terminated the connection."});
}

awaitable<void> client_session::drain_client() {
    // Closing a socket with unread input makes the kernel send RST, and a client that is still
    // writing its message may then lose the error we just sent. Half-close, read and discard
    // what the client still sends (bounded), then close.
    error_code ec;
    client_.socket().shutdown(tcp::socket::shutdown_send, ec);
    deadline limit(client_.socket().get_executor());
    limit.arm(std::chrono::seconds(1), [this] { client_.close(); });
    std::vector<std::byte> sink(std::size_t{16} * 1024);
    std::size_t total = 0;
    while (!ec && total < std::size_t{4} * 1024 * 1024) {
        total += co_await client_.async_read_some(asio::buffer(sink), ec);
    }
}

awaitable<void> client_session::relay_in_data_plane() {
    auto ex = client_.socket().get_executor();
    error_code ec;
    const auto client_proto = client_.socket().local_endpoint(ec).protocol();
    const auto server_proto = server().socket().local_endpoint(ec).protocol();
    auto link = std::make_shared<relay_link>(client_.socket().release(ec),
                                             server().socket().release(ec), cfg_->max_message_size);
    link->client_tls = client_.tls();
    link->server_tls = server().tls();
    link->tracker = core_.tracker();
    // The data plane wakes this coroutine through its own executor once the link ends.
    auto done = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
    link->on_end = [ex, done] { asio::post(ex, [done] { done->cancel(); }); };
    auto& plane = ctx_.next_data_plane();
    plane.adopt(link);
    co_await done->async_wait(ec_token(ec));

    // Back on this worker: take the sockets and the relay's findings back.
    client_.socket().assign(client_proto, link->client_fd, ec);
    server().socket().assign(server_proto, link->server_fd, ec);
    core_.tracker() = link->tracker;
    // Bytes for the server the link could not send (a slow server when the client left): the
    // server may hold part of a message, so the connection cannot be used again.
    if (link->unsent(false)) core_.tracker().mark_dirty();
    core_.set_server_at_boundary(link->server_at_boundary);
    core_.set_client_at_boundary(link->client_scanner.at_boundary());
    end_ = link->reason;
    client_error_ = link->client_error;
    co_await finish_relay();
}

}  // namespace shardgate::proxy
