// Query loop of a session-mode client: two pumps move bytes between the client and its server
// connection. Each pump reads what is available, scans message headers (decoding only the few
// messages the session must understand) and writes the whole chunk on: one read and one write
// per batch, no per-message copies.
#include <spdlog/spdlog.h>

#include "control/session.hpp"
#include "core/text.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/scanner.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;
namespace {}  // namespace

bool client_session::session_idle() const {
    return !pumps_stopping_ && !core_.tracker().terminated() && core_.tracker().server_idle() &&
           core_.tracker().txn_status() == 'I' && core_.server_at_boundary() &&
           core_.client_at_boundary();
}

void client_session::close_if_idle() {
    // SIGINT reached this session (on its worker). The data plane handles its own links.
    switch (relay_kind_) {
        case relay_kind::asio_session:
            if (session_idle()) {
                end_ = link_end::admin_shutdown;
                stop_pumps();
            }
            break;
        case relay_kind::asio_transaction:
            if (!conn_ && !pumps_stopping_ && !core_.tracker().terminated()) {
                end_ = link_end::admin_shutdown;
                stop_client_pump();
            }
            break;
        case relay_kind::none:
        case relay_kind::plane:
            break;
    }
}

awaitable<void> client_session::relay() {
    // Not a coroutine: it picks the relay and returns its awaitable, so an idle client keeps
    // no frame of its own here (scale: bytes per idle client).
    if (ctx_.closing_idle.load()) {
        // SIGINT came while this client logged in.
        end_ = link_end::admin_shutdown;
        return finish_relay();
    }
    ctx_.watch_idle(this, [w = weak_from_this(), ex = client_.socket().get_executor()] {
        asio::post(ex, [w] {
            if (auto s = w.lock()) s->close_if_idle();
        });
    });
    // Transaction pooling: in the data plane or the Asio loop (relay_txn.cpp).
    if (pool_->cfg.mode == pool_mode::transaction) return relay_transaction_mode();
    if (!ctx_.planes.empty()) {
        relay_kind_ = relay_kind::plane;
        return relay_in_data_plane();
    }
    relay_kind_ = relay_kind::asio_session;
    return relay_session_asio();
}

awaitable<void> client_session::relay_session_asio() {
    auto self = shared_from_this();
    auto ex = client_.socket().get_executor();
    // Both pumps run on this session's thread. Whichever ends first stops the other: the
    // client pump by closing the client socket, the server pump by cancelling the server's
    // pending read (the server connection itself stays open for the pool). The session stays
    // alive until both have returned.
    asio::steady_timer both_done(ex, asio::steady_timer::time_point::max());
    int running = 2;
    auto on_done = [&running, &both_done](const std::exception_ptr&) {
        if (--running == 0) both_done.cancel();
    };
    asio::co_spawn(ex, pump_client_to_server(self), on_done);
    asio::co_spawn(ex, pump_server_to_client(self), on_done);
    error_code ec;
    co_await both_done.async_wait(ec_token(ec));
    co_await finish_relay();
}

void client_session::stop_pumps() {
    pumps_stopping_ = true;
    error_code ignored;
    client_.socket().cancel(ignored);
    server().socket().cancel(ignored);
}

awaitable<void> client_session::pump_client_to_server(
    std::shared_ptr<client_session> /*self: keeps the session alive*/) {
    // Messages are only counted (exchange_tracker) and forwarded, except Terminate: the
    // server connection outlives this client, so Terminate ends the client's half here. Like
    // Postgres, the server still answers what came before it; the server pump then ends.
    pr::message_scanner scanner(pr::exchange_tracker::client_types(), cfg_->max_message_size, 0);
    error_code ec;
    while (!pumps_stopping_) {
        auto chunk = co_await client_.async_read_chunk(ec);
        if (ec || pumps_stopping_) {
            if (!pumps_stopping_) end_ = link_end::client_closed;
            break;
        }
        // After Terminate the client is only watched for its close (which cancels work still
        // running for it); what it sends is dropped, as Postgres reads nothing more.
        if (core_.tracker().terminated()) continue;
        std::size_t forward = chunk.size();
        const auto err = scanner.feed(chunk, [&](char t, std::span<const std::byte> body, bool) {
            if (core_.tracker().terminated()) return;
            core_.tracker().on_client(t);
            if (t != 'X') return;
            const auto* p = body.data();
            if (p != nullptr && p >= chunk.data() + 5 && p <= chunk.data() + chunk.size())
                forward = static_cast<std::size_t>(p - chunk.data()) - 5;
            else
                forward = 0, core_.tracker().mark_dirty();
        });
        if (err != pr::frame_error::none && !core_.tracker().terminated()) {
            end_ = link_end::client_protocol_error;
            client_error_ = err;
            break;
        }
        core_.set_client_at_boundary(scanner.at_boundary());
        if (forward > 0) {
            co_await server().async_write_all(chunk.first(forward), ec);
            if (ec) {
                if (pumps_stopping_)
                    core_.tracker().mark_dirty();  // cut mid-write: the server has part of it
                else
                    end_ = link_end::server_write_failed;
                break;
            }
        }
        if (terminated_and_answered()) {
            end_ = link_end::client_closed;
            break;
        }
        // Otherwise the server pump ends the relay once the answers still owed are out.
    }
    stop_pumps();
}

awaitable<void> client_session::pump_server_to_client(
    std::shared_ptr<client_session> /*self: keeps the session alive*/) {
    pr::message_scanner scanner(pr::type_set{'Z', 'E'}, pr::postgres_max_message_length, 4096);
    error_code ec;
    while (!pumps_stopping_) {
        const auto chunk = co_await server().async_read_chunk(ec);
        if (ec || pumps_stopping_) {
            if (!pumps_stopping_) end_ = link_end::server_closed;
            break;
        }
        const auto err = scanner.feed(chunk, [&](char type, std::span<const std::byte> body, bool) {
            if (type == 'Z') {
                core_.tracker().on_ready(body.empty() ? 'I' : static_cast<char>(body[0]));
            } else if (type == 'E') {
                auto e = pr::be::decode_error_response(body);
                if (e && (e->severity() == "FATAL" || e->severity() == "PANIC"))
                    core_.tracker().on_fatal();
            }
        });
        if (err != pr::frame_error::none) {
            end_ = link_end::server_protocol_error;
            break;
        }
        co_await client_.async_write_all(chunk, ec);
        core_.set_server_at_boundary(scanner.at_boundary());
        if (ec) {
            end_ = link_end::client_write_failed;
            break;
        }
        if (ctx_.closing_idle.load(std::memory_order_relaxed) && session_idle()) {
            end_ = link_end::admin_shutdown;
            break;
        }
        if (terminated_and_answered()) {
            end_ = link_end::client_closed;
            break;
        }
    }
    stop_pumps();
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
    core_.set_server_at_boundary(link->server_at_boundary);
    core_.set_client_at_boundary(link->client_scanner.at_boundary());
    end_ = link->reason;
    client_error_ = link->client_error;
    co_await finish_relay();
}

}  // namespace shardgate::proxy
