// libFuzzer target: a client's byte stream through the startup decoder, frame decoder and
// decode_frontend; whatever decodes must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>

#include "fuzz_check.hpp"
#include "shardgate/protocol/frontend.hpp"

using namespace shardgate::protocol;

namespace {

// Typed messages until the input is consumed or a frame is incomplete or invalid.
void typed_phase(std::span<const std::byte> in) {
    const frame_decoder dec(1U << 20);
    while (!in.empty()) {
        const auto r = dec.feed(in);
        if (r.status != frame_status::ok) return;
        const frame& f = r.msg;
        sg_fuzz::check_typed(f, [&](auto) { return fe::decode_frontend(f); });
        if (f.type == 'p') {  // the SASL readings of a 'p' body
            sg_fuzz::check_typed(f, fe::decode_sasl_initial_response);
            sg_fuzz::check_typed(f, fe::decode_sasl_response);
        }
        in = in.subspan(r.consumed);
    }
}

// Startup packets (SSLRequest/GSSENCRequest may come first) until a StartupMessage; returns the
// rest of the input, or nothing when the connection would end here.
std::span<const std::byte> startup_phase(std::span<const std::byte> in) {
    while (!in.empty()) {
        const auto r = decode_startup_frame(in);
        if (r.status != frame_status::ok) return {};
        auto p = fe::decode_startup(r.packet);
        if (!p) return {};
        write_buffer wb;
        encode(wb, *p);
        const auto w = wb.view();
        if (w.size() != r.consumed || !std::equal(w.begin(), w.end(), in.begin())) __builtin_trap();
        in = in.subspan(r.consumed);
        if (std::holds_alternative<fe::startup_message>(*p)) return in;
        if (std::holds_alternative<fe::cancel_request>(*p)) return {};
    }
    return {};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
    // A connection from its first byte, and the same bytes read as a mid-session stream.
    typed_phase(startup_phase(in));
    typed_phase(in);
    return 0;
}
