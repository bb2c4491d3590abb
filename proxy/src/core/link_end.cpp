#include "core/link_end.hpp"

namespace shardgate::proxy {

std::string_view to_string(link_end e) {
    switch (e) {
        case link_end::client_closed:
            return "client_closed";
        case link_end::client_write_failed:
            return "client_write_failed";
        case link_end::client_protocol_error:
            return "client_protocol_error";
        case link_end::server_closed:
            return "server_closed";
        case link_end::server_write_failed:
            return "server_write_failed";
        case link_end::server_protocol_error:
            return "server_protocol_error";
        case link_end::admin_shutdown:
            return "admin_shutdown";
    }
    return "?";
}

}  // namespace shardgate::proxy
