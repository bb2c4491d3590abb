// The prepared statements shardgate made on one server connection (transaction pooling), in
// LRU order. Pure bookkeeping, no I/O: the session core includes it.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>

namespace shardgate::pool {

// The shardgate-named prepared statements a server connection holds (transaction pooling),
// by global statement id, least recently used first.
class prepared_set {
  public:
    [[nodiscard]] bool contains(std::uint64_t id) const { return where_.count(id) != 0; }
    void touch(std::uint64_t id) {
        auto it = where_.find(id);
        if (it != where_.end()) order_.splice(order_.end(), order_, it->second);
    }
    // Records `id`; returns the id to close first when that exceeds `capacity`.
    std::optional<std::uint64_t> add(std::uint64_t id, std::size_t capacity) {
        if (contains(id)) {
            touch(id);
            return std::nullopt;
        }
        order_.push_back(id);
        where_[id] = std::prev(order_.end());
        if (order_.size() <= capacity) return std::nullopt;
        const auto victim = order_.front();
        remove(victim);
        return victim;
    }
    void remove(std::uint64_t id) {
        auto it = where_.find(id);
        if (it == where_.end()) return;
        order_.erase(it->second);
        where_.erase(it);
    }
    void clear() {
        order_.clear();
        where_.clear();
    }
    [[nodiscard]] std::size_t size() const { return order_.size(); }

  private:
    std::list<std::uint64_t> order_;
    std::unordered_map<std::uint64_t, std::list<std::uint64_t>::iterator> where_;
};

}  // namespace shardgate::pool
