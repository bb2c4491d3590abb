// The session core of a transaction-pooled client: what the client's messages and the server's
// replies mean, and what is sent for them. It owns the exchange tracker, the prepared-statement
// channel of the attached server connection (statement_mux), the session settings and the
// input and output buffers; the drivers (the epoll data plane, the Asio loop) only move bytes
// and carry out what it asks: a server connection when a message needs one, the connection back
// when the transaction is over, and its disposition when the session ends.
//
// No I/O, no clock: tests drive it with scripted bytes (tests/unit/proxy/txn_core_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/byte_queue.hpp"
#include "core/link_end.hpp"
#include "core/session_settings.hpp"
#include "core/statement_mux.hpp"
#include "shardgate/pool/backend_state.hpp"
#include "shardgate/protocol/errors.hpp"
#include "shardgate/protocol/exchange_tracker.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/write_buffer.hpp"
#include "shardgate/router/session_effects.hpp"

namespace shardgate::proxy {

// What a server connection is worth when its session gives it back (STYLE.md: libpqxx's
// poisons_connection): reusable as it is, reusable after a reset, or closed.
enum class backend_disposition : std::uint8_t { clean, dirty, poisoned };
std::string_view to_string(backend_disposition d);

// Read/write splitting's part in the core's steps (control/relay_split.cpp implements it;
// null when the database does not split).
class txn_routing {
  public:
    txn_routing() = default;
    txn_routing(const txn_routing&) = delete;
    txn_routing& operator=(const txn_routing&) = delete;
    virtual ~txn_routing() = default;
    // No server connection yet, and a complete message that is not Terminate waits: routes the
    // transaction's first statement. True: it was a plain BEGIN answered and held (its message
    // consumed): look again.
    virtual bool route_start() = 0;
    // What was answered and held, to run first on the connection now attached ("" if none).
    virtual std::string take_held() = 0;
    // Each client message as it is handled, before it is sent.
    virtual void on_client_message(char type, std::span<const std::byte> body) = 0;
    // A message the server must refuse instead (a shardgate.* setting it cannot route by, a
    // held BEGIN past its limit): its replacement.
    virtual std::optional<std::vector<std::byte>> replacement(char type,
                                                              std::span<const std::byte> body) = 0;
    // The message must be followed by a query for the primary's insert LSN (and one is sent).
    virtual bool wants_lsn_tail(char type, std::span<const std::byte> body) = 0;
    virtual void sent_lsn_tail() = 0;
    // A ReadyForQuery with `status`; `lsn_tail`: it ends an LSN tail that answered
    // `tail_value`. The value of ParameterStatus shardgate.last_commit_lsn to report, if due.
    virtual std::optional<std::string> on_ready(char status, bool lsn_tail,
                                                std::string_view tail_value) = 0;
    // DISCARD ALL / DEALLOCATE ALL: the named statements are gone.
    virtual void forget_prepared() = 0;
};

// The query shardgate appends to learn the primary's insert LSN (read/write splitting).
inline constexpr std::string_view lsn_tail_sql =
    "SELECT pg_catalog.pg_current_wal_insert_lsn()::text";

// What happened, for txn_core::resume.
struct txn_event {
    enum class kind : std::uint8_t {
        client_bytes,  // `bytes` arrived from the client (none: look at what client_in() holds)
        server_bytes,  // `bytes` arrived from the attached server connection
        attached,      // `backend`: the connection need_server asked for
        no_server,     // none could be had (`code`, `message`: the checkout's error)
        ended,         // the driver stopped relaying (`why`; `server_open`: its socket is open)
    };
    kind what = kind::client_bytes;
    std::span<const std::byte> bytes{};
    pool::backend_state* backend = nullptr;
    std::string_view code{};
    std::string_view message{};
    link_end why = link_end::client_closed;
    bool server_open = true;
    // server_bytes: the driver still holds bytes for the server it has not written (the
    // connection is not released under them).
    bool server_unsent = false;
};

// What the driver does next. Before anything else it sends what is queued: client_out() to
// the client and to_server() to the server connection.
struct txn_action {
    enum class kind : std::uint8_t {
        read,         // read on (both sides)
        need_server,  // check out a server connection, then resume with attached / no_server
        release,      // the transaction is over: the connection (detached now) goes back clean
        close,        // the session ends (`why`); a connection it held goes back as `disposition`
    };
    kind what = kind::read;
    link_end why = link_end::client_closed;
    backend_disposition disposition = backend_disposition::clean;
    bool had_server = false;  // close: a connection was attached and goes back as `disposition`
};
std::string_view to_string(txn_action::kind k);

struct txn_core_options {
    std::uint32_t max_message_size = protocol::postgres_max_message_length;
    bool refuse_pinning = false;  // transaction_pinning = "refuse"
};

class txn_core {
  public:
    txn_core(prepared_registry& registry, std::size_t max_prepared, byte_budget* client_budget)
        : mux_(registry, max_prepared), client_in_(client_budget) {}

    void configure(txn_core_options o, txn_routing* routing) {
        opts_ = o;
        routing_ = routing;
    }

    // The whole core in one call (Boost.MySQL's resume(event) -> next_action): the drivers and
    // the unit tests call this; the finer steps below are its parts.
    txn_action resume(const txn_event& e);

    enum class step : std::uint8_t {
        done,         // every complete message was handled
        need_server,  // a message waits for a server connection (nothing consumed)
        failed,       // malformed or oversized message: client_error() says which
    };
    // client_in() -> to_server() / client_out().
    step client_messages();
    // A chunk of the attached server's stream -> client_out(). False: malformed.
    bool server_bytes(std::span<const std::byte> chunk);

    [[nodiscard]] bool settled() const;     // nothing owed, at a message boundary
    [[nodiscard]] bool may_detach() const;  // the transaction is over: the connection can go
    [[nodiscard]] bool finished() const;    // Terminate, and nothing left to answer

    // A server connection for the transaction, from its first byte; and its return.
    void attach(pool::backend_state& b);
    void detach();
    [[nodiscard]] pool::backend_state* backend() const { return backend_; }
    // The session ends with `end`: what the attached connection is worth (`server_open`: its
    // socket is still open; `session_mode`: every connection is reset).
    [[nodiscard]] backend_disposition end_disposition(link_end end, bool server_open,
                                                      bool session_mode) const;
    // The connection is not reusable when the session ends with it (replies still owed).
    [[nodiscard]] bool server_clean(bool server_open) const;
    // No server connection could be had: the messages waiting are dropped, and the client gets
    // an error and ReadyForQuery 'I' for each reply it was owed (at least one), in `out`.
    void fail_waiting(std::string_view code, std::string_view message, protocol::write_buffer& out);
    // max_client_memory is used up: what the client sent cannot be held.
    void refuse_client_memory();

    protocol::exchange_tracker& tracker() { return tracker_; }
    [[nodiscard]] const protocol::exchange_tracker& tracker() const { return tracker_; }
    // The statement channel, as far as the drivers and routing need it.
    [[nodiscard]] std::string_view statement_text(const std::string& name) const {
        return mux_.statement_text(name);
    }
    [[nodiscard]] std::size_t owed_replies() const { return mux_.owed(); }
    [[nodiscard]] bool replies_settled() const { return mux_.settled(); }
    void prefetch() const noexcept { mux_.prefetch(); }
    byte_queue& client_in() { return client_in_; }
    protocol::write_buffer& to_server() { return to_server_; }
    protocol::write_buffer& client_out() { return client_out_; }
    session_settings& settings() { return settings_; }
    [[nodiscard]] const session_settings& settings() const { return settings_; }

    // Session state on the server: the client keeps its connection to the end.
    [[nodiscard]] bool pinned() const { return pinned_; }
    // The effect that just pinned the client (once, for the log).
    std::optional<router::session_effect> take_pin_reason() {
        return std::exchange(pin_reason_, std::nullopt);
    }
    [[nodiscard]] protocol::frame_error client_error() const { return client_error_; }
    [[nodiscard]] bool client_memory_refused() const { return client_memory_refused_; }
    // Session mode relays raw bytes and keeps these itself.
    void set_server_at_boundary(bool b) { server_at_boundary_ = b; }
    void set_client_at_boundary(bool b) { client_at_boundary_ = b; }
    [[nodiscard]] bool server_at_boundary() const { return server_at_boundary_; }
    [[nodiscard]] bool client_at_boundary() const { return client_at_boundary_; }

  private:
    txn_action after_client();
    txn_action after_server(bool server_unsent);
    txn_action close(link_end why, bool server_open);
    struct rewritten {
        std::span<const std::byte> body;
        router::session_effect effect;
        std::optional<std::string> dealloc;
    };
    bool need_server_first(const protocol::frame_decoder& dec);
    void client_message(char t, std::span<const std::byte> body, std::size_t consumed);
    rewritten rewrite(char t, std::span<const std::byte> body, router::session_effect effect);
    router::session_effect track_settings(char t, std::span<const std::byte> body,
                                          bool& discard_all);
    void forward(char t, const rewritten& m, std::span<const std::byte> original);
    void server_ready(std::span<const std::byte> body);

    txn_core_options opts_;
    txn_routing* routing_ = nullptr;
    pool::backend_state* backend_ = nullptr;
    protocol::exchange_tracker tracker_;
    statement_mux mux_;
    session_settings settings_;
    byte_queue client_in_;
    byte_queue server_in_;
    protocol::write_buffer to_server_;
    protocol::write_buffer client_out_;
    std::vector<std::byte> refused_;  // a refused statement's replacement
    bool server_at_boundary_ = true;  // bytes relayed to the client end at a message boundary
    bool client_at_boundary_ = true;  // bytes relayed to the server end at a message boundary
    bool pinned_ = false;
    bool client_memory_refused_ = false;
    std::optional<router::session_effect> pin_reason_;
    protocol::frame_error client_error_ = protocol::frame_error::none;
};

}  // namespace shardgate::proxy
