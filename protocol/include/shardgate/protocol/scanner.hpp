// Streaming message scanner for the relay: finds message boundaries in a byte stream that
// arrives in arbitrary chunks, hands over the bodies of a few chosen message types, and skips
// the rest without copying. No I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <vector>

#include "shardgate/protocol/frame.hpp"

namespace shardgate::protocol {

// A set of message type bytes.
class type_set {
  public:
    constexpr type_set() = default;
    constexpr type_set(std::initializer_list<char> types) {
        for (char t : types)
            add(t);
    }
    constexpr void add(char t) {
        const auto u = static_cast<unsigned char>(t);
        bits_[u / 64] |= std::uint64_t{1} << (u % 64);
    }
    [[nodiscard]] constexpr bool contains(char t) const {
        const auto u = static_cast<unsigned char>(t);
        return (bits_[u / 64] >> (u % 64)) & 1U;
    }

  private:
    std::array<std::uint64_t, 4> bits_{};
};

// Invariant: between feeds the scanner is either at a message boundary, inside a header
// (header_len_ bytes of it seen), or inside a body (body_left_ bytes still to come). Bodies of
// wanted types that straddle chunks are copied into pending_ (bounded by max_body_copy);
// everything else is only counted.
class message_scanner {
  public:
    explicit message_scanner(type_set wanted, std::uint32_t max_message_length,
                             std::uint32_t max_body_copy = 64 * 1024)
        : wanted_(wanted), max_len_(max_message_length), max_copy_(max_body_copy) {}

    // Walks `chunk`; calls on_message(type, body) for each complete message of a wanted type
    // (a body larger than max_body_copy that straddles chunks is delivered empty with
    // `truncated` set). Returns frame_error::none, or the error that ends the stream.
    template <class OnMessage>
    frame_error feed(std::span<const std::byte> chunk, OnMessage&& on_message) {
        std::size_t pos = 0;
        const std::size_t n = chunk.size();
        while (pos < n) {
            if (body_left_ > 0) {
                const std::size_t take = std::min<std::size_t>(body_left_, n - pos);
                if (collecting_) append_pending(chunk.subspan(pos, take));
                pos += take;
                body_left_ -= static_cast<std::uint32_t>(take);
                if (body_left_ == 0 && collecting_) deliver_pending(on_message);
                continue;
            }
            // At a boundary with no partial header, the whole message may be in this chunk:
            // the fast path hands out a view into the chunk without copying.
            if (header_len_ == 0 && n - pos >= 5) {
                const char type = static_cast<char>(chunk[pos]);
                const std::uint32_t len = load_u32(chunk.data() + pos + 1);
                if (const auto e = check(len); e != frame_error::none) return e;
                ++messages_;
                const std::size_t body = len - 4;
                if (n - pos - 5 >= body) {
                    if (wanted_.contains(type))
                        on_message(type, chunk.subspan(pos + 5, body), false);
                    pos += 5 + body;
                    continue;
                }
                start_body(type, static_cast<std::uint32_t>(body));
                pos += 5;
                continue;
            }
            // Slow path: the header itself straddles chunks.
            const std::size_t take = std::min<std::size_t>(5 - header_len_, n - pos);
            std::memcpy(header_.data() + header_len_, chunk.data() + pos, take);
            header_len_ += take;
            pos += take;
            if (header_len_ < 5) break;
            header_len_ = 0;
            const char type = static_cast<char>(header_[0]);
            const std::uint32_t len = load_u32(header_.data() + 1);
            if (const auto e = check(len); e != frame_error::none) return e;
            ++messages_;
            start_body(type, len - 4);
            if (body_left_ == 0 && collecting_) deliver_pending(on_message);
        }
        return frame_error::none;
    }

    // True between messages: bytes fed so far end exactly at a message boundary.
    [[nodiscard]] bool at_boundary() const { return body_left_ == 0 && header_len_ == 0; }
    // Messages whose header has been seen.
    [[nodiscard]] std::uint64_t messages() const { return messages_; }

  private:
    static std::uint32_t load_u32(const std::byte* p) {
        return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
               (static_cast<std::uint32_t>(p[2]) << 8) | static_cast<std::uint32_t>(p[3]);
    }
    [[nodiscard]] frame_error check(std::uint32_t len) const {
        if (len < 4) return frame_error::bad_length;
        if (len > max_len_) return frame_error::too_large;
        return frame_error::none;
    }
    void start_body(char type, std::uint32_t body) {
        body_left_ = body;
        type_ = type;
        collecting_ = wanted_.contains(type);
        truncated_ = false;
        pending_.clear();
    }
    void append_pending(std::span<const std::byte> part) {
        if (pending_.size() + part.size() > max_copy_) {
            truncated_ = true;
            return;
        }
        pending_.insert(pending_.end(), part.begin(), part.end());
    }
    template <class OnMessage>
    void deliver_pending(OnMessage& on_message) {
        collecting_ = false;
        if (truncated_) {
            on_message(type_, std::span<const std::byte>{}, true);
        } else {
            on_message(type_, std::span<const std::byte>(pending_), false);
        }
        pending_.clear();
    }

    type_set wanted_;
    std::uint32_t max_len_;
    std::uint32_t max_copy_;
    std::array<std::byte, 5> header_{};
    std::size_t header_len_ = 0;
    std::uint32_t body_left_ = 0;
    char type_ = 0;
    bool collecting_ = false;
    bool truncated_ = false;
    std::vector<std::byte> pending_;
    std::uint64_t messages_ = 0;
};

}  // namespace shardgate::protocol
