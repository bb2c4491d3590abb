// One client connection, from the first byte to the close, split by protocol phase:
// startup (client_startup.cpp), authentication (client_auth.cpp), server login
// (server_login.cpp) and the query loop relay (relay.cpp).
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control/context.hpp"
#include "control/io.hpp"
#include "control/pools.hpp"
#include "core/byte_queue.hpp"
#include "core/txn_core.hpp"
#include "plane/data_plane.hpp"
#include "shardgate/protocol/errors.hpp"
#include "shardgate/protocol/exchange_tracker.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/write_buffer.hpp"
#include "shardgate/router/session_effects.hpp"

namespace shardgate::proxy {

// Session phases, in order; exactly one function (set_phase) changes it.
enum class session_phase : std::uint8_t {
    startup,       // reading SSLRequest / StartupMessage / CancelRequest
    auth,          // authenticating the client
    server_login,  // connecting and logging into the backend
    relay,         // query loop: bytes flow both ways
    closed,        // sockets closed; nothing else happens
};
std::string_view to_string(session_phase p);

class txn_plane_link;

class client_session : public std::enable_shared_from_this<client_session>, private txn_routing {
    friend class txn_plane_link;

  public:
    client_session(proxy_context& ctx, tcp::socket sock);
    ~client_session();
    client_session(const client_session&) = delete;
    client_session& operator=(const client_session&) = delete;

    // Drives the whole session; never throws.
    awaitable<void> run();

  private:
    enum class startup_outcome : std::uint8_t { proceed, done };

    // client_startup.cpp
    awaitable<startup_outcome> read_startup();
    awaitable<void> handle_cancel(std::int32_t pid, std::int32_t secret);
    // client_auth.cpp
    awaitable<bool> authenticate();
    awaitable<bool> authenticate_scram();
    awaitable<bool> authenticate_md5();
    awaitable<bool> fail_scram(const protocol::auth::scram_error& err);
    awaitable<bool> read_auth_message(std::string& body);
    // session.cpp: a server connection from the pool, set up with the client's parameters.
    awaitable<bool> login_to_server();
    // The pool conn_ belongs to: the primary's, or with read/write splitting the replica's the
    // current transaction runs on.
    pool::server_pool& conn_pool() {
        return split_ && split_->replica ? *pool_->replicas[*split_->replica] : *pool_->pool;
    }
    // Read/write splitting (relay_split.cpp). At a transaction's start: routes its first
    // statement and picks the server. For every later statement: keeps the routing state.
    void start_splitting();  // at login, for a database that splits
    // Routes the transaction's first statement. True: it was a plain BEGIN (or SET
    // TRANSACTION, SET LOCAL shardgate.*) whose server a later statement chooses: answered
    // here and held (split_session::held), its message consumed.
    bool split_route_start();
    void split_hold(std::string_view sql, std::string_view tag, std::size_t consumed);
    void split_statement(char type, std::span<const std::byte> body);
    void split_ready(char status);
    // Bookkeeping for wants_lsn_tail, per routed client message and per tail sent.
    void split_count_write(char type, std::span<const std::byte> body);
    void split_sent_lsn_tail();
    // A tail's answer (the LSN as text, "" if it failed): the write is known to be there.
    void split_tail_lsn(std::string_view value);
    // `statement`: a named prepared statement's name, classified once at its Parse
    // (`at_parse`) and kept with the session; "" for a Query or the unnamed statement.
    router::route_decision split_route_text(std::string_view sql, std::string_view statement = {},
                                            bool at_parse = false);
    router::route_decision split_route(const router::classified_query& q);
    const router::classified_query& split_classified(std::string_view sql,
                                                     std::string_view statement, bool at_parse);
    // Read-your-writes: the pending commit's LSN once the monitor has sampled the primary
    // after it.
    void split_note_commit();
    // Queues the server's ErrorResponse `whole` for the client with severity FATAL.
    void fatal_from_error(std::span<const std::byte> whole);
    awaitable<bool> send_greeting(const std::vector<std::pair<std::string, std::string>>& params);
    // False: it failed and the client was told (fatal_sent_), or the connection was lost
    // (conn_ given back, nothing sent, conn_lost_retries_ counted down): check out another.
    awaitable<bool> apply_startup_params();
    std::uint8_t conn_lost_retries_ = 0;
    // relay.cpp
    awaitable<void> relay();  // session mode: relay_in_data_plane; else transaction mode
    awaitable<void> relay_in_data_plane();
    // relay_txn.cpp: transaction pooling. The message handling is synchronous, driven by the
    // data plane (plane_txn.cpp).
    // The core (core/txn_core.hpp), with what its actions mean for this session: end_ and
    // client_error_ when it closes, the log when it pins.
    txn_action txn_resume(const txn_event& e);
    // What the client sent that client_in() holds (after a connection was attached, say).
    txn_action txn_resume_client() { return txn_resume(txn_event{}); }
    [[nodiscard]] bool txn_may_detach() const { return core_.may_detach(); }
    [[nodiscard]] bool txn_finished() const { return core_.finished(); }
    // txn_routing: read/write splitting's part in the core's steps (relay_split.cpp).
    bool route_start() override { return split_route_start(); }
    std::string take_held() override;
    void on_client_message(char type, std::span<const std::byte> body) override {
        split_statement(type, body);
        split_count_write(type, body);
    }
    std::optional<std::vector<std::byte>> replacement(char type,
                                                      std::span<const std::byte> body) override;
    // Read-your-writes and instance consistency: the client message `type` must be followed by
    // a tail asking the primary for its insert LSN (a committed write's LSN is not known yet).
    bool wants_lsn_tail(char type, std::span<const std::byte> body) override;
    void sent_lsn_tail() override { split_sent_lsn_tail(); }
    std::optional<std::string> on_ready(char status, bool lsn_tail,
                                        std::string_view tail_value) override;
    void forget_prepared() override { split_->prepared.clear(); }
    awaitable<void> relay_transaction_mode();
    awaitable<void> relay_transaction_mode_in_plane();
    awaitable<void> finish_transaction_mode();
    // `since`: when the client started waiting for it (a data plane may have queued it).
    awaitable<bool> attach_server(
        std::optional<std::chrono::steady_clock::time_point> since = std::nullopt);
    // From the pool the transaction's route names (a replica's, else the primary's), with the
    // fallbacks when it cannot be had.
    awaitable<pool::checkout_result> checkout_for_transaction(
        std::optional<std::chrono::steady_clock::time_point> since);
    // The attached replica has replayed `lsn`, asked now (and again within
    // consistency_wait_ms). False: it has not (conn_ kept), or it failed (conn_ given back).
    awaitable<bool> replica_caught_up(std::uint64_t lsn);
    // Global consistency: the primary's position now, which the transaction's replica must
    // have replayed (split_session::verify_lsn); the primary serves the read if it is unknown.
    awaitable<void> learn_global_lsn();
    // No connection could be had: the client gets an error for each reply it is owed.
    awaitable<bool> fail_attach(const pool::checkout_result& res);
    void on_server_attached();
    std::unique_ptr<server_conn> take_server();
    void detach_server();
    awaitable<void> finish_relay();
    awaitable<void> release_server(backend_disposition d);
    awaitable<void> report_server_lost();
    awaitable<void> drain_client();
    awaitable<void> reject_client_stream(protocol::frame_error err);
    // max_client_memory is used up: the client's message cannot be held (FATAL 53200 when
    // the session ends, as reject_client_stream sends).
    void refuse_client_memory() {
        core_.refuse_client_memory();
        end_ = link_end::client_protocol_error;
        client_error_ = protocol::frame_error::too_large;
    }
    awaitable<void> send_admin_shutdown();

    // Sends an error (FATAL ones close the session after sending).
    awaitable<void> send_error(const protocol::error_fields& e);
    awaitable<bool> flush_out();
    void set_phase(session_phase p);
    void close_all();

    proxy_context& ctx_;
    std::shared_ptr<const config> cfg_;  // the config this session started with
    pg_stream client_;
    std::shared_ptr<pool_entry> pool_;
    std::unique_ptr<server_conn> conn_;  // checked out for the whole session (session mode)
    pg_stream& server() { return conn_->stream; }
    deadline login_deadline_;
    session_phase phase_ = session_phase::startup;
    protocol::write_buffer out_;

    std::string user_name_;
    std::string database_name_;
    const user_config* user_ = nullptr;
    const database_config* db_ = nullptr;
    // Recovered from the client's SCRAM proof; on the heap: only until login (idle memory).
    std::unique_ptr<scram_keys> scram_keys_;
    backend_key key_;
    bool key_issued_ = false;
    std::shared_ptr<cancel_registry::slot> cancel_slot_;  // transaction pooling's fast path

    // The protocol state (exchange tracker, statements, settings, buffers): the data plane's
    // while it relays, this worker's before and after.
    txn_core core_;
    bool fatal_sent_ = false;
    std::unique_ptr<split_session> split_;  // read/write splitting; null when not splitting
    asio::steady_timer server_pump_done_;
    // In the data plane the client socket belongs to the plane: errors are queued in
    // the core's client_out() for it to send (flush_out, send_error).
    bool queue_client_output_ = false;
    // The plane's requests to this session's coroutine (plane_txn.cpp), on its executor.
    plane_request plane_request_ = plane_request::none;
    bool plane_wake_ = false;  // a request is waiting (set on this session's executor)
    // A server socket released to the plane while this session holds its connection.
    int plane_server_fd_ = -1;
    tcp plane_server_proto_ = tcp::v4();
    std::vector<std::byte> plane_leftover_;  // for the client, not yet written by the plane
    // What a connection parked in a data plane must match to be handed over there: the
    // session key, or (a replica must be asked whether it replayed enough first, which the
    // worker does at attach time) nothing.
    std::string_view plane_session_key() {
        static constexpr std::string_view never = "\x03verify";  // no applied_key is this
        if (split_ && (split_->verify_lsn != 0 || split_->global_read)) return never;
        return core_.settings().current_session_key();
    }
    link_end end_ = link_end::client_closed;
    protocol::frame_error client_error_ = protocol::frame_error::none;
};

// Accepted sockets start here (on the worker that owns the socket's executor).
void start_session(proxy_context& ctx, tcp::socket sock);

}  // namespace shardgate::proxy
