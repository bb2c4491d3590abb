// The transaction-pooling session core driven by scripted events, no sockets: a scripted
// client, a small fake Postgres server that answers what the core sends, and a test pool. A
// fault (a server error, the server closing, the client closing, a checkout that times out) is
// injected at every step of simple, extended, pipelined, COPY and prepared-statement
// transactions; each run must end with every connection given back (clean at the end of each
// transaction, the last one with the disposition the fake server's own state calls for) and the
// client told what Postgres would tell it. The harness is txn_core_harness.hpp.
#include "core/txn_core.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "txn_core_harness.hpp"

using namespace shardgate;
using namespace shardgate::proxy::txn_harness;
using proxy::backend_disposition;
using proxy::link_end;
using proxy::txn_action;
using proxy::txn_event;

namespace {

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
