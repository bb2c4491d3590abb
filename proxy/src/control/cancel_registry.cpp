// Cancel key registry: issue, point at a server, look up, release.
#include "control/cancel_registry.hpp"

#include <openssl/rand.h>

namespace shardgate::proxy {
namespace {

std::int32_t random_i32() {
    std::int32_t v = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) {
        // RAND_bytes only fails when the CSPRNG cannot be seeded; refuse to issue guessable keys.
        std::abort();
    }
    return v;
}

}  // namespace

backend_key cancel_registry::issue() {
    const std::int32_t secret = random_i32();
    std::lock_guard lock(mu_);
    // Pids are positive and unique among live sessions; they wrap after 2^31 sessions.
    for (;;) {
        next_pid_ = next_pid_ == INT32_MAX ? 1 : next_pid_ + 1;
        if (entries_.try_emplace(next_pid_, entry{secret, std::make_shared<slot>()}).second)
            return {next_pid_, secret};
    }
}

void cancel_registry::set_target(const backend_key& key, cancel_target target) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key.pid);
    if (it == entries_.end() || it->second.secret != key.secret) return;
    auto& sl = *it->second.target;
    sl.host_ = std::move(target.host);
    sl.port_ = target.port;
    sl.point(target.server_key);
}

std::shared_ptr<cancel_registry::slot> cancel_registry::slot_of(const backend_key& key) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key.pid);
    if (it == entries_.end() || it->second.secret != key.secret) return nullptr;
    return it->second.target;
}

void cancel_registry::clear_target(const backend_key& key) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key.pid);
    if (it != entries_.end() && it->second.secret == key.secret) it->second.target->clear();
}

void cancel_registry::release(const backend_key& key) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key.pid);
    if (it != entries_.end() && it->second.secret == key.secret) entries_.erase(it);
}

std::optional<cancel_target> cancel_registry::find(const backend_key& key) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key.pid);
    if (it == entries_.end() || it->second.secret != key.secret) return std::nullopt;
    const auto& sl = *it->second.target;
    const auto v = sl.server_.load(std::memory_order_acquire);
    if (v == 0) return std::nullopt;
    if (const auto* at = sl.where_.load(std::memory_order_acquire)) {
        return cancel_target{at->host, at->port,
                             backend_key{static_cast<std::int32_t>(v >> 32),
                                         static_cast<std::int32_t>(v & 0xffffffffU)}};
    }
    return cancel_target{sl.host_, sl.port_,
                         backend_key{static_cast<std::int32_t>(v >> 32),
                                     static_cast<std::int32_t>(v & 0xffffffffU)}};
}

}  // namespace shardgate::proxy
