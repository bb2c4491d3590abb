// One real Postgres 15 server (primary or streaming replica) on a free loopback port, for tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "shardgate/testsupport/pg_client.hpp"
#include "shardgate/testsupport/work_dir.hpp"

namespace shardgate::testsupport {

using namespace std::chrono_literals;

// pg_hba.conf method for host (TCP) connections; also how a role's password is stored.
enum class auth_method { scram_sha_256, md5, trust };
const char* to_string(auth_method method);

struct pg_server_options {
    std::string name = "pg";  // data dir `<work dir>/<name>`, log `<name>.log`, cluster_name
    int max_connections = 200;
    auth_method auth = auth_method::scram_sha_256;
    bool tls = false;       // ssl=on with the work dir's test CA and server certificate
    bool tls_only = false;  // hostssl lines in pg_hba.conf: plain TCP is rejected
    // Appended to the server's settings, after the defaults (later lines win).
    std::vector<std::string> extra_conf{};
};

// Directory of initdb, pg_ctl, ...: $SHARDGATE_PG_BINDIR, else /usr/lib/postgresql/15/bin.
std::filesystem::path pg_bindir();

// A Postgres server that is started by its constructor and stopped (immediate) and deleted by its
// destructor. Every server process runs as `postgres` when this process is root. The superuser
// is `postgres` with password superuser_password; local (unix socket) connections are trusted,
// which the helpers (exec, query, ...) use.
class pg_server {
  public:
    static constexpr const char* superuser = "postgres";
    static constexpr const char* superuser_password = "postgres";

    // A standalone primary in its own temporary directory.
    explicit pg_server(pg_server_options options = {});
    // A primary in a shared directory (initdb).
    pg_server(std::shared_ptr<work_dir> dir, pg_server_options options);
    // A streaming replica of `primary` (pg_basebackup -R -X stream over its unix socket).
    pg_server(std::shared_ptr<work_dir> dir, pg_server_options options, const pg_server& primary);
    ~pg_server();
    pg_server(const pg_server&) = delete;
    pg_server& operator=(const pg_server&) = delete;

    void start();    // pg_ctl start -w; keeps the port across restarts
    void stop();     // pg_ctl stop -m fast -w
    void restart();  // stop + start
    // SIGKILL the postmaster and all its children, as a crash would; start() recovers.
    void kill();
    void promote();  // pg_ctl promote -w (replica -> primary)
    bool running() const;
    pid_t postmaster_pid() const;  // 0 when not running

    int port() const { return port_; }
    std::string host() const { return "127.0.0.1"; }
    const std::string& name() const { return options_.name; }
    bool is_replica() const { return replica_; }
    const std::filesystem::path& data_dir() const { return data_dir_; }
    const std::filesystem::path& socket_dir() const { return dir_->path(); }
    std::filesystem::path log_file() const;
    std::string log_tail(std::size_t lines = 40) const;
    const pg_server_options& options() const { return options_; }
    // The test CA to verify this server with (only when started with tls).
    std::filesystem::path tls_ca_file() const;

    // TCP conninfo: host=127.0.0.1 port=... user=... password=... dbname=...
    std::string conninfo(const std::string& user, const std::string& password,
                         const std::string& dbname = "postgres") const;
    // Same plus sslmode=verify-full sslrootcert=<test CA>.
    std::string tls_conninfo(const std::string& user, const std::string& password,
                             const std::string& dbname = "postgres") const;
    // The superuser over the unix socket (trust).
    std::string superuser_conninfo(const std::string& dbname = "postgres") const;

    // SQL as superuser over the unix socket, on a fresh connection each time.
    void exec(const std::string& sql, const std::string& dbname = "postgres") const;
    std::vector<pg_row> query(const std::string& sql, const std::string& dbname = "postgres") const;
    std::string query_value(const std::string& sql, const std::string& dbname = "postgres") const;
    pg_connection connect_superuser(const std::string& dbname = "postgres") const;

    // CREATE ROLE name LOGIN PASSWORD ..., hashed with `encryption` (trust: scram-sha-256).
    void create_role(const std::string& name, const std::string& password,
                     auth_method encryption = auth_method::scram_sha_256,
                     bool superuser_role = false) const;
    // CREATE DATABASE name [OWNER owner].
    void create_database(const std::string& name, const std::string& owner = "") const;

  private:
    void write_server_conf() const;
    void write_hba_conf() const;
    void start_first_time();
    void remove_stale_shared_memory() const;

    std::shared_ptr<work_dir> dir_;
    pg_server_options options_;
    std::filesystem::path data_dir_;
    int port_ = 0;
    bool replica_ = false;
};

}  // namespace shardgate::testsupport
