// One real Postgres 15 server for tests: initdb or pg_basebackup, configuration, pg_ctl.
#include "shardgate/testsupport/pg_server.hpp"

#include <signal.h>
#include <sys/shm.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "initdb_cache.hpp"
#include "shardgate/testsupport/process.hpp"

namespace shardgate::testsupport {
namespace {

std::string conf_quote(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'') out += '\'';
        out += c;
    }
    return out + "'";
}

std::string bin(const char* tool) {
    return (pg_bindir() / tool).string();
}

std::vector<std::string> pid_file_lines(const std::filesystem::path& data_dir) {
    std::ifstream in(data_dir / "postmaster.pid");
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line))
        lines.push_back(line);
    return lines;
}

command_options as_postgres(const std::filesystem::path& cwd) {
    command_options o;
    o.as_postgres = true;
    o.cwd = cwd;
    o.timeout = 90s;
    return o;
}

}  // namespace

const char* to_string(auth_method method) {
    switch (method) {
        case auth_method::scram_sha_256:
            return "scram-sha-256";
        case auth_method::md5:
            return "md5";
        case auth_method::trust:
            return "trust";
    }
    return "?";
}

std::filesystem::path pg_bindir() {
    if (const char* env = std::getenv("SHARDGATE_PG_BINDIR"); env != nullptr && *env != '\0')
        return env;
#ifdef SHARDGATE_PG_BINDIR_DEFAULT
    return SHARDGATE_PG_BINDIR_DEFAULT;
#else
    return "/usr/lib/postgresql/15/bin";
#endif
}

pg_server::pg_server(pg_server_options options)
    : pg_server(std::make_shared<work_dir>("shardgate-pg"), std::move(options)) {}

pg_server::pg_server(std::shared_ptr<work_dir> dir, pg_server_options options)
    : dir_(std::move(dir)), options_(std::move(options)) {
    data_dir_ = dir_->path() / options_.name;
    port_ = free_port();
    create_cluster(data_dir_);
    write_server_conf();
    write_hba_conf();
    start_first_time();
}

pg_server::pg_server(std::shared_ptr<work_dir> dir, pg_server_options options,
                     const pg_server& primary)
    : dir_(std::move(dir)), options_(std::move(options)), replica_(true) {
    data_dir_ = dir_->path() / options_.name;
    port_ = free_port();
    // Over the primary's unix socket (trust); -R writes primary_conninfo and standby.signal.
    command_result r = run_command(
        {bin("pg_basebackup"), "-D", data_dir_.string(), "-R", "-X", "stream", "-c", "fast",
         "--no-sync", "--no-manifest", "-w", "-h", primary.socket_dir().string(), "-p",
         std::to_string(primary.port()), "-U", superuser},
        as_postgres(dir_->path()));
    if (r.exit_code != 0) {
        throw std::runtime_error("pg_basebackup failed for " + options_.name + ":\n" + r.output);
    }
    // The copied sg_server.conf is the primary's: this server has its own port and name.
    write_server_conf();
    write_hba_conf();
    start_first_time();
}

pg_server::~pg_server() {
    try {
        if (running()) {
            run_command({bin("pg_ctl"), "stop", "-D", data_dir_.string(), "-m", "immediate", "-w",
                         "-t", "30", "-s"},
                        as_postgres(dir_->path()));
            if (running()) kill();
        }
        std::error_code ec;
        std::filesystem::remove_all(data_dir_, ec);
    } catch (const std::exception&) {
        // Destructors must not throw; the watchdog still cleans up if this process dies.
    }
}

void pg_server::write_server_conf() const {
    std::ostringstream c;
    c << "# Written by shardgate test support for " << options_.name << "; later lines win.\n"
      << "listen_addresses = '127.0.0.1'\n"
      << "port = " << port_ << "\n"
      << "unix_socket_directories = " << conf_quote(dir_->path().string()) << "\n"
      << "cluster_name = " << conf_quote(options_.name) << "\n"
      << "max_connections = " << options_.max_connections << "\n"
      << "shared_buffers = 16MB\n"
      << "huge_pages = off\n"
      << "fsync = off\n"
      << "synchronous_commit = off\n"
      << "full_page_writes = off\n"
      << "wal_writer_delay = 10ms\n"  // async commits reach replicas quickly
      << "wal_level = replica\n"
      << "max_wal_senders = 10\n"
      << "max_replication_slots = 10\n"
      << "wal_keep_size = 128MB\n"
      << "hot_standby = on\n"
      << "wal_receiver_status_interval = 1s\n"    // fresher replay_lsn in pg_stat_replication
      << "wal_retrieve_retry_interval = 100ms\n"  // replicas reconnect fast after a primary restart
      << "logging_collector = off\n"
      << "log_line_prefix = '%m [%p] %q%u@%d '\n";
    if (options_.tls) {
        const tls_files& tls = dir_->tls();
        c << "ssl = on\n"
          << "ssl_cert_file = " << conf_quote(tls.cert_file.string()) << "\n"
          << "ssl_key_file = " << conf_quote(tls.key_file.string()) << "\n";
    }
    for (const auto& line : options_.extra_conf)
        c << line << "\n";
    const auto path = data_dir_ / "sg_server.conf";
    write_file(path, c.str());
    chown_to_postgres(path);
}

void pg_server::write_hba_conf() const {
    const std::string host = options_.tls_only ? "hostssl" : "host";
    const std::string method = to_string(options_.auth);
    std::ostringstream c;
    c << "# Written by shardgate test support: trust on the unix socket, " << method
      << " over TCP.\n"
      << "local all all trust\n"
      << "local replication all trust\n"
      << host << " all all 127.0.0.1/32 " << method << "\n"
      << host << " replication all 127.0.0.1/32 " << method << "\n";
    const auto path = data_dir_ / "pg_hba.conf";
    write_file(path, c.str());
    chown_to_postgres(path);
}

void pg_server::start_first_time() {
    // free_port() races with other processes: on a port collision pick another one.
    for (int attempt = 0;; ++attempt) {
        try {
            start();
            return;
        } catch (const std::runtime_error& e) {
            const std::string what = e.what();
            const bool taken =
                what.find("already in use") != std::string::npos ||
                what.find("already exists") != std::string::npos;  // socket lock file
            if (attempt >= 3 || !taken) throw;
            port_ = free_port();
            write_server_conf();
        }
    }
}

void pg_server::start() {
    std::error_code ec;
    const auto log_size =
        std::filesystem::exists(log_file()) ? std::filesystem::file_size(log_file(), ec) : 0;
    command_result r = run_command({bin("pg_ctl"), "start", "-D", data_dir_.string(), "-l",
                                    log_file().string(), "-w", "-t", "60", "-s"},
                                   as_postgres(dir_->path()));
    if (r.exit_code != 0) {
        std::string log = read_file(log_file());
        log = log.size() > log_size ? log.substr(log_size) : log;
        if (log.size() > 4000) log = log.substr(log.size() - 4000);
        throw std::runtime_error("cannot start Postgres server " + options_.name + " on port " +
                                 std::to_string(port_) + ":\n" + r.output + "\nserver log:\n" +
                                 log);
    }
}

void pg_server::stop() {
    if (!running()) return;
    check_command(
        {bin("pg_ctl"), "stop", "-D", data_dir_.string(), "-m", "fast", "-w", "-t", "60", "-s"},
        as_postgres(dir_->path()));
}

void pg_server::restart() {
    stop();
    start();
}

void pg_server::kill() {
    const pid_t pid = postmaster_pid();
    if (pid == 0) return;
    std::vector<pid_t> all = descendants(pid);
    ::kill(pid, SIGKILL);
    for (pid_t child : all)
        ::kill(child, SIGKILL);
    all.push_back(pid);
    if (!wait_until_gone(all, 10s)) {
        throw std::runtime_error("Postgres server " + options_.name + " survived SIGKILL");
    }
    remove_stale_shared_memory();
}

void pg_server::remove_stale_shared_memory() const {
    // Only called once every process of the server is gone. Line 7 of postmaster.pid is
    // "<shm key> <shm id>" of the small SysV segment Postgres keeps as an interlock; it outlives
    // a SIGKILLed server. The pid file itself is removed so that a recycled pid can never be
    // mistaken for this server.
    const auto lines = pid_file_lines(data_dir_);
    if (lines.size() >= 7) {
        std::istringstream in(lines[6]);
        long key = 0;
        int shmid = -1;
        if (in >> key >> shmid && shmid >= 0) {
            shmid_ds ds{};
            if (::shmctl(shmid, IPC_STAT, &ds) == 0 && ds.shm_nattch == 0)
                ::shmctl(shmid, IPC_RMID, nullptr);
        }
    }
    std::error_code ec;
    std::filesystem::remove(data_dir_ / "postmaster.pid", ec);
    // The socket lock file names the dead postmaster too. Where init reaps orphans slowly
    // (containers), that pid is still a zombie and the next start would refuse it.
    const std::string socket = ".s.PGSQL." + std::to_string(port_);
    std::filesystem::remove(dir_->path() / (socket + ".lock"), ec);
    std::filesystem::remove(dir_->path() / socket, ec);
}

void pg_server::promote() {
    check_command({bin("pg_ctl"), "promote", "-D", data_dir_.string(), "-w", "-t", "60", "-s"},
                  as_postgres(dir_->path()));
    replica_ = false;
}

pid_t pg_server::postmaster_pid() const {
    const auto lines = pid_file_lines(data_dir_);
    if (lines.empty()) return 0;
    const pid_t pid = static_cast<pid_t>(std::atol(lines[0].c_str()));
    if (!process_alive(pid)) return 0;
    // A pid file left by a crash may name a recycled pid: check it is a postgres process.
    std::string comm;
    std::ifstream("/proc/" + std::to_string(pid) + "/comm") >> comm;
    return comm.rfind("postgres", 0) == 0 ? pid : 0;
}

bool pg_server::running() const {
    return postmaster_pid() != 0;
}

std::filesystem::path pg_server::log_file() const {
    return dir_->path() / (options_.name + ".log");
}

std::string pg_server::log_tail(std::size_t lines) const {
    return file_tail(log_file(), lines);
}

std::filesystem::path pg_server::tls_ca_file() const {
    if (!options_.tls)
        throw std::logic_error("server " + options_.name + " was started without tls");
    return dir_->tls().ca_file;
}

std::string pg_server::conninfo(const std::string& user, const std::string& password,
                                const std::string& dbname) const {
    std::vector<std::pair<std::string, std::string>> pairs = {
        {"host", host()}, {"port", std::to_string(port_)}, {"user", user}};
    if (!password.empty()) pairs.emplace_back("password", password);
    pairs.emplace_back("dbname", dbname);
    return make_conninfo(pairs);
}

std::string pg_server::tls_conninfo(const std::string& user, const std::string& password,
                                    const std::string& dbname) const {
    return conninfo(user, password, dbname) + " " +
           make_conninfo({{"sslmode", "verify-full"}, {"sslrootcert", tls_ca_file().string()}});
}

std::string pg_server::superuser_conninfo(const std::string& dbname) const {
    return make_conninfo({{"host", socket_dir().string()},
                          {"port", std::to_string(port_)},
                          {"user", superuser},
                          {"dbname", dbname}});
}

pg_connection pg_server::connect_superuser(const std::string& dbname) const {
    return pg_connection(superuser_conninfo(dbname));
}

void pg_server::exec(const std::string& sql, const std::string& dbname) const {
    connect_superuser(dbname).exec(sql);
}

std::vector<pg_row> pg_server::query(const std::string& sql, const std::string& dbname) const {
    return connect_superuser(dbname).query(sql);
}

std::string pg_server::query_value(const std::string& sql, const std::string& dbname) const {
    return connect_superuser(dbname).query_value(sql);
}

void pg_server::create_role(const std::string& name, const std::string& password,
                            auth_method encryption, bool superuser_role) const {
    pg_connection c = connect_superuser();
    const char* hash = encryption == auth_method::md5 ? "md5" : "scram-sha-256";
    c.exec(std::string("SET password_encryption = '") + hash + "'");
    c.exec("CREATE ROLE " + c.quote_identifier(name) + " LOGIN " +
           (superuser_role ? "SUPERUSER " : "") + "PASSWORD " + c.quote_literal(password));
}

void pg_server::create_database(const std::string& name, const std::string& owner) const {
    pg_connection c = connect_superuser();
    std::string sql = "CREATE DATABASE " + c.quote_identifier(name);
    if (!owner.empty()) sql += " OWNER " + c.quote_identifier(owner);
    c.exec(sql);
}

}  // namespace shardgate::testsupport
