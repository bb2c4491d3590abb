// Pool registry: pool creation, server login requests for pooled connections, upkeep.
#include "control/pools.hpp"

#include "shardgate/pool/probe.hpp"

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
    const asio::any_io_executor& maint_ex)
    : cfg_(std::move(cfg)),
      tls_(tls),
      maint_ex_(maint_ex),
      timer_(maint_ex),
      catalog_timer_(maint_ex) {}

pool_registry::~pool_registry() {
    try {
        close_all();
    } catch (const std::exception& e) {
        spdlog::error("closing the pools: {}", e.what());
    }
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
    auto login_to = [cfg = cfg_, &db, &user, tls, weak](const std::string& host,
                                                        std::uint16_t port) {
        return [cfg, &db, &user, tls, weak, host, port]() -> std::optional<server_login_request> {
            auto e = weak.lock();
            if (!e) return std::nullopt;
            server_login_request req;
            req.backend = backend_address{db.name, host, port, db.dbname, db.server_tls};
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
    };
    entry->pool = std::make_shared<pool::server_pool>(
        db.name + "/" + user.name, entry->cfg.settings, maint_ex_, login_to(db.host, db.port));
    entry->consistency = resolve_consistency(db, user);
    if (db.read_write_split && !db.replicas.empty()) {
        for (const auto& r : db.replicas) {
            entry->replicas.push_back(std::make_shared<pool::server_pool>(
                db.name + "/" + user.name + "@" + r.host + ":" + std::to_string(r.port),
                entry->cfg.settings, maint_ex_, login_to(r.host, r.port)));
        }
        auto& sd = splits_[db.name];
        if (!sd)
            sd = std::make_shared<split_database>(db, monitor_ ? monitor_->feed(db.name) : nullptr);
        entry->split = sd;
    }
    if (paused_all_ || paused_.count(db.name) > 0) {
        entry->pool->pause();
        for (auto& r : entry->replicas)
            r->pause();
    }
    pools_.emplace(key, entry);
    return entry;
}

std::shared_ptr<split_database> pool_registry::split(const std::string& database) {
    std::lock_guard lock(mu_);
    auto it = splits_.find(database);
    return it == splits_.end() ? nullptr : it->second;
}

namespace {

// Who the health checks and the catalog reader log in as: the database's server_user, else
// the first configured user with a plaintext password (any role may run the checks).
std::optional<std::pair<std::string, std::string>> monitor_login(const config& c,
                                                                 const database_config& db) {
    if (!db.server_user.empty() && !db.server_password.empty())
        return std::make_pair(db.server_user, db.server_password);
    for (const auto& [name, u] : c.users)
        if (!u.password.empty()) return std::make_pair(name, u.password);
    return std::nullopt;
}

}  // namespace

void pool_registry::start_monitor() {
    // Under mu_.
    std::vector<pool::monitored_database> dbs;
    for (const auto& [dn, db] : cfg_->databases) {
        if (!db.read_write_split || db.replicas.empty()) continue;
        const auto who = monitor_login(*cfg_, db);
        if (!who) {
            spdlog::warn(
                "database {}: no user with a password to check its replicas with; reads "
                "go to the primary",
                db.name);
            continue;
        }
        pool::monitored_database m;
        m.name = db.name;
        m.primary = backend_address{db.name, db.host, db.port, db.dbname, db.server_tls};
        for (const auto& r : db.replicas)
            m.replicas.push_back(
                {backend_address{db.name, r.host, r.port, db.dbname, db.server_tls}, r.weight,
                 r.zone});
        m.user = who->first;
        m.password = who->second;
        m.settings.interval = cfg_->replica_check_interval;
        m.settings.check_timeout = cfg_->replica_check_timeout;
        m.settings.connect_timeout = cfg_->server_connect_timeout;
        m.settings.lag.max_lag_bytes = db.max_lag_bytes;
        m.settings.lag.max_lag_ms = db.max_lag_time;
        m.settings.lag.readmit_lag_bytes = db.readmit_lag_bytes;
        m.settings.lag.readmit_lag_ms = db.readmit_lag_time;
        dbs.push_back(std::move(m));
    }
    if (!monitor_ && dbs.empty()) return;
    if (!monitor_) {
        auto tls_it = tls_.begin();
        monitor_ = std::make_unique<pool::replica_monitor>(
            maint_ex_, tls_it == tls_.end() ? nullptr : tls_it->second.get());
    }
    monitor_->update(dbs);
    // Databases whose splitting configuration changed get a new state; pools made before keep
    // the old one while they drain.
    std::map<std::string, std::shared_ptr<split_database>, std::less<>> next;
    for (const auto& m : dbs) {
        const auto& db = cfg_->databases.at(m.name);
        auto old = splits_.find(m.name);
        if (old != splits_.end() && old->second->config().replicas.size() == db.replicas.size())
            next[m.name] = old->second;
        else
            next[m.name] = std::make_shared<split_database>(db, monitor_->feed(m.name));
    }
    splits_ = std::move(next);
}

void pool_registry::refresh_catalogs() {
    std::vector<std::pair<std::shared_ptr<split_database>, pool::monitored_database>> todo;
    {
        std::lock_guard lock(mu_);
        if (closed_) return;
        for (const auto& [name, sd] : splits_) {
            const auto& db = sd->config();
            const auto who = monitor_login(*cfg_, db);
            if (!who) continue;
            pool::monitored_database m;
            m.name = db.name;
            m.primary = backend_address{db.name, db.host, db.port, db.dbname, db.server_tls};
            m.user = who->first;
            m.password = who->second;
            m.settings.connect_timeout = cfg_->server_connect_timeout;
            todo.emplace_back(sd, std::move(m));
        }
    }
    bool missing = false;
    for (auto& [sd, m] : todo) {
        missing = missing || !sd->catalog();
        asio::co_spawn(maint_ex_, load_catalog(sd, std::move(m)), asio::detached);
    }
    // Until every catalog was read once, try again each second.
    catalog_timer_.expires_after(missing || todo.empty() ? std::chrono::milliseconds(1000)
                                                         : cfg_->function_catalog_refresh);
    catalog_timer_.async_wait([this](error_code ec) {
        if (!ec) refresh_catalogs();
    });
}

awaitable<void> pool_registry::load_catalog(std::shared_ptr<split_database> db,
                                            pool::monitored_database m) {
    // The user functions Postgres marks volatile, in one row (the probe reads one).
    static constexpr std::string_view sql =
        "SELECT coalesce(string_agg(n.nspname || '.' || p.proname, ','), '') FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.provolatile = 'v' AND "
        "n.nspname NOT IN ('pg_catalog', 'information_schema')";
    server_login_request req;
    req.backend = m.primary;
    req.user = m.user;
    req.password = m.password;
    req.params = {{"application_name", "shardgate-catalog"}};
    auto tls_it = tls_.find(m.name);
    req.tls = tls_it == tls_.end() ? nullptr : tls_it->second.get();
    req.timeout = m.settings.connect_timeout;
    auto login = co_await pool::async_server_login(maint_ex_, std::move(req));
    if (!login.ok()) {
        spdlog::warn("database {}: cannot read the function catalog: {}", m.name,
                     login.error_message);
        co_return;
    }
    auto reply = co_await pool::async_probe(*login.stream, sql, m.settings.connect_timeout);
    pool::close_politely(*login.stream);
    if (reply.failure != pool::check_failure::none || reply.row.empty() || !reply.row[0]) {
        spdlog::warn("database {}: cannot read the function catalog: {}", m.name, reply.error);
        co_return;
    }
    auto cat = std::make_shared<router::function_catalog>();
    for (const auto& f : db->config().write_functions)
        cat->add_write_function(f);
    for (const auto& f : db->config().read_only_functions)
        cat->add_read_only_function(f);
    std::size_t count = 0;
    const std::string& all = *reply.row[0];
    for (std::size_t at = 0; at < all.size();) {
        auto end = all.find(',', at);
        if (end == std::string::npos) end = all.size();
        const std::string_view item(all.data() + at, end - at);
        const auto dot = item.find('.');
        if (dot != std::string_view::npos) {
            cat->add_volatile(item.substr(0, dot), item.substr(dot + 1));
            ++count;
        }
        at = end + 1;
    }
    if (!db->catalog()) spdlog::info("database {}: {} volatile user functions", m.name, count);
    db->set_catalog(std::move(cat));
}

void pool_registry::start() {
    {
        std::lock_guard lock(mu_);
        start_monitor();
    }
    refresh_catalogs();
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
        for (auto& e : all) {
            e->pool->maintain();
            for (auto& r : e->replicas)
                r->maintain();
        }
        schedule();
    });
}

namespace {

// Whether two configs log into the same server the same way for (database, user).
bool same_backend(const database_config& a, const database_config& b) {
    auto same_replicas = [](const database_config& x, const database_config& y) {
        if (x.replicas.size() != y.replicas.size() || x.read_write_split != y.read_write_split)
            return false;
        for (std::size_t i = 0; i < x.replicas.size(); ++i)
            if (x.replicas[i].host != y.replicas[i].host ||
                x.replicas[i].port != y.replicas[i].port)
                return false;
        return true;
    };
    return same_replicas(a, b) && a.host == b.host && a.port == b.port && a.dbname == b.dbname &&
           a.server_tls == b.server_tls && a.server_tls_ca_file == b.server_tls_ca_file &&
           a.server_user == b.server_user && a.server_password == b.server_password;
}
bool same_credentials(const user_config& a, const user_config& b) {
    return a.password == b.password && a.md5_hash == b.md5_hash &&
           a.scram_verifier == b.scram_verifier;
}

}  // namespace

void pool_registry::reload(const std::shared_ptr<const config>& cfg) {
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
                    for (auto& r : entry->replicas)
                        r->set_settings(resolved.settings);
                    ++it;
                    continue;
                }
            }
            // Replaced or removed: new clients get a new pool (or none); this one drains.
            auto s = entry->cfg.settings;
            s.min_pool_size = 0;
            entry->pool->set_settings(s);
            for (auto& r : entry->replicas)
                r->set_settings(s);
            draining.push_back(entry);
            it = pools_.erase(it);
        }
    }
    {
        std::lock_guard lock(mu_);
        start_monitor();
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
        if (database.empty() || e->database == database) {
            e->pool->pause();
            for (auto& r : e->replicas)
                r->pause();
        }
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
        if (database.empty() || e->database == database) {
            e->pool->resume();
            for (auto& r : e->replicas)
                r->resume();
        }
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
    timer_.cancel();
    catalog_timer_.cancel();
    {
        std::lock_guard lock(mu_);
        if (monitor_) monitor_->stop();
    }
    for (auto& e : all) {
        e->pool->close();
        for (auto& r : e->replicas)
            r->close();
    }
}

}  // namespace shardgate::proxy
