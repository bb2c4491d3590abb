// The data plane: threads that relay client traffic over a level-triggered epoll set, as
// PgBouncer does, so a busy worker handles every ready socket per wake-up with one epoll_wait and
// no per-read re-arming. Session mode uses relay_link below; transaction mode (plane_txn.hpp)
// registers its own handlers. Both carry plain and TLS ends (plane_io.hpp). Logins and TLS
// handshakes, connection checkouts that must wait and teardown stay on the Asio workers.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/link_end.hpp"
#include "plane/plane_io.hpp"
#include "shardgate/protocol/exchange_tracker.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/scanner.hpp"

namespace shardgate::proxy {

class data_plane;
class plane_servers;

// Something registered in a plane's epoll set. Called on the plane thread.
class plane_handler {
  public:
    virtual void on_plane_event(std::uint32_t events) = 0;
    // A hint that this handler's event comes soon in the batch: it asks the CPU to load what
    // handling it will read, so a busy plane does not wait for memory client after client
    // (data_plane::run). Stages 0 .. prefetch_stages - 1 come one event apart, the last just
    // before the event; stage k may read only the handler's own object and what stages
    // before k prefetched. Reads nothing another thread may be writing; changes nothing.
    static constexpr int prefetch_stages = 5;
    virtual void prefetch(int /*stage*/) const noexcept {}

  protected:
    plane_handler() = default;
    ~plane_handler() = default;
    plane_handler(const plane_handler&) = default;
    plane_handler& operator=(const plane_handler&) = default;
};

// Asks the CPU to load [p, p + n) into its caches (a hint: no fault, no effect on behaviour).
inline void prefetch_bytes(const void* p, std::size_t n) noexcept {
    const auto* b = static_cast<const char*>(p);
    for (std::size_t off = 0; off < n; off += 64)
        __builtin_prefetch(b + off);
}

// An fd's registration in a plane's epoll set (see data_plane::watch).
struct plane_fd {
    int fd = -1;
    std::uint32_t events = 0;  // what the set watches for, when registered
    bool registered = false;
};

// A long-lived occupant of a plane (a transaction-mode client): the plane ends it when it stops.
class plane_resident {
  public:
    virtual void plane_stopping() = 0;
    // SIGINT: leave now if no transaction is in flight, else once it ends.
    virtual void plane_closing_idle() = 0;

  protected:
    plane_resident() = default;
    ~plane_resident() = default;
    plane_resident(const plane_resident&) = default;
    plane_resident& operator=(const plane_resident&) = default;
};

// Sets O_NONBLOCK on a socket entering a plane (Asio may not have).
void set_nonblocking(int fd);

// What a transaction-mode link in a data plane asks of its session's worker (plane_txn.cpp).
enum class plane_request : std::uint8_t { none, acquire, ended };

// One session's two sockets while they are in the data plane. Touched only by the data-plane
// thread between adopt() and on_end; the session reads the results after on_end.
struct relay_link {
    struct side final : plane_handler {
        side(relay_link* l, bool c) : link(l), client(c) {}
        void on_plane_event(std::uint32_t events) override;
        relay_link* link;
        bool client;
    };
    relay_link(int client, int server, std::uint32_t max_message_size);

    int client_fd;
    int server_fd;
    // The TLS sessions of the two ends (null: plain TCP); their streams keep them.
    pool::tls_channel* client_tls = nullptr;
    pool::tls_channel* server_tls = nullptr;
    side client_side{this, true};
    side server_side{this, false};
    protocol::message_scanner client_scanner;
    protocol::message_scanner server_scanner;
    std::vector<std::byte> to_client;  // unwritten rest; reading the server pauses meanwhile
    std::vector<std::byte> to_server;  // unwritten rest; reading the client pauses meanwhile
    // Something for that end the socket has not taken (plain rest or TLS ciphertext).
    [[nodiscard]] bool unsent(bool for_client) const {
        return for_client ? plane_unsent(client_tls, to_client)
                          : plane_unsent(server_tls, to_server);
    }

    // Replies owed, transaction status, Terminate (not forwarded: the server connection
    // outlives the client), FATAL from the server.
    protocol::exchange_tracker tracker;
    bool server_at_boundary = true;  // bytes given to the client end at a message boundary
    bool ended = false;
    bool client_registered = false;  // in the epoll set
    bool server_registered = false;
    std::uint32_t client_events = 0;  // what the epoll set watches for, when registered
    std::uint32_t server_events = 0;
    link_end reason = link_end::client_closed;
    protocol::frame_error client_error = protocol::frame_error::none;

    // Called once, on the data-plane thread, after both fds left the epoll set.
    std::function<void()> on_end;
    data_plane* plane = nullptr;  // set when adopted
};

class data_plane {
  public:
    data_plane();
    ~data_plane();
    data_plane(const data_plane&) = delete;
    data_plane& operator=(const data_plane&) = delete;

    void start();
    void stop();  // links still relaying are ended with client_closed
    // Thread-safe hand-over of a link whose sockets are connected and idle.
    void adopt(std::shared_ptr<relay_link> link);
    // Thread-safe: runs `fn` on the plane thread (dropped if the plane has stopped).
    void post(std::function<void()> fn);
    // Thread-safe. SIGINT: every client not in a transaction leaves now (admin_shutdown),
    // the others as soon as their transaction ends.
    void close_idle();
    [[nodiscard]] bool closing_idle() const { return closing_idle_; }

    // Plane thread only, for handlers other than relay_link. Level-triggered interest in
    // `events` (EPOLLIN / EPOLLOUT); 0 takes the fd out of the set.
    void watch(plane_fd& f, plane_handler* h, std::uint32_t events);
    // Keeps `p` alive until the current batch of events is handled (a handler that ended may
    // still have events in the batch).
    void keep_until_batch_end(std::shared_ptr<void> p);
    void add_resident(const std::shared_ptr<plane_resident>& r);
    void remove_resident(plane_resident* r);
    // Idle transaction-mode server connections parked in this plane (plane_txn.hpp).
    plane_servers& servers() { return *servers_; }
    [[nodiscard]] bool stopping() const { return stop_.load(std::memory_order_relaxed); }
    // The time the current batch of events started (one clock read per wake-up).
    [[nodiscard]] std::chrono::steady_clock::time_point now() const { return now_; }

    void on_event(relay_link::side& s, std::uint32_t events);

  private:
    void run();
    void take_incoming();
    void read_from(relay_link& l, bool client);
    bool flush(relay_link& l, bool to_client);
    void set_interest(relay_link& l, bool client, bool in, bool out);
    void refresh_interest(relay_link& l);
    void end(relay_link& l, link_end why);
    // After a Terminate: ends the link once the server has answered what came before it.
    void finish_if_terminated(relay_link& l);
    // After SIGINT: ends the link if nothing is in flight.
    void close_if_idle(relay_link& l);

    int epfd_ = -1;
    int wake_fd_ = -1;
    std::mutex mu_;
    std::vector<std::shared_ptr<relay_link>> incoming_;
    std::vector<std::function<void()>> posted_;
    std::vector<std::shared_ptr<void>> batch_keep_;
    std::unordered_map<plane_resident*, std::shared_ptr<plane_resident>> residents_;
    std::unique_ptr<plane_servers> servers_;
    bool closing_idle_ = false;  // plane thread
    std::chrono::steady_clock::time_point now_{};
    std::unordered_map<relay_link*, std::shared_ptr<relay_link>> live_;
    std::vector<relay_link*> ended_;  // ended since the last batch; still in live_
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace shardgate::proxy
