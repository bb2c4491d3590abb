// Bounds-checked big-endian reader over one message body; never reads past the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace shardgate::protocol {

// Every read checks the remaining length; after the first failure ok() is false and all
// further reads return zero values. Callers check ok() once at the end.
class reader {
  public:
    explicit reader(std::span<const std::byte> body) : data_(body) {}

    std::uint8_t u8() {
        if (!need(1)) return 0;
        return static_cast<std::uint8_t>(data_[pos_++]);
    }
    std::int16_t i16() { return static_cast<std::int16_t>(u16()); }
    std::uint16_t u16() {
        if (!need(2)) return 0;
        const auto v = static_cast<std::uint16_t>((static_cast<unsigned>(data_[pos_]) << 8) |
                                                  static_cast<unsigned>(data_[pos_ + 1]));
        pos_ += 2;
        return v;
    }
    std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
    std::uint32_t u32() {
        if (!need(4)) return 0;
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i)
            v = (v << 8) | static_cast<std::uint32_t>(data_[pos_ + i]);
        pos_ += 4;
        return v;
    }
    // A NUL-terminated string; the view points into the body (no copy).
    std::string_view cstring() {
        // Nothing left: fail here, as memchr on an empty span's null data() is undefined.
        if (!need(1)) return {};
        const void* nul = std::memchr(data_.data() + pos_, 0, data_.size() - pos_);
        if (nul == nullptr) {
            ok_ = false;
            return {};
        }
        const auto* start = reinterpret_cast<const char*>(data_.data() + pos_);
        const auto len =
            static_cast<std::size_t>(static_cast<const std::byte*>(nul) - (data_.data() + pos_));
        pos_ += len + 1;
        return {start, len};
    }
    std::span<const std::byte> bytes(std::size_t n) {
        if (!need(n)) return {};
        auto s = data_.subspan(pos_, n);
        pos_ += n;
        return s;
    }
    std::string_view text(std::size_t n) {
        auto b = bytes(n);
        return {reinterpret_cast<const char*>(b.data()), b.size()};
    }
    std::span<const std::byte> rest() { return bytes(remaining()); }

    [[nodiscard]] std::size_t remaining() const { return ok_ ? data_.size() - pos_ : 0; }
    [[nodiscard]] bool ok() const { return ok_; }
    [[nodiscard]] bool at_end() const { return ok_ && pos_ == data_.size(); }
    // True when every byte was consumed and no read failed: a well-formed body.
    [[nodiscard]] bool done() const { return at_end(); }
    void fail() { ok_ = false; }

  private:
    bool need(std::size_t n) {
        if (!ok_ || data_.size() - pos_ < n) {
            ok_ = false;
            return false;
        }
        return true;
    }

    std::span<const std::byte> data_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

inline std::span<const std::byte> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view as_text(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace shardgate::protocol
