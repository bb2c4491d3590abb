// Backend message decoders/encoders: authentication, startup replies, query results, COPY, errors.
// https://www.postgresql.org/docs/15/protocol-message-formats.html
#include "shardgate/protocol/backend.hpp"

#include <algorithm>

#include "common_codec.hpp"

namespace shardgate::protocol::be {

using detail::finish;

namespace {

// A list of Strings ended by an empty one (the SASL mechanism list).
std::vector<std::string> read_string_list(reader& r) {
    std::vector<std::string> v;
    while (r.ok()) {
        const auto s = r.cstring();
        if (!r.ok() || s.empty()) break;
        v.emplace_back(s);
    }
    return v;
}

template <class T>
result<T> decode_copy_response(std::span<const std::byte> body) {
    reader r(body);
    T m;
    m.format = static_cast<std::int8_t>(r.u8());
    m.column_formats = detail::read_i16_list(r);
    return finish(r, std::move(m));
}

template <class T>
void encode_copy_response(write_buffer& out, const T& m) {
    const auto mark = out.begin_message(T::type);
    out.u8(static_cast<std::uint8_t>(m.format));
    detail::write_i16_list(out, m.column_formats);
    out.end_message(mark);
}

template <class T>
result<T> decode_fields(std::span<const std::byte> body) {
    reader r(body);
    T m;
    while (r.ok()) {
        const auto code = static_cast<char>(r.u8());
        if (!r.ok() || code == 0) break;
        const auto value = r.cstring();
        if (r.ok()) m.fields.emplace_back(code, value);
    }
    return finish(r, std::move(m));
}

template <class T>
void encode_fields(write_buffer& out, const T& m) {
    const auto mark = out.begin_message(T::type);
    for (const auto& [code, value] : m.fields) {
        out.u8(static_cast<std::uint8_t>(code));
        out.cstring(value);
    }
    out.u8(0);
    out.end_message(mark);
}

}  // namespace

// ---- authentication and startup ----

result<authentication> decode_authentication(std::span<const std::byte> body) {
    reader r(body);
    authentication m;
    m.code = r.i32();
    if (!r.ok()) return decode_error::malformed;
    switch (m.code) {
        case authentication::ok:
        case authentication::kerberos_v5:
        case authentication::cleartext_password:
        case authentication::gss:
        case authentication::sspi:
            break;
        case authentication::md5_password: {
            const auto salt = r.bytes(4);
            if (r.ok()) std::copy(salt.begin(), salt.end(), m.md5_salt.begin());
            break;
        }
        case authentication::sasl:
            m.mechanisms = read_string_list(r);
            break;
        case authentication::gss_continue:
        case authentication::sasl_continue:
        case authentication::sasl_final:
            m.data = std::string(as_text(r.rest()));
            break;
        default:
            return decode_error::unsupported;
    }
    return finish(r, std::move(m));
}

void encode(write_buffer& out, const authentication& m) {
    const auto mark = out.begin_message(authentication::type);
    out.i32(m.code);
    switch (m.code) {
        case authentication::md5_password:
            out.bytes(m.md5_salt);
            break;
        case authentication::sasl:
            for (const auto& mech : m.mechanisms)
                out.cstring(mech);
            out.u8(0);
            break;
        case authentication::gss_continue:
        case authentication::sasl_continue:
        case authentication::sasl_final:
            out.bytes(m.data);
            break;
        default:
            break;
    }
    out.end_message(mark);
}

result<backend_key_data> decode_backend_key_data(std::span<const std::byte> body) {
    reader r(body);
    backend_key_data m;
    m.process_id = r.i32();
    m.secret_key = r.i32();
    return finish(r, m);
}

void encode(write_buffer& out, const backend_key_data& m) {
    const auto mark = out.begin_message(backend_key_data::type);
    out.i32(m.process_id);
    out.i32(m.secret_key);
    out.end_message(mark);
}

result<negotiate_protocol_version> decode_negotiate_protocol_version(
    std::span<const std::byte> body) {
    reader r(body);
    negotiate_protocol_version m;
    m.newest_minor = r.i32();
    const std::size_t n = detail::read_count32(r, 1);
    m.unrecognized.reserve(n);
    for (std::size_t i = 0; i < n && r.ok(); ++i)
        m.unrecognized.emplace_back(r.cstring());
    return finish(r, std::move(m));
}

void encode(write_buffer& out, const negotiate_protocol_version& m) {
    const auto mark = out.begin_message(negotiate_protocol_version::type);
    out.i32(m.newest_minor);
    out.i32(static_cast<std::int32_t>(m.unrecognized.size()));
    for (const auto& opt : m.unrecognized)
        out.cstring(opt);
    out.end_message(mark);
}

result<parameter_status> decode_parameter_status(std::span<const std::byte> body) {
    reader r(body);
    parameter_status m;
    m.name = r.cstring();
    m.value = r.cstring();
    return finish(r, std::move(m));
}

void encode(write_buffer& out, const parameter_status& m) {
    const auto mark = out.begin_message(parameter_status::type);
    out.cstring(m.name);
    out.cstring(m.value);
    out.end_message(mark);
}

result<ready_for_query> decode_ready_for_query(std::span<const std::byte> body) {
    reader r(body);
    ready_for_query m;
    m.status = static_cast<char>(r.u8());
    if (m.status != ready_for_query::idle && m.status != ready_for_query::in_transaction &&
        m.status != ready_for_query::failed)
        return decode_error::malformed;
    return finish(r, m);
}

void encode(write_buffer& out, const ready_for_query& m) {
    const auto mark = out.begin_message(ready_for_query::type);
    out.u8(static_cast<std::uint8_t>(m.status));
    out.end_message(mark);
}

// ---- empty messages ----

result<bind_complete> decode_bind_complete(std::span<const std::byte> body) {
    return detail::decode_empty<bind_complete>(body);
}
result<close_complete> decode_close_complete(std::span<const std::byte> body) {
    return detail::decode_empty<close_complete>(body);
}
result<empty_query_response> decode_empty_query_response(std::span<const std::byte> body) {
    return detail::decode_empty<empty_query_response>(body);
}
result<no_data> decode_no_data(std::span<const std::byte> body) {
    return detail::decode_empty<no_data>(body);
}
result<parse_complete> decode_parse_complete(std::span<const std::byte> body) {
    return detail::decode_empty<parse_complete>(body);
}
result<portal_suspended> decode_portal_suspended(std::span<const std::byte> body) {
    return detail::decode_empty<portal_suspended>(body);
}

void encode(write_buffer& out, const bind_complete& /*m*/) {
    detail::encode_empty<bind_complete>(out);
}
void encode(write_buffer& out, const close_complete& /*m*/) {
    detail::encode_empty<close_complete>(out);
}
void encode(write_buffer& out, const empty_query_response& /*m*/) {
    detail::encode_empty<empty_query_response>(out);
}
void encode(write_buffer& out, const no_data& /*m*/) {
    detail::encode_empty<no_data>(out);
}
void encode(write_buffer& out, const parse_complete& /*m*/) {
    detail::encode_empty<parse_complete>(out);
}
void encode(write_buffer& out, const portal_suspended& /*m*/) {
    detail::encode_empty<portal_suspended>(out);
}

// ---- query results ----

result<command_complete> decode_command_complete(std::span<const std::byte> body) {
    reader r(body);
    command_complete m;
    m.tag = r.cstring();
    return finish(r, std::move(m));
}

void encode(write_buffer& out, const command_complete& m) {
    const auto mark = out.begin_message(command_complete::type);
    out.cstring(m.tag);
    out.end_message(mark);
}

result<data_row> decode_data_row(std::span<const std::byte> body) {
    reader r(body);
    data_row m;
    m.values = detail::read_nullable_list(r);
    return finish(r, std::move(m));
}

void encode(write_buffer& out, const data_row& m) {
    const auto mark = out.begin_message(data_row::type);
    detail::write_nullable_list(out, m.values);
    out.end_message(mark);
}

result<parameter_description> decode_parameter_description(std::span<const std::byte> body) {
    reader r(body);
    parameter_description m;
    const std::size_t n = detail::read_count16(r, 4);
    m.types.reserve(n);
    for (std::size_t i = 0; i < n && r.ok(); ++i)
        m.types.push_back(r.u32());
    return finish(r, std::move(m));
}

void encode(write_buffer& out, const parameter_description& m) {
    const auto mark = out.begin_message(parameter_description::type);
    detail::write_count16(out, m.types.size());
    for (const auto oid : m.types)
        out.u32(oid);
    out.end_message(mark);
}

// Each field: a String (at least its NUL) and 18 bytes of fixed-width attributes.
constexpr std::size_t min_row_field_size = 1 + 4 + 2 + 4 + 2 + 4 + 2;

result<row_description> decode_row_description(std::span<const std::byte> body) {
    reader r(body);
    row_description m;
    const std::size_t n = detail::read_count16(r, min_row_field_size);
    m.fields.reserve(n);
    for (std::size_t i = 0; i < n && r.ok(); ++i) {
        row_description::field f;
        f.name = r.cstring();
        f.table_oid = r.u32();
        f.column = r.i16();
        f.type_oid = r.u32();
        f.type_size = r.i16();
        f.type_modifier = r.i32();
        f.format = r.i16();
        m.fields.push_back(std::move(f));
    }
    return finish(r, std::move(m));
}

void encode(write_buffer& out, const row_description& m) {
    const auto mark = out.begin_message(row_description::type);
    detail::write_count16(out, m.fields.size());
    for (const auto& f : m.fields) {
        out.cstring(f.name);
        out.u32(f.table_oid);
        out.i16(f.column);
        out.u32(f.type_oid);
        out.i16(f.type_size);
        out.i32(f.type_modifier);
        out.i16(f.format);
    }
    out.end_message(mark);
}

result<function_call_response> decode_function_call_response(std::span<const std::byte> body) {
    reader r(body);
    function_call_response m;
    m.value = detail::read_nullable(r);
    return finish(r, std::move(m));
}

void encode(write_buffer& out, const function_call_response& m) {
    const auto mark = out.begin_message(function_call_response::type);
    detail::write_nullable(out, m.value);
    out.end_message(mark);
}

// ---- COPY, errors and notices, notifications ----

result<copy_in_response> decode_copy_in_response(std::span<const std::byte> body) {
    return decode_copy_response<copy_in_response>(body);
}
result<copy_out_response> decode_copy_out_response(std::span<const std::byte> body) {
    return decode_copy_response<copy_out_response>(body);
}
result<copy_both_response> decode_copy_both_response(std::span<const std::byte> body) {
    return decode_copy_response<copy_both_response>(body);
}

void encode(write_buffer& out, const copy_in_response& m) {
    encode_copy_response(out, m);
}
void encode(write_buffer& out, const copy_out_response& m) {
    encode_copy_response(out, m);
}
void encode(write_buffer& out, const copy_both_response& m) {
    encode_copy_response(out, m);
}

result<error_response> decode_error_response(std::span<const std::byte> body) {
    return decode_fields<error_response>(body);
}
result<notice_response> decode_notice_response(std::span<const std::byte> body) {
    return decode_fields<notice_response>(body);
}

void encode(write_buffer& out, const error_response& m) {
    encode_fields(out, m);
}
void encode(write_buffer& out, const notice_response& m) {
    encode_fields(out, m);
}

result<notification_response> decode_notification_response(std::span<const std::byte> body) {
    reader r(body);
    notification_response m;
    m.pid = r.i32();
    m.channel = r.cstring();
    m.payload = r.cstring();
    return finish(r, std::move(m));
}

void encode(write_buffer& out, const notification_response& m) {
    const auto mark = out.begin_message(notification_response::type);
    out.i32(m.pid);
    out.cstring(m.channel);
    out.cstring(m.payload);
    out.end_message(mark);
}

// ---- dispatch ----

result<backend_message> decode_backend(const frame& f) {
    const auto as_message = [](auto r) { return detail::widen<backend_message>(std::move(r)); };
    const auto b = f.body;
    switch (f.type) {
        case authentication::type:
            return as_message(decode_authentication(b));
        case backend_key_data::type:
            return as_message(decode_backend_key_data(b));
        case bind_complete::type:
            return as_message(decode_bind_complete(b));
        case close_complete::type:
            return as_message(decode_close_complete(b));
        case command_complete::type:
            return as_message(decode_command_complete(b));
        case copy_in_response::type:
            return as_message(decode_copy_in_response(b));
        case copy_out_response::type:
            return as_message(decode_copy_out_response(b));
        case copy_both_response::type:
            return as_message(decode_copy_both_response(b));
        case copy_data::type:
            return as_message(decode_copy_data(b));
        case copy_done::type:
            return as_message(decode_copy_done(b));
        case data_row::type:
            return as_message(decode_data_row(b));
        case empty_query_response::type:
            return as_message(decode_empty_query_response(b));
        case error_response::type:
            return as_message(decode_error_response(b));
        case notice_response::type:
            return as_message(decode_notice_response(b));
        case function_call_response::type:
            return as_message(decode_function_call_response(b));
        case negotiate_protocol_version::type:
            return as_message(decode_negotiate_protocol_version(b));
        case no_data::type:
            return as_message(decode_no_data(b));
        case notification_response::type:
            return as_message(decode_notification_response(b));
        case parameter_description::type:
            return as_message(decode_parameter_description(b));
        case parameter_status::type:
            return as_message(decode_parameter_status(b));
        case parse_complete::type:
            return as_message(decode_parse_complete(b));
        case portal_suspended::type:
            return as_message(decode_portal_suspended(b));
        case ready_for_query::type:
            return as_message(decode_ready_for_query(b));
        case row_description::type:
            return as_message(decode_row_description(b));
        default:
            return decode_error::unknown_type;
    }
}

void encode(write_buffer& out, const backend_message& m) {
    std::visit([&](const auto& v) { encode(out, v); }, m);
}

}  // namespace shardgate::protocol::be
