// The real psql through shardgate prints byte for byte what it prints against Postgres itself.
#include <doctest/doctest.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
namespace fs = std::filesystem;

namespace {

struct client_result {
    int exit_code = -1;
    bool timed_out = false;
    std::string out;
    std::string err;
};

// Runs a client binary with a clean environment (env -i: no PG* variables, no ~/.pgpass, no
// psqlrc) plus `env`, in `cwd`, with stdout and stderr captured separately.
client_result run_client(const fs::path& cwd, const std::vector<std::string>& env,
                         const std::vector<std::string>& argv) {
    static int seq = 0;
    const fs::path base = cwd.parent_path();
    const std::string n = std::to_string(++seq);
    const fs::path out = base / ("stdout." + n);
    const fs::path err = base / ("stderr." + n);
    std::vector<std::string> cmd{"env",
                                 "-i",
                                 "PATH=/usr/bin:/bin",
                                 "LC_ALL=C",
                                 "HOME=" + base.string(),
                                 "PGPASSFILE=" + (base / "no-pgpass").string(),
                                 "PGSERVICEFILE=" + (base / "no-pg-service").string(),
                                 "PGSYSCONFDIR=" + base.string(),
                                 "PGCONNECT_TIMEOUT=10"};
    cmd.insert(cmd.end(), env.begin(), env.end());
    cmd.insert(cmd.end(), {"/bin/sh", "-c", "o=$1; e=$2; shift 2; exec \"$@\" >\"$o\" 2>\"$e\"",
                           "sh", out.string(), err.string()});
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    const command_result r = run_command(cmd, {.timeout = 60s, .cwd = cwd});
    client_result res{r.exit_code, r.timed_out, read_file(out), read_file(err)};
    if (!r.output.empty()) res.err += r.output;  // env or sh complaining
    fs::remove(out);
    fs::remove(err);
    return res;
}

// Where two outputs first differ, with a little context, for failure messages.
std::string first_difference(const std::string& a, const std::string& b) {
    std::size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i])
        ++i;
    if (i == a.size() && i == b.size()) return "identical";
    const std::size_t from = i < 200 ? 0 : i - 200;
    return "at byte " + std::to_string(i) + "\n--- direct:\n" + a.substr(from, 400) +
           "\n--- shardgate:\n" + b.substr(from, 400);
}

std::string psql_binary() {
    return (pg_bindir() / "psql").string();
}

std::string conninfo(int port, const std::string& extra = "") {
    return "host=127.0.0.1 port=" + std::to_string(port) + " dbname=app user=alice" +
           (extra.empty() ? "" : " " + extra);
}

// Settings that make the output independent of the machine; PGOPTIONS/PGTZ/PGDATESTYLE reach
// the server in the startup packet, so they also check that shardgate forwards it.
std::vector<std::string> session_env(const std::string& password) {
    return {"PGPASSWORD=" + password,
            "PGCLIENTENCODING=UTF8",
            "PGTZ=UTC",
            "PGDATESTYLE=ISO, YMD",
            "PGAPPNAME=clients_psql_test",
            "PGOPTIONS=-c intervalstyle=iso_8601 -c extra_float_digits=0"};
}

struct fixture {
    pg_topology topo = pg_topology::builder().replicas(split_replicas()).build();
    std::unique_ptr<shardgate_process> sg;
    work_dir files{"shardgate-psql"};

    fixture() {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        wait_for_split(topo);
        shardgate_config_options o;
        o.users = {{"alice", "secret"}};
        o.server_tls = "disable";
        o.databases = {{.name = "app", .replicas = split_replicas() > 0}};
        sg = std::make_unique<shardgate_process>(
            shardgate_options{.config_toml = render_shardgate_config(topo, o)});
    }
    pg_server& pg() { return topo.shard(0).primary(); }
    // A fresh, empty database app: both runs of a script start from the same state.
    void reset_app() {
        pg().exec("DROP DATABASE IF EXISTS app WITH (FORCE)");
        topo.create_database("app", "alice");
    }
    fs::path subdir(const std::string& name) {
        const fs::path p = files.path() / name;
        fs::create_directories(p);
        return p;
    }
};

// Input files for \copy FROM, already in the exact form COPY TO writes them, so a round trip
// must give back the same bytes.
const char* const items_text =
    "1\tplain\t1.50\t{a,b}\n"
    "2\twith\\ttab, \\\\ backslash and \\nnewline\t\\N\t\\N\n"
    "3\tunicode \xc3\xa9 \xe2\x9c\x93\t-0.25\t{}\n"
    "4\t\t0.00\t{\"x y\",z}\n";

const char* const items_csv =
    "id,name,price,tags\n"
    "1,plain,1.50,\"{a,b}\"\n"
    "2,\"comma, \"\"quoted\"\"\",,{}\n"
    "3,\"multi\nline\",0.00,\n"
    "4,\"\",2.00,{x}\n";

const char* const script = R"SQL(
\set ON_ERROR_STOP 0
SHOW TimeZone;
SHOW DateStyle;
SHOW IntervalStyle;
SHOW application_name;
SELECT interval '1 day 2 hours', timestamptz '2024-03-04 05:06:07+02', 1.0::float8 / 3;
-- DDL
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[]);
CREATE INDEX items_name ON items (name);
ALTER TABLE items ADD COLUMN note text DEFAULT 'none';
CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 2;
COMMENT ON TABLE items IS 'things to sell';
\d items
-- DML
INSERT INTO items (id, name, price, tags)
  VALUES (1, 'apple', 1.25, '{red,fruit}'), (2, 'bread', 3.50, NULL),
         (3, 'tab	and "quote"', 0, '{}');
UPDATE items SET note = 'updated' WHERE id = 2;
DELETE FROM items WHERE id = 3 RETURNING *;
INSERT INTO items (id, name) VALUES (5, 'five') RETURNING id, name, note;
SELECT * FROM items ORDER BY id;
SELECT * FROM cheap ORDER BY id;
-- COPY ... FROM STDIN inline, text then csv, then one with bad data
COPY items (id, name, price, tags, note) FROM STDIN;
10	copy ten	10.00	{a,b}	\N
11	copy eleven	11.50	\N	with\ttab
\.
COPY items (id, name, price) FROM STDIN (FORMAT csv);
20,"csv, twenty",20
21,"quote ""21""",
\.
COPY items (id, name) FROM STDIN;
30	fine
notanumber	bad
\.
COPY (SELECT id, name, price FROM items ORDER BY id) TO STDOUT (FORMAT csv, HEADER);
-- \copy with files: text and csv, in and out
CREATE TABLE t_text (id int, name text, price numeric(10,2), tags text[]);
CREATE TABLE t_csv (LIKE t_text);
\copy t_text FROM 'items_in.txt'
\copy t_csv FROM 'items_in.csv' WITH (FORMAT csv, HEADER)
\copy (SELECT * FROM t_text ORDER BY id) TO 'items_out.txt'
\copy (SELECT * FROM t_csv ORDER BY id) TO 'items_out.csv' WITH (FORMAT csv, HEADER)
\copy t_text FROM 'no_such_file.txt'
SELECT id, name, price, tags FROM t_text ORDER BY id;
SELECT id, name, price IS NULL AS no_price, tags FROM t_csv ORDER BY id;
-- \gset and \gexec
SELECT count(*) AS n_items, max(id) AS max_id FROM items \gset
\echo items: :n_items max: :max_id
SELECT :max_id + 1 AS next_id;
SELECT format('CREATE TABLE gx_%s (v int)', g) FROM generate_series(1, 3) g \gexec
SELECT format('INSERT INTO gx_%s VALUES (%s)', g, g * 10) FROM generate_series(1, 3) g \gexec
SELECT 'gx_1' AS t, v FROM gx_1 UNION ALL SELECT 'gx_3', v FROM gx_3 ORDER BY 1;
-- reconnect mid-script (quietly: the message names the port), a new login through the same path
\set QUIET on
\c
\set QUIET off
SHOW application_name;
SELECT count(*) FROM gx_1;
-- several statements on one line, split by psql, then sent as one Query message with \;
SELECT 1 AS one; SELECT 'two' AS two; INSERT INTO gx_1 VALUES (11); SELECT count(*) FROM gx_1;
SELECT 'a' AS first \; SELECT 'b' AS second \; UPDATE gx_2 SET v = v + 1 \; SELECT v FROM gx_2;
-- transactions, savepoints, errors while ON_ERROR_STOP is off
BEGIN;
INSERT INTO gx_3 VALUES (31);
SAVEPOINT sp;
INSERT INTO gx_3 VALUES ('x');
ROLLBACK TO sp;
INSERT INTO gx_3 VALUES (32);
COMMIT;
SELECT v FROM gx_3 ORDER BY v;
BEGIN;
SELECT 1 / 0;
SELECT 'in a failed transaction';
ROLLBACK;
SELECT * FROM no_such_table;
INSERT INTO items (id, name) VALUES (1, 'duplicate');
SELECT 1 +;
DO $$ BEGIN RAISE NOTICE 'notice from DO: %', 42; RAISE WARNING 'careful'; END $$;
DO $$ BEGIN
  RAISE EXCEPTION 'custom failure' USING DETAIL = 'some detail', HINT = 'a hint', ERRCODE = 'P0042';
END $$;
\set VERBOSITY verbose
SELECT 'abc'::int;
\set VERBOSITY default
-- output formats
\x on
SELECT id, name, tags FROM items WHERE id < 3 ORDER BY id;
\x off
\pset format unaligned
SELECT g, md5(g::text), repeat('x', g % 7) FROM generate_series(1, 3000) g;
\pset format aligned
SELECT NULL AS n, '' AS empty, E'line1\nline2' AS multi, 'üñí' AS utf8;
-- ON_ERROR_STOP on: the next error ends psql with exit code 3
\set ON_ERROR_STOP 1
SELECT 'still running';
SELECT no_such_function();
SELECT 'never printed';
)SQL";

}  // namespace

TEST_CASE("a psql script prints the same through shardgate as against Postgres") {
    fixture f;
    const fs::path script_file = f.files.path() / "script.sql";
    write_file(script_file, script);

    auto run_script = [&](const std::string& dir, int port) {
        const fs::path cwd = f.subdir(dir);
        write_file(cwd / "items_in.txt", items_text);
        write_file(cwd / "items_in.csv", items_csv);
        return run_client(
            cwd, session_env("secret"),
            {psql_binary(), "-X", "-a", "-d", conninfo(port), "-f", script_file.string()});
    };
    const client_result direct = run_script("direct", f.pg().port());
    f.reset_app();
    const client_result proxied = run_script("proxy", f.sg->port());

    // The script ran as intended (against Postgres itself)...
    CHECK_FALSE(direct.timed_out);
    CHECK(direct.exit_code == 3);
    CHECK(direct.out.find("items: 7 max: 21") != std::string::npos);
    CHECK(direct.out.find("never printed") == std::string::npos);
    CHECK(direct.err.find("notice from DO: 42") != std::string::npos);
    CHECK(direct.err.find("function no_such_function() does not exist") != std::string::npos);
    INFO("stdout: " << first_difference(direct.out, proxied.out));
    INFO("stderr: " << first_difference(direct.err, proxied.err));
    // ...and gave exactly the same through shardgate.
    CHECK_FALSE(proxied.timed_out);
    CHECK(proxied.exit_code == 3);
    CHECK(proxied.out.size() == direct.out.size());
    CHECK(proxied.out == direct.out);
    CHECK(proxied.err == direct.err);

    // \copy round trips: what came in is what goes out, direct and through shardgate.
    for (const std::string dir : {"direct", "proxy"}) {
        CAPTURE(dir);
        const fs::path d = f.files.path() / dir;
        CHECK(read_file(d / "items_out.txt") == items_text);
        CHECK(read_file(d / "items_out.csv") == items_csv);
    }
    CHECK(f.sg->running());
}

TEST_CASE("psql -c with sslmode=disable, and a wrong password, as against Postgres") {
    fixture f;
    const fs::path cwd = f.subdir("c");
    const std::vector<std::string> queries{
        "-c", "SELECT current_user, current_setting('server_version') AS v, 6 * 7 AS answer",
        "-c", "SELECT current_setting('TimeZone'), current_setting('application_name')",
        "-c", "SELECT 1 / 0",  // with several -c, psql goes on after an error
        "-c", "SELECT 'after the error'"};

    auto run_c = [&](int port, const std::string& password) {
        std::vector<std::string> argv{psql_binary(), "-X", "-d", conninfo(port, "sslmode=disable")};
        argv.insert(argv.end(), queries.begin(), queries.end());
        return run_client(cwd, session_env(password), argv);
    };
    const client_result direct = run_c(f.pg().port(), "secret");
    const client_result proxied = run_c(f.sg->port(), "secret");
    CHECK(direct.exit_code == 0);  // the exit code is the last command's
    CHECK(direct.out.find("alice") != std::string::npos);
    CHECK(direct.out.find("after the error") != std::string::npos);
    CHECK(direct.err.find("division by zero") != std::string::npos);
    CHECK(proxied.exit_code == direct.exit_code);
    CHECK(proxied.out == direct.out);
    CHECK(proxied.err == direct.err);

    // A wrong password: exit code 2 and Postgres' own message (only the port differs).
    const std::regex port_re("port [0-9]+");
    const client_result bad_direct = run_c(f.pg().port(), "wrong");
    const client_result bad_proxied = run_c(f.sg->port(), "wrong");
    CHECK(bad_direct.exit_code == 2);
    CHECK(bad_direct.err.find("FATAL:  password authentication failed for user \"alice\"") !=
          std::string::npos);
    CHECK(bad_proxied.exit_code == 2);
    CHECK(bad_proxied.out == "");
    CHECK(std::regex_replace(bad_proxied.err, port_re, "port N") ==
          std::regex_replace(bad_direct.err, port_re, "port N"));

    // Other refused logins: an unknown database, and sslmode=require against a server (or
    // shardgate) without TLS. Same exit code and message as Postgres, up to the port.
    auto refused = [&](int port, const std::string& db, const std::string& sslmode) {
        return run_client(cwd, session_env("secret"),
                          {psql_binary(), "-X", "-d",
                           "host=127.0.0.1 port=" + std::to_string(port) +
                               " user=alice dbname=" + db + " sslmode=" + sslmode,
                           "-c", "SELECT 1"});
    };
    for (const auto& [db, sslmode] : std::vector<std::pair<std::string, std::string>>{
             {"no_such_db", "disable"}, {"app", "require"}}) {
        CAPTURE(db);
        const client_result d = refused(f.pg().port(), db, sslmode);
        const client_result p = refused(f.sg->port(), db, sslmode);
        CHECK(d.exit_code == 2);
        CHECK(p.exit_code == 2);
        CHECK(d.err.find(sslmode == "require"
                             ? "server does not support SSL"
                             : "database \"no_such_db\" does not exist") != std::string::npos);
        CHECK(std::regex_replace(p.err, port_re, "port N") ==
              std::regex_replace(d.err, port_re, "port N"));
    }

    // The default sslmode (prefer): shardgate without a certificate answers N, as Postgres does.
    std::vector<std::string> argv{
        psql_binary(), "-X",
        "-A",          "-t",
        "-d",          conninfo(f.sg->port()),
        "-c",          "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"};
    const client_result prefer = run_client(cwd, session_env("secret"), argv);
    CHECK(prefer.exit_code == 0);
    CHECK(prefer.out == "f\n");
    CHECK(prefer.err == "");
}
