// The fan-out core: one Query on N backends answered as one; an error or a lost connection on
// one of them ends the statement with its error, cancels the others, and every connection goes
// back with the disposition its own stream earned.
#include "core/fanout.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/errors.hpp"
#include "shardgate/protocol/frame.hpp"

using namespace shardgate;
using proxy::backend_disposition;
using proxy::fanout;
using proxy::fanout_action;
namespace pr = shardgate::protocol;
namespace be = shardgate::protocol::be;

namespace {

std::vector<std::byte> query_body(const std::string& sql) {
    std::vector<std::byte> b;
    for (char c : sql)
        b.push_back(static_cast<std::byte>(c));
    b.push_back(std::byte{0});
    return b;
}

be::row_description one_int(const std::string& name = "x") {
    return {{{name, 0, 0, 23, 4, -1, 0}}};
}

// What a server answers to SELECT 1 (status: its ReadyForQuery's).
std::vector<std::byte> select_one(char status = 'I', const std::string& column = "x") {
    pr::write_buffer w;
    be::encode(w, one_int(column));
    be::encode(w, be::data_row{{std::string("1")}});
    be::encode(w, be::command_complete{"SELECT 1"});
    be::encode(w, be::ready_for_query{status});
    const auto v = w.view();
    return {v.begin(), v.end()};
}

std::vector<std::byte> error_then_ready(const std::string& code, char status = 'I') {
    pr::write_buffer w;
    pr::encode_error(w, {pr::severity::error, code, "boom", "it broke"});
    be::encode(w, be::ready_for_query{status});
    const auto v = w.view();
    return {v.begin(), v.end()};
}

struct client_view {
    std::vector<char> types;
    std::vector<std::string> tags;
    std::vector<std::string> codes;
    std::vector<std::string> details;
    std::size_t rows = 0;
    char status = '?';
};
client_view read_client(const pr::write_buffer& out) {
    client_view v;
    const pr::frame_decoder dec(pr::postgres_max_message_length);
    auto in = out.view();
    for (auto f = dec.feed(in); f.status == pr::frame_status::ok; f = dec.feed(in)) {
        v.types.push_back(f.msg.type);
        if (f.msg.type == 'C') v.tags.emplace_back(be::decode_command_complete(f.msg.body)->tag);
        if (f.msg.type == 'D') ++v.rows;
        if (f.msg.type == 'Z') v.status = static_cast<char>(f.msg.body[0]);
        if (f.msg.type == 'E') {
            auto e = be::decode_error_response(f.msg.body);
            v.codes.emplace_back(e->code());
            v.details.emplace_back(e->field('D'));
        }
        in = in.subspan(f.consumed);
    }
    return v;
}

}  // namespace

TEST_CASE("fanout: SELECT 1 on three backends is one result with three rows") {
    fanout f(3);
    const auto q = query_body("SELECT 1");
    f.start(q);
    for (std::size_t k = 0; k < 3; ++k)
        CHECK_FALSE(f.to_backend(k).empty());
    fanout_action a;
    for (std::size_t k = 0; k < 3; ++k)
        a = f.on_bytes(k, select_one());
    CHECK(a.what == fanout_action::kind::done);
    const auto v = read_client(f.client_out());
    CHECK(v.types == std::vector<char>{'T', 'D', 'D', 'D', 'C', 'Z'});
    CHECK(v.tags == std::vector<std::string>{"SELECT 3"});
    CHECK(v.status == 'I');
    for (std::size_t k = 0; k < 3; ++k)
        CHECK(f.disposition(k) == backend_disposition::clean);
}

TEST_CASE("fanout: replies split at every byte and arriving in any order give the same answer") {
    const auto r = select_one();
    for (std::size_t cut = 1; cut < r.size(); ++cut) {
        fanout f(3);
        f.start(query_body("SELECT 1"));
        const std::span<const std::byte> all(r);
        // backend 2 first, then 0 in two pieces, then 1.
        (void)f.on_bytes(2, all);
        (void)f.on_bytes(0, all.first(cut));
        (void)f.on_bytes(0, all.subspan(cut));
        const auto a = f.on_bytes(1, all);
        CHECK(a.what == fanout_action::kind::done);
        const auto v = read_client(f.client_out());
        CHECK(v.rows == 3);
        CHECK(v.tags == std::vector<std::string>{"SELECT 3"});
    }
}

TEST_CASE("fanout: an error on one backend ends the statement, cancels the others") {
    fanout f(3);
    f.start(query_body("SELECT 1"));
    (void)f.on_bytes(0, select_one());
    auto a = f.on_bytes(1, error_then_ready("22012"));
    // Backend 2 is still running: it is cancelled.
    CHECK(a.what == fanout_action::kind::cancel);
    CHECK(a.backend == 2);
    CHECK_FALSE(f.next_cancel());
    // The cancelled one answers with its own error (57014), which the client does not see.
    a = f.on_bytes(2, error_then_ready("57014"));
    CHECK(a.what == fanout_action::kind::done);
    const auto v = read_client(f.client_out());
    REQUIRE(v.codes.size() == 1);
    CHECK(v.codes[0] == "22012");
    CHECK(v.details[0].find("server 1") != std::string::npos);
    CHECK(v.tags.empty());
    CHECK(v.status == 'I');
    for (std::size_t k = 0; k < 3; ++k)
        CHECK(f.disposition(k) == backend_disposition::clean);
}

TEST_CASE("fanout: a backend that closes mid-statement is poisoned, the others stay clean") {
    fanout f(3);
    f.start(query_body("SELECT 1"));
    (void)f.on_bytes(0, select_one());
    const auto r = select_one();
    (void)f.on_bytes(1, std::span<const std::byte>(r).first(7));  // part of a reply
    auto a = f.on_closed(1);
    CHECK(a.what == fanout_action::kind::cancel);
    CHECK(a.backend == 2);
    a = f.on_bytes(2, error_then_ready("57014"));
    CHECK(a.what == fanout_action::kind::done);
    const auto v = read_client(f.client_out());
    REQUIRE(v.codes.size() == 1);
    CHECK(v.codes[0] == "08006");
    CHECK(f.disposition(0) == backend_disposition::clean);
    CHECK(f.disposition(1) == backend_disposition::poisoned);
    CHECK(f.disposition(2) == backend_disposition::clean);
}

TEST_CASE("fanout: inside a transaction block, a failure fails the block everywhere") {
    fanout f(2);
    f.start(query_body("SELECT 1"));
    (void)f.on_bytes(0, select_one('T'));
    const auto a = f.on_bytes(1, error_then_ready("22012", 'E'));
    CHECK(a.what == fanout_action::kind::done);
    const auto v = read_client(f.client_out());
    CHECK(v.status == 'E');
    CHECK(f.disposition(0) == backend_disposition::dirty);
    CHECK(f.disposition(1) == backend_disposition::dirty);
}

TEST_CASE("fanout: backends that disagree on the columns are an error, not a mixed result") {
    fanout f(2);
    f.start(query_body("SELECT 1"));
    (void)f.on_bytes(0, select_one('I', "x"));
    const auto a = f.on_bytes(1, select_one('I', "y"));
    CHECK(a.what == fanout_action::kind::done);
    const auto v = read_client(f.client_out());
    REQUIRE(v.codes.size() == 1);
    CHECK(v.codes[0] == "XX000");
    CHECK(v.status == 'I');
}

TEST_CASE("fanout: tags are summed by their verb") {
    fanout f(2);
    f.start(query_body("UPDATE t SET x = 1"));
    for (std::size_t k = 0; k < 2; ++k) {
        pr::write_buffer w;
        be::encode(w, be::command_complete{k == 0 ? "UPDATE 2" : "UPDATE 5"});
        be::encode(w, be::ready_for_query{'I'});
        (void)f.on_bytes(k, w.view());
    }
    CHECK(read_client(f.client_out()).tags == std::vector<std::string>{"UPDATE 7"});
}

TEST_CASE("fanout: a malformed reply is a lost backend, not a crash") {
    fanout f(2);
    f.start(query_body("SELECT 1"));
    (void)f.on_bytes(0, select_one());
    // CommandComplete without its terminating NUL.
    const std::vector<std::byte> bad{std::byte{'C'}, std::byte{0},   std::byte{0},  std::byte{0},
                                     std::byte{6},   std::byte{'X'}, std::byte{'Y'}};
    const auto a = f.on_bytes(1, bad);
    CHECK(a.what == fanout_action::kind::done);
    const auto v = read_client(f.client_out());
    REQUIRE(v.codes.size() == 1);
    CHECK(v.codes[0] == "08006");
    CHECK(f.disposition(1) == backend_disposition::poisoned);
}
