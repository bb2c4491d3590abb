// Client and server authentication through shardgate (SCRAM, md5, trust, SCRAM keys without a
// plaintext password), the errors Postgres itself would send, and TLS on both sides.
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <string>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;

namespace {

// The server's message without libpq's "connection to server at ... failed: " prefix.
std::string login_error(const std::string& conninfo) {
    PGconn* c = PQconnectdb(conninfo.c_str());
    std::string msg = PQstatus(c) == CONNECTION_OK ? "" : PQerrorMessage(c);
    PQfinish(c);
    const auto at = msg.find("FATAL:");
    return at == std::string::npos ? msg : msg.substr(at);
}

std::string conn(int port, const std::string& user, const std::string& password,
                 const std::string& db, const std::string& extra = "sslmode=disable") {
    std::string s = "host=127.0.0.1 port=" + std::to_string(port) + " user=" + user +
                    " dbname=" + db + " connect_timeout=10 " + extra;
    if (!password.empty()) s += " password=" + password;
    return s;
}

std::string users_toml() {
    return R"(
[users.alice]
password = "secret"
[users.carol]
auth = "md5"
password = "carolpw"
[users.tina]
auth = "trust"
password = "tinapw"
)";
}

std::string base_toml(const pg_server& pg,
                      const std::string& db_extra = "server_tls = \"disable\"") {
    return "[shardgate]\nlisten_addr = \"127.0.0.1\"\nlisten_port = @PORT@\nworkers = 2\n"
           "[databases.app]\nhost = \"127.0.0.1\"\nport = " +
           std::to_string(pg.port()) + "\ndbname = \"app\"\n" + db_extra + "\n" + users_toml();
}

}  // namespace

TEST_CASE("client authentication: SCRAM, md5 and trust users; Postgres' own errors") {
    pg_topology topo = pg_topology::builder().build();
    topo.create_role("alice", "secret");
    topo.create_role("carol", "carolpw");
    topo.create_role("tina", "tinapw");
    topo.create_database("app", "alice");
    auto& pg = topo.shard(0).primary();
    pg.exec("GRANT ALL ON DATABASE app TO carol, tina");
    shardgate_process sg(shardgate_options{.config_toml = base_toml(pg)});

    SUBCASE("SCRAM-SHA-256") {
        pg_connection c(conn(sg.port(), "alice", "secret", "app"));
        CHECK(c.query_value("SELECT current_user") == "alice");
    }
    SUBCASE("md5 to shardgate, SCRAM to the server") {
        pg_connection c(conn(sg.port(), "carol", "carolpw", "app"));
        CHECK(c.query_value("SELECT current_user") == "carol");
        CHECK(login_error(conn(sg.port(), "carol", "bad", "app")) ==
              "FATAL:  password authentication failed for user \"carol\"\n");
    }
    SUBCASE("trust: no password asked") {
        pg_connection c(conn(sg.port(), "tina", "", "app"));
        CHECK(c.query_value("SELECT current_user") == "tina");
    }
    SUBCASE("wrong password, unknown user, unknown database: same errors as Postgres") {
        const std::string wrong_pw = login_error(conn(sg.port(), "alice", "nope", "app"));
        CHECK(wrong_pw == "FATAL:  password authentication failed for user \"alice\"\n");
        CHECK(wrong_pw == login_error(conn(pg.port(), "alice", "nope", "app")));

        const std::string unknown_user = login_error(conn(sg.port(), "mallory", "x", "app"));
        CHECK(unknown_user == "FATAL:  password authentication failed for user \"mallory\"\n");
        CHECK(unknown_user == login_error(conn(pg.port(), "mallory", "x", "app")));

        const std::string unknown_db = login_error(conn(sg.port(), "alice", "secret", "nodb"));
        CHECK(unknown_db == "FATAL:  database \"nodb\" does not exist\n");
        CHECK(unknown_db == login_error(conn(pg.port(), "alice", "secret", "nodb")));
        // The session that follows a refusal is unaffected.
        pg_connection c(conn(sg.port(), "alice", "secret", "app"));
        CHECK(c.query_value("SELECT 41 + 1") == "42");
    }
    SUBCASE("no client TLS configured: sslmode=require is refused, prefer falls back") {
        CHECK(login_error(conn(sg.port(), "alice", "secret", "app", "sslmode=require"))
                  .find("server does not support SSL") != std::string::npos);
        pg_connection c(conn(sg.port(), "alice", "secret", "app", "sslmode=prefer"));
        CHECK(PQsslInUse(c.native()) == 0);
    }
}

TEST_CASE("SCRAM keys from the client's proof log into the server without a plaintext password") {
    pg_topology topo = pg_topology::builder().build();
    topo.create_role("alice", "secret");
    topo.create_database("app", "alice");
    auto& pg = topo.shard(0).primary();
    const std::string verifier =
        pg.query_value("SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'");
    REQUIRE(verifier.rfind("SCRAM-SHA-256$", 0) == 0);
    shardgate_process sg(shardgate_options{
        .config_toml = "[shardgate]\nlisten_port = @PORT@\nworkers = 1\n[databases.app]\nport = " +
                       std::to_string(pg.port()) +
                       "\nserver_tls = \"disable\"\n[users.alice]\nscram_verifier = \"" + verifier +
                       "\"\n"});
    pg_connection c(conn(sg.port(), "alice", "secret", "app"));
    CHECK(c.query_value("SELECT current_user") == "alice");
    CHECK(login_error(conn(sg.port(), "alice", "wrong", "app")) ==
          "FATAL:  password authentication failed for user \"alice\"\n");
}

TEST_CASE("server authentication: md5 and trust servers") {
    SUBCASE("md5") {
        pg_topology topo = pg_topology::builder().auth(auth_method::md5).build();
        topo.create_role("alice", "secret", auth_method::md5);
        topo.create_database("app", "alice");
        shardgate_process sg(shardgate_options{.config_toml = base_toml(topo.shard(0).primary())});
        pg_connection c(conn(sg.port(), "alice", "secret", "app"));
        CHECK(c.query_value("SELECT current_user") == "alice");
    }
    SUBCASE("trust") {
        pg_topology topo = pg_topology::builder().auth(auth_method::trust).build();
        topo.create_role("alice", "unused");
        topo.create_database("app", "alice");
        shardgate_process sg(shardgate_options{.config_toml = base_toml(topo.shard(0).primary())});
        pg_connection c(conn(sg.port(), "alice", "secret", "app"));
        CHECK(c.query_value("SELECT current_user") == "alice");
    }
}

TEST_CASE("TLS: clients to shardgate (verify-full), shardgate to a TLS-only server") {
    pg_topology topo = pg_topology::builder().tls_only().build();
    topo.create_role("alice", "secret");
    topo.create_database("app", "alice");
    auto& pg = topo.shard(0).primary();
    const auto& tls = topo.tls();
    const std::string client_tls = "tls_cert_file = \"" + tls.cert_file.string() +
                                   "\"\ntls_key_file = \"" + tls.key_file.string() + "\"\n";
    const std::string verify = "sslmode=verify-full sslrootcert=" + tls.ca_file.string();

    SUBCASE("both sides encrypted and verified") {
        const std::string toml =
            "[shardgate]\nlisten_port = @PORT@\nworkers = 2\n" + client_tls +
            "[databases.app]\nhost = \"localhost\"\nport = " + std::to_string(pg.port()) +
            "\nserver_tls = \"verify-full\"\nserver_tls_ca_file = \"" + tls.ca_file.string() +
            "\"\n[users.alice]\npassword = \"secret\"\n";
        shardgate_process sg(shardgate_options{.config_toml = toml});
        pg_connection c(conn(sg.port(), "alice", "secret", "app", verify));
        CHECK(PQsslInUse(c.native()) == 1);
        // The server sees an encrypted connection from shardgate.
        CHECK(c.query_value("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == "t");
        CHECK(c.query_value("SELECT repeat('x', 100000)").size() == 100000);
    }
    SUBCASE("server_tls = disable against a TLS-only server: the server's refusal is forwarded") {
        shardgate_process sg(shardgate_options{.config_toml = base_toml(pg)});
        const auto err = login_error(conn(sg.port(), "alice", "secret", "app"));
        CHECK(err.find("no pg_hba.conf entry") != std::string::npos);
    }
    SUBCASE("verify-full with the wrong CA fails the login with a clear error") {
        const std::string toml =
            "[shardgate]\nlisten_port = @PORT@\nworkers = 1\n[databases.app]\nhost = "
            "\"localhost\"\n"
            "port = " +
            std::to_string(pg.port()) + "\nserver_tls = \"verify-full\"\nserver_tls_ca_file = \"" +
            tls.cert_file.string() + "\"\n[users.alice]\npassword = \"secret\"\n";
        shardgate_process sg(shardgate_options{.config_toml = toml});
        const auto err = login_error(conn(sg.port(), "alice", "secret", "app"));
        CHECK(err.find("TLS handshake failed") != std::string::npos);
    }
}

TEST_CASE("server_tls = require against a server without TLS fails clearly") {
    pg_topology topo = pg_topology::builder().build();
    topo.create_role("alice", "secret");
    topo.create_database("app", "alice");
    shardgate_process sg(shardgate_options{
        .config_toml = base_toml(topo.shard(0).primary(), "server_tls = \"require\"")});
    const auto err = login_error(conn(sg.port(), "alice", "secret", "app"));
    CHECK(err.find("server does not support TLS") != std::string::npos);
}
