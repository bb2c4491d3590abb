// SHOW POOLS / DATABASES / CONFIG / VERSION / HELP for the admin console, with PgBouncer's
// column names so that its tools and dashboards read them.
#include "admin/admin_show.hpp"

#include <optional>
#include <string>
#include <vector>

#include "admin/admin.hpp"
#include "control/pools.hpp"
#include "control/version.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/errors.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;

namespace {

// Type OIDs (pg_type.dat) of the console's columns.
constexpr std::uint32_t int8_oid = 20;
constexpr std::uint32_t text_oid = 25;

using cell = std::optional<std::string>;

// A result set under construction: columns first, then rows of as many cells.
class table {
  public:
    table& text(std::string name) { return col(std::move(name), text_oid, -1); }
    table& number(std::string name) { return col(std::move(name), int8_oid, 8); }
    void row(std::vector<cell> cells) { rows_.push_back({std::move(cells)}); }
    void encode(pr::write_buffer& out) const {
        pr::be::encode(out, desc_);
        for (const auto& r : rows_)
            pr::be::encode(out, r);
        pr::be::encode(out, pr::be::command_complete{"SHOW"});
    }

  private:
    table& col(std::string name, std::uint32_t oid, std::int16_t size) {
        pr::be::row_description::field f;
        f.name = std::move(name);
        f.type_oid = oid;
        f.type_size = size;
        f.type_modifier = -1;
        desc_.fields.push_back(std::move(f));
        return *this;
    }
    pr::be::row_description desc_;
    std::vector<pr::be::data_row> rows_;
};

template <class T>
cell num(T v) {
    return std::to_string(v);
}
cell ms(std::chrono::milliseconds v) {
    return std::to_string(v.count());
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v)
        out += (out.empty() ? "" : ",") + s;
    return out;
}

void show_pools(pr::write_buffer& out, proxy_context& ctx) {
    table t;
    t.text("database").text("user");
    for (const char* n :
         {"cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active",
          "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
          "maxwait", "maxwait_us"})
        t.number(n);
    t.text("pool_mode").text("load_balance_hosts");
    for (const auto& e : ctx.pools->entries()) {
        const auto s = e->pool->stats();
        const std::uint32_t clients = e->clients.load(std::memory_order_relaxed);
        // Clients waiting for a connection are sessions of this pool too.
        const std::uint32_t active = clients > s.waiting ? clients - s.waiting : 0;
        const auto wait_us = s.max_wait.count();
        t.row({e->database, e->user, num(active), num(s.waiting), num(0), num(0), num(s.active),
               num(0), num(0), num(s.idle - s.used), num(s.used), num(0), num(s.connecting),
               num(wait_us / 1000000), num(wait_us % 1000000), std::string(to_string(e->cfg.mode)),
               std::nullopt});
    }
    t.encode(out);
}

void show_databases(pr::write_buffer& out, proxy_context& ctx) {
    const auto cfg = ctx.live_config();
    const auto pools = ctx.pools->entries();
    table t;
    t.text("name").text("host").number("port").text("database").text("force_user");
    t.number("pool_size").number("min_pool_size").number("reserve_pool");
    t.number("server_lifetime").text("pool_mode").text("load_balance_hosts");
    t.number("max_connections").number("current_connections");
    t.number("max_client_connections").number("current_client_connections");
    t.number("paused").number("disabled");
    for (const auto& [name, db] : cfg->databases) {
        // The database's own settings (a user may override them for its pool).
        const auto p = resolve_pool(*cfg, db, user_config{});
        std::uint64_t servers = 0;
        std::uint64_t clients = 0;
        for (const auto& e : pools) {
            if (e->database != name) continue;
            const auto s = e->pool->stats();
            servers += s.active + s.idle + s.connecting;
            clients += e->clients.load(std::memory_order_relaxed);
        }
        cell force_user;
        if (!db.server_user.empty()) force_user = db.server_user;
        t.row({name, db.host, num(db.port), db.dbname, force_user, num(p.settings.pool_size),
               num(p.settings.min_pool_size), num(p.settings.reserve_pool_size),
               num(p.settings.server_lifetime.count() / 1000), std::string(to_string(p.mode)),
               std::nullopt, num(0), num(servers), num(0), num(clients),
               num(ctx.pools->paused(name) ? 1 : 0), num(0)});
    }
    t.encode(out);
}

// One SHOW CONFIG row per [shardgate] key: the running value, the built-in default, and
// whether RELOAD changes it (listener, threads and client TLS need a restart).
void show_config(pr::write_buffer& out, proxy_context& ctx) {
    const auto cfg = ctx.live_config();
    const config def;
    const auto& c = *cfg;
    const auto pc = resolve_pool(c, database_config{}, user_config{});
    const auto pd = resolve_pool(def, database_config{}, user_config{});
    const auto& s = pc.settings;
    const auto& sd = pd.settings;
    table t;
    t.text("key").text("value").text("default").text("changeable");
    auto row = [&t](const char* key, cell v, cell d, bool changeable = true) {
        t.row(
            {std::string(key), std::move(v), std::move(d), std::string(changeable ? "yes" : "no")});
    };
    row("listen_addr", c.listen_addr, def.listen_addr, false);
    row("listen_port", num(c.listen_port), num(def.listen_port), false);
    row("workers", num(c.workers), num(def.workers), false);
    row("data_planes", num(c.data_planes), num(def.data_planes), false);
    row("max_client_conn", num(c.max_client_conn), num(def.max_client_conn));
    row("max_message_size", num(c.max_message_size), num(def.max_message_size));
    row("max_client_memory", num(c.max_client_memory), num(def.max_client_memory), false);
    row("server_connect_timeout_ms", ms(c.server_connect_timeout), ms(def.server_connect_timeout));
    row("client_login_timeout_ms", ms(c.client_login_timeout), ms(def.client_login_timeout));
    row("shutdown_timeout_ms", ms(c.shutdown_timeout), ms(def.shutdown_timeout));
    row("shutdown_ready_delay_ms", ms(c.shutdown_ready_delay), ms(def.shutdown_ready_delay));
    row("http_listen_addr", c.http_listen_addr, def.http_listen_addr, false);
    row("http_port", num(c.http_port), num(def.http_port), false);
    row("log_level", c.log_level, def.log_level);
    row("relay_engine", c.relay_engine, def.relay_engine, false);
    row("tls_cert_file", c.tls_cert_file, def.tls_cert_file, false);
    row("tls_key_file", c.tls_key_file, def.tls_key_file, false);
    row("pool_mode", std::string(to_string(pc.mode)), std::string(to_string(pd.mode)));
    row("pool_size", num(s.pool_size), num(sd.pool_size));
    row("min_pool_size", num(s.min_pool_size), num(sd.min_pool_size));
    row("reserve_pool_size", num(s.reserve_pool_size), num(sd.reserve_pool_size));
    row("reserve_pool_timeout_ms", ms(s.reserve_pool_timeout), ms(sd.reserve_pool_timeout));
    row("checkout_timeout_ms", ms(s.checkout_timeout), ms(sd.checkout_timeout));
    row("server_lifetime_ms", ms(s.server_lifetime), ms(sd.server_lifetime));
    row("server_lifetime_jitter_ms", ms(s.server_lifetime_jitter), ms(sd.server_lifetime_jitter));
    row("server_idle_timeout_ms", ms(s.server_idle_timeout), ms(sd.server_idle_timeout));
    row("server_check_delay_ms", ms(s.server_check_delay), ms(sd.server_check_delay));
    row("server_reset_query", pc.server_reset_query, pd.server_reset_query);
    row("max_prepared_statements", num(c.max_prepared_statements),
        num(def.max_prepared_statements));
    row("server_backoff_initial_ms", ms(c.server_backoff_initial), ms(def.server_backoff_initial));
    row("server_backoff_max_ms", ms(c.server_backoff_max), ms(def.server_backoff_max));
    row("replica_check_interval_ms", ms(c.replica_check_interval), ms(def.replica_check_interval));
    row("replica_check_timeout_ms", ms(c.replica_check_timeout), ms(def.replica_check_timeout));
    row("function_catalog_refresh_ms", ms(c.function_catalog_refresh),
        ms(def.function_catalog_refresh));
    row("admin_users", join(c.admin_users), join(def.admin_users));
    row("stats_users", join(c.stats_users), join(def.stats_users));
    t.encode(out);
}

// Every server of every database that splits reads: health as the monitor saw it last.
void show_replicas(pr::write_buffer& out, proxy_context& ctx) {
    table t;
    t.text("database").text("host").number("port").text("role").text("state");
    t.number("weight").text("zone").number("lag_bytes").number("lag_ms").text("replay_lsn");
    t.number("rtt_us").number("checks").number("failures").number("bans").text("last_error");
    const auto cfg = ctx.live_config();
    for (const auto& [name, db] : cfg->databases) {
        const auto sd = ctx.pools->split(name);
        if (!sd) continue;
        const auto snap = sd->health();
        const auto* h = snap ? &snap->health : nullptr;
        const bool up = h != nullptr && h->primary_reachable;
        t.row({name, db.host, num(db.port), "primary",
               std::string(h == nullptr || !h->primary_known ? "unknown"
                           : up                              ? "up"
                                                             : "down"),
               std::nullopt, std::nullopt, num(0), num(0),
               h != nullptr ? cell(pool::format_lsn(h->primary_lsn)) : std::nullopt, std::nullopt,
               std::nullopt, h != nullptr ? num(h->primary_failures) : std::nullopt, std::nullopt,
               h != nullptr && !h->primary_error.empty() ? cell(h->primary_error) : std::nullopt});
        for (std::size_t i = 0; i < sd->replica_count(); ++i) {
            const auto& r = sd->replica(i);
            if (h == nullptr || i >= h->replicas.size()) {
                t.row({name, r.host, num(r.port), "replica", std::string("unknown"), num(r.weight),
                       r.zone.empty() ? std::nullopt : cell(r.zone), std::nullopt, std::nullopt,
                       std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                       std::nullopt});
                continue;
            }
            const auto& s = h->replicas[i];
            t.row({name, r.host, num(r.port), "replica", std::string(pool::to_string(s.state)),
                   num(r.weight), r.zone.empty() ? std::nullopt : cell(r.zone), num(s.lag_bytes),
                   num(s.lag_ms.count()), pool::format_lsn(s.replay_lsn), num(s.rtt_ewma.count()),
                   num(s.checks), num(s.failures), num(s.bans),
                   s.last_error.empty() ? std::nullopt : cell(s.last_error)});
        }
    }
    t.encode(out);
}

// Where transactions went, per database and server.
void show_routes(pr::write_buffer& out, proxy_context& ctx) {
    table t;
    t.text("database").text("host").number("port").text("role").number("reads");
    t.number("writes").number("reads_for_lag").number("reads_for_consistency");
    t.number("fallbacks");
    const auto cfg = ctx.live_config();
    auto row = [&t](const std::string& db, const std::string& host, std::uint16_t port,
                    const char* role, const route_counters& c) {
        t.row({db, host, num(port), std::string(role), num(c.reads.load()), num(c.writes.load()),
               num(c.reads_for_lag.load()), num(c.reads_for_consistency.load()),
               num(c.fallbacks.load())});
    };
    for (const auto& [name, db] : cfg->databases) {
        const auto sd = ctx.pools->split(name);
        if (!sd) continue;
        row(name, db.host, db.port, "primary", sd->counters(std::nullopt));
        for (std::size_t i = 0; i < sd->replica_count(); ++i)
            row(name, sd->replica(i).host, sd->replica(i).port, "replica", sd->counters(i));
    }
    t.encode(out);
}

// The statement classifiers' shape cache, over all threads.
void show_parse_cache(pr::write_buffer& out) {
    const auto& p = parse_cache();
    const auto hits = p.hits.load();
    const auto misses = p.misses.load();
    table t;
    t.number("hits").number("misses").text("hit_rate").number("entries").number("evictions");
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.4f",
                  hits + misses == 0 ? 0.0 : static_cast<double>(hits) / (hits + misses));
    t.row({num(hits), num(misses), std::string(rate), num(p.entries.load()),
           num(p.evictions.load())});
    t.encode(out);
}

void show_version(pr::write_buffer& out) {
    table t;
    t.text("version");
    t.row({"shardgate " + std::string(version())});
    t.encode(out);
}

void show_help(pr::write_buffer& out) {
    // As PgBouncer answers it: a NOTICE whose detail lists the commands.
    std::string detail = "\n\tSHOW ";
    bool first = true;
    for (const auto s : admin_show_subjects()) {
        if (!first) detail += '|';
        first = false;
        for (const char ch : s)
            detail += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    detail += "\n\tPAUSE [<db>]\n\tRESUME [<db>]\n\tRELOAD";
    pr::encode_error(
        out, {pr::severity::notice, pr::sqlstate::successful_completion, "Console usage", detail},
        true);
    pr::be::encode(out, pr::be::command_complete{"SHOW"});
}

}  // namespace

void encode_show(pr::write_buffer& out, proxy_context& ctx, std::string_view subject) {
    if (subject == "pools") {
        show_pools(out, ctx);
    } else if (subject == "databases") {
        show_databases(out, ctx);
    } else if (subject == "config") {
        show_config(out, ctx);
    } else if (subject == "version") {
        show_version(out);
    } else if (subject == "replicas") {
        show_replicas(out, ctx);
    } else if (subject == "routes") {
        show_routes(out, ctx);
    } else if (subject == "parse_cache") {
        show_parse_cache(out);
    } else {
        show_help(out);
    }
}

}  // namespace shardgate::proxy
