// What a transaction-pooled client's statements do to the server session it borrows, read
// from their text: what may pin the client, which SET/RESET can be tracked instead, DISCARD ALL
// and DEALLOCATE, and the statements shardgate substitutes so that the server itself raises an
// error. Pure functions for relay_txn.cpp.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shardgate/router/route.hpp"
#include "shardgate/router/session_effects.hpp"

namespace shardgate::proxy {

// What a client message does to its server session, for the messages that may pin.
router::session_effect effect_of(char type, std::span<const std::byte> body, bool truncated);

// The SET/RESET statements of a Query, when every other statement in it leaves nothing in the
// session (asyncpg's reset: SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL).
std::optional<std::vector<std::pair<router::tracked_setting, std::string>>> trackable_settings(
    std::string_view sql);

// Every SET / RESET / DISCARD ALL of a Query, in order, whatever else it holds (DISCARD ALL as
// RESET ALL); nullopt if it cannot be lexed.
std::optional<std::vector<router::tracked_setting>> setting_statements(std::string_view sql);

// A Query or Parse body (`type`, named as `body`'s) whose statement makes the server raise
// 0A000: `e` would pin the client and transaction_pinning = refuse.
std::vector<std::byte> refusal(char type, std::span<const std::byte> body,
                               router::session_effect e);
// The same for a shardgate.* setting with a value it cannot route by: 22023, in Postgres'
// words for a bad enum value.
std::vector<std::byte> setting_refusal(char type, std::span<const std::byte> body,
                                       const router::setting_error& e);

// A Query body whose statement makes the server raise 54000: too many statements held before
// the transaction's server was chosen (read/write splitting's held BEGIN).
std::vector<std::byte> held_limit_refusal(std::span<const std::byte> body);

// DISCARD ALL / DEALLOCATE ALL (a Query body mentioning ALL, after its effect was found).
bool mentions_all(std::span<const std::byte> body);

// The words of `sql` in lower case, split at white space and semicolons (for the few
// one-statement commands recognised here; anything with quotes or comments is not one).
std::vector<std::string> words_of(std::string_view sql);

bool is_discard_all(std::string_view sql);

// The text names STDIN (COPY ... FROM STDIN: nothing but copy data may follow it to the server,
// so shardgate appends no query of its own). Errs towards yes.
bool mentions_stdin(std::string_view sql);

// The statement name of a Query that is exactly DEALLOCATE [PREPARE] name, folded as Postgres
// folds identifiers (lower case unless double-quoted).
std::optional<std::string> deallocated_name(std::string_view sql);

}  // namespace shardgate::proxy
