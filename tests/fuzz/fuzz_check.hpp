// Shared by the fuzz targets: a decoded message must re-encode to exactly the bytes it came from.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>

#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/write_buffer.hpp"

namespace sg_fuzz {

// Traps (a libFuzzer crash) when `wb` does not hold exactly the typed frame `f`.
inline void require_same_frame(const shardgate::protocol::write_buffer& wb,
                               const shardgate::protocol::frame& f) {
    const auto w = wb.view();
    if (w.size() != f.wire_size() || static_cast<char>(w[0]) != f.type ||
        !std::equal(f.body.begin(), f.body.end(), w.begin() + 5))
        __builtin_trap();
}

// Decodes a typed frame with `decode`; on success, re-encodes it and checks the bytes.
template <class Decode>
void check_typed(const shardgate::protocol::frame& f, Decode decode) {
    auto m = decode(f.body);
    if (!m) return;
    shardgate::protocol::write_buffer wb;
    encode(wb, *m);
    require_same_frame(wb, f);
}

}  // namespace sg_fuzz
