// The replica monitor's registry: which databases are polled, their feeds, start/stop/update.
#include "shardgate/pool/replica_monitor.hpp"

#include <set>

#include "database_monitor.hpp"

namespace shardgate::pool {
namespace {

bool same_address(const backend_address& a, const backend_address& b) {
    return a.name == b.name && a.host == b.host && a.port == b.port && a.dbname == b.dbname &&
           a.tls_mode == b.tls_mode;
}

bool same_config(const monitored_database& a, const monitored_database& b) {
    if (a.name != b.name || !same_address(a.primary, b.primary) || a.user != b.user ||
        a.password != b.password || a.replicas.size() != b.replicas.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.replicas.size(); ++i) {
        const auto& x = a.replicas[i];
        const auto& y = b.replicas[i];
        if (!same_address(x.address, y.address) || x.weight != y.weight || x.zone != y.zone)
            return false;
    }
    const auto& s = a.settings;
    const auto& t = b.settings;
    return s.interval == t.interval && s.check_timeout == t.check_timeout &&
           s.connect_timeout == t.connect_timeout && s.lag == t.lag;
}

}  // namespace

replica_monitor::replica_monitor(asio::any_io_executor ex, ssl::context* tls)
    : ex_(std::move(ex)), tls_(tls) {}

replica_monitor::~replica_monitor() {
    stop();
}

void replica_monitor::update(std::vector<monitored_database> databases) {
    std::lock_guard lock(mu_);
    std::set<std::string, std::less<>> wanted;
    for (auto& db : databases) {
        wanted.insert(db.name);
        auto it = dbs_.find(db.name);
        if (it != dbs_.end()) {
            if (it->second.poller && same_config(it->second.config, db)) continue;
            stop_locked(it->second);
        }
        auto& feed = feeds_[db.name];
        if (!feed) feed = std::make_shared<health_feed>();
        // A new owner: whatever the old poller still publishes is ignored from here on.
        const auto owner = next_owner_++;
        feed->set_owner(owner);
        auto poller = std::make_shared<database_monitor>(ex_, db, feed, owner, tls_);
        poller->start();
        const std::string name = db.name;
        dbs_.insert_or_assign(name, entry{std::move(db), std::move(poller)});
    }
    for (auto it = dbs_.begin(); it != dbs_.end();) {
        if (wanted.count(it->first) != 0) {
            ++it;
            continue;
        }
        stop_locked(it->second);
        feeds_[it->first]->set_owner(next_owner_++);  // loads null from now on
        it = dbs_.erase(it);
    }
}

void replica_monitor::stop() {
    std::lock_guard lock(mu_);
    for (auto& [name, e] : dbs_)
        stop_locked(e);
}

void replica_monitor::stop_locked(entry& e) {
    if (e.poller) e.poller->stop();
    e.poller.reset();
}

std::shared_ptr<const health_feed> replica_monitor::feed(std::string_view database) const {
    std::lock_guard lock(mu_);
    const auto it = feeds_.find(database);
    if (it == feeds_.end()) return nullptr;
    return it->second;
}

std::shared_ptr<const database_health> replica_monitor::snapshot(std::string_view database) const {
    const auto f = feed(database);
    return f ? f->load() : nullptr;
}

std::vector<std::string> replica_monitor::databases() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [name, e] : dbs_)
        if (e.poller) out.push_back(name);
    return out;
}

}  // namespace shardgate::pool
