// Connecting and logging into a backend Postgres: TCP, optional TLS, StartupMessage,
// authentication (SCRAM-SHA-256, md5, cleartext, trust), then the server's greeting.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "shardgate/pool/stream.hpp"
#include "shardgate/protocol/scram.hpp"

namespace shardgate::pool {

// TLS towards a backend server, libpq's sslmode names.
enum class server_tls_mode : std::uint8_t { disable, prefer, require, verify_full };
std::string_view to_string(server_tls_mode m);

// A backend's BackendKeyData (or the one shardgate issues to a client).
struct backend_key {
    std::int32_t pid = 0;
    std::int32_t secret = 0;
};

// Where a CancelRequest must go to reach one server connection.
struct cancel_target {
    std::string host;
    std::uint16_t port = 0;
    backend_key server_key;
};

// Which server to log into.
struct backend_address {
    std::string name;  // for messages: the database name clients use
    std::string host;
    std::uint16_t port = 5432;
    std::string dbname;
    server_tls_mode tls_mode = server_tls_mode::prefer;
};

// SCRAM keys recovered from a client's proof log in without the plaintext password.
using protocol::auth::scram_keys;

struct server_login_request {
    backend_address backend;
    std::string user;
    std::string password;  // plaintext, if known
    std::string md5_hash;  // "md5..." of (password, user), if known
    std::optional<scram_keys> keys;
    // Startup parameters besides user and database (application_name, options, ...).
    std::vector<std::pair<std::string, std::string>> params;
    ssl::context* tls = nullptr;  // null: server_tls = disable
    std::chrono::milliseconds timeout{5000};
};

// Outcome of a login. On success `stream` is ready for queries and `greeting` holds the
// server's ParameterStatus and NoticeResponse messages, raw and in order, for the client.
struct server_login_result {
    std::optional<pg_stream> stream;
    std::vector<std::byte> greeting;
    backend_key server_key;
    char txn_status = 'I';
    // On failure: the server's own ErrorResponse (raw) to forward, or a local error.
    std::vector<std::byte> server_error;
    std::string error_message;
    std::string_view error_code;

    [[nodiscard]] bool ok() const { return stream.has_value(); }
};

awaitable<server_login_result> async_server_login(asio::any_io_executor ex,
                                                  server_login_request req);

// Sends a CancelRequest for `target` on a fresh connection (best effort, bounded in time).
awaitable<void> async_send_cancel(asio::any_io_executor ex, cancel_target target);

}  // namespace shardgate::pool
