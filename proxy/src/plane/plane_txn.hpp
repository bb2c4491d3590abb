// Transaction pooling in the data plane. A transaction-mode client's socket lives in a plane
// for the whole session; server connections come and go per transaction. The message handling
// itself is client_session's (relay_txn.cpp), shared with the Asio engine.
//
// A server connection that enters a plane stays registered in that plane's epoll set while it
// serves one client after another: between transactions it is parked here (checked out, as far
// as its pool knows), so handing it to the next client costs no system call. A plane gives
// parked connections back to their pool when the pool has waiting clients, is paused or
// closed, the connection reaches its lifetime, or it has been parked longer than
// server_pool::park_limit() (so idle timeouts and liveness checks stay the pool's; SHOW POOLS
// counts parked connections as idle). A client for which no parked connection fits (different
// session settings), or for which none is parked, asks its Asio worker for one
// (server_pool::checkout), which may wait or open one.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "control/io.hpp"
#include "core/txn_core.hpp"
#include "plane/data_plane.hpp"
#include "plane/plane_io.hpp"
#include "shardgate/pool/server_pool.hpp"

namespace shardgate::proxy {

class client_session;
class txn_plane_link;

// A server connection while it is in a plane.
class plane_server final : public plane_handler {
  public:
    plane_server(data_plane& plane, std::shared_ptr<pool::server_pool> pool, tcp proto, int fd);
    void on_plane_event(std::uint32_t events) override;
    void prefetch(int stage) const noexcept override;

    data_plane& plane;
    std::shared_ptr<pool::server_pool> pool;
    tcp protocol;
    plane_fd reg;
    std::unique_ptr<pool::server_conn> conn;  // while parked; its client holds it otherwise
    pool::tls_channel* tls = nullptr;         // the connection's TLS session (null: plain)
    txn_plane_link* user = nullptr;           // the client whose transaction runs on it
    std::chrono::steady_clock::time_point parked_at{};
    bool gone = false;  // left the plane: events still in the batch are stale
};

// The parked connections of one plane, by pool, and the plane's clients waiting for one.
//
// A client that needs a connection and finds none parked asks its pool only while the pool has
// something to give (an idle connection or room for a new one, server_pool::advise), at most
// `max_asking` clients per pool at a time; the others wait here, in order, and take the next
// connection one of this plane's clients brings back, without a system call. So a burst of
// clients grows the pool one login at a time per plane (PgBouncer: one per pool), not by a
// fork storm of Postgres backends, and a full pool's connections go from client to client
// inside the plane. A client waiting longer than reserve_pool_timeout or checkout_timeout, or
// while the pool is paused, closed or its backend down, asks the pool at once: the pool's
// answer (a reserve connection, the timeout error, PAUSE) is the same as for any other client.
// A connection goes back to the pool instead when a client queued in the pool has waited
// longer than ours.
class plane_servers {
  public:
    static constexpr std::uint32_t max_asking = 1;

    explicit plane_servers(data_plane& plane) : plane_(plane) {}
    ~plane_servers();
    plane_servers(const plane_servers&) = delete;
    plane_servers& operator=(const plane_servers&) = delete;

    [[nodiscard]] bool empty() const { return count_ == 0 && waiting_ == 0; }
    [[nodiscard]] bool has_waiting() const { return waiting_ != 0; }
    // `link` needs a connection of `pool` and none fits: it asks the pool now
    // (txn_plane_link::start_acquire) or waits in this plane's queue.
    void need(const std::shared_ptr<txn_plane_link>& link, pool::server_pool* pool);
    // A checkout that `need` or the queue started has finished.
    void asked(pool::server_pool* pool);
    // The most recently parked connection of `pool` set up for session key `key`, or null.
    std::shared_ptr<plane_server> take(pool::server_pool* pool, std::string_view key);
    // Parks `s` (its conn set, idle and clean), or gives it back if its pool wants it.
    void park(std::shared_ptr<plane_server> s);
    // Takes `s` out of the plane: its connection's socket goes back to Asio.
    std::unique_ptr<pool::server_conn> unplug(const std::shared_ptr<plane_server>& s);
    void release_pool(pool::server_pool* pool);  // every parked connection of `pool`
    void release_all();
    void tick(std::chrono::steady_clock::time_point now);
    void lost(plane_server& s);  // a parked connection spoke or closed
    // The connection take(pool, ...) would look at first, or null (for prefetching).
    [[nodiscard]] const plane_server* next_parked(pool::server_pool* pool) const;

  private:
    struct waiter {
        std::weak_ptr<txn_plane_link> link;
        std::chrono::steady_clock::time_point since;
    };
    struct queue {
        std::shared_ptr<pool::server_pool> pool;  // kept while clients of it wait
        std::deque<waiter> waiters;
        std::uint32_t asking = 0;  // checkouts in flight
    };

    void remove(plane_server& s);
    void give_back(const std::shared_ptr<plane_server>& s);
    // Drops waiters that left from the front of `q`; true if one still waits there.
    bool live_front(pool::server_pool* pool, queue& q);
    std::shared_ptr<txn_plane_link> pop_front(pool::server_pool* pool, queue& q);
    // Lets waiters of `pool` ask it, as far as it advises.
    void promote(pool::server_pool* pool);
    void ask(queue& q, txn_plane_link& link, std::chrono::steady_clock::time_point since);

    data_plane& plane_;
    std::unordered_map<pool::server_pool*, std::vector<std::shared_ptr<plane_server>>> parked_;
    std::unordered_map<pool::server_pool*, queue> queues_;
    std::size_t count_ = 0;
    std::size_t waiting_ = 0;
};

// One transaction-mode client in a plane.
class txn_plane_link final : public plane_resident,
                             public std::enable_shared_from_this<txn_plane_link> {
  public:
    txn_plane_link(std::shared_ptr<client_session> s, data_plane& plane, int client_fd);
    ~txn_plane_link();
    txn_plane_link(const txn_plane_link&) = delete;
    txn_plane_link& operator=(const txn_plane_link&) = delete;

    void start();  // plane thread
    // Plane thread: the session's Asio worker checked a connection out of `pool` (fd >= 0)
    // or not.
    void acquired(pool::server_pool* pool, bool ok, tcp proto, int fd);
    // Plane thread, from plane_servers: ask the pool (on the session's worker), for a client
    // waiting since `since`.
    void start_acquire(std::chrono::steady_clock::time_point since);
    // Plane thread, from plane_servers: a connection another client of this plane brought back.
    void take_over(std::shared_ptr<plane_server> srv);
    [[nodiscard]] bool waits() const { return acquiring_ && !ended_; }
    [[nodiscard]] std::string_view session_key() const;  // the settings it needs applied
    [[nodiscard]] std::chrono::steady_clock::time_point acquire_since() const {
        return acquire_since_;
    }
    void plane_stopping() override;
    void plane_closing_idle() override;
    void on_client_event(std::uint32_t events);
    void on_server_event(std::uint32_t events);
    [[nodiscard]] int client_fd() const { return client_.fd; }
    // plane_handler::prefetch for either side's events: this object, then the session, then
    // its buffers and server connection (or the parked one it will take).
    void prefetch(int stage) const noexcept;
    // Without a server: the parked connection attach_parked() will try first, or null.
    [[nodiscard]] const plane_server* parked_candidate() const;

  private:
    struct client_handler final : plane_handler {
        explicit client_handler(txn_plane_link* l) : link(l) {}
        void on_plane_event(std::uint32_t events) override { link->on_client_event(events); }
        void prefetch(int stage) const noexcept override { link->prefetch(stage); }
        txn_plane_link* link;
    };

    void read_client();
    void read_server();
    bool process_client();  // false: the link ended
    bool attach_parked();
    void detach();
    // The attached server connection's TLS session (null: plain TCP or none attached).
    [[nodiscard]] pool::tls_channel* server_tls() const { return server_ ? server_->tls : nullptr; }
    // Something for that end the socket has not taken (plain rest or TLS ciphertext).
    [[nodiscard]] bool client_unsent() const { return plane_unsent(client_tls_, client_pending_); }
    [[nodiscard]] bool server_unsent() const { return plane_unsent(server_tls(), server_pending_); }
    void read_buffered();
    void pause_for_owed();
    bool send_to_server();  // false: the link ended
    bool send_to_client();
    bool flush_pending(bool to_client);
    bool after_server_data(const txn_action& a);  // true: detached or ended
    void refresh_interest();
    void end(link_end why);
    // Tells the session's worker the link ended; its sockets are the worker's from then on.
    void hand_back();
    // The hand-off to the session's worker: `req` is set on the worker's thread, by the posted
    // handler, so the plane never writes the session's request fields while the worker runs.
    void wake_session(plane_request req);

    std::shared_ptr<client_session> session_;
    client_session& s_;
    data_plane& plane_;
    client_handler client_handler_{this};
    plane_fd client_;
    std::shared_ptr<plane_server> server_;
    std::vector<std::byte> client_pending_;  // unwritten; reading the server pauses meanwhile
    std::vector<std::byte> server_pending_;  // unwritten; reading the client pauses meanwhile
    pool::tls_channel* client_tls_;          // the client's TLS session (null: plain TCP)
    std::chrono::steady_clock::time_point acquire_since_{};  // read by the session's worker
    bool acquiring_ = false;  // waiting for a connection (queued here, or asking the pool)
    bool queued_ = false;     // ... queued here (not asking the pool)
    bool ended_ = false;
    // The link ended while the session's worker was getting it a connection: the worker hears
    // of it only once acquired() has run (and taken or handed back the server socket), so that
    // the two threads never own the same socket or session fields at once.
    bool hand_back_after_acquire_ = false;
    link_end end_why_ = link_end::client_closed;
    bool end_after_flush_ = false;  // a FATAL error is queued: close once it is out
    // The client is owed max_owed_replies replies: it is not read until the server's answers
    // bring that down (a client that pipelines and does not read stays bounded).
    bool owed_paused_ = false;
    bool owed_resumed_ = false;  // ... and now it may be read again (on_server_event)
};

}  // namespace shardgate::proxy
