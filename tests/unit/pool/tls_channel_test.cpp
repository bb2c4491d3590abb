// tls_channel: two channels talk TLS through memory only (no sockets). The certificate is made
// in-process: a P-256 key, self-signed, CN=localhost, SAN DNS:localhost and IP:127.0.0.1.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "shardgate/pool/tls_channel.hpp"

using shardgate::pool::tls_channel;
using st = tls_channel::status;

namespace {

struct test_pki {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    SSL_CTX* server = nullptr;
    SSL_CTX* client = nullptr;

    test_pki() {
        key = EVP_EC_gen("P-256");
        cert = X509_new();
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
        X509_set_pubkey(cert, key);
        X509_NAME* name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
        X509_set_issuer_name(cert, name);
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
        X509_EXTENSION* san =
            X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
        X509_add_ext(cert, san, -1);
        X509_EXTENSION_free(san);
        X509_sign(cert, key, EVP_sha256());
        server = SSL_CTX_new(TLS_server_method());
        SSL_CTX_use_certificate(server, cert);
        SSL_CTX_use_PrivateKey(server, key);
        client = SSL_CTX_new(TLS_client_method());
        X509_STORE_add_cert(SSL_CTX_get_cert_store(client), cert);
    }
    ~test_pki() {
        SSL_CTX_free(client);
        SSL_CTX_free(server);
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    test_pki(const test_pki&) = delete;
    test_pki& operator=(const test_pki&) = delete;
};

test_pki& pki() {
    static test_pki p;
    return p;
}

// Moves what `from` has for its peer into `to`, at most `max` bytes at a time.
void carry(tls_channel& from, tls_channel& to, std::size_t max = SIZE_MAX) {
    while (from.has_output()) {
        auto out = from.output();
        if (out.size() > max) out = out.first(max);
        to.feed(out);
        from.consume(out.size());
    }
}

// Runs both handshakes to completion (or failure): the statuses at the end.
std::pair<st, st> handshake(tls_channel& c, tls_channel& s, std::size_t max = SIZE_MAX) {
    st cs = st::want_input;
    st ss = st::want_input;
    for (int round = 0; round < 100000; ++round) {
        if (cs == st::want_input) cs = c.handshake();
        carry(c, s, max);
        if (ss == st::want_input) ss = s.handshake();
        carry(s, c, max);
        if (cs != st::want_input && ss != st::want_input) break;
        if (cs == st::failed || ss == st::failed) break;
    }
    return {cs, ss};
}

std::vector<std::byte> pattern(std::size_t n) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = static_cast<std::byte>((i * 131 + 7) & 0xff);
    return v;
}

std::vector<std::byte> read_all(tls_channel& ch, std::size_t piece = 1000) {
    std::vector<std::byte> got;
    std::vector<std::byte> buf(piece);
    for (;;) {
        const auto r = ch.read(buf);
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.n));
        if (r.st != st::ok) break;
    }
    return got;
}

}  // namespace

TEST_CASE("tls_channel: a handshake and data both ways, through memory only") {
    tls_channel c(pki().client, tls_channel::side::connect);
    tls_channel s(pki().server, tls_channel::side::accept);
    c.set_peer("localhost", true);
    const auto [cs, ss] = handshake(c, s);
    REQUIRE(cs == st::ok);
    REQUIRE(ss == st::ok);
    const auto msg = pattern(100);
    REQUIRE(c.write(msg));
    carry(c, s);
    CHECK(read_all(s) == msg);
    // A megabyte back, handed over in odd-sized pieces, read in small ones.
    const auto big = pattern(1 << 20);
    REQUIRE(s.write(big));
    std::vector<std::byte> got;
    std::vector<std::byte> buf(777);
    while (s.has_output() || c.buffered()) {
        carry(s, c, 1500);
        for (;;) {
            const auto r = c.read(buf);
            got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.n));
            CHECK(r.st != st::failed);
            if (r.st != st::ok) break;
        }
    }
    CHECK(got == big);
    CHECK_FALSE(c.buffered());
    // Idle again: neither side keeps a megabyte of buffers.
    CHECK(c.retained() <= 48 * 1024);
    CHECK(s.retained() <= 48 * 1024);
    // One more small exchange after the trim works as before.
    REQUIRE(s.write(pattern(50)));
    carry(s, c);
    CHECK(read_all(c) == pattern(50));
}

TEST_CASE("tls_channel: a read that fills its buffer leaves the rest buffered") {
    tls_channel c(pki().client, tls_channel::side::connect);
    tls_channel s(pki().server, tls_channel::side::accept);
    REQUIRE(handshake(c, s) == std::pair{st::ok, st::ok});
    REQUIRE(c.write(pattern(5000)));
    carry(c, s);
    std::vector<std::byte> buf(1000);
    const auto r = s.read(buf);
    CHECK(r.n == 1000);
    CHECK(r.st == st::ok);
    CHECK(s.buffered());
    CHECK(s.readable());  // a paused reader must come back without waiting for the socket
    CHECK(read_all(s).size() == 4000);
    CHECK_FALSE(s.buffered());
    CHECK_FALSE(s.readable());
    s.feed({});
    CHECK_FALSE(s.readable());
    REQUIRE(c.write(pattern(10)));
    carry(c, s);
    CHECK(s.readable());
}

TEST_CASE("tls_channel: the handshake survives ciphertext one byte at a time") {
    tls_channel c(pki().client, tls_channel::side::connect);
    tls_channel s(pki().server, tls_channel::side::accept);
    c.set_peer("127.0.0.1", true);
    REQUIRE(handshake(c, s, 1) == std::pair{st::ok, st::ok});
    REQUIRE(s.write(pattern(300)));
    carry(s, c, 1);
    CHECK(read_all(c) == pattern(300));
}

TEST_CASE("tls_channel: a certificate that does not name the host is refused") {
    SUBCASE("host name") {
        tls_channel c(pki().client, tls_channel::side::connect);
        tls_channel s(pki().server, tls_channel::side::accept);
        c.set_peer("db.example.com", true);
        CHECK(handshake(c, s).first == st::failed);
        CHECK(c.error().find("certificate verify failed") != std::string::npos);
    }
    SUBCASE("IP address") {
        tls_channel c(pki().client, tls_channel::side::connect);
        tls_channel s(pki().server, tls_channel::side::accept);
        c.set_peer("10.1.2.3", true);
        CHECK(handshake(c, s).first == st::failed);
        CHECK(c.error().find("certificate verify failed") != std::string::npos);
    }
    SUBCASE("without verification any name goes") {
        tls_channel c(pki().client, tls_channel::side::connect);
        tls_channel s(pki().server, tls_channel::side::accept);
        c.set_peer("db.example.com", false);
        CHECK(handshake(c, s) == std::pair{st::ok, st::ok});
    }
}

TEST_CASE("tls_channel: close_notify, garbage, and a truncated record") {
    SUBCASE("close_notify reads as closed, after the data before it") {
        tls_channel c(pki().client, tls_channel::side::connect);
        tls_channel s(pki().server, tls_channel::side::accept);
        REQUIRE(handshake(c, s) == std::pair{st::ok, st::ok});
        REQUIRE(c.write(pattern(10)));
        c.shutdown();
        carry(c, s);
        std::vector<std::byte> buf(100);
        auto r = s.read(buf);
        CHECK(r.n == 10);
        if (r.st == st::ok || r.n > 0) r = s.read(buf);
        CHECK(r.st == st::closed);
    }
    SUBCASE("plaintext where a handshake belongs fails with a reason") {
        tls_channel s(pki().server, tls_channel::side::accept);
        const std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        s.feed(std::as_bytes(std::span(junk)));
        CHECK(s.handshake() == st::failed);
        CHECK_FALSE(s.error().empty());
    }
    SUBCASE("half a record waits for the rest") {
        tls_channel c(pki().client, tls_channel::side::connect);
        tls_channel s(pki().server, tls_channel::side::accept);
        REQUIRE(handshake(c, s) == std::pair{st::ok, st::ok});
        REQUIRE(c.write(pattern(200)));
        auto out = c.output();
        const auto half = out.size() / 2;
        s.feed(out.first(half));
        std::vector<std::byte> buf(1000);
        const auto r = s.read(buf);
        CHECK(r.n == 0);
        CHECK(r.st == st::want_input);
        s.feed(out.subspan(half));
        c.consume(out.size());
        CHECK(read_all(s) == pattern(200));
    }
    SUBCASE("a corrupted record fails") {
        tls_channel c(pki().client, tls_channel::side::connect);
        tls_channel s(pki().server, tls_channel::side::accept);
        REQUIRE(handshake(c, s) == std::pair{st::ok, st::ok});
        REQUIRE(c.write(pattern(200)));
        std::vector<std::byte> rec(c.output().begin(), c.output().end());
        rec[rec.size() - 3] ^= std::byte{0x55};
        s.feed(rec);
        std::vector<std::byte> buf(1000);
        CHECK(s.read(buf).st == st::failed);
        CHECK_FALSE(s.error().empty());
    }
}
