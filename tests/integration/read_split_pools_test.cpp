// Read/write splitting and the pools: every server connection goes back to the pool it came
// from (a replica's or the primary's), also when applying a client's settings fails on it.
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <string>

#include "split_cluster.hpp"

using namespace split_fixture;

TEST_CASE("a replica connection refused a client's settings: back to the replica's pool") {
    cluster c;
    // Two connections per pool, a short wait: a leaked replica connection shows at once.
    c.start("pool_size = 2\ncheckout_timeout_ms = 2000\nconsistency = \"eventual\"\n");
    // transaction_read_only = off is fine on the primary (the greeting's login), but a standby
    // refuses it when the client's settings are applied to a replica connection for a read.
    for (int i = 0; i < 4; ++i) {
        auto bad = c.connect("options='-c transaction_read_only=off'");
        REQUIRE_MESSAGE(PQstatus(bad.get()) == CONNECTION_OK, PQerrorMessage(bad.get()));
        (void)value(bad.get(), "SELECT inet_server_port()");
        const std::string why = PQerrorMessage(bad.get());
        CAPTURE(why);
        CHECK(why.find("FATAL:  transaction read-write mode") !=
              std::string::npos);  // the standby's
    }
    // The replicas' pools still have room: reads run there, at once.
    auto good = c.connect();
    for (int i = 0; i < 20; ++i) {
        const auto t0 = clock_type::now();
        const int port = server_port(good.get());
        CHECK((port == c.replica(0).port() || port == c.replica(1).port()));
        CHECK(clock_type::now() - t0 < 1s);
    }
    // And no replica connection serves writes: each runs on the primary.
    for (int i = 0; i < 20; ++i) {
        CHECK(value(good.get(), "INSERT INTO kv(v) VALUES (1) RETURNING inet_server_port()") ==
              std::to_string(c.primary().port()));
    }
    for (const auto& row : c.show("POOLS")) {
        CAPTURE(row.at("database"));
        CHECK(std::stoi(row.at("sv_active")) <= 2);
    }
}
