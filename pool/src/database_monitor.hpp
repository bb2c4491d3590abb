// The poller of one monitored database, on one strand: a connection per server and a round
// every interval. A round checks the primary first and each replica as soon as the primary has
// answered (or a quarter interval has passed), so a replica is compared with a primary position
// taken moments before its own. Checks run concurrently; a server whose check is still running
// (a slow login, a timeout) sits the round out. Each check's result is published at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shardgate/pool/probe.hpp"
#include "shardgate/pool/replica_health.hpp"
#include "shardgate/pool/replica_monitor.hpp"
#include "shardgate/pool/server_login.hpp"
#include "shardgate/pool/stream.hpp"

namespace shardgate::pool {

class database_monitor : public std::enable_shared_from_this<database_monitor> {
  public:
    database_monitor(const asio::any_io_executor& ex, monitored_database db,
                     std::shared_ptr<health_feed> feed, std::uint64_t owner, ssl::context* tls);
    database_monitor(const database_monitor&) = delete;
    database_monitor& operator=(const database_monitor&) = delete;

    void start();  // once
    void stop();   // any thread; idempotent

  private:
    // Server i: 0 is the primary, i >= 1 is replica i - 1. Only touched on the strand.
    struct server_slot {
        explicit server_slot(const asio::any_io_executor& ex) : login_wait(ex) {}
        backend_address address;
        std::optional<pg_stream> conn;
        bool busy = false;  // a check is running
        // A check waits here for its login to end; stop() cancels it.
        asio::steady_timer login_wait;
        std::optional<server_login_result> login;  // a finished login, until the check takes it
    };

    awaitable<void> rounds(std::shared_ptr<database_monitor> keep);
    void launch(std::size_t i);
    awaitable<void> run_check(std::shared_ptr<database_monitor> keep, std::size_t i);
    awaitable<void> check(std::size_t i);
    awaitable<bool> connect(std::size_t i);
    void on_login(std::size_t i, const std::exception_ptr& e, server_login_result r);
    void record_reply(std::size_t i, const probe_reply& reply);
    void record_failure(std::size_t i, check_failure why, std::string detail);
    void log_change(std::size_t replica, state_change c) const;
    [[nodiscard]] std::string describe(std::size_t i) const;
    void publish();
    void stop_now();
    void drop(server_slot& slot);

    const asio::any_io_executor strand_;
    const monitored_database db_;
    const std::shared_ptr<health_feed> feed_;
    const std::uint64_t owner_;
    ssl::context* const tls_;
    replica_health health_;
    std::vector<std::unique_ptr<server_slot>> slots_;
    asio::steady_timer round_timer_;  // the rounds' sleeps; stop() cancels it
    bool waiting_primary_ = false;    // the round waits for the primary's check to end
    std::uint64_t version_ = 0;
    bool stopped_ = false;
};

}  // namespace shardgate::pool
