// libFuzzer target: a server's byte stream through the frame decoder and decode_backend;
// whatever decodes must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_check.hpp"
#include "shardgate/protocol/backend.hpp"

using namespace shardgate::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
    const frame_decoder dec(1U << 20);
    while (!in.empty()) {
        const auto r = dec.feed(in);
        if (r.status != frame_status::ok) break;
        const frame& f = r.msg;
        sg_fuzz::check_typed(f, [&](auto) { return be::decode_backend(f); });
        in = in.subspan(r.consumed);
    }
    return 0;
}
