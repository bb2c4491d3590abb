// The differential corpus: named cases, each a sequence of frontend message batches ("steps"),
// plus the builder the corpus files use and the fixture they rely on.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "raw_client.hpp"
#include "shardgate/protocol/write_buffer.hpp"

namespace shardgate::difftest {

// One write of frontend bytes and what ends its reply.
struct step {
    protocol::write_buffer send;
    read_goal goal{.ready = 0};
    // Sent in order, one buffer per CopyInResponse (CopyData... then CopyDone or CopyFail,
    // plus Sync after an extended-protocol COPY, as libpq does).
    std::vector<protocol::write_buffer> copy_in;
    // Run by the superuser (on its own connection) after `send`, before reading: lets another
    // session act while this one waits, e.g. NOTIFY a channel this session listens on.
    std::string side_sql;
    // When set, a CancelRequest with this session's BackendKeyData is sent (on a new connection
    // to the same port) this long after `send`.
    std::optional<std::chrono::milliseconds> cancel_after;
};

// A case runs on a fresh connection (so LISTEN, temp objects, prepared statements and settings
// never leak) with a fresh, empty schema "alice" first in its search_path.
struct test_case {
    std::string name;
    std::vector<step> steps;
    // StartupMessage parameters after the runner's own (user, database, application_name,
    // client_encoding); a repeated name overrides, as in Postgres.
    std::vector<std::pair<std::string, std::string>> startup_params;
    std::optional<std::string> password;  // instead of the right one
    // Frontend bytes are written a few at a time, so messages arrive split at many points.
    bool split_writes = false;
    // Why the case differs by nature under transaction pooling (session state that lives only
    // as long as one transaction's server connection): then a difference is reported, not
    // failed. Empty: it must be identical in every pool mode.
    std::string differs_in_transaction_pooling;
};

// Builds a case. Messages go into the pending step; q() and sync() end it (the common case),
// pq() and sync_pipelined() do not (pipelining), end() ends it explicitly.
class case_builder {
  public:
    explicit case_builder(std::string name);

    // Simple query, then end the step (one ReadyForQuery).
    case_builder& q(std::string_view sql);
    // Several simple queries, one step each.
    case_builder& qs(std::initializer_list<std::string_view> sqls);
    // Simple query added to the pending step (pipelined with what follows).
    case_builder& pq(std::string_view sql);
    // COPY ... FROM STDIN by simple query: data chunks, then CopyDone, or CopyFail(fail_message).
    case_builder& q_copy_in(std::string_view sql, std::vector<std::string> chunks,
                            std::optional<std::string> fail_message = std::nullopt);

    case_builder& parse(std::string_view name, std::string_view sql,
                        std::vector<std::uint32_t> param_types = {});
    case_builder& bind(std::string_view portal, std::string_view statement,
                       std::vector<std::optional<std::string>> params = {},
                       std::vector<std::int16_t> param_formats = {},
                       std::vector<std::int16_t> result_formats = {});
    case_builder& describe_statement(std::string_view name);
    case_builder& describe_portal(std::string_view name);
    case_builder& execute(std::string_view portal = "", std::int32_t max_rows = 0);
    case_builder& close_statement(std::string_view name);
    case_builder& close_portal(std::string_view name);
    case_builder& flush();
    // FunctionCall, then end the step (it is answered with a ReadyForQuery, no Sync needed).
    case_builder& function_call(std::uint32_t oid, std::vector<std::optional<std::string>> args,
                                std::vector<std::int16_t> arg_formats = {},
                                std::int16_t result_format = 0);
    // Parse + Bind + Describe portal + Execute of the unnamed statement (no Sync).
    case_builder& pbde(std::string_view sql, std::vector<std::optional<std::string>> params = {},
                       std::vector<std::int16_t> result_formats = {});

    // Sync, then end the step.
    case_builder& sync();
    // Sync without ending the step: the next batch is pipelined behind it.
    case_builder& sync_pipelined();
    // Ends the pending step after as many ReadyForQuery messages as it has Query and Sync
    // messages (none: at once, e.g. for a step that only runs side_sql).
    case_builder& end();
    // Ends the pending step after `messages` messages (for Flush without Sync).
    case_builder& end_after(std::size_t messages);
    // Ends the pending step when the server closes the connection.
    case_builder& end_at_close();
    // Ends a pending extended-protocol COPY FROM STDIN: the data, CopyDone (or CopyFail), Sync.
    case_builder& copy_in_then_sync(std::vector<std::string> chunks,
                                    std::optional<std::string> fail_message = std::nullopt);

    // Terminate, then end the step when the server closes the connection.
    case_builder& terminate();
    // See step::side_sql and step::cancel_after: both apply to the pending step.
    case_builder& side_sql(std::string_view sql);
    case_builder& cancel_after(std::chrono::milliseconds delay);
    case_builder& startup_param(std::string name, std::string value);
    case_builder& password(std::string password);
    case_builder& split_writes();

    // A Sync the server ignores because it arrives in copy-in mode (libpq sends P/B/D/E/S at
    // once, then the COPY data and another Sync): not counted as a ReadyForQuery.
    case_builder& ignored_sync();

    // Ends the pending step (if any) and returns the case.
    test_case build();

  private:
    void end_step();
    static protocol::write_buffer copy_payload(const std::vector<std::string>& chunks,
                                               const std::optional<std::string>& fail_message);

    test_case case_;
    step pending_;
};

// Cases built from one SQL string per step.
test_case simple_case(std::string name, std::initializer_list<std::string_view> sqls);
// `c`, marked as differing by nature in transaction pooling, for `why`.
inline test_case with_transaction_pooling_difference(test_case c, std::string why) {
    c.differs_in_transaction_pooling = std::move(why);
    return c;
}

// Run once by the superuser in database "app" before the corpus: read-only fixture tables in
// schema fx that many cases select from (their OIDs are fixed for the whole run).
std::string fixture_sql();
std::string fixture_grants_sql();
// Run by the superuser before each run of a case, once no session of alice is left: drops
// everything alice owns (schemas she made, tables in public, ...) and gives her an empty schema
// "alice", the first entry of the default search_path ("$user", public).
std::string reset_sql();
// Run by a superuser connection that stays open for the whole corpus: holds the table lock and
// the advisory lock the lock_timeout cases wait for.
std::string lock_holder_sql();

// The corpus, by area (corpus_*.cpp), and all of it.
std::vector<test_case> simple_query_cases();
std::vector<test_case> transaction_cases();
std::vector<test_case> ddl_dml_cases();
std::vector<test_case> error_cases();
std::vector<test_case> extended_cases();
std::vector<test_case> copy_cases();
std::vector<test_case> type_cases();
std::vector<test_case> session_cases();
std::vector<test_case> connection_cases();
std::vector<test_case> settings_cases();
std::vector<test_case> full_corpus();

}  // namespace shardgate::difftest
