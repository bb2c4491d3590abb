// Statement classes: access and reason, functions, transaction modes, routing settings (with
// literal slots read per execution), the shape cache in front of the parser.
#include "shardgate/router/classify.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace shardgate::router;

namespace {

constexpr auto R = statement_access::read;
constexpr auto W = statement_access::write;
constexpr auto S = statement_access::session;
using wr = write_reason;

struct class_case {
    std::string_view sql;
    statement_access access;
    write_reason reason;
};

const statement_class& only(const classified_query& q) {
    REQUIRE(q.size() == 1);
    return q[0];
}

}  // namespace

TEST_CASE("access and reason of single statements") {
    const std::vector<class_case> cases = {
        {"SELECT 1", R, wr::none},
        {"VALUES (1), (2)", R, wr::none},
        {"TABLE t", R, wr::none},
        {"SHOW search_path", R, wr::none},
        {"EXPLAIN SELECT * FROM t", R, wr::none},
        {"EXPLAIN INSERT INTO t VALUES (1)", R, wr::none},
        {"EXPLAIN (ANALYZE off) DELETE FROM t", R, wr::none},
        {"EXPLAIN (ANALYZE false, COSTS off) UPDATE t SET a = 1", R, wr::none},
        {"EXPLAIN ANALYZE SELECT * FROM t", R, wr::none},
        {"EXPLAIN ANALYZE INSERT INTO t VALUES (1)", W, wr::explain_analyze_write},
        {"EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1", W, wr::explain_analyze_write},
        {"EXPLAIN (ANALYZE on) DELETE FROM t", W, wr::explain_analyze_write},
        {"EXPLAIN (ANALYZE 'off') DELETE FROM t", W, wr::explain_analyze_write},
        {"EXPLAIN (ANALYZE E'off') DELETE FROM t", W, wr::explain_analyze_write},
        {"EXPLAIN (ANALYZE 0) DELETE FROM t", W, wr::explain_analyze_write},
        {"EXPLAIN ANALYZE SELECT nextval('s')", W, wr::explain_analyze_write},
        {"EXPLAIN SELECT nextval('s')", R, wr::none},
        {"EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1", W, wr::explain_analyze_write},
        {"EXPLAIN EXECUTE p(1)", W, wr::prepared_sql},
        {"COPY t TO STDOUT", R, wr::none},
        {"COPY t (a, b) TO STDOUT WITH (FORMAT csv)", R, wr::none},
        {"COPY (SELECT a FROM t WHERE b > 1) TO STDOUT", R, wr::none},
        {"COPY (SELECT nextval('s')) TO STDOUT", W, wr::write_function},
        {"COPY (INSERT INTO t VALUES (1) RETURNING a) TO STDOUT", W, wr::dml},
        {"COPY t FROM STDIN", W, wr::copy_from},
        {"COPY t FROM '/tmp/t.csv'", W, wr::copy_from},
        {"COPY t TO '/tmp/t.csv'", W, wr::copy_server_file},
        {"COPY t TO PROGRAM 'gzip > /tmp/t.gz'", W, wr::copy_server_file},
        {"INSERT INTO t VALUES (1)", W, wr::dml},
        {"UPDATE t SET a = 1", W, wr::dml},
        {"DELETE FROM t", W, wr::dml},
        {"MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", W, wr::dml},
        {"TRUNCATE t", W, wr::dml},
        {"CREATE TABLE t (a int)", W, wr::ddl},
        {"ALTER TABLE t ADD COLUMN b int", W, wr::ddl},
        {"DROP TABLE t", W, wr::ddl},
        {"GRANT SELECT ON t TO bob", W, wr::ddl},
        {"CREATE TABLE x AS SELECT * FROM t", W, wr::ddl},
        {"REFRESH MATERIALIZED VIEW mv", W, wr::ddl},
        {"SELECT * INTO x FROM t", W, wr::select_into},
        {"SELECT * FROM t FOR UPDATE", W, wr::locking_clause},
        {"SELECT * FROM t FOR NO KEY UPDATE", W, wr::locking_clause},
        {"SELECT * FROM t FOR SHARE", W, wr::locking_clause},
        {"SELECT * FROM t FOR KEY SHARE SKIP LOCKED", W, wr::locking_clause},
        {"SELECT * FROM (SELECT * FROM t FOR UPDATE) s", W, wr::locking_clause},
        {"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", W, wr::cte_dml},
        {"WITH r AS (SELECT 1) SELECT * FROM r", R, wr::none},
        {"SELECT nextval('s')", W, wr::write_function},
        {"SELECT pg_catalog.setval('s', 1)", W, wr::write_function},
        {"SELECT pg_try_advisory_xact_lock(1)", W, wr::write_function},
        {"SELECT audit_write(1)", R, wr::none},  // volatile or not: the catalog says (route.hpp)
        {"LOCK TABLE t IN ACCESS SHARE MODE", W, wr::lock},
        {"DO $$ BEGIN PERFORM 1; END $$", W, wr::do_block},
        {"CALL p(1)", W, wr::call},
        {"PREPARE q AS SELECT 1", W, wr::prepared_sql},
        {"EXECUTE q", W, wr::prepared_sql},
        {"DEALLOCATE q", W, wr::prepared_sql},
        {"VACUUM t", W, wr::utility},
        {"CHECKPOINT", W, wr::utility},
        {"LISTEN ch", W, wr::utility},
        {"NOTIFY ch, 'x'", W, wr::utility},
        {"UNLISTEN *", S, wr::session_setting},
        {"BEGIN", S, wr::transaction_control},
        {"COMMIT PREPARED 'g'", W, wr::transaction_control},
        {"SET TRANSACTION READ ONLY", S, wr::transaction_control},
        {"SET search_path = a, b", S, wr::session_setting},
        {"RESET ALL", S, wr::session_setting},
        {"DISCARD ALL", S, wr::session_setting},
        {"SET CONSTRAINTS ALL DEFERRED", S, wr::session_setting},
        {"FETCH 10 FROM c", S, wr::cursor},
        {"CLOSE c", S, wr::cursor},
        {"DECLARE c CURSOR FOR SELECT * FROM t", R, wr::none},
        {"DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE", W, wr::locking_clause},
        {"SELEC 1", W, wr::unparsable},
        {"SELECT 'open", W, wr::unparsable},
    };
    for (const auto& c : cases) {
        CAPTURE(c.sql);
        const auto q = classify_query(c.sql);
        const statement_class& k = only(q);
        CHECK(to_string(k.access) == to_string(c.access));
        CHECK(to_string(k.reason) == to_string(c.reason));
    }
}

TEST_CASE("functions are listed as written, once, from every part of the statement") {
    const auto q = classify_query(
        "SELECT lower(a), s.f(b), \"MixedCase\"(1), lower(c) FROM t, generate_series(1, 3) g "
        "WHERE audit(a) AND EXISTS (SELECT 1 FROM u WHERE u.x = nextval('q')) "
        "ORDER BY extract(year FROM now())");
    const auto& k = only(q);
    const std::vector<std::string> want = {"lower", "s.f",     "MixedCase", "generate_series",
                                           "audit", "nextval", "now"};
    CHECK(k.functions == want);
    CHECK(k.reason == write_reason::write_function);
    CHECK(only(classify_query("CALL s.proc(1)")).functions == std::vector<std::string>{"s.proc"});
    // EXPLAIN without ANALYZE runs nothing, so it calls nothing.
    CHECK(only(classify_query("EXPLAIN SELECT audit(1)")).functions.empty());
    CHECK(only(classify_query("EXPLAIN ANALYZE SELECT audit(1)")).functions ==
          std::vector<std::string>{"audit"});
}

TEST_CASE("transaction modes") {
    struct row {
        std::string_view sql;
        txn_kind kind;
        txn_modes modes;
        bool chain = false;
    };
    using t = tristate;
    using iso = isolation_level;
    const std::vector<row> rows = {
        {"BEGIN", txn_kind::begin, {}},
        {"START TRANSACTION READ ONLY", txn_kind::begin, {t::on, iso::unset, t::unset}},
        {"BEGIN READ WRITE", txn_kind::begin, {t::off, iso::unset, t::unset}},
        {"BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE",
         txn_kind::begin,
         {t::on, iso::serializable, t::on}},
        {"BEGIN ISOLATION LEVEL REPEATABLE READ",
         txn_kind::begin,
         {t::unset, iso::repeatable_read}},
        {"SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
         txn_kind::set_transaction,
         {t::unset, iso::read_committed}},
        {"COMMIT", txn_kind::commit, {}},
        {"END", txn_kind::commit, {}},
        {"COMMIT AND CHAIN", txn_kind::commit, {}, true},
        {"ABORT", txn_kind::rollback, {}},
        {"ROLLBACK AND CHAIN", txn_kind::rollback, {}, true},
        {"SAVEPOINT a", txn_kind::savepoint, {}},
        {"RELEASE SAVEPOINT a", txn_kind::release, {}},
        {"ROLLBACK TO a", txn_kind::rollback_to, {}},
        {"PREPARE TRANSACTION 'g'", txn_kind::prepare, {}},
        {"ROLLBACK PREPARED 'g'", txn_kind::rollback_prepared, {}},
    };
    for (const auto& r : rows) {
        CAPTURE(r.sql);
        const auto q = classify_query(r.sql);
        const auto& k = only(q);
        CHECK(to_string(k.txn.kind) == to_string(r.kind));
        CHECK(k.txn.modes == r.modes);
        CHECK(k.txn.chain == r.chain);
    }
}

TEST_CASE("routing settings: names, scopes, values inline or from a literal slot") {
    struct row {
        std::string_view sql;
        routing_setting name;
        bool reset;
        bool local;
        std::string_view value;
        bool from_literal;
    };
    using rs = routing_setting;
    const std::vector<row> rows = {
        {"SET shardgate.role = 'replica'", rs::role, false, false, "replica", true},
        {"SET shardgate.role TO replica", rs::role, false, false, "replica", false},
        {"SET LOCAL shardgate.role = \"primary\"", rs::role, false, true, "primary", false},
        {"SET SESSION SHARDGATE.ROLE = auto", rs::role, false, false, "auto", false},
        {"RESET shardgate.role", rs::role, true, false, "", false},
        {"SET shardgate.role TO DEFAULT", rs::role, true, false, "", false},
        {"SET shardgate.consistency = 'session'", rs::consistency, false, false, "session", true},
        {"SET shardgate.min_lsn = '0/16B3748'", rs::min_lsn, false, false, "0/16B3748", true},
        {"SET default_transaction_read_only = on", rs::default_read_only, false, false, "on",
         false},
        {"SET default_transaction_read_only = 1", rs::default_read_only, false, false, "1", true},
        {"SET default_transaction_isolation = 'serializable'", rs::default_isolation, false, false,
         "serializable", true},
        {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", rs::default_read_only, false,
         false, "on", false},
        {"SET transaction_read_only = off", rs::txn_read_only, false, false, "off", false},
        {"SET transaction_isolation = 'serializable'", rs::txn_isolation, false, false,
         "serializable", true},
        {"RESET ALL", rs::all, true, false, "", false},
        {"DISCARD ALL", rs::all, true, false, "", false},
    };
    for (const auto& r : rows) {
        CAPTURE(r.sql);
        const auto q = classify_query(r.sql);
        const auto& k = only(q);
        REQUIRE(k.settings.size() == 1);
        const setting_change& ch = k.settings[0];
        CHECK(to_string(ch.name) == to_string(r.name));
        CHECK(ch.reset == r.reset);
        CHECK(ch.local == r.local);
        CHECK((ch.slot >= 0) == r.from_literal);
        CHECK(setting_value(ch, q.shape(0)) == r.value);
    }
    CHECK(only(classify_query("SET search_path = x")).settings.empty());
    const auto neg = classify_query("SET shardgate.min_lsn = -1");
    CHECK(only(neg).settings.at(0).negated);
}

TEST_CASE("temporary objects") {
    CHECK(only(classify_query("CREATE TEMP TABLE tt (a int)")).creates_temp);
    CHECK(only(classify_query("CREATE TEMPORARY VIEW v AS SELECT 1")).creates_temp);
    CHECK(only(classify_query("SELECT * INTO TEMP tt FROM t")).creates_temp);
    CHECK(only(classify_query("CREATE TEMP TABLE tt AS SELECT 1")).creates_temp);
    CHECK_FALSE(only(classify_query("CREATE TABLE t (a int)")).creates_temp);
    CHECK_FALSE(only(classify_query("SELECT * FROM pg_temp.tt")).creates_temp);
    CHECK(only(classify_query("DISCARD TEMP")).drops_temp);
    CHECK(only(classify_query("DISCARD ALL")).drops_temp);
}

TEST_CASE("multi-statement strings give one class per statement") {
    const auto q = classify_query("BEGIN; SELECT 1; INSERT INTO t VALUES (1);; COMMIT;");
    REQUIRE(q.size() == 4);
    CHECK(q[0].txn.kind == txn_kind::begin);
    CHECK(q[1].read());
    CHECK(q[2].reason == write_reason::dml);
    CHECK(q[3].txn.kind == txn_kind::commit);
    const auto bad = classify_query("SELECT 1; SELECT 'open");
    REQUIRE(bad.size() == 1);  // the lexer refuses the whole text
    CHECK(bad[0].reason == write_reason::unparsable);
    CHECK(classify_query("").size() == 0);
    CHECK(classify_query(" ; -- nothing\n").size() == 0);
}

TEST_CASE("the cache parses a shape once; values come from each execution's literals") {
    classifier c(16);
    const auto& a = c.classify("SET shardgate.role = 'replica'");
    REQUIRE(a.size() == 1);
    CHECK(setting_value(a[0].settings.at(0), a.shape(0)) == "replica");
    const auto& b = c.classify("SET  shardgate.role='primary'");
    CHECK(setting_value(b[0].settings.at(0), b.shape(0)) == "primary");
    CHECK(c.stats().misses == 1);
    CHECK(c.stats().hits == 1);
    for (int i = 0; i < 8; ++i) {
        (void)c.classify("SELECT * FROM t WHERE id = " + std::to_string(i));
    }
    CHECK(c.stats().misses == 2);
    CHECK(c.stats().hits == 8);
    CHECK(c.hit_rate() == doctest::Approx(0.8));
    // A prepared statement is classified once, at Parse, and owns its result.
    classified_query p = c.classify_prepared("SELECT * FROM t WHERE id = $1 FOR UPDATE");
    (void)c.classify("SELECT 2");
    CHECK(p[0].reason == write_reason::locking_clause);
    // Unparsable shapes are cached too.
    (void)c.classify("SELEC 1");
    (void)c.classify("SELEC 2");
    CHECK(c.stats().misses == 5);
}

TEST_CASE("Postgres booleans and the built-in write functions") {
    for (std::string_view t : {"on", "ON", "true", "t", "yes", "y", "1", "tRu"}) {
        CAPTURE(t);
        CHECK(parse_pg_bool(t) == std::optional<bool>(true));
    }
    for (std::string_view f : {"off", "of", "false", "f", "no", "n", "0"}) {
        CAPTURE(f);
        CHECK(parse_pg_bool(f) == std::optional<bool>(false));
    }
    for (std::string_view bad : {"", "o", "2", "onn", "truth", "-1"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_pg_bool(bad).has_value());
    }
    CHECK(builtin_write_function("nextval"));
    CHECK(builtin_write_function("pg_catalog.pg_advisory_xact_lock_shared"));
    CHECK(builtin_write_function("lo_unlink"));
    CHECK_FALSE(builtin_write_function("lo_get"));
    CHECK_FALSE(builtin_write_function("random"));
    CHECK_FALSE(builtin_write_function("nextvalue"));
}

TEST_CASE(
    "statements nested too deeply for the parser's recursion go unparsed, and nothing crashes") {
    auto repeat = [](std::string_view s, int n) {
        std::string out;
        for (int i = 0; i < n; ++i)
            out += s;
        return out;
    };
    const int n = 20000;
    const std::vector<std::string> deep = {
        "SELECT 1" + repeat("+1", n),
        "SELECT " + repeat("(SELECT ", 3000) + "1" + repeat(")", 3000),
        "SELECT " + repeat("lower(", 5000) + "'x'" + repeat(")", 5000),
        "SELECT * FROM t0" + repeat(" JOIN t ON true", n),
        "SELECT 1" + repeat(" UNION SELECT 1", n),
        "SELECT " + repeat("NOT ", n) + "true",
        "SELECT " + repeat("CASE WHEN a THEN 1 ELSE ", 3000) + "0" + repeat(" END", 3000),
        "SELECT 1" + repeat("::int", n),
    };
    for (const auto& sql : deep) {
        CAPTURE(sql.substr(0, 40));
        const auto q = classify_query(sql);
        REQUIRE(q.size() == 1);
        CHECK(q[0].reason == write_reason::too_complex);
    }
    // Long but flat statements are parsed as usual.
    const std::vector<std::pair<std::string, write_reason>> flat = {
        {"INSERT INTO t VALUES (1, 'a')" + repeat(", (1, 'a')", 5000), write_reason::dml},
        {"SELECT * FROM t WHERE id IN (1" + repeat(", 1", 10000) + ")", write_reason::none},
        {"SELECT * FROM t WHERE a = 1" + repeat(" AND a = 1 OR b > 2", 2000), write_reason::none},
        {"SELECT CASE" + repeat(" WHEN a = 1 THEN 'x'", 2000) + " END FROM t", write_reason::none},
        {"SELECT * FROM t0" + repeat(" JOIN t USING (id)", 40), write_reason::none},
    };
    for (const auto& row : flat) {
        CAPTURE(row.first.substr(0, 40));
        const auto q = classify_query(row.first);
        REQUIRE(q.size() == 1);
        CHECK(q[0].reason == row.second);
    }
}
