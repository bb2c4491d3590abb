// The transaction-pooling session core driven by scripted events, no sockets: a scripted
// client, a small fake Postgres server that answers what the core sends, and a test pool. A
// fault (a server error, the server closing, the client closing, a checkout that times out) is
// injected at every step of simple, extended, pipelined, COPY and prepared-statement
// transactions; each run must end with the server connection given back exactly once, with
// the disposition the server's real state calls for, and the client told what Postgres would
// tell it.
#include "core/txn_core.hpp"

#include <doctest/doctest.h>

#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/common_messages.hpp"
#include "shardgate/protocol/errors.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/frontend.hpp"

using namespace shardgate;
using proxy::backend_disposition;
using proxy::link_end;
using proxy::txn_action;
using proxy::txn_event;
namespace pr = shardgate::protocol;
namespace fe = shardgate::protocol::fe;
namespace be = shardgate::protocol::be;

namespace {

std::string upper_word(std::string_view sql) {
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

enum class fault : std::uint8_t {
    none,
    server_error,
    server_close,
    client_close,
    checkout_timeout
};
const char* name(fault f) {
    switch (f) {
        case fault::none:
            return "none";
        case fault::server_error:
            return "server error";
        case fault::server_close:
            return "server close";
        case fault::client_close:
            return "client close";
        case fault::checkout_timeout:
            return "checkout timeout";
    }
    return "?";
}

using chunk = std::vector<std::byte>;

// One session: the core, one server connection (checked out and given back through a test
// pool), and the client's view.
class session {
  public:
    proxy::prepared_registry registry;
    proxy::txn_core core{registry, 4, nullptr};
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
chunk copy_rows() {
    pr::write_buffer w;
    pr::encode(w, pr::copy_data{"1\tone\n"});
    pr::encode(w, pr::copy_data{"2\ttwo\n"});
    pr::encode(w, pr::copy_done{});
    const auto v = w.view();
    return chunk(v.begin(), v.end());
}
chunk extended(const std::string& stmt, const std::string& sql, bool sync = true) {
    pr::write_buffer w;
    fe::encode(w, fe::parse{stmt, sql, {}});
    fe::encode(w, fe::bind{"", stmt, {}, {}, {}});
    fe::encode(w, fe::describe{'P', ""});
    fe::encode(w, fe::execute{"", 0});
    if (sync) fe::encode(w, fe::sync{});
    const auto v = w.view();
    return chunk(v.begin(), v.end());
}
chunk execute_named(const std::string& stmt) {
    return msgs(fe::bind{"", stmt, {}, {}, {}}, fe::execute{"", 0}, fe::sync{});
}

struct script {
    const char* name;
    std::vector<chunk> chunks;  // the client's writes, each sent when the last was answered
};

std::vector<script> scripts() {
    std::vector<script> s;
    s.push_back({"simple",
                 {msgs(fe::query{"BEGIN"}), msgs(fe::query{"UPDATE t SET x = 1"}),
                  msgs(fe::query{"SELECT 1"}), msgs(fe::query{"COMMIT"})}});
    s.push_back({"extended",
                 {extended("", "BEGIN"), extended("", "INSERT INTO t VALUES (1)"),
                  extended("", "SELECT 1"), extended("", "COMMIT")}});
    {
        // libpq's pipeline mode: every statement sent before the first answer, one Sync each.
        chunk all;
        for (const char* q : {"BEGIN", "INSERT INTO t VALUES (1)", "SELECT 1", "COMMIT"}) {
            auto one = extended("", q);
            all.insert(all.end(), one.begin(), one.end());
        }
        s.push_back({"pipelined", {all}});
    }
    s.push_back({"copy",
                 {msgs(fe::query{"BEGIN"}), msgs(fe::query{"COPY t FROM STDIN"}), copy_rows(),
                  msgs(fe::query{"COMMIT"})}});
    s.push_back({"prepared",
                 {msgs(fe::query{"BEGIN"}),
                  msgs(fe::parse{"s1", "SELECT $1", {}}, fe::describe{'S', "s1"}, fe::sync{}),
                  execute_named("s1"), execute_named("s1"), msgs(fe::close{'S', "s1"}, fe::sync{}),
                  msgs(fe::query{"COMMIT"})}});
    return s;
}

struct outcome {
    session s;
    std::size_t steps = 0;  // the steps the script took
};

// Runs `sc` with `f` injected just before step `at` (counting client writes and server
// answers), then lets the client say Terminate and close.
void run(const script& sc, fault f, std::size_t at, outcome& o) {
    auto& s = o.s;
    std::size_t step = 0;
    bool gave_up = false;  // the client got an error for a checkout: it stops here
    auto before_step = [&]() {
        if (step++ != at || f == fault::none) return;
        switch (f) {
            case fault::server_error:
                s.server.fail_next = true;
                break;
            case fault::checkout_timeout:
                s.fail_checkout = true;
                break;
            case fault::server_close:
                s.end(link_end::server_closed, false);
                break;
            case fault::client_close:
                s.end(link_end::client_closed, true);
                break;
            case fault::none:
                break;
        }
    };
    for (const auto& c : sc.chunks) {
        before_step();
        if (s.ended) break;
        const auto errors = s.client_errors.size();
        s.client_sends(c);
        if (s.client_errors.size() > errors && !s.held) gave_up = true;
        for (;;) {
            if (s.ended || s.server.out.empty()) break;
            before_step();
            if (s.ended) break;
            s.server_answers();
        }
        if (s.ended || gave_up) break;
    }
    o.steps = step;
    if (!s.ended) {
        s.client_sends(msgs(fe::terminate{}));
        while (!s.ended && s.server_answers()) {
        }
        if (!s.ended) s.end(link_end::client_closed, true);
    }
}

// What the connection must be worth when the session ends: the server's own state decides.
void check(const script& sc, fault f, std::size_t at, outcome& o) {
    const auto& s = o.s;
    const std::string script_name = sc.name;
    const std::string fault_name = name(f);
    CAPTURE(script_name);
    CAPTURE(fault_name);
    CAPTURE(at);
    for (const auto& p : s.problems)
        FAIL_CHECK(p);
    CHECK(s.ended);
    CHECK_FALSE(s.held);
    // Every transaction that ended (autocommit statements too) gave its connection back clean;
    // only the last return, at a fault, may be worth less.
    const std::size_t n = s.given_back.size();
    for (std::size_t i = 0; i + 1 < n; ++i)
        CHECK(s.given_back[i] == backend_disposition::clean);
    switch (f) {
        case fault::none:
        case fault::server_error:
            REQUIRE(n >= 1);
            CHECK(s.given_back[n - 1] == backend_disposition::clean);
            if (f == fault::none) CHECK(s.client_errors.empty());
            if (f == fault::server_error && !s.server.fail_next) CHECK(!s.client_errors.empty());
            break;
        case fault::server_close:
            if (s.held_at_end) {
                REQUIRE(n >= 1);
                CHECK(s.given_back[n - 1] == backend_disposition::poisoned);
            }
            break;
        case fault::client_close:
            if (s.held_at_end) {
                REQUIRE(n >= 1);
                const auto want = s.server.busy()          ? backend_disposition::poisoned
                                  : s.server.status != 'I' ? backend_disposition::dirty
                                                           : backend_disposition::clean;
                CHECK(proxy::to_string(s.given_back[n - 1]) == proxy::to_string(want));
            }
            break;
        case fault::checkout_timeout:
            if (at == 0) {
                // The first message waited for a connection that never came: an error and
                // ReadyForQuery for each reply owed, and nothing held.
                CHECK(n == 0);
                REQUIRE(!s.client_errors.empty());
                CHECK(s.client_errors[0] == "53300");
                CHECK(s.client_ready >= 1);
            }
            break;
    }
}

}  // namespace

TEST_CASE("txn_core: every script, unfaulted, answers like the server and gives back clean") {
    for (const auto& sc : scripts()) {
        outcome o;
        run(sc, fault::none, 0, o);
        check(sc, fault::none, 0, o);
        // The client got one ReadyForQuery per Query and Sync it sent.
        std::size_t owed = 0;
        for (const auto& c : sc.chunks) {
            const pr::frame_decoder dec(pr::postgres_max_message_length);
            std::span<const std::byte> in(c);
            for (auto f = dec.feed(in); f.status == pr::frame_status::ok; f = dec.feed(in)) {
                if (f.msg.type == 'Q' || f.msg.type == 'S') ++owed;
                in = in.subspan(f.consumed);
            }
        }
        const std::string script_name = sc.name;
        CAPTURE(script_name);
        CHECK(o.s.client_ready == owed);
    }
}

TEST_CASE("txn_core: a fault at every step of every script ends with the right disposition") {
    std::size_t sequences = 0;
    for (const auto& sc : scripts()) {
        outcome probe;
        run(sc, fault::none, 0, probe);
        for (const auto f : {fault::server_error, fault::server_close, fault::client_close,
                             fault::checkout_timeout}) {
            for (std::size_t at = 0; at < probe.steps; ++at) {
                outcome o;
                run(sc, f, at, o);
                check(sc, f, at, o);
                ++sequences;
            }
        }
    }
    MESSAGE("scripted sequences with a fault: " << sequences);
    CHECK(sequences >= 100);
}

TEST_CASE("txn_core: server bytes one at a time give the client the same replies") {
    for (const auto& sc : scripts()) {
        outcome whole;
        run(sc, fault::none, 0, whole);
        // The same script, each server answer fed byte by byte.
        session s;
        for (const auto& c : sc.chunks) {
            s.client_sends(c);
            while (s.held && !s.server.out.empty()) {
                const auto v = s.server.out.view();
                const std::vector<std::byte> copy(v.begin(), v.end());
                s.server.out.clear();
                for (const auto b : copy) {
                    txn_event e{txn_event::kind::server_bytes, std::span<const std::byte>(&b, 1)};
                    const auto a = s.core.resume(e);
                    if (a.what == txn_action::kind::release) {
                        s.held = false;
                        s.given_back.push_back(backend_disposition::clean);
                    }
                }
                auto& out = s.core.to_server();
                if (!out.empty()) {
                    s.server.receive(out.view());
                    out.clear();
                }
            }
        }
        const std::string script_name = sc.name;
        CAPTURE(script_name);
        CHECK(s.given_back.size() == 1);
        CHECK_FALSE(s.held);
    }
}

TEST_CASE("txn_core: client bytes split at every byte are handled as whole messages") {
    const auto sc = scripts()[1];  // extended
    const auto& first = sc.chunks[0];
    for (std::size_t cut = 1; cut < first.size(); ++cut) {
        session s;
        s.client_sends(chunk(first.begin(), first.begin() + static_cast<std::ptrdiff_t>(cut)));
        // Nothing is complete before the first message is: no connection is asked for early.
        if (cut < 5) CHECK_FALSE(s.held);
        s.client_sends(chunk(first.begin() + static_cast<std::ptrdiff_t>(cut), first.end()));
        while (s.server_answers()) {
        }
        CAPTURE(cut);
        CHECK(s.client_ready == 1);
        CHECK(s.problems.empty());
    }
}

TEST_CASE("txn_core: Terminate with nothing owed closes without a connection") {
    session s;
    s.client_sends(msgs(fe::terminate{}));
    CHECK(s.ended);
    CHECK(s.given_back.empty());
}

TEST_CASE("txn_core: a malformed client message closes with client_protocol_error") {
    session s;
    s.client_sends(msgs(fe::query{"BEGIN"}));
    while (s.server_answers()) {
    }
    chunk bad{std::byte{'Q'}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{2}};
    s.client_sends(bad);
    CHECK(s.ended);
    CHECK(s.core.client_error() != pr::frame_error::none);
    // A client that breaks the protocol takes its connection with it (as before the core).
    REQUIRE(s.given_back.size() == 1);
    CHECK(s.given_back[0] == backend_disposition::poisoned);
}
