// Maps the BackendKeyData shardgate gives clients to the server connection a cancel must reach.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "shardgate/pool/server_login.hpp"

namespace shardgate::proxy {

using pool::backend_key;
using pool::cancel_target;

// A server cancels may go to, at a stable address (read/write splitting: one per server of a
// database, owned by its split_database, which outlives every session that points at it).
struct cancel_endpoint {
    std::string host;
    std::uint16_t port = 0;
};

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

    // Transaction pooling changes a session's server connection every transaction; the host
    // and port stay. After a first set_target, a session takes its slot and points it at each
    // new connection's backend key without the registry's lock.
    class slot {
      public:
        void point(const backend_key& server) {
            server_.store(pack(server), std::memory_order_release);
        }
        // The same, on a server of its own (read/write splitting). A cancel read between the
        // two stores may pair the new key with the old host: that server knows no such key
        // and ignores it.
        void point(const backend_key& server, const cancel_endpoint* at) {
            where_.store(at, std::memory_order_release);
            server_.store(pack(server), std::memory_order_release);
        }
        void clear() { server_.store(0, std::memory_order_release); }

      private:
        friend class cancel_registry;
        static std::uint64_t pack(const backend_key& k) {
            return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(k.pid)) << 32) |
                   static_cast<std::uint32_t>(k.secret);
        }
        std::string host_;  // written under the registry's lock
        std::uint16_t port_ = 0;
        std::atomic<std::uint64_t> server_{0};  // pid << 32 | secret; 0: none (pids are > 0)
        std::atomic<const cancel_endpoint*> where_{nullptr};  // null: host_ and port_
    };
    std::shared_ptr<slot> slot_of(const backend_key& key);

  private:
    struct entry {
        std::int32_t secret;
        std::shared_ptr<slot> target;
    };
    mutable std::mutex mu_;
    std::unordered_map<std::int32_t, entry> entries_;
    std::int32_t next_pid_ = 0;
};

}  // namespace shardgate::proxy
