// Frontend startup packets: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "message_test_support.hpp"
#include "shardgate/protocol/frontend.hpp"

using namespace shardgate::protocol;
using sg_test::b;
using sg_test::bytes;
using sg_test::cat;
using sg_test::encoded;

namespace {

std::vector<fe::startup_packet> startup_samples() {
    return {
        fe::startup_message{protocol_3_0, {{"user", "alice"}, {"database", "app"}}},
        fe::startup_message{protocol_3_0, {}},
        fe::startup_message{protocol_3_0 | 1, {{"user", "u"}, {"_pq_.ext", ""}}},
        fe::startup_message{protocol_3_0,
                            {{"user", "u"}, {"options", "-c search_path=x"}, {"user", "v"}}},
        fe::ssl_request{},
        fe::gssenc_request{},
        fe::cancel_request{1234, -5678},
    };
}

// Every startup packet in `stream`, decoded in order, like the session's startup loop.
std::vector<fe::startup_packet> decode_all(std::span<const std::byte> stream, bool* ok) {
    std::vector<fe::startup_packet> out;
    *ok = true;
    std::size_t pos = 0;
    for (;;) {
        const auto r = decode_startup_frame(stream.subspan(pos));
        if (r.status != frame_status::ok) {
            *ok = r.status == frame_status::need_more && pos == stream.size();
            return out;
        }
        auto p = fe::decode_startup(r.packet);
        if (!p) {
            *ok = false;
            return out;
        }
        out.push_back(std::move(p).value());
        pos += r.consumed;
    }
}

}  // namespace

TEST_CASE("startup packets round-trip through decode_startup_frame and decode_startup") {
    for (const auto& p : startup_samples()) {
        const bytes wire = encoded(p);
        const auto r = decode_startup_frame(wire);
        REQUIRE(r.status == frame_status::ok);
        CHECK(r.consumed == wire.size());
        auto d = fe::decode_startup(r.packet);
        REQUIRE(d.ok());
        CHECK(*d == p);
        CHECK(encoded(*d) == wire);
        // Split at every byte: need_more until the whole packet is there.
        for (std::size_t cut = 0; cut < wire.size(); ++cut)
            CHECK(decode_startup_frame(std::span(wire).first(cut)).status ==
                  frame_status::need_more);
    }
}

TEST_CASE("SSLRequest then StartupMessage in one buffer, split at every byte") {
    const auto samples = startup_samples();
    const std::vector<fe::startup_packet> expected{fe::ssl_request{}, samples[0]};
    const bytes stream = cat({encoded(expected[0]), encoded(expected[1])});
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        CAPTURE(cut);
        bool ok = false;
        const auto first = decode_all(std::span(stream).first(cut), &ok);
        // What the first read yields is a prefix of the packets; the rest comes after.
        std::size_t used = 0;
        for (const auto& p : first)
            used += encoded(p).size();
        const auto second = decode_all(std::span(stream).subspan(used), &ok);
        CHECK(ok);
        auto all = first;
        all.insert(all.end(), second.begin(), second.end());
        CHECK(all == expected);
    }
}

TEST_CASE("byte-exact startup vectors from the protocol documentation") {
    // SSLRequest: length 8, code 80877103 = 0x04d2162f. GSSENCRequest: 80877104.
    CHECK(encoded(fe::ssl_request{}) == b({0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}));
    CHECK(encoded(fe::gssenc_request{}) == b({0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}));
    // CancelRequest: length 16, code 80877102 = 0x04d2162e, process ID, secret key.
    CHECK(encoded(fe::cancel_request{0x01020304, 0x0a0b0c0d}) ==
          b({0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 1, 2, 3, 4, 10, 11, 12, 13}));
    // StartupMessage: length, version 3.0 (196608), pairs, terminating zero byte.
    const bytes sm =
        cat({b({0, 0, 0, 23, 0, 3, 0, 0}), b("user"), b({0}), b("postgres"), b({0, 0})});
    CHECK(encoded(fe::startup_message{protocol_3_0, {{"user", "postgres"}}}) == sm);
    const auto r = decode_startup_frame(sm);
    REQUIRE(r.status == frame_status::ok);
    auto d = fe::decode_startup(r.packet);
    REQUIRE(d.ok());
    const auto& m = std::get<fe::startup_message>(*d);
    CHECK(m.version == 196608);
    CHECK(m.param("user") == "postgres");
}

TEST_CASE("startup_message::param: last duplicate wins, absent is empty") {
    const fe::startup_message m{protocol_3_0, {{"user", "a"}, {"database", ""}, {"user", "b"}}};
    CHECK(m.param("user") == "b");
    CHECK(m.param("database").empty());
    CHECK(m.has_param("database"));
    CHECK(m.param("application_name").empty());
    CHECK(!m.has_param("application_name"));
}

TEST_CASE("startup versions and request codes") {
    const auto code = [](std::uint32_t c, const bytes& body) {
        return fe::decode_startup(startup_frame{c, body});
    };
    const bytes empty_params = b({0});
    CHECK(code(2U << 16, empty_params).error() == decode_error::unsupported);
    CHECK(code(4U << 16, empty_params).error() == decode_error::unsupported);
    CHECK(code((1234U << 16) | 5681, {}).error() == decode_error::unsupported);
    CHECK(code(0, {}).error() == decode_error::unsupported);
    auto v31 = code(protocol_3_0 | 1, empty_params);
    REQUIRE(v31.ok());
    CHECK(std::get<fe::startup_message>(*v31).version == (protocol_3_0 | 1));
    // The span-only decoder takes the version from its caller.
    auto direct = fe::decode_startup_message(cat({b("user"), b({0}), b("x"), b({0, 0})}));
    REQUIRE(direct.ok());
    CHECK(direct->version == protocol_3_0);
    CHECK(direct->params.size() == 1);
}

TEST_CASE("malformed startup bodies: truncations, trailing bytes, missing terminators") {
    for (const auto& p : startup_samples()) {
        const bytes wire = encoded(p);
        const auto r = decode_startup_frame(wire);
        REQUIRE(r.status == frame_status::ok);
        for (std::size_t n = 0; n < r.packet.body.size(); ++n) {
            CAPTURE(n);
            const auto d = fe::decode_startup(startup_frame{r.packet.code, r.packet.body.first(n)});
            REQUIRE(!d.ok());
            CHECK(d.error() == decode_error::malformed);
        }
        bytes longer(r.packet.body.begin(), r.packet.body.end());
        for (const int extra : std::initializer_list<int>{0, 'x'}) {
            longer.push_back(static_cast<std::byte>(extra));
            CHECK(fe::decode_startup(startup_frame{r.packet.code, longer}).error() ==
                  decode_error::malformed);
        }
    }
    // A name without a value; a value without its NUL; nothing at all.
    CHECK(!fe::decode_startup_message(cat({b("user"), b({0, 0})})));
    CHECK(!fe::decode_startup_message(cat({b("user"), b({0}), b("x")})));
    CHECK(!fe::decode_startup_message({}));
}
