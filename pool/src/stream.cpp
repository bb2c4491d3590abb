// pg_stream: TLS upgrades and the relay read/write paths.
#include "shardgate/pool/stream.hpp"

namespace shardgate::pool {

awaitable<error_code> pg_stream::async_tls_accept(ssl::context& ctx) {
    tls_ = std::make_unique<tls_channel>(ctx.native_handle(), tls_channel::side::accept);
    return tls_handshake();
}

awaitable<error_code> pg_stream::async_tls_connect(ssl::context& ctx, const std::string& host,
                                                   bool verify_host) {
    tls_ = std::make_unique<tls_channel>(ctx.native_handle(), tls_channel::side::connect);
    tls_->set_peer(host, verify_host);
    return tls_handshake();
}

namespace {

// What a TLS session that failed reports (tls_error() says why).
error_code tls_failure() {
    return make_error_code(boost::system::errc::protocol_error);
}

constexpr std::size_t tls_read_size = std::size_t{32} * 1024;

}  // namespace

awaitable<error_code> pg_stream::tls_handshake() {
    error_code ec;
    for (;;) {
        const auto st = tls_->handshake();
        // Even after a failure: the alert tells the peer why.
        co_await tls_flush(ec);
        if (st == tls_channel::status::ok) co_return ec;
        if (st != tls_channel::status::want_input) co_return tls_failure();
        if (ec) co_return ec;
        co_await tls_fill(ec);
        if (ec) co_return ec;
    }
}

awaitable<void> pg_stream::tls_fill(error_code& ec) {
    if (tls_in_.empty()) tls_in_.resize(tls_read_size);
    const std::size_t n = co_await sock_->async_read_some(asio::buffer(tls_in_), ec_token(ec));
    if (!ec) tls_->feed(std::span<const std::byte>(tls_in_.data(), n));
}

awaitable<void> pg_stream::tls_flush(error_code& ec) {
    // The session-mode pumps read and write one stream at once, and a read may produce output
    // (a KeyUpdate answer): one coroutine sends at a time, and sends everything queued.
    if (tls_flushing_) co_return;
    tls_flushing_ = true;
    while (tls_->has_output() && !ec) {
        const auto out = tls_->output();
        const std::size_t n =
            co_await asio::async_write(*sock_, asio::buffer(out.data(), out.size()), ec_token(ec));
        tls_->consume(n);
    }
    tls_flushing_ = false;
}

awaitable<std::size_t> pg_stream::tls_read_some(asio::mutable_buffer b, error_code& ec) {
    ec = {};
    auto out = std::span<std::byte>(static_cast<std::byte*>(b.data()), b.size());
    for (;;) {
        const auto r = tls_->read(out);
        if (tls_->has_output()) co_await tls_flush(ec);
        if (r.n > 0) co_return r.n;  // a failure after it shows on the next read
        if (r.st == tls_channel::status::closed) {
            ec = asio::error::eof;
            co_return 0;
        }
        if (r.st == tls_channel::status::failed) {
            ec = tls_failure();
            co_return 0;
        }
        if (r.st == tls_channel::status::ok || ec) co_return 0;  // an empty buffer
        co_await tls_fill(ec);
        if (ec) co_return 0;
    }
}

awaitable<std::size_t> pg_stream::tls_read_exact(asio::mutable_buffer b, error_code& ec) {
    ec = {};
    std::size_t done = 0;
    while (done < b.size() && !ec)
        done += co_await tls_read_some(b + done, ec);
    co_return done;
}

awaitable<std::size_t> pg_stream::tls_write(asio::const_buffer b, error_code& ec) {
    ec = {};
    if (!tls_->write(
            std::span<const std::byte>(static_cast<const std::byte*>(b.data()), b.size()))) {
        ec = tls_failure();
        co_return 0;
    }
    co_await tls_flush(ec);
    co_return ec ? 0 : b.size();
}

namespace {

constexpr std::size_t relay_chunk_size = std::size_t{64} * 1024;

std::span<std::byte> thread_scratch() {
    thread_local std::vector<std::byte> scratch(relay_chunk_size);
    return scratch;
}

}  // namespace

awaitable<std::span<const std::byte>> pg_stream::async_read_chunk(error_code& ec) {
    if (tls_) {
        if (tls_buf_.empty()) tls_buf_.resize(relay_chunk_size);
        const std::size_t n = co_await tls_read_some(asio::buffer(tls_buf_), ec);
        co_return std::span<const std::byte>(tls_buf_.data(), n);
    }
    if (!sock_->non_blocking()) sock_->non_blocking(true, ec);
    for (;;) {
        if (!maybe_more_) {
            // Waiting re-arms the descriptor (EPOLL_CTL_MOD), so data that is already there
            // is reported at once: no readiness can be missed.
            co_await sock_->async_wait(tcp::socket::wait_read, ec_token(ec));
            if (ec) co_return std::span<const std::byte>{};
        }
        // No suspension from here until the caller's next co_await: the scratch is ours.
        auto scratch = thread_scratch();
        const std::size_t n = sock_->read_some(asio::buffer(scratch.data(), scratch.size()), ec);
        if (ec == asio::error::would_block) {
            ec = {};
            maybe_more_ = false;
            continue;
        }
        maybe_more_ = !ec && n == scratch.size();
        co_return std::span<const std::byte>(scratch.data(), ec ? 0 : n);
    }
}

awaitable<void> pg_stream::async_write_all(std::span<const std::byte> b, error_code& ec) {
    if (tls_) {
        // Encrypted into the channel's own buffer before anything waits: `b` may be another
        // session's scratch memory (a plain server's bytes relayed to a TLS client).
        co_await tls_write(asio::buffer(b.data(), b.size()), ec);
        co_return;
    }
    if (!sock_->non_blocking()) sock_->non_blocking(true, ec);
    std::size_t done = sock_->write_some(asio::buffer(b.data(), b.size()), ec);
    if (ec == asio::error::would_block) {
        ec = {};
        done = 0;
    }
    if (ec || done == b.size()) co_return;
    pending_.assign(b.begin() + static_cast<std::ptrdiff_t>(done), b.end());
    co_await asio::async_write(*sock_, asio::buffer(pending_), ec_token(ec));
    pending_.clear();
    // A slow peer once needed a large rest; do not keep that memory for the idle session.
    if (pending_.capacity() > relay_chunk_size) pending_.shrink_to_fit();
}

void pg_stream::rebind(const asio::any_io_executor& ex) {
    if (sock_->get_executor() == ex || !sock_->is_open()) return;
    error_code ec;
    const auto proto = sock_->local_endpoint(ec).protocol();
    if (ec) return;
    tcp::socket moved(ex);
    moved.assign(proto, sock_->release(ec), ec);
    // Move-assigning into the same heap object keeps the TLS stream's reference valid.
    *sock_ = std::move(moved);
    maybe_more_ = true;
}

void pg_stream::write_now(std::span<const std::byte> b) {
    error_code ec;
    if (!sock_->is_open()) return;
    sock_->non_blocking(true, ec);
    if (tls_) {
        // Unless a write is under way (its record would be cut): then the close alone will do.
        if (tls_flushing_ || tls_->has_output() || !tls_->write(b)) return;
        const auto out = tls_->output();
        tls_->consume(sock_->write_some(asio::buffer(out.data(), out.size()), ec));
        return;
    }
    sock_->write_some(asio::buffer(b.data(), b.size()), ec);
}

}  // namespace shardgate::pool
