// Maps the BackendKeyData shardgate gives clients to the server connection a cancel must reach.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "shardgate/pool/server_login.hpp"

namespace shardgate::proxy {

using pool::backend_key;
using pool::cancel_target;

// Thread-safe: sessions on every worker register here; cancels arrive on any worker.
class cancel_registry {
  public:
    // Issues a fresh key for a new client session (pid unique while registered, secret random).
    backend_key issue();
    // Points a session's key at its current server connection.
    void set_target(const backend_key& key, cancel_target target);
    // The session holds no server connection now (transaction pooling): cancels are dropped.
    void clear_target(const backend_key& key);
    void release(const backend_key& key);
    // The target, if the key (pid and secret) matches a live session.
    std::optional<cancel_target> find(const backend_key& key) const;

  private:
    struct entry {
        std::int32_t secret;
        std::optional<cancel_target> target;
    };
    mutable std::mutex mu_;
    std::unordered_map<std::int32_t, entry> entries_;
    std::int32_t next_pid_ = 0;
};

}  // namespace shardgate::proxy
