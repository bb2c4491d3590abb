// The test harness of txn_core_test.cpp: a fake Postgres server that answers what the core
// sends as a real one would, a session that drives the core with a scripted client and a test
// pool, and message builders.
#pragma once

#include <doctest/doctest.h>

#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/txn_core.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/common_messages.hpp"
#include "shardgate/protocol/errors.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/frontend.hpp"

namespace shardgate::proxy::txn_harness {

namespace pr = shardgate::protocol;
namespace fe = shardgate::protocol::fe;
namespace be = shardgate::protocol::be;

inline std::string upper_word(std::string_view sql) {
    std::string w;
    for (char c : sql) {
        if (c == ' ' || c == ';') break;
        w += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return w;
}

// A Postgres server as far as the core can tell: it answers each message it is sent as a real
// one would (statement by its first word; ErrorResponse on demand; failed extended batches
// skipped to Sync; failed transaction blocks refusing all but COMMIT/ROLLBACK; COPY FROM STDIN).
class fake_server {
  public:
    bool fail_next = false;  // the next statement fails (40001)
    char status = 'I';       // its transaction status
    bool in_copy = false;    // COPY FROM STDIN: copy data is expected
    std::size_t owed = 0;    // replies it still owes (messages received, not yet answered)
    pr::write_buffer out;    // what it has sent, not yet delivered
    std::size_t statements = 0;

    // The bytes the core sent: whole messages are answered now.
    void receive(std::span<const std::byte> bytes) {
        in_.insert(in_.end(), bytes.begin(), bytes.end());
        const pr::frame_decoder dec(pr::postgres_max_message_length);
        std::span<const std::byte> rest(in_);
        std::size_t used = 0;
        for (auto f = dec.feed(rest); f.status == pr::frame_status::ok; f = dec.feed(rest)) {
            answer(f.msg);
            rest = rest.subspan(f.consumed);
            used += f.consumed;
        }
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(used));
    }
    // Mid-exchange: a message received and not answered, or an answer not delivered.
    [[nodiscard]] bool busy() const { return !in_.empty() || in_copy || unsynced_ || !out.empty(); }

  private:
    void error(std::string_view code, std::string_view msg) {
        pr::encode_error(out, {pr::severity::error, code, msg});
        if (status == 'T') status = 'E';
    }
    void ready() { be::encode(out, be::ready_for_query{status}); }
    // Runs one statement; false: it failed.
    bool run(std::string_view sql, bool rows) {
        ++statements;
        const auto w = upper_word(sql);
        if (status == 'E' && w != "COMMIT" && w != "ROLLBACK") {
            error("25P02", "current transaction is aborted");
            return false;
        }
        if (fail_next) {
            fail_next = false;
            error("40001", "could not serialize access due to concurrent update");
            if (w == "COMMIT" || w == "ROLLBACK") status = 'I';  // a failed COMMIT rolls back
            return false;
        }
        if (w == "BEGIN") {
            status = 'T';
            be::encode(out, be::command_complete{"BEGIN"});
        } else if (w == "COMMIT" || w == "ROLLBACK") {
            be::encode(out, be::command_complete{status == 'E' ? "ROLLBACK" : w});
            status = 'I';
        } else if (w == "COPY") {
            in_copy = true;
            be::encode(out, be::copy_in_response{});
        } else if (w == "SELECT") {
            if (rows) be::encode(out, be::row_description{{{"x", 0, 0, 23, 4, -1, 0}}});
            be::encode(out, be::data_row{{std::string("1")}});
            be::encode(out, be::command_complete{"SELECT 1"});
        } else {
            be::encode(out, be::command_complete{w == "INSERT" ? "INSERT 0 1" : w});
        }
        return true;
    }
    void answer(const pr::frame& m) {
        const char t = m.type;
        if (skipping_ && t != 'S') return;  // a failed extended batch: up to its Sync
        switch (t) {
            case 'Q': {
                const auto q = fe::decode_query(m.body);
                run(q->sql, true);
                if (!in_copy) ready();
                break;
            }
            case 'd':
                break;
            case 'c':
            case 'f':
                if (!in_copy) break;  // ignored outside COPY, as Postgres does
                in_copy = false;
                if (t == 'c')
                    be::encode(out, be::command_complete{"COPY 2"});
                else
                    error("57014", "COPY from stdin failed");
                ready();
                break;
            case 'P': {
                unsynced_ = true;
                const auto p = fe::decode_parse(m.body);
                statements_[p->name] = p->query;
                be::encode(out, be::parse_complete{});
                break;
            }
            case 'B': {
                unsynced_ = true;
                const auto b = fe::decode_bind(m.body);
                portals_[b->portal] = statements_[b->statement];
                be::encode(out, be::bind_complete{});
                break;
            }
            case 'D': {
                unsynced_ = true;
                const auto d = fe::decode_describe(m.body);
                const auto& sql = d->kind == 'S' ? statements_[d->name] : portals_[d->name];
                if (d->kind == 'S') be::encode(out, be::parameter_description{});
                if (upper_word(sql) == "SELECT")
                    be::encode(out, be::row_description{{{"x", 0, 0, 23, 4, -1, 0}}});
                else
                    be::encode(out, be::no_data{});
                break;
            }
            case 'E': {
                unsynced_ = true;
                const auto e = fe::decode_execute(m.body);
                if (!run(portals_[e->portal], false)) skipping_ = true;
                break;
            }
            case 'C':
                unsynced_ = true;
                be::encode(out, be::close_complete{});
                break;
            case 'H':
                break;
            case 'S':
                unsynced_ = false;
                skipping_ = false;
                ready();
                break;
            default:
                break;
        }
    }
    std::vector<std::byte> in_;
    bool unsynced_ = false;
    bool skipping_ = false;
    std::map<std::string, std::string> statements_;
    std::map<std::string, std::string> portals_;
};

using chunk = std::vector<std::byte>;

// One session: the core, one server connection (checked out and given back through a test
// pool), and the client's view.
class session {
  public:
    prepared_registry registry;
    txn_core core{registry, 4, nullptr};
    fake_server server;
    pool::backend_state backend;
    bool held = false;  // the core holds the connection
    bool fail_checkout = false;
    bool ended = false;
    std::vector<backend_disposition> given_back;  // every return of the connection
    std::vector<std::string> client_errors;       // SQLSTATEs the client got
    std::size_t client_ready = 0;                 // ReadyForQuery messages the client got
    std::vector<std::string> problems;            // broken invariants

    // A step of the script: the client's bytes, or the server's pending answer.
    void client_sends(const chunk& c) {
        txn_event e;
        e.bytes = c;
        carry_out(core.resume(e));
    }
    bool server_answers() {
        if (!held || server.out.empty()) return false;
        const auto bytes = server.out.view();
        const std::vector<std::byte> copy(bytes.begin(), bytes.end());
        server.out.clear();
        txn_event e{txn_event::kind::server_bytes, copy};
        carry_out(core.resume(e));
        return true;
    }
    bool held_at_end = false;  // the session held a connection when the driver ended it
    void end(link_end why, bool server_open) {
        held_at_end = held;
        txn_event e{txn_event::kind::ended};
        e.why = why;
        e.server_open = server_open;
        carry_out(core.resume(e));
    }

  private:
    void carry_out(txn_action a) {
        for (;;) {
            deliver();
            if (a.what == txn_action::kind::need_server) {
                if (held) problems.emplace_back("need_server while holding a connection");
                if (fail_checkout) {
                    fail_checkout = false;
                    txn_event e{txn_event::kind::no_server};
                    e.code = "53300";
                    e.message = "no server connection became free within checkout_timeout";
                    a = core.resume(e);
                    continue;
                }
                held = true;
                const bool fail = server.fail_next;
                server = fake_server{};  // the pool's next connection, idle
                server.fail_next = fail;
                txn_event e{txn_event::kind::attached};
                e.backend = &backend;
                a = core.resume(e);
                continue;
            }
            if (a.what == txn_action::kind::release) {
                if (!held) problems.emplace_back("release without a connection");
                if (server.busy() || server.status != 'I')
                    problems.emplace_back("released clean while the server is mid-exchange");
                held = false;
                given_back.push_back(backend_disposition::clean);
            }
            if (a.what == txn_action::kind::close) {
                ended = true;
                if (a.had_server != held) problems.emplace_back("close: had_server is wrong");
                if (a.had_server) given_back.push_back(a.disposition);
                held = false;
            }
            return;
        }
    }
    void deliver() {
        auto& to_server = core.to_server();
        if (!to_server.empty()) {
            if (!held) problems.emplace_back("bytes for a server while none is held");
            server.receive(to_server.view());
            to_server.clear();
        }
        auto& to_client = core.client_out();
        const pr::frame_decoder dec(pr::postgres_max_message_length);
        auto in = to_client.view();
        for (auto f = dec.feed(in); f.status == pr::frame_status::ok; f = dec.feed(in)) {
            if (f.msg.type == 'Z') ++client_ready;
            if (f.msg.type == 'E') {
                auto e = be::decode_error_response(f.msg.body);
                client_errors.emplace_back(e ? std::string(e->code()) : "?");
            }
            in = in.subspan(f.consumed);
        }
        to_client.clear();
    }
};

template <typename... M>
chunk msgs(const M&... m) {
    pr::write_buffer w;
    (pr::fe::encode(w, m), ...);
    const auto v = w.view();
    return chunk(v.begin(), v.end());
}
inline chunk copy_rows() {
    pr::write_buffer w;
    pr::encode(w, pr::copy_data{"1\tone\n"});
    pr::encode(w, pr::copy_data{"2\ttwo\n"});
    pr::encode(w, pr::copy_done{});
    const auto v = w.view();
    return chunk(v.begin(), v.end());
}
inline chunk extended(const std::string& stmt, const std::string& sql, bool sync = true) {
    pr::write_buffer w;
    fe::encode(w, fe::parse{stmt, sql, {}});
    fe::encode(w, fe::bind{"", stmt, {}, {}, {}});
    fe::encode(w, fe::describe{'P', ""});
    fe::encode(w, fe::execute{"", 0});
    if (sync) fe::encode(w, fe::sync{});
    const auto v = w.view();
    return chunk(v.begin(), v.end());
}
inline chunk execute_named(const std::string& stmt) {
    return msgs(fe::bind{"", stmt, {}, {}, {}}, fe::execute{"", 0}, fe::sync{});
}

}  // namespace shardgate::proxy::txn_harness
