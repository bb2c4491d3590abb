// Statement classification for read/write splitting: whether a replica may serve a statement (and
// why not), the transaction control and routing settings it carries, the functions it calls.
// The real Postgres 15 grammar (libpg_query) runs on a cache miss only: classes are cached by query
// shape (shape.hpp), so a class never depends on a literal's value; values that matter (SET ... =
// 'replica') are read from the lexer's literals at each execution. No I/O. Routing: route.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shardgate/router/shape.hpp"
#include "shardgate/router/shape_cache.hpp"

namespace shardgate::router {

// What a statement does to data, as far as routing cares.
enum class statement_access : std::uint8_t {
    read,     // a replica may serve it, unless a function it calls writes (route.hpp checks that)
    write,    // the primary only; write_reason says why
    session,  // touches no table: transaction control, SET / RESET / DISCARD, FETCH / CLOSE; runs
              // where the session's transaction runs, anywhere outside one
};
std::string_view to_string(statement_access a);

// Why a statement is not a replica read.
enum class write_reason : std::uint8_t {
    none,               // a read
    dml,                // INSERT / UPDATE / DELETE / MERGE / TRUNCATE
    ddl,                // CREATE / ALTER / DROP / GRANT / COMMENT ..., CREATE TABLE AS
    locking_clause,     // FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE, anywhere in it
    select_into,        // SELECT ... INTO new_table
    cte_dml,            // WITH x AS (INSERT / UPDATE / DELETE ...) SELECT ...
    write_function,     // a built-in that writes or needs the primary (builtin_write_function)
    volatile_function,  // a user function the database says is volatile (route.hpp)
    configured_write_function,  // listed in the write_functions setting (route.hpp)
    lock,                       // LOCK TABLE
    do_block,                   // DO
    call,                       // CALL
    copy_from,                  // COPY ... FROM
    copy_server_file,           // COPY ... TO 'file' / PROGRAM: a side effect on one server
    explain_analyze_write,      // EXPLAIN ANALYZE runs its statement, and that one writes
    prepared_sql,               // SQL PREPARE / EXECUTE / DEALLOCATE: lives on one server
    utility,                    // VACUUM, CHECKPOINT, LISTEN, NOTIFY, LOAD, REINDEX, ...
    transaction_control,        // BEGIN, COMMIT, SAVEPOINT, ... (COMMIT PREPARED: access write)
    session_setting,            // SET / RESET / DISCARD
    cursor,                     // FETCH / MOVE / CLOSE: where the cursor is
    unparsable,                 // the lexer or the parser refused it: the primary reports why
    too_complex,                // nested too deeply to parse safely (classify_tree.hpp)
};
std::string_view to_string(write_reason r);

enum class txn_kind : std::uint8_t {
    none,
    begin,              // BEGIN / START TRANSACTION [modes]
    commit,             // COMMIT / END [AND CHAIN]
    rollback,           // ROLLBACK / ABORT [AND CHAIN]
    savepoint,          // SAVEPOINT name
    release,            // RELEASE [SAVEPOINT] name
    rollback_to,        // ROLLBACK TO [SAVEPOINT] name
    prepare,            // PREPARE TRANSACTION 'gid': ends the transaction in this session
    commit_prepared,    // COMMIT PREPARED 'gid' (outside a transaction block, on the primary)
    rollback_prepared,  // ROLLBACK PREPARED 'gid'
    set_transaction,    // SET TRANSACTION modes
};
std::string_view to_string(txn_kind k);

enum class isolation_level : std::uint8_t {
    unset,
    read_uncommitted,
    read_committed,
    repeatable_read,
    serializable,
};
std::string_view to_string(isolation_level l);

enum class tristate : std::uint8_t { unset, on, off };

struct txn_modes {
    tristate read_only = tristate::unset;  // READ ONLY: on, READ WRITE: off
    isolation_level isolation = isolation_level::unset;
    tristate deferrable = tristate::unset;
    bool operator==(const txn_modes&) const = default;
};

struct txn_control {
    txn_kind kind = txn_kind::none;
    txn_modes modes;     // BEGIN / START TRANSACTION / SET TRANSACTION
    bool chain = false;  // COMMIT / ROLLBACK AND CHAIN: a new transaction starts at once
};

// Settings whose value changes routing.
enum class routing_setting : std::uint8_t {
    role,               // shardgate.role = primary | replica | auto
    consistency,        // shardgate.consistency = eventual | session | primary
    min_lsn,            // shardgate.min_lsn = 'X/Y'
    default_read_only,  // default_transaction_read_only; SET SESSION CHARACTERISTICS AS ...
    default_isolation,  // default_transaction_isolation; SET SESSION CHARACTERISTICS AS ...
    txn_read_only,      // transaction_read_only (the current transaction only)
    txn_isolation,      // transaction_isolation (the current transaction only)
    all,                // RESET ALL / DISCARD ALL: every one of the above
};
std::string_view to_string(routing_setting s);
// The routing setting a GUC name stands for (case-insensitive); nullopt for other names and "all".
[[nodiscard]] std::optional<routing_setting> routing_setting_named(std::string_view name);

// One SET / RESET of a routing setting. The value is either text that is part of the query shape
// (a keyword or identifier: `on`, `replica`) or a literal, whose value differs between executions
// of the same shape: then `slot` says which of the statement's literals holds it.
struct setting_change {
    routing_setting name = routing_setting::role;
    bool reset = false;    // RESET name, SET name TO DEFAULT, RESET ALL, DISCARD ALL
    bool local = false;    // SET LOCAL: ends with the transaction
    bool negated = false;  // `= -1`: never a valid routing value
    std::int32_t slot = -1;
    std::string value;  // when slot < 0
};

// The value one execution gives a setting change: `value`, or the literal in `slot` of `shape`
// (the lexer output of the same statement text). Empty for a reset.
std::string_view setting_value(const setting_change& c, const statement_shape* shape);

// Postgres' boolean spelling for settings and options (parse_bool in utils/adt/bool.c): true /
// false, yes / no, on / off, 1 / 0 and unique prefixes, case-insensitive; nullopt otherwise.
[[nodiscard]] std::optional<bool> parse_pg_bool(std::string_view s);

struct statement_class {
    statement_access access = statement_access::write;
    write_reason reason = write_reason::unparsable;
    std::string_view node;  // libpg_query's node name ("SelectStmt"), for logs; "" if unparsable
    txn_control txn;
    std::vector<setting_change> settings;
    // Every function called, as written ("f", "s.f", "\"MyF\"" as MyF), once each, in order.
    // route.hpp looks them up in the database's volatile functions and the configured lists.
    std::vector<std::string> functions;
    bool creates_temp = false;  // CREATE TEMP ..., SELECT INTO TEMP: only this server has it
    bool drops_temp = false;    // DISCARD ALL / DISCARD TEMP

    // A replica may serve it as far as the statement itself goes (functions not looked up yet).
    [[nodiscard]] bool read() const { return access == statement_access::read; }
};

// True for built-in functions a replica cannot run or that must run where the session's other
// state is: nextval / setval / currval / lastval, pg_advisory_* locks, large-object writes,
// set_config, pg_notify, txid_current, WAL and replication-slot control, ... `name` as in
// statement_class::functions; the schema is ignored (a user's s.nextval goes to the primary too).
[[nodiscard]] bool builtin_write_function(std::string_view name);

// Classifies one statement of `sql` (the whole message text), the one the lexer found at `shape`.
// Runs libpg_query: about 15 us. Never throws for bad input: an unparsable class instead.
[[nodiscard]] statement_class classify_statement(std::string_view sql,
                                                 const statement_shape& shape);

// A message's statements (a Query text, or the text of a Parse), classified.
struct classified_query {
    shape_result shapes;  // the lexer's output: hints and literal values per statement
    // One class per statement of `shapes`; a single unparsable class when the lexer failed.
    std::vector<std::shared_ptr<const statement_class>> classes;

    [[nodiscard]] std::size_t size() const { return classes.size(); }
    [[nodiscard]] const statement_class& operator[](std::size_t i) const { return *classes[i]; }
    // The lexer output of statement i, or nullptr when the lexer failed.
    [[nodiscard]] const statement_shape* shape(std::size_t i) const {
        return i < shapes.statement_count() ? &shapes.statements()[i] : nullptr;
    }
};

// Lexes and parses every statement, no cache: for tools and tests.
[[nodiscard]] classified_query classify_query(std::string_view sql);

// The per-worker classifier: lexes each message and parses only shapes it has not seen. A cached
// classification costs a lex and a hash lookup per statement. Thread-compatible: one per worker.
class classifier {
  public:
    explicit classifier(std::size_t capacity = 4096) : cache_(capacity) {}

    // Valid until the next call of classify() on this object.
    [[nodiscard]] const classified_query& classify(std::string_view sql);
    // A prepared statement's text, classified once at Parse: keep the result with the statement.
    [[nodiscard]] classified_query classify_prepared(std::string_view sql);

    // Hits and misses count statements; evictions and size as shape_cache reports them.
    [[nodiscard]] shape_cache_stats stats() const { return cache_.stats(); }
    // hits / (hits + misses), 0 before the first statement.
    [[nodiscard]] double hit_rate() const;
    void clear() { cache_.clear(); }

  private:
    void fill(std::string_view sql, classified_query& out);

    shape_lexer lexer_;
    shape_cache<statement_class> cache_;
    classified_query scratch_;
};

}  // namespace shardgate::router
