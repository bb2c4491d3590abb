// The server connection pools of the running proxy, one per (database, user), created on first
// use (or at start when min_pool_size asks for warm connections), and their upkeep timer.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "config.hpp"
#include "io.hpp"
#include "shardgate/pool/server_pool.hpp"

namespace shardgate::proxy {

struct pool_entry {
    std::string database;
    std::string user;
    resolved_pool cfg;
    std::shared_ptr<pool::server_pool> pool;

    // SCRAM keys recovered from a client's proof: how a user known only by its verifier logs
    // into the server. Learned at the first login, used for every later connection.
    void learn_keys(const scram_keys& k);
    [[nodiscard]] std::optional<scram_keys> keys() const;

  private:
    mutable std::mutex mu_;
    std::optional<scram_keys> keys_;
};

class pool_registry {
  public:
    pool_registry(std::shared_ptr<const config> cfg,
                  const std::map<std::string, std::unique_ptr<ssl::context>, std::less<>>& tls,
                  asio::any_io_executor maint_ex);
    ~pool_registry();
    pool_registry(const pool_registry&) = delete;
    pool_registry& operator=(const pool_registry&) = delete;

    // The pool for a client of `db` logged in as `user` (created on first use).
    std::shared_ptr<pool_entry> get(const database_config& db, const user_config& user);
    // Creates the pools that must keep warm connections and starts the upkeep timer.
    void start();
    // Closes every idle connection and refuses new checkouts; before the io_contexts go.
    void close_all();

  private:
    void schedule();

    std::shared_ptr<const config> cfg_;
    const std::map<std::string, std::unique_ptr<ssl::context>, std::less<>>& tls_;
    asio::any_io_executor maint_ex_;
    asio::steady_timer timer_;
    std::mutex mu_;
    std::map<std::pair<std::string, std::string>, std::shared_ptr<pool_entry>> pools_;
    bool closed_ = false;
};

}  // namespace shardgate::proxy
