// Corpus: session settings changed in part or returned to their defaults, from startup values:
// what a later transaction sees must be what the server ended up with, as in one session of
// Postgres. In the differential environment every transaction-pooled statement runs on a fresh
// server connection (server_lifetime_ms = 1), so each SHOW below sees the client's settings as
// shardgate replays them. Reported settings (GUC_REPORT) first, then the unreported ones the
// README lists.
#include "corpus.hpp"

namespace shardgate::difftest {
namespace {

case_builder c(std::string name) {
    return case_builder(std::move(name));
}

}  // namespace

std::vector<test_case> settings_cases() {
    std::vector<test_case> v;
    // The sequence: PGDATESTYLE sends DateStyle in the startup packet.
    v.push_back(c("datestyle_set_in_parts_from_startup")
                    .startup_param("datestyle", "Postgres, MDY")
                    .qs({"SET datestyle TO iso", "SET datestyle TO ymd", "SHOW datestyle",
                         "SELECT '1999-01-08'::date", "SELECT '01/02/03'::date"})
                    .build());
    v.push_back(c("datestyle_german_then_order_reset_default")
                    .startup_param("DateStyle", "SQL, DMY")
                    .qs({"SET DateStyle = 'German'", "SHOW DateStyle", "SET datestyle TO mdy",
                         "SELECT '1999-01-08'::date", "RESET datestyle", "SHOW DateStyle",
                         "SET datestyle = 'ISO'", "SET datestyle TO DEFAULT", "SHOW DateStyle",
                         "SET SESSION DateStyle TO postgres", "SHOW DateStyle"})
                    .build());
    v.push_back(c("datestyle_parts_in_one_query_and_extended")
                    .startup_param("datestyle", "Postgres, MDY")
                    .q("SET datestyle TO iso; SET datestyle TO dmy")
                    .q("SHOW datestyle")
                    .pbde("SET datestyle TO german")
                    .sync()
                    .q("SHOW datestyle")
                    .pbde("SET datestyle TO ymd")
                    .sync()
                    .q("SELECT '1999-01-08'::date::text")
                    .build());
    v.push_back(
        c("intervalstyle_from_startup_option")
            .startup_param("options", "-c IntervalStyle=iso_8601")
            .qs({"SHOW IntervalStyle", "SELECT interval '1 day 2 hours'",
                 "SET IntervalStyle TO postgres_verbose", "SELECT interval '1 day 2 hours'",
                 "RESET IntervalStyle", "SHOW IntervalStyle", "SET intervalstyle = sql_standard",
                 "SET intervalstyle TO DEFAULT", "SELECT interval '-1 day 2 hours'"})
            .build());
    v.push_back(c("timezone_local_interval_default")
                    .startup_param("TimeZone", "America/New_York")
                    .qs({"SET TIME ZONE 'Europe/Paris'", "SHOW TimeZone",
                         "SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE", "SHOW TimeZone",
                         "SELECT '2020-01-01 12:00'::timestamptz", "SET TIME ZONE LOCAL",
                         "SHOW TimeZone", "SET TIME ZONE -7", "SHOW TimeZone",
                         "SET TIME ZONE DEFAULT", "SHOW TimeZone", "SET timezone TO 'UTC'",
                         "RESET timezone", "SHOW TimeZone", "SET TIME ZONE 'Asia/Tokyo'",
                         "SET timezone = DEFAULT", "SELECT '2020-01-01 12:00'::timestamptz"})
                    .build());
    v.push_back(
        c("application_name_client_encoding_strings_read_only")
            .qs({"SET application_name = 'first'", "SHOW application_name",
                 "SET application_name TO DEFAULT", "SHOW application_name",
                 "SET client_encoding TO 'LATIN1'", "SHOW client_encoding", "RESET client_encoding",
                 "SHOW client_encoding", "SET standard_conforming_strings = off",
                 "SELECT 'a\\\\b' AS v", "RESET standard_conforming_strings", "SELECT 'a\\b' AS v",
                 "SET default_transaction_read_only = on", "BEGIN", "SHOW transaction_read_only",
                 "COMMIT", "RESET default_transaction_read_only",
                 "SHOW default_transaction_read_only"})
            .build());
    v.push_back(
        c("reset_all_after_partial_sets")
            .startup_param("datestyle", "Postgres, MDY")
            .startup_param("TimeZone", "Europe/Lisbon")
            .qs({"SET datestyle TO sql", "SET datestyle TO dmy", "SET TIME ZONE 'UTC'",
                 "SET IntervalStyle = 'iso_8601'", "RESET ALL", "SHOW datestyle", "SHOW TimeZone",
                 "SHOW IntervalStyle", "SET datestyle TO ymd", "DISCARD ALL", "SHOW datestyle"})
            .build());
    // Unreported settings: each SET is whole, so the last one is the value; DEFAULT and RESET
    // return to the startup value where there is one.
    v.push_back(
        c("search_path_with_user_and_defaults")
            .startup_param("search_path", "fx")
            .qs({"SHOW search_path", "SET search_path TO \"$user\", public", "SHOW search_path",
                 "SELECT current_schemas(false)", "SET search_path = fx, \"$user\"",
                 "SELECT count(*) FROM items", "RESET search_path", "SHOW search_path",
                 "SET search_path TO public", "SET search_path TO DEFAULT", "SHOW search_path",
                 "SET SCHEMA 'public'", "SHOW search_path"})
            .build());
    v.push_back(
        c("unreported_settings_set_reset_default")
            .startup_param("options", "-c statement_timeout=1234 -c work_mem=2MB")
            .qs({"SET statement_timeout = '1min'",
                 "SET lock_timeout TO 5000",
                 "SET idle_in_transaction_session_timeout = '10s'",
                 "SET work_mem = '8MB'",
                 "SET extra_float_digits = 1",
                 "SET bytea_output = 'escape'",
                 "SET client_min_messages = warning",
                 "SET xmloption = content",
                 "SET default_transaction_isolation = 'repeatable read'",
                 "SET myapp.tenant = 'acme'",
                 "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), "
                 "current_setting('idle_in_transaction_session_timeout'), "
                 "current_setting('work_mem'), current_setting('extra_float_digits'), "
                 "current_setting('bytea_output'), current_setting('client_min_messages'), "
                 "current_setting('xmloption'), current_setting('default_transaction_isolation'), "
                 "current_setting('myapp.tenant')",
                 "SELECT 0.1::float8, '\\x41'::bytea",
                 "RESET statement_timeout",
                 "SET work_mem TO DEFAULT",
                 "SET lock_timeout = DEFAULT",
                 "RESET myapp.tenant",
                 "SELECT current_setting('statement_timeout'), current_setting('work_mem'), "
                 "current_setting('lock_timeout'), current_setting('myapp.tenant')",
                 "BEGIN",
                 "SHOW transaction_isolation",
                 "COMMIT"})
            .build());
    // Pipelined: the RESET's put-back runs before the SET's report reaches shardgate, and
    // the client must still hear that the setting went back.
    v.push_back(c("pipelined_set_then_reset_reports_the_way_back")
                    .startup_param("datestyle", "Postgres, MDY")
                    .startup_param("TimeZone", "America/New_York")
                    .pq("SET datestyle TO german")
                    .pq("RESET datestyle")
                    .pq("SET TIME ZONE 'Asia/Tokyo'")
                    .pq("SET TIME ZONE DEFAULT")
                    .end()
                    .q("SHOW datestyle")
                    .pq("SET datestyle TO german; RESET datestyle")
                    .pq("SET timezone TO 'UTC'; RESET timezone")
                    .end()
                    .qs({"SHOW datestyle", "SHOW timezone"})
                    .build());
    return v;
}

}  // namespace shardgate::difftest
