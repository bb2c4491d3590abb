// Runs the shardgate binary for tests: config file, free port, readiness wait, signals, logs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardgate/testsupport/work_dir.hpp"

namespace shardgate::testsupport {

using namespace std::chrono_literals;

// $SHARDGATE_BINARY if set, else the build's shardgate (compile definition SHARDGATE_BINARY).
std::filesystem::path default_shardgate_binary();

// Written where a second port goes (e.g. `http_port = @HTTP_PORT@`); replaced with http_port().
inline constexpr std::string_view http_port_placeholder = "@HTTP_PORT@";

struct shardgate_options {
    std::filesystem::path binary = default_shardgate_binary();
    // Written to <temp dir>/shardgate.toml; every "@PORT@" becomes port(), every
    // "@HTTP_PORT@" http_port() (another free port). Without "@PORT@", the `listen_port = N`
    // line in it is the port waited for.
    std::string config_toml;
    int port = 0;  // 0: a free loopback port (retried if another process grabs it first)
    std::chrono::milliseconds start_timeout = 10s;
    std::vector<std::string> extra_args{};  // after `--config <file>`
};

// Started by the constructor: returns once the port accepts TCP connections, or throws with the
// tail of shardgate's output (stdout and stderr go to log_file()). The child gets
// PR_SET_PDEATHSIG(SIGKILL), so construct it on a thread that outlives it (the test's).
class shardgate_process {
  public:
    explicit shardgate_process(shardgate_options options);
    shardgate_process(std::filesystem::path binary, std::string config_toml);
    ~shardgate_process();  // stop(5s)
    shardgate_process(const shardgate_process&) = delete;
    shardgate_process& operator=(const shardgate_process&) = delete;

    void start();  // after stop(); same port and config
    // SIGTERM, then SIGKILL after `grace`. Returns the exit code (128 + signal when killed).
    int stop(std::chrono::milliseconds grace = 10s);
    void send_signal(int sig);
    void reload();  // SIGHUP
    bool running();
    // The exit code once it has exited within `timeout`, else nullopt.
    std::optional<int> wait_for_exit(std::chrono::milliseconds timeout);

    // Rewrites the config file ("@PORT@", "@HTTP_PORT@" substituted); pair with reload() or
    // restart.
    void write_config(const std::string& toml);

    int port() const { return port_; }
    // The port "@HTTP_PORT@" stands for; 0 when the config never had the placeholder.
    int http_port() const { return http_port_; }
    std::string host() const { return "127.0.0.1"; }
    pid_t pid() const { return pid_; }
    const std::filesystem::path& config_file() const { return config_file_; }
    const std::filesystem::path& log_file() const { return log_file_; }
    std::string log_tail(std::size_t lines = 40) const;
    std::string conninfo(const std::string& user, const std::string& password,
                         const std::string& dbname) const;

  private:
    void spawn_and_wait();
    void reap(int exit_code);

    shardgate_options options_;
    std::unique_ptr<work_dir> dir_;
    std::filesystem::path config_file_;
    std::filesystem::path log_file_;
    std::string config_template_;
    bool port_from_placeholder_ = false;
    int port_ = 0;
    int http_port_ = 0;
    pid_t pid_ = 0;
    std::optional<int> exit_code_;
};

// $SHARDGATE_SANITIZED is set (scripts/sanitize.sh runs the tests against a shardgate built
// with sanitizers): its resident memory includes shadow memory and quarantine, and it runs a few
// times slower, so tests scale load and memory bounds down (never what they check).
bool sanitized_shardgate();

}  // namespace shardgate::testsupport
