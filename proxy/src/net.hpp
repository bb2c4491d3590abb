// Asio aliases and the plain-or-TLS byte stream that sessions read and write.
#pragma once

#include <utility>  // Boost 1.74 awaitable.hpp uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>

namespace shardgate::proxy {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
template <class T = void>
using awaitable = asio::awaitable<T>;
inline constexpr auto use_awaitable = asio::use_awaitable;

// Error-code completion for coroutines: `co_await op(..., ec_token(ec))` never throws.
inline auto ec_token(error_code& ec) {
    return asio::redirect_error(asio::use_awaitable, ec);
}

// A connection that starts as plain TCP and may be upgraded to TLS after an SSLRequest.
// The read/write functions return Asio's awaitables directly (no extra coroutine frame).
class pg_stream {
  public:
    // The socket lives on the heap so that a TLS stream, which refers to it, survives moves of
    // the pg_stream.
    explicit pg_stream(tcp::socket s) : sock_(std::make_unique<tcp::socket>(std::move(s))) {}

    // Upgrades to TLS as the server (client side of shardgate) or the client (towards Postgres).
    awaitable<error_code> async_tls_accept(ssl::context& ctx);
    awaitable<error_code> async_tls_connect(ssl::context& ctx, const std::string& host,
                                            bool verify_host);

    auto async_read_some(asio::mutable_buffer b, error_code& ec) {
        if (tls_) return tls_->async_read_some(b, ec_token(ec));
        return sock_->async_read_some(b, ec_token(ec));
    }
    // Reads exactly b.size() bytes.
    auto async_read_exact(asio::mutable_buffer b, error_code& ec) {
        if (tls_) return asio::async_read(*tls_, b, ec_token(ec));
        return asio::async_read(*sock_, b, ec_token(ec));
    }
    auto async_write(asio::const_buffer b, error_code& ec) {
        if (tls_) return asio::async_write(*tls_, b, ec_token(ec));
        return asio::async_write(*sock_, b, ec_token(ec));
    }
    auto async_write(std::span<const std::byte> b, error_code& ec) {
        return async_write(asio::buffer(b.data(), b.size()), ec);
    }

    // Relay reads: up to b.size() bytes of whatever is available. On plain TCP this waits for
    // readability and then reads without blocking, which saves the speculative read that ends
    // in EAGAIN on every turn (Boost 1.74 retries reads speculatively after any data).
    awaitable<std::size_t> async_read_available(asio::mutable_buffer b, error_code& ec);
    // Relay writes: tries a non-blocking write first and only suspends for what is left.
    // Returns true when it had to suspend (the event loop ran meanwhile).
    awaitable<bool> async_write_all(std::span<const std::byte> b, error_code& ec);
    // The reading coroutine suspended for something else (a write elsewhere): a readiness edge
    // may have gone by unobserved, so the next read must try before it waits.
    void may_have_missed_readiness() { drained_ = false; }

    void close() {
        error_code ignored;
        sock_->shutdown(tcp::socket::shutdown_both, ignored);
        sock_->close(ignored);
    }
    [[nodiscard]] bool is_open() const { return sock_->is_open(); }
    [[nodiscard]] bool is_tls() const { return tls_ != nullptr; }
    tcp::socket& socket() { return *sock_; }

  private:
    std::unique_ptr<tcp::socket> sock_;
    std::unique_ptr<ssl::stream<tcp::socket&>> tls_;
    // True when the last read emptied the socket and nothing since could have hidden a
    // readiness edge from us: the next read can wait first (edge-triggered epoll).
    bool drained_ = false;
};

// Runs a callback when a duration passes unless disarmed first; used for connect and login
// timeouts (Boost 1.74 has no cancel_after). Re-arming replaces the previous deadline.
class deadline {
  public:
    explicit deadline(const asio::any_io_executor& ex) : timer_(ex) {}
    ~deadline() { disarm(); }
    deadline(const deadline&) = delete;
    deadline& operator=(const deadline&) = delete;

    void arm(std::chrono::milliseconds d, std::function<void()> on_expire) {
        const auto g = ++*generation_;
        timer_.expires_after(d);
        // The handler may already be queued when we disarm: the shared generation counter,
        // not the timer's error code, decides whether it still fires.
        timer_.async_wait([gen = generation_, g, f = std::move(on_expire)](error_code ec) {
            if (!ec && *gen == g) f();
        });
    }
    void disarm() {
        ++*generation_;
        timer_.cancel();
    }

  private:
    asio::steady_timer timer_;
    std::shared_ptr<std::uint64_t> generation_ = std::make_shared<std::uint64_t>(0);
};

}  // namespace shardgate::proxy
