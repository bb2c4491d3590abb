// Random and mutated bytes through the frame decoder and every message decoder: no crash, and
// whatever decodes re-encodes to the same bytes. Fixed seeds keep failures reproducible.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "message_samples.hpp"
#include "message_test_support.hpp"

using namespace shardgate::protocol;
using sg_test::bytes;
using sg_test::encoded;

namespace {

constexpr int iterations = 100000;
constexpr std::string_view frontend_types = "pQPBDECSHXdcfF";
constexpr std::string_view backend_types = "RK23CGHWdcDIENVvnAtS1sZT";

// Bytes biased towards the values that matter in this protocol: 0 (NUL, small counts),
// 0xff (-1 lengths, huge counts) and printable text.
struct byte_source {
    std::mt19937 rng;
    std::byte next() {
        const auto r = rng();
        switch (r % 4) {
            case 0:
                return std::byte{0};
            case 1:
                return std::byte{0xff};
            case 2:
                return static_cast<std::byte>('a' + (r >> 8) % 26);
            default:
                return static_cast<std::byte>(r >> 8);
        }
    }
    bytes body() {
        const std::size_t n = rng() % 3 == 0 ? rng() % 8 : rng() % 64;
        bytes v(n);
        for (auto& x : v)
            x = next();
        return v;
    }
    char type(std::string_view known) {
        return rng() % 4 == 0 ? static_cast<char>(rng()) : known[rng() % known.size()];
    }
};

// Decodes one frame; on success the message must re-encode to exactly the frame's bytes.
template <class Decode>
bool decodes_canonically(const frame& f, Decode decode, int& decoded) {
    auto m = decode(f);
    if (!m) return true;
    ++decoded;
    write_buffer wb;
    encode(wb, *m);
    const auto w = wb.view();
    return w.size() == f.wire_size() && static_cast<char>(w[0]) == f.type &&
           std::equal(f.body.begin(), f.body.end(), w.begin() + 5);
}

}  // namespace

TEST_CASE("100k random frontend bodies: no crash, decoded ones re-encode byte for byte") {
    byte_source src{std::mt19937(20240601)};
    int decoded = 0;
    int mismatches = 0;
    for (int i = 0; i < iterations; ++i) {
        const char t = src.type(frontend_types);
        const bytes body = src.body();
        if (!decodes_canonically(frame{t, body}, fe::decode_frontend, decoded)) ++mismatches;
    }
    CHECK(mismatches == 0);
    CHECK(decoded > 1000);  // the generator does reach the success paths
    MESSAGE("frontend: " << decoded << " of " << iterations << " random bodies decoded");
}

TEST_CASE("100k random backend bodies: no crash, decoded ones re-encode byte for byte") {
    byte_source src{std::mt19937(20240602)};
    int decoded = 0;
    int mismatches = 0;
    for (int i = 0; i < iterations; ++i) {
        const char t = src.type(backend_types);
        const bytes body = src.body();
        if (!decodes_canonically(frame{t, body}, be::decode_backend, decoded)) ++mismatches;
    }
    CHECK(mismatches == 0);
    CHECK(decoded > 1000);
    MESSAGE("backend: " << decoded << " of " << iterations << " random bodies decoded");
}

TEST_CASE("100k random startup packets: no crash, decoded ones re-encode byte for byte") {
    byte_source src{std::mt19937(20240603)};
    const std::uint32_t codes[] = {protocol_3_0,        protocol_3_0 | 2,    ssl_request_code,
                                   gssenc_request_code, cancel_request_code, 2U << 16};
    int decoded = 0;
    int mismatches = 0;
    for (int i = 0; i < iterations; ++i) {
        const std::uint32_t code = src.rng() % 8 == 0 ? src.rng() : codes[src.rng() % 6];
        const bytes body = src.body();
        auto p = fe::decode_startup(startup_frame{code, body});
        if (!p) continue;
        ++decoded;
        write_buffer wb;
        encode(wb, *p);
        const auto w = wb.view();
        if (w.size() != body.size() + 8 || !std::equal(body.begin(), body.end(), w.begin() + 8))
            ++mismatches;
    }
    CHECK(mismatches == 0);
    CHECK(decoded > 1000);
}

TEST_CASE("valid streams with random byte mutations: the receive loop never crashes") {
    bytes fe_stream;
    for (const auto& m : sg_test::frontend_samples()) {
        const auto w = encoded(m);
        fe_stream.insert(fe_stream.end(), w.begin(), w.end());
    }
    bytes be_stream;
    for (const auto& m : sg_test::backend_samples()) {
        const auto w = encoded(m);
        be_stream.insert(be_stream.end(), w.begin(), w.end());
    }
    std::mt19937 rng(20240604);
    int mismatches = 0;
    int decoded = 0;
    for (int i = 0; i < 20000; ++i) {
        const bool backend = i % 2 == 1;
        bytes s = backend ? be_stream : fe_stream;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < flips; ++k)
            s[rng() % s.size()] = static_cast<std::byte>(rng() % 3 == 0 ? 0xff : rng());
        for (const auto& f : sg_test::split_frames(s)) {
            const bool ok = backend ? decodes_canonically(f, be::decode_backend, decoded)
                                    : decodes_canonically(f, fe::decode_frontend, decoded);
            if (!ok) ++mismatches;
        }
    }
    CHECK(mismatches == 0);
    CHECK(decoded > 0);
}
