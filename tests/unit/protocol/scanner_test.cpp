// message_scanner: boundaries and wanted bodies found identically at every chunking.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "shardgate/protocol/reader.hpp"
#include "shardgate/protocol/scanner.hpp"
#include "shardgate/protocol/write_buffer.hpp"

using namespace shardgate::protocol;

namespace {

struct seen {
    char type;
    std::string body;
    bool truncated;
    bool operator==(const seen&) const = default;
};

write_buffer sample_stream() {
    write_buffer wb;
    auto m = wb.begin_message('T');
    wb.bytes(std::string(40, 't'));
    wb.end_message(m);
    for (int i = 0; i < 3; ++i) {
        m = wb.begin_message('D');
        wb.bytes(std::string(10 + i, 'd'));
        wb.end_message(m);
    }
    m = wb.begin_message('C');
    wb.cstring("SELECT 3");
    wb.end_message(m);
    m = wb.begin_message('Z');
    wb.u8('I');
    wb.end_message(m);
    m = wb.begin_message('S');
    wb.cstring("TimeZone");
    wb.cstring("UTC");
    wb.end_message(m);
    return wb;
}

std::vector<seen> scan(std::span<const std::byte> all, const std::vector<std::size_t>& cuts,
                       bool& boundary_ok, std::uint32_t max_copy = 1024) {
    message_scanner sc(type_set{'Z', 'S'}, 1 << 20, max_copy);
    std::vector<seen> out;
    std::size_t prev = 0;
    boundary_ok = true;
    auto feed = [&](std::span<const std::byte> part) {
        auto e = sc.feed(part, [&](char t, std::span<const std::byte> body, bool trunc) {
            out.push_back({t, std::string(as_text(body)), trunc});
        });
        CHECK(e == frame_error::none);
    };
    for (auto c : cuts) {
        feed(all.subspan(prev, c - prev));
        prev = c;
    }
    feed(all.subspan(prev));
    boundary_ok = sc.at_boundary();
    return out;
}

}  // namespace

TEST_CASE("scanner sees the same wanted messages at every single split point") {
    auto wb = sample_stream();
    bool boundary = false;
    const auto whole = scan(wb.view(), {}, boundary);
    REQUIRE(whole.size() == 2);
    CHECK(whole[0] == seen{'Z', "I", false});
    CHECK(whole[1] == seen{'S', std::string("TimeZone\0UTC\0", 13), false});
    CHECK(boundary);
    for (std::size_t cut = 1; cut < wb.size(); ++cut) {
        CHECK(scan(wb.view(), {cut}, boundary) == whole);
        CHECK(boundary);
    }
}

TEST_CASE("scanner is exact when fed one byte at a time and at random chunkings") {
    auto wb = sample_stream();
    bool boundary = false;
    const auto whole = scan(wb.view(), {}, boundary);
    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < wb.size(); ++i)
        every.push_back(i);
    CHECK(scan(wb.view(), every, boundary) == whole);
    std::mt19937 rng(7);
    for (int round = 0; round < 500; ++round) {
        std::vector<std::size_t> cuts;
        for (std::size_t i = 1; i < wb.size(); ++i)
            if (rng() % 4 == 0) cuts.push_back(i);
        CHECK(scan(wb.view(), cuts, boundary) == whole);
    }
}

TEST_CASE("scanner reports mid-message positions and bad lengths") {
    auto wb = sample_stream();
    message_scanner sc(type_set{'Z'}, 1 << 20);
    auto noop = [](char, std::span<const std::byte>, bool) {};
    CHECK(sc.feed(wb.view().first(3), noop) == frame_error::none);
    CHECK_FALSE(sc.at_boundary());
    CHECK(sc.feed(wb.view().subspan(3, 10), noop) == frame_error::none);
    CHECK_FALSE(sc.at_boundary());

    const std::vector<std::byte> bad{std::byte{'Q'}, std::byte{0}, std::byte{0}, std::byte{0},
                                     std::byte{2}};
    message_scanner sc2(type_set{}, 1 << 20);
    CHECK(sc2.feed(bad, noop) == frame_error::bad_length);
    message_scanner sc3(type_set{}, 16);
    CHECK(sc3.feed(wb.view(), noop) == frame_error::too_large);
}

TEST_CASE("a wanted body larger than the copy bound is delivered as truncated when split") {
    write_buffer wb;
    auto m = wb.begin_message('S');
    wb.bytes(std::string(100, 's'));
    wb.end_message(m);
    bool boundary = false;
    auto split = scan(wb.view(), {50}, boundary, 16);
    REQUIRE(split.size() == 1);
    CHECK(split[0].truncated);
    auto whole = scan(wb.view(), {}, boundary, 16);
    REQUIRE(whole.size() == 1);
    CHECK_FALSE(whole[0].truncated);
}
