// Shared by the libpq and libpqxx client tests: one Postgres with alice/app behind a shardgate,
// a clean PG* environment, and small PGresult helpers.
#pragma once

#include <libpq-fe.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "shardgate/testsupport/testsupport.hpp"

namespace client_tests {

using namespace shardgate::testsupport;

using result_ptr = std::unique_ptr<PGresult, void (*)(PGresult*)>;
inline result_ptr wrap(PGresult* r) {
    return {r, PQclear};
}

// The test must not depend on the caller's PGOPTIONS, PGTZ, PGSSLMODE, ... (libpq reads them).
inline void clear_pg_environment() {
    std::vector<std::string> names;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string kv = *e;
        if (kv.rfind("PG", 0) == 0) names.push_back(kv.substr(0, kv.find('=')));
    }
    for (const auto& n : names)
        ::unsetenv(n.c_str());
}

struct fixture {
    pg_topology topo;
    std::unique_ptr<shardgate_process> sg;

    fixture() : topo((clear_pg_environment(), pg_topology::builder().build())) {
        topo.create_role("alice", "secret");
        topo.create_database("app", "alice");
        shardgate_config_options o;
        o.users = {{"alice", "secret"}};
        o.server_tls = "disable";
        sg = std::make_unique<shardgate_process>(
            shardgate_options{.config_toml = render_shardgate_config(topo, o)});
    }
    pg_server& pg() { return topo.shard(0).primary(); }
    std::string proxy_conninfo() const { return info(sg->port()); }
    std::string direct_conninfo() { return info(pg().port()); }
    static std::string info(int port) {
        return "host=127.0.0.1 port=" + std::to_string(port) +
               " user=alice password=secret dbname=app sslmode=disable connect_timeout=10";
    }
};

inline std::string sqlstate(const PGresult* r) {
    const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s == nullptr ? "" : s;
}

// "STATUS[:sqlstate][=first value]" for one result: a compact transcript line.
inline std::string describe(const PGresult* r) {
    if (r == nullptr) return "null";
    std::string s = PQresStatus(PQresultStatus(r));
    if (!sqlstate(r).empty()) s += ":" + sqlstate(r);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
        s += "=" + std::string(PQgetvalue(r, 0, 0), PQgetlength(r, 0, 0));
    return s;
}

}  // namespace client_tests
