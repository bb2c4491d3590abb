// Frontend typed messages (query, extended query, copy, function call) and decode_frontend().
// https://www.postgresql.org/docs/15/protocol-message-formats.html
#include "shardgate/protocol/frontend.hpp"

#include "common_codec.hpp"

namespace shardgate::protocol::fe {

using detail::finish;

result<query> decode_query(std::span<const std::byte> body) {
    reader r(body);
    query m;
    m.sql = r.cstring();
    return finish(r, std::move(m));
}

result<parse> decode_parse(std::span<const std::byte> body) {
    reader r(body);
    parse m;
    m.name = r.cstring();
    m.query = r.cstring();
    const std::size_t n = detail::read_count16(r, 4);
    m.param_types.reserve(n);
    for (std::size_t i = 0; i < n && r.ok(); ++i)
        m.param_types.push_back(r.u32());
    return finish(r, std::move(m));
}

result<bind> decode_bind(std::span<const std::byte> body) {
    reader r(body);
    bind m;
    m.portal = r.cstring();
    m.statement = r.cstring();
    m.param_formats = detail::read_i16_list(r);
    m.params = detail::read_nullable_list(r);
    m.result_formats = detail::read_i16_list(r);
    return finish(r, std::move(m));
}

namespace {

bool valid_kind(char kind) {
    return kind == describe::statement || kind == describe::portal;
}

}  // namespace

result<describe> decode_describe(std::span<const std::byte> body) {
    reader r(body);
    describe m;
    m.kind = static_cast<char>(r.u8());
    m.name = r.cstring();
    if (!valid_kind(m.kind)) return decode_error::malformed;
    return finish(r, std::move(m));
}

result<execute> decode_execute(std::span<const std::byte> body) {
    reader r(body);
    execute m;
    m.portal = r.cstring();
    m.max_rows = r.i32();
    return finish(r, std::move(m));
}

result<close> decode_close(std::span<const std::byte> body) {
    reader r(body);
    close m;
    m.kind = static_cast<char>(r.u8());
    m.name = r.cstring();
    if (!valid_kind(m.kind)) return decode_error::malformed;
    return finish(r, std::move(m));
}

result<sync> decode_sync(std::span<const std::byte> body) {
    return detail::decode_empty<sync>(body);
}

result<flush> decode_flush(std::span<const std::byte> body) {
    return detail::decode_empty<flush>(body);
}

result<terminate> decode_terminate(std::span<const std::byte> body) {
    return detail::decode_empty<terminate>(body);
}

result<copy_fail> decode_copy_fail(std::span<const std::byte> body) {
    reader r(body);
    copy_fail m;
    m.message = r.cstring();
    return finish(r, std::move(m));
}

result<function_call> decode_function_call(std::span<const std::byte> body) {
    reader r(body);
    function_call m;
    m.oid = r.u32();
    m.arg_formats = detail::read_i16_list(r);
    m.args = detail::read_nullable_list(r);
    m.result_format = r.i16();
    return finish(r, std::move(m));
}

void encode(write_buffer& out, const query& m) {
    const auto mark = out.begin_message(query::type);
    out.cstring(m.sql);
    out.end_message(mark);
}

void encode(write_buffer& out, const parse& m) {
    const auto mark = out.begin_message(parse::type);
    out.cstring(m.name);
    out.cstring(m.query);
    detail::write_count16(out, m.param_types.size());
    for (const auto oid : m.param_types)
        out.u32(oid);
    out.end_message(mark);
}

void encode(write_buffer& out, const bind& m) {
    const auto mark = out.begin_message(bind::type);
    out.cstring(m.portal);
    out.cstring(m.statement);
    detail::write_i16_list(out, m.param_formats);
    detail::write_nullable_list(out, m.params);
    detail::write_i16_list(out, m.result_formats);
    out.end_message(mark);
}

void encode(write_buffer& out, const describe& m) {
    const auto mark = out.begin_message(describe::type);
    out.u8(static_cast<std::uint8_t>(m.kind));
    out.cstring(m.name);
    out.end_message(mark);
}

void encode(write_buffer& out, const execute& m) {
    const auto mark = out.begin_message(execute::type);
    out.cstring(m.portal);
    out.i32(m.max_rows);
    out.end_message(mark);
}

void encode(write_buffer& out, const close& m) {
    const auto mark = out.begin_message(close::type);
    out.u8(static_cast<std::uint8_t>(m.kind));
    out.cstring(m.name);
    out.end_message(mark);
}

void encode(write_buffer& out, const sync& /*m*/) {
    detail::encode_empty<sync>(out);
}
void encode(write_buffer& out, const flush& /*m*/) {
    detail::encode_empty<flush>(out);
}
void encode(write_buffer& out, const terminate& /*m*/) {
    detail::encode_empty<terminate>(out);
}

void encode(write_buffer& out, const copy_fail& m) {
    const auto mark = out.begin_message(copy_fail::type);
    out.cstring(m.message);
    out.end_message(mark);
}

void encode(write_buffer& out, const function_call& m) {
    const auto mark = out.begin_message(function_call::type);
    out.u32(m.oid);
    detail::write_i16_list(out, m.arg_formats);
    detail::write_nullable_list(out, m.args);
    out.i16(m.result_format);
    out.end_message(mark);
}

result<frontend_message> decode_frontend(const frame& f) {
    const auto as_message = [](auto r) { return detail::widen<frontend_message>(std::move(r)); };
    const auto b = f.body;
    switch (f.type) {
        case password_message::type:
            return as_message(decode_password_message(b));
        case query::type:
            return as_message(decode_query(b));
        case parse::type:
            return as_message(decode_parse(b));
        case bind::type:
            return as_message(decode_bind(b));
        case describe::type:
            return as_message(decode_describe(b));
        case execute::type:
            return as_message(decode_execute(b));
        case close::type:
            return as_message(decode_close(b));
        case sync::type:
            return as_message(decode_sync(b));
        case flush::type:
            return as_message(decode_flush(b));
        case terminate::type:
            return as_message(decode_terminate(b));
        case copy_data::type:
            return as_message(decode_copy_data(b));
        case copy_done::type:
            return as_message(decode_copy_done(b));
        case copy_fail::type:
            return as_message(decode_copy_fail(b));
        case function_call::type:
            return as_message(decode_function_call(b));
        default:
            return decode_error::unknown_type;
    }
}

void encode(write_buffer& out, const frontend_message& m) {
    std::visit([&](const auto& v) { encode(out, v); }, m);
}

}  // namespace shardgate::protocol::fe
