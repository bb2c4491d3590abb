// TLS upgrades of pg_stream.
#include "net.hpp"

namespace shardgate::proxy {

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

awaitable<std::size_t> pg_stream::async_read_available(asio::mutable_buffer b, error_code& ec) {
    if (tls_) co_return co_await tls_->async_read_some(b, ec_token(ec));
    if (!sock_->non_blocking()) sock_->non_blocking(true, ec);
    for (;;) {
        if (drained_) {
            co_await sock_->async_wait(tcp::socket::wait_read, ec_token(ec));
            if (ec) co_return 0;
        }
        const std::size_t n = sock_->read_some(b, ec);
        if (ec == asio::error::would_block) {
            ec = {};
            drained_ = true;
            continue;
        }
        // A short read emptied the socket; a full buffer may have left more behind.
        drained_ = !ec && n < b.size();
        co_return n;
    }
}

awaitable<bool> pg_stream::async_write_all(std::span<const std::byte> b, error_code& ec) {
    if (tls_) {
        co_await asio::async_write(*tls_, asio::buffer(b.data(), b.size()), ec_token(ec));
        co_return true;
    }
    if (!sock_->non_blocking()) sock_->non_blocking(true, ec);
    std::size_t done = sock_->write_some(asio::buffer(b.data(), b.size()), ec);
    if (ec == asio::error::would_block) {
        ec = {};
        done = 0;
    }
    if (ec || done == b.size()) co_return false;
    co_await asio::async_write(*sock_, asio::buffer(b.data() + done, b.size() - done),
                               ec_token(ec));
    co_return true;
}

}  // namespace shardgate::proxy
