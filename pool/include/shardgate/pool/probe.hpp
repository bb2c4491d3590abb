// One check query on a monitor connection: a simple Query, its first row, bounded in time.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "shardgate/pool/replica_health.hpp"
#include "shardgate/pool/stream.hpp"

namespace shardgate::pool {

struct probe_reply {
    check_failure failure = check_failure::none;
    std::string error;                                // why it failed, for logs
    text_row row;                                     // the first DataRow
    std::chrono::microseconds rtt{0};                 // Query sent to ReadyForQuery read
    std::chrono::steady_clock::time_point sent_at{};  // just before the Query was written
};

// Sends `sql` as one simple Query and reads up to ReadyForQuery, within `timeout` (the stream
// is closed when it passes). A reply without a row fails as query_failed. After any failure
// the connection is in an unknown state: close it.
awaitable<probe_reply> async_probe(pg_stream& s, std::string_view sql,
                                   std::chrono::milliseconds timeout);

// Sends Terminate (best effort, never waits) and closes.
void close_politely(pg_stream& s);

}  // namespace shardgate::pool
