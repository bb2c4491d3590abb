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

}  // namespace

bool plane_flush_tls(int fd, pool::tls_channel& tls) {
    if (!tls.has_output()) return true;
    const auto sent = plane_send_some(fd, tls.output());
    if (sent < 0) return false;
    tls.consume(static_cast<std::size_t>(sent));
    return true;
}

ssize_t plane_recv_tls(int fd, pool::tls_channel& tls, std::span<std::byte> buf) {
    std::size_t n = 0;
    bool drained = false;  // a read from the socket came back short: nothing more there now
    for (;;) {
        if (tls.readable()) {  // else the last read ended wanting input, and none came since
            const auto r = tls.read(buf.subspan(n));
            n += r.n;
            // A read may answer the peer (a KeyUpdate, an alert): sent now or with the next
            // write.
            if (tls.has_output() && !plane_flush_tls(fd, tls) && n == 0) return -1;
            if (r.st == pool::tls_channel::status::failed) {
                if (n > 0) return static_cast<ssize_t>(n);  // the failure shows on the next call
                errno = ECONNRESET;
                return -1;
            }
            if (r.st == pool::tls_channel::status::closed || n == buf.size())
                return static_cast<ssize_t>(n);
        }
        if (drained) {
            if (n > 0) return static_cast<ssize_t>(n);
            errno = EAGAIN;
            return -1;
        }
        auto cipher = cipher_scratch();
        const ssize_t got = ::recv(fd, cipher.data(), cipher.size(), 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return n > 0 ? static_cast<ssize_t>(n) : -1;
        }
        if (got == 0) return static_cast<ssize_t>(n);  // the close shows on the next call
        drained = static_cast<std::size_t>(got) < cipher.size();
        tls.feed(cipher.first(static_cast<std::size_t>(got)));
    }
}

bool plane_send_tls(int fd, pool::tls_channel& tls, std::span<const std::byte> b) {
    return tls.write(b) && plane_flush_tls(fd, tls);
}

}  // namespace shardgate::proxy
