// tls_channel: OpenSSL over memory BIOs (see the header).
#include "shardgate/pool/tls_channel.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace shardgate::pool {
namespace {

// An output buffer that once held a large reply is not kept for an idle session.
constexpr std::size_t keep_capacity = std::size_t{16} * 1024;
// Nor a memory BIO that once held much: a BIO keeps its largest allocation, so an empty one
// above this is replaced by a new one (an idle TLS client keeps a few KiB, not a result).
constexpr std::size_t keep_bio = std::size_t{16} * 1024;

// The allocation of a memory BIO.
std::size_t bio_capacity(BIO* b) {
    BUF_MEM* m = nullptr;
    BIO_get_mem_ptr(b, &m);
    return m == nullptr ? 0 : m->max;
}

BIO* new_mem_bio() {
    BIO* b = BIO_new(BIO_s_mem());
    // An empty BIO means "no data yet", not end of stream.
    if (b != nullptr) BIO_set_mem_eof_return(b, -1);
    return b;
}

bool is_ip_address(const std::string& host) {
    std::array<unsigned char, 16> buf{};
    return inet_pton(AF_INET, host.c_str(), buf.data()) == 1 ||
           inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

}  // namespace

tls_channel::tls_channel(ssl_ctx_st* ctx, side s) : ssl_(SSL_new(ctx)) {
    if (ssl_ == nullptr) throw std::runtime_error("TLS: cannot create a session");
    in_ = new_mem_bio();
    out_bio_ = new_mem_bio();
    if (in_ == nullptr || out_bio_ == nullptr) {
        BIO_free(in_);
        BIO_free(out_bio_);
        SSL_free(ssl_);
        throw std::runtime_error("TLS: cannot create buffers");
    }
    SSL_set_bio(ssl_, in_, out_bio_);
    SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
    if (s == side::accept)
        SSL_set_accept_state(ssl_);
    else
        SSL_set_connect_state(ssl_);
}

tls_channel::~tls_channel() {
    SSL_free(ssl_);  // frees both BIOs
}

void tls_channel::set_peer(const std::string& host, bool verify) {
    const bool ip = is_ip_address(host);
    // SNI, as libpq sends it (sslsni=1) for host names but not IP addresses.
    if (!ip) SSL_set_tlsext_host_name(ssl_, host.c_str());
    if (!verify) {
        SSL_set_verify(ssl_, SSL_VERIFY_NONE, nullptr);
        return;
    }
    SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
    if (ip)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str());
    else
        SSL_set1_host(ssl_, host.c_str());
}

void tls_channel::feed(std::span<const std::byte> cipher) {
    readable_ = readable_ || !cipher.empty();
    while (!cipher.empty()) {
        const int n = static_cast<int>(std::min<std::size_t>(cipher.size(), 1U << 30U));
        const int w = BIO_write(in_, cipher.data(), n);
        if (w <= 0) return;  // a memory BIO only fails when out of memory
        cipher = cipher.subspan(static_cast<std::size_t>(w));
    }
}

tls_channel::status tls_channel::handshake() {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    drain();
    return r == 1 ? status::ok : fail(r);
}

tls_channel::read_result tls_channel::read(std::span<std::byte> out) {
    ERR_clear_error();
    read_result res;
    while (res.n < out.size()) {
        std::size_t got = 0;
        const int r = SSL_read_ex(ssl_, out.data() + res.n, out.size() - res.n, &got);
        if (r != 1) {
            res.st = fail(r);
            break;
        }
        res.n += got;
    }
    // Reading may produce output: a KeyUpdate answer, session tickets, an alert.
    drain();
    readable_ = res.st != status::want_input;
    if (BIO_ctrl_pending(in_) == 0 && bio_capacity(in_) > keep_bio) {
        if (BIO* fresh = new_mem_bio()) {
            SSL_set0_rbio(ssl_, fresh);  // frees the old one
            in_ = fresh;
        }
    }
    return res;
}

bool tls_channel::buffered() const {
    return SSL_pending(ssl_) > 0 || BIO_ctrl_pending(in_) > 0;
}

bool tls_channel::write(std::span<const std::byte> plain) {
    if (plain.empty()) return true;
    ERR_clear_error();
    std::size_t written = 0;
    // A memory BIO takes everything: without partial writes SSL_write_ex is all or nothing.
    const int r = SSL_write_ex(ssl_, plain.data(), plain.size(), &written);
    drain();
    if (r == 1 && written == plain.size()) return true;
    if (r != 1) fail(r);
    return false;
}

void tls_channel::shutdown() {
    ERR_clear_error();
    SSL_shutdown(ssl_);
    drain();
}

std::size_t tls_channel::retained() const {
    return out_.capacity() + bio_capacity(in_) + bio_capacity(out_bio_);
}

void tls_channel::consume(std::size_t n) {
    out_at_ = std::min(out_.size(), out_at_ + n);
    if (out_at_ < out_.size()) return;
    out_.clear();
    out_at_ = 0;
    if (out_.capacity() > keep_capacity) out_.shrink_to_fit();
}

void tls_channel::drain() {
    for (;;) {
        const std::size_t pending = BIO_ctrl_pending(out_bio_);
        if (pending == 0) return;
        if (out_at_ == out_.size()) {
            out_.clear();
            out_at_ = 0;
        }
        const std::size_t old = out_.size();
        out_.resize(old + pending);
        const int r = BIO_read(out_bio_, out_.data() + old, static_cast<int>(pending));
        out_.resize(old + static_cast<std::size_t>(std::max(r, 0)));
        if (r <= 0) return;
        if (BIO_ctrl_pending(out_bio_) == 0 && bio_capacity(out_bio_) > keep_bio) {
            if (BIO* fresh = new_mem_bio()) {
                SSL_set0_wbio(ssl_, fresh);  // frees the old one
                out_bio_ = fresh;
            }
        }
    }
}

tls_channel::status tls_channel::fail(int ret) {
    switch (SSL_get_error(ssl_, ret)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:  // a memory BIO never refuses a write; treat as "go on"
            return status::want_input;
        case SSL_ERROR_ZERO_RETURN:
            return status::closed;
        default:
            break;
    }
    error_.clear();
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
        error_ = "certificate verify failed: ";
        error_ += X509_verify_cert_error_string(verify);
        ERR_clear_error();
        return status::failed;
    }
    std::array<char, 256> buf{};
    while (const unsigned long e = ERR_get_error()) {
        ERR_error_string_n(e, buf.data(), buf.size());
        if (!error_.empty()) error_ += "; ";
        error_ += buf.data();
    }
    if (error_.empty()) error_ = "TLS connection broken";
    return status::failed;
}

}  // namespace shardgate::pool
