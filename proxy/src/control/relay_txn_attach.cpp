// Transaction pooling: a server connection for a transaction (from the pool, or with read/write
// splitting from a replica's pool, falling back to the primary) and its return; the cancel slot
// follows it. Split from relay_txn.cpp, which handles the messages.
#include <spdlog/spdlog.h>

#include "control/session.hpp"
#include "core/text.hpp"
#include "shardgate/pool/replica_health.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/errors.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;

awaitable<pool::checkout_result> client_session::checkout_for_transaction(
    std::optional<std::chrono::steady_clock::time_point> since) {
    pool::checkout_result res;
    const std::vector<std::pair<std::string, std::string>> no_params;  // a named local: GCC 12
    if (split_ && split_->no_fit_error) {
        res.error_code = "57P03";  // cannot_connect_now, as a server that is not ready says
        res.error_message = "no replica of database \"" + database_name_ +
                            "\" is fit to take reads (no_fit_replica = \"error\")";
        co_return res;
    }
    res = co_await conn_pool().checkout(client_.socket().get_executor(), no_params, since);
    if (!res.ok() && split_ && split_->replica) {
        // The replica cannot be reached (the monitor will ban it): the primary serves.
        spdlog::info("database {}: replica {}:{} unavailable ({}); reading from the primary",
                     database_name_, pool_->split->replica(*split_->replica).host,
                     pool_->split->replica(*split_->replica).port, res.error_message);
        pool_->split->counters(split_->replica).fallbacks.fetch_add(1);
        split_->replica.reset();
        split_->verify_lsn = 0;
        res = co_await conn_pool().checkout(client_.socket().get_executor(), no_params, since);
    } else if (!res.ok() && split_ && split_->replica_if_primary_down) {
        // A read, and the primary is down: a fit replica serves it (availability first).
        static const std::vector<std::uint32_t> none;
        if (auto c = pool_->split->choose(pool_->split->health(split_->health), 0, none);
            c && !c->primary) {
            split_->replica = c->replica;
            split_->verify_lsn = 0;
            pool_->split->counters(c->replica).fallbacks.fetch_add(1);
            res = co_await conn_pool().checkout(client_.socket().get_executor(), no_params, since);
        }
    }
    co_return res;
}

awaitable<bool> client_session::attach_server(
    std::optional<std::chrono::steady_clock::time_point> since) {
    if (split_ && split_->replica && split_->global_read) co_await learn_global_lsn();
    for (;;) {
        auto res = co_await checkout_for_transaction(since);
        if (!res.ok()) co_return co_await fail_attach(res);
        conn_ = std::move(res.conn);
        conn_lost_retries_ = 2;
        const std::vector<std::pair<std::string, std::string>> no_params;
        while (!co_await apply_startup_params()) {
            if (conn_ || fatal_sent_) co_return false;
            // The connection was lost while the settings were applied: another one.
            auto again = co_await conn_pool().checkout(client_.socket().get_executor(), no_params);
            if (!again.ok()) co_return co_await fail_attach(again);
            conn_ = std::move(again.conn);
        }
        conn_lost_retries_ = 0;
        if (!split_ || !split_->replica || split_->verify_lsn == 0 ||
            co_await replica_caught_up(split_->verify_lsn))
            break;
        // The replica has not replayed what the read must see within consistency_wait_ms:
        // the primary serves it.
        auto& db = *pool_->split;
        db.counters(split_->replica).reads.fetch_sub(1, std::memory_order_relaxed);
        db.counters(std::nullopt).reads_for_consistency.fetch_add(1, std::memory_order_relaxed);
        if (conn_) pool::give_back(std::move(conn_), pool::conn_state::clean);
        split_->replica.reset();
        split_->verify_lsn = 0;
        since = std::chrono::steady_clock::now();
    }
    on_server_attached();
    co_return true;
}

awaitable<void> client_session::learn_global_lsn() {
    // Global consistency: commits other proxies acknowledged before this read arrived are at
    // or before the primary's insert position read after it arrived.
    auto& sp = *split_;
    auto& db = *pool_->split;
    auto primary = pool_->pool;  // a named local: GCC 12 and co_await operands
    const auto lsn =
        co_await db.async_primary_lsn(sp.read_at, primary, cfg_->server_connect_timeout);
    sp.global_read = false;
    if (!lsn) {
        // The primary did not answer: the read goes there (and fails or waits as a write would).
        db.counters(sp.replica).reads.fetch_sub(1, std::memory_order_relaxed);
        db.counters(std::nullopt).reads_for_consistency.fetch_add(1, std::memory_order_relaxed);
        sp.replica.reset();
        sp.verify_lsn = 0;
        co_return;
    }
    const auto* snap = db.health(sp.health);
    if (db.replayed(snap, *sp.replica) < *lsn) sp.verify_lsn = std::max(sp.verify_lsn, *lsn);
}

awaitable<bool> client_session::replica_caught_up(std::uint64_t lsn) {
    // Fresher than the monitor's sample: ask the replica itself, again every millisecond until
    // consistency_wait_ms has passed (replicas replay a commit within a millisecond or two
    // when nothing holds them back).
    auto& db = *pool_->split;
    const auto replica = *split_->replica;
    const auto until = std::chrono::steady_clock::now() + db.config().consistency_wait;
    asio::steady_timer pause(client_.socket().get_executor());
    for (;;) {
        const auto r = co_await pool::async_exec(
            *conn_, "SELECT pg_catalog.pg_last_wal_replay_lsn()", cfg_->server_connect_timeout);
        const auto seen = r.ok && r.error.empty() && r.first_value ? pool::parse_lsn(*r.first_value)
                                                                   : std::nullopt;
        if (!seen) {
            // Not a replica any more, or the connection broke: not this one.
            pool::give_back(std::move(conn_), pool::conn_state::poisoned);
            co_return false;
        }
        db.note_replayed(replica, *seen);
        if (*seen >= lsn) co_return true;
        if (std::chrono::steady_clock::now() >= until) {
            db.note_slow(replica);
            co_return false;
        }
        pause.expires_after(std::chrono::milliseconds(1));
        error_code ec;
        co_await pause.async_wait(ec_token(ec));
    }
}

awaitable<bool> client_session::fail_attach(const pool::checkout_result& res) {
    if (split_ && split_->routed_first) {
        split_->state = split_->before;  // nothing of it ran
        split_->routed_first = false;
        split_->error.reset();
    }
    if (split_ && !split_->held.empty()) {
        // The BEGIN shardgate answered never ran either: the transaction is gone (the
        // client sees ReadyForQuery 'I' below).
        split_->state = split_->held_from;
        split_->held.clear();
        core_.tracker().on_ready('I');
    }
    const std::string msg = "shardgate: " + res.error_message;
    spdlog::info("database {} user {}: no server connection: {}", database_name_, user_name_,
                 res.error_message);
    core_.fail_waiting(res.error_code, msg, out_);
    co_await flush_out();
    co_return false;
}

void client_session::on_server_attached() {
    if (!cancel_slot_) cancel_slot_ = ctx_.cancels.slot_of(key_);
    if (split_ && cancel_slot_) {
        // The server's host changes from transaction to transaction.
        cancel_slot_->point(conn_->key, pool_->split->endpoint(split_->replica));
    } else if (cancel_slot_) {
        cancel_slot_->point(conn_->key);
    } else {
        ctx_.cancels.set_target(key_, cancel_target{db_->host, db_->port, conn_->key});
    }
    core_.attach(*conn_);
}

std::unique_ptr<server_conn> client_session::take_server() {
    if (cancel_slot_)
        cancel_slot_->clear();
    else
        ctx_.cancels.clear_target(key_);
    core_.detach();
    conn_->txn_status = 'I';
    return std::move(conn_);
}

void client_session::detach_server() {
    pool::give_back(take_server(), pool::conn_state::clean);
}

}  // namespace shardgate::proxy
