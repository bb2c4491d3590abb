// Renders a shardgate TOML configuration that points at a test topology.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "shardgate/testsupport/pg_topology.hpp"

namespace shardgate::testsupport {

// Written where the listen port goes; shardgate_process replaces it with the port it picked.
inline constexpr std::string_view port_placeholder = "@PORT@";

struct shardgate_database {
    std::string name;               // what clients connect to
    std::string dbname{};           // backend database (empty: same as name)
    std::size_t shard = 0;          // its primary is the backend
    std::string server_user{};      // empty: the client's user name
    std::string server_password{};  // empty: the client user's password
    bool replicas = false;          // list the shard's replicas (read/write splitting)
};

struct shardgate_user {
    std::string name{};
    std::string password{};
    auth_method auth = auth_method::scram_sha_256;
};

struct shardgate_config_options {
    std::vector<shardgate_database> databases = {{"app"}};
    std::vector<shardgate_user> users;
    int workers = 2;
    std::string log_level = "info";
    std::string listen_port = std::string(port_placeholder);  // or a number
    // disable | prefer | require | verify-full; empty: verify-full with the topology's CA when
    // it has TLS, else disable.
    std::string server_tls;
    // Client-side TLS with the topology's server certificate (CN/SAN localhost, 127.0.0.1).
    bool client_tls = false;
    std::string extra_toml;  // appended verbatim (sections the helper does not know about)
};

std::string render_shardgate_config(const pg_topology& topology,
                                    const shardgate_config_options& options);

// A TOML basic string: "..." with escapes.
std::string toml_string(std::string_view value);

// $SHARDGATE_TEST_SPLIT=1 (ctest's *_split variants): the client tests run with read/write
// splitting on, two streaming replicas behind shardgate. split_replicas() is how many their
// topology gets (2, else 0); split_toml() is the `replicas = [...]` line for shard 0's (""
// without), and wait_for_split() waits until the replicas stream.
int split_replicas();
std::string split_toml(const pg_topology& topology);
void wait_for_split(pg_topology& topology);
// Backends of `user` on shard 0's replicas, the replica monitor's left out: after a split run,
// above 0 when the replicas served reads (shardgate keeps pooled connections open).
int split_replica_backends(pg_topology& topology, const std::string& user);

}  // namespace shardgate::testsupport
