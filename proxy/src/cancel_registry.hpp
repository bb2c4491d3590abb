// Maps the BackendKeyData shardgate gives clients to the server connection a cancel must reach.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace shardgate::proxy {

struct backend_key {
    std::int32_t pid = 0;
    std::int32_t secret = 0;
};

// Where a CancelRequest for one client session must go.
struct cancel_target {
    std::string host;
    std::uint16_t port = 0;
    backend_key server_key;
};

// Thread-safe: sessions on every worker register here; cancels arrive on any worker.
class cancel_registry {
  public:
    // Issues a fresh key for a new client session (pid unique while registered, secret random).
    backend_key issue();
    // Points a session's key at its current server connection.
    void set_target(const backend_key& key, cancel_target target);
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
