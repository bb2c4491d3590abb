// shardgate configuration: TOML file -> validated, immutable settings.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "shardgate/pool/server_login.hpp"
#include "shardgate/pool/server_pool.hpp"
#include "shardgate/router/route.hpp"

namespace shardgate::proxy {

// How shardgate authenticates a client that logs in as this user.
enum class auth_method : std::uint8_t { scram_sha_256, md5, trust };
std::string_view to_string(auth_method m);

using pool::server_tls_mode;

enum class pool_mode : std::uint8_t { session, transaction };
std::string_view to_string(pool_mode m);

// Pool settings as written at one level ([shardgate], [databases.X], [users.X]); what a pool
// uses is resolved user > database > global (resolve_pool).
struct pool_overrides {
    std::optional<pool_mode> mode;
    std::optional<std::uint32_t> pool_size;
    std::optional<std::uint32_t> min_pool_size;
    std::optional<std::uint32_t> reserve_pool_size;
    std::optional<std::chrono::milliseconds> reserve_pool_timeout;
    std::optional<std::chrono::milliseconds> checkout_timeout;
    std::optional<std::chrono::milliseconds> server_lifetime;
    std::optional<std::chrono::milliseconds> server_lifetime_jitter;
    std::optional<std::chrono::milliseconds> server_idle_timeout;
    std::optional<std::chrono::milliseconds> server_check_delay;
    std::optional<std::string> server_reset_query;
    std::optional<bool> refuse_pinning;  // transaction_pinning = "refuse"
};

struct resolved_pool {
    pool_mode mode = pool_mode::transaction;
    pool::pool_settings settings;
    std::string server_reset_query = "DISCARD ALL";
    // Transaction pooling: a statement that would pin the client (LISTEN, temp tables...)
    // fails with 0A000 instead (transaction_pinning = "refuse"; default "pin").
    bool refuse_pinning = false;
};

struct user_config {
    std::string name;
    auth_method auth = auth_method::scram_sha_256;
    std::string password;        // plaintext, if given
    std::string scram_verifier;  // "SCRAM-SHA-256$iter:salt$stored:server", if given
    std::string md5_hash;        // "md5<32 hex>", if given
    pool_overrides pool;
    std::optional<router::consistency_mode> consistency;  // over the database's
};

// How reads are spread over the fit replicas (and the primary, with primary_reads).
enum class load_balance_policy : std::uint8_t {
    round_robin,        // each server in turn
    least_connections,  // the server with the fewest connections in use
    weighted,           // at random, in proportion to the weights
    least_latency,      // the server with the lowest recent check round trip
};
std::string_view to_string(load_balance_policy p);

// What a read does when no replica is fit (all down, or lagging past the limits).
enum class no_fit_replica_policy : std::uint8_t {
    primary,  // it runs on the primary
    error,    // it fails with an ErrorResponse
};
std::string_view to_string(no_fit_replica_policy p);

// Where explicit transactions not declared READ ONLY run (router::route_options).
enum class transaction_routing_policy : std::uint8_t {
    primary,          // on the primary
    first_statement,  // the first statement decides: a read puts the transaction on a replica
};
std::string_view to_string(transaction_routing_policy p);

// A streaming replica of a database's primary: an element of [databases.X] replicas.
struct replica_config {
    std::string host;  // required
    std::uint16_t port = 5432;
    std::uint32_t weight = 1;  // its share of reads with load_balance = "weighted" (1..1000)
    std::string zone;          // a label such as an availability zone; empty: none
};

struct database_config {
    std::string name;  // what clients put in `dbname`
    std::string host = "127.0.0.1";
    std::uint16_t port = 5432;
    std::string dbname;  // backend database name
    server_tls_mode server_tls = server_tls_mode::prefer;
    std::string server_tls_ca_file;
    std::string server_user;      // empty: the client's user name
    std::string server_password;  // empty: the client user's password
    pool_overrides pool;

    // Read/write splitting: host and port above are the primary. Validated at load; no two
    // servers of a database share host:port.
    std::vector<replica_config> replicas;
    // Reads may go to replicas: true only with replicas (default: true when there are some).
    bool read_write_split = false;
    // The database's read consistency; [users.X] may override it (resolve_consistency).
    std::optional<router::consistency_mode> consistency;
    load_balance_policy load_balance = load_balance_policy::round_robin;
    bool primary_reads = false;             // the primary takes reads too,
    std::uint32_t primary_read_weight = 1;  // with this weight (1..1000)
    // A replica lagging past either limit (0: no limit) stops taking reads; it takes them again
    // once at or below both readmit marks (hysteresis: by default half the limit, never above it).
    // The `_time` members are the `_ms` keys.
    std::uint64_t max_lag_bytes = 16U * 1024 * 1024;
    std::chrono::milliseconds max_lag_time{1000};
    std::uint64_t readmit_lag_bytes = 8U * 1024 * 1024;
    std::chrono::milliseconds readmit_lag_time{500};
    no_fit_replica_policy no_fit_replica = no_fit_replica_policy::primary;
    // A read whose consistency needs a replica to have replayed a commit the monitor has not
    // seen it replay asks the replica, and waits at most this long (consistency_wait_ms) for
    // it to catch up before the primary serves it; 0: asks once.
    std::chrono::milliseconds consistency_wait{10};
    transaction_routing_policy transaction_routing = transaction_routing_policy::primary;
    // Function names ("f" or "schema.f", as Postgres stores them): write_functions always run on
    // the primary, whatever pg_proc says; read_only_functions may run on a replica even if
    // volatile. No name is in both (router::function_catalog).
    std::vector<std::string> write_functions;
    std::vector<std::string> read_only_functions;
};

struct config {
    std::string listen_addr = "127.0.0.1";
    std::uint16_t listen_port = 6432;
    unsigned workers = 0;  // 0: one per core
    // Data-plane threads. 0: one per core minus one (at least one),
    // which leaves a core to logins, TLS and the control plane. Every plane sleeps and wakes on
    // its own, so a plane more than the traffic needs costs wake-ups (CPU) per query.
    unsigned data_planes = 0;
    std::uint32_t max_client_conn = 10000;
    std::uint32_t max_message_size = 256U * 1024 * 1024;
    // Bytes of partly received messages all clients may hold together (beyond 64 KiB each);
    // a client whose message would pass it gets FATAL 53200. Fixed at start.
    std::uint64_t max_client_memory = 1024ULL * 1024 * 1024;
    std::chrono::milliseconds server_connect_timeout{5000};
    std::chrono::milliseconds client_login_timeout{60000};  // Postgres' authentication_timeout
    std::chrono::milliseconds shutdown_timeout{30000};
    // After SIGTERM/SIGINT, /health/ready answers 503 this long before the listener closes,
    // so load balancers stop sending new clients first; shutdown_timeout starts after it.
    std::chrono::milliseconds shutdown_ready_delay{0};
    // The health endpoints' HTTP server (http_health.hpp); port 0: no HTTP server.
    std::string http_listen_addr = "127.0.0.1";
    std::uint16_t http_port = 0;
    std::string log_level = "info";
    // "epoll" (default, and the only engine): sessions, plain and TLS, relay on data-plane
    // threads over a level-triggered epoll set (data_plane.hpp). "asio" is still accepted,
    // with a warning at start: the per-session Asio relays were retired.
    std::string relay_engine = "epoll";
    std::string tls_cert_file;
    std::string tls_key_file;
    pool_overrides pool;  // the defaults for every database and user
    // Transaction pooling: prepared statements kept per server connection (LRU beyond).
    std::uint32_t max_prepared_statements = 200;
    std::chrono::milliseconds server_backoff_initial{1000};
    std::chrono::milliseconds server_backoff_max{30000};
    // Replica monitor: how often each replica's replay position and lag are polled, and how long
    // one poll may take before the replica counts as unfit.
    std::chrono::milliseconds replica_check_interval{250};
    std::chrono::milliseconds replica_check_timeout{1000};
    // How often each database's volatile functions are read again from pg_proc.
    std::chrono::milliseconds function_catalog_refresh{60000};
    // The admin console (database "shardgate", admin.hpp): users in [users] who may run every
    // command, and users who may only SHOW.
    std::vector<std::string> admin_users;
    std::vector<std::string> stats_users;

    std::map<std::string, database_config, std::less<>> databases;
    std::map<std::string, user_config, std::less<>> users;

    [[nodiscard]] bool client_tls() const { return !tls_cert_file.empty(); }
};

// The pool settings for (database, user): user > database > global > built-in defaults.
resolved_pool resolve_pool(const config& c, const database_config& d, const user_config& u);

// The read consistency for (database, user): user > database > instance (the default).
router::consistency_mode resolve_consistency(const database_config& d, const user_config& u);

// Thrown by load_config with "file:line: what is wrong".
class config_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Parses and validates a config file; throws config_error.
std::shared_ptr<const config> load_config(const std::string& path);
// Same, from TOML text (`origin` names it in errors).
std::shared_ptr<const config> parse_config(std::string_view toml_text, const std::string& origin);

}  // namespace shardgate::proxy
