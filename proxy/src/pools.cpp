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

pool_registry::pool_registry(
    std::shared_ptr<const config> cfg,
    const std::map<std::string, std::unique_ptr<ssl::context>, std::less<>>& tls,
    asio::any_io_executor maint_ex)
    : cfg_(std::move(cfg)), tls_(tls), maint_ex_(maint_ex), timer_(maint_ex) {}

pool_registry::~pool_registry() {
    close_all();
}

std::shared_ptr<pool_entry> pool_registry::get(const database_config& db, const user_config& user) {
    std::lock_guard lock(mu_);
    auto key = std::make_pair(db.name, user.name);
    if (auto it = pools_.find(key); it != pools_.end()) return it->second;

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
