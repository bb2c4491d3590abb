// The read/write-split settings of a database: replicas, consistency, load balancing, lag limits
// with their readmit marks, and function lists, each mistake reported with file:line.
#include <algorithm>
#include <cctype>
#include <string>

#include "config/config_reader.hpp"

namespace shardgate::proxy {
namespace config_detail {
namespace {

using ms = std::chrono::milliseconds;

// Host names are case-insensitive (RFC 4343); addresses compare as written.
bool same_server(std::string_view host_a, std::uint16_t port_a, std::string_view host_b,
                 std::uint16_t port_b) {
    return port_a == port_b && std::equal(host_a.begin(), host_a.end(), host_b.begin(),
                                          host_b.end(), [](char a, char b) {
                                              return std::tolower(static_cast<unsigned char>(a)) ==
                                                     std::tolower(static_cast<unsigned char>(b));
                                          });
}

replica_config load_replica(const toml::table& t, const std::string& origin,
                            const std::string& path) {
    table_reader r(t, origin, path);
    replica_config rep;
    if (r.node("host") == nullptr) r.error("host", "is required");
    rep.host = r.str("host", "");
    if (rep.host.empty()) r.error("host", "must not be empty");
    rep.port = static_cast<std::uint16_t>(r.integer("port", rep.port, 1, 65535));
    rep.weight = static_cast<std::uint32_t>(r.integer("weight", rep.weight, 1, 1000));
    rep.zone = r.str("zone", "");
    r.finish();
    return rep;
}

// `replicas = [{...}, ...]` or `[[databases.X.replicas]]` tables: both are arrays of tables.
void load_replicas(table_reader& r, database_config& d) {
    const auto* n = r.use("replicas");
    if (n == nullptr) return;
    const std::string shape =
        " must be an array of tables, like [{ host = \"10.0.0.2\", port = 5432 }]";
    const auto* arr = n->as_array();
    if (arr == nullptr) fail(r.origin(), n->source(), r.name("replicas") + shape);
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const auto& e = *arr->get(i);
        if (!e.is_table()) fail(r.origin(), e.source(), r.name("replicas") + shape);
        const std::string name = r.path() + "replicas[" + std::to_string(i) + "]";
        auto rep = load_replica(*e.as_table(), r.origin(), name + ".");
        // "'<name>': host:port <what>"
        const auto say = [&](std::string_view what) {
            std::string m = "'" + name + "': ";
            m.append(rep.host).append(":").append(std::to_string(rep.port)).append(what);
            return m;
        };
        if (same_server(rep.host, rep.port, d.host, d.port))
            fail(r.origin(), e.source(), say(" is the primary"));
        for (std::size_t j = 0; j < d.replicas.size(); ++j) {
            if (same_server(rep.host, rep.port, d.replicas[j].host, d.replicas[j].port))
                fail(r.origin(), e.source(),
                     say(" is listed twice (also replicas[" + std::to_string(j) + "])"));
        }
        d.replicas.push_back(std::move(rep));
    }
}

// A readmit mark is at or below its limit; with no limit (0) there is nothing to readmit below.
void check_readmit(table_reader& r, std::string_view key, std::uint64_t mark,
                   std::string_view limit_key, std::uint64_t limit) {
    if (mark <= limit) return;
    if (limit == 0)
        r.error(key, "has no effect with " + std::string(limit_key) +
                         " = 0 (no limit); remove it or set a limit");
    r.error(key, "must not be greater than " + std::string(limit_key) + " (" +
                     std::to_string(limit) + "), not " + std::to_string(mark));
}

void load_lag_limits(table_reader& r, database_config& d) {
    constexpr std::int64_t max_bytes = std::int64_t{1} << 50;  // 1 PiB: past any real lag
    constexpr std::int64_t day = 86400000;
    d.max_lag_bytes = static_cast<std::uint64_t>(
        r.integer("max_lag_bytes", static_cast<std::int64_t>(d.max_lag_bytes), 0, max_bytes));
    d.max_lag_time = ms(r.integer("max_lag_ms", d.max_lag_time.count(), 0, day));
    d.readmit_lag_bytes = static_cast<std::uint64_t>(r.integer(
        "readmit_lag_bytes", static_cast<std::int64_t>(d.max_lag_bytes / 2), 0, max_bytes));
    d.readmit_lag_time = ms(r.integer("readmit_lag_ms", d.max_lag_time.count() / 2, 0, day));
    check_readmit(r, "readmit_lag_bytes", d.readmit_lag_bytes, "max_lag_bytes", d.max_lag_bytes);
    check_readmit(r, "readmit_lag_ms", static_cast<std::uint64_t>(d.readmit_lag_time.count()),
                  "max_lag_ms", static_cast<std::uint64_t>(d.max_lag_time.count()));
}

// "f" or "schema.f", neither part empty.
bool is_function_name(std::string_view s) {
    const auto dot = s.find('.');
    if (dot == std::string_view::npos) return !s.empty();
    const auto name = s.substr(dot + 1);
    return dot > 0 && !name.empty() && name.find('.') == std::string_view::npos;
}

std::vector<std::string> load_function_names(table_reader& r, std::string_view key,
                                             const std::vector<std::string>& other,
                                             std::string_view other_key) {
    auto names = r.strings(key);  // checks the types
    if (names.empty()) return names;
    const auto& arr = *r.node(key)->as_array();
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto& where = arr.get(i)->source();
        if (!is_function_name(names[i]))
            fail(r.origin(), where,
                 r.name(key) + ": '" + names[i] + "' is not a function name (f or schema.f)");
        if (std::find(other.begin(), other.end(), names[i]) != other.end())
            fail(r.origin(), where,
                 r.name(key) + ": '" + names[i] + "' is also in " + std::string(other_key));
    }
    return names;
}

}  // namespace

std::optional<router::consistency_mode> load_consistency(table_reader& r) {
    using router::consistency_mode;
    if (r.node("consistency") == nullptr) {
        (void)r.use("consistency");
        return std::nullopt;
    }
    return r.choice("consistency", consistency_mode::instance,
                    {{"eventual", consistency_mode::eventual},
                     {"session", consistency_mode::session},
                     {"instance", consistency_mode::instance},
                     {"global", consistency_mode::global},
                     {"primary", consistency_mode::primary}});
}

void load_read_split(table_reader& r, database_config& d) {
    load_replicas(r, d);
    d.read_write_split = r.boolean("read_write_split", !d.replicas.empty());
    if (d.read_write_split && d.replicas.empty())
        r.error("read_write_split", "needs replicas (none are listed)");
    d.consistency = load_consistency(r);
    d.load_balance = r.choice("load_balance", d.load_balance,
                              {{"round_robin", load_balance_policy::round_robin},
                               {"least_connections", load_balance_policy::least_connections},
                               {"weighted", load_balance_policy::weighted},
                               {"least_latency", load_balance_policy::least_latency}});
    d.primary_reads = r.boolean("primary_reads", d.primary_reads);
    d.primary_read_weight = static_cast<std::uint32_t>(
        r.integer("primary_read_weight", d.primary_read_weight, 1, 1000));
    load_lag_limits(r, d);
    d.no_fit_replica = r.choice(
        "no_fit_replica", d.no_fit_replica,
        {{"primary", no_fit_replica_policy::primary}, {"error", no_fit_replica_policy::error}});
    d.consistency_wait = std::chrono::milliseconds(
        r.integer("consistency_wait_ms", d.consistency_wait.count(), 0, 60000));
    d.transaction_routing =
        r.choice("transaction_routing", d.transaction_routing,
                 {{"primary", transaction_routing_policy::primary},
                  {"first_statement", transaction_routing_policy::first_statement}});
    d.write_functions = load_function_names(r, "write_functions", {}, "");
    d.read_only_functions =
        load_function_names(r, "read_only_functions", d.write_functions, "write_functions");
}

}  // namespace config_detail

std::string_view to_string(load_balance_policy p) {
    switch (p) {
        case load_balance_policy::round_robin:
            return "round_robin";
        case load_balance_policy::least_connections:
            return "least_connections";
        case load_balance_policy::weighted:
            return "weighted";
        case load_balance_policy::least_latency:
            return "least_latency";
    }
    return "?";
}

std::string_view to_string(no_fit_replica_policy p) {
    return p == no_fit_replica_policy::primary ? "primary" : "error";
}

std::string_view to_string(transaction_routing_policy p) {
    return p == transaction_routing_policy::primary ? "primary" : "first_statement";
}

router::consistency_mode resolve_consistency(const database_config& d, const user_config& u) {
    if (u.consistency) return *u.consistency;
    if (d.consistency) return *d.consistency;
    return router::consistency_mode::instance;
}

}  // namespace shardgate::proxy
