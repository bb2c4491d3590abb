// Private helpers shared by the frontend and backend codecs: counted lists and nullable values.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "shardgate/protocol/reader.hpp"
#include "shardgate/protocol/result.hpp"
#include "shardgate/protocol/write_buffer.hpp"

namespace shardgate::protocol::detail {

// Reads an Int16 count. Postgres and libpq both read these as unsigned 16-bit
// (pq_getmsgint(msg, 2), pqGetInt(.., 2)) and libpq sends up to 65535 Bind parameters, so a
// count is 0..65535 here too, never negative. Fails the reader when `count * min_item_size`
// bytes cannot remain: an attacker-chosen count never sizes an allocation by itself.
inline std::size_t read_count16(reader& r, std::size_t min_item_size) {
    const std::size_t n = r.u16();
    if (n * min_item_size > r.remaining()) r.fail();
    return r.ok() ? n : 0;
}

// Same for the few Int32 counts (NegotiateProtocolVersion): negative counts are malformed.
inline std::size_t read_count32(reader& r, std::size_t min_item_size) {
    const std::int32_t n = r.i32();
    if (n < 0 || static_cast<std::size_t>(n) > r.remaining() / min_item_size) r.fail();
    return r.ok() ? static_cast<std::size_t>(n) : 0;
}

inline void write_count16(write_buffer& out, std::size_t n) {
    assert(n <= 0xffff && "the protocol cannot carry more than 65535 items here");
    out.u16(static_cast<std::uint16_t>(n));
}

// Int32 length (-1 = NULL) followed by that many bytes. Lengths below -1 are malformed.
inline std::optional<std::string> read_nullable(reader& r) {
    const std::int32_t len = r.i32();
    if (len == -1) return std::nullopt;
    if (len < 0) {
        r.fail();
        return std::nullopt;
    }
    return std::string(r.text(static_cast<std::size_t>(len)));
}

inline void write_nullable(write_buffer& out, const std::optional<std::string>& v) {
    if (!v) {
        out.i32(-1);
        return;
    }
    out.i32(static_cast<std::int32_t>(v->size()));
    out.bytes(*v);
}

// Int16 count, then that many Int16 values (format codes).
inline std::vector<std::int16_t> read_i16_list(reader& r) {
    const std::size_t n = read_count16(r, 2);
    std::vector<std::int16_t> v;
    v.reserve(n);
    for (std::size_t i = 0; i < n && r.ok(); ++i)
        v.push_back(r.i16());
    return v;
}

inline void write_i16_list(write_buffer& out, const std::vector<std::int16_t>& v) {
    write_count16(out, v.size());
    for (const auto x : v)
        out.i16(x);
}

// Int16 count, then that many nullable values (Bind parameters, DataRow columns, ...).
inline std::vector<std::optional<std::string>> read_nullable_list(reader& r) {
    const std::size_t n = read_count16(r, 4);
    std::vector<std::optional<std::string>> v;
    v.reserve(n);
    for (std::size_t i = 0; i < n && r.ok(); ++i)
        v.push_back(read_nullable(r));
    return v;
}

inline void write_nullable_list(write_buffer& out,
                                const std::vector<std::optional<std::string>>& v) {
    write_count16(out, v.size());
    for (const auto& x : v)
        write_nullable(out, x);
}

// The decoded value when every byte was consumed and no read failed, else malformed.
template <class T>
result<T> finish(const reader& r, T value) {
    if (!r.done()) return decode_error::malformed;
    return result<T>(std::move(value));
}

// For messages with an empty body (Sync, BindComplete, ...).
template <class T>
result<T> decode_empty(std::span<const std::byte> body) {
    if (!body.empty()) return decode_error::malformed;
    return T{};
}

// Wraps a decoded message into a message variant (decode_frontend, decode_backend, ...).
template <class Variant, class T>
result<Variant> widen(result<T> r) {
    if (!r) return r.error();
    return Variant{std::move(r).value()};
}

template <class T>
void encode_empty(write_buffer& out) {
    out.end_message(out.begin_message(T::type));
}

}  // namespace shardgate::protocol::detail
