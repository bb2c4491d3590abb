// The health endpoints' HTTP/1.1 server: Beast parses, one short coroutine per connection.
#include "admin/http_health.hpp"

#include <spdlog/spdlog.h>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace shardgate::proxy {

namespace beast = boost::beast;
namespace http = beast::http;

health_reply decide_health_reply(std::string_view method, std::string_view target, bool ready) {
    if (method != "GET" && method != "HEAD") return {};
    const auto path = target.substr(0, target.find('?'));
    if (path == "/health/live") return {200, "live\n"};
    if (path == "/health/ready")
        return ready ? health_reply{200, "ready\n"} : health_reply{503, "not ready\n"};
    return {};
}

health_server::health_server(asio::io_context& io, const proxy_context& ctx, limits lim)
    : io_(io), ctx_(ctx), limits_(lim), acceptor_(io) {}

health_server::~health_server() {
    close();
}

std::uint16_t health_server::listen(const std::string& addr, std::uint16_t port) {
    tcp::endpoint ep(asio::ip::make_address(addr), port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    return acceptor_.local_endpoint().port();
}

void health_server::start() {
    asio::co_spawn(io_, accept_loop(), asio::detached);
}

void health_server::close() {
    error_code ignored;
    acceptor_.close(ignored);
}

awaitable<void> health_server::accept_loop() {
    for (;;) {
        error_code ec;
        tcp::socket sock = co_await acceptor_.async_accept(ec_token(ec));
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
            spdlog::warn("health endpoint: accept failed: {}", ec.message());
            asio::steady_timer t(io_, std::chrono::milliseconds(50));
            co_await t.async_wait(ec_token(ec));
            continue;
        }
        if (active_ >= limits_.max_connections) {
            // Probes are tiny and frequent: shedding the excess beats queueing it.
            spdlog::debug("health endpoint: {} connections open, closing a new one", active_);
            error_code ignored;
            sock.close(ignored);
            continue;
        }
        ++active_;
        // The handler runs only when serve() completes, never while the io_context is being
        // destroyed (when this object may already be gone).
        asio::co_spawn(io_, serve(std::move(sock)),
                       [this](const std::exception_ptr&) { --active_; });
    }
}

awaitable<void> health_server::serve(tcp::socket sock) {
    // The buffer's maximum size bounds a request (header and any pipelined bytes).
    beast::flat_buffer buf(limits_.max_request_bytes);
    // Closing the socket ends a read or write that takes longer than request_timeout; the
    // callback runs on this thread and is disarmed before `sock` goes away.
    deadline timeout(sock.get_executor());
    auto close_on_expiry = [&sock] {
        error_code ignored;
        sock.close(ignored);
    };
    for (;;) {
        http::request_parser<http::empty_body> parser;  // a request with a body is refused
        parser.header_limit(static_cast<std::uint32_t>(limits_.max_request_bytes));
        error_code ec;
        timeout.arm(limits_.request_timeout, close_on_expiry);
        co_await http::async_read(sock, buf, parser, ec_token(ec));
        if (ec) break;
        const auto& req = parser.get();
        const auto method = req.method_string();
        const auto target = req.target();
        const auto reply =
            decide_health_reply(std::string_view(method.data(), method.size()),
                                std::string_view(target.data(), target.size()), ctx_.ready.load());
        http::response<http::string_body> res{static_cast<http::status>(reply.status),
                                              req.version()};
        res.set(http::field::server, "shardgate");
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.set(http::field::cache_control, "no-store");
        res.keep_alive(req.keep_alive());
        res.body() = std::string(reply.body);
        res.prepare_payload();
        if (req.method() == http::verb::head) res.body().clear();  // Content-Length stays
        co_await http::async_write(sock, res, ec_token(ec));
        if (ec || !res.keep_alive()) break;
    }
    timeout.disarm();
    error_code ignored;
    sock.shutdown(tcp::socket::shutdown_send, ignored);
    sock.close(ignored);
}

}  // namespace shardgate::proxy
