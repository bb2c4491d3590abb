// Which statements leave session state behind (and so pin a transaction-pooled client).
#include "shardgate/router/session_effects.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

using namespace shardgate::router;
using e = session_effect;

TEST_CASE("session effects of statements") {
    const std::vector<std::pair<std::string, session_effect>> cases = {
        {"SELECT 1", e::none},
        {"select * from t where a = 'SET x = 1'", e::none},
        {"INSERT INTO t VALUES (1)", e::none},
        {"BEGIN; UPDATE t SET a = 1; COMMIT", e::none},
        {"UPDATE t SET a = 1", e::none},
        {"SET search_path = a, b", e::set},
        {"set TimeZone to 'UTC'", e::set},
        {"SET SESSION statement_timeout = 5", e::set},
        {"SET LOCAL statement_timeout = 5", e::none},
        {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", e::none},
        {"SET CONSTRAINTS ALL DEFERRED", e::none},
        {"SET ROLE bob", e::set},
        {"SET SESSION AUTHORIZATION bob", e::set},
        {"RESET search_path", e::set},
        {"RESET ALL", e::set},
        {"SELECT set_config('search_path', 'x', false)", e::set},
        {"SELECT set_config('search_path', 'x', true)", e::none},
        {"DISCARD ALL", e::discard},
        {"discard temp", e::discard},
        {"PREPARE p AS SELECT 1", e::prepare},
        {"PREPARE TRANSACTION 'x'", e::none},
        {"DEALLOCATE p", e::prepare},
        {"DEALLOCATE ALL", e::prepare},
        {"LISTEN chan", e::listen},
        {"UNLISTEN *", e::none},
        {"SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;", e::set},
        {"NOTIFY chan", e::none},
        {"CREATE TEMP TABLE t (a int)", e::temp_object},
        {"CREATE TEMPORARY TABLE t (a int)", e::temp_object},
        {"create local temporary table t (a int)", e::temp_object},
        {"CREATE TABLE t (a int)", e::none},
        {"SELECT * INTO TEMP t2 FROM t", e::temp_object},
        {"CREATE TEMP VIEW v AS SELECT 1", e::temp_object},
        // The temporary schema by name: a plain CREATE may make a temporary object.
        {"SET search_path TO pg_temp", e::temp_object},
        {"SET search_path = public, pg_temp", e::temp_object},
        {"CREATE TABLE pg_temp.t (a int)", e::temp_object},
        {"SELECT * FROM pg_temp_3.t", e::temp_object},
        {"SET search_path TO public", e::set},
        {"DECLARE c CURSOR WITH HOLD FOR SELECT 1", e::hold_cursor},
        {"DECLARE c CURSOR FOR SELECT 1", e::none},
        {"SELECT pg_advisory_lock(1)", e::advisory_lock},
        {"SELECT pg_try_advisory_lock(1, 2)", e::advisory_lock},
        {"SELECT pg_advisory_lock_shared(1)", e::advisory_lock},
        {"SELECT pg_advisory_xact_lock(1)", e::none},
        {"SELECT pg_advisory_unlock(1)", e::none},
        {"LOAD 'auto_explain'", e::load},
        {"SELECT 1; SET search_path = x", e::set},
        {"/* SET x */ SELECT 1", e::none},
        // Text that cannot be lexed pins, unless it holds none of the words a session effect
        // needs (then nothing in it can be one, whatever the lexer thinks).
        {"SET search_path = 'unterminated", e::unknown},
        {"SELECT 'unterminated; set_config", e::unknown},
        {"SELECT 'unterminated", e::none},
        {"SELECT * FROM t WHERE a = 'x'", e::none},
        {"SeLeCt PG_ADVISORY_LOCK(1)", e::advisory_lock},
        {"select 1; Set Search_Path TO x", e::set},
        // The prefilter's letter test: either case, bytes outside ASCII, [ ] { } ` @ around.
        {"lIsTeN chan", e::listen},
        {"SELECT 'caf\xc3\xa9 \xe2\x82\xac'; DeAlLoCaTe p", e::prepare},
        {"SELECT a[1], '{}', `@` FROM t", e::none},
        {"SELECT '\x80\xff\x7f'", e::none},
    };
    for (const auto& [sql, want] : cases) {
        CAPTURE(sql);
        CHECK(to_string(find_session_effect(sql)) == to_string(want));
    }
}

TEST_CASE("trackable SET / RESET statements") {
    using k = tracked_setting::kind;
    struct row {
        std::string sql;
        bool trackable;
        k what;
        std::string name;
    };
    const std::vector<row> rows = {
        {"SET search_path = a, b", true, k::set, "search_path"},
        {"SET TimeZone TO 'UTC'", true, k::set, "timezone"},
        {"set x.y = 1", true, k::set, "x.y"},
        {"SET \"Search_Path\" TO x", true, k::set, "search_path"},
        {"SET SESSION statement_timeout = 5", true, k::set, "statement_timeout"},
        {"SET TIME ZONE 'UTC'", true, k::set, "timezone"},
        {"SET statement_timeout TO DEFAULT", true, k::reset, "statement_timeout"},
        {"SET SESSION lock_timeout = DEFAULT", true, k::reset, "lock_timeout"},
        {"RESET ALL", true, k::reset_all, ""},
        {"RESET lock_timeout", true, k::reset, "lock_timeout"},
        {"SET ROLE bob", false, k::set, ""},
        {"SET SESSION AUTHORIZATION bob", false, k::set, ""},
        {"RESET ROLE", false, k::set, ""},
        {"SET LOCAL search_path = a", false, k::set, ""},
        {"SET TRANSACTION READ ONLY", false, k::set, ""},
        {"SET TIME ZONE LOCAL", true, k::reset, "timezone"},
        {"SET TIME ZONE DEFAULT", true, k::reset, "timezone"},
        {"SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE", true, k::set, "timezone"},
        {"SET NAMES 'UTF8'", true, k::set, "client_encoding"},
        {"SET NAMES DEFAULT", true, k::reset, "client_encoding"},
        {"SET SCHEMA 'fx'", true, k::set, "search_path"},
        {"SELECT 1", false, k::set, ""},
    };
    shape_lexer lexer;
    for (const auto& r : rows) {
        CAPTURE(r.sql);
        auto res = lexer.lex(r.sql);
        REQUIRE(res.statement_count() == 1);
        auto t = trackable_setting(res.statements()[0].shape);
        CHECK(t.has_value() == r.trackable);
        if (t && r.trackable) {
            CHECK(t->what == r.what);
            CHECK(t->name == r.name);
        }
    }
}
