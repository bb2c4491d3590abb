// Bounded LRU cache: query shape (hash + normalized text) -> shared immutable value, e.g. a plan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace shardgate::router {

struct shape_cache_stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t evictions = 0;   // entries dropped to make room (least recently used first)
    std::uint64_t collisions = 0;  // same 64-bit hash, different shape text (found or replaced)
    std::size_t size = 0;
    std::size_t capacity = 0;
};

// The type-erased engine behind shape_cache<T>. Lookup, insert and eviction are O(1): an
// open-addressing table keyed by the shape hash (already well mixed) indexes a fixed array of
// entries threaded on an LRU list. An entry matches only when the stored shape text equals the
// query's, so a hash collision is a miss, never a wrong plan; one entry per hash value (a
// colliding insert replaces it).
//
// Thread-compatible, not thread-safe: give each worker thread its own cache (no locks, no
// atomics besides the shared_ptr counts of values handed out).
class shape_cache_core {
  public:
    explicit shape_cache_core(std::size_t capacity);

    // The value for {hash, shape}, marked most recently used; nullptr on a miss. The pointer is
    // valid until the next insert, erase or clear on this cache.
    [[nodiscard]] const std::shared_ptr<const void>* find(std::uint64_t hash,
                                                          std::string_view shape);
    // Inserts or replaces; evicts the least recently used entry when full.
    void insert(std::uint64_t hash, std::string_view shape, std::shared_ptr<const void> value);
    bool erase(std::uint64_t hash, std::string_view shape);
    void clear();

    [[nodiscard]] shape_cache_stats stats() const;
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] std::size_t capacity() const { return entries_.size(); }

  private:
    static constexpr std::uint32_t none_ = 0xffffffffU;
    struct entry {
        std::uint64_t hash = 0;
        std::string shape;
        std::shared_ptr<const void> value;
        std::uint32_t prev = none_;  // towards the most recently used
        std::uint32_t next = none_;  // towards the least recently used
    };

    // The bucket holding hash, or the empty bucket where its probe ends.
    [[nodiscard]] std::size_t bucket_of(std::uint64_t hash) const;
    void unlink(std::uint32_t e);
    void push_front(std::uint32_t e);
    void erase_bucket(std::size_t b);

    std::vector<entry> entries_;        // fixed at capacity
    std::vector<std::uint32_t> table_;  // entry index or none_; power of two, >= 2 x capacity
    std::size_t mask_ = 0;
    std::size_t size_ = 0;        // live entries
    std::uint32_t used_ = 0;      // entries [0, used_) have been handed out at least once
    std::uint32_t free_ = none_;  // erased entries, chained through next
    std::uint32_t head_ = none_;  // most recently used
    std::uint32_t tail_ = none_;  // least recently used
    shape_cache_stats stats_;
};

template <class T>
class shape_cache {
  public:
    explicit shape_cache(std::size_t capacity) : core_(capacity) {}

    // Shared ownership: the value outlives eviction for as long as the caller holds it.
    [[nodiscard]] std::shared_ptr<const T> find(std::uint64_t hash, std::string_view shape) {
        const auto* v = core_.find(hash, shape);
        return v != nullptr ? std::static_pointer_cast<const T>(*v) : nullptr;
    }
    // No reference-count traffic: valid until the next insert, erase or clear.
    [[nodiscard]] const T* find_ptr(std::uint64_t hash, std::string_view shape) {
        const auto* v = core_.find(hash, shape);
        return v != nullptr ? static_cast<const T*>(v->get()) : nullptr;
    }
    void insert(std::uint64_t hash, std::string_view shape, std::shared_ptr<const T> value) {
        core_.insert(hash, shape, std::move(value));
    }
    bool erase(std::uint64_t hash, std::string_view shape) { return core_.erase(hash, shape); }
    void clear() { core_.clear(); }
    [[nodiscard]] shape_cache_stats stats() const { return core_.stats(); }
    [[nodiscard]] std::size_t size() const { return core_.size(); }
    [[nodiscard]] std::size_t capacity() const { return core_.capacity(); }

  private:
    shape_cache_core core_;
};

}  // namespace shardgate::router
