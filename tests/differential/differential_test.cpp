// Differential test: every corpus case runs on a direct connection to Postgres and on one
// through shardgate; the backend message streams (login included) must be identical.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "compare.hpp"
#include "corpus.hpp"
#include "raw_client.hpp"
#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace shardgate::difftest;

namespace {

constexpr const char* user = "alice";
constexpr const char* password = "secret";
constexpr const char* database = "app";

// $SHARDGATE_TEST_POOL_MODE picks pool_mode (default: shardgate's default, transaction).
bool transaction_pooling() {
    const char* m = std::getenv("SHARDGATE_TEST_POOL_MODE");
    return m == nullptr || std::string(m) == "transaction";
}

std::string pool_mode_line() {
    const char* m = std::getenv("SHARDGATE_TEST_POOL_MODE");
    return m == nullptr ? "" : std::string("pool_mode = \"") + m + "\"\n";
}

// shardgate's pooled server connection stays open between cases; its reset query is marked
// so that reset() can tell it from a direct session that is still going away.
constexpr std::string_view pool_reset_query = "DISCARD ALL /* differential pool reset */";

std::string proxy_toml(const pg_server& pg) {
    return "[shardgate]\nlisten_addr = \"127.0.0.1\"\nlisten_port = @PORT@\nworkers = 2\n"
           "log_level = \"warn\"\n"
           "server_reset_query = \"" +
           std::string(pool_reset_query) +
           "\"\n"
           // A fresh server connection per case: a reused one carries history that differs by
           // nature (a temp schema in current_schemas(true), say); pool_test covers reuse.
           "server_lifetime_ms = 1\nserver_lifetime_jitter_ms = 0\n" +
           pool_mode_line() +
           "[databases.app]\nhost = \"127.0.0.1\"\nport = " + std::to_string(pg.port()) +
           "\ndbname = \"app\"\nserver_tls = \"disable\"\n"
           "[users.alice]\npassword = \"secret\"\nauth = \"scram-sha-256\"\n";
}

// What one run of a case produced: every message in order, and why it stopped early, if it did.
struct run_result {
    message_stream messages;
    std::string error;  // empty: the case ran to its end
};

// Runs `c` on a fresh connection to `port`; `side` runs a step's side_sql on another session.
run_result run_case(const test_case& c, int port,
                    const std::function<void(const std::string&)>& side) {
    login_params p;
    p.port = port;
    p.user = user;
    p.password = c.password.value_or(password);
    p.database = database;
    p.params = {{"application_name", "differential"}, {"client_encoding", "UTF8"}};
    p.params.insert(p.params.end(), c.startup_params.begin(), c.startup_params.end());
    p.timeout = std::chrono::seconds(5);
    run_result r;
    std::unique_ptr<raw_client> client;
    try {
        client = std::make_unique<raw_client>(p);
        r.messages = client->login_messages();
        if (client->login_refused()) return r;
        for (const step& s : c.steps) {
            std::deque<shardgate::protocol::write_buffer> copy_in(s.copy_in.begin(),
                                                                  s.copy_in.end());
            if (c.split_writes)
                client->send_in_pieces(s.send, 3, std::chrono::microseconds(50));
            else
                client->send(s.send);
            if (!s.side_sql.empty()) side(s.side_sql);
            if (s.cancel_after) {
                std::this_thread::sleep_for(*s.cancel_after);
                client->send_cancel();
            }
            message_stream got = client->read_until(s.goal, &copy_in);
            r.messages.insert(r.messages.end(), got.begin(), got.end());
        }
    } catch (const wire_error& e) {
        if (client) {
            const auto& part = client->partial();
            r.messages.insert(r.messages.end(), part.begin(), part.end());
        }
        r.error = e.what();
    }
    return r;
}

// One Postgres with role alice and database app, the fixture, a lock holder, and shardgate.
class environment {
  public:
    environment() : pg_(make_options()) {
        pg_.create_role(user, password);
        pg_.create_database(database, user);
        pg_.exec(fixture_sql(), database);
        // Objects created from here on get OIDs above this one (the OID counter only grows).
        oid_floor_ = static_cast<std::uint32_t>(std::stoul(pg_.query_value(
            "CREATE TABLE oid_probe (); SELECT 'oid_probe'::regclass::oid", database)));
        pg_.exec("DROP TABLE oid_probe", database);
        admin_ = std::make_unique<pg_connection>(pg_.superuser_conninfo(database));
        lock_holder_ = std::make_unique<pg_connection>(pg_.superuser_conninfo(database));
        lock_holder_->exec(lock_holder_sql());
        proxy_ =
            std::make_unique<shardgate_process>(shardgate_options{.config_toml = proxy_toml(pg_)});
    }

    int pg_port() const { return pg_.port(); }
    int proxy_port() const { return proxy_->port(); }
    mask_rules masks() const { return mask_rules{oid_floor_}; }

    // Waits until no session of alice is left (a closed connection's backend exits
    // asynchronously, and its temp objects go with it), then resets alice's objects.
    void reset() {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (admin_->query_value("SELECT count(*) FROM pg_stat_activity WHERE usename = "
                                   "'alice' AND NOT (state = 'idle' AND query = '" +
                                   std::string(pool_reset_query) + "')") != "0") {
            if (std::chrono::steady_clock::now() > until)
                throw std::runtime_error(
                    "alice's sessions do not go away: " +
                    admin_->query_value("SELECT string_agg(state || ': ' || query, ' | ') FROM "
                                        "pg_stat_activity WHERE usename = 'alice'"));
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        admin_->exec(reset_sql());
    }

    // SQL on the superuser's connection (the same one reset() uses).
    void side_sql(const std::string& sql) { admin_->exec(sql); }

    std::string logs() const {
        return "postgres:\n" + pg_.log_tail(20) + "\nshardgate:\n" + proxy_->log_tail(20);
    }

  private:
    static pg_server_options make_options() {
        pg_server_options o;
        o.name = "differential";
        o.auth = auth_method::scram_sha_256;
        // Keep background activity from touching the tables cases look at.
        o.extra_conf = {"autovacuum = off", "lc_messages = 'C'", "lc_monetary = 'C'"};
        return o;
    }

    pg_server pg_;
    std::uint32_t oid_floor_ = UINT32_MAX;
    std::unique_ptr<pg_connection> admin_;
    std::unique_ptr<pg_connection> lock_holder_;
    std::unique_ptr<shardgate_process> proxy_;
};

// With $DIFFERENTIAL_DUMP set to a directory, each case's direct stream is written there, one
// readable message per line, to review what a case really exercises.
void dump(const test_case& c, const run_result& r) {
    const char* dir = std::getenv("DIFFERENTIAL_DUMP");
    if (dir == nullptr || *dir == '\0') return;
    std::ofstream out(std::string(dir) + "/" + c.name + ".txt");
    for (std::size_t i = 0; i < r.messages.size(); ++i)
        out << i << " " << describe(r.messages[i]) << "\n";
    if (!r.error.empty()) out << "error: " << r.error << "\n";
}

}  // namespace

TEST_CASE(
    "differential: the corpus gives identical message streams directly and through shardgate") {
    const auto t0 = std::chrono::steady_clock::now();
    environment env;
    const auto corpus = full_corpus();
    REQUIRE(corpus.size() >= 150);

    std::size_t cases_identical = 0;
    std::size_t messages_identical = 0;
    std::size_t masked = 0;
    std::string without_location;   // cases where shardgate wrote an error without F/L/R
    std::string known_differences;  // transaction pooling's, by nature
    std::size_t failures = 0;
    const auto side = [&env](const std::string& sql) { env.side_sql(sql); };
    // $DIFFERENTIAL_SELF_CHECK=1 runs both sides directly: shows that the corpus itself is
    // deterministic (every difference left is then the proxy's).
    const char* self_check = std::getenv("DIFFERENTIAL_SELF_CHECK");
    const int second_port =
        self_check != nullptr && std::string(self_check) == "1" ? env.pg_port() : env.proxy_port();
    for (const test_case& c : corpus) {
        env.reset();
        const run_result direct = run_case(c, env.pg_port(), side);
        dump(c, direct);
        env.reset();
        const run_result proxied = run_case(c, second_port, side);
        const comparison cmp = compare_streams(direct.messages, proxied.messages, env.masks());
        messages_identical += cmp.identical;
        masked += cmp.masked_fields;
        if (cmp.without_source_location > 0)
            without_location +=
                " " + c.name + "(" + std::to_string(cmp.without_source_location) + ")";

        std::string problem;
        if (!cmp.ok() && transaction_pooling() && !c.differs_in_transaction_pooling.empty()) {
            known_differences += " " + c.name + " (" + c.differs_in_transaction_pooling + ")";
        } else if (!cmp.ok()) {
            problem = format_mismatch(c.name, *cmp.mismatch);
        }
        if (!direct.error.empty())  // the case itself is broken: it must run on Postgres
            problem += "\ncase " + c.name + ": direct run failed: " + direct.error;
        if (!proxied.error.empty())
            problem += "\ncase " + c.name + ": proxied run failed: " + proxied.error;
        if (problem.empty()) {
            ++cases_identical;
        } else {
            ++failures;
            FAIL_CHECK(problem);
        }
    }
    if (failures > 0) MESSAGE(env.logs());
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    std::cout << "differential: " << corpus.size() << " cases, " << messages_identical
              << " messages identical\n"
              << "differential: " << cases_identical << "/" << corpus.size()
              << " cases identical in " << ms << " ms; " << masked
              << " fields masked (BackendKeyData, notifying pids, SASL data, OIDs of new objects)"
              << "; errors shardgate wrote without F/L/R:"
              << (without_location.empty() ? " none" : without_location) << std::endl;
    if (!known_differences.empty())
        std::cout << "differential: differ by nature in transaction pooling:" << known_differences
                  << std::endl;
    CHECK(failures == 0);
}
