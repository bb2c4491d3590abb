// A test topology of K shards, built concurrently in one temporary directory.
#include "shardgate/testsupport/pg_topology.hpp"

#include <future>

namespace shardgate::testsupport {

pg_topology::pg_topology(topology_options options)
    : dir_(std::make_shared<work_dir>("shardgate-topology")), options_(std::move(options)) {
    if (options_.shards < 1) throw std::invalid_argument("a topology needs at least one shard");
    if (options_.tls) dir_->tls();  // once, before the shards race for it
    std::vector<std::future<std::unique_ptr<pg_shard>>> pending;
    for (int i = 0; i < options_.shards; ++i) {
        pg_shard_options s;
        s.name = "shard" + std::to_string(i);
        s.replicas = options_.replicas;
        s.server.max_connections = options_.max_connections;
        s.server.auth = options_.auth;
        s.server.tls = options_.tls;
        s.server.tls_only = options_.tls_only;
        s.server.extra_conf = options_.extra_conf;
        pending.push_back(std::async(
            std::launch::async, [dir = dir_, s] { return std::make_unique<pg_shard>(dir, s); }));
    }
    std::exception_ptr failure;
    for (auto& f : pending) {
        try {
            shards_.push_back(f.get());
        } catch (...) {
            if (!failure) failure = std::current_exception();
        }
    }
    if (failure) std::rethrow_exception(failure);
}

pg_topology::~pg_topology() {
    shards_.clear();
}

std::vector<pg_server*> pg_topology::servers() {
    std::vector<pg_server*> out;
    for (auto& s : shards_) {
        auto more = s->servers();
        out.insert(out.end(), more.begin(), more.end());
    }
    return out;
}

void pg_topology::create_role(const std::string& name, const std::string& password,
                              auth_method encryption) const {
    for (const auto& s : shards_)
        s->primary().create_role(name, password, encryption);
}

void pg_topology::create_database(const std::string& name, const std::string& owner) const {
    for (const auto& s : shards_)
        s->primary().create_database(name, owner);
}

void pg_topology::exec_on_primaries(const std::string& sql, const std::string& dbname) const {
    for (const auto& s : shards_)
        s->primary().exec(sql, dbname);
}

void pg_topology::wait_for_replicas_streaming(std::chrono::milliseconds timeout) const {
    for (const auto& s : shards_)
        s->wait_for_replicas_streaming(timeout);
}

}  // namespace shardgate::testsupport
