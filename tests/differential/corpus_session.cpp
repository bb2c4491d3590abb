// Corpus: session state: cursors (DECLARE/FETCH/MOVE), LISTEN/NOTIFY to self, temporary
// objects, DISCARD/RESET, advisory locks, and startup-like settings changed at run time.
#include "corpus.hpp"

namespace shardgate::difftest {

std::vector<test_case> session_cases() {
    std::vector<test_case> v;
    v.push_back(
        simple_case("cursor_declare_fetch_close",
                    {"BEGIN", "DECLARE c CURSOR FOR SELECT g, g * 2 FROM generate_series(1, 10) g",
                     "FETCH 3 FROM c", "FETCH NEXT FROM c", "FETCH ALL FROM c", "FETCH 1 FROM c",
                     "CLOSE c", "COMMIT"}));
    v.push_back(simple_case(
        "cursor_scroll_and_move",
        {"BEGIN", "DECLARE c SCROLL CURSOR FOR SELECT id, name FROM fx.items ORDER BY id",
         "FETCH LAST FROM c", "FETCH BACKWARD 2 FROM c", "MOVE ABSOLUTE 1 IN c",
         "FETCH RELATIVE 1 FROM c", "MOVE FORWARD ALL IN c", "FETCH PRIOR FROM c",
         "FETCH FIRST FROM c", "ROLLBACK"}));
    v.push_back(simple_case(
        "cursor_with_hold_survives_commit",
        {"BEGIN", "DECLARE h CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 5) g",
         "FETCH 2 FROM h", "COMMIT", "FETCH ALL FROM h", "CLOSE h",
         "SELECT count(*) FROM pg_cursors"}));
    v.push_back(simple_case(
        "binary_cursor",
        {"BEGIN", "DECLARE b BINARY CURSOR FOR SELECT 1::int4, 'txt'::text, 2.5::float8, NULL::int",
         "FETCH ALL FROM b", "ROLLBACK"}));
    v.push_back(simple_case(
        "cursor_errors",
        {"DECLARE outside CURSOR FOR SELECT 1", "FETCH 1 FROM nope", "BEGIN",
         "DECLARE c CURSOR FOR SELECT 1/0", "FETCH 1 FROM c", "ROLLBACK", "BEGIN",
         "DECLARE c NO SCROLL CURSOR FOR SELECT 1", "FETCH BACKWARD 1 FROM c", "ROLLBACK"}));
    v.push_back(simple_case(
        "cursor_in_plpgsql_refcursor",
        {"CREATE FUNCTION open_it(r refcursor) RETURNS refcursor LANGUAGE plpgsql AS $$ BEGIN "
         "OPEN r FOR SELECT name FROM fx.items ORDER BY id; RETURN r; END $$",
         "BEGIN", "SELECT open_it('rc')", "FETCH 2 FROM rc", "COMMIT"}));
    v.push_back(simple_case(
        "listen_notify_self",
        {"LISTEN chan", "NOTIFY chan", "NOTIFY chan, 'with payload'",
         "SELECT pg_notify('chan', 'from function')", "NOTIFY other_chan, 'not listening'"}));
    v.push_back(simple_case(
        "notify_in_transaction_delivered_at_commit",
        {"LISTEN c1", "LISTEN \"Mixed Case\"", "BEGIN", "NOTIFY c1, 'a'", "NOTIFY c1, 'a'",
         "NOTIFY c1, 'b'", "NOTIFY \"Mixed Case\", 'ü🙂'", "SELECT 'still inside'", "COMMIT",
         "BEGIN", "NOTIFY c1, 'rolled back'", "ROLLBACK"}));
    v.push_back(simple_case("unlisten_and_listen_state",
                            {"LISTEN a", "LISTEN b", "SELECT pg_listening_channels() ORDER BY 1",
                             "UNLISTEN a", "NOTIFY a, 'dropped'", "NOTIFY b, 'kept'", "UNLISTEN *",
                             "NOTIFY b, 'none'", "SELECT count(*) FROM pg_listening_channels()"}));
    v.push_back(
        simple_case("notify_long_payload_and_errors",
                    {"LISTEN big", "SELECT pg_notify('big', repeat('p', 7999))",
                     "SELECT pg_notify('big', repeat('p', 8000))", "SELECT pg_notify('', 'x')"}));
    v.push_back(case_builder("notify_in_multi_statement_and_extended")
                    .q("LISTEN m")
                    .q("NOTIFY m, 'one'; SELECT 1; NOTIFY m, 'two'")
                    .pbde("NOTIFY m, 'ext'")
                    .sync()
                    .build());
    v.push_back(simple_case(
        "temporary_tables",
        {"CREATE TEMP TABLE tt (a int)", "INSERT INTO tt VALUES (1), (2)", "SELECT * FROM tt",
         "SELECT count(*) FROM pg_temp.tt", "CREATE TEMP TABLE tc (a int) ON COMMIT DELETE ROWS",
         "BEGIN", "INSERT INTO tc VALUES (1)", "SELECT count(*) FROM tc", "COMMIT",
         "SELECT count(*) FROM tc", "BEGIN", "CREATE TEMP TABLE td (a int) ON COMMIT DROP",
         "COMMIT", "SELECT * FROM td"}));
    v.push_back(simple_case(
        "temporary_objects_shadow_and_discard",
        {"CREATE TABLE shadowed (v text)", "INSERT INTO shadowed VALUES ('permanent')",
         "CREATE TEMP TABLE shadowed (v text)", "INSERT INTO shadowed VALUES ('temporary')",
         "SELECT v FROM shadowed", "DISCARD TEMP", "SELECT v FROM shadowed",
         "CREATE TEMP SEQUENCE ts", "SELECT nextval('ts')",
         "CREATE TEMP VIEW tv AS SELECT 1 AS one", "SELECT * FROM tv"}));
    v.push_back(simple_case(
        "discard_all_resets_parameters",
        {"SET application_name = 'to be reset'", "SET TimeZone = 'Asia/Tokyo'",
         "PREPARE d AS SELECT 1", "LISTEN gone", "CREATE TEMP TABLE gone (a int)", "DISCARD ALL",
         "SHOW TimeZone", "EXECUTE d", "SELECT count(*) FROM pg_listening_channels()", "BEGIN",
         "DISCARD ALL", "ROLLBACK"}));
    v.push_back(simple_case(
        "reset_all_and_set_session",
        {"SET SESSION DateStyle = 'SQL'", "SET IntervalStyle = 'iso_8601'",
         "SET application_name = 'x'", "RESET ALL", "SHOW DateStyle", "SHOW IntervalStyle",
         "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", "BEGIN",
         "SHOW transaction_isolation", "COMMIT"}));
    v.push_back(simple_case(
        "advisory_locks_in_session",
        {"SELECT pg_advisory_lock(1), pg_advisory_lock(1)", "SELECT pg_try_advisory_lock(2, 3)",
         "SELECT pg_advisory_unlock(1), pg_advisory_unlock(1), pg_advisory_unlock(1)", "BEGIN",
         "SELECT pg_advisory_xact_lock(5)", "COMMIT", "SELECT pg_advisory_unlock_all()"}));
    v.push_back(
        simple_case("search_path_and_schemas",
                    {"CREATE SCHEMA IF NOT EXISTS alice", "CREATE TABLE t (a int)",
                     "SET search_path = fx", "SELECT * FROM t", "SELECT count(*) FROM items",
                     "SET search_path = alice, fx", "SELECT count(*) FROM t", "CREATE SCHEMA other",
                     "RESET search_path", "SELECT current_schemas(true)"}));
    v.push_back(simple_case(
        "set_role_and_session_settings",
        {"SHOW is_superuser", "SHOW session_authorization", "SET ROLE alice", "RESET ROLE",
         "SET SESSION AUTHORIZATION DEFAULT", "SHOW integer_datetimes",
         "SHOW standard_conforming_strings", "SELECT current_setting('nope', true) IS NULL"}));
    v.push_back(case_builder("function_call_in_transaction_and_failed_transaction")
                    .q("BEGIN")
                    .function_call(177, {"1", "2"})
                    .q("SELECT 1/0")
                    .function_call(177, {"1", "2"})
                    .q("ROLLBACK")
                    .build());
    v.push_back(case_builder("sync_outside_extended_protocol")
                    .q("SELECT 'simple'")
                    .sync()
                    .pq("SELECT 1")
                    .sync_pipelined()
                    .q("SELECT 2")
                    .build());
    return v;
}

}  // namespace shardgate::difftest
