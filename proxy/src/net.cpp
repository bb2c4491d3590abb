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

}  // namespace shardgate::proxy
