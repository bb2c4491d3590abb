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
#include <string>
#include <vector>

#include "shardgate/pool/tls_channel.hpp"

namespace shardgate::pool {

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
        if (tls_) return tls_read_some(b, ec);
        return sock_->async_read_some(b, ec_token(ec));
    }
    // Reads exactly b.size() bytes.
    auto async_read_exact(asio::mutable_buffer b, error_code& ec) {
        if (tls_) return tls_read_exact(b, ec);
        return asio::async_read(*sock_, b, ec_token(ec));
    }
    auto async_write(asio::const_buffer b, error_code& ec) {
        if (tls_) return tls_write(b, ec);
        return asio::async_write(*sock_, b, ec_token(ec));
    }
    auto async_write(std::span<const std::byte> b, error_code& ec) {
        return async_write(asio::buffer(b.data(), b.size()), ec);
    }

    // Relay read: waits until the peer sent something and returns a view of what was read.
    // On plain TCP the bytes land in a per-thread scratch buffer, valid only until the caller
    // next suspends: an idle session holds no buffer at all. Readiness is awaited before
    // reading (Boost 1.74 would otherwise retry a speculative read ending in EAGAIN on every
    // turn); only after a read that filled the buffer do we read again without waiting.
    awaitable<std::span<const std::byte>> async_read_chunk(error_code& ec);
    // Relay write: tries a non-blocking write; whatever the socket does not take is copied
    // into a buffer this stream owns before suspending, so `b` may be scratch memory (TLS
    // encrypts into its own buffer first).
    awaitable<void> async_write_all(std::span<const std::byte> b, error_code& ec);

    // Moves the socket to another executor (a pooled connection handed to a session on
    // another worker); TLS state is kept. Only while no operation is pending.
    void rebind(const asio::any_io_executor& ex);
    // A best-effort write that never waits (Terminate before closing an idle connection).
    void write_now(std::span<const std::byte> b);

    void close() {
        error_code ignored;
        sock_->shutdown(tcp::socket::shutdown_both, ignored);
        sock_->close(ignored);
    }
    [[nodiscard]] bool is_open() const { return sock_->is_open(); }
    [[nodiscard]] bool is_tls() const { return tls_ != nullptr; }
    tcp::socket& socket() { return *sock_; }
    // The TLS session (null on plain TCP). The data plane drives it over the socket's fd while
    // it holds the socket; the stream uses it again once the socket is back.
    [[nodiscard]] tls_channel* tls() const { return tls_.get(); }
    // Why the last TLS operation failed (empty if none did).
    [[nodiscard]] std::string tls_error() const { return tls_ ? tls_->error() : std::string(); }

  private:
    awaitable<error_code> tls_handshake();
    awaitable<std::size_t> tls_read_some(asio::mutable_buffer b, error_code& ec);
    awaitable<std::size_t> tls_read_exact(asio::mutable_buffer b, error_code& ec);
    awaitable<std::size_t> tls_write(asio::const_buffer b, error_code& ec);
    // Sends the channel's output. Another coroutine's flush already running sends it too.
    awaitable<void> tls_flush(error_code& ec);
    // Reads ciphertext from the socket into the channel.
    awaitable<void> tls_fill(error_code& ec);

    std::unique_ptr<tcp::socket> sock_;
    std::unique_ptr<tls_channel> tls_;
    bool maybe_more_ = true;          // the last read filled the buffer: read before waiting
    bool tls_flushing_ = false;       // a coroutine is sending the channel's output
    std::vector<std::byte> tls_in_;   // ciphertext read from the socket
    std::vector<std::byte> tls_buf_;  // TLS reads suspend, so they cannot use the scratch
    std::vector<std::byte> pending_;  // the unwritten rest of a plain relay write
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
    // Never throws (a destructor calls it): a timer that cannot be cancelled still cannot
    // fire, the generation counter has moved on.
    void disarm() noexcept {
        ++*generation_;
        try {
            timer_.cancel();
        } catch (...) {  // NOLINT(bugprone-empty-catch): see above
        }
    }

  private:
    asio::steady_timer timer_;
    std::shared_ptr<std::uint64_t> generation_ = std::make_shared<std::uint64_t>(0);
};

}  // namespace shardgate::pool
