// Corpus: errors and notices of many kinds, with their SQLSTATEs and every field Postgres sends
// (position, detail, hint, context, schema/table/column/constraint names).
#include "corpus.hpp"

namespace shardgate::difftest {

std::vector<test_case> error_cases() {
    std::vector<test_case> v;
    v.push_back(simple_case("syntax_errors", {"SELEC 1", "SELECT 1 +", "SELECT (1", "SELECT 'open",
                                              "SELECT $$unterminated", "SELECT 1 FROM"}));
    v.push_back(simple_case("undefined_objects",
                            {"SELECT * FROM no_such_table", "SELECT no_such_column FROM fx.items",
                             "SELECT no_such_function(1)", "SELECT * FROM nosuchschema.t",
                             "SELECT 1::no_such_type", "SELECT fx.items.nope FROM fx.items"}));
    v.push_back(simple_case("division_by_zero", {"SELECT 1/0", "SELECT 1.0/0", "SELECT 5 % 0",
                                                 "SELECT 1/0.0::float8"}));
    v.push_back(simple_case("unique_violation",
                            {"CREATE TABLE t (id int PRIMARY KEY, email text UNIQUE)",
                             "INSERT INTO t VALUES (1, 'a@x')", "INSERT INTO t VALUES (1, 'b@x')",
                             "INSERT INTO t VALUES (2, 'a@x')", "UPDATE t SET id = 1 WHERE false",
                             "SELECT count(*) FROM t"}));
    v.push_back(simple_case("not_null_violation",
                            {"CREATE TABLE t (a int NOT NULL, b text)",
                             "INSERT INTO t (b) VALUES ('x')", "INSERT INTO t VALUES (NULL, NULL)",
                             "INSERT INTO t VALUES (1, 'ok')", "UPDATE t SET a = NULL"}));
    v.push_back(simple_case(
        "check_violation",
        {"CREATE TABLE t (a int CONSTRAINT positive CHECK (a > 0), b int, CHECK (b < a))",
         "INSERT INTO t VALUES (-1, 0)", "INSERT INTO t VALUES (5, 10)",
         "INSERT INTO t VALUES (5, 1)", "ALTER TABLE t ADD CONSTRAINT small CHECK (a < 3)"}));
    v.push_back(simple_case("foreign_key_violation",
                            {"CREATE TABLE c (id int, pid int REFERENCES fx.parents (id))",
                             "INSERT INTO c VALUES (1, 1)", "INSERT INTO c VALUES (2, 99)",
                             "CREATE TABLE p (id int PRIMARY KEY)",
                             "CREATE TABLE c2 (pid int REFERENCES p)", "INSERT INTO p VALUES (1)",
                             "INSERT INTO c2 VALUES (1)", "DELETE FROM p", "DROP TABLE p"}));
    v.push_back(
        simple_case("invalid_input_syntax",
                    {"SELECT 'abc'::int", "SELECT '2024-13-45'::date", "SELECT '{1,2'::int[]",
                     "SELECT 'maybe'::bool", "SELECT '12:61'::time", "SELECT 'xyz'::uuid",
                     "SELECT '1.2.3.4.5'::inet", "SELECT 'zz'::bytea", "SELECT '1e400'::float8"}));
    v.push_back(simple_case(
        "out_of_range",
        {"SELECT 2147483647 + 1", "SELECT (-32768)::int2 * -1", "SELECT 300::int2 * 200::int2",
         "SELECT 9223372036854775807::int8 + 1", "SELECT 10::numeric(3,2)",
         "SELECT repeat('x', 5)::varchar(3)", "SELECT 'abcdef'::char(2)",
         "SELECT make_date(2024, 2, 30)", "SELECT (ARRAY[1,2,3])[1:2][5]"}));
    v.push_back(simple_case("string_truncation_on_insert",
                            {"CREATE TABLE t (c varchar(3))", "INSERT INTO t VALUES ('abcd')",
                             "INSERT INTO t VALUES ('abc   ')", "SELECT c, length(c) FROM t"}));
    v.push_back(simple_case(
        "raise_levels_in_do_blocks",
        {"DO $$ BEGIN RAISE NOTICE 'plain notice'; END $$",
         "DO $$ BEGIN RAISE WARNING 'careful: %', 42; END $$",
         "DO $$ BEGIN RAISE INFO 'info level'; RAISE LOG 'log level (not sent)'; "
         "RAISE DEBUG 'debug level (not sent)'; END $$",
         "DO $$ BEGIN RAISE NOTICE 'with extras' USING DETAIL = 'the detail', HINT = 'the hint', "
         "ERRCODE = '01000'; END $$",
         "DO $$ BEGIN RAISE NOTICE 'unicode: ü ☃ 🙂'; RAISE NOTICE '%', repeat('n', 2000); "
         "END "
         "$$"}));
    v.push_back(simple_case(
        "raise_exception_fields",
        {"DO $$ BEGIN RAISE EXCEPTION 'boom %', 1 USING DETAIL = 'd', HINT = 'h', "
         "ERRCODE = 'P0001', COLUMN = 'col', CONSTRAINT = 'con', DATATYPE = 'dt', TABLE = 'tab', "
         "SCHEMA = 'sch'; END $$",
         "DO $$ BEGIN RAISE SQLSTATE '22012' USING MESSAGE = 'custom division'; END $$",
         "DO $$ BEGIN RAISE unique_violation; END $$",
         "DO $$ BEGIN ASSERT 1 = 2, 'assertion text'; END $$"}));
    v.push_back(simple_case("notices_then_error_in_one_statement",
                            {"DO $$ BEGIN FOR i IN 1..3 LOOP RAISE NOTICE 'step %', i; END LOOP; "
                             "RAISE EXCEPTION 'failed after notices'; END $$",
                             "SELECT 'next'"}));
    v.push_back(simple_case(
        "many_notices",
        {"DO $$ BEGIN FOR i IN 1..2000 LOOP RAISE NOTICE 'notice number %', i; END LOOP; END $$"}));
    v.push_back(simple_case(
        "client_min_messages_filters",
        {"SET client_min_messages = warning",
         "DO $$ BEGIN RAISE NOTICE 'hidden'; RAISE WARNING 'shown'; END $$",
         "DROP TABLE IF EXISTS nope", "SET client_min_messages = error",
         "DO $$ BEGIN RAISE WARNING 'hidden too'; END $$", "RESET client_min_messages"}));
    v.push_back(simple_case(
        "error_context_from_nested_functions",
        {"CREATE FUNCTION inner_f(x int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 10 / x; "
         "END $$",
         "CREATE FUNCTION outer_f(x int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN "
         "inner_f(x - 1) + 1; END $$",
         "SELECT outer_f(2)", "SELECT outer_f(1)",
         "CREATE FUNCTION sql_f() RETURNS int LANGUAGE sql AS 'SELECT 1/0'", "SELECT sql_f()",
         "DO $$ BEGIN EXECUTE 'SELECT * FROM missing_in_dynamic_sql'; END $$"}));
    v.push_back(simple_case(
        "exception_handler_in_plpgsql",
        {"DO $$ BEGIN PERFORM 1/0; EXCEPTION WHEN division_by_zero THEN RAISE NOTICE 'caught: % "
         "(%)', SQLERRM, SQLSTATE; END $$",
         "DO $$ DECLARE m text; d text; BEGIN PERFORM 'x'::int; EXCEPTION WHEN OTHERS THEN GET "
         "STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_CONTEXT; RAISE WARNING '% / %', "
         "m, "
         "d; END $$"}));
    v.push_back(
        simple_case("permission_denied",
                    {"SELECT * FROM fx.secret",
                     "INSERT INTO fx.items (id, name) VALUES "
                     "(9, 'x')",
                     "CREATE TABLE fx.mine (a int)", "SET ROLE postgres",
                     "SET session_authorization = 'postgres'", "ALTER SYSTEM SET work_mem = '1MB'",
                     "SELECT pg_read_file('postgresql.conf')"}));
    v.push_back(
        simple_case("lock_timeout_on_locked_table",
                    {"SET lock_timeout = '30ms'", "SELECT * FROM fx.locked", "BEGIN",
                     "SELECT count(*) FROM fx.items", "LOCK TABLE fx.locked IN ACCESS SHARE MODE",
                     "LOCK TABLE fx.locked IN SHARE MODE", "ROLLBACK", "SELECT 'usable'"}));
    v.push_back(simple_case("lock_timeout_on_advisory_lock",
                            {"SET lock_timeout = '30ms'", "SELECT pg_try_advisory_lock(4242)",
                             "SELECT pg_advisory_lock(4242)", "SELECT pg_advisory_lock(7)",
                             "SELECT pg_advisory_unlock(7), pg_advisory_unlock(7)"}));
    v.push_back(simple_case(
        "statement_timeout",
        {"SET statement_timeout = '40ms'", "SELECT pg_sleep(5)", "BEGIN", "SELECT pg_sleep(5)",
         "ROLLBACK", "RESET statement_timeout", "SELECT 'after timeout'"}));
    v.push_back(simple_case(
        "various_sqlstates",
        {"SELECT (SELECT g FROM generate_series(1, 2) g)", "SELECT 1 UNION SELECT 'a'::text",
         "SELECT 'a' ~ '('", "SELECT '{bad'::json", "SELECT id FROM fx.items, fx.parents",
         "SELECT substring('abc' FROM -1 FOR -1)", "SELECT sqrt(-1)", "SELECT ln(0)",
         "SELECT length(1, 2, 3)", "SELECT 'a' || 1 + 1", "SELECT ARRAY[1] = ARRAY['a']",
         "SELECT count(*) FROM fx.items GROUP BY name HAVING price > 1"}));
    v.push_back(simple_case(
        "ddl_errors",
        {"CREATE TABLE t (a int)", "CREATE TABLE t (a int)", "CREATE TABLE u (a int, a int)",
         "ALTER TABLE t ADD COLUMN a int", "DROP TABLE nope", "CREATE INDEX ON t (nope)",
         "CREATE VIEW v AS SELECT * FROM t", "DROP TABLE t", "DROP TABLE t CASCADE",
         "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN; END $$"}));
    // The server's FATAL must reach the client as is, followed by the close, and nothing else.
    v.push_back(case_builder("terminate_own_backend")
                    .q("SELECT 'before'")
                    .pq("SELECT pg_terminate_backend(pg_backend_pid())")
                    .end_at_close()
                    .build());
    return v;
}

}  // namespace shardgate::difftest
