// pg_stream: TLS upgrades and the relay read/write paths.
#include "shardgate/pool/stream.hpp"

namespace shardgate::pool {

awaitable<error_code> pg_stream::async_tls_accept(ssl::context& ctx) {
    tls_ = std::make_unique<ssl::stream<tcp::socket&>>(*sock_, ctx);
    error_code ec;
    co_await tls_->async_handshake(ssl::stream_base::server, ec_token(ec));
    co_return ec;
}

awaitable<error_code> pg_stream::async_tls_connect(ssl::context& ctx, const std::string& host,
                                                   bool verify_host) {
    tls_ = std::make_unique<ssl::stream<tcp::socket&>>(*sock_, ctx);
    // SNI, as libpq sends it (sslsni=1) for host names but not IP addresses.
    error_code addr_ec;
    asio::ip::make_address(host, addr_ec);
    if (addr_ec) SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str());
    if (verify_host) {
        tls_->set_verify_mode(ssl::verify_peer);
        tls_->set_verify_callback(ssl::host_name_verification(host));
    } else {
        tls_->set_verify_mode(ssl::verify_none);
    }
    error_code ec;
    co_await tls_->async_handshake(ssl::stream_base::client, ec_token(ec));
    co_return ec;
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
        const std::size_t n = co_await tls_->async_read_some(asio::buffer(tls_buf_), ec_token(ec));
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
        // The write may wait for the peer, and `b` may be another session's scratch memory by
        // then (a plain server's bytes relayed to a TLS client): the stream writes its own copy.
        // Encrypting costs far more than the copy.
        pending_.assign(b.begin(), b.end());
        co_await asio::async_write(*tls_, asio::buffer(pending_), ec_token(ec));
        pending_.clear();
        if (pending_.capacity() > relay_chunk_size) pending_.shrink_to_fit();
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
    if (tls_) return;  // a TLS record needs the SSL state; the close alone will do
    sock_->non_blocking(true, ec);
    sock_->write_some(asio::buffer(b.data(), b.size()), ec);
}

}  // namespace shardgate::pool
