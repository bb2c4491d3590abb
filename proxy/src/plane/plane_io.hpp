// Reads and writes of one end of a data-plane link, plain TCP or TLS over the same fd (the
// TLS session is the pool::tls_channel the Asio side negotiated at login; the plane drives it
// while it holds the fd). Non-blocking; nothing here waits.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <vector>

#include "shardgate/pool/tls_channel.hpp"

namespace shardgate::proxy {

// recv(2) for a plane end: > 0 plaintext bytes, 0 the peer closed, -1 and errno (EAGAIN:
// nothing more now). A short count means the socket is drained (level-triggered epoll reports
// what comes next); after a full one, TLS may still hold plaintext (plane_buffered).
ssize_t plane_recv(int fd, pool::tls_channel* tls, std::span<std::byte> buf);

// Sends `b`, keeping what the socket does not take: plain bytes in `rest`, TLS as the
// channel's ciphertext. False: the peer is gone (or TLS failed).
bool plane_send(int fd, pool::tls_channel* tls, std::span<const std::byte> b,
                std::vector<std::byte>& rest);

// Sends what plane_send kept. False: the peer is gone.
bool plane_flush(int fd, pool::tls_channel* tls, std::vector<std::byte>& rest);

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
