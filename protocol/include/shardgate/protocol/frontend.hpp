// Frontend (client -> server) messages of protocol 3.0: one owning struct each, decoders, encoders.
// Formats: https://www.postgresql.org/docs/15/protocol-message-formats.html
#pragma once

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

// Conventions: decode_<name>(body) takes the bytes after type and length (for startup packets:
// after the 4-byte code) and rejects truncated bodies, trailing bytes and impossible counts.
// encode() appends the whole framed message. Strings sent as Postgres "String" (NUL-terminated)
// must not contain NUL bytes, and lists carried with an Int16 count hold at most 65535 items:
// encoders assume both. Int16 counts are read as unsigned 16-bit, as Postgres itself does.
namespace shardgate::protocol::fe {

using protocol::copy_data;
using protocol::copy_done;
using protocol::decode_copy_data;
using protocol::decode_copy_done;
using protocol::encode;

// ---- startup phase: untyped packets (length, 4-byte code, body) ----

// StartupMessage: protocol version, then name/value pairs ended by an empty name.
struct startup_message {
    std::uint32_t version = protocol_3_0;
    std::vector<std::pair<std::string, std::string>> params;

    // The value of parameter `name`, "" when absent. With duplicates the last one wins, as in
    // Postgres, which applies the pairs in order.
    [[nodiscard]] std::string_view param(std::string_view name) const;
    [[nodiscard]] bool has_param(std::string_view name) const;
    bool operator==(const startup_message&) const = default;
};

struct ssl_request {
    bool operator==(const ssl_request&) const = default;
};

struct gssenc_request {
    bool operator==(const gssenc_request&) const = default;
};

struct cancel_request {
    std::int32_t process_id = 0;
    std::int32_t secret_key = 0;
    bool operator==(const cancel_request&) const = default;
};

using startup_packet = std::variant<startup_message, ssl_request, gssenc_request, cancel_request>;

// `version` is the startup_frame's code; the body does not carry it.
result<startup_message> decode_startup_message(std::span<const std::byte> body,
                                               std::uint32_t version = protocol_3_0);
result<ssl_request> decode_ssl_request(std::span<const std::byte> body);
result<gssenc_request> decode_gssenc_request(std::span<const std::byte> body);
result<cancel_request> decode_cancel_request(std::span<const std::byte> body);

// Dispatches on the code. Protocol 3.x (any minor) is a startup_message; other versions and
// unknown request codes are decode_error::unsupported, as Postgres 15 refuses them.
result<startup_packet> decode_startup(const startup_frame& f);

void encode(write_buffer& out, const startup_message& m);
void encode(write_buffer& out, const ssl_request& m);
void encode(write_buffer& out, const gssenc_request& m);
void encode(write_buffer& out, const cancel_request& m);
void encode(write_buffer& out, const startup_packet& m);

// ---- authentication replies: all of type 'p' ----
// The body's layout depends on the authentication request the server sent, so decode_frontend()
// reads 'p' as a password_message; during SASL (or GSS/SSPI) the session decodes frame.body
// with decode_sasl_initial_response() / decode_sasl_response() instead.

// PasswordMessage: cleartext or MD5-hashed password.
struct password_message {
    static constexpr char type = 'p';
    std::string password;
    bool operator==(const password_message&) const = default;
};

// SASLInitialResponse: chosen mechanism, then Int32 length (-1: no initial response) and data.
struct sasl_initial_response {
    static constexpr char type = 'p';
    std::string mechanism;
    std::optional<std::string> data;
    bool operator==(const sasl_initial_response&) const = default;
};

// SASLResponse (and GSSResponse, same layout): the body is the mechanism's data.
struct sasl_response {
    static constexpr char type = 'p';
    std::string data;
    bool operator==(const sasl_response&) const = default;
};

result<password_message> decode_password_message(std::span<const std::byte> body);
result<sasl_initial_response> decode_sasl_initial_response(std::span<const std::byte> body);
result<sasl_response> decode_sasl_response(std::span<const std::byte> body);

void encode(write_buffer& out, const password_message& m);
void encode(write_buffer& out, const sasl_initial_response& m);
void encode(write_buffer& out, const sasl_response& m);

// ---- simple and extended query ----

struct query {
    static constexpr char type = 'Q';
    std::string sql;
    bool operator==(const query&) const = default;
};

struct parse {
    static constexpr char type = 'P';
    std::string name;  // "" = the unnamed statement
    std::string query;
    std::vector<std::uint32_t> param_types;  // 0 = let the server infer
    bool operator==(const parse&) const = default;
};

struct bind {
    static constexpr char type = 'B';
    std::string portal;
    std::string statement;
    std::vector<std::int16_t> param_formats;         // none: all text; one: applies to all
    std::vector<std::optional<std::string>> params;  // nullopt = NULL
    std::vector<std::int16_t> result_formats;
    bool operator==(const bind&) const = default;
};

// Describe and Close: kind 'S' (prepared statement) or 'P' (portal); others are malformed.
struct describe {
    static constexpr char type = 'D';
    static constexpr char statement = 'S';
    static constexpr char portal = 'P';
    char kind = statement;
    std::string name;
    bool operator==(const describe&) const = default;
};

struct execute {
    static constexpr char type = 'E';
    std::string portal;
    std::int32_t max_rows = 0;  // 0 (or negative, for Postgres) = no limit
    bool operator==(const execute&) const = default;
};

struct close {
    static constexpr char type = 'C';
    static constexpr char statement = 'S';
    static constexpr char portal = 'P';
    char kind = statement;
    std::string name;
    bool operator==(const close&) const = default;
};

struct sync {
    static constexpr char type = 'S';
    bool operator==(const sync&) const = default;
};

struct flush {
    static constexpr char type = 'H';
    bool operator==(const flush&) const = default;
};

struct terminate {
    static constexpr char type = 'X';
    bool operator==(const terminate&) const = default;
};

// CopyFail: the client aborts COPY FROM STDIN with this message.
struct copy_fail {
    static constexpr char type = 'f';
    std::string message;
    bool operator==(const copy_fail&) const = default;
};

// FunctionCall (legacy fast-path interface).
struct function_call {
    static constexpr char type = 'F';
    std::uint32_t oid = 0;
    std::vector<std::int16_t> arg_formats;
    std::vector<std::optional<std::string>> args;
    std::int16_t result_format = 0;
    bool operator==(const function_call&) const = default;
};

result<query> decode_query(std::span<const std::byte> body);
result<parse> decode_parse(std::span<const std::byte> body);
result<bind> decode_bind(std::span<const std::byte> body);
result<describe> decode_describe(std::span<const std::byte> body);
result<execute> decode_execute(std::span<const std::byte> body);
result<close> decode_close(std::span<const std::byte> body);
result<sync> decode_sync(std::span<const std::byte> body);
result<flush> decode_flush(std::span<const std::byte> body);
result<terminate> decode_terminate(std::span<const std::byte> body);
result<copy_fail> decode_copy_fail(std::span<const std::byte> body);
result<function_call> decode_function_call(std::span<const std::byte> body);

void encode(write_buffer& out, const query& m);
void encode(write_buffer& out, const parse& m);
void encode(write_buffer& out, const bind& m);
void encode(write_buffer& out, const describe& m);
void encode(write_buffer& out, const execute& m);
void encode(write_buffer& out, const close& m);
void encode(write_buffer& out, const sync& m);
void encode(write_buffer& out, const flush& m);
void encode(write_buffer& out, const terminate& m);
void encode(write_buffer& out, const copy_fail& m);
void encode(write_buffer& out, const function_call& m);

// Every typed message decode_frontend() returns.
using frontend_message =
    std::variant<password_message, query, parse, bind, describe, execute, close, sync, flush,
                 terminate, copy_data, copy_done, copy_fail, function_call>;

// Decodes one typed frame by its type byte; unknown types are decode_error::unknown_type.
result<frontend_message> decode_frontend(const frame& f);

void encode(write_buffer& out, const frontend_message& m);

}  // namespace shardgate::protocol::fe
