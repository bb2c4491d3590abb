// Process-wide state shared by all workers: config, TLS contexts, cancel keys, counters.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "control/cancel_registry.hpp"
#include "control/io.hpp"
#include "core/byte_queue.hpp"
#include "core/prepared_registry.hpp"
#include "plane/data_plane.hpp"

namespace shardgate::proxy {

struct proxy_context {
    // The configuration the process started with: listener, workers, data planes, TLS files
    // (what a reload cannot change). The live configuration is live_config().
    std::shared_ptr<const config> cfg;
    [[nodiscard]] std::shared_ptr<const config> live_config() const {
        std::lock_guard lock(cfg_mu_);
        return live_cfg_ ? live_cfg_ : cfg;
    }
    void set_config(std::shared_ptr<const config> c) {
        std::lock_guard lock(cfg_mu_);
        live_cfg_ = std::move(c);
    }
    // Client side: shardgate as the TLS server. Null when tls_cert_file is not set.
    std::unique_ptr<ssl::context> client_tls;
    // Server side, one per database: shardgate as the TLS client.
    std::map<std::string, std::unique_ptr<ssl::context>, std::less<>> server_tls;
    cancel_registry cancels;
    prepared_registry prepared;  // statement ids for transaction pooling (statement_mux.hpp)
    std::atomic<std::uint32_t> clients{0};
    // Bytes of partly received client messages held beyond each session's free allowance, for
    // all sessions together (max_client_memory, fixed at start).
    std::unique_ptr<byte_budget> client_memory;
    std::atomic<bool> stopping{false};  // the listener is closed: logins get 57P03
    // /health/ready: true once the listener accepts, false from the first SIGTERM/SIGINT
    // (shutdown_ready_delay_ms before `stopping`), so load balancers stop sending clients.
    std::atomic<bool> ready{false};
    // Data-plane threads: every session relays in one.
    std::vector<std::unique_ptr<data_plane>> planes;
    std::atomic<std::size_t> next_plane{0};
    data_plane& next_data_plane() {  // round-robin; planes must not be empty
        return *planes[next_plane.fetch_add(1, std::memory_order_relaxed) % planes.size()];
    }
    // SIGINT: clients leave between transactions. The data planes close their own links; a
    // session still logging in looks at closing_idle before it enters one.
    std::atomic<bool> closing_idle{false};
    void close_idle_clients();
    class pool_registry* pools = nullptr;  // owned by proxy_server
    std::function<std::string()> reload;   // set by proxy_server; "" = ok, else the error

    // Builds the TLS contexts; throws config_error when a certificate or key cannot be loaded.
    void init_tls();

  private:
    mutable std::mutex cfg_mu_;
    std::shared_ptr<const config> live_cfg_;
};

}  // namespace shardgate::proxy
