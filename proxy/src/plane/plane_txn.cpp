// Transaction pooling in the data plane (see plane_txn.hpp): the client link and the session's
// coroutine. The parked server connections are in plane_servers.cpp.
#include "plane/plane_txn.hpp"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "control/session.hpp"
#include "shardgate/protocol/frontend.hpp"

namespace shardgate::proxy {
namespace {

constexpr std::size_t chunk_size = std::size_t{64} * 1024;
// Read from a client queued for a connection, at most (then it is no longer read until served).
constexpr std::size_t queued_input_limit = std::size_t{64} * 1024;
// Replies a client may be owed before it is no longer read (each costs the statement channel
// an entry; a client that pipelines Close messages behind a result it does not read would
// otherwise grow it without end). Reading resumes below half of it.
constexpr std::size_t max_owed_replies = std::size_t{16} * 1024;

std::span<std::byte> scratch() {
    thread_local std::vector<std::byte> buf(chunk_size);
    return buf;
}

}  // namespace

// ------------------------------------------------------------------ txn_plane_link

txn_plane_link::txn_plane_link(std::shared_ptr<client_session> s, data_plane& plane, int client_fd)
    : session_(std::move(s)), s_(*session_), plane_(plane), client_tls_(s_.client_.tls()) {
    client_.fd = client_fd;
}

txn_plane_link::~txn_plane_link() = default;

void txn_plane_link::start() {
    plane_.add_resident(shared_from_this());
    set_nonblocking(client_.fd);
    if (plane_.stopping()) return end(link_end::client_closed);
    if (plane_.closing_idle() && s_.core_.client_in().empty()) return end(link_end::admin_shutdown);
    refresh_interest();
    if (!s_.core_.client_in().empty()) process_client();
    read_buffered();
}

void txn_plane_link::read_buffered() {
    // TLS may hold what the client sent while the plane did not read it (at login, or while
    // queued for a connection): no epoll event will say so.
    if (!ended_ && plane_buffered(client_tls_)) read_client();
}

void txn_plane_link::prefetch(int stage) const noexcept {
    if (stage == 0) {
        prefetch_bytes(this, sizeof *this);
        return;
    }
    // While it ended or asks its worker for a connection, the worker may be using the session.
    if (ended_ || acquiring_) return;
    switch (stage) {
        case 1:
            prefetch_bytes(&s_, sizeof s_);
            if (server_) prefetch_bytes(server_.get(), sizeof(plane_server));
            return;
        case 2:
            s_.core_.prefetch();
            __builtin_prefetch(s_.core_.client_in().pending().data());
            __builtin_prefetch(s_.core_.to_server().view().data());
            __builtin_prefetch(s_.core_.client_out().view().data());
            if (s_.conn_) prefetch_bytes(s_.conn_.get(), sizeof(pool::server_conn));
            if (const auto* next = parked_candidate()) prefetch_bytes(next, sizeof *next);
            return;
        default: {  // the parked connection take() will compare: its state, then its key
            const auto* next = parked_candidate();
            if (next == nullptr || !next->conn) return;
            if (stage == 3)
                prefetch_bytes(next->conn.get(), sizeof(pool::server_conn));
            else
                __builtin_prefetch(next->conn->applied_key.data());
            return;
        }
    }
}

const plane_server* txn_plane_link::parked_candidate() const {
    // With splitting the pool is chosen per transaction: no guess.
    if (server_ || s_.split_) return nullptr;
    return plane_.servers().next_parked(s_.pool_->pool.get());
}

void txn_plane_link::wake_session(plane_request req) {
    // The session's coroutine runs on its own worker; the request is set and read there.
    // The client socket object stays with the session (its fd is ours): its executor is the
    // session's, and reading it is safe from any thread.
    asio::post(s_.client_.socket().get_executor(), [s = session_, req] {
        s->plane_request_ = req;
        s->plane_wake_ = true;
        s->server_pump_done_.cancel();
    });
}

void txn_plane_link::refresh_interest() {
    if (ended_) return;
    // A client queued in the plane is still read (what it sends waits in the core's client_in(), up
    // to a bound), so the queue costs no epoll_ctl and a client that leaves is seen.
    const bool read_client =
        (!acquiring_ || (queued_ && s_.core_.client_in().pending().size() < queued_input_limit)) &&
        !server_unsent() && !client_unsent() && !end_after_flush_ && !owed_paused_;
    plane_.watch(client_, &client_handler_,
                 (read_client ? EPOLLIN : 0U) | (client_unsent() ? EPOLLOUT : 0U));
    if (server_)
        plane_.watch(server_->reg, server_.get(),
                     (client_unsent() ? 0U : EPOLLIN) | (server_unsent() ? EPOLLOUT : 0U));
}

void txn_plane_link::on_client_event(std::uint32_t events) {
    if (ended_) return;
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && client_unsent()) {
        if (!flush_pending(true)) return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_client();
}

void txn_plane_link::on_server_event(std::uint32_t events) {
    if (ended_) return;
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && server_unsent()) {
        if (!flush_pending(false)) return;
    }
    if (server_ && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_server();
    if (std::exchange(owed_resumed_, false) && !ended_) read_client();
}

void txn_plane_link::pause_for_owed() {
    owed_paused_ = true;
    // The server may hold extended-protocol replies back until a Sync or Flush the client has
    // not sent yet: ask for them, or nothing would ever drain.
    if (server_) {
        protocol::fe::encode(s_.core_.to_server(), protocol::fe::flush{});
        if (!send_to_server()) return;
    }
    refresh_interest();
}

void txn_plane_link::read_client() {
    if (ended_ || (acquiring_ && !queued_) || end_after_flush_ || server_unsent() ||
        client_unsent() || owed_paused_)
        return;
    auto buf = scratch();
    for (;;) {
        const ssize_t n = plane_recv(client_.fd, client_tls_, buf);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            return end(link_end::client_closed);
        }
        if (n == 0) return end(link_end::client_closed);
        const auto got = static_cast<std::size_t>(n);
        // After Terminate the client is only watched for its close (which cancels work still
        // running for it); what it sends is dropped, as Postgres reads nothing more.
        if (!s_.core_.tracker().terminated()) {
            if (!s_.core_.client_in().append(std::span<const std::byte>(buf.data(), got))) {
                s_.refuse_client_memory();
                return end(link_end::client_protocol_error);
            }
            if (queued_) {
                // Handled once a connection is handed over (take_over).
                if (s_.core_.client_in().pending().size() >= queued_input_limit) {
                    refresh_interest();
                    return;
                }
                if (got < buf.size()) return;
                continue;
            }
            if (!process_client()) return;
            if (s_.core_.owed_replies() >= max_owed_replies) return pause_for_owed();
            if (acquiring_ || server_unsent() || client_unsent()) return;
        }
        if (got < buf.size()) return;  // drained; level-triggered epoll reports more
    }
}

bool txn_plane_link::process_client() {
    // The bytes read are in the core's client_in() (queued ones too): the core says what next.
    for (auto a = s_.txn_resume_client();;) {
        switch (a.what) {
            case txn_action::kind::need_server:
                if (attach_parked()) {
                    a = s_.txn_resume_client();
                    continue;
                }
                // What the messages before it produced goes out first: once the session's
                // worker has the request it may write the core's client_out() itself
                // (fail_attach).
                if (!send_to_client()) return false;
                acquiring_ = true;
                queued_ = true;
                acquire_since_ = plane_.now();
                // Asks the pool now (start_acquire) or waits in the plane's queue (take_over).
                plane_.servers().need(shared_from_this(), &s_.conn_pool());
                refresh_interest();
                return !ended_;
            case txn_action::kind::close:
                // Terminate with nothing left to answer: what is queued goes out first.
                if (a.why != link_end::client_protocol_error &&
                    (!send_to_server() || !send_to_client()))
                    return false;
                end(a.why);
                return false;
            case txn_action::kind::read:
            case txn_action::kind::release:
                break;
        }
        break;
    }
    if (!send_to_server() || !send_to_client()) return false;
    refresh_interest();
    return true;
}

bool txn_plane_link::attach_parked() {
    auto srv = plane_.servers().take(&s_.conn_pool(), s_.plane_session_key());
    if (!srv) return false;
    server_ = std::move(srv);
    server_->user = this;
    s_.conn_ = std::move(server_->conn);
    server_->tls = s_.conn_->stream.tls();
    s_.on_server_attached();
    return true;
}

std::string_view txn_plane_link::session_key() const {
    return s_.plane_session_key();
}

void txn_plane_link::start_acquire(std::chrono::steady_clock::time_point since) {
    // The session's worker owns the core's client_in() until acquired(): the plane stops reading.
    queued_ = false;
    refresh_interest();
    acquire_since_ = since;
    wake_session(plane_request::acquire);
}

void txn_plane_link::take_over(std::shared_ptr<plane_server> srv) {
    acquiring_ = false;
    queued_ = false;
    server_ = std::move(srv);
    server_->user = this;
    s_.conn_ = std::move(server_->conn);
    server_->tls = s_.conn_->stream.tls();
    s_.on_server_attached();
    process_client();
    read_buffered();
}

void txn_plane_link::acquired(pool::server_pool* pool, bool ok, tcp proto, int fd) {
    acquiring_ = false;
    plane_.servers().asked(pool);
    if (ended_) {
        // The link ended meanwhile: the session takes its connection back as it is (its socket
        // was never registered here; plane_server_fd_ still names it).
        if (hand_back_after_acquire_) {
            hand_back_after_acquire_ = false;
            hand_back();
        }
        return;
    }
    if (ok && fd >= 0) {
        server_ =
            std::make_shared<plane_server>(plane_, s_.conn_pool().shared_from_this(), proto, fd);
        server_->user = this;
        server_->tls = s_.conn_ ? s_.conn_->stream.tls() : nullptr;
        s_.plane_server_fd_ = -1;
    }
    if (!ok) {
        // The errors the client is owed are in the core's client_out().
        if (s_.fatal_sent_) end_after_flush_ = true;
        if (!send_to_client()) return;
        if (end_after_flush_ && !client_unsent()) return end(link_end::client_closed);
        refresh_interest();
        if (!end_after_flush_ && !s_.core_.client_in().empty()) process_client();
        read_buffered();
        return;
    }
    process_client();
    read_buffered();
}

void txn_plane_link::detach() {
    plane_.watch(server_->reg, server_.get(), EPOLLIN);
    server_->conn = s_.take_server();
    plane_.servers().park(std::move(server_));
    server_.reset();
}

bool txn_plane_link::send_to_server() {
    auto& out = s_.core_.to_server();
    if (out.empty()) return true;
    if (!server_) {  // nothing to send it on (cannot happen: messages need a server)
        out.clear();
        return true;
    }
    const bool ok = plane_send(server_->reg.fd, server_tls(), out.view(), server_pending_);
    out.clear();
    if (!ok) {
        end(link_end::server_write_failed);
        return false;
    }
    if (server_unsent()) refresh_interest();
    return true;
}

bool txn_plane_link::send_to_client() {
    auto& out = s_.core_.client_out();
    if (out.empty()) return true;
    const bool was_unsent = client_unsent();
    const bool ok = plane_send(client_.fd, client_tls_, out.view(), client_pending_);
    out.clear();
    if (!ok) {
        end(link_end::client_write_failed);
        return false;
    }
    if (!was_unsent && client_unsent()) refresh_interest();
    return true;
}

bool txn_plane_link::flush_pending(bool to_client) {
    auto& pending = to_client ? client_pending_ : server_pending_;
    const int fd = to_client ? client_.fd : server_->reg.fd;
    if (!plane_flush(fd, to_client ? client_tls_ : server_tls(), pending)) {
        end(to_client ? link_end::client_write_failed : link_end::server_write_failed);
        return false;
    }
    if (to_client ? client_unsent() : server_unsent()) return true;
    if (pending.capacity() > chunk_size) pending.shrink_to_fit();
    if (to_client && end_after_flush_) {
        end(link_end::client_closed);
        return false;
    }
    refresh_interest();
    // The side that paused may go on (level-triggered epoll would say so too; saves a wake-up).
    if (to_client) {
        if (server_) read_server();
        if (std::exchange(owed_resumed_, false) && !ended_) read_client();
        if (!ended_ && !server_ && !acquiring_) read_client();
    } else {
        read_client();
    }
    return !ended_;
}

void txn_plane_link::read_server() {
    if (ended_ || !server_ || client_unsent()) return;
    auto* tls = server_tls();
    auto buf = scratch();
    for (;;) {
        const ssize_t n = plane_recv(server_->reg.fd, tls, buf);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            return end(link_end::server_closed);
        }
        if (n == 0) return end(link_end::server_closed);
        const auto got = static_cast<std::size_t>(n);
        txn_event ev{txn_event::kind::server_bytes, std::span<const std::byte>(buf.data(), got)};
        ev.server_unsent = server_unsent();
        const auto a = s_.txn_resume(ev);
        if (a.what == txn_action::kind::close && a.why == link_end::server_protocol_error)
            return end(link_end::server_protocol_error);
        if (!send_to_client()) return;
        if (owed_paused_ && s_.core_.owed_replies() < max_owed_replies / 2) {
            owed_paused_ = false;
            owed_resumed_ = true;
            refresh_interest();
        }
        if (after_server_data(a)) return;
        if (client_unsent()) return;  // the client is slow: wait for it
        if (got < buf.size()) return;
    }
}

bool txn_plane_link::after_server_data(const txn_action& a) {
    if (a.what == txn_action::kind::close) {  // Terminate, and nothing left to answer
        end(a.why);
        return true;
    }
    if (a.what != txn_action::kind::release) return false;
    // The end of a transaction: the connection is parked for the next client. Whatever the
    // client sent meanwhile is reported by the (level-triggered) epoll set.
    detach();
    if (plane_.closing_idle()) {
        end(link_end::admin_shutdown);
        return true;
    }
    refresh_interest();
    return true;
}

void txn_plane_link::end(link_end why) {
    if (ended_) return;
    ended_ = true;
    end_why_ = why;
    plane_.watch(client_, &client_handler_, 0);
    plane_.remove_resident(this);
    if (acquiring_ && !queued_) {
        // The worker is in attach_server, using the session: acquired() hands back.
        hand_back_after_acquire_ = true;
        return;
    }
    hand_back();
}

void txn_plane_link::hand_back() {
    s_.end_ = end_why_;
    // Bytes for the server not sent yet: it may hold part of a message (poisoned).
    if (server_unsent()) s_.core_.tracker().mark_dirty();
    if (server_) {
        // The session settles the connection on its worker (finish_relay).
        plane_.watch(server_->reg, server_.get(), 0);
        s_.plane_server_fd_ = server_->reg.fd;
        s_.plane_server_proto_ = server_->protocol;
        server_->gone = true;
        plane_.keep_until_batch_end(server_);
        server_.reset();
    }
    s_.plane_leftover_ = std::move(client_pending_);
    wake_session(plane_request::ended);
}

void txn_plane_link::plane_stopping() {
    end(link_end::client_closed);
}

void txn_plane_link::plane_closing_idle() {
    // A client between transactions leaves now; one in a transaction when it ends (detach).
    if (!server_ && !acquiring_ && !s_.core_.tracker().terminated() && !client_unsent())
        end(link_end::admin_shutdown);
}

// ------------------------------------------------------------------ the session's side

awaitable<void> client_session::relay_transaction_mode_in_plane() {
    // The greeting's connection (if it took one) goes back to the pool at once.
    if (conn_) detach_server();
    queue_client_output_ = true;
    error_code ec;
    const auto client_proto = client_.socket().local_endpoint(ec).protocol();
    const int client_fd = client_.socket().release(ec);
    auto& plane = ctx_.next_data_plane();
    auto link = std::make_shared<txn_plane_link>(shared_from_this(), plane, client_fd);
    plane.post([link] { link->start(); });
    for (;;) {
        if (!plane_wake_) {
            server_pump_done_.expires_at(asio::steady_timer::time_point::max());
            co_await server_pump_done_.async_wait(ec_token(ec));
            continue;
        }
        plane_wake_ = false;
        const auto req = std::exchange(plane_request_, plane_request::none);
        if (req == plane_request::ended) break;
        if (req != plane_request::acquire) continue;
        // The plane had no parked connection for this client: the pool decides (waits,
        // opens one, or says why not), then the socket moves to the plane.
        auto* asked = &conn_pool();
        const auto since = link->acquire_since();
        const bool ok = co_await attach_server(since);
        tcp proto = tcp::v4();
        int fd = -1;
        if (ok) {
            proto = server().socket().local_endpoint(ec).protocol();
            fd = server().socket().release(ec);
            plane_server_fd_ = fd;
            plane_server_proto_ = proto;
        }
        plane.post([link, asked, ok, proto, fd] { link->acquired(asked, ok, proto, fd); });
    }
    // The link left the plane: the sockets come back to this worker.
    queue_client_output_ = false;
    client_.socket().assign(client_proto, client_fd, ec);
    if (conn_ && plane_server_fd_ >= 0)
        server().socket().assign(plane_server_proto_, plane_server_fd_, ec);
    plane_server_fd_ = -1;
    const bool tls_unsent = client_.tls() != nullptr && client_.tls()->has_output();
    if (!core_.client_out().empty() || !plane_leftover_.empty() || tls_unsent) {
        // Replies the plane could not write yet (a slow client) go out before anything else.
        std::vector<std::byte> rest = std::move(plane_leftover_);
        rest.insert(rest.end(), core_.client_out().view().begin(), core_.client_out().view().end());
        core_.client_out().clear();
        if (end_ != link_end::client_closed && end_ != link_end::client_write_failed)
            co_await client_.async_write_all(rest, ec);
    }
    co_await finish_transaction_mode();
}

}  // namespace shardgate::proxy
