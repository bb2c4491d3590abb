#include "core/prepared_registry.hpp"

namespace shardgate::proxy {

std::uint64_t prepared_registry::intern(std::span<const std::byte> key) {
    std::string k(reinterpret_cast<const char*>(key.data()), key.size());
    std::lock_guard lock(mu_);
    auto [it, inserted] = ids_.emplace(std::move(k), next_);
    if (inserted) ++next_;
    return it->second;
}

std::size_t prepared_registry::size() const {
    std::lock_guard lock(mu_);
    return ids_.size();
}

}  // namespace shardgate::proxy
