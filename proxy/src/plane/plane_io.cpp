// Plain and TLS reads and writes of data-plane ends (plane_io.hpp).
#include "plane/plane_io.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace shardgate::proxy {
namespace {

constexpr std::size_t cipher_chunk = std::size_t{64} * 1024;

std::span<std::byte> cipher_scratch() {
    thread_local std::vector<std::byte> buf(cipher_chunk);
    return buf;
}

// Sends as much of `b` as the socket takes: the count sent, or -1 when the peer is gone.
std::ptrdiff_t send_some(int fd, std::span<const std::byte> b) {
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

bool flush_tls(int fd, pool::tls_channel& tls) {
    if (!tls.has_output()) return true;
    const auto sent = send_some(fd, tls.output());
    if (sent < 0) return false;
    tls.consume(static_cast<std::size_t>(sent));
    return true;
}

ssize_t recv_tls(int fd, pool::tls_channel& tls, std::span<std::byte> buf) {
    std::size_t n = 0;
    for (;;) {
        const auto r = tls.read(buf.subspan(n));
        n += r.n;
        // A read may answer the peer (a KeyUpdate, an alert): sent now or with the next write.
        if (!flush_tls(fd, tls) && n == 0) return -1;
        if (r.st == pool::tls_channel::status::failed) {
            if (n > 0) return static_cast<ssize_t>(n);  // the failure shows on the next call
            errno = ECONNRESET;
            return -1;
        }
        if (r.st == pool::tls_channel::status::closed) return static_cast<ssize_t>(n);
        if (n == buf.size()) return static_cast<ssize_t>(n);
        auto cipher = cipher_scratch();
        const ssize_t got = ::recv(fd, cipher.data(), cipher.size(), 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return n > 0 ? static_cast<ssize_t>(n) : -1;
        }
        if (got == 0) return static_cast<ssize_t>(n);  // the close shows on the next call
        tls.feed(cipher.first(static_cast<std::size_t>(got)));
    }
}

}  // namespace

ssize_t plane_recv(int fd, pool::tls_channel* tls, std::span<std::byte> buf) {
    if (tls != nullptr) return recv_tls(fd, *tls, buf);
    for (;;) {
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n < 0 && errno == EINTR) continue;
        return n;
    }
}

bool plane_send(int fd, pool::tls_channel* tls, std::span<const std::byte> b,
                std::vector<std::byte>& rest) {
    if (b.empty()) return true;
    if (tls != nullptr) {
        if (!tls->write(b)) return false;
        return flush_tls(fd, *tls);
    }
    if (!rest.empty()) {
        rest.insert(rest.end(), b.begin(), b.end());
        return true;
    }
    const auto sent = send_some(fd, b);
    if (sent < 0) return false;
    rest.assign(b.begin() + sent, b.end());
    return true;
}

bool plane_flush(int fd, pool::tls_channel* tls, std::vector<std::byte>& rest) {
    if (tls != nullptr && !flush_tls(fd, *tls)) return false;
    if (rest.empty()) return true;
    const auto sent = send_some(fd, rest);
    if (sent < 0) return false;
    rest.erase(rest.begin(), rest.begin() + sent);
    return true;
}

}  // namespace shardgate::proxy
