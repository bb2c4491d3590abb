// The real pgbench through shardgate: -i, TPC-B-like and -S in all 3 query modes, and -C.
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

// Runs a client binary with a clean environment (env -i: no PG* variables, no ~/.pgpass) plus
// `env`, in `dir`, with stdout and stderr captured separately.
client_result run_client(const fs::path& dir, const std::vector<std::string>& env,
                         const std::vector<std::string>& argv) {
    static int seq = 0;
    const std::string n = std::to_string(++seq);
    const fs::path out = dir / ("stdout." + n);
    const fs::path err = dir / ("stderr." + n);
    std::vector<std::string> cmd{"env",
                                 "-i",
                                 "PATH=/usr/bin:/bin",
                                 "LC_ALL=C",
                                 "HOME=" + dir.string(),
                                 "PGPASSFILE=" + (dir / "no-pgpass").string(),
                                 "PGSERVICEFILE=" + (dir / "no-pg-service").string(),
                                 "PGSYSCONFDIR=" + dir.string(),
                                 "PGCONNECT_TIMEOUT=10",
                                 "PGSSLMODE=disable"};
    cmd.insert(cmd.end(), env.begin(), env.end());
    cmd.insert(cmd.end(), {"/bin/sh", "-c", "o=$1; e=$2; shift 2; exec \"$@\" >\"$o\" 2>\"$e\"",
                           "sh", out.string(), err.string()});
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    const command_result r = run_command(cmd, {.timeout = 90s, .cwd = dir});
    client_result res{r.exit_code, r.timed_out, read_file(out), read_file(err)};
    if (!r.output.empty()) res.err += r.output;  // env or sh complaining
    fs::remove(out);
    fs::remove(err);
    return res;
}

struct fixture {
    pg_topology topo = pg_topology::builder().build();
    std::unique_ptr<shardgate_process> sg;
    work_dir files{"shardgate-pgbench"};

    fixture() {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        shardgate_config_options o;
        o.users = {{"alice", "secret"}};
        o.server_tls = "disable";
        sg = std::make_unique<shardgate_process>(
            shardgate_options{.config_toml = render_shardgate_config(topo, o)});
    }
    pg_server& pg() { return topo.shard(0).primary(); }

    // pgbench against database app through shardgate, as alice.
    client_result pgbench(std::vector<std::string> args) {
        std::vector<std::string> argv{(pg_bindir() / "pgbench").string(), "-h", "127.0.0.1", "-p",
                                      std::to_string(sg->port()),         "-U", "alice"};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.push_back("app");
        return run_client(files.path(), {"PGPASSWORD=secret"}, argv);
    }
};

// The first capture group of `pattern` in `text`, or "" when it does not match.
std::string find(const std::string& text, const std::string& pattern) {
    std::smatch m;
    return std::regex_search(text, m, std::regex(pattern)) ? m[1].str() : "";
}

struct run_summary {
    long long transactions = 0;
    std::string failed;  // "0" when pgbench reports no failed transaction
    std::string tps;
};

// Checks one benchmark run: exit code 0, no failed transaction, some transactions.
run_summary check_run(const client_result& r) {
    INFO("pgbench stdout:\n" << r.out);
    INFO("pgbench stderr:\n" << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    run_summary s;
    const std::string n = find(r.out, "number of transactions actually processed: ([0-9]+)");
    s.transactions = n.empty() ? 0 : std::stoll(n);
    s.failed = find(r.out, "number of failed transactions: ([0-9]+)");
    s.tps = find(r.out, "tps = ([0-9.]+) \\(");
    CHECK(s.failed == "0");
    CHECK(s.transactions > 0);
    CHECK(r.err.find("aborted") == std::string::npos);
    CHECK(r.out.find("number of failed transactions: 0 (0.000%)") != std::string::npos);
    return s;
}

}  // namespace

TEST_CASE("pgbench -i -s 2, then -M simple/extended/prepared, TPC-B-like and -S, and -C") {
    fixture f;
    const client_result init = f.pgbench({"-i", "-s", "2", "-q"});
    INFO("pgbench -i stdout:\n" << init.out);
    INFO("pgbench -i stderr:\n" << init.err);
    REQUIRE(init.exit_code == 0);
    CHECK(init.err.find("done in") != std::string::npos);
    CHECK(f.pg().query_value("SELECT count(*) FROM pgbench_accounts", "app") == "200000");
    CHECK(f.pg().query_value("SELECT count(*) FROM pgbench_branches", "app") == "2");
    CHECK(f.pg().query_value("SELECT count(*) FROM pgbench_tellers", "app") == "20");

    long long tpcb_transactions = 0;
    for (const std::string mode : {"simple", "extended", "prepared"}) {
        for (const bool select_only : {false, true}) {
            CAPTURE(mode);
            CAPTURE(select_only);
            std::vector<std::string> args{"-n", "-c", "8", "-j", "2", "-T", "5", "-M", mode};
            if (select_only) args.push_back("-S");
            const run_summary s = check_run(f.pgbench(args));
            if (!select_only) tpcb_transactions += s.transactions;
            const std::string label =
                std::string("pgbench -M ") + mode + (select_only ? " -S" : " (TPC-B-like)");
            MESSAGE(label << ": " << s.transactions << " transactions, tps = " << s.tps);
        }
    }
    // Every TPC-B-like transaction appended one history row, none was lost.
    CHECK(f.pg().query_value("SELECT count(*) FROM pgbench_history", "app") ==
          std::to_string(tpcb_transactions));
    CHECK(f.pg().query_value("SELECT sum(abalance) = (SELECT sum(delta) FROM pgbench_history) "
                             "FROM pgbench_accounts",
                             "app") == "t");

    // -C: a new connection (and SCRAM login) for every transaction.
    const run_summary c = check_run(f.pgbench({"-n", "-C", "-c", "4", "-j", "2", "-T", "3", "-S"}));
    MESSAGE("pgbench -C -S: " << c.transactions << " transactions, tps = " << c.tps);
    CHECK(f.sg->running());
}
