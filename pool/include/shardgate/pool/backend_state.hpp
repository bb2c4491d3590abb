// What a session knows about the server connection it holds, apart from the socket: the
// parameters the server reported, the settings shardgate applied, its prepared statements and
// its transaction status. No I/O: the session core (proxy/src/core) works on it.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shardgate/pool/prepared_set.hpp"

namespace shardgate::pool {

struct backend_state {
    // The parameters the server reported (ParameterStatus), in the order it first sent them.
    std::vector<std::pair<std::string, std::string>> params;
    // Settings shardgate applied with SET that the server does not report (search_path...);
    // a reset query (DISCARD ALL / RESET ALL) clears them.
    std::map<std::string, std::string> applied;
    // The startup parameters it was opened with (beyond user and database), as
    // startup_key() writes them: RESET in a session returns to these values, so a client is
    // best served by a connection opened with its own.
    std::string startup_key;
    // Transaction pooling: startup_key() of the client parameters applied on top of those
    // (with set_config) since the last reset; "" when none are.
    std::string applied_key;
    prepared_set prepared;  // statements shardgate prepared on it (transaction pooling)
    char txn_status = 'I';

    // Records a ParameterStatus the server sent (new names are appended).
    void set_param(std::string_view name, std::string_view value) {
        for (auto& [n, v] : params) {
            if (n == name) {
                v = value;
                return;
            }
        }
        params.emplace_back(name, value);
    }
    [[nodiscard]] const std::string* param(std::string_view name) const {
        for (const auto& [n, v] : params)
            if (n == name) return &v;
        return nullptr;
    }
};

// A canonical string for a set of startup parameters (order-independent).
std::string startup_key(std::vector<std::pair<std::string, std::string>> params);

}  // namespace shardgate::pool
