// Which statements leave state in a server session that outlives their transaction, so that a
// transaction-pooled client must keep its server connection (be pinned to it): SET / RESET
// (not SET LOCAL or SET TRANSACTION), DISCARD, SQL-level PREPARE / DEALLOCATE, LISTEN,
// temporary tables, WITH HOLD cursors, session advisory locks, LOAD (protocol-level named
// statements are shared by proxy/statement_mux, not pinned). Works on query shapes
// (shape.hpp): keywords are already lower-cased and comments gone. No I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shardgate/router/shape.hpp"

namespace shardgate::router {

enum class session_effect : std::uint8_t {
    none,
    set,            // SET / RESET / SET SESSION ... / set_config(..., false)
    discard,        // DISCARD ALL / PLANS / SEQUENCES / TEMP
    prepare,        // SQL PREPARE / DEALLOCATE
    listen,         // LISTEN
    temp_object,    // CREATE TEMP TABLE / VIEW / SEQUENCE, SELECT ... INTO TEMP
    hold_cursor,    // DECLARE ... WITH HOLD
    advisory_lock,  // pg_advisory_lock* (not the _xact_ ones)
    load,           // LOAD 'library'
    unknown,        // the text could not be lexed: assume the worst
};

std::string_view to_string(session_effect e);

// A session-level SET or RESET that can be replayed on another server connection:
// SET [SESSION] name {TO | =} ..., SET [SESSION] TIME ZONE ..., RESET name, RESET ALL.
// (SET ROLE / SESSION AUTHORIZATION and the like are not: they pin.)
struct tracked_setting {
    enum class kind : std::uint8_t { set, reset, reset_all };
    kind what = kind::set;
    std::string name;  // lower-cased; "" for reset_all
};
std::optional<tracked_setting> trackable_setting(std::string_view shape);

// The first session effect of the statements in `sql` (a Query or Parse text), or none;
// unknown if it cannot be lexed. A text without any word a session effect needs ("set",
// "temp", "advisory"...: most queries) is none without lexing.
session_effect find_session_effect(std::string_view sql);
// The same for one statement's shape.
session_effect session_effect_of(std::string_view shape);

}  // namespace shardgate::router
