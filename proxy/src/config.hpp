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
};

struct config {
    std::string listen_addr = "127.0.0.1";
    std::uint16_t listen_port = 6432;
    unsigned workers = 0;  // 0: one per core
    // Data-plane threads for relay_engine = "epoll". 0: one per core minus one (at least one),
    // which leaves a core to logins, TLS and the control plane. Every plane sleeps and wakes on
    // its own, so a plane more than the traffic needs costs wake-ups (CPU) per query.
    unsigned data_planes = 0;
    std::uint32_t max_client_conn = 10000;
    std::uint32_t max_message_size = 256U * 1024 * 1024;
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
    // "epoll" (default): plain-TCP sessions relay on data-plane threads over a level-triggered
    // epoll set (data_plane.hpp); "asio": each session's two pumps run on its worker's
    // io_context, as TLS sessions always do.
    std::string relay_engine = "epoll";
    std::string tls_cert_file;
    std::string tls_key_file;
    pool_overrides pool;  // the defaults for every database and user
    // Transaction pooling: prepared statements kept per server connection (LRU beyond).
    std::uint32_t max_prepared_statements = 200;
    std::chrono::milliseconds server_backoff_initial{1000};
    std::chrono::milliseconds server_backoff_max{30000};
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
