// Server connection pools: checkout with a FIFO of waiting clients, check-in, recycling,
// warm-up and backoff. See server_pool.hpp.
#include "shardgate/pool/server_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include <algorithm>

#include "shardgate/pool/slot_policy.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::pool {
namespace pr = shardgate::protocol;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

struct server_pool::waiter {
    explicit waiter(const asio::any_io_executor& e) : ex(e), timer(e) {}
    asio::any_io_executor ex;
    asio::steady_timer timer;
    std::unique_ptr<server_conn> conn;  // handed over by whoever freed it
    checkout_result failure;            // set when a connection attempt failed meanwhile
    bool failed = false;
    steady::time_point since = steady::now();
};

steady::rep server_pool::waiter_since(const waiter& w) {
    return w.since.time_since_epoch().count();
}

namespace {

// Wakes a waiter on its own thread (timers are not thread-safe).
void wake(const std::shared_ptr<void>& keep, asio::steady_timer& t,
          const asio::any_io_executor& ex) {
    asio::post(ex, [keep, &t] { t.cancel(); });
}

std::atomic<std::uint64_t> next_conn_id{1};
std::atomic<std::uint64_t> next_pool_order{1};

}  // namespace

server_pool::server_pool(std::string name, pool_settings s, asio::any_io_executor maint_ex,
                         login_factory login)
    : name_(std::move(name)),
      order_(next_pool_order.fetch_add(1, std::memory_order_relaxed)),
      maint_ex_(std::move(maint_ex)),
      login_(std::move(login)),
      s_(std::move(s)) {}

server_pool::~server_pool() {
    for (auto& c : idle_)
        close_conn(std::move(c));
}

std::uint32_t server_pool::total_locked() const {
    return active_ + connecting_ + static_cast<std::uint32_t>(idle_.size());
}

steady::time_point server_pool::expiry_for(steady::time_point created) {
    if (s_.server_lifetime.count() <= 0) return steady::time_point::max();
    auto life = s_.server_lifetime;
    if (s_.server_lifetime_jitter.count() > 0) {
        std::uniform_int_distribution<std::int64_t> cut(
            0, std::min(s_.server_lifetime_jitter, s_.server_lifetime).count());
        life -= milliseconds(cut(rng_));
    }
    return created + life;
}

void server_pool::close_conn(std::unique_ptr<server_conn> c) {
    if (!c) return;
    // Terminate first, so the server logs a normal disconnection; the socket is idle, so this
    // small write does not block.
    static constexpr std::byte terminate[] = {std::byte{'X'}, std::byte{0}, std::byte{0},
                                              std::byte{0}, std::byte{4}};
    c->stream.write_now(terminate);
    c->stream.close();
    std::lock_guard lock(mu_);
    ++counters_.closed;
}

void server_pool::give_or_idle_locked(std::unique_ptr<server_conn> c,
                                      std::vector<std::unique_ptr<server_conn>>& to_close) {
    if (closed_ || paused_) {
        to_close.push_back(std::move(c));
        return;
    }
    if (!waiters_.empty()) {
        auto w = std::move(waiters_.front());
        waiters_.pop_front();
        update_parkable_locked();
        w->conn = std::move(c);
        ++active_;
        wake(w, w->timer, w->ex);
        return;
    }
    idle_.push_back(std::move(c));
}

void server_pool::wake_first_locked() {
    if (!waiters_.empty() && !paused_)
        wake(waiters_.front(), waiters_.front()->timer, waiters_.front()->ex);
}

slot_view server_pool::slots_locked() const {
    slot_view v;
    v.closed = closed_;
    v.paused = paused_;
    v.active = active_;
    v.connecting = connecting_;
    v.idle = {&idle_, idle_.size(), [](const void* list, std::size_t i) -> std::string_view {
                  return (*static_cast<const decltype(idle_)*>(list))[i]->startup_key;
              }};
    v.failing = backoff_.count() > 0;
    v.next_attempt = next_attempt_;
    return v;
}

checkout_result server_pool::refusal_locked(checkout_decision::kind k) {
    checkout_result fail;
    if (k == checkout_decision::kind::fail_closed) {
        fail.error_code = pr::sqlstate::admin_shutdown;
        fail.error_message = "the pool for " + name_ + " is closed";
    } else if (k == checkout_decision::kind::fail_down) {
        fail.error_code = pr::sqlstate::connection_failure;
        fail.error_message =
            "cannot connect to the server for " + name_ + ": " + last_error_ +
            " (next attempt in " +
            std::to_string(duration_cast<milliseconds>(next_attempt_ - steady::now()).count()) +
            " ms)";
    } else {
        ++counters_.checkout_timeouts;
        fail.error_code = pr::sqlstate::too_many_connections;
        const auto limit_ms = std::to_string(s_.checkout_timeout.count());
        if (paused_) {
            fail.error_message = "the pool for " + name_ +
                                 " is paused (PAUSE) and was not resumed within "
                                 "checkout_timeout (" +
                                 limit_ms + " ms)";
        } else {
            fail.error_message = "no server connection for " + name_ +
                                 " became free within checkout_timeout (" + limit_ms +
                                 " ms); all " + std::to_string(total_locked()) + " are in use";
        }
    }
    return fail;
}

awaitable<checkout_result> server_pool::checkout(
    asio::any_io_executor ex, const std::vector<std::pair<std::string, std::string>>& params,
    std::optional<steady::time_point> since) {
    const auto start = since.value_or(steady::now());
    const auto key = startup_key(params);
    for (;;) {
        std::unique_ptr<server_conn> c;
        std::shared_ptr<waiter> w;
        std::unique_ptr<server_conn> evicted;
        bool open = false;
        checkout_result fail;
        {
            std::lock_guard lock(mu_);
            const auto d = decide_checkout(s_, slots_locked(), key, start, steady::now());
            switch (d.what) {
                case checkout_decision::kind::take_idle:
                    c = std::move(idle_[d.idle_index]);
                    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(d.idle_index));
                    ++active_;
                    break;
                case checkout_decision::kind::replace_oldest:
                    evicted = std::move(idle_.front());
                    idle_.erase(idle_.begin());
                    ++connecting_;
                    open = true;
                    break;
                case checkout_decision::kind::open:
                    ++connecting_;
                    open = true;
                    break;
                case checkout_decision::kind::wait:
                    w = std::make_shared<waiter>(ex);
                    w->since = start;
                    w->timer.expires_at(d.wake_at);
                    waiters_.push_back(w);
                    update_parkable_locked();
                    break;
                default:
                    fail = refusal_locked(d.what);
                    break;
            }
        }
        close_conn(std::move(evicted));
        if (!fail.error_code.empty()) co_return fail;
        if (open) {
            auto res = co_await open_new(ex, params);
            if (res.ok() || !res.error_code.empty()) co_return res;
            continue;
        }
        if (w) {
            error_code ec;
            co_await w->timer.async_wait(ec_token(ec));
            std::lock_guard lock(mu_);
            auto it = std::find(waiters_.begin(), waiters_.end(), w);
            if (it != waiters_.end()) waiters_.erase(it);
            update_parkable_locked();
            if (w->failed) co_return std::move(w->failure);
            c = std::move(w->conn);  // counted as active by whoever handed it over
            if (!c) continue;        // woken to look again (a slot freed, time passed)
        }
        c->stream.rebind(ex);
        if (!c->stream.is_tls() && closed_by_server(c->stream.socket())) {
            // The server went away while it sat idle (restarted, killed, terminated): one
            // non-blocking peek finds that before a client's query would.
            spdlog::info("pool {}: server connection {} was closed by the server", name_, c->id);
            discard(std::move(c));
            continue;
        }
        const auto idle_for = steady::now() - c->last_used;
        if (idle_for >= s_.server_check_delay) {
            // A cheap round trip: an empty query answers EmptyQueryResponse + ReadyForQuery.
            auto r = co_await async_exec(*c, "", s_.server_connect_timeout);
            if (!r.ok || !r.error.empty() || r.txn_status != 'I') {
                spdlog::info(
                    "pool {}: server connection {} failed its liveness check ({}), "
                    "closing it",
                    name_, c->id, r.error_message);
                discard(std::move(c));
                continue;
            }
        }
        co_return checkout_result{std::move(c), {}, {}, {}};
    }
}

bool server_pool::closed_by_server(tcp::socket& s) {
    // An idle connection has nothing to read: end of stream or bytes (a FATAL before the
    // server closed) both mean it is gone.
    char b = 0;
    const auto n = ::recv(s.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || n == 1 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

awaitable<checkout_result> server_pool::open_new(
    asio::any_io_executor ex, const std::vector<std::pair<std::string, std::string>>& params) {
    checkout_result out;
    auto req = login_();
    if (!req) {
        std::lock_guard lock(mu_);
        --connecting_;
        wake_first_locked();
        out.error_code = pr::sqlstate::invalid_authorization_specification;
        out.error_message = "no credentials to log into the server for " + name_;
        co_return out;
    }
    req->timeout = s_.server_connect_timeout;
    req->params = params;
    auto res = co_await async_server_login(ex, std::move(*req));
    std::vector<std::unique_ptr<server_conn>> to_close;
    {
        std::lock_guard lock(mu_);
        --connecting_;
        if (res.ok()) {
            ++counters_.opened;
            backoff_ = milliseconds(0);
            next_attempt_ = {};
            auto c = std::make_unique<server_conn>(std::move(*res.stream), res.server_key);
            c->id = next_conn_id.fetch_add(1);
            c->home = weak_from_this();
            c->created = c->last_used = steady::now();
            c->expires = expiry_for(c->created);
            c->txn_status = res.txn_status;
            c->startup_key = startup_key(params);
            // The greeting holds ParameterStatus (and maybe NoticeResponse) messages.
            std::span<const std::byte> g(res.greeting);
            while (g.size() >= 5) {
                std::uint32_t len = 0;
                for (int i = 1; i < 5; ++i)
                    len = (len << 8) | static_cast<std::uint32_t>(g[i]);
                if (len < 4 || len + 1 > g.size()) break;
                if (static_cast<char>(g[0]) == 'S') {
                    std::string_view body(reinterpret_cast<const char*>(g.data()) + 5, len - 4);
                    const auto nul = body.find('\0');
                    if (nul != std::string_view::npos) {
                        auto value = body.substr(nul + 1);
                        if (!value.empty() && value.back() == '\0') value.remove_suffix(1);
                        c->set_param(body.substr(0, nul), value);
                    }
                }
                g = g.subspan(len + 1);
            }
            if (closed_) {
                to_close.push_back(std::move(c));
                out.error_code = pr::sqlstate::admin_shutdown;
                out.error_message = "the pool for " + name_ + " is closed";
            } else {
                ++active_;
                out.conn = std::move(c);
            }
        } else if (!res.server_error.empty() && !params.empty()) {
            // The server refused this client's startup parameters (an unknown setting, a bad
            // value): the client's problem, not the backend's, so no backoff.
            out.error_code = res.error_code.empty() ? std::string(pr::sqlstate::connection_failure)
                                                    : std::string(res.error_code);
            out.error_message = res.error_message;
            out.server_error = std::move(res.server_error);
            wake_first_locked();
        } else {
            ++counters_.connect_failures;
            backoff_ =
                backoff_.count() == 0 ? s_.backoff_initial : std::min(backoff_ * 2, s_.backoff_max);
            next_attempt_ = steady::now() + backoff_;
            last_error_ = res.error_message;
            spdlog::warn("pool {}: cannot open a server connection: {}; next attempt in {} ms",
                         name_, res.error_message, backoff_.count());
            out.error_code = res.error_code.empty() ? std::string(pr::sqlstate::connection_failure)
                                                    : std::string(res.error_code);
            out.error_message =
                "cannot connect to the server for " + name_ + ": " + res.error_message;
            out.server_error = std::move(res.server_error);
            // Clients queued behind this attempt learn of the failure now (unless paused:
            // they wait for RESUME, then try again).
            for (auto& w : waiters_) {
                if (paused_) break;
                w->failed = true;
                w->failure.error_code = out.error_code;
                w->failure.error_message = out.error_message;
                w->failure.server_error = out.server_error;
                wake(w, w->timer, w->ex);
            }
            if (!paused_) waiters_.clear();
            update_parkable_locked();
        }
    }
    for (auto& c : to_close)
        close_conn(std::move(c));
    co_return out;
}

void server_pool::checkin(std::unique_ptr<server_conn> c) {
    if (!c) return;
    c->last_used = steady::now();
    std::vector<std::unique_ptr<server_conn>> to_close;
    {
        std::lock_guard lock(mu_);
        --active_;
        if (c->txn_status != 'I' || c->last_used >= c->expires || !c->stream.is_open()) {
            to_close.push_back(std::move(c));
            wake_first_locked();
        } else {
            give_or_idle_locked(std::move(c), to_close);
        }
    }
    for (auto& x : to_close)
        close_conn(std::move(x));
}

void server_pool::discard(std::unique_ptr<server_conn> c) {
    if (!c) return;
    {
        std::lock_guard lock(mu_);
        --active_;
        wake_first_locked();
    }
    close_conn(std::move(c));
}

void server_pool::warm_up_locked() {
    const auto now = steady::now();
    while (!closed_ && !paused_ && total_locked() < s_.min_pool_size && now >= next_attempt_ &&
           waiters_.empty()) {
        ++connecting_;
        asio::co_spawn(
            maint_ex_,
            [self = shared_from_this()]() -> awaitable<void> {
                auto res = co_await self->open_new(self->maint_ex_, {});
                if (res.ok()) {
                    // open_new counted it as checked out; it goes to the idle list (or to a
                    // client that started waiting meanwhile).
                    self->checkin(std::move(res.conn));
                }
            },
            asio::detached);
    }
}

void server_pool::maintain() {
    std::vector<std::unique_ptr<server_conn>> to_close;
    {
        std::lock_guard lock(mu_);
        const auto now = steady::now();
        for (auto it = idle_.begin(); it != idle_.end();) {
            auto& c = **it;
            const bool expired = now >= c.expires;
            const bool too_idle = s_.server_idle_timeout.count() > 0 &&
                                  now - c.last_used >= s_.server_idle_timeout &&
                                  total_locked() > s_.min_pool_size;
            if (closed_ || paused_ || expired || too_idle || !c.stream.is_open()) {
                to_close.push_back(std::move(*it));
                it = idle_.erase(it);
            } else {
                ++it;
            }
        }
        if (login_) warm_up_locked();
    }
    for (auto& c : to_close)
        close_conn(std::move(c));
}

void server_pool::set_settings(const pool_settings& s) {
    std::lock_guard lock(mu_);
    s_ = s;
    // A bigger pool may serve queued clients now.
    for (auto& w : waiters_)
        wake(w, w->timer, w->ex);
}

void server_pool::close() {
    std::vector<std::unique_ptr<server_conn>> to_close;
    {
        std::lock_guard lock(mu_);
        closed_ = true;
        update_parkable_locked();
        to_close.swap(idle_);
        for (auto& w : waiters_)
            wake(w, w->timer, w->ex);
    }
    for (auto& c : to_close)
        close_conn(std::move(c));
}

void server_pool::pause() {
    std::vector<std::unique_ptr<server_conn>> to_close;
    {
        std::lock_guard lock(mu_);
        paused_ = true;
        update_parkable_locked();
        to_close.swap(idle_);
    }
    for (auto& c : to_close)
        close_conn(std::move(c));
}

void server_pool::resume() {
    std::lock_guard lock(mu_);
    if (!paused_) return;
    paused_ = false;
    update_parkable_locked();
    // Each waiter looks again, in queue order, and opens a connection or queues again.
    for (auto& w : waiters_)
        wake(w, w->timer, w->ex);
}

pool_stats server_pool::stats() const {
    std::lock_guard lock(mu_);
    pool_stats s = counters_;
    const auto now = steady::now();
    // Parked connections are idle, except while paused or closed: then they still have to
    // come back and be closed.
    const auto parked = static_cast<std::uint32_t>(std::max(0, parked_.load()));
    const bool parked_idle = !paused_ && !closed_;
    s.active = active_ - (parked_idle ? std::min(parked, active_) : 0);
    s.idle = static_cast<std::uint32_t>(idle_.size()) + (parked_idle ? parked : 0);
    s.connecting = connecting_;
    s.waiting = static_cast<std::uint32_t>(waiters_.size()) +
                static_cast<std::uint32_t>(std::max(0, plane_waiting_.load()));
    s.backoff = backoff_;
    for (const auto& c : idle_)
        if (now - c->last_used >= s_.server_check_delay) ++s.used;
    for (const auto& w : waiters_)
        s.max_wait = std::max(s.max_wait, duration_cast<std::chrono::microseconds>(now - w->since));
    s.paused = paused_;
    return s;
}

}  // namespace shardgate::pool
