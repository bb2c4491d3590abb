// Frame decoding: splits a byte stream into typed messages and startup packets (no I/O).
// Message layout:
// https://www.postgresql.org/docs/15/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace shardgate::protocol {

// Postgres refuses startup packets longer than this (MAX_STARTUP_PACKET_LENGTH, pqcomm.h).
inline constexpr std::uint32_t max_startup_packet_length = 10000;
// Postgres' own ceiling for a message (PQ_LARGE_MESSAGE_LIMIT is 1 GB - 1).
inline constexpr std::uint32_t postgres_max_message_length = 0x3fffffff;

// Request codes sent in place of a protocol version in untyped startup packets.
inline constexpr std::uint32_t ssl_request_code = 80877103;
inline constexpr std::uint32_t gssenc_request_code = 80877104;
inline constexpr std::uint32_t cancel_request_code = 80877102;
inline constexpr std::uint32_t protocol_3_0 = 3U << 16;

enum class frame_status : std::uint8_t {
    ok,         // a whole message is available
    need_more,  // keep the bytes and feed again with more
    error,      // the stream is malformed or over a limit; the connection must end
};

enum class frame_error : std::uint8_t {
    none,
    bad_length,  // length field smaller than the header itself
    too_large,   // length over the configured maximum
};

std::string_view to_string(frame_status s);
std::string_view to_string(frame_error e);

// One typed message: type byte, then the body (without the 4-byte length).
struct frame {
    char type = 0;
    std::span<const std::byte> body;
    // Bytes on the wire: type + length + body.
    [[nodiscard]] std::size_t wire_size() const { return 5 + body.size(); }
};

struct frame_result {
    frame_status status = frame_status::need_more;
    frame_error error = frame_error::none;
    std::size_t consumed = 0;  // bytes of input this message used (0 unless ok)
    std::size_t needed = 0;    // with need_more: total bytes needed for this message, if known
    frame msg;
};

// Decodes typed messages (everything after the startup phase). Stateless: the caller keeps the
// unconsumed bytes and feeds them again, so a frame's body points into the caller's buffer.
class frame_decoder {
  public:
    explicit frame_decoder(std::uint32_t max_message_length = postgres_max_message_length)
        : max_(max_message_length) {}

    [[nodiscard]] frame_result feed(std::span<const std::byte> in) const;
    [[nodiscard]] std::uint32_t max_message_length() const { return max_; }

  private:
    std::uint32_t max_;
};

// One untyped startup-phase packet: the 4-byte code that follows the length, then the rest.
struct startup_frame {
    std::uint32_t code = 0;           // protocol version, or one of the *_request_code values
    std::span<const std::byte> body;  // bytes after the code
};

struct startup_result {
    frame_status status = frame_status::need_more;
    frame_error error = frame_error::none;
    std::size_t consumed = 0;
    startup_frame packet;
};

// Decodes the first packet(s) of a client connection, enforcing Postgres' length limits.
[[nodiscard]] startup_result decode_startup_frame(
    std::span<const std::byte> in, std::uint32_t max_length = max_startup_packet_length);

}  // namespace shardgate::protocol
