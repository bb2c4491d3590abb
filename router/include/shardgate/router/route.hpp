// Read/write-split route decisions: statement classes (classify.hpp) + the session's routing state
// + the database's function catalog -> primary / replica / any / defer with a reason, and the
// state transitions each statement causes (transactions, SET / RESET of routing settings, writes
// for read-your-writes). Pure: no I/O, no clocks; the proxy feeds server facts back in
// (ReadyForQuery status, commit LSNs).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "shardgate/router/classify.hpp"

namespace shardgate::router {

enum class server_role : std::uint8_t { primary, replica };
std::string_view to_string(server_role r);

enum class role_preference : std::uint8_t {
    automatic,  // shardgate.role = auto: the statement decides
    primary,    // everything to the primary
    replica,    // everything to a replica (a write fails there, as Postgres says)
};
std::string_view to_string(role_preference r);
[[nodiscard]] std::optional<role_preference> parse_role(std::string_view s);  // case-insensitive

enum class consistency_mode : std::uint8_t {
    eventual,  // reads go to any fit replica
    session,   // once this session's write committed, reads only on replicas replayed past it
    primary,   // every statement on the primary
    instance,  // reads only on replicas that replayed every commit this proxy acknowledged to
               // any client before the read arrived (session_routing_state::instance_lsn)
    global,    // the same for commits acknowledged by any proxy: the primary's position when
               // the read arrived (the proxy learns it when the read begins)
};
std::string_view to_string(consistency_mode m);
[[nodiscard]] std::optional<consistency_mode> parse_consistency(std::string_view s);
// A pg_lsn in Postgres' text form, "16/B374D848"; nullopt if malformed.
[[nodiscard]] std::optional<std::uint64_t> parse_lsn(std::string_view s);

// Which functions write, per database. Immutable once built: the refresher builds a new one and
// swaps a shared_ptr<const function_catalog>, so routing threads never see a half-built one.
// Names are as Postgres stores them (unquoted identifiers lower-cased) and may be qualified.
class function_catalog {
  public:
    enum class verdict : std::uint8_t { read, volatile_function, configured_write };

    // A volatile function from pg_proc. Load user functions only (built-in writers are known):
    //   SELECT n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    //   WHERE p.provolatile = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    void add_volatile(std::string_view schema, std::string_view name);
    // The write_functions setting: always the primary. "f" matches a call of f in any schema.
    void add_write_function(std::string_view name);
    // The read_only_functions setting: volatile but safe on a replica (report functions). "s.f"
    // matches calls of s.f and f; "f" matches calls of f and any s.f. It cannot clear a
    // built-in writer: those fail on a standby whatever the configuration says.
    void add_read_only_function(std::string_view name);

    // `call` as in statement_class::functions. write_functions first, then read_only_functions,
    // then volatility; an unqualified call matches a volatile function in any schema (the
    // search_path is not known here, so the answer errs towards the primary).
    [[nodiscard]] verdict check(std::string_view call) const;
    [[nodiscard]] bool empty() const;

  private:
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };
    using name_set = std::unordered_set<std::string, string_hash, std::equal_to<>>;
    struct names {
        name_set full;  // as given: "f" or "s.f"
        name_set bare;  // the part after the last dot of each
        void add(std::string_view name);
        [[nodiscard]] bool matches_any_schema(std::string_view call) const;
        [[nodiscard]] bool matches_read_only(std::string_view call) const;
    };
    names volatile_;
    names write_;
    names read_only_;
};

struct route_options {
    // Explicit transactions not declared READ ONLY: false sends them to the primary; true lets
    // the transaction's first statement decide (a read puts the whole transaction on a replica,
    // where a later write in it fails).
    bool route_by_first_statement = false;
};

// The routing settings of a session.
struct routing_settings {
    role_preference role = role_preference::automatic;
    consistency_mode consistency = consistency_mode::eventual;
    std::uint64_t min_lsn = 0;          // shardgate.min_lsn: replicas must have replayed this
    bool default_read_only = false;     // default_transaction_read_only
    bool default_serializable = false;  // default_transaction_isolation = serializable
    bool operator==(const routing_settings&) const = default;
};

enum class txn_status : std::uint8_t {
    idle,    // no explicit transaction block
    open,    // inside BEGIN ... COMMIT
    failed,  // inside one that failed: statements error until ROLLBACK (COMMIT rolls back)
};
std::string_view to_string(txn_status s);

// Everything routing needs to know about one client session. Changed by apply_statement,
// route_query and the note_* / apply_startup_setting functions below; read by route_statement.
struct session_routing_state {
    routing_settings startup;  // configuration (per database and user) + startup options: RESET
    routing_settings session;  // as the session's SET / RESET left them

    txn_status txn = txn_status::idle;
    // The server the open transaction runs on; nullopt while its choice is deferred (plain
    // BEGIN: a later statement decides). A transaction never changes server.
    std::optional<server_role> txn_role;
    bool txn_read_only = false;     // READ ONLY, by BEGIN / SET TRANSACTION / the default
    bool txn_serializable = false;  // SERIALIZABLE: replicas cannot run it
    bool txn_wrote = false;         // a write ran in it: committing it is a write to wait for
    std::optional<role_preference> local_role;          // SET LOCAL shardgate.role
    std::optional<consistency_mode> local_consistency;  // SET LOCAL shardgate.consistency
    std::optional<std::uint64_t> local_min_lsn;         // SET LOCAL shardgate.min_lsn
    routing_settings saved;  // `session` at BEGIN: a rollback restores it

    // Read-your-writes: a committed write whose LSN the proxy has not reported yet (reads go to
    // the primary meanwhile, in session mode), and the latest reported commit LSN.
    bool write_lsn_pending = false;
    std::uint64_t last_write_lsn = 0;
    // Instance consistency, set by the proxy before it routes: the latest commit LSN it
    // acknowledged to any client, and whether it acknowledged one whose LSN it does not know
    // yet (reads go to the primary meanwhile).
    std::uint64_t instance_lsn = 0;
    bool instance_lsn_pending = false;
    // Temporary objects exist on the primary: the session's statements must all go there.
    bool temp_on_primary = false;

    [[nodiscard]] role_preference role() const { return local_role.value_or(session.role); }
    [[nodiscard]] consistency_mode consistency() const {
        return local_consistency.value_or(session.consistency);
    }
    [[nodiscard]] std::uint64_t min_lsn() const { return local_min_lsn.value_or(session.min_lsn); }
    // Read-your-writes of some kind: the session's own writes count.
    [[nodiscard]] bool own_writes_count() const {
        const auto m = consistency();
        return m == consistency_mode::session || m == consistency_mode::instance ||
               m == consistency_mode::global;
    }
};

enum class route_target : std::uint8_t {
    any,      // touches no table: the session's current server, or any one
    primary,  // the primary
    replica,  // a fit replica that has replayed min_lsn (else the primary, as configured)
    defer,    // hold it: a later statement chooses the transaction's server, and everything held
              // goes there first, in order. A proxy that cannot hold statements may use primary.
};
std::string_view to_string(route_target t);

enum class route_reason : std::uint8_t {
    read,                    // a read a replica may serve
    write,                   // the statement writes: route_decision::statement_reason says how
    session_statement,       // SET / RESET / transaction control outside a transaction
    in_transaction,          // the open transaction's server
    transaction_deferred,    // plain BEGIN: the server is chosen by a later statement
    read_only_transaction,   // BEGIN READ ONLY, SET TRANSACTION READ ONLY, the session default
    read_write_transaction,  // an explicit transaction not declared read only
    first_statement,         // route_by_first_statement: its first statement chose
    serializable,            // SERIALIZABLE: a hot standby refuses it
    hint,                    // /* shardgate: role=... */
    local_role,              // SET LOCAL shardgate.role
    session_role,            // SET shardgate.role
    startup_role,            // configuration or the startup option -c shardgate.role=...
    consistency_primary,     // shardgate.consistency = primary
    read_your_writes,        // session consistency and a write whose LSN is not known yet
    temp_objects,            // the session has temporary objects on the primary
};
std::string_view to_string(route_reason r);

// A shardgate.* setting given a value shardgate cannot use (Postgres would accept any): the
// proxy replies 22023 invalid_parameter_value and sends nothing.
struct setting_error {
    routing_setting name = routing_setting::role;
    std::string value;
    std::size_t statement = 0;  // index in the message
};

struct route_decision {
    route_target target = route_target::any;
    route_reason why = route_reason::session_statement;
    write_reason statement_reason = write_reason::none;  // the deciding statement's verdict
    std::string_view function;        // the function that made it a write, if one did
    std::uint64_t min_lsn = 0;        // replica targets: its replay LSN must have reached this
    bool writes = false;              // a statement writes: after its commit, reads wait for it
    bool read_only_conflict = false;  // a write in a transaction on a replica: it fails there
    std::size_t statement = 0;        // which statement of the message decided
    std::optional<setting_error> error;
};

// A statement's access once its functions are looked up in the catalog.
struct statement_verdict {
    statement_access access = statement_access::write;
    write_reason reason = write_reason::unparsable;
    std::string_view function;  // the function that made a read a write
};
[[nodiscard]] statement_verdict verdict_of(const statement_class& c, const function_catalog& cat);

// One statement (its class and, for hints, its shape; shape may be null), given the state
// before it. Pure.
[[nodiscard]] route_decision route_statement(const statement_class& c, const statement_shape* shape,
                                             const function_catalog& cat,
                                             const session_routing_state& s,
                                             const route_options& opt);

// What executing the statement does to the state, `d` being route_statement's decision for it
// (it pins a transaction to a server). Returns an error, and changes nothing, when a shardgate.*
// setting gets an unusable value.
std::optional<setting_error> apply_statement(const statement_class& c, const statement_shape* shape,
                                             const route_decision& d, session_routing_state& s);

// The first shardgate.* setting of the statement with an unusable value, if any.
[[nodiscard]] std::optional<setting_error> check_settings(const statement_class& c,
                                                          const statement_shape* shape);

// A whole message (simple Query, or a prepared statement at Execute): routes and applies each
// statement in order and returns the one server for all of them. Writes anywhere make it the
// primary; a transaction open at the start keeps its server; a setting error changes nothing.
route_decision route_query(const classified_query& q, const function_catalog& cat,
                           session_routing_state& s, const route_options& opt);

// Server feedback. ReadyForQuery's status ('I', 'T', 'E') from the server the message went to,
// which corrects the transaction state when a statement failed before BEGIN / COMMIT ran.
void note_ready_for_query(session_routing_state& s, char status, server_role server);
// The LSN of this session's latest committed write (for read-your-writes).
void note_commit_lsn(session_routing_state& s, std::uint64_t lsn);
// A startup packet option (or a configured default) for a routing setting: sets both the startup
// and the session value. False if the name is not a routing setting or the value is unusable.
bool apply_startup_setting(session_routing_state& s, std::string_view name, std::string_view value);

}  // namespace shardgate::router
