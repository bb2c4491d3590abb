// Helpers for the message catalog tests: byte strings, framing loops, split-point replays.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/reader.hpp"
#include "shardgate/protocol/result.hpp"
#include "shardgate/protocol/write_buffer.hpp"

namespace sg_test {

using bytes = std::vector<std::byte>;

// Builds a byte string from a mix of small integers (each one byte) and text, for hand-written
// vectors: b({'Z', 0, 0, 0, 5, 'I'}).
inline bytes b(std::initializer_list<int> v) {
    bytes out;
    for (const int x : v)
        out.push_back(static_cast<std::byte>(x));
    return out;
}
inline bytes b(std::string_view s) {
    const auto sp = shardgate::protocol::as_bytes(s);
    return {sp.begin(), sp.end()};
}
inline bytes cat(std::initializer_list<bytes> parts) {
    bytes out;
    for (const auto& p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}
inline bytes to_bytes(const shardgate::protocol::write_buffer& wb) {
    return {wb.view().begin(), wb.view().end()};
}

// Encodes a message (found by ADL in its own namespace) into a fresh byte string.
template <class M>
bytes encoded(const M& m) {
    shardgate::protocol::write_buffer wb;
    encode(wb, m);
    return to_bytes(wb);
}

// Splits a stream into typed frames like a receive loop would: frames point into `stream`.
// Stops at the first incomplete frame; `rest` receives the unconsumed tail.
inline std::vector<shardgate::protocol::frame> split_frames(std::span<const std::byte> stream,
                                                            std::size_t* rest = nullptr) {
    using namespace shardgate::protocol;
    std::vector<frame> frames;
    const frame_decoder dec;
    std::size_t pos = 0;
    for (;;) {
        const auto r = dec.feed(stream.subspan(pos));
        if (r.status != frame_status::ok) break;
        frames.push_back(r.msg);
        pos += r.consumed;
    }
    if (rest != nullptr) *rest = stream.size() - pos;
    return frames;
}

// Replays `stream` as two reads split at every byte offset, with a receive buffer that keeps
// unconsumed bytes between reads; `decode` is called on every complete frame and must return
// the messages in order. Checks that `expected` comes out whole at every split point.
template <class Msg, class Decode>
void check_every_split(std::span<const std::byte> stream, const std::vector<Msg>& expected,
                       Decode decode) {
    using namespace shardgate::protocol;
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        bytes buffer;
        std::vector<Msg> got;
        bool decode_ok = true;
        const auto drain = [&] {
            std::size_t rest = 0;
            for (const auto& f : split_frames(buffer, &rest)) {
                auto m = decode(f);
                if (!m) {
                    decode_ok = false;
                    continue;
                }
                got.push_back(std::move(m).value());
            }
            buffer.erase(buffer.begin(), buffer.end() - static_cast<std::ptrdiff_t>(rest));
        };
        buffer.assign(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(cut));
        drain();
        buffer.insert(buffer.end(), stream.begin() + static_cast<std::ptrdiff_t>(cut),
                      stream.end());
        drain();
        CAPTURE(cut);
        CHECK(decode_ok);
        CHECK(buffer.empty());
        CHECK(got == expected);
    }
}

}  // namespace sg_test
