// Frontend startup-phase packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) and
// the 'p' authentication replies.
// https://www.postgresql.org/docs/15/protocol-message-formats.html
#include <algorithm>

#include "common_codec.hpp"
#include "shardgate/protocol/frontend.hpp"

namespace shardgate::protocol::fe {

using detail::finish;

std::string_view startup_message::param(std::string_view name) const {
    const auto it = std::find_if(params.rbegin(), params.rend(),
                                 [&](const auto& p) { return p.first == name; });
    return it == params.rend() ? std::string_view{} : std::string_view{it->second};
}

bool startup_message::has_param(std::string_view name) const {
    return std::any_of(params.begin(), params.end(),
                       [&](const auto& p) { return p.first == name; });
}

result<startup_message> decode_startup_message(std::span<const std::byte> body,
                                               std::uint32_t version) {
    reader r(body);
    startup_message m;
    m.version = version;
    // Like Postgres' ProcessStartupPacket: pairs until an empty name, which must be the last
    // byte. A name without its value is malformed.
    while (r.ok()) {
        const auto name = r.cstring();
        if (!r.ok() || name.empty()) break;
        const auto value = r.cstring();
        if (r.ok()) m.params.emplace_back(name, value);
    }
    return finish(r, std::move(m));
}

result<ssl_request> decode_ssl_request(std::span<const std::byte> body) {
    return detail::decode_empty<ssl_request>(body);
}

result<gssenc_request> decode_gssenc_request(std::span<const std::byte> body) {
    return detail::decode_empty<gssenc_request>(body);
}

result<cancel_request> decode_cancel_request(std::span<const std::byte> body) {
    reader r(body);
    cancel_request m;
    m.process_id = r.i32();
    m.secret_key = r.i32();
    return finish(r, m);
}

result<startup_packet> decode_startup(const startup_frame& f) {
    const auto as_message = [](auto r) { return detail::widen<startup_packet>(std::move(r)); };
    switch (f.code) {
        case ssl_request_code:
            return as_message(decode_ssl_request(f.body));
        case gssenc_request_code:
            return as_message(decode_gssenc_request(f.body));
        case cancel_request_code:
            return as_message(decode_cancel_request(f.body));
        default:
            break;
    }
    if ((f.code >> 16) != 3) return decode_error::unsupported;
    return as_message(decode_startup_message(f.body, f.code));
}

void encode(write_buffer& out, const startup_message& m) {
    const auto mark = out.begin_packet();
    out.u32(m.version);
    for (const auto& [name, value] : m.params) {
        out.cstring(name);
        out.cstring(value);
    }
    out.u8(0);
    out.end_message(mark);
}

namespace {

void encode_request(write_buffer& out, std::uint32_t code) {
    const auto mark = out.begin_packet();
    out.u32(code);
    out.end_message(mark);
}

}  // namespace

void encode(write_buffer& out, const ssl_request& /*m*/) {
    encode_request(out, ssl_request_code);
}

void encode(write_buffer& out, const gssenc_request& /*m*/) {
    encode_request(out, gssenc_request_code);
}

void encode(write_buffer& out, const cancel_request& m) {
    const auto mark = out.begin_packet();
    out.u32(cancel_request_code);
    out.i32(m.process_id);
    out.i32(m.secret_key);
    out.end_message(mark);
}

void encode(write_buffer& out, const startup_packet& m) {
    std::visit([&](const auto& v) { encode(out, v); }, m);
}

// ---- 'p' ----

result<password_message> decode_password_message(std::span<const std::byte> body) {
    reader r(body);
    password_message m;
    m.password = r.cstring();
    return finish(r, std::move(m));
}

result<sasl_initial_response> decode_sasl_initial_response(std::span<const std::byte> body) {
    reader r(body);
    sasl_initial_response m;
    m.mechanism = r.cstring();
    m.data = detail::read_nullable(r);
    return finish(r, std::move(m));
}

result<sasl_response> decode_sasl_response(std::span<const std::byte> body) {
    return sasl_response{std::string(as_text(body))};
}

void encode(write_buffer& out, const password_message& m) {
    const auto mark = out.begin_message(password_message::type);
    out.cstring(m.password);
    out.end_message(mark);
}

void encode(write_buffer& out, const sasl_initial_response& m) {
    const auto mark = out.begin_message(sasl_initial_response::type);
    out.cstring(m.mechanism);
    detail::write_nullable(out, m.data);
    out.end_message(mark);
}

void encode(write_buffer& out, const sasl_response& m) {
    const auto mark = out.begin_message(sasl_response::type);
    out.bytes(m.data);
    out.end_message(mark);
}

}  // namespace shardgate::protocol::fe
