// Session settings under transaction pooling: the client's startup parameters and what its
// SET / RESET leave, kept as the statements that replay them on the next server connection
// (session_key() names the result). No I/O: part of the session core.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shardgate/pool/backend_state.hpp"
#include "shardgate/router/session_effects.hpp"

namespace shardgate::proxy {

using setting_list = std::vector<std::pair<std::string, std::string>>;

// Splits a startup `options` value into -c name=value / --name=value settings, as the
// Postgres backend reads it (whitespace separates words, backslash escapes the next char).
// False (and `bad`: the word) for anything else.
bool parse_options(std::string_view opts, setting_list& out, std::string& bad);
// SELECT pg_catalog.set_config(name, value, false), ... for `settings` ("" for none).
std::string set_config_sql(const setting_list& settings);

class session_settings {
  public:
    // The client's startup parameters beyond user and database, `options` included.
    setting_list startup_params;

    // The startup parameters as settings (`options` split into its -c settings).
    [[nodiscard]] setting_list startup_settings() const;
    // The statements that replay the client's settings on a connection, in order.
    [[nodiscard]] const setting_list& replayed() const { return settings_; }
    // startup parameters + replayed(): what applied_key must equal for a connection to be
    // the client's.
    [[nodiscard]] std::string session_key() const;
    const std::string& current_session_key();  // session_key(), cached

    // A RESET / RESET ALL / DISCARD ALL Query that would return startup parameters to the
    // server's defaults (connections are opened without them): the statement that puts them
    // back after it (see statement_mux::client_query_with_tail).
    bool reset_tail(std::string_view sql, std::string& tail) const;

    // SET / RESET statements sent but not yet known to have succeeded: committed at the
    // ReadyForQuery that shows success (end_exchange), dropped otherwise.
    [[nodiscard]] bool pending() const { return !pending_.empty(); }
    void set_pending(std::vector<std::pair<router::tracked_setting, std::string>> p,
                     bool unexecuted) {
        pending_ = std::move(p);
        pending_failed_ = false;
        pending_unexecuted_ = unexecuted;
    }
    void pending_failed() { pending_failed_ = true; }  // an ErrorResponse came
    void executed() { pending_unexecuted_ = false; }   // an Execute came
    // At a ReadyForQuery with status `txn_status`: commits or drops what is pending.
    void end_exchange(char txn_status, pool::backend_state* backend);

  private:
    void commit(pool::backend_state* backend);

    setting_list settings_;  // parameter name -> the client's statement, in order
    std::vector<std::pair<router::tracked_setting, std::string>> pending_;
    bool pending_failed_ = false;
    bool pending_unexecuted_ = false;  // parsed, but no Execute came yet
    std::string key_cache_;
    bool key_valid_ = false;
};

}  // namespace shardgate::proxy
