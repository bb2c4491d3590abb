// Backend message catalog: round trips, every split point, byte-exact vectors, malformed bodies.
#include "shardgate/protocol/backend.hpp"

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

// Messages whose last field is "the rest of the body": prefixes and extensions are well-formed.
bool has_raw_tail(const be::backend_message& m) {
    if (std::holds_alternative<be::copy_data>(m)) return true;
    if (const auto* a = std::get_if<be::authentication>(&m))
        return a->code == be::authentication::gss_continue ||
               a->code == be::authentication::sasl_continue ||
               a->code == be::authentication::sasl_final;
    return false;
}

char type_of(const be::backend_message& m) {
    return std::visit([](const auto& x) { return std::decay_t<decltype(x)>::type; }, m);
}

result<be::backend_message> decode_one(const frame& f) {
    return be::decode_backend(f);
}

}  // namespace

TEST_CASE("every backend message round-trips through frame_decoder and decode_backend") {
    for (const auto& m : sg_test::backend_samples()) {
        const bytes wire = encoded(m);
        CAPTURE(type_of(m));
        const auto r = frame_decoder{}.feed(wire);
        REQUIRE(r.status == frame_status::ok);
        CHECK(r.consumed == wire.size());
        CHECK(r.msg.type == type_of(m));
        auto d = be::decode_backend(r.msg);
        REQUIRE(d.ok());
        CHECK(*d == m);
        CHECK(encoded(*d) == wire);
    }
}

TEST_CASE("every backend message decodes at every split point") {
    for (const auto& m : sg_test::backend_samples()) {
        CAPTURE(type_of(m));
        sg_test::check_every_split(encoded(m), std::vector{m}, decode_one);
    }
}

TEST_CASE("all backend messages in one stream, split at every byte") {
    const auto msgs = sg_test::backend_samples();
    bytes stream;
    for (const auto& m : msgs) {
        const auto w = encoded(m);
        stream.insert(stream.end(), w.begin(), w.end());
    }
    sg_test::check_every_split(stream, msgs, decode_one);
}

TEST_CASE("a simple query's reply in one buffer: RowDescription, DataRow, CommandComplete, Z") {
    write_buffer wb;
    encode(wb, be::row_description{{{"?column?", 0, 0, 23, 4, -1, 0}}});
    encode(wb, be::data_row{{"1"}});
    encode(wb, be::command_complete{"SELECT 1"});
    encode(wb, be::ready_for_query{'I'});
    std::size_t rest = 1;
    const auto frames = sg_test::split_frames(wb.view(), &rest);
    CHECK(rest == 0);
    REQUIRE(frames.size() == 4);
    CHECK(std::get<be::row_description>(*be::decode_backend(frames[0])).fields.at(0).name ==
          "?column?");
    CHECK(std::get<be::data_row>(*be::decode_backend(frames[1])).values.at(0) == "1");
    CHECK(std::get<be::command_complete>(*be::decode_backend(frames[2])).tag == "SELECT 1");
    CHECK(std::get<be::ready_for_query>(*be::decode_backend(frames[3])).status == 'I');
}

TEST_CASE("byte-exact backend vectors from the protocol documentation") {
    CHECK(encoded(be::ready_for_query{'I'}) == b({'Z', 0, 0, 0, 5, 'I'}));
    CHECK(encoded(be::authentication{}) == b({'R', 0, 0, 0, 8, 0, 0, 0, 0}));
    auto md5 = sg_test::auth(be::authentication::md5_password);
    md5.md5_salt = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
    CHECK(encoded(md5) == b({'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4}));
    auto sasl = sg_test::auth(be::authentication::sasl);
    sasl.mechanisms = {"SCRAM-SHA-256"};
    const bytes sasl_wire =
        cat({b({'R', 0, 0, 0, 23, 0, 0, 0, 10}), b("SCRAM-SHA-256"), b({0, 0})});
    CHECK(encoded(sasl) == sasl_wire);
    CHECK(std::get<be::authentication>(*be::decode_backend(sg_test::split_frames(sasl_wire)[0]))
              .mechanisms == std::vector<std::string>{"SCRAM-SHA-256"});
    CHECK(encoded(be::backend_key_data{1, 2}) == b({'K', 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 2}));
    CHECK(encoded(be::parse_complete{}) == b({'1', 0, 0, 0, 4}));
    CHECK(encoded(be::bind_complete{}) == b({'2', 0, 0, 0, 4}));
    CHECK(encoded(be::no_data{}) == b({'n', 0, 0, 0, 4}));
    CHECK(encoded(be::command_complete{"SELECT 1"}) ==
          cat({b({'C', 0, 0, 0, 13}), b("SELECT 1"), b({0})}));
    // DataRow with one column "1"; and one NULL column.
    CHECK(encoded(be::data_row{{"1"}}) == b({'D', 0, 0, 0, 11, 0, 1, 0, 0, 0, 1, '1'}));
    CHECK(encoded(be::data_row{{std::nullopt}}) ==
          b({'D', 0, 0, 0, 10, 0, 1, 0xff, 0xff, 0xff, 0xff}));
    // RowDescription of SELECT 1: "?column?", no table, int4 (23), typlen 4, typmod -1, text.
    CHECK(encoded(be::row_description{{{"?column?", 0, 0, 23, 4, -1, 0}}}) ==
          cat({b({'T', 0, 0, 0, 33, 0, 1}), b("?column?"),
               b({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 0xff, 0xff, 0xff, 0xff, 0, 0})}));
    CHECK(encoded(be::parameter_status{"a", "b"}) == b({'S', 0, 0, 0, 8, 'a', 0, 'b', 0}));
    CHECK(encoded(be::error_response{{{'C', "42601"}}}) ==
          cat({b({'E', 0, 0, 0, 12, 'C'}), b("42601"), b({0, 0})}));
    CHECK(encoded(be::copy_out_response{0, {0}}) == b({'H', 0, 0, 0, 9, 0, 0, 1, 0, 0}));
    CHECK(encoded(be::negotiate_protocol_version{0, {"_pq_.x"}}) ==
          cat({b({'v', 0, 0, 0, 19, 0, 0, 0, 0, 0, 0, 0, 1}), b("_pq_.x"), b({0})}));
}

TEST_CASE("ErrorResponse accessors") {
    const be::error_response e{
        {{'S', "ERREUR"}, {'V', "ERROR"}, {'C', "23505"}, {'M', "duplicate key"}, {'D', "d"}}};
    CHECK(e.code() == "23505");
    CHECK(e.message() == "duplicate key");
    CHECK(e.severity() == "ERROR");  // 'V', never localized
    CHECK(e.field('D') == "d");
    CHECK(e.field('H').empty());
    const be::notice_response old_server{{{'S', "WARNING"}, {'M', "m"}}};
    CHECK(old_server.severity() == "WARNING");
    CHECK(old_server.code().empty());
}

TEST_CASE("every truncation and every trailing byte of a backend body is malformed") {
    for (const auto& m : sg_test::backend_samples()) {
        if (has_raw_tail(m)) continue;
        const bytes wire = encoded(m);
        const auto f = sg_test::split_frames(wire).at(0);
        CAPTURE(f.type);
        for (std::size_t n = 0; n < f.body.size(); ++n) {
            CAPTURE(n);
            const auto d = be::decode_backend(frame{f.type, f.body.first(n)});
            REQUIRE(!d.ok());
            CHECK(d.error() == decode_error::malformed);
        }
        bytes longer(f.body.begin(), f.body.end());
        for (const int extra : std::initializer_list<int>{0, 'x', 0xff}) {
            longer.push_back(static_cast<std::byte>(extra));
            CHECK(be::decode_backend(frame{f.type, longer}).error() == decode_error::malformed);
        }
    }
}

TEST_CASE("unknown backend types and authentication codes") {
    for (const char t : {'Q', 'P', 'B', 'X', 'p', '\0', '\xff', 'F'})
        CHECK(be::decode_backend(frame{t, {}}).error() == decode_error::unknown_type);
    for (const int code : {1, 4, 6, 13, 255, -1})
        CHECK(be::decode_authentication(
                  b({code >> 24, code >> 16 & 0xff, code >> 8 & 0xff, code & 0xff}))
                  .error() == decode_error::unsupported);
}

TEST_CASE("bad counts, lengths and statuses in backend bodies are malformed") {
    const auto malformed = [](char type, const bytes& body) {
        const auto d = be::decode_backend(frame{type, body});
        return !d.ok() && d.error() == decode_error::malformed;
    };
    // DataRow: 0xffff and 0x8000 columns announced, one present; lengths -2, huge, past the end.
    CHECK(malformed('D', b({0xff, 0xff, 0, 0, 0, 1, 'x'})));
    CHECK(malformed('D', b({0x80, 0x00, 0, 0, 0, 1, 'x'})));
    CHECK(malformed('D', b({0, 1, 0xff, 0xff, 0xff, 0xfe})));
    CHECK(malformed('D', b({0, 1, 0x7f, 0xff, 0xff, 0xff, 'x'})));
    CHECK(malformed('D', b({0, 1, 0, 0, 0, 2, 'x'})));
    CHECK(malformed('D', b({0, 2, 0, 0, 0, 1, 'x'})));
    // RowDescription: more fields than the body can hold.
    CHECK(malformed('T', cat({b({0, 2}), b({'a', 0}), bytes(18)})));
    CHECK(malformed('T', cat({b({0xff, 0xff}), b({'a', 0}), bytes(18)})));
    // NegotiateProtocolVersion: negative and huge Int32 counts.
    CHECK(malformed('v', b({0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})));
    CHECK(malformed('v', b({0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 'a', 0})));
    CHECK(malformed('v', b({0, 0, 0, 0, 0, 0, 0, 2, 'a', 0})));
    // ParameterDescription and CopyOutResponse counts.
    CHECK(malformed('t', b({0, 2, 0, 0, 0, 23})));
    CHECK(malformed('H', b({0, 0xff, 0xff, 0, 0})));
    // FunctionCallResponse: length -2.
    CHECK(malformed('V', b({0xff, 0xff, 0xff, 0xfe})));
    // ReadyForQuery: only 'I', 'T', 'E'.
    for (const int s : std::initializer_list<int>{'i', 'X', 0, 0xff})
        CHECK(malformed('Z', b({s})));
    // ErrorResponse without its final zero byte, or with a field value missing its NUL.
    CHECK(malformed('E', cat({b("C42601"), b({0})})));
    CHECK(malformed('E', b("M")));
    // Authentication: MD5 without a full salt, SASL list without its terminator.
    CHECK(malformed('R', b({0, 0, 0, 5, 1, 2, 3})));
    CHECK(malformed('R', cat({b({0, 0, 0, 10}), b("SCRAM-SHA-256"), b({0})})));
    CHECK(malformed('R', b({0, 0, 0})));
    CHECK(malformed('K', b({0, 0, 0, 1, 0, 0, 0, 2, 0})));
}
