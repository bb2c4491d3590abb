// The process-wide ids of protocol-level prepared statements under transaction pooling (one per
// query text and parameter types; statement_mux names them "sg<id>" on the servers).
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>

namespace shardgate::proxy {

// Process-wide: (query, parameter types) -> statement id. Thread-safe.
class prepared_registry {
  public:
    // `key`: the Parse body after the statement name (query, NUL, parameter types).
    std::uint64_t intern(std::span<const std::byte> key);
    [[nodiscard]] std::size_t size() const;

  private:
    mutable std::mutex mu_;
    std::unordered_map<std::string, std::uint64_t> ids_;
    std::uint64_t next_ = 1;
};

}  // namespace shardgate::proxy
