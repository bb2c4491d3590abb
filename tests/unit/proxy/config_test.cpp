// Config loading: valid files, and every kind of mistake reported with file:line and what is wrong.
#include <doctest/doctest.h>

#include <string>

#include "config.hpp"
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
