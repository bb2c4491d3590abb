// Corpus: connection-level behaviour a relay can get wrong: startup parameters, refused logins,
// Terminate behind a pending query, CancelRequest, notifications from another session while
// idle, messages split across TCP writes, long pipelines and large client messages.
#include <string>

#include "corpus.hpp"

namespace shardgate::difftest {

using namespace std::chrono_literals;

std::vector<test_case> connection_cases() {
    std::vector<test_case> v;
    auto c = [](std::string name) { return case_builder(std::move(name)); };
    v.push_back(c("login_startup_parameters")
                    .startup_param("TimeZone", "America/Chicago")
                    .startup_param("DateStyle", "SQL, DMY")
                    .startup_param("search_path", "fx")
                    .startup_param("application_name", "overridden ✓")
                    .q("SHOW search_path")
                    .q("SELECT count(*), '2024-02-03 04:05:06+00'::timestamptz FROM items")
                    .build());
    v.push_back(c("login_startup_options")
                    .startup_param("options", "-c statement_timeout=1234 -c IntervalStyle=iso_8601")
                    .q("SHOW statement_timeout")
                    .q("SELECT '1 day 2 hours'::interval")
                    .build());
    v.push_back(c("login_unknown_startup_parameter")
                    .startup_param("no_such_guc", "1")
                    .q("SELECT 'not reached'")
                    .build());
    v.push_back(c("login_invalid_startup_value")
                    .startup_param("DateStyle", "Nonsense")
                    .q("SELECT 'not reached'")
                    .build());
    v.push_back(c("login_wrong_password").password("wrong").q("SELECT 'not reached'").build());
    v.push_back(c("terminate_right_after_login").terminate().build());
    // Postgres runs what precedes a Terminate to completion and answers before it closes.
    v.push_back(c("terminate_behind_slow_query")
                    .pq("SELECT pg_sleep(0.2) AS slept, 'answered before the close' AS a")
                    .terminate()
                    .build());
    v.push_back(c("terminate_behind_pending_query")
                    .pq("SELECT 'answered before the close' AS a")
                    .terminate()
                    .build());
    v.push_back(c("terminate_behind_pending_commit")
                    .q("CREATE TABLE t (a int)")
                    .q("BEGIN")
                    .q("INSERT INTO t VALUES (1)")
                    .pq("COMMIT")
                    .terminate()
                    .build());
    v.push_back(c("terminate_behind_extended_batch")
                    .pbde("SELECT generate_series(1, 3)")
                    .sync_pipelined()
                    .terminate()
                    .build());
    v.push_back(c("cancel_running_query")
                    .pq("SELECT pg_sleep(10)")
                    .cancel_after(300ms)
                    .end()
                    .q("SELECT 'after cancel'")
                    .build());
    v.push_back(c("cancel_in_transaction")
                    .q("BEGIN")
                    .pq("SELECT count(*) FROM generate_series(1, 3), pg_sleep(10)")
                    .cancel_after(300ms)
                    .end()
                    .q("SELECT 1")
                    .q("ROLLBACK")
                    .build());
    v.push_back(c("notify_from_other_session_while_idle")
                    .q("LISTEN ext")
                    .side_sql("NOTIFY ext, 'from another session'")
                    .end_after(1)
                    .side_sql("NOTIFY ext, 'second'; NOTIFY ext, 'third'")
                    .end_after(2)
                    .q("SELECT 'still in sync'")
                    .build());
    v.push_back(c("notify_from_other_session_during_transaction")
                    .q("LISTEN ext")
                    .q("BEGIN")
                    .side_sql("NOTIFY ext, 'held until commit'")
                    .end()
                    .q("SELECT pg_sleep(0.1)")
                    .q("COMMIT")
                    .build());
    v.push_back(c("split_writes_simple_and_extended")
                    .split_writes()
                    .q("SELECT 'split' AS s, 42 AS n")
                    .pq("SELECT 1")
                    .pq("SELECT 2")
                    .end()
                    .parse("st", "SELECT $1::int + $2::int AS sum")
                    .bind("", "st", {"20", "22"})
                    .describe_portal("")
                    .execute("")
                    .sync()
                    .function_call(177, {"1", "2"})
                    .build());
    v.push_back(c("split_writes_copy_and_errors")
                    .split_writes()
                    .q("CREATE TABLE t (n int, s text)")
                    .q_copy_in("COPY t FROM STDIN", {"1\tone\n", "2\ttwo\n"})
                    .q("SELECT * FROM t ORDER BY n")
                    .q("SELECT 1/0")
                    .build());
    {
        case_builder b("pipeline_5000_simple_queries");
        for (int i = 0; i < 5000; ++i)
            b.pq("SELECT " + std::to_string(i));
        v.push_back(b.end().build());
    }
    {
        case_builder b("pipeline_2000_extended_executes");
        b.parse("p", "SELECT $1::int * 2 AS twice, repeat('x', $1::int) AS xs");
        for (int i = 0; i < 2000; ++i)
            b.bind("", "p", {std::to_string(i % 300)}).execute("");
        v.push_back(b.sync().build());
    }
    v.push_back(c("large_bind_parameter_4mb")
                    .parse("", "SELECT length($1::text), md5($1::text)")
                    .bind("", "", {std::string(4 << 20, 'b')})
                    .execute("")
                    .sync()
                    .build());
    v.push_back(c("large_copy_data_message_8mb")
                    .q("CREATE TABLE t (s text)")
                    .q_copy_in("COPY t FROM STDIN", {std::string(8 << 20, 'c') + "\n"})
                    .q("SELECT length(s) FROM t")
                    .build());
    return v;
}

}  // namespace shardgate::difftest
