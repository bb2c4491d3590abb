// Corpus: simple-query basics (multi-statement strings, empty queries, SET/SHOW, large results)
// and transactions (BEGIN/COMMIT/ROLLBACK, savepoints, failed transactions).
#include <string>

#include "corpus.hpp"

namespace shardgate::difftest {

std::vector<test_case> simple_query_cases() {
    // A 1 MB literal in the query text and a 1 MB value in the result.
    std::string big_literal = "SELECT length('" + std::string(1 << 20, 'q') + "') AS n";
    std::string many_columns = "SELECT ";
    for (int i = 1; i <= 300; ++i)
        many_columns += (i > 1 ? ", " : "") + std::to_string(i) + " AS c" + std::to_string(i);

    std::vector<test_case> v;
    v.push_back(simple_case("select_one", {"SELECT 1"}));
    v.push_back(simple_case(
        "select_literals", {"SELECT 1 AS a, 'x' AS b, NULL::int AS c, true AS d, 1.5::float8 AS e, "
                            "(-32768)::int2 AS f, 9223372036854775807::int8 AS g"}));
    v.push_back(simple_case("empty_query", {""}));
    v.push_back(simple_case("whitespace_and_semicolons", {"  ;  ; ", "-- only a comment"}));
    v.push_back(simple_case("multi_statement", {"SELECT 1; SELECT 2, 3; SELECT 'x' AS y"}));
    v.push_back(simple_case("multi_statement_mixed_commands",
                            {"CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2); "
                             "SELECT * FROM t ORDER BY a; UPDATE t SET a = a + 10; "
                             "DELETE FROM t WHERE a = 11; SELECT a FROM t; DROP TABLE t"}));
    v.push_back(simple_case("multi_statement_error_in_middle",
                            {"SELECT 1; SELECT 1/0; SELECT 3", "SELECT 'after' AS still_usable"}));
    v.push_back(simple_case(
        "multi_statement_implicit_transaction_rolls_back",
        {"CREATE TABLE t (a int)", "INSERT INTO t VALUES (1); INSERT INTO t VALUES ('x')",
         "SELECT count(*) FROM t"}));
    v.push_back(simple_case("multi_statement_with_explicit_transaction",
                            {"BEGIN; SELECT 1; COMMIT; SELECT 2", "BEGIN; SELECT 1", "COMMIT"}));
    v.push_back(simple_case("select_fixture_table", {"SELECT * FROM fx.items ORDER BY id"}));
    v.push_back(simple_case("select_fixture_view", {"SELECT * FROM fx.item_names ORDER BY id"}));
    v.push_back(simple_case("select_no_rows", {"SELECT * FROM fx.items WHERE false"}));
    v.push_back(simple_case("values_list", {"VALUES (1, 'a'), (2, NULL), (3, 'c')"}));
    v.push_back(simple_case("select_where_order_limit_offset",
                            {"SELECT id, name FROM fx.items WHERE id > 1 ORDER BY name DESC "
                             "LIMIT 2 OFFSET 1"}));
    v.push_back(simple_case("joins_and_subqueries",
                            {"SELECT i.id, p.label FROM fx.items i LEFT JOIN fx.parents p ON "
                             "p.id = i.id ORDER BY i.id",
                             "SELECT name FROM fx.items WHERE id IN (SELECT id FROM fx.parents) "
                             "ORDER BY 1",
                             "SELECT EXISTS (SELECT 1 FROM fx.items WHERE price > 10)"}));
    v.push_back(simple_case(
        "aggregates",
        {"SELECT count(*), sum(g), avg(g), min(g), max(g), string_agg(g::text, ',' ORDER BY g), "
         "array_agg(g ORDER BY g DESC) FROM generate_series(1, 20) g",
         "SELECT g % 3 AS k, count(*), bool_and(g > 2) FROM generate_series(1, 10) g GROUP BY 1 "
         "HAVING count(*) > 2 ORDER BY 1"}));
    v.push_back(simple_case(
        "window_functions",
        {"SELECT g, row_number() OVER w, rank() OVER w, sum(g) OVER (ORDER BY g ROWS 2 "
         "PRECEDING), lag(g) OVER w, lead(g, 2, -1) OVER w FROM generate_series(1, 8) g "
         "WINDOW w AS (ORDER BY g)"}));
    v.push_back(simple_case("recursive_cte",
                            {"WITH RECURSIVE f(n, v) AS (SELECT 1, 1::numeric UNION ALL SELECT "
                             "n + 1, v * (n + 1) FROM f WHERE n < 30) SELECT * FROM f"}));
    v.push_back(simple_case("explain_costs_off",
                            {"EXPLAIN (COSTS OFF) SELECT * FROM fx.items WHERE id = 3",
                             "EXPLAIN (COSTS OFF, FORMAT JSON) SELECT count(*) FROM fx.items"}));
    v.push_back(simple_case("show_settings",
                            {"SHOW server_version", "SHOW server_encoding", "SHOW client_encoding",
                             "SHOW DateStyle", "SHOW search_path", "SHOW transaction_isolation"}));
    v.push_back(simple_case("show_all", {"SHOW ALL"}));
    v.push_back(simple_case(
        "set_show_reset",
        {"SET work_mem = '8MB'", "SHOW work_mem", "RESET work_mem", "SHOW work_mem",
         "SET search_path = fx, public", "SELECT count(*) FROM items", "RESET search_path"}));
    v.push_back(simple_case(
        "set_datestyle_reports_parameter",
        {"SET DateStyle = 'German, DMY'", "SELECT '2024-02-29'::date", "SET DateStyle = 'SQL, MDY'",
         "SELECT '2024-02-29 13:14'::timestamp", "RESET DateStyle", "SELECT '2024-02-29'::date"}));
    v.push_back(simple_case("set_timezone_reports_parameter",
                            {"SET TimeZone = 'America/New_York'", "SHOW TimeZone",
                             "SET TIME ZONE 'UTC'", "SET TimeZone = '+05:30'", "RESET TimeZone"}));
    v.push_back(
        simple_case("set_application_name_reports_parameter",
                    {"SET application_name = 'diff-app ✓'",
                     "SELECT current_setting('application_name')", "RESET application_name"}));
    v.push_back(simple_case(
        "set_intervalstyle_reports_parameter",
        {"SET IntervalStyle = 'sql_standard'", "SELECT '1 year 2 mons 3 days 04:05:06'::interval",
         "SET IntervalStyle = 'iso_8601'", "SELECT '-1 day 2 hours'::interval",
         "RESET IntervalStyle"}));
    v.push_back(simple_case(
        "set_client_encoding_converts",
        {"SET client_encoding = 'LATIN1'", "SELECT 'caf\xc3\xa9' AS latin1",
         "SELECT '☕' AS not_in_latin1", "RESET client_encoding", "SELECT 'caf\xc3\xa9' AS utf8"}));
    v.push_back(simple_case("set_standard_conforming_strings",
                            {"SET standard_conforming_strings = off", "SELECT 'a\\\\b', E'c\\td'",
                             "RESET standard_conforming_strings", "SELECT 'a\\b'"}));
    v.push_back(simple_case(
        "set_in_failed_and_rolled_back_transaction",
        {"BEGIN", "SET TimeZone = 'Asia/Tokyo'", "SELECT 1/0", "ROLLBACK", "SHOW TimeZone"}));
    v.push_back(
        simple_case("set_local_and_set_config",
                    {"BEGIN", "SET LOCAL TimeZone = 'Europe/Paris'", "SHOW TimeZone", "COMMIT",
                     "SHOW TimeZone", "SELECT set_config('DateStyle', 'Postgres, DMY', false)",
                     "SELECT set_config('TimeZone', 'UTC', true)"}));
    v.push_back(
        simple_case("set_unknown_and_invalid",
                    {"SET no_such_parameter = 1", "SET work_mem = 'lots'", "SET custom.flag = 'on'",
                     "SHOW custom.flag", "SET server_version = '1'"}));
    v.push_back(simple_case("large_query_text_1mb", {big_literal}));
    v.push_back(simple_case("large_value_1mb", {"SELECT repeat('0123456789abcdef', 65536) AS mb"}));
    v.push_back(simple_case("generate_series_100k_rows",
                            {"SELECT g, 'row ' || g AS label FROM generate_series(1, 100000) g"}));
    v.push_back(simple_case("many_columns", {many_columns}));
    v.push_back(case_builder("pipelined_simple_queries")
                    .pq("SELECT 1")
                    .pq("SELECT 1/0")
                    .pq("SELECT 'third'")
                    .pq("")
                    .q("SELECT 'fifth'")
                    .build());
    v.push_back(simple_case("pg_sleep_short", {"SELECT pg_sleep(0.01)"}));
    v.push_back(
        simple_case("session_identity", {"SELECT current_user, session_user, current_database(), "
                                         "current_schema(), current_schemas(false)",
                                         "SELECT has_table_privilege('fx.items', 'SELECT')"}));
    return v;
}

std::vector<test_case> transaction_cases() {
    std::vector<test_case> v;
    v.push_back(
        simple_case("begin_commit", {"CREATE TABLE t (a int)", "BEGIN", "INSERT INTO t VALUES (1)",
                                     "SELECT * FROM t", "COMMIT", "SELECT * FROM t"}));
    v.push_back(simple_case("begin_rollback",
                            {"CREATE TABLE t (a int)", "BEGIN", "INSERT INTO t VALUES (1)",
                             "ROLLBACK", "SELECT count(*) FROM t"}));
    v.push_back(
        simple_case("start_transaction_end", {"START TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                                              "SHOW transaction_isolation", "END"}));
    v.push_back(simple_case(
        "failed_transaction_then_rollback",
        {"BEGIN", "SELECT 1", "SELECT 1/0", "SELECT 1", "SELECT 2", "ROLLBACK", "SELECT 'ok'"}));
    v.push_back(simple_case("failed_transaction_commit_reports_rollback",
                            {"BEGIN", "SELECT no_such_column FROM fx.items", "COMMIT"}));
    v.push_back(simple_case(
        "savepoint_rollback_to_and_release",
        {"CREATE TABLE t (a int)", "BEGIN", "INSERT INTO t VALUES (1)", "SAVEPOINT s1",
         "INSERT INTO t VALUES (2)", "ROLLBACK TO SAVEPOINT s1", "INSERT INTO t VALUES (3)",
         "RELEASE SAVEPOINT s1", "COMMIT", "SELECT * FROM t ORDER BY a"}));
    v.push_back(simple_case("savepoint_recovers_failed_transaction",
                            {"BEGIN", "SAVEPOINT s", "SELECT 1/0", "SELECT 1", "ROLLBACK TO s",
                             "SELECT 'recovered'", "COMMIT"}));
    v.push_back(simple_case(
        "nested_savepoints",
        {"CREATE TABLE t (a int)", "BEGIN", "SAVEPOINT a", "INSERT INTO t VALUES (1)",
         "SAVEPOINT b", "INSERT INTO t VALUES (2)", "SAVEPOINT c", "INSERT INTO t VALUES (3)",
         "ROLLBACK TO b", "RELEASE a", "COMMIT", "SELECT array_agg(a) FROM t"}));
    v.push_back(simple_case("savepoint_errors", {"SAVEPOINT outside", "BEGIN", "ROLLBACK TO nope",
                                                 "ROLLBACK", "BEGIN", "RELEASE nope", "ROLLBACK"}));
    v.push_back(simple_case("commit_and_rollback_without_transaction",
                            {"COMMIT", "ROLLBACK", "END", "ABORT"}));
    v.push_back(simple_case("begin_twice_warns", {"BEGIN", "BEGIN", "COMMIT"}));
    v.push_back(simple_case("read_only_transaction",
                            {"BEGIN READ ONLY", "CREATE TABLE t (a int)", "ROLLBACK",
                             "SET default_transaction_read_only = on", "CREATE TABLE t (a int)",
                             "RESET default_transaction_read_only"}));
    v.push_back(simple_case("serializable_deferrable",
                            {"BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE",
                             "SELECT count(*) FROM fx.items", "COMMIT"}));
    v.push_back(simple_case(
        "set_transaction_after_query_fails",
        {"BEGIN", "SELECT 1", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "ROLLBACK"}));
    v.push_back(simple_case("prepare_transaction_disabled",
                            {"BEGIN", "PREPARE TRANSACTION 'gx'", "SELECT 1"}));
    v.push_back(simple_case("transaction_with_ddl_rolled_back",
                            {"BEGIN", "CREATE TABLE t (a int)", "INSERT INTO t VALUES (1)",
                             "ROLLBACK", "SELECT * FROM t"}));
    v.push_back(simple_case(
        "commit_and_chain",
        {"BEGIN ISOLATION LEVEL REPEATABLE READ", "COMMIT AND CHAIN", "SHOW transaction_isolation",
         "ROLLBACK AND NO CHAIN", "SHOW transaction_isolation"}));
    v.push_back(simple_case("deferred_constraint_fails_at_commit",
                            {"CREATE TABLE t (a int UNIQUE DEFERRABLE INITIALLY DEFERRED)", "BEGIN",
                             "INSERT INTO t VALUES (1), (1)", "SELECT count(*) FROM t", "COMMIT"}));
    v.push_back(
        simple_case("select_for_update", {"CREATE TABLE t (a int)", "INSERT INTO t VALUES (1), (2)",
                                          "BEGIN", "SELECT * FROM t WHERE a = 1 FOR UPDATE",
                                          "SELECT * FROM t FOR SHARE SKIP LOCKED", "COMMIT"}));
    return v;
}

}  // namespace shardgate::difftest
