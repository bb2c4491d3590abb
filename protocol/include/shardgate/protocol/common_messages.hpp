// Messages both sides send with the same type byte and layout: CopyData ('d') and CopyDone ('c').
// https://www.postgresql.org/docs/15/protocol-message-formats.html
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "shardgate/protocol/result.hpp"
#include "shardgate/protocol/write_buffer.hpp"

namespace shardgate::protocol {

// CopyData: a chunk of the COPY stream; the body is the data, with no terminator.
struct copy_data {
    static constexpr char type = 'd';
    std::string data;
    bool operator==(const copy_data&) const = default;
};

// CopyDone: the sender has no more COPY data. Empty body.
struct copy_done {
    static constexpr char type = 'c';
    bool operator==(const copy_done&) const = default;
};

result<copy_data> decode_copy_data(std::span<const std::byte> body);
result<copy_done> decode_copy_done(std::span<const std::byte> body);

void encode(write_buffer& out, const copy_data& m);
void encode(write_buffer& out, const copy_done& m);

}  // namespace shardgate::protocol
