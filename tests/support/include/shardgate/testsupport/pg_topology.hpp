// A test topology: K shards, each a Postgres primary with streaming replicas, in one temp dir.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "shardgate/testsupport/pg_shard.hpp"
#include "shardgate/testsupport/work_dir.hpp"

namespace shardgate::testsupport {

struct topology_options {
    int shards = 1;
    int replicas = 0;  // per shard
    bool tls = false;
    bool tls_only = false;
    auth_method auth = auth_method::scram_sha_256;
    int max_connections = 200;
    std::vector<std::string> extra_conf{};  // postgresql.conf lines for every server
};

// Shards are named shard0, shard1, ... and built concurrently. Everything is torn down by the
// destructor (replicas, primaries, then the directory).
class pg_topology {
  public:
    class builder {
      public:
        builder& shards(int n) {
            options_.shards = n;
            return *this;
        }
        builder& replicas(int per_shard) {
            options_.replicas = per_shard;
            return *this;
        }
        builder& tls(bool on = true) {
            options_.tls = on;
            return *this;
        }
        builder& tls_only(bool on = true) {
            options_.tls = options_.tls || on;
            options_.tls_only = on;
            return *this;
        }
        builder& auth(auth_method method) {
            options_.auth = method;
            return *this;
        }
        builder& max_connections(int n) {
            options_.max_connections = n;
            return *this;
        }
        builder& extra_conf(std::string line) {
            options_.extra_conf.push_back(std::move(line));
            return *this;
        }
        const topology_options& options() const { return options_; }
        pg_topology build() const {
            auto o = options_;
            if (client_tls_run()) o.tls = true;
            return pg_topology(o);
        }

      private:
        topology_options options_;
    };

    explicit pg_topology(topology_options options);
    ~pg_topology();
    pg_topology(pg_topology&&) = default;
    pg_topology& operator=(pg_topology&&) = default;

    std::size_t shard_count() const { return shards_.size(); }
    pg_shard& shard(std::size_t i) { return *shards_.at(i); }
    const pg_shard& shard(std::size_t i) const { return *shards_.at(i); }
    std::vector<pg_server*> servers();  // every server, shard by shard, primary first
    const topology_options& options() const { return options_; }
    const std::filesystem::path& dir() const { return dir_->path(); }
    std::shared_ptr<work_dir> shared_dir() const { return dir_; }
    // Test CA and server certificate (generated on first use even without tls servers).
    const tls_files& tls() const { return dir_->tls(); }

    // On every shard's primary (replicas follow by replication).
    void create_role(const std::string& name, const std::string& password,
                     auth_method encryption = auth_method::scram_sha_256) const;
    void create_database(const std::string& name, const std::string& owner = "") const;
    void exec_on_primaries(const std::string& sql, const std::string& dbname = "postgres") const;

    void wait_for_replicas_streaming(std::chrono::milliseconds timeout = 30s) const;

  private:
    std::shared_ptr<work_dir> dir_;
    topology_options options_;
    std::vector<std::unique_ptr<pg_shard>> shards_;  // declared after dir_: destroyed first
};

}  // namespace shardgate::testsupport
