// Query loop of a session-mode client: two pumps move bytes between the client and its server
// connection. Each pump reads what is available, scans message headers (decoding only the few
// messages the session must understand) and writes the whole chunk on: one read and one write
// per batch, no per-message copies.
#include <spdlog/spdlog.h>

#include "session.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/scanner.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;
namespace {}  // namespace

awaitable<void> client_session::relay() {
    if (!ctx_.planes.empty() && !client_.is_tls() && !server_->is_tls())
        co_return co_await relay_in_data_plane();
    auto self = shared_from_this();
    auto ex = client_.socket().get_executor();
    // Both pumps run on this session's thread; whichever ends first closes both sockets, which
    // ends the other. The session stays alive until both have returned.
    asio::steady_timer both_done(ex, asio::steady_timer::time_point::max());
    int running = 2;
    auto on_done = [&running, &both_done](const std::exception_ptr&) {
        if (--running == 0) both_done.cancel();
    };
    asio::co_spawn(ex, pump_client_to_server(self), on_done);
    asio::co_spawn(ex, pump_server_to_client(self), on_done);
    error_code ec;
    co_await both_done.async_wait(ec_token(ec));
}

awaitable<void> client_session::pump_client_to_server(
    std::shared_ptr<client_session> /*self: keeps the session alive*/) {
    // Terminate ends the client's half: like Postgres, the server still answers what came
    // before it and then closes, and the server pump relays that. Other messages are only
    // counted and forwarded.
    pr::message_scanner scanner(pr::type_set{'X'}, cfg_->max_message_size, 0);
    error_code ec;
    for (;;) {
        const auto chunk = co_await client_.async_read_chunk(ec);
        if (ec) break;                     // the client closed its socket (or it failed)
        if (client_terminated_) continue;  // Postgres reads nothing after Terminate
        const std::size_t n = chunk.size();
        const auto err = scanner.feed(chunk, [&](char type, std::span<const std::byte>, bool) {
            if (type == 'X') client_terminated_ = true;
        });
        if (err != pr::frame_error::none) {
            co_await reject_client_stream(err);
            co_return close_all();
        }
        // A lone Terminate does not give the server work.
        if (!(client_terminated_ && n == 5)) server_busy_ = true;
        co_await server_->async_write_all(chunk, ec);
        if (ec) co_return close_all();  // the server pump reports the lost server
    }
    if (server_busy_ && key_issued_) {
        // Nobody can read the answer any more: stop the server's work rather than let it run
        // to completion unobserved, as it would if we only closed the connection.
        if (auto target = ctx_.cancels.find(key_))
            co_await async_send_cancel(client_.socket().get_executor(), *target);
    }
    close_all();
}

awaitable<void> client_session::reject_client_stream(protocol::frame_error err) {
    // Postgres answers an oversized or malformed message with a FATAL error.
    spdlog::info("client {}@{}: {}, closing", user_name_, database_name_, pr::to_string(err));
    if (!server_at_boundary_ || server_busy_) co_return;  // an error now would corrupt the stream
    const bool too_large = err == pr::frame_error::too_large;
    co_await send_error(
        {pr::severity::fatal,
         too_large ? pr::sqlstate::program_limit_exceeded : pr::sqlstate::protocol_violation,
         too_large ? "message exceeds shardgate's max_message_size" : "invalid message length"});
    co_await drain_client();
}

awaitable<void> client_session::pump_server_to_client(
    std::shared_ptr<client_session> /*self: keeps the session alive*/) {
    pr::message_scanner scanner(pr::type_set{'Z', 'E'}, pr::postgres_max_message_length, 4096);
    error_code ec;
    for (;;) {
        const auto chunk = co_await server_->async_read_chunk(ec);
        if (ec) {
            if (!client_terminated_ && client_.is_open()) co_await report_server_lost();
            break;
        }
        const auto err = scanner.feed(chunk, [&](char type, std::span<const std::byte> body, bool) {
            if (type == 'Z') {
                server_busy_ = false;
            } else if (type == 'E') {
                auto e = pr::be::decode_error_response(body);
                if (e && (e->severity() == "FATAL" || e->severity() == "PANIC"))
                    server_sent_fatal_ = true;
            }
        });
        if (err != pr::frame_error::none) {
            spdlog::error("server for database {} sent a malformed stream ({}), closing",
                          database_name_, pr::to_string(err));
            break;
        }
        co_await client_.async_write_all(chunk, ec);
        server_at_boundary_ = scanner.at_boundary();
        if (ec) break;
    }
    close_all();
}

awaitable<void> client_session::report_server_lost() {
    // An error can only be injected between messages; the server's own FATAL already told the
    // client why it is going away.
    if (server_sent_fatal_ || !server_at_boundary_) co_return;
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
    std::vector<std::byte> sink(16 * 1024);
    std::size_t total = 0;
    while (!ec && total < 4 * 1024 * 1024) {
        total += co_await client_.async_read_some(asio::buffer(sink), ec);
    }
}

awaitable<void> client_session::relay_in_data_plane() {
    auto ex = client_.socket().get_executor();
    error_code ec;
    const auto client_proto = client_.socket().local_endpoint(ec).protocol();
    const auto server_proto = server_->socket().local_endpoint(ec).protocol();
    auto link = std::make_shared<relay_link>(client_.socket().release(ec),
                                             server_->socket().release(ec), cfg_->max_message_size);
    // The data plane wakes this coroutine through its own executor once the link ends.
    auto done = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
    link->on_end = [ex, done] { asio::post(ex, [done] { done->cancel(); }); };
    auto& plane =
        *ctx_.planes[ctx_.next_plane.fetch_add(1, std::memory_order_relaxed) % ctx_.planes.size()];
    plane.adopt(link);
    co_await done->async_wait(ec_token(ec));

    // Back on this worker: take the sockets and the relay's findings back.
    client_.socket().assign(client_proto, link->client_fd, ec);
    server_->socket().assign(server_proto, link->server_fd, ec);
    server_busy_ = link->server_busy;
    client_terminated_ = link->client_terminated;
    server_sent_fatal_ = link->server_sent_fatal;
    server_at_boundary_ = link->server_at_boundary;
    switch (link->reason) {
        case link_end::client_closed:
        case link_end::client_write_failed:
            if (server_busy_ && key_issued_) {
                if (auto target = ctx_.cancels.find(key_)) co_await async_send_cancel(ex, *target);
            }
            break;
        case link_end::client_protocol_error:
            co_await reject_client_stream(link->client_error);
            break;
        case link_end::server_closed:
        case link_end::server_write_failed:
            if (!client_terminated_) co_await report_server_lost();
            break;
        case link_end::server_protocol_error:
            spdlog::error("server for database {} sent a malformed stream, closing",
                          database_name_);
            break;
    }
    close_all();
}

}  // namespace shardgate::proxy
