// Shared by the tests that drive a client program: one in another language (Python drivers,
// pgjdbc), run with a clean environment, whose one JSON summary line is read; and pgbench.
#pragma once

#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "shardgate/testsupport/testsupport.hpp"

namespace client_program {

struct client_result {
    int exit_code = -1;
    bool timed_out = false;
    std::string out;
    std::string err;
};

// Runs a client program with a clean environment (env -i: no PG* variables, no ~/.pgpass, no
// PYTHON* / JAVA_TOOL_OPTIONS / CLASSPATH) in `dir`, stdout and stderr captured apart.
inline client_result run_client(const std::filesystem::path& dir,
                                const std::vector<std::string>& argv,
                                std::chrono::seconds timeout) {
    using namespace shardgate::testsupport;
    const auto out = dir / "stdout";
    const auto err = dir / "stderr";
    std::vector<std::string> cmd{"env",
                                 "-i",
                                 "PATH=/usr/bin:/bin",
                                 "LC_ALL=C.UTF-8",
                                 "HOME=" + dir.string(),
                                 "PGPASSFILE=" + (dir / "no-pgpass").string(),
                                 "PGSERVICEFILE=" + (dir / "no-pg-service").string(),
                                 "PGSYSCONFDIR=" + dir.string(),
                                 "/bin/sh",
                                 "-c",
                                 "o=$1; e=$2; shift 2; exec \"$@\" >\"$o\" 2>\"$e\"",
                                 "sh",
                                 out.string(),
                                 err.string()};
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    const command_result r = run_command(cmd, {.timeout = timeout, .cwd = dir});
    client_result res{r.exit_code, r.timed_out, read_file(out), read_file(err)};
    if (!r.output.empty()) res.err += r.output;  // env or sh complaining
    return res;
}

// The integer value of "key": N in the program's JSON line, or -1.
inline long long json_int(const std::string& json, const std::string& key) {
    std::smatch m;
    return std::regex_search(json, m, std::regex("\"" + key + "\": (-?[0-9]+)"))
               ? std::stoll(m[1].str())
               : -1;
}

// pgbench against `dbname` on 127.0.0.1:`port` as `user`, with a clean environment, in `dir`.
inline shardgate::testsupport::command_result pgbench(const std::filesystem::path& dir, int port,
                                                      const std::string& user,
                                                      const std::string& password,
                                                      const std::string& dbname,
                                                      std::vector<std::string> args) {
    using namespace shardgate::testsupport;
    std::vector<std::string> argv{"env",
                                  "-i",
                                  "PATH=/usr/bin:/bin",
                                  "PGPASSWORD=" + password,
                                  "PGSSLMODE=disable",
                                  (pg_bindir() / "pgbench").string(),
                                  "-h",
                                  "127.0.0.1",
                                  "-p",
                                  std::to_string(port),
                                  "-U",
                                  user};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(dbname);
    return run_command(argv, {.timeout = std::chrono::seconds(120), .cwd = dir});
}

}  // namespace client_program
