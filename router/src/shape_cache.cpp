// shape_cache_core: linear-probing table over a fixed entry array threaded on an LRU list.
#include "shardgate/router/shape_cache.hpp"

#include <utility>

namespace shardgate::router {

shape_cache_core::shape_cache_core(std::size_t capacity) {
    if (capacity == 0) capacity = 1;
    if (capacity > 0x3fffffff) capacity = 0x3fffffff;
    entries_.resize(capacity);
    std::size_t buckets = 1;
    while (buckets < capacity * 2)
        buckets <<= 1;
    table_.assign(buckets, none_);
    mask_ = buckets - 1;
    stats_.capacity = capacity;
}

std::size_t shape_cache_core::bucket_of(std::uint64_t hash) const {
    // At most half the buckets are full, so every probe meets an empty bucket.
    std::size_t b = static_cast<std::size_t>(hash) & mask_;
    while (table_[b] != none_ && entries_[table_[b]].hash != hash)
        b = (b + 1) & mask_;
    return b;
}

void shape_cache_core::unlink(std::uint32_t e) {
    entry& x = entries_[e];
    if (x.prev != none_) {
        entries_[x.prev].next = x.next;
    } else {
        head_ = x.next;
    }
    if (x.next != none_) {
        entries_[x.next].prev = x.prev;
    } else {
        tail_ = x.prev;
    }
    x.prev = x.next = none_;
}

void shape_cache_core::push_front(std::uint32_t e) {
    entry& x = entries_[e];
    x.prev = none_;
    x.next = head_;
    if (head_ != none_) entries_[head_].prev = e;
    head_ = e;
    if (tail_ == none_) tail_ = e;
}

void shape_cache_core::erase_bucket(std::size_t b) {
    // Backward-shift deletion keeps every probe chain unbroken without tombstones.
    std::size_t hole = b;
    std::size_t j = b;
    while (true) {
        j = (j + 1) & mask_;
        if (table_[j] == none_) break;
        const std::size_t home = static_cast<std::size_t>(entries_[table_[j]].hash) & mask_;
        // Move j into the hole unless its home lies cyclically in (hole, j].
        const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            table_[hole] = table_[j];
            hole = j;
        }
    }
    table_[hole] = none_;
}

const std::shared_ptr<const void>* shape_cache_core::find(std::uint64_t hash,
                                                          std::string_view shape) {
    const std::uint32_t e = table_[bucket_of(hash)];
    if (e == none_) {
        ++stats_.misses;
        return nullptr;
    }
    entry& x = entries_[e];
    if (x.shape != shape) {
        ++stats_.misses;
        ++stats_.collisions;
        return nullptr;
    }
    ++stats_.hits;
    if (head_ != e) {
        unlink(e);
        push_front(e);
    }
    return &x.value;
}

void shape_cache_core::insert(std::uint64_t hash, std::string_view shape,
                              std::shared_ptr<const void> value) {
    std::size_t b = bucket_of(hash);
    if (table_[b] != none_) {
        entry& x = entries_[table_[b]];
        if (x.shape != shape) {
            ++stats_.collisions;
            x.shape.assign(shape);
        }
        x.value = std::move(value);
        unlink(table_[b]);
        push_front(table_[b]);
        return;
    }
    std::uint32_t e = none_;
    if (free_ != none_) {
        e = free_;
        free_ = entries_[e].next;
        entries_[e].next = none_;
    } else if (used_ < entries_.size()) {
        e = used_++;
    } else {
        e = tail_;  // evict the least recently used
        erase_bucket(bucket_of(entries_[e].hash));
        unlink(e);
        entries_[e].value.reset();
        --size_;
        ++stats_.evictions;
        b = bucket_of(hash);  // the shift may have moved the empty bucket
    }
    entry& x = entries_[e];
    x.hash = hash;
    x.shape.assign(shape);
    x.value = std::move(value);
    table_[b] = e;
    push_front(e);
    ++size_;
}

bool shape_cache_core::erase(std::uint64_t hash, std::string_view shape) {
    const std::size_t b = bucket_of(hash);
    const std::uint32_t e = table_[b];
    if (e == none_ || entries_[e].shape != shape) return false;
    erase_bucket(b);
    unlink(e);
    entries_[e].value.reset();
    entries_[e].next = free_;
    free_ = e;
    --size_;
    return true;
}

void shape_cache_core::clear() {
    for (std::uint32_t i = 0; i < used_; ++i) {
        entries_[i].value.reset();
        entries_[i].prev = entries_[i].next = none_;
    }
    table_.assign(table_.size(), none_);
    head_ = tail_ = free_ = none_;
    used_ = 0;
    size_ = 0;
}

shape_cache_stats shape_cache_core::stats() const {
    shape_cache_stats s = stats_;
    s.size = size_;
    return s;
}

}  // namespace shardgate::router
