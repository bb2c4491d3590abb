// Backend (server -> client) messages of protocol 3.0: one owning struct each, decoders, encoders.
// Formats: https://www.postgresql.org/docs/15/protocol-message-formats.html
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "shardgate/protocol/common_messages.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/result.hpp"
#include "shardgate/protocol/write_buffer.hpp"

// Same conventions as frontend.hpp: decode_<name>(body) rejects truncated bodies, trailing bytes
// and impossible counts; encode() appends the whole framed message; String fields must not
// contain NUL and Int16-counted lists hold at most 65535 items.
namespace shardgate::protocol::be {

using protocol::copy_data;
using protocol::copy_done;
using protocol::decode_copy_data;
using protocol::decode_copy_done;
using protocol::encode;

// AuthenticationXXX: all share type 'R' and differ by `code`. Other codes are unsupported.
struct authentication {
    static constexpr char type = 'R';
    static constexpr std::int32_t ok = 0;
    static constexpr std::int32_t kerberos_v5 = 2;
    static constexpr std::int32_t cleartext_password = 3;
    static constexpr std::int32_t md5_password = 5;
    static constexpr std::int32_t gss = 7;
    static constexpr std::int32_t gss_continue = 8;
    static constexpr std::int32_t sspi = 9;
    static constexpr std::int32_t sasl = 10;
    static constexpr std::int32_t sasl_continue = 11;
    static constexpr std::int32_t sasl_final = 12;

    std::int32_t code = ok;
    std::array<std::byte, 4> md5_salt{};  // md5_password only
    std::vector<std::string> mechanisms;  // sasl only
    std::string data;                     // gss_continue, sasl_continue, sasl_final only
    bool operator==(const authentication&) const = default;
};

struct backend_key_data {
    static constexpr char type = 'K';
    std::int32_t process_id = 0;
    std::int32_t secret_key = 0;
    bool operator==(const backend_key_data&) const = default;
};

// Messages with an empty body.
template <char Type>
struct empty_message {
    static constexpr char type = Type;
    bool operator==(const empty_message&) const = default;
};
using bind_complete = empty_message<'2'>;
using close_complete = empty_message<'3'>;
using empty_query_response = empty_message<'I'>;
using no_data = empty_message<'n'>;
using parse_complete = empty_message<'1'>;
using portal_suspended = empty_message<'s'>;

struct command_complete {
    static constexpr char type = 'C';
    std::string tag;  // e.g. "SELECT 1", "INSERT 0 3"
    bool operator==(const command_complete&) const = default;
};

// CopyInResponse 'G', CopyOutResponse 'H', CopyBothResponse 'W'.
template <char Type>
struct copy_response {
    static constexpr char type = Type;
    std::int8_t format = 0;  // 0 text, 1 binary
    std::vector<std::int16_t> column_formats;
    bool operator==(const copy_response&) const = default;
};
using copy_in_response = copy_response<'G'>;
using copy_out_response = copy_response<'H'>;
using copy_both_response = copy_response<'W'>;

struct data_row {
    static constexpr char type = 'D';
    std::vector<std::optional<std::string>> values;  // nullopt = NULL
    bool operator==(const data_row&) const = default;
};

// ErrorResponse 'E' and NoticeResponse 'N': (field code, String) pairs ended by a zero byte.
// Field codes: https://www.postgresql.org/docs/15/protocol-error-fields.html
template <char Type>
struct field_response {
    static constexpr char type = Type;
    std::vector<std::pair<char, std::string>> fields;

    // The first field with this code, "" when absent.
    [[nodiscard]] std::string_view field(char code) const {
        for (const auto& [c, v] : fields)
            if (c == code) return v;
        return {};
    }
    [[nodiscard]] std::string_view code() const { return field('C'); }  // SQLSTATE
    [[nodiscard]] std::string_view message() const { return field('M'); }
    // 'V' (never localized, sent since 9.6) when present, else the localized 'S'.
    [[nodiscard]] std::string_view severity() const {
        const auto v = field('V');
        return v.empty() ? field('S') : v;
    }
    bool operator==(const field_response&) const = default;
};
using error_response = field_response<'E'>;
using notice_response = field_response<'N'>;

struct function_call_response {
    static constexpr char type = 'V';
    std::optional<std::string> value;  // nullopt = NULL
    bool operator==(const function_call_response&) const = default;
};

struct negotiate_protocol_version {
    static constexpr char type = 'v';
    std::int32_t newest_minor = 0;
    std::vector<std::string> unrecognized;  // protocol options the server did not recognize
    bool operator==(const negotiate_protocol_version&) const = default;
};

struct notification_response {
    static constexpr char type = 'A';
    std::int32_t pid = 0;  // the notifying backend
    std::string channel;
    std::string payload;
    bool operator==(const notification_response&) const = default;
};

struct parameter_description {
    static constexpr char type = 't';
    std::vector<std::uint32_t> types;  // type OIDs
    bool operator==(const parameter_description&) const = default;
};

struct parameter_status {
    static constexpr char type = 'S';
    std::string name;
    std::string value;
    bool operator==(const parameter_status&) const = default;
};

// ReadyForQuery: the transaction status; other status bytes are malformed.
struct ready_for_query {
    static constexpr char type = 'Z';
    static constexpr char idle = 'I';
    static constexpr char in_transaction = 'T';
    static constexpr char failed = 'E';  // in a failed transaction block
    char status = idle;
    bool operator==(const ready_for_query&) const = default;
};

struct row_description {
    static constexpr char type = 'T';
    struct field {
        std::string name;
        std::uint32_t table_oid = 0;  // 0 when not a table column
        std::int16_t column = 0;      // attribute number, 0 when not a table column
        std::uint32_t type_oid = 0;
        std::int16_t type_size = 0;  // pg_type.typlen; negative = variable width
        std::int32_t type_modifier = 0;
        std::int16_t format = 0;  // 0 text, 1 binary
        bool operator==(const field&) const = default;
    };
    std::vector<field> fields;
    bool operator==(const row_description&) const = default;
};

result<authentication> decode_authentication(std::span<const std::byte> body);
result<backend_key_data> decode_backend_key_data(std::span<const std::byte> body);
result<bind_complete> decode_bind_complete(std::span<const std::byte> body);
result<close_complete> decode_close_complete(std::span<const std::byte> body);
result<command_complete> decode_command_complete(std::span<const std::byte> body);
result<copy_in_response> decode_copy_in_response(std::span<const std::byte> body);
result<copy_out_response> decode_copy_out_response(std::span<const std::byte> body);
result<copy_both_response> decode_copy_both_response(std::span<const std::byte> body);
result<data_row> decode_data_row(std::span<const std::byte> body);
result<empty_query_response> decode_empty_query_response(std::span<const std::byte> body);
result<error_response> decode_error_response(std::span<const std::byte> body);
result<notice_response> decode_notice_response(std::span<const std::byte> body);
result<function_call_response> decode_function_call_response(std::span<const std::byte> body);
result<negotiate_protocol_version> decode_negotiate_protocol_version(
    std::span<const std::byte> body);
result<no_data> decode_no_data(std::span<const std::byte> body);
result<notification_response> decode_notification_response(std::span<const std::byte> body);
result<parameter_description> decode_parameter_description(std::span<const std::byte> body);
result<parameter_status> decode_parameter_status(std::span<const std::byte> body);
result<parse_complete> decode_parse_complete(std::span<const std::byte> body);
result<portal_suspended> decode_portal_suspended(std::span<const std::byte> body);
result<ready_for_query> decode_ready_for_query(std::span<const std::byte> body);
result<row_description> decode_row_description(std::span<const std::byte> body);

void encode(write_buffer& out, const authentication& m);
void encode(write_buffer& out, const backend_key_data& m);
void encode(write_buffer& out, const bind_complete& m);
void encode(write_buffer& out, const close_complete& m);
void encode(write_buffer& out, const command_complete& m);
void encode(write_buffer& out, const copy_in_response& m);
void encode(write_buffer& out, const copy_out_response& m);
void encode(write_buffer& out, const copy_both_response& m);
void encode(write_buffer& out, const data_row& m);
void encode(write_buffer& out, const empty_query_response& m);
void encode(write_buffer& out, const error_response& m);
void encode(write_buffer& out, const notice_response& m);
void encode(write_buffer& out, const function_call_response& m);
void encode(write_buffer& out, const negotiate_protocol_version& m);
void encode(write_buffer& out, const no_data& m);
void encode(write_buffer& out, const notification_response& m);
void encode(write_buffer& out, const parameter_description& m);
void encode(write_buffer& out, const parameter_status& m);
void encode(write_buffer& out, const parse_complete& m);
void encode(write_buffer& out, const portal_suspended& m);
void encode(write_buffer& out, const ready_for_query& m);
void encode(write_buffer& out, const row_description& m);

// Every message decode_backend() returns.
using backend_message =
    std::variant<authentication, backend_key_data, bind_complete, close_complete, command_complete,
                 copy_in_response, copy_out_response, copy_both_response, copy_data, copy_done,
                 data_row, empty_query_response, error_response, notice_response,
                 function_call_response, negotiate_protocol_version, no_data, notification_response,
                 parameter_description, parameter_status, parse_complete, portal_suspended,
                 ready_for_query, row_description>;

// Decodes one typed frame by its type byte; unknown types are decode_error::unknown_type,
// unknown authentication codes decode_error::unsupported.
result<backend_message> decode_backend(const frame& f);

void encode(write_buffer& out, const backend_message& m);

}  // namespace shardgate::protocol::be
