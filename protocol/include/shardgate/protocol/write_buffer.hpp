// Growable byte buffer that protocol encoders append to; messages are framed in place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace shardgate::protocol {

// Appends big-endian integers, C strings and raw bytes. A message is written by
// begin_message(type) ... end_message(mark): the 4-byte length is patched when the body is done.
class write_buffer {
  public:
    write_buffer() = default;

    void u8(std::uint8_t v) { data_.push_back(static_cast<std::byte>(v)); }
    void i16(std::int16_t v) { u16(static_cast<std::uint16_t>(v)); }
    void u16(std::uint16_t v) {
        u8(static_cast<std::uint8_t>(v >> 8));
        u8(static_cast<std::uint8_t>(v));
    }
    void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
    void u32(std::uint32_t v) {
        const std::size_t at = data_.size();
        data_.resize(at + 4);
        put_u32(at, v);
    }
    // A NUL-terminated string (Postgres "String").
    void cstring(std::string_view s) {
        bytes(s);
        u8(0);
    }
    void bytes(std::string_view s) {
        bytes(std::span(reinterpret_cast<const std::byte*>(s.data()), s.size()));
    }
    void bytes(std::span<const std::byte> s) { data_.insert(data_.end(), s.begin(), s.end()); }

    // Starts a typed message; returns the mark to pass to end_message().
    std::size_t begin_message(char type) {
        u8(static_cast<std::uint8_t>(type));
        const std::size_t mark = data_.size();
        u32(0);
        return mark;
    }
    // Starts an untyped startup-phase packet (StartupMessage, SSLRequest, CancelRequest).
    std::size_t begin_packet() {
        const std::size_t mark = data_.size();
        u32(0);
        return mark;
    }
    // Patches the length field written at `mark`: the length counts itself, not the type byte.
    void end_message(std::size_t mark) {
        put_u32(mark, static_cast<std::uint32_t>(data_.size() - mark));
    }

    [[nodiscard]] std::span<const std::byte> view() const { return data_; }
    [[nodiscard]] std::string_view str() const {
        return {reinterpret_cast<const char*>(data_.data()), data_.size()};
    }
    [[nodiscard]] std::size_t size() const { return data_.size(); }
    [[nodiscard]] bool empty() const { return data_.empty(); }
    [[nodiscard]] const std::byte* data() const { return data_.data(); }
    void clear() { data_.clear(); }
    // Empties the buffer and gives its memory back (an idle connection keeps none).
    void release() { std::vector<std::byte>().swap(data_); }
    void reserve(std::size_t n) { data_.reserve(n); }
    // Drops the first n bytes (after a partial write).
    void consume(std::size_t n) {
        data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(n));
    }

  private:
    void put_u32(std::size_t at, std::uint32_t v) {
        data_[at] = static_cast<std::byte>(v >> 24);
        data_[at + 1] = static_cast<std::byte>(v >> 16);
        data_[at + 2] = static_cast<std::byte>(v >> 8);
        data_[at + 3] = static_cast<std::byte>(v);
    }

    std::vector<std::byte> data_;
};

}  // namespace shardgate::protocol
