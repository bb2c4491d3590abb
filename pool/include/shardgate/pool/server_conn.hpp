// One pooled server connection: the logged-in stream plus what the pool and the sessions need
// to know about it (its backend key, the parameters the server reported, its age).
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "shardgate/pool/backend_state.hpp"
#include "shardgate/pool/server_login.hpp"
#include "shardgate/pool/stream.hpp"

namespace shardgate::pool {

using steady = std::chrono::steady_clock;
class server_pool;

// The session-visible state (parameters, statements, status) is backend_state's.
struct server_conn : backend_state {
    server_conn(pg_stream s, backend_key k) : stream(std::move(s)), key(k) {}

    pg_stream stream;
    backend_key key;
    std::uint64_t id = 0;  // unique per process, for logs
    // The pool it was opened by, and goes back to (give_back in server_pool.hpp): a replica's
    // connection can never end up in the primary's pool. Null for connections of no pool.
    std::weak_ptr<server_pool> home;
    steady::time_point created{};
    steady::time_point expires{steady::time_point::max()};  // server_lifetime with jitter
    steady::time_point last_used{};
};

// Outcome of a simple-query exchange that shardgate runs on its own behalf.
struct exec_result {
    bool ok = false;                         // the connection answered up to ReadyForQuery
    char txn_status = 'I';                   // from that ReadyForQuery
    std::vector<std::byte> error;            // the first ErrorResponse, raw (whole message), if any
    std::string error_message;               // its M field, or why the exchange failed
    std::string error_code;                  // its C field
    std::optional<std::string> first_value;  // text of the first row's first column (not NULL)
};

// Sends `sql` as one simple Query and reads up to ReadyForQuery (bounded by `timeout`),
// recording ParameterStatus changes in `c`. Rows and notices are discarded, but for the first
// column of the first row, kept in exec_result::first_value.
awaitable<exec_result> async_exec(server_conn& c, std::string_view sql,
                                  std::chrono::milliseconds timeout);
// Several simple Queries in one write (one round trip), read up to the last ReadyForQuery:
// the status is the last one's, the error the first of any, first_value the first row's of
// any. `sqls` must outlive the call.
awaitable<exec_result> async_exec_all(server_conn& c, std::span<const std::string> sqls,
                                      std::chrono::milliseconds timeout);

}  // namespace shardgate::pool
