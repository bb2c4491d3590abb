// Corpus: DDL (tables, indexes, views, functions, types, sequences, triggers, partitions) and
// DML (RETURNING, upserts, MERGE, data-modifying CTEs).
#include "corpus.hpp"

namespace shardgate::difftest {

std::vector<test_case> ddl_dml_cases() {
    std::vector<test_case> v;
    v.push_back(simple_case(
        "create_alter_drop_table",
        {"CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL DEFAULT 'n/a')",
         "ALTER TABLE t ADD COLUMN score numeric(6, 2) DEFAULT 0",
         "ALTER TABLE t RENAME COLUMN name TO title",
         "ALTER TABLE t ALTER COLUMN score TYPE float8", "INSERT INTO t (id) VALUES (1)",
         "SELECT * FROM t", "ALTER TABLE t DROP COLUMN score", "SELECT * FROM t", "DROP TABLE t",
         "SELECT * FROM t"}));
    v.push_back(
        simple_case("create_if_not_exists_and_drop_if_exists_notices",
                    {"CREATE TABLE IF NOT EXISTS t (a int)", "CREATE TABLE IF NOT EXISTS t (a int)",
                     "DROP TABLE IF EXISTS t", "DROP TABLE IF EXISTS t",
                     "DROP INDEX IF EXISTS nope", "DROP FUNCTION IF EXISTS nope(int)"}));
    v.push_back(simple_case(
        "indexes",
        {"CREATE TABLE t (a int, b text)",
         "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 200) g",
         "CREATE UNIQUE INDEX t_a ON t (a)", "CREATE INDEX t_b_lower ON t (lower(b)) WHERE a > 10",
         "CREATE INDEX IF NOT EXISTS t_a ON t (a)", "REINDEX INDEX t_a", "ANALYZE t",
         "SELECT count(*) FROM t WHERE a BETWEEN 5 AND 50", "DROP INDEX t_b_lower"}));
    v.push_back(simple_case(
        "views_and_materialized_views",
        {"CREATE TABLE t (a int)", "INSERT INTO t VALUES (1), (2), (3)",
         "CREATE VIEW v AS SELECT a * 2 AS doubled FROM t", "SELECT * FROM v ORDER BY 1",
         "CREATE MATERIALIZED VIEW mv AS SELECT sum(a) AS total FROM t", "INSERT INTO t VALUES (4)",
         "SELECT * FROM mv", "REFRESH MATERIALIZED VIEW mv", "SELECT * FROM mv",
         "CREATE OR REPLACE VIEW v AS SELECT a * 3 AS doubled FROM t", "DROP VIEW v",
         "DROP MATERIALIZED VIEW mv"}));
    v.push_back(simple_case(
        "sql_and_plpgsql_functions",
        {"CREATE FUNCTION add3(a int, b int, c int DEFAULT 0) RETURNS int LANGUAGE sql IMMUTABLE "
         "AS 'SELECT a + b + c'",
         "SELECT add3(1, 2), add3(1, 2, 3), add3(c => 10, a => 1, b => 1)",
         "CREATE FUNCTION fib(n int) RETURNS numeric LANGUAGE plpgsql AS $$ DECLARE a numeric := "
         "0; b numeric := 1; t numeric; BEGIN FOR i IN 1..n LOOP t := a + b; a := b; b := t; END "
         "LOOP; RETURN a; END $$",
         "SELECT fib(10), fib(100)",
         "CREATE FUNCTION pairs(n int) RETURNS TABLE (i int, sq int) LANGUAGE sql AS "
         "'SELECT g, g * g FROM generate_series(1, n) g'",
         "SELECT * FROM pairs(4)", "DROP FUNCTION add3, fib, pairs"}));
    v.push_back(simple_case(
        "procedures_and_call",
        {"CREATE TABLE t (a int)",
         "CREATE PROCEDURE ins(x int, INOUT total int DEFAULT NULL) LANGUAGE plpgsql AS $$ BEGIN "
         "INSERT INTO t VALUES (x); SELECT sum(a) INTO total FROM t; END $$",
         "CALL ins(5)", "CALL ins(7, NULL)",
         "CREATE PROCEDURE txn() LANGUAGE plpgsql AS $$ BEGIN INSERT INTO t VALUES (100); "
         "COMMIT; INSERT INTO t VALUES (200); ROLLBACK; END $$",
         "CALL txn()", "SELECT array_agg(a ORDER BY a) FROM t", "BEGIN", "CALL txn()",
         "ROLLBACK"}));
    v.push_back(
        simple_case("enum_and_composite_types",
                    {"CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
                     "CREATE TYPE pair AS (k text, v int)", "CREATE TABLE t (m mood, p pair)",
                     "INSERT INTO t VALUES ('happy', ROW('a', 1)), ('sad', ('b', 2))",
                     "SELECT m, p, (p).k, m > 'ok' AS better FROM t ORDER BY m",
                     "SELECT 'angry'::mood", "ALTER TYPE mood ADD VALUE 'angry' BEFORE 'sad'",
                     "SELECT enum_range(NULL::mood)", "DROP TABLE t", "DROP TYPE mood, pair"}));
    v.push_back(simple_case("domains", {"CREATE DOMAIN posint AS int CHECK (VALUE > 0) NOT NULL",
                                        "CREATE TABLE t (n posint)", "INSERT INTO t VALUES (3)",
                                        "INSERT INTO t VALUES (-3)", "INSERT INTO t VALUES (NULL)",
                                        "SELECT n, n + 1 FROM t", "SELECT 0::posint"}));
    v.push_back(with_transaction_pooling_difference(
        simple_case("sequences",
                    {"CREATE SEQUENCE s START 10 INCREMENT 5 MAXVALUE 30",
                     "SELECT nextval('s'), nextval('s')", "SELECT currval('s')",
                     "SELECT setval('s', 25)", "SELECT nextval('s')", "SELECT nextval('s')",
                     "ALTER SEQUENCE s CYCLE", "SELECT nextval('s')", "CREATE SEQUENCE fresh",
                     "SELECT currval('fresh')", "SELECT * FROM s", "DROP SEQUENCE s, fresh"}),
        "currval() is per server session; the next transaction may run on another"));
    v.push_back(simple_case(
        "serial_and_identity_columns",
        {"CREATE TABLE t (id serial PRIMARY KEY, big bigint GENERATED ALWAYS AS IDENTITY, "
         "txt text, len int GENERATED ALWAYS AS (length(txt)) STORED)",
         "INSERT INTO t (txt) VALUES ('a'), ('bcd') RETURNING *",
         "INSERT INTO t (big, txt) VALUES (5, 'x')",
         "INSERT INTO t (big, txt) OVERRIDING SYSTEM VALUE VALUES (50, 'y') RETURNING id, big",
         "UPDATE t SET len = 1"}));
    v.push_back(simple_case(
        "partitioned_table",
        {"CREATE TABLE m (k int, v text) PARTITION BY RANGE (k)",
         "CREATE TABLE m_low PARTITION OF m FOR VALUES FROM (MINVALUE) TO (100)",
         "CREATE TABLE m_high PARTITION OF m FOR VALUES FROM (100) TO (200)",
         "INSERT INTO m VALUES (1, 'a'), (150, 'b')", "INSERT INTO m VALUES (500, 'c')",
         "SELECT tableoid::regclass AS part, * FROM m ORDER BY k",
         "UPDATE m SET k = 120 WHERE k = 1", "SELECT tableoid::regclass, k FROM m ORDER BY k"}));
    v.push_back(simple_case(
        "triggers_raise_notices",
        {"CREATE TABLE t (a int, note text)",
         "CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE "
         "'% on % (a=%)', TG_OP, TG_TABLE_NAME, NEW.a; NEW.note := 'touched'; RETURN NEW; END $$",
         "CREATE TRIGGER t_bi BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION trg()",
         "INSERT INTO t (a) VALUES (1), (2) RETURNING *", "UPDATE t SET a = a * 10",
         "SELECT * FROM t ORDER BY a"}));
    v.push_back(simple_case(
        "truncate_comment_rename",
        {"CREATE TABLE t (a int)", "INSERT INTO t VALUES (1)", "COMMENT ON TABLE t IS 'a table'",
         "SELECT obj_description('t'::regclass)", "TRUNCATE t", "SELECT count(*) FROM t",
         "ALTER TABLE t RENAME TO t2", "SELECT * FROM t2", "TRUNCATE t"}));
    v.push_back(simple_case(
        "create_table_as_and_select_into",
        {"CREATE TABLE t AS SELECT g AS n, g * g AS sq FROM generate_series(1, 5) g",
         "SELECT n, sq INTO t2 FROM t WHERE n > 3", "SELECT * FROM t2",
         "CREATE TABLE t3 AS SELECT * FROM t WITH NO DATA", "SELECT count(*) FROM t3"}));
    v.push_back(
        simple_case("vacuum_and_analyze",
                    {"CREATE TABLE t (a int)", "INSERT INTO t SELECT generate_series(1, 100)",
                     "DELETE FROM t WHERE a % 2 = 0", "VACUUM t", "ANALYZE t", "VACUUM (ANALYZE) t",
                     "BEGIN", "VACUUM t", "ROLLBACK"}));
    v.push_back(simple_case(
        "insert_update_delete_returning",
        {"CREATE TABLE t (id int PRIMARY KEY, v text)",
         "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c') RETURNING id, upper(v) AS up",
         "UPDATE t SET v = v || '!' WHERE id >= 2 RETURNING *",
         "DELETE FROM t WHERE id = 1 RETURNING v, id", "UPDATE t SET v = 'none' WHERE false",
         "DELETE FROM t RETURNING *"}));
    v.push_back(simple_case(
        "insert_on_conflict",
        {"CREATE TABLE t (k text PRIMARY KEY, n int)", "INSERT INTO t VALUES ('a', 1)",
         "INSERT INTO t VALUES ('a', 5) ON CONFLICT DO NOTHING RETURNING *",
         "INSERT INTO t VALUES ('a', 5), ('b', 2) ON CONFLICT (k) DO UPDATE SET n = t.n + "
         "excluded.n RETURNING k, n",
         "INSERT INTO t VALUES ('a', 1), ('a', 2) ON CONFLICT (k) DO UPDATE SET n = 0"}));
    v.push_back(simple_case(
        "merge_statement",
        {"CREATE TABLE t (k int PRIMARY KEY, n int)", "INSERT INTO t VALUES (1, 10), (2, 20)",
         "MERGE INTO t USING (VALUES (2, 5), (3, 7)) AS s(k, n) ON t.k = s.k WHEN MATCHED THEN "
         "UPDATE SET n = t.n + s.n WHEN NOT MATCHED THEN INSERT VALUES (s.k, s.n)",
         "SELECT * FROM t ORDER BY k"}));
    v.push_back(simple_case(
        "data_modifying_cte",
        {"CREATE TABLE src (a int)", "CREATE TABLE dst (a int)",
         "INSERT INTO src SELECT generate_series(1, 6)",
         "WITH moved AS (DELETE FROM src WHERE a % 2 = 0 RETURNING a) INSERT INTO dst SELECT a "
         "FROM moved RETURNING a",
         "SELECT (SELECT count(*) FROM src) AS left_over, (SELECT sum(a) FROM dst) AS moved"}));
    v.push_back(simple_case(
        "foreign_keys_cascade",
        {"CREATE TABLE p (id int PRIMARY KEY)",
         "CREATE TABLE c (id int, pid int REFERENCES p ON DELETE CASCADE)",
         "INSERT INTO p VALUES (1), (2)", "INSERT INTO c VALUES (10, 1), (20, 2), (21, 2)",
         "DELETE FROM p WHERE id = 2", "SELECT * FROM c"}));
    v.push_back(simple_case(
        "rules_and_policies",
        {"CREATE TABLE t (a int, owner text DEFAULT current_user)",
         "ALTER TABLE t ENABLE ROW LEVEL SECURITY", "ALTER TABLE t FORCE ROW LEVEL SECURITY",
         "CREATE POLICY only_small ON t USING (a < 10)", "INSERT INTO t VALUES (1), (50)",
         "SELECT a, owner FROM t", "CREATE RULE no_del AS ON DELETE TO t DO INSTEAD NOTHING",
         "DELETE FROM t"}));
    v.push_back(
        simple_case("unicode_identifiers",
                    {"CREATE TABLE \"données\" (\"clé\" int, \"値\" text, \"🙂\" bool)",
                     "INSERT INTO \"données\" VALUES (1, 'ひらがな', true)",
                     "SELECT * FROM \"données\"", "SELECT \"nope\" FROM \"données\""}));
    v.push_back(simple_case(
        "lateral_and_grouping_sets",
        {"CREATE TABLE s (region text, product text, amount int)",
         "INSERT INTO s VALUES ('n', 'a', 1), ('n', 'b', 2), ('s', 'a', 3), ('s', 'a', 4)",
         "SELECT region, product, sum(amount) FROM s GROUP BY ROLLUP (region, product) "
         "ORDER BY 1 NULLS LAST, 2 NULLS LAST",
         "SELECT r.region, x.top FROM (SELECT DISTINCT region FROM s) r, LATERAL (SELECT "
         "max(amount) "
         "AS top FROM s WHERE s.region = r.region) x ORDER BY 1"}));
    return v;
}

}  // namespace shardgate::difftest
