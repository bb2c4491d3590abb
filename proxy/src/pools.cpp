// Pool registry: pool creation, server login requests for pooled connections, upkeep.
#include "pools.hpp"

#include <spdlog/spdlog.h>

namespace shardgate::proxy {

void pool_entry::learn_keys(const scram_keys& k) {
    std::lock_guard lock(mu_);
    keys_ = k;
}

std::optional<scram_keys> pool_entry::keys() const {
    std::lock_guard lock(mu_);
    return keys_;
}

std::optional<pool_entry::greeting> pool_entry::cached_greeting(
    const std::string& startup_key, pool::steady::time_point now) const {
    std::lock_guard lock(mu_);
    auto it = greetings_.find(startup_key);
    if (it == greetings_.end() || it->second.expires <= now) return std::nullopt;
    return it->second;
}

void pool_entry::remember_greeting(const std::string& startup_key, greeting g) {
    std::lock_guard lock(mu_);
    if (greetings_.size() >= max_greetings && !greetings_.contains(startup_key)) {
        // Many distinct parameter sets: drop the expired ones, else the one expiring first.
        std::erase_if(greetings_,
                      [&g](const auto& e) { return e.second.expires <= g.expires - greeting_ttl; });
        if (greetings_.size() >= max_greetings) {
            auto oldest = greetings_.begin();
            for (auto it = greetings_.begin(); it != greetings_.end(); ++it)
                if (it->second.expires < oldest->second.expires) oldest = it;
            greetings_.erase(oldest);
        }
    }
    greetings_.insert_or_assign(startup_key, std::move(g));
}

pool_registry::pool_registry(
    std::shared_ptr<const config> cfg,
    const std::map<std::string, std::unique_ptr<ssl::context>, std::less<>>& tls,
    asio::any_io_executor maint_ex)
    : cfg_(std::move(cfg)), tls_(tls), maint_ex_(maint_ex), timer_(maint_ex) {}

pool_registry::~pool_registry() {
    close_all();
}

std::shared_ptr<pool_entry> pool_registry::get(const database_config& db_in,
                                               const user_config& user_in) {
    std::lock_guard lock(mu_);
    auto key = std::make_pair(db_in.name, user_in.name);
    if (auto it = pools_.find(key); it != pools_.end()) return it->second;
    // The pool logs in with the registry's (live) configuration, which the login factory
    // keeps alive; a session that started before a reload may name something since removed.
    const auto db_it = cfg_->databases.find(db_in.name);
    const auto user_it = cfg_->users.find(user_in.name);
    if (db_it == cfg_->databases.end() || user_it == cfg_->users.end()) return nullptr;
    const auto& db = db_it->second;
    const auto& user = user_it->second;

    auto entry = std::make_shared<pool_entry>();
    entry->database = db.name;
    entry->user = user.name;
    entry->cfg = resolve_pool(*cfg_, db, user);
    auto tls_it = tls_.find(db.name);
    ssl::context* tls = tls_it == tls_.end() ? nullptr : tls_it->second.get();
    // The factory sees the entry through a weak pointer: the entry owns the pool.
    std::weak_ptr<pool_entry> weak = entry;
    auto login = [cfg = cfg_, &db, &user, tls, weak]() -> std::optional<server_login_request> {
        auto e = weak.lock();
        if (!e) return std::nullopt;
        server_login_request req;
        req.backend = backend_address{db.name, db.host, db.port, db.dbname, db.server_tls};
        req.user = db.server_user.empty() ? user.name : db.server_user;
        const bool same_user = req.user == user.name;
        if (!db.server_password.empty()) {
            req.password = db.server_password;
        } else if (same_user) {
            req.password = user.password;
            req.md5_hash = user.md5_hash;
            req.keys = e->keys();
        }
        if (req.password.empty() && req.md5_hash.empty() && !req.keys) {
            // A verifier-only user: wait for a client's proof. (A trust server would not need
            // one, but we cannot know that before trying; the first client's login opens it.)
            return std::nullopt;
        }
        req.tls = tls;
        req.timeout = cfg->server_connect_timeout;
        return req;
    };
    entry->pool = std::make_shared<pool::server_pool>(db.name + "/" + user.name,
                                                      entry->cfg.settings, maint_ex_, login);
    if (paused_all_ || paused_.count(db.name) > 0) entry->pool->pause();
    pools_.emplace(key, entry);
    return entry;
}

void pool_registry::start() {
    for (const auto& [dn, db] : cfg_->databases) {
        for (const auto& [un, user] : cfg_->users) {
            if (resolve_pool(*cfg_, db, user).settings.min_pool_size > 0) get(db, user);
        }
    }
    schedule();
}

void pool_registry::schedule() {
    // Four times a second: idle timeouts and lifetimes are enforced within 250 ms.
    timer_.expires_after(std::chrono::milliseconds(250));
    timer_.async_wait([this](error_code ec) {
        if (ec) return;
        std::vector<std::shared_ptr<pool_entry>> all;
        {
            std::lock_guard lock(mu_);
            if (closed_) return;
            for (auto& [k, e] : pools_)
                all.push_back(e);
        }
        for (auto& e : all)
            e->pool->maintain();
        schedule();
    });
}

namespace {

// Whether two configs log into the same server the same way for (database, user).
bool same_backend(const database_config& a, const database_config& b) {
    return a.host == b.host && a.port == b.port && a.dbname == b.dbname &&
           a.server_tls == b.server_tls && a.server_tls_ca_file == b.server_tls_ca_file &&
           a.server_user == b.server_user && a.server_password == b.server_password;
}
bool same_credentials(const user_config& a, const user_config& b) {
    return a.password == b.password && a.md5_hash == b.md5_hash &&
           a.scram_verifier == b.scram_verifier;
}

}  // namespace

void pool_registry::reload(std::shared_ptr<const config> cfg) {
    std::vector<std::shared_ptr<pool_entry>> draining;
    {
        std::lock_guard lock(mu_);
        const auto old = cfg_;
        cfg_ = cfg;
        for (auto it = pools_.begin(); it != pools_.end();) {
            const auto& [dbname, username] = it->first;
            auto& entry = it->second;
            const auto ndb = cfg->databases.find(dbname);
            const auto nuser = cfg->users.find(username);
            const auto odb = old->databases.find(dbname);
            const auto ouser = old->users.find(username);
            const bool kept = ndb != cfg->databases.end() && nuser != cfg->users.end() &&
                              odb != old->databases.end() && ouser != old->users.end() &&
                              same_backend(odb->second, ndb->second) &&
                              same_credentials(ouser->second, nuser->second);
            if (kept) {
                auto resolved = resolve_pool(*cfg, ndb->second, nuser->second);
                if (resolved.mode == entry->cfg.mode &&
                    resolved.server_reset_query == entry->cfg.server_reset_query) {
                    entry->pool->set_settings(resolved.settings);
                    ++it;
                    continue;
                }
            }
            // Replaced or removed: new clients get a new pool (or none); this one drains.
            auto s = entry->cfg.settings;
            s.min_pool_size = 0;
            entry->pool->set_settings(s);
            draining.push_back(entry);
            it = pools_.erase(it);
        }
    }
    for (const auto& e : draining)
        spdlog::info("pool {}/{} drains: its database or user changed or was removed", e->database,
                     e->user);
    // Warm pools for new (database, user) pairs.
    for (const auto& [dn, db] : cfg->databases) {
        for (const auto& [un, user] : cfg->users) {
            if (resolve_pool(*cfg, db, user).settings.min_pool_size > 0) get(db, user);
        }
    }
}

std::vector<std::shared_ptr<pool_entry>> pool_registry::entries() {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<pool_entry>> out;
    for (const auto& [k, e] : pools_)
        out.push_back(e);
    return out;
}

void pool_registry::pause(const std::string& database) {
    std::lock_guard lock(mu_);
    if (database.empty())
        paused_all_ = true;
    else
        paused_.insert(database);
    for (const auto& [k, e] : pools_)
        if (database.empty() || e->database == database) e->pool->pause();
}

std::string pool_registry::resume(const std::string& database) {
    std::lock_guard lock(mu_);
    if (!database.empty() && paused_all_)
        return "all databases are paused; RESUME without a database name resumes them";
    if (database.empty()) {
        paused_all_ = false;
        paused_.clear();
    } else {
        paused_.erase(database);
    }
    for (const auto& [k, e] : pools_)
        if (database.empty() || e->database == database) e->pool->resume();
    return {};
}

bool pool_registry::paused(const std::string& database) {
    std::lock_guard lock(mu_);
    return paused_all_ || paused_.count(database) > 0;
}

void pool_registry::close_all() {
    std::vector<std::shared_ptr<pool_entry>> all;
    {
        std::lock_guard lock(mu_);
        if (closed_) return;
        closed_ = true;
        for (auto& [k, e] : pools_)
            all.push_back(e);
    }
    error_code ignored;
    timer_.cancel();
    for (auto& e : all)
        e->pool->close();
}

}  // namespace shardgate::proxy
