// Frame decoder: every split point, two messages in one buffer, bad lengths, limits.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/reader.hpp"
#include "shardgate/protocol/write_buffer.hpp"

using namespace shardgate::protocol;

TEST_CASE("frame decoder returns need_more at every split point, then the whole message") {
    write_buffer wb;
    auto m = wb.begin_message('Q');
    wb.cstring("SELECT 1");
    wb.end_message(m);
    frame_decoder dec;
    const auto all = wb.view();
    for (std::size_t cut = 0; cut < all.size(); ++cut) {
        auto r = dec.feed(all.first(cut));
        CHECK(r.status == frame_status::need_more);
        CHECK(r.consumed == 0);
    }
    auto r = dec.feed(all);
    REQUIRE(r.status == frame_status::ok);
    CHECK(r.consumed == all.size());
    CHECK(r.msg.type == 'Q');
    CHECK(as_text(r.msg.body) == std::string_view("SELECT 1\0", 9));
}

TEST_CASE("two messages in one buffer decode one after the other") {
    write_buffer wb;
    auto m = wb.begin_message('S');
    wb.end_message(m);
    m = wb.begin_message('H');
    wb.end_message(m);
    frame_decoder dec;
    auto r1 = dec.feed(wb.view());
    REQUIRE(r1.status == frame_status::ok);
    CHECK(r1.msg.type == 'S');
    auto r2 = dec.feed(wb.view().subspan(r1.consumed));
    REQUIRE(r2.status == frame_status::ok);
    CHECK(r2.msg.type == 'H');
    CHECK(r1.consumed + r2.consumed == wb.size());
}

TEST_CASE("lengths below 4 and above the limit are errors") {
    const std::vector<std::byte> bad{std::byte{'Q'}, std::byte{0}, std::byte{0}, std::byte{0},
                                     std::byte{3}};
    CHECK(frame_decoder{}.feed(bad).error == frame_error::bad_length);
    write_buffer wb;
    auto m = wb.begin_message('d');
    wb.bytes(std::string(100, 'x'));
    wb.end_message(m);
    CHECK(frame_decoder{64}.feed(wb.view()).error == frame_error::too_large);
    CHECK(frame_decoder{104}.feed(wb.view()).status == frame_status::ok);
}

TEST_CASE("startup packets: limits like Postgres") {
    write_buffer wb;
    auto m = wb.begin_packet();
    wb.u32(ssl_request_code);
    wb.end_message(m);
    auto r = decode_startup_frame(wb.view());
    REQUIRE(r.status == frame_status::ok);
    CHECK(r.packet.code == ssl_request_code);
    CHECK(r.consumed == 8);
    for (std::size_t cut = 0; cut < 8; ++cut)
        CHECK(decode_startup_frame(wb.view().first(cut)).status == frame_status::need_more);

    write_buffer big;
    m = big.begin_packet();
    big.u32(protocol_3_0);
    big.bytes(std::string(max_startup_packet_length, 'a'));
    big.end_message(m);
    CHECK(decode_startup_frame(big.view()).error == frame_error::too_large);

    const std::vector<std::byte> tiny{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{7}};
    CHECK(decode_startup_frame(tiny).error == frame_error::bad_length);
}
