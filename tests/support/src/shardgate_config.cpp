// Renders a shardgate TOML configuration that points at a test topology.
#include "shardgate/testsupport/shardgate_config.hpp"

#include <cstdlib>
#include <string_view>

#include <cstdio>
#include <sstream>

namespace shardgate::testsupport {

std::string toml_string(std::string_view value) {
    std::string out = "\"";
    for (char c : value) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

namespace {

// Keys of [databases.<key>] and [users.<key>]: bare when possible, else quoted.
std::string toml_key(std::string_view key) {
    bool bare = !key.empty();
    for (char c : key) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-';
        bare = bare && ok;
    }
    return bare ? std::string(key) : toml_string(key);
}

}  // namespace

std::string render_shardgate_config(const pg_topology& topology,
                                    const shardgate_config_options& options) {
    std::ostringstream c;
    c << "# shardgate configuration written by the test support code\n"
      << "[shardgate]\n"
      << "listen_addr = \"127.0.0.1\"\n"
      << "listen_port = " << options.listen_port << "\n"
      << "workers = " << options.workers << "\n"
      << "log_level = " << toml_string(options.log_level) << "\n";
    if (options.client_tls) {
        c << "tls_cert_file = " << toml_string(topology.tls().cert_file.string()) << "\n"
          << "tls_key_file = " << toml_string(topology.tls().key_file.string()) << "\n";
    }
    std::string server_tls = options.server_tls;
    if (server_tls.empty()) server_tls = topology.options().tls ? "verify-full" : "disable";
    for (const auto& db : options.databases) {
        const pg_server& backend = topology.shard(db.shard).primary();
        c << "\n[databases." << toml_key(db.name) << "]\n"
          << "host = " << toml_string(backend.host()) << "\n"
          << "port = " << backend.port() << "\n"
          << "dbname = " << toml_string(db.dbname.empty() ? db.name : db.dbname) << "\n"
          << "server_tls = " << toml_string(server_tls) << "\n";
        if (server_tls == "verify-full" || (server_tls != "disable" && topology.options().tls)) {
            c << "server_tls_ca_file = " << toml_string(topology.tls().ca_file.string()) << "\n";
        }
        if (db.replicas && topology.shard(db.shard).replica_count() > 0) {
            const auto& shard = topology.shard(db.shard);
            c << "replicas = [";
            for (std::size_t r = 0; r < shard.replica_count(); ++r) {
                c << (r == 0 ? " " : ", ") << "{ host = " << toml_string(shard.replica(r).host())
                  << ", port = " << shard.replica(r).port() << " }";
            }
            c << " ]\n";
        }
        if (!db.server_user.empty()) c << "server_user = " << toml_string(db.server_user) << "\n";
        if (!db.server_password.empty())
            c << "server_password = " << toml_string(db.server_password) << "\n";
    }
    for (const auto& user : options.users) {
        c << "\n[users." << toml_key(user.name) << "]\n"
          << "password = " << toml_string(user.password) << "\n"
          << "auth = " << toml_string(to_string(user.auth)) << "\n";
    }
    if (!options.extra_toml.empty()) c << "\n" << options.extra_toml << "\n";
    return c.str();
}

int split_replicas() {
    const char* v = std::getenv("SHARDGATE_TEST_SPLIT");
    return v != nullptr && std::string_view(v) == "1" ? 2 : 0;
}

std::string split_toml(const pg_topology& topology) {
    const auto& shard = topology.shard(0);
    if (split_replicas() == 0 || shard.replica_count() == 0) return "";
    std::string out = "replicas = [";
    for (std::size_t r = 0; r < shard.replica_count(); ++r) {
        out += (r == 0 ? " " : ", ");
        out += "{ host = " + toml_string(shard.replica(r).host()) +
               ", port = " + std::to_string(shard.replica(r).port()) + " }";
    }
    return out + " ]\n";
}

void wait_for_split(pg_topology& topology) {
    if (split_replicas() > 0) topology.wait_for_replicas_streaming();
}

int split_replica_backends(pg_topology& topology, const std::string& user) {
    int n = 0;
    for (std::size_t i = 0; i < topology.shard(0).replica_count(); ++i)
        n += std::stoi(topology.shard(0).replica(i).query_value(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = '" + user +
            "' AND application_name NOT IN ('shardgate-monitor', 'shardgate-catalog')"));
    return n;
}

}  // namespace shardgate::testsupport
