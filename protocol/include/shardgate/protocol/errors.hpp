// Encoding of the ErrorResponse/NoticeResponse shardgate itself sends to clients.
// Fields: https://www.postgresql.org/docs/15/protocol-error-fields.html
#pragma once

#include <string_view>

#include "shardgate/protocol/write_buffer.hpp"

namespace shardgate::protocol {

enum class severity : char { error, fatal, panic, warning, notice, debug, info, log };

std::string_view to_string(severity s);

struct error_fields {
    severity sev = severity::error;
    std::string_view code;  // SQLSTATE
    std::string_view message;
    std::string_view detail = {};
    std::string_view hint = {};
};

// Appends an ErrorResponse ('E'); with notice=true a NoticeResponse ('N').
void encode_error(write_buffer& out, const error_fields& e, bool notice = false);

}  // namespace shardgate::protocol
