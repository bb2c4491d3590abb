// ErrorResponse/NoticeResponse encoding and small to_string helpers.
#include "shardgate/protocol/errors.hpp"

#include "shardgate/protocol/result.hpp"

namespace shardgate::protocol {

std::string_view to_string(severity s) {
    switch (s) {
        case severity::error:
            return "ERROR";
        case severity::fatal:
            return "FATAL";
        case severity::panic:
            return "PANIC";
        case severity::warning:
            return "WARNING";
        case severity::notice:
            return "NOTICE";
        case severity::debug:
            return "DEBUG";
        case severity::info:
            return "INFO";
        case severity::log:
            return "LOG";
    }
    return "ERROR";
}

std::string_view to_string(decode_error e) {
    switch (e) {
        case decode_error::malformed:
            return "malformed message";
        case decode_error::unknown_type:
            return "unknown message type";
        case decode_error::unsupported:
            return "unsupported";
    }
    return "?";
}

void encode_error(write_buffer& out, const error_fields& e, bool notice) {
    const auto mark = out.begin_message(notice ? 'N' : 'E');
    // 'S' is localized in Postgres; 'V' (since 9.6) never is. We send both, in English.
    out.u8('S');
    out.cstring(to_string(e.sev));
    out.u8('V');
    out.cstring(to_string(e.sev));
    out.u8('C');
    out.cstring(e.code);
    out.u8('M');
    out.cstring(e.message);
    if (!e.detail.empty()) {
        out.u8('D');
        out.cstring(e.detail);
    }
    if (!e.hint.empty()) {
        out.u8('H');
        out.cstring(e.hint);
    }
    out.u8(0);
    out.end_message(mark);
}

}  // namespace shardgate::protocol
