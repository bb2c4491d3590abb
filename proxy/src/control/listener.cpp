// Listener, worker threads, health endpoints and signal handling of the shardgate process.
#include "control/listener.hpp"

#include <spdlog/spdlog.h>
#include <csignal>

#include "control/session.hpp"

namespace shardgate::proxy {

proxy_server::proxy_server(std::shared_ptr<const config> cfg, std::string config_path)
    : config_path_(std::move(config_path)) {
    ctx_.cfg = std::move(cfg);
    ctx_.client_memory = std::make_unique<byte_budget>(ctx_.cfg->max_client_memory);
    ctx_.init_tls();
    const unsigned n = std::max(1U, ctx_.cfg->workers);
    if (ctx_.cfg->relay_engine == "asio")
        spdlog::warn(
            "relay_engine = \"asio\" is retired: every session relays in the epoll data plane "
            "(TLS included); remove the setting");
    for (unsigned i = 0; i < std::max(1U, ctx_.cfg->data_planes); ++i)
        ctx_.planes.push_back(std::make_unique<data_plane>());
    pools_ = std::make_unique<pool_registry>(ctx_.cfg, ctx_.server_tls, main_io_.get_executor());
    ctx_.pools = pools_.get();
    ctx_.reload = [this] { return reload(); };
    for (unsigned i = 0; i < n; ++i) {
        // concurrency hint 1: each worker's io_context is only ever run by its own thread.
        worker_io_.push_back(std::make_unique<asio::io_context>(1));
        work_.push_back(asio::make_work_guard(*worker_io_.back()));
    }
}

proxy_server::~proxy_server() {
    if (pools_) pools_->close_all();
    for (auto& w : work_)
        w.reset();
    for (auto& io : worker_io_)
        io->stop();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

int proxy_server::run() {
    const auto& cfg = *ctx_.cfg;
    // Signals first: once the port accepts, a SIGHUP or SIGTERM must find its handler (the
    // default action would end the process).
    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.add(SIGHUP);
    signals_.async_wait([this](error_code ec, int signo) {
        if (!ec) on_signal(signo);
    });
    if (cfg.http_port != 0) {
        // Bound first, so the health endpoints answer once the client port accepts.
        health_ = std::make_unique<health_server>(main_io_, ctx_);
        const auto http_port = health_->listen(cfg.http_listen_addr, cfg.http_port);
        health_->start();
        spdlog::info("health endpoints on http://{}:{}/health/live and /health/ready",
                     cfg.http_listen_addr, http_port);
    }
    tcp::endpoint ep(asio::ip::make_address(cfg.listen_addr), cfg.listen_port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    for (auto& io : worker_io_)
        threads_.emplace_back([&io] { io->run(); });
    for (auto& p : ctx_.planes)
        p->start();

    pools_->start();
    asio::co_spawn(main_io_, accept_loop(), asio::detached);
    ctx_.ready.store(true);
    spdlog::info("shardgate listening on {}:{} with {} workers and {} data planes", cfg.listen_addr,
                 acceptor_.local_endpoint().port(), worker_io_.size(), ctx_.planes.size());
    main_io_.run();
    for (auto& w : work_)
        w.reset();
    for (auto& io : worker_io_)
        io->stop();
    for (auto& t : threads_)
        t.join();
    threads_.clear();
    pools_->close_all();
    for (auto& p : ctx_.planes)
        p->stop();
    spdlog::info("shardgate stopped");
    return 0;
}

awaitable<void> proxy_server::accept_loop() {
    for (;;) {
        // Round-robin over workers: the socket is created on the worker's io_context, so the
        // whole session runs on that thread without locks.
        auto& io = *worker_io_[next_worker_++ % worker_io_.size()];
        error_code ec;
        tcp::socket sock = co_await acceptor_.async_accept(io, ec_token(ec));
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
            // EMFILE and friends: back off briefly rather than spin.
            spdlog::warn("accept failed: {}", ec.message());
            asio::steady_timer t(main_io_, std::chrono::milliseconds(50));
            co_await t.async_wait(ec_token(ec));
            continue;
        }
        // start_session must run on the worker's thread.
        asio::post(io,
                   [this, s = std::move(sock)]() mutable { start_session(ctx_, std::move(s)); });
    }
}

std::string proxy_server::reload() {
    std::lock_guard lock(reload_mu_);
    std::shared_ptr<const config> next;
    try {
        next = load_config(config_path_);
    } catch (const std::exception& e) {
        spdlog::error("reload failed, the running configuration stays: {}", e.what());
        return e.what();
    }
    const auto& start = *ctx_.cfg;
    // Server-side TLS contexts are made at start: a database that needs one it lacks waits for
    // a restart, like the listener and thread settings (which are only reported).
    for (const auto& [name, db] : next->databases) {
        if (db.server_tls != server_tls_mode::disable && ctx_.server_tls.count(name) == 0) {
            std::string err = "database " + name +
                              " needs server TLS set up at start; restart shardgate to "
                              "add it";
            spdlog::error("reload failed, the running configuration stays: {}", err);
            return err;
        }
    }
    if (next->listen_addr != start.listen_addr || next->listen_port != start.listen_port ||
        next->workers != start.workers || next->data_planes != start.data_planes ||
        next->relay_engine != start.relay_engine || next->tls_cert_file != start.tls_cert_file ||
        next->tls_key_file != start.tls_key_file || next->http_port != start.http_port ||
        next->http_listen_addr != start.http_listen_addr)
        spdlog::warn(
            "reload: listen addresses, ports, workers, data_planes, relay_engine and "
            "TLS files change only with a restart");
    spdlog::set_level(spdlog::level::from_str(next->log_level));
    ctx_.set_config(next);
    pools_->reload(next);
    spdlog::info("configuration reloaded: {} databases, {} users", next->databases.size(),
                 next->users.size());
    return {};
}

void proxy_server::on_signal(int signo) {
    if (signo == SIGHUP) {
        spdlog::info("SIGHUP: reloading {}", config_path_);
        (void)reload();
    } else if (!shutdown_started_) {
        shutdown_started_ = true;
        // Readiness goes first: load balancers see 503 while the listener still accepts.
        ctx_.ready.store(false);
        spdlog::info("{}: not ready; the listener closes in {} ms",
                     signo == SIGTERM ? "SIGTERM" : "SIGINT",
                     ctx_.live_config()->shutdown_ready_delay.count());
        asio::co_spawn(main_io_, shut_down(signo == SIGINT), asio::detached);
    } else {
        spdlog::info("second stop signal: exiting now");
        main_io_.stop();
    }
    signals_.async_wait([this](error_code ec, int s) {
        if (!ec) on_signal(s);
    });
}

awaitable<void> proxy_server::shut_down(bool only_transactions) {
    if (ctx_.live_config()->shutdown_ready_delay.count() > 0) {
        asio::steady_timer t(main_io_, ctx_.live_config()->shutdown_ready_delay);
        error_code ec;
        co_await t.async_wait(ec_token(ec));
    }
    ctx_.stopping.store(true);
    error_code ignored;
    acceptor_.close(ignored);
    if (only_transactions) {
        // SIGINT: clients leave between transactions (FATAL 57P01), as PgBouncer's safe
        // shutdown waits only for the servers in use.
        spdlog::info(
            "no new clients; idle clients are closed, the others once their transaction ends "
            "(up to {} ms)",
            ctx_.live_config()->shutdown_timeout.count());
        ctx_.close_idle_clients();
    } else {
        spdlog::info("no new clients; waiting up to {} ms for clients to finish",
                     ctx_.live_config()->shutdown_timeout.count());
    }
    co_await drain_and_stop();
}

awaitable<void> proxy_server::drain_and_stop() {
    const auto until = std::chrono::steady_clock::now() + ctx_.live_config()->shutdown_timeout;
    asio::steady_timer t(main_io_);
    while (ctx_.clients.load() > 0 && std::chrono::steady_clock::now() < until) {
        t.expires_after(std::chrono::milliseconds(50));
        error_code ec;
        co_await t.async_wait(ec_token(ec));
    }
    if (ctx_.clients.load() > 0)
        spdlog::warn("shutdown_timeout reached with {} clients connected", ctx_.clients.load());
    main_io_.stop();
}

}  // namespace shardgate::proxy
