// The routing table: {session set-up, message} -> {target, reason}, run by route_test.cpp.
#pragma once

#include <span>
#include <string_view>

#include "shardgate/router/route.hpp"

namespace route_table {

using shardgate::router::route_reason;
using shardgate::router::route_target;

// Session state that SQL cannot set up.
enum class preset {
    plain,             // defaults: eventual consistency, conservative transactions
    first,             // route_options::route_by_first_statement
    startup_replica,   // startup option -c shardgate.role=replica
    startup_primary,   // startup option -c shardgate.role=primary
    session_pending,   // consistency session; a committed write whose LSN is not reported yet
    session_known,     // consistency session; the last write's LSN reported (0/100)
    eventual_pending,  // eventual consistency; a write whose LSN is not reported yet
    prepared,          // the message is a prepared statement: classified once, routed twice
};

struct route_case {
    std::string_view before;  // messages run first in the same session, '|' between them
    std::string_view sql;     // the message routed
    route_target want;
    route_reason why;
    preset session = preset::plain;
};

// The catalog every case uses: volatile public.audit_write, public.bump_counter,
// app.next_order_no, public."MixedCase", public.report_fn and app.safe_fn; write_functions =
// touch_cache; read_only_functions = public.report_fn, safe_fn.
shardgate::router::function_catalog test_catalog();

std::span<const route_case> statement_cases();  // autocommit reads, writes, hints, functions
std::span<const route_case> session_cases();    // transactions, settings, consistency
std::span<const route_case> message_cases();    // multi-statement, prepared, temp objects

}  // namespace route_table
