// A value or an error code, for decoders of untrusted input (no exceptions on the data path).
#pragma once

#include <cassert>
#include <cstdint>
#include <string_view>
#include <utility>
#include <variant>

namespace shardgate::protocol {

enum class decode_error : std::uint8_t {
    malformed,     // fields missing, truncated, or trailing bytes
    unknown_type,  // a message type byte this side of the protocol does not send
    unsupported,   // well-formed, but not something we accept (e.g. a protocol version)
};

std::string_view to_string(decode_error e);

template <class T>
class [[nodiscard]] result {
  public:
    result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
    result(decode_error e) : v_(e) {}          // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & {
        assert(ok());
        return std::get<0>(v_);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(v_);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(v_));
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    [[nodiscard]] decode_error error() const {
        assert(!ok());
        return std::get<1>(v_);
    }

  private:
    std::variant<T, decode_error> v_;
};

}  // namespace shardgate::protocol
