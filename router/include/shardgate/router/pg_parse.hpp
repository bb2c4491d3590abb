// Thin libpg_query (Postgres 15 grammar) wrapper: the full parse for shape-cache misses and tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace shardgate::router {

// True if Postgres 15's parser accepts sql (one or more statements). About 15 us per statement.
[[nodiscard]] bool parse_check(std::string_view sql);

// libpg_query's fingerprint: equal for statements that differ only in constants (and a few
// things it deliberately ignores, such as target-list order details); nullopt if sql does not
// parse.
[[nodiscard]] std::optional<std::uint64_t> pg_fingerprint(std::string_view sql);

}  // namespace shardgate::router
