// Read/write splitting in a transaction-pooled session: each transaction's first statement
// picks its server (router/route.hpp decides, read_split.hpp picks the replica); later
// statements only keep the routing state (a transaction never changes server).
#include <spdlog/spdlog.h>

#include "control/session.hpp"
#include "core/text.hpp"
#include "core/txn_statements.hpp"
#include "shardgate/pool/replica_health.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/router/classify.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;
namespace rt = shardgate::router;
namespace {

// Everything unknown writes until the database's catalog was read once.
const rt::function_catalog& cautious_catalog() {
    static const rt::function_catalog none;
    return none;
}

rt::classifier& thread_classifier() {
    thread_local rt::classifier classifier;
    return classifier;
}

// The thread's classifier's counts reach SHOW PARSE_CACHE every 64 messages.
void report_parse_cache() {
    thread_local rt::shape_cache_stats reported;
    thread_local unsigned since_report = 0;
    auto& classifier = thread_classifier();
    if (++since_report == 64) {
        since_report = 0;
        const auto now = classifier.stats();
        auto& t = parse_cache();
        t.hits.fetch_add(now.hits - reported.hits, std::memory_order_relaxed);
        t.misses.fetch_add(now.misses - reported.misses, std::memory_order_relaxed);
        t.evictions.fetch_add(now.evictions - reported.evictions, std::memory_order_relaxed);
        t.entries.fetch_add(now.size - reported.size, std::memory_order_relaxed);
        reported = now;
    }
}

// One classifier per thread.
const rt::classified_query& split_classify(std::string_view sql) {
    const auto& q = thread_classifier().classify(sql);
    report_parse_cache();
    return q;
}

// Named prepared statements a client keeps at most (beyond: forgotten, classified again).
constexpr std::size_t max_classified_statements = 4096;
// Statements a transaction may hold before its server is chosen (a BEGIN and SET LOCAL
// shardgate.* / SET TRANSACTION statements).
constexpr std::size_t max_held_bytes = std::size_t{64} * 1024;

}  // namespace

void client_session::start_splitting() {
    if (!pool_->split || pool_->cfg.mode != pool_mode::transaction) return;
    split_ = std::make_unique<split_session>();
    auto& st = split_->state;
    st.startup.consistency = pool_->consistency;
    st.session = st.startup;
    split_->options.route_by_first_statement =
        pool_->split->config().transaction_routing == transaction_routing_policy::first_statement;
    for (const auto& [k, v] : core_.settings().startup_settings()) {
        if (k.rfind("shardgate.", 0) == 0) rt::apply_startup_setting(st, k, v);
    }
}

void client_session::split_note_commit() {
    auto& sp = *split_;
    // Read-your-writes: the commit's LSN is at most the primary's position sampled after it.
    if (sp.state.write_lsn_pending && sp.commit_at) {
        // While the primary is down its last known position stands in (reads keep working
        // on the replicas; one that replayed it may still miss a commit after that sample).
        if (const auto* snap = pool_->split->health(sp.health);
            snap != nullptr && snap->health.primary_known &&
            (snap->health.primary_checked >= *sp.commit_at || !snap->health.primary_reachable)) {
            rt::note_commit_lsn(sp.state, snap->health.primary_lsn);
            sp.commit_at.reset();
            sp.report_lsn = true;
        }
    }
}

const rt::classified_query& client_session::split_classified(std::string_view sql,
                                                             std::string_view statement,
                                                             bool at_parse) {
    if (statement.empty()) return split_classify(sql);
    auto& prepared = split_->prepared;
    if (!at_parse) {
        // Bind: classified at its Parse (the text guards against a name parsed again since).
        if (auto it = prepared.find(statement); it != prepared.end() && it->second.text == sql)
            return it->second.q;
    }
    if (prepared.size() >= max_classified_statements) prepared.clear();
    auto& e = prepared[std::string(statement)];
    e.text.assign(sql);
    e.q = thread_classifier().classify_prepared(sql);
    report_parse_cache();
    return e.q;
}

rt::route_decision client_session::split_route_text(std::string_view sql,
                                                    std::string_view statement, bool at_parse) {
    return split_route(split_classified(sql, statement, at_parse));
}

rt::route_decision client_session::split_route(const rt::classified_query& q) {
    auto& sp = *split_;
    split_note_commit();
    const auto* cat = pool_->split->catalog(sp.catalog);
    auto d = rt::route_query(q, cat != nullptr ? *cat : cautious_catalog(), sp.state, sp.options);
    sp.error.reset();
    if (d.error && (d.error->name == rt::routing_setting::role ||
                    d.error->name == rt::routing_setting::consistency ||
                    d.error->name == rt::routing_setting::min_lsn))
        sp.error = d.error;  // Postgres itself refuses bad values of its own settings
    sp.txn_writes = sp.txn_writes || d.writes;
    if (cat == nullptr && d.target == rt::route_target::replica) {
        // No catalog yet: a user function might write. Only function-free reads may go.
        for (std::size_t i = 0; i < q.size(); ++i) {
            for (const auto& f : q[i].functions) {
                if (!rt::builtin_write_function(f)) d.target = rt::route_target::primary;
            }
        }
    }
    return d;
}

namespace {

// The CommandComplete tag Postgres gives `c` when it cannot fail (shardgate may answer it),
// or "" when the statement must go to a server. `shape`: its lexer output (first keyword).
std::string_view held_tag(const rt::statement_class& c, const rt::statement_shape* shape) {
    const auto first_word = [shape](std::string_view w) {
        return shape != nullptr && shape->shape.starts_with(w);
    };
    if (c.txn.kind == rt::txn_kind::begin)
        return first_word("start") ? "START TRANSACTION" : "BEGIN";
    if (c.txn.kind == rt::txn_kind::set_transaction) return "SET";
    // SET [LOCAL] shardgate.role / consistency / min_lsn: placeholders Postgres takes with any
    // value; shardgate checked the value already.
    if (c.node != "VariableSetStmt" || c.settings.empty()) return "";
    for (const auto& ch : c.settings) {
        if (ch.name != rt::routing_setting::role && ch.name != rt::routing_setting::consistency &&
            ch.name != rt::routing_setting::min_lsn)
            return "";
    }
    return first_word("reset") ? "RESET" : "SET";
}

}  // namespace

void client_session::split_hold(std::string_view sql, std::string_view tag, std::size_t consumed) {
    auto& sp = *split_;
    if (sp.held.empty()) {
        sp.held_from = sp.before;
    } else {
        sp.held += "\n;";  // after a trailing -- comment too
    }
    sp.held.append(sql);
    core_.client_in().consume(consumed);  // `sql` pointed into it
    core_.tracker().on_client('Q');
    pr::be::encode(core_.client_out(), pr::be::command_complete{std::string(tag)});
    pr::be::encode(core_.client_out(), pr::be::ready_for_query{'T'});
    core_.tracker().on_ready('T');
}

bool client_session::split_route_start() {
    auto& sp = *split_;
    sp.replica.reset();
    sp.routed_first = false;
    sp.no_fit_error = false;
    sp.replica_if_primary_down = false;
    sp.verify_lsn = 0;
    sp.global_read = false;
    sp.held_overflow = false;
    sp.txn_writes = false;
    sp.count_at_end = false;
    // The transaction's first statement: a Query, a Parse, or a Bind of a named statement.
    const pr::frame_decoder dec(cfg_->max_message_size);
    auto in = core_.client_in().pending();
    std::string_view sql;
    std::string statement;  // a named statement's: classified once, at its Parse
    bool at_parse = false;
    bool found = false;
    std::size_t first_query = 0;  // the first message is a Query: its size (it may be held)
    for (auto f = dec.feed(in); f.status == pr::frame_status::ok && !found; f = dec.feed(in)) {
        const char t = f.msg.type;
        if (t == 'Q') {
            sql = cstring(f.msg.body).first;
            if (in.size() == core_.client_in().pending().size()) first_query = f.consumed;
            found = true;
        } else if (t == 'P') {
            const auto [name, rest] = cstring(f.msg.body);
            statement.assign(name);
            sql = cstring(rest).first;
            at_parse = true;
            found = true;
        } else if (t == 'B') {
            const auto [portal, rest] = cstring(f.msg.body);
            (void)portal;
            statement.assign(cstring(rest).first);
            sql = core_.statement_text(statement);
            found = !sql.empty();
        } else if (t == 'S' || t == 'F' || t == 'X') {
            break;
        }
        in = in.subspan(f.consumed);
    }
    auto& db = *pool_->split;
    if (!found) return false;  // the primary
    // An extended-protocol exchange that prepares or describes and then stays open (asyncpg's
    // prepare: Parse, Describe, Flush, and no Sync until a later Execute) could go on with any
    // statement on the server chosen now, a write after a read's Parse too: the primary. Only
    // a batch that executes, or ends with Sync, is routed by its statement.
    bool decided_here = first_query != 0;
    for (auto f = dec.feed(in); f.status == pr::frame_status::ok && !decided_here;
         f = dec.feed(in)) {
        decided_here = f.msg.type == 'E' || f.msg.type == 'S';
        in = in.subspan(f.consumed);
    }
    if (!decided_here) {
        sp.count_at_end = true;  // a read or a write: known when the transaction ends
        return false;
    }
    const auto& q = split_classified(sql, statement, at_parse);
    split_note_commit();  // before `before`: a failed checkout must not undo it
    // Instance consistency: every commit acknowledged before this read arrived.
    const auto frontier = db.instance_frontier(db.health(sp.health));
    sp.state.instance_lsn = frontier.lsn;
    sp.state.instance_lsn_pending = frontier.pending;
    sp.before = sp.state;
    const auto d = split_route(q);
    if (first_query != 0 && d.target == rt::route_target::defer && !d.error && q.size() == 1) {
        // A plain BEGIN on its own: answered here; the statement after it chooses.
        if (const auto tag = held_tag(q[0], q.shape(0)); !tag.empty()) {
            if (sp.held.size() + first_query <= max_held_bytes) {
                split_hold(sql, tag, first_query);
                return true;
            }
            // Endless SET LOCAL shardgate.* after a BEGIN: what was held goes to the primary,
            // and the server fails this statement (relay_txn.cpp), so the transaction fails
            // as a Postgres transaction fails at an error.
            sp.held_overflow = true;
        }
    }
    sp.routed_first = true;
    const bool read = d.target == rt::route_target::replica || d.target == rt::route_target::any;
    sp.replica_if_primary_down = read || d.why == rt::route_reason::read_your_writes;
    if (!read) {
        auto& c = db.counters(std::nullopt);
        if (d.why == rt::route_reason::read_your_writes ||
            d.why == rt::route_reason::consistency_primary)
            c.reads_for_consistency.fetch_add(1, std::memory_order_relaxed);
        else
            sp.count_at_end = true;  // a read or a write: known when the transaction ends
        return false;
    }
    thread_local std::vector<std::uint32_t> active;
    active.clear();
    if (db.config().load_balance == load_balance_policy::least_connections) {
        for (const auto& r : pool_->replicas)
            active.push_back(r->stats().active);
    }
    const auto* snap = db.health(sp.health);
    const auto choice = db.choose(snap, d.min_lsn, active);
    if (choice && !choice->primary) {
        sp.replica = choice->replica;
        if (choice->verify) sp.verify_lsn = d.min_lsn;
        if (sp.state.consistency() == rt::consistency_mode::global) {
            // What other proxies acknowledged is learnt from the primary at attach time.
            sp.global_read = true;
            sp.read_at = std::chrono::steady_clock::now();
        }
        db.counters(choice->replica).reads.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    auto& c = db.counters(std::nullopt);
    if (choice || d.target == rt::route_target::any) {
        c.reads.fetch_add(1, std::memory_order_relaxed);
    } else if (d.min_lsn != 0 && snap != nullptr && snap->health.fit_count() > 0) {
        c.reads_for_consistency.fetch_add(1, std::memory_order_relaxed);  // none replayed it
    } else {
        c.reads_for_lag.fetch_add(1, std::memory_order_relaxed);
        if (db.config().no_fit_replica == no_fit_replica_policy::error) sp.no_fit_error = true;
    }
    return false;
}

void client_session::split_statement(char type, std::span<const std::byte> body) {
    auto& sp = *split_;
    if (type != 'Q' && type != 'P' && type != 'B') return;
    if (sp.routed_first) {  // routed at the transaction's start
        sp.routed_first = false;
        return;
    }
    if (type == 'Q') {
        (void)split_route_text(cstring(body).first);
    } else if (type == 'P') {
        const auto [name, rest] = cstring(body);
        (void)split_route_text(cstring(rest).first, name, true);
    } else {
        const auto [portal, rest] = cstring(body);
        (void)portal;
        const std::string name(cstring(rest).first);
        if (name.empty()) return;  // the unnamed statement: routed at its Parse
        const auto sql = core_.statement_text(name);
        if (sql.empty()) return;
        (void)split_route_text(sql, name, false);
    }
}

void client_session::split_count_write(char type, std::span<const std::byte> body) {
    auto& sp = *split_;
    if (type == 'P' && mentions_stdin(cstring(cstring(body).second).first))
        sp.copy_in_batch = true;  // an extended-protocol COPY FROM STDIN before the next Sync
    // Any message routed while a committed write's LSN is unknown may hold another write: a
    // tail answered before it does not cover it (see split_tail_lsn).
    if (sp.state.write_lsn_pending && (type == 'Q' || type == 'P' || type == 'B' || type == 'E'))
        ++sp.write_seq;
}

void client_session::split_sent_lsn_tail() {
    auto& sp = *split_;
    ++sp.lsn_tails_sent;
    sp.last_tail_seq = sp.write_seq;
}

bool client_session::wants_lsn_tail(char type, std::span<const std::byte> body) {
    if (type != 'Q' && type != 'S') return false;
    auto& sp = *split_;
    // COPY ... FROM STDIN: the server takes nothing but copy data until it ends (and ignores a
    // Sync meanwhile), so no Query may follow it; its acknowledgement is an unknown one.
    const bool copy_in = type == 'Q' ? mentions_stdin(cstring(body).first) : sp.copy_in_batch;
    if (type == 'S') sp.copy_in_batch = false;
    if (copy_in || sp.replica || !sp.state.write_lsn_pending) return false;
    // Inside a transaction block the tail's query would take the transaction's snapshot (SET
    // TRANSACTION must come first): its COMMIT gets the tail.
    return sp.state.txn == rt::txn_status::idle;
}

void client_session::split_tail_lsn(std::string_view value) {
    auto& sp = *split_;
    ++sp.lsn_tails_answered;
    const bool last =
        sp.lsn_tails_answered == sp.lsn_tails_sent && sp.write_seq == sp.last_tail_seq;
    const auto lsn = pool::parse_lsn(value);
    if (!lsn) {
        // The tail failed (the transaction aborted after a COMMIT in the same message, say):
        // a commit may have been acknowledged without its LSN.
        if (last && sp.state.write_lsn_pending)
            pool_->split->note_unknown_ack(std::chrono::steady_clock::now());
        return;
    }
    // Every write sent before this tail is at or before `lsn`: instance consistency's frontier
    // moves before the client (or any other) can hear of the commit.
    pool_->split->note_acked(*lsn);
    sp.state.last_write_lsn = std::max(sp.state.last_write_lsn, *lsn);
    if (last && sp.state.write_lsn_pending) {
        rt::note_commit_lsn(sp.state, *lsn);
        sp.commit_at.reset();
        sp.report_lsn = true;
    }
}

std::string client_session::take_held() {
    return std::exchange(split_->held, std::string());
}

std::optional<std::vector<std::byte>> client_session::replacement(char type,
                                                                  std::span<const std::byte> body) {
    std::optional<std::vector<std::byte>> r;
    if (split_->held_overflow && type == 'Q') {
        r = held_limit_refusal(body);
        split_->held_overflow = false;
    }
    if (split_->error && (type == 'Q' || type == 'P')) {
        // A shardgate.* setting with a value it cannot route by: the server says so.
        r = setting_refusal(type, r ? std::span<const std::byte>(*r) : body, *split_->error);
        split_->error.reset();
    }
    return r;
}

std::optional<std::string> client_session::on_ready(char status, bool lsn_tail,
                                                    std::string_view tail_value) {
    auto& sp = *split_;
    if (lsn_tail && sp.lsn_tails_answered < sp.lsn_tails_sent)
        split_tail_lsn(tail_value);  // before the client hears of the commit
    split_ready(status);
    if (!sp.report_lsn) return std::nullopt;
    sp.report_lsn = false;
    return pool::format_lsn(sp.state.last_write_lsn);
}

void client_session::split_ready(char status) {
    auto& sp = *split_;
    rt::note_ready_for_query(sp.state, status,
                             sp.replica ? rt::server_role::replica : rt::server_role::primary);
    if (status == 'I' && sp.state.write_lsn_pending)
        sp.commit_at = std::chrono::steady_clock::now();  // the latest acknowledged commit's
    if ((status == 'I' || status == 'T') && sp.state.write_lsn_pending &&
        sp.lsn_tails_answered == sp.lsn_tails_sent) {
        // A commit acknowledged with no LSN learnt (COPY FROM STDIN, a function call, COMMIT
        // then BEGIN in one message): reads in instance consistency go to the primary until
        // the monitor has sampled it after this.
        pool_->split->note_unknown_ack(std::chrono::steady_clock::now());
    }
    if (status == 'I' && sp.count_at_end) {
        sp.count_at_end = false;
        auto& c = pool_->split->counters(std::nullopt);
        (sp.txn_writes ? c.writes : c.reads).fetch_add(1, std::memory_order_relaxed);
    }
}

}  // namespace shardgate::proxy
