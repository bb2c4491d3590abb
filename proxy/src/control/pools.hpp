// The server connection pools of the running proxy, one per (database, user), created on first
// use (or at start when min_pool_size asks for warm connections), and their upkeep timer.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "control/io.hpp"
#include "control/read_split.hpp"
#include "shardgate/pool/server_pool.hpp"

namespace shardgate::proxy {

struct pool_entry {
    std::string database;
    std::string user;
    resolved_pool cfg;
    std::shared_ptr<pool::server_pool> pool;  // the primary's
    // read_write_split: one pool per replica (configuration order) and the database's
    // splitting state; empty / null otherwise.
    std::vector<std::shared_ptr<pool::server_pool>> replicas;
    std::shared_ptr<split_database> split;
    router::consistency_mode consistency = router::consistency_mode::session;
    std::atomic<std::uint32_t> clients{0};  // sessions logged in to this pool (SHOW POOLS)

    // SCRAM keys recovered from a client's proof: how a user known only by its verifier logs
    // into the server. Learned at the first login, used for every later connection.
    void learn_keys(const scram_keys& k);
    [[nodiscard]] std::optional<scram_keys> keys() const;

    // Transaction pooling: what a login with these startup parameters was greeted with
    // (the server's ParameterStatus after applying them).
    // Later logins with the same parameters are greeted from here without a server
    // connection: a burst of logins must not open one connection per client (PgBouncer keeps
    // one welcome message per pool). Entries are kept for greeting_ttl.
    struct greeting {
        std::vector<std::pair<std::string, std::string>> params;
        pool::steady::time_point expires;
    };
    static constexpr std::chrono::seconds greeting_ttl{60};
    static constexpr std::size_t max_greetings = 256;
    [[nodiscard]] std::optional<greeting> cached_greeting(const std::string& startup_key,
                                                          pool::steady::time_point now) const;
    void remember_greeting(const std::string& startup_key, greeting g);

  private:
    mutable std::mutex mu_;
    std::optional<scram_keys> keys_;
    std::map<std::string, greeting, std::less<>> greetings_;
};

class pool_registry {
  public:
    pool_registry(std::shared_ptr<const config> cfg,
                  const std::map<std::string, std::unique_ptr<ssl::context>, std::less<>>& tls,
                  const asio::any_io_executor& maint_ex);
    ~pool_registry();
    pool_registry(const pool_registry&) = delete;
    pool_registry& operator=(const pool_registry&) = delete;

    // The pool for a client of `db` logged in as `user` (created on first use); null when
    // the live configuration no longer has them (removed by a reload).
    std::shared_ptr<pool_entry> get(const database_config& db, const user_config& user);
    // Creates the pools that must keep warm connections and starts the upkeep timer.
    void start();
    // Closes every idle connection and refuses new checkouts; before the io_contexts go.
    void close_all();
    // A new configuration: pools whose database and user are unchanged but for pool sizes and
    // timeouts take the new settings at once; pools whose connection settings, pool_mode or
    // reset query changed are replaced (the old one serves its current clients until they
    // leave); pools of removed databases or users are left to drain the same way.
    void reload(const std::shared_ptr<const config>& cfg);

    // Admin console. Every pool, by (database, user).
    std::vector<std::shared_ptr<pool_entry>> entries();
    // PAUSE: the pools of `database` ("" = all) stop handing out connections
    // (server_pool::pause); pools created meanwhile (first login, reload) start paused.
    void pause(const std::string& database);
    // RESUME; "" on success, else why not (one database while all are paused).
    std::string resume(const std::string& database);
    [[nodiscard]] bool paused(const std::string& database);

    // The splitting state of `database` (null when it does not split).
    std::shared_ptr<split_database> split(const std::string& database);

  private:
    void schedule();
    void start_monitor();  // (re)starts health checks for the databases that split
    void refresh_catalogs();
    awaitable<void> load_catalog(std::shared_ptr<split_database> db, pool::monitored_database m);

    std::shared_ptr<const config> cfg_;
    const std::map<std::string, std::unique_ptr<ssl::context>, std::less<>>& tls_;
    asio::any_io_executor maint_ex_;
    asio::steady_timer timer_;
    std::mutex mu_;
    std::map<std::pair<std::string, std::string>, std::shared_ptr<pool_entry>> pools_;
    bool closed_ = false;
    bool paused_all_ = false;
    std::set<std::string, std::less<>> paused_;  // databases paused one by one
    std::unique_ptr<pool::replica_monitor> monitor_;
    std::map<std::string, std::shared_ptr<split_database>, std::less<>> splits_;
    asio::steady_timer catalog_timer_;
};

}  // namespace shardgate::proxy
