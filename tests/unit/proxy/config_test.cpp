// Config loading: valid files, and every kind of mistake reported with file:line and what is wrong.
// One file per public header (config.hpp) as the unit tests are laid out, hence over 500 lines.
#include <doctest/doctest.h>

#include <string>

#include "config/config.hpp"
#include "shardgate/protocol/scram.hpp"

using namespace shardgate::proxy;

namespace {

const char* const minimal = R"([databases.app]
port = 5432
[users.alice]
password = "secret"
)";

std::string error_of(const std::string& toml) {
    try {
        parse_config(toml, "test.toml");
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a minimal config gets the documented defaults") {
    auto c = parse_config(minimal, "test.toml");
    CHECK(c->listen_addr == "127.0.0.1");
    CHECK(c->listen_port == 6432);
    CHECK(c->workers >= 1);
    CHECK(c->data_planes >= 1);
    CHECK(c->max_client_conn == 10000);
    CHECK(c->relay_engine == "epoll");
    const auto& db = c->databases.at("app");
    CHECK(db.dbname == "app");
    CHECK(db.host == "127.0.0.1");
    CHECK(db.server_tls == server_tls_mode::prefer);
    const auto& u = c->users.at("alice");
    CHECK(u.auth == auth_method::scram_sha_256);
    // A plaintext password is turned into a SCRAM verifier once, at load.
    auto v = shardgate::protocol::auth::scram_verifier::parse(u.scram_verifier);
    REQUIRE(v.has_value());
    CHECK(v->verify_password("secret"));
    CHECK_FALSE(v->verify_password("Secret"));
}

TEST_CASE("every setting is read") {
    auto c = parse_config(R"([shardgate]
listen_addr = "0.0.0.0"
listen_port = 7000
workers = 3
data_planes = 2
max_client_conn = 50
max_message_size = 65536
server_connect_timeout_ms = 100
client_login_timeout_ms = 200
shutdown_timeout_ms = 300
log_level = "warn"
relay_engine = "asio"
[databases.app]
host = "db.example"
port = 5433
dbname = "real"
server_tls = "verify-full"
server_tls_ca_file = "/ca.pem"
server_user = "svc"
server_password = "pw"
[users.bob]
auth = "md5"
md5_hash = "md5f6fdffe48c908deb0f4c3bd36c032e72"
[users.tina]
auth = "trust"
)",
                          "test.toml");
    CHECK(c->listen_addr == "0.0.0.0");
    CHECK(c->listen_port == 7000);
    CHECK(c->workers == 3);
    CHECK(c->data_planes == 2);
    CHECK(c->max_client_conn == 50);
    CHECK(c->max_message_size == 65536);
    CHECK(c->server_connect_timeout.count() == 100);
    CHECK(c->client_login_timeout.count() == 200);
    CHECK(c->shutdown_timeout.count() == 300);
    CHECK(c->log_level == "warn");
    CHECK(c->relay_engine == "asio");
    const auto& db = c->databases.at("app");
    CHECK(db.host == "db.example");
    CHECK(db.port == 5433);
    CHECK(db.dbname == "real");
    CHECK(db.server_tls == server_tls_mode::verify_full);
    CHECK(db.server_user == "svc");
    CHECK(db.server_password == "pw");
    CHECK(c->users.at("bob").auth == auth_method::md5);
    CHECK(c->users.at("tina").auth == auth_method::trust);
}

TEST_CASE("mistakes are reported with the file, the line and what is wrong") {
    CHECK(error_of("[databases.app\nport = 1").rfind("test.toml:1:", 0) == 0);
    CHECK(error_of(std::string(minimal) + "[shardgate]\nlisten_prot = 5\n") ==
          "test.toml:6: unknown setting 'shardgate.listen_prot'");
    CHECK(error_of(std::string(minimal) + "[shardgate]\nlisten_port = \"x\"\n") ==
          "test.toml:6: 'shardgate.listen_port' must be an integer");
    CHECK(error_of(std::string(minimal) + "[shardgate]\nlisten_port = 70000\n") ==
          "test.toml:6: 'shardgate.listen_port' must be between 0 and 65535, not 70000");
    CHECK(
        error_of(std::string(minimal) + "[shardgate]\nlog_level = \"loud\"\n") ==
        "test.toml:6: 'shardgate.log_level': must be one of trace, debug, info, warn, error, off");
    CHECK(error_of("[databases.app]\nserver_tls = \"maybe\"\n[users.a]\npassword = \"x\"\n") ==
          "test.toml:2: 'databases.app.server_tls': must be one of disable, prefer, require, "
          "verify-full, not 'maybe'");
    CHECK(
        error_of("[databases.app]\nserver_tls = \"verify-full\"\n[users.a]\npassword = \"x\"\n") ==
        "test.toml:2: 'databases.app.server_tls': verify-full needs server_tls_ca_file");
    CHECK(error_of("[databases.app]\n[users.a]\nauth = \"md5\"\n") ==
          "test.toml:3: 'users.a.auth': md5 needs 'password' or 'md5_hash'");
    CHECK(error_of("[databases.app]\n[users.a]\nauth = \"kerberos\"\n") ==
          "test.toml:3: 'users.a.auth': must be one of scram-sha-256, md5, trust, not 'kerberos'");
    CHECK(error_of("[databases.app]\n[users.a]\nmd5_hash = \"md5xyz\"\npassword = \"p\"\n") ==
          "test.toml:3: 'users.a.md5_hash': must be 'md5' followed by 32 hex digits");
    CHECK(error_of("[databases.app]\n[users.a]\nscram_verifier = \"SCRAM-SHA-256$x\"\n") ==
          "test.toml:3: 'users.a.scram_verifier': is not a valid SCRAM-SHA-256 verifier");
    CHECK(error_of("[users.a]\npassword = \"p\"\n").find("no [databases.<name>] configured") !=
          std::string::npos);
    CHECK(error_of("[databases.app]\n").find("no [users.<name>] configured") != std::string::npos);
    CHECK(error_of(std::string(minimal) + "[poolz]\nx = 1\n") ==
          "test.toml:5: unknown section 'poolz' (expected shardgate, databases, users)");
    CHECK(error_of(std::string(minimal) + "[shardgate]\ntls_cert_file = \"a.pem\"\n")
              .find("tls_cert_file and tls_key_file must be set together") != std::string::npos);
}

TEST_CASE("a missing file is a clear error") {
    CHECK_THROWS_WITH_AS(load_config("/nonexistent/shardgate.toml"),
                         "/nonexistent/shardgate.toml: cannot open config file", config_error);
}

TEST_CASE("pool settings: built-in defaults, then global < database < user") {
    {
        auto c = parse_config(minimal, "test.toml");
        const auto p = resolve_pool(*c, c->databases.at("app"), c->users.at("alice"));
        CHECK(p.mode == pool_mode::transaction);
        CHECK(p.settings.pool_size == 20);
        CHECK(p.settings.checkout_timeout.count() == 120000);
        CHECK(p.settings.server_lifetime.count() == 3600000);
        CHECK(p.settings.server_lifetime_jitter.count() == 360000);  // 10 % of the lifetime
        CHECK(p.server_reset_query == "DISCARD ALL");
    }
    auto c = parse_config(R"([shardgate]
pool_size = 10
min_pool_size = 2
checkout_timeout_ms = 3000
server_reset_query = "RESET ALL"
server_backoff_initial_ms = 200
server_backoff_max_ms = 5000
[databases.app]
port = 5432
pool_size = 8
server_lifetime_ms = 60000
[databases.other]
port = 5433
[users.alice]
password = "secret"
pool_size = 5
reserve_pool_size = 1
reserve_pool_timeout_ms = 100
server_idle_timeout_ms = 0
server_check_delay_ms = 10
[users.bob]
password = "secret"
)",
                          "test.toml");
    const auto aa = resolve_pool(*c, c->databases.at("app"), c->users.at("alice"));
    CHECK(aa.settings.pool_size == 5);  // user wins
    CHECK(aa.settings.min_pool_size == 2);
    CHECK(aa.settings.reserve_pool_size == 1);
    CHECK(aa.settings.reserve_pool_timeout.count() == 100);
    CHECK(aa.settings.checkout_timeout.count() == 3000);
    CHECK(aa.settings.server_lifetime.count() == 60000);
    CHECK(aa.settings.server_lifetime_jitter.count() == 6000);
    CHECK(aa.settings.server_idle_timeout.count() == 0);
    CHECK(aa.settings.server_check_delay.count() == 10);
    CHECK(aa.settings.backoff_initial.count() == 200);
    CHECK(aa.settings.backoff_max.count() == 5000);
    CHECK(aa.server_reset_query == "RESET ALL");
    const auto ab = resolve_pool(*c, c->databases.at("app"), c->users.at("bob"));
    CHECK(ab.settings.pool_size == 8);  // database over global
    const auto ob = resolve_pool(*c, c->databases.at("other"), c->users.at("bob"));
    CHECK(ob.settings.pool_size == 10);  // global
}

TEST_CASE("pool setting mistakes are clear") {
    CHECK(error_of(std::string("[shardgate]\npool_mode = \"statement\"\n") + minimal) ==
          "test.toml:2: 'shardgate.pool_mode': must be session or transaction, not 'statement'");
    CHECK(error_of(std::string("[shardgate]\npool_size = 0\n") + minimal) ==
          "test.toml:2: 'shardgate.pool_size' must be between 1 and 100000, not 0");
    CHECK(error_of(std::string("[shardgate]\nserver_backoff_initial_ms = 500\n"
                               "server_backoff_max_ms = 100\n") +
                   minimal)
              .find("must not be smaller") != std::string::npos);
    CHECK(error_of(std::string(minimal) + "pool_sise = 3\n") ==
          "test.toml:5: unknown setting 'users.alice.pool_sise'");
}

TEST_CASE("health endpoint and shutdown readiness keys: defaults and values") {
    auto d = parse_config(minimal, "test.toml");
    CHECK(d->http_listen_addr == "127.0.0.1");
    CHECK(d->http_port == 0);  // no HTTP server
    CHECK(d->shutdown_ready_delay.count() == 0);
    auto c = parse_config(std::string("[shardgate]\nhttp_listen_addr = \"0.0.0.0\"\n"
                                      "http_port = 8080\nshutdown_ready_delay_ms = 5000\n") +
                              minimal,
                          "test.toml");
    CHECK(c->http_listen_addr == "0.0.0.0");
    CHECK(c->http_port == 8080);
    CHECK(c->shutdown_ready_delay.count() == 5000);
    auto bounds =
        parse_config(std::string("[shardgate]\nhttp_listen_addr = \"::1\"\n"
                                 "http_port = 65535\nshutdown_ready_delay_ms = 600000\n") +
                         minimal,
                     "test.toml");
    CHECK(bounds->http_listen_addr == "::1");
    CHECK(bounds->http_port == 65535);
    CHECK(bounds->shutdown_ready_delay.count() == 600000);
}

TEST_CASE("health endpoint and shutdown readiness key mistakes are clear") {
    CHECK(error_of(std::string("[shardgate]\nhttp_port = 65536\n") + minimal) ==
          "test.toml:2: 'shardgate.http_port' must be between 0 and 65535, not 65536");
    CHECK(error_of(std::string("[shardgate]\nhttp_port = -1\n") + minimal) ==
          "test.toml:2: 'shardgate.http_port' must be between 0 and 65535, not -1");
    CHECK(error_of(std::string("[shardgate]\nhttp_port = \"8080\"\n") + minimal) ==
          "test.toml:2: 'shardgate.http_port' must be an integer");
    CHECK(error_of(std::string("[shardgate]\nshutdown_ready_delay_ms = 600001\n") + minimal) ==
          "test.toml:2: 'shardgate.shutdown_ready_delay_ms' must be between 0 and 600000, not "
          "600001");
    CHECK(error_of(std::string("[shardgate]\nshutdown_ready_delay_ms = -5\n") + minimal) ==
          "test.toml:2: 'shardgate.shutdown_ready_delay_ms' must be between 0 and 600000, not -5");
    CHECK(error_of(std::string("[shardgate]\nhttp_listen_addr = 8080\n") + minimal) ==
          "test.toml:2: 'shardgate.http_listen_addr' must be a string");
    CHECK(error_of(std::string("[shardgate]\nhttp_listen_addr = \"localhost\"\n") + minimal) ==
          "test.toml:2: 'shardgate.http_listen_addr': must be an IP address, not 'localhost'");
    CHECK(error_of(std::string("[shardgate]\nhttp_prot = 8080\n") + minimal) ==
          "test.toml:2: unknown setting 'shardgate.http_prot'");
}

TEST_CASE("admin_users and stats_users: defaults and values") {
    auto d = parse_config(minimal, "test.toml");
    CHECK(d->admin_users.empty());
    CHECK(d->stats_users.empty());
    auto c = parse_config(std::string("[shardgate]\nadmin_users = [\"alice\"]\n"
                                      "stats_users = [\"bob\", \"alice\"]\n") +
                              minimal + "[users.bob]\npassword = \"pw\"\n",
                          "test.toml");
    CHECK(c->admin_users == std::vector<std::string>{"alice"});
    CHECK(c->stats_users == std::vector<std::string>{"bob", "alice"});
    auto empty = parse_config(std::string("[shardgate]\nadmin_users = []\n") + minimal, "t.toml");
    CHECK(empty->admin_users.empty());
}

TEST_CASE("admin_users and stats_users mistakes are clear") {
    CHECK(error_of(std::string("[shardgate]\nadmin_users = [\"alice\", \"carol\"]\n") + minimal) ==
          "test.toml:2: 'shardgate.admin_users': user 'carol' is not defined in [users]");
    CHECK(error_of(std::string("[shardgate]\nstats_users = [\n  \"alice\",\n  \"dave\",\n]\n") +
                   minimal) ==
          "test.toml:4: 'shardgate.stats_users': user 'dave' is not defined in [users]");
    CHECK(error_of(std::string("[shardgate]\nadmin_users = \"alice\"\n") + minimal) ==
          "test.toml:2: 'shardgate.admin_users' must be an array of strings");
    CHECK(error_of(std::string("[shardgate]\nadmin_users = [\"alice\", 7]\n") + minimal) ==
          "test.toml:2: 'shardgate.admin_users' must be an array of strings");
    CHECK(error_of(std::string(minimal) + "[databases.shardgate]\nport = 5432\n") ==
          "test.toml:5: 'databases.shardgate': the name shardgate is reserved for the admin "
          "console");
}

TEST_CASE("transaction_pinning: pin (default) or refuse") {
    auto d = parse_config(minimal, "test.toml");
    CHECK_FALSE(resolve_pool(*d, d->databases.at("app"), d->users.at("alice")).refuse_pinning);
    auto c = parse_config(std::string("[shardgate]\ntransaction_pinning = \"refuse\"\n") + minimal,
                          "test.toml");
    CHECK(resolve_pool(*c, c->databases.at("app"), c->users.at("alice")).refuse_pinning);
    CHECK(error_of(std::string("[shardgate]\ntransaction_pinning = \"maybe\"\n") + minimal) ==
          "test.toml:2: 'shardgate.transaction_pinning': must be pin or refuse, not 'maybe'");
}

// ---------------------------------------------------------------- read/write splitting

namespace {

using shardgate::router::consistency_mode;

// A database with a primary on 5432 and `extra` after its keys, then the user alice.
std::string with_db(const std::string& extra) {
    return "[databases.app]\nport = 5432\n" + extra + "\n[users.alice]\npassword = \"secret\"\n";
}

}  // namespace

TEST_CASE("read/write split: defaults without replicas") {
    auto c = parse_config(minimal, "test.toml");
    CHECK(c->replica_check_interval.count() == 250);
    CHECK(c->replica_check_timeout.count() == 1000);
    CHECK(c->function_catalog_refresh.count() == 60000);
    const auto& db = c->databases.at("app");
    CHECK(db.replicas.empty());
    CHECK_FALSE(db.read_write_split);
    CHECK_FALSE(db.consistency.has_value());
    CHECK(db.load_balance == load_balance_policy::round_robin);
    CHECK_FALSE(db.primary_reads);
    CHECK(db.primary_read_weight == 1);
    CHECK(db.max_lag_bytes == 16777216);
    CHECK(db.max_lag_time.count() == 1000);
    CHECK(db.readmit_lag_bytes == 8388608);  // half the limit
    CHECK(db.readmit_lag_time.count() == 500);
    CHECK(db.no_fit_replica == no_fit_replica_policy::primary);
    CHECK(db.transaction_routing == transaction_routing_policy::primary);
    CHECK(db.write_functions.empty());
    CHECK(db.read_only_functions.empty());
    CHECK_FALSE(c->users.at("alice").consistency.has_value());
    CHECK(resolve_consistency(db, c->users.at("alice")) == consistency_mode::instance);
    CHECK(db.consistency_wait.count() == 10);
}

TEST_CASE("read/write split: listing replicas turns it on; replica defaults") {
    auto c = parse_config(with_db("replicas = [{ host = \"10.0.0.2\" }]"), "test.toml");
    const auto& db = c->databases.at("app");
    REQUIRE(db.replicas.size() == 1);
    CHECK(db.replicas[0].host == "10.0.0.2");
    CHECK(db.replicas[0].port == 5432);  // another host: the same port is no clash
    CHECK(db.replicas[0].weight == 1);
    CHECK(db.replicas[0].zone.empty());
    CHECK(db.read_write_split);
    auto off = parse_config(
        with_db("replicas = [{ host = \"10.0.0.2\" }]\nread_write_split = false"), "test.toml");
    CHECK_FALSE(off->databases.at("app").read_write_split);
    CHECK(off->databases.at("app").replicas.size() == 1);
    auto empty = parse_config(with_db("replicas = []"), "test.toml");
    CHECK(empty->databases.at("app").replicas.empty());
    CHECK_FALSE(empty->databases.at("app").read_write_split);
}

TEST_CASE("read/write split: every key is read") {
    auto c = parse_config(R"([shardgate]
replica_check_interval_ms = 100
replica_check_timeout_ms = 300
function_catalog_refresh_ms = 5000
[databases.app]
host = "127.0.0.1"
port = 5432
replicas = [ { host = "127.0.0.1", port = 5433, weight = 3, zone = "a" }, { host = "127.0.0.1", port = 5434 } ]
read_write_split = true
consistency = "eventual"
load_balance = "weighted"
primary_reads = true
primary_read_weight = 2
max_lag_bytes = 1000
max_lag_ms = 200
readmit_lag_bytes = 100
readmit_lag_ms = 20
no_fit_replica = "error"
transaction_routing = "first_statement"
write_functions = ["audit_log", "app.bump"]
read_only_functions = ["my_lookup"]
[users.alice]
password = "secret"
consistency = "primary"
[users.bob]
password = "secret"
)",
                          "test.toml");
    CHECK(c->replica_check_interval.count() == 100);
    CHECK(c->replica_check_timeout.count() == 300);
    CHECK(c->function_catalog_refresh.count() == 5000);
    const auto& db = c->databases.at("app");
    REQUIRE(db.replicas.size() == 2);
    CHECK(db.replicas[0].host == "127.0.0.1");
    CHECK(db.replicas[0].port == 5433);
    CHECK(db.replicas[0].weight == 3);
    CHECK(db.replicas[0].zone == "a");
    CHECK(db.replicas[1].port == 5434);
    CHECK(db.replicas[1].weight == 1);
    CHECK(db.read_write_split);
    CHECK(db.consistency == consistency_mode::eventual);
    CHECK(db.load_balance == load_balance_policy::weighted);
    CHECK(db.primary_reads);
    CHECK(db.primary_read_weight == 2);
    CHECK(db.max_lag_bytes == 1000);
    CHECK(db.max_lag_time.count() == 200);
    CHECK(db.readmit_lag_bytes == 100);
    CHECK(db.readmit_lag_time.count() == 20);
    CHECK(db.no_fit_replica == no_fit_replica_policy::error);
    CHECK(db.transaction_routing == transaction_routing_policy::first_statement);
    CHECK(db.write_functions == std::vector<std::string>{"audit_log", "app.bump"});
    CHECK(db.read_only_functions == std::vector<std::string>{"my_lookup"});
    CHECK(c->users.at("alice").consistency == consistency_mode::primary);
    // user > database > session
    CHECK(resolve_consistency(db, c->users.at("alice")) == consistency_mode::primary);
    CHECK(resolve_consistency(db, c->users.at("bob")) == consistency_mode::eventual);
    for (const auto& [name, value] :
         {std::pair{"round_robin", load_balance_policy::round_robin},
          std::pair{"least_connections", load_balance_policy::least_connections},
          std::pair{"weighted", load_balance_policy::weighted},
          std::pair{"least_latency", load_balance_policy::least_latency}}) {
        auto lb = parse_config(with_db("load_balance = \"" + std::string(name) + "\""), "t.toml");
        CHECK(lb->databases.at("app").load_balance == value);
        CHECK(to_string(value) == name);
    }
    for (const auto& [name, value] : {std::pair{"session", consistency_mode::session},
                                      std::pair{"instance", consistency_mode::instance},
                                      std::pair{"global", consistency_mode::global},
                                      std::pair{"eventual", consistency_mode::eventual},
                                      std::pair{"primary", consistency_mode::primary}}) {
        auto m = parse_config(with_db("consistency = \"" + std::string(name) + "\""), "test.toml");
        CHECK(m->databases.at("app").consistency == value);
        CHECK(to_string(value) == name);
    }
    auto wait = parse_config(with_db("consistency_wait_ms = 0"), "test.toml");
    CHECK(wait->databases.at("app").consistency_wait.count() == 0);
    CHECK(to_string(no_fit_replica_policy::error) == "error");
    CHECK(to_string(transaction_routing_policy::first_statement) == "first_statement");
}

TEST_CASE("read/write split: replicas as an array of tables") {
    auto c = parse_config(R"([databases.app]
port = 5432
load_balance = "weighted"
[[databases.app.replicas]]
host = "replica-a.internal"
weight = 5
zone = "eu-1a"
[[databases.app.replicas]]
host = "replica-b.internal"
port = 6432
[users.alice]
password = "secret"
)",
                          "test.toml");
    const auto& db = c->databases.at("app");
    CHECK(db.load_balance == load_balance_policy::weighted);
    REQUIRE(db.replicas.size() == 2);
    CHECK(db.replicas[0].host == "replica-a.internal");
    CHECK(db.replicas[0].port == 5432);
    CHECK(db.replicas[0].weight == 5);
    CHECK(db.replicas[0].zone == "eu-1a");
    CHECK(db.replicas[1].host == "replica-b.internal");
    CHECK(db.replicas[1].port == 6432);
    CHECK(db.read_write_split);
}

TEST_CASE("read/write split: readmit marks default to half the limits; 0 is no limit") {
    auto c = parse_config(with_db("max_lag_bytes = 1001\nmax_lag_ms = 301"), "test.toml");
    CHECK(c->databases.at("app").readmit_lag_bytes == 500);
    CHECK(c->databases.at("app").readmit_lag_time.count() == 150);
    auto none = parse_config(with_db("max_lag_bytes = 0\nmax_lag_ms = 0"), "test.toml");
    CHECK(none->databases.at("app").max_lag_bytes == 0);
    CHECK(none->databases.at("app").readmit_lag_bytes == 0);
    CHECK(none->databases.at("app").readmit_lag_time.count() == 0);
    // A mark equal to the limit is allowed (no hysteresis).
    auto equal = parse_config(with_db("max_lag_ms = 300\nreadmit_lag_ms = 300"), "test.toml");
    CHECK(equal->databases.at("app").readmit_lag_time.count() == 300);
}

TEST_CASE("read/write split: replica mistakes are reported with their line") {
    CHECK(error_of(with_db("replicas = 5")) ==
          "test.toml:3: 'databases.app.replicas' must be an array of tables, like "
          "[{ host = \"10.0.0.2\", port = 5432 }]");
    CHECK(error_of(with_db("replicas = [\n  { host = \"a\" },\n  \"b\",\n]")) ==
          "test.toml:5: 'databases.app.replicas' must be an array of tables, like "
          "[{ host = \"10.0.0.2\", port = 5432 }]");
    CHECK(error_of(with_db("replicas = [{ port = 5433 }]")) ==
          "test.toml:3: 'databases.app.replicas[0].host': is required");
    CHECK(error_of(with_db("replicas = [{ host = \"\" }]")) ==
          "test.toml:3: 'databases.app.replicas[0].host': must not be empty");
    CHECK(error_of(with_db("replicas = [{ host = 5 }]")) ==
          "test.toml:3: 'databases.app.replicas[0].host' must be a string");
    CHECK(error_of(with_db("replicas = [{ host = \"a\" },\n{ host = \"b\", port = 0 }]")) ==
          "test.toml:4: 'databases.app.replicas[1].port' must be between 1 and 65535, not 0");
    CHECK(error_of(with_db("replicas = [{ host = \"a\", port = 65536 }]")) ==
          "test.toml:3: 'databases.app.replicas[0].port' must be between 1 and 65535, not 65536");
    CHECK(error_of(with_db("replicas = [{ host = \"a\", weight = 0 }]")) ==
          "test.toml:3: 'databases.app.replicas[0].weight' must be between 1 and 1000, not 0");
    CHECK(error_of(with_db("replicas = [{ host = \"a\", weight = 1001 }]")) ==
          "test.toml:3: 'databases.app.replicas[0].weight' must be between 1 and 1000, not 1001");
    CHECK(error_of(with_db("replicas = [{ host = \"a\", zone = 1 }]")) ==
          "test.toml:3: 'databases.app.replicas[0].zone' must be a string");
    CHECK(error_of(with_db("replicas = [{ host = \"a\", wieght = 2 }]")) ==
          "test.toml:3: unknown setting 'databases.app.replicas[0].wieght'");
    // No two servers of a database share host:port (host names compare case-insensitively).
    CHECK(error_of(with_db("host = \"DB1\"\nreplicas = [{ host = \"db1\" }]")) ==
          "test.toml:4: 'databases.app.replicas[0]': db1:5432 is the primary");
    CHECK(error_of(with_db("replicas = [\n  { host = \"a\", port = 5433 },\n  { host = \"b\" },\n"
                           "  { host = \"a\", port = 5433 },\n]")) ==
          "test.toml:6: 'databases.app.replicas[2]': a:5433 is listed twice (also replicas[0])");
    CHECK(error_of("[databases.app]\nport = 5432\n[[databases.app.replicas]]\nhost = \"a\"\n"
                   "[[databases.app.replicas]]\nhost = \"a\"\n[users.alice]\npassword = \"x\"\n") ==
          "test.toml:5: 'databases.app.replicas[1]': a:5432 is listed twice (also replicas[0])");
    CHECK(error_of("[databases.app]\nport = 5432\n[databases.app.replicas]\nhost = \"a\"\n"
                   "[users.alice]\npassword = \"x\"\n") ==
          "test.toml:3: 'databases.app.replicas' must be an array of tables, like "
          "[{ host = \"10.0.0.2\", port = 5432 }]");
}

TEST_CASE("read/write split: setting mistakes are reported with their line") {
    CHECK(error_of(with_db("read_write_split = true")) ==
          "test.toml:3: 'databases.app.read_write_split': needs replicas (none are listed)");
    CHECK(error_of(with_db("read_write_split = \"yes\"")) ==
          "test.toml:3: 'databases.app.read_write_split' must be true or false");
    CHECK(error_of(with_db("consistency = \"strong\"")) ==
          "test.toml:3: 'databases.app.consistency': must be one of eventual, session, instance, "
          "global, primary, "
          "not 'strong'");
    CHECK(error_of(with_db("consistency = \"Session\"")) ==
          "test.toml:3: 'databases.app.consistency': must be one of eventual, session, instance, "
          "global, primary, "
          "not 'Session'");
    CHECK(error_of(std::string(minimal) + "consistency = \"causal\"\n") ==
          "test.toml:5: 'users.alice.consistency': must be one of eventual, session, instance, "
          "global, primary, "
          "not 'causal'");
    CHECK(error_of(with_db("load_balance = \"random\"")) ==
          "test.toml:3: 'databases.app.load_balance': must be one of round_robin, "
          "least_connections, weighted, least_latency, not 'random'");
    CHECK(error_of(with_db("load_balance = 1")) ==
          "test.toml:3: 'databases.app.load_balance' must be a string");
    CHECK(error_of(with_db("primary_reads = 1")) ==
          "test.toml:3: 'databases.app.primary_reads' must be true or false");
    CHECK(error_of(with_db("primary_read_weight = 0")) ==
          "test.toml:3: 'databases.app.primary_read_weight' must be between 1 and 1000, not 0");
    CHECK(error_of(with_db("no_fit_replica = \"wait\"")) ==
          "test.toml:3: 'databases.app.no_fit_replica': must be one of primary, error, not "
          "'wait'");
    CHECK(error_of(with_db("transaction_routing = \"auto\"")) ==
          "test.toml:3: 'databases.app.transaction_routing': must be one of primary, "
          "first_statement, not 'auto'");
    CHECK(error_of(with_db("max_lag_bytes = -1")) ==
          "test.toml:3: 'databases.app.max_lag_bytes' must be between 0 and 1125899906842624, "
          "not -1");
    CHECK(error_of(with_db("max_lag_ms = 86400001")) ==
          "test.toml:3: 'databases.app.max_lag_ms' must be between 0 and 86400000, not 86400001");
    CHECK(error_of(with_db("max_lag_bytes = 1000\nreadmit_lag_bytes = 1001")) ==
          "test.toml:4: 'databases.app.readmit_lag_bytes': must not be greater than max_lag_bytes "
          "(1000), not 1001");
    CHECK(error_of(with_db("readmit_lag_ms = 1001")) ==
          "test.toml:3: 'databases.app.readmit_lag_ms': must not be greater than max_lag_ms "
          "(1000), not 1001");
    CHECK(error_of(with_db("max_lag_ms = 0\nreadmit_lag_ms = 10")) ==
          "test.toml:4: 'databases.app.readmit_lag_ms': has no effect with max_lag_ms = 0 (no "
          "limit); remove it or set a limit");
    CHECK(error_of(with_db("write_functions = \"audit_log\"")) ==
          "test.toml:3: 'databases.app.write_functions' must be an array of strings");
    CHECK(error_of(with_db("write_functions = [\n  \"ok\",\n  \"a..b\",\n]")) ==
          "test.toml:5: 'databases.app.write_functions': 'a..b' is not a function name (f or "
          "schema.f)");
    for (const char* bad : {"", ".f", "s.", "a.b.c"}) {
        CHECK(error_of(with_db("read_only_functions = [\"" + std::string(bad) + "\"]")) ==
              "test.toml:3: 'databases.app.read_only_functions': '" + std::string(bad) +
                  "' is not a function name (f or schema.f)");
    }
    CHECK(error_of(with_db("write_functions = [\"f\"]\nread_only_functions = [\"g\",\n\"f\"]")) ==
          "test.toml:5: 'databases.app.read_only_functions': 'f' is also in write_functions");
}

TEST_CASE("replica monitor and function catalog keys: bounds") {
    auto lo = parse_config(std::string("[shardgate]\nreplica_check_interval_ms = 10\n"
                                       "replica_check_timeout_ms = 10\n"
                                       "function_catalog_refresh_ms = 100\n") +
                               minimal,
                           "test.toml");
    CHECK(lo->replica_check_interval.count() == 10);
    CHECK(lo->replica_check_timeout.count() == 10);
    CHECK(lo->function_catalog_refresh.count() == 100);
    CHECK(error_of(std::string("[shardgate]\nreplica_check_interval_ms = 9\n") + minimal) ==
          "test.toml:2: 'shardgate.replica_check_interval_ms' must be between 10 and 60000, not 9");
    CHECK(error_of(std::string("[shardgate]\nreplica_check_interval_ms = 60001\n") + minimal) ==
          "test.toml:2: 'shardgate.replica_check_interval_ms' must be between 10 and 60000, not "
          "60001");
    CHECK(error_of(std::string("[shardgate]\nreplica_check_timeout_ms = 0\n") + minimal) ==
          "test.toml:2: 'shardgate.replica_check_timeout_ms' must be between 10 and 600000, not 0");
    CHECK(error_of(std::string("[shardgate]\nfunction_catalog_refresh_ms = 99\n") + minimal) ==
          "test.toml:2: 'shardgate.function_catalog_refresh_ms' must be between 100 and 86400000, "
          "not 99");
    CHECK(error_of(std::string("[shardgate]\nconsistency = \"eventual\"\n") + minimal) ==
          "test.toml:2: unknown setting 'shardgate.consistency'");
}
