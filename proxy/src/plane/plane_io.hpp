// Reads and writes of one end of a data-plane link, plain TCP or TLS over the same fd (the
// TLS session is the pool::tls_channel the Asio side negotiated at login; the plane drives it
// while it holds the fd). Non-blocking; nothing here waits.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <span>
#include <vector>

#include "shardgate/pool/tls_channel.hpp"

namespace shardgate::proxy {

// The TLS halves (plane_io.cpp); the plain ones are inline below, on every plain read/write.
ssize_t plane_recv_tls(int fd, pool::tls_channel& tls, std::span<std::byte> buf);
bool plane_send_tls(int fd, pool::tls_channel& tls, std::span<const std::byte> b);
bool plane_flush_tls(int fd, pool::tls_channel& tls);

// Sends as much of `b` as the socket takes: the count sent, or -1 when the peer is gone.
inline std::ptrdiff_t plane_send_some(int fd, std::span<const std::byte> b) {
    std::size_t done = 0;
    while (done < b.size()) {
        const ssize_t w = ::send(fd, b.data() + done, b.size() - done, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        done += static_cast<std::size_t>(w);
    }
    return static_cast<std::ptrdiff_t>(done);
}

// recv(2) for a plane end: > 0 plaintext bytes, 0 the peer closed, -1 and errno (EAGAIN:
// nothing more now). A short count means the socket is drained (level-triggered epoll reports
// what comes next); after a full one, TLS may still hold plaintext (plane_buffered).
inline ssize_t plane_recv(int fd, pool::tls_channel* tls, std::span<std::byte> buf) {
    if (tls != nullptr) return plane_recv_tls(fd, *tls, buf);
    for (;;) {
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n < 0 && errno == EINTR) continue;
        return n;
    }
}

// Sends `b`, keeping what the socket does not take: plain bytes in `rest`, TLS as the
// channel's ciphertext. False: the peer is gone (or TLS failed).
inline bool plane_send(int fd, pool::tls_channel* tls, std::span<const std::byte> b,
                       std::vector<std::byte>& rest) {
    if (b.empty()) return true;
    if (tls != nullptr) return plane_send_tls(fd, *tls, b);
    if (!rest.empty()) {
        rest.insert(rest.end(), b.begin(), b.end());
        return true;
    }
    const auto sent = plane_send_some(fd, b);
    if (sent < 0) return false;
    if (static_cast<std::size_t>(sent) < b.size()) rest.assign(b.begin() + sent, b.end());
    return true;
}

// Sends what plane_send kept. False: the peer is gone.
inline bool plane_flush(int fd, pool::tls_channel* tls, std::vector<std::byte>& rest) {
    if (tls != nullptr && !plane_flush_tls(fd, *tls)) return false;
    if (rest.empty()) return true;
    const auto sent = plane_send_some(fd, rest);
    if (sent < 0) return false;
    rest.erase(rest.begin(), rest.begin() + sent);
    return true;
}

// Something kept for this end that the socket has not taken yet.
inline bool plane_unsent(const pool::tls_channel* tls, const std::vector<std::byte>& rest) {
    return !rest.empty() || (tls != nullptr && tls->has_output());
}

// Plaintext the channel may hold without the socket being readable: a reader that paused
// reads again before it waits for epoll.
inline bool plane_buffered(const pool::tls_channel* tls) {
    return tls != nullptr && tls->readable();
}

}  // namespace shardgate::proxy
