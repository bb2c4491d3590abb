// One database's poller: rounds of checks (primary, then replicas), record, publish; stop
// closes it all.
#include "database_monitor.hpp"

#include <spdlog/spdlog.h>

#include "shardgate/protocol/backend.hpp"

namespace shardgate::pool {
namespace pr = shardgate::protocol;
using steady = std::chrono::steady_clock;

database_monitor::database_monitor(const asio::any_io_executor& ex, monitored_database db,
                                   std::shared_ptr<health_feed> feed, std::uint64_t owner,
                                   ssl::context* tls)
    : strand_(asio::make_strand(ex)),
      db_(std::move(db)),
      feed_(std::move(feed)),
      owner_(owner),
      tls_(tls),
      health_(db_.replicas.size(), db_.settings.lag),
      round_timer_(strand_) {
    slots_.push_back(std::make_unique<server_slot>(strand_));
    slots_.back()->address = db_.primary;
    for (const auto& r : db_.replicas) {
        slots_.push_back(std::make_unique<server_slot>(strand_));
        slots_.back()->address = r.address;
    }
}

void database_monitor::start() {
    asio::post(strand_, [self = shared_from_this()] {
        self->publish();  // every replica `unknown` until checked
        asio::co_spawn(self->strand_, self->rounds(self), asio::detached);
    });
}

void database_monitor::stop() {
    asio::post(strand_, [self = shared_from_this()] { self->stop_now(); });
}

void database_monitor::stop_now() {
    if (stopped_) return;
    stopped_ = true;
    round_timer_.cancel();
    // A check suspended in a read or a login wait wakes up with an error, sees stopped_ and
    // ends; the check destroys its stream itself, never under a pending operation.
    for (auto& slot : slots_) {
        if (slot->conn) close_politely(*slot->conn);
        slot->login_wait.cancel();
    }
}

awaitable<void> database_monitor::rounds(std::shared_ptr<database_monitor> keep) {
    (void)keep;  // keeps this object alive while the coroutine runs
    const auto interval = db_.settings.interval;
    auto next = steady::now();
    while (!stopped_) {
        launch(0);
        if (slots_[0]->busy) {
            // run_check() cancels the timer when the primary's check ends.
            waiting_primary_ = true;
            round_timer_.expires_after(interval / 4);
            error_code ec;
            co_await round_timer_.async_wait(ec_token(ec));
            waiting_primary_ = false;
            if (stopped_) break;
        }
        for (std::size_t i = 1; i < slots_.size(); ++i)
            launch(i);
        // Fixed rate; after a round that overran, the next starts at once (no burst).
        next += interval;
        const auto now = steady::now();
        if (next < now) next = now;
        round_timer_.expires_at(next);
        error_code ec;
        co_await round_timer_.async_wait(ec_token(ec));
    }
}

void database_monitor::launch(std::size_t i) {
    auto& slot = *slots_[i];
    if (slot.busy) return;  // still on the previous round's check
    slot.busy = true;
    asio::co_spawn(strand_, run_check(shared_from_this(), i), asio::detached);
}

awaitable<void> database_monitor::run_check(std::shared_ptr<database_monitor> keep, std::size_t i) {
    (void)keep;
    co_await check(i);
    auto& slot = *slots_[i];
    slot.busy = false;
    if (stopped_) {
        if (slot.conn) drop(slot);
        co_return;
    }
    publish();
    if (i == 0 && waiting_primary_) round_timer_.cancel();
}

awaitable<void> database_monitor::check(std::size_t i) {
    auto& slot = *slots_[i];
    if (!slot.conn) {
        const bool connected = co_await connect(i);
        if (!connected) co_return;
    }
    const std::string_view sql = i == 0 ? primary_check_sql : replica_check_sql;
    const auto timeout = db_.settings.check_timeout.count() != 0 ? db_.settings.check_timeout
                                                                 : db_.settings.interval;
    const probe_reply reply = co_await async_probe(*slot.conn, sql, timeout);
    if (stopped_) co_return;
    if (reply.failure != check_failure::none) {
        drop(slot);
        record_failure(i, reply.failure, reply.error);
        co_return;
    }
    record_reply(i, reply);
}

// The login runs as a coroutine of its own so that stop() does not wait for it: the check
// sleeps on its slot's timer, which the login's end or stop() wakes.
awaitable<bool> database_monitor::connect(std::size_t i) {
    auto& slot = *slots_[i];
    server_login_request req;
    req.backend = slot.address;
    req.user = db_.user;
    req.password = db_.password;
    req.params.emplace_back("application_name", "shardgate-monitor");
    req.tls = slot.address.tls_mode == server_tls_mode::disable ? nullptr : tls_;
    req.timeout = db_.settings.connect_timeout;
    slot.login.reset();
    asio::co_spawn(
        strand_, async_server_login(strand_, std::move(req)),
        [self = shared_from_this(), i](const std::exception_ptr& e, server_login_result r) {
            self->on_login(i, e, std::move(r));
        });
    // Nothing else runs on the strand between this test and the wait's start.
    if (!slot.login) {
        slot.login_wait.expires_at(steady::time_point::max());
        error_code ec;
        co_await slot.login_wait.async_wait(ec_token(ec));
    }
    if (stopped_ || !slot.login) co_return false;  // stopped: on_login closes it
    server_login_result r = std::move(*slot.login);
    slot.login.reset();
    if (!r.ok()) {
        std::string why = r.error_message;
        if (r.server_error.size() > 5) {
            const auto body = std::span<const std::byte>(r.server_error).subspan(5);
            if (const auto e = pr::be::decode_error_response(body))
                why += ": " + std::string(e->code()) + ": " + std::string(e->message());
        }
        record_failure(i, check_failure::connect_failed, std::move(why));
        co_return false;
    }
    slot.conn.emplace(std::move(*r.stream));
    co_return true;
}

void database_monitor::on_login(std::size_t i, const std::exception_ptr& e, server_login_result r) {
    if (e) {
        r = server_login_result{};
        r.error_message = "login failed unexpectedly";
    }
    if (stopped_) {
        if (r.stream) close_politely(*r.stream);
        return;
    }
    auto& slot = *slots_[i];
    slot.login = std::move(r);
    slot.login_wait.cancel();
}

void database_monitor::record_reply(std::size_t i, const probe_reply& reply) {
    const auto now = steady::now();
    if (i == 0) {
        const auto lsn = decode_primary_row(reply.row);
        if (!lsn) {
            drop(*slots_[i]);
            return record_failure(i, check_failure::query_failed, "unexpected reply row");
        }
        if (!health_.report().primary_reachable && health_.report().primary_failures != 0)
            spdlog::info("replica monitor: {} reachable again", describe(i));
        // As of when the query was sent (not `now - rtt`: this runs later than the reply came
        // when the worker is busy): a commit reported before then is at most this LSN
        // (read-your-writes relies on it), and lag in time errs by a round trip at most.
        health_.observe_primary(reply.sent_at, *lsn);
        return;
    }
    auto sample = decode_replica_row(reply.row);
    if (!sample) {
        drop(*slots_[i]);
        return record_failure(i, check_failure::query_failed, "unexpected reply row");
    }
    sample->rtt = reply.rtt;
    log_change(i - 1, health_.observe_replica(i - 1, now, *sample));
}

void database_monitor::record_failure(std::size_t i, check_failure why, std::string detail) {
    const auto now = steady::now();
    if (i == 0) {
        if (health_.report().primary_reachable || health_.report().primary_failures == 0) {
            spdlog::warn("replica monitor: {} check failed ({}): {}", describe(i), to_string(why),
                         detail);
        }
        health_.primary_failed(now, std::move(detail));
        return;
    }
    log_change(i - 1, health_.replica_failed(i - 1, now, why, std::move(detail)));
}

void database_monitor::log_change(std::size_t replica, state_change c) const {
    if (!c.changed()) return;
    const auto& r = health_.status(replica);
    if (c.to == replica_state::banned) {
        spdlog::warn("replica monitor: {} {} -> banned ({}: {})", describe(replica + 1),
                     to_string(c.from), to_string(r.last_failure), r.last_error);
    } else {
        spdlog::info("replica monitor: {} {} -> {} (lag {} bytes, {} ms, replayed {})",
                     describe(replica + 1), to_string(c.from), to_string(c.to), r.lag_bytes,
                     r.lag_ms.count(), format_lsn(r.replay_lsn));
    }
}

std::string database_monitor::describe(std::size_t i) const {
    const auto& a = slots_[i]->address;
    const std::string role = i == 0 ? "primary" : "replica " + std::to_string(i);
    return "database \"" + db_.name + "\" " + role + " " + a.host + ":" + std::to_string(a.port);
}

void database_monitor::publish() {
    auto snap = std::make_shared<database_health>();
    snap->name = db_.name;
    snap->replicas = db_.replicas;
    snap->health = health_.report();
    snap->published = steady::now();
    snap->version = ++version_;
    feed_->publish(owner_, std::move(snap));
}

void database_monitor::drop(server_slot& slot) {
    close_politely(*slot.conn);
    slot.conn.reset();
}

}  // namespace shardgate::pool
