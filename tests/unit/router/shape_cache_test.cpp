// shape_cache: hits, misses, LRU eviction, collisions, erase/clear, counters.
#include "shardgate/router/shape_cache.hpp"

#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>

using shardgate::router::shape_cache;

namespace {
struct plan {
    int shard;
};
std::shared_ptr<const plan> make(int s) {
    return std::make_shared<const plan>(plan{s});
}
}  // namespace

TEST_CASE("hit, miss and replacement") {
    shape_cache<plan> c(4);
    CHECK(c.find(1, "a") == nullptr);
    c.insert(1, "a", make(10));
    REQUIRE(c.find(1, "a") != nullptr);
    CHECK(c.find(1, "a")->shard == 10);
    CHECK(c.find_ptr(1, "a")->shard == 10);
    c.insert(1, "a", make(11));
    CHECK(c.find(1, "a")->shard == 11);
    CHECK(c.size() == 1);
    const auto s = c.stats();
    CHECK(s.hits == 4);
    CHECK(s.misses == 1);
    CHECK(s.evictions == 0);
    CHECK(s.capacity == 4);
    CHECK(s.size == 1);
}

TEST_CASE("a hash collision is a miss, never the other shape's value") {
    shape_cache<plan> c(4);
    c.insert(42, "select $?", make(1));
    CHECK(c.find(42, "select $? from t") == nullptr);
    CHECK(c.stats().collisions == 1);
    c.insert(42, "select $? from t", make(2));  // replaces: one entry per hash
    CHECK(c.find(42, "select $?") == nullptr);
    CHECK(c.find(42, "select $? from t")->shard == 2);
    CHECK(c.size() == 1);
}

TEST_CASE("least recently used entry goes first; values outlive eviction") {
    shape_cache<plan> c(3);
    c.insert(1, "a", make(1));
    c.insert(2, "b", make(2));
    c.insert(3, "c", make(3));
    const auto held = c.find(1, "a");  // 1 is now the most recent: 2 is the oldest
    c.insert(4, "d", make(4));
    CHECK(c.find(2, "b") == nullptr);
    CHECK(c.find(1, "a") != nullptr);
    CHECK(c.find(3, "c") != nullptr);
    CHECK(c.find(4, "d") != nullptr);
    CHECK(c.stats().evictions == 1);
    c.insert(5, "e", make(5));  // oldest now: 1
    CHECK(c.find(1, "a") == nullptr);
    CHECK(held->shard == 1);
    CHECK(c.size() == 3);
}

TEST_CASE("erase and clear") {
    shape_cache<plan> c(2);
    c.insert(1, "a", make(1));
    c.insert(2, "b", make(2));
    CHECK(!c.erase(1, "x"));
    CHECK(c.erase(1, "a"));
    CHECK(c.size() == 1);
    c.insert(3, "c", make(3));  // reuses the erased slot: no eviction
    CHECK(c.stats().evictions == 0);
    CHECK(c.find(2, "b") != nullptr);
    c.clear();
    CHECK(c.size() == 0);
    CHECK(c.find(2, "b") == nullptr);
    c.insert(2, "b", make(7));
    CHECK(c.find(2, "b")->shard == 7);
}

TEST_CASE("random operations agree with a reference LRU model") {
    // Small hash space and table so that probe chains wrap and backward shifts happen.
    constexpr std::size_t capacity = 16;
    shape_cache<plan> c(capacity);
    std::map<std::uint64_t, std::pair<int, std::uint64_t>> model;  // hash -> {value, last use}
    std::mt19937_64 rng(7);
    std::uint64_t clock = 0;
    for (int i = 0; i < 200000; ++i) {
        // Hashes collide in their low bits (same bucket) but not in full.
        const std::uint64_t h = (rng() % 40) * 64;
        const std::string shape = "s" + std::to_string(h);
        const auto op = rng() % 10;
        ++clock;
        if (op < 5) {
            const plan* p = c.find_ptr(h, shape);
            const auto it = model.find(h);
            REQUIRE((p != nullptr) == (it != model.end()));
            if (p != nullptr) {
                REQUIRE(p->shard == it->second.first);
                it->second.second = clock;
            }
        } else if (op < 9) {
            const int v = static_cast<int>(rng() % 1000);
            c.insert(h, shape, make(v));
            if (model.find(h) == model.end() && model.size() == capacity) {
                auto oldest = model.begin();
                for (auto it = model.begin(); it != model.end(); ++it) {
                    if (it->second.second < oldest->second.second) oldest = it;
                }
                model.erase(oldest);
            }
            model[h] = {v, clock};
        } else {
            REQUIRE(c.erase(h, shape) == (model.erase(h) == 1));
        }
        REQUIRE(c.size() == model.size());
    }
}
