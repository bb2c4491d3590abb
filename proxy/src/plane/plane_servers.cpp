// Server connections parked in a data plane between transactions (see plane_txn.hpp).
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "plane/plane_txn.hpp"

namespace shardgate::proxy {

// ------------------------------------------------------------------ plane_server

plane_server::plane_server(data_plane& p, std::shared_ptr<pool::server_pool> pl, tcp proto, int fd)
    : plane(p), pool(std::move(pl)), protocol(proto) {
    reg.fd = fd;
    set_nonblocking(fd);
}

void plane_server::on_plane_event(std::uint32_t events) {
    if (gone) return;
    if (user != nullptr)
        user->on_server_event(events);
    else
        plane.servers().lost(*this);
}

void plane_server::prefetch(int stage) const noexcept {
    // A parked connection's events are rare (it closed): only one with a client is worth it.
    if (gone || user == nullptr) return;
    user->prefetch(stage);
}

// ------------------------------------------------------------------ plane_servers

plane_servers::~plane_servers() {
    release_all();
}

std::shared_ptr<plane_server> plane_servers::take(pool::server_pool* pool, std::string_view key) {
    auto it = parked_.find(pool);
    if (it == parked_.end()) return nullptr;
    auto& v = it->second;
    for (auto i = v.size(); i-- > 0;) {
        if (v[i]->conn->applied_key != key) continue;
        auto s = std::move(v[i]);
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
        --count_;
        s->pool->note_parked(-1);
        if (!s->pool->may_park(*s->conn, plane_.now())) {
            // Someone waits for a connection, or the pool is paused or closed: ours go back
            // (this one included) and this client queues like the others.
            give_back(s);
            release_pool(pool);
            return nullptr;
        }
        return s;
    }
    return nullptr;
}

const plane_server* plane_servers::next_parked(pool::server_pool* pool) const {
    auto it = parked_.find(pool);
    return it == parked_.end() || it->second.empty() ? nullptr : it->second.back().get();
}

void plane_servers::park(std::shared_ptr<plane_server> s) {
    s->user = nullptr;
    auto* pool = s->pool.get();
    if (plane_.stopping() || !pool->may_keep(*s->conn, plane_.now())) {
        give_back(s);
        promote(pool);
        return;
    }
    if (auto qi = queues_.find(pool); qi != queues_.end() && live_front(pool, qi->second)) {
        auto& q = qi->second;
        if (pool->oldest_waiter() < q.waiters.front().since) {
            // A client queued in the pool has waited longer: the connection is its.
            give_back(s);
            return;
        }
        const auto since = q.waiters.front().since;
        auto w = pop_front(pool, q);
        if (s->conn->applied_key == w->session_key()) {
            w->take_over(std::move(s));
            return;
        }
        // Ours waits for other settings: the pool hands this connection to it, and its
        // worker applies them.
        give_back(s);
        ask(q, *w, since);
        return;
    }
    if (!pool->may_park(*s->conn, plane_.now())) {
        give_back(s);
        return;
    }
    s->parked_at = plane_.now();
    plane_.watch(s->reg, s.get(), EPOLLIN);  // a parked connection that speaks is lost
    s->pool->note_parked(1);
    ++count_;
    parked_[s->pool.get()].push_back(std::move(s));
}

std::unique_ptr<pool::server_conn> plane_servers::unplug(const std::shared_ptr<plane_server>& s) {
    plane_.watch(s->reg, s.get(), 0);
    s->gone = true;
    plane_.keep_until_batch_end(s);
    auto c = std::move(s->conn);
    if (c) {
        error_code ec;
        c->stream.socket().assign(s->protocol, s->reg.fd, ec);
        if (ec) {
            ::close(s->reg.fd);
            spdlog::warn("data plane: cannot hand server connection {} back: {}", c->id,
                         ec.message());
        }
    }
    s->reg.fd = -1;
    return c;
}

void plane_servers::give_back(const std::shared_ptr<plane_server>& s) {
    auto c = unplug(s);
    if (c) pool::give_back(std::move(c), pool::conn_state::clean);
}

void plane_servers::remove(plane_server& s) {
    auto it = parked_.find(s.pool.get());
    if (it == parked_.end()) return;
    auto& v = it->second;
    auto at = std::find_if(v.begin(), v.end(), [&s](const auto& p) { return p.get() == &s; });
    if (at == v.end()) return;
    auto keep = std::move(*at);
    v.erase(at);
    --count_;
    keep->pool->note_parked(-1);
    auto c = unplug(keep);
    if (c) pool::give_back(std::move(c), pool::conn_state::poisoned);
}

void plane_servers::lost(plane_server& s) {
    // A parked connection has nothing to say: this is a FATAL (shutdown) or a close.
    spdlog::info("pool {}: parked server connection {} closed by the server", s.pool->name(),
                 s.conn ? s.conn->id : 0);
    remove(s);
}

void plane_servers::release_pool(pool::server_pool* pool) {
    auto it = parked_.find(pool);
    if (it == parked_.end()) return;
    auto v = std::move(it->second);
    parked_.erase(it);
    for (auto& s : v) {
        --count_;
        s->pool->note_parked(-1);
        give_back(s);
    }
}

void plane_servers::need(const std::shared_ptr<txn_plane_link>& link, pool::server_pool* pool) {
    // Ours that do not fit go back first, so the pool can hand them out again or replace them.
    release_pool(pool);
    auto& q = queues_[pool];
    if (!q.pool) q.pool = pool->shared_from_this();
    const auto now = plane_.now();
    if (q.waiters.empty()) {
        const auto a = pool->advise(now, now);
        if (a == pool::server_pool::advice::now ||
            (a == pool::server_pool::advice::if_room && q.asking < max_asking))
            return ask(q, *link, now);
    }
    q.waiters.push_back({link, now});
    ++waiting_;
    pool->note_plane_waiting(1);
}

void plane_servers::ask(queue& q, txn_plane_link& link,
                        std::chrono::steady_clock::time_point since) {
    ++q.asking;
    link.start_acquire(since);
}

void plane_servers::asked(pool::server_pool* pool) {
    auto it = queues_.find(pool);
    if (it == queues_.end()) return;
    if (it->second.asking > 0) --it->second.asking;
    promote(pool);
}

bool plane_servers::live_front(pool::server_pool* pool, queue& q) {
    while (!q.waiters.empty()) {
        if (auto l = q.waiters.front().link.lock(); l && l->waits()) return true;
        pop_front(pool, q);  // it left
    }
    return false;
}

std::shared_ptr<txn_plane_link> plane_servers::pop_front(pool::server_pool* pool, queue& q) {
    auto l = q.waiters.front().link.lock();
    q.waiters.pop_front();
    --waiting_;
    pool->note_plane_waiting(-1);
    return l;
}

void plane_servers::promote(pool::server_pool* pool) {
    auto it = queues_.find(pool);
    if (it == queues_.end()) return;
    auto& q = it->second;
    const auto now = plane_.now();
    while (live_front(pool, q)) {
        const auto since = q.waiters.front().since;
        const auto a = pool->advise(since, now);
        if (a == pool::server_pool::advice::wait ||
            (a == pool::server_pool::advice::if_room && q.asking >= max_asking))
            break;
        ask(q, *pop_front(pool, q), since);
    }
    if (q.waiters.empty() && q.asking == 0) queues_.erase(it);
}

void plane_servers::release_all() {
    while (!parked_.empty())
        release_pool(parked_.begin()->first);
}

void plane_servers::tick(std::chrono::steady_clock::time_point now) {
    if (waiting_ != 0) {
        std::vector<pool::server_pool*> waited;
        for (auto& [p, q] : queues_)
            if (!q.waiters.empty()) waited.push_back(p);
        for (auto* p : waited)
            promote(p);
    }
    std::vector<pool::server_pool*> pools;
    pools.reserve(parked_.size());
    for (auto& [p, v] : parked_)
        pools.push_back(p);
    for (auto* p : pools) {
        auto& v = parked_[p];
        if (v.empty()) {
            parked_.erase(p);
            continue;
        }
        const auto limit = v.front()->pool->park_limit();
        std::vector<std::shared_ptr<plane_server>> out;
        std::erase_if(v, [&](std::shared_ptr<plane_server>& s) {
            if (now - s->parked_at < limit && s->pool->may_park(*s->conn, now)) return false;
            out.push_back(std::move(s));
            return true;
        });
        for (auto& s : out) {
            --count_;
            s->pool->note_parked(-1);
            give_back(s);
        }
        if (v.empty()) parked_.erase(p);
    }
}

}  // namespace shardgate::proxy
