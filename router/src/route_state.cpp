// Session routing-state transitions: transactions, routing settings, writes, server feedback.
// Setting semantics follow Postgres: SET inside a transaction is undone by its rollback, SET LOCAL
// ends with the transaction (and outside one does nothing), RESET returns to the startup value.
// https://www.postgresql.org/docs/15/sql-set.html
#include <algorithm>
#include <cctype>
#include <string>

#include "shardgate/router/route.hpp"

namespace shardgate::router {
namespace {

std::string lowered(std::string_view s) {
    std::string out(s);
    for (char& ch : out)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
}

// default_transaction_isolation / transaction_isolation values: serializable or not; nullopt
// for what Postgres rejects (it then reports the error and nothing changes).
std::optional<bool> serializable_value(std::string_view v) {
    const std::string l = lowered(v);
    if (l == "serializable") return true;
    if (l == "repeatable read" || l == "read committed" || l == "read uncommitted") return false;
    return std::nullopt;
}

void clear_local(session_routing_state& s) {
    s.local_role.reset();
    s.local_consistency.reset();
    s.local_min_lsn.reset();
}

void begin_txn(session_routing_state& s, const txn_modes& m, std::optional<server_role> role) {
    s.txn = txn_status::open;
    s.txn_role = role;
    s.txn_read_only = m.read_only == tristate::on ||
                      (m.read_only == tristate::unset && s.session.default_read_only);
    s.txn_serializable = m.isolation == isolation_level::serializable ||
                         (m.isolation == isolation_level::unset && s.session.default_serializable);
    s.txn_wrote = false;
    s.saved = s.session;
    clear_local(s);
}

// COMMIT (committed) or ROLLBACK; AND CHAIN opens the next transaction on the same server with
// the same characteristics.
void end_txn(session_routing_state& s, bool committed, bool chain) {
    if (s.txn == txn_status::idle) return;  // Postgres: WARNING, there is no transaction
    if (committed && s.txn_wrote) s.write_lsn_pending = true;
    if (!committed) s.session = s.saved;
    clear_local(s);
    s.txn_wrote = false;
    if (chain) {
        s.txn = txn_status::open;
        s.saved = s.session;
        return;
    }
    s.txn = txn_status::idle;
    s.txn_role.reset();
    s.txn_read_only = false;
    s.txn_serializable = false;
}

std::optional<server_role> role_from(route_target t) {
    if (t == route_target::primary) return server_role::primary;
    if (t == route_target::replica) return server_role::replica;
    return std::nullopt;
}

// shardgate.* values; the other routing settings are Postgres' to reject.
bool usable(const setting_change& ch, std::string_view v) {
    if (ch.reset) return true;
    switch (ch.name) {
        case routing_setting::role:
            return !ch.negated && parse_role(v).has_value();
        case routing_setting::consistency:
            return !ch.negated && parse_consistency(v).has_value();
        case routing_setting::min_lsn:
            return !ch.negated && parse_lsn(v).has_value();
        default:
            return true;
    }
}

// Sets `session` or `local` (SET LOCAL) for one shardgate.* setting; a SET clears a SET LOCAL
// made earlier in the transaction, as in Postgres.
template <class T>
void set_scoped(session_routing_state& s, bool local, T& session_value,
                std::optional<T>& local_value, T v) {
    if (local) {
        if (s.txn != txn_status::idle) local_value = v;
        return;
    }
    session_value = v;
    local_value.reset();
}

void apply_transaction_setting(session_routing_state& s, const setting_change& ch,
                               std::string_view v) {
    if (s.txn == txn_status::idle || ch.reset || ch.negated) return;
    if (ch.name == routing_setting::txn_read_only) {
        if (const auto b = parse_pg_bool(v)) s.txn_read_only = *b;
    } else if (const auto ser = serializable_value(v)) {
        s.txn_serializable = *ser;
    }
}

void apply_setting(session_routing_state& s, const setting_change& ch, std::string_view v) {
    const routing_settings& start = s.startup;
    switch (ch.name) {
        case routing_setting::role:
            set_scoped(s, ch.local, s.session.role, s.local_role,
                       ch.reset ? start.role : *parse_role(v));
            return;
        case routing_setting::consistency:
            set_scoped(s, ch.local, s.session.consistency, s.local_consistency,
                       ch.reset ? start.consistency : *parse_consistency(v));
            return;
        case routing_setting::min_lsn:
            set_scoped(s, ch.local, s.session.min_lsn, s.local_min_lsn,
                       ch.reset ? start.min_lsn : *parse_lsn(v));
            return;
        case routing_setting::default_read_only: {
            // SET LOCAL of a default ends before any later transaction could use it.
            if (ch.local) return;
            const auto b = ch.reset ? std::optional<bool>(start.default_read_only)
                                    : (ch.negated ? std::nullopt : parse_pg_bool(v));
            if (b) s.session.default_read_only = *b;
            return;
        }
        case routing_setting::default_isolation: {
            if (ch.local) return;
            const auto b =
                ch.reset ? std::optional<bool>(start.default_serializable) : serializable_value(v);
            if (b) s.session.default_serializable = *b;
            return;
        }
        case routing_setting::txn_read_only:
        case routing_setting::txn_isolation:
            apply_transaction_setting(s, ch, v);
            return;
        case routing_setting::all:
            s.session = start;
            clear_local(s);
            return;
    }
}

void apply_transaction_control(const txn_control& t, const route_decision& d,
                               session_routing_state& s) {
    switch (t.kind) {
        case txn_kind::begin:
            if (s.txn == txn_status::idle) begin_txn(s, t.modes, role_from(d.target));
            return;
        case txn_kind::commit:
            end_txn(s, s.txn == txn_status::open, t.chain);  // COMMIT of a failed one rolls back
            return;
        case txn_kind::rollback:
            end_txn(s, false, t.chain);
            return;
        case txn_kind::prepare:
            end_txn(s, s.txn == txn_status::open, false);
            return;
        case txn_kind::set_transaction:
            if (s.txn == txn_status::idle) return;
            if (t.modes.read_only != tristate::unset) {
                s.txn_read_only = t.modes.read_only == tristate::on;
            }
            if (t.modes.isolation != isolation_level::unset) {
                s.txn_serializable = t.modes.isolation == isolation_level::serializable;
            }
            return;
        default:
            return;
    }
}

}  // namespace

statement_verdict verdict_of(const statement_class& c, const function_catalog& cat) {
    statement_verdict v{c.access, c.reason, {}};
    if (c.access != statement_access::read || cat.empty()) return v;
    for (const std::string& f : c.functions) {
        switch (cat.check(f)) {
            case function_catalog::verdict::read:
                continue;
            case function_catalog::verdict::volatile_function:
                return {statement_access::write, write_reason::volatile_function, f};
            case function_catalog::verdict::configured_write:
                return {statement_access::write, write_reason::configured_write_function, f};
        }
    }
    return v;
}

std::optional<setting_error> check_settings(const statement_class& c,
                                            const statement_shape* shape) {
    for (const setting_change& ch : c.settings) {
        const std::string_view v = setting_value(ch, shape);
        if (!usable(ch, v)) {
            return setting_error{ch.name, ch.negated ? "-" + std::string(v) : std::string(v), 0};
        }
    }
    return std::nullopt;
}

std::optional<setting_error> apply_statement(const statement_class& c, const statement_shape* shape,
                                             const route_decision& d, session_routing_state& s) {
    if (auto e = check_settings(c, shape)) return e;
    apply_transaction_control(c.txn, d, s);
    // The first statement of a deferred transaction chose its server.
    if (s.txn != txn_status::idle && !s.txn_role && c.txn.kind != txn_kind::begin) {
        s.txn_role = role_from(d.target);
    }
    for (const setting_change& ch : c.settings) {
        apply_setting(s, ch, setting_value(ch, shape));
    }
    if (c.creates_temp && d.target == route_target::primary) s.temp_on_primary = true;
    if (c.drops_temp) s.temp_on_primary = false;
    if (d.writes && d.target == route_target::primary) {
        if (s.txn != txn_status::idle)
            s.txn_wrote = true;
        else
            s.write_lsn_pending = true;
    }
    return std::nullopt;
}

void note_ready_for_query(session_routing_state& s, char status, server_role server) {
    switch (status) {
        case 'I':
            end_txn(s, s.txn == txn_status::open, false);
            return;
        case 'T':
        case 'E':
            if (s.txn == txn_status::idle) begin_txn(s, txn_modes{}, server);
            if (!s.txn_role) s.txn_role = server;
            s.txn = status == 'T' ? txn_status::open : txn_status::failed;
            return;
        default:
            return;
    }
}

void note_commit_lsn(session_routing_state& s, std::uint64_t lsn) {
    s.last_write_lsn = std::max(s.last_write_lsn, lsn);
    s.write_lsn_pending = false;
}

bool apply_startup_setting(session_routing_state& s, std::string_view name,
                           std::string_view value) {
    const auto which = routing_setting_named(name);
    if (!which) return false;
    routing_settings& a = s.startup;
    routing_settings& b = s.session;
    switch (*which) {
        case routing_setting::role: {
            const auto r = parse_role(value);
            if (!r) return false;
            a.role = b.role = *r;
            return true;
        }
        case routing_setting::consistency: {
            const auto m = parse_consistency(value);
            if (!m) return false;
            a.consistency = b.consistency = *m;
            return true;
        }
        case routing_setting::min_lsn: {
            const auto l = parse_lsn(value);
            if (!l) return false;
            a.min_lsn = b.min_lsn = *l;
            return true;
        }
        case routing_setting::default_read_only: {
            const auto v = parse_pg_bool(value);
            if (!v) return false;
            a.default_read_only = b.default_read_only = *v;
            return true;
        }
        case routing_setting::default_isolation: {
            const auto v = serializable_value(value);
            if (!v) return false;
            a.default_serializable = b.default_serializable = *v;
            return true;
        }
        default:
            return false;
    }
}

}  // namespace shardgate::router
