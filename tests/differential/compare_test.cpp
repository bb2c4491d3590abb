// The comparator can fail: one differing byte, a missing message or an unmasked field is a
// mismatch; only the documented fields are masked. No sockets here.
#include <doctest/doctest.h>

#include "compare.hpp"
#include "shardgate/protocol/backend.hpp"

using namespace shardgate::difftest;
namespace be = shardgate::protocol::be;

namespace {

backend_message wire(const be::backend_message& m) {
    shardgate::protocol::write_buffer out;
    be::encode(out, m);
    const std::string bytes(out.str());
    return backend_message{bytes[0], bytes.substr(5)};
}

be::row_description one_column(std::uint32_t table_oid, std::uint32_t type_oid) {
    return be::row_description{{{"col", table_oid, 1, type_oid, 4, -1, 0}}};
}

message_stream sample() {
    return {wire(be::parameter_status{"TimeZone", "UTC"}),
            wire(be::backend_key_data{1234, 5678}),
            wire(be::ready_for_query{'I'}),
            wire(one_column(0, 23)),
            wire(be::data_row{{std::string("42"), std::nullopt}}),
            wire(be::command_complete{"SELECT 1"}),
            wire(be::notification_response{777, "chan", "payload"}),
            wire(be::ready_for_query{'I'})};
}

}  // namespace

TEST_CASE("comparator: identical streams compare equal") {
    const auto r = compare_streams(sample(), sample());
    CHECK(r.ok());
    CHECK(r.identical == sample().size());
}

TEST_CASE("comparator: one flipped byte is a mismatch at that message") {
    auto proxied = sample();
    proxied[4].body[7] = static_cast<char>(proxied[4].body[7] ^ 0x01);  // "42" -> "43"
    const auto r = compare_streams(sample(), proxied);
    REQUIRE_FALSE(r.ok());
    CHECK(r.mismatch->index == 4);
    CHECK(r.identical == 4);
    CHECK(r.mismatch->direct.find("\"42\"") != std::string::npos);
    CHECK(r.mismatch->proxied.find("\"43\"") != std::string::npos);
    CHECK(r.mismatch->detail.find("offset 7") != std::string::npos);
    const std::string report = format_mismatch("flipped", *r.mismatch);
    CHECK(report.find("case flipped: first difference at message 4") != std::string::npos);
}

TEST_CASE("comparator: a missing or extra message is a mismatch") {
    auto shorter = sample();
    shorter.pop_back();
    auto r = compare_streams(sample(), shorter);
    REQUIRE_FALSE(r.ok());
    CHECK(r.mismatch->index == sample().size() - 1);
    CHECK(r.mismatch->proxied == "(none)");

    auto longer = sample();
    longer.push_back(wire(be::notice_response{{{'S', "NOTICE"}, {'M', "extra"}}}));
    r = compare_streams(sample(), longer);
    REQUIRE_FALSE(r.ok());
    CHECK(r.mismatch->direct == "(none)");
}

TEST_CASE("comparator: a different message type is a mismatch") {
    auto proxied = sample();
    proxied[2] = wire(be::ready_for_query{'T'});
    CHECK_FALSE(compare_streams(sample(), proxied).ok());
    proxied = sample();
    proxied[5] = wire(be::empty_query_response{});
    const auto r = compare_streams(sample(), proxied);
    REQUIRE_FALSE(r.ok());
    CHECK(r.mismatch->detail.find("types differ") != std::string::npos);
}

TEST_CASE("comparator: BackendKeyData and the notifying pid are masked, nothing else") {
    auto proxied = sample();
    proxied[1] = wire(be::backend_key_data{99, -1});
    proxied[6] = wire(be::notification_response{4242, "chan", "payload"});
    auto r = compare_streams(sample(), proxied);
    CHECK(r.ok());
    CHECK(r.masked_fields == 2);

    proxied[6] = wire(be::notification_response{4242, "chan", "payloaX"});
    r = compare_streams(sample(), proxied);
    REQUIRE_FALSE(r.ok());
    CHECK(r.mismatch->index == 6);

    proxied = sample();
    proxied[0] = wire(be::parameter_status{"TimeZone", "GMT"});
    CHECK_FALSE(compare_streams(sample(), proxied).ok());
}

TEST_CASE("comparator: SASL data is masked, the authentication codes are not") {
    be::authentication cont{be::authentication::sasl_continue, {}, {}, "r=abc,s=salt,i=4096"};
    be::authentication other = cont;
    other.data = "r=xyz,s=pepper,i=4096";
    CHECK(compare_streams({wire(cont)}, {wire(other)}).ok());
    other.code = be::authentication::sasl_final;
    CHECK_FALSE(compare_streams({wire(cont)}, {wire(other)}).ok());
    be::authentication mechs{be::authentication::sasl, {}, {"SCRAM-SHA-256"}, {}};
    be::authentication plus = mechs;
    plus.mechanisms.push_back("SCRAM-SHA-256-PLUS");
    CHECK_FALSE(compare_streams({wire(mechs)}, {wire(plus)}).ok());
}

TEST_CASE("comparator: OIDs of objects created during the run compare by first appearance") {
    const mask_rules rules{20000};
    // Each run created its own table (different OIDs): same pattern, equal.
    message_stream direct{wire(one_column(20001, 23)), wire(one_column(20001, 20002))};
    message_stream proxied{wire(one_column(20100, 23)), wire(one_column(20100, 20150))};
    CHECK(compare_streams(direct, proxied, rules).ok());
    // A different pattern (the second message names another new object) is a mismatch.
    proxied = {wire(one_column(20100, 23)), wire(one_column(20101, 20150))};
    CHECK_FALSE(compare_streams(direct, proxied, rules).ok());
    // OIDs below the floor (built-in types, fixture tables) compare exactly.
    proxied = {wire(one_column(20100, 25)), wire(one_column(20100, 20150))};
    CHECK_FALSE(compare_streams(direct, proxied, rules).ok());
    CHECK_FALSE(
        compare_streams({wire(one_column(16500, 23))}, {wire(one_column(16501, 23))}, rules).ok());
    // Without a floor nothing is masked.
    CHECK_FALSE(compare_streams({wire(one_column(20001, 23))}, {wire(one_column(20100, 23))}).ok());
    // ParameterDescription too.
    CHECK(compare_streams({wire(be::parameter_description{{23, 20005}})},
                          {wire(be::parameter_description{{23, 20500}})}, rules)
              .ok());
    CHECK_FALSE(compare_streams({wire(be::parameter_description{{23, 20005}})},
                                {wire(be::parameter_description{{25, 20500}})}, rules)
                    .ok());
}

TEST_CASE("comparator: F/L/R are ignored only when the proxied error has none of them") {
    const be::error_response from_postgres{{{'S', "FATAL"},
                                            {'V', "FATAL"},
                                            {'C', "28P01"},
                                            {'M', "password authentication failed"},
                                            {'F', "auth.c"},
                                            {'L', "334"},
                                            {'R', "auth_failed"}}};
    const be::error_response from_proxy{
        {{'S', "FATAL"}, {'V', "FATAL"}, {'C', "28P01"}, {'M', "password authentication failed"}}};
    auto r = compare_streams({wire(from_postgres)}, {wire(from_proxy)});
    CHECK(r.ok());
    CHECK(r.without_source_location == 1);
    // The other way round (the direct side without them) is a mismatch.
    CHECK_FALSE(compare_streams({wire(from_proxy)}, {wire(from_postgres)}).ok());
    // Both with a location: compared exactly.
    auto other_line = from_postgres;
    other_line.fields[5].second = "335";
    CHECK_FALSE(compare_streams({wire(from_postgres)}, {wire(other_line)}).ok());
    // Any other field differing still counts.
    auto other_code = from_proxy;
    other_code.fields[2].second = "28000";
    CHECK_FALSE(compare_streams({wire(from_postgres)}, {wire(other_code)}).ok());
    auto partial = from_postgres;
    partial.fields.pop_back();  // F and L without R: not a message shardgate wrote
    CHECK_FALSE(compare_streams({wire(from_postgres)}, {wire(partial)}).ok());
    // Notices too, but never across message types.
    be::notice_response notice_pg{from_postgres.fields};
    be::notice_response notice_proxy{from_proxy.fields};
    CHECK(compare_streams({wire(notice_pg)}, {wire(notice_proxy)}).ok());
    CHECK_FALSE(compare_streams({wire(notice_pg)}, {wire(from_proxy)}).ok());
}

TEST_CASE("comparator: describe() decodes messages readably") {
    CHECK(describe(wire(be::data_row{{std::string("a\x01"), std::nullopt}})) ==
          "'D' DataRow [\"a\\x01\", NULL] (12 bytes)");
    CHECK(describe(wire(be::ready_for_query{'E'})) == "'Z' ReadyForQuery 'E' (1 bytes)");
    CHECK(describe(backend_message{'D', "\x01"}).find("undecodable") != std::string::npos);
}
