// Corpus: the extended query protocol (Parse/Bind/Describe/Execute/Close/Sync/Flush), pipelining,
// errors skipping to Sync, text and binary formats, portals, prepared statements, FunctionCall.
// https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
#include <string>

#include "corpus.hpp"

namespace shardgate::difftest {
namespace {

// Type OIDs (pg_type.dat) and function OIDs (pg_proc.dat) of Postgres 15 built-ins.
constexpr std::uint32_t int2_oid = 21, int4_oid = 23, int8_oid = 20, text_oid = 25,
                        float8_oid = 701, bool_oid = 16, bytea_oid = 17, numeric_oid = 1700,
                        timestamptz_oid = 1184, int4_array_oid = 1007, unknown_oid = 705;
constexpr std::uint32_t int4pl_oid = 177, length_text_oid = 1317, upper_oid = 871;

std::string be_bytes(std::uint64_t v, int n) {
    std::string s;
    for (int i = n - 1; i >= 0; --i)
        s += static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
}
std::string bin4(std::int32_t v) {
    return be_bytes(static_cast<std::uint32_t>(v), 4);
}
std::string bin8(std::int64_t v) {
    return be_bytes(static_cast<std::uint64_t>(v), 8);
}

}  // namespace

std::vector<test_case> extended_cases() {
    std::vector<test_case> v;
    auto c = [&v](std::string name) { return case_builder(std::move(name)); };
    v.push_back(
        c("ext_unnamed_parse_bind_execute").pbde("SELECT 1 AS one, 'two' AS two").sync().build());
    v.push_back(
        c("ext_text_params_inferred")
            .pbde("SELECT $1::int + $2::int AS sum, $3::text || '!' AS t", {"40", "2", "hi"})
            .sync()
            .build());
    v.push_back(c("ext_param_types_given")
                    .parse("", "SELECT $1 AS a, $2 AS b, $3 AS c", {int4_oid, text_oid, bool_oid})
                    .describe_statement("")
                    .bind("", "", {"7", "seven", "t"})
                    .describe_portal("")
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("ext_param_unknown_type")
                    .parse("", "SELECT $1 AS untyped", {unknown_oid})
                    .describe_statement("")
                    .bind("", "", {"abc"})
                    .execute("")
                    .sync()
                    .build());
    v.push_back(
        c("ext_binary_params")
            .parse("", "SELECT $1 + 1 AS i4, $2 * 2 AS i8, $3 || 'x' AS t, $4 AS b",
                   {int4_oid, int8_oid, text_oid, bytea_oid})
            .bind("", "", {bin4(-5), bin8(1LL << 40), "abc", std::string("\0\x01\xff", 3)}, {1})
            .describe_portal("")
            .execute("")
            .sync()
            .build());
    v.push_back(c("ext_mixed_param_formats")
                    .parse("", "SELECT $1::int4 AS a, $2::int4 AS b, $3::text AS c")
                    .bind("", "", {"12", bin4(34), "text"}, {0, 1, 0})
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("ext_null_params")
                    .pbde("SELECT $1::int IS NULL AS a_null, coalesce($2::text, 'dflt') AS b",
                          {std::nullopt, std::nullopt})
                    .sync()
                    .build());
    v.push_back(c("ext_binary_results_all")
                    .pbde("SELECT 42::int2, 42::int4, 42::int8, 1.5::float8, true, 'txt'::text, "
                          "'\\xdeadbeef'::bytea, 12345.678901::numeric, -0.001::numeric, "
                          "'NaN'::numeric, '2024-02-29 12:34:56.789+00'::timestamptz, "
                          "'2000-01-01'::date, '1 day 02:03:04'::interval, "
                          "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, ARRAY[1, NULL, 3], "
                          "ARRAY['a', 'b'], '{\"k\": [1, 2]}'::jsonb, NULL::int",
                          {}, {1})
                    .sync()
                    .build());
    v.push_back(c("ext_binary_results_per_column")
                    .pbde("SELECT 1 AS text_col, 2 AS bin_col, 'x' AS text_again", {}, {0, 1, 0})
                    .sync()
                    .build());
    v.push_back(c("ext_binary_fixture_rows")
                    .pbde("SELECT * FROM fx.items ORDER BY id", {}, {1})
                    .sync()
                    .build());
    v.push_back(c("ext_describe_statement")
                    .parse("s", "SELECT id, name, price FROM fx.items WHERE id = $1 AND name <> $2")
                    .describe_statement("s")
                    .sync()
                    .build());
    v.push_back(c("ext_describe_statement_no_data")
                    .q("CREATE TABLE t (a int, b text)")
                    .parse("ins", "INSERT INTO t VALUES ($1, $2)")
                    .describe_statement("ins")
                    .bind("", "ins", {"1", "x"})
                    .describe_portal("")
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("ext_describe_portal_binary")
                    .parse("", "SELECT $1::int AS n, 'x' AS t")
                    .bind("p", "", {"5"}, {}, {1})
                    .describe_portal("p")
                    .execute("p")
                    .sync()
                    .build());
    v.push_back(c("ext_describe_missing")
                    .describe_statement("nope")
                    .sync()
                    .describe_portal("nope")
                    .sync()
                    .build());
    v.push_back(c("ext_execute_max_rows_portal_suspended")
                    .parse("", "SELECT g FROM generate_series(1, 10) g")
                    .bind("", "")
                    .execute("", 3)
                    .execute("", 3)
                    .execute("", 3)
                    .execute("", 3)
                    .execute("", 3)
                    .sync()
                    .build());
    v.push_back(c("ext_named_portal_across_syncs_in_transaction")
                    .q("BEGIN")
                    .parse("", "SELECT g, g * g FROM generate_series(1, 7) g")
                    .bind("cur", "")
                    .execute("cur", 2)
                    .sync()
                    .execute("cur", 4)
                    .sync()
                    .execute("cur", 0)
                    .close_portal("cur")
                    .sync()
                    .execute("cur", 1)
                    .sync()
                    .q("ROLLBACK")
                    .build());
    v.push_back(c("ext_portal_gone_after_sync_outside_transaction")
                    .parse("", "SELECT generate_series(1, 5)")
                    .bind("p", "")
                    .execute("p", 2)
                    .sync()
                    .execute("p", 2)
                    .sync()
                    .build());
    v.push_back(c("ext_named_statement_reuse")
                    .parse("sq", "SELECT $1::int * $1::int AS square")
                    .sync()
                    .bind("", "sq", {"3"})
                    .execute("")
                    .bind("", "sq", {"4"})
                    .execute("")
                    .sync()
                    .bind("", "sq", {"5"})
                    .execute("")
                    .close_statement("sq")
                    .sync()
                    .bind("", "sq", {"6"})
                    .sync()
                    .build());
    v.push_back(c("ext_duplicate_statement_name")
                    .parse("dup", "SELECT 1")
                    .parse("dup", "SELECT 2")
                    .sync()
                    .parse("", "SELECT 3")
                    .parse("", "SELECT 4")
                    .bind("", "")
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("ext_bind_missing_statement_and_portal")
                    .bind("", "never_parsed")
                    .execute("")
                    .sync()
                    .execute("no_portal")
                    .sync()
                    .build());
    v.push_back(c("ext_close_missing_is_not_an_error")
                    .close_statement("nope")
                    .close_portal("nope")
                    .sync()
                    .build());
    v.push_back(c("ext_error_skips_to_sync")
                    .parse("", "SELECT 1/0")
                    .bind("", "")
                    .execute("")
                    .parse("", "SELECT 'skipped'")
                    .bind("", "")
                    .execute("")
                    .sync()
                    .pbde("SELECT 'after sync'")
                    .sync()
                    .build());
    v.push_back(c("ext_parse_error_skips_to_sync")
                    .parse("", "SELEC oops")
                    .bind("", "")
                    .describe_portal("")
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("ext_bind_errors")
                    .parse("two", "SELECT $1::int + $2::int")
                    .sync()
                    .bind("", "two", {"1"})
                    .sync()
                    .bind("", "two", {"1", "x"})
                    .sync()
                    .bind("", "two", {"1", "2"}, {0, 0, 0})
                    .sync()
                    .bind("", "two", {"1", "2"}, {1})
                    .sync()
                    .bind("", "two", {"1", "2"}, {}, {2})
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("ext_pipelined_syncs_middle_fails")
                    .q("CREATE TABLE t (a int PRIMARY KEY)")
                    .parse("ins", "INSERT INTO t VALUES ($1)")
                    .bind("", "ins", {"1"})
                    .execute("")
                    .sync_pipelined()
                    .bind("", "ins", {"1"})
                    .execute("")
                    .sync_pipelined()
                    .bind("", "ins", {"2"})
                    .execute("")
                    .sync_pipelined()
                    .pbde("SELECT array_agg(a ORDER BY a) FROM t")
                    .sync()
                    .build());
    v.push_back(c("ext_implicit_transaction_until_sync")
                    .q("CREATE TABLE t (a int)")
                    .parse("", "INSERT INTO t VALUES (1)")
                    .bind("", "")
                    .execute("")
                    .parse("", "INSERT INTO t VALUES (1/0)")
                    .bind("", "")
                    .execute("")
                    .sync()
                    .pbde("SELECT count(*) FROM t")
                    .sync()
                    .build());
    v.push_back(c("ext_explicit_transaction_statuses")
                    .pbde("BEGIN")
                    .sync()
                    .pbde("SELECT 1/0")
                    .sync()
                    .pbde("SELECT 1")
                    .sync()
                    .pbde("ROLLBACK")
                    .sync()
                    .build());
    v.push_back(c("ext_flush_without_sync")
                    .parse("", "SELECT 'flushed' AS f")
                    .bind("", "")
                    .describe_portal("")
                    .execute("")
                    .flush()
                    .end_after(5)
                    .sync()
                    .build());
    v.push_back(c("ext_flush_after_parse_only")
                    .parse("fp", "SELECT $1::text")
                    .flush()
                    .end_after(1)
                    .describe_statement("fp")
                    .flush()
                    .end_after(2)
                    .sync()
                    .build());
    v.push_back(c("ext_flush_after_error")
                    .parse("", "SELECT * FROM no_table")
                    .flush()
                    .end_after(1)
                    .bind("", "")
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("ext_sync_only").sync().sync_pipelined().sync_pipelined().sync().build());
    v.push_back(c("ext_empty_query")
                    .pbde("")
                    .sync()
                    .parse("", "  ")
                    .bind("", "")
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("ext_multi_statement_rejected").pbde("SELECT 1; SELECT 2").sync().build());
    v.push_back(c("ext_ddl_and_dml_with_returning")
                    .pbde("CREATE TABLE t (id serial, v text)")
                    .sync()
                    .parse("ins", "INSERT INTO t (v) VALUES ($1) RETURNING id, v", {text_oid})
                    .describe_statement("ins")
                    .bind("", "ins", {"a"})
                    .execute("")
                    .bind("", "ins", {"b"})
                    .describe_portal("")
                    .execute("")
                    .sync()
                    .pbde("UPDATE t SET v = upper(v) RETURNING *")
                    .sync()
                    .build());
    v.push_back(c("ext_returning_with_max_rows")
                    .q("CREATE TABLE t (a int)")
                    .parse("", "INSERT INTO t SELECT generate_series(1, 5) RETURNING a")
                    .bind("", "")
                    .execute("", 2)
                    .execute("", 2)
                    .sync()
                    .q("SELECT count(*) FROM t")
                    .build());
    v.push_back(c("ext_set_and_show_report_parameters")
                    .pbde("SET TimeZone = 'Pacific/Auckland'")
                    .pbde("SHOW TimeZone")
                    .sync()
                    .pbde("SET application_name = 'ext-app'")
                    .sync()
                    .build());
    v.push_back(c("ext_notice_and_error_fields")
                    .pbde("DO $$ BEGIN RAISE NOTICE 'from extended'; END $$")
                    .pbde("SELECT 'x'::int")
                    .sync()
                    .build());
    v.push_back(c("ext_array_param_and_result")
                    .parse("", "SELECT $1::int[] AS arr, array_length($1::int[], 1) AS len",
                           {int4_array_oid})
                    .bind("", "", {"{1,2,NULL,4}"})
                    .describe_portal("")
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("ext_numeric_and_timestamp_params")
                    .parse("", "SELECT $1 * 2 AS n, $2 + interval '1 hour' AS ts, $3 AS f",
                           {numeric_oid, timestamptz_oid, float8_oid})
                    .bind("", "", {"123456789.987654321", "2024-06-01 00:00:00+02", "-1.5e-7"})
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("ext_int2_param_out_of_range")
                    .parse("", "SELECT $1 AS small", {int2_oid})
                    .bind("", "", {"70000"})
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("ext_many_params")
                    .pbde("SELECT $1::int + $2::int + $3::int + $4::int + $5::int + $6::int + "
                          "$7::int + $8::int + $9::int + $10::int",
                          {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"})
                    .sync()
                    .build());
    v.push_back(simple_case(
        "sql_prepare_execute_deallocate",
        {"PREPARE p1 (int, text) AS SELECT $1 * 2 AS d, upper($2) AS u", "EXECUTE p1(21, 'abc')",
         "EXECUTE p1(1)", "EXECUTE p1('x', 'y')",
         "SELECT name, statement, parameter_types FROM pg_prepared_statements",
         "PREPARE p1 AS SELECT 1", "DEALLOCATE p1", "EXECUTE p1(1, 'a')", "DEALLOCATE ALL"}));
    v.push_back(simple_case(
        "sql_prepare_dml",
        {"CREATE TABLE t (a int, b text)",
         "PREPARE ins (int, text) AS INSERT INTO t VALUES ($1, $2) RETURNING *",
         "EXECUTE ins(1, 'one')", "EXECUTE ins(2, NULL)", "SELECT * FROM t ORDER BY a"}));
    v.push_back(c("ext_protocol_and_sql_prepared_statements_mix")
                    .q("PREPARE sqlp AS SELECT 'from sql' AS src")
                    .parse("", "EXECUTE sqlp")
                    .bind("", "")
                    .describe_portal("")
                    .execute("")
                    .sync()
                    .parse("protop", "SELECT 'from protocol' AS src")
                    .sync()
                    .q("SELECT name, from_sql FROM pg_prepared_statements ORDER BY name")
                    .q("EXECUTE protop")
                    .build());
    v.back().differs_in_transaction_pooling =
        "protocol statements have shardgate's names (sgN) on the server: "
        "pg_prepared_statements and SQL EXECUTE see those";
    v.push_back(c("ext_copy_to_stdout")
                    .pbde("COPY (SELECT g, 'v' || g FROM generate_series(1, 5) g) TO STDOUT")
                    .sync()
                    .build());
    v.push_back(c("function_call_int4pl")
                    .function_call(int4pl_oid, {"40", "2"}, {0}, 0)
                    .function_call(int4pl_oid, {bin4(1000), bin4(-1)}, {1}, 1)
                    .build());
    v.push_back(c("function_call_length_and_collation_error")
                    .function_call(length_text_oid, {"héllo 🙂"})
                    .function_call(upper_oid, {"mixed Case ü"})
                    .build());
    v.push_back(c("function_call_null_and_errors")
                    .function_call(int4pl_oid, {std::nullopt, "1"})
                    .function_call(int4pl_oid, {"2147483647", "1"})
                    .function_call(int4pl_oid, {"1"})
                    .function_call(4294967000U, {"1"})
                    .function_call(int4pl_oid, {"x", "1"})
                    .build());
    return v;
}

}  // namespace shardgate::difftest
