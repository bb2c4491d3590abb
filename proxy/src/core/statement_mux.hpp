// Protocol-level prepared statements under transaction pooling. A client's named statements
// live in shardgate: each (query text, parameter types) gets one process-wide id and the
// server-side name "sg<id>"; a server connection prepares it on demand, the first time a client
// that uses it runs there, and keeps at most max_prepared_statements (least recently used are
// closed). Clients see exactly the replies they asked for: ParseComplete for a Parse that was
// not sent (the connection had it), CloseComplete for a Close that was not sent, and nothing
// from what shardgate injected. Errors for unknown or duplicate names are shardgate's own, as
// Postgres words them.
//
// No I/O: fed complete messages, it writes what goes to the server and to the client.
#pragma once

#include <cstdint>
#include <cstring>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/prepared_registry.hpp"
#include "shardgate/pool/prepared_set.hpp"
#include "shardgate/protocol/write_buffer.hpp"

namespace shardgate::proxy {

class statement_mux {
  public:
    statement_mux(prepared_registry& registry, std::size_t max_prepared)
        : registry_(registry), max_prepared_(max_prepared == 0 ? 1 : max_prepared) {}

    // The statements the attached server connection holds; null while detached.
    void attach(pool::prepared_set* server_statements) { server_ = server_statements; }
    void detach() { server_ = nullptr; }

    // One complete client message (type and body). What the server must get goes to
    // `to_server`; replies shardgate gives itself, when due now, to `to_client`.
    void client_message(char type, std::span<const std::byte> body,
                        protocol::write_buffer& to_server, protocol::write_buffer& to_client);
    // One complete server message (`whole`: type, length, body); what the client gets goes to
    // `to_client`, and replies due after it too.
    void server_message(std::span<const std::byte> whole, protocol::write_buffer& to_client);

    // A client Query (`query`: the body) followed by shardgate's own `tail` Query on the same
    // connection (RESET ALL's startup parameters put back). The client sees one exchange: the
    // tail's results and errors and the client Query's ReadyForQuery are dropped, and the
    // ParameterStatus reports of both come before the last ReadyForQuery as Postgres sends
    // them, once per parameter with its final value, in the server's (name) order, and only
    // if that value differs from the one in `reported` (what the client was last told).
    // `lsn`: the tail's first value is a commit LSN (at_lsn_tail()).
    void client_query_with_tail(std::span<const std::byte> query, std::string_view tail,
                                const std::vector<std::pair<std::string, std::string>>& reported,
                                protocol::write_buffer& to_server,
                                protocol::write_buffer& to_client, bool lsn = false);

    // A client Sync followed by shardgate's own `tail` Query, whose first value is a commit LSN:
    // the client sees the tail's ReadyForQuery in place of the Sync's (as
    // client_query_with_tail).
    void client_sync_with_tail(std::span<const std::byte> sync, std::string_view tail,
                               protocol::write_buffer& to_server,
                               protocol::write_buffer& to_client);
    // A tail's reply is next (its rows are being read, or its ReadyForQuery is due); one whose
    // first value is a commit LSN.
    [[nodiscard]] bool at_tail() const {
        return !settled() && expected_[head_].what == expect::query_tail;
    }
    [[nodiscard]] bool at_lsn_tail() const {
        return at_tail() && expected_[head_].statement == lsn_tail_mark;
    }
    // The first column of the first row the last tail returned, as text ("" if none or NULL);
    // taken once.
    std::string take_tail_value() { return std::exchange(tail_value_, {}); }

    // SQL DEALLOCATE of one of the client's protocol statements (`name` as Postgres folds it),
    // in a Query; `txn_status` is the client's transaction status. sent: the server drops
    // shardgate's name instead; forward: the Query must go as written (not one of its
    // statements, or an aborted transaction, where Postgres refuses it).
    // shardgate's own Query `sql` before the client's next messages: statements shardgate
    // answered itself and held back (a BEGIN whose server a later statement chooses). Its
    // replies are dropped, but for errors and ParameterStatus.
    void hidden_query(std::string_view sql, protocol::write_buffer& to_server);

    enum class dealloc : std::uint8_t { forward, sent, answered };
    // pending::statement of a query_tail whose first value is a commit LSN.
    static constexpr std::uint64_t lsn_tail_mark = 1;
    // answered: shardgate replied itself (CommandComplete, ReadyForQuery): no server reply.
    dealloc deallocate(std::string_view name, char txn_status, protocol::write_buffer& to_server,
                       protocol::write_buffer& to_client);
    // The query text of the client's statement `name`; empty if there is none.
    [[nodiscard]] std::string_view statement_text(const std::string& name) const {
        auto it = statements_.find(name);
        if (it == statements_.end()) return {};
        const auto* p = reinterpret_cast<const char*>(it->second.key.data());
        return {p, ::strnlen(p, it->second.key.size())};
    }
    [[nodiscard]] bool has_statement(const std::string& name) const {
        return statements_.count(name) != 0;
    }

    // The client ran DISCARD ALL / DEALLOCATE ALL: its statements and the connection's are gone.
    void forget_all() {
        statements_.clear();
        if (server_ != nullptr) server_->clear();
    }

    // No reply is expected from the server or owed by shardgate.
    [[nodiscard]] bool settled() const { return head_ == expected_.size(); }
    // Replies expected or owed, in order.
    [[nodiscard]] std::size_t owed() const { return expected_.size() - head_; }
    // Asks the CPU to load the front of the queue (data_plane's prefetching).
    void prefetch() const noexcept { __builtin_prefetch(expected_.data() + head_); }
    // The client uses named statements (they never pin it any more).
    [[nodiscard]] std::size_t client_statements() const { return statements_.size(); }

  private:
    enum class expect : std::uint8_t {
        parse,            // ParseComplete (or an error)
        bind,             // BindComplete
        describe_stmt,    // ParameterDescription, then RowDescription or NoData
        describe_portal,  // RowDescription or NoData
        execute,          // rows ... CommandComplete / EmptyQuery / PortalSuspended
        close,            // CloseComplete
        sync,             // ReadyForQuery
        query,            // anything up to ReadyForQuery (simple query, function call)
        query_head,       // a client Query followed by a tail: its ReadyForQuery is dropped
        sync_head,        // a client Sync followed by a tail: its ReadyForQuery is dropped
        query_tail,       // shardgate's tail Query: only reports and ReadyForQuery pass
        query_hidden,     // shardgate's own Query sent first: only errors and reports pass
        swallow_parse,    // ParseComplete of an injected Parse: not for the client
        swallow_close,    // CloseComplete of an injected Close
        synth_parse,      // ParseComplete shardgate owes the client
        synth_close,      // CloseComplete shardgate owes the client
        synth_error,      // an ErrorResponse shardgate owes the client
    };
    // The parts of client_message and server_message.
    void client_parse(std::span<const std::byte> body, protocol::write_buffer& to_server);
    void client_bind(std::span<const std::byte> body, protocol::write_buffer& to_server);
    void client_describe_or_close(char type, std::span<const std::byte> body,
                                  protocol::write_buffer& to_server);
    // A reply while a Query or Sync with a tail (or a hidden query) is answered: true if it
    // was handled here.
    bool server_around_tail(char type, std::span<const std::byte> whole,
                            protocol::write_buffer& to_client);
    // Whether `type` is the last reply `what` waits for; `pass`: it goes to the client.
    static bool completes(expect what, char type, bool& pass);
    // The rarely used parts of a pending reply, kept apart so the queue stays a few cache
    // lines (an extended-protocol transaction queues five).
    struct pending_text {
        std::string code;         // synth_error
        std::string message;      // synth_error; query_head/tail: ParameterStatus held back
        std::string client_name;  // parse / synth_parse: the client's name for the statement
        std::vector<std::pair<std::string, std::string>> reported;  // query_tail: see above
    };
    struct pending {
        expect what;
        std::uint32_t text = 0;       // 1 + its index in texts_, or 0: none
        std::uint64_t statement = 0;  // parse / swallow_parse: the id being prepared
    };
    struct client_statement {
        std::uint64_t id;
        std::vector<std::byte> key;  // query, NUL, parameter types: to prepare it anywhere
    };

    void push(expect what, std::uint64_t statement = 0);
    void push(expect what, std::uint64_t statement, pending_text text);
    void pop();
    // The text parts of `p` (empty ones if it has none).
    [[nodiscard]] const pending_text& text_of(const pending& p) const;
    pending_text& text_of(pending& p);  // creates them if needed
    void fail(std::string code, std::string message);
    // Makes sure the attached connection has `s`, injecting Close/Parse as needed; the Parse's
    // reply is expected as `parse_reply`. True when the connection already had it.
    bool ensure_prepared(const client_statement& s, protocol::write_buffer& to_server,
                         expect parse_reply = expect::swallow_parse,
                         const std::string& client_name = {});
    void drain(protocol::write_buffer& to_client);
    void client_names_in_error(std::span<const std::byte> whole,
                               protocol::write_buffer& to_client) const;
    void emit_reports(std::string_view held,
                      const std::vector<std::pair<std::string, std::string>>& reported,
                      protocol::write_buffer& to_client);
    // A ParameterStatus the client is sent: what it knows now (see told_).
    void note_told(std::span<const std::byte> whole);
    void error_until_sync();

    prepared_registry& registry_;
    const std::size_t max_prepared_;
    pool::prepared_set* server_ = nullptr;
    std::unordered_map<std::string, client_statement> statements_;
    // A FIFO (front at head_): a std::deque would allocate for every idle client.
    std::vector<pending> expected_;
    std::vector<pending_text> texts_;  // emptied with expected_
    std::size_t head_ = 0;
    // The last value of each parameter (lower-case name) reported to the client through this
    // mux. A tail's reports are filtered against it: the value the connection had when the
    // tail was queued is older when the client pipelined a SET before it.
    std::vector<std::pair<std::string, std::string>> told_;
    std::string tail_value_;  // see take_tail_value()
    bool tail_row_seen_ = false;
    bool skip_to_sync_ = false;  // after shardgate's own error: client messages up to Sync are
                                 // not sent, as Postgres ignores them
};

std::string server_statement_name(std::uint64_t id);

}  // namespace shardgate::proxy
