// The running proxy: worker threads (one io_context each), the listening socket, the health
// endpoints, signals.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "admin/http_health.hpp"
#include "control/context.hpp"
#include "control/io.hpp"
#include "control/pools.hpp"

namespace shardgate::proxy {

class proxy_server {
  public:
    // `config_path`: what SIGHUP and the admin console's RELOAD read again.
    proxy_server(std::shared_ptr<const config> cfg, std::string config_path);
    ~proxy_server();
    proxy_server(const proxy_server&) = delete;
    proxy_server& operator=(const proxy_server&) = delete;

    // Binds the listener and the health endpoints (throws on failure), runs until
    // SIGTERM/SIGINT and the shutdown that follows, then returns the process exit code.
    int run();

  private:
    awaitable<void> accept_loop();
    // Not ready for shutdown_ready_delay, then the listener closes and drain_and_stop runs.
    awaitable<void> shut_down(bool only_transactions);  // SIGINT: true
    awaitable<void> drain_and_stop();
    void on_signal(int signo);
    // Reads the config file again and applies what can change while running; "" on success,
    // else why nothing changed. Thread-safe.
    std::string reload();

    proxy_context ctx_;
    // Before main_io_, so destroyed after it: an accept still pending on main_io_ holds a
    // socket of a worker's io_context, which must outlive it (AddressSanitizer found the
    // use-after-free at exit).
    std::vector<std::unique_ptr<asio::io_context>> worker_io_;
    asio::io_context main_io_{1};
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
    std::vector<std::thread> threads_;
    tcp::acceptor acceptor_{main_io_};
    asio::signal_set signals_{main_io_};
    std::unique_ptr<health_server> health_;  // answers until the process exits
    bool shutdown_started_ = false;
    std::size_t next_worker_ = 0;
    std::string config_path_;
    std::mutex reload_mu_;
    std::unique_ptr<pool_registry> pools_;  // destroyed first: its sockets use the io_contexts
};

}  // namespace shardgate::proxy
