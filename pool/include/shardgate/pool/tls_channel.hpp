// TLS without a socket: an OpenSSL session over two memory BIOs. The caller moves ciphertext
// between the channel and the network (feed() what arrived, send output()), so the same
// channel serves the Asio control side (pg_stream) and the epoll data plane, and a session
// moves between them with its TLS state intact. No I/O, no clocks; one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

struct ssl_st;
struct ssl_ctx_st;
struct bio_st;

namespace shardgate::pool {

class tls_channel {
  public:
    enum class side : std::uint8_t { accept, connect };
    enum class status : std::uint8_t {
        ok,          // done (handshake) or `out` filled (read)
        want_input,  // needs more ciphertext from the peer (feed)
        closed,      // the peer sent close_notify
        failed,      // a TLS error (error() says which); the channel is unusable
    };
    struct read_result {
        std::size_t n = 0;  // plaintext bytes placed in `out`
        status st = status::ok;
    };

    // Throws std::runtime_error when OpenSSL cannot allocate the session.
    tls_channel(ssl_ctx_st* ctx, side s);
    ~tls_channel();
    tls_channel(const tls_channel&) = delete;
    tls_channel& operator=(const tls_channel&) = delete;
    tls_channel(tls_channel&&) = delete;
    tls_channel& operator=(tls_channel&&) = delete;

    [[nodiscard]] ssl_st* native() const { return ssl_; }
    // Client side: SNI for a host name (not an IP address, as libpq), and, if `verify`, the
    // peer's certificate must chain to the context's CAs and name `host` (name or IP address).
    void set_peer(const std::string& host, bool verify);

    // Ciphertext that arrived from the peer (copied in).
    void feed(std::span<const std::byte> cipher);
    // Advances the handshake: ok once it is complete.
    status handshake();
    // Decrypts into `out` as far as the fed ciphertext goes. st is want_input when it stopped
    // for lack of input (n may be > 0), ok when `out` is full (more may be buffered).
    read_result read(std::span<std::byte> out);
    // Fed ciphertext or decrypted plaintext not yet returned by read() (a partial record
    // counts too).
    [[nodiscard]] bool buffered() const;
    // read() may return something without more input: the last read filled its buffer, or
    // input came since, or the session ended. A reader that paused reads again before it
    // waits for the socket when this is set.
    [[nodiscard]] bool readable() const { return readable_; }
    // Encrypts all of `plain` into output(). False: a TLS error.
    bool write(std::span<const std::byte> plain);
    // Queues close_notify.
    void shutdown();

    // Ciphertext for the peer, in order; consume() what the socket took.
    [[nodiscard]] std::span<const std::byte> output() const {
        return std::span<const std::byte>(out_).subspan(out_at_);
    }
    [[nodiscard]] bool has_output() const { return out_at_ < out_.size(); }
    void consume(std::size_t n);

    [[nodiscard]] const std::string& error() const { return error_; }
    // Bytes the channel's own buffers hold allocated (not OpenSSL's session state): an idle
    // channel keeps little whatever it carried.
    [[nodiscard]] std::size_t retained() const;

  private:
    void drain();  // the write BIO into out_
    status fail(int ret);

    ssl_st* ssl_ = nullptr;
    bio_st* in_ = nullptr;       // owned by ssl_
    bio_st* out_bio_ = nullptr;  // owned by ssl_
    std::vector<std::byte> out_;
    std::size_t out_at_ = 0;
    std::string error_;
    bool readable_ = false;
};

}  // namespace shardgate::pool
