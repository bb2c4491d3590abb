// One shard for tests: a Postgres primary plus N streaming replicas, each on its own port.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "shardgate/testsupport/pg_server.hpp"

namespace shardgate::testsupport {

struct pg_shard_options {
    std::string name = "shard0";  // servers are "<name>-primary", "<name>-replica1", ...
    int replicas = 0;
    pg_server_options server;  // name is overridden per server
};

class pg_shard {
  public:
    // In its own temporary directory.
    explicit pg_shard(pg_shard_options options = {});
    // In a shared directory; replicas are cloned in parallel.
    pg_shard(std::shared_ptr<work_dir> dir, pg_shard_options options);
    ~pg_shard();  // replicas first, then the primary
    pg_shard(const pg_shard&) = delete;
    pg_shard& operator=(const pg_shard&) = delete;

    const std::string& name() const { return options_.name; }
    pg_server& primary() { return *primary_; }
    const pg_server& primary() const { return *primary_; }
    pg_server& replica(std::size_t i) { return *replicas_.at(i); }
    const pg_server& replica(std::size_t i) const { return *replicas_.at(i); }
    std::size_t replica_count() const { return replicas_.size(); }
    std::vector<pg_server*> servers();  // primary first

    // Clones one more replica from the primary and starts it.
    pg_server& add_replica();

    // Waits until pg_stat_replication on the primary shows every replica as streaming and every
    // replica has replayed everything the primary had written when this was called. All
    // replicas must be running. Throws on timeout, with what is missing.
    void wait_for_replicas_streaming(std::chrono::milliseconds timeout = 30s) const;

  private:
    std::shared_ptr<work_dir> dir_;
    pg_shard_options options_;
    std::unique_ptr<pg_server> primary_;
    std::vector<std::unique_ptr<pg_server>> replicas_;  // declared last: destroyed first
    int next_replica_ = 1;
};

// "X/Y" (pg_lsn text) to a 64-bit position.
std::uint64_t parse_lsn(const std::string& text);

}  // namespace shardgate::testsupport
