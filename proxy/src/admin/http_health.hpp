// A tiny HTTP/1.1 server for load balancers and orchestrators: GET /health/live, /health/ready.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "control/context.hpp"
#include "control/io.hpp"

namespace shardgate::proxy {

// What a request gets, decided from the request line alone (no I/O).
struct health_reply {
    unsigned status = 404;
    std::string_view body = "not found\n";
};
// GET (or HEAD) /health/live: 200 while the process runs; /health/ready: 200 while shardgate
// accepts clients (`ready`), 503 from the moment shutdown starts; anything else 404. A query
// string is ignored.
health_reply decide_health_reply(std::string_view method, std::string_view target, bool ready);

// Serves the health endpoints on one io_context (the main one): requests are read whole with
// Beast's parser, answered, and the connection is kept alive while the client asks for it.
// Bounded: a request over max_request_bytes or not complete within request_timeout closes the
// connection; over max_connections, new connections are closed at once.
class health_server {
  public:
    struct limits {
        std::size_t max_request_bytes = 8 * 1024;
        std::chrono::milliseconds request_timeout{5000};
        std::size_t max_connections = 64;
    };

    // `ctx` must outlive this server; only ctx.ready is read.
    health_server(asio::io_context& io, const proxy_context& ctx, limits lim);
    health_server(asio::io_context& io, const proxy_context& ctx)
        : health_server(io, ctx, limits{}) {}
    ~health_server();
    health_server(const health_server&) = delete;
    health_server& operator=(const health_server&) = delete;

    // Binds and listens on addr:port (throws boost::system::system_error); returns the port
    // bound (useful with port 0).
    std::uint16_t listen(const std::string& addr, std::uint16_t port);
    // Starts accepting; connections are served until the io_context stops or close().
    void start();
    void close();

  private:
    awaitable<void> accept_loop();
    awaitable<void> serve(tcp::socket sock);

    asio::io_context& io_;
    const proxy_context& ctx_;
    limits limits_;
    tcp::acceptor acceptor_;
    std::size_t active_ = 0;  // connections being served; only touched on io_'s thread
};

}  // namespace shardgate::proxy
