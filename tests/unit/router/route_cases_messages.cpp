// Routing table, part 3: multi-statement strings, prepared statements, temporary objects.
#include "route_cases.hpp"

namespace route_table {
namespace {

constexpr auto A = route_target::any;
constexpr auto P = route_target::primary;
constexpr auto R = route_target::replica;
constexpr auto D = route_target::defer;
using rr = route_reason;
using ps = preset;

const route_case cases[] = {
    // A message runs on one server: the primary unless every statement is a read.
    {"", "SELECT 1; SELECT 2", R, rr::read},
    {"", "SELECT 1;;SELECT 2;", R, rr::read},
    {"", "SELECT 1; SELECT 'a;b'; SHOW search_path", R, rr::read},
    {"", "SET search_path = app; SELECT * FROM t", R, rr::read},
    {"", "COPY t TO STDOUT; SELECT 1", R, rr::read},
    {"", "SELECT 1; INSERT INTO t VALUES (1)", P, rr::write},
    {"", "INSERT INTO t VALUES (1); SELECT 1", P, rr::write},
    {"", "SELECT 1; SELECT nextval('s')", P, rr::write},
    {"", "SELECT 1; SELECT audit_write(2)", P, rr::write},
    {"", "SELECT 1; SELECT * FROM t FOR UPDATE", P, rr::write},
    {"", "SELECT 1; DO $$ BEGIN NULL; END $$", P, rr::write},
    {"", "SELECT 1; SELEC 2", P, rr::write},
    {"", "SELECT 1; SELECT 'open", P, rr::write},
    {"", "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; SELECT 1", P, rr::write},
    {"", "SET search_path = x; RESET ALL", A, rr::session_statement},
    {"", "/* shardgate: role=primary */ SELECT 1; SELECT 2", P, rr::hint},
    {"", "SELECT 1; /* shardgate: role=primary */ SELECT 2", P, rr::hint},
    {"", "BEGIN; SELECT 1; COMMIT", P, rr::read_write_transaction},
    {"", "BEGIN; INSERT INTO t VALUES (1); COMMIT", P, rr::read_write_transaction},
    {"", "BEGIN READ ONLY; SELECT 1; COMMIT", R, rr::read_only_transaction},
    {"", "BEGIN READ ONLY; SELECT 1; COMMIT; INSERT INTO t VALUES (1)", P, rr::write},
    {"", "BEGIN; SET TRANSACTION READ ONLY; SELECT 1; COMMIT", R, rr::read_only_transaction},
    {"", "BEGIN; SELECT 1; COMMIT", R, rr::first_statement, ps::first},
    {"", "BEGIN; UPDATE t SET a = 1; COMMIT", P, rr::first_statement, ps::first},
    {"", "SELECT 1; BEGIN", P, rr::read_write_transaction},
    {"", "SELECT 1; BEGIN", P, rr::read_write_transaction, ps::first},
    {"", "BEGIN; SET LOCAL statement_timeout = 5", D, rr::transaction_deferred},
    {"", "SET statement_timeout = 5; BEGIN", D, rr::transaction_deferred},
    {"", "BEGIN READ ONLY; SELECT 1", R, rr::read_only_transaction},
    {"", "INSERT INTO t VALUES (1); BEGIN READ ONLY; SELECT 1", P, rr::write},
    {"BEGIN READ ONLY", "SELECT 1; INSERT INTO t VALUES (1)", R, rr::in_transaction},
    {"BEGIN|UPDATE t SET a = 1", "COMMIT; BEGIN READ ONLY; SELECT 1", P, rr::in_transaction},
    {"BEGIN READ ONLY; SELECT 1", "COMMIT", R, rr::in_transaction},
    {"INSERT INTO t VALUES (1); BEGIN READ ONLY; SELECT 1", "SELECT 2", P, rr::in_transaction},
    {"SELECT 1; BEGIN", "SELECT 2", P, rr::in_transaction},
    {"BEGIN; SET LOCAL statement_timeout = 5", "SELECT 1", P, rr::read_write_transaction},
    {"BEGIN; SET LOCAL statement_timeout = 5", "SELECT 1", R, rr::first_statement, ps::first},
    {"BEGIN READ ONLY; SELECT 1; COMMIT", "INSERT INTO t VALUES (1)", P, rr::write},
    {"BEGIN READ ONLY", "COMMIT; BEGIN", R, rr::in_transaction},
    {"BEGIN READ ONLY|COMMIT; BEGIN", "SELECT 1", R, rr::in_transaction},
    // Prepared statements: classified at Parse, routed at each execution.
    {"", "SELECT * FROM t WHERE id = $1", R, rr::read, ps::prepared},
    {"", "SELECT * FROM t WHERE id = ANY($1)", R, rr::read, ps::prepared},
    {"", "INSERT INTO t (a, b) VALUES ($1, $2)", P, rr::write, ps::prepared},
    {"", "UPDATE t SET a = $1 WHERE id = $2", P, rr::write, ps::prepared},
    {"", "DELETE FROM t WHERE id = $1 RETURNING *", P, rr::write, ps::prepared},
    {"", "SELECT nextval($1)", P, rr::write, ps::prepared},
    {"", "SELECT audit_write($1)", P, rr::write, ps::prepared},
    {"", "SELECT * FROM t WHERE id = $1 FOR UPDATE", P, rr::write, ps::prepared},
    {"", "WITH d AS (DELETE FROM t WHERE id = $1 RETURNING *) SELECT * FROM d", P, rr::write,
     ps::prepared},
    {"", "/* shardgate: role=primary */ SELECT * FROM t WHERE id = $1", P, rr::hint, ps::prepared},
    {"", "SHOW search_path", R, rr::read, ps::prepared},
    {"", "BEGIN READ ONLY", R, rr::read_only_transaction, ps::prepared},
    {"", "BEGIN", D, rr::transaction_deferred, ps::prepared},
    {"", "SET shardgate.role = 'primary'", A, rr::session_statement, ps::prepared},
    {"BEGIN READ ONLY", "SELECT * FROM t WHERE id = $1", R, rr::in_transaction, ps::prepared},
    {"BEGIN|SELECT 1", "SELECT * FROM t WHERE id = $1", P, rr::in_transaction, ps::prepared},
    {"SET shardgate.role = 'primary'", "SELECT $1::int", P, rr::session_role, ps::prepared},
    // Temporary objects live on the primary: the session stays there until they are dropped.
    {"CREATE TEMP TABLE tt (a int)", "SELECT * FROM tt", P, rr::temp_objects},
    {"CREATE TEMP TABLE tt (a int)", "SELECT 1", P, rr::temp_objects},
    {"CREATE TEMP TABLE tt (a int)", "BEGIN READ ONLY", P, rr::temp_objects},
    {"CREATE TEMPORARY VIEW v AS SELECT 1", "SELECT * FROM v", P, rr::temp_objects},
    {"SELECT * INTO TEMP tt FROM t", "SELECT * FROM tt", P, rr::temp_objects},
    {"CREATE TEMP TABLE tt (a int)|DISCARD ALL", "SELECT 1", R, rr::read},
    {"CREATE TEMP TABLE tt (a int)|DISCARD TEMP", "SELECT 1", R, rr::read},
    {"CREATE TABLE real_t (a int)", "SELECT * FROM real_t", R, rr::read},
};

}  // namespace

std::span<const route_case> message_cases() {
    return cases;
}

}  // namespace route_table
