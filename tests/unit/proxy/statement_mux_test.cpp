// statement_mux: named statements renamed, prepared on demand per server connection, replies
// re-sequenced so that each client sees exactly what it asked for.
#include "core/statement_mux.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "shardgate/protocol/write_buffer.hpp"

using namespace shardgate;
using proxy::prepared_registry;
using proxy::statement_mux;
namespace pr = shardgate::protocol;

namespace {

std::vector<std::byte> bytes(const std::string& s) {
    std::vector<std::byte> out;
    for (char c : s)
        out.push_back(static_cast<std::byte>(c));
    return out;
}
std::string z(const std::string& s) {
    return s + std::string(1, '\0');
}

// Client messages: type and body.
struct msg {
    char type;
    std::string body;
};
msg parse(const std::string& name, const std::string& query) {
    return {'P', z(name) + z(query) + std::string(2, '\0')};
}
msg bind(const std::string& stmt) {
    return {'B', z("") + z(stmt) + std::string(6, '\0')};
}
msg describe_s(const std::string& name) {
    return {'D', "S" + z(name)};
}
msg close_s(const std::string& name) {
    return {'C', "S" + z(name)};
}
msg execute() {
    return {'E', z("") + std::string(4, '\0')};
}
msg sync_msg() {
    return {'S', ""};
}

// Message types (and statement names for P/B/D/C) of a stream of framed messages.
std::string describe_stream(const pr::write_buffer& b) {
    std::string out;
    auto v = b.view();
    while (v.size() >= 5) {
        const char t = static_cast<char>(v[0]);
        std::uint32_t len = 0;
        for (int i = 1; i < 5; ++i)
            len = (len << 8) | static_cast<std::uint32_t>(v[i]);
        const std::string body(reinterpret_cast<const char*>(v.data()) + 5, len - 4);
        out += t;
        if (t == 'P') out += "(" + body.substr(0, body.find('\0')) + ")";
        if (t == 'B') {
            const auto rest = body.substr(body.find('\0') + 1);
            out += "(" + rest.substr(0, rest.find('\0')) + ")";
        }
        if ((t == 'D' || t == 'C') && !body.empty() && body[0] == 'S')
            out += "(" + body.substr(1, body.find('\0') - 1) + ")";
        out += ' ';
        v = v.subspan(len + 1);
    }
    return out;
}

struct harness {
    prepared_registry reg;
    statement_mux mux{reg, 2};
    pool::prepared_set conn_a;
    pool::prepared_set conn_b;
    pr::write_buffer to_server;
    pr::write_buffer to_client;

    void send(std::initializer_list<msg> ms) {
        to_server.clear();
        for (const auto& m : ms)
            mux.client_message(m.type, bytes(m.body), to_server, to_client);
    }
    // Server replies, by type (ErrorResponse 'E' gets a minimal body).
    void reply(const std::string& types) {
        for (char t : types) {
            pr::write_buffer one;
            const auto mark = one.begin_message(t);
            if (t == 'Z') one.u8('I');
            if (t == 'E') {
                one.u8('S');
                one.cstring("ERROR");
                one.u8(0);
            }
            one.end_message(mark);
            mux.server_message(one.view(), to_client);
        }
    }
    std::string client() {
        auto s = describe_stream(to_client);
        to_client.clear();
        return s;
    }
};

}  // namespace

TEST_CASE("a named statement is prepared once per connection, under its shared name") {
    harness h;
    h.mux.attach(&h.conn_a);
    h.send({parse("s1", "SELECT 1"), bind("s1"), execute(), sync_msg()});
    CHECK(describe_stream(h.to_server) == "P(sg1) B(sg1) E S ");
    h.reply("12CZ");
    CHECK(h.client() == "1 2 C Z ");
    CHECK(h.mux.settled());
    // Executing again on the same connection: no Parse.
    h.send({bind("s1"), execute(), sync_msg()});
    CHECK(describe_stream(h.to_server) == "B(sg1) E S ");
    h.reply("2CZ");
    CHECK(h.client() == "2 C Z ");
    h.mux.detach();
    // On another connection it is prepared first; the client never sees that ParseComplete.
    h.mux.attach(&h.conn_b);
    h.send({bind("s1"), execute(), sync_msg()});
    CHECK(describe_stream(h.to_server) == "P(sg1) B(sg1) E S ");
    h.reply("12CZ");
    CHECK(h.client() == "2 C Z ");
}

TEST_CASE("another client's Parse of the same statement on a connection that has it") {
    harness h;
    h.mux.attach(&h.conn_a);
    h.send({parse("a", "SELECT 1"), sync_msg()});
    h.reply("1Z");
    CHECK(h.client() == "1 Z ");
    statement_mux other(h.reg, 2);
    other.attach(&h.conn_a);
    pr::write_buffer srv;
    pr::write_buffer cli;
    other.client_message('P', bytes(parse("mine", "SELECT 1").body), srv, cli);
    other.client_message('S', {}, srv, cli);
    CHECK(describe_stream(srv) == "S ");  // not parsed again
    CHECK(describe_stream(cli) == "1 ");  // its ParseComplete, at once
    other.server_message(bytes(std::string("Z\0\0\0\5I", 6)), cli);
    CHECK(describe_stream(cli) == "1 Z ");
}

TEST_CASE("synthesized replies keep their place among the server's") {
    harness h;
    h.mux.attach(&h.conn_a);
    h.send({parse("s1", "SELECT 1"), sync_msg()});
    h.reply("1Z");
    h.client();
    // Describe of a portal, then Parse s1 again after closing it, then Bind.
    h.send({bind(""), execute(), close_s("s1"), parse("s1", "SELECT 1"), bind("s1"), execute(),
            sync_msg()});
    CHECK(describe_stream(h.to_server) == "B() E B(sg1) E S ");
    CHECK(h.client().empty());  // the close and parse replies wait their turn
    h.reply("2C");
    CHECK(h.client() == "2 C 3 1 ");
    h.reply("2CZ");
    CHECK(h.client() == "2 C Z ");
}

TEST_CASE("errors: unknown and duplicate names as Postgres words them; skip to Sync") {
    harness h;
    h.mux.attach(&h.conn_a);
    h.send({bind("nope"), execute(), sync_msg()});
    CHECK(describe_stream(h.to_server) == "S ");
    CHECK(h.client() == "E ");
    h.reply("Z");
    CHECK(h.client() == "Z ");
    h.send({parse("s1", "SELECT 1"), parse("s1", "SELECT 2"), bind("s1"), sync_msg()});
    CHECK(describe_stream(h.to_server) == "P(sg1) S ");
    h.reply("1Z");
    CHECK(h.client() == "1 E Z ");
}

TEST_CASE("a failed Parse creates nothing; messages after it up to Sync give no replies") {
    harness h;
    h.mux.attach(&h.conn_a);
    h.send({parse("bad", "SELEC 1"), parse("s2", "SELECT 2"), bind("s2"), sync_msg()});
    CHECK(describe_stream(h.to_server) == "P(sg1) P(sg2) B(sg2) S ");
    h.reply("EZ");
    CHECK(h.client() == "E Z ");
    CHECK_FALSE(h.conn_a.contains(1));
    CHECK_FALSE(h.conn_a.contains(2));
    h.send({bind("bad"), sync_msg()});  // it does not exist for the client either
    CHECK(h.client() == "E ");
}

TEST_CASE("max_prepared_statements: the least recently used is closed on the server") {
    harness h;  // capacity 2
    h.mux.attach(&h.conn_a);
    h.send({parse("a", "SELECT 1"), parse("b", "SELECT 2"), sync_msg()});
    h.reply("11Z");
    h.client();
    h.send({parse("c", "SELECT 3"), sync_msg()});
    CHECK(describe_stream(h.to_server) == "C(sg1) P(sg3) S ");
    h.reply("31Z");
    CHECK(h.client() == "1 Z ");      // the CloseComplete of the eviction is swallowed
    h.send({bind("a"), sync_msg()});  // prepared again on demand, evicting b
    CHECK(describe_stream(h.to_server) == "C(sg2) P(sg1) B(sg1) S ");
    h.reply("312Z");
    CHECK(h.client() == "2 Z ");
}

TEST_CASE("Describe of a named statement, and unnamed statements pass untouched") {
    harness h;
    h.mux.attach(&h.conn_a);
    h.send({parse("s", "SELECT $1::int"), describe_s("s"), sync_msg()});
    CHECK(describe_stream(h.to_server) == "P(sg1) D(sg1) S ");
    h.reply("1tTZ");
    CHECK(h.client() == "1 t T Z ");
    h.send({parse("", "SELECT 1"), bind(""), execute(), sync_msg()});
    CHECK(describe_stream(h.to_server) == "P() B() E S ");
    h.reply("12DCZ");
    CHECK(h.client() == "1 2 D C Z ");
}
