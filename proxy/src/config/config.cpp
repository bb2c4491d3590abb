// Loading and validating the TOML configuration, with file:line in every error.
#include "config/config.hpp"

#include <openssl/rand.h>
#include <toml++/toml.h>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "config/config_reader.hpp"
#include "shardgate/protocol/md5.hpp"
#include "shardgate/protocol/scram.hpp"

namespace shardgate::proxy {
namespace {

using config_detail::fail;
using config_detail::table_reader;

auth_method parse_auth(table_reader& r, const std::string& v) {
    if (v == "scram-sha-256") return auth_method::scram_sha_256;
    if (v == "md5") return auth_method::md5;
    if (v == "trust") return auth_method::trust;
    r.error("auth", "must be one of scram-sha-256, md5, trust, not '" + v + "'");
}

// Reads the pool keys a table may set; `global` also checks cross-key consistency later.
void load_pool(table_reader& r, pool_overrides& p) {
    using ms = std::chrono::milliseconds;
    constexpr std::int64_t day = 86400000;
    auto opt_int = [&r](std::string_view key, std::int64_t lo,
                        std::int64_t hi) -> std::optional<std::int64_t> {
        if (r.node(key) == nullptr) {
            (void)r.integer(key, 0, lo, hi);  // marks the key as known
            return std::nullopt;
        }
        return r.integer(key, 0, lo, hi);
    };
    if (r.node("pool_mode") != nullptr) {
        const auto m = r.str("pool_mode", "");
        if (m == "session") {
            p.mode = pool_mode::session;
        } else if (m == "transaction") {
            p.mode = pool_mode::transaction;
        } else {
            r.error("pool_mode", "must be session or transaction, not '" + m + "'");
        }
    } else {
        (void)r.str("pool_mode", "");
    }
    if (auto v = opt_int("pool_size", 1, 100000)) p.pool_size = static_cast<std::uint32_t>(*v);
    if (auto v = opt_int("min_pool_size", 0, 100000))
        p.min_pool_size = static_cast<std::uint32_t>(*v);
    if (auto v = opt_int("reserve_pool_size", 0, 100000))
        p.reserve_pool_size = static_cast<std::uint32_t>(*v);
    if (auto v = opt_int("reserve_pool_timeout_ms", 0, day)) p.reserve_pool_timeout = ms(*v);
    if (auto v = opt_int("checkout_timeout_ms", 1, day)) p.checkout_timeout = ms(*v);
    if (auto v = opt_int("server_lifetime_ms", 0, 100 * day)) p.server_lifetime = ms(*v);
    if (auto v = opt_int("server_lifetime_jitter_ms", 0, 100 * day))
        p.server_lifetime_jitter = ms(*v);
    if (auto v = opt_int("server_idle_timeout_ms", 0, 100 * day)) p.server_idle_timeout = ms(*v);
    if (auto v = opt_int("server_check_delay_ms", 0, day)) p.server_check_delay = ms(*v);
    if (r.node("transaction_pinning") != nullptr) {
        const auto v = r.str("transaction_pinning", "");
        if (v != "pin" && v != "refuse")
            r.error("transaction_pinning", "must be pin or refuse, not '" + v + "'");
        p.refuse_pinning = v == "refuse";
    } else {
        (void)r.str("transaction_pinning", "");
    }
    if (r.node("server_reset_query") != nullptr)
        p.server_reset_query = r.str("server_reset_query", "");
    else
        (void)r.str("server_reset_query", "");
}

server_tls_mode parse_tls_mode(table_reader& r, const std::string& v) {
    if (v == "disable") return server_tls_mode::disable;
    if (v == "prefer") return server_tls_mode::prefer;
    if (v == "require") return server_tls_mode::require;
    if (v == "verify-full") return server_tls_mode::verify_full;
    r.error("server_tls", "must be one of disable, prefer, require, verify-full, not '" + v + "'");
}

void load_main(config& c, const toml::table& t, const std::string& origin) {
    table_reader r(t, origin, "shardgate.");
    c.listen_addr = r.str("listen_addr", c.listen_addr);
    c.listen_port = static_cast<std::uint16_t>(r.integer("listen_port", c.listen_port, 0, 65535));
    c.workers = static_cast<unsigned>(r.integer("workers", 0, 0, 256));
    c.data_planes = static_cast<unsigned>(r.integer("data_planes", 0, 0, 256));
    c.max_client_conn =
        static_cast<std::uint32_t>(r.integer("max_client_conn", c.max_client_conn, 1, 1000000));
    c.max_message_size = static_cast<std::uint32_t>(
        r.integer("max_message_size", c.max_message_size, 1024, 0x3fffffff));
    c.max_client_memory = static_cast<std::uint64_t>(
        r.integer("max_client_memory", static_cast<std::int64_t>(c.max_client_memory),
                  std::int64_t{1024} * 1024, std::int64_t{1} << 40));
    c.server_connect_timeout = std::chrono::milliseconds(
        r.integer("server_connect_timeout_ms", c.server_connect_timeout.count(), 1, 3600000));
    c.client_login_timeout = std::chrono::milliseconds(
        r.integer("client_login_timeout_ms", c.client_login_timeout.count(), 1, 3600000));
    c.shutdown_timeout = std::chrono::milliseconds(
        r.integer("shutdown_timeout_ms", c.shutdown_timeout.count(), 0, 86400000));
    c.shutdown_ready_delay = std::chrono::milliseconds(
        r.integer("shutdown_ready_delay_ms", c.shutdown_ready_delay.count(), 0, 600000));
    c.http_listen_addr = r.str("http_listen_addr", c.http_listen_addr);
    boost::system::error_code http_addr_ec;
    (void)boost::asio::ip::make_address(c.http_listen_addr, http_addr_ec);
    if (http_addr_ec)
        r.error("http_listen_addr", "must be an IP address, not '" + c.http_listen_addr + "'");
    c.http_port = static_cast<std::uint16_t>(r.integer("http_port", c.http_port, 0, 65535));
    c.relay_engine = r.str("relay_engine", c.relay_engine);
    if (c.relay_engine != "asio" && c.relay_engine != "epoll")
        r.error("relay_engine", "must be asio or epoll");
    c.log_level = r.str("log_level", c.log_level);
    static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "off"};
    if (levels.count(c.log_level) == 0)
        r.error("log_level", "must be one of trace, debug, info, warn, error, off");
    load_pool(r, c.pool);
    c.max_prepared_statements = static_cast<std::uint32_t>(
        r.integer("max_prepared_statements", c.max_prepared_statements, 1, 100000));
    c.server_backoff_initial = std::chrono::milliseconds(
        r.integer("server_backoff_initial_ms", c.server_backoff_initial.count(), 1, 3600000));
    c.server_backoff_max = std::chrono::milliseconds(
        r.integer("server_backoff_max_ms", c.server_backoff_max.count(), 1, 86400000));
    if (c.server_backoff_max < c.server_backoff_initial)
        r.error("server_backoff_max_ms", "must not be smaller than server_backoff_initial_ms");
    c.replica_check_interval = std::chrono::milliseconds(
        r.integer("replica_check_interval_ms", c.replica_check_interval.count(), 10, 60000));
    c.replica_check_timeout = std::chrono::milliseconds(
        r.integer("replica_check_timeout_ms", c.replica_check_timeout.count(), 10, 600000));
    c.function_catalog_refresh = std::chrono::milliseconds(r.integer(
        "function_catalog_refresh_ms", c.function_catalog_refresh.count(), 100, 86400000));
    c.admin_users = r.strings("admin_users");  // checked against [users] in parse_config
    c.stats_users = r.strings("stats_users");
    c.tls_cert_file = r.str("tls_cert_file", "");
    c.tls_key_file = r.str("tls_key_file", "");
    if (c.tls_cert_file.empty() != c.tls_key_file.empty())
        r.error(c.tls_cert_file.empty() ? "tls_key_file" : "tls_cert_file",
                "tls_cert_file and tls_key_file must be set together");
    r.finish();
}

database_config load_database(std::string_view name, const toml::table& t,
                              const std::string& origin) {
    table_reader r(t, origin, "databases." + std::string(name) + ".");
    database_config d;
    d.name = std::string(name);
    d.host = r.str("host", d.host);
    d.port = static_cast<std::uint16_t>(r.integer("port", d.port, 1, 65535));
    d.dbname = r.str("dbname", d.name);
    d.server_tls = parse_tls_mode(r, r.str("server_tls", "prefer"));
    d.server_tls_ca_file = r.str("server_tls_ca_file", "");
    if (d.server_tls == server_tls_mode::verify_full && d.server_tls_ca_file.empty())
        r.error("server_tls", "verify-full needs server_tls_ca_file");
    d.server_user = r.str("server_user", "");
    d.server_password = r.str("server_password", "");
    load_pool(r, d.pool);
    config_detail::load_read_split(r, d);
    r.finish();
    return d;
}

user_config load_user(std::string_view name, const toml::table& t, const std::string& origin) {
    table_reader r(t, origin, "users." + std::string(name) + ".");
    user_config u;
    u.name = std::string(name);
    u.auth = parse_auth(r, r.str("auth", "scram-sha-256"));
    u.password = r.str("password", "");
    u.scram_verifier = r.str("scram_verifier", "");
    u.md5_hash = r.str("md5_hash", "");
    if (u.auth == auth_method::scram_sha_256 && u.password.empty() && u.scram_verifier.empty())
        r.error("auth", "scram-sha-256 needs 'password' or 'scram_verifier'");
    if (u.auth == auth_method::md5 && u.password.empty() && u.md5_hash.empty())
        r.error("auth", "md5 needs 'password' or 'md5_hash'");
    if (!u.scram_verifier.empty() && u.scram_verifier.rfind("SCRAM-SHA-256$", 0) != 0)
        r.error("scram_verifier", "must look like SCRAM-SHA-256$<iterations>:<salt>$<key>:<key>");
    if (!u.md5_hash.empty() && !protocol::auth::is_md5_hash(u.md5_hash))
        r.error("md5_hash", "must be 'md5' followed by 32 hex digits");
    if (!u.scram_verifier.empty() && !protocol::auth::scram_verifier::parse(u.scram_verifier))
        r.error("scram_verifier", "is not a valid SCRAM-SHA-256 verifier");
    load_pool(r, u.pool);
    u.consistency = config_detail::load_consistency(r);
    if (u.scram_verifier.empty() && !u.password.empty()) {
        // Like Postgres storing a password: a verifier with a random salt, computed once here
        // rather than at every login.
        std::string salt(protocol::auth::scram_default_salt_len, '\0');
        if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()),
                       static_cast<int>(salt.size())) != 1)
            r.error("password", "cannot generate a random salt");
        u.scram_verifier =
            protocol::auth::scram_verifier::from_password(u.password, salt).to_string();
    }
    r.finish();
    return u;
}

// admin_users / stats_users name users that [users] defines (each element's line on error).
void check_console_users(const toml::table& root, const config& c, const std::string& origin) {
    const auto* main = root["shardgate"].as_table();
    if (main == nullptr) return;
    for (const char* key : {"admin_users", "stats_users"}) {
        const auto* arr = main->get_as<toml::array>(key);
        if (arr == nullptr) continue;
        for (const auto& e : *arr) {
            const auto name = e.value_or(std::string());
            if (c.users.count(name) == 0)
                fail(origin, e.source(),
                     "'shardgate." + std::string(key) + "': user '" + name +
                         "' is not defined in [users]");
        }
    }
}

}  // namespace

std::string_view to_string(auth_method m) {
    switch (m) {
        case auth_method::scram_sha_256:
            return "scram-sha-256";
        case auth_method::md5:
            return "md5";
        case auth_method::trust:
            return "trust";
    }
    return "?";
}

std::string_view to_string(pool_mode m) {
    return m == pool_mode::session ? "session" : "transaction";
}

resolved_pool resolve_pool(const config& c, const database_config& d, const user_config& u) {
    resolved_pool out;
    auto& s = out.settings;
    // Built-in defaults (PgBouncer's where it has one): lifetime 1 h cut by up to 10 %,
    // idle timeout 10 min, liveness check after 30 s idle, wait at most 2 min.
    auto pick = [&](auto member, auto def) {
        if (u.pool.*member) return *(u.pool.*member);
        if (d.pool.*member) return *(d.pool.*member);
        if (c.pool.*member) return *(c.pool.*member);
        return def;
    };
    out.mode = pick(&pool_overrides::mode, pool_mode::transaction);
    s.pool_size = pick(&pool_overrides::pool_size, s.pool_size);
    s.min_pool_size = std::min(pick(&pool_overrides::min_pool_size, s.min_pool_size), s.pool_size);
    s.reserve_pool_size = pick(&pool_overrides::reserve_pool_size, s.reserve_pool_size);
    s.reserve_pool_timeout = pick(&pool_overrides::reserve_pool_timeout, s.reserve_pool_timeout);
    s.checkout_timeout = pick(&pool_overrides::checkout_timeout, s.checkout_timeout);
    s.server_lifetime = pick(&pool_overrides::server_lifetime, s.server_lifetime);
    s.server_lifetime_jitter =
        pick(&pool_overrides::server_lifetime_jitter, s.server_lifetime / 10);
    s.server_idle_timeout = pick(&pool_overrides::server_idle_timeout, s.server_idle_timeout);
    s.server_check_delay = pick(&pool_overrides::server_check_delay, s.server_check_delay);
    s.server_connect_timeout = c.server_connect_timeout;
    s.backoff_initial = c.server_backoff_initial;
    s.backoff_max = c.server_backoff_max;
    out.server_reset_query = pick(&pool_overrides::server_reset_query, out.server_reset_query);
    s.reset_query = out.server_reset_query;  // the pool runs it on dirty connections
    out.refuse_pinning = pick(&pool_overrides::refuse_pinning, false);
    return out;
}

std::shared_ptr<const config> parse_config(std::string_view toml_text, const std::string& origin) {
    toml::table root;
    try {
        root = toml::parse(toml_text, origin);
    } catch (const toml::parse_error& e) {
        fail(origin, e.source(), std::string(e.description()));
    }
    auto c = std::make_shared<config>();
    for (const auto& [key, node] : root) {
        const auto k = key.str();
        if (k != "shardgate" && k != "databases" && k != "users")
            fail(origin, node.source(),
                 "unknown section '" + std::string(k) + "' (expected shardgate, databases, users)");
        if (!node.is_table())
            fail(origin, node.source(), "'" + std::string(k) + "' must be a table");
    }
    if (const auto* main = root["shardgate"].as_table()) load_main(*c, *main, origin);
    if (const auto* dbs = root["databases"].as_table()) {
        for (const auto& [name, node] : *dbs) {
            if (!node.is_table())
                fail(origin, node.source(),
                     "databases." + std::string(name.str()) + " must be a table");
            if (name.str() == "shardgate")
                fail(origin, node.source(),
                     "'databases.shardgate': the name shardgate is reserved for the admin "
                     "console");
            c->databases.emplace(std::string(name.str()),
                                 load_database(name.str(), *node.as_table(), origin));
        }
    }
    if (const auto* users = root["users"].as_table()) {
        for (const auto& [name, node] : *users) {
            if (!node.is_table())
                fail(origin, node.source(),
                     "users." + std::string(name.str()) + " must be a table");
            c->users.emplace(std::string(name.str()),
                             load_user(name.str(), *node.as_table(), origin));
        }
    }
    if (c->databases.empty()) fail(origin, root.source(), "no [databases.<name>] configured");
    if (c->users.empty()) fail(origin, root.source(), "no [users.<name>] configured");
    check_console_users(root, *c, origin);
    const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
    if (c->workers == 0) c->workers = cores;
    if (c->data_planes == 0) c->data_planes = std::max(1U, cores - 1);
    return c;
}

std::shared_ptr<const config> load_config(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error(path + ": cannot open config file");
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_config(ss.str(), path);
}

}  // namespace shardgate::proxy
