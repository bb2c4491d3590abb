// exchange_tracker: replies owed, Sync boundaries, transaction status, Terminate, FATAL.
#include "shardgate/protocol/exchange_tracker.hpp"

#include <doctest/doctest.h>

using shardgate::protocol::exchange_tracker;

TEST_CASE("exchange_tracker: a simple query is owed one ReadyForQuery") {
    exchange_tracker t;
    CHECK(t.server_idle());
    t.on_client('Q');
    CHECK_FALSE(t.server_idle());
    t.on_ready('I');
    CHECK(t.server_idle());
    CHECK(t.txn_status() == 'I');
}

TEST_CASE("exchange_tracker: pipelined extended batches and Flush without Sync") {
    exchange_tracker t;
    for (char m : {'P', 'B', 'D', 'E', 'S', 'P', 'B', 'E', 'S'})
        t.on_client(m);
    t.on_ready('T');
    CHECK_FALSE(t.server_idle());  // the second Sync is still owed
    t.on_ready('T');
    CHECK(t.server_idle());
    CHECK(t.txn_status() == 'T');
    t.on_client('P');
    t.on_client('H');  // Flush: answers come, but the server waits for more
    CHECK_FALSE(t.server_idle());
    t.on_client('S');
    t.on_ready('E');
    CHECK(t.server_idle());
    CHECK(t.txn_status() == 'E');
}

TEST_CASE("exchange_tracker: COPY data belongs to the query that started it") {
    exchange_tracker t;
    t.on_client('Q');
    t.on_client('d');
    t.on_client('d');
    t.on_client('c');
    CHECK_FALSE(t.server_idle());
    t.on_ready('I');
    CHECK(t.server_idle());
}

TEST_CASE("exchange_tracker: Terminate, FATAL and dirty are sticky") {
    exchange_tracker t;
    t.on_client('X');
    t.on_fatal();
    t.mark_dirty();
    t.on_client('Q');
    t.on_ready('I');
    CHECK(t.terminated());
    CHECK(t.server_fatal());
    CHECK(t.dirty());
}
