// Routing value parsers, the function catalog, and the routing enums' names.
#include <cctype>

#include "shardgate/router/route.hpp"

namespace shardgate::router {
namespace {

bool iequals(std::string_view a, std::string_view lower_b) {
    if (a.size() != lower_b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != lower_b[i]) return false;
    }
    return true;
}

std::string_view bare(std::string_view name) {
    const auto dot = name.rfind('.');
    return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

// 1 to 8 hex digits: one half of a pg_lsn.
std::optional<std::uint32_t> hex32(std::string_view s) {
    if (s.empty() || s.size() > 8) return std::nullopt;
    std::uint32_t v = 0;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (!std::isxdigit(c)) return std::nullopt;
        v = v * 16 +
            static_cast<std::uint32_t>(std::isdigit(c) ? c - '0' : std::tolower(c) - 'a' + 10);
    }
    return v;
}

}  // namespace

std::optional<role_preference> parse_role(std::string_view s) {
    if (iequals(s, "primary")) return role_preference::primary;
    if (iequals(s, "replica")) return role_preference::replica;
    if (iequals(s, "auto")) return role_preference::automatic;
    return std::nullopt;
}

std::optional<consistency_mode> parse_consistency(std::string_view s) {
    if (iequals(s, "eventual")) return consistency_mode::eventual;
    if (iequals(s, "session")) return consistency_mode::session;
    if (iequals(s, "primary")) return consistency_mode::primary;
    if (iequals(s, "instance")) return consistency_mode::instance;
    if (iequals(s, "global")) return consistency_mode::global;
    return std::nullopt;
}

// pg_lsn_in: "%X/%X", https://www.postgresql.org/docs/15/datatype-pg-lsn.html
std::optional<std::uint64_t> parse_lsn(std::string_view s) {
    const auto slash = s.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const auto hi = hex32(s.substr(0, slash));
    const auto lo = hex32(s.substr(slash + 1));
    if (!hi || !lo) return std::nullopt;
    return (static_cast<std::uint64_t>(*hi) << 32) | *lo;
}

void function_catalog::names::add(std::string_view name) {
    full.emplace(name);
    bare.emplace(shardgate::router::bare(name));
}

bool function_catalog::names::matches_any_schema(std::string_view call) const {
    return full.find(call) != full.end() || bare.find(router::bare(call)) != bare.end();
}

bool function_catalog::names::matches_read_only(std::string_view call) const {
    if (full.find(call) != full.end()) return true;
    const std::string_view b = router::bare(call);
    if (b.size() != call.size()) return full.find(b) != full.end();  // entry "f", call "s.f"
    return bare.find(call) != bare.end();                            // entry "s.f", call "f"
}

void function_catalog::add_volatile(std::string_view schema, std::string_view name) {
    std::string qualified(schema);
    qualified += '.';
    qualified += name;
    volatile_.add(qualified);
}

void function_catalog::add_write_function(std::string_view name) {
    write_.add(name);
}

void function_catalog::add_read_only_function(std::string_view name) {
    read_only_.add(name);
}

function_catalog::verdict function_catalog::check(std::string_view call) const {
    if (write_.matches_any_schema(call)) return verdict::configured_write;
    if (read_only_.matches_read_only(call)) return verdict::read;
    if (volatile_.matches_any_schema(call)) return verdict::volatile_function;
    return verdict::read;
}

bool function_catalog::empty() const {
    return volatile_.full.empty() && write_.full.empty() && read_only_.full.empty();
}

std::string_view to_string(server_role r) {
    return r == server_role::primary ? "primary" : "replica";
}

std::string_view to_string(role_preference r) {
    switch (r) {
        case role_preference::automatic:
            return "auto";
        case role_preference::primary:
            return "primary";
        case role_preference::replica:
            return "replica";
    }
    return "?";
}

std::string_view to_string(consistency_mode m) {
    switch (m) {
        case consistency_mode::eventual:
            return "eventual";
        case consistency_mode::session:
            return "session";
        case consistency_mode::primary:
            return "primary";
        case consistency_mode::instance:
            return "instance";
        case consistency_mode::global:
            return "global";
    }
    return "?";
}

std::string_view to_string(txn_status s) {
    switch (s) {
        case txn_status::idle:
            return "idle";
        case txn_status::open:
            return "in transaction";
        case txn_status::failed:
            return "failed transaction";
    }
    return "?";
}

std::string_view to_string(route_target t) {
    switch (t) {
        case route_target::any:
            return "any";
        case route_target::primary:
            return "primary";
        case route_target::replica:
            return "replica";
        case route_target::defer:
            return "defer";
    }
    return "?";
}

std::string_view to_string(route_reason r) {
    switch (r) {
        case route_reason::read:
            return "read";
        case route_reason::write:
            return "write";
        case route_reason::session_statement:
            return "session statement";
        case route_reason::in_transaction:
            return "in transaction";
        case route_reason::transaction_deferred:
            return "transaction deferred";
        case route_reason::read_only_transaction:
            return "read-only transaction";
        case route_reason::read_write_transaction:
            return "read-write transaction";
        case route_reason::first_statement:
            return "first statement";
        case route_reason::serializable:
            return "serializable";
        case route_reason::hint:
            return "hint";
        case route_reason::local_role:
            return "SET LOCAL shardgate.role";
        case route_reason::session_role:
            return "SET shardgate.role";
        case route_reason::startup_role:
            return "startup shardgate.role";
        case route_reason::consistency_primary:
            return "consistency primary";
        case route_reason::read_your_writes:
            return "read your writes";
        case route_reason::temp_objects:
            return "temporary objects";
    }
    return "?";
}

}  // namespace shardgate::router
