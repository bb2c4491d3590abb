// Why a session's relaying stopped: the driver sees it, the core decides what it means for the
// client and for the server connection.
#pragma once

#include <cstdint>
#include <string_view>

namespace shardgate::proxy {

// Why a link stopped relaying; the session decides what the client hears.
enum class link_end : std::uint8_t {
    client_closed,          // EOF or error reading the client
    client_write_failed,    // the client went away while we wrote to it
    client_protocol_error,  // bad length or over max_message_size (see client_error)
    server_closed,          // EOF or error reading the server
    server_write_failed,    // the server went away while we wrote to it
    server_protocol_error,  // the server sent a malformed stream
    admin_shutdown,         // SIGINT: closed between transactions (57P01 for the client)
};
std::string_view to_string(link_end e);

}  // namespace shardgate::proxy
