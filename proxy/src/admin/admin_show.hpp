// The admin console's SHOW commands: PgBouncer's column names, filled from the live
// configuration and the pool registry.
#pragma once

#include <string_view>

#include "control/context.hpp"
#include "shardgate/protocol/write_buffer.hpp"

namespace shardgate::proxy {

// Appends the reply to SHOW <subject> (one of admin_show_subjects()): RowDescription, DataRows
// and CommandComplete "SHOW", or for HELP a NOTICE and CommandComplete.
void encode_show(protocol::write_buffer& out, proxy_context& ctx, std::string_view subject);

}  // namespace shardgate::proxy
