// Route decisions: one statement (route_statement) and one message (route_query).
#include "shardgate/router/route.hpp"

#include <algorithm>

namespace shardgate::router {
namespace {

route_decision decided(route_target t, route_reason why) {
    route_decision d;
    d.target = t;
    d.why = why;
    return d;
}

std::optional<server_role> role_from_target(route_target t) {
    if (t == route_target::primary) return server_role::primary;
    if (t == route_target::replica) return server_role::replica;
    return std::nullopt;
}

route_target target_of(server_role r) {
    return r == server_role::primary ? route_target::primary : route_target::replica;
}

std::optional<server_role> role_of(role_preference p) {
    if (p == role_preference::primary) return server_role::primary;
    if (p == role_preference::replica) return server_role::replica;
    return std::nullopt;
}

// The statement's /* shardgate: role=... */ hint; auto and unknown values do not count.
std::optional<server_role> hinted_role(const statement_shape* shape) {
    if (shape == nullptr) return std::nullopt;
    for (const hint& h : shape->hints) {
        if (h.key != "role") continue;
        if (const auto p = parse_role(h.value)) return role_of(*p);
    }
    return std::nullopt;
}

// What a replica must have replayed: shardgate.min_lsn, this session's last write (session,
// instance and global consistency) and every commit the proxy acknowledged (instance; global
// once the proxy put the primary's position there).
std::uint64_t required_lsn(const session_routing_state& s) {
    const std::uint64_t own = s.own_writes_count() ? s.last_write_lsn : 0;
    const auto m = s.consistency();
    const std::uint64_t all =
        m == consistency_mode::instance || m == consistency_mode::global ? s.instance_lsn : 0;
    return std::max({s.min_lsn(), own, all});
}

// A replica target with the LSN it must have replayed; or the primary when the session's
// consistency demands it.
route_decision replica_read(const session_routing_state& s, route_reason why) {
    const consistency_mode mode = s.consistency();
    if (mode == consistency_mode::primary) {
        return decided(route_target::primary, route_reason::consistency_primary);
    }
    if (s.own_writes_count() && s.write_lsn_pending) {
        return decided(route_target::primary, route_reason::read_your_writes);
    }
    if ((mode == consistency_mode::instance || mode == consistency_mode::global) &&
        s.instance_lsn_pending) {
        return decided(route_target::primary, route_reason::read_your_writes);
    }
    route_decision d = decided(route_target::replica, why);
    d.min_lsn = required_lsn(s);
    return d;
}

// Hints, temporary objects and role settings, which override what the statement is.
std::optional<route_decision> overridden(const statement_shape* shape,
                                         const session_routing_state& s) {
    if (s.temp_on_primary) return decided(route_target::primary, route_reason::temp_objects);
    std::optional<server_role> role = hinted_role(shape);
    route_reason why = route_reason::hint;
    if (!role && s.local_role) {
        role = role_of(*s.local_role);
        why = route_reason::local_role;
    }
    if (!role) {
        role = role_of(s.session.role);
        why = s.session.role == s.startup.role ? route_reason::startup_role
                                               : route_reason::session_role;
    }
    if (!role) return std::nullopt;
    if (*role == server_role::primary) return decided(route_target::primary, why);
    route_decision d = replica_read(s, why);
    if (d.target != route_target::replica) {  // an explicit replica choice wins over consistency
        d = decided(route_target::replica, why);
        d.min_lsn = required_lsn(s);
    }
    return d;
}

// BEGIN / START TRANSACTION outside a transaction: decide now when the answer is known, else
// defer to the transaction's first statement (SET TRANSACTION READ ONLY or SET LOCAL
// shardgate.role may still come).
route_decision route_begin(const txn_modes& m, const statement_shape* shape,
                           const session_routing_state& s) {
    if (auto o = overridden(shape, s)) return *o;
    const bool serializable =
        m.isolation == isolation_level::serializable ||
        (m.isolation == isolation_level::unset && s.session.default_serializable);
    if (serializable) return decided(route_target::primary, route_reason::serializable);
    if (s.consistency() == consistency_mode::primary) {
        return decided(route_target::primary, route_reason::consistency_primary);
    }
    const bool read_only = m.read_only == tristate::on ||
                           (m.read_only == tristate::unset && s.session.default_read_only);
    if (read_only) return replica_read(s, route_reason::read_only_transaction);
    if (m.read_only == tristate::off) {
        return decided(route_target::primary, route_reason::read_write_transaction);
    }
    return decided(route_target::defer, route_reason::transaction_deferred);
}

// The first statement of a transaction whose server is not chosen yet.
route_decision route_deferred(const statement_verdict& v, const statement_shape* shape,
                              const session_routing_state& s, const route_options& opt) {
    if (auto o = overridden(shape, s)) return *o;
    if (s.txn_serializable) return decided(route_target::primary, route_reason::serializable);
    if (s.consistency() == consistency_mode::primary) {
        return decided(route_target::primary, route_reason::consistency_primary);
    }
    if (s.txn_read_only) return replica_read(s, route_reason::read_only_transaction);
    if (!opt.route_by_first_statement) {
        return decided(route_target::primary, route_reason::read_write_transaction);
    }
    if (v.access == statement_access::read) return replica_read(s, route_reason::first_statement);
    return decided(route_target::primary, route_reason::first_statement);
}

// Outside a transaction block.
route_decision route_autocommit(const statement_class& c, const statement_verdict& v,
                                const statement_shape* shape, const session_routing_state& s) {
    if (c.txn.kind == txn_kind::begin) return route_begin(c.txn.modes, shape, s);
    if (auto o = overridden(shape, s)) return *o;
    if (v.access == statement_access::write) {
        return decided(route_target::primary, route_reason::write);
    }
    if (v.access == statement_access::session) {
        return decided(route_target::any, route_reason::session_statement);
    }
    // default_transaction_isolation = serializable makes each statement a serializable
    // transaction, which a hot standby refuses.
    if (s.session.default_serializable) {
        return decided(route_target::primary, route_reason::serializable);
    }
    return replica_read(s, route_reason::read);
}

int rank(route_target t) {
    switch (t) {
        case route_target::any:
            return 0;
        case route_target::defer:
            return 1;
        case route_target::replica:
            return 2;
        case route_target::primary:
            return 3;
    }
    return 3;
}

// The first statement with a usable-value problem, checked before anything is applied.
std::optional<setting_error> first_setting_error(const classified_query& q) {
    for (std::size_t i = 0; i < q.size(); ++i) {
        if (q[i].settings.empty()) continue;
        if (auto e = check_settings(q[i], q.shape(i))) {
            e->statement = i;
            return e;
        }
    }
    return std::nullopt;
}

}  // namespace

route_decision route_statement(const statement_class& c, const statement_shape* shape,
                               const function_catalog& cat, const session_routing_state& s,
                               const route_options& opt) {
    const statement_verdict v = verdict_of(c, cat);
    route_decision d;
    if (s.txn == txn_status::idle) {
        d = route_autocommit(c, v, shape, s);
    } else if (s.txn_role) {
        d = decided(target_of(*s.txn_role), route_reason::in_transaction);
        d.read_only_conflict =
            v.access == statement_access::write && *s.txn_role == server_role::replica;
    } else if (c.txn.kind == txn_kind::commit || c.txn.kind == txn_kind::rollback ||
               c.txn.kind == txn_kind::prepare) {
        // Nothing ran yet: the held BEGIN and this end can go anywhere (AND CHAIN: still held).
        d = decided(
            c.txn.chain ? route_target::defer : route_target::any,
            c.txn.chain ? route_reason::transaction_deferred : route_reason::session_statement);
    } else if (v.access == statement_access::session && !hinted_role(shape)) {
        d = decided(route_target::defer, route_reason::transaction_deferred);
    } else {
        d = route_deferred(v, shape, s, opt);
    }
    d.statement_reason = v.reason;
    d.function = v.function;
    d.writes = v.access == statement_access::write;
    return d;
}

route_decision route_query(const classified_query& q, const function_catalog& cat,
                           session_routing_state& s, const route_options& opt) {
    if (auto e = first_setting_error(q)) {
        route_decision d;
        d.error = std::move(e);
        return d;
    }
    // A transaction open on a server at the start keeps the whole message there.
    const bool pinned = s.txn != txn_status::idle && s.txn_role.has_value();
    const server_role pinned_role = pinned ? *s.txn_role : server_role::primary;
    route_decision out;
    for (std::size_t i = 0; i < q.size(); ++i) {
        route_decision d = route_statement(q[i], q.shape(i), cat, s, opt);
        d.statement = i;
        (void)apply_statement(q[i], q.shape(i), d, s);
        const bool writes = out.writes || d.writes;
        const std::uint64_t lsn = std::max(out.min_lsn, d.min_lsn);
        if (i == 0 || rank(d.target) > rank(out.target)) out = d;
        out.writes = writes;
        out.min_lsn = lsn;
    }
    if (pinned) {
        out.target = target_of(pinned_role);
        out.why = route_reason::in_transaction;
    } else if (s.txn != txn_status::idle && !s.txn_role && out.target == route_target::replica) {
        // "SELECT 1; BEGIN": the new transaction would open on a replica before any statement
        // of it chose; keep it on the primary instead.
        out.target = route_target::primary;
        out.why = route_reason::read_write_transaction;
    }
    if (out.target != route_target::replica) out.min_lsn = 0;
    out.read_only_conflict = out.writes && out.target == route_target::replica;
    // The whole message, so also a transaction it leaves open, runs on that one server.
    if (s.txn != txn_status::idle) {
        if (const auto r = role_from_target(out.target)) s.txn_role = r;
    }
    return out;
}

}  // namespace shardgate::router
