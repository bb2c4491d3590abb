// Data-plane threads: level-triggered epoll relay of session-mode links.
#include "plane/data_plane.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include "plane/plane_txn.hpp"
#include "shardgate/protocol/backend.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;
namespace {

constexpr std::size_t chunk_size = std::size_t{64} * 1024;
constexpr int max_events = 256;
constexpr int tick_ms = 100;         // upkeep of parked server connections
constexpr int waiting_tick_ms = 10;  // while clients wait in the plane for one

std::span<std::byte> scratch() {
    thread_local std::vector<std::byte> buf(chunk_size);
    return buf;
}

}  // namespace

void set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if ((flags & O_NONBLOCK) == 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

relay_link::relay_link(int client, int server, std::uint32_t max_message_size)
    : client_fd(client),
      server_fd(server),
      client_scanner(pr::exchange_tracker::client_types(), max_message_size, 0),
      server_scanner(pr::type_set{'Z', 'E'}, pr::postgres_max_message_length, 4096) {}

void relay_link::side::on_plane_event(std::uint32_t events) {
    if (!link->ended) link->plane->on_event(*this, events);
}

data_plane::data_plane() : servers_(std::make_unique<plane_servers>(*this)) {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd_ < 0 || wake_fd_ < 0)
        throw std::runtime_error("data plane: cannot create epoll/eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the wake-up eventfd
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev);
}

data_plane::~data_plane() {
    stop();
    ::close(wake_fd_);
    ::close(epfd_);
}

void data_plane::start() {
    thread_ = std::thread([this] { run(); });
}

void data_plane::stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    const std::uint64_t one = 1;
    (void)::write(wake_fd_, &one, sizeof one);
    thread_.join();
}

void data_plane::post(std::function<void()> fn) {
    {
        std::lock_guard lock(mu_);
        posted_.push_back(std::move(fn));
    }
    const std::uint64_t one = 1;
    (void)::write(wake_fd_, &one, sizeof one);
}

void data_plane::close_idle() {
    post([this] {
        closing_idle_ = true;
        std::vector<relay_link*> links;
        for (auto& [p, l] : live_)
            links.push_back(p);
        for (auto* l : links)
            close_if_idle(*l);
        std::vector<std::shared_ptr<plane_resident>> residents;
        for (auto& [p, r] : residents_)
            residents.push_back(r);
        for (auto& r : residents)
            r->plane_closing_idle();
    });
}

void data_plane::close_if_idle(relay_link& l) {
    if (!closing_idle_ || l.ended || l.tracker.terminated()) return;
    if (l.tracker.server_idle() && l.tracker.txn_status() == 'I' && !l.unsent(true) &&
        !l.unsent(false) && l.server_at_boundary && l.client_scanner.at_boundary())
        end(l, link_end::admin_shutdown);
}

void data_plane::watch(plane_fd& f, plane_handler* h, std::uint32_t events) {
    if (f.registered && events == f.events) return;
    f.events = events;
    if (events == 0) {
        if (f.registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, f.fd, nullptr);
        f.registered = false;
        return;
    }
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = h;
    if (::epoll_ctl(epfd_, f.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, f.fd, &ev) == 0) {
        f.registered = true;
    } else {
        spdlog::error("data plane: epoll_ctl on fd {} failed: {}", f.fd, std::strerror(errno));
    }
}

void data_plane::keep_until_batch_end(std::shared_ptr<void> p) {
    batch_keep_.push_back(std::move(p));
}

void data_plane::add_resident(const std::shared_ptr<plane_resident>& r) {
    residents_.emplace(r.get(), r);
}

void data_plane::remove_resident(plane_resident* r) {
    auto it = residents_.find(r);
    if (it == residents_.end()) return;
    batch_keep_.push_back(std::move(it->second));
    residents_.erase(it);
}

void data_plane::adopt(std::shared_ptr<relay_link> link) {
    {
        std::lock_guard lock(mu_);
        incoming_.push_back(std::move(link));
    }
    const std::uint64_t one = 1;
    (void)::write(wake_fd_, &one, sizeof one);
}

void data_plane::run() {
    std::array<epoll_event, max_events> evs{};
    std::vector<std::shared_ptr<relay_link>> ended;
    auto next_tick = std::chrono::steady_clock::now();
    while (!stop_.load(std::memory_order_relaxed)) {
        // Parked server connections need upkeep; without any, sleep until something happens.
        // Clients queued for a connection are looked at more often (reserve and checkout
        // timeouts, connections freed elsewhere).
        const int period = servers_->has_waiting() ? waiting_tick_ms : tick_ms;
        const int timeout = servers_->empty() ? -1 : period;
        const int n = ::epoll_wait(epfd_, evs.data(), max_events, timeout);
        now_ = std::chrono::steady_clock::now();
        if (n < 0) {
            if (errno == EINTR) continue;
            spdlog::error("data plane: epoll_wait failed: {}", std::strerror(errno));
            break;
        }
        // Under load a batch holds many clients' events, each client's state cold in the
        // caches: while one event is handled, the next ones' objects are already loading
        // (plane_handler::prefetch). A handler ended earlier in the batch stays alive until
        // the batch is done, so prefetching it is safe.
        constexpr int stages = plane_handler::prefetch_stages;
        auto handler = [&evs](int i) { return static_cast<plane_handler*>(evs[i].data.ptr); };
        for (int i = 0; i < std::min(n, stages + 1); ++i)
            __builtin_prefetch(evs[i].data.ptr);
        for (int i = 0; i < n; ++i) {
            if (i + stages + 1 < n) __builtin_prefetch(evs[i + stages + 1].data.ptr);
            for (int st = 0; st < stages; ++st) {
                const int j = i + stages - st;
                if (j < n && handler(j) != nullptr) handler(j)->prefetch(st);
            }
            if (evs[i].data.ptr == nullptr) {
                std::uint64_t v = 0;
                (void)::read(wake_fd_, &v, sizeof v);
                take_incoming();
                continue;
            }
            // A handler that ended earlier in this batch is kept alive until the batch is
            // done (ended_, batch_keep_) and ignores the event.
            static_cast<plane_handler*>(evs[i].data.ptr)->on_plane_event(evs[i].events);
        }
        if (!servers_->empty() && now_ >= next_tick) {
            servers_->tick(now_);
            next_tick = now_ + std::chrono::milliseconds(servers_->has_waiting() ? waiting_tick_ms
                                                                                 : tick_ms);
        }
        // Links ended in this batch are released only now: later events of the batch may
        // still point into them.
        for (relay_link* l : ended_) {
            auto it = live_.find(l);
            if (it == live_.end()) continue;
            ended.push_back(std::move(it->second));
            live_.erase(it);
        }
        ended_.clear();
        ended.clear();
        batch_keep_.clear();
    }
    for (auto& [p, l] : live_)
        end(*l, link_end::client_closed);
    live_.clear();
    ended_.clear();
    auto residents = std::move(residents_);
    for (auto& [p, r] : residents)
        r->plane_stopping();
    servers_->release_all();
    batch_keep_.clear();
}

void data_plane::take_incoming() {
    std::vector<std::shared_ptr<relay_link>> batch;
    std::vector<std::function<void()>> posted;
    {
        std::lock_guard lock(mu_);
        batch.swap(incoming_);
        posted.swap(posted_);
    }
    for (auto& fn : posted)
        fn();
    for (auto& l : batch) {
        set_nonblocking(l->client_fd);
        set_nonblocking(l->server_fd);
        relay_link* raw = l.get();
        raw->plane = this;
        live_.emplace(raw, std::move(l));
        refresh_interest(*raw);
        close_if_idle(*raw);  // SIGINT came while it logged in
        // TLS may hold what the client sent right after its login.
        if (!raw->ended && plane_buffered(raw->client_tls)) read_from(*raw, true);
    }
}

void data_plane::set_interest(relay_link& l, bool client, bool in, bool out) {
    auto& reg = client ? l.client_registered : l.server_registered;
    auto& current = client ? l.client_events : l.server_events;
    const int fd = client ? l.client_fd : l.server_fd;
    epoll_event ev{};
    ev.events = (in ? EPOLLIN : 0U) | (out ? EPOLLOUT : 0U);
    if (reg && ev.events == current) return;
    current = ev.events;
    ev.data.ptr = client ? &l.client_side : &l.server_side;
    if (ev.events == 0) {
        // Paused: out of the set, so a hang-up cannot make a level-triggered loop spin.
        if (reg) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
        reg = false;
        return;
    }
    ::epoll_ctl(epfd_, reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    reg = true;
}

void data_plane::refresh_interest(relay_link& l) {
    // A side is read while nothing it sent is still waiting for the other side, and watched
    // for writability while something waits for it.
    set_interest(l, true, !l.unsent(false), l.unsent(true));
    set_interest(l, false, !l.unsent(true), l.unsent(false));
}

void data_plane::on_event(relay_link::side& s, std::uint32_t events) {
    relay_link& l = *s.link;
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && l.unsent(s.client)) {
        if (!flush(l, s.client)) return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_from(l, s.client);
}

void data_plane::read_from(relay_link& l, bool client) {
    const int fd = client ? l.client_fd : l.server_fd;
    const int target = client ? l.server_fd : l.client_fd;
    auto* tls = client ? l.client_tls : l.server_tls;
    auto* target_tls = client ? l.server_tls : l.client_tls;
    auto& pending = client ? l.to_server : l.to_client;
    if (l.unsent(!client) || l.ended) return;  // paused until the other side drains
    auto buf = scratch();
    for (;;) {
        const ssize_t n = plane_recv(fd, tls, buf);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            return end(l, client ? link_end::client_closed : link_end::server_closed);
        }
        if (n == 0) return end(l, client ? link_end::client_closed : link_end::server_closed);
        auto chunk = std::span<const std::byte>(buf.data(), static_cast<std::size_t>(n));
        if (client && l.tracker.terminated()) {
            // After Terminate the client is only watched for its close (which cancels work
            // still running for it); what it sends is dropped, as Postgres reads nothing more.
            if (static_cast<std::size_t>(n) < buf.size()) return;
            continue;
        }
        if (client) {
            std::size_t forward = chunk.size();
            const auto err =
                l.client_scanner.feed(chunk, [&](char t, std::span<const std::byte> body, bool) {
                    if (l.tracker.terminated()) return;  // Postgres reads nothing after it
                    l.tracker.on_client(t);
                    if (t != 'X') return;
                    // Terminate is not forwarded: cut the chunk where it starts.
                    const auto* p = body.data();
                    if (p != nullptr && p >= chunk.data() + 5 && p <= chunk.data() + chunk.size())
                        forward = static_cast<std::size_t>(p - chunk.data()) - 5;
                    else  // its header straddled reads: part of it already went out
                        forward = 0, l.tracker.mark_dirty();
                });
            if (err != pr::frame_error::none && !l.tracker.terminated()) {
                l.client_error = err;
                return end(l, link_end::client_protocol_error);
            }
            chunk = chunk.first(forward);
        } else {
            const auto err =
                l.server_scanner.feed(chunk, [&](char t, std::span<const std::byte> body, bool) {
                    if (t == 'Z') {
                        l.tracker.on_ready(body.empty() ? 'I' : static_cast<char>(body[0]));
                    } else if (t == 'E') {
                        auto e = pr::be::decode_error_response(body);
                        if (e && (e->severity() == "FATAL" || e->severity() == "PANIC"))
                            l.tracker.on_fatal();
                    }
                });
            if (err != pr::frame_error::none) return end(l, link_end::server_protocol_error);
        }
        if (!plane_send(target, target_tls, chunk, pending))
            return end(l, client ? link_end::server_write_failed : link_end::client_write_failed);
        if (l.unsent(!client)) {
            // The peer is slow: the rest is kept, this side is not read until it drains.
            if (!client) l.server_at_boundary = false;
            refresh_interest(l);
            return;
        }
        if (!client) l.server_at_boundary = l.server_scanner.at_boundary();
        if (l.tracker.terminated()) return finish_if_terminated(l);
        if (!client && closing_idle_) {
            close_if_idle(l);
            if (l.ended) return;
        }
        if (static_cast<std::size_t>(n) < buf.size()) return;  // drained; LT reports more
    }
}

void data_plane::finish_if_terminated(relay_link& l) {
    if (l.ended || !l.tracker.terminated()) return;
    if (!l.unsent(false) && !l.unsent(true) && l.server_at_boundary && l.tracker.server_idle()) {
        end(l, link_end::client_closed);
    }
}

bool data_plane::flush(relay_link& l, bool to_client) {
    const int fd = to_client ? l.client_fd : l.server_fd;
    auto& pending = to_client ? l.to_client : l.to_server;
    if (!plane_flush(fd, to_client ? l.client_tls : l.server_tls, pending)) {
        end(l, to_client ? link_end::client_write_failed : link_end::server_write_failed);
        return false;
    }
    if (l.unsent(to_client)) return true;
    if (pending.capacity() > chunk_size) pending.shrink_to_fit();
    if (to_client) l.server_at_boundary = l.server_scanner.at_boundary();
    // This side no longer needs EPOLLOUT; the source side may read again.
    refresh_interest(l);
    read_from(l, !to_client);  // level-triggered would report it too; saves a wake-up
    finish_if_terminated(l);
    return !l.ended;
}

void data_plane::end(relay_link& l, link_end why) {
    if (l.ended) return;
    l.ended = true;
    l.reason = why;
    if (l.client_registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, l.client_fd, nullptr);
    if (l.server_registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, l.server_fd, nullptr);
    l.client_registered = l.server_registered = false;
    ended_.push_back(&l);
    if (l.on_end) l.on_end();
}

}  // namespace shardgate::proxy
