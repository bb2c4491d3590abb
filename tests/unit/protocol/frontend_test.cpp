// Frontend message catalog: round trips, every split point, byte-exact vectors, malformed bodies.
#include "shardgate/protocol/frontend.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "message_samples.hpp"
#include "message_test_support.hpp"

using namespace shardgate::protocol;
using sg_test::b;
using sg_test::bytes;
using sg_test::cat;
using sg_test::encoded;

namespace {

// Messages whose last field is "the rest of the body": any prefix or extension is well-formed.
bool has_raw_tail(char type) {
    return type == 'd';
}

char type_of(const fe::frontend_message& m) {
    return std::visit([](const auto& x) { return std::decay_t<decltype(x)>::type; }, m);
}

result<fe::frontend_message> decode_one(const frame& f) {
    return fe::decode_frontend(f);
}

}  // namespace

TEST_CASE("every frontend message round-trips through frame_decoder and decode_frontend") {
    for (const auto& m : sg_test::frontend_samples()) {
        const bytes wire = encoded(m);
        CAPTURE(type_of(m));
        const auto r = frame_decoder{}.feed(wire);
        REQUIRE(r.status == frame_status::ok);
        CHECK(r.consumed == wire.size());
        CHECK(r.msg.type == type_of(m));
        auto d = fe::decode_frontend(r.msg);
        REQUIRE(d.ok());
        CHECK(*d == m);
        CHECK(encoded(*d) == wire);  // decoding is canonical: re-encoding gives the same bytes
    }
}

TEST_CASE("every frontend message decodes at every split point") {
    for (const auto& m : sg_test::frontend_samples()) {
        CAPTURE(type_of(m));
        sg_test::check_every_split(encoded(m), std::vector{m}, decode_one);
    }
}

TEST_CASE("all frontend messages in one stream, split at every byte") {
    const auto msgs = sg_test::frontend_samples();
    bytes stream;
    for (const auto& m : msgs) {
        const auto w = encoded(m);
        stream.insert(stream.end(), w.begin(), w.end());
    }
    sg_test::check_every_split(stream, msgs, decode_one);
}

TEST_CASE("three messages in one buffer: Parse, Bind, Sync") {
    write_buffer wb;
    encode(wb, fe::parse{"", "SELECT $1", {25}});
    encode(wb, fe::bind{"", "", {}, {"x"}, {}});
    encode(wb, fe::sync{});
    std::size_t rest = 1;
    const auto frames = sg_test::split_frames(wb.view(), &rest);
    CHECK(rest == 0);
    REQUIRE(frames.size() == 3);
    CHECK(std::holds_alternative<fe::parse>(*fe::decode_frontend(frames[0])));
    CHECK(std::get<fe::bind>(*fe::decode_frontend(frames[1])).params.at(0) == "x");
    CHECK(std::holds_alternative<fe::sync>(*fe::decode_frontend(frames[2])));
    // 98 of 100 bytes: the last frame is incomplete and stays in the buffer.
    const auto partial = wb.view().first(wb.size() - 2);
    CHECK(sg_test::split_frames(partial, &rest).size() == 2);
    CHECK(rest == 3);
}

TEST_CASE("byte-exact frontend vectors from the protocol documentation") {
    // Query "SELECT 1": 'Q', Int32 length 4 + 9, the String.
    const bytes q = cat({b({'Q', 0, 0, 0, 13}), b("SELECT 1"), b({0})});
    CHECK(encoded(fe::query{"SELECT 1"}) == q);
    CHECK(std::get<fe::query>(*fe::decode_frontend(sg_test::split_frames(q)[0])).sql == "SELECT 1");

    CHECK(encoded(fe::sync{}) == b({'S', 0, 0, 0, 4}));
    CHECK(encoded(fe::flush{}) == b({'H', 0, 0, 0, 4}));
    CHECK(encoded(fe::terminate{}) == b({'X', 0, 0, 0, 4}));
    CHECK(encoded(fe::copy_done{}) == b({'c', 0, 0, 0, 4}));
    CHECK(encoded(fe::password_message{"pw"}) == cat({b({'p', 0, 0, 0, 7}), b("pw"), b({0})}));

    // Parse: name, query, Int16 1, Int32 23 (int4).
    CHECK(encoded(fe::parse{"s1", "SELECT $1", {23}}) ==
          cat({b({'P', 0, 0, 0, 23}), b("s1"), b({0}), b("SELECT $1"), b({0}),
               b({0, 1, 0, 0, 0, 23})}));
    // Bind: portal "", statement "s1", no formats, 2 params ("42", NULL), 1 result format (1).
    CHECK(encoded(fe::bind{"", "s1", {}, {"42", std::nullopt}, {1}}) ==
          cat({b({'B', 0, 0, 0, 26, 0}), b("s1"), b({0}), b({0, 0, 0, 2}), b({0, 0, 0, 2}), b("42"),
               b({0xff, 0xff, 0xff, 0xff}), b({0, 1, 0, 1})}));
    CHECK(encoded(fe::describe{'P', ""}) == b({'D', 0, 0, 0, 6, 'P', 0}));
    CHECK(encoded(fe::execute{"", 0}) == b({'E', 0, 0, 0, 9, 0, 0, 0, 0, 0}));
    CHECK(encoded(fe::close{'S', "s1"}) == b({'C', 0, 0, 0, 8, 'S', 's', '1', 0}));

    // SASLInitialResponse: mechanism, Int32 length of the client-first-message, the message.
    const bytes sasl =
        cat({b({'p', 0, 0, 0, 32}), b("SCRAM-SHA-256"), b({0}), b({0, 0, 0, 10}), b("n,,n=,r=ab")});
    CHECK(encoded(fe::sasl_initial_response{"SCRAM-SHA-256", "n,,n=,r=ab"}) == sasl);
    auto si = fe::decode_sasl_initial_response(sg_test::split_frames(sasl)[0].body);
    REQUIRE(si.ok());
    CHECK(si->mechanism == "SCRAM-SHA-256");
    CHECK(si->data == "n,,n=,r=ab");
    CHECK(encoded(fe::sasl_response{"c=biws"}) == cat({b({'p', 0, 0, 0, 10}), b("c=biws")}));
}

TEST_CASE("SASL replies round-trip; a 'p' body is read as the auth state says") {
    for (const auto& m : {fe::sasl_initial_response{"SCRAM-SHA-256", std::nullopt},
                          fe::sasl_initial_response{"SCRAM-SHA-256-PLUS", ""},
                          fe::sasl_initial_response{"X", std::string("\0\1", 2)}}) {
        const bytes wire = encoded(m);
        const auto f = sg_test::split_frames(wire);
        REQUIRE(f.size() == 1);
        auto d = fe::decode_sasl_initial_response(f[0].body);
        REQUIRE(d.ok());
        CHECK(*d == m);
    }
    const fe::sasl_response r{"c=biws,r=abc,p=xyz"};
    const bytes w = encoded(r);
    const auto f = sg_test::split_frames(w);
    REQUIRE(f.size() == 1);
    CHECK(fe::decode_sasl_response(f[0].body).value() == r);
    // decode_frontend sees 'p' as a PasswordMessage: a SASL body is not one.
    const bytes init = encoded(fe::sasl_initial_response{"SCRAM-SHA-256", "n,,n=,r=x"});
    CHECK(fe::decode_frontend(sg_test::split_frames(init)[0]).error() == decode_error::malformed);
    // Initial response length below -1, or longer than the body.
    CHECK(!fe::decode_sasl_initial_response(cat({b("M"), b({0, 0xff, 0xff, 0xff, 0xfe})})));
    CHECK(!fe::decode_sasl_initial_response(cat({b("M"), b({0, 0, 0, 0, 5}), b("abcd")})));
    CHECK(!fe::decode_sasl_initial_response(cat({b("M"), b({0, 0xff, 0xff, 0xff, 0xff, 1})})));
}

TEST_CASE("every truncation and every trailing byte of a frontend body is malformed") {
    for (const auto& m : sg_test::frontend_samples()) {
        const bytes wire = encoded(m);
        const auto f = sg_test::split_frames(wire).at(0);
        CAPTURE(f.type);
        if (has_raw_tail(f.type)) continue;
        for (std::size_t n = 0; n < f.body.size(); ++n) {
            CAPTURE(n);
            const auto d = fe::decode_frontend(frame{f.type, f.body.first(n)});
            REQUIRE(!d.ok());
            CHECK(d.error() == decode_error::malformed);
        }
        bytes longer(f.body.begin(), f.body.end());
        for (const int extra : std::initializer_list<int>{0, 'x', 0xff}) {
            longer.push_back(static_cast<std::byte>(extra));
            CHECK(fe::decode_frontend(frame{f.type, longer}).error() == decode_error::malformed);
        }
    }
}

TEST_CASE("unknown frontend types are unknown_type") {
    for (const char t : {'Z', 'T', 'R', 'a', '\0', '\xff', 'K', 'V'})
        CHECK(fe::decode_frontend(frame{t, {}}).error() == decode_error::unknown_type);
}

TEST_CASE("bad counts, lengths and kinds in frontend bodies are malformed") {
    const auto malformed = [](char type, const bytes& body) {
        const auto d = fe::decode_frontend(frame{type, body});
        return !d.ok() && d.error() == decode_error::malformed;
    };
    // Parse: 0x8000 and 0xffff parameter types announced, one present.
    CHECK(malformed('P', cat({b({0, 'q', 0}), b({0x80, 0x00, 0, 0, 0, 23})})));
    CHECK(malformed('P', cat({b({0, 'q', 0}), b({0xff, 0xff, 0, 0, 0, 23})})));
    CHECK(malformed('P', cat({b({0, 'q', 0}), b({0, 2, 0, 0, 0, 23})})));
    // Bind: huge format count, parameter count, result-format count.
    CHECK(malformed('B', b({0, 0, 0xff, 0xff, 0, 0, 0, 0})));
    CHECK(malformed('B', b({0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0})));
    CHECK(malformed('B', b({0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0, 0})));
    // Bind: parameter length -2, 0x7fffffff, one past the body.
    CHECK(malformed('B', b({0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0, 0})));
    CHECK(malformed('B', b({0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0, 0})));
    CHECK(malformed('B', b({0, 0, 0, 0, 0, 1, 0x80, 0, 0, 0, 0, 0})));
    CHECK(malformed('B', b({0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 'a', 'b', 0, 0})));
    // The same body with a correct length is fine.
    CHECK(fe::decode_frontend(frame{'B', b({0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 'a', 'b', 0, 0})}));
    // FunctionCall: argument count too large, argument length -3.
    CHECK(malformed('F', b({0, 0, 0, 1, 0, 0, 0xff, 0xff, 0, 0})));
    CHECK(malformed('F', b({0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfd, 0, 0})));
    // Describe/Close: kinds other than 'S'/'P'.
    CHECK(malformed('D', b({'X', 0})));
    CHECK(malformed('C', b({'s', 0})));
    CHECK(malformed('C', b({0})));
    // Strings without their NUL.
    CHECK(malformed('Q', b("SELECT 1")));
    CHECK(malformed('f', b("oops")));
    CHECK(malformed('E', b({0, 0, 0, 0})));
}

TEST_CASE("Bind with more than 32767 parameters round-trips: Int16 counts are unsigned") {
    // libpq sends up to 65535 parameters and Postgres reads the count as unsigned 16-bit.
    fe::bind m{"", "s", {}, std::vector<std::optional<std::string>>(40000, std::nullopt), {}};
    m.params[39999] = "last";
    const bytes wire = encoded(m);
    const auto f = sg_test::split_frames(wire);
    REQUIRE(f.size() == 1);
    auto d = fe::decode_frontend(f[0]);
    REQUIRE(d.ok());
    CHECK(std::get<fe::bind>(*d) == m);
}
