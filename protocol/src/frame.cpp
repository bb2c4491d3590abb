// Frame decoding for typed messages and startup packets.
#include "shardgate/protocol/frame.hpp"

namespace shardgate::protocol {
namespace {

std::uint32_t load_u32(const std::byte* p) {
    return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
           (static_cast<std::uint32_t>(p[2]) << 8) | static_cast<std::uint32_t>(p[3]);
}

}  // namespace

std::string_view to_string(frame_status s) {
    switch (s) {
        case frame_status::ok:
            return "ok";
        case frame_status::need_more:
            return "need_more";
        case frame_status::error:
            return "error";
    }
    return "?";
}

std::string_view to_string(frame_error e) {
    switch (e) {
        case frame_error::none:
            return "none";
        case frame_error::bad_length:
            return "invalid message length";
        case frame_error::too_large:
            return "message too large";
    }
    return "?";
}

frame_result frame_decoder::feed(std::span<const std::byte> in) const {
    frame_result r;
    if (in.size() < 5) {
        r.needed = 5;
        return r;
    }
    const std::uint32_t len = load_u32(in.data() + 1);
    if (len < 4) {
        r.status = frame_status::error;
        r.error = frame_error::bad_length;
        return r;
    }
    if (len > max_) {
        r.status = frame_status::error;
        r.error = frame_error::too_large;
        return r;
    }
    const std::size_t total = static_cast<std::size_t>(len) + 1;
    if (in.size() < total) {
        r.needed = total;
        return r;
    }
    r.status = frame_status::ok;
    r.consumed = total;
    r.msg.type = static_cast<char>(in[0]);
    r.msg.body = in.subspan(5, len - 4);
    return r;
}

startup_result decode_startup_frame(std::span<const std::byte> in, std::uint32_t max_length) {
    startup_result r;
    if (in.size() < 4) return r;
    const std::uint32_t len = load_u32(in.data());
    // Postgres: "invalid length of startup packet" below 8 or above the maximum.
    if (len < 8) {
        r.status = frame_status::error;
        r.error = frame_error::bad_length;
        return r;
    }
    if (len > max_length) {
        r.status = frame_status::error;
        r.error = frame_error::too_large;
        return r;
    }
    if (in.size() < len) return r;
    r.status = frame_status::ok;
    r.consumed = len;
    r.packet.code = load_u32(in.data() + 4);
    r.packet.body = in.subspan(8, len - 8);
    return r;
}

}  // namespace shardgate::protocol
